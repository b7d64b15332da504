// The network map: an SVG with this node in the centre and others on rings by hop distance.

import { visibleText } from "../lib/text";
import { h } from "../lib/dom";
import { layoutNetwork } from "../lib/network";
import { healthLine, linkText } from "../lib/health";
import type { LinkHealth } from "../bindings/LinkHealth";
import { peerLink, type AppState, type Store } from "../store";

const SVG = "http://www.w3.org/2000/svg";
/** Longest node label drawn on the map (characters). */
const MAX_LABEL = 28;

function s<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  ...children: (SVGElement | string)[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

export function mountNetwork(root: HTMLElement, store: Store): () => void {
  // Focusable from code only (the sidebar entry moves focus here), not a tab stop.
  const title = h("h1", { id: "network-title", tabindex: -1 }, "Network");
  const subtitle = h("p", { id: "network-subtitle", class: "muted" });
  const health = h("p", { id: "network-health", class: "network-health" });
  const header = h("header", { class: "room-header" }, title, subtitle, health);
  const figure = h("div", { id: "network-map", class: "network-map" });
  root.append(header, figure);

  // The map is laid out at the size it is shown (so its labels keep their CSS size instead of
  // being scaled down in a small window); the default until the figure is measured.
  let size = { width: 760, height: 560 };

  const render = (state: AppState): void => {
    const network = state.network ?? { nodes: [], links: [] };
    const others = network.nodes.filter((n) => !n.me);
    const reachable = others.filter((n) => n.hops !== null).length;
    subtitle.textContent = `${others.length} other ${others.length === 1 ? "node" : "nodes"} known · ${reachable} reachable · ${network.links.length} ${network.links.length === 1 ? "link" : "links"}`;
    health.textContent = state.health ? healthLine(state.health) : "";
    health.dataset.summary = state.health?.summary ?? "";
    health.hidden = state.health === null;
    // Only this node's own links are measured (QUIC statistics); the others are drawn plain.
    const meId = network.nodes.find((n) => n.me)?.id;
    const linkOf = (id: string): LinkHealth | null => {
      const peer = state.peers.find((p) => p.id === id);
      return peer ? peerLink(state, peer) : (state.links[id] ?? null);
    };
    const map = layoutNetwork(network, size.width, size.height);
    const svg = s("svg", {
      viewBox: `0 0 ${map.width} ${map.height}`,
      role: "img",
      "aria-label": `Network map: ${network.nodes
        .map((n) => `${visibleText(n.name) || n.fingerprint}${n.me ? " (this node)" : n.hops !== null ? `, ${n.hops} hops` : ", unreachable"}`)
        .join("; ")}`,
    });
    for (const r of map.rings) {
      svg.append(s("circle", { cx: map.width / 2, cy: map.height / 2, r, class: "ring" }));
    }
    for (const l of map.links) {
      const other = l.a === meId ? l.b : l.b === meId ? l.a : null;
      const measured = other !== null ? linkOf(other) : null;
      svg.append(
        s(
          "line",
          {
            x1: l.x1,
            y1: l.y1,
            x2: l.x2,
            y2: l.y2,
            class: measured ? `link measured quality-${measured.quality}` : "link",
            "data-link": `${l.a}-${l.b}`,
          },
          ...(measured ? [s("title", {}, `${measured.quality} link · ${linkText(measured)}`)] : []),
        ),
      );
    }
    const nodeLink = (id: string): string => {
      const link = id === meId ? null : linkOf(id);
      return link ? `\n${link.quality} link · ${linkText(link)}` : "";
    };
    for (const n of map.nodes) {
      const full = visibleText(n.name) || "(no name)";
      // Long names would run into the neighbours' labels: cut short, the tooltip has it all.
      const label = full.length > MAX_LABEL ? `${full.slice(0, MAX_LABEL - 1).trimEnd()}…` : full;
      // Labels go outward (above nodes in the upper half) so links to the centre do not cross them.
      const above = !n.me && n.y < map.height / 2 - 1;
      const r = n.me ? 14 : 10;
      const nameY = above ? -r - 22 : r + 16;
      const hops = n.me ? "this node" : n.hops !== null ? `${n.hops} ${n.hops === 1 ? "hop" : "hops"}` : "unreachable";
      svg.append(
        s(
          "g",
          {
            class: `node${n.me ? " me" : ""}${n.connected ? " connected" : ""}${n.hops === null ? " unreachable" : ""}`,
            "data-node-id": n.id,
            transform: `translate(${n.x.toFixed(1)} ${n.y.toFixed(1)})`,
          },
          s("title", {}, `${full} · ${n.fingerprint} · ${hops}${nodeLink(n.id)}\n${n.id}`),
          s("circle", { r }),
          s("text", { y: nameY, class: "node-name" }, label),
          s("text", { y: nameY + 14, class: "node-meta" }, `${n.fingerprint} · ${hops}`),
        ),
      );
    }
    figure.replaceChildren(svg);
  };

  render(store.state);
  const resize =
    typeof ResizeObserver === "undefined"
      ? null
      : new ResizeObserver((entries) => {
          const box = entries[entries.length - 1]?.contentRect;
          if (!box || box.width < 1 || box.height < 1) return; // hidden
          const next = { width: Math.max(320, Math.round(box.width)), height: Math.max(260, Math.round(box.height)) };
          if (next.width === size.width && next.height === size.height) return;
          size = next;
          if (store.state.pane === "network") render(store.state);
        });
  resize?.observe(figure);
  const stopStore = store.subscribe((state, previous) => {
    if (
      state.pane === "network" &&
      (state.network !== previous.network ||
        state.pane !== previous.pane ||
        state.health !== previous.health ||
        state.links !== previous.links ||
        state.peers !== previous.peers)
    ) {
      render(state);
    }
  });
  return () => {
    stopStore();
    resize?.disconnect();
  };
}
