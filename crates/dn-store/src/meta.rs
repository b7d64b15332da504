//! Rooms, settings, peers and sync state.

use dn_proto::{MessageId, NodeId};
use rusqlite::{params, OptionalExtension, Row};

use crate::{blob32, ms_from_sql, ms_to_sql, Result, Store, StoreError};

/// A room as listed by [`Store::rooms`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRow {
    /// Normalised room name.
    pub name: String,
    /// Whether the user is currently a member.
    pub joined: bool,
    /// Whether notifications for the room are muted.
    pub muted: bool,
    /// Number of stored messages.
    pub messages: u64,
    /// Largest author timestamp among them, milliseconds.
    pub last_timestamp: Option<u64>,
}

/// A known peer, as listed by [`Store::peers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRow {
    /// Its node id.
    pub id: NodeId,
    /// Last display name it announced; empty if it never said.
    pub name: String,
    /// Last known `"ip:port"` addresses.
    pub addresses: Vec<String>,
    /// When it was last seen, milliseconds.
    pub last_seen: Option<u64>,
    /// When it was first recorded, milliseconds.
    pub first_seen: Option<u64>,
}

fn opt_ms(v: Option<i64>, what: &str) -> Result<Option<u64>> {
    v.map(|v| ms_from_sql(v, what)).transpose()
}

fn read_peer(row: &Row<'_>) -> Result<PeerRow> {
    let id = NodeId(blob32(row, 0, "peer id")?);
    let name: Option<String> = row.get(1)?;
    let addresses: String = row.get(2)?;
    let addresses: Vec<String> = serde_json::from_str(&addresses)
        .map_err(|e| StoreError::Corrupt(format!("peer {id}: addresses: {e}")))?;
    Ok(PeerRow {
        id,
        name: name.unwrap_or_default(),
        addresses,
        last_seen: opt_ms(row.get(3)?, "last_seen")?,
        first_seen: opt_ms(row.get(4)?, "first_seen")?,
    })
}

const PEER_COLS: &str = "id, name, addresses, last_seen, first_seen";

/// Peers remembered, at most (see [`Store::cap_peers`]). A hub has a few hundred laptops; a
/// flood of made-up identities must not grow the table (and the peer list) without bound.
pub const MAX_PEERS: usize = 2048;

/// Most queued ids [`Store::queued_ids`] returns (a node restarted after weeks offline hands
/// the protocol at most this many to retry; the rest still go out by catch-up).
pub const MAX_QUEUED_IDS: usize = 100_000;

impl Store {
    // ---- rooms -------------------------------------------------------------------------

    /// Marks `name` (already normalised) as joined at `now_ms`. Returns `false` if it was
    /// already joined, in which case its original `joined_at` is kept.
    pub fn join_room(&self, name: &str, now_ms: u64) -> Result<bool> {
        let was = self.room_joined(name)?;
        let mut st = self.conn.prepare_cached(
            "INSERT INTO rooms (name, joined, joined_at) VALUES (?1, 1, ?2)
             ON CONFLICT (name) DO UPDATE SET
                 joined_at = CASE WHEN rooms.joined = 1 THEN rooms.joined_at
                                  ELSE excluded.joined_at END,
                 joined = 1",
        )?;
        st.execute(params![name, ms_to_sql(now_ms)])?;
        Ok(!was)
    }

    /// Leaves `name`: keeps its messages and settings, marks it not joined. Returns `false` if
    /// it was not joined.
    pub fn leave_room(&self, name: &str) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE rooms SET joined = 0 WHERE name = ?1 AND joined = 1")?;
        Ok(st.execute([name])? == 1)
    }

    /// Whether the user is a member of `name`.
    pub(crate) fn room_joined(&self, name: &str) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT joined FROM rooms WHERE name = ?1")?;
        Ok(st
            .query_row([name], |r| r.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false))
    }

    /// Mutes or unmutes `name` (creating a not-joined row if it has none).
    pub fn set_room_muted(&self, name: &str, muted: bool) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO rooms (name, joined, muted) VALUES (?1, 0, ?2)
             ON CONFLICT (name) DO UPDATE SET muted = excluded.muted",
        )?;
        st.execute(params![name, muted])?;
        Ok(())
    }

    /// Names of joined rooms, sorted.
    pub fn joined_rooms(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name FROM rooms WHERE joined = 1 ORDER BY name")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Joined rooms plus every room that has stored messages, sorted by name. Counts come from
    /// `room_usage` (kept exact by triggers) and the newest timestamp from one index lookup per
    /// room: O(rooms), never a scan of the messages.
    pub fn rooms(&self) -> Result<Vec<RoomRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT name, max(joined), max(muted), sum(n), max(last_ts) FROM (
                 SELECT name, joined, muted, 0 AS n, NULL AS last_ts FROM rooms
                 UNION ALL
                 SELECT room, 0, 0, messages,
                        (SELECT max(timestamp) FROM messages m WHERE m.room = u.room)
                   FROM room_usage u WHERE messages > 0
             )
             GROUP BY name
             HAVING max(joined) = 1 OR sum(n) > 0
             ORDER BY name",
        )?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(RoomRow {
                name: r.get(0)?,
                joined: r.get(1)?,
                muted: r.get(2)?,
                messages: ms_from_sql(r.get(3)?, "count")?,
                last_timestamp: opt_ms(r.get(4)?, "timestamp")?,
            });
        }
        Ok(out)
    }

    // ---- settings ----------------------------------------------------------------------

    /// A setting's value (for example `display_name`).
    pub fn get_setting(&self, key: &str) -> Result<Option<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?;
        Ok(st.query_row([key], |r| r.get(0)).optional()?)
    }

    /// Sets a setting, replacing any previous value.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?;
        st.execute([key, value])?;
        Ok(())
    }

    // ---- blocked authors (local moderation) -------------------------------------------

    /// Blocks (`true`) or unblocks an author: their messages are hidden from room pages
    /// ([`Store::messages`]) while blocked. Blocking twice keeps the first time.
    pub fn set_blocked(&self, author: &NodeId, blocked: bool, at_ms: u64) -> Result<()> {
        if blocked {
            self.conn
                .prepare_cached("INSERT OR IGNORE INTO blocked (author, at) VALUES (?1, ?2)")?
                .execute(params![&author.0[..], ms_to_sql(at_ms)])?;
        } else {
            self.conn
                .prepare_cached("DELETE FROM blocked WHERE author = ?1")?
                .execute([&author.0[..]])?;
        }
        Ok(())
    }

    /// Blocked authors with when they were blocked (ms), oldest first.
    pub fn blocked(&self) -> Result<Vec<(NodeId, u64)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT author, at FROM blocked ORDER BY at, author")?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((
                NodeId(blob32(r, 0, "blocked author")?),
                ms_from_sql(r.get(1)?, "blocked at")?,
            ));
        }
        Ok(out)
    }

    /// The display name an author last signed a stored message with, if any.
    pub fn author_name(&self, author: &NodeId) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT author_name FROM messages WHERE author = ?1
                 ORDER BY timestamp DESC LIMIT 1",
            )?
            .query_row([&author.0[..]], |r| r.get(0))
            .optional()?)
    }

    // ---- peers -------------------------------------------------------------------------

    /// Records what we learnt about a peer, merging with what is stored: `name` replaces the
    /// old one unless `None`; `addresses` (deduplicated) replace the old ones unless empty;
    /// `last_seen` only moves forward. A new peer's `first_seen` is `last_seen`, or the
    /// store's clock.
    pub fn upsert_peer(
        &self,
        id: &NodeId,
        name: Option<&str>,
        addresses: &[String],
        last_seen: Option<u64>,
    ) -> Result<()> {
        let mut unique: Vec<&String> = Vec::with_capacity(addresses.len());
        for a in addresses {
            if !unique.contains(&a) {
                unique.push(a);
            }
        }
        let json = serde_json::to_string(&unique)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode addresses: {e}")))?;
        let first_seen = last_seen.unwrap_or_else(|| self.now_ms());
        let mut st = self.conn.prepare_cached(
            "INSERT INTO peers (id, name, addresses, last_seen, first_seen)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET
                 name = coalesce(excluded.name, peers.name),
                 addresses = CASE WHEN ?6 THEN excluded.addresses ELSE peers.addresses END,
                 last_seen = CASE WHEN peers.last_seen IS NULL
                                    OR excluded.last_seen > peers.last_seen
                                  THEN excluded.last_seen ELSE peers.last_seen END,
                 first_seen = coalesce(peers.first_seen, excluded.first_seen)",
        )?;
        st.execute(params![
            &id.0[..],
            name,
            json,
            last_seen.map(ms_to_sql),
            ms_to_sql(first_seen),
            !unique.is_empty(),
        ])?;
        self.cap_peers(MAX_PEERS)
    }

    /// Keeps at most `max` peers: anyone can make keys and connect, so the table is bounded.
    /// Peers that never gave a name (never completed a hello) go first, then those seen longest
    /// ago; their sync and delivery records go with them.
    pub fn cap_peers(&self, max: usize) -> Result<()> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM peers")?
            .query_row([], |r| r.get(0))?;
        let excess = usize::try_from(n).unwrap_or(0).saturating_sub(max);
        if excess == 0 {
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "DELETE FROM peers WHERE id IN (
                     SELECT id FROM peers
                     ORDER BY name IS NOT NULL, last_seen IS NOT NULL, last_seen, id
                     LIMIT ?1)",
            )?
            .execute([i64::try_from(excess).unwrap_or(i64::MAX)])?;
        Ok(())
    }

    /// One known peer.
    pub fn peer(&self, id: &NodeId) -> Result<Option<PeerRow>> {
        let sql = format!("SELECT {PEER_COLS} FROM peers WHERE id = ?1");
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query([&id.0[..]])?;
        rows.next()?.map(read_peer).transpose()
    }

    /// All known peers, most recently seen first (never seen last), then by id.
    pub fn peers(&self) -> Result<Vec<PeerRow>> {
        let sql =
            format!("SELECT {PEER_COLS} FROM peers ORDER BY last_seen IS NULL, last_seen DESC, id");
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(read_peer(r)?);
        }
        Ok(out)
    }

    // ---- sync state --------------------------------------------------------------------

    /// Records that a catch-up of `room` with `peer` finished at `at_ms` (adding the peer to
    /// the peer table if it is not there yet).
    /// Works inside a burst batch ([`Store::begin_batch`]) too: it uses a savepoint.
    pub fn set_synced(&self, peer: &NodeId, room: &str, at_ms: u64) -> Result<()> {
        self.atomically("set_synced", || {
            self.conn
                .prepare_cached(
                    "INSERT INTO peers (id, first_seen) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![&peer.0[..], ms_to_sql(at_ms)])?;
            self.conn
                .prepare_cached(
                    "INSERT INTO sync_state (peer, room, last_sync_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (peer, room) DO UPDATE SET last_sync_at = excluded.last_sync_at",
                )?
                .execute(params![&peer.0[..], room, ms_to_sql(at_ms)])?;
            Ok(())
        })
    }

    /// Runs `f` all-or-nothing under a savepoint, which nests inside an open transaction
    /// (a burst batch) as well as outside one.
    pub(crate) fn atomically<T>(&self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.conn.execute_batch(&format!("SAVEPOINT {name}"))?;
        match f() {
            Ok(v) => {
                self.conn.execute_batch(&format!("RELEASE {name}"))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"));
                Err(e)
            }
        }
    }

    /// When a catch-up with any peer last finished (the status's "last sync", kept across
    /// restarts).
    pub fn last_sync_at(&self) -> Result<Option<u64>> {
        let v: Option<i64> = self
            .conn
            .prepare_cached("SELECT max(last_sync_at) FROM sync_state")?
            .query_row([], |r| r.get(0))?;
        opt_ms(v, "last_sync_at")
    }

    /// Records that a message written here was pushed to `peer` (never downgrades "held").
    pub fn mark_sent(&self, id: &MessageId, peer: &NodeId, at_ms: u64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO deliveries (id, peer, state, at) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (id, peer) DO NOTHING",
            )?
            .execute(rusqlite::params![&id.0[..], &peer.0[..], ms_to_sql(at_ms)])?;
        Ok(())
    }

    /// Records that `peer` holds these messages written here (ids of other messages are
    /// ignored).
    pub fn mark_held(&self, ids: &[MessageId], peer: &NodeId, at_ms: u64) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO deliveries (id, peer, state, at)
             SELECT id, ?2, 2, ?3 FROM messages WHERE id = ?1 AND local = 1
             ON CONFLICT (id, peer) DO UPDATE SET state = 2, at = excluded.at WHERE state < 2",
        )?;
        for id in ids {
            st.execute(rusqlite::params![&id.0[..], &peer.0[..], ms_to_sql(at_ms)])?;
        }
        Ok(())
    }

    /// Records that `peer` holds every message written here in `room` up to now (a
    /// reconciliation of the room with it just completed), except the messages in `except`
    /// (sent to the peer but not confirmed by it).
    pub fn mark_room_held_except(
        &self,
        room: &str,
        peer: &NodeId,
        at_ms: u64,
        except: &[MessageId],
    ) -> Result<()> {
        self.atomically("mark_room_held", || {
            self.mark_room_held_inner(room, peer, at_ms, except)
        })
    }

    fn mark_room_held_inner(
        &self,
        room: &str,
        peer: &NodeId,
        at_ms: u64,
        except: &[MessageId],
    ) -> Result<()> {
        self.conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS held_except (id BLOB PRIMARY KEY) WITHOUT ROWID;
             DELETE FROM temp.held_except;",
        )?;
        {
            let mut ins = self
                .conn
                .prepare_cached("INSERT OR IGNORE INTO temp.held_except (id) VALUES (?1)")?;
            for id in except {
                ins.execute([&id.0[..]])?;
            }
        }
        self.conn
            .prepare_cached(
                "INSERT INTO deliveries (id, peer, state, at)
                 SELECT id, ?2, 2, ?3 FROM messages
                 WHERE room = ?1 AND local = 1 AND id NOT IN (SELECT id FROM temp.held_except)
                 ON CONFLICT (id, peer) DO UPDATE SET state = 2, at = excluded.at WHERE state < 2",
            )?
            .execute(rusqlite::params![room, &peer.0[..], ms_to_sql(at_ms)])?;
        Ok(())
    }

    /// The outgoing queue: messages written here that no peer is known to hold yet.
    pub fn queued_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM messages m INDEXED BY messages_local
                 WHERE m.local = 1 AND NOT EXISTS
                   (SELECT 1 FROM deliveries d WHERE d.id = m.id AND d.state = 2)",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Messages written here that no peer is known to hold (the outgoing queue of
    /// [`Store::queued_count`]), as (room, id), at most [`MAX_QUEUED_IDS`] (oldest first).
    pub fn queued_ids(&self) -> Result<Vec<(String, MessageId)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT m.room, m.id FROM messages m INDEXED BY messages_local
             WHERE m.local = 1 AND NOT EXISTS
               (SELECT 1 FROM deliveries d WHERE d.id = m.id AND d.state = 2)
             LIMIT ?1",
        )?;
        let mut rows = st.query([MAX_QUEUED_IDS as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((r.get(0)?, MessageId(blob32(r, 1, "queued id")?)));
        }
        Ok(out)
    }

    /// Delivery of a message written here: (peers it was sent to or that hold it, peers known
    /// to hold it).
    pub fn delivery(&self, id: &MessageId) -> Result<(u32, u32)> {
        let (sent, held): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT count(*), coalesce(sum(state = 2), 0) FROM deliveries WHERE id = ?1",
            )?
            .query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((
            u32::try_from(sent).unwrap_or(u32::MAX),
            u32::try_from(held).unwrap_or(u32::MAX),
        ))
    }
}
