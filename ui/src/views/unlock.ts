// The unlock screen of a data directory locked with a passphrase ("Lock this laptop's
// DisasterNet", docs/security.md "At rest"). The app's engine has not started: it starts when
// the shell's `unlock` command gets the right passphrase (src-tauri/src/lib.rs). A wrong one
// says so and the field stays for another try; nothing changes on disk.

import { invoke } from "@tauri-apps/api/core";
import { AppError } from "../ipc";
import { h } from "../lib/dom";

/** The shell's two unlock commands (not engine requests: there is no engine yet). */
export interface UnlockBackend {
  /** True while the data directory is locked and the engine waits for the passphrase. */
  waiting(): Promise<boolean>;
  /** Starts the engine with `passphrase`; rejects with an `AppError` (`wrong_passphrase`…). */
  unlock(passphrase: string): Promise<void>;
}

export const tauriUnlock: UnlockBackend = {
  async waiting() {
    try {
      return await invoke<boolean>("unlock_status");
    } catch (raw) {
      throw AppError.from(raw);
    }
  },
  async unlock(passphrase) {
    try {
      await invoke<null>("unlock", { passphrase });
    } catch (raw) {
      throw AppError.from(raw);
    }
  },
};

/** What the screen says for a failed attempt. */
export function unlockProblem(e: AppError): string {
  if (e.code === "wrong_passphrase") return "Wrong passphrase. Nothing was changed; try again.";
  return e.message;
}

/**
 * Shows the unlock screen in `root` and resolves once the engine is unlocked (the screen is
 * then removed). Resolves at once when the data directory is not locked.
 */
export async function unlockFirst(root: HTMLElement, backend: UnlockBackend): Promise<void> {
  if (!(await backend.waiting())) return;
  await new Promise<void>((done) => {
    const input = h("input", {
      id: "unlock-input",
      type: "password",
      autocomplete: "current-password",
      "aria-describedby": "unlock-error",
    });
    const submit = h("button", { id: "unlock-submit", type: "submit", class: "primary" }, "Unlock");
    const problem = h("p", { id: "unlock-error", class: "error-text", role: "alert" });
    problem.hidden = true;
    const form = h(
      "form",
      { class: "dialog", id: "unlock-form" },
      h("h1", { id: "unlock-title" }, "DisasterNet is locked"),
      h(
        "p",
        { id: "unlock-help" },
        "This laptop's DisasterNet is locked with a passphrase. Enter it to open your messages.",
      ),
      h("label", { for: "unlock-input" }, "Passphrase"),
      input,
      problem,
      h("div", { class: "dialog-actions" }, submit),
    );
    const overlay = h(
      "div",
      {
        id: "unlock-dialog",
        class: "overlay",
        role: "dialog",
        "aria-modal": "true",
        "aria-labelledby": "unlock-title",
        "aria-describedby": "unlock-help",
      },
      form,
    );
    root.appendChild(overlay);
    queueMicrotask(() => input.focus());
    const showProblem = (text: string): void => {
      problem.textContent = text;
      problem.hidden = text === "";
      if (text === "") input.removeAttribute("aria-invalid");
      else input.setAttribute("aria-invalid", "true");
    };
    input.addEventListener("input", () => showProblem(""));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (input.value === "") {
        showProblem("Please enter the passphrase.");
        input.focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = "Unlocking…";
      backend.unlock(input.value).then(
        () => {
          input.value = "";
          overlay.remove();
          done();
        },
        (raw: unknown) => {
          submit.disabled = false;
          submit.textContent = "Unlock";
          showProblem(unlockProblem(AppError.from(raw)));
          input.select();
          input.focus();
        },
      );
    });
  });
}
