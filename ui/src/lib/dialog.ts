// A modal dialog: an overlay over the app whose background is inert while it is open, Tab
// kept inside, Escape closes it, and focus goes back where it came from.

import { h } from "./dom";
import { canFocus, focusWorkArea, setBackgroundInert, trapFocus } from "./keyboard";

export interface ModalOptions {
  /** Id of the overlay (the element with role=dialog). */
  id: string;
  /** Id of the dialog's heading. */
  labelledBy: string;
  /** Id of the text that describes it, if any. */
  describedBy?: string;
  /** Called when the user closes it (Escape); the owner then calls `close()`. */
  onDismiss(): void;
}

export interface Modal {
  overlay: HTMLElement;
  /**
   * Shows it and focuses `focus`. Closing it later gives the focus back to `returnTo` (default:
   * what has the focus now; a clicked button does not always take it).
   */
  open(focus: HTMLElement | null, returnTo?: Element | null): void;
  /** Hides it; focus goes back to where it was when opened (or the work area). */
  close(): void;
  readonly isOpen: boolean;
  stop(): void;
}

/** Whether a modal dialog (an overlay) is shown in `root`. */
export function dialogOpen(root: ParentNode = document): boolean {
  return [...root.querySelectorAll<HTMLElement>(".overlay")].some((o) => !o.hidden);
}

/** Builds a modal dialog around `content` (a `.dialog` element) and adds it to `root`. */
export function modal(root: HTMLElement, content: HTMLElement, options: ModalOptions): Modal {
  const overlay = h("div", {
    id: options.id,
    class: "overlay",
    role: "dialog",
    "aria-modal": "true",
    "aria-labelledby": options.labelledBy,
    "aria-describedby": options.describedBy ?? null,
    hidden: true,
  });
  overlay.append(content);
  root.appendChild(overlay);
  const stopTrap = trapFocus(overlay);
  const onKeyDown = (e: KeyboardEvent): void => {
    if (e.key !== "Escape" || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey || e.isComposing) return;
    e.preventDefault();
    e.stopPropagation();
    options.onDismiss();
  };
  overlay.addEventListener("keydown", onKeyDown);

  let opener: Element | null = null;
  let shown = false;
  return {
    overlay,
    open(focus, returnTo) {
      if (!shown) {
        opener = returnTo ?? document.activeElement;
        shown = true;
        overlay.hidden = false;
        setBackgroundInert(root, overlay, true);
      }
      if (focus) queueMicrotask(() => focus.focus());
    },
    close() {
      if (!shown) return;
      shown = false;
      const hadFocus = overlay.contains(document.activeElement);
      overlay.hidden = true;
      // Another dialog opened from this one (a new room's invite) keeps the app inert.
      const others = [...root.children].some((c) => c !== overlay && c.classList.contains("overlay") && !(c as HTMLElement).hidden);
      if (!others) setBackgroundInert(root, overlay, false);
      if (hadFocus || document.activeElement === document.body || document.activeElement === null) {
        if (canFocus(opener)) opener.focus();
        else if (!others) focusWorkArea();
      }
      opener = null;
    },
    get isOpen() {
      return shown;
    },
    stop() {
      stopTrap();
      overlay.removeEventListener("keydown", onKeyDown);
      overlay.remove();
    },
  };
}
