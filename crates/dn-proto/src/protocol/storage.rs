//! What the protocol needs from a message store ([`Storage`]), and [`MemStorage`], an
//! in-memory one for tests and simulators.

use std::collections::{BTreeMap, BTreeSet, HashMap};

#[cfg(doc)]
use super::{Config, TICK_MS};
#[cfg(doc)]
use super::{AUTHOR_WINDOW_MESSAGES, MAX_AUTHOR_BYTES, MAX_AUTHOR_MESSAGES};
use crate::message::{Message, MessageId, NodeId};

/// A storage failure, reported by a [`Storage`] implementation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

/// What the protocol needs from a message store.
pub trait Storage {
    /// Whether a message with this id is stored.
    fn has(&self, id: &MessageId) -> Result<bool, StorageError>;
    /// Stores a verified message; returns `false` if it was already there.
    fn insert(&mut self, msg: &Message) -> Result<bool, StorageError>;
    /// `(timestamp, id)` of every stored message in a room (any order).
    fn room_set(&self, room: &str) -> Result<Vec<(u64, MessageId)>, StorageError>;
    /// A stored message by id.
    fn get(&self, id: &MessageId) -> Result<Option<Message>, StorageError>;
    /// What `author` holds in `room`: number of messages and total size of their signed bytes
    /// (for the per-author quota, [`MAX_AUTHOR_MESSAGES`] / [`MAX_AUTHOR_BYTES`]). Called once
    /// per (room, author) while the protocol's usage cache holds the pair, so it may scan.
    fn author_usage(&self, room: &str, author: &NodeId) -> Result<(u64, u64), StorageError>;
    /// How many messages of `author` in `room` have a timestamp in `from..=to` (for the
    /// per-author window, [`AUTHOR_WINDOW_MESSAGES`]). Called for every new message under the
    /// quota, so it must be an index range count, not a scan.
    fn author_count_between(
        &self,
        room: &str,
        author: &NodeId,
        from: u64,
        to: u64,
    ) -> Result<u64, StorageError>;
    /// What every room with stored or evicted messages takes (for the carry quota,
    /// [`Config::carry_quota_bytes`]). Called at every housekeeping tick ([`TICK_MS`]), so it must
    /// not scan the messages.
    fn usage(&self) -> Result<Vec<RoomUsage>, StorageError>;
    /// Up to `limit` stored messages of `room` in `(timestamp, id)` order, strictly after
    /// `after` (the carry quota evicts oldest first).
    fn oldest(
        &self,
        room: &str,
        after: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<Message>, StorageError>;
    /// Deletes these stored messages and keeps each one's `(timestamp, id)` as *evicted*:
    /// afterwards `has` is still true (a copy arriving again is a duplicate), `room_set` still
    /// lists it (a catch-up does not fetch it again), `get` returns `None` (nothing to serve)
    /// and `insert` refuses it. All or none.
    fn evict(&mut self, ids: &[MessageId]) -> Result<(), StorageError>;
    /// Forgets the evicted ids of `room` (the user joined it: a catch-up fetches its whole
    /// history again).
    fn forget_evicted(&mut self, room: &str) -> Result<(), StorageError>;
}

/// What one room takes in a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomUsage {
    /// The room.
    pub room: String,
    /// Stored messages.
    pub messages: u64,
    /// Their signed bytes.
    pub bytes: u64,
    /// Ids kept of messages evicted under the carry quota.
    pub evicted: u64,
}

/// An in-memory [`Storage`] for tests and simulators.
#[derive(Default, Debug, Clone)]
pub struct MemStorage {
    msgs: HashMap<MessageId, Message>,
    by_room: HashMap<String, BTreeSet<(u64, MessageId)>>,
    /// Per (room, author): `(timestamp, id)` of the messages and their total signed size.
    by_author: HashMap<(String, NodeId), AuthorEntries>,
    /// Signed bytes stored per room.
    room_bytes: HashMap<String, u64>,
    /// Evicted messages per room: `(timestamp, id)`.
    evicted: HashMap<String, BTreeSet<(u64, MessageId)>>,
    /// Evicted id → its room.
    evicted_ids: HashMap<MessageId, String>,
}

/// `(timestamp, id)` of one author's messages in one room, and their total signed size.
type AuthorEntries = (BTreeSet<(u64, MessageId)>, u64);

impl MemStorage {
    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }
}

impl Storage for MemStorage {
    fn has(&self, id: &MessageId) -> Result<bool, StorageError> {
        Ok(self.msgs.contains_key(id) || self.evicted_ids.contains_key(id))
    }
    fn insert(&mut self, msg: &Message) -> Result<bool, StorageError> {
        let id = msg.id();
        if self.msgs.contains_key(&id) || self.evicted_ids.contains_key(&id) {
            return Ok(false);
        }
        self.by_room
            .entry(msg.room.clone())
            .or_default()
            .insert((msg.timestamp, id));
        let size = msg.signed_bytes().len() as u64;
        let usage = self
            .by_author
            .entry((msg.room.clone(), msg.author))
            .or_default();
        usage.0.insert((msg.timestamp, id));
        usage.1 += size;
        *self.room_bytes.entry(msg.room.clone()).or_default() += size;
        self.msgs.insert(id, msg.clone());
        Ok(true)
    }
    fn room_set(&self, room: &str) -> Result<Vec<(u64, MessageId)>, StorageError> {
        Ok(self
            .by_room
            .get(room)
            .into_iter()
            .chain(self.evicted.get(room))
            .flat_map(|s| s.iter().copied())
            .collect())
    }
    fn get(&self, id: &MessageId) -> Result<Option<Message>, StorageError> {
        Ok(self.msgs.get(id).cloned())
    }
    fn author_usage(&self, room: &str, author: &NodeId) -> Result<(u64, u64), StorageError> {
        Ok(self
            .by_author
            .get(&(room.to_string(), *author))
            .map_or((0, 0), |(set, bytes)| (set.len() as u64, *bytes)))
    }
    fn author_count_between(
        &self,
        room: &str,
        author: &NodeId,
        from: u64,
        to: u64,
    ) -> Result<u64, StorageError> {
        if from > to {
            return Ok(0);
        }
        let lo = (from, MessageId([0; 32]));
        let hi = (to, MessageId([0xff; 32]));
        Ok(self
            .by_author
            .get(&(room.to_string(), *author))
            .map_or(0, |(set, _)| set.range(lo..=hi).count() as u64))
    }
    fn usage(&self) -> Result<Vec<RoomUsage>, StorageError> {
        let mut rooms: BTreeMap<&str, RoomUsage> = BTreeMap::new();
        for (room, set) in &self.by_room {
            let u = rooms.entry(room).or_default();
            u.messages = set.len() as u64;
            u.bytes = self.room_bytes.get(room).copied().unwrap_or(0);
        }
        for (room, set) in &self.evicted {
            rooms.entry(room).or_default().evicted = set.len() as u64;
        }
        Ok(rooms
            .into_iter()
            .filter(|(_, u)| u.messages + u.evicted > 0)
            .map(|(room, u)| RoomUsage {
                room: room.to_string(),
                ..u
            })
            .collect())
    }
    fn oldest(
        &self,
        room: &str,
        after: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<Message>, StorageError> {
        let Some(set) = self.by_room.get(room) else {
            return Ok(Vec::new());
        };
        let bound = match after {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Unbounded,
        };
        Ok(set
            .range((bound, std::ops::Bound::Unbounded))
            .take(limit)
            .filter_map(|(_, id)| self.msgs.get(id).cloned())
            .collect())
    }
    fn evict(&mut self, ids: &[MessageId]) -> Result<(), StorageError> {
        for id in ids {
            let Some(msg) = self.msgs.remove(id) else {
                continue;
            };
            let key = (msg.timestamp, *id);
            let size = msg.signed_bytes().len() as u64;
            if let Some(set) = self.by_room.get_mut(&msg.room) {
                set.remove(&key);
            }
            if let Some(bytes) = self.room_bytes.get_mut(&msg.room) {
                *bytes = bytes.saturating_sub(size);
            }
            if let Some((set, bytes)) = self.by_author.get_mut(&(msg.room.clone(), msg.author)) {
                set.remove(&key);
                *bytes = bytes.saturating_sub(size);
            }
            self.evicted
                .entry(msg.room.clone())
                .or_default()
                .insert(key);
            self.evicted_ids.insert(*id, msg.room);
        }
        Ok(())
    }
    fn forget_evicted(&mut self, room: &str) -> Result<(), StorageError> {
        if let Some(set) = self.evicted.remove(room) {
            for (_, id) in set {
                self.evicted_ids.remove(&id);
            }
        }
        Ok(())
    }
}
