// Private rooms in the UI, the parts without state: how a room is named on screen, the invite
// file, the QR image (an SVG document from the engine, turned into a safe element), reading an
// invite file the user picked, and the clipboard.

import type { RoomView } from "../bindings/RoomView";
import { visibleText } from "./text";

/** Shown in the invite dialog, above the code. */
export const INVITE_WARNING =
  "Anyone with this code can read and write this room. Share it only with people who should.";

/** File type of invite files in the save dialog (`triage.invite`, as the README's CLI examples). */
export const INVITE_FILTER = { name: "DisasterNet room invite", extensions: ["invite"] };

/** Largest invite file the app reads (an invite is a few hundred bytes; the CLI's limit too). */
export const MAX_INVITE_FILE_BYTES = 64 * 1024;

/** What a room is called on screen: `#name` for an open room, its title for a private one. */
export function roomLabel(room: Pick<RoomView, "name" | "title" | "private">): string {
  return room.private ? visibleText(room.title) : `#${room.name}`;
}

/**
 * The room for screen readers and tooltips: `#medical`, or `private room medical` (the lock
 * mark is drawn, so it needs words).
 */
export function roomSpoken(room: Pick<RoomView, "name" | "title" | "private">): string {
  return room.private ? `private room ${visibleText(room.title)}` : `#${room.name}`;
}

/** Default file name of an invite file: the title, kept to safe file-name characters. */
export function inviteFileName(title: string): string {
  const safe = title
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[-.]+|-+$/g, "")
    .slice(0, 40);
  return `${safe || "room"}.${INVITE_FILTER.extensions[0]}`;
}

/** "3 messages waiting for the room key", or null when none wait. */
export function waitingText(waiting: number): string | null {
  if (waiting <= 0) return null;
  return `${waiting} ${waiting === 1 ? "message" : "messages"} waiting for the room key`;
}

const SVG_NS = "http://www.w3.org/2000/svg";
/** Elements a QR image is drawn with; anything else (script, foreignObject, image…) goes. */
const SVG_ELEMENTS = new Set(["svg", "g", "path", "rect", "circle", "polygon", "title", "desc"]);
/** Presentation attributes kept; event handlers, links and styles go. */
const SVG_ATTRIBUTES = new Set([
  "viewBox",
  "width",
  "height",
  "x",
  "y",
  "cx",
  "cy",
  "r",
  "d",
  "points",
  "fill",
  "fill-rule",
  "stroke",
  "stroke-width",
  "shape-rendering",
  "transform",
  "version",
  "preserveAspectRatio",
]);

/**
 * The QR image of an invite as an `<svg>` element of this document, or null when `text` is not
 * an SVG document. Parsed as image/svg+xml (never as HTML), and only drawing elements and
 * presentation attributes are kept: whatever the string holds, no script, link or external
 * resource ends up in the page.
 */
export function qrImage(text: string, doc: Document = document): SVGSVGElement | null {
  const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = parsed.documentElement;
  if (
    !root ||
    root.namespaceURI !== SVG_NS ||
    root.localName !== "svg" ||
    parsed.getElementsByTagName("parsererror").length > 0
  ) {
    return null;
  }
  const copy = (from: Element): Element | null => {
    if (from.namespaceURI !== SVG_NS || !SVG_ELEMENTS.has(from.localName)) return null;
    const to = doc.createElementNS(SVG_NS, from.localName);
    for (const attr of from.attributes) {
      if (attr.namespaceURI === null && SVG_ATTRIBUTES.has(attr.name)) {
        // A colour or number only: no url(…) reference to anything outside.
        if (/url\s*\(/i.test(attr.value)) continue;
        to.setAttribute(attr.name, attr.value);
      }
    }
    for (const child of from.childNodes) {
      if (child.nodeType === 1) {
        const c = copy(child as Element);
        if (c) to.appendChild(c);
      } else if (child.nodeType === 3 && (from.localName === "title" || from.localName === "desc")) {
        to.appendChild(doc.createTextNode(child.textContent ?? ""));
      }
    }
    return to;
  };
  return copy(root) as SVGSVGElement | null;
}

/** The text of an invite file the user picked (refused when too large to be one). */
export async function readInviteFile(file: Blob): Promise<string> {
  if (file.size > MAX_INVITE_FILE_BYTES) {
    throw new Error(
      `That file is ${file.size.toLocaleString("en-US")} bytes: too large to be an invite (an invite is a few hundred bytes).`,
    );
  }
  // FileReader rather than Blob.text(): the same in every webview (and in the tests' DOM).
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(typeof reader.result === "string" ? reader.result : "");
    reader.onerror = () => reject(new Error(`That file could not be read: ${reader.error?.message ?? "unknown error"}.`));
    reader.readAsText(file);
  });
}

/** Copies `text` to the clipboard. False when the clipboard cannot be written here. */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (typeof navigator === "undefined" || !navigator.clipboard?.writeText) return false;
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
