// The dialogs of private rooms: "New private room" (asks for a name), "Join with invite" (a
// code, or an invite file's text) and the invite of a room (code, copy, QR image, invite
// file). Errors show in the dialog, which keeps what the user typed.

import { MAX_ROOM_BYTES } from "../bindings/limits";
import { modal } from "../lib/dialog";
import { h, setChildren } from "../lib/dom";
import { copyText, INVITE_WARNING, qrImage, readInviteFile, roomLabel } from "../lib/invite";
import { focusComposer } from "../lib/keyboard";
import { visibleText } from "../lib/text";
import type { AppState, Store } from "../store";

/** Opens the dialogs started from the sidebar. */
export interface PrivateRoomDialogs {
  /** Opens "New private room"; focus comes back to `returnTo` when it closes. */
  newPrivateRoom(returnTo?: HTMLElement): void;
  /** Opens "Join with invite"; focus comes back to `returnTo` when it closes. */
  joinWithInvite(returnTo?: HTMLElement): void;
  stop(): void;
}

/** An error line under a field: shown with text, hidden (and the field valid) without. */
function problemLine(id: string, field: HTMLElement): (text: string) => void {
  const line = h("p", { id, class: "error-text", role: "alert", hidden: true });
  field.after(line);
  return (text) => {
    line.textContent = text;
    line.hidden = text === "";
    if (text === "") field.removeAttribute("aria-invalid");
    else field.setAttribute("aria-invalid", "true");
  };
}

export function mountPrivateRooms(root: HTMLElement, store: Store): PrivateRoomDialogs {
  const stops: (() => void)[] = [];

  // ------------------------------------------------------------ new private room

  const nameInput = h("input", {
    id: "private-room-name",
    type: "text",
    maxlength: MAX_ROOM_BYTES,
    autocomplete: "off",
    placeholder: "e.g. medical",
    "aria-describedby": "new-private-help",
  });
  const create = h("button", { id: "create-private-room", type: "submit", class: "primary" }, "Create");
  const cancelNew = h("button", { id: "cancel-private-room", type: "button" }, "Cancel");
  const newForm = h(
    "form",
    { class: "dialog", id: "new-private-form" },
    h("h1", { id: "new-private-title" }, "New private room"),
    h(
      "p",
      { id: "new-private-help" },
      "Only people you invite can read it: messages are end-to-end encrypted, and laptops that " +
        "carry them for others see neither the room's name nor what is written.",
    ),
    h("label", { for: "private-room-name" }, "Room name"),
    nameInput,
    h("div", { class: "dialog-actions" }, cancelNew, create),
  );
  const showNewProblem = problemLine("private-room-error", nameInput);
  const newDialog = modal(root, newForm, {
    id: "new-private-dialog",
    labelledBy: "new-private-title",
    describedBy: "new-private-help",
    onDismiss: () => newDialog.close(),
  });
  stops.push(() => newDialog.stop());
  cancelNew.addEventListener("click", () => newDialog.close());
  nameInput.addEventListener("input", () => showNewProblem(""));
  newForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.createPrivateRoom(nameInput.value).then((error) => {
      if (error) {
        showNewProblem(error.message);
        nameInput.focus();
        return;
      }
      nameInput.value = "";
      newDialog.close(); // the room's invite dialog is open now
    });
  });

  // ------------------------------------------------------------ join with an invite

  const inviteText = h("textarea", {
    id: "invite-input",
    rows: 5,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "DNI1-…",
    "aria-describedby": "join-invite-help",
  });
  const fileInput = h("input", { id: "invite-file-input", type: "file", hidden: true, tabindex: -1 });
  const openFile = h("button", { id: "open-invite-file", type: "button" }, "Open invite file…");
  const join = h("button", { id: "join-invite", type: "submit", class: "primary" }, "Join");
  const cancelJoin = h("button", { id: "cancel-join-invite", type: "button" }, "Cancel");
  const joinForm = h(
    "form",
    { class: "dialog", id: "join-invite-form" },
    h("h1", { id: "join-invite-title" }, "Join a private room"),
    h(
      "p",
      { id: "join-invite-help" },
      "Paste the invite code you were given (it starts with DNI1-), or open the invite file. " +
        "A mistyped character is caught: you can correct it here.",
    ),
    h("label", { for: "invite-input" }, "Invite code"),
    inviteText,
    h("div", { class: "dialog-row" }, openFile, fileInput),
    h("div", { class: "dialog-actions" }, cancelJoin, join),
  );
  const showJoinProblem = problemLine("invite-error", inviteText);
  const joinDialog = modal(root, joinForm, {
    id: "join-invite-dialog",
    labelledBy: "join-invite-title",
    describedBy: "join-invite-help",
    onDismiss: () => joinDialog.close(),
  });
  stops.push(() => joinDialog.stop());
  cancelJoin.addEventListener("click", () => joinDialog.close());
  inviteText.addEventListener("input", () => showJoinProblem(""));
  // Enter joins (a code is one line); Shift+Enter adds a line to pasted file text.
  inviteText.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      joinForm.requestSubmit();
    }
  });
  joinForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.joinInvite(inviteText.value).then((error) => {
      if (error) {
        showJoinProblem(error.message);
        inviteText.focus();
        return;
      }
      inviteText.value = "";
      joinDialog.close();
      focusComposer();
    });
  });
  // The webview's own file chooser: the file is read here, its text goes to the engine.
  openFile.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    const file = fileInput.files?.[0];
    fileInput.value = "";
    if (!file) return;
    readInviteFile(file).then(
      (text) => {
        inviteText.value = text.trim();
        showJoinProblem("");
        inviteText.focus();
      },
      (raw: unknown) => showJoinProblem(raw instanceof Error ? raw.message : String(raw)),
    );
  });

  const render = (state: AppState): void => {
    create.disabled = state.pending.privateRoom;
    join.disabled = state.pending.joinInvite;
  };

  // ------------------------------------------------------------ a room's invite

  const inviteTitle = h("h1", { id: "invite-title" });
  const codeField = h("input", {
    id: "invite-code",
    type: "text",
    readonly: true,
    spellcheck: "false",
    "aria-label": "Invite code",
  });
  const copy = h("button", { id: "copy-invite", type: "button", class: "primary" }, "Copy");
  const copied = h("p", { id: "invite-copy-status", class: "muted", role: "status" });
  const qr = h("figure", { id: "invite-qr", class: "invite-qr", role: "img", "aria-label": "QR code of the invite code" });
  const epoch = h("p", { id: "invite-epoch", class: "muted" });
  const save = h("button", { id: "save-invite", type: "button" }, "Save invite file…");
  const saved = h("p", { id: "invite-saved", class: "result", role: "status" });
  const inviteProblem = h("p", { id: "invite-dialog-error", class: "error-text", role: "alert" });
  const closeInvite = h("button", { id: "close-invite", type: "button" }, "Close");
  const inviteBox = h(
    "div",
    { class: "dialog wide", id: "invite-box" },
    inviteTitle,
    h("p", { id: "invite-warning", class: "warning", role: "note" }, INVITE_WARNING),
    h("label", { for: "invite-code" }, "Invite code"),
    h("div", { class: "code-row" }, codeField, copy),
    copied,
    qr,
    epoch,
    h("div", { class: "dialog-row" }, save),
    saved,
    inviteProblem,
    h("div", { class: "dialog-actions" }, closeInvite),
  );
  const inviteDialog = modal(root, inviteBox, {
    id: "invite-dialog",
    labelledBy: "invite-title",
    describedBy: "invite-warning",
    onDismiss: () => store.closeInvite(),
  });
  stops.push(() => inviteDialog.stop());
  closeInvite.addEventListener("click", () => store.closeInvite());
  save.addEventListener("click", () => void store.saveInviteFile());
  codeField.addEventListener("focus", () => codeField.select());
  copy.addEventListener("click", () => {
    const code = codeField.value;
    if (code === "") return;
    void copyText(code).then((ok) => {
      if (ok) {
        copied.textContent = "Copied to the clipboard.";
      } else {
        // No clipboard here: the code is selected for Ctrl+C.
        codeField.focus();
        codeField.select();
        copied.textContent = "Selected: press Ctrl+C to copy it.";
      }
    });
  });

  let shownQr: string | null = null;
  const renderInvite = (state: AppState): void => {
    const s = state.invite;
    if (s === null) {
      inviteDialog.close();
      shownQr = null;
      return;
    }
    const room = state.rooms.find((r) => r.name === s.room);
    const title = s.invite?.title ?? room?.title ?? "";
    inviteTitle.textContent = `Invite to ${room ? roomLabel(room) : visibleText(title)}`;
    const code = s.invite?.code ?? "";
    if (codeField.value !== code) {
      codeField.value = code;
      copied.textContent = "";
    }
    codeField.placeholder = s.loading ? "Making the invite…" : "";
    copy.disabled = code === "";
    save.disabled = s.saving || s.invite === null;
    const svg = s.invite?.qr_svg ?? null;
    if (svg !== shownQr) {
      shownQr = svg;
      const image = svg === null ? null : qrImage(svg);
      setChildren(qr, image ?? (svg === null ? null : h("span", { class: "muted" }, "The QR image could not be shown.")));
    }
    qr.hidden = svg === null;
    epoch.textContent = s.invite
      ? `Opens the room's current key (epoch ${s.invite.epoch}). After a member is removed, give out a new invite.`
      : "";
    saved.textContent = s.savedTo ? `Invite saved to ${s.savedTo}. Keep the file as safe as the code.` : "";
    inviteProblem.textContent = s.error ?? "";
    inviteProblem.hidden = s.error === null;
    if (!inviteDialog.isOpen) inviteDialog.open(codeField);
  };

  render(store.state);
  renderInvite(store.state);
  stops.push(
    store.subscribe((state, previous) => {
      if (state.pending !== previous.pending) render(state);
      if (state.invite !== previous.invite || (state.invite !== null && state.rooms !== previous.rooms)) {
        renderInvite(state);
      }
    }),
  );

  return {
    newPrivateRoom(returnTo) {
      showNewProblem("");
      newDialog.open(nameInput, returnTo);
    },
    joinWithInvite(returnTo) {
      showJoinProblem("");
      joinDialog.open(inviteText, returnTo);
    },
    stop() {
      for (const stop of stops) stop();
    },
  };
}
