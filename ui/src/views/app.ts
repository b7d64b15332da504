// Layout: error banner on top, sidebar (rooms, peers), the room pane, the status bar.

import { h } from "../lib/dom";
import type { Store } from "../store";
import { mountComposer } from "./composer";
import { mountErrorBanner } from "./errorBanner";
import { mountFatal } from "./fatal";
import { mountMessages } from "./messages";
import { mountNamePrompt } from "./namePrompt";
import { mountPeers } from "./peers";
import { mountRooms } from "./rooms";
import { mountStatusBar } from "./statusBar";

export function mountApp(root: HTMLElement, store: Store): () => void {
  const banner = h("div", { class: "banner-slot" });
  const brand = h(
    "div",
    { class: "brand" },
    h("img", { src: "/icon.svg", alt: "", width: 28, height: 28 }),
    h("span", {}, "DisasterNet"),
  );
  const sidebar = h("aside", { class: "sidebar" }, brand);
  const pane = h("main", { class: "room-pane" });
  const statusSlot = h("div", { class: "status-slot" });
  const shell = h("div", { class: "app-shell" }, banner, sidebar, pane, statusSlot);
  root.replaceChildren(shell);

  const stops = [
    mountErrorBanner(banner, store),
    mountRooms(sidebar, store),
    mountPeers(sidebar, store),
    mountMessages(pane, store),
    mountComposer(pane, store),
    mountStatusBar(statusSlot, store),
    mountNamePrompt(shell, store),
    mountFatal(shell, store),
  ];
  return () => stops.forEach((stop) => stop());
}
