// Bottom bar: online/offline, peers, messages, who I am.

import { h } from "../lib/dom";
import {
  connectedPeers,
  isOnline,
  totalMessages,
  type AppState,
  type Store,
} from "../store";

export function mountStatusBar(root: HTMLElement, store: Store): () => void {
  const net = h("span", { id: "net-status", class: "net-status", role: "status" });
  const peers = h("span", { id: "peer-count" });
  const messages = h("span", { id: "message-count" });
  const self = h("span", { id: "self-identity", class: "self" });
  root.appendChild(
    h("footer", { id: "status-bar", class: "status-bar" }, net, peers, messages, self),
  );

  const render = (state: AppState): void => {
    const online = isOnline(state);
    const n = connectedPeers(state);
    net.className = `net-status ${online ? "online" : "offline"}`;
    net.dataset.online = String(online);
    if (state.phase === "starting") {
      net.textContent = "Starting…";
    } else if (state.phase === "failed") {
      net.textContent = "Not running";
      net.className = "net-status failed";
    } else {
      net.textContent = online
        ? "Online"
        : "Offline — messages are saved and will be sent when peers appear";
    }
    peers.textContent = `${n} ${n === 1 ? "peer" : "peers"} connected`;
    const m = totalMessages(state);
    messages.textContent = `${m} ${m === 1 ? "message" : "messages"}`;
    const id = state.identity;
    self.textContent = id ? `You: ${id.name ?? "(no name)"} · ${id.fingerprint}` : "";
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (
      state.status !== previous.status ||
      state.identity !== previous.identity ||
      state.phase !== previous.phase ||
      state.peers !== previous.peers ||
      state.rooms !== previous.rooms
    ) {
      render(state);
    }
  });
}
