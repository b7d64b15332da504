// Sidebar: join or create a room by name, pick a room, mute its notifications, leave it.

import { h, setChildren } from "../lib/dom";
import type { MutedRooms } from "../lib/notify";
import type { RoomView } from "../bindings/RoomView";
import type { AppState, Store } from "../store";

export function mountRooms(root: HTMLElement, store: Store, muted?: MutedRooms): () => void {
  const input = h("input", {
    id: "room-input",
    type: "text",
    maxlength: 64,
    autocomplete: "off",
    placeholder: "Join or create a room",
    "aria-label": "Room name",
  });
  const join = h("button", { id: "join-button", type: "submit", class: "primary" }, "Join");
  const form = h("form", { id: "room-form", class: "inline-form" }, input, join);
  const list = h("ul", { id: "room-list", class: "room-list", "aria-label": "Rooms" });
  const empty = h("p", { class: "muted empty", id: "rooms-empty" }, "No rooms yet. Try “medical” or “shelter”.");
  root.appendChild(
    h("section", { class: "sidebar-section rooms" }, h("h2", {}, "Rooms"), form, list, empty),
  );

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.joinRoom(input.value).then((ok) => {
      if (ok) input.value = "";
    });
  });

  const roomItem = (room: RoomView, state: AppState): HTMLLIElement => {
    const selected = state.pane === "room" && room.name === state.selectedRoom;
    const unread = state.unread[room.name] ?? 0;
    const select = h(
      "button",
      {
        type: "button",
        class: "room-select",
        "aria-current": selected ? "true" : null,
        title: room.joined ? `#${room.name}` : `#${room.name} (not joined: read only)`,
      },
      h("span", { class: "room-hash" }, "#"),
      h("span", { class: "room-name" }, room.name),
      unread > 0 ? h("span", { class: "badge unread", title: `${unread} new` }, String(unread)) : null,
      h("span", { class: "room-count", title: `${room.messages} messages stored` }, String(room.messages)),
    );
    select.addEventListener("click", () => void store.selectRoom(room.name));
    const action = room.joined
      ? h("button", { type: "button", class: "leave-button link", title: `Leave #${room.name}` }, "Leave")
      : h("button", { type: "button", class: "rejoin-button link", title: `Join #${room.name}` }, "Join");
    action.addEventListener("click", () => {
      if (room.joined) void store.leaveRoom(room.name);
      else void store.joinRoom(room.name);
    });
    let mute: HTMLButtonElement | null = null;
    if (muted) {
      const isMuted = muted.has(room.name);
      mute = h(
        "button",
        {
          type: "button",
          class: `mute-button link${isMuted ? " muted" : ""}`,
          "aria-pressed": String(isMuted),
          title: isMuted ? `Notify for #${room.name}` : `Mute notifications for #${room.name}`,
        },
        isMuted ? "Unmute" : "Mute",
      );
      mute.addEventListener("click", () => muted.toggle(room.name));
    }
    return h(
      "li",
      {
        class: `room${selected ? " selected" : ""}${room.joined ? "" : " not-joined"}`,
        "data-room": room.name,
        "data-joined": String(room.joined),
        "data-muted": muted ? String(muted.has(room.name)) : null,
      },
      select,
      mute,
      action,
    );
  };

  const render = (state: AppState): void => {
    setChildren(list, ...state.rooms.map((room) => roomItem(room, state)));
    empty.hidden = state.rooms.length > 0;
    join.disabled = state.pending.join || state.phase !== "ready";
    input.disabled = state.phase !== "ready";
  };

  render(store.state);
  const stopMuted = muted?.subscribe(() => render(store.state));
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
    stopMuted?.();
    stopStore();
  };
}
