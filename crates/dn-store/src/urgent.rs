//! Urgent messages and their local acknowledgement (table `urgent`, schema version 9).
//!
//! Whether a message is urgent is derived from its signed body
//! ([`dn_proto::message::is_urgent`]); triggers on `messages` keep the table in step with the
//! log. Only "acknowledged" is local state: set by the user here, never sent anywhere.

use dn_proto::{MessageId, NodeId};
use rusqlite::{params, OptionalExtension};

use crate::messages::{read_row, COLS};
use crate::{Result, Store, StoredMessage};

impl Store {
    /// Whether urgent message `id` was acknowledged here: `None` when `id` is not a stored
    /// urgent message.
    pub fn urgent_acknowledged(&self, id: &MessageId) -> Result<Option<bool>> {
        Ok(self
            .conn
            .prepare_cached("SELECT acknowledged FROM urgent WHERE id = ?1")?
            .query_row([&id.0[..]], |r| r.get(0))
            .optional()?)
    }

    /// Acknowledges urgent messages of `room`: only `id` when given, else all of them.
    /// Returns how many were newly acknowledged (0 when `id` is not an unacknowledged urgent
    /// message of `room`).
    pub fn ack_urgent(&self, room: &str, id: Option<&MessageId>) -> Result<u64> {
        let n = match id {
            Some(id) => self
                .conn
                .prepare_cached(
                    "UPDATE urgent SET acknowledged = 1
                     WHERE room = ?1 AND id = ?2 AND acknowledged = 0",
                )?
                .execute(params![room, &id.0[..]])?,
            None => self
                .conn
                .prepare_cached(
                    "UPDATE urgent SET acknowledged = 1 WHERE room = ?1 AND acknowledged = 0",
                )?
                .execute([room])?,
        };
        Ok(n as u64)
    }

    /// The newest `limit` urgent messages stored, any room, acknowledged or not, newest first:
    /// (id, author). The protocol is handed them at start so they lead catch-ups after a
    /// restart too (`Protocol::note_stored_urgent`).
    pub fn urgent_newest(&self, limit: u32) -> Result<Vec<(MessageId, NodeId)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT u.id, m.author FROM urgent u JOIN messages m ON m.id = u.id
             ORDER BY u.timestamp DESC, u.id DESC LIMIT ?1",
        )?;
        let rows = st.query_map([limit], |r| {
            let id: Vec<u8> = r.get(0)?;
            let author: Vec<u8> = r.get(1)?;
            Ok((id, author))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, author) = row?;
            // Rows the store wrote itself; one that does not fit is skipped, not fatal.
            if let (Ok(id), Ok(author)) = (<[u8; 32]>::try_from(id), <[u8; 32]>::try_from(author)) {
                out.push((MessageId(id), NodeId(author)));
            }
        }
        Ok(out)
    }

    /// Unacknowledged urgent messages of one room, authors blocked here not counted, counted up
    /// to `cap` (peers can write many; a view needs "at least this many", and the count stays
    /// cheap: it walks the partial index of that room only).
    pub fn urgent_unacked_in(&self, room: &str, cap: u32) -> Result<u32> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM (
                   SELECT 1 FROM urgent u INDEXED BY urgent_unacked JOIN messages m ON m.id = u.id
                   WHERE u.room = ?1 AND u.acknowledged = 0
                     AND m.author NOT IN (SELECT author FROM blocked)
                   LIMIT ?2)",
            )?
            .query_row(params![room, cap], |r| r.get(0))?)
    }

    /// The newest `limit` unacknowledged urgent messages of `room` (or of every joined room),
    /// newest first, authors blocked here left out.
    pub fn urgent_unacked(&self, room: Option<&str>, limit: u32) -> Result<Vec<StoredMessage>> {
        let cols = COLS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        // One statement per case (no `?1 IS NULL OR …`: a cached plan must not depend on it).
        let which = match room {
            Some(_) => "u.room = ?1",
            None => "u.room IN (SELECT name FROM rooms WHERE joined = 1) AND ?1 IS NULL",
        };
        let sql = format!(
            "SELECT {cols} FROM urgent u INDEXED BY urgent_unacked JOIN messages m ON m.id = u.id
             WHERE u.acknowledged = 0 AND {which}
               AND m.author NOT IN (SELECT author FROM blocked)
             ORDER BY u.timestamp DESC, u.id DESC LIMIT ?2"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query(params![room, limit])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(read_row(row)?);
        }
        Ok(out)
    }
}
