//! The protocol's own timers (quinn's model): `poll_timeout` says when, `handle_timeout` runs
//! what is due; the harness steps simulated time (`Net::advance_to`), nobody sends timers back.

use super::tests::{Attacker, Net};
use super::*;

fn ihave(room: &str, id: MessageId) -> Frame {
    Frame::IHave {
        room: room.into(),
        ids: vec![id],
    }
}

#[test]
fn a_missed_message_is_grafted_after_the_wait_then_from_the_next_announcer() {
    // Node 1 hears of a message first from a silent peer, then from node 0 which has it.
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    let m = Message::create(&net.keys[0], "medical", "n0", 5, "water at gate 2").unwrap();
    assert!(net.stores[0].insert(&m).unwrap());
    let silent = Attacker::connect(&mut net, 1, &["medical"]);
    net.now = 1_000;
    silent.send(&mut net, 1, ihave("medical", m.id()));
    let peer = net.id(0);
    net.input(
        1,
        Input::Frame {
            peer,
            frame: ihave("medical", m.id()),
        },
    );
    let cfg = Config::default();
    assert_eq!(
        net.nodes[1].poll_timeout(),
        Some(1_000 + cfg.ihave_timeout_ms),
        "the repair is the next deadline"
    );
    // Just before the wait is over nothing happens.
    net.advance_to(1_000 + cfg.ihave_timeout_ms - 1);
    assert!(!net.stores[1].has(&m.id()).unwrap());
    assert_eq!(net.nodes[1].counters().grafts, 0);
    // Then a Graft to the first announcer (silent: nothing comes back) …
    net.advance_to(1_000 + cfg.ihave_timeout_ms);
    assert_eq!(net.nodes[1].counters().grafts, 1);
    assert!(!net.stores[1].has(&m.id()).unwrap());
    // … and after the retry wait a Graft to the next one, which answers.
    net.advance_to(1_000 + cfg.ihave_timeout_ms + cfg.graft_retry_ms);
    assert_eq!(net.nodes[1].counters().grafts, 2);
    assert!(net.stores[1].has(&m.id()).unwrap());
    assert_eq!(net.nodes[1].pending_repairs(), 0, "done: no deadline left");
}

#[test]
fn a_message_that_arrives_cancels_its_repair() {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    let m = Message::create(&net.keys[0], "medical", "n0", 5, "x").unwrap();
    let peer = net.id(0);
    net.input(
        1,
        Input::Frame {
            peer,
            frame: ihave("medical", m.id()),
        },
    );
    assert_eq!(net.nodes[1].poll_timeout(), Some(400));
    net.input(
        1,
        Input::Frame {
            peer,
            frame: Frame::Msg {
                hops: 3,
                message: m.clone(),
            },
        },
    );
    assert_eq!(net.nodes[1].pending_repairs(), 0);
    assert!(
        net.nodes[1].poll_timeout().unwrap() > 400,
        "the repair's deadline is gone"
    );
    net.advance_to(10_000);
    assert_eq!(net.nodes[1].counters().grafts, 0);
}

#[test]
fn housekeeping_runs_on_its_own_schedule() {
    use crate::topo::TopoRecord;
    // A neighbour list of a node that then goes silent expires without anyone ticking.
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    let gone = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    let rec = TopoRecord::create(&gone, 1, "gone", vec![]);
    let gone_id = rec.node;
    let peer = net.id(0);
    net.input(
        1,
        Input::Frame {
            peer,
            frame: Frame::Topo(rec),
        },
    );
    assert!(net.nodes[1].graph().record(&gone_id).is_some());
    let next = net.nodes[1].poll_timeout().unwrap();
    assert!(next <= TICK_MS, "a tick within {TICK_MS} ms: {next}");
    net.advance_to(TOPO_MAX_AGE_MS + TICK_MS);
    assert!(
        net.nodes[1].graph().record(&gone_id).is_none(),
        "expired by the node's own housekeeping"
    );
}

#[test]
fn the_own_neighbour_list_is_asked_for_at_start_after_changes_and_at_refresh() {
    let me = NodeId([1; 32]);
    let mut node = Protocol::new(me, "n".into(), 7300, ["medical".to_string()]);
    let mut store = MemStorage::default();
    let signs = |outs: &[Output]| {
        outs.iter()
            .filter(|o| matches!(o, Output::SignNeighbours))
            .count()
    };
    let peer = |i: u8| NodeId([i; 32]);
    let outs = node.handle(&mut store, Input::Connected { peer: peer(2) }, 0);
    assert_eq!(signs(&outs), 1, "at start");
    // While the view forms, the first two changes are signed 1.5 s apart ...
    let outs = node.handle(&mut store, Input::Connected { peer: peer(3) }, 1_000);
    assert_eq!(signs(&outs), 0, "not sooner than the fast gap");
    assert_eq!(node.poll_timeout(), Some(OWN_TOPO_FAST_GAP_MS));
    assert_eq!(
        signs(&node.handle_timeout(&mut store, OWN_TOPO_FAST_GAP_MS)),
        1
    );
    let second = 2 * OWN_TOPO_FAST_GAP_MS;
    node.handle(&mut store, Input::Connected { peer: peer(4) }, 2_000);
    assert_eq!(signs(&node.handle_timeout(&mut store, second - 1)), 0);
    assert_eq!(signs(&node.handle_timeout(&mut store, second)), 1);
    // ... then at the normal gap, which peers accept.
    node.handle(&mut store, Input::Connected { peer: peer(5) }, 3_500);
    let third = second + OWN_TOPO_GAP_MS;
    assert_eq!(
        node.poll_timeout(),
        Some(TICK_MS),
        "the first tick comes first"
    );
    assert_eq!(signs(&node.handle_timeout(&mut store, TICK_MS)), 0);
    assert_eq!(node.poll_timeout(), Some(third), "then the neighbour list");
    assert_eq!(signs(&node.handle_timeout(&mut store, third - 1)), 0);
    assert_eq!(signs(&node.handle_timeout(&mut store, third)), 1);
    // Nothing changed since: the next one is the refresh.
    let refresh = node.own_topo_refresh_ms();
    assert!(
        (TOPO_REFRESH_MS * 3 / 4..TOPO_REFRESH_MS * 5 / 4).contains(&refresh),
        "{refresh}"
    );
    for t in (third..third + refresh).step_by(5_000) {
        assert_eq!(signs(&node.handle_timeout(&mut store, t + 1)), 0, "at {t}");
    }
    let outs = node.handle_timeout(&mut store, third + refresh);
    assert_eq!(signs(&outs), 1, "refresh");
}

#[test]
fn the_refresh_period_grows_with_the_graph_within_its_bounds() {
    use crate::topo::TopoRecord;
    let mut node = Protocol::new(NodeId([1; 32]), "n".into(), 7300, ["medical".to_string()]);
    let within = |p: u64, base: u64| (base * 3 / 4..base * 5 / 4).contains(&p);
    let add = |node: &mut Protocol, from: u16, to: u16| {
        for i in from..to {
            let mut seed = [9u8; 32];
            seed[..2].copy_from_slice(&i.to_be_bytes());
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            node.graph
                .update(TopoRecord::create(&key, 1, "", vec![]), 0);
        }
    };
    // A small network: the floor.
    add(&mut node, 0, 10);
    let small = node.own_topo_refresh_ms();
    assert!(within(small, TOPO_REFRESH_MS), "{small}");
    // A hub of a hundred: six seconds per node, so each node's refresh cost stays the same.
    add(&mut node, 10, 100);
    assert_eq!(node.graph.len(), 100);
    let hub = node.own_topo_refresh_ms();
    assert!(within(hub, 100 * TOPO_REFRESH_PER_NODE_MS), "{hub}");
    let ratio = hub as f64 / small as f64;
    let bases = (100 * TOPO_REFRESH_PER_NODE_MS) as f64 / TOPO_REFRESH_MS as f64;
    assert!((ratio - bases).abs() < 1e-3, "same factor: {ratio}");
    // Past 300 nodes: the ceiling, which expiry leaves room for three times over.
    add(&mut node, 100, 400);
    let big = node.own_topo_refresh_ms();
    assert!(within(big, TOPO_REFRESH_MAX_MS), "{big}");
    assert!(3 * big <= TOPO_MAX_AGE_MS);
}
