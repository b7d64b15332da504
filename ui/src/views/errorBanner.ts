// Errors from Rust (and refused actions) stay visible until dismissed.

import { h, setChildren, show } from "../lib/dom";
import type { AppState, Store } from "../store";

export function mountErrorBanner(root: HTMLElement, store: Store): () => void {
  const el = h("section", {
    id: "error-banner",
    class: "error-banner",
    role: "alert",
    "aria-live": "assertive",
    "data-testid": "error-banner",
  });
  root.appendChild(el);

  const render = (state: AppState): void => {
    show(el, state.errors.length > 0);
    setChildren(
      el,
      ...state.errors.map((notice) => {
        const dismiss = h(
          "button",
          { type: "button", class: "error-dismiss", "aria-label": "Dismiss error", title: "Dismiss" },
          "×",
        );
        dismiss.addEventListener("click", () => store.dismissError(notice.id));
        return h(
          "div",
          { class: "error", "data-code": notice.code },
          h("span", { class: "error-code" }, notice.code.replace("_", " ")),
          h("span", { class: "error-message" }, notice.message),
          dismiss,
        );
      }),
    );
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (state.errors !== previous.errors) render(state);
  });
}
