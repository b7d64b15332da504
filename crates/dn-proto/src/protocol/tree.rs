//! Tree propagation: eager push, lazy `IHave` announcements, prune, graft repairs of missed
//! deliveries, the paced reply queue, and taking in a received message.
//!
//! Two trees carry a message eagerly, the rest of the links get `IHave`:
//! - **the author's source tree** when the network graph holds the author
//!   ([`Config::source_trees`]): every node computes, from the same signed neighbour lists,
//!   the fastest-path tree from the author (links weighted by their round-trip times) and
//!   pushes to its own children in it. With changing senders each message takes its author's
//!   fastest paths, which no single shared tree can offer, at one copy per node. A
//!   duplicate from the node's parent in that tree prunes nothing (the push ignores the
//!   shared tree's state), and swaps do not apply: the tree follows the graph, not the
//!   traffic.
//!   Where a child cannot be served (not connected: the lists are behind; or not in the
//!   room), the node sends the message to those of its peers that sit below that child in
//!   the tree, so the orphaned subtree does not wait for announcements and grafts.
//! - **the shared PlumTree tree** (per room: eager links, pruned to lazy on duplicates,
//!   grafted back on repairs, swapped toward faster announcers) for authors the graph does
//!   not hold.
//!
//! Computing a source tree costs a Dijkstra over the graph, and the graph is what other nodes
//! say it is: sybils within the list caps can give it ≈ 65 k links, and messages from
//! rotating authors would ask for a new tree each. So the work is paid from a per-node
//! budget ([`TREE_WORK_PER_MIN`], [`TREE_WORK_BURST`]) before a tree is computed; a cached
//! tree is free. Past the budget a message follows the shared tree, which delivers it too,
//! and is counted ([`Counters::tree_over_budget`]).

use super::budget::TokenBucket;
use super::*;

/// Source-tree work ([`crate::topo::Graph::source_tree_work`]: entries visited) this node does
/// per minute after the burst: 200 k a second. An entry costs about 0.15 µs on the 2-core test
/// machine (a Dijkstra over ≈ 70 k links and 65 k nodes took 20 ms), so at most ≈ 3 % of a
/// core goes to trees whatever the graph holds. An honest network stays far below it: a
/// tree over 100 laptops with 10 links each is ≈ 2 k entries (a hundred new authors a second
/// fit), over 1,000 nodes ≈ 21 k (ten a second), and a tree is computed once per author until
/// the graph changes.
pub const TREE_WORK_PER_MIN: u64 = 12_000_000;
/// Source-tree work available at once: more than twice the costliest tree the caps allow
/// (1,024 records of 128 neighbours: ≈ 400 k entries with the adjacency built first, see
/// [`crate::topo::Graph::source_tree_work`]), so any one tree fits a full bucket, and a burst
/// of about 55 new authors in a 1,000-node network is served at once. Spent in one go it
/// holds the node for ≈ 0.2 s.
pub const TREE_WORK_BURST: u64 = 1_200_000;

/// A new per-node source-tree budget ([`TREE_WORK_BURST`], [`TREE_WORK_PER_MIN`]).
pub(super) fn tree_budget() -> TokenBucket {
    TokenBucket::per_minute(TREE_WORK_BURST, TREE_WORK_PER_MIN)
}

impl Protocol {
    /// Sends queued replies as `Msg`, prioritised urgent ones first, then oldest first, while
    /// each peer's window allows.
    pub(super) fn pump_replies(&mut self, store: &mut dyn Storage, out: &mut Vec<Output>) {
        let waiting: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.replies.is_empty() || !p.urgent_replies.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for peer in waiting {
            while let Some(p) = self.peers.get(&peer) {
                if p.in_flight > 0 && p.in_flight + MAX_WIRE_FRAME > REPLY_WINDOW_BYTES {
                    break;
                }
                let urgent = !p.urgent_replies.is_empty();
                let next = if urgent {
                    p.urgent_replies.front()
                } else {
                    p.replies.front()
                };
                let Some(id) = next.copied() else {
                    break;
                };
                let msg = store.get(&id);
                let sendable = match &msg {
                    Ok(Some(m)) => {
                        self.member(&m.room)
                            && p.shares(&m.room)
                            && !self.blocked.contains(&m.author)
                    }
                    _ => false,
                };
                let Some(p) = self.peers.get_mut(&peer) else {
                    break;
                };
                if urgent {
                    p.urgent_replies.pop_front();
                } else {
                    p.replies.pop_front();
                }
                p.queued.remove(&id);
                match msg {
                    Ok(Some(message)) if sendable => {
                        p.learn(id);
                        let frame = Frame::Msg {
                            hops: DEFAULT_HOPS,
                            message,
                        };
                        p.in_flight = p.in_flight.saturating_add(wire_len(&frame));
                        if let Frame::Msg { message, .. } = &frame {
                            if message.author == self.me {
                                p.sent_own(id);
                            }
                        }
                        self.counters.sent += 1;
                        out.push(Output::Send { peer, frame });
                    }
                    Ok(_) => {}
                    Err(e) => out.push(Output::StorageFailed(e)),
                }
            }
        }
    }

    /// An `IHave`: learn what the peer holds, await what we lack, report acknowledgements of
    /// our own messages we sent it.
    pub(super) fn on_ihave(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        room: &str,
        ids: Vec<MessageId>,
        out: &mut Vec<Output>,
    ) {
        if !self.shared(peer, room) {
            self.drop_frame(peer, DropReason::UnknownRoom, out);
            return;
        }
        let ids = self.budgeted_ids(peer, Budget::IHave, ids, out);
        let mut acked = Vec::new();
        let mut full = false;
        for id in ids {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.learn(id);
                if p.sent_own_set.remove(&id) {
                    acked.push(id);
                }
            }
            match store.has(&id) {
                Ok(true) => {}
                Ok(false) => full |= !self.await_missing(id, room, peer, out),
                Err(e) => out.push(Output::StorageFailed(e)),
            }
        }
        if full {
            self.drop_frame(peer, DropReason::PendingRepairsFull, out);
        }
        if !acked.is_empty() {
            out.push(Output::Acked { peer, ids: acked });
        }
    }

    pub(super) fn set_lazy(&mut self, peer: NodeId, room: &str, lazy: bool) {
        if let Some(p) = self.peers.get_mut(&peer) {
            if lazy {
                // Bounded by the peer's announced rooms.
                if p.shares(room) {
                    p.lazy.insert(room.to_string());
                }
            } else {
                p.lazy.remove(room);
            }
        }
    }

    /// Awaits a message `peer` announced; false if the pending-repair table refused it.
    pub(super) fn await_missing(
        &mut self,
        id: MessageId,
        room: &str,
        peer: NodeId,
        out: &mut Vec<Output>,
    ) -> bool {
        let _ = out;
        match self.missing.announce(
            id,
            room,
            peer,
            self.now,
            self.now + self.config.ihave_timeout_ms,
        ) {
            pending::Announced::New => true,
            pending::Announced::Known => true,
            pending::Announced::Full => false,
        }
    }

    pub(super) fn on_missing_timer(
        &mut self,
        store: &mut dyn Storage,
        id: MessageId,
        out: &mut Vec<Output>,
    ) {
        if matches!(store.has(&id), Ok(true)) {
            self.missing.remove(&id);
            return;
        }
        let Some(m) = self.missing.get_mut(&id) else {
            return;
        };
        while let Some(peer) = m.announcers.pop_front() {
            if self.peers.get(&peer).is_some_and(|p| p.hello) {
                m.grafted = true;
                let room = m.room.clone();
                self.counters.grafts += 1;
                self.set_lazy(peer, &room, false);
                out.push(Output::Send {
                    peer,
                    frame: Frame::Graft {
                        room,
                        ids: vec![id],
                    },
                });
                let due = self.now + self.config.graft_retry_ms;
                self.missing.set_due(&id, due);
                return;
            }
        }
        self.missing.remove(&id);
    }

    pub(super) fn on_message(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        hops: u8,
        msg: Message,
        out: &mut Vec<Output>,
    ) {
        let id = msg.id();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.learn(id);
        }
        if self.blocked.contains(&msg.author) {
            // Blocked here: not stored, so not relayed or carried either. Not "rejected": the
            // peer did nothing wrong by passing it on.
            self.blocked_drops += 1;
            return;
        }
        // The cheap checks first (room, duplicates, DM envelope, quotas, the relaying peer's
        // budget: none of them trusts the unverified fields beyond reading), so a flood that
        // the quotas refuse costs no signature check. Nothing is recorded for the author
        // before the signature has been verified and the message stored.
        if !self.member(&msg.room) {
            self.counters.rejected += 1;
            out.push(Output::Rejected {
                peer,
                reason: ProtoError::BadRoom(format!("{} (not joined)", msg.room)),
            });
            return;
        }
        if self.admit(store, peer, &msg, out).is_err() {
            return;
        }
        if let Err(reason) = msg.verify() {
            self.counters.rejected += 1;
            out.push(Output::Rejected { peer, reason });
            return;
        }
        if self.wall_now > 0 && msg.timestamp > self.wall_now + MAX_FUTURE_MS {
            self.counters.rejected += 1;
            out.push(Output::Rejected {
                peer,
                reason: ProtoError::FromTheFuture {
                    ahead_ms: msg.timestamp - self.wall_now,
                    limit_ms: MAX_FUTURE_MS,
                },
            });
            return;
        }
        match store.insert(&msg) {
            Ok(true) => {
                self.note_stored(&msg);
                self.note_urgent(&msg);
                self.counters.received += 1;
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.last_first_at = Some(self.now);
                }
                self.note_arrival(id);
                let routed = self.source_route(&msg.author);
                if !routed {
                    self.maybe_swap(peer, &msg.room, &id, out);
                }
                self.missing.remove(&id);
                if msg.author == peer {
                    // Straight from its author: acknowledge, so the author can show "held by".
                    out.push(Output::Send {
                        peer,
                        frame: Frame::IHave {
                            room: msg.room.clone(),
                            ids: vec![id],
                        },
                    });
                }
                self.push(&msg, Some(peer), hops.checked_sub(1), routed, out);
                let travelled = DEFAULT_HOPS.saturating_sub(hops).saturating_add(1);
                out.push(Output::Stored {
                    message: msg,
                    from: peer,
                    hops: travelled,
                });
            }
            Ok(false) => {
                self.counters.duplicates += 1;
                // Only a cached tree is asked (no computation, no budget): the first copy
                // computed it, unless the budget was spent or the graph changed since.
                if self.source_trees_on()
                    && self.graph.has_source_tree(&msg.author)
                    && self.graph.tree_parent(&msg.author, &self.me) == Some(Some(peer))
                {
                    // Our parent in the author's source tree: its push ignores the shared
                    // tree's state, so pruning it would change nothing. A duplicate from
                    // another peer (graphs that differ for a moment, a push covering a gap)
                    // prunes that link in the shared tree as usual: harmless for source
                    // trees, and right for the authors the shared tree serves.
                    return;
                }
                let room = msg.room;
                // A duplicate of a message still in flight (its first copy came less than
                // `prune_hold_ms` ago) does not cut a link that gave us a first copy within
                // that time: other messages in flight may be crossing the same cycle the
                // other way, and two such prunes would split the tree. Duplicates of older
                // messages (catch-up, a late repair) prune as before.
                let now = self.now;
                let window = self.config.prune_hold_ms;
                let in_flight = self
                    .arrivals
                    .get(&id)
                    .is_some_and(|t| now.saturating_sub(*t) <= window);
                let hold = if in_flight { window } else { 0 };
                let prunable = self.peers.get(&peer).is_some_and(|p| {
                    !p.lazy.contains(&room)
                        && p.last_first_at
                            .is_none_or(|t| now >= t.saturating_add(hold))
                });
                if self.config.propagation == Propagation::Tree && prunable {
                    self.counters.prunes += 1;
                    self.set_lazy(peer, &room, true);
                    out.push(Output::Send {
                        peer,
                        frame: Frame::Prune { room },
                    });
                }
            }
            Err(e) => out.push(Output::StorageFailed(e)),
        }
    }

    fn source_trees_on(&self) -> bool {
        self.config.propagation == Propagation::Tree && self.config.source_trees
    }

    /// Whether a message of `author` follows the author's source tree here: the graph holds
    /// a tree from the author that reaches this node, and it is cached or its computation
    /// fits the budget (module docs). Past the budget: false, counted.
    pub(super) fn source_route(&mut self, author: &NodeId) -> bool {
        if !self.source_trees_on() {
            return false;
        }
        let work = self.graph.source_tree_work(author);
        if work > 0 && !self.tree_work.take_exactly(self.now, work) {
            self.counters.tree_over_budget += 1;
            return false;
        }
        self.graph.tree_parent(author, &self.me).is_some()
    }

    /// Remembers when the first copy of `id` arrived, for the [`ARRIVALS_CAP`] newest.
    fn note_arrival(&mut self, id: MessageId) {
        if self.arrivals.len() >= ARRIVALS_CAP {
            if let Some(old) = self.arrival_order.pop_front() {
                self.arrivals.remove(&old);
            }
        }
        if self.arrivals.insert(id, self.now).is_none() {
            self.arrival_order.push_back(id);
        }
    }

    /// PlumTree's optimisation: the tree's copy of `id` just arrived from `peer`, but another
    /// peer announced it (`IHave`) more than [`Config::swap_threshold_ms`] earlier, so that
    /// peer's path is faster. Swap: an empty `Graft` makes the announcer's link eager (both
    /// ends), a `Prune` makes the slow sender's link lazy (both ends). Uses only the
    /// pending-repair entry the announcement already created (bounded by [`MISSING_CAP`]), so
    /// it costs no state of its own. Not done for a copy we grafted (that is the repair's
    /// answer), nor when the announcer is gone.
    fn maybe_swap(&mut self, peer: NodeId, room: &str, id: &MessageId, out: &mut Vec<Output>) {
        if self.config.propagation != Propagation::Tree {
            return;
        }
        let faster = self.missing.first_announce(id).filter(|f| {
            !f.grafted
                && f.peer != peer
                && self.now.saturating_sub(f.at) > self.config.swap_threshold_ms
        });
        let Some(first) = faster else {
            // The tree's copy was (about) as fast as any announcement: the streak ends.
            self.swap_streak = None;
            return;
        };
        let streak = match &self.swap_streak {
            Some((r, l, n)) if r == room && *l == first.peer => n.saturating_add(1),
            _ => 1,
        };
        if streak < self.config.swap_streak {
            self.swap_streak = Some((room.to_string(), first.peer, streak));
            return;
        }
        self.swap_streak = None;
        if self
            .last_swap_at
            .is_some_and(|t| self.now < t.saturating_add(self.config.swap_cooldown_ms))
        {
            return;
        }
        let usable = |p: Option<&PeerState>| p.is_some_and(|p| p.hello && p.shares(room));
        if !usable(self.peers.get(&first.peer)) || !usable(self.peers.get(&peer)) {
            return;
        }
        self.counters.swaps += 1;
        self.last_swap_at = Some(self.now);
        self.set_lazy(first.peer, room, false);
        out.push(Output::Send {
            peer: first.peer,
            frame: Frame::Graft {
                room: room.to_string(),
                ids: Vec::new(),
            },
        });
        if self
            .peers
            .get(&peer)
            .is_some_and(|p| !p.lazy.contains(room))
        {
            self.counters.prunes += 1;
            self.set_lazy(peer, room, true);
            out.push(Output::Send {
                peer,
                frame: Frame::Prune {
                    room: room.to_string(),
                },
            });
        }
    }

    /// Spreads a new message: `Msg` to this node's children in the author's source tree (and
    /// to peers below a child it cannot serve) when `routed` ([`Protocol::source_route`]),
    /// else over the shared tree's eager links, to every link when flooding, `IHave` to the
    /// other peers; skipping the sender and peers known to hold it. With no hop budget left
    /// (`hops == None`) every link gets `IHave` only.
    pub(super) fn push(
        &mut self,
        msg: &Message,
        from: Option<NodeId>,
        hops: Option<u8>,
        routed: bool,
        out: &mut Vec<Output>,
    ) {
        let id = msg.id();
        let flood = self.config.propagation == Propagation::Flood;
        // A direct message goes first along the shortest known path to its recipient: the
        // next hop gets the message itself even over a lazy link.
        let toward = if msg.room == crate::dm::DM_ROOM {
            crate::dm::from_body(&msg.body).ok().and_then(|env| {
                self.graph
                    .path(&self.me, &env.recipient)
                    .and_then(|p| p.get(1).copied())
            })
        } else {
            None
        };
        let children = if routed {
            self.graph.tree_children(&msg.author, &self.me)
        } else {
            None
        };
        // Children this node cannot serve: not connected (the lists are behind) or not in the
        // room (it relays none of it). Their subtrees would wait for announcements and
        // grafts, so the peers of ours that sit below them get the message directly.
        let room = &msg.room;
        let unserved: Vec<NodeId> = children
            .iter()
            .flatten()
            .filter(|c| {
                Some(**c) != from
                    && !self
                        .peers
                        .get(c)
                        .is_some_and(|p| p.hello && p.rooms.contains(room))
            })
            .copied()
            .collect();
        // No source tree here: the shared tree carries it.
        let shared = children.is_none();
        for (pid, p) in &mut self.peers {
            if Some(*pid) == from
                || !p.hello
                || !p.rooms.contains(&msg.room)
                || p.known.contains(&id)
            {
                continue;
            }
            p.learn(id);
            let child = children
                .as_ref()
                .is_some_and(|c| c.binary_search(pid).is_ok());
            let cover = unserved
                .iter()
                .any(|u| self.graph.in_subtree(&msg.author, u, pid));
            let eager = flood
                || child
                || cover
                || (shared && !p.lazy.contains(&msg.room))
                || toward == Some(*pid);
            if let (true, Some(hops)) = (eager, hops) {
                self.counters.sent += 1;
                out.push(Output::Send {
                    peer: *pid,
                    frame: Frame::Msg {
                        hops,
                        message: msg.clone(),
                    },
                });
            } else {
                out.push(Output::Send {
                    peer: *pid,
                    frame: Frame::IHave {
                        room: msg.room.clone(),
                        ids: vec![id],
                    },
                });
            }
        }
    }
}
