// Bottom bar: online/offline, peers, messages, the outgoing queue, last sync, who I am.

import { h, setChildren } from "../lib/dom";
import { formatFullTime, formatTime } from "../lib/messages";
import {
  connectedPeers,
  isOnline,
  totalMessages,
  urgentCount,
  type AppState,
  type Store,
} from "../store";

/**
 * `onHealth` opens the "Why can't I see anyone?" panel: from the health button next to the
 * online/offline badge, or a click on the badge itself.
 */
export function mountStatusBar(root: HTMLElement, store: Store, onHealth?: () => void): () => void {
  const net = h("span", { id: "net-status", class: "net-status", role: "status" });
  const health = h(
    "button",
    {
      id: "net-health",
      type: "button",
      class: "net-health",
      "aria-haspopup": "dialog",
      title: "Why can't I see anyone? What this laptop observed of the network, and what to do",
      hidden: onHealth === undefined,
    },
    // A narrow window shows the short label (styles.css); screen readers get the long one.
    h("span", { class: "long", "aria-hidden": "true" }),
    h("span", { class: "short", "aria-hidden": "true" }),
  );
  if (onHealth) {
    health.addEventListener("click", () => onHealth());
    net.addEventListener("click", () => onHealth());
  }
  const peers = h("span", { id: "peer-count" });
  const messages = h("span", { id: "message-count" });
  const queue = h("span", {
    id: "queue-count",
    title: "Messages written here that no peer has confirmed yet. They are saved and go out when peers are reachable.",
  });
  const sync = h("span", { id: "last-sync" });
  const urgent = h(
    "button",
    { id: "urgent-count", type: "button", class: "urgent-count", hidden: true, title: "Open the room of the newest urgent message" },
  );
  urgent.addEventListener("click", () => void store.showUrgent());
  const guarded = h("span", { id: "drop-count", class: "drops", hidden: true });
  const self = h("span", { id: "self-identity", class: "self" });
  root.appendChild(
    h("footer", { id: "status-bar", class: "status-bar" }, net, health, urgent, peers, messages, queue, sync, guarded, self),
  );

  const render = (state: AppState): void => {
    const online = isOnline(state);
    const n = connectedPeers(state);
    net.className = `net-status ${online ? "online" : "offline"}`;
    net.dataset.online = String(online);
    // The state is a badge that always shows; the hint after it is cut first in a narrow window.
    const [badge, hint] =
      state.phase === "starting"
        ? ["Starting…", null]
        : state.phase === "failed"
          ? ["Not running", null]
          : online
            ? ["Online", null]
            : ["Offline", " — messages are saved and will be sent when peers appear"];
    if (state.phase === "failed") net.className = "net-status failed";
    // (Only when it changed: this is a live region, and status events come every few seconds.)
    if (net.textContent !== badge + (hint ?? "")) {
      setChildren(net, h("span", { class: "net-state" }, badge), hint ? h("span", { class: "net-hint" }, hint) : null);
    }
    // Online, the same panel is a network check; offline it answers the obvious question.
    const [label, short] = online ? ["Network check", "?"] : ["Why can't I see anyone?", "?"];
    if (health.getAttribute("aria-label") !== label) {
      health.setAttribute("aria-label", label);
      setChildren(health, h("span", { class: "long", "aria-hidden": "true" }, label), h("span", { class: "short", "aria-hidden": "true" }, short));
    }
    const u = urgentCount(state);
    urgent.hidden = u === 0;
    const urgentText = `${u.toLocaleString("en-US")} urgent`;
    if (urgent.textContent !== urgentText) urgent.textContent = urgentText;
    peers.textContent = `${n} ${n === 1 ? "peer" : "peers"} connected`;
    const m = totalMessages(state);
    messages.textContent = `${m.toLocaleString("en-US")} ${m === 1 ? "message" : "messages"}`;
    const q = state.status?.queued ?? 0;
    // When the engine tries again (retry with backoff), as a time of day: status events come
    // when something changes, so "in 25 s" would go stale while nothing happens.
    const retryMs = state.status?.next_retry_in_ms ?? null;
    const retryAt = retryMs === null ? null : Date.now() + retryMs;
    queue.textContent =
      q === 0
        ? "nothing queued"
        : `${q.toLocaleString("en-US")} queued` + (retryAt === null ? "" : ` · next try ${formatTime(retryAt)}`);
    queue.title =
      q === 0
        ? ""
        : "Messages written here that no peer is known to hold yet. They stay stored and go out when a peer is reachable" +
          (retryAt === null ? "." : `; the next try is at ${formatFullTime(retryAt)} (at once when a peer connects).`);
    queue.classList.toggle("waiting", q > 0);
    const synced = state.status?.last_sync_at ?? null;
    sync.textContent = synced === null ? "never synced" : `synced ${formatTime(synced)}`;
    sync.title = synced === null ? "No peer has synchronised a room with this node yet" : `Last sync with a peer: ${formatFullTime(synced)}`;
    // Network health: what this node refused to protect itself (a noisy or hostile peer).
    const drops = Object.entries(state.status?.drops ?? {}).filter(([, v]) => v > 0);
    const total = drops.reduce((t, [, v]) => t + v, 0);
    const full = state.status?.carry_quota_full ?? false;
    guarded.hidden = total === 0 && !full;
    guarded.textContent = [
      total === 0 ? null : `${total.toLocaleString("en-US")} refused`,
      full ? "carry quota full" : null,
    ]
      .filter((s) => s !== null)
      .join(" · ");
    const evicted = state.status?.carry_evicted ?? 0;
    guarded.title = [
      full
        ? "The storage allowed for rooms carried for others is used up by what cannot be removed (your own messages, your direct messages): this laptop no longer takes in rooms it has not joined (your rooms and direct messages go on)."
        : null,
      evicted === 0
        ? null
        : `${evicted.toLocaleString("en-US")} old ${evicted === 1 ? "message" : "messages"} carried for others removed to stay within the carry quota (oldest first; never your rooms).`,
      total === 0
        ? null
        : "Requests and data this node refused to protect itself (over a peer's budget or invalid):\n" +
          drops.map(([k, v]) => `${k.replace(/_/g, " ")}: ${v.toLocaleString("en-US")}`).join("\n"),
    ]
      .filter((s) => s !== null)
      .join("\n\n");
    const id = state.identity;
    // A long name is cut (ellipsis), never the fingerprint after it.
    const me = id ? `You: ${id.name ?? "(no name)"} · ${id.fingerprint}` : "";
    if (self.textContent !== me) {
      setChildren(
        self,
        ...(id
          ? ["You: ", h("span", { class: "self-name" }, id.name ?? "(no name)"), " · ", h("code", { class: "fingerprint" }, id.fingerprint)]
          : []),
      );
    }
    // Both may be cut short in a narrow window: the full text is the tooltip.
    self.title = self.textContent;
    net.title = net.textContent;
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (
      state.status !== previous.status ||
      state.identity !== previous.identity ||
      state.phase !== previous.phase ||
      state.peers !== previous.peers ||
      state.rooms !== previous.rooms ||
      state.urgent !== previous.urgent
    ) {
      render(state);
    }
  });
}
