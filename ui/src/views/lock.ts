// "Lock this laptop's DisasterNet" in the "Identity & export" pane: set, change or remove the
// passphrase that encrypts the identity key and the message store (docs/security.md "At rest").
// The rules (length, typed twice) and the calls live in the store; this view only shows them.

import { h } from "../lib/dom";
import type { AppState, Store } from "../store";

/** Shown above the form while the laptop is not locked. */
export const LOCK_EXPLAINED =
  "With a passphrase, the identity key and every message on this laptop are encrypted: a lost or " +
  "stolen laptop shows nothing without it. DisasterNet asks for it at every start.";

/** Shown with the form: there is no way back without the passphrase. */
export const LOCK_WARNING =
  "If the passphrase is forgotten, nothing stored here can be read again, by anyone. Write it down " +
  "somewhere safe, away from the laptop.";

export const LOCKED_EXPLAINED =
  "This laptop's DisasterNet is locked: the identity key and the messages are encrypted, and the " +
  "passphrase is asked at every start.";

function password(id: string, label: string, autocomplete: string): HTMLInputElement {
  return h("input", { id, type: "password", autocomplete, "aria-label": label });
}

/** The panel and a function that shows `state` in it. */
export function mountLockPanel(store: Store): { panel: HTMLElement; render: (state: AppState) => void } {
  const status = h("p", { id: "lock-status", class: "muted" });
  const problem = h("p", { id: "lock-problem", class: "error-text", role: "alert" });
  const done = h("p", { id: "lock-done", role: "status" });

  const newPass = password("lock-new", "New passphrase", "new-password");
  const newAgain = password("lock-new-again", "New passphrase again", "new-password");
  const setButton = h("button", { id: "lock-set", type: "submit", class: "primary" }, "Lock with this passphrase");
  const setForm = h(
    "form",
    { id: "lock-set-form" },
    h("p", { class: "muted" }, LOCK_EXPLAINED),
    h("p", { class: "warning", role: "note" }, LOCK_WARNING),
    h("label", {}, "Passphrase ", newPass),
    " ",
    h("label", {}, "Again ", newAgain),
    " ",
    setButton,
  );
  setForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.lockWithPassphrase(newPass.value, newAgain.value).then((ok) => {
      if (ok) newPass.value = newAgain.value = "";
    });
  });

  const current = password("lock-current", "Current passphrase", "current-password");
  const next = password("lock-next", "New passphrase", "new-password");
  const nextAgain = password("lock-next-again", "New passphrase again", "new-password");
  const changeButton = h("button", { id: "lock-change", type: "submit" }, "Change passphrase");
  const changeForm = h(
    "form",
    { id: "lock-change-form" },
    h("label", {}, "Current ", current),
    " ",
    h("label", {}, "New ", next),
    " ",
    h("label", {}, "Again ", nextAgain),
    " ",
    changeButton,
  );
  changeForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.changePassphrase(current.value, next.value, nextAgain.value).then((ok) => {
      if (ok) current.value = next.value = nextAgain.value = "";
    });
  });

  const removeCurrent = password("lock-remove-current", "Current passphrase", "current-password");
  const removeButton = h("button", { id: "lock-remove", type: "submit", class: "danger" }, "Remove passphrase");
  const removeForm = h(
    "form",
    { id: "lock-remove-form" },
    h("p", { class: "muted" }, "Removing it leaves the key and the messages unencrypted on this laptop."),
    h("label", {}, "Current ", removeCurrent),
    " ",
    removeButton,
  );
  removeForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.removePassphrase(removeCurrent.value).then((ok) => {
      if (ok) removeCurrent.value = "";
    });
  });

  const panel = h(
    "section",
    { class: "panel", id: "lock-panel", "aria-labelledby": "lock-title", "aria-busy": "false" },
    h("h2", { id: "lock-title" }, "Lock this laptop's DisasterNet"),
    status,
    setForm,
    changeForm,
    removeForm,
    problem,
    done,
  );

  const render = (state: AppState): void => {
    const { locked, busy } = state.lock;
    status.textContent =
      locked === null ? "Checking…" : locked ? LOCKED_EXPLAINED : "Not locked: a passphrase is not set.";
    setForm.hidden = locked !== false;
    changeForm.hidden = locked !== true;
    removeForm.hidden = locked !== true;
    for (const b of [setButton, changeButton, removeButton]) b.disabled = busy;
    panel.setAttribute("aria-busy", busy ? "true" : "false");
    problem.textContent = state.lock.problem ?? "";
    problem.hidden = state.lock.problem === null;
    done.textContent = busy ? "Working… (the message store is being re-written)" : (state.lock.done ?? "");
  };
  return { panel, render };
}
