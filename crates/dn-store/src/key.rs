//! Encryption at rest: the store's SQLCipher key, and copying a store into a new file with
//! another key (or none) for turning the passphrase on and off.
//!
//! SQLCipher encrypts every page of the database file and of its `-wal` (AES-256-CBC with a
//! per-page random IV and an HMAC-SHA256 per page, [`CIPHER_SETTINGS`]); the `-shm` index holds
//! no content. The key
//! is a *raw* 32-byte key (`PRAGMA key = "x'<64 hex>'"`), so SQLCipher's own password KDF is
//! not used: the random key is wrapped under the user's passphrase by the node (Argon2id, see
//! docs/security.md "At rest"). An unkeyed store is an ordinary SQLite file.

use std::fmt;
use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use zeroize::Zeroizing;

use crate::{schema, Result, Store, StoreError, BUSY_TIMEOUT};

/// SQLCipher settings of every encrypted store, given right after its key (they are part of the
/// file format: a store must always be opened with the same ones). HMAC-SHA256 instead of
/// SQLCipher 4's default HMAC-SHA512 per page: the same integrity, and on this x86-64 laptop's
/// class of CPU (SHA extensions) it reads a 100k-message store's pages in 117 ms instead of
/// 160 ms and ingests 12 % faster (docs/benchmarks.md §10). The page size stays 4 KiB: 16 KiB
/// reads faster still but makes each single-message commit (the `send` path) 25 % slower.
pub(crate) const CIPHER_SETTINGS: &str = "PRAGMA cipher_hmac_algorithm = HMAC_SHA256;";

/// Length of a store key in bytes.
pub const STORE_KEY_LEN: usize = 32;

/// A raw 32-byte SQLCipher key. Zeroed when dropped; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey(Zeroizing<[u8; STORE_KEY_LEN]>);

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

impl StoreKey {
    /// The key from its bytes.
    pub fn from_bytes(bytes: [u8; STORE_KEY_LEN]) -> Self {
        StoreKey(Zeroizing::new(bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; STORE_KEY_LEN] {
        &self.0
    }

    /// The SQL literal SQLCipher takes as a raw key: `"x'<64 hex>'"` (double-quoted).
    fn literal(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("\"x'{}'\"", hex::encode(&self.0[..])))
    }
}

/// Gives `conn` its key (the first statement on a new connection) and checks that it opens the
/// file: a wrong key, or a key given for a plain file, is [`StoreError::WrongKey`]. Without a
/// key nothing changes from plain SQLite (an encrypted file reads as "not a database",
/// [`StoreError::Corrupt`], exactly like any other file that is not a store).
pub(crate) fn apply(conn: &Connection, key: Option<&StoreKey>, path: &Path) -> Result<()> {
    let Some(key) = key else {
        return Ok(());
    };
    let sql = Zeroizing::new(format!(
        "PRAGMA key = {}; {CIPHER_SETTINGS}",
        key.literal().as_str()
    ));
    conn.execute_batch(&sql)?;
    // SQLCipher logs to stderr by default (a wrong key prints "hmac check failed" lines around
    // our own clear error); its errors reach us as SQLite errors anyway. The level is
    // process-wide and only sticks once SQLCipher is active, i.e. after a key.
    conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()))?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            Err(StoreError::WrongKey(format!(
                "{}: the store key does not open this store",
                path.display()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Row counts of every table of a database (schema `db`), by table name.
fn table_counts(conn: &Connection, db: &str) -> Result<Vec<(String, u64)>> {
    let names: Vec<String> = conn
        .prepare(&format!(
            "SELECT name FROM {db}.sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ))?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let quoted = name.replace('"', "\"\"");
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM {db}.\"{quoted}\""),
            [],
            |r| r.get(0),
        )?;
        out.push((name, u64::try_from(n).unwrap_or(0)));
    }
    Ok(out)
}

impl Store {
    /// Row counts of every table, by table name (for checking a copy).
    pub fn table_counts(&self) -> Result<Vec<(String, u64)>> {
        table_counts(&self.conn, "main")
    }

    /// Copies the whole store (schema, rows, `user_version`, `application_id`) into a new file
    /// `dest` encrypted with `key` (plain with `None`), with SQLCipher's `sqlcipher_export`, then
    /// checks the copy with [`verify_copy`] against this store's row counts. `dest` must not
    /// exist. Nothing of this store changes. Must not run inside a transaction.
    ///
    /// On any failure the partial `dest` is removed.
    pub fn export_to(&self, dest: &Path, key: Option<&StoreKey>) -> Result<()> {
        if std::fs::symlink_metadata(dest).is_ok() {
            return Err(StoreError::Io {
                path: dest.to_path_buf(),
                error: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
            });
        }
        // Written under a temporary name and renamed to `dest` only once verified and synced:
        // a crash leaves either no `dest` or a complete, checked one (never an empty file that
        // a recovery could take for the store).
        let partial = partial_path(dest);
        remove_with_companions(&partial);
        // Owner-only from creation, like the store itself.
        crate::private_files(&partial)?;
        let r = self
            .export_unchecked(&partial, key)
            .and_then(|()| {
                let expected = self.table_counts()?;
                verify_copy(&partial, key, Some(&expected))
            })
            .and_then(|()| {
                let io = |error| StoreError::Io {
                    path: partial.clone(),
                    error,
                };
                std::fs::File::open(&partial)
                    .and_then(|f| f.sync_all())
                    .map_err(io)?;
                std::fs::rename(&partial, dest).map_err(io)?;
                if let Some(dir) = dest.parent() {
                    if let Ok(d) = std::fs::File::open(dir) {
                        let _ = d.sync_all();
                    }
                }
                Ok(())
            });
        if r.is_err() {
            let _ = self.conn.execute_batch("DETACH DATABASE dn_export");
            remove_with_companions(&partial);
        }
        r
    }

    fn export_unchecked(&self, dest: &Path, key: Option<&StoreKey>) -> Result<()> {
        let literal = match key {
            Some(k) => k.literal(),
            None => Zeroizing::new("''".to_string()),
        };
        let path = dest.to_str().ok_or_else(|| StoreError::Io {
            path: dest.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not UTF-8"),
        })?;
        let sql = Zeroizing::new(format!(
            "ATTACH DATABASE '{}' AS dn_export KEY {};",
            path.replace('\'', "''"),
            literal.as_str()
        ));
        self.conn.execute_batch(&sql)?;
        if key.is_some() {
            self.conn
                .execute_batch(&CIPHER_SETTINGS.replace("PRAGMA ", "PRAGMA dn_export."))?;
        }
        let version = schema::user_version(&self.conn)?;
        let app = schema::application_id(&self.conn)?;
        let r = self
            .conn
            .query_row("SELECT sqlcipher_export('dn_export')", [], |_| Ok(()))
            .map_err(StoreError::from)
            .and_then(|()| {
                self.conn.execute_batch(&format!(
                    "PRAGMA dn_export.user_version = {version};
                     PRAGMA dn_export.application_id = {app};"
                ))?;
                Ok(())
            });
        let detach = self.conn.execute_batch("DETACH DATABASE dn_export");
        r?;
        detach?;
        Ok(())
    }
}

/// Where [`Store::export_to`] writes before the copy is verified: `<dest>.partial`.
pub fn partial_path(dest: &Path) -> std::path::PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(".partial");
    std::path::PathBuf::from(p)
}

/// Removes `path` and its `-journal`/`-wal`/`-shm` (what is missing is fine).
pub fn remove_with_companions(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
}

/// Checks a store file written by [`Store::export_to`] (or left by an interrupted switch):
/// `key` opens it, `PRAGMA quick_check` passes, it is a DisasterNet store at a known schema
/// version, and (when given) every table holds `expected` rows. Opens the file read-only, so it
/// changes nothing and creates no companion file.
pub fn verify_copy(
    path: &Path,
    key: Option<&StoreKey>,
    expected: Option<&[(String, u64)]>,
) -> Result<()> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    apply(&conn, key, path)?;
    crate::quick_check(&conn)?;
    schema::check(&conn)?;
    // A copy of a store always has the schema: an empty or unversioned file (a copy that never
    // got written) is never taken for one.
    let version = schema::user_version(&conn)?;
    if schema::application_id(&conn)? != schema::APPLICATION_ID || version < 1 {
        return Err(StoreError::Corrupt(format!(
            "{}: not a complete copy of a store (schema version {version})",
            path.display()
        )));
    }
    if let Some(expected) = expected {
        let found = table_counts(&conn, "main")?;
        if found != expected {
            return Err(StoreError::Corrupt(format!(
                "{}: the copy does not hold the same rows ({found:?} instead of {expected:?})",
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use dn_proto::Message;
    use ed25519_dalek::SigningKey;

    use super::*;

    const BODY: &str = "patient Zerbinetta Quarrington, tent 14";
    const ROOM: &str = "medical-secret-room";

    fn key(b: u8) -> StoreKey {
        StoreKey::from_bytes([b; 32])
    }

    fn fill(s: &Store, n: u64) {
        let k = SigningKey::from_bytes(&[3; 32]);
        let batch: Vec<_> = (0..n)
            .map(|i| {
                let m = Message::create(&k, ROOM, "Ana", 1_000 + i, &format!("{BODY} #{i}"));
                (m.unwrap(), 5, false)
            })
            .collect();
        s.insert_messages(&batch).unwrap();
        s.join_room(ROOM, 7).unwrap();
        s.set_setting("display_name", "Ana").unwrap();
    }

    /// Every file of the store (main, `-wal`, `-shm`) that exists, with its bytes.
    fn files(db: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|s| {
                let mut p = db.as_os_str().to_owned();
                p.push(s);
                let p = PathBuf::from(p);
                std::fs::read(&p).ok().map(|b| (p, b))
            })
            .collect()
    }

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn a_keyed_store_reopens_with_its_key_and_holds_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let s = Store::open_with_key(&db, Some(&key(1))).unwrap();
        fill(&s, 50);
        // While open: the WAL holds the recent pages, encrypted too.
        let open_files = files(&db);
        assert!(open_files.iter().any(|(p, _)| p.ends_with("s.db-wal")));
        for (p, bytes) in &open_files {
            for needle in [BODY, ROOM, "display_name"] {
                assert!(!contains(bytes, needle), "{needle} in {}", p.display());
            }
        }
        drop(s);
        let s = Store::open_with_key(&db, Some(&key(1))).unwrap();
        assert_eq!(s.message_count(None).unwrap(), 50);
        assert!(s.room_joined(ROOM).unwrap());
        drop(s);
        // The same search finds the words in a plain store (the check above can fail).
        let plain = dir.path().join("p.db");
        let s = Store::open(&plain).unwrap();
        fill(&s, 50);
        drop(s);
        assert!(files(&plain).iter().any(|(_, b)| contains(b, BODY)));
    }

    #[test]
    fn stores_and_their_copies_use_the_documented_cipher_settings() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let s = Store::open_with_key(&db, Some(&key(1))).unwrap();
        fill(&s, 5);
        let copy = dir.path().join("copy.db");
        s.export_to(&copy, Some(&key(2))).unwrap();
        drop(s);
        let literal = |k: &StoreKey| k.literal().as_str().to_string();
        for (path, k) in [(&db, key(1)), (&copy, key(2))] {
            let count = |settings: &str| {
                let c = Connection::open(path).unwrap();
                c.execute_batch(&format!("PRAGMA key = {}; {settings}", literal(&k)))
                    .unwrap();
                c.query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))
            };
            assert_eq!(count(CIPHER_SETTINGS).unwrap(), 5);
            // SQLCipher's defaults (HMAC-SHA512) do not open it: the settings are in force.
            assert!(
                count("").is_err(),
                "{} opened with the defaults",
                path.display()
            );
        }
    }

    #[test]
    fn a_wrong_or_missing_key_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let s = Store::open_with_key(&db, Some(&key(1))).unwrap();
        fill(&s, 20);
        drop(s);
        let before = files(&db);
        let wrong = Some(key(2));
        let e = Store::open_with_key(&db, wrong.as_ref()).unwrap_err();
        assert!(matches!(e, StoreError::WrongKey(_)), "{e}");
        let e = Store::open_reader_with_key(&db, wrong.as_ref()).unwrap_err();
        assert!(matches!(e, StoreError::WrongKey(_)), "{e}");
        let out = dir.path().join("salvaged.db");
        let e = crate::salvage_into_with_key(&db, &out, wrong.as_ref(), 1).unwrap_err();
        assert!(matches!(e, StoreError::WrongKey(_)), "{e}");
        assert!(!out.exists());
        // Without a key an encrypted store is "not a SQLite database", as for plain SQLite.
        let e = Store::open(&db).unwrap_err();
        assert!(e.to_string().contains("not a SQLite database"), "{e}");
        assert_eq!(files(&db), before, "a refused open changed the files");
        // A key given for a plain store is refused too, and the plain store is untouched.
        let plain = dir.path().join("p.db");
        fill(&Store::open(&plain).unwrap(), 5);
        let before = files(&plain);
        let e = Store::open_with_key(&plain, Some(&key(1))).unwrap_err();
        assert!(matches!(e, StoreError::WrongKey(_)), "{e}");
        assert_eq!(files(&plain), before);
        assert_eq!(Store::open(&plain).unwrap().message_count(None).unwrap(), 5);
    }

    #[test]
    fn exporting_on_and_off_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.db");
        let s = Store::open(&plain).unwrap();
        fill(&s, 300);
        s.set_room_muted(ROOM, true).unwrap();
        let counts = s.table_counts().unwrap();
        assert!(counts.iter().any(|(t, n)| t == "messages" && *n == 300));
        let ids: Vec<_> = s.messages(ROOM, 1000, None).unwrap();

        let locked = dir.path().join("locked.db");
        s.export_to(&locked, Some(&key(9))).unwrap();
        // Not a plain SQLite file any more, and no body in clear.
        let bytes = std::fs::read(&locked).unwrap();
        assert!(!bytes.starts_with(b"SQLite format 3\0"));
        assert!(!contains(&bytes, BODY));
        verify_copy(&locked, Some(&key(9)), Some(&counts)).unwrap();
        assert!(verify_copy(&locked, Some(&key(8)), None).is_err());

        let l = Store::open_with_key(&locked, Some(&key(9))).unwrap();
        assert_eq!(l.table_counts().unwrap(), counts);
        let bytes = std::fs::read(&locked).unwrap();
        assert_eq!(l.messages(ROOM, 1000, None).unwrap(), ids);
        assert_eq!(
            schema::user_version(&l.conn).unwrap(),
            crate::SCHEMA_VERSION
        );
        assert!(l.rooms().unwrap().iter().any(|r| r.name == ROOM && r.muted));

        // And back to plain.
        let back = dir.path().join("back.db");
        l.export_to(&back, None).unwrap();
        let b = Store::open(&back).unwrap();
        assert_eq!(b.table_counts().unwrap(), counts);
        assert_eq!(b.messages(ROOM, 1000, None).unwrap(), ids);
        // An existing destination is refused, not overwritten.
        let e = b.export_to(&locked, Some(&key(9))).unwrap_err();
        drop(l);
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&locked).unwrap(), bytes);
    }

    #[test]
    fn a_keyed_store_salvages_into_a_keyed_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        fill(&Store::open_with_key(&db, Some(&key(4))).unwrap(), 40);
        let out = crate::salvage_store_with_key(&db, Some(&key(4)), 77).unwrap();
        assert_eq!(out.report.recovered, 40);
        let s = Store::open_with_key(&db, Some(&key(4))).unwrap();
        assert_eq!(s.message_count(None).unwrap(), 40);
        assert!(Store::open(&db).is_err());
    }
}
