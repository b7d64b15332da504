use super::*;

fn lan() -> Vec<InterfaceObs> {
    vec![
        InterfaceObs {
            name: "lo".into(),
            addr: "127.0.0.1".into(),
            prefix: 8,
            loopback: true,
        },
        InterfaceObs {
            name: "wlan0".into(),
            addr: "10.9.0.2".into(),
            prefix: 24,
            loopback: false,
        },
    ]
}

/// A node up for a minute with mDNS and beacon working and nothing else.
fn base() -> Observations {
    Observations {
        uptime_s: 60,
        interfaces: lan(),
        listen: "0.0.0.0:7300".into(),
        requested_port: 7300,
        mdns_on: true,
        mdns_up: true,
        beacon_on: true,
        beacon_up: true,
        mdns_heard: 0,
        beacons_heard: 0,
        mdns_last_ago_s: None,
        beacon_last_ago_s: None,
        heard: vec![],
        dials: vec![],
        incoming: 0,
        incoming_ok: 0,
        connected: vec![],
    }
}

fn heard(n: usize, mdns: bool, beacon: bool) -> Vec<HeardObs> {
    (0..n)
        .map(|i| HeardObs {
            fingerprint: format!("peer{i}"),
            addrs: vec![format!("10.9.0.{}:7300", 10 + i)],
            mdns: u64::from(mdns) * 5,
            beacon: u64::from(beacon) * 5,
            ago_s: 1,
        })
        .collect()
}

fn dial(i: usize, heard: bool, tries: u32, ok: u32, probe: Option<DialOutcome>) -> DialObs {
    DialObs {
        addr: format!("10.9.0.{}:7300", 10 + i),
        heard,
        tries,
        ok,
        timeouts: tries - ok,
        last: if ok > 0 {
            DialOutcome::Ok
        } else {
            DialOutcome::Timeout
        },
        ago_s: 1,
        probe,
    }
}

fn connected(i: usize) -> ConnectedObs {
    ConnectedObs {
        fingerprint: format!("peer{i}"),
        addr: format!("10.9.0.{}:7300", 10 + i),
    }
}

fn codes(o: &Observations) -> Vec<FindingCode> {
    diagnose(o).into_iter().map(|f| f.code).collect()
}

#[test]
fn each_situation_gets_its_own_finding() {
    use DialOutcome::{Ok as Up, Timeout};
    use FindingCode as C;
    let cases: Vec<(&str, Observations, Vec<FindingCode>)> = vec![
        (
            "healthy: heard by mDNS and connected",
            Observations {
                heard: heard(2, true, true),
                dials: vec![dial(0, true, 1, 1, None)],
                incoming: 1,
                incoming_ok: 1,
                connected: vec![connected(0), connected(1)],
                ..base()
            },
            vec![C::Healthy],
        ),
        (
            "no network: loopback only",
            Observations {
                interfaces: lan()[..1].to_vec(),
                ..base()
            },
            vec![C::NoNetwork],
        ),
        (
            "alone: nothing heard, nothing dialed",
            base(),
            vec![C::Alone],
        ),
        (
            "starting: too early to say",
            Observations {
                uptime_s: 2,
                ..base()
            },
            vec![C::Starting],
        ),
        (
            "client isolation: heard, every dial and the probe timed out, nobody came",
            Observations {
                heard: heard(2, true, true),
                dials: vec![
                    dial(0, true, 3, 0, Some(Timeout)),
                    dial(1, true, 3, 0, None),
                ],
                ..base()
            },
            vec![C::ClientIsolation],
        ),
        (
            "port blocked: dials from our port time out, the probe from another port connects",
            Observations {
                heard: heard(2, true, true),
                dials: vec![
                    dial(0, true, 3, 0, Some(Up)),
                    dial(1, true, 2, 0, Some(Timeout)),
                ],
                ..base()
            },
            vec![C::PortBlocked],
        ),
        (
            "still checking: dials timed out, no probe result yet",
            Observations {
                heard: heard(1, true, false),
                dials: vec![dial(0, true, 1, 0, None)],
                ..base()
            },
            vec![C::PeersUnreachable],
        ),
        (
            "somebody reached us: not isolation, only some peers unreachable",
            Observations {
                heard: heard(2, true, false),
                dials: vec![dial(0, true, 2, 0, Some(Timeout))],
                incoming: 1,
                incoming_ok: 1,
                connected: vec![connected(1)],
                ..base()
            },
            vec![C::PeersUnreachable],
        ),
        (
            "multicast blocked: LAN peers connected by address, nothing heard",
            Observations {
                dials: vec![dial(0, false, 1, 1, None)],
                incoming: 1,
                incoming_ok: 1,
                connected: vec![connected(0), connected(1)],
                ..base()
            },
            vec![C::MulticastBlocked],
        ),
        (
            "multicast blocked but beacons heard: info, so healthy too",
            Observations {
                heard: heard(1, false, true),
                dials: vec![dial(0, true, 1, 1, None)],
                connected: vec![connected(0)],
                ..base()
            },
            vec![C::MulticastBlocked, C::Healthy],
        ),
        (
            "a relay elsewhere is no evidence against multicast",
            Observations {
                dials: vec![DialObs {
                    addr: "203.0.113.7:7300".into(),
                    ..dial(0, false, 1, 1, None)
                }],
                connected: vec![ConnectedObs {
                    fingerprint: "relay".into(),
                    addr: "203.0.113.7:7300".into(),
                }],
                ..base()
            },
            vec![C::Healthy],
        ),
        (
            "given peers do not answer",
            Observations {
                dials: vec![dial(0, false, 4, 0, None)],
                ..base()
            },
            vec![C::PeersUnreachable],
        ),
        (
            "port fallback",
            Observations {
                listen: "0.0.0.0:41234".into(),
                heard: heard(1, true, true),
                connected: vec![connected(0)],
                ..base()
            },
            vec![C::PortFallback],
        ),
        (
            "mDNS could not start",
            Observations {
                mdns_up: false,
                heard: heard(1, false, true),
                connected: vec![connected(0)],
                ..base()
            },
            vec![C::MdnsDown],
        ),
    ];
    for (name, o, want) in cases {
        assert_eq!(codes(&o), want, "{name}: {:#?}", diagnose(&o));
    }
}

#[test]
fn findings_say_what_was_observed_and_name_the_port() {
    let o = Observations {
        listen: "0.0.0.0:7300".into(),
        heard: heard(3, true, false),
        dials: vec![
            dial(0, true, 2, 0, Some(DialOutcome::Ok)),
            dial(1, true, 2, 0, None),
            dial(2, true, 2, 0, None),
        ],
        ..base()
    };
    let f = &diagnose(&o)[0];
    assert_eq!(f.code, FindingCode::PortBlocked);
    assert!(f.summary.contains("3 peers by mDNS"), "{}", f.summary);
    assert!(f.summary.contains("6 dials"), "{}", f.summary);
    assert!(f.advice.contains("ufw allow 7300/udp"), "{}", f.advice);
    assert!(f.advice.contains("localport=7300"), "{}", f.advice);
    let early = Observations {
        uptime_s: 1,
        ..base()
    };
    assert_eq!(
        diagnose(&early)[0].summary,
        "Started 1 s ago; heard no peers by mDNS or beacon; no connection yet."
    );
    let iso = Observations {
        dials: vec![dial(0, true, 2, 0, Some(DialOutcome::Timeout))],
        ..o
    };
    let f = &diagnose(&iso)[0];
    assert_eq!(f.code, FindingCode::ClientIsolation);
    assert!(f.advice.contains("relay"), "{}", f.advice);
    assert!(f.advice.contains("hotspot"), "{}", f.advice);
}

#[test]
fn the_observer_stays_bounded_and_asks_for_probes_sparingly() {
    let obs = Observer::default();
    let peer = NodeId([1; 32]);
    let addr: SocketAddr = "10.9.0.10:7300".parse().unwrap_or_else(|_| unreachable!());
    // Not heard by discovery: no probe.
    assert!(!obs.dial_ended(addr, DialOutcome::Timeout));
    obs.heard(Via::Mdns, peer, &[addr]);
    assert!(obs.dial_ended(addr, DialOutcome::Timeout), "first timeout");
    assert!(
        !obs.dial_ended(addr, DialOutcome::Timeout),
        "once per PROBE_EVERY"
    );
    obs.probe_ended(addr, DialOutcome::Ok);
    for i in 0..(MAX_HEARD as u8 * 2) {
        let a = SocketAddr::from(([10, 9, 1, i], 7300));
        obs.heard(Via::Beacon, NodeId([i.wrapping_add(2); 32]), &[a]);
        let _ = obs.dial_ended(a, DialOutcome::Refused);
    }
    let snap = obs.snapshot(lan(), vec![]);
    assert!(snap.heard.len() <= MAX_HEARD);
    assert!(snap.dials.len() <= MAX_DIALED);
    assert_eq!(snap.mdns_heard, 1);
    assert_eq!(snap.beacons_heard, u64::from(MAX_HEARD as u8 * 2));
    let obs = Observer::default();
    obs.heard(Via::Mdns, peer, &[addr]);
    let _ = obs.dial_ended(addr, DialOutcome::Timeout);
    obs.probe_ended(addr, DialOutcome::Ok);
    let snap = obs.snapshot(lan(), vec![]);
    assert_eq!(snap.dials[0].probe, Some(DialOutcome::Ok));
    assert!(snap.dials[0].heard);
    assert_eq!(snap.heard[0].mdns, 1);
}

#[test]
fn subnets() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|_| unreachable!());
    assert!(same_subnet(ip("10.9.0.2"), ip("10.9.0.200"), 24));
    assert!(!same_subnet(ip("10.9.0.2"), ip("10.9.1.2"), 24));
    assert!(same_subnet(ip("10.9.0.2"), ip("192.168.0.1"), 0));
    assert!(same_subnet(ip("fe80::1"), ip("fe80::2"), 64));
    assert!(!same_subnet(ip("fe80::1"), ip("10.0.0.1"), 0));
}

#[test]
fn peers_that_left_are_no_longer_heard() {
    let obs = Observer::default();
    let by_mdns = NodeId([0xAB; 32]);
    let by_beacon = NodeId([0xCD; 32]);
    let a: SocketAddr = "10.9.0.10:7300".parse().unwrap_or_else(|_| unreachable!());
    let b: SocketAddr = "10.9.0.11:7300".parse().unwrap_or_else(|_| unreachable!());
    obs.heard(Via::Mdns, by_mdns, &[a]);
    obs.heard(Via::Beacon, by_beacon, &[b]);
    let _ = obs.dial_ended(a, DialOutcome::Timeout);
    let _ = obs.dial_ended(b, DialOutcome::Timeout);
    assert_eq!(obs.snapshot(lan(), vec![]).heard.len(), 2);
    // mDNS says the first one is gone (goodbye or expiry): its instance name holds 16 hex.
    obs.gone(&by_mdns.to_hex()[..16]);
    let snap = obs.snapshot(lan(), vec![]);
    assert_eq!(snap.heard.len(), 1);
    assert!(!snap
        .dials
        .iter()
        .any(|d| d.addr == a.to_string() && d.heard));
    // The beacon one: silent past BEACON_GONE (beacons come every ≈ 2 s).
    let past = Instant::now()
        .checked_sub(BEACON_GONE + Duration::from_secs(1))
        .unwrap_or_else(|| unreachable!());
    obs.with(|s| {
        for h in s.heard.values_mut() {
            h.last = Some(past);
        }
    });
    let snap = obs.snapshot(lan(), vec![]);
    assert!(snap.heard.is_empty());
    // Nothing heard now, so the dials that timed out no longer say "client isolation".
    let codes: Vec<FindingCode> = diagnose(&snap).iter().map(|f| f.code).collect();
    assert!(!codes.contains(&FindingCode::ClientIsolation), "{codes:?}");
}
