// First start: ask for a display name before anything else. A modal dialog: focus starts in
// the name field and stays in the dialog (Tab wraps, the app behind is inert); Escape clears
// the field (a name is required, so there is nothing to cancel).

import { MAX_NAME_BYTES } from "../bindings/limits";
import { h, show } from "../lib/dom";
import { focusWorkArea, setBackgroundInert, trapFocus } from "../lib/keyboard";
import { needsName, type AppState, type Store } from "../store";

export function mountNamePrompt(root: HTMLElement, store: Store): () => void {
  const input = h("input", {
    id: "name-input",
    type: "text",
    maxlength: MAX_NAME_BYTES,
    autocomplete: "off",
    placeholder: "e.g. Dr. Amara (field clinic)",
    "aria-describedby": "name-error",
  });
  const submit = h("button", { id: "name-submit", type: "submit", class: "primary" }, "Continue");
  const fingerprint = h("code", { id: "self-fingerprint" });
  const problem = h("p", { id: "name-error", class: "error-text", role: "alert" });
  const form = h(
    "form",
    { class: "dialog", id: "name-form" },
    h("h1", { id: "name-title" }, "Welcome to DisasterNet"),
    h(
      "p",
      { id: "name-help" },
      "Choose the name other people will see next to your messages. ",
      "Your device key fingerprint is ",
      fingerprint,
      ".",
    ),
    h("label", { for: "name-input" }, "Display name"),
    input,
    problem,
    h("div", { class: "dialog-actions" }, submit),
  );
  const overlay = h(
    "div",
    {
      id: "name-dialog",
      class: "overlay",
      role: "dialog",
      "aria-modal": "true",
      "aria-labelledby": "name-title",
      "aria-describedby": "name-help",
    },
    form,
  );
  root.appendChild(overlay);
  const stopTrap = trapFocus(overlay);

  const showProblem = (text: string): void => {
    problem.textContent = text;
    problem.hidden = text === "";
    if (text === "") input.removeAttribute("aria-invalid");
    else input.setAttribute("aria-invalid", "true");
  };
  showProblem("");

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim() === "") {
      showProblem("Please enter a display name.");
      input.focus();
      return;
    }
    showProblem("");
    void store.setName(input.value).then((ok) => {
      if (!ok) input.focus();
    });
  });
  input.addEventListener("input", () => showProblem(""));
  overlay.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    e.preventDefault();
    e.stopPropagation();
    input.value = "";
    showProblem("");
    input.focus();
  });

  let wasShown = false;
  const render = (state: AppState, previous: AppState | null): void => {
    const visible = needsName(state);
    show(overlay, visible);
    fingerprint.textContent = state.identity?.fingerprint ?? "";
    submit.disabled = state.pending.name;
    // An error while the dialog is open (e.g. the engine refused the name) shows in the dialog:
    // the banner behind it cannot be reached until the dialog closes.
    const latest = state.errors[state.errors.length - 1];
    if (visible && previous && state.errors !== previous.errors && latest && !previous.errors.includes(latest)) {
      showProblem(latest.message);
    }
    if (visible !== wasShown) setBackgroundInert(root, overlay, visible);
    if (visible && !wasShown) queueMicrotask(() => input.focus());
    if (!visible && wasShown) {
      showProblem("");
      // Focus was in the dialog: go on where work starts (composer, or the room field).
      queueMicrotask(() => {
        const active = document.activeElement;
        if (active === null || active === document.body || overlay.contains(active)) focusWorkArea();
      });
    }
    wasShown = visible;
  };

  render(store.state, null);
  const stopStore = store.subscribe((state, previous) => {
    if (
      state.identity !== previous.identity ||
      state.phase !== previous.phase ||
      state.pending !== previous.pending ||
      state.errors !== previous.errors
    ) {
      render(state, previous);
    }
  });
  return () => {
    stopStore();
    stopTrap();
  };
}
