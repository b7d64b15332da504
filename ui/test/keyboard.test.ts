// Keyboard use: one tab stop per sidebar list with arrow keys inside, focus kept across
// re-renders and moved after actions, the name dialog (focus, trap, Escape), the error banner,
// and the app-wide shortcuts (Ctrl+K, Alt+Up/Down, Escape).

import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ENGINE_EVENT, tauriBackend } from "../src/ipc";
import { shortcutOf, stepRoom, type KeyPress } from "../src/lib/keyboard";
import { Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { FakeEngine, peerView, settle } from "./fakeEngine";

const BEN = "be".repeat(32);
const CHIOMA = "c0".repeat(32);

let engine: FakeEngine;
let store: Store;
let root: HTMLElement;
let unmount: () => void;

const $ = <T extends Element = HTMLElement>(sel: string): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`${sel} not found`);
  return el;
};
const roomButton = (room: string): HTMLButtonElement => $(`[data-room="${room}"] .room-select`);
const active = (): Element | null => document.activeElement;

/** Dispatches a keydown on `el` (or what has focus); returns whether a handler took it. */
function press(key: string, mods: Partial<KeyPress> = {}, el: Element | null = document.activeElement): boolean {
  const e = new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true, ...mods });
  (el ?? document.body).dispatchEvent(e);
  return e.defaultPrevented;
}

/** Tab stops (tabindex >= 0) among the controls matching `sel`. */
const tabStops = (sel: string): HTMLElement[] =>
  [...root.querySelectorAll<HTMLElement>(sel)].filter((el) => el.tabIndex >= 0);

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

describe("shortcut keys", () => {
  const key = (k: string, mods: Partial<KeyPress> = {}): KeyPress => ({
    key: k,
    ctrlKey: false,
    altKey: false,
    shiftKey: false,
    metaKey: false,
    ...mods,
  });

  it("maps Ctrl+K, Alt+Up/Down and Escape, and nothing else", () => {
    expect(shortcutOf(key("k", { ctrlKey: true }))).toBe("find-room");
    expect(shortcutOf(key("K", { ctrlKey: true }))).toBe("find-room");
    expect(shortcutOf(key("ArrowDown", { altKey: true }))).toBe("next-room");
    expect(shortcutOf(key("ArrowUp", { altKey: true }))).toBe("previous-room");
    expect(shortcutOf(key("Escape"))).toBe("back");
    expect(shortcutOf(key("k"))).toBeNull();
    expect(shortcutOf(key("ArrowDown"))).toBeNull();
    expect(shortcutOf(key("ArrowDown", { altKey: true, shiftKey: true }))).toBeNull();
    expect(shortcutOf(key("Escape", { shiftKey: true }))).toBeNull();
  });

  it("steps through rooms with wrap-around, starting from the open room", () => {
    const rooms = ["a", "b", "c"];
    expect(stepRoom(rooms, "a", 1, true)).toBe("b");
    expect(stepRoom(rooms, "c", 1, true)).toBe("a");
    expect(stepRoom(rooms, "a", -1, true)).toBe("c");
    expect(stepRoom(rooms, null, 1, true)).toBe("a");
    expect(stepRoom(rooms, null, -1, true)).toBe("c");
    // From the network or a direct conversation: back to the open room first.
    expect(stepRoom(rooms, "b", 1, false)).toBe("b");
    expect(stepRoom([], null, 1, true)).toBeNull();
  });
});

describe("room list", () => {
  beforeEach(async () => {
    for (const r of ["medical", "shelter", "water"]) engine.joined.add(r);
    await store.start();
    await settle();
  });

  it("is one tab stop (the open room, with its Mute and Leave); arrows move between rooms", () => {
    expect(store.state.selectedRoom).toBe("medical");
    expect(tabStops("#room-list .room-select")).toEqual([roomButton("medical")]);
    expect(tabStops('#room-list [data-room="medical"] button')).toHaveLength(3);
    expect(tabStops('#room-list [data-room="shelter"] button')).toHaveLength(0);

    roomButton("medical").focus();
    expect(press("ArrowDown")).toBe(true);
    expect(active()).toBe(roomButton("shelter"));
    expect(tabStops("#room-list .room-select")).toEqual([roomButton("shelter")]);
    press("ArrowDown");
    press("ArrowDown"); // stays on the last one
    expect(active()).toBe(roomButton("water"));
    press("Home");
    expect(active()).toBe(roomButton("medical"));
    press("End");
    expect(active()).toBe(roomButton("water"));
    press("ArrowUp");
    expect(active()).toBe(roomButton("shelter"));
    // Arrows only move focus: the open room is still the same.
    expect(store.state.selectedRoom).toBe("medical");
  });

  it("keeps focus on the same room when the list is redrawn", async () => {
    roomButton("medical").focus();
    press("ArrowDown");
    const before = active();
    expect(before).toBe(roomButton("shelter"));
    // A message in another room redraws the list (unread badge).
    await emit(ENGINE_EVENT, { type: "message", message: engine.message("shelter", "beds", BEN, "Ben") });
    await settle();
    expect(root.querySelector('[data-room="shelter"] .badge')?.textContent).toBe("1");
    expect(before?.isConnected).toBe(false);
    expect(active()).toBe(roomButton("shelter"));
  });

  it("keeps unchanged rows (and the focused button) when a status event replaces the rooms", async () => {
    const button = roomButton("medical");
    button.focus();
    engine.message("medical", "stored elsewhere", BEN, "Ben"); // only the count changes
    await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
    await settle();
    expect(roomButton("medical")).toBe(button);
    expect(button.querySelector(".room-count")?.textContent).toBe("1");
    expect(button.getAttribute("aria-label")).toBe("#medical, 1 message");
    expect(active()).toBe(button);
  });

  it("opens a room with Enter (a click) and goes to the composer", async () => {
    roomButton("medical").focus();
    press("ArrowDown");
    (active() as HTMLButtonElement).click();
    await settle();
    expect(store.state.selectedRoom).toBe("shelter");
    expect(active()).toBe($("#composer"));
    // Back in the list, the tab stop is the open room.
    expect(tabStops("#room-list .room-select")).toEqual([roomButton("shelter")]);
  });

  it("mutes and leaves from the keyboard; focus stays on the row", async () => {
    roomButton("medical").focus();
    const mute = $<HTMLButtonElement>('[data-room="medical"] .mute-button');
    mute.focus();
    mute.click();
    await settle(); // the engine keeps mutes: the row updates when it answers
    expect(active()).toBe($('[data-room="medical"] .mute-button'));
    expect(active()?.getAttribute("aria-pressed")).toBe("true");
    expect(active()?.getAttribute("aria-label")).toBe("Unmute #medical");

    engine.message("medical", "keep me", BEN, "Ben"); // a room with messages stays listed
    $<HTMLButtonElement>('[data-room="medical"] .leave-button').focus();
    $<HTMLButtonElement>('[data-room="medical"] .leave-button').click();
    await settle();
    expect($('[data-room="medical"]').dataset.joined).toBe("false");
    expect(active()).toBe($('[data-room="medical"] .rejoin-button'));
  });

  it("moves focus to the room field when the last focused room disappears", async () => {
    const leave = async (room: string): Promise<void> => {
      roomButton(room).focus();
      $<HTMLButtonElement>(`[data-room="${room}"] .leave-button`).focus();
      $<HTMLButtonElement>(`[data-room="${room}"] .leave-button`).click();
      await settle();
    };
    await leave("medical");
    // The row is gone (no messages): focus goes to the nearest room.
    expect(root.querySelector('[data-room="medical"]')).toBeNull();
    expect(active()).toBe(roomButton("shelter"));
    await leave("shelter");
    await leave("water");
    expect(active()).toBe($("#room-input"));
  });

  it("joins from the room field and goes to the composer; Escape clears the field", async () => {
    const input = $<HTMLInputElement>("#room-input");
    input.focus();
    input.value = "logistics";
    $<HTMLFormElement>("#room-form").requestSubmit();
    await settle();
    expect(store.state.selectedRoom).toBe("logistics");
    expect(active()).toBe($("#composer"));

    input.focus();
    input.value = "typo";
    expect(press("Escape")).toBe(true);
    expect(input.value).toBe("");
    expect(active()).toBe(input);
    press("Escape"); // empty: on to the composer
    expect(active()).toBe($("#composer"));
  });
});

describe("app-wide shortcuts", () => {
  beforeEach(async () => {
    for (const r of ["medical", "shelter"]) engine.joined.add(r);
    await store.start();
    await settle();
  });

  it("Ctrl+K goes to the room field", () => {
    $<HTMLTextAreaElement>("#composer").focus();
    expect(press("k", { ctrlKey: true })).toBe(true);
    expect(active()).toBe($("#room-input"));
  });

  it("Alt+Down / Alt+Up switch rooms, keeping focus in the composer", async () => {
    $<HTMLTextAreaElement>("#composer").focus();
    expect(press("ArrowDown", { altKey: true })).toBe(true);
    await settle();
    expect(store.state.selectedRoom).toBe("shelter");
    expect($("#room-title").textContent).toBe("#shelter");
    expect(active()).toBe($("#composer"));
    press("ArrowDown", { altKey: true }); // wraps around
    await settle();
    expect(store.state.selectedRoom).toBe("medical");
    press("ArrowUp", { altKey: true });
    await settle();
    expect(store.state.selectedRoom).toBe("shelter");
  });

  it("Alt+Down in the room list moves focus along with the open room", async () => {
    roomButton("medical").focus();
    press("ArrowDown", { altKey: true });
    await settle();
    expect(store.state.selectedRoom).toBe("shelter");
    expect(active()).toBe(roomButton("shelter"));
  });

  it("Network and Identity focus their pane heading; Escape goes back to the room", async () => {
    $<HTMLButtonElement>("#network-button").click();
    await settle();
    expect(active()).toBe($("#network-title"));
    expect($("#network-title").tabIndex).toBe(-1);
    expect(press("Escape")).toBe(true);
    await settle();
    expect(store.state.pane).toBe("room");
    expect(active()).toBe($("#composer"));

    $<HTMLButtonElement>("#identity-button").click();
    await settle();
    expect(active()).toBe($("#identity-title"));
    press("Escape");
    await settle();
    expect(store.state.pane).toBe("room");
    expect(store.state.selectedRoom).toBe("medical");
    expect(active()).toBe($("#composer"));
  });

  it("Alt+Down from the network pane returns to the open room and focus follows", async () => {
    $<HTMLButtonElement>("#network-button").click();
    await settle();
    press("ArrowDown", { altKey: true });
    await settle();
    expect(store.state.pane).toBe("room");
    expect(store.state.selectedRoom).toBe("medical");
    expect(active()).toBe($("#composer"));
  });

  it("Enter pressed while the previous message is being stored sends right after it", async () => {
    const composer = $<HTMLTextAreaElement>("#composer");
    composer.focus();
    composer.value = "one";
    press("Enter");
    expect(store.state.pending.send).toBe(true);
    composer.value = "onetwo"; // typed on while "one" was being stored
    press("Enter");
    await settle();
    await settle();
    const sent = engine.calls.filter((c) => c.cmd === "send").map((c) => c.args.body);
    expect(sent).toEqual(["one", "two"]);
    expect(composer.value).toBe("");
    expect(active()).toBe(composer);
  });

  it("the message history is a tab stop (it scrolls with the keyboard)", () => {
    expect($("#message-scroller").tabIndex).toBe(0);
    expect($("#message-scroller").getAttribute("aria-label")).toBe("Messages");
    expect($("#dm-scroller").tabIndex).toBe(0);
  });
});

describe("peers and direct conversations", () => {
  it("peers are one tab stop; Message opens the conversation with focus in the composer", async () => {
    engine.peers = [
      peerView({ id: BEN, name: "Ben", connected: true, hops: 1 }),
      peerView({ id: CHIOMA, name: "Chioma", connected: true, hops: 1 }),
    ];
    await store.start();
    await settle();
    const message = (id: string): HTMLButtonElement => $(`[data-peer-id="${id}"] .message-peer`);
    expect(tabStops("#peer-list button")).toEqual([message(BEN)]);
    expect(message(BEN).getAttribute("aria-label")).toBe("Message Ben");
    message(BEN).focus();
    press("ArrowDown");
    expect(active()).toBe(message(CHIOMA));
    // A peer event redraws the list: focus stays on Chioma.
    await emit(ENGINE_EVENT, { type: "peer", peer: peerView({ id: BEN, name: "Ben", connected: false }) });
    await settle();
    expect(active()).toBe(message(CHIOMA));
    message(CHIOMA).click();
    await settle();
    expect(store.state.pane).toBe("dm");
    expect(store.state.selectedDm).toBe(CHIOMA);
    expect(active()).toBe($("#composer"));
    expect(tabStops("#dm-peer-list .room-select")).toHaveLength(1);
  });
});

describe("error banner", () => {
  beforeEach(async () => {
    engine.joined.add("medical");
    await store.start();
    await settle();
  });

  it("Escape dismisses the focused error; focus goes to the next, then back where it was", () => {
    const composer = $<HTMLTextAreaElement>("#composer");
    composer.focus();
    store.report({ code: "storage", message: "disk full" });
    store.report({ code: "io", message: "cannot write" });
    const dismiss = (): HTMLButtonElement[] => [...root.querySelectorAll<HTMLButtonElement>(".error-dismiss")];
    expect(dismiss()).toHaveLength(2);
    expect(tabStops(".error-dismiss")).toHaveLength(1);
    expect(dismiss()[0]?.getAttribute("aria-label")).toBe("Dismiss error: disk full");
    // Shift+Tab from the composer would reach the banner: focus comes from there.
    dismiss()[0]?.dispatchEvent(new FocusEvent("focusin", { bubbles: true, relatedTarget: composer }));
    dismiss()[0]?.focus();
    expect(press("Escape")).toBe(true);
    expect(store.state.errors.map((e) => e.message)).toEqual(["cannot write"]);
    expect(active()).toBe(dismiss()[0]);
    dismiss()[0]?.click();
    expect($("#error-banner").hidden).toBe(true);
    expect(active()).toBe(composer);
  });
});

describe("name dialog", () => {
  beforeEach(async () => {
    engine.identity.name = null;
    await store.start();
    await settle();
  });

  it("takes focus, makes the app behind it inert and keeps Tab inside", () => {
    expect($("#name-dialog").hidden).toBe(false);
    expect(active()).toBe($("#name-input"));
    expect($("#name-dialog").getAttribute("aria-labelledby")).toBe("name-title");
    expect($(".sidebar").hasAttribute("inert")).toBe(true);
    expect($(".room-pane").hasAttribute("inert")).toBe(true);
    // Shortcuts are off while the dialog is open.
    expect(press("k", { ctrlKey: true })).toBe(false);
    expect(active()).toBe($("#name-input"));

    expect(press("Tab", { shiftKey: true })).toBe(true);
    expect(active()).toBe($("#name-submit"));
    expect(press("Tab")).toBe(true);
    expect(active()).toBe($("#name-input"));
  });

  it("Escape clears the field; an empty name is explained in the dialog", () => {
    const input = $<HTMLInputElement>("#name-input");
    input.value = "Amr";
    expect(press("Escape")).toBe(true);
    expect(input.value).toBe("");
    expect($("#name-dialog").hidden).toBe(false);

    $<HTMLFormElement>("#name-form").requestSubmit();
    expect($("#name-error").hidden).toBe(false);
    expect($("#name-error").textContent).toBe("Please enter a display name.");
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(engine.calls.some((c) => c.cmd === "set_name")).toBe(false);
  });

  it("after the name is set, focus goes to the room field and the app is live again", async () => {
    const input = $<HTMLInputElement>("#name-input");
    input.value = "Amara";
    $<HTMLFormElement>("#name-form").requestSubmit();
    await settle();
    expect($("#name-dialog").hidden).toBe(true);
    expect($(".sidebar").hasAttribute("inert")).toBe(false);
    expect(active()).toBe($("#room-input"));
  });
});

describe("start failure", () => {
  it("the alert takes focus and the app behind it is inert", async () => {
    engine.startError = { code: "busy", message: "another node runs on /data" };
    await store.start();
    await settle();
    expect($("#fatal").getAttribute("role")).toBe("alertdialog");
    expect(active()).toBe($("#fatal .dialog"));
    expect($(".sidebar").hasAttribute("inert")).toBe(true);
    expect(press("k", { ctrlKey: true })).toBe(false);
  });
});
