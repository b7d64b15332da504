//! Verifiable exports: JSON Lines, one message per line with its exact signed bytes, and the
//! offline verifier that checks such a file with nothing but the file itself.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use base64::Engine as _;
use dn_proto::{Message, MessageId};
use dn_store::Store;
use sha2::{Digest, Sha256};

use crate::api::{
    ApiError, ErrorCode, ExportFormat, ExportLine, ExportSummary, VerifyFailure, VerifySummary,
};

fn io(path: &Path, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()))
}

/// The export line of a message.
pub fn export_line(m: &Message) -> ExportLine {
    let signed = m.signed_bytes();
    ExportLine {
        id: MessageId(Sha256::digest(&signed).into()).to_hex(),
        room: m.room.clone(),
        author: m.author.to_hex(),
        author_name: m.author_name.clone(),
        timestamp: m.timestamp,
        body: m.body.clone(),
        signature: hex::encode(m.signature),
        signed: base64::engine::general_purpose::STANDARD.encode(signed),
    }
}

/// Writes the messages of `room` (or all rooms) in room order to `path` in `format`,
/// atomically (a temporary file renamed into place once complete and synced).
pub fn export(
    store: &Store,
    room: Option<&str>,
    path: &Path,
    format: ExportFormat,
) -> Result<ExportSummary, ApiError> {
    export_with_progress(store, room, path, format, &mut |_| {})
}

/// How often, at most, an export reports progress.
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// [`export`] on a read-only connection of its own to the database file `db` (so the node's
/// writer is never held up, see [`Store::open_reader`]), reporting `(done, total)` through
/// `progress` at most every [`PROGRESS_INTERVAL`] and once at the end with `done == total`.
/// `total` is counted first; messages arriving meanwhile are not in the file (it is the
/// snapshot of one statement).
pub fn export_file(
    db: &Path,
    room: Option<&str>,
    path: &Path,
    format: ExportFormat,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ExportSummary, ApiError> {
    let store =
        Store::open_reader(db).map_err(|e| ApiError::new(ErrorCode::Storage, e.to_string()))?;
    let total = store
        .message_count(room)
        .map_err(|e| ApiError::new(ErrorCode::Storage, e.to_string()))?;
    progress(0, total);
    let mut last = std::time::Instant::now();
    let summary = export_with_progress(&store, room, path, format, &mut |done| {
        if last.elapsed() >= PROGRESS_INTERVAL {
            last = std::time::Instant::now();
            progress(done.min(total), total);
        }
    })?;
    progress(summary.messages, summary.messages.max(total));
    Ok(summary)
}

/// [`export`], calling `progress(messages read so far)` after each message.
pub fn export_with_progress(
    store: &Store,
    room: Option<&str>,
    path: &Path,
    format: ExportFormat,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary, ApiError> {
    let file_name = path.file_name().ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    let tmp = path.with_file_name(format!(".{}.partial", file_name.to_string_lossy()));
    let f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
    let mut w = BufWriter::new(f);
    let mut n = 0u64;
    let res = match format {
        ExportFormat::Jsonl => store.for_each_message(room, |sm| -> Result<(), ApiError> {
            let line = serde_json::to_string(&export_line(&sm.message))
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            w.write_all(line.as_bytes())
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|e| io(&tmp, e))?;
            n += 1;
            progress(n);
            Ok(())
        }),
        ExportFormat::Csv => w
            .write_all(CSV_HEADER.as_bytes())
            .map_err(|e| io(&tmp, e))
            .and_then(|()| {
                store.for_each_message(room, |sm| -> Result<(), ApiError> {
                    w.write_all(csv_record(&export_line(&sm.message)).as_bytes())
                        .map_err(|e| io(&tmp, e))?;
                    n += 1;
                    progress(n);
                    Ok(())
                })
            }),
        ExportFormat::Html => {
            let mut lines = vec![];
            store
                .for_each_message(room, |sm| -> Result<(), ApiError> {
                    lines.push(export_line(&sm.message));
                    progress(lines.len() as u64);
                    Ok(())
                })
                .and_then(|()| {
                    n = lines.len() as u64;
                    w.write_all(html_report(&lines).as_bytes())
                        .map_err(|e| io(&tmp, e))
                })
        }
    };
    let finish = res
        .and_then(|()| w.into_inner().map_err(|e| io(&tmp, e.error())))
        .and_then(|f| f.sync_all().map_err(|e| io(&tmp, e)))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io(path, e)));
    if let Err(e) = finish {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(ExportSummary {
        path: path.display().to_string(),
        messages: n,
    })
}

/// Writes a JSON Lines export (see [`export`]).
pub fn export_jsonl(
    store: &Store,
    room: Option<&str>,
    path: &Path,
) -> Result<ExportSummary, ApiError> {
    export(store, room, path, ExportFormat::Jsonl)
}

/// First record of a CSV export.
pub const CSV_HEADER: &str = "timestamp_utc,room,author_name,author_fingerprint,body,id\r\n";

/// One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, or starts or ends
/// with a space; quotes doubled.
///
/// Text a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets
/// a leading `'` so that a hostile message cannot execute when the file is opened (OWASP CSV
/// injection); the JSONL export keeps the exact text.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One CSV record (CRLF-terminated) for an export line.
pub fn csv_record(l: &ExportLine) -> String {
    let fields = [
        utc_iso(l.timestamp),
        l.room.clone(),
        l.author_name.clone(),
        fingerprint(&l.author),
        l.body.clone(),
        l.id.clone(),
    ];
    let mut out = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    out
}

/// Text escaped for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const HTML_STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#111;margin:2em auto;max-width:52em;padding:0 1em}\
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.2em;border-bottom:2px solid #333;margin-top:2em}\
.meta{color:#555}.msg{border-bottom:1px solid #ccc;padding:.5em 0;break-inside:avoid}\
.head{font-size:.9em;color:#333}.fp{font-family:monospace}.body{white-space:pre-wrap;margin:.2em 0}\
.id{font-family:monospace;font-size:.75em;color:#777;word-break:break-all}\
footer{margin-top:3em;border-top:2px solid #333;padding-top:.5em;font-size:.9em;color:#333}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}}";

/// A printable, self-contained HTML report of messages (already in room order), grouped by
/// room.
pub fn html_report(lines: &[ExportLine]) -> String {
    use std::fmt::Write as _;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>DisasterNet message report</title><style>{HTML_STYLE}</style></head><body>\n\
         <h1>DisasterNet message report</h1>\n<p class=\"meta\">{} messages. Times are UTC.</p>\n",
        lines.len()
    );
    let mut room: Option<&str> = None;
    for l in lines {
        if room != Some(l.room.as_str()) {
            if room.is_some() {
                h.push_str("</section>\n");
            }
            let _ = writeln!(h, "<section><h2>#{}</h2>", html_escape(&l.room));
            room = Some(&l.room);
        }
        let _ = writeln!(
            h,
            "<div class=\"msg\"><div class=\"head\"><time>{}</time> · <strong>{}</strong> \
             <span class=\"fp\">({})</span></div><p class=\"body\">{}</p>\
             <div class=\"id\">id {}</div></div>",
            html_escape(&utc_human(l.timestamp)),
            html_escape(&l.author_name),
            html_escape(&fingerprint(&l.author)),
            html_escape(&l.body),
            html_escape(&l.id)
        );
    }
    if room.is_some() {
        h.push_str("</section>\n");
    }
    h.push_str(
        "<footer>This report is for reading and printing; it cannot prove who wrote what. \
         To check that the messages are authentic and unaltered, export the same room as JSON \
         Lines (<code>disasternet export --format jsonl --out FILE</code>) and run \
         <code>disasternet verify FILE</code>: every line carries the author's signature over \
         the exact signed bytes.</footer>\n</body></html>\n",
    );
    h
}

/// Short fingerprint (`abcd-ef01`) of a hex node id.
fn fingerprint(hex_id: &str) -> String {
    match (hex_id.get(0..4), hex_id.get(4..8)) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => hex_id.to_string(),
    }
}

/// (year, month, day, hour, minute, second) of ms since the epoch (civil-from-days).
fn civil(ms: u64) -> (i64, i64, i64, u64, u64, u64) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, (rem / 60) % 60, rem % 60)
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_iso(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_human(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// Checks one export line: JSON shape, signed bytes decode, fields match the signed bytes,
/// id is the SHA-256 of the signed bytes, and the signature verifies against the author key.
pub fn verify_line(line: &str) -> Result<(), String> {
    let l: ExportLine =
        serde_json::from_str(line).map_err(|e| format!("not a valid export line: {e}"))?;
    let signed = base64::engine::general_purpose::STANDARD
        .decode(&l.signed)
        .map_err(|_| "signed is not valid base64".to_string())?;
    let sig: [u8; 64] = hex::decode(&l.signature)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| "signature is not 128 hex characters".to_string())?;
    let m = Message::from_signed_bytes(&signed, sig).map_err(|e| format!("signed bytes: {e}"))?;
    let id = MessageId(Sha256::digest(&signed).into()).to_hex();
    if l.id != id {
        return Err(format!(
            "id does not match the signed bytes (expected {id})"
        ));
    }
    let mismatch = [
        ("room", l.room == m.room),
        ("author", l.author == m.author.to_hex()),
        ("author_name", l.author_name == m.author_name),
        ("timestamp", l.timestamp == m.timestamp),
        ("body", l.body == m.body),
    ];
    if let Some((field, _)) = mismatch.iter().find(|(_, ok)| !ok) {
        return Err(format!("field {field} differs from the signed bytes"));
    }
    m.verify().map_err(|e| e.to_string())
}

/// Verifies every line of an export file.
pub fn verify_file(path: &Path) -> Result<VerifySummary, ApiError> {
    let f = File::open(path).map_err(|e| io(path, e))?;
    let mut s = VerifySummary {
        lines: 0,
        valid: 0,
        failures: vec![],
    };
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let lineno = i as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                s.lines += 1;
                s.failures.push(VerifyFailure {
                    line: lineno,
                    reason: format!("unreadable: {e}"),
                });
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        s.lines += 1;
        match verify_line(&line) {
            Ok(()) => s.valid += 1,
            Err(reason) => s.failures.push(VerifyFailure {
                line: lineno,
                reason,
            }),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn line_roundtrip_and_tamper_detection() {
        let k = SigningKey::from_bytes(&[5u8; 32]);
        let m = Message::create(&k, "medical", "Ana", 42, "two casualties").unwrap();
        let good = serde_json::to_string(&export_line(&m)).unwrap();
        verify_line(&good).unwrap();
        let bad = good.replace("two casualties", "no casualties");
        assert!(verify_line(&bad).unwrap_err().contains("body"));
        let mut l = export_line(&m);
        l.signature = hex::encode([0u8; 64]);
        assert!(verify_line(&serde_json::to_string(&l).unwrap()).is_err());
        assert!(verify_line("{not json").is_err());
    }

    fn line(room: &str, name: &str, body: &str) -> ExportLine {
        let k = SigningKey::from_bytes(&[7u8; 32]);
        export_line(&Message::create(&k, room, name, 1_700_000_000_123, body).unwrap())
    }

    /// Milliseconds since the epoch of a UTC date and time (days-from-civil, the inverse of
    /// `civil`), written independently so the two check each other.
    fn ms_of(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, ms: i64) -> u64 {
        let y = if mo <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (mo + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        u64::try_from(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms).unwrap()
    }

    #[test]
    fn utc_formatting_across_midnight_and_the_year_boundary() {
        // Fixed instants, never "now": the last millisecond of a year and the first of the next.
        let last = ms_of(2026, 12, 31, 23, 59, 59, 999);
        assert_eq!(utc_iso(last), "2026-12-31T23:59:59Z");
        assert_eq!(utc_human(last), "2026-12-31 23:59:59 UTC");
        assert_eq!(utc_iso(last + 1), "2027-01-01T00:00:00Z");
        assert_eq!(utc_human(last + 1), "2027-01-01 00:00:00 UTC");
        // Midnight inside a month, a leap day and the day after it, the epoch itself.
        assert_eq!(utc_iso(ms_of(2026, 11, 21, 23, 59, 59, 0) + 1000), "2026-11-22T00:00:00Z");
        assert_eq!(utc_iso(ms_of(2028, 2, 29, 12, 0, 0, 0)), "2028-02-29T12:00:00Z");
        assert_eq!(utc_iso(ms_of(2028, 2, 29, 23, 59, 59, 0) + 1000), "2028-03-01T00:00:00Z");
        assert_eq!(utc_iso(ms_of(2100, 2, 28, 23, 59, 59, 0) + 1000), "2100-03-01T00:00:00Z");
        assert_eq!(utc_iso(0), "1970-01-01T00:00:00Z");
        // Every hour for two years around the boundary round-trips.
        let start = ms_of(2026, 1, 1, 0, 0, 0, 0);
        for hour in 0..(2 * 366 * 24) {
            let t = start + hour * 3_600_000;
            let (y, mo, d, h, mi, s) = civil(t);
            let (h, mi, s) = (h as i64, mi as i64, s as i64);
            assert_eq!(ms_of(y, mo, d, h, mi, s, 0), t, "hour {hour}");
        }
    }

    #[test]
    fn csv_neutralises_formulas() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("@cmd"), "'@cmd");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r\nlf"), "\"cr\r\nlf\"");
        let l = line("medical", "Ana, \"doc\"", "need stretchers,\n2 \"urgent\"");
        let rec = csv_record(&l);
        assert_eq!(
            rec,
            format!(
                "2023-11-14T22:13:20Z,medical,\"Ana, \"\"doc\"\"\",{},\"need stretchers,\n2 \"\"urgent\"\"\",{}\r\n",
                fingerprint(&l.author),
                l.id
            )
        );
        assert_eq!(
            CSV_HEADER,
            "timestamp_utc,room,author_name,author_fingerprint,body,id\r\n"
        );
    }

    #[test]
    fn html_escapes_and_groups_by_room() {
        let lines = [
            line("medical", "<b>Ana</b>", "<script>alert(1)</script> & 'x'"),
            line("medical", "Ben", "ok"),
            line("water", "Cy", "pump \"3\""),
        ];
        let h = html_report(&lines);
        assert!(!h.contains("<script>"));
        assert!(!h.contains("<b>Ana"));
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;x&#39;"));
        assert!(h.contains("&lt;b&gt;Ana&lt;/b&gt;"));
        assert_eq!(h.matches("<h2>").count(), 2);
        assert!(h.contains("<h2>#medical</h2>") && h.contains("<h2>#water</h2>"));
        assert!(h.contains("2023-11-14 22:13:20 UTC"));
        assert!(h.contains(&lines[0].id));
        assert!(h.contains("disasternet verify"));
        assert!(h.contains("<style>") && !h.contains("<link") && !h.contains("src="));
    }

    #[test]
    fn export_request_without_format_is_jsonl() {
        let r: crate::api::Request =
            serde_json::from_str(r#"{"op":"export","room":null,"path":"/tmp/x"}"#).unwrap();
        assert_eq!(
            r,
            crate::api::Request::Export {
                room: None,
                path: "/tmp/x".into(),
                format: ExportFormat::Jsonl
            }
        );
        let r: crate::api::Request =
            serde_json::from_str(r#"{"op":"export","room":null,"path":"/tmp/x","format":"csv"}"#)
                .unwrap();
        assert!(matches!(
            r,
            crate::api::Request::Export {
                format: ExportFormat::Csv,
                ..
            }
        ));
    }
}
