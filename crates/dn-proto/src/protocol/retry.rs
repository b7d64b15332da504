//! Retry with backoff: own messages no peer is known to hold yet are re-offered soon after
//! they are written, then less and less often while nothing changes.
//!
//! The protocol learns what is held from the events it already handles, with the same rules
//! as the driver's delivery record: an acknowledgement ([`Output::Acked`]), a finished
//! reconciliation that proved the peer holds the room ([`Output::Synced`] with `proven`,
//! except what was sent to the peer and not confirmed, [`Protocol::unconfirmed`]), or the peer
//! sending the message back. What was pending before a restart the driver hands over once,
//! at start ([`Protocol::note_unheld`], from the store's delivery records).
//!
//! Per room with such messages: a retry [`RETRY_FIRST_MS`] after the newest one was written,
//! then after twice the previous wait, up to [`RETRY_MAX_MS`]. A new own message, or a new
//! connection sharing the room (its hello reconciles at once), starts over. A retry
//! reconciles the room with every connected peer sharing it (the ordinary catch-up start,
//! same budgets), also with a peer of lower id, which usually starts them: should both start
//! one at the same moment, the lower id's goes on.

use super::*;

/// First retry of a room this long after its newest own message not held by any peer, ms.
pub const RETRY_FIRST_MS: u64 = 15_000;
/// Longest wait between two retries of a room, ms.
pub const RETRY_MAX_MS: u64 = 10 * 60 * 1000;

/// One room's own messages not held yet and when to retry.
#[derive(Debug, Default)]
pub(super) struct RoomRetry {
    /// Own messages of the room no peer is known to hold.
    ids: HashSet<MessageId>,
    /// Next retry, ms (monotonic).
    due: u64,
    /// Wait that led to `due`, ms: the next one is twice as long (capped).
    wait: u64,
}

impl Protocol {
    /// When the next retry of own messages no peer holds is due (monotonic ms), `None` when
    /// no such message is known.
    pub fn next_retry_at(&self) -> Option<u64> {
        self.retry.values().map(|r| r.due).min()
    }

    /// Own messages no peer is known to hold yet (as the protocol learned it since start).
    pub fn unheld_own(&self) -> usize {
        self.retry.values().map(|r| r.ids.len()).sum()
    }

    /// Own messages no peer held when this node last stopped (the driver reads them from its
    /// store at start): they are scheduled as if just written.
    pub fn note_unheld(&mut self, pending: impl IntoIterator<Item = (String, MessageId)>) {
        let due = self.now + RETRY_FIRST_MS;
        for (room, id) in pending {
            let r = self.retry.entry(room).or_default();
            r.ids.insert(id);
            r.wait = RETRY_FIRST_MS;
            r.due = due;
        }
    }

    /// A message of ours was written: (re)start its room's schedule.
    pub(super) fn retry_published(&mut self, msg: &Message) {
        if msg.author != self.me {
            return;
        }
        let r = self.retry.entry(msg.room.clone()).or_default();
        r.ids.insert(msg.id());
        r.wait = RETRY_FIRST_MS;
        r.due = self.now + RETRY_FIRST_MS;
    }

    /// A peer said hello: the schedule of the rooms it shares starts over (the hello itself
    /// reconciles them at once).
    pub(super) fn retry_reset_for(&mut self, rooms: &BTreeSet<String>) {
        let now = self.now;
        for (room, r) in self.retry.iter_mut() {
            if rooms.contains(room) {
                r.wait = RETRY_FIRST_MS;
                r.due = now + RETRY_FIRST_MS;
            }
        }
    }

    /// These own messages are held by a peer.
    pub(super) fn retry_held(&mut self, ids: &[MessageId]) {
        if self.retry.is_empty() {
            return;
        }
        for r in self.retry.values_mut() {
            for id in ids {
                r.ids.remove(id);
            }
        }
        self.retry.retain(|_, r| !r.ids.is_empty());
    }

    /// `peer` proved it holds `room` except what it has not confirmed.
    fn retry_room_held(&mut self, peer: NodeId, room: &str) {
        let Some(r) = self.retry.get_mut(room) else {
            return;
        };
        if let Some(p) = self.peers.get(&peer) {
            r.ids
                .retain(|id| p.sent_own_set.contains(id) || p.queued.contains(id));
        }
        if r.ids.is_empty() {
            self.retry.remove(room);
        }
    }

    /// Learns from the outputs of one call what is now held.
    pub(super) fn retry_learn(&mut self, out: &[Output]) {
        if self.retry.is_empty() {
            return;
        }
        for o in out {
            match o {
                Output::Acked { ids, .. } => self.retry_held(ids),
                Output::Synced {
                    peer,
                    room,
                    proven: true,
                } => self.retry_room_held(*peer, room),
                _ => {}
            }
        }
    }

    /// Runs the retries that are due: reconciles each such room with every connected peer
    /// sharing it, then waits twice as long (capped at [`RETRY_MAX_MS`]).
    pub(super) fn retry_due(&mut self, store: &mut dyn Storage, out: &mut Vec<Output>) {
        let now = self.now;
        let due: Vec<String> = self
            .retry
            .iter()
            .filter(|(_, r)| r.due <= now)
            .map(|(room, _)| room.clone())
            .collect();
        for room in due {
            if let Some(r) = self.retry.get_mut(&room) {
                r.wait = r.wait.saturating_mul(2).clamp(RETRY_FIRST_MS, RETRY_MAX_MS);
                r.due = now + r.wait;
            }
            if !self.member(&room) {
                continue;
            }
            let sharing: Vec<NodeId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.hello && p.shares(&room))
                .map(|(id, _)| *id)
                .collect();
            for peer in sharing {
                self.open_recon(store, peer, &room, true, out);
            }
        }
    }
}
