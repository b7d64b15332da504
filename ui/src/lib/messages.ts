// Pure helpers about messages: ordering, size limit, display formats. No DOM, no IPC.

import type { MessageView } from "../bindings/MessageView";

/** Largest message body the engine accepts, in UTF-8 bytes. */
export const MAX_BODY_BYTES = 8192;

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
export function checkBody(body: string): BodyCheck {
  const bytes = byteLength(body);
  const empty = body.trim().length === 0;
  const tooLong = bytes > MAX_BODY_BYTES;
  let problem: string | null = null;
  if (tooLong) {
    problem = `Message is too long: ${bytes} bytes, the limit is ${MAX_BODY_BYTES}.`;
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
 * Short fingerprint of a node id when the engine did not give us one (`abcd-ef01`): the first
 * eight hex digits, as the engine formats `PeerView.fingerprint`.
 */
export function fallbackFingerprint(id: string): string {
  return `${id.slice(0, 4)}-${id.slice(4, 8)}`;
}

/** Local time of a message: `14:05` today, `3 Mar 14:05` otherwise. */
export function formatTime(ms: number, now: Date = new Date()): string {
  const d = new Date(ms);
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const sameDay =
    d.getFullYear() === now.getFullYear() &&
    d.getMonth() === now.getMonth() &&
    d.getDate() === now.getDate();
  if (sameDay) return time;
  const day = d.toLocaleDateString(undefined, {
    day: "numeric",
    month: "short",
    ...(d.getFullYear() === now.getFullYear() ? {} : { year: "numeric" }),
  });
  return `${day} ${time}`;
}

/** Full local date and time, for tooltips. */
export function formatFullTime(ms: number): string {
  return new Date(ms).toLocaleString();
}
