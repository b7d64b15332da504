// Sidebar: the network map and identity & export entries, and direct conversations of this session.

import { h } from "../lib/dom";
import { focusComposer, focusHeading, renderKeyed, rovingList } from "../lib/keyboard";
import { fingerprintOf, nameOf, type AppState, type Store } from "../store";

const SVG = "http://www.w3.org/2000/svg";

/** A 16 px line icon (drawn, so it never depends on a font having the glyph). */
function icon(kind: "network" | "key"): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  for (const [k, v] of Object.entries({
    viewBox: "0 0 16 16",
    width: "16",
    height: "16",
    class: "nav-icon",
    "aria-hidden": "true",
    focusable: "false",
  })) {
    svg.setAttribute(k, v);
  }
  const shapes: [string, Record<string, string>][] =
    kind === "network"
      ? [
          ["circle", { cx: "8", cy: "8", r: "2.2" }],
          ["circle", { cx: "8", cy: "8", r: "6" }],
        ]
      : [
          ["circle", { cx: "5", cy: "8", r: "3" }],
          ["path", { d: "M8 8h7M12.5 8v3M14.5 8v2" }],
        ];
  for (const [tag, attrs] of shapes) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    svg.append(el);
  }
  return svg;
}

export function mountDirect(root: HTMLElement, store: Store): () => void {
  const networkButton = h(
    "button",
    { id: "network-button", type: "button", class: "room-select nav-entry" },
    h("span", { class: "room-hash" }, icon("network")),
    h("span", { class: "room-name" }, "Network"),
  );
  // The pane heading takes focus: screen readers announce it, Tab goes on into the pane, and
  // Escape comes back to the room.
  networkButton.addEventListener("click", () => {
    void store.showNetwork();
    focusHeading(document.getElementById("network-view"));
  });
  const identityButton = h(
    "button",
    { id: "identity-button", type: "button", class: "room-select nav-entry" },
    h("span", { class: "room-hash" }, icon("key")),
    h("span", { class: "room-name" }, "Identity & export"),
  );
  identityButton.addEventListener("click", () => {
    store.showIdentity();
    focusHeading(document.getElementById("identity-view"));
  });
  const list = h("ul", { id: "dm-peer-list", class: "room-list", "aria-label": "Direct conversations" });
  const empty = h("p", { class: "muted empty", id: "dms-empty" }, "Use “Message” on a peer to write directly.");
  root.appendChild(
    h(
      "section",
      { class: "sidebar-section direct" },
      h(
        "ul",
        { class: "room-list", "aria-label": "Views" },
        h("li", { class: "room" }, networkButton),
        h("li", { class: "room" }, identityButton),
      ),
      h("h2", {}, "Direct"),
      list,
      empty,
    ),
  );
  const roving = rovingList(list, {
    rowAttr: "data-dm-peer",
    primary: ".room-select",
    preferred: () => store.state.selectedDm,
  });

  const dmItem = (peer: string, state: AppState): HTMLLIElement => {
    const selected = state.pane === "dm" && state.selectedDm === peer;
    const unread = state.dmUnread[peer] ?? 0;
    const online = state.peers.find((p) => p.id === peer)?.connected ?? false;
    const name = nameOf(state, peer);
    const button = h(
      "button",
      {
        type: "button",
        class: "room-select",
        "data-slot": "select",
        "aria-current": selected ? "true" : null,
        "aria-label": [`Direct messages with ${name}`, online ? "online" : "offline", unread > 0 ? `${unread} new` : null]
          .filter(Boolean)
          .join(", "),
        title: `Direct messages with ${name} (${fingerprintOf(state, peer)})`,
      },
      h("span", { class: `dot ${online ? "online" : "offline"}`, "aria-hidden": "true" }),
      h("span", { class: "room-name" }, name),
      unread > 0 ? h("span", { class: "badge unread", title: `${unread} new` }, String(unread)) : null,
    );
    button.addEventListener("click", () => {
      void store.openDm(peer);
      focusComposer();
    });
    return h("li", { class: `room dm${selected ? " selected" : ""}`, "data-dm-peer": peer }, button);
  };

  const rows = new Map<string, { sig: string; el: HTMLElement }>();
  const render = (state: AppState): void => {
    const networkOpen = state.pane === "network";
    networkButton.setAttribute("aria-current", networkOpen ? "true" : "false");
    networkButton.parentElement?.classList.toggle("selected", networkOpen);
    const identityOpen = state.pane === "identity";
    identityButton.setAttribute("aria-current", identityOpen ? "true" : "false");
    identityButton.parentElement?.classList.toggle("selected", identityOpen);
    empty.hidden = state.dmPeers.length > 0;
    roving.render(() =>
      renderKeyed(
        list,
        state.dmPeers.map((peer) => ({
          key: peer,
          sig: JSON.stringify([
            state.pane === "dm" && state.selectedDm === peer,
            state.dmUnread[peer] ?? 0,
            state.peers.find((p) => p.id === peer)?.connected ?? false,
            nameOf(state, peer),
            fingerprintOf(state, peer),
          ]),
          build: () => dmItem(peer, state),
        })),
        rows,
      ),
    );
  };

  render(store.state);
  const stopStore = store.subscribe((state, previous) => {
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
  return () => {
    stopStore();
    roving.stop();
  };
}
