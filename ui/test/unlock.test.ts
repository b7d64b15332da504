// The unlock screen of a locked data directory: shown only while the shell waits for the
// passphrase; a wrong passphrase says so and allows another try; the right one removes it.

import { describe, expect, it } from "vitest";
import { AppError } from "../src/ipc";
import { unlockFirst, unlockProblem, type UnlockBackend } from "../src/views/unlock";

class FakeShell implements UnlockBackend {
  tries: string[] = [];
  constructor(
    public locked: boolean,
    private readonly right: string,
  ) {}
  waiting(): Promise<boolean> {
    return Promise.resolve(this.locked);
  }
  unlock(passphrase: string): Promise<void> {
    this.tries.push(passphrase);
    if (passphrase !== this.right) {
      return Promise.reject(new AppError("wrong_passphrase", "wrong passphrase: nothing was changed"));
    }
    this.locked = false;
    return Promise.resolve();
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

function submit(root: HTMLElement, value: string): void {
  const input = root.querySelector<HTMLInputElement>("#unlock-input");
  if (!input) throw new Error("no passphrase field");
  input.value = value;
  root.querySelector<HTMLFormElement>("#unlock-form")?.requestSubmit();
}

describe("unlock screen", () => {
  it("does not appear when the data directory is not locked", async () => {
    const root = document.createElement("div");
    await unlockFirst(root, new FakeShell(false, "x"));
    expect(root.querySelector("#unlock-dialog")).toBeNull();
  });

  it("refuses a wrong passphrase clearly, then unlocks with the right one", async () => {
    const root = document.createElement("div");
    document.body.appendChild(root);
    const shell = new FakeShell(true, "correct horse battery");
    let unlocked = false;
    const done = unlockFirst(root, shell).then(() => {
      unlocked = true;
    });
    await tick();
    const dialog = root.querySelector("#unlock-dialog");
    expect(dialog).not.toBeNull();
    expect(root.querySelector<HTMLInputElement>("#unlock-input")?.type).toBe("password");

    submit(root, "");
    await tick();
    expect(shell.tries).toEqual([]);
    expect(root.querySelector("#unlock-error")?.textContent).toBe("Please enter the passphrase.");

    submit(root, "correct horse");
    await tick();
    expect(unlocked).toBe(false);
    expect(root.querySelector("#unlock-error")?.textContent).toBe(
      "Wrong passphrase. Nothing was changed; try again.",
    );
    expect(root.querySelector("#unlock-input")?.getAttribute("aria-invalid")).toBe("true");
    expect(root.querySelector<HTMLButtonElement>("#unlock-submit")?.disabled).toBe(false);

    submit(root, "correct horse battery");
    await done;
    expect(unlocked).toBe(true);
    expect(shell.tries).toEqual(["correct horse", "correct horse battery"]);
    expect(root.querySelector("#unlock-dialog")).toBeNull();
    root.remove();
  });

  it("shows other errors as the engine words them", () => {
    expect(unlockProblem(new AppError("busy", "another node runs here"))).toBe("another node runs here");
  });
});
