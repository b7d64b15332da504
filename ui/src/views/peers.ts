// Sidebar: every peer seen, online first, with name and short fingerprint. One tab stop for the
// list ("Message" on the remembered peer); the arrow keys move between peers.

import { visibleText } from "../lib/text";
import { h } from "../lib/dom";
import { focusComposer, renderKeyed, rovingList } from "../lib/keyboard";
import { formatFullTime } from "../lib/messages";
import type { PeerView } from "../bindings/PeerView";
import { linkText } from "../lib/health";
import { peerLink, sortedPeers, type AppState, type Store } from "../store";

/** RTT for the narrow peer row: `1 ms`, `120 ms` (at least 1 ms: a LAN link is "1 ms"). */
function formatRttShort(rttUs: number): string {
  return `${Math.max(1, Math.round(rttUs / 1000))} ms`;
}

export function mountPeers(root: HTMLElement, store: Store): () => void {
  const list = h("ul", { id: "peer-list", class: "peer-list", "aria-label": "Peers" });
  const empty = h("p", { class: "muted empty", id: "peers-empty" }, "No peers seen yet.");
  const count = h("span", { class: "section-count", id: "peer-section-count" });
  root.appendChild(
    h("section", { class: "sidebar-section peers" }, h("h2", {}, "Peers ", count), list, empty),
  );
  const roving = rovingList(list, { rowAttr: "data-peer-id", primary: ".message-peer" });

  const messageButton = (id: string, name: string): HTMLButtonElement => {
    const who = name || id.slice(0, 8);
    const button = h(
      "button",
      {
        type: "button",
        class: "message-peer link",
        "data-slot": "message",
        title: `Direct message to ${who}`,
        "aria-label": `Message ${who}`,
      },
      "Message",
    );
    button.addEventListener("click", () => {
      void store.openDm(id);
      focusComposer();
    });
    return button;
  };

  const peerTitle = (peer: PeerView, state: AppState): string =>
    [
      visibleText(peer.name) || "(no name)",
      peer.relay ? `Relay at ${peer.relay_addr ?? "a relay address"}` : null,
      peer.connected ? "Connected" : peer.hops !== null ? `Reachable in ${peer.hops} hops` : "Offline",
      ((l) => (l ? `${l.quality} link: ${linkText(l)}` : null))(peerLink(state, peer)),
      peer.last_seen !== null ? `last seen ${formatFullTime(peer.last_seen)}` : null,
      peer.addresses.length > 0 ? peer.addresses.join(", ") : null,
    ]
      .filter(Boolean)
      .join(" · ");

  /** The link's RTT in the row, coloured by quality (the tooltip has the rest). */
  const linkBadge = (peer: PeerView, state: AppState): HTMLElement | null => {
    const l = peerLink(state, peer);
    if (!l) return null;
    return h("span", { class: `link-rtt quality-${l.quality}`, "data-quality": l.quality }, formatRttShort(l.rtt_us));
  };

  const peerItem = (peer: PeerView, state: AppState): HTMLLIElement =>
    h(
      "li",
      {
        class: `peer ${peer.connected ? "online" : "offline"}`,
        "data-peer-id": peer.id,
        "data-connected": String(peer.connected),
      },
      h("span", { class: "dot", role: "img", "aria-label": peer.connected ? "online" : "offline" }),
      h(
        "span",
        { class: "peer-info" },
        h(
          "span",
          { class: "peer-line" },
          h(
            "span",
            { class: "peer-name" },
            visibleText(peer.name) || (peer.relay ? "Relay" : "(no name)"),
            peer.relay ? h("span", { class: "relay-badge", title: "This node is one of your relays" }, "relay") : null,
          ),
          linkBadge(peer, state),
        ),
        h(
          "span",
          { class: "peer-meta" },
          h("code", { class: "fingerprint" }, peer.fingerprint),
          !peer.connected && peer.hops !== null && peer.hops > 1
            ? h("span", { class: "hops", title: "Reachable through other peers" }, `${peer.hops} hops`)
            : null,
        ),
      ),
      messageButton(peer.id, peer.name),
    );

  const rows = new Map<string, { sig: string; el: HTMLElement }>();
  const render = (state: AppState): void => {
    const peers = sortedPeers(state);
    const online = peers.filter((p) => p.connected).length;
    count.textContent = peers.length > 0 ? `${online}/${peers.length}` : "";
    count.setAttribute("aria-label", peers.length > 0 ? `${online} of ${peers.length} online` : "");
    empty.hidden = peers.length > 0;
    roving.render(() =>
      renderKeyed(
        list,
        peers.map((peer) => ({
          key: peer.id,
          // Peer events come often (last seen, addresses): only these rebuild the row.
          sig: JSON.stringify([
            peer.name,
            peer.connected,
            peer.hops,
            peer.fingerprint,
            peer.relay,
            ((l) => (l ? [l.quality, formatRttShort(l.rtt_us)] : null))(peerLink(state, peer)),
          ]),
          build: () => peerItem(peer, state),
          update: (el) => {
            el.title = peerTitle(peer, state);
          },
        })),
        rows,
      ),
    );
  };

  render(store.state);
  const stopStore = store.subscribe((state, previous) => {
    if (state.peers !== previous.peers || state.links !== previous.links) render(state);
  });
  return () => {
    stopStore();
    roving.stop();
  };
}
