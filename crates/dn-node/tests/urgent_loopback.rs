//! Urgent messages over real QUIC on loopback: while a node catches up a large room from its
//! peer, an urgent message written at the peer arrives long before the catch-up ends
//! (docs/protocol.md §2.5; the timed figure is `dn-bench --only urgent`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dn_node::{calls, Engine, NodeConfig};
use dn_proto::Message;

/// Messages A holds before B connects: a catch-up of several seconds in a debug build.
const HISTORY: u64 = 20_000;

fn cfg(dir: &Path, peers: Vec<String>) -> NodeConfig {
    let mut c = NodeConfig::new(dir.to_path_buf());
    c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.mdns = false;
    c.beacon = false;
    c.peers = peers;
    c
}

async fn start(dir: &Path, name: &str, peers: Vec<String>) -> Engine {
    let e = Engine::start(cfg(dir, peers)).await.expect("engine starts");
    e.call(calls::SetName { name: name.into() }).await.unwrap();
    e.call(calls::JoinRoom {
        room: "medical".into(),
    })
    .await
    .unwrap();
    e
}

/// A's history, written by A itself 4 s apart (within the per-author window quota) and
/// older than the window of anything written now.
fn fill(dir: &Path) {
    let key = dn_node::identity::load_or_create(dir).unwrap();
    let now = dn_store::system_clock_ms();
    let t0 = now - 4_000 * HISTORY - 3 * 3_600_000;
    let store = dn_store::Store::open(&dir.join("store.sqlite3")).unwrap();
    store.join_room("medical", now).unwrap();
    let batch: Vec<_> = (0..HISTORY)
        .map(|k| {
            let body = format!("status {k}: beds free, water for two days");
            let m = Message::create(&key, "medical", "Alice", t0 + 4_000 * k, &body).unwrap();
            (m, now, false)
        })
        .collect();
    for chunk in batch.chunks(1_000) {
        store.insert_messages(chunk).unwrap();
    }
}

async fn stored(e: &Engine) -> u64 {
    e.call(calls::Status).await.unwrap().messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_message_overtakes_a_catch_up_in_flight() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    fill(da.path());
    let a = start(da.path(), "Alice", vec![]).await;
    let addr = a.call(calls::Status).await.unwrap().listen.unwrap();
    let b = start(db.path(), "Bob", vec![addr]).await;
    // The catch-up is under way.
    for _ in 0..600 {
        if stored(&b).await >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stored(&b).await >= 500, "the catch-up did not start");
    let sent = a
        .call(calls::Send {
            room: "medical".into(),
            body: "collapse at the market, need rescue".into(),
            urgent: true,
        })
        .await
        .unwrap();
    assert!(sent.urgent);
    // B has it, unacknowledged and pinned, while most of the history is still on its way.
    let mut arrived_with = None;
    for _ in 0..1_000 {
        let pinned = b.call(calls::Urgent { room: None }).await.unwrap();
        if pinned.iter().any(|m| m.id == sent.id) {
            arrived_with = Some(stored(&b).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held = arrived_with.expect("the urgent message did not arrive");
    assert!(
        held < HISTORY,
        "the urgent message arrived only with the catch-up done ({held} stored)"
    );
    let shown = b.call(calls::Urgent { room: None }).await.unwrap();
    assert_eq!(shown[0].body, "collapse at the market, need rescue");
    assert!(shown[0].urgent && !shown[0].acknowledged);
    // And the catch-up completes.
    for _ in 0..3_000 {
        if stored(&b).await > HISTORY {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored(&b).await, HISTORY + 1);
    a.shutdown().await;
    b.shutdown().await;
}
