// The "dn:interactive" User Timing mark: `make bench` (dn-bench section app) times "window to
// interactive" up to it, so it must come once, and only when the room is shown and writable.

import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tauriBackend } from "../src/ipc";
import { Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { INTERACTIVE_MARK } from "../src/views/messages";
import { FakeEngine, settle } from "./fakeEngine";

let engine: FakeEngine;
let store: Store;
let root: HTMLElement;
let unmount: () => void;

const marks = (): number => performance.getEntriesByName(INTERACTIVE_MARK).length;

/** Waits for the mark (it comes one frame after the render), up to `ms`. */
async function frames(ms = 300): Promise<void> {
  const end = Date.now() + ms;
  while (marks() === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

beforeEach(() => {
  performance.clearMarks(INTERACTIVE_MARK);
  engine = new FakeEngine();
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

describe("interactive mark", () => {
  it("is set once, after the joined room's newest page is shown with the composer enabled", async () => {
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    await store.start();
    await settle();
    await frames();
    expect(marks()).toBe(1);
    expect(root.querySelector<HTMLTextAreaElement>("#composer")?.disabled).toBe(false);
    expect(store.state.messages["medical"]?.loading).toBe(false);

    // Later renders (a message sent) do not mark again.
    expect(await store.send("first report")).toBe(true);
    await settle();
    await frames(50);
    expect(marks()).toBe(1);
  });

  it("is not set while the open room cannot be written to, then set once it can", async () => {
    engine.identity.name = "Amara";
    engine.message("archive", "an old report", "be".repeat(32), "Ben");
    await store.start();
    await settle();
    await frames(100);
    expect(marks()).toBe(0); // no joined room: nothing selected

    await store.selectRoom("archive"); // shown, read only
    await settle();
    await frames(100);
    expect(root.querySelectorAll("#message-list .message")).toHaveLength(1);
    expect(marks()).toBe(0);

    expect(await store.joinRoom("archive")).toBe(true);
    await settle();
    await frames();
    expect(marks()).toBe(1);
  });
});
