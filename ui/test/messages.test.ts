import { describe, expect, it } from "vitest";
import type { MessageView } from "../src/bindings/MessageView";
import {
  byteLength,
  checkBody,
  compareMessages,
  fallbackFingerprint,
  MAX_BODY_BYTES,
  mergeMessages,
} from "../src/lib/messages";

const msg = (id: string, timestamp: number, author = "aa"): MessageView => ({
  id,
  room: "r",
  author,
  author_name: "x",
  timestamp,
  body: id,
  urgent: false,
  acknowledged: false,
  signature: "",
  signed: "",
  received_at: timestamp,
  local: false,
  sent_to: 0,
  held_by: 0,
  kind: "text",
  private: false,
  subject: null,
});

describe("message helpers", () => {
  it("counts UTF-8 bytes, not characters", () => {
    expect(byteLength("abc")).toBe(3);
    expect(byteLength("é")).toBe(2);
    expect(byteLength("🚑")).toBe(4);
  });

  it("refuses empty and over-limit bodies", () => {
    expect(checkBody("  \n").empty).toBe(true);
    expect(checkBody("x".repeat(MAX_BODY_BYTES)).problem).toBeNull();
    const over = checkBody("é".repeat(MAX_BODY_BYTES / 2 + 1));
    expect(over.tooLong).toBe(true);
    expect(over.bytes).toBe(MAX_BODY_BYTES + 2);
    expect(over.problem).toContain("8192");
  });

  it("orders by timestamp, author, id and merges without duplicates", () => {
    const a = msg("a", 1);
    const b = msg("b", 2, "aa");
    const c = msg("c", 2, "bb");
    expect([c, b, a].sort(compareMessages)).toEqual([a, b, c]);
    const list = [a, c];
    expect(mergeMessages(list, [a])).toBe(list);
    expect(mergeMessages(list, [b, b]).map((m) => m.id)).toEqual(["a", "b", "c"]);
  });

  it("derives a short fingerprint", () => {
    expect(fallbackFingerprint("abcdef0123456789ff")).toBe("abcd-ef01-2345-6789");
  });
});
