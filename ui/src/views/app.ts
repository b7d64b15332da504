// Layout: error banner on top, sidebar (rooms, peers), the room pane, the status bar; and the
// app-wide keyboard shortcuts (README, "Keyboard").

import { dialogOpen } from "../lib/dialog";
import { h } from "../lib/dom";
import {
  canFocus,
  focusHeading,
  focusRoomInput,
  focusWorkArea,
  shortcutOf,
  stepRoom,
} from "../lib/keyboard";
import { needsName, type AppState, type Store } from "../store";
import { mountComposer } from "./composer";
import { mountDirect } from "./direct";
import { mountDm } from "./dm";
import { mountErrorBanner } from "./errorBanner";
import { mountFatal } from "./fatal";
import { mountIdentity } from "./identity";
import { mountMessages } from "./messages";
import { mountNamePrompt } from "./namePrompt";
import { mountNetwork } from "./network";
import { mountPeers } from "./peers";
import { mountRelays } from "./relays";
import { mountPrivateRoom } from "./privateRoom";
import { mountPrivateRooms } from "./privateRooms";
import { mountRooms } from "./rooms";
import { mountDiagnosis } from "./diagnosis";
import { mountStatusBar } from "./statusBar";

export function mountApp(root: HTMLElement, store: Store): () => void {
  const banner = h("div", { class: "banner-slot" });
  const brand = h(
    "div",
    { class: "brand" },
    h("img", { src: "/icon.svg", alt: "", width: 28, height: 28 }),
    h("span", {}, "DisasterNet"),
  );
  const sidebar = h("aside", { class: "sidebar", "aria-label": "Rooms and peers" }, brand);
  const roomView = h("div", { class: "pane-view", id: "room-view" });
  const dmView = h("div", { class: "pane-view", id: "dm-view", hidden: true });
  const networkView = h("div", { class: "pane-view", id: "network-view", hidden: true });
  const identityView = h("div", { class: "pane-view", id: "identity-view", hidden: true });
  const pane = h("main", { class: "room-pane" }, roomView, dmView, networkView, identityView);
  const statusSlot = h("div", { class: "status-slot" });
  const shell = h("div", { class: "app-shell" }, banner, sidebar, pane, statusSlot);
  root.replaceChildren(shell);

  const dialogs = mountPrivateRooms(shell, store);
  const diagnosis = mountDiagnosis(shell, store);
  const stops = [
    () => dialogs.stop(),
    () => diagnosis.stop(),
    mountErrorBanner(banner, store),
    mountRooms(sidebar, store, dialogs),
    mountDirect(sidebar, store),
    mountPeers(sidebar, store),
    mountRelays(sidebar, store),
    mountMessages(roomView, store),
    mountPrivateRoom(roomView, store),
    mountDm(dmView, store),
    mountNetwork(networkView, store),
    mountIdentity(identityView, store),
    mountComposer(pane, store),
    mountStatusBar(statusSlot, store, () => diagnosis.open()),
    mountNamePrompt(shell, store),
    mountFatal(shell, store),
  ];

  const views = { room: roomView, dm: dmView, network: networkView, identity: identityView };
  const scrollers = {
    room: roomView.querySelector<HTMLElement>(".message-scroller"),
    dm: dmView.querySelector<HTMLElement>(".message-scroller"),
  };

  // The room history is a tab stop, so it scrolls with the arrow and Page keys.
  const roomScroller = scrollers.room;
  if (roomScroller && !roomScroller.hasAttribute("tabindex")) {
    roomScroller.tabIndex = 0;
    roomScroller.setAttribute("role", "region");
    roomScroller.setAttribute("aria-label", "Messages");
  }

  // A history scrolled to the newest message stays there when its box shrinks or grows (window
  // resized, error banner shown, composer grown).
  const atBottom = new WeakMap<Element, boolean>();
  const resize =
    typeof ResizeObserver === "undefined"
      ? null
      : new ResizeObserver((entries) => {
          for (const { target } of entries) {
            if (atBottom.get(target) ?? true) target.scrollTop = target.scrollHeight;
          }
        });
  for (const sc of Object.values(scrollers)) {
    if (!sc) continue;
    sc.addEventListener(
      "scroll",
      () => {
        if (sc.clientHeight > 0) atBottom.set(sc, sc.scrollHeight - sc.scrollTop - sc.clientHeight < 48);
      },
      { passive: true },
    );
    resize?.observe(sc);
  }
  stops.push(() => resize?.disconnect());

  // A hidden view loses its scroll position: keep it (as the distance from the bottom) for the
  // room or conversation it showed, and put it back when that one is shown again; anything
  // else opens at its "new messages" marker or at the newest message.
  type Scrolled = keyof typeof scrollers;
  const saved: Partial<Record<Scrolled, { key: string | null; fromBottom: number }>> = {};
  const shownIn = (kind: Scrolled, state: AppState): string | null =>
    kind === "room" ? state.selectedRoom : state.selectedDm;
  const isScrolled = (kind: string): kind is Scrolled => kind === "room" || kind === "dm";

  const showPane = (state: AppState, previous: AppState | null): void => {
    const kind = state.pane;
    const was = previous?.pane;
    if (was !== undefined && isScrolled(was)) {
      const sc = scrollers[was];
      if (sc && sc.clientHeight > 0) {
        saved[was] = { key: shownIn(was, previous as AppState), fromBottom: sc.scrollHeight - sc.scrollTop - sc.clientHeight };
      }
    }
    const active = document.activeElement;
    const focusInPane = active instanceof HTMLElement && pane.contains(active);
    for (const [name, view] of Object.entries(views)) view.hidden = kind !== name;
    if (isScrolled(kind) && was !== undefined) {
      const sc = scrollers[kind];
      const before = saved[kind];
      if (sc && before && before.key === shownIn(kind, state)) {
        sc.scrollTop = sc.scrollHeight - sc.clientHeight - before.fromBottom;
      } else if (sc) {
        const marker = sc.querySelector<HTMLElement>("#new-marker");
        sc.scrollTop = marker ? Math.max(0, marker.offsetTop - sc.offsetTop - 8) : sc.scrollHeight;
      }
    }
    // Focus was in the view that just closed: it goes on to the composer or the new heading.
    if (focusInPane && !canFocus(active)) {
      if (!focusWorkArea()) focusHeading(views[kind]);
    }
  };
  showPane(store.state, null);
  stops.push(
    store.subscribe((state, previous) => {
      if (state.pane !== previous.pane) showPane(state, previous);
    }),
  );

  const onKeyDown = (e: KeyboardEvent): void => {
    if (e.defaultPrevented || e.isComposing) return;
    const state = store.state;
    // A dialog has the keyboard.
    if (state.phase !== "ready" || needsName(state) || dialogOpen(shell)) return;
    const shortcut = shortcutOf(e);
    if (shortcut === null) return;
    if (shortcut === "find-room") {
      if (focusRoomInput()) e.preventDefault();
      return;
    }
    if (shortcut === "back") {
      if (state.pane !== "network" && state.pane !== "identity") return;
      const room = state.selectedRoom ?? state.rooms.find((r) => r.joined)?.name ?? null;
      if (room === null) return;
      e.preventDefault();
      void store.selectRoom(room);
      focusWorkArea();
      return;
    }
    const room = stepRoom(
      state.rooms.map((r) => r.name),
      state.selectedRoom,
      shortcut === "next-room" ? 1 : -1,
      state.pane === "room",
    );
    if (room === null) return;
    e.preventDefault();
    const list = shell.querySelector("#room-list");
    const inList = list !== null && list.contains(document.activeElement);
    void store.selectRoom(room);
    if (inList) {
      const row = [...(list?.querySelectorAll<HTMLElement>("[data-room]") ?? [])].find((r) => r.dataset.room === room);
      row?.querySelector<HTMLElement>(".room-select")?.focus();
    } else if (document.activeElement === document.body || !canFocus(document.activeElement)) {
      focusWorkArea();
    }
  };
  document.addEventListener("keydown", onKeyDown);
  stops.push(() => document.removeEventListener("keydown", onKeyDown));
  return () => stops.forEach((stop) => stop());
}
