//! Recovering what can be read from a damaged store.
//!
//! [`salvage_into_with_key`] reads the damaged file read-only, message row by message row in rowid
//! order. When a read fails (a damaged page), it probes forward with growing steps until a
//! rowid can be sought again, then searches back to the first readable rowid after the damage,
//! so that one bad page costs the rows on that page and not the rest of the table. Every
//! message is checked (it parses, its id matches, its author's signature verifies) before it
//! goes into the new store; rooms and settings are copied as far as they can be read.
//!
//! [`salvage_store`] is the whole procedure on a data directory's store file: write the new
//! store beside it, check it, then move the damaged file aside and put the new one in place.
//! It never overwrites or deletes a file.

use std::path::{Path, PathBuf};

use dn_proto::Message;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::{Result, Store, StoreError, StoreKey};

/// Messages inserted per transaction into the new store.
const SALVAGE_BATCH: usize = 1000;
/// Largest forward jump when probing past damage (rowids are below 2^63; 2^62 covers any
/// table this program writes while keeping `last + step` far from overflow).
const MAX_PROBE_STEP: i64 = 1 << 62;

/// What a salvage read and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SalvageReport {
    /// Message rows read from the damaged file.
    pub rows_read: u64,
    /// Messages written to the new store (verified).
    pub recovered: u64,
    /// Rows skipped because they did not parse or their signature or id did not verify.
    pub invalid: u64,
    /// Damaged stretches of the message table skipped (their rows could not be read).
    pub damaged_ranges: u64,
    /// Rooms (membership, mute) copied.
    pub rooms: u64,
    /// Settings (display name, …) copied.
    pub settings: u64,
    /// Private-room keys copied (without them a member cannot read its private rooms).
    pub room_keys: u64,
}

/// The result of [`salvage_store`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SalvageOutcome {
    /// What was read and kept.
    pub report: SalvageReport,
    /// Where the damaged file was moved (with its `-wal`/`-shm`, if any, beside it).
    pub damaged_kept: PathBuf,
    /// The store now in place (the salvaged one).
    pub store: PathBuf,
}

fn io(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// One message row: (rowid, signed, signature, received_at, local).
type RawRow = (i64, Vec<u8>, Vec<u8>, Option<i64>, Option<i64>);

/// The first row with a rowid above `after` (`Ok(None)`: no more rows), or the read error.
fn next_row(conn: &Connection, after: i64) -> rusqlite::Result<Option<RawRow>> {
    conn.query_row(
        "SELECT rowid, signed, signature, received_at, local FROM messages
         WHERE rowid > ?1 ORDER BY rowid LIMIT 1",
        [after],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .optional()
}

/// After a failed read at `after`: the smallest `q > after` from which rows can be read again
/// (`next_row(q)` succeeds), or `None` when no such point is found.
fn skip_damage(conn: &Connection, after: i64) -> Option<i64> {
    let mut step = 1i64;
    let mut good = None;
    while step <= MAX_PROBE_STEP {
        let probe = after.saturating_add(step);
        if next_row(conn, probe).is_ok() {
            good = Some(probe);
            break;
        }
        if probe == i64::MAX {
            break;
        }
        step = step.saturating_mul(2);
    }
    // Search back between the last failure and the first success.
    let (mut bad, mut ok) = (after, good?);
    while ok - bad > 1 {
        let mid = bad + (ok - bad) / 2;
        if next_row(conn, mid).is_ok() {
            ok = mid;
        } else {
            bad = mid;
        }
    }
    Some(ok)
}

/// A verified message from a raw row, or `None` if it does not check out.
fn verified(row: &RawRow) -> Option<Message> {
    let sig: [u8; 64] = row.2.as_slice().try_into().ok()?;
    let m = Message::from_signed_bytes(&row.1, sig).ok()?;
    m.verify().ok()?;
    Some(m)
}

/// Reads every message, room, setting and private-room key that can be read from the
/// (damaged) database at `damaged`, opened read-only, and writes the verified ones into a new
/// store at `out` (which must not exist). `now_ms` stands in for unreadable arrival times.
/// With `key` (a store encrypted at rest) the damaged file is read with it and the new store
/// is written with it; a key that does not open the damaged file is [`StoreError::WrongKey`]
/// before anything is written.
pub fn salvage_into_with_key(
    damaged: &Path,
    out: &Path,
    key: Option<&StoreKey>,
    now_ms: u64,
) -> Result<SalvageReport> {
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(io(
            out,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
        ));
    }
    let src = Connection::open_with_flags(
        damaged,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    crate::key::apply(&src, key, damaged)?;
    let dst = Store::open_with_key(out, key)?;
    let mut report = SalvageReport::default();
    let mut batch: Vec<(Message, u64, bool)> = Vec::with_capacity(SALVAGE_BATCH);
    let flush = |batch: &mut Vec<(Message, u64, bool)>, report: &mut SalvageReport| {
        let new = dst.insert_messages(batch)?;
        report.recovered += new.iter().filter(|n| **n).count() as u64;
        batch.clear();
        Ok::<_, StoreError>(())
    };
    let mut last = 0i64;
    loop {
        match next_row(&src, last) {
            Ok(Some(row)) => {
                last = row.0;
                report.rows_read += 1;
                match verified(&row) {
                    Some(m) => {
                        let at = row.3.and_then(|v| u64::try_from(v).ok()).unwrap_or(now_ms);
                        batch.push((m, at, row.4 == Some(1)));
                        if batch.len() >= SALVAGE_BATCH {
                            flush(&mut batch, &mut report)?;
                        }
                    }
                    None => report.invalid += 1,
                }
            }
            Ok(None) => break,
            Err(e) => {
                report.damaged_ranges += 1;
                tracing::warn!(after_rowid = last, "unreadable message rows: {e}");
                match skip_damage(&src, last) {
                    Some(q) => last = q,
                    None => break,
                }
            }
        }
    }
    flush(&mut batch, &mut report)?;
    report.rooms = copy_rooms(&src, &dst);
    report.settings = copy_settings(&src, &dst);
    report.room_keys = copy_private(&src, &dst);
    Ok(report)
}

/// Copies readable room rows; the number copied.
fn copy_rooms(src: &Connection, dst: &Store) -> u64 {
    let rows = src
        .prepare("SELECT name, joined, joined_at, muted FROM rooms")
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
    let Ok(rows) = rows else {
        tracing::warn!("the rooms table is unreadable; joined rooms must be joined again");
        return 0;
    };
    let mut n = 0;
    for (name, joined, joined_at, muted) in rows {
        let at = joined_at.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
        let ok = (joined != 1 || dst.join_room(&name, at).is_ok())
            && (muted != 1 || dst.set_room_muted(&name, true).is_ok());
        n += u64::from(ok);
    }
    n
}

/// Copies readable private rooms and their keys; the number of keys copied. (A store from
/// before schema v8 has neither table: nothing to copy.)
fn copy_private(src: &Connection, dst: &Store) -> u64 {
    let rooms = src
        .prepare("SELECT room, title, creator, added_at FROM private_rooms")
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
    let keys = src
        .prepare("SELECT room, epoch, key, added_at FROM room_keys")
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
    let (Ok(rooms), Ok(keys)) = (rooms, keys) else {
        tracing::warn!("the private-room tables are unreadable; rejoin private rooms by invite");
        return 0;
    };
    for (room, title, creator, at) in rooms {
        if let Ok(creator) = <[u8; 32]>::try_from(creator) {
            let at = u64::try_from(at).unwrap_or(0);
            let _ = dst.add_private_room(&room, &title, &dn_proto::NodeId(creator), at);
        }
    }
    let mut n = 0;
    for (room, epoch, key, at) in keys {
        if let (Ok(epoch), Ok(key)) = (u32::try_from(epoch), <[u8; 32]>::try_from(key)) {
            let at = u64::try_from(at).unwrap_or(0);
            n += u64::from(dst.add_room_key(&room, epoch, &key, at).is_ok());
        }
    }
    n
}

/// Copies readable settings; the number copied.
fn copy_settings(src: &Connection, dst: &Store) -> u64 {
    let rows = src
        .prepare("SELECT key, value FROM settings")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        });
    let Ok(rows) = rows else {
        tracing::warn!("the settings table is unreadable; the display name must be set again");
        return 0;
    };
    rows.iter()
        .filter(|(k, v)| dst.set_setting(k, v).is_ok())
        .count() as u64
}

/// Salvages the store file `db` (the caller must hold the data directory's lock, so nothing
/// else has it open):
///
/// 1. [`salvage_into_with_key`] a new file `<db>.salvaged-<now_ms>`;
/// 2. reopen that file with [`Store::open`] (its integrity check must pass) and check that it
///    holds the messages recovered;
/// 3. only then move `db` (and its `-wal`/`-shm`) aside to `<db>.damaged-<now_ms>` (+ the
///    same suffixes) and move the new file to `db`.
///
/// Never overwrites or deletes anything: every target name is checked to be free first, and
/// a failure before step 3 leaves the damaged store in place.
pub fn salvage_store(db: &Path, now_ms: u64) -> Result<SalvageOutcome> {
    salvage_store_with_key(db, None, now_ms)
}

/// [`salvage_store`] for a store encrypted at rest with `key` (the new store is encrypted with
/// the same key).
pub fn salvage_store_with_key(
    db: &Path,
    key: Option<&StoreKey>,
    now_ms: u64,
) -> Result<SalvageOutcome> {
    let out = with_suffix(db, &format!(".salvaged-{now_ms}"));
    let kept = with_suffix(db, &format!(".damaged-{now_ms}"));
    let companions = ["-wal", "-shm"];
    let mut targets = vec![out.clone(), kept.clone()];
    targets.extend(companions.iter().map(|c| with_suffix(&kept, c)));
    for target in &targets {
        if std::fs::symlink_metadata(target).is_ok() {
            return Err(io(
                target,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
            ));
        }
    }
    let report = salvage_into_with_key(db, &out, key, now_ms)?;
    if report.rows_read == 0 && report.damaged_ranges > 0 {
        // Nothing at all could be read: replacing the store would only hide it. Our own empty
        // output (created moments ago, holding nothing) is removed; the damaged file stays.
        for p in [
            out.clone(),
            with_suffix(&out, "-wal"),
            with_suffix(&out, "-shm"),
        ] {
            let _ = std::fs::remove_file(p);
        }
        return Err(StoreError::Corrupt(format!(
            "{}: no message could be read; the file was left in place untouched",
            db.display()
        )));
    }
    {
        // Verify the new store as the node will open it; dropping it checkpoints the WAL.
        let check = Store::open_with_key(&out, key)?;
        let count = check.message_count(None)?;
        if count != report.recovered {
            return Err(StoreError::Corrupt(format!(
                "{}: holds {count} messages after salvage, expected {}",
                out.display(),
                report.recovered
            )));
        }
    }
    // Listed only now: reading the damaged file may have created its `-wal`/`-shm`, which must
    // go aside with it and never be paired with the new file.
    let mut moves = vec![(db.to_path_buf(), kept.clone())];
    for c in companions {
        let from = with_suffix(db, c);
        if std::fs::symlink_metadata(&from).is_ok() {
            moves.push((from, with_suffix(&kept, c)));
        }
    }
    for c in companions {
        let leftover = with_suffix(&out, c);
        if std::fs::symlink_metadata(&leftover).is_ok() {
            moves.push((leftover, with_suffix(db, c)));
        }
    }
    // The damaged file and its companions go aside first, so the new file's companions (if
    // any) never meet the old ones.
    for (from, to) in &moves {
        if std::fs::symlink_metadata(to).is_ok() {
            return Err(io(
                to,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
            ));
        }
        std::fs::rename(from, to).map_err(|e| io(from, e))?;
    }
    std::fs::rename(&out, db).map_err(|e| io(&out, e))?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    tracing::info!(
        recovered = report.recovered,
        kept = %kept.display(),
        "store salvaged"
    );
    Ok(SalvageOutcome {
        report,
        damaged_kept: kept,
        store: db.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Seek, SeekFrom, Write};

    use dn_proto::MessageId;
    use ed25519_dalek::SigningKey;

    use super::*;

    fn msgs(n: u64) -> Vec<Message> {
        let keys: Vec<SigningKey> = (1..=4u8)
            .map(|k| SigningKey::from_bytes(&[k; 32]))
            .collect();
        (0..n)
            .map(|i| {
                let k = &keys[(i % 4) as usize];
                let body = format!("message {i} {}", "x".repeat(150));
                Message::create(k, &format!("room{}", i % 3), "Ana", 1_000 + i, &body).unwrap()
            })
            .collect()
    }

    fn fill(path: &Path, all: &[Message]) {
        let s = Store::open(path).unwrap();
        for chunk in all.chunks(500) {
            let batch: Vec<_> = chunk.iter().map(|m| (m.clone(), 5, false)).collect();
            s.insert_messages(&batch).unwrap();
        }
        s.join_room("room1", 77).unwrap();
        s.set_room_muted("room1", true).unwrap();
        s.set_setting("display_name", "Ana").unwrap();
        let creator = dn_proto::NodeId([5; 32]);
        s.add_private_room("p.00112233445566778899aabbccddeeff", "medical", &creator, 9)
            .unwrap();
        s.add_room_key("p.00112233445566778899aabbccddeeff", 0, &[7; 32], 9)
            .unwrap();
        s.add_room_key("p.00112233445566778899aabbccddeeff", 1, &[8; 32], 10)
            .unwrap();
    }

    /// Overwrites pages `from..to` (fractions of the file) with garbage.
    fn corrupt(path: &Path, from: f64, to: f64) {
        let len = std::fs::metadata(path).unwrap().len();
        let page = 4096u64;
        let pages = len / page;
        let (a, b) = ((pages as f64 * from) as u64, (pages as f64 * to) as u64);
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start(a * page)).unwrap();
        let mut x = 0x1234_5678u32;
        let garbage: Vec<u8> = (0..(b - a) * page)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        f.write_all(&garbage).unwrap();
        f.sync_all().unwrap();
    }

    #[test]
    fn damaged_store_is_refused_then_salvaged_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("store.sqlite3");
        let all = msgs(3000);
        fill(&db, &all);
        // One row whose signature does not verify (stored by a buggy or hostile writer).
        {
            let c = Connection::open(&db).unwrap();
            let forged = &all[0];
            let mut signed = forged.signed_bytes();
            let n = signed.len();
            signed[n - 1] ^= 1;
            let id = [7u8; 32];
            c.execute(
                "INSERT INTO messages (id, room, author, timestamp, author_name, body, signed,
                     signature, received_at, local)
                 VALUES (?1, 'room0', ?2, 1, 'x', 'x', ?3, ?4, 1, 0)",
                rusqlite::params![&id[..], &forged.author.0[..], signed, &forged.signature[..]],
            )
            .unwrap();
        }
        assert!(Store::open(&db).is_ok(), "intact store must open");
        corrupt(&db, 0.4, 0.5);

        let err = Store::open(&db).unwrap_err().to_string();
        assert!(err.contains("the store is damaged"), "{err}");
        assert!(err.contains("disasternet salvage"), "{err}");
        let before = std::fs::read(&db).unwrap();

        let out = salvage_store(&db, 4242).unwrap();
        let r = &out.report;
        eprintln!("salvage report: {r:?}");
        assert!(r.damaged_ranges >= 1, "{r:?}");
        assert_eq!(r.invalid, 1, "{r:?}");
        assert!(r.recovered > 0 && r.recovered < 3000, "{r:?}");
        assert_eq!(r.rooms, 1);
        assert_eq!(r.settings, 1);
        // The damaged file is kept, byte for byte; nothing is left at the salvage name.
        assert_eq!(
            out.damaged_kept,
            dir.path().join("store.sqlite3.damaged-4242")
        );
        assert_eq!(std::fs::read(&out.damaged_kept).unwrap(), before);
        assert!(!dir.path().join("store.sqlite3.salvaged-4242").exists());
        // Companions created while reading the damaged file went aside with it.
        for c in ["-wal", "-shm"] {
            assert!(
                !with_suffix(&db, c).exists(),
                "{c} left beside the new store"
            );
        }

        let s = Store::open(&db).unwrap();
        assert_eq!(s.message_count(None).unwrap(), r.recovered);
        // Rows after the damage were found again (the newest message lives at the end).
        let newest: MessageId = all[2999].id();
        assert!(s.has_message(&newest).unwrap());
        assert!(s.room_joined("room1").unwrap());
        assert_eq!(
            s.get_setting("display_name").unwrap().as_deref(),
            Some("Ana")
        );
        let mut n = 0;
        s.for_each_message(None, |sm| -> Result<()> {
            sm.message.verify().unwrap();
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, r.recovered);
        drop(s);
        // A second salvage at the same instant would overwrite: refused, nothing changes.
        let e = salvage_store(&db, 4242).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
    }

    #[test]
    fn unreadable_store_is_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        fill(&db, &msgs(200));
        corrupt(&db, 0.0, 1.0);
        let before = std::fs::read(&db).unwrap();
        let e = salvage_store(&db, 9).unwrap_err();
        assert!(e.to_string().contains("no message could be read"), "{e}");
        assert_eq!(std::fs::read(&db).unwrap(), before);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.contains("salvaged") && !n.contains("damaged-")),
            "{names:?}"
        );
    }

    #[test]
    fn salvage_of_a_healthy_store_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        fill(&db, &msgs(50));
        let out = salvage_store(&db, 1).unwrap();
        assert_eq!(out.report.recovered, 50);
        assert_eq!(out.report.damaged_ranges, 0);
        assert_eq!(out.report.room_keys, 2);
        let s = Store::open(&db).unwrap();
        assert_eq!(s.message_count(None).unwrap(), 50);
        // Private rooms and every key epoch survive a salvage.
        let room = "p.00112233445566778899aabbccddeeff";
        assert_eq!(s.private_rooms().unwrap()[0].title, "medical");
        assert_eq!(s.room_keys(room).unwrap(), vec![(0, [7; 32]), (1, [8; 32])]);
    }

    #[cfg(unix)]
    #[test]
    fn store_dir_and_files_are_owner_only_from_creation() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new/store.sqlite3");
        let s = Store::open(&db).unwrap();
        s.set_setting("k", "v").unwrap();
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&with_suffix(&db, "-wal")), 0o600);
        assert_eq!(mode(&with_suffix(&db, "-shm")), 0o600);
        drop(s);
        // Files made readable by others are tightened at the next open.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let s = Store::open(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        drop(s);
    }

    /// Cost of the open-time integrity check: printed, not asserted (machines differ).
    #[test]
    fn quick_check_cost_on_100k_messages() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("big.db");
        let k = SigningKey::from_bytes(&[9; 32]);
        {
            let s = Store::open(&db).unwrap();
            let mut batch = Vec::with_capacity(5000);
            for i in 0..100_000u64 {
                let m =
                    Message::create(&k, "big", "Ana", i, &format!("status report {i}")).unwrap();
                batch.push((m, 1, false));
                if batch.len() == 5000 {
                    s.insert_messages(&batch).unwrap();
                    batch.clear();
                }
            }
        }
        let size = std::fs::metadata(&db).unwrap().len();
        let c = Connection::open(&db).unwrap();
        let t = std::time::Instant::now();
        crate::quick_check(&c).unwrap();
        eprintln!(
            "quick_check on 100k messages ({} MiB): {} ms",
            size / (1024 * 1024),
            t.elapsed().as_millis()
        );
    }
}
