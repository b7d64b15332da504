// Sidebar: relays, nodes at other sites' reach (a `disasternet node --relay` on a server) that
// this laptop keeps dialling. Add one by address (`relay.example.org:7300`, `[2001:db8::7]:7300`),
// see whether each is connected, remove it. The peer list badges the node that answered.

import { h } from "../lib/dom";
import { visibleText } from "../lib/text";
import type { RelayView } from "../bindings/RelayView";
import { relayConnected, type AppState, type Store } from "../store";

export function mountRelays(root: HTMLElement, store: Store): () => void {
  const input = h("input", {
    id: "relay-input",
    type: "text",
    maxlength: 300,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "host:7300",
    "aria-label": "Relay address (host:port)",
    "aria-describedby": "relay-problem",
    title: "A relay's address: a name or IP and its port, e.g. relay.example.org:7300 or [2001:db8::7]:7300",
  });
  const add = h("button", { id: "relay-add", type: "submit" }, "Add");
  const form = h("form", { id: "relay-form", class: "inline-form" }, input, add);
  const problem = h("p", { id: "relay-problem", class: "form-problem", role: "alert", hidden: true });
  const list = h("ul", { id: "relay-list", class: "peer-list relay-list", "aria-label": "Relays" });
  const empty = h(
    "p",
    { class: "muted empty", id: "relays-empty" },
    "No relay. Add one to reach other sites over the internet.",
  );
  const count = h("span", { class: "section-count", id: "relay-section-count" });
  root.appendChild(
    h("section", { class: "sidebar-section relays" }, h("h2", {}, "Relays ", count), list, empty, form, problem),
  );

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.addRelay(input.value).then((ok) => {
      if (ok) input.value = "";
    });
  });

  const relayItem = (relay: RelayView, connected: boolean): HTMLLIElement => {
    const remove = h(
      "button",
      {
        type: "button",
        class: "link relay-remove",
        "aria-label": `Remove relay ${relay.addr}`,
        title: "Stop dialling this relay",
      },
      "Remove",
    );
    remove.addEventListener("click", () => void store.removeRelay(relay.addr));
    const state = relay.key_changed
      ? `${connected ? "connected" : "not connected"}, new key: not trusted (remove and add it again if the relay was reinstalled)`
      : connected
        ? "connected"
        : relay.id === null
          ? "not reached yet"
          : "not connected";
    return h(
      "li",
      {
        class: `relay ${connected ? "online" : "offline"}`,
        "data-relay-addr": relay.addr,
        "data-connected": String(connected),
        title: [relay.addr, state, relay.fingerprint, visibleText(relay.name ?? "") || null]
          .filter(Boolean)
          .join(" · "),
      },
      h("span", { class: "dot", role: "img", "aria-label": state }),
      h(
        "span",
        { class: "peer-info" },
        h("code", { class: "peer-name relay-addr" }, relay.addr),
        h("span", { class: "peer-meta relay-state" }, state),
      ),
      remove,
    );
  };

  const render = (state: AppState): void => {
    const relays = state.relays.map((r) => ({ relay: r, connected: relayConnected(state, r) }));
    const online = relays.filter((r) => r.connected).length;
    count.textContent = relays.length > 0 ? `${online}/${relays.length}` : "";
    count.setAttribute("aria-label", relays.length > 0 ? `${online} of ${relays.length} connected` : "");
    empty.hidden = relays.length > 0;
    list.replaceChildren(...relays.map(({ relay, connected }) => relayItem(relay, connected)));
    add.disabled = state.relayForm.busy;
    problem.hidden = state.relayForm.problem === null;
    problem.textContent = state.relayForm.problem ?? "";
    input.setAttribute("aria-invalid", String(state.relayForm.problem !== null));
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (state.relays !== previous.relays || state.peers !== previous.peers || state.relayForm !== previous.relayForm) {
      render(state);
    }
  });
}
