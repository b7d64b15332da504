//! The carry quota: what a node keeps for others is bounded, and the oldest goes first.
//!
//! Everything stored for rooms this node has not joined (carried rooms, the `dm` room, rooms
//! the user left) counts against [`Config::carry_quota_bytes`](super::Config): the signed
//! bytes of its messages plus [`EVICTED_ID_BYTES`] per evicted id. At each housekeeping tick
//! ([`TICK_MS`](super::TICK_MS)) over the quota, the oldest of those messages by
//! `(timestamp, id)` across all such rooms are evicted until usage is at
//! [`EVICT_TARGET_PERCENT`] of the quota (at most [`MAX_EVICT_PER_TICK`] per tick, so the
//! core thread stays responsive; the rest goes at the next tick).
//!
//! Never evicted: joined rooms, messages this node wrote, and direct messages addressed to it.
//! An evicted message leaves its `(timestamp, id)` behind ([`Storage::evict`]): the room's
//! set for catch-up still lists it, so peers do not send it again and a copy arriving anyway
//! is a duplicate, dropped before its signature is checked. Joining the room forgets those
//! ids, so a catch-up fetches the full history.
//!
//! Back-dating a message does not protect it (it is evicted first), and post-dating is
//! bounded by [`MAX_FUTURE_MS`](super::MAX_FUTURE_MS). When usage is still over the quota
//! after a tick (nothing more can be evicted: all that is left is our own, our DMs, or evicted
//! ids; or a flood outruns [`MAX_EVICT_PER_TICK`]), the quota is *full*: carried rooms are
//! neither announced nor accepted and no new room is carried (joined rooms and direct messages
//! go on) until usage falls under it again.

use std::collections::{BTreeSet, VecDeque};

use super::{Output, Protocol, Storage};
use crate::dm::{self, DM_ROOM};
use crate::message::{Message, MessageId, NodeId};

/// Default carry quota: 256 MiB of messages kept for others.
pub const DEFAULT_CARRY_QUOTA_BYTES: u64 = 256 * 1024 * 1024;
/// What one evicted id counts against the quota: its row (id, room, timestamp) and index
/// entry. Bounds evicted ids to quota / 64 (4 million for the default quota).
pub const EVICTED_ID_BYTES: u64 = 64;
/// Eviction stops once usage is at this percentage of the quota, so a node over the quota
/// does not evict a little on every tick.
pub const EVICT_TARGET_PERCENT: u64 = 90;
/// Most messages evicted per tick. Eviction runs on the core thread: 2,000 took ≈ 65 ms on
/// the reference machine (`make bench`, section 8; each costs a delete from four indexes, an
/// insert and their share of the commit's fsync), 1,000 about half, so `status` still
/// answers well within 100 ms. That is 200 messages a second, ten peers relaying at their
/// full carried-room budget; a faster flood makes the quota full for a while (carrying
/// pauses) until eviction catches up.
pub const MAX_EVICT_PER_TICK: usize = 1_000;
/// Messages read per room at a time while looking for the oldest.
pub const EVICT_BATCH: usize = 256;

/// One room's oldest messages not yet considered, read [`EVICT_BATCH`] at a time.
struct Cursor {
    room: String,
    /// `(timestamp, id, message)`, oldest first.
    buffered: VecDeque<(u64, MessageId, Message)>,
    /// `(timestamp, id)` of the last message read; `None` before the first read.
    after: Option<(u64, MessageId)>,
    exhausted: bool,
}

impl Cursor {
    /// The room's next message, reading another batch when needed.
    fn peek(
        &mut self,
        store: &dyn Storage,
    ) -> Result<Option<(u64, MessageId)>, super::StorageError> {
        if self.buffered.is_empty() && !self.exhausted {
            let batch = store.oldest(&self.room, self.after, EVICT_BATCH)?;
            self.exhausted = batch.len() < EVICT_BATCH;
            self.buffered
                .extend(batch.into_iter().map(|m| (m.timestamp, m.id(), m)));
            if let Some((ts, id, _)) = self.buffered.back() {
                self.after = Some((*ts, *id));
            }
        }
        Ok(self.buffered.front().map(|(ts, id, _)| (*ts, *id)))
    }
}

/// Whether the carry quota may evict `msg` from this node (`me`).
pub fn evictable(msg: &Message, me: &NodeId) -> bool {
    if msg.author == *me {
        return false;
    }
    if msg.room == DM_ROOM {
        // Stored DMs passed `check_carried`; one that no longer decodes is not ours to keep.
        return dm::from_body(&msg.body).map_or(true, |env| env.recipient != *me);
    }
    true
}

impl Protocol {
    /// Whether the carry quota is full (nothing more could be evicted).
    pub fn carry_full(&self) -> bool {
        self.carry_full
    }

    /// Measures what rooms not joined take; over the quota, evicts their oldest messages;
    /// sets the quota full (or not) from the result.
    pub(super) fn enforce_carry_quota(&mut self, store: &mut dyn Storage, out: &mut Vec<Output>) {
        let quota = self.config.carry_quota_bytes;
        let usage = match store.usage() {
            Ok(u) => u,
            Err(e) => {
                out.push(Output::StorageFailed(e));
                return;
            }
        };
        let not_joined: Vec<_> = usage
            .into_iter()
            .filter(|u| !self.rooms.contains(&u.room))
            .collect();
        let mut used: u64 = not_joined
            .iter()
            .map(|u| {
                u.bytes
                    .saturating_add(u.evicted.saturating_mul(EVICTED_ID_BYTES))
            })
            .fold(0, u64::saturating_add);
        if used > quota {
            let target = quota / 100 * EVICT_TARGET_PERCENT;
            let rooms: Vec<String> = not_joined
                .into_iter()
                .filter(|u| u.messages > 0)
                .map(|u| u.room)
                .collect();
            match self.evict_oldest(store, rooms, used - target) {
                Ok(freed) => used = used.saturating_sub(freed),
                Err(e) => out.push(Output::StorageFailed(e)),
            }
        }
        self.set_carry_full(used > quota, store, out);
    }

    /// Evicts the oldest evictable messages of `rooms` (merged by `(timestamp, id)`) until
    /// `to_free` bytes of quota are freed or [`MAX_EVICT_PER_TICK`] are gone. Returns the
    /// bytes freed.
    fn evict_oldest(
        &mut self,
        store: &mut dyn Storage,
        rooms: Vec<String>,
        to_free: u64,
    ) -> Result<u64, super::StorageError> {
        let mut cursors: Vec<Cursor> = rooms
            .into_iter()
            .map(|room| Cursor {
                room,
                buffered: VecDeque::new(),
                after: None,
                exhausted: false,
            })
            .collect();
        let mut victims = Vec::new();
        let mut seen = BTreeSet::new();
        let mut freed = 0u64;
        while freed < to_free && victims.len() < MAX_EVICT_PER_TICK {
            // The room whose next message is oldest.
            let mut best: Option<(u64, MessageId, usize)> = None;
            for (i, c) in cursors.iter_mut().enumerate() {
                if let Some((ts, id)) = c.peek(store)? {
                    if best.is_none_or(|b| (ts, id) < (b.0, b.1)) {
                        best = Some((ts, id, i));
                    }
                }
            }
            let Some((_, id, i)) = best else { break };
            let Some((_, _, msg)) = cursors[i].buffered.pop_front() else {
                break;
            };
            if !evictable(&msg, &self.me) || !seen.insert(id) {
                continue;
            }
            let size = msg.signed_bytes().len() as u64;
            freed += size.saturating_sub(EVICTED_ID_BYTES);
            victims.push(id);
        }
        if victims.is_empty() {
            return Ok(0);
        }
        store.evict(&victims)?;
        self.counters.evicted += victims.len() as u64;
        Ok(freed)
    }

    /// Marks the quota full or not; when that changes, re-announces the rooms served and,
    /// once no longer full, catches up on the carried rooms that were refused meanwhile.
    fn set_carry_full(&mut self, full: bool, store: &mut dyn Storage, out: &mut Vec<Output>) {
        if full == self.carry_full {
            return;
        }
        self.carry_full = full;
        self.announce_rooms(out);
        if full {
            return;
        }
        let todo: Vec<(NodeId, String)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.hello)
            .flat_map(|(id, p)| {
                p.rooms
                    .intersection(&self.carried)
                    .map(|r| (*id, r.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (peer, room) in todo {
            self.offer(store, peer, &room, out);
        }
    }
}
