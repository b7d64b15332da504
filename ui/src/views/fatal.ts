// The engine could not start (e.g. another DisasterNet already uses this data directory).

import { h, show } from "../lib/dom";
import type { AppState, Store } from "../store";

export function mountFatal(root: HTMLElement, store: Store): () => void {
  const message = h("p", { id: "fatal-message" });
  const code = h("code", { id: "fatal-code" });
  const el = h(
    "div",
    { id: "fatal", class: "overlay" },
    h(
      "div",
      { class: "dialog" },
      h("h1", {}, "DisasterNet could not start"),
      message,
      h("p", { class: "muted" }, "Error code: ", code),
      h(
        "p",
        { class: "muted" },
        "If another DisasterNet window or node is running on this data directory, close it and start the app again.",
      ),
    ),
  );
  root.appendChild(el);

  const render = (state: AppState): void => {
    show(el, state.phase === "failed");
    message.textContent = state.fatal?.message ?? "";
    code.textContent = state.fatal?.code ?? "";
  };
  render(store.state);
  return store.subscribe((state, previous) => {
    if (state.phase !== previous.phase || state.fatal !== previous.fatal) render(state);
  });
}
