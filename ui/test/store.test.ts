import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EngineEvent } from "../src/bindings/EngineEvent";
import { ENGINE_EVENT, ENGINE_LAGGED_EVENT, tauriBackend } from "../src/ipc";
import { MAX_BODY_BYTES } from "../src/lib/messages";
import { isOnline, PAGE_SIZE, Store } from "../src/store";
import { FakeEngine, peerView, settle } from "./fakeEngine";

let engine: FakeEngine;
let store: Store;

beforeEach(() => {
  engine = new FakeEngine();
  engine.install();
  store = new Store(tauriBackend);
});

afterEach(() => {
  store.stop();
  clearMocks();
});

describe("store", () => {
  it("loads identity, status, rooms and peers, and selects the first joined room", async () => {
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    engine.message("medical", "hello");
    await store.start();
    const s = store.state;
    expect(s.phase).toBe("ready");
    expect(s.identity?.name).toBe("Amara");
    expect(s.rooms.map((r) => r.name)).toEqual(["medical"]);
    expect(s.selectedRoom).toBe("medical");
    expect(s.messages.medical?.items.map((m) => m.body)).toEqual(["hello"]);
    expect(s.messages.medical?.hasMore).toBe(false);
    expect(isOnline(s)).toBe(false);
  });

  it("a peer that connects while the peer list loads stays listed", async () => {
    engine.identity.name = "Amara";
    let release = (): void => {};
    engine.peersGate = new Promise((r) => (release = r));
    const starting = store.start();
    await settle();
    // The list was asked for before Ben connected; his event arrives before the answer.
    const ben = peerView({ id: "b".repeat(64), name: "Ben", connected: true });
    await emit(ENGINE_EVENT, { type: "peer", peer: ben } satisfies EngineEvent);
    release();
    await starting;
    await settle();
    expect(store.state.peers.map((p) => [p.name, p.connected])).toEqual([["Ben", true]]);
    // A later full reload (engine state is the truth again) keeps him too.
    engine.peersGate = null;
    engine.peers = [ben];
    await store.reload();
    expect(store.state.peers).toHaveLength(1);
  });

  it("goes to the failed phase when the engine could not start", async () => {
    engine.startError = { code: "busy", message: "another node runs on this data dir" };
    await store.start();
    expect(store.state.phase).toBe("failed");
    expect(store.state.fatal?.code).toBe("busy");
    expect(store.state.errors[0]?.message).toContain("another node");
  });

  it("sets the name, joins a room and sends a message", async () => {
    await store.start();
    expect(store.state.identity?.name).toBeNull();
    expect(await store.setName("  Amara ")).toBe(true);
    expect(store.state.identity?.name).toBe("Amara");
    expect(await store.joinRoom("Medical")).toBe(true);
    expect(store.state.selectedRoom).toBe("medical");
    expect(await store.send("need insulin at the school")).toBe(true);
    expect(store.state.messages.medical?.items.map((m) => m.body)).toEqual([
      "need insulin at the school",
    ]);
    expect(engine.calls.find((c) => c.cmd === "send")?.args).toEqual({
      room: "medical",
      body: "need insulin at the school",
      urgent: false,
    });
  });

  it("refuses an over-limit message without calling the engine", async () => {
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    await store.start();
    expect(await store.send("x".repeat(MAX_BODY_BYTES + 1))).toBe(false);
    expect(engine.calls.some((c) => c.cmd === "send")).toBe(false);
    expect(store.state.errors.at(-1)?.code).toBe("invalid_input");
  });

  it("shows engine errors as notices that can be dismissed", async () => {
    await store.start();
    engine.joined.add("medical");
    await store.selectRoom("medical");
    store.apply({ type: "status", status: engine.status() });
    expect(await store.send("hi")).toBe(false); // no name yet
    const notice = store.state.errors.at(-1);
    expect(notice?.code).toBe("no_name");
    store.dismissError(notice?.id ?? -1);
    expect(store.state.errors).toEqual([]);
  });

  it("applies pushed engine events (message, peer, status)", async () => {
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    await store.start();
    const incoming = engine.message("medical", "on my way", "ff".repeat(32), "Ben");
    const peer = peerView({
      id: "ff".repeat(32),
      name: "Ben",
      addresses: ["10.0.0.2:7300"],
      connected: true,
      last_seen: 1,
      rooms: ["medical"],
    });
    engine.peers.push(peer);
    const events: EngineEvent[] = [
      { type: "message", message: incoming },
      { type: "peer", peer },
      { type: "status", status: engine.status() },
    ];
    for (const e of events) await emit(ENGINE_EVENT, e);
    await settle();
    expect(store.state.messages.medical?.items.map((m) => m.body)).toEqual(["on my way"]);
    expect(store.state.peers).toEqual([peer]);
    expect(isOnline(store.state)).toBe(true);
    // Unknown event types from a newer engine are ignored.
    await emit(ENGINE_EVENT, { type: "something_new", value: 1 });
    // The same message again (e.g. event after the send reply) is not duplicated.
    await emit(ENGINE_EVENT, { type: "message", message: incoming });
    await settle();
    expect(store.state.messages.medical?.items).toHaveLength(1);
  });

  it("pages older messages before the oldest loaded one", async () => {
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    for (let i = 0; i < PAGE_SIZE + 7; i++) engine.message("medical", `m${i}`);
    await store.start();
    expect(store.state.messages.medical?.items).toHaveLength(PAGE_SIZE);
    expect(store.state.messages.medical?.hasMore).toBe(true);
    await store.loadOlder();
    const loaded = store.state.messages.medical;
    expect(loaded?.items).toHaveLength(PAGE_SIZE + 7);
    expect(loaded?.items[0]?.body).toBe("m0");
    expect(loaded?.hasMore).toBe(false);
  });

  it("reloads everything when the shell reports missed events", async () => {
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    await store.start();
    engine.message("medical", "missed while lagging", "ee".repeat(32), "Chioma");
    engine.joined.add("shelter");
    await emit(ENGINE_LAGGED_EVENT, 3);
    await settle();
    expect(store.state.messages.medical?.items.map((m) => m.body)).toEqual(["missed while lagging"]);
    expect(store.state.rooms.map((r) => r.name).sort()).toEqual(["medical", "shelter"]);
  });
});
