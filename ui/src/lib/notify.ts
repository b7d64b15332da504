// Desktop notifications: which incoming messages notify, and how bursts are coalesced.
//
// Pure logic: the native notification, the window focus state and the clock are injected, so
// the rules are tested without Tauri (ui/test/notify.test.ts). ui/src/main.ts wires it to
// @tauri-apps/plugin-notification and the window's focus events.

import { visibleText } from "./text";
import type { EngineEvent } from "../bindings/EngineEvent";

/** Longest body shown in a single-message notification (characters, before the ellipsis). */
export const MAX_BODY_CHARS = 120;
/** Messages arriving within this window (ms) are shown together. */
export const COALESCE_WINDOW_MS = 2000;
/** More than this many messages in one window: one summary instead. */
export const MAX_SINGLE_NOTIFICATIONS = 3;
/**
 * Urgent messages of one author that may notify from a muted room within
 * [`URGENT_NOTIFY_WINDOW_MS`] (the engine's priority budget is the same size): anyone with a key
 * can mark messages urgent, and muting must still silence a flood.
 */
export const URGENT_NOTIFY_BUDGET = 5;
/** The window of [`URGENT_NOTIFY_BUDGET`], ms (10 minutes). */
export const URGENT_NOTIFY_WINDOW_MS = 10 * 60 * 1000;
/** Authors whose recent urgent notifications are remembered (cleared when full). */
const URGENT_AUTHORS_CAP = 1024;

/** One native notification to show. */
export interface NotificationSpec {
  title: string;
  body: string;
}

/** An incoming message that may notify. `room` is null for a direct message. */
export interface Incoming {
  room: string | null;
  /** How the room is named to the user (`#medical`, `private room medical`); default `#room`. */
  roomName?: string;
  authorName: string;
  /** Author id (hex), when known: the budget of urgent notifications from muted rooms. */
  author?: string;
  body: string;
  /** Marked urgent by its author: notifies even in a muted room (within its author's budget),
   *  and shows one by one (up to 3 a window, then one urgent summary). */
  urgent?: boolean;
}

/** Shortens `text` to `max` characters (one line), adding an ellipsis when cut. */
export function truncate(text: string, max = MAX_BODY_CHARS): string {
  const line = text.replace(/\s+/g, " ").trim();
  const chars = Array.from(line);
  return chars.length <= max ? line : `${chars.slice(0, max).join("").trimEnd()}…`;
}

/** Where a message came from, as shown in notifications: `#room` or `direct message`. */
function place(m: Incoming): string {
  return m.room === null ? "direct message" : (m.roomName ?? `#${m.room}`);
}

/** The notification for one message: "name in #room: text". */
export function single(m: Incoming): NotificationSpec {
  const who = visibleText(m.authorName.trim()) || "Someone";
  return {
    title: m.urgent ? "DisasterNet: URGENT" : "DisasterNet",
    body: `${who} in ${place(m)}: ${visibleText(truncate(m.body))}`,
  };
}

/** One summary for a burst: "N new messages in #a, #b". */
export function summary(batch: readonly Incoming[]): NotificationSpec {
  const places = [...new Set(batch.map(place))];
  return { title: "DisasterNet", body: `${batch.length} new messages in ${places.join(", ")}` };
}

/** What one window's worth of messages shows: each one, or one summary when more than 3. */
export function plan(batch: readonly Incoming[]): NotificationSpec[] {
  // Urgent messages show one by one, up to 3 a window; more become one urgent summary (a
  // flood of urgent messages must not become a flood of notifications).
  const marked = batch.filter((m) => m.urgent === true);
  const urgent = marked.slice(0, MAX_SINGLE_NOTIFICATIONS).map(single);
  const more = marked.slice(MAX_SINGLE_NOTIFICATIONS);
  if (more.length > 0) {
    const places = [...new Set(more.map(place))];
    urgent.push({
      title: "DisasterNet: URGENT",
      body: `${more.length} more urgent ${more.length === 1 ? "message" : "messages"} in ${places.join(", ")}`,
    });
  }
  const rest = batch.filter((m) => m.urgent !== true);
  if (rest.length === 0) return urgent;
  if (rest.length > MAX_SINGLE_NOTIFICATIONS) return [...urgent, summary(rest)];
  return [...urgent, ...rest.map(single)];
}

/**
 * The message an engine event carries if it may notify: room messages not written here and
 * direct messages to us. Everything else (own messages, other event types) is null.
 */
export function incomingOf(event: EngineEvent, selfId: string | null): Incoming | null {
  if (event.type === "message") {
    const m = event.message;
    if (m.local || (selfId !== null && m.author === selfId)) return null;
    return { room: m.room, authorName: m.author_name, author: m.author, body: m.body, urgent: m.urgent };
  }
  if (event.type === "dm") {
    const d = event.dm;
    if (d.outgoing || (selfId !== null && d.author === selfId)) return null;
    return { room: null, authorName: d.author_name, author: d.author, body: d.body, urgent: d.urgent };
  }
  return null;
}

/** Which rooms are muted (the engine keeps this per data directory: `RoomView.muted`). */
export interface MutedRooms {
  has(room: string): boolean;
}

/** What the notifier needs from the outside world. */
export interface NotifierDeps {
  /** Shows one native notification. */
  show(spec: NotificationSpec): void;
  /** Our node id (own messages never notify), null while unknown. */
  selfId(): string | null;
  muted: MutedRooms;
  /** How a room is named to the user (private rooms by their title), null when unknown. */
  roomName?: (room: string) => string | null;
  /** Timer, injectable for tests. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  /** Clock (ms), injectable for tests. */
  now?: () => number;
}

/**
 * Decides and coalesces: messages arriving while the window is not focused are collected for
 * 2 s from the first one, then shown one by one (at most 3) or as one summary.
 */
export class Notifier {
  private focused = true;
  private batch: Incoming[] = [];
  private timerSet = false;
  /** Author → when its urgent messages notified from muted rooms (within the window). */
  private urgentSeen = new Map<string, number[]>();

  constructor(private readonly deps: NotifierDeps) {}

  /** The window gained or lost focus. Focusing drops what was waiting (the user sees it). */
  setFocused(focused: boolean): void {
    this.focused = focused;
    if (focused) this.batch = [];
  }

  get isFocused(): boolean {
    return this.focused;
  }

  /** Feeds one engine event. */
  onEvent(event: EngineEvent): void {
    if (this.focused) return;
    const incoming = incomingOf(event, this.deps.selfId());
    if (!incoming) return;
    // Muting silences ordinary messages; an urgent one still notifies, within its author's budget.
    if (incoming.room !== null && this.deps.muted.has(incoming.room)) {
      if (incoming.urgent !== true || !this.urgentAllowed(incoming.author ?? incoming.authorName)) return;
    }
    const roomName = incoming.room === null ? null : (this.deps.roomName?.(incoming.room) ?? null);
    this.batch.push(roomName === null ? incoming : { ...incoming, roomName });
    if (!this.timerSet) {
      this.timerSet = true;
      const setTimer = this.deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
      setTimer(() => this.flush(), COALESCE_WINDOW_MS);
    }
  }

  /** True while `author` has urgent notifications from muted rooms left in the window. */
  private urgentAllowed(author: string): boolean {
    const now = (this.deps.now ?? Date.now)();
    if (this.urgentSeen.size >= URGENT_AUTHORS_CAP && !this.urgentSeen.has(author)) this.urgentSeen.clear();
    const times = (this.urgentSeen.get(author) ?? []).filter((t) => now - t < URGENT_NOTIFY_WINDOW_MS);
    if (times.length >= URGENT_NOTIFY_BUDGET) {
      this.urgentSeen.set(author, times);
      return false;
    }
    times.push(now);
    this.urgentSeen.set(author, times);
    return true;
  }

  /** Ends the current window: shows what it collected. */
  flush(): void {
    this.timerSet = false;
    const batch = this.batch;
    this.batch = [];
    if (this.focused) return;
    for (const spec of plan(batch)) this.deps.show(spec);
  }
}
