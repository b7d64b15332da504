import { emit } from "@tauri-apps/api/event";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DiagnosisView } from "../src/bindings/DiagnosisView";
import type { Observations } from "../src/bindings/Observations";
import { ENGINE_EVENT, tauriBackend } from "../src/ipc";
import { Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { DIAGNOSIS_REFRESH_MS, observedLine } from "../src/views/diagnosis";
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

const observations: Observations = {
  uptime_s: 40,
  interfaces: [
    { name: "lo", addr: "127.0.0.1", prefix: 8, loopback: true },
    { name: "wlan0", addr: "10.9.0.2", prefix: 24, loopback: false },
  ],
  listen: "0.0.0.0:7300",
  requested_port: 7300,
  mdns_on: true,
  mdns_up: true,
  beacon_on: true,
  beacon_up: true,
  mdns_heard: 6,
  beacons_heard: 4,
  mdns_last_ago_s: 1,
  beacon_last_ago_s: 2,
  heard: [
    { fingerprint: "aaaa-bbbb", addrs: ["10.9.0.3:7300"], mdns: 3, beacon: 2, ago_s: 1 },
    { fingerprint: "cccc-dddd", addrs: ["10.9.0.4:7300"], mdns: 3, beacon: 2, ago_s: 1 },
  ],
  dials: [
    { addr: "10.9.0.3:7300", heard: true, tries: 3, ok: 0, timeouts: 3, last: "timeout", ago_s: 2, probe: "timeout" },
    { addr: "10.9.0.4:7300", heard: true, tries: 3, ok: 0, timeouts: 3, last: "timeout", ago_s: 2, probe: null },
  ],
  incoming: 0,
  incoming_ok: 0,
  connected: [],
};

const isolated: DiagnosisView = {
  running: true,
  observations,
  findings: [
    {
      code: "client_isolation",
      severity: "error",
      summary: "Heard 2 peers by mDNS and beacon, but all 6 dials to them timed out.",
      advice: "Add a relay address (see docs/relay.md), or connect every laptop to one phone's hotspot.",
    },
  ],
};

beforeEach(async () => {
  engine = new FakeEngine();
  engine.install();
  engine.identity.name = "Amara";
  root = document.createElement("div");
  document.body.replaceChildren(root);
  store = new Store(tauriBackend);
  unmount = mountApp(root, store);
  await store.start();
});

afterEach(() => {
  unmount();
  store.stop();
  clearMocks();
  vi.useRealTimers();
});

describe("why can't I see anyone", () => {
  it("opens from the status bar with the findings and their advice, and refreshes while open", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    engine.diagnosis = isolated;
    expect($("#net-health").getAttribute("aria-label")).toBe("Why can't I see anyone?");
    expect($("#net-health .long").textContent).toBe("Why can't I see anyone?");
    expect($("#net-health .short").textContent).toBe("?");
    expect($("#diagnosis-dialog").hidden).toBe(true);
    $<HTMLButtonElement>("#net-health").click();
    await settle();
    expect($("#diagnosis-dialog").hidden).toBe(false);
    const items = () => [...root.querySelectorAll<HTMLElement>("#diagnosis-findings > li")];
    expect(items().map((li) => li.dataset.code)).toEqual(["client_isolation"]);
    expect(items()[0]?.classList.contains("error")).toBe(true);
    expect(items()[0]?.textContent).toContain("Problem Heard 2 peers");
    expect(items()[0]?.querySelector(".finding-advice")?.textContent).toContain("relay");
    expect($("#diagnosis-observed").textContent).toContain("heard 2 peers (6 mDNS, 4 beacon)");
    expect($("#diagnosis-observed").textContent).toContain("wlan0 10.9.0.2");
    const asked = () => engine.calls.filter((c) => c.cmd === "diagnose").length;
    const before = asked();
    // The firewall was fixed meanwhile: the next refresh shows it without reopening.
    engine.diagnosis = {
      running: true,
      observations: { ...observations, connected: [{ fingerprint: "aaaa-bbbb", addr: "10.9.0.3:7300" }] },
      findings: [{ code: "healthy", severity: "info", summary: "Connected to 1 peer.", advice: "Nothing to do." }],
    };
    vi.advanceTimersByTime(DIAGNOSIS_REFRESH_MS);
    await settle();
    expect(asked()).toBe(before + 1);
    expect(items().map((li) => li.dataset.code)).toEqual(["healthy"]);
    expect(items()[0]?.textContent).toContain("OK Connected to 1 peer.");
    // Closed: no more questions to the engine.
    $<HTMLButtonElement>("#close-diagnosis").click();
    expect($("#diagnosis-dialog").hidden).toBe(true);
    const closedAt = asked();
    vi.advanceTimersByTime(DIAGNOSIS_REFRESH_MS * 3);
    await settle();
    expect(asked()).toBe(closedAt);
  });

  it("Escape closes it; an engine error is shown inside the panel", async () => {
    engine.diagnosis = isolated;
    $("#net-status").click();
    await settle();
    expect($("#diagnosis-dialog").hidden).toBe(false);
    $("#diagnosis-dialog").dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect($("#diagnosis-dialog").hidden).toBe(true);
    engine.startError = { code: "io", message: "control socket gone" };
    $<HTMLButtonElement>("#net-health").click();
    await settle();
    expect($("#diagnosis-error").hidden).toBe(false);
    expect($("#diagnosis-error").textContent).toContain("control socket gone");
  });

  it("is a network check once online", async () => {
    engine.peers = [peerView({ id: "bb".repeat(32), name: "Ben", connected: true })];
    await emit(ENGINE_EVENT, { type: "status", status: engine.status() });
    await settle();
    expect($("#net-status").textContent).toBe("Online");
    expect($("#net-health").getAttribute("aria-label")).toBe("Network check");
    expect($("#net-health .long").textContent).toBe("Network check");
  });

  it("says what was observed in one line, and when nothing was", () => {
    expect(observedLine(isolated)).toBe(
      "Listening on 0.0.0.0:7300 · addresses wlan0 10.9.0.2 · heard 2 peers (6 mDNS, 4 beacon) · 6 dials · 0 incoming · 0 connected",
    );
    expect(observedLine({ running: false, observations: null, findings: [] })).toContain("not running");
    expect(
      observedLine({ ...isolated, observations: { ...observations, interfaces: observations.interfaces.slice(0, 1) } }),
    ).toContain("no network address");
  });
});
