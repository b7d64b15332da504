// First start: ask for a display name before anything else.

import { h, show } from "../lib/dom";
import { needsName, type AppState, type Store } from "../store";

export function mountNamePrompt(root: HTMLElement, store: Store): () => void {
  const input = h("input", {
    id: "name-input",
    type: "text",
    maxlength: 64,
    autocomplete: "off",
    placeholder: "e.g. Dr. Amara (field clinic)",
    "aria-label": "Display name",
  });
  const submit = h("button", { id: "name-submit", type: "submit", class: "primary" }, "Continue");
  const fingerprint = h("code", { id: "self-fingerprint" });
  const form = h(
    "form",
    { class: "dialog", id: "name-form" },
    h("h1", {}, "Welcome to DisasterNet"),
    h(
      "p",
      {},
      "Choose the name other people will see next to your messages. ",
      "Your device key fingerprint is ",
      fingerprint,
      ".",
    ),
    h("label", { for: "name-input" }, "Display name"),
    input,
    h("div", { class: "dialog-actions" }, submit),
  );
  const overlay = h(
    "div",
    { id: "name-dialog", class: "overlay", role: "dialog", "aria-modal": "true" },
    form,
  );
  root.appendChild(overlay);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.setName(input.value);
  });

  let wasShown = false;
  const render = (state: AppState): void => {
    const visible = needsName(state);
    show(overlay, visible);
    fingerprint.textContent = state.identity?.fingerprint ?? "";
    submit.disabled = state.pending.name;
    if (visible && !wasShown) queueMicrotask(() => input.focus());
    wasShown = visible;
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (
      state.identity !== previous.identity ||
      state.phase !== previous.phase ||
      state.pending !== previous.pending
    ) {
      render(state);
    }
  });
}
