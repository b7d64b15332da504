// Keyboard helpers shared by the views: one tab stop per list with the arrow keys inside it
// (roving tabindex), focus kept across re-renders, focus moves after actions, and the pure
// part of the app-wide shortcuts (README, "Keyboard").

/** Whether `el` is in the document, enabled and not inside a hidden or inert subtree. */
export function canFocus(el: Element | null | undefined): el is HTMLElement {
  if (!(el instanceof HTMLElement) || !el.isConnected) return false;
  if ((el as HTMLButtonElement).disabled) return false;
  return el.closest("[hidden], [inert]") === null;
}

/** Focuses the message composer when it can be written in. Returns whether it did. */
export function focusComposer(doc: Document = document): boolean {
  const composer = doc.getElementById("composer");
  if (!canFocus(composer)) return false;
  composer.focus();
  return true;
}

/** Focuses the "Join or create a room" field (selecting its text). Returns whether it did. */
export function focusRoomInput(doc: Document = document): boolean {
  const input = doc.getElementById("room-input");
  if (!canFocus(input) || !(input instanceof HTMLInputElement)) return false;
  input.focus();
  input.select();
  return true;
}

/**
 * Focuses the first heading of a pane (made focusable with tabindex=-1, so it is not a tab
 * stop): screen readers announce the pane and Tab continues into it.
 */
export function focusHeading(pane: Element | null): boolean {
  const heading = pane?.querySelector<HTMLElement>("h1");
  if (!canFocus(heading)) return false;
  if (!heading.hasAttribute("tabindex")) heading.tabIndex = -1;
  heading.focus();
  return true;
}

/** Where the composer goes after an action, else the room field. */
export function focusWorkArea(doc: Document = document): boolean {
  return focusComposer(doc) || focusRoomInput(doc);
}

/** One row of a keyed list (see `renderKeyed`). */
export interface KeyedRow {
  /** Identifies the row across renders (room name, peer id…). */
  key: string;
  /** Everything the row shows: the element is rebuilt only when this changes. */
  sig: string;
  build(): HTMLElement;
  /** Called on every render for the row's element (e.g. a tooltip that changes often). */
  update?(el: HTMLElement): void;
}

/**
 * Puts `rows` in `parent`, reusing the element of every row whose signature did not change
 * and moving elements only when out of place. Engine events redraw the sidebar lists often
 * (status, peers); rebuilding unchanged rows would take the focused button away under the
 * keyboard (and a Space pressed on it would be lost between keydown and keyup).
 */
export function renderKeyed(
  parent: HTMLElement,
  rows: readonly KeyedRow[],
  cache: Map<string, { sig: string; el: HTMLElement }>,
): void {
  const keep = new Set<Node>();
  const next = new Map<string, { sig: string; el: HTMLElement }>();
  let cursor: ChildNode | null = parent.firstChild;
  for (const row of rows) {
    const old = cache.get(row.key);
    const el = old && old.sig === row.sig && !keep.has(old.el) ? old.el : row.build();
    row.update?.(el);
    next.set(row.key, { sig: row.sig, el });
    keep.add(el);
    if (el === cursor) {
      cursor = cursor.nextSibling;
    } else {
      parent.insertBefore(el, cursor);
    }
  }
  for (const child of [...parent.childNodes]) if (!keep.has(child)) child.remove();
  cache.clear();
  for (const [key, value] of next) cache.set(key, value);
}

/** Controls of a row that take part in its tab stop. */
const CONTROLS = "button, input, select, textarea, a[href]";

export interface RovingOptions {
  /** Attribute that marks a row and holds its key (e.g. `data-room`). */
  rowAttr: string;
  /** Selector of the control inside a row that the arrow keys move to. */
  primary: string;
  /** Key of the row that holds the tab stop when focus is outside the list (e.g. selected). */
  preferred?: () => string | null;
  /** Called when focus was in the list and its row disappeared with no row left. */
  fallback?: () => void;
}

export interface RovingList {
  /**
   * Re-renders the list with `render` (which may replace every row), then restores the tab
   * stop and, if focus was inside, puts it on the same control of the same row (by key and
   * `data-slot`), or the nearest row, or `fallback`.
   */
  render(render: () => void): void;
  /** Key of the row holding the tab stop. */
  current(): string | null;
  /** Removes the listeners. */
  stop(): void;
}

/**
 * One tab stop for a list of rows: Tab enters on the last focused row, or the preferred one
 * (e.g. the selected room), or the first; ArrowUp/ArrowDown move between rows, Home/End go to
 * the ends. The other controls of the row with the tab stop (Mute, Leave…) follow it in the tab
 * order; those of other rows are skipped.
 */
export function rovingList(list: HTMLElement, options: RovingOptions): RovingList {
  const { rowAttr, primary } = options;
  // Key of the row focus is in (or was last in, while focus is still inside the list).
  let focused: string | null = null;
  let stop: string | null = null;

  const rows = (): HTMLElement[] => [...list.querySelectorAll<HTMLElement>(`[${rowAttr}]`)];
  const keyOf = (row: Element): string | null => row.getAttribute(rowAttr);
  const primaryOf = (row: Element): HTMLElement | null => row.querySelector<HTMLElement>(primary);
  const rowOf = (el: EventTarget | null): HTMLElement | null =>
    el instanceof Element && list.contains(el) ? el.closest<HTMLElement>(`[${rowAttr}]`) : null;

  const apply = (): void => {
    const all = rows();
    const preferred = options.preferred?.() ?? null;
    const holder =
      all.find((r) => focused !== null && keyOf(r) === focused) ??
      all.find((r) => preferred !== null && keyOf(r) === preferred) ??
      all[0];
    stop = holder ? keyOf(holder) : null;
    for (const row of all) {
      // Marks the row the keyboard is in, so CSS can show its controls before they take focus.
      row.toggleAttribute("data-focused", focused !== null && keyOf(row) === focused);
      const tabIndex = row === holder ? 0 : -1;
      for (const control of row.querySelectorAll<HTMLElement>(CONTROLS)) {
        if (control.tabIndex !== tabIndex) control.tabIndex = tabIndex;
      }
    }
  };

  const moveTo = (row: HTMLElement | undefined): void => {
    if (!row) return;
    focused = keyOf(row);
    apply();
    primaryOf(row)?.focus();
  };

  const onKeyDown = (e: KeyboardEvent): void => {
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey || e.defaultPrevented) return;
    const row = rowOf(e.target);
    if (!row) return;
    const all = rows();
    const i = all.indexOf(row);
    let next: HTMLElement | undefined;
    switch (e.key) {
      case "ArrowDown":
        next = all[i + 1];
        break;
      case "ArrowUp":
        next = all[i - 1];
        break;
      case "Home":
        next = all[0];
        break;
      case "End":
        next = all[all.length - 1];
        break;
      default:
        return;
    }
    e.preventDefault();
    moveTo(next);
  };
  const onFocusIn = (e: FocusEvent): void => {
    const row = rowOf(e.target);
    if (!row) return;
    focused = keyOf(row);
    apply();
  };
  const onFocusOut = (e: FocusEvent): void => {
    const to = e.relatedTarget;
    if (to instanceof Node && list.contains(to)) return;
    focused = null;
    apply();
  };
  list.addEventListener("keydown", onKeyDown);
  list.addEventListener("focusin", onFocusIn);
  list.addEventListener("focusout", onFocusOut);

  return {
    render(render) {
      const active = document.activeElement;
      const activeRow = active instanceof HTMLElement ? rowOf(active) : null;
      const inside = active instanceof HTMLElement && list.contains(active);
      const key = activeRow ? keyOf(activeRow) : null;
      const slot = active instanceof HTMLElement ? (active.dataset.slot ?? null) : null;
      const index = activeRow ? rows().indexOf(activeRow) : -1;
      render();
      if (inside && key !== null) focused = key;
      apply();
      if (!inside || !(active instanceof HTMLElement) || document.activeElement === active) return;
      if (active.isConnected && canFocus(active)) {
        active.focus(); // kept but moved, which drops focus
        return;
      }
      const all = rows();
      const same = all.find((r) => keyOf(r) === key);
      const row = same ?? all[Math.min(Math.max(index, 0), all.length - 1)];
      if (!row) {
        focused = null;
        apply();
        options.fallback?.();
        return;
      }
      focused = keyOf(row);
      apply();
      // The same control of the same row; in a neighbour row only its primary control (never
      // e.g. the neighbour's "Leave" right after this row left).
      const sameSlot = same && slot !== null ? row.querySelector<HTMLElement>(`[data-slot="${slot}"]`) : null;
      (canFocus(sameSlot) ? sameSlot : primaryOf(row))?.focus();
    },
    current: () => stop,
    stop() {
      list.removeEventListener("keydown", onKeyDown);
      list.removeEventListener("focusin", onFocusIn);
      list.removeEventListener("focusout", onFocusOut);
    },
  };
}

/**
 * Keeps Tab and Shift+Tab inside `container` (a modal dialog): from the last control to the
 * first and back. Returns a function that removes the listener.
 */
export function trapFocus(container: HTMLElement): () => void {
  const onKeyDown = (e: KeyboardEvent): void => {
    if (e.key !== "Tab" || e.altKey || e.ctrlKey || e.metaKey) return;
    const controls = [...container.querySelectorAll<HTMLElement>(CONTROLS)].filter(
      (c) => canFocus(c) && c.tabIndex >= 0,
    );
    const first = controls[0];
    const last = controls[controls.length - 1];
    if (!first || !last) {
      e.preventDefault();
      return;
    }
    const active = document.activeElement;
    if (e.shiftKey && (active === first || !container.contains(active))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (active === last || !container.contains(active))) {
      e.preventDefault();
      first.focus();
    }
  };
  container.addEventListener("keydown", onKeyDown);
  return () => container.removeEventListener("keydown", onKeyDown);
}

/**
 * Makes every child of `root` except `keep` inert (or not): what is behind a modal dialog
 * cannot be focused, clicked or read out.
 */
export function setBackgroundInert(root: HTMLElement, keep: HTMLElement, inert: boolean): void {
  for (const child of root.children) {
    if (child === keep || child.classList.contains("overlay")) continue;
    child.toggleAttribute("inert", inert);
  }
}

// ------------------------------------------------------------------------ app-wide shortcuts

/** What an app-wide shortcut does. */
export type Shortcut = "find-room" | "next-room" | "previous-room" | "back";

/** The keys of a keyboard event that matter here (a KeyboardEvent fits). */
export interface KeyPress {
  key: string;
  ctrlKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
  metaKey: boolean;
}

/**
 * The shortcut for a key press, or null: Ctrl+K (find or join a room), Alt+Down / Alt+Up
 * (next / previous room), Escape (back from the network or identity pane).
 */
export function shortcutOf(e: KeyPress): Shortcut | null {
  const k = e.key;
  if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && (k === "k" || k === "K")) return "find-room";
  if (e.altKey && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
    if (k === "ArrowDown") return "next-room";
    if (k === "ArrowUp") return "previous-room";
  }
  if (k === "Escape" && !e.ctrlKey && !e.altKey && !e.metaKey && !e.shiftKey) return "back";
  return null;
}

/**
 * The room `step` places after the current one in `rooms` (wrapping around). From no current
 * room (or another pane), the step lands on the current room if any, else the first or last.
 */
export function stepRoom(rooms: readonly string[], current: string | null, step: 1 | -1, inRoomPane: boolean): string | null {
  if (rooms.length === 0) return null;
  const i = current === null ? -1 : rooms.indexOf(current);
  if (i >= 0 && !inRoomPane) return rooms[i] ?? null;
  if (i < 0) return (step > 0 ? rooms[0] : rooms[rooms.length - 1]) ?? null;
  return rooms[(i + step + rooms.length) % rooms.length] ?? null;
}
