//! The bounded active view (view.rs): dial up to the target from the passive list, close a
//! random other peer past the accept limit, repair from the passive list, pinned peers apart.

use std::net::SocketAddr;

use super::*;

fn node(i: u16) -> NodeId {
    let mut b = [0u8; 32];
    b[0] = 0x80; // above `me` (all zero but the last byte): dialed without the first delay
    b[1..3].copy_from_slice(&i.to_be_bytes());
    NodeId(b)
}

fn me() -> Protocol {
    let mut id = [0u8; 32];
    id[31] = 1;
    Protocol::new(NodeId(id), "me".into(), 7300, ["medical".to_string()])
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7300))
}

fn dials(outs: &[Output]) -> Vec<NodeId> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Dial { node, .. } => Some(*node),
            _ => None,
        })
        .collect()
}

fn closes(outs: &[Output]) -> Vec<NodeId> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Disconnect { peer } => Some(*peer),
            _ => None,
        })
        .collect()
}

fn discover(
    p: &mut Protocol,
    s: &mut MemStorage,
    range: std::ops::Range<u16>,
    now: u64,
) -> Vec<Output> {
    let mut outs = Vec::new();
    for i in range {
        outs.extend(p.handle(
            s,
            Input::Discovered {
                node: node(i),
                addrs: vec![addr(i)],
            },
            now,
        ));
    }
    outs
}

#[test]
fn discovered_peers_are_dialed_up_to_the_target_only() {
    let (mut p, mut s) = (me(), MemStorage::default());
    let outs = discover(&mut p, &mut s, 0..40, 0);
    let d = dials(&outs);
    assert_eq!(d.len(), ACTIVE_TARGET, "{d:?}");
    let unique: BTreeSet<NodeId> = d.iter().copied().collect();
    assert_eq!(unique.len(), ACTIVE_TARGET);
    // The dials are in flight: nothing more is dialed, however much more is heard.
    let outs = discover(&mut p, &mut s, 40..60, 1_000);
    assert!(dials(&outs).is_empty());
    assert_eq!(p.passive_len(), 60);
    // Five answer; once the other dials are given up, three more are dialed.
    for n in d.iter().take(5) {
        p.handle(&mut s, Input::Connected { peer: *n }, 2_000);
    }
    let outs = p.handle_timeout(&mut s, DIAL_PENDING_MS + 1);
    let again = dials(&outs);
    assert_eq!(again.len(), 3, "{again:?}");
    assert!(again.iter().all(|n| !d[..5].contains(n)));
    assert_eq!(p.active_view().len(), 5);
}

#[test]
fn a_small_network_is_a_full_mesh_as_before() {
    let (mut p, mut s) = (me(), MemStorage::default());
    let outs = discover(&mut p, &mut s, 0..5, 0);
    let d: BTreeSet<NodeId> = dials(&outs).into_iter().collect();
    assert_eq!(d, (0..5).map(node).collect());
    // A node with a lower id than ours is dialed too, after the first-dial delay.
    let mut low = [0u8; 32];
    low[31] = 0;
    let low = NodeId(low);
    let outs = p.handle(
        &mut s,
        Input::Discovered {
            node: low,
            addrs: vec![addr(99)],
        },
        10,
    );
    assert!(dials(&outs).is_empty());
    assert_eq!(p.poll_timeout(), Some(10 + FIRST_DIAL_DELAY_MS));
    let outs = p.handle_timeout(&mut s, 10 + FIRST_DIAL_DELAY_MS);
    assert_eq!(dials(&outs), vec![low]);
    for n in d {
        let outs = p.handle(&mut s, Input::Connected { peer: n }, 2_000);
        assert!(closes(&outs).is_empty());
    }
}

#[test]
fn past_the_accept_limit_a_random_other_peer_is_closed() {
    let (mut p, mut s) = (me(), MemStorage::default());
    let pinned = node(500);
    assert!(p.set_pinned(pinned, true));
    p.handle(&mut s, Input::Connected { peer: pinned }, 0);
    let mut closed = Vec::new();
    for i in 0..ACTIVE_MAX as u16 + 5 {
        let outs = p.handle(&mut s, Input::Connected { peer: node(i) }, 1 + u64::from(i));
        let c = closes(&outs);
        assert!(
            !c.contains(&node(i)),
            "the newcomer is never the one closed"
        );
        assert!(!c.contains(&pinned), "a pinned peer is never closed");
        if usize::from(i) < ACTIVE_MAX {
            assert!(c.is_empty(), "closed {c:?} at {i}");
        } else {
            assert_eq!(c.len(), 1, "one closed per newcomer past the limit");
        }
        closed.extend(c);
    }
    assert_eq!(p.active_view().len(), ACTIVE_MAX);
    assert!(!p.active_view().contains(&pinned));
    // Random, not always the oldest.
    let oldest: Vec<NodeId> = (0..5).map(node).collect();
    assert_ne!(closed, oldest);
    // Once they are gone, nothing more is closed and the view stays at the limit.
    for c in closed {
        let outs = p.handle(&mut s, Input::Disconnected { peer: c }, 100);
        assert!(closes(&outs).is_empty());
    }
    let outs = p.handle(&mut s, Input::Tick, 200);
    assert!(closes(&outs).is_empty());
    assert_eq!(p.active_view().len(), ACTIVE_MAX);
}

#[test]
fn a_lost_peer_is_replaced_from_the_passive_list_and_retried_later() {
    let (mut p, mut s) = (me(), MemStorage::default());
    let d = dials(&discover(&mut p, &mut s, 0..20, 0));
    for n in &d {
        p.handle(&mut s, Input::Connected { peer: *n }, 100);
    }
    assert_eq!(p.active_view().len(), ACTIVE_TARGET);
    let lost = d[0];
    let outs = p.handle(&mut s, Input::Disconnected { peer: lost }, 10_000);
    let repl = dials(&outs);
    assert_eq!(repl.len(), 1, "the gap is filled at once");
    assert_ne!(repl[0], lost, "the lost peer waits its retry delay");
    assert!(!d.contains(&repl[0]));
    // The replacement does not answer: after its dial is given up, another one is tried
    // (possibly the lost peer, whose delay has passed).
    let at = 10_000 + DIAL_PENDING_MS;
    let outs = p.handle_timeout(&mut s, at);
    assert_eq!(dials(&outs).len(), 1);
}

#[test]
fn unreachable_entries_are_dialed_less_and_less_often() {
    let (mut p, mut s) = (me(), MemStorage::default());
    let n = node(1);
    let mut times = Vec::new();
    let mut now = 0;
    discover(&mut p, &mut s, 1..2, 0);
    times.push(0);
    while now < 200_000 {
        let Some(t) = p.poll_timeout() else { break };
        now = t.max(now + 1);
        if dials(&p.handle_timeout(&mut s, now)).contains(&n) {
            times.push(now);
        }
    }
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 4, "{times:?}");
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
    assert!(gaps
        .iter()
        .all(|g| *g <= PASSIVE_RETRY_MAX_MS.max(DIAL_PENDING_MS) + TICK_MS));
}

#[test]
fn the_passive_list_is_bounded() {
    let (mut p, mut s) = (me(), MemStorage::default());
    discover(&mut p, &mut s, 0..(PASSIVE_CAP as u16 * 4), 0);
    assert_eq!(p.passive_len(), PASSIVE_CAP);
}

#[test]
fn busy_peers_are_closed_only_at_the_tick() {
    let (mut p, mut s) = (me(), MemStorage::default());
    for i in 0..ACTIVE_MAX as u16 {
        p.handle(&mut s, Input::Connected { peer: node(i) }, 0);
    }
    // Every peer has a reply waiting (a catch-up it is in the middle of).
    for (k, st) in p.peers.values_mut().enumerate() {
        st.replies.push_back(MessageId([k as u8; 32]));
    }
    // A newcomer past the limit: every other peer is busy, so none is cut mid-way...
    let newcomer = node(1_000);
    let outs = p.handle(&mut s, Input::Connected { peer: newcomer }, 1);
    assert!(closes(&outs).is_empty(), "a busy peer was cut mid-way");
    assert_eq!(p.active_view().len(), ACTIVE_MAX + 1);
    // ...until the tick, which bounds the view all the same.
    let outs = p.handle(&mut s, Input::Tick, 2);
    let c = closes(&outs);
    assert_eq!(c.len(), 1);
    assert_ne!(c[0], newcomer);
    assert_eq!(p.active_view().len(), ACTIVE_MAX);
}

#[test]
fn an_idle_peer_is_closed_before_a_busy_one() {
    let (mut p, mut s) = (me(), MemStorage::default());
    for i in 0..ACTIVE_MAX as u16 {
        p.handle(&mut s, Input::Connected { peer: node(i) }, 0);
    }
    let idle = node(7);
    for (id, st) in p.peers.iter_mut() {
        if *id != idle {
            st.replies.push_back(MessageId([1; 32]));
        }
    }
    let outs = p.handle(&mut s, Input::Connected { peer: node(1_000) }, 1);
    assert_eq!(closes(&outs), vec![idle]);
}

#[test]
fn a_relay_configuration_never_closes() {
    let config = Config {
        active_max: usize::MAX,
        ..Config::default()
    };
    let mut p = Protocol::with_config(node(9_999), "relay".into(), 7300, [], config);
    let mut s = MemStorage::default();
    for i in 0..100 {
        let outs = p.handle(&mut s, Input::Connected { peer: node(i) }, u64::from(i));
        assert!(closes(&outs).is_empty());
    }
    let outs = p.handle(&mut s, Input::Tick, 1_000);
    assert!(closes(&outs).is_empty());
    assert_eq!(p.active_view().len(), 100);
}

/// Node `me` with a full view (target 1: connected to A) hears B, which its network graph does
/// not reach (another group): after [`BRIDGE_AFTER_MS`] it dials B across its full view,
/// once per tick at most, and not once the graph reaches B.
#[test]
fn a_group_the_graph_does_not_reach_is_bridged() {
    use crate::topo::{Neighbour, TopoRecord};
    use ed25519_dalek::SigningKey;
    let keys: Vec<SigningKey> = (1..=3u8)
        .map(|b| SigningKey::from_bytes(&[b; 32]))
        .collect();
    let ids: Vec<NodeId> = keys
        .iter()
        .map(|k| NodeId(k.verifying_key().to_bytes()))
        .collect();
    let (me_id, a, b) = (ids[0], ids[1], ids[2]);
    let config = Config {
        active_target: 1,
        active_max: 3,
        ..Config::default()
    };
    let mut p = Protocol::with_config(me_id, "me".into(), 7300, [], config);
    let mut s = MemStorage::default();
    let nb = |id: NodeId| Neighbour {
        id,
        addr: None,
        rtt_ms: None,
    };
    let rec = |k: usize, seq: u64, n: Vec<Neighbour>| TopoRecord::create(&keys[k], seq, "", n);
    p.handle(&mut s, Input::Connected { peer: a }, 0);
    p.handle(&mut s, Input::LocalTopology(rec(0, 1, vec![nb(a)])), 0);
    for (id, i) in [(a, 1u16), (b, 2)] {
        p.handle(
            &mut s,
            Input::Discovered {
                node: id,
                addrs: vec![addr(i)],
            },
            0,
        );
    }
    let mut dialed_b = Vec::new();
    let mut now = 0;
    while now < BRIDGE_AFTER_MS + 3 * TICK_MS {
        now += TICK_MS;
        let outs = p.handle(&mut s, Input::Tick, now);
        if dials(&outs).contains(&b) {
            dialed_b.push(now);
        }
    }
    assert!(
        dialed_b.first().is_some_and(|t| *t >= BRIDGE_AFTER_MS),
        "B dialed at {dialed_b:?}"
    );
    // B's group joins ours (A and B list each other): B is reachable, no more bridging.
    let at = now;
    p.handle(
        &mut s,
        Input::Frame {
            peer: a,
            frame: Frame::Hello {
                version: crate::message::PROTOCOL_VERSION,
                node: a,
                name: "a".into(),
                rooms: vec![],
                listen_port: 7300,
            },
        },
        at,
    );
    for r in [rec(1, 1, vec![nb(me_id), nb(b)]), rec(2, 1, vec![nb(a)])] {
        p.handle(
            &mut s,
            Input::Frame {
                peer: a,
                frame: Frame::Topo(r),
            },
            at,
        );
    }
    assert!(p.graph().hops(&me_id, &b).is_some());
    while now < at + 10 * PASSIVE_RETRY_MAX_MS {
        now += TICK_MS;
        let outs = p.handle(&mut s, Input::Tick, now);
        assert!(
            !dials(&outs).contains(&b),
            "B is reachable: no bridge at {now}"
        );
    }
}
