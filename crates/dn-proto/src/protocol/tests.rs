//! A tiny deterministic network of [`Protocol`] nodes over [`MemStorage`]: frames are
//! encoded and decoded on every hop, delivered in FIFO order, links can be cut and restored.

use std::collections::VecDeque;

use ed25519_dalek::SigningKey;

use super::*;

struct Net {
    keys: Vec<SigningKey>,
    nodes: Vec<Protocol>,
    stores: Vec<MemStorage>,
    links: BTreeSet<(usize, usize)>,
    queue: VecDeque<(usize, usize, Vec<u8>)>,
    closed: Vec<(usize, String)>,
    rejected: usize,
    frames: usize,
    now: u64,
}

impl Net {
    fn new(n: usize, room: &str) -> Net {
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
            frames: 0,
            now: 0,
        }
    }
    fn id(&self, i: usize) -> NodeId {
        self.nodes[i].id()
    }
    fn index(&self, id: NodeId) -> usize {
        self.nodes.iter().position(|n| n.id() == id).unwrap()
    }
    fn apply(&mut self, i: usize, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { peer, frame } => {
                    let j = self.index(peer);
                    if self.links.contains(&(i.min(j), i.max(j))) {
                        self.queue.push_back((i, j, frame.encode()));
                    }
                }
                Output::Rejected { .. } => self.rejected += 1,
                Output::Close { reason, .. } => self.closed.push((i, reason)),
                _ => {}
            }
        }
    }
    fn input(&mut self, i: usize, input: Input) {
        let outs = self.nodes[i].handle(&mut self.stores[i], input, self.now);
        self.apply(i, outs);
    }
    fn connect(&mut self, a: usize, b: usize) {
        self.links.insert((a.min(b), a.max(b)));
        let (ia, ib) = (self.id(a), self.id(b));
        self.input(a, Input::Connected { peer: ib });
        self.input(b, Input::Connected { peer: ia });
    }
    fn disconnect(&mut self, a: usize, b: usize) {
        self.links.remove(&(a.min(b), a.max(b)));
        let (ia, ib) = (self.id(a), self.id(b));
        self.input(a, Input::Disconnected { peer: ib });
        self.input(b, Input::Disconnected { peer: ia });
    }
    fn run(&mut self) {
        while let Some((from, to, bytes)) = self.queue.pop_front() {
            if !self.links.contains(&(from.min(to), from.max(to))) {
                continue;
            }
            self.frames += 1;
            let frame = Frame::decode(&bytes).unwrap();
            if std::env::var("DN_TRACE").is_ok() {
                eprintln!("t={} {from}->{to} {}", self.now, frame.kind());
            }
            let peer = self.id(from);
            self.input(to, Input::Frame { peer, frame });
        }
    }
    fn publish(&mut self, i: usize, room: &str, body: &str, ts: u64) -> Message {
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
    net.nodes[1].set_wall_clock(now);
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
    net.nodes[1].set_wall_clock(now + 60_000);
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

#[test]
fn a_full_carry_quota_stops_carrying_but_not_joined_rooms() {
    let mut net = Net::new(2, "medical");
    net.input(0, Input::Joined("logistics".into()));
    net.connect(0, 1);
    net.run();
    // A single peer's rooms are carried once it has been connected a while (carry.rs).
    net.now = CARRY_SOLE_PEER_MS;
    net.input(1, Input::Tick);
    net.run();
    assert!(net.nodes[1].carried().any(|r| r == "logistics"));
    net.input(1, Input::CarryFull(true));
    net.run();
    let l = net.publish(0, "logistics", "carried?", 1);
    let m = net.publish(0, "medical", "joined room still flows", 2);
    net.run();
    assert!(
        !net.stores[1].has(&l.id()).unwrap(),
        "over quota: carried room not taken"
    );
    assert!(net.stores[1].has(&m.id()).unwrap());
    net.now = CARRY_SOLE_PEER_MS + 5_000; // later: a new reconciliation is welcome
    net.input(1, Input::CarryFull(false));
    net.run();
    assert!(
        net.stores[1].has(&l.id()).unwrap(),
        "back under quota: caught up by reconciliation"
    );
}
