// Errors from Rust (and refused actions) stay visible until dismissed (× or Escape on it).
// Dismissing moves focus to the next error, or back to where it was before the banner.

import { h, setChildren, show } from "../lib/dom";
import { canFocus, focusWorkArea, rovingList } from "../lib/keyboard";
import type { AppState, Store } from "../store";

export function mountErrorBanner(root: HTMLElement, store: Store): () => void {
  const el = h("section", {
    id: "error-banner",
    class: "error-banner",
    role: "alert",
    "aria-live": "assertive",
    "aria-label": "Errors",
    "data-testid": "error-banner",
  });
  root.appendChild(el);

  // Where focus came from when it entered the banner: it goes back there when all are dismissed.
  let before: HTMLElement | null = null;
  el.addEventListener("focusin", (e) => {
    const from = e.relatedTarget;
    if (from instanceof HTMLElement && !el.contains(from)) before = from;
  });
  const roving = rovingList(el, {
    rowAttr: "data-notice-id",
    primary: ".error-dismiss",
    fallback: () => {
      if (canFocus(before)) before.focus();
      else focusWorkArea();
      before = null;
    },
  });

  const render = (state: AppState): void => {
    roving.render(() =>
      setChildren(
        el,
        ...state.errors.map((notice) => {
          const dismiss = h(
            "button",
            {
              type: "button",
              class: "error-dismiss",
              "data-slot": "dismiss",
              "aria-label": `Dismiss error: ${notice.message}`,
              title: "Dismiss (Escape)",
            },
            "×",
          );
          dismiss.addEventListener("click", () => store.dismissError(notice.id));
          const row = h(
            "div",
            { class: "error", "data-code": notice.code, "data-notice-id": String(notice.id) },
            h("span", { class: "error-code" }, notice.code.replace("_", " ")),
            h("span", { class: "error-message" }, notice.message),
            dismiss,
          );
          row.addEventListener("keydown", (e) => {
            if (e.key !== "Escape" || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
            e.preventDefault();
            e.stopPropagation();
            store.dismissError(notice.id);
          });
          return row;
        }),
      ),
    );
    show(el, state.errors.length > 0);
  };

  render(store.state);
  const stopStore = store.subscribe((state, previous) => {
    if (state.errors !== previous.errors) render(state);
  });
  return () => {
    stopStore();
    roving.stop();
  };
}
