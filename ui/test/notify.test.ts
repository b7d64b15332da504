import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DmView } from "../src/bindings/DmView";
import type { EngineEvent } from "../src/bindings/EngineEvent";
import type { MessageView } from "../src/bindings/MessageView";
import { tauriBackend } from "../src/ipc";
import {
  COALESCE_WINDOW_MS,
  MAX_BODY_CHARS,
  type MutedRooms,
  Notifier,
  type NotificationSpec,
  plan,
  truncate,
  URGENT_NOTIFY_BUDGET,
  URGENT_NOTIFY_WINDOW_MS,
} from "../src/lib/notify";
import { Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { FakeEngine, SELF_ID, settle } from "./fakeEngine";

// The plugin and the window are mocked: no native notification, focus driven by the test.
const plugin = vi.hoisted(() => ({
  sent: [] as { title: string; body?: string }[],
  granted: true,
  focused: false,
  focusHandler: null as ((e: { payload: boolean }) => void) | null,
}));

vi.mock("@tauri-apps/plugin-notification", () => ({
  isPermissionGranted: () => Promise.resolve(plugin.granted),
  requestPermission: () => Promise.resolve(plugin.granted ? "granted" : "denied"),
  sendNotification: (spec: { title: string; body?: string }) => plugin.sent.push(spec),
}));

vi.mock("@tauri-apps/api/window", () => ({
  getCurrentWindow: () => ({
    isFocused: () => Promise.resolve(plugin.focused),
    onFocusChanged: (handler: (e: { payload: boolean }) => void) => {
      plugin.focusHandler = handler;
      return Promise.resolve(() => undefined);
    },
  }),
}));

const PEER = "f".repeat(64);
let counter = 0;

function message(room: string, body: string, fields: Partial<MessageView> = {}): EngineEvent {
  counter += 1;
  return {
    type: "message",
    message: {
      id: counter.toString(16).padStart(64, "0"),
      room,
      author: PEER,
      author_name: "Ben",
      timestamp: 1_700_000_000_000 + counter,
      body,
      urgent: false,
      acknowledged: false,
      signature: "",
      signed: "",
      received_at: 1_700_000_000_000 + counter,
      local: false,
      sent_to: 0,
      held_by: 0,
      kind: "text",
      private: false,
      subject: null,
      ...fields,
    },
  };
}

function dm(body: string, fields: Partial<DmView> = {}): EngineEvent {
  counter += 1;
  return {
    type: "dm",
    dm: {
      id: counter.toString(16).padStart(64, "0"),
      peer: PEER,
      author: PEER,
      author_name: "Ben",
      timestamp: 1_700_000_000_000 + counter,
      body,
      outgoing: false,
      received_at: 1_700_000_000_000 + counter,
      urgent: false,
      ...fields,
    },
  };
}

/** Muted rooms as the store keeps them (the engine's `RoomView.muted`). */
class MutedSet implements MutedRooms {
  readonly rooms = new Set<string>();
  has(room: string): boolean {
    return this.rooms.has(room);
  }
}

function setup(focused = false): { notifier: Notifier; shown: NotificationSpec[]; muted: MutedSet } {
  const shown: NotificationSpec[] = [];
  const muted = new MutedSet();
  const notifier = new Notifier({ show: (s) => shown.push(s), selfId: () => SELF_ID, muted });
  notifier.setFocused(focused);
  return { notifier, shown, muted };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("notification rules", () => {
  it("notifies a room message while unfocused: name in #room: text", () => {
    const { notifier, shown } = setup(false);
    notifier.onEvent(message("medical", "Two casualties at the school"));
    expect(shown).toEqual([]);
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown).toEqual([{ title: "DisasterNet", body: "Ben in #medical: Two casualties at the school" }]);
  });

  it("never notifies while the window is focused", () => {
    const { notifier, shown } = setup(true);
    notifier.onEvent(message("medical", "hello"));
    notifier.onEvent(dm("hi"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS * 2);
    expect(shown).toEqual([]);
  });

  it("drops what was waiting when the window gains focus, notifies again once unfocused", () => {
    const { notifier, shown } = setup(false);
    notifier.onEvent(message("medical", "one"));
    notifier.setFocused(true);
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown).toEqual([]);
    notifier.setFocused(false);
    notifier.onEvent(message("medical", "two"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown.map((s) => s.body)).toEqual(["Ben in #medical: two"]);
  });

  it("own messages never notify (local, our author id, outgoing DMs)", () => {
    const { notifier, shown } = setup(false);
    notifier.onEvent(message("medical", "mine", { local: true }));
    notifier.onEvent(message("medical", "mine from another device", { author: SELF_ID }));
    notifier.onEvent(dm("to Ben", { outgoing: true }));
    notifier.onEvent({ type: "delivery_changed", room: "medical" });
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown).toEqual([]);
  });

  it("notifies a direct message to us", () => {
    const { notifier, shown } = setup(false);
    notifier.onEvent(dm("team 3, go to the school"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown.map((s) => s.body)).toEqual(["Ben in direct message: team 3, go to the school"]);
  });

  it("muted rooms never notify; unmuting restores them; DMs are not affected", () => {
    const { notifier, shown, muted } = setup(false);
    muted.rooms.add("medical");
    notifier.onEvent(message("medical", "muted"));
    notifier.onEvent(message("shelter", "not muted"));
    notifier.onEvent(dm("direct"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown.map((s) => s.body)).toEqual(["Ben in #shelter: not muted", "Ben in direct message: direct"]);
    muted.rooms.delete("medical");
    notifier.onEvent(message("medical", "back"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown.at(-1)?.body).toBe("Ben in #medical: back");
  });

  it("up to 3 messages within 2 s are shown one by one", () => {
    const { notifier, shown } = setup(false);
    for (const body of ["a", "b", "c"]) notifier.onEvent(message("medical", body));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown.map((s) => s.body)).toEqual(["Ben in #medical: a", "Ben in #medical: b", "Ben in #medical: c"]);
  });

  it("more than 3 within 2 s (a catch-up) show one summary naming the rooms", () => {
    const { notifier, shown } = setup(false);
    for (let i = 0; i < 40; i++) notifier.onEvent(message(i % 2 ? "a" : "b", `m${i}`));
    notifier.onEvent(dm("d"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS - 1);
    expect(shown).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(shown).toEqual([{ title: "DisasterNet", body: "41 new messages in #b, #a, direct message" }]);
    // The next window starts afresh.
    notifier.onEvent(message("a", "later"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown.map((s) => s.body)).toEqual([
      "41 new messages in #b, #a, direct message",
      "Ben in #a: later",
    ]);
  });

  it("messages more than 2 s apart are separate windows", () => {
    const { notifier, shown } = setup(false);
    for (let i = 0; i < 5; i++) {
      notifier.onEvent(message("medical", `m${i}`));
      vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    }
    expect(shown).toHaveLength(5);
  });

  it("truncates long bodies to one line", () => {
    const long = "x".repeat(MAX_BODY_CHARS + 50);
    expect(truncate(long)).toBe(`${"x".repeat(MAX_BODY_CHARS)}…`);
    expect(truncate("line one\nline two")).toBe("line one line two");
    expect(plan([{ room: "r", authorName: " ", body: "hi" }])).toEqual([
      { title: "DisasterNet", body: "Someone in #r: hi" },
    ]);
  });

});

describe("notifications wired to the (mocked) plugin and window", () => {
  beforeEach(() => {
    plugin.sent = [];
    plugin.granted = true;
    plugin.focused = false;
    plugin.focusHandler = null;
  });

  it("follows the window focus and sends through the plugin", async () => {
    const { startNotifications } = await import("../src/notifications");
    const notifier = await startNotifications(() => SELF_ID, new MutedSet());
    expect(notifier.isFocused).toBe(false);
    notifier.onEvent(message("medical", "while away"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(plugin.sent).toEqual([{ title: "DisasterNet", body: "Ben in #medical: while away" }]);
    plugin.focusHandler?.({ payload: true });
    notifier.onEvent(message("medical", "while looking"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(plugin.sent).toHaveLength(1);
  });

  it("sends nothing when the permission is denied", async () => {
    plugin.granted = false;
    const { startNotifications } = await import("../src/notifications");
    const notifier = await startNotifications(() => SELF_ID, new MutedSet());
    notifier.onEvent(message("medical", "x"));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(plugin.sent).toEqual([]);
  });
});

describe("mute toggle in the sidebar", () => {
  afterEach(() => clearMocks());

  it("mutes and unmutes a room, and the engine keeps the choice", async () => {
    vi.useRealTimers();
    const engine = new FakeEngine();
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    engine.install();
    const root = document.createElement("div");
    document.body.replaceChildren(root);
    const store = new Store(tauriBackend);
    const unmount = mountApp(root, store);
    await store.start();
    await settle();
    const item = (): HTMLElement => root.querySelector<HTMLElement>('.room[data-room="medical"]')!;
    const button = (): HTMLButtonElement => item().querySelector<HTMLButtonElement>(".mute-button")!;
    expect(item().dataset.muted).toBe("false");
    expect(button().textContent).toBe("Mute");
    button().click();
    await settle();
    expect(engine.calls.find((c) => c.cmd === "set_muted")?.args).toEqual({ room: "medical", muted: true });
    expect(item().dataset.muted).toBe("true");
    expect(button().textContent).toBe("Unmute");
    expect(button().getAttribute("aria-pressed")).toBe("true");
    // Kept by the engine (per data directory): a fresh start shows it muted.
    expect(engine.muted.has("medical")).toBe(true);
    const again = new Store(tauriBackend);
    await again.start();
    expect(again.state.rooms.find((r) => r.name === "medical")?.muted).toBe(true);
    again.stop();
    button().click();
    await settle();
    expect(item().dataset.muted).toBe("false");
    expect(engine.muted.has("medical")).toBe(false);
    unmount();
    store.stop();
  });
});

describe("urgent messages", () => {
  it("show at most 3 one by one a window, then one urgent summary", () => {
    const { notifier, shown } = setup(false);
    for (const k of [1, 2, 3, 4, 5]) notifier.onEvent(message("medical", `collapse ${k}`, { urgent: true }));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown).toEqual([
      { title: "DisasterNet: URGENT", body: "Ben in #medical: collapse 1" },
      { title: "DisasterNet: URGENT", body: "Ben in #medical: collapse 2" },
      { title: "DisasterNet: URGENT", body: "Ben in #medical: collapse 3" },
      { title: "DisasterNet: URGENT", body: "2 more urgent messages in #medical" },
    ]);
  });

  it("from a muted room, notify within each author's budget only", () => {
    const shown: NotificationSpec[] = [];
    const muted = new MutedSet();
    let now = 1_000_000;
    const notifier = new Notifier({ show: (s) => shown.push(s), selfId: () => SELF_ID, muted, now: () => now });
    notifier.setFocused(false);
    muted.rooms.add("medical");
    const flood = (n: number, author: string): void => {
      for (let k = 0; k < n; k++) {
        notifier.onEvent(message("medical", `spam ${k}`, { urgent: true, author }));
        vi.advanceTimersByTime(COALESCE_WINDOW_MS);
      }
    };
    flood(URGENT_NOTIFY_BUDGET + 3, "a".repeat(64));
    expect(shown).toHaveLength(URGENT_NOTIFY_BUDGET);
    // Another author has a budget of their own.
    flood(1, "b".repeat(64));
    expect(shown).toHaveLength(URGENT_NOTIFY_BUDGET + 1);
    // After the window, the first author may notify again.
    now += URGENT_NOTIFY_WINDOW_MS;
    flood(1, "a".repeat(64));
    expect(shown).toHaveLength(URGENT_NOTIFY_BUDGET + 2);
    // An unmuted room is not limited by the budget.
    muted.rooms.delete("medical");
    flood(URGENT_NOTIFY_BUDGET + 1, "a".repeat(64));
    expect(shown).toHaveLength(2 * URGENT_NOTIFY_BUDGET + 3);
  });

  it("notify even in a muted room, titled URGENT, one by one beside a summary of the rest", () => {
    const { notifier, shown, muted } = setup(false);
    muted.rooms.add("medical");
    notifier.onEvent(message("medical", "ordinary, muted"));
    notifier.onEvent(message("medical", "collapse at the market", { urgent: true }));
    for (const k of [1, 2, 3, 4]) notifier.onEvent(message("shelter", `news ${k}`));
    vi.advanceTimersByTime(COALESCE_WINDOW_MS);
    expect(shown).toEqual([
      { title: "DisasterNet: URGENT", body: "Ben in #medical: collapse at the market" },
      { title: "DisasterNet", body: "4 new messages in #shelter" },
    ]);
  });
});
