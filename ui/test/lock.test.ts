// "Lock this laptop's DisasterNet" in the identity pane: set, change and remove the passphrase
// through the (fake) engine, with the rules checked before anything is sent.

import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tauriBackend } from "../src/ipc";
import {
  CHANGED_DONE,
  LOCKED_DONE,
  newPassphraseProblem,
  REMOVED_DONE,
  Store,
  WRONG_PASSPHRASE,
} from "../src/store";
import { mountApp } from "../src/views/app";
import { LOCK_WARNING, LOCKED_EXPLAINED } from "../src/views/lock";
import { FakeEngine, settle } from "./fakeEngine";

let engine: FakeEngine;
let store: Store;
let stopApp: () => void;

const $ = <T extends HTMLElement = HTMLElement>(sel: string): T => {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`no ${sel}`);
  return el;
};

function type(sel: string, value: string): void {
  $<HTMLInputElement>(sel).value = value;
}

async function submit(form: string): Promise<void> {
  $<HTMLFormElement>(form).requestSubmit();
  await settle();
}

const lockCalls = (): string[] =>
  engine.calls.map((c) => c.cmd).filter((c) => c.endsWith("_passphrase"));

beforeEach(async () => {
  document.body.innerHTML = "";
  engine = new FakeEngine();
  engine.identity.name = "Amara";
  engine.install();
  store = new Store(tauriBackend);
  stopApp = mountApp(document.body, store);
  await store.start();
  store.showIdentity();
  await settle();
});

afterEach(() => {
  stopApp();
  store.stop();
  clearMocks();
});

describe("new passphrase rules", () => {
  it("wants 8 characters (code points) typed the same twice", () => {
    expect(newPassphraseProblem("short", "short")).toBe("Use at least 8 characters.");
    expect(newPassphraseProblem("long enough", "long enougH")).toBe("The two passphrases are not the same.");
    expect(newPassphraseProblem("long enough", "long enough")).toBeNull();
    // Eight emoji are eight characters, not sixteen UTF-16 units.
    expect(newPassphraseProblem("🔒".repeat(7), "🔒".repeat(7))).toBe("Use at least 8 characters.");
    expect(newPassphraseProblem("🔒".repeat(8), "🔒".repeat(8))).toBeNull();
  });
});

describe("lock panel", () => {
  it("offers to lock an unlocked laptop, with the warning, and refuses a mismatch before asking the engine", async () => {
    expect($("#lock-status").textContent).toBe("Not locked: a passphrase is not set.");
    expect($("#lock-set-form").hidden).toBe(false);
    expect($("#lock-change-form").hidden).toBe(true);
    expect($("#lock-remove-form").hidden).toBe(true);
    expect($("#lock-set-form").textContent).toContain(LOCK_WARNING);

    type("#lock-new", "field hospital 7");
    type("#lock-new-again", "field hospital 8");
    await submit("#lock-set-form");
    expect($("#lock-problem").textContent).toBe("The two passphrases are not the same.");
    expect(lockCalls()).toEqual([]);

    type("#lock-new-again", "field hospital 7");
    await submit("#lock-set-form");
    expect(lockCalls()).toEqual(["set_passphrase"]);
    expect(engine.passphrase).toBe("field hospital 7");
    expect($("#lock-problem").hidden).toBe(true);
    expect($("#lock-done").textContent).toBe(LOCKED_DONE);
    expect($("#lock-status").textContent).toBe(LOCKED_EXPLAINED);
    // The fields are cleared; the locked laptop offers change and remove instead.
    expect($<HTMLInputElement>("#lock-new").value).toBe("");
    expect($("#lock-set-form").hidden).toBe(true);
    expect($("#lock-change-form").hidden).toBe(false);
    expect($("#lock-remove-form").hidden).toBe(false);
  });

  it("changes and removes with the current passphrase; a wrong one changes nothing", async () => {
    engine.passphrase = "old passphrase";
    await store.reload();
    await settle();
    expect($("#lock-status").textContent).toBe(LOCKED_EXPLAINED);

    type("#lock-current", "not it at all");
    type("#lock-next", "new passphrase");
    type("#lock-next-again", "new passphrase");
    await submit("#lock-change-form");
    expect($("#lock-problem").textContent).toBe(WRONG_PASSPHRASE);
    expect(engine.passphrase).toBe("old passphrase");
    // What was typed stays, to correct the one wrong field.
    expect($<HTMLInputElement>("#lock-next").value).toBe("new passphrase");

    type("#lock-current", "old passphrase");
    await submit("#lock-change-form");
    expect(engine.passphrase).toBe("new passphrase");
    expect($("#lock-done").textContent).toBe(CHANGED_DONE);

    type("#lock-remove-current", "");
    await submit("#lock-remove-form");
    expect($("#lock-problem").textContent).toBe("Type the current passphrase.");
    type("#lock-remove-current", "new passphrase");
    await submit("#lock-remove-form");
    expect(engine.passphrase).toBeNull();
    expect($("#lock-done").textContent).toBe(REMOVED_DONE);
    expect($("#lock-set-form").hidden).toBe(false);
    expect(lockCalls()).toEqual(["change_passphrase", "change_passphrase", "remove_passphrase"]);
  });

  it("shows the engine's own refusal as it is", async () => {
    engine.passphrase = "already set";
    // The panel still thinks it is unlocked (state from before): the engine refuses.
    type("#lock-new", "another one!");
    type("#lock-new-again", "another one!");
    await submit("#lock-set-form");
    expect($("#lock-problem").textContent).toBe("this data directory is already locked");
  });
});
