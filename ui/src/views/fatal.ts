// The engine could not start (e.g. another DisasterNet already uses this data directory).
// A modal alert: it takes focus (so it is read out) and the app behind it is inert.

import { h, show } from "../lib/dom";
import { setBackgroundInert } from "../lib/keyboard";
import type { AppState, Store } from "../store";

export function mountFatal(root: HTMLElement, store: Store): () => void {
  const message = h("p", { id: "fatal-message" });
  const code = h("code", { id: "fatal-code" });
  const dialog = h(
    "div",
    { class: "dialog", tabindex: -1 },
    h("h1", { id: "fatal-title" }, "DisasterNet could not start"),
    message,
    h("p", { class: "muted" }, "Error code: ", code),
    h(
      "p",
      { class: "muted" },
      "If another DisasterNet window or node is running on this data directory, close it and start the app again.",
    ),
  );
  const el = h(
    "div",
    {
      id: "fatal",
      class: "overlay",
      role: "alertdialog",
      "aria-modal": "true",
      "aria-labelledby": "fatal-title",
      "aria-describedby": "fatal-message",
    },
    dialog,
  );
  root.appendChild(el);

  let wasShown = false;
  const render = (state: AppState): void => {
    const visible = state.phase === "failed";
    show(el, visible);
    message.textContent = state.fatal?.message ?? "";
    code.textContent = state.fatal?.code ?? "";
    if (visible !== wasShown) setBackgroundInert(root, el, visible);
    if (visible && !wasShown) queueMicrotask(() => dialog.focus());
    wasShown = visible;
  };
  render(store.state);
  return store.subscribe((state, previous) => {
    if (state.phase !== previous.phase || state.fatal !== previous.fatal) render(state);
  });
}
