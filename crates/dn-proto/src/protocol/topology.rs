//! Admission of neighbour lists: a Sybil with thousands of fresh keys must not fill, flood or
//! slow down the network graph.
//!
//! A received [`TopoRecord`] is taken in only if, in this order (cheap checks before the
//! signature):
//!
//! 1. it is newer than the record held for its node (else ignored: the normal end of a flood);
//! 2. the held record of that node is at least [`TOPO_MIN_GAP_MS`] old, or at least
//!    [`TOPO_FAST_MIN_MS`] old and one of the node's [`TOPO_FAST_RECORDS`] early records per
//!    [`TOPO_FAST_WINDOW_MS`] (else held back, and `too_soon` when superseded; a held-back
//!    record is taken as soon as this allows, the node waking for it: a list that came 0.3 s
//!    after the one before, say because a Hello batch brought that one late, once waited for
//!    the gap and the next 5 s tick, ≈ 10 s, and kept a node off everyone's map that long):
//!    a node re-signs on connection changes (a few times quickly while its view forms) and at
//!    its refresh, so one record per 5 s per node is plenty;
//! 3. for a node we hold no record of, the sending peer still has budget for new nodes: a
//!    bucket of [`TOPO_NEW_ORIGINS_BURST`] refilled at [`TOPO_NEW_ORIGINS_PER_MIN`] per peer
//!    (else dropped, `peer_rate`);
//! 4. its signature verifies (else rejected as invalid);
//! 5. while [`MAX_TOPO_RECORDS`] are held, a record of a new node is taken only if the node is
//!    near: a connected peer, or confirmed as a neighbour by a node at most
//!    [`TOPO_NEAR_HOPS`]` - 1` hops from us. It then replaces the farthest record (unreachable
//!    first, then most hops, then least recently received); ourselves and connected peers are
//!    never replaced. Else dropped, `full`.
//!
//! What is taken in is flooded on, so what leaves a node is bounded by the same rates. A
//! newcomer's `Hello` is answered with at most [`TOPO_HELLO_MAX`] records, nearest first; the
//! rest reaches it as records refresh.

use super::budget::TokenBucket;
use super::{Frame, Output, Protocol};
use crate::message::NodeId;
use crate::topo::TopoRecord;

/// Most neighbour lists held. A disaster-area mesh has hundreds of nodes; beyond 1,024 the
/// graph is no longer useful for routing decisions of one node anyway, and BFS over it stays
/// well under a millisecond.
pub const MAX_TOPO_RECORDS: usize = 1_024;
/// A new record of a node is taken at most this often, ms.
pub const TOPO_MIN_GAP_MS: u64 = 5_000;
/// Records of nodes new to us that one peer may deliver per minute after the burst.
pub const TOPO_NEW_ORIGINS_PER_MIN: u64 = 128;
/// Records of nodes new to us that one peer may deliver at once: twice a `Hello` batch, so
/// joining a big network is not slowed; the rest comes in with the next refreshes.
pub const TOPO_NEW_ORIGINS_BURST: u64 = 2 * TOPO_HELLO_MAX as u64;
/// A newcomer is sent at most this many records on `Hello`, nearest first.
pub const TOPO_HELLO_MAX: usize = 256;
/// Over [`MAX_TOPO_RECORDS`], a new node is still taken in if it is at most this many hops
/// from us (a peer's peer).
pub const TOPO_NEAR_HOPS: u32 = 2;
/// Peers whose new-node buckets are remembered; when full, only connected peers' are kept.
const TOPO_BUCKETS_CAP: usize = 1_024;
/// This node's own neighbour list is re-signed this long after the previous one once its
/// connections changed: peers take a node's lists at most every [`TOPO_MIN_GAP_MS`] (a sooner
/// one waits), plus a margin for clocks and transit.
pub const OWN_TOPO_GAP_MS: u64 = TOPO_MIN_GAP_MS + 500;
/// While its view forms, a node's connections change several times within seconds, and with
/// one list per [`TOPO_MIN_GAP_MS`] a hub of a hundred took ≈ 11 s until every node mapped
/// every other. So a node's first this many lists after its first are signed only
/// [`OWN_TOPO_FAST_GAP_MS`] apart, and a receiver takes this many of one node sooner than the
/// gap (at least [`TOPO_FAST_MIN_MS`] apart) per [`TOPO_FAST_WINDOW_MS`]: a hostile node gains
/// two records a minute.
pub const TOPO_FAST_RECORDS: u32 = 2;
/// Gap between a node's own first lists, ms.
pub const OWN_TOPO_FAST_GAP_MS: u64 = 1_500;
/// The shortest gap a receiver takes early, ms (the fast gap less a margin for transit).
pub const TOPO_FAST_MIN_MS: u64 = 1_000;
/// The window of [`TOPO_FAST_RECORDS`] early records per node at a receiver, ms.
pub const TOPO_FAST_WINDOW_MS: u64 = 60_000;

/// When this node's own neighbour list is due for signing ([`Output::SignNeighbours`]).
#[derive(Debug, Default)]
pub(super) struct OwnTopo {
    /// When it was last asked for (`None`: never).
    last: Option<u64>,
    /// Connections changed since.
    dirty: bool,
    /// Lists signed since start.
    signed: u32,
}

/// Neighbour lists not taken in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TopoDrops {
    /// A newer record of the same node came sooner than [`TOPO_MIN_GAP_MS`].
    pub too_soon: u64,
    /// The sending peer is over its rate of records of new nodes.
    pub peer_rate: u64,
    /// The graph is full and the node is not near.
    pub full: u64,
}

/// State of the topology admission.
#[derive(Debug, Default)]
pub(super) struct TopoGuard {
    buckets: std::collections::HashMap<NodeId, TokenBucket>,
    /// The newest record of a node that came sooner than [`TOPO_MIN_GAP_MS`] after the one
    /// held, with the peer it came from: applied once the gap has passed (on `Tick`), so rate
    /// limiting delays a node's latest neighbour list but never loses it. At most one per node
    /// already in the graph, so bounded by [`MAX_TOPO_RECORDS`].
    pending: std::collections::HashMap<NodeId, (TopoRecord, NodeId)>,
    /// Per node: (start of its [`TOPO_FAST_WINDOW_MS`], early records taken in it). Only nodes
    /// in the graph get an entry; pruned to them when it reaches [`MAX_TOPO_RECORDS`].
    fast: std::collections::HashMap<NodeId, (u64, u32)>,
    pub(super) drops: TopoDrops,
}

impl Protocol {
    /// Neighbour lists dropped by the topology caps.
    pub fn topo_drops(&self) -> TopoDrops {
        self.topo_guard.drops
    }

    /// A `Topo` frame from `peer` (module docs).
    pub(super) fn on_topo(&mut self, peer: NodeId, rec: TopoRecord, out: &mut Vec<Output>) {
        if rec.node == self.me {
            return;
        }
        let held = self.graph.record(&rec.node).map(|r| r.seq);
        if held.is_some_and(|seq| seq >= rec.seq) {
            return;
        }
        // An early record (module docs, 2.) spends its node's allowance only once its
        // signature verified: forgeries cannot use up a real node's early lists.
        let mut early = false;
        if held.is_some() {
            let at = self.graph.received_at(&rec.node).unwrap_or(0);
            early = self.now.saturating_sub(at) < TOPO_MIN_GAP_MS;
            if early && !self.early_left(&rec.node, at) {
                // Held back, not lost. Only a record superseded while waiting (its node signs
                // faster than the gap: an honest node never does) counts as dropped.
                let pending = &mut self.topo_guard.pending;
                match pending.get(&rec.node) {
                    Some((p, _)) if p.seq >= rec.seq => {}
                    Some(_) => {
                        self.topo_guard.drops.too_soon += 1;
                        pending.insert(rec.node, (rec, peer));
                    }
                    None => {
                        pending.insert(rec.node, (rec, peer));
                    }
                }
                return;
            }
        } else if !self.take_new_origin(peer) {
            self.topo_guard.drops.peer_rate += 1;
            return;
        }
        if let Err(reason) = rec.verify() {
            self.counters.rejected += 1;
            out.push(Output::Rejected { peer, reason });
            return;
        }
        if early {
            if let Some(e) = self.topo_guard.fast.get_mut(&rec.node) {
                e.1 += 1;
            }
        }
        if held.is_none() && self.graph.len() >= MAX_TOPO_RECORDS && !self.make_room_for(&rec) {
            self.topo_guard.drops.full += 1;
            return;
        }
        // Newer than what is held (checked above), so the update always takes.
        self.flood_topology(&rec, Some(peer), out);
        if self.graph.update(rec, self.now) {
            out.push(Output::TopologyChanged);
        }
    }

    /// Notes that this node's connections (or a peer's listen port) changed.
    pub(super) fn own_topo_changed(&mut self) {
        self.own_topo.dirty = true;
    }

    /// When this node's neighbour list is next due: at once if never signed,
    /// [`OWN_TOPO_GAP_MS`] after the last one if connections changed
    /// ([`OWN_TOPO_FAST_GAP_MS`] for the first [`TOPO_FAST_RECORDS`] after the first), else at
    /// the refresh
    /// ([`Protocol::own_topo_refresh_ms`]).
    pub(super) fn own_topo_due(&self) -> u64 {
        match self.own_topo.last {
            None => self.now,
            Some(t) if self.own_topo.dirty && self.own_topo.signed <= TOPO_FAST_RECORDS => {
                t + OWN_TOPO_FAST_GAP_MS
            }
            Some(t) if self.own_topo.dirty => t + OWN_TOPO_GAP_MS,
            Some(t) => t + self.own_topo_refresh_ms(),
        }
    }

    /// This node's refresh period: [`TOPO_REFRESH_PER_NODE_MS`](super::TOPO_REFRESH_PER_NODE_MS)
    /// × the nodes in its graph, between [`TOPO_REFRESH_MS`](super::TOPO_REFRESH_MS) and
    /// [`TOPO_REFRESH_MAX_MS`](super::TOPO_REFRESH_MAX_MS), times (0.75 + the id's first two
    /// bytes ÷ 131,072). The factor is fixed per node: nodes that started together (a hub
    /// powered up at once) would otherwise refresh together, in one network-wide burst.
    pub(super) fn own_topo_refresh_ms(&self) -> u64 {
        let nodes = u64::try_from(self.graph.len()).unwrap_or(u64::MAX);
        let base = super::TOPO_REFRESH_PER_NODE_MS
            .saturating_mul(nodes)
            .clamp(super::TOPO_REFRESH_MS, super::TOPO_REFRESH_MAX_MS);
        let r = u64::from(u16::from_be_bytes([self.me.0[0], self.me.0[1]]));
        base * 3 / 4 + r * (base / 2) / 65_536
    }

    /// Asks the driver for a freshly signed neighbour list when it is due.
    pub(super) fn sign_own_topo_if_due(&mut self, out: &mut Vec<Output>) {
        if self.own_topo_due() <= self.now {
            self.own_topo = OwnTopo {
                last: Some(self.now),
                dirty: false,
                signed: self.own_topo.signed.saturating_add(1),
            };
            out.push(Output::SignNeighbours);
        }
    }

    /// Takes the held-back records whose time has come ([`Protocol::pending_due`]): at every
    /// tick, and whenever [`Protocol::topo_next_due`] is reached.
    pub(super) fn topo_tick(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let mut due: Vec<NodeId> = self
            .topo_guard
            .pending
            .keys()
            .filter(|id| self.pending_due(id) <= now)
            .copied()
            .collect();
        // In id order, not the map's: what is flooded first must not depend on a hash seed
        // (the simulator replays a seed exactly).
        due.sort();
        for id in due {
            if let Some((rec, from)) = self.topo_guard.pending.remove(&id) {
                if self.graph.record(&id).is_some() {
                    self.on_topo(from, rec, out);
                }
            }
        }
    }

    /// When the held-back record of `node` may be taken: [`TOPO_FAST_MIN_MS`] after the held
    /// one while the node has early records left ([`Protocol::early_available`]), else
    /// [`TOPO_MIN_GAP_MS`] after it.
    fn pending_due(&self, node: &NodeId) -> u64 {
        let Some(at) = self.graph.received_at(node) else {
            return self.now;
        };
        at + if self.early_available(node) {
            TOPO_FAST_MIN_MS
        } else {
            TOPO_MIN_GAP_MS
        }
    }

    /// Whether `node` has an early record left in its [`TOPO_FAST_WINDOW_MS`] window (a node
    /// without an entry starts a fresh window, if the table has room). Spends nothing.
    fn early_available(&self, node: &NodeId) -> bool {
        let fast = &self.topo_guard.fast;
        match fast.get(node) {
            None => fast.len() < MAX_TOPO_RECORDS,
            Some((start, n)) => {
                self.now.saturating_sub(*start) >= TOPO_FAST_WINDOW_MS || *n < TOPO_FAST_RECORDS
            }
        }
    }

    /// The earliest time a held-back record may be taken ([`Protocol::poll_timeout`] wakes
    /// the node then: a node's quick first lists are not left waiting for the next tick).
    pub(super) fn topo_next_due(&self) -> Option<u64> {
        self.topo_guard
            .pending
            .keys()
            .map(|id| self.pending_due(id))
            .min()
    }

    /// Whether a record of `node` sooner than [`TOPO_MIN_GAP_MS`] after the held one (received
    /// at `at`) may be taken now as one of its early records (spent once it verified).
    fn early_left(&mut self, node: &NodeId, at: u64) -> bool {
        let now = self.now;
        if now.saturating_sub(at) < TOPO_FAST_MIN_MS {
            return false;
        }
        let fast = &mut self.topo_guard.fast;
        if !fast.contains_key(node) && fast.len() >= MAX_TOPO_RECORDS {
            let graph = &self.graph;
            fast.retain(|id, _| graph.record(id).is_some());
        }
        if !self.early_available(node) {
            return false;
        }
        let e = self.topo_guard.fast.entry(*node).or_insert((now, 0));
        if now.saturating_sub(e.0) >= TOPO_FAST_WINDOW_MS {
            *e = (now, 0);
        }
        true
    }

    fn take_new_origin(&mut self, peer: NodeId) -> bool {
        let now = self.now;
        let buckets = &mut self.topo_guard.buckets;
        if !buckets.contains_key(&peer) && buckets.len() >= TOPO_BUCKETS_CAP {
            let peers = &self.peers;
            buckets.retain(|id, _| peers.contains_key(id));
        }
        buckets
            .entry(peer)
            .or_insert_with(|| {
                TokenBucket::per_minute(TOPO_NEW_ORIGINS_BURST, TOPO_NEW_ORIGINS_PER_MIN)
            })
            .take(now)
    }

    fn is_direct(&self, id: &NodeId) -> bool {
        self.peers.get(id).is_some_and(|p| p.hello)
    }

    /// The graph is full: frees a place for `rec` if its node is near and a farther record
    /// can go. True if `rec` may be stored.
    fn make_room_for(&mut self, rec: &TopoRecord) -> bool {
        let me = self.me;
        let direct = self.is_direct(&rec.node);
        let near = direct
            || rec.neighbours.iter().any(|n| {
                self.graph
                    .hops(&me, &n.id)
                    .is_some_and(|h| h < TOPO_NEAR_HOPS)
                    && self
                        .graph
                        .record(&n.id)
                        .is_some_and(|r| r.neighbours.iter().any(|m| m.id == rec.node))
            });
        if !near {
            return false;
        }
        // The farthest record that is neither ours nor a connected peer's.
        let victim = self
            .graph
            .records()
            .map(|r| r.node)
            .filter(|id| *id != me && !self.is_direct(id))
            .map(|id| {
                let hops = self.graph.hops(&me, &id).unwrap_or(u32::MAX);
                let at = self.graph.received_at(&id).unwrap_or(0);
                (hops, std::cmp::Reverse(at), id)
            })
            .max();
        match victim {
            Some((hops, _, id)) if hops > TOPO_NEAR_HOPS => self.graph.remove(&id),
            // Everything held is near: a direct peer still gets in (bounded by connections).
            _ => direct,
        }
    }

    /// The records a newcomer gets on `Hello`: at most [`TOPO_HELLO_MAX`], nearest first.
    pub(super) fn hello_records(&self) -> Vec<TopoRecord> {
        let hops = self.graph.hops_from(&self.me);
        let mut recs: Vec<(u32, &TopoRecord)> = self
            .graph
            .records()
            .map(|r| (hops.get(&r.node).copied().unwrap_or(u32::MAX), r))
            .collect();
        recs.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.node.cmp(&b.1.node)));
        recs.into_iter()
            .take(TOPO_HELLO_MAX)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// A `Topo` frame for every record in `recs` to `peer`.
    pub(super) fn send_records(peer: NodeId, recs: Vec<TopoRecord>, out: &mut Vec<Output>) {
        for r in recs {
            out.push(Output::Send {
                peer,
                frame: Frame::Topo(r),
            });
        }
    }
}

impl Protocol {
    /// Sends a (new) neighbour list to every peer but the one it came from.
    pub(super) fn flood_topology(
        &self,
        rec: &TopoRecord,
        from: Option<NodeId>,
        out: &mut Vec<Output>,
    ) {
        for (pid, p) in &self.peers {
            if p.hello && Some(*pid) != from {
                out.push(Output::Send {
                    peer: *pid,
                    frame: Frame::Topo(rec.clone()),
                });
            }
        }
    }
}
