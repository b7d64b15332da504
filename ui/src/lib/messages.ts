// Pure helpers about messages: ordering, size limit, display formats. No DOM, no IPC.

import { MAX_BODY_BYTES, MAX_DM_TEXT_BYTES, MAX_PRIVATE_TEXT_BYTES } from "../bindings/limits";
import type { MessageView } from "../bindings/MessageView";

/** Largest message body the engine accepts, in UTF-8 bytes (generated from the protocol). */
export { MAX_BODY_BYTES };

const encoder = new TextEncoder();

/** UTF-8 size of a string. */
export function byteLength(text: string): number {
  return encoder.encode(text).length;
}

/** What the composer needs to know about a draft. */
export interface BodyCheck {
  bytes: number;
  empty: boolean;
  tooLong: boolean;
  /** Why it cannot be sent, or null when it can. */
  problem: string | null;
}

/** Checks a draft against the engine's rules before sending it. */
export function checkBody(body: string, limit: number = MAX_BODY_BYTES): BodyCheck {
  const bytes = byteLength(body);
  const empty = body.trim().length === 0;
  const tooLong = bytes > limit;
  let problem: string | null = null;
  if (tooLong) {
    problem = `Message is too long: ${bytes} bytes, the limit is ${limit}.`;
  } else if (empty) {
    problem = "Message is empty.";
  }
  return { bytes, empty, tooLong, problem };
}

/** Room order, as the engine pages it: timestamp, then author, then id. */
export function compareMessages(a: MessageView, b: MessageView): number {
  if (a.timestamp !== b.timestamp) return a.timestamp - b.timestamp;
  if (a.author !== b.author) return a.author < b.author ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}

/**
 * Merges messages into a sorted list, skipping ids already present. Returns the same array
 * when nothing was added.
 */
export function mergeMessages(list: MessageView[], incoming: MessageView[]): MessageView[] {
  const seen = new Set(list.map((m) => m.id));
  const fresh = incoming.filter((m) => {
    if (seen.has(m.id)) return false;
    seen.add(m.id);
    return true;
  });
  if (fresh.length === 0) return list;
  return [...list, ...fresh].sort(compareMessages);
}

/**
 * Short fingerprint of a node id when the engine did not give us one (`abcd-ef01-2345-6789`): the first
 * eight hex digits, as the engine formats `PeerView.fingerprint`.
 */
export function fallbackFingerprint(id: string): string {
  return `${id.slice(0, 4)}-${id.slice(4, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}`;
}

/**
 * Locale used for dates and times. `undefined` (the default, and what the app uses) means the
 * system's locale; tests fix it so that what they assert does not depend on where they run.
 */
let displayLocale: string | undefined;

/** Sets the locale of every date and time the UI shows (`undefined`: the system's). */
export function setDisplayLocale(locale: string | undefined): void {
  displayLocale = locale;
}

/**
 * Local time of a message: `14:05` on the day of `now`, `3 Mar 14:05` earlier in the same year,
 * `31 Dec 2025 23:59` in another year (separators and order follow the locale).
 */
export function formatTime(ms: number, now: Date = new Date()): string {
  const d = new Date(ms);
  const time = d.toLocaleTimeString(displayLocale, { hour: "2-digit", minute: "2-digit" });
  const sameDay =
    d.getFullYear() === now.getFullYear() &&
    d.getMonth() === now.getMonth() &&
    d.getDate() === now.getDate();
  if (sameDay) return time;
  const day = d.toLocaleDateString(displayLocale, {
    day: "numeric",
    month: "short",
    ...(d.getFullYear() === now.getFullYear() ? {} : { year: "numeric" }),
  });
  return `${day} ${time}`;
}

/** Full local date and time, for tooltips. */
export function formatFullTime(ms: number): string {
  return new Date(ms).toLocaleString(displayLocale);
}

/** Largest direct-message body the engine accepts, in UTF-8 bytes (generated from the protocol). */
export const MAX_DM_BYTES = MAX_DM_TEXT_BYTES;

/** Largest text of a private room, in UTF-8 bytes (generated from the protocol). */
export const MAX_PRIVATE_BYTES = MAX_PRIVATE_TEXT_BYTES;

/**
 * What the engine puts in front of an urgent message's signed body (docs/protocol.md §2.5):
 * U+1F6A8, a space, "URGENT:", a space. The body limit includes it.
 */
export const URGENT_MARKER = "\u{1F6A8} URGENT: ";
/** Its size in UTF-8 bytes (13): an urgent text may be this much shorter. */
export const URGENT_MARKER_BYTES = new TextEncoder().encode(URGENT_MARKER).length;

/**
 * Delivery state of a message written here, or null for messages from others:
 * "stored locally" (no peer has it yet), "sent to N", or "held by N" once peers confirmed.
 */
export function deliveryLabel(m: Pick<MessageView, "local" | "sent_to" | "held_by">): string | null {
  if (!m.local) return null;
  if (m.held_by > 0) return `held by ${m.held_by}`;
  if (m.sent_to > 0) return `sent to ${m.sent_to}`;
  return "stored locally";
}

/**
 * Replaces the delivery fields of loaded messages with those of `fresh` (same ids). Returns the
 * same array when nothing changed.
 */
export function updateDelivery(list: MessageView[], fresh: MessageView[]): MessageView[] {
  const byId = new Map(fresh.map((m) => [m.id, m]));
  let changed = false;
  const next = list.map((m) => {
    const f = byId.get(m.id);
    if (!f || (f.sent_to === m.sent_to && f.held_by === m.held_by)) return m;
    changed = true;
    return { ...m, sent_to: f.sent_to, held_by: f.held_by };
  });
  return changed ? next : list;
}

/** Local calendar day of a timestamp, as `YYYY-MM-DD` (a stable key). */
export function dayKey(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** "Today", "Yesterday", or a full date such as "Tuesday, 3 March 2026". */
export function dayLabel(ms: number, now: Date = new Date()): string {
  const key = dayKey(ms);
  if (key === dayKey(now.getTime())) return "Today";
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1, 12);
  if (key === dayKey(yesterday.getTime())) return "Yesterday";
  return new Date(ms).toLocaleDateString(displayLocale, {
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
  });
}

/** One row of a conversation: a day separator, the "new messages" marker, or an item. */
export type Row<T> =
  | { kind: "day"; key: string; label: string }
  | { kind: "new"; key: string }
  | { kind: "item"; key: string; item: T };

/**
 * Lays out a conversation: a day separator before the first item of each day, and the "new
 * messages" marker before the item with id `firstNewId` (if present).
 */
export function layoutRows<T extends { id: string; timestamp: number }>(
  items: T[],
  firstNewId: string | null,
  now: Date = new Date(),
): Row<T>[] {
  const rows: Row<T>[] = [];
  let day: string | null = null;
  for (const item of items) {
    const key = dayKey(item.timestamp);
    if (key !== day) {
      rows.push({ kind: "day", key: `day:${key}`, label: dayLabel(item.timestamp, now) });
      day = key;
    }
    if (item.id === firstNewId) rows.push({ kind: "new", key: "new-marker" });
    rows.push({ kind: "item", key: item.id, item });
  }
  return rows;
}
