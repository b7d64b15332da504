// Layout: error banner on top, sidebar (rooms, peers), the room pane, the status bar.

import { h } from "../lib/dom";
import type { MutedRooms } from "../lib/notify";
import type { Store } from "../store";
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
import { mountRooms } from "./rooms";
import { mountStatusBar } from "./statusBar";

export function mountApp(root: HTMLElement, store: Store, muted?: MutedRooms): () => void {
  const banner = h("div", { class: "banner-slot" });
  const brand = h(
    "div",
    { class: "brand" },
    h("img", { src: "/icon.svg", alt: "", width: 28, height: 28 }),
    h("span", {}, "DisasterNet"),
  );
  const sidebar = h("aside", { class: "sidebar" }, brand);
  const roomView = h("div", { class: "pane-view", id: "room-view" });
  const dmView = h("div", { class: "pane-view", id: "dm-view", hidden: true });
  const networkView = h("div", { class: "pane-view", id: "network-view", hidden: true });
  const identityView = h("div", { class: "pane-view", id: "identity-view", hidden: true });
  const pane = h("main", { class: "room-pane" }, roomView, dmView, networkView, identityView);
  const statusSlot = h("div", { class: "status-slot" });
  const shell = h("div", { class: "app-shell" }, banner, sidebar, pane, statusSlot);
  root.replaceChildren(shell);

  const stops = [
    mountErrorBanner(banner, store),
    mountRooms(sidebar, store, muted),
    mountDirect(sidebar, store),
    mountPeers(sidebar, store),
    mountMessages(roomView, store),
    mountDm(dmView, store),
    mountNetwork(networkView, store),
    mountIdentity(identityView, store),
    mountComposer(pane, store),
    mountStatusBar(statusSlot, store),
    mountNamePrompt(shell, store),
    mountFatal(shell, store),
  ];
  const showPane = (kind: string): void => {
    roomView.hidden = kind !== "room";
    dmView.hidden = kind !== "dm";
    networkView.hidden = kind !== "network";
    identityView.hidden = kind !== "identity";
  };
  showPane(store.state.pane);
  stops.push(
    store.subscribe((state, previous) => {
      if (state.pane !== previous.pane) showPane(state.pane);
    }),
  );
  return () => stops.forEach((stop) => stop());
}
