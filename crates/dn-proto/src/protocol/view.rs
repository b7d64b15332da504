//! The bounded active view (HyParView-like): however many peers a node discovers, it keeps a
//! small, self-repairing set of connections, and every message still reaches everyone through
//! the overlay they form.
//!
//! - **Active view**: the connected peers, not counting *pinned* ones (relays and addresses
//!   the user gave, [`Protocol::set_pinned`]), which are always kept and come on top.
//! - **Passive list**: up to [`PASSIVE_CAP`] nodes heard of by discovery ([`Input::Discovered`]:
//!   mDNS, the beacon, peers met before), with their addresses. While the active view has fewer
//!   than [`Config::active_target`] peers (dials in flight count for [`DIAL_PENDING_MS`]), the
//!   node dials passive entries it is not connected to, in random order; each entry waits
//!   between its own dials at least [`DIAL_PENDING_MS`] (the driver retries a dial meanwhile),
//!   then doubling up to [`PASSIVE_RETRY_MAX_MS`]; back to the minimum once connected, and a
//!   peer whose connection ended may be dialed again after [`PASSIVE_RETRY_MIN_MS`]. Peer exchange ([`super::exchange`]) fills what the
//!   passive list cannot from the neighbour lists.
//! - **Accept limit**: a connection is never refused for the view (a newcomer must not be left
//!   isolated). When the active view grows past [`Config::active_max`], the node closes a
//!   random other active peer ([`Output::Disconnect`]), HyParView's JOIN/DISCONNECT: it
//!   prefers peers with no catch-up exchange open and no replies queued; if every candidate is
//!   busy it waits for the next housekeeping tick and then closes one anyway, so the view is
//!   bounded. The peer it closed repairs its own view from its passive list.
//! - **Repair**: a dropped connection leaves a gap below the target, filled from the passive
//!   list at once (the lost peer itself after [`PASSIVE_RETRY_MIN_MS`], if chosen again).
//! - **Bridging**: views at their target can close into separate groups (six nodes with a
//!   target of 2 as two triangles; two shelters whose networks are joined later, each already
//!   content). The signed neighbour lists tell: a passive entry heard for [`BRIDGE_AFTER_MS`]
//!   that the network graph does not reach is in another group. At each housekeeping tick,
//!   below [`Config::active_max`](super::Config), the node dials one such entry (random, with
//!   the entry's own backoff) even with a full view; one link joins the groups, their
//!   neighbour lists then reach each other and the dials stop.
//!
//! A network of at most `active_target + 1` nodes is a full mesh, exactly as without a view.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Output, Protocol};
use crate::message::NodeId;
use crate::rng::Rng;

/// Active peers a node dials up to (default [`Config::active_target`](super::Config)):
/// log2(100) + 1 ≈ 8 for a hub of a hundred laptops, between iroh-gossip's 5 and gossipsub's
/// upper mesh degree of 12.
pub const ACTIVE_TARGET: usize = 8;
/// Active peers past which the node closes one (default
/// [`Config::active_max`](super::Config)): room for four newcomers above the target before
/// anyone is dropped, so a node that joins is always accepted.
pub const ACTIVE_MAX: usize = 12;
/// Nodes remembered in the passive list: eight times the target, enough to repair the view
/// many times over, small enough to cost nothing (a few KB).
pub const PASSIVE_CAP: usize = 64;
/// A passive entry is dialed again at the earliest this long after its last dial or after its
/// connection ended, ms (as the network driver's first backoff).
pub const PASSIVE_RETRY_MIN_MS: u64 = 500;
/// Longest wait between two dials of one passive entry, ms (as the driver's longest backoff).
pub const PASSIVE_RETRY_MAX_MS: u64 = 30_000;
/// A dial counts as in flight for this long (the driver's handshake timeout plus margin): the
/// node does not dial more peers than it lacks while answers are pending, ms.
pub const DIAL_PENDING_MS: u64 = 8_000;
/// A node with the higher id waits this long before its first dial of a node just heard of,
/// so that two nodes hearing each other at once rarely dial each other both, ms.
pub const FIRST_DIAL_DELAY_MS: u64 = 1_500;
/// A passive entry not heard of for this long may be replaced by a newly heard node, ms.
pub const PASSIVE_STALE_MS: u64 = 10 * 60 * 1000;
/// Pinned peers remembered at most (relays and static peers: a handful in practice).
pub const MAX_PINNED: usize = 64;
/// A passive entry the network graph does not reach is dialed across a full view
/// ("bridging") once it has been heard of this long, ms: long enough for a newcomer's
/// neighbour list to reach us through the overlay (it signs one at once and peers pass it on
/// within a few seconds), so only real splits cost an extra connection.
pub const BRIDGE_AFTER_MS: u64 = 20_000;
/// Addresses kept per passive entry.
const PASSIVE_ADDRS: usize = 4;

/// A node of the passive list.
#[derive(Debug, Clone)]
struct Passive {
    addrs: Vec<SocketAddr>,
    /// Last time discovery mentioned it, ms.
    heard: u64,
    /// When discovery first mentioned it (since it was last in the list), ms.
    first: u64,
    /// Earliest next dial, ms.
    next: u64,
    /// Wait after the next dial, ms.
    backoff: u64,
    /// When it was last dialed (`None`: not since it was last connected).
    dialed: Option<u64>,
    /// A connection to it was up at least once.
    verified: bool,
}

/// View state.
#[derive(Debug, Default)]
pub(super) struct View {
    passive: BTreeMap<NodeId, Passive>,
    pinned: std::collections::BTreeSet<NodeId>,
    /// Random choices (seeded from the node id).
    rng: Rng,
}

impl View {
    pub(super) fn seeded(me: &NodeId) -> Self {
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&me.0[..8]);
        View {
            rng: Rng::new(u64::from_le_bytes(seed)),
            ..View::default()
        }
    }

    /// A uniformly random element of `v` (removed), `None` if empty.
    fn pick<T>(&mut self, v: &mut Vec<T>) -> Option<T> {
        if v.is_empty() {
            return None;
        }
        let i = self.rng.below(v.len() as u64) as usize;
        Some(v.swap_remove(i))
    }
}

impl Protocol {
    /// Marks `peer` as pinned (a relay, or an address the user gave) or not: a pinned peer is
    /// never closed for the view and does not count in it. At most [`MAX_PINNED`]; returns
    /// false when that many are pinned and `peer` is not one of them.
    pub fn set_pinned(&mut self, peer: NodeId, pinned: bool) -> bool {
        let set = &mut self.view.pinned;
        if !pinned {
            set.remove(&peer);
            return true;
        }
        if !set.contains(&peer) && set.len() >= MAX_PINNED {
            return false;
        }
        set.insert(peer);
        true
    }

    /// Peers counted in the active view: connected, not pinned, not being closed.
    pub fn active_view(&self) -> Vec<NodeId> {
        self.peers
            .iter()
            .filter(|(id, p)| !p.closing && !self.view.pinned.contains(*id))
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many peers [`Protocol::active_view`] lists (without building the list).
    pub(super) fn active_len(&self) -> usize {
        self.peers
            .iter()
            .filter(|(id, p)| !p.closing && !self.view.pinned.contains(*id))
            .count()
    }

    /// Nodes in the passive list (connected or not).
    pub fn passive_len(&self) -> usize {
        self.view.passive.len()
    }

    /// Discovery heard of `node` at `addrs`: remember it in the passive list.
    pub(super) fn on_discovered(&mut self, node: NodeId, addrs: Vec<SocketAddr>) {
        if node == self.me || addrs.is_empty() {
            return;
        }
        let now = self.now;
        if let Some(e) = self.view.passive.get_mut(&node) {
            e.heard = now;
            let fresh = addrs.iter().any(|a| !e.addrs.contains(a));
            let mut merged = addrs;
            for a in &e.addrs {
                if !merged.contains(a) {
                    merged.push(*a);
                }
            }
            merged.truncate(PASSIVE_ADDRS);
            e.addrs = merged;
            // Only a new address is worth an early dial (discovery repeats itself).
            if fresh {
                e.next = e.next.min(now);
                e.backoff = PASSIVE_RETRY_MIN_MS;
            }
            return;
        }
        if self.view.passive.len() >= PASSIVE_CAP && !self.make_passive_room() {
            return;
        }
        let first = if self.me > node {
            now + FIRST_DIAL_DELAY_MS
        } else {
            now
        };
        let mut addrs = addrs;
        addrs.truncate(PASSIVE_ADDRS);
        self.view.passive.insert(
            node,
            Passive {
                addrs,
                heard: now,
                first: now,
                next: first,
                backoff: PASSIVE_RETRY_MIN_MS,
                dialed: None,
                verified: false,
            },
        );
    }

    /// Frees one passive place: the entry not connected, never verified and heard of longest
    /// ago, or any unconnected one not heard of for [`PASSIVE_STALE_MS`]. False if none can go.
    fn make_passive_room(&mut self) -> bool {
        let now = self.now;
        let victim = self
            .view
            .passive
            .iter()
            .filter(|(id, e)| {
                !self.peers.contains_key(*id)
                    && (!e.verified || now.saturating_sub(e.heard) >= PASSIVE_STALE_MS)
            })
            .min_by_key(|(_, e)| (e.verified, e.heard))
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.view.passive.remove(&id);
                true
            }
            None => false,
        }
    }

    /// A connection to `peer` is up: its passive entry is verified and its backoff reset; the
    /// view is trimmed if over its limit (never closing the newcomer itself).
    pub(super) fn view_connected(&mut self, peer: NodeId, out: &mut Vec<Output>) {
        if let Some(e) = self.view.passive.get_mut(&peer) {
            e.verified = true;
            e.backoff = PASSIVE_RETRY_MIN_MS;
            e.dialed = None;
        }
        self.trim_view(Some(peer), false, out);
    }

    /// The connection to `peer` ended: it may be dialed again after [`PASSIVE_RETRY_MIN_MS`].
    pub(super) fn view_disconnected(&mut self, peer: NodeId) {
        let now = self.now;
        if let Some(e) = self.view.passive.get_mut(&peer) {
            e.next = e.next.max(now + PASSIVE_RETRY_MIN_MS);
            e.dialed = None;
        }
    }

    /// Closes random active peers (never `keep`) while the view is over
    /// [`Config::active_max`](super::Config): idle ones first; busy ones (a catch-up exchange
    /// open, replies queued) only when `force` (the housekeeping tick).
    pub(super) fn trim_view(&mut self, keep: Option<NodeId>, force: bool, out: &mut Vec<Output>) {
        let max = self.config.active_max;
        let mut active = self.active_view();
        while active.len() > max {
            let now = self.now;
            let mut idle: Vec<NodeId> = Vec::new();
            let mut busy: Vec<NodeId> = Vec::new();
            for id in &active {
                if Some(*id) == keep {
                    continue;
                }
                let Some(p) = self.peers.get(id) else {
                    continue;
                };
                let working = !p.replies.is_empty()
                    || !p.urgent_replies.is_empty()
                    || p.exchanges.values().any(|x| x.open(now));
                if working {
                    busy.push(*id);
                } else {
                    idle.push(*id);
                }
            }
            let victim = match self.view.pick(&mut idle) {
                Some(v) => v,
                None if force => match self.view.pick(&mut busy) {
                    Some(v) => v,
                    None => return,
                },
                None => return,
            };
            if let Some(p) = self.peers.get_mut(&victim) {
                p.closing = true;
            }
            active.retain(|id| *id != victim);
            out.push(Output::Disconnect { peer: victim });
        }
    }

    /// Bridging (module docs): at a housekeeping tick, below the accept limit, dials one
    /// passive entry heard for [`BRIDGE_AFTER_MS`] that the network graph does not reach.
    /// Nothing while this node's own neighbour list is not in its graph (no map to judge by).
    pub(super) fn view_bridge(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        if self.active_len() >= self.config.active_max || self.graph.record(&self.me).is_none() {
            return;
        }
        let reach = self.graph.hops_from(&self.me);
        let mut apart: Vec<NodeId> = self
            .view
            .passive
            .iter()
            .filter(|(id, e)| {
                !self.peers.contains_key(*id)
                    && !reach.contains_key(*id)
                    && e.next <= now
                    && now.saturating_sub(e.first) >= BRIDGE_AFTER_MS
            })
            .map(|(id, _)| *id)
            .collect();
        if let Some(node) = self.view.pick(&mut apart) {
            self.dial_passive(node, out);
        }
    }

    /// Dials passive entry `node` and schedules its next possible dial.
    fn dial_passive(&mut self, node: NodeId, out: &mut Vec<Output>) {
        let now = self.now;
        let Some(e) = self.view.passive.get_mut(&node) else {
            return;
        };
        e.dialed = Some(now);
        // Not again while this dial may still succeed (the driver retries it meanwhile).
        e.next = now + e.backoff.max(DIAL_PENDING_MS);
        e.backoff = e
            .backoff
            .saturating_mul(2)
            .clamp(PASSIVE_RETRY_MIN_MS, PASSIVE_RETRY_MAX_MS);
        out.push(Output::Dial {
            node,
            addrs: e.addrs.clone(),
        });
    }

    /// When a passive entry is next due for a dial the view needs (`None`: the view has what
    /// it wants, or nothing to dial).
    pub(super) fn view_next_dial(&self) -> Option<u64> {
        let now = self.now;
        let mut pending = 0;
        let mut next: Option<u64> = None;
        for (id, e) in &self.view.passive {
            if self.peers.contains_key(id) {
                continue;
            }
            if e.dialed
                .is_some_and(|t| now.saturating_sub(t) < DIAL_PENDING_MS)
            {
                pending += 1;
            }
            next = Some(next.map_or(e.next, |n| n.min(e.next)));
        }
        if self.active_len() + pending >= self.config.active_target {
            return None;
        }
        next.map(|n| n.max(now))
    }

    /// Dials passive entries while the active view (plus dials in flight) is below
    /// [`Config::active_target`](super::Config). Returns how many dials are in flight.
    pub(super) fn view_dial(&mut self, out: &mut Vec<Output>) -> usize {
        let now = self.now;
        let pending = self
            .view
            .passive
            .iter()
            .filter(|(id, e)| {
                !self.peers.contains_key(*id)
                    && e.dialed
                        .is_some_and(|t| now.saturating_sub(t) < DIAL_PENDING_MS)
            })
            .count();
        let have = self.active_len() + pending;
        let mut free = self.config.active_target.saturating_sub(have);
        if free == 0 {
            return pending;
        }
        let mut due: Vec<NodeId> = self
            .view
            .passive
            .iter()
            .filter(|(id, e)| e.next <= now && !self.peers.contains_key(*id))
            .map(|(id, _)| *id)
            .collect();
        let mut dialed = 0;
        while free > 0 {
            let Some(node) = self.view.pick(&mut due) else {
                break;
            };
            self.dial_passive(node, out);
            free -= 1;
            dialed += 1;
        }
        pending + dialed
    }
}
