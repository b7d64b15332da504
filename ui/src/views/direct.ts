// Sidebar: the network map and identity & export entries, and direct conversations of this session.

import { h, setChildren } from "../lib/dom";
import { fingerprintOf, nameOf, type AppState, type Store } from "../store";

export function mountDirect(root: HTMLElement, store: Store): () => void {
  const networkButton = h(
    "button",
    { id: "network-button", type: "button", class: "room-select nav-entry" },
    h("span", { class: "room-hash", "aria-hidden": "true" }, "◎"),
    h("span", { class: "room-name" }, "Network"),
  );
  networkButton.addEventListener("click", () => void store.showNetwork());
  const identityButton = h(
    "button",
    { id: "identity-button", type: "button", class: "room-select nav-entry" },
    h("span", { class: "room-hash", "aria-hidden": "true" }, "⚿"),
    h("span", { class: "room-name" }, "Identity & export"),
  );
  identityButton.addEventListener("click", () => store.showIdentity());
  const list = h("ul", { id: "dm-peer-list", class: "room-list", "aria-label": "Direct conversations" });
  const empty = h("p", { class: "muted empty", id: "dms-empty" }, "Use “Message” on a peer to write directly.");
  root.appendChild(
    h(
      "section",
      { class: "sidebar-section direct" },
      h(
        "ul",
        { class: "room-list" },
        h("li", { class: "room" }, networkButton),
        h("li", { class: "room" }, identityButton),
      ),
      h("h2", {}, "Direct"),
      list,
      empty,
    ),
  );

  const render = (state: AppState): void => {
    const networkOpen = state.pane === "network";
    networkButton.setAttribute("aria-current", networkOpen ? "true" : "false");
    networkButton.parentElement?.classList.toggle("selected", networkOpen);
    const identityOpen = state.pane === "identity";
    identityButton.setAttribute("aria-current", identityOpen ? "true" : "false");
    identityButton.parentElement?.classList.toggle("selected", identityOpen);
    empty.hidden = state.dmPeers.length > 0;
    setChildren(
      list,
      ...state.dmPeers.map((peer) => {
        const selected = state.pane === "dm" && state.selectedDm === peer;
        const unread = state.dmUnread[peer] ?? 0;
        const online = state.peers.find((p) => p.id === peer)?.connected ?? false;
        const button = h(
          "button",
          {
            type: "button",
            class: "room-select",
            "aria-current": selected ? "true" : null,
            title: `Direct messages with ${nameOf(state, peer)} (${fingerprintOf(state, peer)})`,
          },
          h("span", { class: `dot ${online ? "online" : "offline"}`, "aria-label": online ? "online" : "offline" }),
          h("span", { class: "room-name" }, nameOf(state, peer)),
          unread > 0 ? h("span", { class: "badge unread", title: `${unread} new` }, String(unread)) : null,
        );
        button.addEventListener("click", () => void store.openDm(peer));
        return h("li", { class: `room dm${selected ? " selected" : ""}`, "data-dm-peer": peer }, button);
      }),
    );
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (
      state.dmPeers !== previous.dmPeers ||
      state.dmUnread !== previous.dmUnread ||
      state.pane !== previous.pane ||
      state.selectedDm !== previous.selectedDm ||
      state.peers !== previous.peers ||
      state.dms !== previous.dms
    ) {
      render(state);
    }
  });
}
