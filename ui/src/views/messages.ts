// The selected room: header, message list (newest at the bottom, older pages on scroll-up).
// Membership notices of private rooms (joined, removed, made admin) are centred lines, not
// chat bubbles. Urgent messages are highlighted, and the unacknowledged ones (at most 20, newest
// first) are pinned in a strip above the list until acknowledged.

import { visibleText } from "../lib/text";
import { h, setChildren } from "../lib/dom";
import { lockIcon } from "../lib/icons";
import { roomLabel, waitingText } from "../lib/invite";
import type { MessageView } from "../bindings/MessageView";
import { deliveryLabel, formatFullTime, formatTime, layoutRows, type Row } from "../lib/messages";
import {
  composeTarget,
  fingerprintOf,
  pinnedUrgent,
  removalOf,
  selectedRoom,
  type AppState,
  type Store,
} from "../store";

/** Messages from the same author closer than this (ms) share one header. */
const GROUP_WINDOW_MS = 5 * 60 * 1000;

/** Whether `m` is a follow-up of `previous` (same author, shortly after): shown compact. */
function continues(previous: MessageView | undefined, m: MessageView): boolean {
  return (
    previous !== undefined &&
    previous.author === m.author &&
    previous.author_name === m.author_name &&
    m.timestamp - previous.timestamp < GROUP_WINDOW_MS
  );
}

const DELIVERY_HELP =
  "Stored locally: saved here, no peer has it yet · Sent to N: pushed to N peers · Held by N: N peers confirmed they hold it";

/**
 * User Timing mark set once per window, one frame after the selected room's newest page is in
 * the DOM with the composer usable: "window to interactive" (read by `make bench`, section app).
 */
export const INTERACTIVE_MARK = "dn:interactive";

/** Marks `INTERACTIVE_MARK` after the next frame has been drawn (at once where no frames run). */
function markInteractive(): void {
  const mark = (): void => void performance.mark(INTERACTIVE_MARK);
  if (typeof requestAnimationFrame === "function") {
    // rAF runs before the frame's layout and paint; a task queued from it runs after them.
    requestAnimationFrame(() => setTimeout(mark, 0));
  } else {
    mark();
  }
}

/** Start loading the previous page this close (px) to the top. */
const LOAD_OLDER_MARGIN = 80;
/** Closer than this (px) to the bottom counts as "following the conversation". */
const STICK_TO_BOTTOM_MARGIN = 48;

export function mountMessages(root: HTMLElement, store: Store): () => void {
  const title = h("h1", { id: "room-title" });
  const subtitle = h("p", { id: "room-subtitle", class: "muted" });
  const waiting = h("p", { id: "room-waiting", class: "waiting-key", role: "status", hidden: true });
  const removed = h("p", { id: "room-removed", class: "waiting-key", role: "status", hidden: true });
  const header = h("header", { class: "room-header" }, title, subtitle, waiting, removed);
  const pinned = h("section", {
    id: "urgent-strip",
    class: "urgent-strip",
    role: "region",
    "aria-label": "Urgent messages",
    hidden: true,
  });
  const older = h("div", { id: "older-status", class: "older-status muted" });
  const list = h("ol", { id: "message-list", class: "message-list", "aria-live": "polite" });
  const placeholder = h("div", { id: "messages-empty", class: "messages-empty muted" });
  const scroller = h("div", { id: "message-scroller", class: "message-scroller" }, older, list, placeholder);
  root.append(header, pinned, scroller);

  pinned.addEventListener("click", (e) => {
    const target = e.target instanceof HTMLElement ? e.target : null;
    const button = target?.closest<HTMLButtonElement>("button");
    const room = store.state.selectedRoom;
    if (!button || room === null) return;
    if (button.classList.contains("ack-urgent")) void store.ackUrgent(room, button.dataset.id ?? null);
    else if (button.classList.contains("ack-all-urgent")) void store.ackUrgent(room, null);
  });

  let shownPinned: MessageView[] | null = null;
  const renderPinned = (state: AppState): void => {
    const room = selectedRoom(state);
    const list = room ? pinnedUrgent(state, room.name) : [];
    if (shownPinned !== null && list.length === shownPinned.length && list.every((m, i) => m === shownPinned?.[i])) {
      return;
    }
    shownPinned = list;
    pinned.hidden = list.length === 0;
    setChildren(
      pinned,
      list.length === 0
        ? null
        : h(
            "div",
            { class: "urgent-strip-head" },
            h("strong", {}, `${list.length} urgent ${list.length === 1 ? "message" : "messages"}`),
            list.length > 1
              ? h("button", { type: "button", class: "ack-all-urgent" }, "Acknowledge all")
              : null,
          ),
      ...list.map((m) =>
        h(
          "div",
          { class: "urgent-pin", "data-id": m.id, "data-testid": "urgent-pin" },
          h("span", { class: "urgent-badge" }, "URGENT"),
          " ",
          h("span", { class: "author" }, visibleText(m.author_name) || "(no name)"),
          " ",
          h(
            "time",
            { datetime: new Date(m.timestamp).toISOString(), title: formatFullTime(m.timestamp) },
            formatTime(m.timestamp),
          ),
          h("div", { class: "body" }, visibleText(m.body, true)),
          h(
            "button",
            { type: "button", class: "ack-urgent", "data-id": m.id, title: "Seen: unpin it on this laptop" },
            "Acknowledge",
          ),
        ),
      ),
    );
  };

  // Blocking asks first, in place: "Block NAME? [Block] [Cancel]".
  list.addEventListener("click", (e) => {
    const target = e.target instanceof HTMLElement ? e.target : null;
    const button = target?.closest<HTMLButtonElement>("button");
    if (!button) return;
    const author = button.dataset.author ?? "";
    if (button.classList.contains("block-author")) {
      const name = visibleText(button.dataset.name ?? "") || "this author";
      const confirm = h(
        "span",
        { class: "block-confirm", role: "group", "aria-label": `Block ${name}?` },
        `Hide and stop relaying everything from ${name}? `,
        h("button", { type: "button", class: "block-yes danger", "data-author": author }, "Block"),
        " ",
        h("button", { type: "button", class: "block-no", "data-author": author, "data-name": name }, "Cancel"),
      );
      button.replaceWith(confirm);
      confirm.querySelector<HTMLButtonElement>(".block-no")?.focus();
    } else if (button.classList.contains("block-yes")) {
      void store.setBlocked(author, true);
    } else if (button.classList.contains("block-no")) {
      const again = h(
        "button",
        { type: "button", class: "block-author", "data-author": author, "data-name": button.dataset.name ?? "" },
        "Block…",
      );
      button.closest(".block-confirm")?.replaceWith(again);
      again.focus();
    }
  });

  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < LOAD_OLDER_MARGIN) void store.loadOlder();
  });

  const messageItem = (m: MessageView, fingerprint: string): HTMLLIElement =>
    h(
      "li",
      {
        class: `message${m.local ? " local" : ""}${m.urgent ? " urgent" : ""}${
          m.urgent && !m.acknowledged ? " unacknowledged" : ""
        }`,
        "data-id": m.id,
        "data-testid": "message",
      },
      h(
        "div",
        { class: "message-meta" },
        h("span", { class: "author" }, visibleText(m.author_name) || "(no name)"),
        h("code", { class: "fingerprint", title: m.author }, fingerprint),
        h(
          "time",
          { datetime: new Date(m.timestamp).toISOString(), title: formatFullTime(m.timestamp) },
          formatTime(m.timestamp),
        ),
        m.local
          ? h("span", { class: "delivery", "data-testid": "delivery", title: DELIVERY_HELP }, deliveryLabel(m))
          : h(
              "button",
              {
                type: "button",
                class: "block-author",
                "data-author": m.author,
                "data-name": m.author_name,
                title: "Block this author on this laptop: hide their messages and stop relaying them",
              },
              "Block…",
            ),
      ),
      h(
        "div",
        { class: "body" },
        m.urgent ? h("span", { class: "urgent-badge", "data-testid": "urgent-badge" }, "URGENT") : null,
        m.urgent ? " " : null,
        visibleText(m.body, true),
      ),
    );

  // "Amara removed Ben": who did it, then the engine's sentence.
  const noticeItem = (m: MessageView, fingerprint: string): HTMLLIElement =>
    h(
      "li",
      { class: `room-notice notice-${m.kind}`, "data-id": m.id, "data-testid": "notice", "data-kind": m.kind },
      h("span", { class: "author" }, visibleText(m.author_name) || fingerprint),
      " ",
      h("span", { class: "notice-body" }, visibleText(m.body)),
      " ",
      h(
        "time",
        { datetime: new Date(m.timestamp).toISOString(), title: formatFullTime(m.timestamp) },
        formatTime(m.timestamp),
      ),
    );

  const separator = (row: Row<MessageView>): HTMLLIElement =>
    row.kind === "day"
      ? h("li", { class: "day-separator", role: "separator", "data-day": row.key }, h("span", {}, row.label))
      : h("li", { class: "new-marker", role: "separator", id: "new-marker" }, h("span", {}, "New messages"));

  // Keyed rendering: existing message elements are kept (text selection and element identity
  // survive new messages); only new ones are created, and nodes move only when out of place.
  const rendered = new Map<string, HTMLLIElement>();
  const renderList = (items: MessageView[], state: AppState, firstNew: string | null): void => {
    const rows = layoutRows(items, firstNew);
    const keep = new Set(rows.map((r) => r.key));
    for (const [key, el] of rendered) {
      if (!keep.has(key)) {
        el.remove();
        rendered.delete(key);
      }
    }
    let cursor: ChildNode | null = list.firstChild;
    let previous: MessageView | undefined;
    for (const row of rows) {
      let el = rendered.get(row.key);
      if (row.kind !== "item") {
        if (!el) {
          el = separator(row);
          rendered.set(row.key, el);
        } else if (row.kind === "day") {
          const label = el.querySelector("span");
          if (label && label.textContent !== row.label) label.textContent = row.label;
        }
        previous = undefined;
      } else {
        const m = row.item;
        const fingerprint = fingerprintOf(state, m.author);
        if (m.kind !== "text") {
          el ??= noticeItem(m, fingerprint);
          rendered.set(row.key, el);
          previous = undefined; // the next message starts a new group
          if (el === cursor) cursor = cursor.nextSibling;
          else list.insertBefore(el, cursor);
          continue;
        }
        if (!el) {
          el = messageItem(m, fingerprint);
        } else {
          const fp = el.querySelector(".fingerprint");
          if (fp && fp.textContent !== fingerprint) fp.textContent = fingerprint;
          const delivery = el.querySelector(".delivery");
          const label = deliveryLabel(m);
          if (delivery && delivery.textContent !== label) delivery.textContent = label;
          el.classList.toggle("unacknowledged", m.urgent && !m.acknowledged);
        }
        rendered.set(row.key, el);
        el.classList.toggle("continued", continues(previous, m));
        previous = m;
      }
      if (el === cursor) {
        cursor = cursor.nextSibling;
      } else {
        list.insertBefore(el, cursor);
      }
    }
  };

  let shownRoom: string | null = null;
  let shownItems: MessageView[] | null = null;
  let shownMarker: string | null = null;

  const render = (state: AppState): void => {
    renderPinned(state);
    const room = selectedRoom(state);
    const loaded = room ? state.messages[room.name] : undefined;
    if (!room) {
      title.textContent = "No room selected";
      subtitle.textContent = "Join a room from the sidebar to start talking.";
    } else if (room.private) {
      setChildren(title, lockIcon("Private room", 16), " ", roomLabel(room));
      subtitle.textContent = `Private room · end-to-end encrypted, members only · ${room.messages} ${
        room.messages === 1 ? "message" : "messages"
      } stored${room.joined ? "" : " · not joined (read only)"}`;
    } else {
      title.textContent = `#${room.name}`;
      subtitle.textContent = `${room.messages} ${room.messages === 1 ? "message" : "messages"} stored${
        room.joined ? "" : " · not joined (read only)"
      }`;
    }
    title.classList.toggle("private", room?.private ?? false);
    const removal = room?.private ? removalOf(state, room.name) : null;
    removed.hidden = removal === null;
    removed.textContent = removal
      ? `${visibleText(removal.author_name) || "An admin"} removed you from this room: you keep what you already have and read nothing written after.`
      : "";
    // Messages written after a removal never become readable here: not "waiting".
    const wait = room && removal === null ? waitingText(room.waiting_for_key) : null;
    waiting.textContent = wait ?? "";
    waiting.hidden = wait === null;

    const items = loaded?.items ?? [];
    older.textContent = loaded?.loading
      ? "Loading…"
      : loaded && !loaded.hasMore && items.length > 0
        ? "Beginning of the room"
        : "";
    placeholder.hidden = !room || items.length > 0 || Boolean(loaded?.loading);
    placeholder.textContent = "No messages yet. Say hello — it is saved even when nobody is online.";

    const roomName = room?.name ?? null;
    const marker = roomName !== null ? (state.newMarker[roomName] ?? null) : null;
    if (roomName === shownRoom && items === shownItems && marker === shownMarker) return;

    const switched = roomName !== shownRoom;
    const prependedOlder =
      !switched && shownItems !== null && shownItems.length > 0 && items[0] !== shownItems[0] &&
      items.indexOf(shownItems[0] as MessageView) > 0;
    const atBottom =
      scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_TO_BOTTOM_MARGIN;
    const oldHeight = scroller.scrollHeight;
    const oldTop = scroller.scrollTop;

    renderList(items, state, marker);
    shownRoom = roomName;
    shownItems = items;
    shownMarker = marker;

    const markerEl = switched && marker !== null ? list.querySelector<HTMLElement>("#new-marker") : null;
    if (markerEl) {
      scroller.scrollTop = Math.max(0, markerEl.offsetTop - scroller.offsetTop - 8);
    } else if (switched || atBottom) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (prependedOlder) {
      scroller.scrollTop = oldTop + (scroller.scrollHeight - oldHeight);
    }
    // A short first page leaves nothing to scroll: fetch more until the pane fills or none left.
    if (loaded && loaded.hasMore && !loaded.loading && scroller.scrollHeight <= scroller.clientHeight) {
      queueMicrotask(() => void store.loadOlder());
    }
  };

  // Views subscribed later (the composer) see the same state before the next frame is drawn.
  let interactive = false;
  const checkInteractive = (state: AppState): void => {
    const loaded = state.selectedRoom !== null ? state.messages[state.selectedRoom] : undefined;
    if (interactive || state.pane !== "room" || !loaded || loaded.loading) return;
    if (!composeTarget(state).canWrite) return;
    interactive = true;
    if (typeof performance !== "undefined" && typeof performance.mark === "function") markInteractive();
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    checkInteractive(state);
    if (
      state.selectedRoom !== previous.selectedRoom ||
      state.messages !== previous.messages ||
      state.newMarker !== previous.newMarker ||
      state.rooms !== previous.rooms ||
      state.peers !== previous.peers ||
      state.urgent !== previous.urgent
    ) {
      if (state.peers !== previous.peers) shownItems = null; // fingerprints may have changed
      render(state);
    }
  });
}
