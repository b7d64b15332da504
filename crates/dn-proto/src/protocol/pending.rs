//! Pending repairs: messages announced by `IHave` that we lack, bounded per announcer.
//!
//! Each entry is charged to the peer whose announcement created it. One peer may own at most
//! [`MISSING_PER_PEER`] entries and all together at most [`MISSING_CAP`]; past that new
//! announcements are refused (the caller counts the drop) instead of evicting entries learned
//! from others, so a flood from one peer cannot make us forget honest repairs.
//!
//! Each entry has a deadline (when to graft the next announcer); the table is also the
//! protocol's timer table for repairs: [`Pending::next_due`] feeds `poll_timeout`, and an entry
//! removed (the message arrived) cancels its timer.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::{MISSING_CAP, MISSING_PER_PEER};
use crate::message::{MessageId, NodeId};

/// A message announced to us that we lack.
pub(super) struct Missing {
    /// Its room.
    pub(super) room: String,
    /// Peers that announced it, tried in order.
    pub(super) announcers: VecDeque<NodeId>,
    /// The peer charged for the entry (the first announcer).
    owner: NodeId,
    /// When the first announcement arrived (ms, monotonic).
    first_at: u64,
    /// Whether a `Graft` was sent for it (the copy that comes is then the answer, not the
    /// tree's push).
    pub(super) grafted: bool,
    /// When to act on it next (`None` while being handled).
    due: Option<u64>,
}

/// The first announcement of a message that was still missing when its copy arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FirstAnnounce {
    /// The peer that announced it first.
    pub(super) peer: NodeId,
    /// When (ms, monotonic).
    pub(super) at: u64,
    /// Whether a `Graft` was sent for it.
    pub(super) grafted: bool,
}

/// The pending-repair table.
#[derive(Default)]
pub(super) struct Pending {
    entries: HashMap<MessageId, Missing>,
    per_owner: HashMap<NodeId, usize>,
    /// `(deadline, id)` of every entry that has one, earliest first.
    deadlines: BTreeSet<(u64, MessageId)>,
}

/// What [`Pending::announce`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Announced {
    /// A new entry: set its timer.
    New,
    /// Already pending: the peer was added as another announcer.
    Known,
    /// No room for it (per-peer or total cap).
    Full,
}

impl Pending {
    /// Records that `peer` announced `id` in `room` at `now`; a new entry is due at `due`.
    pub(super) fn announce(
        &mut self,
        id: MessageId,
        room: &str,
        peer: NodeId,
        now: u64,
        due: u64,
    ) -> Announced {
        if let Some(m) = self.entries.get_mut(&id) {
            if !m.announcers.contains(&peer) {
                m.announcers.push_back(peer);
            }
            return Announced::Known;
        }
        let owned = self.per_owner.get(&peer).copied().unwrap_or(0);
        if owned >= MISSING_PER_PEER || self.entries.len() >= MISSING_CAP {
            return Announced::Full;
        }
        self.per_owner.insert(peer, owned + 1);
        self.entries.insert(
            id,
            Missing {
                room: room.to_string(),
                announcers: VecDeque::from([peer]),
                owner: peer,
                first_at: now,
                grafted: false,
                due: Some(due),
            },
        );
        self.deadlines.insert((due, id));
        Announced::New
    }

    /// The entry for `id`.
    pub(super) fn get_mut(&mut self, id: &MessageId) -> Option<&mut Missing> {
        self.entries.get_mut(id)
    }

    /// Who announced `id` first and when, if it is pending.
    pub(super) fn first_announce(&self, id: &MessageId) -> Option<FirstAnnounce> {
        self.entries.get(id).map(|m| FirstAnnounce {
            peer: m.owner,
            at: m.first_at,
            grafted: m.grafted,
        })
    }

    /// The earliest deadline.
    pub(super) fn next_due(&self) -> Option<u64> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// An entry due at or before `now`, taken off the deadlines (handle it, then
    /// [`Pending::set_due`] or [`Pending::remove`]).
    pub(super) fn pop_due(&mut self, now: u64) -> Option<MessageId> {
        let (t, id) = *self.deadlines.first()?;
        if t > now {
            return None;
        }
        self.deadlines.remove(&(t, id));
        if let Some(m) = self.entries.get_mut(&id) {
            m.due = None;
        }
        Some(id)
    }

    /// Sets when `id` is next due.
    pub(super) fn set_due(&mut self, id: &MessageId, due: u64) {
        if let Some(m) = self.entries.get_mut(id) {
            if let Some(old) = m.due.replace(due) {
                self.deadlines.remove(&(old, *id));
            }
            self.deadlines.insert((due, *id));
        }
    }

    /// Forgets `id` (arrived, or no announcer left), releasing its owner's share and
    /// cancelling its deadline.
    pub(super) fn remove(&mut self, id: &MessageId) {
        if let Some(m) = self.entries.remove(id) {
            if let Some(t) = m.due {
                self.deadlines.remove(&(t, *id));
            }
            if let Some(n) = self.per_owner.get_mut(&m.owner) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_owner.remove(&m.owner);
                }
            }
        }
    }

    /// Entries pending.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries charged to `peer`.
    #[cfg(test)]
    pub(super) fn owned_by(&self, peer: &NodeId) -> usize {
        self.per_owner.get(peer).copied().unwrap_or(0)
    }
}
