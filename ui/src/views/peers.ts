// Sidebar: every peer seen, online first, with name and short fingerprint.

import { h, setChildren } from "../lib/dom";
import { formatFullTime } from "../lib/messages";
import { sortedPeers, type AppState, type Store } from "../store";

export function mountPeers(root: HTMLElement, store: Store): () => void {
  const list = h("ul", { id: "peer-list", class: "peer-list", "aria-label": "Peers" });
  const empty = h("p", { class: "muted empty", id: "peers-empty" }, "No peers seen yet.");
  const count = h("span", { class: "section-count", id: "peer-section-count" });
  root.appendChild(
    h("section", { class: "sidebar-section peers" }, h("h2", {}, "Peers ", count), list, empty),
  );

  const messageButton = (id: string, name: string): HTMLButtonElement => {
    const button = h(
      "button",
      { type: "button", class: "message-peer link", title: `Direct message to ${name || id.slice(0, 8)}` },
      "Message",
    );
    button.addEventListener("click", () => void store.openDm(id));
    return button;
  };

  const render = (state: AppState): void => {
    const peers = sortedPeers(state);
    const online = peers.filter((p) => p.connected).length;
    count.textContent = peers.length > 0 ? `${online}/${peers.length}` : "";
    empty.hidden = peers.length > 0;
    setChildren(
      list,
      ...peers.map((peer) =>
        h(
          "li",
          {
            class: `peer ${peer.connected ? "online" : "offline"}`,
            "data-peer-id": peer.id,
            "data-connected": String(peer.connected),
            title: [
              peer.connected
                ? "Connected"
                : peer.hops !== null
                  ? `Reachable in ${peer.hops} hops`
                  : "Offline",
              peer.last_seen !== null ? `last seen ${formatFullTime(peer.last_seen)}` : null,
              peer.addresses.length > 0 ? peer.addresses.join(", ") : null,
            ]
              .filter(Boolean)
              .join(" · "),
          },
          h("span", { class: "dot", "aria-label": peer.connected ? "online" : "offline" }),
          h("span", { class: "peer-name" }, peer.name || "(no name)"),
          !peer.connected && peer.hops !== null && peer.hops > 1
            ? h("span", { class: "hops", title: "Reachable through other peers" }, `${peer.hops} hops`)
            : null,
          h("code", { class: "fingerprint" }, peer.fingerprint),
          messageButton(peer.id, peer.name),
        ),
      ),
    );
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (state.peers !== previous.peers) render(state);
  });
}
