//! Verifiable exports: JSON Lines, one message per line with its exact signed bytes, closed by
//! a manifest line signed by the exporting node, and the offline verifier that checks such a
//! file with nothing but the file itself.
//!
//! Each message line proves itself (the author's signature). The manifest proves the file as a
//! whole: the exporting node signs the number of lines, a hash chain over the exact bytes of
//! every line in order and an order-independent digest of the same lines, so that a removed,
//! added, reordered or edited line is detected and named (see `docs/protocol.md`, "Export
//! manifest", for the exact bytes).

use dn_proto::message::hex_fingerprint as fingerprint;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use dn_proto::{Message, MessageId};
use dn_store::Store;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::display::{safe_line, safe_text};
use crate::fsutil;

use crate::api::{
    ApiError, ErrorCode, ExportFormat, ExportLine, ExportSummary, PrivateText, VerifyFailure,
    VerifySummary,
};

pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()))
}

/// A private temporary file beside `path` to write a file export into
/// ([`fsutil::create_temp_beside`]: exclusive, random name, mode 0600, never a symlink), and its
/// path; [`commit_export`] ends it.
pub(crate) fn temp_writer(path: &Path) -> Result<(BufWriter<File>, PathBuf), ApiError> {
    let (f, tmp) = fsutil::create_temp_beside(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => ApiError::new(ErrorCode::InvalidInput, e.to_string()),
        _ => io(path, e),
    })?;
    Ok((BufWriter::new(f), tmp))
}

/// Ends a file export: when writing went well (`written`), flushes and syncs the temporary
/// file `tmp` and renames it over `path`; on any error removes `tmp`, so `path` is either the
/// whole new file or untouched.
pub(crate) fn commit_export(
    w: BufWriter<File>,
    tmp: &Path,
    path: &Path,
    written: Result<(), ApiError>,
) -> Result<(), ApiError> {
    let finish = written
        .and_then(|()| w.into_inner().map_err(|e| io(tmp, e.error())))
        .and_then(|f| f.sync_all().map_err(|e| io(tmp, e)))
        .and_then(|()| std::fs::rename(tmp, path).map_err(|e| io(path, e)));
    if let Err(e) = finish {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    fsutil::sync_parent(path);
    Ok(())
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
        urgent: dn_proto::message::is_urgent(&m.body),
        signature: hex::encode(m.signature),
        signed: base64::engine::general_purpose::STANDARD.encode(signed),
        private: None,
    }
}

/// Opens private-room messages for an export: the decrypted text, or `None` (open rooms,
/// private rooms without a key).
pub type Reader<'a> = &'a dyn Fn(&Message) -> Option<PrivateText>;

/// [`export_line`] with the decrypted text of a private-room message, if `reader` opens it.
pub fn readable_line(m: &Message, reader: Option<Reader<'_>>) -> ExportLine {
    let mut l = export_line(m);
    if dn_proto::private::is_private_room(&m.room) {
        l.private = reader.and_then(|r| r(m));
    }
    l
}

/// What a report (CSV, HTML) shows of a line: room, author name, text (without the urgent
/// marker: the report says "urgent" apart). A private-room message shows what the exporting
/// member read, or says it is encrypted.
fn shown(l: &ExportLine) -> (String, &str, &str) {
    match &l.private {
        Some(p) => (format!("{} (private)", p.title), &p.author_name, &p.body),
        None if dn_proto::private::is_private_room(&l.room) => (
            "(private room)".to_string(),
            "-",
            "(encrypted: this node holds no key for this room)",
        ),
        None => (
            l.room.clone(),
            &l.author_name,
            dn_proto::message::strip_urgent(&l.body),
        ),
    }
}

/// How often, at most, an export reports progress.
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// [`export_signed_with_progress`] on a read-only connection of its own to the database file
/// `db` (so the node's writer is never held up, see [`Store::open_reader`]), opened with
/// `store_key` when the store is encrypted at rest (the export file itself is plain: the user
/// asked for a readable copy), reporting `(done, total)` through `progress` at most every
/// [`PROGRESS_INTERVAL`] and once at the end with `done == total`. `total` is counted first;
/// messages arriving meanwhile are not in the file (it is the snapshot of one statement). The
/// node passes its own key, and a `reader` that opens its private rooms.
#[allow(clippy::too_many_arguments)]
pub fn export_file_signed_with_key(
    db: &Path,
    store_key: Option<&dn_store::StoreKey>,
    room: Option<&str>,
    path: &Path,
    format: ExportFormat,
    key: Option<&SigningKey>,
    reader: Option<Reader<'_>>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ExportSummary, ApiError> {
    let store = Store::open_reader_with_key(db, store_key)
        .map_err(|e| ApiError::new(ErrorCode::Storage, e.to_string()))?;
    let total = store
        .message_count(room)
        .map_err(|e| ApiError::new(ErrorCode::Storage, e.to_string()))?;
    progress(0, total);
    let mut last = std::time::Instant::now();
    let summary =
        export_signed_with_progress(&store, room, path, format, key, reader, &mut |done| {
            if last.elapsed() >= PROGRESS_INTERVAL {
                last = std::time::Instant::now();
                progress(done.min(total), total);
            }
        })?;
    progress(summary.messages, summary.messages.max(total));
    Ok(summary)
}

/// Writes the messages of `room` (or all rooms) in room order to `path` in `format`,
/// atomically, calling `progress(messages read so far)` after each message. A JSON Lines file
/// ends with a manifest signed by `key` when given (§6.1 of docs/protocol.md).
///
/// The temporary file is created exclusively with a random name, mode 0600, never through a
/// symlink ([`fsutil::create_temp_beside`]), synced, then renamed over `path`.
pub fn export_signed_with_progress(
    store: &Store,
    room: Option<&str>,
    path: &Path,
    format: ExportFormat,
    key: Option<&SigningKey>,
    reader: Option<Reader<'_>>,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary, ApiError> {
    let (mut w, tmp) = temp_writer(path)?;
    let mut n = 0u64;
    let res = match format {
        ExportFormat::Jsonl => {
            let mut manifest = ManifestBuilder::new();
            store
                .for_each_message(room, |sm| -> Result<(), ApiError> {
                    let line = serde_json::to_string(&readable_line(&sm.message, reader))
                        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
                    manifest.push(line.as_bytes());
                    w.write_all(line.as_bytes())
                        .and_then(|()| w.write_all(b"\n"))
                        .map_err(|e| io(&tmp, e))?;
                    n += 1;
                    progress(n);
                    Ok(())
                })
                .and_then(|()| match key {
                    Some(key) => {
                        let line = manifest.finish(key).to_line()?;
                        w.write_all(line.as_bytes())
                            .and_then(|()| w.write_all(b"\n"))
                            .map_err(|e| io(&tmp, e))
                    }
                    None => Ok(()),
                })
        }
        ExportFormat::Csv => w
            .write_all(CSV_HEADER.as_bytes())
            .map_err(|e| io(&tmp, e))
            .and_then(|()| {
                store.for_each_message(room, |sm| -> Result<(), ApiError> {
                    w.write_all(csv_record(&readable_line(&sm.message, reader)).as_bytes())
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
                    lines.push(readable_line(&sm.message, reader));
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
    commit_export(w, &tmp, path, res)?;
    Ok(ExportSummary {
        path: path.display().to_string(),
        messages: n,
    })
}

/// First record of a CSV export.
pub const CSV_HEADER: &str = "timestamp_utc,room,author_name,author_fingerprint,body,id,urgent\r\n";

/// One CSV field (RFC 4180), safe to open in a spreadsheet in any locale.
///
/// - Control and bidi characters are escaped visibly ([`safe_text`]; line feed and tab stay).
/// - Text a spreadsheet would run as a formula (its first non-space character is `=`, `+`,
///   `-` or `@`, or it starts with tab or CR) gets a leading `'` so a hostile message cannot
///   execute when the file is opened (OWASP CSV injection); this applies to every field.
///   The JSONL export keeps the exact text.
/// - The field is quoted, quotes doubled, when it holds a comma, a semicolon (the separator
///   in many locales), a tab, a quote, CR or LF, or starts or ends with a space.
pub fn csv_field(s: &str) -> String {
    let s = safe_text(s);
    let s = if s.starts_with(['\t', '\r']) || s.trim_start().starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.into_owned()
    };
    if s.contains([',', ';', '\t', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One CSV record (CRLF-terminated) for an export line.
pub fn csv_record(l: &ExportLine) -> String {
    let (room, author_name, body) = shown(l);
    let fields = [
        utc_iso(l.timestamp),
        room,
        author_name.to_string(),
        fingerprint(&l.author),
        body.to_string(),
        l.id.clone(),
        if l.urgent { "yes" } else { "" }.to_string(),
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
.head{font-size:.9em;color:#333}.urgent{color:#8c1d18}.msg.urgent{border-left:4px solid #8c1d18;padding-left:.5em}.fp{font-family:monospace}.body{white-space:pre-wrap;margin:.2em 0}\
.id{font-family:monospace;font-size:.75em;color:#777;word-break:break-all}\
footer{margin-top:3em;border-top:2px solid #333;padding-top:.5em;font-size:.9em;color:#333}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}}";

/// A printable, self-contained HTML report of messages (already in room order), grouped by
/// room. Peer text is HTML-escaped, and control and bidi characters are shown as visible
/// escapes ([`safe_text`], [`safe_line`]) so a name cannot reorder the page's text.
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
        let (title, author_name, body) = shown(l);
        if room != Some(l.room.as_str()) {
            if room.is_some() {
                h.push_str("</section>\n");
            }
            let _ = writeln!(h, "<section><h2>#{}</h2>", html_escape(&safe_line(&title)));
            room = Some(&l.room);
        }
        let _ = writeln!(
            h,
            "<div class=\"msg{}\"><div class=\"head\">{}<time>{}</time> · <strong>{}</strong> \
             <span class=\"fp\">({})</span></div><p class=\"body\">{}</p>\
             <div class=\"id\">id {}</div></div>",
            if l.urgent { " urgent" } else { "" },
            if l.urgent {
                "<b class=\"urgent\">URGENT</b> "
            } else {
                ""
            },
            html_escape(&utc_human(l.timestamp)),
            html_escape(&safe_line(author_name)),
            html_escape(&fingerprint(&l.author)),
            html_escape(&safe_text(body)),
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
        // Claiming urgency the signed body does not carry fails; a missing flag on an urgent
        // body is an export written before urgent messages existed.
        ("urgent", !l.urgent || dn_proto::message::is_urgent(&m.body)),
    ];
    if let Some((field, _)) = mismatch.iter().find(|(_, ok)| !ok) {
        return Err(format!("field {field} differs from the signed bytes"));
    }
    m.verify().map_err(|e| e.to_string())
}

/// Domain-separation prefix of the bytes an export manifest signs (so that a manifest
/// signature can never be mistaken for a message or any other signature of the node key).
pub const MANIFEST_CONTEXT: &[u8] = b"DNexport1";
/// The manifest format this code writes and reads.
pub const MANIFEST_VERSION: u32 = 1;
/// What `verify` says about a file without a manifest (exports written before manifests, or
/// a file whose manifest line was cut off).
pub const NO_MANIFEST_WARNING: &str = "no manifest: removal/reordering cannot be detected";

/// The last line of a signed JSON Lines export: `{"manifest": {...}}`. See `docs/protocol.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportManifest {
    /// Manifest format, [`MANIFEST_VERSION`].
    pub version: u32,
    /// The exporting node's id (Ed25519 public key), 64 hex characters.
    pub exporter: String,
    /// Number of message lines before the manifest.
    pub lines: u64,
    /// `h_N` of the hash chain over the lines in order, 64 hex characters.
    pub chain: String,
    /// SHA-256 over the sorted SHA-256 hashes of the lines (order-independent), 64 hex.
    pub set: String,
    /// Ed25519 signature of [`manifest_signed_bytes`] by `exporter`, 128 hex characters.
    pub signature: String,
}

#[derive(Serialize, Deserialize)]
struct ManifestLine {
    manifest: ExportManifest,
}

impl ExportManifest {
    /// The manifest as its line of the file (without the line feed).
    pub fn to_line(&self) -> Result<String, ApiError> {
        serde_json::to_string(&ManifestLine {
            manifest: self.clone(),
        })
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
    }

    /// Parses a manifest line; `None` for any other line.
    pub fn from_line(line: &[u8]) -> Option<ExportManifest> {
        serde_json::from_slice::<ManifestLine>(line)
            .ok()
            .map(|l| l.manifest)
    }
}

/// The exact bytes a manifest signature covers: [`MANIFEST_CONTEXT`] (9 bytes) ‖ exporter
/// public key (32) ‖ line count (u64 big-endian, 8) ‖ chain `h_N` (32) ‖ set digest (32).
pub fn manifest_signed_bytes(
    exporter: &[u8; 32],
    lines: u64,
    chain: &[u8; 32],
    set: &[u8; 32],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(MANIFEST_CONTEXT.len() + 104);
    b.extend_from_slice(MANIFEST_CONTEXT);
    b.extend_from_slice(exporter);
    b.extend_from_slice(&lines.to_be_bytes());
    b.extend_from_slice(chain);
    b.extend_from_slice(set);
    b
}

/// Running digests over the message lines of an export: the chain `h_0 = 32 zero bytes`,
/// `h_i = SHA-256(h_{i-1} ‖ line_i)`, and the hash of every line for the set digest.
/// `line_i` is the exact bytes of the line without its terminating line feed.
#[derive(Debug, Clone)]
pub struct ManifestBuilder {
    chain: [u8; 32],
    hashes: Vec<[u8; 32]>,
}

impl Default for ManifestBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ManifestBuilder {
    /// No lines yet.
    pub fn new() -> Self {
        ManifestBuilder {
            chain: [0; 32],
            hashes: Vec::new(),
        }
    }

    /// Adds the next line (exact bytes, no line feed).
    pub fn push(&mut self, line: &[u8]) {
        let mut h = Sha256::new();
        h.update(self.chain);
        h.update(line);
        self.chain = h.finalize().into();
        self.hashes.push(Sha256::digest(line).into());
    }

    /// Lines so far.
    pub fn count(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// `h_N` so far.
    pub fn chain(&self) -> [u8; 32] {
        self.chain
    }

    /// SHA-256 of the concatenated line hashes sorted bytewise ascending.
    pub fn set_digest(&self) -> [u8; 32] {
        let mut sorted = self.hashes.clone();
        sorted.sort_unstable();
        let mut h = Sha256::new();
        for x in &sorted {
            h.update(x);
        }
        h.finalize().into()
    }

    /// The signed manifest of the lines pushed.
    pub fn finish(&self, key: &SigningKey) -> ExportManifest {
        let exporter = key.verifying_key().to_bytes();
        let (lines, chain, set) = (self.count(), self.chain(), self.set_digest());
        let sig = key.sign(&manifest_signed_bytes(&exporter, lines, &chain, &set));
        ExportManifest {
            version: MANIFEST_VERSION,
            exporter: hex::encode(exporter),
            lines,
            chain: hex::encode(chain),
            set: hex::encode(set),
            signature: hex::encode(sig.to_bytes()),
        }
    }
}

/// What the manifest of a file says about it as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ManifestStatus {
    /// No manifest line: each line was checked alone ([`NO_MANIFEST_WARNING`]).
    Absent,
    /// Signed by `exporter`; the file holds exactly its `lines` lines, unchanged and in order.
    Valid {
        /// The exporting node's id (hex): check that it is the node you expect.
        exporter: String,
        /// Message lines covered.
        lines: u64,
    },
    /// The manifest does not match the file (or is not validly signed).
    Invalid {
        /// The node id the manifest names (hex; not proof of anything when the signature
        /// failed).
        exporter: String,
        /// Each problem found (removed, added, reordered, edited lines; bad signature).
        problems: Vec<String>,
    },
}

/// The full result of verifying an export file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileVerification {
    /// Per-line results (message lines only; manifest problems are also listed among the
    /// failures, at the manifest's line).
    #[serde(flatten)]
    pub summary: VerifySummary,
    /// The whole-file result.
    pub manifest: ManifestStatus,
}

/// Checks a manifest against the lines before it; the problems found (empty: valid).
fn check_manifest(m: &ExportManifest, seen: &ManifestBuilder) -> Vec<String> {
    let mut problems = vec![];
    let exporter = hex::decode(&m.exporter)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    let hex32 = |s: &str| {
        hex::decode(s)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
    };
    let (chain, set) = (hex32(&m.chain), hex32(&m.set));
    let sig = hex::decode(&m.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok());
    if m.version != MANIFEST_VERSION {
        problems.push(format!("unknown manifest version {}", m.version));
    }
    match (exporter, chain, set, sig) {
        (Some(exporter), Some(chain), Some(set), Some(sig)) => {
            let signed = manifest_signed_bytes(&exporter, m.lines, &chain, &set);
            let ok = VerifyingKey::from_bytes(&exporter)
                .is_ok_and(|k| k.verify(&signed, &Signature::from_bytes(&sig)).is_ok());
            if !ok {
                problems.push("manifest signature does not verify".into());
            }
        }
        _ => problems.push("manifest fields are malformed".into()),
    }
    let found = seen.count();
    if found < m.lines {
        problems.push(format!(
            "{} line(s) removed: the manifest lists {}, the file has {found}",
            m.lines - found,
            m.lines
        ));
    } else if found > m.lines {
        problems.push(format!(
            "{} line(s) added: the manifest lists {}, the file has {found}",
            found - m.lines,
            m.lines
        ));
    } else if chain != Some(seen.chain()) {
        if set == Some(seen.set_digest()) {
            problems.push("lines reordered (same lines, different order)".into());
        } else {
            problems.push("line(s) edited or replaced (content differs from the manifest)".into());
        }
    }
    problems
}

/// Verifies every line of an export file and its manifest (see [`verify_file_full`]).
pub fn verify_file(path: &Path) -> Result<VerifySummary, ApiError> {
    verify_file_full(path).map(|v| v.summary)
}

/// Verifies an export file: every message line alone ([`verify_line`]), then the file as a
/// whole against its manifest (removed, added, reordered or edited lines; lines after the
/// manifest count as added). Blank lines are skipped. Manifest problems are reported as
/// failures at the manifest's line number, and in [`FileVerification::manifest`].
pub fn verify_file_full(path: &Path) -> Result<FileVerification, ApiError> {
    let f = File::open(path).map_err(|e| io(path, e))?;
    let mut r = BufReader::new(f);
    let mut s = VerifySummary {
        lines: 0,
        valid: 0,
        failures: vec![],
    };
    let mut seen = ManifestBuilder::new();
    // (line number, manifest) of the first manifest; lines after it; other manifests.
    let mut manifest: Option<(u64, ExportManifest)> = None;
    let mut after = 0u64;
    let mut extra_manifests = vec![];
    let mut buf = Vec::new();
    let mut lineno = 0u64;
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(m) = ExportManifest::from_line(&buf) {
            if manifest.is_none() {
                manifest = Some((lineno, m));
            } else {
                extra_manifests.push(lineno);
            }
            continue;
        }
        s.lines += 1;
        if manifest.is_some() {
            after += 1;
        } else {
            seen.push(&buf);
        }
        let text = String::from_utf8_lossy(&buf);
        match verify_line(&text) {
            Ok(()) => s.valid += 1,
            Err(reason) => s.failures.push(VerifyFailure {
                line: lineno,
                reason,
            }),
        }
    }
    let status = match manifest {
        None => ManifestStatus::Absent,
        Some((at, m)) => {
            let mut problems = check_manifest(&m, &seen);
            if after > 0 {
                problems.push(format!("{after} line(s) added after the manifest"));
            }
            for l in extra_manifests {
                problems.push(format!("a second manifest at line {l}"));
            }
            for p in &problems {
                s.failures.push(VerifyFailure {
                    line: at,
                    reason: format!("manifest: {p}"),
                });
            }
            s.failures.sort_by_key(|f| f.line);
            if problems.is_empty() {
                ManifestStatus::Valid {
                    exporter: m.exporter,
                    lines: m.lines,
                }
            } else {
                ManifestStatus::Invalid {
                    exporter: m.exporter,
                    problems,
                }
            }
        }
    };
    Ok(FileVerification {
        summary: s,
        manifest: status,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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
        assert_eq!(
            utc_iso(ms_of(2026, 11, 21, 23, 59, 59, 0) + 1000),
            "2026-11-22T00:00:00Z"
        );
        assert_eq!(
            utc_iso(ms_of(2028, 2, 29, 12, 0, 0, 0)),
            "2028-02-29T12:00:00Z"
        );
        assert_eq!(
            utc_iso(ms_of(2028, 2, 29, 23, 59, 59, 0) + 1000),
            "2028-03-01T00:00:00Z"
        );
        assert_eq!(
            utc_iso(ms_of(2100, 2, 28, 23, 59, 59, 0) + 1000),
            "2100-03-01T00:00:00Z"
        );
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
        // CR is a control character: shown as an escape (LF stays a line break).
        assert_eq!(csv_field("cr\r\nlf"), "\"cr\\x0d\nlf\"");
        let l = line("medical", "Ana, \"doc\"", "need stretchers,\n2 \"urgent\"");
        let rec = csv_record(&l);
        assert_eq!(
            rec,
            format!(
                "2023-11-14T22:13:20Z,medical,\"Ana, \"\"doc\"\"\",{},\"need stretchers,\n2 \"\"urgent\"\"\",{},\r\n",
                fingerprint(&l.author),
                l.id
            )
        );
        assert_eq!(
            CSV_HEADER,
            "timestamp_utc,room,author_name,author_fingerprint,body,id,urgent\r\n"
        );
    }

    #[test]
    fn urgent_lines_keep_the_signed_body_verify_and_say_urgent_in_reports() {
        let body = format!("{}collapse at the market", dn_proto::message::URGENT_MARKER);
        let l = line("medical", "Ana", &body);
        assert!(l.urgent);
        assert_eq!(l.body, body, "the signed text, marker included");
        let json = serde_json::to_string(&l).unwrap();
        assert!(json.contains("\"urgent\":true"));
        verify_line(&json).unwrap();
        // Claiming urgency the signed body does not carry fails; an older export without the
        // field still verifies.
        let plain = line("medical", "Ben", "ok");
        let mut forged = plain.clone();
        forged.urgent = true;
        let e = verify_line(&serde_json::to_string(&forged).unwrap()).unwrap_err();
        assert!(e.contains("urgent"), "{e}");
        let mut older = l.clone();
        older.urgent = false;
        verify_line(&serde_json::to_string(&older).unwrap()).unwrap();
        assert!(!serde_json::to_string(&plain).unwrap().contains("urgent"));
        assert!(csv_record(&l).ends_with(",yes\r\n"));
        assert!(csv_record(&l).contains(",collapse at the market,"));
        assert!(csv_record(&plain).ends_with(",\r\n"));
        let h = html_report(&[l, plain]);
        assert_eq!(h.matches("URGENT</b>").count(), 1);
        assert!(h.contains("<p class=\"body\">collapse at the market</p>"));
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

    fn store_with(msgs: &[Message]) -> Store {
        let s = Store::open_in_memory().unwrap();
        for m in msgs {
            s.insert_message(m, 1, false).unwrap();
        }
        s
    }

    fn sample() -> Vec<Message> {
        let a = SigningKey::from_bytes(&[1u8; 32]);
        let b = SigningKey::from_bytes(&[2u8; 32]);
        (0..5u64)
            .map(|i| {
                let k = if i % 2 == 0 { &a } else { &b };
                Message::create(k, "medical", "Ana", 1_000 + i, &format!("report {i}")).unwrap()
            })
            .collect()
    }

    /// A signed export of [`sample`]; returns (dir, path, lines without the manifest, manifest).
    fn signed_export() -> (tempfile::TempDir, std::path::PathBuf, Vec<String>, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let node = SigningKey::from_bytes(&[3u8; 32]);
        let s = export_signed_with_progress(
            &store_with(&sample()),
            None,
            &path,
            ExportFormat::Jsonl,
            Some(&node),
            None,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(s.messages, 5);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let manifest = lines.pop().unwrap();
        assert!(manifest.starts_with("{\"manifest\":"), "{manifest}");
        (dir, path, lines, manifest)
    }

    fn verify_text(dir: &Path, text: &str) -> FileVerification {
        let p = dir.join("check.jsonl");
        std::fs::write(&p, text).unwrap();
        verify_file_full(&p).unwrap()
    }

    fn problems(v: &FileVerification) -> Vec<String> {
        match &v.manifest {
            ManifestStatus::Invalid { problems, .. } => problems.clone(),
            other => panic!("expected an invalid manifest, got {other:?}"),
        }
    }

    #[test]
    fn signed_export_verifies_with_its_manifest() {
        let (dir, path, lines, _) = signed_export();
        let v = verify_file_full(&path).unwrap();
        assert_eq!(v.summary.lines, 5);
        assert_eq!(v.summary.valid, 5);
        assert!(v.summary.failures.is_empty(), "{:?}", v.summary.failures);
        let node = SigningKey::from_bytes(&[3u8; 32]);
        assert_eq!(
            v.manifest,
            ManifestStatus::Valid {
                exporter: hex::encode(node.verifying_key().to_bytes()),
                lines: 5
            }
        );
        // Without the manifest (an old export): each line still verifies, with a warning.
        let v = verify_text(dir.path(), &(lines.join("\n") + "\n"));
        assert_eq!(v.manifest, ManifestStatus::Absent);
        assert_eq!(v.summary.valid, 5);
        assert!(v.summary.failures.is_empty());
    }

    #[test]
    fn manifest_detects_removed_added_reordered_and_edited_lines() {
        let (dir, _, lines, manifest) = signed_export();
        let file = |ls: &[String]| format!("{}\n{manifest}\n", ls.join("\n"));

        // Removed: every remaining line is valid on its own; only the manifest tells.
        let mut removed = lines.clone();
        removed.remove(2);
        let v = verify_text(dir.path(), &file(&removed));
        assert_eq!(v.summary.valid, 4);
        let p = problems(&v);
        assert!(p[0].contains("1 line(s) removed"), "{p:?}");
        assert_eq!(v.summary.failures.len(), 1);
        assert_eq!(
            v.summary.failures[0].line, 5,
            "reported at the manifest's line"
        );

        // Added: a validly signed message from elsewhere.
        let k = SigningKey::from_bytes(&[4u8; 32]);
        let extra = Message::create(&k, "medical", "Eve", 1_002, "all clear").unwrap();
        let extra = serde_json::to_string(&export_line(&extra)).unwrap();
        let mut added = lines.clone();
        added.insert(1, extra.clone());
        let p = problems(&verify_text(dir.path(), &file(&added)));
        assert!(p[0].contains("1 line(s) added"), "{p:?}");

        // Reordered.
        let mut reordered = lines.clone();
        reordered.swap(0, 3);
        let v = verify_text(dir.path(), &file(&reordered));
        assert_eq!(v.summary.valid, 5);
        assert!(problems(&v)[0].contains("reordered"), "{:?}", problems(&v));

        // Replaced by another validly signed line (same count).
        let mut replaced = lines.clone();
        replaced[4] = extra.clone();
        let v = verify_text(dir.path(), &file(&replaced));
        assert_eq!(v.summary.valid, 5);
        assert!(
            problems(&v)[0].contains("edited or replaced"),
            "{:?}",
            problems(&v)
        );

        // Edited body: the line fails alone, and the manifest says so too.
        let mut edited = lines.clone();
        edited[1] = edited[1].replace("report 1", "report 9");
        let v = verify_text(dir.path(), &file(&edited));
        assert_eq!(v.summary.valid, 4);
        assert!(problems(&v)[0].contains("edited"), "{:?}", problems(&v));

        // A line appended after the manifest.
        let v = verify_text(dir.path(), &format!("{}{extra}\n", file(&lines)));
        assert!(problems(&v)
            .iter()
            .any(|p| p.contains("after the manifest")));

        // A forged manifest (counts changed, signature kept) fails its signature.
        let forged = manifest.replace("\"lines\":5", "\"lines\":4");
        let v = verify_text(dir.path(), &format!("{}\n{forged}\n", removed.join("\n")));
        assert!(
            problems(&v).iter().any(|p| p.contains("signature")),
            "{:?}",
            problems(&v)
        );
        // Blank lines do not matter.
        let v = verify_text(
            dir.path(),
            &format!("\n{}\n\n{manifest}\n\n", lines.join("\n\n")),
        );
        assert!(matches!(v.manifest, ManifestStatus::Valid { .. }), "{v:?}");
    }

    /// Pins the documented manifest bytes (docs/protocol.md, "Export manifest"): a third
    /// party implementation must reproduce these values.
    #[test]
    fn manifest_test_vector() {
        let mut b = ManifestBuilder::new();
        b.push(b"{\"a\":1}");
        b.push(b"{\"b\":2}");
        let key = SigningKey::from_bytes(&[0x42; 32]);
        let m = b.finish(&key);
        // h_1 = SHA-256(0^32 || line_1), h_2 = SHA-256(h_1 || line_2)
        let mut h = [0u8; 32];
        for l in [&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]] {
            let mut d = Sha256::new();
            d.update(h);
            d.update(l);
            h = d.finalize().into();
        }
        assert_eq!(m.chain, hex::encode(h));
        let signed = manifest_signed_bytes(&key.verifying_key().to_bytes(), 2, &h, &b.set_digest());
        assert_eq!(signed.len(), 113);
        assert_eq!(&signed[..9], b"DNexport1");
        assert_eq!(
            m.exporter,
            "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12"
        );
        assert_eq!(
            m.chain,
            "0b2395e34f7bf5a93f849ba24bfd4e0f93b573e468c754894ad38a08222b0f82"
        );
        assert_eq!(
            m.set,
            "e995b26f1ff802f91230e035e4e192b91f79fc61970035e2b80bc960b7b17a16"
        );
        assert_eq!(
            m.signature,
            "e1dd23cf8175de1f5fdba2a92f40dc4d074449769decd4c88d23eacde6c938a1\
             89884a8b948a4e7c3418428461889d05b32678391f3452c92450ef3a6cabde01"
        );
        assert_eq!(
            m.to_line().unwrap(),
            format!(
                "{{\"manifest\":{{\"version\":1,\"exporter\":\"{}\",\"lines\":2,\
                 \"chain\":\"{}\",\"set\":\"{}\",\"signature\":\"{}\"}}}}",
                m.exporter, m.chain, m.set, m.signature
            )
        );
    }

    #[cfg(unix)]
    #[test]
    fn unsigned_export_has_no_manifest_and_exports_are_private_and_replace_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let path = dir.path().join("out.jsonl");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        export_signed_with_progress(
            &store_with(&sample()),
            None,
            &path,
            ExportFormat::Jsonl,
            None,
            None,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let v = verify_file_full(&path).unwrap();
        assert_eq!(v.manifest, ManifestStatus::Absent);
        assert_eq!(v.summary.valid, 5);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn csv_quotes_semicolons_and_tabs_and_neutralises_every_field() {
        assert_eq!(csv_field("a;b"), "\"a;b\"");
        assert_eq!(csv_field("a\tb"), "\"a\tb\"");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("  =1+1"), "'  =1+1");
        assert_eq!(csv_field("\t=1"), "\"'\t=1\"");
        assert_eq!(
            csv_field("=cmd|' /C calc'!A0;x"),
            "\"'=cmd|' /C calc'!A0;x\""
        );
        // Controls and bidi overrides are escaped visibly.
        assert_eq!(csv_field("\x1b[2Jx"), "\\x1b[2Jx");
        assert_eq!(csv_field("a\u{202e}b"), "a\\u{202e}b");
        let mut l = line("medical", "@SUM(A1)", "+body;more");
        l.room = "=room".into();
        let rec = csv_record(&l);
        assert!(rec.contains(",'=room,'@SUM(A1),"), "{rec}");
        assert!(rec.contains(",\"'+body;more\","), "{rec}");
    }

    #[test]
    fn html_shows_controls_and_bidi_overrides_as_escapes() {
        let lines = [line(
            "medical",
            "Ana\u{202e}gpj.exe",
            "\x1b]52;c;ZXZpbA==\x07 hi\nthere",
        )];
        let h = html_report(&lines);
        assert!(!h.contains('\u{202e}') && !h.contains('\x1b') && !h.contains('\x07'));
        assert!(h.contains("Ana\\u{202e}gpj.exe"), "{h}");
        assert!(h.contains("\\x1b]52;c;ZXZpbA==\\x07 hi\nthere"), "{h}");
    }
}
