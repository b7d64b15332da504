// Date and time formatting with a fixed "now" (never today's date) and the locale fixed by
// test/setup.ts; `make test-ui` runs this file under two time zones and two system locales.
import { afterEach, describe, expect, it } from "vitest";
import { dayKey, dayLabel, formatFullTime, formatTime, setDisplayLocale } from "../src/lib/messages";

const at = (y: number, mo: number, d: number, h: number, mi: number): number =>
  new Date(y, mo - 1, d, h, mi).getTime();

afterEach(() => setDisplayLocale("en-GB"));

describe("formatTime", () => {
  it("shows the time alone on the same local day, up to the last minute before midnight", () => {
    const now = new Date(at(2026, 11, 21, 23, 59));
    expect(formatTime(at(2026, 11, 21, 0, 0), now)).toBe("00:00");
    expect(formatTime(at(2026, 11, 21, 23, 58), now)).toBe("23:58");
  });

  it("adds the day once midnight has passed", () => {
    const now = new Date(at(2026, 11, 22, 0, 1));
    expect(formatTime(at(2026, 11, 21, 23, 59), now)).toBe("21 Nov 23:59");
    expect(formatTime(at(2026, 11, 22, 0, 0), now)).toBe("00:00");
  });

  it("adds the year across a year boundary", () => {
    const now = new Date(at(2027, 1, 1, 0, 0));
    expect(formatTime(at(2026, 12, 31, 23, 59), now)).toBe("31 Dec 2026 23:59");
    expect(formatTime(at(2027, 1, 1, 0, 0), now)).toBe("00:00");
    // A message from the next year (a peer's clock ahead) also carries its year.
    expect(formatTime(at(2027, 1, 1, 0, 5), new Date(at(2026, 12, 31, 23, 55)))).toBe(
      "1 Jan 2027 00:05",
    );
  });

  it("follows the display locale", () => {
    setDisplayLocale("en-US");
    const now = new Date(at(2026, 3, 4, 12, 0));
    expect(formatTime(at(2026, 3, 4, 14, 5), now)).toBe("02:05 PM");
    expect(formatTime(at(2026, 3, 3, 14, 5), now)).toBe("Mar 3 02:05 PM");
    setDisplayLocale("de-DE");
    expect(formatTime(at(2026, 3, 3, 14, 5), now)).toBe("3. März 14:05");
    expect(formatFullTime(at(2026, 3, 3, 14, 5))).toBe("3.3.2026, 14:05:00");
  });
});

describe("dayLabel and dayKey", () => {
  it("says Today and Yesterday across midnight and the year boundary", () => {
    const now = new Date(at(2027, 1, 1, 0, 0));
    expect(dayLabel(at(2027, 1, 1, 0, 0), now)).toBe("Today");
    expect(dayLabel(at(2026, 12, 31, 23, 59), now)).toBe("Yesterday");
    expect(dayLabel(at(2026, 12, 30, 23, 59), now)).toBe("Wednesday, 30 December 2026");
    expect(dayKey(at(2026, 12, 31, 23, 59))).toBe("2026-12-31");
    expect(dayKey(at(2027, 1, 1, 0, 0))).toBe("2027-01-01");
  });

  it("handles 1 March after a leap day", () => {
    const now = new Date(at(2028, 3, 1, 0, 30));
    expect(dayLabel(at(2028, 2, 29, 23, 0), now)).toBe("Yesterday");
  });
});
