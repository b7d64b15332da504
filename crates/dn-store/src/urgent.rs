//! Urgent messages and their local acknowledgement (table `urgent`, schema version 9).
//!
//! Whether a message is urgent is derived from its signed body
//! ([`dn_proto::message::is_urgent`]); triggers on `messages` keep the table in step with the
//! log. Only "acknowledged" is local state: set by the user here, never sent anywhere.

use dn_proto::MessageId;
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

    /// Unacknowledged urgent messages per room (rooms with none left out), authors blocked
    /// here not counted.
    pub fn urgent_unacked_counts(&self) -> Result<Vec<(String, u32)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT u.room, count(*) FROM urgent u INDEXED BY urgent_unacked
             JOIN messages m ON m.id = u.id
             WHERE u.acknowledged = 0 AND m.author NOT IN (SELECT author FROM blocked)
             GROUP BY u.room ORDER BY u.room",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
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
