//! Writing bundle files (`docs/protocol.md` §9): the signed messages of some rooms, for
//! another camp to import (`dn_proto::bundle` is the format; the import runs in the core,
//! `core/bundle.rs`, since every message goes through the protocol's admission).
//!
//! Unlike the human exports of [`crate::export`], a bundle holds exactly what was signed
//! (private rooms and direct messages as their ciphertext), nothing decrypted.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use dn_proto::bundle::{Encoder, Header};
use dn_proto::NodeId;
use dn_store::Store;

use crate::api::{ApiError, BundleExportSummary, ErrorCode};
use crate::export::{commit_export, io, temp_writer};

/// Progress is reported at most this often (and once at the end).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

#[allow(clippy::needless_pass_by_value)] // called from map_err
fn storage(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Storage, e.to_string())
}

/// What to put in a bundle.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// These rooms (normalised names or private-room ids); all rooms when `None`.
    pub rooms: Option<Vec<String>>,
    /// Only messages dated at or after this time, ms since the Unix epoch.
    pub since_ms: Option<u64>,
}

/// Writes the messages `sel` picks from `store` to `path` as a bundle created by `creator` at
/// `created_ms`, atomically (a private temporary file beside it, synced, renamed over it),
/// calling `progress(written, to write)` at most every [`PROGRESS_INTERVAL`] and at the end.
pub fn write_bundle(
    store: &Store,
    sel: &Selection,
    path: &Path,
    creator: NodeId,
    created_ms: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BundleExportSummary, ApiError> {
    let rooms: Vec<Option<&str>> = match &sel.rooms {
        Some(r) => r.iter().map(|r| Some(r.as_str())).collect(),
        None => vec![None],
    };
    let mut total = 0u64;
    for r in &rooms {
        total += store.message_count(*r).map_err(storage)?;
    }
    progress(0, total);
    let (mut w, tmp) = temp_writer(path)?;
    let header = Header {
        flags: 0,
        created_ms,
        creator,
        count_hint: u32::try_from(total).unwrap_or(u32::MAX),
    };
    let (mut enc, head) = Encoder::new(&header);
    let mut bytes = head.len() as u64;
    let mut last = Instant::now();
    let mut seen = 0u64;
    let res = w.write_all(&head).map_err(|e| io(&tmp, e)).and_then(|()| {
        for r in &rooms {
            store.for_each_message(*r, |sm| -> Result<(), ApiError> {
                seen += 1;
                if sel.since_ms.is_some_and(|s| sm.message.timestamp < s) {
                    return Ok(());
                }
                let rec = enc.record(&sm.message);
                bytes += rec.len() as u64;
                w.write_all(&rec).map_err(|e| io(&tmp, e))?;
                if last.elapsed() >= PROGRESS_INTERVAL {
                    last = Instant::now();
                    progress(seen.min(total), total);
                }
                Ok(())
            })?;
        }
        Ok(())
    });
    let messages = enc.count();
    let written = res.and_then(|()| {
        let trailer = enc.finish();
        bytes += trailer.len() as u64;
        w.write_all(&trailer).map_err(|e| io(&tmp, e))
    });
    commit_export(w, &tmp, path, written)?;
    progress(total.max(seen), total.max(seen));
    Ok(BundleExportSummary {
        path: path.display().to_string(),
        messages,
        bytes,
    })
}

/// Parses a `--since` value: a date `YYYY-MM-DD` (midnight UTC), an RFC 3339 time, or
/// milliseconds since the Unix epoch.
pub fn parse_since(s: &str) -> Result<u64, ApiError> {
    let t = s.trim();
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("{t:?} is not a date (2026-11-28), an RFC 3339 time or milliseconds"),
        )
    };
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| bad());
    }
    rfc3339_ms(t).ok_or_else(bad)
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`, as ms since the
/// Unix epoch; `None` for anything else or a time before 1970.
fn rfc3339_ms(t: &str) -> Option<u64> {
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let date = t.get(0..10)?;
    let (y, m, d) = (
        num(date.get(0..4)?)?,
        num(date.get(5..7)?)?,
        num(date.get(8..10)?)?,
    );
    if date.get(4..5)? != "-" || date.get(7..8)? != "-" || !(1..=12).contains(&m) {
        return None;
    }
    if !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    let rest = &t[10..];
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        let (h, mi, s) = (
            num(rest.get(0..2)?)?,
            num(rest.get(3..5)?)?,
            num(rest.get(6..8)?)?,
        );
        if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        ms += ((h * 60 + mi) * 60 + s) * 1000;
        let mut zone = &rest[8..];
        if let Some(frac) = zone.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            let f = frac.get(..digits)?;
            if f.is_empty() {
                return None;
            }
            let f3 = format!("{:0<3}", &f[..f.len().min(3)]);
            ms += num(&f3)?;
            zone = &frac[digits..];
        }
        match zone {
            "Z" | "z" => {}
            _ => {
                let sign = match zone.get(0..1)? {
                    "+" => 1,
                    "-" => -1,
                    _ => return None,
                };
                let (oh, om) = (num(zone.get(1..3)?)?, num(zone.get(4..6)?)?);
                if zone.get(3..4)? != ":" || zone.len() != 6 {
                    return None;
                }
                ms -= sign * (oh * 60 + om) * 60_000;
            }
        }
    }
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_a_date_a_time_and_milliseconds() {
        assert_eq!(parse_since("2026-11-28").unwrap(), 1_795_824_000_000);
        assert_eq!(
            parse_since("2026-11-28T01:00:00+01:00").unwrap(),
            1_795_824_000_000
        );
        assert_eq!(parse_since("1700000000000").unwrap(), 1_700_000_000_000);
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("").is_err());
        assert_eq!(parse_since("1970-01-01T00:00:00.5Z").unwrap(), 500);
        assert_eq!(parse_since("2000-03-01").unwrap(), 951_868_800_000);
        assert!(parse_since("2026-13-01").is_err());
        assert!(parse_since("2026-11-28T10:00").is_err());
    }
}
