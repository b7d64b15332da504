// Delivery states, unread counts and day/new markers, direct conversations, the network map.

import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { MessageView } from "../src/bindings/MessageView";
import { ENGINE_EVENT, tauriBackend } from "../src/ipc";
import { dayKey, deliveryLabel, layoutRows, MAX_DM_BYTES, updateDelivery } from "../src/lib/messages";
import { layoutNetwork } from "../src/lib/network";
import { composeTarget, Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { FakeEngine, linkHealth, peerView, SELF_ID, settle } from "./fakeEngine";

const BEN = "be".repeat(32);
const CHIOMA = "c0".repeat(32);

let engine: FakeEngine;
let store: Store;
let root: HTMLElement;
let unmount: () => void;

const $ = <T extends Element = HTMLElement>(sel: string): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`${sel} not found`);
  return el;
};
const texts = (sel: string): string[] =>
  [...root.querySelectorAll(sel)].map((e) => e.textContent ?? "");

beforeEach(() => {
  engine = new FakeEngine();
  engine.install();
  engine.identity.name = "Amara";
  root = document.createElement("div");
  document.body.replaceChildren(root);
  store = new Store(tauriBackend);
  unmount = mountApp(root, store);
});

afterEach(() => {
  unmount();
  store.stop();
  clearMocks();
});

describe("delivery state", () => {
  it("labels messages written here only", () => {
    const m = { local: true, sent_to: 0, held_by: 0 };
    expect(deliveryLabel(m)).toBe("stored locally");
    expect(deliveryLabel({ ...m, sent_to: 2 })).toBe("sent to 2");
    expect(deliveryLabel({ ...m, sent_to: 2, held_by: 1 })).toBe("held by 1");
    expect(deliveryLabel({ ...m, local: false, sent_to: 2 })).toBeNull();
  });

  it("updates only changed delivery fields, keeping the array when nothing changed", () => {
    const a = { id: "a", sent_to: 0, held_by: 0 } as MessageView;
    const list = [a];
    expect(updateDelivery(list, [{ ...a }])).toBe(list);
    expect(updateDelivery(list, [{ ...a, held_by: 3 }])[0]?.held_by).toBe(3);
  });

  it("shows the state under sent messages and updates it from delivery events", async () => {
    engine.joined.add("medical");
    engine.message("medical", "from Ben", BEN, "Ben");
    await store.start();
    await store.send("stretchers needed");
    await settle();
    const mine = store.state.messages.medical?.items.find((m) => m.local);
    expect(texts('[data-testid="delivery"]')).toEqual(["stored locally"]);
    await emit(ENGINE_EVENT, { type: "delivery", id: mine?.id, sent_to: 2, held_by: 0 });
    await settle();
    expect(texts('[data-testid="delivery"]')).toEqual(["sent to 2"]);
    await emit(ENGINE_EVENT, { type: "delivery", id: mine?.id, sent_to: 2, held_by: 1 });
    await settle();
    expect(texts('[data-testid="delivery"]')).toEqual(["held by 1"]);
  });

  it("reloads the room's page on delivery_changed", async () => {
    engine.joined.add("medical");
    await store.start();
    await store.send("one");
    await settle();
    // (new objects: the mock IPC hands out references, the real one copies)
    engine.stored = engine.stored.map((m) => ({ ...m, held_by: 2 }));
    await emit(ENGINE_EVENT, { type: "delivery_changed", room: "medical" });
    await settle();
    expect(texts('[data-testid="delivery"]')).toEqual(["held by 2"]);
    expect(engine.calls.filter((c) => c.cmd === "messages").at(-1)?.args.room).toBe("medical");
  });
});

describe("unread counts and markers", () => {
  it("counts messages in other rooms, clears them on open and marks where new ones start", async () => {
    engine.joined.add("medical");
    engine.joined.add("shelter");
    engine.message("shelter", "old news", BEN, "Ben");
    await store.start();
    expect(store.state.selectedRoom).toBe("medical");
    await store.selectRoom("shelter");
    await store.selectRoom("medical");
    for (const body of ["beds free", "water arrived"]) {
      await emit(ENGINE_EVENT, { type: "message", message: engine.message("shelter", body, BEN, "Ben") });
    }
    await settle();
    expect($('[data-room="shelter"] .badge.unread').textContent).toBe("2");
    $<HTMLButtonElement>('[data-room="shelter"] .room-select').click();
    await settle();
    expect(root.querySelector('[data-room="shelter"] .badge')).toBeNull();
    const rows = [...$("#message-list").children].map((e) =>
      e.classList.contains("new-marker") ? "NEW" : e.classList.contains("day-separator") ? "DAY" : e.textContent,
    );
    expect(rows[0]).toBe("DAY");
    expect(rows.indexOf("NEW")).toBe(2); // day, "old news", NEW, "beds free", ...
    // The marker goes once another room is opened.
    await store.selectRoom("medical");
    expect(store.state.newMarker.shelter).toBeUndefined();
  });

  it("puts a day separator before the first message of each day", () => {
    const now = new Date(2026, 2, 4, 12);
    const at = (d: number, h: number, id: string): { id: string; timestamp: number } => ({
      id,
      timestamp: new Date(2026, 2, d, h).getTime(),
    });
    const rows = layoutRows([at(2, 9, "a"), at(3, 9, "b"), at(3, 10, "c"), at(4, 8, "d")], "c", now);
    expect(rows.map((r) => (r.kind === "item" ? r.item.id : r.kind === "day" ? r.label : "NEW"))).toEqual([
      expect.stringContaining("2026"),
      "a",
      "Yesterday",
      "b",
      "NEW",
      "c",
      "Today",
      "d",
    ]);
    expect(dayKey(new Date(2026, 0, 5, 23, 59).getTime())).toBe("2026-01-05");
  });
});

describe("direct conversations", () => {
  it("opens from the peer list, loads the log, sends and receives live", async () => {
    engine.peers.push(peerView({ id: BEN, name: "Ben", connected: true, hops: 1 }));
    engine.dm(BEN, "are you at the school?", false);
    await store.start();
    $<HTMLButtonElement>(`[data-peer-id="${BEN}"] .message-peer`).click();
    await settle();
    expect($("#dm-view").hidden).toBe(false);
    expect($("#room-view").hidden).toBe(true);
    expect($("#dm-title").textContent).toBe("Ben");
    expect(texts('[data-testid="dm"] .body')).toEqual(["are you at the school?"]);
    expect(texts("#dm-peer-list .room-name")).toEqual(["Ben"]);

    const composer = $<HTMLTextAreaElement>("#composer");
    expect(composer.placeholder).toContain("Ben");
    composer.value = "yes, team 3";
    composer.dispatchEvent(new Event("input"));
    $<HTMLFormElement>("#composer-form").requestSubmit();
    await settle();
    expect(engine.calls.find((c) => c.cmd === "send_dm")?.args).toEqual({ to: BEN, body: "yes, team 3", urgent: false });
    expect(texts('[data-testid="dm"] .body')).toEqual(["are you at the school?", "yes, team 3"]);

    await emit(ENGINE_EVENT, { type: "dm", dm: engine.dm(BEN, "thanks", false) });
    await settle();
    expect(texts('[data-testid="dm"] .body')).toHaveLength(3);
  });

  it("lists new conversations with unread counts and applies the DM size limit", async () => {
    engine.joined.add("medical");
    await store.start();
    await emit(ENGINE_EVENT, { type: "dm", dm: engine.dm(CHIOMA, "need help", false, "Chioma") });
    await settle();
    expect(texts("#dm-peer-list .room-name")).toEqual(["Chioma"]);
    expect($(`[data-dm-peer="${CHIOMA}"] .badge`).textContent).toBe("1");
    await store.openDm(CHIOMA);
    expect(store.state.dmUnread[CHIOMA]).toBeUndefined();
    expect(composeTarget(store.state).limit).toBe(MAX_DM_BYTES);
    expect(await store.sendDm("x".repeat(MAX_DM_BYTES + 1))).toBe(false);
    expect(engine.calls.some((c) => c.cmd === "send_dm")).toBe(false);
  });
});

describe("network map", () => {
  it("places this node in the centre and others on rings by hops", () => {
    const map = layoutNetwork(
      {
        nodes: [
          { id: SELF_ID, fingerprint: "a1b2-c3d4", name: "Amara", hops: 0, connected: false, me: true },
          { id: BEN, fingerprint: "bebe-bebe", name: "Ben", hops: 1, connected: true, me: false },
          { id: CHIOMA, fingerprint: "c0c0-c0c0", name: "Chioma", hops: 2, connected: false, me: false },
          { id: "dd".repeat(32), fingerprint: "dddd-dddd", name: "", hops: null, connected: false, me: false },
        ],
        links: [
          { a: SELF_ID, b: BEN },
          { a: BEN, b: CHIOMA },
        ],
      },
      600,
      600,
    );
    const dist = (id: string): number => {
      const n = map.nodes.find((x) => x.id === id);
      return Math.round(Math.hypot((n?.x ?? 0) - 300, (n?.y ?? 0) - 300));
    };
    expect(dist(SELF_ID)).toBe(0);
    expect(dist(BEN)).toBeLessThan(dist(CHIOMA));
    expect(dist(CHIOMA)).toBeLessThan(dist("dd".repeat(32)));
    expect(map.links).toHaveLength(2);
    expect(map.rings).toHaveLength(3);
  });

  it("opens from the sidebar, fetches the graph and follows network events", async () => {
    engine.network = {
      nodes: [
        { id: SELF_ID, fingerprint: "a1b2-c3d4", name: "Amara", hops: 0, connected: false, me: true },
        { id: BEN, fingerprint: "bebe-bebe", name: "Ben", hops: 1, connected: true, me: false },
      ],
      links: [{ a: SELF_ID, b: BEN }],
    };
    await store.start();
    $<HTMLButtonElement>("#network-button").click();
    await settle();
    expect($("#network-view").hidden).toBe(false);
    expect($("#composer-form").hidden).toBe(true);
    expect(root.querySelectorAll("#network-map .node")).toHaveLength(2);
    expect($("#network-map .node.me .node-name").textContent).toBe("Amara");
    expect($(`[data-node-id="${BEN}"] .node-meta`).textContent).toBe("bebe-bebe · 1 hop");
    expect(root.querySelectorAll("#network-map line")).toHaveLength(1);
    await emit(ENGINE_EVENT, {
      type: "network",
      network: { ...engine.network, nodes: engine.network.nodes.slice(0, 1), links: [] },
    });
    await settle();
    expect(root.querySelectorAll("#network-map .node")).toHaveLength(1);
  });
});

describe("network health", () => {
  it("colours this node's links by quality, shows RTT and loss, and follows health events", async () => {
    engine.peers = [
      peerView({ id: BEN, name: "Ben", connected: true, hops: 1, link: linkHealth({ rtt_us: 2_300 }) }),
      peerView({ id: CHIOMA, name: "Chioma", connected: true, hops: 1 }),
    ];
    engine.network = {
      nodes: [
        { id: SELF_ID, fingerprint: "a1b2-c3d4", name: "Amara", hops: 0, connected: false, me: true },
        { id: BEN, fingerprint: "bebe-bebe", name: "Ben", hops: 1, connected: true, me: false },
        { id: CHIOMA, fingerprint: "c0c0-c0c0", name: "Chioma", hops: 1, connected: true, me: false },
      ],
      links: [
        { a: SELF_ID, b: BEN },
        { a: CHIOMA, b: SELF_ID },
        { a: BEN, b: CHIOMA },
      ],
    };
    engine.health = { ...engine.health, summary: "good", links: 1, median_rtt_us: 2_300, worst_rtt_us: 2_300, worst_loss_permille: 0 };
    await store.start();
    $<HTMLButtonElement>("#network-button").click();
    await settle();
    const line = (a: string, b: string): SVGLineElement =>
      $<SVGLineElement>(`#network-map line[data-link="${a}-${b}"]`) as unknown as SVGLineElement;
    expect(line(SELF_ID, BEN).getAttribute("class")).toBe("link measured quality-good");
    expect(line(SELF_ID, BEN).querySelector("title")?.textContent).toContain("RTT 2.3 ms · loss 0.0 %");
    // Not measured yet, and a link between two others: plain.
    expect(line(CHIOMA, SELF_ID).getAttribute("class")).toBe("link");
    expect(line(BEN, CHIOMA).getAttribute("class")).toBe("link");
    expect($("#network-health").textContent).toContain("Network health: good · 1 link, RTT median 2.3 ms");
    expect($(`#peer-list [data-peer-id="${BEN}"] .link-rtt`).textContent).toBe("2 ms");

    // A health event: Chioma's link is poor now, the summary says so; no polling.
    const calls = engine.calls.length;
    await emit(ENGINE_EVENT, {
      type: "health",
      health: { ...engine.health, summary: "degraded", links: 2, worst_rtt_us: 650_000 },
      links: [
        { id: BEN, link: linkHealth({ rtt_us: 2_300 }) },
        { id: CHIOMA, link: linkHealth({ rtt_us: 650_000, loss_permille: 120, quality: "poor" }) },
      ],
    });
    await settle();
    expect(engine.calls.length).toBe(calls);
    expect(line(CHIOMA, SELF_ID).getAttribute("class")).toBe("link measured quality-poor");
    expect(line(CHIOMA, SELF_ID).querySelector("title")?.textContent).toContain("loss 12.0 %");
    expect($("#network-health").textContent).toContain("Network health: degraded");
    expect($("#network-health").dataset.summary).toBe("degraded");
    const chioma = $(`#peer-list [data-peer-id="${CHIOMA}"] .link-rtt`);
    expect(chioma.textContent).toBe("650 ms");
    expect(chioma.dataset.quality).toBe("poor");
  });
});

describe("missed events", () => {
  it("reloads the open direct conversation", async () => {
    await store.start();
    await store.openDm(BEN);
    engine.dm(BEN, "sent while lagging", false);
    await emit("engine-lagged", 2);
    await settle();
    expect(store.state.dms[BEN]?.items.map((d) => d.body)).toEqual(["sent while lagging"]);
  });
});

describe("blocking an author", () => {
  it("asks in place, hides the author's messages, and the identity pane unblocks them", async () => {
    engine.joined.add("medical");
    engine.message("medical", "spam spam", BEN, "Ben");
    engine.message("medical", "beds free at the school", CHIOMA, "Chioma");
    engine.message("medical", "mine", SELF_ID, "Amara");
    await store.start();
    await store.selectRoom("medical");
    await settle();
    expect(texts("#message-list .body")).toEqual(["spam spam", "beds free at the school", "mine"]);
    // Own messages have no block button.
    expect(root.querySelectorAll(".message.local .block-author")).toHaveLength(0);
    const button = $<HTMLButtonElement>(`.block-author[data-author="${BEN}"]`);
    button.click();
    // Nothing happens before the confirmation; Cancel restores the button.
    expect(engine.calls.some((c) => c.cmd === "block")).toBe(false);
    expect($(".block-confirm").textContent).toContain("Hide and stop relaying everything from Ben?");
    $<HTMLButtonElement>(".block-no").click();
    expect(root.querySelector(".block-confirm")).toBeNull();
    $<HTMLButtonElement>(`.block-author[data-author="${BEN}"]`).click();
    $<HTMLButtonElement>(".block-yes").click();
    await settle();
    expect(engine.calls.find((c) => c.cmd === "block")?.args).toEqual({ author: BEN, blocked: true });
    expect(texts("#message-list .body")).toEqual(["beds free at the school", "mine"]);
    expect(store.state.blocked.map((b) => b.id)).toEqual([BEN]);
    // The identity pane lists Ben; Unblock brings his messages back.
    $<HTMLButtonElement>("#identity-button").click();
    await settle();
    expect(texts("#blocked-list .author")).toEqual(["Ben"]);
    $<HTMLButtonElement>(`#blocked-list .unblock[data-author="${BEN}"]`).click();
    await settle();
    expect(engine.calls.filter((c) => c.cmd === "block").at(-1)?.args).toEqual({ author: BEN, blocked: false });
    expect(texts("#blocked-list li")).toEqual(["Nobody is blocked."]);
    await store.selectRoom("medical");
    await settle();
    expect(texts("#message-list .body")).toEqual(["spam spam", "beds free at the school", "mine"]);
  });
});
