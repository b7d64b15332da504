//! # dn-store — DisasterNet's local database
//!
//! One SQLite file per node holds everything that must survive a restart: the append-only
//! message log, the rooms the user joined, settings such as the display name, the peers seen
//! and when each room was last synced with each peer. The node's secret key is *not* here; it
//! lives in its own file.
//!
//! - [`Store::open`] opens (or creates) the file, sets the connection pragmas (WAL,
//!   `foreign_keys`, a 5 s `busy_timeout`, `synchronous=FULL` so a message reported as sent is
//!   on disk) and migrates the schema (see `schema.rs`; versions in `PRAGMA user_version`).
//! - Encryption at rest (`key.rs`): with a [`StoreKey`], [`Store::open_with_key`] opens a
//!   SQLCipher-encrypted file (every page of the file and its `-wal`); without one the file is
//!   plain SQLite, as before. [`Store::export_to`] copies a store into a new file with another
//!   key (or none) and [`verify_copy`] checks such a copy: the node turns its passphrase on and
//!   off with them.
//! - Messages are stored as their signed bytes plus signature, the form their id is computed
//!   from, and parsed back with [`Message::from_signed_bytes`]. Reading does not re-verify
//!   signatures; a row that does not parse back is reported as [`StoreError::Corrupt`].
//! - "Room order" is `(timestamp, author, id)`: the same on every node for the same set of
//!   messages. [`Store::messages`] pages backwards through it with a keyset cursor.
//! - [`Store`] implements [`dn_proto::Storage`], so the protocol state machine uses it directly.
//!
//! ## Threads and writers
//!
//! Every method takes `&self`. A `Store` is [`Send`] but not [`Sync`]: one thread owns it at a
//! time, and in the node that thread is the single writer. Another process (the CLI when no node
//! runs) may open the same file; SQLite's locking and the busy timeout serialise the two.
//! [`Store::open_reader`] gives a read-only second connection for long reads (exports) that
//! must not hold up the writer.

mod error;
mod key;
mod messages;
mod meta;
mod private;
mod salvage;
mod schema;
mod urgent;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dn_proto::{Message, MessageId, NodeId, StorageError};
use rusqlite::{Connection, ErrorCode};

pub use error::StoreError;
pub use key::{partial_path, remove_with_companions, verify_copy, StoreKey, STORE_KEY_LEN};
pub use messages::StoredMessage;
pub use meta::{PeerRow, RoomRow, MAX_PEERS, MAX_QUEUED_IDS};
pub use private::PrivateRoomRow;
pub use salvage::{
    salvage_into_with_key, salvage_store, salvage_store_with_key, SalvageOutcome, SalvageReport,
};

/// Result with [`StoreError`] as the default error.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a statement waits for another connection's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// The newest schema version this code knows (the `user_version` it writes).
pub const SCHEMA_VERSION: i64 = schema::CURRENT;

/// Most problems `PRAGMA quick_check` lists when a store is damaged (the first few say enough
/// and the error message stays readable).
pub const QUICK_CHECK_MAX_ERRORS: u32 = 5;

/// Mode of the database directory when the store creates it: owner only (the messages are
/// private to this user).
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
/// Mode of the database file and its `-wal` / `-shm` companions (SQLite creates those with the
/// main file's mode): owner read/write only.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// A clock returning milliseconds since the Unix epoch.
pub type Clock = Box<dyn Fn() -> u64 + Send>;

/// An open DisasterNet database. See the [crate docs](crate) for the threading rules.
pub struct Store {
    conn: Connection,
    /// Used where the caller gives no time: [`dn_proto::Storage::insert`]'s `received_at` and
    /// a new peer's `first_seen`.
    clock: Clock,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.conn.path())
            .finish_non_exhaustive()
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn system_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Store {
    /// Opens or creates the database at `path`, creating its directory if missing, and
    /// migrates it to [`SCHEMA_VERSION`].
    ///
    /// The directory is created 0700 and the file 0600 from the start (SQLite gives its `-wal`
    /// and `-shm` files the main file's mode); existing files open to other users are
    /// tightened to 0600, with a warning in the log.
    ///
    /// Before anything is written, `PRAGMA quick_check` looks over the whole file (about
    /// linear in its size: see the `quick_check_cost_on_100k_messages` test output), so a
    /// damaged store is refused at open with a message saying to run `disasternet salvage`
    /// rather than failing halfway through an export.
    ///
    /// Fails with [`StoreError::Corrupt`] if the file is not a DisasterNet database or is
    /// damaged and with [`StoreError::TooNew`] if a newer program wrote it; none of these
    /// cases modifies the file.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_with_key(path, None)
    }

    /// [`Store::open`] for a store encrypted at rest with `key` (SQLCipher; `None`: a plain
    /// store). The key is the connection's first statement; a key that does not open the file
    /// (or a missing key for an encrypted file) is [`StoreError::WrongKey`], before any
    /// integrity check, and changes nothing. A new file given a key is created encrypted.
    pub fn open_with_key(path: &Path, key: Option<&StoreKey>) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, DIR_MODE);
            b.create(dir).map_err(|error| StoreError::Io {
                path: dir.to_path_buf(),
                error,
            })?;
        }
        private_files(path)?;
        let with_path = |e: StoreError| match e {
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{}: {m}", path.display())),
            e => e,
        };
        let conn = Connection::open(path).map_err(|e| with_path(e.into()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        key::apply(&conn, key, path)?;
        quick_check(&conn).map_err(with_path)?;
        Self::init(conn).map_err(with_path)
    }

    /// A read-only connection to an existing database at the current schema, for long reads
    /// (exports) on another thread while the owner keeps writing: in WAL mode each statement
    /// reads one consistent snapshot and never blocks the writer. Never creates, migrates or
    /// writes; fails with [`StoreError::Corrupt`] / [`StoreError::TooNew`] like [`Store::open`],
    /// and with [`StoreError::Corrupt`] if the file is older than this code (open it with
    /// [`Store::open`] first, which migrates it).
    pub fn open_reader(path: &Path) -> Result<Store> {
        Self::open_reader_with_key(path, None)
    }

    /// [`Store::open_reader`] for a store encrypted with `key` (see [`Store::open_with_key`]).
    pub fn open_reader_with_key(path: &Path, key: Option<&StoreKey>) -> Result<Store> {
        use rusqlite::OpenFlags;
        let with_path = |e: StoreError| match e {
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{}: {m}", path.display())),
            e => e,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| with_path(e.into()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        key::apply(&conn, key, path)?;
        let version = schema::check(&conn).map_err(with_path)?;
        if version != SCHEMA_VERSION {
            return Err(with_path(StoreError::Corrupt(format!(
                "schema version {version}, expected {SCHEMA_VERSION} (not migrated yet)"
            ))));
        }
        Ok(Store {
            conn,
            clock: Box::new(system_clock_ms),
        })
    }

    /// A fresh database in memory, for tests.
    pub fn open_in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        schema::check(&conn)?;
        // Pragmas are per connection (WAL is persistent) and stay outside migrations.
        let mode = enable_wal(&conn)?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            tracing::warn!(%mode, "SQLite refused WAL journal mode");
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn,
            clock: Box::new(system_clock_ms),
        })
    }

    /// Replaces the clock used where callers pass no time (see [`Clock`]); for tests and
    /// simulations. The default is [`system_clock_ms`].
    pub fn set_clock(&mut self, clock: impl Fn() -> u64 + Send + 'static) {
        self.clock = Box::new(clock);
    }

    fn now_ms(&self) -> u64 {
        (self.clock)()
    }
}

impl dn_proto::Storage for Store {
    /// Stored or evicted.
    fn has(&self, id: &MessageId) -> Result<bool, StorageError> {
        Ok(self.has_or_evicted(id)?)
    }

    /// Stores a message from the network: `received_at` from the store's clock, `local` false.
    /// An evicted id is not stored again.
    fn insert(&mut self, msg: &Message) -> Result<bool, StorageError> {
        if self.is_evicted(&msg.id())? {
            return Ok(false);
        }
        let now = self.now_ms();
        Ok(self.insert_message(msg, now, false)?)
    }

    /// Stored and evicted messages of the room.
    fn room_set(&self, room: &str) -> Result<Vec<(u64, MessageId)>, StorageError> {
        let mut set = Store::room_entries(self, room)?;
        set.extend(self.evicted_entries(room)?);
        Ok(set)
    }

    fn get(&self, id: &MessageId) -> Result<Option<Message>, StorageError> {
        Ok(self.get_message(id)?.map(|s| s.message))
    }

    fn author_usage(&self, room: &str, author: &NodeId) -> Result<(u64, u64), StorageError> {
        Ok(Store::author_usage(self, room, author)?)
    }

    fn author_count_between(
        &self,
        room: &str,
        author: &NodeId,
        from: u64,
        to: u64,
    ) -> Result<u64, StorageError> {
        Ok(Store::author_count_between(self, room, author, from, to)?)
    }

    fn usage(&self) -> Result<Vec<dn_proto::RoomUsage>, StorageError> {
        Ok(self.room_usage()?)
    }

    fn oldest(
        &self,
        room: &str,
        after: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<Message>, StorageError> {
        Ok(self.oldest_messages(room, after, limit)?)
    }

    fn evict(&mut self, ids: &[MessageId]) -> Result<(), StorageError> {
        self.evict_messages(ids)?;
        Ok(())
    }

    fn forget_evicted(&mut self, room: &str) -> Result<(), StorageError> {
        Store::forget_evicted(self, room)?;
        Ok(())
    }
}

/// Creates the database file owner-only before SQLite does (SQLite would use the umask, and
/// gives `-wal`/`-shm` the main file's mode), and tightens an existing file or companion that
/// other users can read.
fn private_files(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |p: &Path, error| StoreError::Io {
            path: p.to_path_buf(),
            error,
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(path, e)),
        }
        let mut names = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            names.push(p.into());
        }
        for p in names {
            let meta = match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() => m,
                _ => continue,
            };
            let old = meta.permissions().mode() & 0o777;
            if old & !FILE_MODE != 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(old & FILE_MODE))
                    .map_err(|e| io(&p, e))?;
                tracing::warn!(
                    path = %p.display(),
                    old = format!("{old:o}"),
                    "store file was readable by other users; tightened to owner-only"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Runs `PRAGMA quick_check` and turns any problem into [`StoreError::Corrupt`] saying the
/// store is damaged and how to recover it.
fn quick_check(conn: &Connection) -> Result<()> {
    let damaged = |what: String| {
        StoreError::Corrupt(format!(
            "the store is damaged: {what}; run `disasternet salvage` to recover the readable \
             messages into a new store (the damaged file is kept)"
        ))
    };
    let rows = conn
        .prepare(&format!("PRAGMA quick_check({QUICK_CHECK_MAX_ERRORS})"))
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        })
        .map_err(|e| match StoreError::from(e) {
            // Not SQLite at all: that message is clearer than "damaged".
            StoreError::Corrupt(m) if m.starts_with("not a SQLite") => StoreError::Corrupt(m),
            StoreError::Corrupt(m) => damaged(m),
            e => damaged(e.to_string()),
        })?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    Err(damaged(rows.join("; ")))
}

/// Switches the file to WAL (persistent, so usually a no-op) and returns the journal mode.
///
/// Changing the journal mode needs an exclusive lock and SQLite reports `SQLITE_BUSY` at once
/// instead of calling the busy handler, so two processes opening a fresh file together would
/// fail; retry for up to [`BUSY_TIMEOUT`] instead.
fn enable_wal(conn: &Connection) -> Result<String> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return Ok(r?),
        }
    }
}

/// Milliseconds as an SQLite integer, saturating at `i64::MAX`.
fn ms_to_sql(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// An SQLite integer back to milliseconds; negative means the row is corrupt.
fn ms_from_sql(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what} {v}")))
}

/// A 32-byte blob column (ids, node ids).
fn blob32(row: &rusqlite::Row<'_>, idx: usize, what: &str) -> Result<[u8; 32]> {
    let v = row.get_ref(idx)?;
    let b = v
        .as_blob()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a blob")))?;
    b.try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is {} bytes, not 32", b.len())))
}

#[cfg(test)]
mod tests;
