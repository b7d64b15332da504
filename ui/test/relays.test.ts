import { emit } from "@tauri-apps/api/event";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ENGINE_EVENT, tauriBackend } from "../src/ipc";
import { Store, relayConnected } from "../src/store";
import { mountApp } from "../src/views/app";
import { FakeEngine, peerView, settle } from "./fakeEngine";

let engine: FakeEngine;
let store: Store;
let root: HTMLElement;
let unmount: () => void;

const $ = <T extends Element = HTMLElement>(sel: string): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`${sel} not found`);
  return el;
};

const RELAY_ID = "e".repeat(64);

beforeEach(async () => {
  engine = new FakeEngine();
  engine.identity.name = "Amara";
  engine.install();
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

function addRelay(text: string): void {
  const input = $<HTMLInputElement>("#relay-input");
  input.value = text;
  input.dispatchEvent(new Event("input", { bubbles: true }));
  $<HTMLFormElement>("#relay-form").requestSubmit();
}

describe("relays", () => {
  it("adds a relay by address, lists it as not reached yet, and removes it", async () => {
    await store.start();
    expect($("#relays-empty").hidden).toBe(false);
    addRelay("  relay.example.org:7300 ");
    await settle();
    // Trimmed before it is sent.
    expect(engine.calls.filter((c) => c.cmd === "add_relay").map((c) => c.args.addr)).toEqual([
      "relay.example.org:7300",
    ]);
    const rows = [...root.querySelectorAll<HTMLElement>("#relay-list .relay")];
    expect(rows.map((r) => r.dataset.relayAddr)).toEqual(["relay.example.org:7300"]);
    expect(rows[0]?.textContent).toContain("not reached yet");
    expect($<HTMLInputElement>("#relay-input").value).toBe("");
    expect($("#relays-empty").hidden).toBe(true);
    $<HTMLButtonElement>("#relay-list .relay-remove").click();
    await settle();
    expect(root.querySelectorAll("#relay-list .relay")).toHaveLength(0);
    expect(engine.relays).toEqual([]);
  });

  it("shows why an address is refused beside the form and keeps the text", async () => {
    await store.start();
    addRelay("no port here");
    await settle();
    expect($("#relay-problem").hidden).toBe(false);
    expect($("#relay-problem").textContent).toContain("expected HOST:PORT");
    expect($<HTMLInputElement>("#relay-input").value).toBe("no port here");
    expect($("#relay-input").getAttribute("aria-invalid")).toBe("true");
    expect(store.state.errors).toHaveLength(0);
    addRelay("[2001:db8::7]:7300");
    await settle();
    expect($("#relay-problem").hidden).toBe(true);
    expect(engine.relays.map((r) => r.addr)).toEqual(["[2001:db8::7]:7300"]);
  });

  it("badges the relay in the peer list and follows its connection from peer events", async () => {
    engine.relays = [
      { addr: "10.0.0.9:7300", id: RELAY_ID, fingerprint: "eeee-eeee", name: "", connected: true, key_changed: false },
    ];
    engine.peers = [
      peerView({ id: RELAY_ID, name: "", connected: true, relay: true, relay_addr: "10.0.0.9:7300" }),
      peerView({ id: "b".repeat(64), name: "Ben", connected: true }),
    ];
    await store.start();
    const relayRow = $(`.peer[data-peer-id="${RELAY_ID}"]`);
    expect(relayRow.querySelector(".relay-badge")?.textContent).toBe("relay");
    expect(relayRow.textContent).toContain("Relay");
    expect($(`.peer[data-peer-id="${"b".repeat(64)}"]`).querySelector(".relay-badge")).toBeNull();
    expect($("#relay-list .relay").dataset.connected).toBe("true");
    expect($("#relay-section-count").textContent).toBe("1/1");
    // The relay drops off: the peer event alone updates the Relays section.
    const gone = peerView({ id: RELAY_ID, name: "", connected: false, relay: true, relay_addr: "10.0.0.9:7300" });
    await emit(ENGINE_EVENT, { type: "peer", peer: gone });
    await settle();
    expect($("#relay-list .relay").dataset.connected).toBe("false");
    expect($("#relay-list .relay").textContent).toContain("not connected");
    expect($("#relay-section-count").textContent).toBe("0/1");
  });

  it("says when a different node than the first one answers at a relay address", async () => {
    engine.relays = [
      { addr: "10.0.0.9:7300", id: RELAY_ID, fingerprint: "eeee-eeee", name: "", connected: true, key_changed: true },
    ];
    engine.peers = [peerView({ id: RELAY_ID, name: "", connected: true, relay: true, relay_addr: "10.0.0.9:7300" })];
    await store.start();
    const row = $("#relay-list .relay");
    expect(row.textContent).toContain("new key: not trusted");
    expect(row.title).toContain("remove and add it again");
  });

  it("learns which node a new relay is from the first peer event naming it", async () => {
    await store.start();
    addRelay("relay.example.org:7300");
    await settle();
    const relay = store.state.relays[0];
    expect(relay && relayConnected(store.state, relay)).toBe(false);
    // The engine reached it: its list now names the node, and a peer event says so.
    engine.relays = [
      { addr: "relay.example.org:7300", id: RELAY_ID, fingerprint: "eeee-eeee", name: "", connected: true, key_changed: false },
    ];
    const up = peerView({ id: RELAY_ID, name: "", connected: true, relay: true, relay_addr: "relay.example.org:7300" });
    await emit(ENGINE_EVENT, { type: "peer", peer: up });
    await settle();
    expect(store.state.relays[0]?.id).toBe(RELAY_ID);
    expect($("#relay-list .relay").dataset.connected).toBe("true");
  });
});
