//! The core carries out the protocol's bounded view: discovered peers become dials only up to
//! the view's target, a connection past the accept limit is closed with `CLOSE_VIEW`, and a
//! pinned peer (a `--peer` address or relay) is never the one closed.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::queue::out_queue;
use dn_proto::protocol::{ACTIVE_MAX, ACTIVE_TARGET};

fn key(i: u16) -> NodeId {
    let mut b = [9u8; 32];
    b[..2].copy_from_slice(&i.to_be_bytes());
    identity::node_id(&SigningKey::from_bytes(&b))
}

struct Rig {
    _dir: tempfile::TempDir,
    core: Core,
    cmds: tokio::sync::mpsc::Receiver<NetCmd>,
}

fn rig(relay: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (tx, _) = broadcast::channel(1024);
    let id_key = identity::load_or_create(dir.path()).unwrap();
    let (cmd, cmds) = tokio::sync::mpsc::channel(1024);
    let net = NetInfo {
        listen: "127.0.0.1:7300".parse().unwrap(),
        counters: std::sync::Arc::default(),
        mdns: false,
        cmd,
        carry_quota_bytes: dn_proto::protocol::DEFAULT_CARRY_QUOTA_BYTES,
        announcer: None,
        window: false,
        relay,
        active_view: None,
    };
    let core = Core::open(dir.path(), id_key, tx, Some(net)).unwrap();
    Rig {
        _dir: dir,
        core,
        cmds,
    }
}

fn connect(r: &mut Rig, peer: NodeId, conn_id: u64) {
    let (out, _wire, _pause) = out_queue();
    r.core.handle(CoreMsg::Connected {
        peer,
        conn_id,
        addr: "10.0.0.1:7300".parse().unwrap(),
        tx: out,
    });
}

fn drain(r: &mut Rig) -> Vec<NetCmd> {
    let mut v = Vec::new();
    while let Ok(c) = r.cmds.try_recv() {
        v.push(c);
    }
    v
}

#[test]
fn discovered_peers_are_dialed_only_up_to_the_view_target() {
    let mut r = rig(false);
    for i in 0..40u16 {
        r.core.handle(CoreMsg::Discovered {
            id: key(i),
            addrs: vec![SocketAddr::from(([10, 0, 0, i as u8 + 1], 7300))],
        });
    }
    // Nodes with a lower id than ours wait the first-dial delay; run the protocol past it.
    let later = r.core.time().mono_ms + dn_proto::protocol::FIRST_DIAL_DELAY_MS;
    let outs = r.core.proto.handle_timeout(&mut r.core.store, later);
    r.core.apply(outs);
    let dialed: std::collections::BTreeSet<NodeId> = drain(&mut r)
        .into_iter()
        .filter_map(|c| match c {
            NetCmd::Dial {
                id: Some(id),
                persistent: false,
                ..
            } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(dialed.len(), ACTIVE_TARGET, "not all 40: {dialed:?}");
}

#[test]
fn past_the_accept_limit_a_random_unpinned_peer_is_closed_as_view_full() {
    let mut r = rig(false);
    let pinned = key(1_000);
    r.core.handle(CoreMsg::Pinned { peer: pinned });
    connect(&mut r, pinned, 1);
    for i in 0..ACTIVE_MAX as u16 {
        connect(&mut r, key(i), 2 + u64::from(i));
    }
    assert!(drain(&mut r)
        .iter()
        .all(|c| !matches!(c, NetCmd::Close { .. })));
    let newcomer = key(2_000);
    connect(&mut r, newcomer, 100);
    let closes: Vec<(NodeId, u32)> = drain(&mut r)
        .into_iter()
        .filter_map(|c| match c {
            NetCmd::Close { peer, code, .. } => Some((peer, code)),
            _ => None,
        })
        .collect();
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert_eq!(closes[0].1, crate::net::CLOSE_VIEW);
    assert!(closes[0].0 != pinned && closes[0].0 != newcomer);
}

#[test]
fn a_relay_never_closes_for_the_view() {
    let mut r = rig(true);
    for i in 0..(3 * ACTIVE_MAX) as u16 {
        connect(&mut r, key(i), 1 + u64::from(i));
    }
    assert!(drain(&mut r)
        .iter()
        .all(|c| !matches!(c, NetCmd::Close { .. })));
}
