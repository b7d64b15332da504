// Text written by others (names, bodies) shown safely: control characters and invisible
// direction overrides would let a sender hide or reorder what a reader sees (an RLO makes
// "exe.txt" read as "txt.exe"; a bare CR or escape code garbles the line). They are shown as
// visible escapes instead, like the CLI and the exports do (dn_node::display).

/** C0 and C1 controls, DEL, bidi embeddings/overrides/isolates/marks, line/paragraph separators. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `\u{202e}` for one unsafe character (`\x1b` style below U+0100). */
function escape(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
}

/**
 * `s` with every unsafe character replaced by a visible escape. With `multiline`, line feeds
 * and tabs stay (message bodies); otherwise they are escaped too (names, one-line labels).
 */
export function visibleText(s: string, multiline = false): string {
  return s.replace(UNSAFE, (ch) => (multiline && (ch === "\n" || ch === "\t") ? ch : escape(ch)));
}
