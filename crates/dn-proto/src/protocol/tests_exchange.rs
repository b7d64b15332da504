//! Peer exchange (exchange.rs): a node below its target connections dials the nearest nodes
//! its neighbour lists tell it about, once per node per minute.

use std::net::SocketAddrV4;

use super::tests::Net;
use super::*;
use crate::topo::{Neighbour, TopoRecord};

fn dials(outs: &[Output]) -> Vec<(NodeId, Vec<std::net::SocketAddr>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Dial { node, addrs } => Some((*node, addrs.clone())),
            _ => None,
        })
        .collect()
}

/// Node 0 is connected to node 1 only; node 1's signed neighbour list names nodes 2 and 3
/// with the addresses it reaches them at.
fn two_hop_net() -> (Net, SocketAddrV4, SocketAddrV4) {
    let mut net = Net::new(4, "medical");
    net.connect(0, 1);
    net.run();
    let (a2, a3): (SocketAddrV4, SocketAddrV4) = (
        "10.0.0.2:7300".parse().unwrap(),
        "10.0.0.3:7300".parse().unwrap(),
    );
    let nbs = vec![
        Neighbour {
            id: net.id(0),
            addr: None,
            rtt_ms: None,
        },
        Neighbour {
            id: net.id(2),
            addr: Some(a2),
            rtt_ms: None,
        },
        Neighbour {
            id: net.id(3),
            addr: Some(a3),
            rtt_ms: None,
        },
    ];
    let rec = TopoRecord::create(&net.keys[1], 1, "n1", nbs);
    net.input(1, Input::LocalTopology(rec));
    let own = TopoRecord::create(
        &net.keys[0],
        1,
        "n0",
        vec![Neighbour {
            id: net.id(1),
            addr: None,
            rtt_ms: None,
        }],
    );
    // Past the gap after the connection's own check.
    net.now += EXCHANGE_MIN_GAP_MS;
    net.input(0, Input::LocalTopology(own));
    (net, a2, a3)
}

fn handle(net: &mut Net, i: usize, input: Input) -> Vec<Output> {
    net.nodes[i].handle(&mut net.stores[i], input, net.now)
}

#[test]
fn a_node_below_its_target_dials_the_nodes_its_neighbours_list() {
    let (mut net, a2, a3) = two_hop_net();
    // Node 1's list reaches node 0 (a Topo frame); the graph changed within the gap of the
    // last check, so the check waits for the next input after the gap (here a tick).
    net.run();
    net.now += EXCHANGE_MIN_GAP_MS;
    let mut dialled = dials(&handle(&mut net, 0, Input::Tick));
    dialled.sort();
    let mut want = vec![(net.id(2), vec![a2.into()]), (net.id(3), vec![a3.into()])];
    want.sort();
    assert_eq!(
        dialled, want,
        "nearest not-connected nodes, at the listed addresses"
    );

    // Not suggested again within a minute, whatever happens meanwhile.
    net.now += 5_000;
    assert!(dials(&handle(&mut net, 0, Input::Tick)).is_empty());
    net.now += SUGGEST_AGAIN_MS;
    let again = dials(&handle(&mut net, 0, Input::Tick));
    assert_eq!(
        again.len(),
        2,
        "suggested again after {SUGGEST_AGAIN_MS} ms: {again:?}"
    );
}

#[test]
fn a_node_with_enough_connections_dials_nobody() {
    let (mut net, _, _) = two_hop_net();
    net.run();
    // Fill node 0 up to its target with (made-up) connected peers.
    for k in 0..TARGET_PEERS as u8 {
        let peer = NodeId([100 + k; 32]);
        handle(&mut net, 0, Input::Connected { peer });
    }
    net.now += SUGGEST_AGAIN_MS + 1;
    assert!(dials(&handle(&mut net, 0, Input::Tick)).is_empty());
}

#[test]
fn graph_changes_are_checked_at_most_every_gap() {
    let (mut net, _, _) = two_hop_net();
    net.run();
    // A burst of graph changes: one check per EXCHANGE_MIN_GAP_MS at most, the rest at the
    // next tick or the next input after the gap.
    let checks_before = net.nodes[0].exchange.last;
    net.now += 1;
    handle(
        &mut net,
        0,
        Input::Disconnected {
            peer: NodeId([9; 32]),
        },
    );
    assert_eq!(
        net.nodes[0].exchange.last, checks_before,
        "within the gap: postponed"
    );
    assert!(net.nodes[0].exchange.due);
    net.now += EXCHANGE_MIN_GAP_MS;
    let peer = net.id(1);
    handle(&mut net, 0, Input::Drained { peer, bytes: 0 });
    assert_eq!(
        net.nodes[0].exchange.last,
        Some(net.now),
        "after the gap: checked"
    );
    assert!(!net.nodes[0].exchange.due);
}
