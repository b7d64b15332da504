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
        next_sample: Instant::now(),
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
    assert!(
        d.next_dial_at() >= before + IDLE_WAKE,
        "a discovered peer is the protocol's to dial, not the driver's"
    );
    // A target the driver dials itself (as a static peer) ...
    for t in d.targets.values_mut() {
        t.passive = false;
    }
    // ... is due at once, or after 1.5 s when the other side has the lower id (it dials first).
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
            t.passive = false;
        }
    }
    d.on_discovered(heard(99, [10, 0, 2, 1]));
    for t in d.targets.values_mut() {
        t.passive = false;
    }
    assert!(
        d.next_dial_at() >= before + IDLE_WAKE,
        "at the dial cap: no busy wake"
    );
}

#[tokio::test]
async fn a_relay_address_is_kept_with_no_address_yet_and_forgotten_on_request() {
    let mut d = driver();
    // A full table of discovered targets never keeps a relay out.
    for n in 0..MAX_TARGETS as u32 {
        let b = n.to_be_bytes();
        d.on_discovered(heard(1_000 + n, [10, b[1], b[2], b[3]]));
    }
    for t in d.targets.values_mut() {
        t.next = Instant::now() + Duration::from_secs(3600); // nothing else is due
    }
    let host = "127.0.0.1:9".to_string(); // a literal: no lookup leaves the host
    d.on_cmd(NetCmd::DialHost { host: host.clone() });
    let t = d.targets.get(&host_key(&host)).unwrap();
    assert!(t.persistent && t.addrs.is_empty() && t.host.as_deref() == Some(host.as_str()));
    assert!(
        t.dialing,
        "dialled at once (a name would be looked up in the dial task)"
    );
    // A failed lookup backs off like any dial and the target stays.
    d.on_internal(Internal::DialFailed {
        key: host_key(&host),
        error: "no such host".into(),
    })
    .await;
    let t = d.targets.get(&host_key(&host)).unwrap();
    assert!(!t.dialing && t.next > Instant::now());
    d.on_cmd(NetCmd::ForgetHost { host: host.clone() });
    assert!(!d.targets.contains_key(&host_key(&host)));
}

#[test]
fn ipv4_mapped_addresses_are_ipv4() {
    let mapped: SocketAddr = "[::ffff:10.0.0.2]:7300".parse().unwrap();
    assert_eq!(canonical(mapped), SocketAddr::from(([10, 0, 0, 2], 7300)));
    let v6: SocketAddr = "[fe80::1%3]:7300".parse().unwrap();
    assert_eq!(canonical(v6), v6);
}

#[test]
fn an_ipv6_listen_address_is_dual_stack() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
    let tls = TlsIdentity::new(&key).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let Ok(net) = Net::bind(&tls, "[::]:0".parse().unwrap(), false, Limits::relay()) else {
        return; // no IPv6 on this host: the fallback is tested by the netns labs
    };
    assert!(net.listen.is_ipv6(), "{}", net.listen);
    // Dual-stack: the socket holds the IPv4 port too (IPV6_V6ONLY off).
    let v4 = std::net::UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], net.listen.port())));
    assert_eq!(
        v4.map(drop).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::AddrInUse)
    );
    assert_eq!(net.limits, Limits::relay());
}
