//! The message log: insert, look up, page and stream in room order.

use dn_proto::{Message, MessageId, NodeId};
use rusqlite::{params, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::{blob32, ms_from_sql, ms_to_sql, Result, Store, StoreError};

/// A message as stored, with what this node knows about its arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message, parsed from its stored signed bytes (not re-verified).
    pub message: Message,
    /// Its id (SHA-256 of the signed bytes; checked against the stored id when read).
    pub id: MessageId,
    /// When this node stored it, milliseconds since the Unix epoch.
    pub received_at: u64,
    /// True if this node's user wrote it.
    pub local: bool,
}

const INSERT: &str = "
INSERT INTO messages
    (id, room, author, timestamp, author_name, body, signed, signature, received_at, local)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (id) DO NOTHING";

/// Columns read by [`read_row`], in order.
pub(crate) const COLS: &str = "id, room, signed, signature, received_at, local";

pub(crate) fn read_row(row: &Row<'_>) -> Result<StoredMessage> {
    let id = MessageId(blob32(row, 0, "message id")?);
    let corrupt = |what: &str| StoreError::Corrupt(format!("message {id}: {what}"));
    let room: String = row.get(1)?;
    let signed = row
        .get_ref(2)?
        .as_blob()
        .map_err(|_| corrupt("signed bytes not a blob"))?;
    let signature: [u8; 64] = row
        .get_ref(3)?
        .as_blob()
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("signature is not 64 bytes"))?;
    let received_at = ms_from_sql(row.get(4)?, "received_at")?;
    let local: bool = row.get(5)?;
    let message =
        Message::from_signed_bytes(signed, signature).map_err(|e| corrupt(&e.to_string()))?;
    if message.id() != id {
        return Err(corrupt("id does not match the signed bytes"));
    }
    if message.room != room {
        return Err(corrupt("room column does not match the signed bytes"));
    }
    Ok(StoredMessage {
        message,
        id,
        received_at,
        local,
    })
}

impl Store {
    /// Stores `msg` (not verified here: the caller does that) with the time it arrived and
    /// whether the local user wrote it. Returns `false` if a message with its id is already
    /// stored; the stored row is then left unchanged. Durable on return (`synchronous=FULL`).
    pub fn insert_message(&self, msg: &Message, received_at_ms: u64, local: bool) -> Result<bool> {
        insert_on(&self.conn, msg, received_at_ms, local)
    }

    /// Opens a write transaction that groups the following single inserts (messages arriving
    /// from the network in a burst) into one commit. Not for local sends: those must be durable
    /// before they are reported, so commit with [`Store::commit_batch`] before handling them.
    /// Does nothing if a batch is already open.
    pub fn begin_batch(&self) -> Result<()> {
        if self.conn.is_autocommit() {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(())
    }

    /// Commits the transaction opened by [`Store::begin_batch`] (no-op if none is open).
    pub fn commit_batch(&self) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// Rolls back the transaction opened by [`Store::begin_batch`] (after a failed commit; no-op
    /// if none is open).
    pub fn rollback_batch(&self) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK")?;
        }
        Ok(())
    }

    /// Stores a batch of `(message, received_at_ms, local)` in one transaction: all or none.
    /// Returns, per entry, whether it was new (a repeat inside the batch is not new).
    pub fn insert_messages(&self, batch: &[(Message, u64, bool)]) -> Result<Vec<bool>> {
        if !self.conn.is_autocommit() {
            // Inside a burst batch: nest with a savepoint.
            return self.atomically("insert_messages", || {
                batch
                    .iter()
                    .map(|(m, at, local)| insert_on(&self.conn, m, *at, *local))
                    .collect()
            });
        }
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(batch.len());
        for (msg, received_at, local) in batch {
            out.push(insert_on(&tx, msg, *received_at, *local)?);
        }
        tx.commit()?;
        Ok(out)
    }

    /// Whether a message with this id is stored.
    pub fn has_message(&self, id: &MessageId) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM messages WHERE id = ?1")?;
        Ok(st.exists([&id.0[..]])?)
    }

    /// A stored message by id.
    pub fn get_message(&self, id: &MessageId) -> Result<Option<StoredMessage>> {
        let sql = format!("SELECT {COLS} FROM messages WHERE id = ?1");
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query([&id.0[..]])?;
        rows.next()?.map(read_row).transpose()
    }

    /// `(timestamp, id)` of every message of `room`, in room order (for set reconciliation).
    /// Number of messages of `author` in `room` and the total size of their signed bytes.
    pub fn author_usage(&self, room: &str, author: &NodeId) -> Result<(u64, u64)> {
        let mut st = self.conn.prepare_cached(
            "SELECT count(*), coalesce(sum(length(signed)), 0) FROM messages
             WHERE room = ?1 AND author = ?2",
        )?;
        let (n, bytes): (i64, i64) =
            st.query_row(params![room, &author.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((
            ms_from_sql(n, "message count")?,
            ms_from_sql(bytes, "byte count")?,
        ))
    }

    /// Number of messages of `author` in `room` with a timestamp in `from..=to` (an index range
    /// count on `messages_author`).
    pub fn author_count_between(
        &self,
        room: &str,
        author: &NodeId,
        from: u64,
        to: u64,
    ) -> Result<u64> {
        let mut st = self.conn.prepare_cached(
            "SELECT count(*) FROM messages
             WHERE room = ?1 AND author = ?2 AND timestamp BETWEEN ?3 AND ?4",
        )?;
        let n: i64 = st.query_row(
            params![room, &author.0[..], ms_to_sql(from), ms_to_sql(to)],
            |r| r.get(0),
        )?;
        ms_from_sql(n, "message count")
    }

    /// `(timestamp, id)` of every message of a room.
    pub fn room_entries(&self, room: &str) -> Result<Vec<(u64, MessageId)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT timestamp, id FROM messages WHERE room = ?1 ORDER BY timestamp, author, id",
        )?;
        let mut rows = st.query([room])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let ts: i64 = row.get(0)?;
            out.push((
                u64::try_from(ts).unwrap_or(0),
                MessageId(blob32(row, 1, "message id")?),
            ));
        }
        Ok(out)
    }

    /// The newest `limit` messages of `room` that come strictly before `before` in room order
    /// (or the newest overall if `before` is `None`), returned oldest first.
    ///
    /// To page back, pass the first (oldest) id of the previous page as `before`. Fails with
    /// [`StoreError::NotFound`] if `before` is not a stored message of `room`.
    pub fn messages(
        &self,
        room: &str,
        limit: u32,
        before: Option<&MessageId>,
    ) -> Result<Vec<StoredMessage>> {
        let mut out = Vec::new();
        if let Some(before) = before {
            let mut st = self.conn.prepare_cached(
                "SELECT timestamp, author FROM messages WHERE id = ?1 AND room = ?2",
            )?;
            let (ts, author): (i64, Vec<u8>) = st
                .query_row(params![&before.0[..], room], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .ok_or(StoreError::NotFound(*before))?;
            let sql = format!(
                "SELECT {COLS} FROM messages
                 WHERE room = ?1 AND (timestamp, author, id) < (?2, ?3, ?4)
                   AND author NOT IN (SELECT author FROM blocked)
                 ORDER BY timestamp DESC, author DESC, id DESC LIMIT ?5"
            );
            let mut st = self.conn.prepare_cached(&sql)?;
            let mut rows = st.query(params![room, ts, author, &before.0[..], limit])?;
            while let Some(row) = rows.next()? {
                out.push(read_row(row)?);
            }
        } else {
            let sql = format!(
                "SELECT {COLS} FROM messages
                 WHERE room = ?1 AND author NOT IN (SELECT author FROM blocked)
                 ORDER BY timestamp DESC, author DESC, id DESC LIMIT ?2"
            );
            let mut st = self.conn.prepare_cached(&sql)?;
            let mut rows = st.query(params![room, limit])?;
            while let Some(row) = rows.next()? {
                out.push(read_row(row)?);
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Calls `f` on every message of `room` (or of all rooms, by room name first) in room
    /// order, one row at a time, without loading them all. Stops at the first error, from
    /// the store or from `f`. Do not start a transaction (batch insert) from inside `f`.
    pub fn for_each_message<E, F>(&self, room: Option<&str>, mut f: F) -> Result<(), E>
    where
        E: From<StoreError>,
        F: FnMut(StoredMessage) -> Result<(), E>,
    {
        let sql = match room {
            Some(_) => format!(
                "SELECT {COLS} FROM messages WHERE room = ?1 ORDER BY timestamp, author, id"
            ),
            None => format!("SELECT {COLS} FROM messages ORDER BY room, timestamp, author, id"),
        };
        let mut st = self.conn.prepare_cached(&sql).map_err(StoreError::from)?;
        let mut rows = match room {
            Some(r) => st.query([r]),
            None => st.query([]),
        }
        .map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            f(read_row(row)?)?;
        }
        Ok(())
    }

    /// Number of stored messages in `room`, or in all rooms.
    ///
    /// Read from `room_usage`, which triggers keep exact on every insert and delete: O(rooms),
    /// not a scan of the messages (`status` asks often, and on an encrypted store every page
    /// scanned is decrypted).
    pub fn message_count(&self, room: Option<&str>) -> Result<u64> {
        let n: i64 = match room {
            Some(r) => self
                .conn
                .prepare_cached(
                    "SELECT coalesce(sum(messages), 0) FROM room_usage WHERE room = ?1",
                )?
                .query_row([r], |r| r.get(0))?,
            None => self
                .conn
                .prepare_cached("SELECT coalesce(sum(messages), 0) FROM room_usage")?
                .query_row([], |r| r.get(0))?,
        };
        ms_from_sql(n, "count")
    }

    /// The largest author timestamp in `room` (saturated at `i64::MAX`), if it has messages.
    pub fn last_timestamp(&self, room: &str) -> Result<Option<u64>> {
        let mut st = self.conn.prepare_cached(
            "SELECT timestamp FROM messages WHERE room = ?1 ORDER BY timestamp DESC LIMIT 1",
        )?;
        let ts: Option<i64> = st.query_row([room], |r| r.get(0)).optional()?;
        ts.map(|t| ms_from_sql(t, "timestamp")).transpose()
    }
}

fn insert_on(
    conn: &rusqlite::Connection,
    msg: &Message,
    received_at_ms: u64,
    local: bool,
) -> Result<bool> {
    let signed = msg.signed_bytes();
    let id = msg.id();
    let mut st = conn.prepare_cached(INSERT)?;
    let n = st.execute(params![
        &id.0[..],
        msg.room,
        &msg.author.0[..],
        ms_to_sql(msg.timestamp),
        msg.author_name,
        msg.body,
        signed,
        &msg.signature[..],
        ms_to_sql(received_at_ms),
        local,
    ])?;
    Ok(n == 1)
}

/// The carry quota's view of the log (see `dn_proto::protocol::evict`): per-room usage kept
/// by triggers, oldest-first reads, and eviction that keeps each evicted `(timestamp, id)`.
impl Store {
    /// Messages, signed bytes and evicted ids of every room that has any.
    pub fn room_usage(&self) -> Result<Vec<dn_proto::RoomUsage>> {
        // Kept by triggers (schema v6, v7): one row per room, never a count of the log.
        let mut st = self.conn.prepare_cached(
            "SELECT room, messages, bytes, evicted FROM room_usage
             WHERE messages + evicted > 0 ORDER BY room",
        )?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(dn_proto::RoomUsage {
                room: row.get(0)?,
                messages: ms_from_sql(row.get(1)?, "room message count")?,
                bytes: ms_from_sql(row.get(2)?, "room bytes")?,
                evicted: ms_from_sql(row.get(3)?, "evicted count")?,
            });
        }
        Ok(out)
    }

    /// Up to `limit` messages of `room` in `(timestamp, id)` order, strictly after `after`.
    pub fn oldest_messages(
        &self,
        room: &str,
        after: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let (ts, id) = after.map_or((-1, Vec::new()), |(t, i)| (ms_to_sql(t), i.0.to_vec()));
        let sql = format!(
            "SELECT {COLS} FROM messages WHERE room = ?1 AND (timestamp, id) > (?2, ?3)
             ORDER BY timestamp, id LIMIT ?4"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = st.query(params![room, ts, id, limit])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(read_row(row)?.message);
        }
        Ok(out)
    }

    /// Deletes these messages, keeping each one's `(room, timestamp, id)` in `evicted`. All or
    /// none; unknown ids are skipped. (The carry quota never evicts messages written here, the
    /// only ones with delivery rows.)
    pub fn evict_messages(&self, ids: &[MessageId]) -> Result<u64> {
        self.atomically("evict_messages", || {
            let mut keep = self.conn.prepare_cached(
                "INSERT OR IGNORE INTO evicted (id, room, timestamp)
                 SELECT id, room, timestamp FROM messages WHERE id = ?1",
            )?;
            let mut del = self
                .conn
                .prepare_cached("DELETE FROM messages WHERE id = ?1")?;
            let mut n = 0;
            for id in ids {
                keep.execute([&id.0[..]])?;
                n += del.execute([&id.0[..]])? as u64;
            }
            Ok(n)
        })
    }

    /// Whether `id` is stored or was evicted under the carry quota (one lookup; the protocol's
    /// duplicate check for every message that arrives).
    pub fn has_or_evicted(&self, id: &MessageId) -> Result<bool> {
        let mut st = self.conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?1)
                 OR EXISTS (SELECT 1 FROM evicted WHERE id = ?1)",
        )?;
        Ok(st.query_row([&id.0[..]], |r| r.get(0))?)
    }

    /// Whether `id` was evicted under the carry quota.
    pub fn is_evicted(&self, id: &MessageId) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM evicted WHERE id = ?1")?;
        Ok(st.exists([&id.0[..]])?)
    }

    /// Forgets the evicted ids of `room` (a catch-up then fetches them again).
    pub fn forget_evicted(&self, room: &str) -> Result<u64> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM evicted WHERE room = ?1")?
            .execute([room])?;
        Ok(n as u64)
    }

    /// `(timestamp, id)` of the evicted messages of `room`.
    pub fn evicted_entries(&self, room: &str) -> Result<Vec<(u64, MessageId)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT timestamp, id FROM evicted WHERE room = ?1")?;
        let mut rows = st.query([room])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((
                ms_from_sql(row.get(0)?, "evicted timestamp")?,
                MessageId(blob32(row, 1, "evicted id")?),
            ));
        }
        Ok(out)
    }
}
