// Urgent messages in the app: the composer toggle, the highlight, the pinned strip with its
// Acknowledge buttons, and "N urgent" in the status bar.

import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ENGINE_EVENT, tauriBackend } from "../src/ipc";
import { MAX_BODY_BYTES, URGENT_MARKER, URGENT_MARKER_BYTES } from "../src/lib/messages";
import { MAX_PINNED_URGENT, Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { FakeEngine, settle } from "./fakeEngine";

const BEN = "be".repeat(32);

let engine: FakeEngine;
let store: Store;
let root: HTMLElement;
let unmount: () => void;

const $ = <T extends Element = HTMLElement>(sel: string): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`${sel} not found`);
  return el;
};
const texts = (sel: string): string[] => [...root.querySelectorAll(sel)].map((e) => e.textContent ?? "");

function type(el: HTMLTextAreaElement, text: string): void {
  el.value = text;
  el.dispatchEvent(new Event("input", { bubbles: true }));
}

function pressEnter(el: HTMLElement): void {
  el.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
}

/** Ben's urgent message arriving in `room`. */
async function arrives(room: string, body: string): Promise<string> {
  const m = engine.message(room, body, BEN, "Ben", { urgent: true });
  await emit(ENGINE_EVENT, { type: "message", message: m });
  await settle();
  return m.id;
}

beforeEach(() => {
  engine = new FakeEngine();
  engine.install();
  engine.identity.name = "Amara";
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

describe("urgent messages", () => {
  it("the marker is 13 bytes of UTF-8", () => {
    expect(URGENT_MARKER.codePointAt(0)).toBe(0x1f6a8);
    expect(URGENT_MARKER_BYTES).toBe(13);
  });

  it("the Urgent toggle sends one urgent message, then turns itself off", async () => {
    engine.joined.add("medical");
    await store.start();
    const toggle = $<HTMLButtonElement>("#urgent-toggle");
    const composer = $<HTMLTextAreaElement>("#composer");
    expect(toggle.getAttribute("aria-pressed")).toBe("false");
    toggle.click();
    expect(toggle.getAttribute("aria-pressed")).toBe("true");
    expect($("#composer-form").classList.contains("urgent")).toBe(true);
    // The marker is part of the body: the limit shown is 13 bytes shorter.
    type(composer, "need rescue");
    expect($("#byte-count").textContent).toBe(`11 / ${MAX_BODY_BYTES - URGENT_MARKER_BYTES} bytes`);
    pressEnter(composer);
    await settle();
    const send = engine.calls.filter((c) => c.cmd === "send");
    expect(send.map((c) => c.args.urgent)).toEqual([true]);
    expect(toggle.getAttribute("aria-pressed")).toBe("false");
    // The next one is ordinary again.
    type(composer, "all clear");
    pressEnter(composer);
    await settle();
    expect(engine.calls.filter((c) => c.cmd === "send").map((c) => c.args.urgent)).toEqual([true, false]);
    const items = root.querySelectorAll(".message");
    expect(items[0]?.classList.contains("urgent")).toBe(true);
    expect(items[1]?.classList.contains("urgent")).toBe(false);
    // Own urgent messages are never pinned for oneself.
    expect($("#urgent-strip").hidden).toBe(true);
  });

  it("an arriving urgent message is highlighted, pinned and counted until acknowledged", async () => {
    engine.joined.add("medical");
    engine.joined.add("shelter");
    await store.start();
    await store.selectRoom("shelter");
    expect($("#urgent-count").hidden).toBe(true);
    const first = await arrives("medical", "collapse at the market");
    await arrives("medical", "second building down");
    expect($("#urgent-count").hidden).toBe(false);
    expect($("#urgent-count").textContent).toBe("2 urgent");
    // Not pinned in another room; the status bar opens the room.
    expect($("#urgent-strip").hidden).toBe(true);
    $<HTMLButtonElement>("#urgent-count").click();
    await settle();
    expect($("#room-title").textContent).toBe("#medical");
    expect($("#urgent-strip").hidden).toBe(false);
    expect(texts('[data-testid="urgent-pin"] .body')).toEqual(["second building down", "collapse at the market"]);
    const highlighted = root.querySelectorAll(".message.urgent.unacknowledged");
    expect(highlighted).toHaveLength(2);
    // Acknowledge one: unpinned, still highlighted as urgent, no longer "unacknowledged".
    $<HTMLButtonElement>(`#urgent-strip .ack-urgent[data-id="${first}"]`).click();
    await settle();
    expect(engine.calls.find((c) => c.cmd === "ack_urgent")?.args).toEqual({ room: "medical", id: first });
    expect(texts('[data-testid="urgent-pin"] .body')).toEqual(["second building down"]);
    expect($("#urgent-count").textContent).toBe("1 urgent");
    expect(root.querySelectorAll(".message.urgent")).toHaveLength(2);
    expect(root.querySelectorAll(".message.urgent.unacknowledged")).toHaveLength(1);
    $<HTMLButtonElement>('#urgent-strip .ack-urgent').click();
    await settle();
    expect($("#urgent-strip").hidden).toBe(true);
    expect($("#urgent-count").hidden).toBe(true);
  });

  it("pins at most the 20 newest; Acknowledge all clears the room", async () => {
    engine.joined.add("medical");
    for (let k = 0; k < 25; k += 1) engine.message("medical", `m${k}`, BEN, "Ben", { urgent: true });
    await store.start();
    await store.selectRoom("medical");
    expect(root.querySelectorAll('[data-testid="urgent-pin"]')).toHaveLength(MAX_PINNED_URGENT);
    expect(texts('[data-testid="urgent-pin"] .body')[0]).toBe("m24");
    expect($("#urgent-count").textContent).toBe("25 urgent");
    $<HTMLButtonElement>("#urgent-strip .ack-all-urgent").click();
    await settle();
    expect(engine.calls.find((c) => c.cmd === "ack_urgent")?.args).toEqual({ room: "medical", id: null });
    expect($("#urgent-strip").hidden).toBe(true);
    expect($("#urgent-count").hidden).toBe(true);
  });

  it("leaving a room stops counting its urgent messages", async () => {
    engine.joined.add("medical");
    engine.joined.add("shelter");
    engine.message("medical", "help", BEN, "Ben", { urgent: true });
    await store.start();
    expect($("#urgent-count").textContent).toBe("1 urgent");
    await store.leaveRoom("medical");
    await settle();
    expect($("#urgent-count").hidden).toBe(true);
  });

  it("sends an urgent direct message and highlights urgent ones in the conversation", async () => {
    engine.joined.add("medical");
    await store.start();
    await store.openDm(BEN);
    await settle();
    const toggle = $<HTMLButtonElement>("#urgent-toggle");
    expect(toggle.hidden).toBe(false);
    toggle.click();
    const composer = $<HTMLTextAreaElement>("#composer");
    // The marker goes outside a direct message's envelope: the whole text limit stays.
    type(composer, "x".repeat(10));
    expect($("#byte-count").textContent).toBe("10 / 5900 bytes");
    composer.value = "";
    type(composer, "bring insulin");
    pressEnter(composer);
    await settle();
    expect(engine.calls.find((c) => c.cmd === "send_dm")?.args).toEqual({
      to: BEN,
      body: "bring insulin",
      urgent: true,
    });
    expect(toggle.getAttribute("aria-pressed")).toBe("false");
    await emit(ENGINE_EVENT, { type: "dm", dm: engine.dm(BEN, "on my way", false, "Ben", false) });
    await settle();
    const rows = [...root.querySelectorAll('[data-testid="dm"]')];
    expect(rows.map((r) => r.classList.contains("urgent"))).toEqual([true, false]);
    expect(texts('[data-testid="dm"] [data-testid="urgent-badge"]')).toEqual(["URGENT"]);
    // Not on the identity pane.
    store.showIdentity();
    await settle();
    expect(toggle.hidden).toBe(true);
  });
});
