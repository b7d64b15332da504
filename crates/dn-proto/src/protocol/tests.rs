//! A tiny deterministic network of [`Protocol`] nodes over [`MemStorage`]: frames are
//! encoded and decoded on every hop, delivered in FIFO order, links can be cut and restored.

use std::collections::VecDeque;

use ed25519_dalek::SigningKey;

use super::*;

pub(super) struct Net {
    pub(super) keys: Vec<SigningKey>,
    pub(super) nodes: Vec<Protocol>,
    pub(super) stores: Vec<MemStorage>,
    pub(super) links: BTreeSet<(usize, usize)>,
    pub(super) queue: VecDeque<(usize, usize, Vec<u8>)>,
    pub(super) closed: Vec<(usize, String)>,
    pub(super) rejected: usize,
    pub(super) dropped: Vec<(usize, DropReason)>,
    pub(super) synced: Vec<(usize, NodeId, String)>,
    /// Of those, the ones this node proved itself (its own step found the sets equal).
    pub(super) proven: Vec<(usize, NodeId, String)>,
    pub(super) acked: Vec<(usize, NodeId, Vec<MessageId>)>,
    pub(super) frames: usize,
    /// Report written bytes back as `Drained` (a peer that reads).
    pub(super) drain: bool,
    /// Simulated monotonic time, ms.
    pub(super) now: u64,
    /// Simulated wall clock given to every node (0: unknown).
    pub(super) wall: u64,
}

impl Net {
    pub(super) fn new(n: usize, room: &str) -> Net {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let nodes = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Protocol::new(
                    NodeId(k.verifying_key().to_bytes()),
                    format!("n{i}"),
                    7000,
                    [room.to_string()],
                )
            })
            .collect();
        Net {
            keys,
            nodes,
            stores: vec![MemStorage::default(); n],
            links: BTreeSet::new(),
            queue: VecDeque::new(),
            closed: vec![],
            rejected: 0,
            dropped: vec![],
            synced: vec![],
            proven: vec![],
            acked: vec![],
            frames: 0,
            drain: true,
            now: 0,
            wall: 0,
        }
    }
    pub(super) fn id(&self, i: usize) -> NodeId {
        self.nodes[i].id()
    }
    pub(super) fn apply(&mut self, i: usize, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { peer, frame } => {
                    // Frames for a peer outside the net (an attacker) are never read.
                    let Some(j) = self.nodes.iter().position(|n| n.id() == peer) else {
                        continue;
                    };
                    if self.links.contains(&(i.min(j), i.max(j))) {
                        self.queue.push_back((i, j, frame.encode()));
                    }
                }
                Output::Rejected { .. } => self.rejected += 1,
                Output::Dropped { reason, .. } => self.dropped.push((i, reason)),
                Output::Synced { peer, room, proven } => {
                    if proven {
                        self.proven.push((i, peer, room.clone()));
                    }
                    self.synced.push((i, peer, room));
                }
                Output::Acked { peer, ids } => self.acked.push((i, peer, ids)),
                Output::Close { reason, .. } => self.closed.push((i, reason)),
                _ => {}
            }
        }
    }
    fn time(&self) -> Time {
        Time {
            mono_ms: self.now,
            wall_ms: self.wall,
        }
    }
    pub(super) fn input(&mut self, i: usize, input: Input) {
        let now = self.time();
        let outs = self.nodes[i].handle(&mut self.stores[i], input, now);
        self.apply(i, outs);
    }
    /// Moves simulated time forward to `until`, waking every node at its own deadlines
    /// (`poll_timeout` → `handle_timeout`, earliest first) and delivering what they send in
    /// between, as quinn's `Pair::step` drives two endpoints.
    pub(super) fn advance_to(&mut self, until: u64) {
        // A deadline that handle_timeout does not move would spin here for ever: fail instead.
        let mut same = (u64::MAX, usize::MAX);
        let mut repeats = 0u32;
        loop {
            self.run();
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.poll_timeout().map(|t| (t, i)))
                .filter(|(t, _)| *t <= until)
                .min();
            let Some((t, i)) = next else { break };
            if (t, i) == same {
                repeats += 1;
                assert!(
                    repeats < 10_000,
                    "node {i}'s deadline {t} ms does not move after handle_timeout"
                );
            } else {
                same = (t, i);
                repeats = 0;
            }
            self.now = self.now.max(t);
            let now = self.time();
            let outs = self.nodes[i].handle_timeout(&mut self.stores[i], now);
            self.apply(i, outs);
        }
        self.now = self.now.max(until);
    }
    pub(super) fn connect(&mut self, a: usize, b: usize) {
        self.links.insert((a.min(b), a.max(b)));
        let (ia, ib) = (self.id(a), self.id(b));
        self.input(a, Input::Connected { peer: ib });
        self.input(b, Input::Connected { peer: ia });
    }
    pub(super) fn disconnect(&mut self, a: usize, b: usize) {
        self.links.remove(&(a.min(b), a.max(b)));
        let (ia, ib) = (self.id(a), self.id(b));
        self.input(a, Input::Disconnected { peer: ib });
        self.input(b, Input::Disconnected { peer: ia });
    }
    pub(super) fn run(&mut self) {
        while let Some((from, to, bytes)) = self.queue.pop_front() {
            if !self.links.contains(&(from.min(to), from.max(to))) {
                continue;
            }
            self.frames += 1;
            if self.drain {
                let to_id = self.id(to);
                let written = bytes.len() as u64 + 4;
                self.input(
                    from,
                    Input::Drained {
                        peer: to_id,
                        bytes: written,
                    },
                );
            }
            let frame = Frame::decode(&bytes).unwrap();
            if std::env::var("DN_TRACE").is_ok() {
                eprintln!("t={} {from}->{to} {}", self.now, frame.kind());
            }
            let peer = self.id(from);
            self.input(to, Input::Frame { peer, frame });
        }
    }
    pub(super) fn publish(&mut self, i: usize, room: &str, body: &str, ts: u64) -> Message {
        let m = Message::create(&self.keys[i], room, &format!("n{i}"), ts, body).unwrap();
        assert!(self.stores[i].insert(&m).unwrap());
        self.input(i, Input::Published(m.clone()));
        m
    }
}

#[test]
fn chain_push_reaches_the_far_end_once() {
    let mut net = Net::new(4, "medical");
    for i in 0..3 {
        net.connect(i, i + 1);
    }
    net.run();
    let m = net.publish(0, "medical", "hello chain", 1);
    net.run();
    for i in 0..4 {
        assert!(net.stores[i].has(&m.id()).unwrap(), "node {i}");
    }
    let dup: u64 = net.nodes.iter().map(|n| n.counters().duplicates).sum();
    assert_eq!(dup, 0, "a chain never needs a duplicate");
}

#[test]
fn offline_node_catches_up_on_reconnect_both_ways() {
    let mut net = Net::new(3, "medical");
    net.connect(0, 1);
    net.connect(1, 2);
    net.run();
    net.disconnect(1, 2);
    let a: Vec<_> = (0..50)
        .map(|k| net.publish(0, "medical", &format!("a{k}"), k))
        .collect();
    let c = net.publish(2, "medical", "from the other side", 99);
    net.run();
    assert!(!net.stores[2].has(&a[0].id()).unwrap());
    net.connect(1, 2);
    net.run();
    for m in &a {
        assert!(net.stores[2].has(&m.id()).unwrap());
    }
    assert!(net.stores[1].has(&c.id()).unwrap());
    assert!(
        net.stores[0].has(&c.id()).unwrap(),
        "synced message is forwarded onwards"
    );
    assert_eq!(net.stores[0].len(), 51);
}

#[test]
fn rooms_a_node_never_joined_are_carried_for_others() {
    // 0 - 1 - 2: only 0 and 2 are in "logistics"; 1 carries it without joining.
    let mut net = Net::new(3, "medical");
    net.input(0, Input::Joined("logistics".into()));
    net.input(2, Input::Joined("logistics".into()));
    net.connect(0, 1);
    net.connect(1, 2);
    net.run();
    assert!(net.nodes[1].carried().any(|r| r == "logistics"));
    assert!(
        !net.nodes[1].rooms().any(|r| r == "logistics"),
        "carried, not joined"
    );
    let l = net.publish(0, "logistics", "trucks at noon", 2);
    net.run();
    assert!(
        net.stores[2].has(&l.id()).unwrap(),
        "crossed a node that never joined the room"
    );
    // Joining later changes nothing on the wire: the history is already there.
    net.input(1, Input::Joined("logistics".into()));
    net.run();
    assert!(net.stores[1].has(&l.id()).unwrap());
    assert!(!net.nodes[1].carried().any(|r| r == "logistics"));
}

#[test]
fn carrying_can_be_switched_off() {
    let mut net = Net::new(2, "medical");
    for n in &mut net.nodes {
        n.config.max_carried_rooms = 0;
    }
    net.input(0, Input::Joined("logistics".into()));
    net.connect(0, 1);
    net.run();
    let l = net.publish(0, "logistics", "x", 1);
    net.run();
    assert!(!net.stores[1].has(&l.id()).unwrap());
    net.input(1, Input::Joined("logistics".into()));
    net.run();
    assert!(
        net.stores[1].has(&l.id()).unwrap(),
        "joining pulls the room's history"
    );
}

#[test]
fn invalid_messages_are_rejected_and_the_link_keeps_working() {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    let mut bad = Message::create(&net.keys[0], "medical", "n0", 1, "genuine").unwrap();
    bad.body = "forged".into();
    let peer = net.id(0);
    net.input(
        1,
        Input::Frame {
            peer,
            frame: Frame::Msg {
                hops: 3,
                message: bad.clone(),
            },
        },
    );
    assert_eq!(net.rejected, 1);
    assert!(!net.stores[1].has(&bad.id()).unwrap());
    let other_room = Message::create(&net.keys[0], "secret", "n0", 1, "not for you").unwrap();
    net.input(
        1,
        Input::Frame {
            peer,
            frame: Frame::Msg {
                hops: 3,
                message: other_room,
            },
        },
    );
    assert_eq!(net.rejected, 2);
    let ok = net.publish(0, "medical", "still works", 2);
    net.run();
    assert!(net.stores[1].has(&ok.id()).unwrap());
    assert!(net.closed.is_empty());
}

#[test]
fn hello_with_another_identity_closes() {
    let mut net = Net::new(3, "medical");
    net.links.insert((0, 1));
    let (i0, i2) = (net.id(0), net.id(2));
    net.input(1, Input::Connected { peer: i0 });
    let frame = Frame::Hello {
        version: 1,
        node: i2,
        name: "liar".into(),
        rooms: vec![],
        listen_port: 1,
    };
    net.input(1, Input::Frame { peer: i0, frame });
    assert_eq!(net.closed.len(), 1);
    assert!(net.closed[0].1.contains("does not match"));
}

#[test]
fn a_rename_reaches_peers_already_connected() {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    net.input(0, Input::Renamed("Amara (clinic)".into()));
    let outs = {
        let mut v = vec![];
        while let Some((from, to, bytes)) = net.queue.pop_front() {
            let frame = Frame::decode(&bytes).unwrap();
            let peer = net.id(from);
            v.extend(net.nodes[to].handle(&mut net.stores[to], Input::Frame { peer, frame }, 0));
        }
        v
    };
    let names: Vec<&str> = outs
        .iter()
        .filter_map(|o| match o {
            Output::PeerHello { name, rooms, .. } => {
                assert_eq!(rooms, &["medical".to_string()]);
                Some(name.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(names, ["Amara (clinic)"]);
    assert_eq!(net.rejected, 0);
    assert!(net.closed.is_empty());
    // The same name again sends nothing.
    net.input(0, Input::Renamed("Amara (clinic)".into()));
    assert!(net.queue.is_empty());
    // The link still carries messages.
    let m = net.publish(0, "medical", "after rename", 5);
    net.run();
    assert!(net.stores[1].has(&m.id()).unwrap());
}

#[test]
fn a_second_hello_cannot_change_identity_or_version() {
    let mut net = Net::new(3, "medical");
    net.connect(0, 1);
    net.run();
    let (i0, i2) = (net.id(0), net.id(2));
    for (version, node) in [(1, i2), (99, i0)] {
        let frame = Frame::Hello {
            version,
            node,
            name: "liar".into(),
            rooms: vec![],
            listen_port: 1,
        };
        net.input(1, Input::Frame { peer: i0, frame });
    }
    assert_eq!(net.rejected, 2);
}

#[test]
fn frames_before_hello_close_the_connection() {
    let mut net = Net::new(2, "medical");
    let i0 = net.id(0);
    net.input(1, Input::Connected { peer: i0 });
    net.input(
        1,
        Input::Frame {
            peer: i0,
            frame: Frame::Rooms { rooms: vec![] },
        },
    );
    assert_eq!(net.closed.len(), 1);
}

#[test]
fn ring_floods_with_bounded_duplicates() {
    let n = 8;
    let mut net = Net::new(n, "r");
    for i in 0..n {
        net.connect(i, (i + 1) % n);
    }
    net.run();
    let m = net.publish(0, "r", "ring", 1);
    net.run();
    for i in 0..n {
        assert!(net.stores[i].has(&m.id()).unwrap());
    }
    let dup: u64 = net.nodes.iter().map(|x| x.counters().duplicates).sum();
    assert!(dup <= 2, "{dup} duplicates on a ring");
}

#[test]
fn room_joined_between_connect_and_peer_hello_is_announced() {
    let mut net = Net::new(2, "medical");
    net.input(1, Input::Left("medical".into()));
    net.links.insert((0, 1));
    let (i0, i1) = (net.id(0), net.id(1));
    net.input(0, Input::Connected { peer: i1 });
    net.input(1, Input::Connected { peer: i0 });
    // Node 1 joins before any hello has been delivered: its hello listed no rooms.
    net.input(1, Input::Joined("medical".into()));
    net.run();
    let m = net.publish(0, "medical", "live push", 1);
    net.run();
    assert!(net.stores[1].has(&m.id()).unwrap());
    assert_eq!(
        net.nodes[0].counters().sent,
        1,
        "pushed live, not only by catch-up"
    );
}

#[test]
fn neighbour_lists_flood_and_give_hop_distances() {
    use crate::topo::{Neighbour, TopoRecord};
    let mut net = Net::new(4, "medical");
    for i in 0..3 {
        net.connect(i, i + 1);
    }
    net.run();
    for i in 0..4usize {
        let nbs: Vec<Neighbour> = [i.wrapping_sub(1), i + 1]
            .into_iter()
            .filter(|&j| j < 4)
            .map(|j| Neighbour {
                id: net.id(j),
                addr: None,
                rtt_ms: None,
            })
            .collect();
        let rec = TopoRecord::create(&net.keys[i], 1, &format!("n{i}"), nbs);
        net.input(i, Input::LocalTopology(rec));
    }
    net.run();
    let hops = net.nodes[0].graph().hops_from(&net.id(0));
    assert_eq!(hops.get(&net.id(3)), Some(&3));
    let path = net.nodes[3].graph().path(&net.id(3), &net.id(0)).unwrap();
    assert_eq!(path.len(), 4);
    // A forged record is rejected and changes nothing (sent after the per-node gap, so it
    // reaches the signature check).
    net.now = TOPO_MIN_GAP_MS;
    let mut forged = TopoRecord::create(&net.keys[2], 9, "n2", vec![]);
    forged.seq = 10;
    let peer = net.id(1);
    net.input(
        0,
        Input::Frame {
            peer,
            frame: Frame::Topo(forged),
        },
    );
    assert_eq!(net.rejected, 1);
    assert_eq!(
        net.nodes[0].graph().hops_from(&net.id(0)).get(&net.id(3)),
        Some(&3)
    );
}

#[test]
fn messages_from_the_future_wait_for_their_time() {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    let now = 1_800_000_000_000;
    net.wall = now;
    let ahead =
        Message::create(&net.keys[0], "medical", "n0", now + MAX_FUTURE_MS + 1, "x").unwrap();
    let ok = Message::create(&net.keys[0], "medical", "n0", now + MAX_FUTURE_MS, "y").unwrap();
    let peer = net.id(0);
    net.input(
        1,
        Input::Frame {
            peer,
            frame: Frame::Msg {
                hops: 3,
                message: ahead.clone(),
            },
        },
    );
    net.input(
        1,
        Input::Frame {
            peer,
            frame: Frame::Msg {
                hops: 3,
                message: ok.clone(),
            },
        },
    );
    assert!(!net.stores[1].has(&ahead.id()).unwrap());
    assert!(net.stores[1].has(&ok.id()).unwrap());
    assert_eq!(net.rejected, 1);
    // Later the clock has caught up: the same message is accepted.
    net.wall = now + 60_000;
    net.input(
        1,
        Input::Frame {
            peer,
            frame: Frame::Msg {
                hops: 3,
                message: ahead.clone(),
            },
        },
    );
    assert!(net.stores[1].has(&ahead.id()).unwrap());
}

/// Every node `i` signs a neighbour list of `links[i]`: (neighbour, round-trip time in ms).
fn sign_lists(net: &mut Net, links: &[&[(usize, u16)]]) {
    use crate::topo::{Neighbour, TopoRecord};
    for (i, nbs) in links.iter().enumerate() {
        let n = nbs
            .iter()
            .map(|&(j, rtt)| Neighbour {
                id: net.id(j),
                addr: None,
                rtt_ms: Some(rtt),
            })
            .collect();
        let rec = TopoRecord::create(&net.keys[i], 1, "n", n);
        net.input(i, Input::LocalTopology(rec));
    }
    net.run();
}

/// Diamond 0-1-3, 0-2-3 with the 1-3 link slow; node 4 hangs off 3 and signs no list.
fn diamond_with_round_trip_times() -> Net {
    let mut net = Net::new(5, "medical");
    for (a, b) in [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)] {
        net.connect(a, b);
    }
    net.run();
    let links: [&[(usize, u16)]; 4] = [
        &[(1, 10), (2, 10)],
        &[(0, 10), (3, 300)],
        &[(0, 10), (3, 10)],
        &[(1, 300), (2, 10), (4, 10)],
    ];
    sign_lists(&mut net, &links);
    net
}

#[test]
fn messages_follow_their_authors_source_tree_once_per_node() {
    let mut net = diamond_with_round_trip_times();
    let (i2, i3) = (net.id(2), net.id(3));
    // 3 prunes its link to 2 in the shared tree: the source tree does not care.
    net.input(
        2,
        Input::Frame {
            peer: i3,
            frame: Frame::Prune {
                room: "medical".into(),
            },
        },
    );
    assert!(!net.nodes[2].eager_peers("medical").contains(&i3));
    for k in 0..3 {
        let m = net.publish(0, "medical", &format!("water at the school {k}"), 10 + k);
        net.run();
        for i in 0..5 {
            assert!(net.stores[i].has(&m.id()).unwrap(), "node {i}, message {k}");
        }
    }
    let dup: u64 = net.nodes.iter().map(|n| n.counters().duplicates).sum();
    assert_eq!(
        dup, 0,
        "each node got each message once, along the fast side"
    );
    assert_eq!(net.nodes[1].counters().sent, 0, "1 is a leaf of 0's tree");
    // A duplicate from 3's parent in 0's tree (2) prunes nothing: that push ignores the
    // shared tree. One from another peer (1) came over 1's shared-tree link: pruned.
    let i1 = net.id(1);
    let m = net.publish(0, "medical", "one more", 20);
    net.run();
    let dup_from = |net: &mut Net, peer: NodeId| {
        let outs = net.nodes[3].handle(
            &mut net.stores[3],
            Input::Frame {
                peer,
                frame: Frame::Msg {
                    hops: 5,
                    message: m.clone(),
                },
            },
            0,
        );
        outs.iter().any(
            |o| matches!(o, Output::Send { frame: Frame::Prune { .. }, peer: p } if *p == peer),
        )
    };
    assert!(!dup_from(&mut net, i2));
    assert!(net.nodes[3].eager_peers("medical").contains(&i1));
    assert!(dup_from(&mut net, i1));
    assert!(!net.nodes[3].eager_peers("medical").contains(&i1));
    // Node 4 signed no list: its messages follow the shared tree, where 3's link to 2 is
    // lazy, so 2 hears of it by IHave and gets it from 3 by a graft... or from 0 over 1.
    let m4 = net.publish(4, "medical", "from the edge", 30);
    net.advance_to(5_000);
    for i in 0..5 {
        assert!(net.stores[i].has(&m4.id()).unwrap(), "node {i}");
    }
}

#[test]
fn peers_below_a_child_that_cannot_relay_get_the_message_directly() {
    // 0-1 and 1-2 fast, 0-2 slow: in 0's tree 2 hangs below 1. 0-4 and 4-3 fast, 0-3 slow:
    // 3 hangs below 4. But 1 is in another room and carries nothing (relays none of it): 0
    // sends the message itself to 2 (below 1) at once, not leaving it to an announcement and
    // a graft, and only announces it to 3 (4 serves it).
    let mut net = Net::new(5, "medical");
    let id1 = net.id(1);
    let no_carry = Config {
        max_carried_rooms: 0,
        ..Config::default()
    };
    net.nodes[1] =
        Protocol::with_config(id1, "n1".into(), 7000, ["logistics".to_string()], no_carry);
    for (a, b) in [(0, 1), (1, 2), (0, 2), (0, 4), (4, 3), (0, 3)] {
        net.connect(a, b);
    }
    net.run();
    let links: [&[(usize, u16)]; 5] = [
        &[(1, 10), (2, 300), (3, 300), (4, 10)],
        &[(0, 10), (2, 10)],
        &[(0, 300), (1, 10)],
        &[(0, 300), (4, 10)],
        &[(0, 10), (3, 10)],
    ];
    sign_lists(&mut net, &links);
    let (i2, i3, i4) = (net.id(2), net.id(3), net.id(4));
    let mut children = vec![id1, i4];
    children.sort();
    assert_eq!(
        net.nodes[0].graph().tree_children(&net.id(0), &net.id(0)),
        Some(children)
    );
    assert!(!net.nodes[0]
        .peer_rooms(&id1)
        .contains(&"medical".to_string()));
    let m = Message::create(&net.keys[0], "medical", "n0", 10, "road closed").unwrap();
    assert!(net.stores[0].insert(&m).unwrap());
    let outs = net.nodes[0].handle(&mut net.stores[0], Input::Published(m.clone()), 0);
    let msg_to = |peer: NodeId| {
        outs.iter()
            .any(|o| matches!(o, Output::Send { peer: p, frame: Frame::Msg { .. } } if *p == peer))
    };
    assert!(msg_to(i2), "below the child that cannot relay");
    assert!(msg_to(i4), "a child");
    assert!(!msg_to(i3), "4 serves it");
    net.apply(0, outs);
    net.run();
    for i in [2, 3, 4] {
        assert!(net.stores[i].has(&m.id()).unwrap(), "node {i}");
    }
    assert_eq!(
        net.nodes.iter().map(|n| n.counters().grafts).sum::<u64>(),
        0
    );
    assert_eq!(
        net.nodes
            .iter()
            .map(|n| n.counters().duplicates)
            .sum::<u64>(),
        0
    );
}

#[test]
fn direct_messages_take_the_shortest_known_path_even_over_lazy_links() {
    use crate::topo::{Neighbour, TopoRecord};
    // Triangle 0-1-2 plus 2-3; all in the dm room. Make 0's link to 2 lazy for "dm".
    let mut net = Net::new(4, crate::dm::DM_ROOM);
    for (a, b) in [(0, 1), (1, 2), (0, 2), (2, 3)] {
        net.connect(a, b);
    }
    net.run();
    let links: [&[usize]; 4] = [&[1, 2], &[0, 2], &[0, 1, 3], &[2]];
    for (i, nbs) in links.iter().enumerate() {
        let n = nbs
            .iter()
            .map(|&j| Neighbour {
                id: net.id(j),
                addr: None,
                rtt_ms: None,
            })
            .collect();
        let rec = TopoRecord::create(&net.keys[i], 1, "n", n);
        net.input(i, Input::LocalTopology(rec));
    }
    net.run();
    let (i0, i2) = (net.id(0), net.id(2));
    net.input(
        2,
        Input::Frame {
            peer: i0,
            frame: Frame::Prune {
                room: crate::dm::DM_ROOM.into(),
            },
        },
    );
    net.input(
        0,
        Input::Frame {
            peer: i2,
            frame: Frame::Prune {
                room: crate::dm::DM_ROOM.into(),
            },
        },
    );
    assert!(!net.nodes[0].eager_peers(crate::dm::DM_ROOM).contains(&i2));
    // Node 0's source tree would reach 2 anyway: follow the shared tree here, so that only
    // the path toward the recipient makes the lazy link carry the message.
    net.nodes[0].config.source_trees = false;
    let to = net.id(3);
    let env = crate::dm::seal(&net.keys[0], &to, "go to the school", 5, [9; 32], [8; 24]).unwrap();
    let m = Message::create(
        &net.keys[0],
        crate::dm::DM_ROOM,
        "n0",
        5,
        &crate::dm::to_body(&env),
    )
    .unwrap();
    assert!(net.stores[0].insert(&m).unwrap());
    let outs = net.nodes[0].handle(&mut net.stores[0], Input::Published(m.clone()), 0);
    let pushed_to_2 = outs
        .iter()
        .any(|o| matches!(o, Output::Send { peer, frame: Frame::Msg { .. } } if *peer == i2));
    assert!(
        pushed_to_2,
        "the next hop toward the recipient (node 2) gets the message itself"
    );
    net.apply(0, outs);
    net.run();
    assert!(net.stores[3].has(&m.id()).unwrap());
}

// ---- An open network: one authenticated peer must not starve, fill or fool a node. ----

/// A frame as it crosses the wire.
pub(super) fn wire(frame: &Frame) -> Frame {
    Frame::decode(&frame.encode()).unwrap()
}

/// A peer with a valid key that is not part of the test net: its frames go straight to the
/// victim, and what the victim sends it is collected, never read.
pub(super) struct Attacker {
    pub(super) id: NodeId,
}

impl Attacker {
    /// Connects to `victim` and says hello with `rooms`.
    pub(super) fn connect(net: &mut Net, victim: usize, rooms: &[&str]) -> Attacker {
        let key = SigningKey::from_bytes(&[200; 32]);
        let a = Attacker {
            id: NodeId(key.verifying_key().to_bytes()),
        };
        a.input(net, victim, Input::Connected { peer: a.id });
        a.send(
            net,
            victim,
            Frame::Hello {
                version: PROTOCOL_VERSION,
                node: a.id,
                name: "mallory".into(),
                rooms: rooms.iter().map(|r| r.to_string()).collect(),
                listen_port: 1,
            },
        );
        a
    }
    /// Feeds `victim` one input; returns the frames it sent the attacker and applies the
    /// rest to the net.
    pub(super) fn input(&self, net: &mut Net, victim: usize, input: Input) -> Vec<Frame> {
        let outs = net.nodes[victim].handle(&mut net.stores[victim], input, net.now);
        let mut mine = vec![];
        let mut rest = vec![];
        for o in outs {
            match o {
                Output::Send { peer, frame } if peer == self.id => mine.push(frame),
                o => rest.push(o),
            }
        }
        net.apply(victim, rest);
        mine
    }
    /// Sends `frame` (through the codec) to `victim`.
    #[allow(clippy::needless_pass_by_value)] // call sites read better with owned frames
    pub(super) fn send(&self, net: &mut Net, victim: usize, frame: Frame) -> Vec<Frame> {
        let frame = wire(&frame);
        self.input(
            net,
            victim,
            Input::Frame {
                peer: self.id,
                frame,
            },
        )
    }
}

fn msg_bytes(frames: &[Frame]) -> (usize, u64) {
    let msgs: Vec<&Frame> = frames
        .iter()
        .filter(|f| matches!(f, Frame::Msg { .. }))
        .collect();
    let bytes = msgs.iter().map(|f| f.encode().len() as u64 + 4).sum();
    (msgs.len(), bytes)
}

fn fill_room(net: &mut Net, node: usize, room: &str, n: usize, body_len: usize) -> Vec<Message> {
    let body = "x".repeat(body_len);
    (0..n)
        .map(|k| {
            let m = Message::create(&net.keys[node], room, "n", k as u64 + 1, &body).unwrap();
            assert!(net.stores[node].insert(&m).unwrap());
            m
        })
        .collect()
}

fn drops(net: &Net, node: usize, reason: DropReason) -> usize {
    net.dropped
        .iter()
        .filter(|(i, r)| *i == node && *r == reason)
        .count()
}

#[test]
fn a_peer_asking_for_a_whole_room_gets_at_most_the_window_until_it_drains() {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    let held = fill_room(&mut net, 0, "medical", 10_000, 40);
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    // Past the idle timeout of any offer the victim made on connect (never answered).
    net.now = EXCHANGE_IDLE_MS + 10_000;
    // "I hold nothing": a summary of the empty set.
    let ask = Frame::Recon {
        room: "medical".into(),
        msg: recon::start_with_salt(&[], [7; 16]),
    };
    assert!(ask.encode().len() < 100, "a tiny request");
    let mut got = atk.send(&mut net, 0, ask);
    let (n, bytes) = msg_bytes(&got);
    assert!(n > 0 && n < 10_000, "{n} messages at once");
    assert!(
        bytes <= REPLY_WINDOW_BYTES,
        "{bytes} bytes before any drain"
    );
    assert!(net.nodes[0].in_flight(&atk.id) <= REPLY_WINDOW_BYTES + 4_096);
    assert_eq!(net.nodes[0].reply_queue_len(&atk.id), 10_000 - n);
    // More requests while it never reads: nothing more is sent.
    let again = atk.input(&mut net, 0, Input::Tick);
    assert_eq!(msg_bytes(&again).0, 0);
    // An honest peer on another link is still served at once.
    let m = net.publish(0, "medical", "evacuate north", 50_000);
    net.run();
    assert!(net.stores[1].has(&m.id()).unwrap());
    // The attacker reads: each drain releases the next replies, and everything arrives.
    for _ in 0..1_000 {
        let bytes: u64 = got.iter().map(|f| f.encode().len() as u64 + 4).sum();
        if net.nodes[0].reply_queue_len(&atk.id) == 0 {
            break;
        }
        let more = atk.input(
            &mut net,
            0,
            Input::Drained {
                peer: atk.id,
                bytes,
            },
        );
        assert!(msg_bytes(&more).1 <= REPLY_WINDOW_BYTES);
        got.extend(more);
    }
    let delivered: HashSet<MessageId> = got
        .iter()
        .filter_map(|f| match f {
            Frame::Msg { message, .. } => Some(message.id()),
            _ => None,
        })
        .collect();
    assert_eq!(delivered.len(), held.len(), "the whole room, in the end");
    assert!(net.dropped.is_empty(), "{:?}", net.dropped);
}

#[test]
fn reply_queue_is_bounded_and_a_disconnect_clears_it() {
    let mut net = Net::new(1, "medical");
    fill_room(&mut net, 0, "medical", 200, 8_000);
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    net.now = 10_000;
    let all: Vec<MessageId> = net.stores[0]
        .room_set("medical")
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    // Grafts for every message: more than the window, so the rest waits.
    let got = atk.send(
        &mut net,
        0,
        Frame::Graft {
            room: "medical".into(),
            ids: all,
        },
    );
    assert!(msg_bytes(&got).1 <= REPLY_WINDOW_BYTES);
    assert!(net.nodes[0].reply_queue_len(&atk.id) > 0);
    // Thousands of grafts for more ids than the queue holds (refilled budget each time).
    let mut k = 0u32;
    for _ in 0..70 {
        net.now += 10_000;
        let ids = (0..1024)
            .map(|_| {
                k += 1;
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&k.to_be_bytes());
                MessageId(b)
            })
            .collect();
        let out = atk.send(
            &mut net,
            0,
            Frame::Graft {
                room: "medical".into(),
                ids,
            },
        );
        assert_eq!(msg_bytes(&out).0, 0, "nothing more without a drain");
    }
    assert_eq!(net.nodes[0].reply_queue_len(&atk.id), REPLY_QUEUE_CAP);
    assert!(drops(&net, 0, DropReason::ReplyQueueFull) > 0);
    assert!(
        net.nodes[0]
            .counters()
            .drops
            .get(DropReason::ReplyQueueFull)
            > 0
    );
    atk.input(&mut net, 0, Input::Disconnected { peer: atk.id });
    assert_eq!(net.nodes[0].reply_queue_len(&atk.id), 0);
    assert_eq!(net.nodes[0].in_flight(&atk.id), 0);
}

#[test]
fn graft_ids_past_the_budget_are_dropped() {
    let mut net = Net::new(1, "medical");
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    for _ in 0..3 {
        atk.send(
            &mut net,
            0,
            Frame::Graft {
                room: "medical".into(),
                ids: vec![MessageId([1; 32]); 1024],
            },
        );
    }
    assert_eq!(
        drops(&net, 0, DropReason::RateLimited(Budget::Graft)),
        1,
        "the third frame is over the 2,048-id burst"
    );
}

/// A store that counts full passes over a room (what a catch-up step costs).
struct CountingStore {
    inner: MemStorage,
    passes: std::cell::Cell<usize>,
}

impl Storage for CountingStore {
    fn has(&self, id: &MessageId) -> Result<bool, StorageError> {
        self.inner.has(id)
    }
    fn insert(&mut self, msg: &Message) -> Result<bool, StorageError> {
        self.inner.insert(msg)
    }
    fn room_set(&self, room: &str) -> Result<Vec<(u64, MessageId)>, StorageError> {
        self.passes.set(self.passes.get() + 1);
        self.inner.room_set(room)
    }
    fn get(&self, id: &MessageId) -> Result<Option<Message>, StorageError> {
        self.inner.get(id)
    }
    fn author_usage(&self, room: &str, author: &NodeId) -> Result<(u64, u64), StorageError> {
        self.inner.author_usage(room, author)
    }
    fn author_count_between(
        &self,
        room: &str,
        author: &NodeId,
        from: u64,
        to: u64,
    ) -> Result<u64, StorageError> {
        self.inner.author_count_between(room, author, from, to)
    }
    carry_storage_via_inner!();
}

#[test]
fn catch_up_frames_outside_one_exchange_are_dropped_without_a_pass_over_the_room() {
    let me = SigningKey::from_bytes(&[9; 32]);
    let mallory = SigningKey::from_bytes(&[1; 32]);
    let (me_id, atk) = (
        NodeId(me.verifying_key().to_bytes()),
        NodeId(mallory.verifying_key().to_bytes()),
    );
    let mut node = Protocol::new(me_id, "v".into(), 1, ["medical".to_string()]);
    let mut store = CountingStore {
        inner: MemStorage::default(),
        passes: std::cell::Cell::new(0),
    };
    for k in 0..20 {
        let m = Message::create(&me, "medical", "v", k + 1, "history").unwrap();
        store.insert(&m).unwrap();
    }
    let mut dropped = vec![];
    let feed = |node: &mut Protocol,
                store: &mut CountingStore,
                dropped: &mut Vec<DropReason>,
                frame: Frame,
                now: u64| {
        let input = Input::Frame {
            peer: atk,
            frame: wire(&frame),
        };
        for o in node.handle(store, input, now) {
            if let Output::Dropped { reason, .. } = o {
                dropped.push(reason);
            }
        }
    };
    // Well after any offer the victim made on connect went stale.
    const T: u64 = 100_000;
    node.handle(&mut store, Input::Connected { peer: atk }, 0);
    let hello = Frame::Hello {
        version: PROTOCOL_VERSION,
        node: atk,
        name: "m".into(),
        rooms: vec!["medical".into()],
        listen_port: 1,
    };
    feed(&mut node, &mut store, &mut dropped, hello, 0);
    store.passes.set(0);
    // Ten ids the victim lacks: a summary that needs an answer, so the exchange stays open.
    let theirs: Vec<(u64, MessageId)> = (0..10u8).map(|k| (1, MessageId([k; 32]))).collect();
    let recon = |round: u8, salt: recon::Salt| {
        let mut msg = recon::start_with_salt(&theirs, salt);
        msg.round = round;
        Frame::Recon {
            room: "medical".into(),
            msg,
        }
    };
    // Later rounds with no exchange: dropped before any work.
    for k in 0..500 {
        feed(
            &mut node,
            &mut store,
            &mut dropped,
            recon(1 + (k % 5) as u8, [3; 16]),
            T + 10_000,
        );
    }
    assert_eq!(store.passes.get(), 0);
    assert_eq!(dropped.len(), 500);
    assert!(dropped.iter().all(|r| *r == DropReason::NoExchange));
    // A forged ReconDone proves nothing.
    dropped.clear();
    let outs = node.handle(
        &mut store,
        Input::Frame {
            peer: atk,
            frame: wire(&Frame::ReconDone {
                room: "medical".into(),
            }),
        },
        T + 10_000,
    );
    assert!(!outs.iter().any(|o| matches!(o, Output::Synced { .. })));
    assert_eq!(node.counters().drops.get(DropReason::NoExchange), 501);
    // One exchange opens (from the higher id too: whatever the order); a second start while
    // it runs is refused, as is a new one within a second of the last.
    feed(
        &mut node,
        &mut store,
        &mut dropped,
        recon(0, [4; 16]),
        T + 10_000,
    );
    assert_eq!(store.passes.get(), 1);
    feed(
        &mut node,
        &mut store,
        &mut dropped,
        recon(0, [5; 16]),
        T + 10_500,
    );
    assert_eq!(dropped, [DropReason::ExchangeBusy]);
    // Its later rounds (same salt) are answered, others are not.
    feed(
        &mut node,
        &mut store,
        &mut dropped,
        recon(2, [4; 16]),
        T + 10_600,
    );
    feed(
        &mut node,
        &mut store,
        &mut dropped,
        recon(2, [5; 16]),
        T + 10_600,
    );
    assert_eq!(store.passes.get(), 2);
    assert_eq!(dropped.last(), Some(&DropReason::NoExchange));
    // Replaying rounds of the open exchange is paid from the recon budget.
    dropped.clear();
    for _ in 0..2_000 {
        feed(
            &mut node,
            &mut store,
            &mut dropped,
            recon(2, [4; 16]),
            T + 10_700,
        );
    }
    assert!(store.passes.get() <= 2 + budget::RECON_FRAME_BURST as usize);
    assert!(dropped
        .iter()
        .all(|r| *r == DropReason::RateLimited(Budget::Recon)));
    assert!(!dropped.is_empty());
    // An abandoned exchange goes stale: a new one is welcome again.
    dropped.clear();
    let passes = store.passes.get();
    feed(
        &mut node,
        &mut store,
        &mut dropped,
        recon(0, [6; 16]),
        T + 10_700 + EXCHANGE_IDLE_MS,
    );
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(store.passes.get(), passes + 1);
}

#[test]
fn delivery_proof_only_from_real_exchanges_and_own_pushes() {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    // The connect's catch-up is a real exchange: both sides report it.
    assert!(net.synced.iter().any(|(i, _, r)| *i == 0 && r == "medical"));
    assert!(net.synced.iter().any(|(i, _, r)| *i == 1 && r == "medical"));
    let before = net.synced.len();
    let m = net.publish(0, "medical", "water at the school", 5);
    net.run();
    // Node 1 got it from its author and acknowledged it: node 0 reports Acked.
    assert_eq!(net.acked, [(0, net.id(1), vec![m.id()])]);
    // A peer that never received our message claims it holds it, and that it synced.
    let own = net.publish(0, "medical", "not sent to mallory", 6);
    net.run();
    net.acked.clear();
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    // Any offer node 0 made the newcomer went unanswered and is abandoned by now.
    net.now = EXCHANGE_IDLE_MS + 100;
    atk.send(
        &mut net,
        0,
        Frame::IHave {
            room: "medical".into(),
            ids: vec![m.id(), own.id()],
        },
    );
    atk.send(
        &mut net,
        0,
        Frame::ReconDone {
            room: "medical".into(),
        },
    );
    assert!(net.acked.is_empty(), "{:?}", net.acked);
    assert_eq!(net.synced.len(), before, "no Synced without an exchange");
    assert_eq!(drops(&net, 0, DropReason::NoExchange), 1);
}

#[test]
fn prune_flood_with_unknown_rooms_keeps_peer_state_bounded() {
    let mut net = Net::new(1, "medical");
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    for k in 0..5_000 {
        atk.send(
            &mut net,
            0,
            Frame::Prune {
                room: format!("junk-{k}"),
            },
        );
    }
    assert_eq!(drops(&net, 0, DropReason::UnknownRoom), 5_000);
    assert!(net.nodes[0].peers[&atk.id].lazy.is_empty());
    // IHave and Graft for rooms not shared are refused the same way.
    let ids = vec![MessageId([2; 32])];
    for frame in [
        Frame::IHave {
            room: "secret".into(),
            ids: ids.clone(),
        },
        Frame::Graft {
            room: "secret".into(),
            ids,
        },
    ] {
        atk.send(&mut net, 0, frame);
    }
    assert_eq!(drops(&net, 0, DropReason::UnknownRoom), 5_002);
    assert_eq!(net.nodes[0].pending_repairs(), 0);
    // Prunes for the shared room are paid from the prune budget.
    for _ in 0..1_000 {
        atk.send(
            &mut net,
            0,
            Frame::Prune {
                room: "medical".into(),
            },
        );
    }
    assert_eq!(
        drops(&net, 0, DropReason::RateLimited(Budget::Prune)),
        1_000 - budget::PRUNE_BURST as usize
    );
    assert_eq!(net.nodes[0].peers[&atk.id].lazy.len(), 1);
    // A room list without the room forgets its lazy mark too.
    net.now = 60_000;
    atk.send(&mut net, 0, Frame::Rooms { rooms: vec![] });
    assert!(net.nodes[0].peers[&atk.id].lazy.is_empty());
    // Room updates are budgeted as well.
    for _ in 0..100 {
        atk.send(&mut net, 0, Frame::Rooms { rooms: vec![] });
    }
    assert_eq!(
        drops(&net, 0, DropReason::RateLimited(Budget::Rooms)),
        100 + 1 - budget::ROOMS_BURST as usize
    );
}

#[test]
fn ihave_flood_cannot_evict_honest_pending_repairs() {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    // An honest announcement of a message node 0 lacks.
    let honest = MessageId([0xAA; 32]);
    let i1 = net.id(1);
    net.input(
        0,
        Input::Frame {
            peer: i1,
            frame: wire(&Frame::IHave {
                room: "medical".into(),
                ids: vec![honest],
            }),
        },
    );
    assert_eq!(net.nodes[0].pending_repairs(), 1);
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    let mut k = 0u32;
    for _ in 0..60 {
        net.now += 10_000; // budget refilled: only the pending-repair caps bind
        let ids = (0..1024)
            .map(|_| {
                k += 1;
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&k.to_be_bytes());
                MessageId(b)
            })
            .collect();
        atk.send(
            &mut net,
            0,
            Frame::IHave {
                room: "medical".into(),
                ids,
            },
        );
    }
    assert_eq!(net.nodes[0].missing.owned_by(&atk.id), MISSING_PER_PEER);
    assert_eq!(net.nodes[0].pending_repairs(), MISSING_PER_PEER + 1);
    assert!(
        net.nodes[0].missing.get_mut(&honest).is_some(),
        "the honest repair is still pending"
    );
    assert!(drops(&net, 0, DropReason::PendingRepairsFull) > 0);
    // Without refills the id budget binds first.
    for _ in 0..8 {
        atk.send(
            &mut net,
            0,
            Frame::IHave {
                room: "medical".into(),
                ids: vec![MessageId([3; 32]); 1024],
            },
        );
    }
    assert!(drops(&net, 0, DropReason::RateLimited(Budget::IHave)) > 0);
}

#[test]
fn honest_traffic_is_never_dropped() {
    let mut net = Net::new(4, "medical");
    net.input(2, Input::Joined("logistics".into()));
    for i in 0..3 {
        net.connect(i, i + 1);
    }
    net.connect(0, 3);
    net.run();
    let mut sent = vec![];
    for k in 0..300u64 {
        net.now += 50;
        sent.push(net.publish((k % 4) as usize, "medical", &format!("m{k}"), k + 1));
        if k % 10 == 0 {
            net.run();
        }
    }
    net.run();
    net.disconnect(1, 2);
    for k in 0..50u64 {
        sent.push(net.publish(1, "medical", &format!("p{k}"), 1_000 + k));
    }
    net.run();
    net.connect(1, 2);
    net.run();
    net.input(3, Input::Renamed("three".into()));
    net.input(1, Input::Joined("logistics".into()));
    net.run();
    for _ in 0..5 {
        net.now += ANTI_ENTROPY_MS;
        for i in 0..4 {
            net.input(i, Input::Tick);
        }
        net.run();
    }
    for i in 0..4 {
        for m in &sent {
            assert!(net.stores[i].has(&m.id()).unwrap(), "node {i}");
        }
    }
    assert!(net.dropped.is_empty(), "{:?}", net.dropped);
    assert_eq!(net.rejected, 0);
}

#[test]
fn a_blocked_author_is_neither_stored_nor_relayed_until_unblocked() {
    // 0 - 1 - 2 in a line: everything from 0 to 2 goes through 1.
    let mut net = Net::new(3, "medical");
    net.connect(0, 1);
    net.connect(1, 2);
    net.run();
    let author = net.id(0);
    net.nodes[1].set_blocked(author, true);
    let me = net.id(1);
    net.nodes[1].set_blocked(me, true); // our own id cannot be blocked
    let spam = net.publish(0, "medical", "from the blocked author", 1);
    let fine = net.publish(2, "medical", "from someone else", 2);
    net.run();
    assert!(
        !net.stores[1].has(&spam.id()).unwrap(),
        "not stored by the blocker"
    );
    assert!(
        !net.stores[2].has(&spam.id()).unwrap(),
        "not relayed through the blocker"
    );
    assert!(net.stores[0].has(&fine.id()).unwrap(), "others still flow");
    assert!(net.nodes[1].blocked_drops() >= 1);
    let own = net.publish(1, "medical", "the blocker's own message", 3);
    net.run();
    assert!(net.stores[2].has(&own.id()).unwrap());
    // Unblocked: the next catch-up brings the message through.
    net.nodes[1].set_blocked(author, false);
    for _ in 0..2 {
        net.now += ANTI_ENTROPY_MS;
        for i in 0..3 {
            net.input(i, Input::Tick);
        }
        net.run();
    }
    assert!(net.stores[1].has(&spam.id()).unwrap());
    assert!(net.stores[2].has(&spam.id()).unwrap());
}

#[test]
fn repeated_recon_done_after_a_finished_exchange_is_a_counted_forgery() {
    let mut net = Net::new(2, "medical");
    net.publish(0, "medical", "one", 1);
    net.connect(0, 1);
    net.run();
    let synced = net.synced.len();
    assert!(synced > 0, "the two nodes finished an exchange");
    let before = drops(&net, 0, DropReason::NoExchange) + drops(&net, 1, DropReason::NoExchange);
    // Node 1 (as a forger would) repeats ReconDone for the room three times to each side.
    for (from, to) in [(1, 0), (0, 1)] {
        for _ in 0..3 {
            let f = Frame::ReconDone {
                room: "medical".into(),
            };
            net.queue.push_back((from, to, f.encode()));
        }
    }
    net.run();
    assert_eq!(
        net.synced.len(),
        synced,
        "a finished exchange does not sync again"
    );
    let after = drops(&net, 0, DropReason::NoExchange) + drops(&net, 1, DropReason::NoExchange);
    // One late ReconDone per side is a race an honest pair can have; the others are counted.
    assert_eq!(after - before, 4);
}

#[test]
fn only_our_own_step_finding_equal_sets_proves_what_a_peer_holds() {
    // Two honest nodes: every finished exchange is proven on the side whose step found the
    // sets equal (the side that sent ReconDone), never only by the ReconDone received.
    let mut net = Net::new(2, "medical");
    net.publish(0, "medical", "one", 1);
    net.connect(0, 1);
    net.run();
    assert!(
        !net.proven.is_empty(),
        "an honest exchange proves itself on one side"
    );
    assert!(net.proven.len() < net.synced.len() || net.synced.len() == 1);
    // A peer that answers our own exchange start with ReconDone at once ("sets equal")
    // finishes the exchange but proves nothing.
    let keys = [
        SigningKey::from_bytes(&[31; 32]),
        SigningKey::from_bytes(&[32; 32]),
    ];
    let ids = keys
        .each_ref()
        .map(|k| NodeId(k.verifying_key().to_bytes()));
    let (me, liar) = if ids[0] < ids[1] {
        (ids[0], ids[1])
    } else {
        (ids[1], ids[0])
    };
    let mut node = Protocol::new(me, "v".into(), 1, ["medical".to_string()]);
    let mut store = MemStorage::default();
    let mut all = node.handle(&mut store, Input::Connected { peer: liar }, 0);
    let hello = Frame::Hello {
        version: PROTOCOL_VERSION,
        node: liar,
        name: "liar".into(),
        rooms: vec!["medical".into()],
        listen_port: 1,
    };
    all.extend(node.handle(
        &mut store,
        Input::Frame {
            peer: liar,
            frame: hello,
        },
        1,
    ));
    assert!(
        all.iter().any(|o| matches!(
            o,
            Output::Send {
                frame: Frame::Recon { .. },
                ..
            }
        )),
        "the lower id starts the exchange"
    );
    let done = Frame::ReconDone {
        room: "medical".into(),
    };
    let outs = node.handle(
        &mut store,
        Input::Frame {
            peer: liar,
            frame: done,
        },
        2,
    );
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Synced { proven: false, .. })));
    assert!(!outs
        .iter()
        .any(|o| matches!(o, Output::Synced { proven: true, .. })));
}

// ---- Bundles: an imported message is admitted like a received one and spreads. ----

#[test]
fn imported_messages_are_admitted_like_received_ones_and_spread() {
    let mut net = Net::new(3, "medical");
    net.connect(1, 2);
    net.run();
    let writer = SigningKey::from_bytes(&[0x55; 32]);
    let m = Message::create(&writer, "medical", "far", 10, "from the other camp").unwrap();
    let outs = net.nodes[1].handle(&mut net.stores[1], Input::Imported(m.clone()), 0);
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Stored { from, .. } if *from == BUNDLE_PEER)));
    net.apply(1, outs);
    net.run();
    assert!(net.stores[2].has(&m.id()).unwrap(), "spread to the peer");
    // Importing it again stores nothing and sends nothing.
    let again = net.nodes[1].handle(&mut net.stores[1], Input::Imported(m.clone()), 0);
    assert!(!again.iter().any(|o| matches!(o, Output::Stored { .. })));
    assert!(!again.iter().any(|o| matches!(o, Output::Send { .. })));
    // A forged one is rejected, not stored.
    let mut bad = Message::create(&writer, "medical", "far", 11, "x").unwrap();
    bad.body = "y".into();
    let outs = net.nodes[1].handle(&mut net.stores[1], Input::Imported(bad.clone()), 0);
    assert!(outs.iter().any(|o| matches!(o, Output::Rejected { .. })));
    assert!(!net.stores[1].has(&bad.id()).unwrap());
    // A room the node does not serve is carried from now on.
    let other = Message::create(&writer, "shelter", "far", 12, "beds").unwrap();
    let outs = net.nodes[1].handle(&mut net.stores[1], Input::Imported(other.clone()), 0);
    assert!(outs.iter().any(|o| matches!(o, Output::Stored { .. })));
    assert!(net.nodes[1].carried().any(|r| r == "shelter"));
    // Nor does a blocked author get in by file.
    let blocked = SigningKey::from_bytes(&[0x66; 32]);
    net.nodes[1].set_blocked(NodeId(blocked.verifying_key().to_bytes()), true);
    let b = Message::create(&blocked, "medical", "b", 13, "spam").unwrap();
    let outs = net.nodes[1].handle(&mut net.stores[1], Input::Imported(b.clone()), 0);
    assert!(!outs.iter().any(|o| matches!(o, Output::Stored { .. })));
    assert!(!net.stores[1].has(&b.id()).unwrap());
    // Neither a forged record nor a blocked author's makes the node carry a new room.
    let b2 = Message::create(&blocked, "junk-a", "b", 14, "spam").unwrap();
    let mut forged = Message::create(&writer, "junk-b", "far", 15, "x").unwrap();
    forged.body = "y".into();
    for m in [b2, forged] {
        net.nodes[1].handle(&mut net.stores[1], Input::Imported(m), 0);
    }
    assert!(!net.nodes[1].carried().any(|r| r.starts_with("junk")));
}
