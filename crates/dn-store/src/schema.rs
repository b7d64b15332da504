//! Schema versions and migrations.
//!
//! The schema version lives in `PRAGMA user_version`; [`MIGRATIONS`]`[n]` upgrades version `n`
//! to `n + 1`. Each step runs in its own `BEGIN IMMEDIATE` transaction and re-reads the version
//! inside it, so two processes opening the same fresh file cannot both migrate it. A file whose
//! version is newer than [`CURRENT`] is refused, never downgraded.
//!
//! To grow the schema, append a migration; never edit a released one.

use rusqlite::{Connection, TransactionBehavior};

use crate::{Result, StoreError};

/// `PRAGMA application_id` of a DisasterNet database: "DNET".
pub(crate) const APPLICATION_ID: i64 = 0x444E_4554;

/// Version 0 → 1: the first schema.
const V1: &str = "
PRAGMA application_id = 1145980244;

-- Small key/value settings (display_name, …).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Rooms the user joined or left. Messages of a room may exist without a row here.
CREATE TABLE rooms (
    name      TEXT PRIMARY KEY NOT NULL,
    joined    INTEGER NOT NULL CHECK (joined IN (0, 1)),
    joined_at INTEGER,
    muted     INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1))
) STRICT, WITHOUT ROWID;

-- Append-only message log, unique by id (SHA-256 of `signed`). `signed` + `signature` are
-- the source of truth; the other columns are copies for ordering and queries.
-- `timestamp` and `received_at` are milliseconds, saturated at i64::MAX.
CREATE TABLE messages (
    id          BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),
    room        TEXT NOT NULL,
    author      BLOB NOT NULL CHECK (length(author) = 32),
    timestamp   INTEGER NOT NULL,
    author_name TEXT NOT NULL,
    body        TEXT NOT NULL,
    signed      BLOB NOT NULL,
    signature   BLOB NOT NULL CHECK (length(signature) = 64),
    received_at INTEGER NOT NULL,
    local       INTEGER NOT NULL CHECK (local IN (0, 1))
) STRICT;

-- Room order: (timestamp, author, id). Serves paging, id lists, counts and export.
CREATE INDEX messages_room_order ON messages (room, timestamp, author, id);

CREATE TRIGGER messages_append_only BEFORE UPDATE ON messages
BEGIN
    SELECT RAISE(ABORT, 'messages are append-only');
END;

-- Peers ever seen. `addresses` is a JSON array of \"ip:port\" strings.
CREATE TABLE peers (
    id         BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),
    name       TEXT,
    addresses  TEXT NOT NULL DEFAULT '[]'
               CHECK (json_valid(addresses) AND json_type(addresses) = 'array'),
    last_seen  INTEGER,
    first_seen INTEGER
) STRICT;

-- When we last finished a catch-up with a peer for a room.
CREATE TABLE sync_state (
    peer         BLOB NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    room         TEXT NOT NULL,
    last_sync_at INTEGER NOT NULL,
    PRIMARY KEY (peer, room)
) STRICT, WITHOUT ROWID;
";

/// Version 2: delivery state of the messages written here. `state` 1 = pushed to that peer,
/// 2 = the peer is known to hold it (it sent or announced it back, or a reconciliation of the
/// room with it completed).
const V2: &str = "
CREATE TABLE deliveries (
    id    BLOB    NOT NULL CHECK (length(id) = 32),
    peer  BLOB    NOT NULL CHECK (length(peer) = 32),
    state INTEGER NOT NULL CHECK (state IN (1, 2)),
    at    INTEGER NOT NULL,
    PRIMARY KEY (id, peer)
) STRICT, WITHOUT ROWID;
";

/// Version 3: finds the messages written here quickly (the outgoing queue in the status).
const V3: &str = "
CREATE INDEX messages_local ON messages (id) WHERE local = 1;
";

/// Version 4: per-author usage of a room (the protocol's per-author quota asks, for every new
/// message from the network, how many messages its author has in the room around its
/// timestamp: an index range count, never a scan of the room).
const V4: &str = "
CREATE INDEX messages_author ON messages (room, author, timestamp);
";

/// Version 4 → 5: authors this user blocked (local moderation, per data directory): their
/// messages are hidden, not stored when they arrive, and not relayed or carried.
const V5: &str = "
CREATE TABLE blocked (
    author BLOB PRIMARY KEY NOT NULL CHECK (length(author) = 32),
    at     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
";

/// Version 5 → 6: the carry quota. `room_usage` keeps each room's message count and signed
/// bytes up to date by trigger, so the quota is read every few seconds without a scan of the
/// log. `evicted` keeps the `(timestamp, id)` of carried messages deleted under the quota: the
/// room's set for catch-up still lists them, so peers do not send them again.
const V6: &str = "
CREATE TABLE room_usage (
    room     TEXT PRIMARY KEY NOT NULL,
    messages INTEGER NOT NULL,
    bytes    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO room_usage (room, messages, bytes)
    SELECT room, count(*), coalesce(sum(length(signed)), 0) FROM messages GROUP BY room;

CREATE TRIGGER messages_usage_insert AFTER INSERT ON messages
BEGIN
    INSERT INTO room_usage (room, messages, bytes) VALUES (NEW.room, 1, length(NEW.signed))
    ON CONFLICT (room) DO UPDATE SET messages = messages + 1,
                                     bytes = bytes + length(NEW.signed);
END;

CREATE TRIGGER messages_usage_delete AFTER DELETE ON messages
BEGIN
    UPDATE room_usage SET messages = messages - 1, bytes = bytes - length(OLD.signed)
    WHERE room = OLD.room;
END;

CREATE TABLE evicted (
    id        BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),
    room      TEXT NOT NULL,
    timestamp INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX evicted_room ON evicted (room, timestamp);
";

/// Version 6 → 7: `room_usage` also counts each room's evicted ids, kept by triggers on
/// `evicted`, so the carry quota's reading every tick never counts the `evicted` table (it
/// holds up to millions of ids).
const V7: &str = "
ALTER TABLE room_usage ADD COLUMN evicted INTEGER NOT NULL DEFAULT 0;

INSERT INTO room_usage (room, messages, bytes, evicted)
    SELECT room, 0, 0, count(*) FROM evicted WHERE true GROUP BY room
    ON CONFLICT (room) DO UPDATE SET evicted = excluded.evicted;

CREATE TRIGGER evicted_usage_insert AFTER INSERT ON evicted
BEGIN
    INSERT INTO room_usage (room, messages, bytes, evicted) VALUES (NEW.room, 0, 0, 1)
    ON CONFLICT (room) DO UPDATE SET evicted = evicted + 1;
END;

CREATE TRIGGER evicted_usage_delete AFTER DELETE ON evicted
BEGIN
    UPDATE room_usage SET evicted = evicted - 1 WHERE room = OLD.room;
END;
";

/// Version 7 → 8: private rooms this node is a member of, and their keys. Rows here exist
/// only on members; carriers store a private room's messages like any other room's
/// (ciphertext under an opaque room id) and have none of this.
const V8: &str = "
-- A private room known from an invite (or created here). `room` is the opaque id on the wire
-- (`p.` + 32 hex), `title` its name (members only), `creator` its first admin.
CREATE TABLE private_rooms (
    room      TEXT PRIMARY KEY NOT NULL,
    title     TEXT NOT NULL,
    creator   BLOB NOT NULL CHECK (length(creator) = 32),
    added_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Every key epoch of a private room this node holds (from the invite, creation or a key grant).
CREATE TABLE room_keys (
    room      TEXT NOT NULL REFERENCES private_rooms (room),
    epoch     INTEGER NOT NULL CHECK (epoch >= 0),
    key       BLOB NOT NULL CHECK (length(key) = 32),
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (room, epoch)
) STRICT, WITHOUT ROWID;
";

/// Version 8 → 9: urgent messages (docs/protocol.md §2.5). A message is urgent when its body
/// starts with `dn_proto::message::URGENT_MARKER` (in the signed bytes, so the flag is derived,
/// never stored apart from them); this table lists them, kept by triggers on `messages`, with
/// whether the local user acknowledged each. Messages written here count as acknowledged.
/// Existing urgent-marked messages are listed, unacknowledged.
const V9: &str = "
CREATE TABLE urgent (
    id           BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),
    room         TEXT NOT NULL,
    timestamp    INTEGER NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT 0 CHECK (acknowledged IN (0, 1))
) STRICT, WITHOUT ROWID;

CREATE INDEX urgent_unacked ON urgent (room, timestamp) WHERE acknowledged = 0;
-- The newest urgent messages of any room, read at every start (Store::urgent_newest).
CREATE INDEX urgent_by_time ON urgent (timestamp);

CREATE TRIGGER messages_urgent_insert AFTER INSERT ON messages
WHEN NEW.body GLOB '\u{1F6A8} URGENT: *'
BEGIN
    INSERT OR IGNORE INTO urgent (id, room, timestamp, acknowledged)
    VALUES (NEW.id, NEW.room, NEW.timestamp, NEW.local);
END;

CREATE TRIGGER messages_urgent_delete AFTER DELETE ON messages
WHEN OLD.body GLOB '\u{1F6A8} URGENT: *'
BEGIN
    DELETE FROM urgent WHERE id = OLD.id;
END;

INSERT INTO urgent (id, room, timestamp, acknowledged)
    SELECT id, room, timestamp, local FROM messages WHERE body GLOB '\u{1F6A8} URGENT: *';
";

/// `MIGRATIONS[n]` upgrades schema version `n` to `n + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// The schema version this code writes.
pub(crate) const CURRENT: i64 = MIGRATIONS.len() as i64;

pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

pub(crate) fn application_id(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "application_id", |r| r.get(0))?)
}

/// Refuses files of other programs and of newer DisasterNet versions. Reads only.
pub(crate) fn check(conn: &Connection) -> Result<i64> {
    // The first read of the header: a file that is not SQLite fails here, before any write.
    let version = user_version(conn)?;
    let app = application_id(conn)?;
    if app != APPLICATION_ID && (app != 0 || version != 0) {
        return Err(StoreError::Corrupt(format!(
            "application_id {app:#x} / user_version {version} belong to another program"
        )));
    }
    if version > CURRENT {
        return Err(StoreError::TooNew {
            found: version,
            supported: CURRENT,
        });
    }
    if version < 0 {
        return Err(StoreError::Corrupt(format!(
            "negative schema version {version}"
        )));
    }
    Ok(version)
}

/// Brings the schema to [`CURRENT`], one immediate transaction per step.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let version = check(&tx)?;
        if version == CURRENT {
            return Ok(());
        }
        if version == 0 {
            let tables: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )?;
            if tables > 0 {
                return Err(StoreError::Corrupt(format!(
                    "unversioned database with {tables} existing tables or indexes"
                )));
            }
        }
        let step = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
            .ok_or_else(|| StoreError::Corrupt(format!("no migration from version {version}")))?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        tracing::debug!(from = version, to = version + 1, "migrated store schema");
    }
}
