//! Display safety: text written by peers (bodies, names, room names) made harmless before it
//! reaches a terminal, a spreadsheet or a report.
//!
//! A peer can put terminal control sequences in a message (CSI `ESC [` to clear the screen or
//! move the cursor, OSC 52 `ESC ] 52;` to write the reader's clipboard, …) or Unicode bidi
//! overrides that make `gpj.exe` look like `exe.jpg`. [`safe_text`] and [`safe_line`] replace
//! every such character with a visible escape (`\x1b`, `\u{202e}`) so the reader sees that
//! something was there, and nothing is executed or reordered.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must be escaped wherever text is shown: C0 controls other than tab and line
/// feed, DEL, C1 controls, and the Unicode bidi controls (embeddings and overrides
/// U+202A–U+202E, isolates U+2066–U+2069, the marks U+200E/U+200F and U+061C).
fn always_escaped(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        | '\u{200e}' | '\u{200f}' | '\u{61c}'
        // Line and paragraph separators break lines in some viewers.
        | '\u{2028}' | '\u{2029}')
}

fn escape(out: &mut String, c: char) {
    let n = u32::from(c);
    if n < 0x80 {
        let _ = write!(out, "\\x{n:02x}");
    } else {
        let _ = write!(out, "\\u{{{n:x}}}");
    }
}

fn clean(s: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&escaped) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if escaped(c) {
            escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text that may span lines (a message body shown on its own, an HTML or CSV cell): line feed
/// and tab are kept, every other control and bidi character is escaped (`\x1b`, `\x0d`,
/// `\u{202e}`). Borrowed when nothing needed escaping.
pub fn safe_text(s: &str) -> Cow<'_, str> {
    clean(s, always_escaped)
}

/// Text for one line of output (names, rooms, a body in a one-line listing): like
/// [`safe_text`], and line feed and tab are escaped too, so a peer cannot forge extra lines
/// or columns of output.
pub fn safe_line(s: &str) -> Cow<'_, str> {
    clean(s, |c| c == '\n' || c == '\t' || always_escaped(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real attack strings: none of their control characters survive.
    const ATTACKS: &[&str] = &[
        "\x1b[2J\x1b[Hall clear",                 // CSI: clear screen, cursor home
        "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07", // OSC 52: set the clipboard
        "invoice\u{202e}txt.exe",                 // RLO: shows as "invoiceexe.txt"
        "a\u{9b}31mred",                          // C1 CSI
        "\u{2067}isolate\u{2069}\u{200f}\u{61c}", // isolates and marks
        "bell\x07 del\x7f nul\0 cr\r",
    ];

    fn has_danger(s: &str) -> bool {
        s.chars().any(always_escaped)
    }

    #[test]
    fn attack_strings_are_escaped_visibly() {
        for a in ATTACKS {
            let t = safe_text(a);
            let l = safe_line(a);
            assert!(!has_danger(&t), "{t:?}");
            assert!(!has_danger(&l), "{l:?}");
        }
        assert_eq!(safe_line("\x1b[2J"), "\\x1b[2J");
        assert_eq!(
            safe_line("invoice\u{202e}txt.exe"),
            "invoice\\u{202e}txt.exe"
        );
        assert_eq!(safe_line("a\u{9b}b"), "a\\u{9b}b");
        assert_eq!(safe_line("x\ry"), "x\\x0dy");
    }

    #[test]
    fn newlines_and_tabs_kept_in_text_escaped_in_lines() {
        assert_eq!(safe_text("two\nlines\tok"), "two\nlines\tok");
        assert_eq!(safe_line("two\nlines\tok"), "two\\x0alines\\x09ok");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in [
            "plain",
            "Ünïcödé — 日本語 🚑",
            "",
            "right-to-left עברית العربية",
        ] {
            assert!(matches!(safe_line(s), Cow::Borrowed(b) if b == s));
            assert!(matches!(safe_text(s), Cow::Borrowed(b) if b == s));
        }
    }
}
