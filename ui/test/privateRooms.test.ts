// Private rooms in the app: the sidebar's lock mark and labels, the room header, "New private
// room", the invite dialog (code, copy, QR image, invite file), "Join with invite" (typo kept in
// the dialog, invite files), the members panel (remove after confirming, make admin), notices,
// `room_changed`, and notifications naming private rooms by their title.

import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { EngineEvent } from "../src/bindings/EngineEvent";
import { MAX_BODY_BYTES, MAX_PRIVATE_TEXT_BYTES } from "../src/bindings/limits";
import { ENGINE_EVENT, tauriBackend } from "../src/ipc";
import {
  INVITE_WARNING,
  inviteFileName,
  MAX_INVITE_FILE_BYTES,
  qrImage,
  roomLabel,
  waitingText,
} from "../src/lib/invite";
import { type NotificationSpec, Notifier } from "../src/lib/notify";
import { composeTarget, Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { removeQuestion } from "../src/views/privateRoom";
import { FakeEngine, INVITE_TYPO, SELF_ID, settle } from "./fakeEngine";

const BO = "b0".repeat(32);
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
const calls = (cmd: string): Record<string, unknown>[] => engine.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
const active = (): Element | null => document.activeElement;

function type(el: HTMLInputElement | HTMLTextAreaElement, text: string): void {
  el.value = text;
  el.dispatchEvent(new Event("input", { bubbles: true }));
}

function press(key: string, el: Element | null = document.activeElement, mods: KeyboardEventInit = {}): boolean {
  const e = new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true, ...mods });
  (el ?? document.body).dispatchEvent(e);
  return e.defaultPrevented;
}

/** Clicks the member row's button matching `sel`. */
function memberButton(id: string, sel: string): HTMLButtonElement {
  return $<HTMLButtonElement>(`#member-list [data-member="${id}"] ${sel}`);
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
  vi.unstubAllGlobals();
});

describe("pure helpers", () => {
  it("names rooms: #name for open rooms, the title (made visible) for private ones", () => {
    expect(roomLabel({ name: "medical", title: "medical", private: false })).toBe("#medical");
    expect(roomLabel({ name: `p.${"1".repeat(32)}`, title: "medical", private: true })).toBe("medical");
    expect(roomLabel({ name: "p.x", title: "evil\u202etxt", private: true })).toBe("evil\\u{202e}txt");
  });

  it("counts messages waiting for the key, nothing when none", () => {
    expect(waitingText(0)).toBeNull();
    expect(waitingText(1)).toBe("1 message waiting for the room key");
    expect(waitingText(3)).toBe("3 messages waiting for the room key");
  });

  it("suggests a safe invite file name", () => {
    expect(inviteFileName("medical")).toBe("medical.invite");
    expect(inviteFileName("Médical / triage")).toBe("Medical-triage.invite");
    expect(inviteFileName("../..")).toBe("room.invite");
    expect(inviteFileName(".hidden")).toBe("hidden.invite");
  });

  it("keeps only drawing elements and attributes of the QR image", () => {
    const svg = qrImage(
      `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 4 4" onload="alert(1)">` +
        `<script>alert(2)</script><rect width="4" height="4" fill="#fff" onclick="alert(3)"/>` +
        `<path d="M0 0h1v1H0z" fill="url(https://evil.example/x)"/>` +
        `<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>` +
        `<a xlink:href="https://evil.example"><rect width="1" height="1"/></a><image href="https://evil.example/i.png"/></svg>`,
    );
    expect(svg).not.toBeNull();
    expect(svg?.namespaceURI).toBe("http://www.w3.org/2000/svg");
    expect(svg?.getAttribute("viewBox")).toBe("0 0 4 4");
    expect(svg?.outerHTML).not.toMatch(/script|onload|onclick|alert|foreignObject|evil|href|image|<a/);
    expect([...(svg?.children ?? [])].map((c) => c.localName)).toEqual(["rect", "path"]);
    expect(svg?.querySelector("path")?.hasAttribute("fill")).toBe(false);
    expect(svg?.querySelector("path")?.getAttribute("d")).toBe("M0 0h1v1H0z");
  });

  it("refuses what is not an SVG document", () => {
    expect(qrImage("<html><body>hi</body></html>")).toBeNull();
    expect(qrImage("not xml at all <")).toBeNull();
    expect(qrImage(`<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>`)).toBeNull();
  });
});

describe("sidebar and header", () => {
  it("marks private rooms with a lock and their title; open rooms are unchanged", async () => {
    engine.joined.add("water");
    const id = engine.addPrivateRoom("medical");
    engine.message(id, "patient list", SELF_ID, "Amara");
    await store.start();
    const row = $(`.room[data-room="${id}"]`);
    expect(row.dataset.private).toBe("true");
    expect(row.querySelector(".room-lock svg.lock-icon")).not.toBeNull();
    expect(row.querySelector(".room-name")?.textContent).toBe("medical");
    expect(row.querySelector(".room-select")?.getAttribute("aria-label")).toBe("private room medical, 1 message");
    expect(row.querySelector(".leave-button")?.getAttribute("aria-label")).toBe("Leave private room medical");
    // The opaque id is never shown.
    expect(row.textContent).not.toContain("p.");
    const open = $('.room[data-room="water"]');
    expect(open.dataset.private).toBe("false");
    expect(open.querySelector(".room-hash")?.textContent).toBe("#");
    expect(open.querySelector(".room-select")?.getAttribute("aria-label")).toBe("#water, 0 messages");
  });

  it("says in the header that the room is private, and how many messages wait for the key", async () => {
    const id = engine.addPrivateRoom("medical");
    engine.privateRooms.get(id)!.waiting = 3;
    await store.start();
    await store.selectRoom(id);
    await settle();
    expect($("#room-title").textContent).toBe(" medical");
    expect($("#room-title svg")?.getAttribute("aria-label")).toBe("Private room");
    expect($("#room-subtitle").textContent).toBe("Private room · end-to-end encrypted, members only · 0 messages stored");
    expect($("#room-waiting").hidden).toBe(false);
    expect($("#room-waiting").textContent).toBe("3 messages waiting for the room key");
    expect(composeTarget(store.state).placeholder).toBe("Message medical");
    // The text of a private room is smaller than a body: its sealed envelope must fit one.
    expect(composeTarget(store.state).limit).toBe(MAX_PRIVATE_TEXT_BYTES);
    expect(MAX_PRIVATE_TEXT_BYTES).toBeLessThan(MAX_BODY_BYTES);
    expect($("#invite-button").hidden).toBe(false);
    expect($(".room-tools").hidden).toBe(false);

    // The key arrives: room_changed carries the room, and its messages are reloaded.
    engine.privateRooms.get(id)!.waiting = 0;
    engine.message(id, "was waiting", BO, "Bo");
    await emit(ENGINE_EVENT, { type: "room_changed", room: engine.room(id) } satisfies EngineEvent);
    await settle();
    expect($("#room-waiting").hidden).toBe(true);
    expect([...root.querySelectorAll(".message .body")].map((b) => b.textContent)).toEqual(["was waiting"]);
  });

  it("open rooms show no private controls", async () => {
    engine.joined.add("water");
    await store.start();
    expect($("#room-title").textContent).toBe("#water");
    expect($(".room-tools").hidden).toBe(true);
    expect($("#members-panel").hidden).toBe(true);
    expect($("#room-waiting").hidden).toBe(true);
  });
});

describe("new private room", () => {
  it("asks for a name, creates the room, selects it and opens its invite", async () => {
    await store.start();
    $<HTMLButtonElement>("#new-private-room").click();
    await settle();
    expect($("#new-private-dialog").hidden).toBe(false);
    expect(active()).toBe($("#private-room-name"));
    expect($(".sidebar").hasAttribute("inert")).toBe(true);

    // Empty: explained in the dialog, the engine is not asked.
    $<HTMLFormElement>("#new-private-form").requestSubmit();
    await settle();
    expect($("#private-room-error").textContent).toBe("Please enter a name for the private room.");
    expect($("#private-room-name").getAttribute("aria-invalid")).toBe("true");
    expect(calls("create_private_room")).toEqual([]);

    type($<HTMLInputElement>("#private-room-name"), "medical");
    expect($("#private-room-error").hidden).toBe(true);
    $<HTMLFormElement>("#new-private-form").requestSubmit();
    await settle();
    expect(calls("create_private_room")).toEqual([{ title: "medical" }]);
    const id = store.state.selectedRoom ?? "";
    expect(id).toMatch(/^p\.[0-9a-f]{32}$/);
    expect($("#new-private-dialog").hidden).toBe(true);
    expect($("#invite-dialog").hidden).toBe(false);
    expect($(".sidebar").hasAttribute("inert")).toBe(true);
    expect($<HTMLInputElement>("#invite-code").value).toBe(engine.inviteCode(id));
    expect(active()).toBe($("#invite-code"));
    // The creation notice is a centred line, not a message.
    expect($('[data-testid="notice"]').textContent).toContain("Amara created the room");
    expect(root.querySelectorAll(".message")).toHaveLength(0);

    $<HTMLButtonElement>("#close-invite").click();
    await settle();
    expect($("#invite-dialog").hidden).toBe(true);
    expect($(".sidebar").hasAttribute("inert")).toBe(false);
    expect(store.state.invite).toBeNull();
    expect(active()).toBe($("#composer"));
  });

  it("shows the engine's refusal in the dialog and keeps the name; Escape cancels", async () => {
    await store.start();
    $<HTMLButtonElement>("#new-private-room").click();
    type($<HTMLInputElement>("#private-room-name"), "   ");
    $<HTMLFormElement>("#new-private-form").requestSubmit();
    await settle();
    expect($("#private-room-error").hidden).toBe(false);
    expect($("#new-private-dialog").hidden).toBe(false);
    type($<HTMLInputElement>("#private-room-name"), "medical");
    engine.startError = { code: "storage", message: "disk full" };
    $<HTMLFormElement>("#new-private-form").requestSubmit();
    await settle();
    engine.startError = null;
    expect($("#private-room-error").textContent).toBe("disk full");
    expect($<HTMLInputElement>("#private-room-name").value).toBe("medical");
    expect(store.state.errors).toEqual([]);
    expect(press("Escape", $("#private-room-name"))).toBe(true);
    expect($("#new-private-dialog").hidden).toBe(true);
    expect(active()).toBe($("#new-private-room"));
  });
});

describe("invite dialog", () => {
  let id: string;
  beforeEach(async () => {
    id = engine.addPrivateRoom("medical", { [BO]: "Bo" });
    await store.start();
    await store.selectRoom(id);
    $<HTMLButtonElement>("#invite-button").click();
    await settle();
  });

  it("shows the code read-only, the warning and the QR image", () => {
    expect($("#invite-dialog").hidden).toBe(false);
    expect($("#invite-title").textContent).toBe("Invite to medical");
    expect($("#invite-warning").textContent).toBe(INVITE_WARNING);
    expect(INVITE_WARNING).toBe("Anyone with this code can read and write this room. Share it only with people who should.");
    const code = $<HTMLInputElement>("#invite-code");
    expect(code.readOnly).toBe(true);
    expect(code.value).toBe(engine.inviteCode(id));
    const svg = $("#invite-qr svg");
    expect(svg.namespaceURI).toBe("http://www.w3.org/2000/svg");
    expect(svg.querySelector("rect")).not.toBeNull();
    expect($("#invite-epoch").textContent).toContain("epoch 1");
    expect(calls("room_invite")).toEqual([{ room: id, path: null }]);
  });

  it("copies the code to the clipboard", async () => {
    const writeText = vi.fn(() => Promise.resolve());
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText } });
    $<HTMLButtonElement>("#copy-invite").click();
    await settle();
    expect(writeText).toHaveBeenCalledWith(engine.inviteCode(id));
    expect($("#invite-copy-status").textContent).toBe("Copied to the clipboard.");
  });

  it("selects the code when the clipboard cannot be written", async () => {
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText: () => Promise.reject(new Error("denied")) } });
    $<HTMLButtonElement>("#copy-invite").click();
    await settle();
    const code = $<HTMLInputElement>("#invite-code");
    expect(active()).toBe(code);
    expect([code.selectionStart, code.selectionEnd]).toEqual([0, code.value.length]);
    expect($("#invite-copy-status").textContent).toBe("Selected: press Ctrl+C to copy it.");
  });

  it("saves the invite file where the native dialog says", async () => {
    engine.savePath = "/home/ana/medical.invite";
    $<HTMLButtonElement>("#save-invite").click();
    await settle();
    expect(calls("plugin:dialog|save")).toEqual([
      {
        options: {
          defaultPath: "medical.invite",
          filters: [{ name: "DisasterNet room invite", extensions: ["invite"] }],
        },
      },
    ]);
    expect(calls("room_invite").at(-1)).toEqual({ room: id, path: "/home/ana/medical.invite" });
    expect(engine.written.get("/home/ana/medical.invite")).toContain(`\n${engine.inviteCode(id)}\n`);
    expect($("#invite-saved").textContent).toBe(
      "Invite saved to /home/ana/medical.invite. Keep the file as safe as the code.",
    );
  });

  it("writes nothing when the save dialog is cancelled; a write error shows in the dialog", async () => {
    engine.savePath = null;
    $<HTMLButtonElement>("#save-invite").click();
    await settle();
    expect(calls("room_invite")).toHaveLength(1);
    expect($("#invite-saved").textContent).toBe("");
    engine.savePath = "/readonly/x.invite";
    $<HTMLButtonElement>("#save-invite").click();
    await settle();
    expect($("#invite-dialog-error").hidden).toBe(false);
    expect($("#invite-dialog-error").textContent).toBe("/readonly/x.invite: read-only file system");
    expect($<HTMLButtonElement>("#save-invite").disabled).toBe(false);
  });

  it("keeps Tab inside, Escape closes it and focus goes back to the Invite button", async () => {
    expect($(".room-pane").hasAttribute("inert")).toBe(true);
    // Shortcuts are off while it is open.
    expect(press("k", active(), { ctrlKey: true })).toBe(false);
    $<HTMLButtonElement>("#close-invite").focus();
    expect(press("Tab")).toBe(true);
    expect(active()).toBe($("#invite-code"));
    expect(press("Escape")).toBe(true);
    await settle();
    expect($("#invite-dialog").hidden).toBe(true);
    expect(active()).toBe($("#invite-button"));
  });

  it("follows a key change while open (a removal makes a new invite)", async () => {
    const before = $<HTMLInputElement>("#invite-code").value;
    await store.removeMember(id, BO);
    await emit(ENGINE_EVENT, { type: "room_changed", room: engine.room(id) } satisfies EngineEvent);
    await settle();
    expect($<HTMLInputElement>("#invite-code").value).toBe(engine.inviteCode(id));
    expect($<HTMLInputElement>("#invite-code").value).not.toBe(before);
    expect($("#invite-epoch").textContent).toContain("epoch 2");
  });
});

describe("join with invite", () => {
  let id: string;
  beforeEach(async () => {
    // A room this node has an invite for but has not joined yet.
    id = engine.addPrivateRoom("medical", { [CHIOMA]: "Chioma" }, false);
    engine.joined.delete(id);
    engine.privateRooms.get(id)!.members.delete(SELF_ID);
    await store.start();
    $<HTMLButtonElement>("#join-invite-button").click();
    await settle();
  });

  it("joins with the code and selects the room", async () => {
    expect($("#join-invite-dialog").hidden).toBe(false);
    expect(active()).toBe($("#invite-input"));
    type($<HTMLTextAreaElement>("#invite-input"), `  ${engine.inviteCode(id)}\n`);
    // Enter joins.
    expect(press("Enter")).toBe(true);
    await settle();
    expect(calls("join_invite")).toEqual([{ invite: engine.inviteCode(id) }]);
    expect($("#join-invite-dialog").hidden).toBe(true);
    expect(store.state.selectedRoom).toBe(id);
    expect($(`.room[data-room="${id}"] .room-name`).textContent).toBe("medical");
    expect(active()).toBe($("#composer"));
  });

  it("a code with one wrong character: the engine's message in the dialog, the text kept", async () => {
    const code = engine.inviteCode(id);
    const typo = `${code.slice(0, 7)}${code[7] === "X" ? "Y" : "X"}${code.slice(8)}`;
    type($<HTMLTextAreaElement>("#invite-input"), typo);
    $<HTMLFormElement>("#join-invite-form").requestSubmit();
    await settle();
    expect($("#join-invite-dialog").hidden).toBe(false);
    expect($("#invite-error").hidden).toBe(false);
    expect($("#invite-error").textContent).toBe(INVITE_TYPO);
    expect($<HTMLTextAreaElement>("#invite-input").value).toBe(typo);
    expect($("#invite-input").getAttribute("aria-invalid")).toBe("true");
    expect(active()).toBe($("#invite-input"));
    expect(store.state.errors).toEqual([]);
    expect(store.state.selectedRoom).toBeNull();
    // Corrected, it joins.
    type($<HTMLTextAreaElement>("#invite-input"), code);
    expect($("#invite-error").hidden).toBe(true);
    $<HTMLFormElement>("#join-invite-form").requestSubmit();
    await settle();
    expect($("#join-invite-dialog").hidden).toBe(true);
    expect(store.state.selectedRoom).toBe(id);
  });

  it("an empty field is explained without asking the engine; Cancel closes", async () => {
    $<HTMLFormElement>("#join-invite-form").requestSubmit();
    await settle();
    expect($("#invite-error").textContent).toBe("Paste the invite code you were given first.");
    expect(calls("join_invite")).toEqual([]);
    $<HTMLButtonElement>("#cancel-join-invite").click();
    expect($("#join-invite-dialog").hidden).toBe(true);
    expect(active()).toBe($("#join-invite-button"));
  });

  it("reads a chosen invite file into the field; a file too large to be one is refused", async () => {
    const input = $<HTMLInputElement>("#invite-file-input");
    const choose = (file: File): void => {
      Object.defineProperty(input, "files", { value: [file], configurable: true });
      input.dispatchEvent(new Event("change"));
    };
    const fileText = `# DisasterNet invite to the private room "medical".\n${engine.inviteCode(id)}\n`;
    choose(new File([fileText], "medical.invite"));
    await settle();
    expect($<HTMLTextAreaElement>("#invite-input").value).toBe(fileText.trim());
    // The file's text goes to the engine as is (it skips the comment lines).
    $<HTMLFormElement>("#join-invite-form").requestSubmit();
    await settle();
    expect(calls("join_invite")).toEqual([{ invite: fileText.trim() }]);
    expect(store.state.selectedRoom).toBe(id);
    $<HTMLButtonElement>("#join-invite-button").click();
    choose(new File(["x".repeat(MAX_INVITE_FILE_BYTES + 1)], "movie.mkv"));
    await settle();
    expect($("#invite-error").textContent).toBe(
      `That file is ${(MAX_INVITE_FILE_BYTES + 1).toLocaleString("en-US")} bytes: too large to be an invite (an invite is a few hundred bytes).`,
    );
    expect($<HTMLTextAreaElement>("#invite-input").value).toBe("");
  });
});

describe("members panel", () => {
  it("lists members; an admin removes one after confirming, and the notice shows", async () => {
    const id = engine.addPrivateRoom("medical", { [BO]: "Bo", [CHIOMA]: "Chioma" });
    engine.message(id, "before", BO, "Bo");
    await store.start();
    await store.selectRoom(id);
    $<HTMLButtonElement>("#members-button").click();
    await settle();
    expect($("#members-panel").hidden).toBe(false);
    expect($("#members-button").getAttribute("aria-expanded")).toBe("true");
    expect($("#members-title").textContent).toBe("Members (3)");
    const row = (m: string): HTMLElement => $(`#member-list [data-member="${m}"]`);
    expect(row(SELF_ID).querySelector(".member-name")?.textContent).toBe("Amara");
    expect([...row(SELF_ID).querySelectorAll(".tag")].map((t) => t.textContent)).toEqual(["creator", "admin", "you"]);
    expect(row(SELF_ID).querySelector(".remove-member")).toBeNull();
    expect(row(BO).querySelector(".fingerprint")?.textContent).toBe("b0b0-b0b0-b0b0-b0b0");

    memberButton(BO, ".remove-member").click();
    expect(row(BO).querySelector(".remove-confirm")?.textContent).toContain(removeQuestion("Bo"));
    expect(removeQuestion("Bo")).toBe("Remove Bo? They keep what they already have but will not read anything new.");
    expect(active()).toBe(memberButton(BO, ".remove-no"));
    // Cancel, then again with Escape: nothing removed.
    memberButton(BO, ".remove-no").click();
    expect(active()).toBe(memberButton(BO, ".remove-member"));
    memberButton(BO, ".remove-member").click();
    expect(press("Escape")).toBe(true);
    expect(row(BO).querySelector(".remove-confirm")).toBeNull();
    expect(calls("remove_member")).toEqual([]);

    memberButton(BO, ".remove-member").click();
    memberButton(BO, ".remove-yes").click();
    await settle();
    expect(calls("remove_member")).toEqual([{ room: id, member: BO }]);
    expect(root.querySelector(`#member-list [data-member="${BO}"]`)).toBeNull();
    expect($("#members-title").textContent).toBe("Members (2)");
    const notice = $('[data-testid="notice"][data-kind="remove"]');
    expect(notice.textContent).toContain("Amara removed Bo");
    expect(notice.classList.contains("message")).toBe(false);
    expect(active()).toBe($("#members-button"));
  });

  it("an admin makes another member an admin", async () => {
    const id = engine.addPrivateRoom("medical", { [BO]: "Bo" });
    await store.start();
    await store.selectRoom(id);
    $<HTMLButtonElement>("#members-button").click();
    await settle();
    memberButton(BO, ".promote-member").click();
    await settle();
    expect(calls("promote_member")).toEqual([{ room: id, member: BO }]);
    const tags = [...$(`#member-list [data-member="${BO}"]`).querySelectorAll(".tag")].map((t) => t.textContent);
    expect(tags).toContain("admin");
    expect(root.querySelector(`#member-list [data-member="${BO}"] .promote-member`)).toBeNull();
    expect($('[data-testid="notice"][data-kind="promote"]').textContent).toContain("made Bo an admin");
  });

  it("a member who is not an admin sees the list without Remove or Make admin", async () => {
    const id = engine.addPrivateRoom("medical", { [BO]: "Bo" }, false);
    await store.start();
    await store.selectRoom(id);
    $<HTMLButtonElement>("#members-button").click();
    await settle();
    expect(root.querySelectorAll("#member-list .member")).toHaveLength(2);
    expect(root.querySelector("#member-list .remove-member, #member-list .promote-member")).toBeNull();
    expect($("#members-note").textContent).toContain("Only admins can remove members.");
  });

  it("reloads on room_changed, and closes when another room is shown", async () => {
    engine.joined.add("water");
    const id = engine.addPrivateRoom("medical");
    await store.start();
    await store.selectRoom(id);
    $<HTMLButtonElement>("#members-button").click();
    await settle();
    expect(root.querySelectorAll("#member-list .member")).toHaveLength(1);
    engine.privateRooms.get(id)!.members.set(BO, { name: "Bo", admin: false, creator: false });
    engine.message(id, "joined the room", BO, "Bo", { kind: "join" });
    await emit(ENGINE_EVENT, { type: "room_changed", room: engine.room(id) } satisfies EngineEvent);
    await settle();
    expect(root.querySelectorAll("#member-list .member")).toHaveLength(2);
    expect($('[data-testid="notice"][data-kind="join"]').textContent).toContain("Bo joined the room");
    await store.selectRoom("water");
    await settle();
    expect($("#members-panel").hidden).toBe(true);
    await store.selectRoom(id);
    await settle();
    expect($("#members-panel").hidden).toBe(true);
    expect($("#members-button").textContent).toBe("Members");
  });

  it("an engine refusal goes to the banner", async () => {
    const id = engine.addPrivateRoom("medical", { [BO]: "Bo" });
    await store.start();
    await store.selectRoom(id);
    engine.privateRooms.get(id)!.admin = false; // demoted meanwhile
    expect(await store.removeMember(id, BO)).toBe(false);
    expect(store.state.errors.map((e) => e.message)).toEqual(["only an admin of the room can change its members"]);
  });
});

describe("notifications", () => {
  it("name a private room by its title, never by its id", () => {
    vi.useFakeTimers();
    try {
      const shown: NotificationSpec[] = [];
      const notifier = new Notifier({
        show: (s) => shown.push(s),
        selfId: () => SELF_ID,
        muted: { has: () => false },
        roomName: (room) => (room === "p.1" ? "private room medical" : null),
      });
      notifier.setFocused(false);
      const m = engine.message("p.1", "Bed 4 needs insulin", BO, "Bo");
      notifier.onEvent({ type: "message", message: m });
      notifier.onEvent({ type: "message", message: engine.message("water", "pump ok", BO, "Bo") });
      vi.runAllTimers();
      expect(shown.map((s) => s.body)).toEqual([
        "Bo in private room medical: Bed 4 needs insulin",
        "Bo in #water: pump ok",
      ]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("removed from a private room", () => {
  it("says so, stops writing there and no longer counts messages as waiting", async () => {
    const id = engine.addPrivateRoom("medical", { [BO]: "Bo" }, false);
    engine.privateRooms.get(id)!.waiting = 2;
    engine.message(id, "before", BO, "Bo");
    await store.start();
    await store.selectRoom(id);
    await settle();
    expect($<HTMLTextAreaElement>("#composer").disabled).toBe(false);
    expect($("#room-waiting").hidden).toBe(false);
    expect($("#room-removed").hidden).toBe(true);

    // Bo (the admin) removes this node: the notice arrives as a message.
    const notice = engine.message(id, "removed Amara", BO, "Bo", { kind: "remove", subject: SELF_ID });
    await emit(ENGINE_EVENT, { type: "message", message: notice } satisfies EngineEvent);
    await settle();
    expect($("#room-removed").hidden).toBe(false);
    expect($("#room-removed").textContent).toBe(
      "Bo removed you from this room: you keep what you already have and read nothing written after.",
    );
    expect($("#room-waiting").hidden).toBe(true);
    expect($<HTMLTextAreaElement>("#composer").disabled).toBe(true);
    expect($<HTMLTextAreaElement>("#composer").placeholder).toBe("You were removed from medical");
    expect($("#invite-button").hidden).toBe(true);
    expect($('[data-testid="notice"][data-kind="remove"]').textContent).toContain("Bo removed Amara");

    // Invited again: its own join notice after the removal opens the room again.
    const join = engine.message(id, "joined the room", SELF_ID, "Amara", { kind: "join" });
    await emit(ENGINE_EVENT, { type: "message", message: join } satisfies EngineEvent);
    await settle();
    expect($("#room-removed").hidden).toBe(true);
    expect($<HTMLTextAreaElement>("#composer").disabled).toBe(false);
  });

  it("someone else's removal changes nothing for this node", async () => {
    const id = engine.addPrivateRoom("medical", { [BO]: "Bo", [CHIOMA]: "Chioma" });
    await store.start();
    await store.selectRoom(id);
    await store.removeMember(id, CHIOMA);
    await settle();
    expect($("#room-removed").hidden).toBe(true);
    expect($<HTMLTextAreaElement>("#composer").disabled).toBe(false);
  });
});
