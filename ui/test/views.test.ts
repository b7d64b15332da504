import { emit } from "@tauri-apps/api/event";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ENGINE_EVENT, tauriBackend } from "../src/ipc";
import { MAX_BODY_BYTES } from "../src/lib/messages";
import { Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { FakeEngine, peerView, settle } from "./fakeEngine";

let engine: FakeEngine;
let store: Store;
let root: HTMLElement;
let unmount: () => void;

const $ = <T extends Element = HTMLElement>(sel: string): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`${sel} not found`);
  return el;
};

function type(el: HTMLInputElement | HTMLTextAreaElement, text: string): void {
  el.value = text;
  el.dispatchEvent(new Event("input", { bubbles: true }));
}

function pressEnter(el: HTMLElement, shiftKey = false): void {
  el.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", shiftKey, bubbles: true }));
}

beforeEach(async () => {
  engine = new FakeEngine();
  engine.install();
  root = document.createElement("div");
  document.body.replaceChildren(root);
  store = new Store(tauriBackend);
  unmount = mountApp(root, store);
});

afterEach(() => {
  unmount();
  store.stop();
  clearMocks();
});

describe("app views", () => {
  it("asks for a display name on first start, then hides the prompt", async () => {
    await store.start();
    expect($("#name-dialog").hidden).toBe(false);
    expect($("#self-fingerprint").textContent).toBe("a1b2-c3d4");
    type($<HTMLInputElement>("#name-input"), "Amara");
    $<HTMLFormElement>("#name-form").requestSubmit();
    await settle();
    expect($("#name-dialog").hidden).toBe(true);
    expect($("#self-identity").textContent).toContain("Amara");
  });

  it("joins a room, sends with Enter and shows the message; Shift+Enter does not send", async () => {
    engine.identity.name = "Amara";
    await store.start();
    type($<HTMLInputElement>("#room-input"), "medical");
    $<HTMLFormElement>("#room-form").requestSubmit();
    await settle();
    expect($("#room-title").textContent).toBe("#medical");
    expect(root.querySelectorAll("#room-list .room")).toHaveLength(1);

    const composer = $<HTMLTextAreaElement>("#composer");
    expect(composer.disabled).toBe(false);
    type(composer, "first line");
    pressEnter(composer, true);
    await settle();
    expect(engine.calls.some((c) => c.cmd === "send")).toBe(false);

    type(composer, "Clinic open until 18:00");
    expect($("#byte-count").textContent).toBe(`23 / ${MAX_BODY_BYTES} bytes`);
    pressEnter(composer);
    await settle();
    const messages = root.querySelectorAll(".message");
    expect(messages).toHaveLength(1);
    expect(messages[0]?.querySelector(".body")?.textContent).toBe("Clinic open until 18:00");
    expect(messages[0]?.querySelector(".author")?.textContent).toBe("Amara");
    expect(messages[0]?.querySelector(".fingerprint")?.textContent).toBe("a1b2-c3d4");
    expect(composer.value).toBe("");
  });

  it("refuses an over-limit draft in the composer", async () => {
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    await store.start();
    const composer = $<HTMLTextAreaElement>("#composer");
    type(composer, "x".repeat(MAX_BODY_BYTES + 1));
    expect($("#byte-count").classList.contains("over")).toBe(true);
    expect($<HTMLButtonElement>("#send-button").disabled).toBe(true);
    expect($("#composer-hint").textContent).toContain("too long");
    pressEnter(composer);
    await settle();
    expect(engine.calls.some((c) => c.cmd === "send")).toBe(false);
  });

  it("says clearly when offline, and shows engine errors in the banner", async () => {
    engine.identity.name = "Amara";
    await store.start();
    expect($("#net-status").textContent).toBe(
      "Offline — messages are saved and will be sent when peers appear",
    );
    expect($("#peer-count").textContent).toBe("0 peers connected");
    expect($("#error-banner").hidden).toBe(true);
    store.report({ code: "storage", message: "disk full" });
    expect($("#error-banner").hidden).toBe(false);
    expect($("#error-banner").textContent).toContain("disk full");
    $<HTMLButtonElement>(".error-dismiss").click();
    expect($("#error-banner").hidden).toBe(true);
  });

  it("shows the outgoing queue and the last sync in the status bar", async () => {
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    await store.start();
    expect($("#queue-count").textContent).toBe("nothing queued");
    expect($("#last-sync").textContent).toBe("never synced");
    engine.message("medical", "one");
    engine.message("medical", "two");
    engine.lastSyncAt = new Date(2026, 10, 21, 14, 5).getTime();
    // "Now" is fixed: later the same day the time alone is shown, the next day the date too.
    vi.useFakeTimers({ toFake: ["Date"], now: new Date(2026, 10, 21, 23, 59) });
    try {
      await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
      await settle();
      expect($("#queue-count").textContent).toBe("2 queued");
      expect($("#queue-count").classList.contains("waiting")).toBe(true);
      // The engine says when it tries again (retry with backoff), shown as a time of day.
      engine.nextRetryInMs = 30_000;
      await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
      await settle();
      expect($("#queue-count").textContent).toBe("2 queued · next try 23:59");
      expect($("#queue-count").title).toContain("the next try is at 21/11/2026, 23:59:30");
      engine.nextRetryInMs = 120_000;
      await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
      await settle();
      expect($("#queue-count").textContent).toBe("2 queued · next try 22 Nov 00:01");
      engine.nextRetryInMs = null;
      expect($("#last-sync").textContent).toBe("synced 14:05");
      expect($("#last-sync").title).toBe("Last sync with a peer: 21/11/2026, 14:05:00");
      vi.setSystemTime(new Date(2026, 10, 22, 0, 1));
      await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
      await settle();
      expect($("#last-sync").textContent).toBe("synced 21 Nov 14:05");
    } finally {
      vi.useRealTimers();
    }
  });

  it("shows what the node refused to protect itself, by reason, only when there is any", async () => {
    engine.identity.name = "Amara";
    await store.start();
    expect($("#drop-count").hidden).toBe(true);
    engine.drops = { rate_limited: 1200, quota_author: 30, not_reading: 0 };
    await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
    await settle();
    expect($("#drop-count").hidden).toBe(false);
    expect($("#drop-count").textContent).toBe("1,230 refused");
    expect($("#drop-count").title).toContain("rate limited: 1,200");
    expect($("#drop-count").title).toContain("quota author: 30");
    expect($("#drop-count").title).not.toContain("not reading");
    // A full carry quota is said too.
    engine.carryFull = true;
    await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
    await settle();
    expect($("#drop-count").textContent).toBe("1,230 refused · carry quota full");
    expect($("#drop-count").title).toContain("rooms carried for others is used up");
    expect($("#drop-count").title).not.toContain("removed to stay within");
    engine.carryEvicted = 1500;
    await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
    await settle();
    expect($("#drop-count").title).toContain("1,500 old messages carried for others removed to stay within the carry quota");
    engine.drops = {};
    await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
    await settle();
    expect($("#drop-count").hidden).toBe(false);
    expect($("#drop-count").textContent).toBe("carry quota full");
  });

  it("lists peers with online state, name and fingerprint", async () => {
    engine.identity.name = "Amara";
    engine.peers = [
      peerView({ id: "b".repeat(64), name: "Ben" }),
      peerView({ id: "c".repeat(64), name: "Chioma", connected: true, last_seen: 5 }),
      peerView({ id: "d".repeat(64), name: "Dara", hops: 3 }),
    ];
    await store.start();
    const peers = [...root.querySelectorAll<HTMLElement>(".peer")];
    expect(peers.map((p) => p.dataset.connected)).toEqual(["true", "false", "false"]);
    expect(peers[0]?.textContent).toContain("Chioma");
    expect(peers[0]?.textContent).toContain("cccc-cccc");
    expect(peers[2]?.textContent).toContain("3 hops");
  });

  it("shows why the engine could not start", async () => {
    engine.startError = { code: "busy", message: "another node runs on /data" };
    await store.start();
    expect($("#fatal").hidden).toBe(false);
    expect($("#fatal-message").textContent).toBe("another node runs on /data");
    expect($("#fatal-code").textContent).toBe("busy");
  });
});
