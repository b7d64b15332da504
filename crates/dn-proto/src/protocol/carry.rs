//! Which rooms a node carries for others: chosen by demand, not by whoever asks first.
//!
//! A peer's `Hello`/`Rooms` lists the rooms it serves (joined or carried; the frame does not
//! say which). Each listing is recorded in a bounded candidate table (at most
//! [`CARRY_ROOMS_PER_PEER`] rooms per peer, [`MAX_CARRY_CANDIDATES`] rooms in all). A room is
//! *demanded* when
//!
//! - at least [`CARRY_MIN_ANNOUNCERS`] distinct peers announce it (a connected peer listing it
//!   now, or any peer that listed it within [`CARRY_DEMAND_WINDOW_MS`]), or
//! - one peer has listed it while connected for at least [`CARRY_SOLE_PEER_MS`] and that peer
//!   lists at most [`CARRY_SOLE_PEER_MAX_ROOMS`] rooms (a camp node met by a data mule; a peer
//!   listing hundreds of names is not taken at its sole word; a relay raises that bound with
//!   `Config::sole_peer_max_rooms`).
//!
//! A demanded room is carried while there is a free slot (`Config::max_carried_rooms`); when
//! all are taken it replaces the carried room with the fewest current announcers if it has
//! strictly more. A carried room nobody announced for [`CARRY_IDLE_MS`] stops being carried
//! (its stored messages stay). Joined rooms are never carried, and the `dm` room is never
//! dropped or replaced. So one peer announcing 10,000 room names carries none of them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Output, Protocol, Storage};
use crate::dm::DM_ROOM;
use crate::message::NodeId;

/// Distinct announcers that make a room demanded.
pub const CARRY_MIN_ANNOUNCERS: usize = 2;
/// An announcement counts for this long after it was made (unless the peer, still connected,
/// still lists the room), ms: one hour, enough for a mule going from one camp to the next.
pub const CARRY_DEMAND_WINDOW_MS: u64 = 60 * 60 * 1000;
/// A single peer's announcement counts once it has been connected this long, ms. Zero: a
/// modest peer's rooms count at once, because carrying through one neighbour is the core of
/// store-and-forward (a relay or a laptop between two camps meets one node at a time; the
/// netns test `relay_that_never_joined_the_room_carries_it` needs it). What it weighs against,
/// one peer filling the carry slots with junk names, stays bounded by
/// [`CARRY_SOLE_PEER_MAX_ROOMS`] and by rooms more peers want replacing those.
pub const CARRY_SOLE_PEER_MS: u64 = 0;
/// A single peer's word is taken only if it lists at most this many rooms: a camp node joins a
/// handful of rooms; a peer listing more is a carrier itself (or an attacker).
pub const CARRY_SOLE_PEER_MAX_ROOMS: usize = 16;
/// A carried room nobody announced for this long is no longer carried, ms (one day).
pub const CARRY_IDLE_MS: u64 = 24 * 60 * 60 * 1000;
/// Most candidate rooms tracked.
pub const MAX_CARRY_CANDIDATES: usize = 1_024;
/// Most rooms of one peer's list that are tracked: the default carry slots (64) plus joined
/// rooms, twice over.
pub const CARRY_ROOMS_PER_PEER: usize = 128;

/// Room announcements not tracked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CarryDrops {
    /// Rooms past [`CARRY_ROOMS_PER_PEER`] in one peer's list.
    pub per_peer: u64,
    /// New rooms while [`MAX_CARRY_CANDIDATES`] are tracked.
    pub table_full: u64,
}

/// The demand table.
#[derive(Debug, Default)]
pub(super) struct Demand {
    /// Candidate room → announcer → when it last listed the room.
    rooms: BTreeMap<String, BTreeMap<NodeId, u64>>,
    /// Carried room → last time somebody announced it (`None`: carried since a restart or a
    /// leave, stamped at the next tick).
    last_demand: BTreeMap<String, Option<u64>>,
    /// When each connected peer's first hello came.
    connected_at: HashMap<NodeId, u64>,
    pub(super) drops: CarryDrops,
}

impl Protocol {
    /// Room announcements not tracked by the carry demand table.
    pub fn carry_drops(&self) -> CarryDrops {
        self.demand.drops
    }

    /// Carries these rooms too (rooms with stored messages after a restart, the `dm` room), up
    /// to `Config::max_carried_rooms`. They stop being carried after [`CARRY_IDLE_MS`] without
    /// an announcement, except `dm`.
    pub fn carry_rooms(&mut self, rooms: impl IntoIterator<Item = String>) {
        for r in rooms {
            if !self.rooms.contains(&r) && self.carried.len() < self.config.max_carried_rooms {
                self.carried.insert(r.clone());
                self.demand.last_demand.entry(r).or_insert(None);
            }
        }
    }

    /// Rooms tracked in the demand table.
    #[cfg(test)]
    pub(super) fn candidate_count(&self) -> usize {
        self.demand.rooms.len()
    }

    /// A peer said its first hello now.
    pub(super) fn note_connected(&mut self, peer: NodeId) {
        self.demand.connected_at.insert(peer, self.now);
    }

    /// A left room stays carried (its messages are stored) until it goes idle.
    pub(super) fn carry_left(&mut self, room: String) {
        if self.config.max_carried_rooms > self.carried.len() {
            self.demand.last_demand.insert(room.clone(), Some(self.now));
            self.carried.insert(room);
        }
    }

    /// Records that `from` serves `rooms` and starts carrying the rooms now demanded.
    pub(super) fn carry(
        &mut self,
        rooms: &BTreeSet<String>,
        from: Option<NodeId>,
        store: &mut dyn Storage,
        out: &mut Vec<Output>,
    ) {
        if let Some(peer) = from {
            self.record_announcement(peer, rooms);
        }
        self.carry_demanded(from, rooms, store, out);
    }

    fn record_announcement(&mut self, peer: NodeId, rooms: &BTreeSet<String>) {
        let now = self.now;
        let listed: Vec<&String> = rooms
            .iter()
            .filter(|r| !self.rooms.contains(*r) && r.as_str() != DM_ROOM)
            .collect();
        let kept: BTreeSet<&String> = listed.iter().take(CARRY_ROOMS_PER_PEER).copied().collect();
        self.demand.drops.per_peer += (listed.len() - kept.len()) as u64;
        // Withdrawn rooms: the peer no longer lists them.
        for (room, who) in &mut self.demand.rooms {
            if !kept.contains(room) {
                who.remove(&peer);
            }
        }
        self.demand.rooms.retain(|_, who| !who.is_empty());
        for room in kept {
            if self.carried.contains(room) {
                self.demand.last_demand.insert(room.clone(), Some(now));
            }
            if !self.demand.rooms.contains_key(room)
                && self.demand.rooms.len() >= MAX_CARRY_CANDIDATES
            {
                self.prune_candidates();
                if self.demand.rooms.len() >= MAX_CARRY_CANDIDATES {
                    self.demand.drops.table_full += 1;
                    continue;
                }
            }
            self.demand
                .rooms
                .entry(room.clone())
                .or_default()
                .insert(peer, now);
        }
    }

    /// Forgets stale announcements and rooms no one announces any more.
    fn prune_candidates(&mut self) {
        let now = self.now;
        let peers = &self.peers;
        for (room, who) in &mut self.demand.rooms {
            who.retain(|id, at| {
                now.saturating_sub(*at) <= CARRY_DEMAND_WINDOW_MS
                    || peers.get(id).is_some_and(|p| p.rooms.contains(room))
            });
        }
        self.demand.rooms.retain(|_, who| !who.is_empty());
    }

    /// Peers whose announcement of `room` counts now (`from` is listing it right now).
    fn support(&self, room: &str, from: Option<NodeId>) -> Vec<NodeId> {
        let now = self.now;
        self.demand
            .rooms
            .get(room)
            .map(|who| {
                who.iter()
                    .filter(|(id, at)| {
                        Some(**id) == from
                            || now.saturating_sub(**at) <= CARRY_DEMAND_WINDOW_MS
                            || self.peers.get(*id).is_some_and(|p| p.rooms.contains(room))
                    })
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn demanded(&self, room: &str, from: Option<NodeId>, from_rooms: usize) -> bool {
        let who = self.support(room, from);
        if who.len() >= CARRY_MIN_ANNOUNCERS {
            return true;
        }
        who.iter().any(|id| {
            let listed = if Some(*id) == from {
                from_rooms
            } else {
                self.peers.get(id).map_or(usize::MAX, |p| p.rooms.len())
            };
            let connected = self
                .peers
                .get(id)
                .is_some_and(|p| p.hello || Some(*id) == from);
            // Always true while CARRY_SOLE_PEER_MS is 0; kept so the rule can be tightened.
            #[allow(clippy::absurd_extreme_comparisons)]
            let long_enough = self
                .demand
                .connected_at
                .get(id)
                .is_some_and(|t| self.now.saturating_sub(*t) >= CARRY_SOLE_PEER_MS);
            connected && listed <= self.config.sole_peer_max_rooms && long_enough
        })
    }

    /// Starts carrying every demanded candidate that gets a slot; announces and catches up.
    fn carry_demanded(
        &mut self,
        from: Option<NodeId>,
        from_rooms: &BTreeSet<String>,
        store: &mut dyn Storage,
        out: &mut Vec<Output>,
    ) {
        if self.config.max_carried_rooms == 0 || self.carry_full {
            return;
        }
        let candidates: Vec<String> = self
            .demand
            .rooms
            .keys()
            .filter(|r| !self.rooms.contains(*r) && !self.carried.contains(*r))
            .cloned()
            .collect();
        let mut new = Vec::new();
        let mut dropped = false;
        for room in candidates {
            if !self.demanded(&room, from, from_rooms.len()) {
                continue;
            }
            if self.carried.len() >= self.config.max_carried_rooms {
                let strength = self.support(&room, from).len();
                let weakest = self
                    .carried
                    .iter()
                    .filter(|r| r.as_str() != DM_ROOM)
                    .map(|r| (self.support(r, from).len(), r.clone()))
                    .min();
                match weakest {
                    Some((s, victim)) if s < strength => {
                        self.carried.remove(&victim);
                        self.demand.last_demand.remove(&victim);
                        dropped = true;
                    }
                    _ => continue,
                }
            }
            self.carried.insert(room.clone());
            self.demand.last_demand.insert(room.clone(), Some(self.now));
            new.push(room);
        }
        if new.is_empty() && !dropped {
            return;
        }
        self.announce_rooms(out);
        // Peers that have these rooms: catch up with them (`from` is handled by the caller).
        let others: Vec<(NodeId, Vec<String>)> = self
            .peers
            .iter()
            .filter(|(id, p)| p.hello && Some(**id) != from)
            .map(|(id, p)| {
                (
                    *id,
                    new.iter()
                        .filter(|r| p.rooms.contains(*r))
                        .cloned()
                        .collect(),
                )
            })
            .collect();
        for (peer, rooms) in others {
            for room in rooms {
                self.offer(store, peer, &room, out);
            }
        }
    }

    /// Housekeeping: re-weighs demand (a sole peer may have been connected long enough),
    /// drops carried rooms gone idle, forgets stale announcements.
    pub(super) fn carry_tick(&mut self, store: &mut dyn Storage, out: &mut Vec<Output>) {
        let now = self.now;
        let peers = &self.peers;
        self.demand
            .connected_at
            .retain(|id, _| peers.contains_key(id));
        let carried = &self.carried;
        self.demand.last_demand.retain(|r, _| carried.contains(r));
        for room in &self.carried {
            let announced = peers.values().any(|p| p.hello && p.rooms.contains(room));
            let at = self.demand.last_demand.entry(room.clone()).or_insert(None);
            if announced || at.is_none() {
                *at = Some(now);
            }
        }
        let idle: Vec<String> = self
            .demand
            .last_demand
            .iter()
            .filter(|(r, at)| {
                r.as_str() != DM_ROOM && at.is_some_and(|t| now.saturating_sub(t) > CARRY_IDLE_MS)
            })
            .map(|(r, _)| r.clone())
            .collect();
        for r in &idle {
            self.carried.remove(r);
            self.demand.last_demand.remove(r);
        }
        self.prune_candidates();
        if !idle.is_empty() {
            self.announce_rooms(out);
        }
        self.carry_demanded(None, &BTreeSet::new(), store, out);
    }
}
