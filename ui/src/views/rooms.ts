// Sidebar: join or create a room by name, create a private room or join one with an invite,
// pick a room, mute its notifications, leave it. Private rooms show their title with a lock.

import { MAX_ROOM_BYTES } from "../bindings/limits";
import { h } from "../lib/dom";
import { lockIcon } from "../lib/icons";
import { roomLabel, roomSpoken } from "../lib/invite";
import { focusComposer, focusRoomInput, renderKeyed, rovingList } from "../lib/keyboard";
import type { RoomView } from "../bindings/RoomView";
import type { AppState, Store } from "../store";

/** The private-room dialogs the sidebar opens. */
export interface RoomDialogs {
  newPrivateRoom(returnTo?: HTMLElement): void;
  joinWithInvite(returnTo?: HTMLElement): void;
}

export function mountRooms(root: HTMLElement, store: Store, dialogs: RoomDialogs | null = null): () => void {
  const input = h("input", {
    id: "room-input",
    type: "text",
    maxlength: MAX_ROOM_BYTES,
    autocomplete: "off",
    placeholder: "Join or create a room",
    "aria-label": "Join or create a room (Ctrl+K)",
    "aria-keyshortcuts": "Control+K",
    title: "Join or create a room (Ctrl+K). Escape clears it.",
  });
  const join = h("button", { id: "join-button", type: "submit", class: "primary" }, "Join");
  const form = h("form", { id: "room-form", class: "inline-form" }, input, join);
  const newPrivate = h(
    "button",
    { id: "new-private-room", type: "button", class: "link private-action", title: "Create a room only invited people can read" },
    lockIcon(),
    " New private room…",
  );
  const joinInvite = h(
    "button",
    { id: "join-invite-button", type: "button", class: "link private-action", title: "Join a private room with the invite code or file you were given" },
    "Join with invite…",
  );
  newPrivate.addEventListener("click", () => dialogs?.newPrivateRoom(newPrivate));
  joinInvite.addEventListener("click", () => dialogs?.joinWithInvite(joinInvite));
  const privateActions = h("div", { class: "private-actions", hidden: dialogs === null }, newPrivate, joinInvite);
  const list = h("ul", { id: "room-list", class: "room-list", "aria-label": "Rooms" });
  const empty = h("p", { class: "muted empty", id: "rooms-empty" }, "No rooms yet. Try “medical” or “shelter”.");
  root.appendChild(
    h("section", { class: "sidebar-section rooms" }, h("h2", {}, "Rooms"), form, privateActions, list, empty),
  );

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.joinRoom(input.value).then((ok) => {
      if (!ok) return;
      input.value = "";
      // Joined and selected: writing is the next step (focus stays here if it cannot write).
      const active = document.activeElement;
      if (active === input || active === join || active === document.body || active === null) focusComposer();
    });
  });
  // Escape empties the field first, then goes to the composer.
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    e.stopPropagation();
    if (input.value !== "") input.value = "";
    else focusComposer();
  });

  // One tab stop for the list (the selected room); arrow keys move between rooms.
  const roving = rovingList(list, {
    rowAttr: "data-room",
    primary: ".room-select",
    preferred: () => store.state.selectedRoom,
    fallback: () => void focusRoomInput(),
  });

  const selectLabel = (room: RoomView, unread: number): string =>
    [
      roomSpoken(room),
      room.joined ? null : "not joined, read only",
      unread > 0 ? `${unread} new` : null,
      `${room.messages} ${room.messages === 1 ? "message" : "messages"}`,
    ]
      .filter(Boolean)
      .join(", ");

  const roomItem = (room: RoomView, state: AppState): HTMLLIElement => {
    const selected = state.pane === "room" && room.name === state.selectedRoom;
    const unread = state.unread[room.name] ?? 0;
    const select = h(
      "button",
      {
        type: "button",
        class: "room-select",
        "data-slot": "select",
        "aria-current": selected ? "true" : null,
        "aria-label": selectLabel(room, unread),
        title: `${roomSpoken(room)}${room.joined ? "" : " (not joined: read only)"}`,
      },
      room.private
        ? h("span", { class: "room-hash room-lock", "aria-hidden": "true" }, lockIcon())
        : h("span", { class: "room-hash", "aria-hidden": "true" }, "#"),
      h("span", { class: "room-name" }, room.private ? roomLabel(room) : room.name),
      unread > 0 ? h("span", { class: "badge unread", title: `${unread} new` }, String(unread)) : null,
      h("span", { class: "room-count", title: `${room.messages} messages stored` }, String(room.messages)),
    );
    select.addEventListener("click", () => {
      void store.selectRoom(room.name);
      // Picking a room means "talk there": go to the composer (a read-only room keeps focus).
      focusComposer();
    });
    const action = room.joined
      ? h(
          "button",
          { type: "button", class: "leave-button link", "data-slot": "action", title: `Leave ${roomSpoken(room)}`, "aria-label": `Leave ${roomSpoken(room)}` },
          "Leave",
        )
      : h(
          "button",
          { type: "button", class: "rejoin-button link", "data-slot": "action", title: `Join ${roomSpoken(room)}`, "aria-label": `Join ${roomSpoken(room)}` },
          "Join",
        );
    action.addEventListener("click", () => {
      if (room.joined) void store.leaveRoom(room.name);
      else void store.joinRoom(room.name);
    });
    const isMuted = room.muted;
    const mute = h(
      "button",
      {
        type: "button",
        class: `mute-button link${isMuted ? " muted" : ""}`,
        "data-slot": "mute",
        "aria-pressed": String(isMuted),
        "aria-label": `${isMuted ? "Unmute" : "Mute"} ${roomSpoken(room)}`,
        title: isMuted ? `Notify for ${roomSpoken(room)}` : `Mute notifications for ${roomSpoken(room)}`,
      },
      isMuted ? "Unmute" : "Mute",
    );
    mute.addEventListener("click", () => void store.setMuted(room.name, !isMuted));
    return h(
      "li",
      {
        class: `room${selected ? " selected" : ""}${room.joined ? "" : " not-joined"}${room.private ? " private" : ""}`,
        "data-room": room.name,
        "data-private": String(room.private),
        "data-joined": String(room.joined),
        "data-muted": String(room.muted),
      },
      select,
      mute,
      action,
    );
  };

  const rows = new Map<string, { sig: string; el: HTMLElement }>();
  const render = (state: AppState): void => {
    roving.render(() =>
      renderKeyed(
        list,
        state.rooms.map((room) => ({
          key: room.name,
          // What a row shows, but the message count: status events replace the rooms array
          // every few seconds, and the count is updated in place.
          sig: JSON.stringify([
            room.joined,
            room.private,
            room.title,
            state.pane === "room" && room.name === state.selectedRoom,
            state.unread[room.name] ?? 0,
            room.muted,
          ]),
          build: () => roomItem(room, state),
          update: (el) => {
            const count = el.querySelector<HTMLElement>(".room-count");
            if (count && count.textContent !== String(room.messages)) {
              count.textContent = String(room.messages);
              count.title = `${room.messages} messages stored`;
              el.querySelector(".room-select")?.setAttribute("aria-label", selectLabel(room, state.unread[room.name] ?? 0));
            }
          },
        })),
        rows,
      ),
    );
    empty.hidden = state.rooms.length > 0;
    join.disabled = state.pending.join || state.phase !== "ready";
    input.disabled = state.phase !== "ready";
    newPrivate.disabled = state.phase !== "ready" || state.pending.privateRoom;
    joinInvite.disabled = state.phase !== "ready" || state.pending.joinInvite;
  };

  render(store.state);
  const stopStore = store.subscribe((state, previous) => {
    if (
      state.rooms !== previous.rooms ||
      state.selectedRoom !== previous.selectedRoom ||
      state.pane !== previous.pane ||
      state.unread !== previous.unread ||
      state.pending !== previous.pending ||
      state.phase !== previous.phase
    ) {
      render(state);
    }
  });
  return () => {
    stopStore();
    roving.stop();
  };
}
