// Pure layout of the network map: this node in the centre, others on rings by hop distance.

import type { NetworkView } from "../bindings/NetworkView";

export interface PlacedNode {
  id: string;
  x: number;
  y: number;
  name: string;
  fingerprint: string;
  hops: number | null;
  me: boolean;
  connected: boolean;
}

export interface PlacedLink {
  a: string;
  b: string;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface MapLayout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  links: PlacedLink[];
  /** Ring radii, innermost (1 hop) first; the last one holds unreachable nodes if any. */
  rings: number[];
}

/** Lays out `network` in a `width`×`height` box. Unreachable nodes go on an outer ring. */
export function layoutNetwork(network: NetworkView, width = 760, height = 560): MapLayout {
  const cx = width / 2;
  const cy = height / 2;
  const byRing = new Map<number, NetworkView["nodes"]>();
  let maxHops = 0;
  for (const n of network.nodes) {
    if (n.me) continue;
    if (n.hops !== null) maxHops = Math.max(maxHops, n.hops);
  }
  const unreachableRing = maxHops + 1;
  for (const n of network.nodes) {
    if (n.me) continue;
    const ring = n.hops !== null && n.hops > 0 ? n.hops : unreachableRing;
    byRing.set(ring, [...(byRing.get(ring) ?? []), n]);
  }
  const ringCount = Math.max(1, ...byRing.keys());
  const maxRadius = Math.min(width, height) / 2 - 50;
  const step = maxRadius / ringCount;
  const nodes: PlacedNode[] = [];
  const me = network.nodes.find((n) => n.me);
  if (me) {
    nodes.push({ ...me, x: cx, y: cy, hops: 0 });
  }
  const rings: number[] = [];
  for (let ring = 1; ring <= ringCount; ring++) {
    const r = step * ring;
    rings.push(r);
    const members = [...(byRing.get(ring) ?? [])].sort((a, b) => a.id.localeCompare(b.id));
    members.forEach((n, i) => {
      const angle = -Math.PI / 2 + (2 * Math.PI * i) / members.length + (ring % 2 ? 0 : Math.PI / members.length);
      nodes.push({ ...n, x: cx + r * Math.cos(angle), y: cy + r * Math.sin(angle) });
    });
  }
  const at = new Map(nodes.map((n) => [n.id, n]));
  const links: PlacedLink[] = [];
  for (const l of network.links) {
    const a = at.get(l.a);
    const b = at.get(l.b);
    if (a && b) links.push({ a: l.a, b: l.b, x1: a.x, y1: a.y, x2: b.x, y2: b.y });
  }
  return { width, height, nodes, links, rings };
}
