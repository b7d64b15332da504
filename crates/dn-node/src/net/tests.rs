//! Unit tests of the network driver's dial-target table and its wake-up time, on a real
//! loopback endpoint but without dialing anyone.

#![allow(clippy::unwrap_used)]

use super::*;

fn driver() -> Driver {
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let tls = Arc::new(TlsIdentity::new(&key).unwrap());
    let net = Net::bind(
        &tls,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        false,
        Limits::default(),
    )
    .unwrap();
    let (core, _) = channel(1);
    let (internal, _) = channel(INTERNAL_QUEUE);
    Driver {
        me: crate::identity::node_id(&key),
        tls,
        endpoint: net.endpoint,
        core,
        internal,
        targets: HashMap::new(),
        live: HashMap::new(),
        handshakes: HashMap::new(),
        counters: net.counters,
        limits: net.limits,
        next_conn_id: 1,
        jitter: 1,
    }
}

fn heard(n: u32, addr: [u8; 4]) -> Discovered {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&n.to_be_bytes());
    Discovered {
        id: NodeId(id),
        addrs: vec![SocketAddr::from((addr, 7300))],
    }
}

#[tokio::test]
async fn one_source_address_cannot_fill_the_target_table() {
    let mut d = driver();
    for n in 0..100 {
        d.on_discovered(heard(n, [10, 0, 0, 9]));
    }
    assert_eq!(
        d.targets.len(),
        MAX_IDS_PER_ADDRESS,
        "ids per source address capped"
    );
    assert_eq!(
        d.counters.discovery_dropped.load(Ordering::Relaxed),
        100 - MAX_IDS_PER_ADDRESS as u64
    );
    // Many sources: the table stays at its cap.
    for n in 0..(MAX_TARGETS as u32 + 100) {
        let b = n.to_be_bytes();
        d.on_discovered(heard(1_000 + n, [10, b[1], b[2], b[3]]));
    }
    assert!(d.targets.len() <= MAX_TARGETS, "{}", d.targets.len());
}

#[tokio::test]
async fn the_driver_sleeps_until_the_next_dial_or_the_idle_wake() {
    let mut d = driver();
    let before = Instant::now();
    assert!(
        d.next_dial_at() >= before + IDLE_WAKE,
        "nothing to dial: idle wake"
    );
    d.on_discovered(heard(1, [10, 0, 0, 2]));
    // Due at once, or after 1.5 s when the other side has the lower id (it dials first).
    assert!(
        d.next_dial_at() <= Instant::now() + Duration::from_millis(1500),
        "a new target is due soon, not at the idle wake"
    );
    // While as many dials as allowed are in flight, finished dials wake the loop instead.
    for t in d.targets.values_mut() {
        t.dialing = true;
    }
    for n in 2..(MAX_DIALS_IN_FLIGHT as u32 + 2) {
        d.on_discovered(heard(n, [10, 0, 1, n as u8]));
        for t in d.targets.values_mut() {
            t.dialing = true;
        }
    }
    d.on_discovered(heard(99, [10, 0, 2, 1]));
    assert!(
        d.next_dial_at() >= before + IDLE_WAKE,
        "at the dial cap: no busy wake"
    );
}
