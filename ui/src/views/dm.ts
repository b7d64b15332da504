// A direct conversation with one peer: header and message list (newest at the bottom).

import { visibleText } from "../lib/text";
import { h, setChildren } from "../lib/dom";
import type { DmView } from "../bindings/DmView";
import { formatFullTime, formatTime, layoutRows } from "../lib/messages";
import { fingerprintOf, nameOf, type AppState, type Store } from "../store";

export function mountDm(root: HTMLElement, store: Store): () => void {
  const title = h("h1", { id: "dm-title" });
  const subtitle = h("p", { id: "dm-subtitle", class: "muted" });
  const header = h("header", { class: "room-header" }, title, subtitle);
  const list = h("ol", { id: "dm-list", class: "message-list", "aria-live": "polite" });
  const placeholder = h("div", { id: "dm-empty", class: "messages-empty muted" });
  // A tab stop so the history scrolls with the arrow and Page keys.
  const scroller = h(
    "div",
    { id: "dm-scroller", class: "message-scroller", tabindex: 0, role: "region", "aria-label": "Direct messages" },
    list,
    placeholder,
  );
  root.append(header, scroller);

  const item = (d: DmView, state: AppState): HTMLLIElement =>
    h(
      "li",
      { class: `message${d.outgoing ? " local" : ""}${d.urgent ? " urgent" : ""}`, "data-id": d.id, "data-testid": "dm" },
      h(
        "div",
        { class: "message-meta" },
        h("span", { class: "author" }, d.outgoing ? (state.identity?.name ?? "Me") : visibleText(d.author_name) || "(no name)"),
        h("code", { class: "fingerprint", title: d.author }, fingerprintOf(state, d.author)),
        h(
          "time",
          { datetime: new Date(d.timestamp).toISOString(), title: formatFullTime(d.timestamp) },
          formatTime(d.timestamp),
        ),
      ),
      h(
        "div",
        { class: "body" },
        d.urgent ? h("span", { class: "urgent-badge", "data-testid": "urgent-badge" }, "URGENT") : null,
        d.urgent ? " " : null,
        visibleText(d.body, true),
      ),
    );

  const render = (state: AppState): void => {
    const peer = state.selectedDm;
    if (peer === null) return;
    const thread = state.dms[peer];
    const items = thread?.items ?? [];
    title.textContent = nameOf(state, peer);
    const p = state.peers.find((x) => x.id === peer);
    subtitle.textContent = `${fingerprintOf(state, peer)} · direct, end-to-end encrypted · ${
      p?.connected ? "online" : p?.hops != null ? `${p.hops} hops away` : "offline (carried when possible)"
    }`;
    placeholder.hidden = items.length > 0 || Boolean(thread?.loading);
    placeholder.textContent = "No direct messages yet. Only you and this peer can read them.";
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
    setChildren(
      list,
      ...layoutRows(items, null).map((row) =>
        row.kind === "item"
          ? item(row.item, state)
          : h("li", { class: "day-separator", role: "separator" }, h("span", {}, row.kind === "day" ? row.label : "")),
      ),
    );
    if (atBottom || shown !== peer) scroller.scrollTop = scroller.scrollHeight;
    shown = peer;
  };

  let shown: string | null = null;
  render(store.state);
  return store.subscribe((state, previous) => {
    if (state.pane !== "dm") {
      shown = null;
      return;
    }
    if (
      state.pane !== previous.pane ||
      state.selectedDm !== previous.selectedDm ||
      state.dms !== previous.dms ||
      state.peers !== previous.peers ||
      state.identity !== previous.identity
    ) {
      render(state);
    }
  });
}
