//! Private rooms this node is a member of, and their keys (schema v8). Carriers of a private
//! room have no rows here: they store its messages like any other room's.

use dn_proto::NodeId;
use rusqlite::{params, OptionalExtension};

use crate::{blob32, ms_from_sql, ms_to_sql, Result, Store, StoreError};

/// A private room as stored by [`Store::add_private_room`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateRoomRow {
    /// Its id on the wire (`p.` + 32 hex).
    pub room: String,
    /// Its name (shown to members only).
    pub title: String,
    /// Its creator (first admin).
    pub creator: NodeId,
    /// When this node learnt of it, milliseconds.
    pub added_at: u64,
}

impl Store {
    /// Records a private room; an existing row is kept as it is. Returns whether it was new.
    pub fn add_private_room(
        &self,
        room: &str,
        title: &str,
        creator: &NodeId,
        now_ms: u64,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "INSERT INTO private_rooms (room, title, creator, added_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (room) DO NOTHING",
            params![room, title, &creator.0[..], ms_to_sql(now_ms)],
        )?;
        Ok(n == 1)
    }

    /// Every private room this node knows, by id.
    pub fn private_rooms(&self) -> Result<Vec<PrivateRoomRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT room, title, creator, added_at FROM private_rooms ORDER BY room",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut v = Vec::new();
        for row in rows {
            let (room, title, creator, added_at) = row?;
            let creator: [u8; 32] = creator
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("private room {room}: creator")))?;
            v.push(PrivateRoomRow {
                room,
                title,
                creator: NodeId(creator),
                added_at: ms_from_sql(added_at, "added_at")?,
            });
        }
        Ok(v)
    }

    /// Stores the key of one epoch of a private room (which must be recorded). A key already
    /// stored for that epoch is kept (the first one wins). Returns whether it was new.
    pub fn add_room_key(
        &self,
        room: &str,
        epoch: u32,
        key: &[u8; 32],
        now_ms: u64,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "INSERT INTO room_keys (room, epoch, key, added_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (room, epoch) DO NOTHING",
            params![room, i64::from(epoch), &key[..], ms_to_sql(now_ms)],
        )?;
        Ok(n == 1)
    }

    /// The keys of a private room, oldest epoch first.
    pub fn room_keys(&self, room: &str) -> Result<Vec<(u32, [u8; 32])>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT epoch, key FROM room_keys WHERE room = ?1 ORDER BY epoch")?;
        let mut rows = st.query(params![room])?;
        let mut v = Vec::new();
        while let Some(r) = rows.next()? {
            let epoch: i64 = r.get(0)?;
            let epoch = u32::try_from(epoch)
                .map_err(|_| StoreError::Corrupt(format!("room {room}: key epoch {epoch}")))?;
            v.push((epoch, blob32(r, 1, "room key")?));
        }
        Ok(v)
    }

    /// The key of one epoch, if held.
    pub fn room_key(&self, room: &str, epoch: u32) -> Result<Option<[u8; 32]>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT key FROM room_keys WHERE room = ?1 AND epoch = ?2")?;
        let key: Option<Vec<u8>> = st
            .query_row(params![room, i64::from(epoch)], |r| r.get(0))
            .optional()?;
        key.map(|k| {
            k.try_into()
                .map_err(|_| StoreError::Corrupt(format!("room {room}: key length")))
        })
        .transpose()
    }
}
