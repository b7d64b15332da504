//! The source-tree budget: sybils in the graph sending from rotating authors cannot make a
//! node compute a tree per message.

use super::tests::{Attacker, Net};
use super::*;
use crate::topo::{Neighbour, TopoRecord};
use ed25519_dalek::SigningKey;

fn sybil(i: usize) -> SigningKey {
    let mut b = [0x5a; 32];
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SigningKey::from_bytes(&b)
}

fn nid(k: &SigningKey) -> NodeId {
    NodeId(k.verifying_key().to_bytes())
}

/// `n` sybil lists as an attacker would sign them, within the caps: each names the attacker,
/// its 120 nearest sybils on a ring (both ends list each link, so it counts) and 7 made-up
/// nodes (of which the graph keeps [`crate::topo::MAX_UNRECORDED`]), so every tree costs
/// ≈ 37 k entries at 300 sybils.
fn sybil_lists(attacker: NodeId, n: usize) -> Vec<TopoRecord> {
    (0..n)
        .map(|i| {
            let mut nbs = vec![attacker];
            nbs.extend(
                (1..=60).flat_map(|d| [nid(&sybil((i + d) % n)), nid(&sybil((i + n - d) % n))]),
            );
            nbs.extend((0..7u32).map(|j| {
                let mut b = [0xee; 32];
                b[..4].copy_from_slice(&(i as u32).to_le_bytes());
                b[4..8].copy_from_slice(&j.to_le_bytes());
                NodeId(b)
            }));
            let nbs = nbs
                .into_iter()
                .map(|id| Neighbour {
                    id,
                    addr: None,
                    rtt_ms: Some(0),
                })
                .collect();
            TopoRecord::create(&sybil(i), 1, "ghost", nbs)
        })
        .collect()
}

#[test]
fn rotating_sybil_authors_past_the_tree_budget_follow_the_shared_tree_and_are_counted() {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    const SYBILS: usize = 300;
    for rec in sybil_lists(atk.id, SYBILS) {
        atk.send(&mut net, 0, Frame::Topo(rec));
    }
    assert!(
        net.nodes[0].graph().len() >= SYBILS,
        "the sybils' lists are in"
    );
    let runs = net.nodes[0].graph().tree_runs();
    // One message from each of 200 sybils, all at once, relayed by the attacker.
    const AUTHORS: usize = 200;
    let mut ids = Vec::new();
    for i in 0..AUTHORS {
        let m = Message::create(&sybil(i), "medical", "ghost", 1_000 + i as u64, "hello").unwrap();
        ids.push(m.id());
        atk.send(
            &mut net,
            0,
            Frame::Msg {
                hops: 10,
                message: m,
            },
        );
    }
    net.run();
    let computed = net.nodes[0].graph().tree_runs() - runs;
    let over = net.nodes[0].counters().tree_over_budget;
    assert_eq!(
        computed + over,
        AUTHORS as u64,
        "each message either computed its author's tree or was counted"
    );
    let per_tree = net.nodes[0].graph().source_tree_work(&nid(&sybil(AUTHORS)));
    assert!(
        per_tree > 30_000,
        "a costly graph: {per_tree} entries a tree"
    );
    assert!(
        computed <= TREE_WORK_BURST / per_tree + 1,
        "trees computed within the burst: {computed} of {per_tree} entries each"
    );
    assert!(over > 150, "the rest counted: {over}");
    // Every one was stored and passed on anyway, over the shared tree.
    for id in &ids {
        assert!(net.stores[0].has(id).unwrap());
        assert!(
            net.stores[1].has(id).unwrap(),
            "node 1 got it through node 0"
        );
    }
    // Once the budget has refilled, a new author's tree is computed again.
    net.advance_to(net.now + 60_000);
    let runs = net.nodes[0].graph().tree_runs();
    let m = Message::create(&sybil(AUTHORS), "medical", "ghost", 5_000, "later").unwrap();
    atk.send(
        &mut net,
        0,
        Frame::Msg {
            hops: 10,
            message: m,
        },
    );
    assert_eq!(net.nodes[0].graph().tree_runs(), runs + 1);
    assert_eq!(net.nodes[0].counters().tree_over_budget, over);
}
