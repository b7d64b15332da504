//! Core unit tests, without threads or sockets.
//!
//! - Group commit when the commit itself fails after every insert of the burst succeeded (the
//!   other branch, a failing insert, is the netns disk-full test): nothing of the burst may be
//!   reported, acknowledged or relayed, and the same burst stores normally once commits work.
//! - The dial address of a peer, and the network view (pure functions).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::queue::{out_queue, OutReceiver};

const ROOM: &str = "ops";

/// A trigger that makes every transaction inserting a message fail at COMMIT: each insert
/// adds a row violating a deferred foreign key, which SQLite checks only when committing.
const POISON: &str = "
    CREATE TABLE poison_parent (y INTEGER PRIMARY KEY);
    CREATE TABLE poison (x INTEGER REFERENCES poison_parent (y) DEFERRABLE INITIALLY DEFERRED);
    CREATE TRIGGER poison_commit AFTER INSERT ON messages
    BEGIN
        INSERT INTO poison VALUES (1);
    END;";
const CURE: &str = "DROP TRIGGER poison_commit; DELETE FROM poison;";

struct Rig {
    _dir: tempfile::TempDir,
    core: Core,
    peer: SigningKey,
    wire: OutReceiver,
    events: broadcast::Receiver<EngineEvent>,
    side: rusqlite::Connection,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&dir.path().join(STORE_FILE)).unwrap();
        store.join_room(ROOM, 1).unwrap();
    }
    let (tx, _) = broadcast::channel(1024);
    let events = tx.subscribe();
    let key = identity::load_or_create(dir.path()).unwrap();
    let mut core = Core::open(dir.path(), key, tx, None).unwrap();
    let peer = SigningKey::from_bytes(&[7; 32]);
    let id = identity::node_id(&peer);
    let (out, wire, _pause) = out_queue();
    core.handle(CoreMsg::Connected {
        peer: id,
        conn_id: 1,
        addr: "127.0.0.1:9".parse().unwrap(),
        tx: out,
    });
    core.handle(frame(
        &peer,
        Frame::Hello {
            version: dn_proto::message::PROTOCOL_VERSION,
            node: id,
            name: "field".into(),
            rooms: vec![ROOM.into()],
            listen_port: 9,
        },
    ));
    let side = rusqlite::Connection::open(dir.path().join(STORE_FILE)).unwrap();
    side.busy_timeout(Duration::from_secs(5)).unwrap();
    Rig {
        _dir: dir,
        core,
        peer,
        wire,
        events,
        side,
    }
}

fn frame(peer: &SigningKey, frame: Frame) -> CoreMsg {
    CoreMsg::Frame {
        peer: identity::node_id(peer),
        conn_id: 1,
        frame,
        permit: InPermit::none(),
    }
}

impl Rig {
    /// Hands the core `msgs` as one burst of frames, as the network driver would.
    fn burst(&mut self, msgs: &[Message]) {
        let (_requests, tx, mut inbox) = inbox();
        for m in &msgs[1..] {
            let f = Frame::Msg {
                hops: 3,
                message: m.clone(),
            };
            tx.try_send(frame(&self.peer, f)).unwrap();
        }
        let first = frame(
            &self.peer,
            Frame::Msg {
                hops: 3,
                message: msgs[0].clone(),
            },
        );
        self.core.handle_burst(first, &mut inbox);
    }

    /// Ids acknowledged to the peer (IHave) since the last call.
    fn acked(&mut self) -> Vec<MessageId> {
        let mut ids = Vec::new();
        while let Some(bytes) = self.wire.try_recv() {
            if let Ok(Frame::IHave { ids: got, .. }) = Frame::decode(&bytes[4..]) {
                ids.extend(got);
            }
        }
        ids
    }

    /// Messages shown to the user since the last call.
    fn shown(&mut self) -> usize {
        let mut n = 0;
        while let Ok(ev) = self.events.try_recv() {
            n += usize::from(matches!(ev, EngineEvent::Message { .. }));
        }
        n
    }

    fn stored(&self, msgs: &[Message]) -> usize {
        msgs.iter()
            .filter(|m| self.core.store.has_message(&m.id()).unwrap())
            .count()
    }
}

#[test]
fn a_failed_commit_reports_nothing_and_the_burst_stores_once_commits_work() {
    let mut r = rig();
    let msgs: Vec<Message> = (0..10)
        .map(|i| {
            Message::create(&r.peer, ROOM, "field", 1_000 + i, &format!("report {i}")).unwrap()
        })
        .collect();
    r.acked();
    r.shown();

    r.side.execute_batch(POISON).unwrap();
    r.burst(&msgs);
    assert_eq!(
        r.core.drops.failed_commits, 1,
        "one group, one failed commit"
    );
    assert_eq!(r.stored(&msgs), 0, "rolled back");
    assert!(
        r.acked().is_empty(),
        "no acknowledgement for what was not committed"
    );
    assert_eq!(r.shown(), 0, "nothing shown as received");
    assert_eq!(
        r.core.drops().get("failed_commits"),
        Some(&1),
        "counted in the status"
    );

    // Commits work again: the same frames (a catch-up would bring them) are stored, then
    // acknowledged and shown.
    r.side.execute_batch(CURE).unwrap();
    r.burst(&msgs);
    assert_eq!(r.core.drops.failed_commits, 1);
    assert_eq!(r.stored(&msgs), 10);
    let acked = r.acked();
    assert!(
        msgs.iter().all(|m| acked.contains(&m.id())),
        "all acknowledged"
    );
    assert_eq!(r.shown(), 10);
}

#[test]
fn a_peer_that_accepts_no_connections_gets_no_dial_address() {
    let from: SocketAddr = "10.0.0.7:53211".parse().unwrap();
    assert_eq!(
        dial_addr(from, 7300),
        Some("10.0.0.7:7300".parse().unwrap())
    );
    assert_eq!(
        dial_addr(from, 0),
        None,
        "listen_port 0: accepts no connections"
    );
    assert_eq!(dial_addr("[::1]:4000".parse().unwrap(), 7300), None);
}

/// The network view (a pure function): me first, then connections, then by hops; capped at
/// MAX_VIEW_NODES nearest; links only between shown nodes, plus live connections.
#[test]
fn network_view_orders_by_nearness_and_keeps_the_nearest() {
    use dn_proto::topo::{Graph, Neighbour};
    let key = |n: u64| {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&n.to_be_bytes());
        b[31] = 1;
        SigningKey::from_bytes(&b)
    };
    let id = |n: u64| identity::node_id(&key(n));
    // A chain me(0) - 1 - 2 - … - 299, each node's record naming its two chain neighbours.
    let n = MAX_VIEW_NODES as u64 + 44;
    let mut g = Graph::default();
    for i in 0..n {
        let nbs = [i.checked_sub(1), Some(i + 1).filter(|j| *j < n)]
            .into_iter()
            .flatten()
            .map(|j| Neighbour {
                id: id(j),
                addr: None,
                rtt_ms: None,
            })
            .collect();
        assert!(g.update(TopoRecord::create(&key(i), 1, &format!("n{i}"), nbs), 0));
    }
    // Connected to node 1 (in the graph) and to a node whose record has not arrived yet.
    let fresh = id(9_999);
    let v = views::network_view(&g, id(0), "me", &[id(1), fresh]);
    assert_eq!(v.nodes.len(), MAX_VIEW_NODES, "capped");
    assert!(v.nodes[0].me && v.nodes[0].name == "me");
    assert!(v.nodes[1].connected && v.nodes[2].connected);
    let hops: Vec<Option<u32>> = v.nodes[3..].iter().map(|n| n.hops).collect();
    assert!(hops.windows(2).all(|w| w[0] <= w[1]), "nearest first");
    assert_eq!(
        v.nodes.last().unwrap().hops,
        Some(MAX_VIEW_NODES as u32 - 2)
    );
    let shown: std::collections::HashSet<&str> = v.nodes.iter().map(|n| n.id.as_str()).collect();
    assert!(v
        .links
        .iter()
        .all(|l| shown.contains(l.a.as_str()) && shown.contains(l.b.as_str())));
    let fresh_hex = fresh.to_hex();
    assert!(
        v.links.iter().any(|l| l.a == fresh_hex || l.b == fresh_hex),
        "a live connection is a link before its record arrives"
    );
}

/// Nodes that all list each other (sybils within the list caps) cannot fill the view with
/// links: at most MAX_VIEW_LINKS, this node's own first.
#[test]
fn network_view_links_are_capped_nearest_first() {
    use dn_proto::topo::{Graph, Neighbour};
    let key = |n: u64| {
        let mut b = [7u8; 32];
        b[..8].copy_from_slice(&n.to_be_bytes());
        SigningKey::from_bytes(&b)
    };
    let id = |n: u64| identity::node_id(&key(n));
    // Me (0) linked to 1; nodes 1..=100 all list each other: 4,950 links.
    let mut g = Graph::default();
    let nb = |j: u64| Neighbour {
        id: id(j),
        addr: None,
        rtt_ms: None,
    };
    g.update(TopoRecord::create(&key(0), 1, "me", vec![nb(1)]), 0);
    for i in 1..=100u64 {
        let mut nbs: Vec<Neighbour> = (1..=100u64).filter(|j| *j != i).map(nb).collect();
        if i == 1 {
            nbs.push(nb(0));
        }
        g.update(TopoRecord::create(&key(i), 1, "", nbs), 0);
    }
    assert_eq!(g.links().len(), 4_950 + 1);
    let v = views::network_view(&g, id(0), "me", &[id(1)]);
    assert_eq!(v.nodes.len(), 101);
    assert_eq!(v.links.len(), MAX_VIEW_LINKS, "capped");
    let (me, one) = (id(0).to_hex(), id(1).to_hex());
    assert!(
        v.links
            .iter()
            .any(|l| (l.a == me && l.b == one) || (l.a == one && l.b == me)),
        "this node's own link is kept"
    );
    // Node 1's links (1 hop out) come before links between 2-hop nodes.
    let ones = v.links.iter().filter(|l| l.a == one || l.b == one).count();
    assert_eq!(ones, 100, "all of node 1's links are shown");
}

/// The core's inbox: bounded, requests before network messages (each in order), a deadline,
/// and the end once no request sender is left.
#[test]
fn the_inbox_is_bounded_reads_requests_first_and_waits_with_a_deadline() {
    let (requests, network, mut inbox) = inbox();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let bad = |n: u8| CoreMsg::BadFrame {
        peer: NodeId([n; 32]),
        reason: "x".into(),
    };
    network.try_send(bad(1)).unwrap();
    network.try_send(bad(2)).unwrap();
    requests.try_send(CoreMsg::Shutdown).unwrap();
    let second = Duration::from_secs(1);
    assert!(matches!(
        inbox.wait(&rt, second),
        Wait::Msg(CoreMsg::Shutdown)
    ));
    for n in [1, 2] {
        match inbox.wait(&rt, second) {
            Wait::Msg(CoreMsg::BadFrame { peer, .. }) => assert_eq!(peer, NodeId([n; 32])),
            _ => panic!("network messages in order"),
        }
    }
    assert!(matches!(
        inbox.wait(&rt, Duration::from_millis(5)),
        Wait::Timeout
    ));
    for _ in 0..NETWORK_QUEUE {
        network.try_send(bad(3)).unwrap();
    }
    assert!(
        network.try_send(bad(4)).is_err(),
        "bounded: the sender must wait"
    );
    drop(requests);
    assert!(matches!(inbox.wait(&rt, second), Wait::Closed));
}

/// The status's drop table (a pure function): one row per reason with a count, the core's
/// and the driver's "not reading" summed, nothing for reasons that never happened.
#[test]
fn the_drop_table_merges_the_counters_by_reason() {
    let mut proto = Protocol::new(NodeId([1; 32]), "n".into(), 0, Vec::<String>::new());
    proto.count_rejected();
    proto.count_rejected();
    let core = CoreDrops {
        not_reading: 2,
        failed_commits: 1,
        ..CoreDrops::default()
    };
    let net = crate::net::NetCounters::default();
    crate::net::NetCounters::bump(&net.stalled);
    crate::net::NetCounters::bump(&net.beacon_dropped);
    let d = views::drops_table(&proto, &core, Some(&net));
    let want: std::collections::BTreeMap<String, u64> = [
        ("beacon_dropped", 1),
        ("failed_commits", 1),
        ("invalid", 2),
        ("not_reading", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(d, want);
    assert!(views::drops_table(
        &Protocol::new(NodeId([1; 32]), "n".into(), 0, Vec::<String>::new()),
        &CoreDrops::default(),
        None
    )
    .is_empty());
}
