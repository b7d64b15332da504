use std::collections::HashSet;

use super::sim::exact;
use super::*;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    sketch::mix(*state)
}

fn run(a: &[(u64, MessageId)], b: &[(u64, MessageId)], delivery: Delivery) -> SimOutcome {
    simulate(a, b, None, delivery).expect("exchange")
}

fn same_ids(a: &[(u64, MessageId)], b: &[(u64, MessageId)]) -> bool {
    let sa: HashSet<MessageId> = a.iter().map(|x| x.1).collect();
    let sb: HashSet<MessageId> = b.iter().map(|x| x.1).collect();
    sa == sb
}

/// Runs an exchange with each delivery mode and checks the outcome.
fn check(a: &[(u64, MessageId)], b: &[(u64, MessageId)], what: &str) -> SimOutcome {
    let o = run(a, b, Delivery::Never);
    assert!(exact(a, b, &o), "{what}: not the symmetric difference");
    let c = sim::simulate_cut(a, b, None, Delivery::Never, usize::MAX, true).expect("compact");
    assert!(exact(a, b, &c), "{what}: compact start");
    for d in [Delivery::BeforeReply, Delivery::AfterReply] {
        let o2 = run(a, b, d);
        assert!(
            same_ids(&o2.a_final, &o2.b_final),
            "{what}: {d:?} left sets unequal"
        );
        let pushed = o2.a_pushed.len() + o2.b_pushed.len();
        let diff = o.a_pushed.len() + o.b_pushed.len();
        assert_eq!(
            pushed, diff,
            "{what}: {d:?} pushed {pushed} for {diff} differences"
        );
    }
    o
}

#[test]
fn differences_of_every_size_spread_and_recent() {
    for &d in &[0usize, 1, 10, 100, 1000, 5000] {
        for recent in [false, true] {
            let (a, b) = make_sets(3000, d / 2, d - d / 2, recent, d as u64);
            let o = check(&a, &b, &format!("3000/{d} recent={recent}"));
            eprintln!(
                "3000/{d} recent={recent}: {} half trips, {} B",
                o.half_trips, o.bytes
            );
        }
        let (a, b) = make_sets(3000, d, 0, false, 7 + d as u64);
        check(&a, &b, &format!("3000/{d} one side"));
    }
}

#[test]
fn empty_and_disjoint_sets() {
    let (x, _) = make_sets(0, 2000, 0, false, 1);
    let (y, _) = make_sets(0, 1500, 0, false, 2);
    let empty: Vec<(u64, MessageId)> = Vec::new();
    let o = check(&empty, &empty, "both empty");
    assert_eq!((o.messages, o.bytes), (1, 28));
    let o = check(&empty, &x, "A empty");
    assert!(o.bytes < 100, "A empty took {} B", o.bytes);
    let o = check(&x, &empty, "B empty");
    assert!(o.bytes < 400, "B empty took {} B", o.bytes);
    check(&x, &y, "disjoint");
    for n in 0..8 {
        for m in 0..8 {
            let (a, b) = make_sets(n, m, 8 - m, false, (n * 8 + m) as u64);
            check(&a, &b, &format!("tiny {n}+{m}"));
            check(&a[..a.len() / 2], &b, &format!("tiny half {n}+{m}"));
        }
    }
}

#[test]
fn big_differences_split_into_messages_under_the_limit() {
    // 40,000 vs 40,000 disjoint (lists over several messages) and 12,000 differences among
    // 20,000 shared (sketches over MAX_CELLS, split by range).
    for (common, da, db) in [
        (0, 40_000, 40_000),
        (20_000, 6_000, 6_000),
        (5_000, 30_000, 100),
    ] {
        let (a, b) = make_sets(common, da, db, false, 99);
        let salt = derive_salt(&a);
        let mut batch = vec![(1usize, start_with_salt(&a, salt))];
        let sets = [&a, &b];
        let (mut pushed, mut half) = (0, 0);
        while !batch.is_empty() {
            half += 1;
            let mut next = Vec::new();
            for (to, m) in batch {
                let enc = m.encode();
                assert!(enc.len() <= MAX_MSG_BYTES, "{} B message", enc.len());
                assert_eq!(enc.len(), m.encoded_len());
                assert_eq!(ReconMsg::decode(&enc).expect("decodes"), m);
                let st = step(sets[to], &m).expect("step");
                pushed += st.we_have_they_lack.len();
                next.extend(st.replies.into_iter().map(|r| (1 - to, r)));
            }
            batch = next;
        }
        assert_eq!(pushed, da + db, "{common}/{da}/{db}");
        eprintln!("{common}/{da}/{db}: {half} half trips");
        check(&a, &b, &format!("{common}/{da}/{db}"));
    }
}

#[test]
fn a_sync_cut_midway_resumes_without_resending() {
    for (common, da, db) in [
        (3000, 5, 5),
        (3000, 400, 600),
        (20_000, 6000, 6000),
        (0, 900, 0),
    ] {
        for cut in 1..5 {
            for delivery in [Delivery::BeforeReply, Delivery::AfterReply] {
                let (a, b) = make_sets(common, da, db, false, cut as u64);
                let first =
                    sim::simulate_cut(&a, &b, None, delivery, cut, cut % 2 == 0).expect("first");
                let (a1, b1) = (first.a_final.clone(), first.b_final.clone());
                let in_a: HashSet<MessageId> = a1.iter().map(|x| x.1).collect();
                let arrived: HashSet<MessageId> = b1
                    .iter()
                    .map(|x| x.1)
                    .filter(|id| in_a.contains(id))
                    .collect();
                // The second session starts from B this time, with a fresh salt.
                let second = simulate(&b1, &a1, Some([cut as u8; 16]), delivery).expect("second");
                assert!(same_ids(&second.a_final, &second.b_final));
                let again = second
                    .a_pushed
                    .iter()
                    .chain(&second.b_pushed)
                    .filter(|id| arrived.contains(id))
                    .count();
                assert_eq!(again, 0, "{common}/{da}/{db} cut {cut}: {again} resent");
                let total = first.a_pushed.len() + first.b_pushed.len();
                let total = total + second.a_pushed.len() + second.b_pushed.len();
                assert_eq!(total, da + db, "{common}/{da}/{db} cut {cut} {delivery:?}");
            }
        }
    }
}

#[test]
fn two_hundred_random_cases() {
    let mut s = 0x5EED_u64;
    for case in 0..200 {
        let r = splitmix(&mut s);
        let common = (r % 4000) as usize;
        let scale = [4u64, 30, 300, 3000][(r >> 20) as usize % 4];
        let da = (splitmix(&mut s) % scale) as usize;
        let db = (splitmix(&mut s) % scale) as usize;
        let recent = r & 1 == 1;
        let (mut a, b) = make_sets(common, da, db, recent, case);
        if r & 2 == 2 {
            a.reverse(); // unsorted input is fine too
        }
        let delivery =
            [Delivery::Never, Delivery::BeforeReply, Delivery::AfterReply][(r >> 40) as usize % 3];
        let compact = r & 4 == 4;
        let o = sim::simulate_cut(&a, &b, None, delivery, usize::MAX, compact).expect("run");
        let what = format!("case {case}: {common}+{da}/{db} {delivery:?} compact={compact}");
        if delivery == Delivery::Never {
            assert!(exact(&a, &b, &o), "{what}");
        } else {
            assert!(same_ids(&o.a_final, &o.b_final), "{what}");
            assert_eq!(o.a_pushed.len() + o.b_pushed.len(), da + db, "{what}");
        }
    }
}

#[test]
fn ten_spread_differences_stay_under_2_kb_for_every_seed() {
    // The bytes do not depend on the shared count beyond the bitmap size, which is already at
    // its maximum (2,048 bits) here, so 3,000 shared stands in for 100,000.
    let mut worst = 0;
    let mut hist = [0usize; 5];
    for seed in 0..300 {
        let (a, b) = make_sets(3000, 5, 5, false, 10_000 + seed);
        let o = run(&a, &b, Delivery::Never);
        assert!(exact(&a, &b, &o));
        worst = worst.max(o.bytes);
        hist[(o.half_trips - 1).min(4)] += 1;
    }
    eprintln!("10 spread, 300 seeds: worst {worst} B; half trips 1..5+: {hist:?}");
    assert!(worst <= 2048, "worst case {worst} B");
}

#[test]
fn resolve_maps_wants_to_full_ids() {
    let (a, b) = make_sets(100, 3, 4, false, 5);
    let salt = [7u8; 16];
    let only_b: Vec<MessageId> = {
        let sa: HashSet<MessageId> = a.iter().map(|x| x.1).collect();
        b.iter()
            .map(|x| x.1)
            .filter(|id| !sa.contains(id))
            .collect()
    };
    let wants: Vec<WantKey> = only_b
        .iter()
        .map(|id| WantKey(short_id(&salt, id)))
        .collect();
    let mut got = resolve(&b, &salt, &wants);
    got.sort();
    let mut exp = only_b.clone();
    exp.sort();
    assert_eq!(got, exp);
    assert!(resolve(&a, &salt, &wants).is_empty());
}

/// Messages of every kind, taken from real exchanges plus hand-built ones.
fn sample_messages() -> Vec<ReconMsg> {
    let mut out = Vec::new();
    for (common, da, db) in [(300, 5, 5), (300, 60, 0), (0, 3, 0), (2000, 900, 900)] {
        let (a, b) = make_sets(common, da, db, false, 3);
        let mut batch = vec![(1usize, start(&a))];
        let sets = [&a, &b];
        while let Some((to, m)) = batch.pop() {
            let st = step(sets[to], &m).expect("step");
            out.push(m);
            batch.extend(st.replies.into_iter().map(|r| (1 - to, r)));
        }
    }
    out.push(ReconMsg {
        round: 3,
        salt: [1; 16],
        parts: vec![
            Part::Request {
                range: Range {
                    depth: 3,
                    prefix: 0x2000_0000_0000_0000,
                },
            },
            Part::Ids {
                range: Range {
                    depth: 9,
                    prefix: 0xFF80_0000_0000_0000,
                },
                handled: vec![0xFF80_0000_0000_0001],
                ids: vec![0xFF80_0000_0000_0002, 0xFFFF_FFFF_FFFF_FFFF],
            },
        ],
        wants: vec![1, 2, 3],
    });
    out
}

#[test]
fn encoding_roundtrips() {
    for m in sample_messages() {
        let enc = m.encode();
        assert_eq!(enc.len(), m.encoded_len());
        assert_eq!(ReconMsg::decode(&enc).expect("roundtrip"), m);
    }
}

#[test]
fn hostile_bytes_are_errors_or_harmless() {
    let (a, _) = make_sets(500, 20, 0, false, 11);
    let mut rng = 42u64;
    for m in sample_messages() {
        let enc = m.encode();
        for n in 0..enc.len() {
            assert!(ReconMsg::decode(&enc[..n]).is_err(), "truncated at {n}");
        }
        let mut extra = enc.clone();
        extra.push(0);
        assert!(ReconMsg::decode(&extra).is_err());
        let flips = if enc.len() > 2000 { 300 } else { enc.len() };
        for k in 0..flips {
            let mut e = enc.clone();
            let i = if flips == enc.len() {
                k
            } else {
                (splitmix(&mut rng) % enc.len() as u64) as usize
            };
            e[i] ^= 1 << (splitmix(&mut rng) % 8);
            if let Ok(d) = ReconMsg::decode(&e) {
                let _ = step(&a, &d); // must not panic
            }
            let mut e = enc.clone();
            e[i] = splitmix(&mut rng) as u8;
            if let Ok(d) = ReconMsg::decode(&e) {
                let _ = step(&a, &d);
            }
        }
    }
    for len in [0usize, 1, 5, 22, 40, 200, 5000] {
        for _ in 0..50 {
            let g: Vec<u8> = (0..len).map(|_| splitmix(&mut rng) as u8).collect();
            if let Ok(d) = ReconMsg::decode(&g) {
                let _ = step(&a, &d);
            }
        }
    }
}

#[test]
fn structural_rules_and_limits_are_enforced() {
    let base = ReconMsg {
        round: 0,
        salt: [0; 16],
        parts: Vec::new(),
        wants: Vec::new(),
    };
    let with = |parts: Vec<Part>| ReconMsg {
        parts,
        ..base.clone()
    };
    let r = |depth: u8, prefix: u64| Range { depth, prefix };
    let ids = |range, ids: Vec<u64>| Part::Ids {
        range,
        handled: vec![],
        ids,
    };
    let sketch = |n: usize| Part::Sketch {
        range: Range::ALL,
        count: 1,
        fp: 0,
        handled: vec![],
        cells: vec![Cell::default(); n],
    };
    let summary = |n: usize| Part::Summary {
        range: Range::ALL,
        count: 1,
        fp: 0,
        bitmap: vec![0; n],
    };
    let bad = [
        with(vec![ids(r(33, 0), vec![])]),                    // too deep
        with(vec![ids(r(4, 0x0800_0000_0000_0000), vec![])]), // bits below depth
        with(vec![ids(r(1, 0), vec![5, 5])]),                 // not increasing
        with(vec![ids(r(1, 0), vec![u64::MAX])]),             // outside range
        with(vec![ids(r(1, 1 << 63), vec![]), ids(r(1, 0), vec![])]), // out of order
        with(vec![ids(Range::ALL, vec![]), ids(r(1, 0), vec![])]), // overlap
        with(vec![sketch(6)]),                                // not a multiple of 4
        with(vec![summary(12)]),                              // bitmap not a power of two
    ];
    for (i, m) in bad.iter().enumerate() {
        assert!(
            ReconMsg::decode(&m.encode()).is_err(),
            "bad message {i} decoded"
        );
    }
    // Too many cells (the encoder cannot produce this, so patch the count).
    let mut e = with(vec![sketch(MAX_CELLS)]).encode();
    assert!(ReconMsg::decode(&e).is_ok());
    e[44..46].copy_from_slice(&((MAX_CELLS + 4) as u16).to_be_bytes());
    let at = e.len() - 2;
    e.splice(at..at, [0u8; 48]);
    assert!(ReconMsg::decode(&e).is_err());
    let mut e = with(vec![summary(256)]).encode();
    assert!(ReconMsg::decode(&e).is_ok());
    e[42..44].copy_from_slice(&512u16.to_be_bytes());
    let at = e.len() - 2;
    e.splice(at..at, [0u8; 256]);
    assert!(ReconMsg::decode(&e).is_err());
    let mut v = base.encode();
    v[0] = 2;
    assert_eq!(ReconMsg::decode(&v), Err(ReconError::UnsupportedVersion(2)));
    let big = ReconMsg {
        wants: vec![0; MAX_MSG_BYTES / 8],
        ..base.clone()
    };
    assert_eq!(
        ReconMsg::decode(&big.encode()),
        Err(ReconError::TooLarge(big.encoded_len()))
    );
    let late = ReconMsg {
        round: MAX_ROUNDS,
        ..base.clone()
    };
    assert_eq!(step(&[], &late), Err(ReconError::TooManyRounds));
    // A hostile count claim does not make us answer with more than our own list.
    let (a, _) = make_sets(3000, 0, 0, false, 1);
    let claim = with(vec![Part::Summary {
        range: Range::ALL,
        count: u32::MAX,
        fp: 1,
        bitmap: vec![0xFF; 256],
    }]);
    let st = step(&a, &claim).expect("step");
    let bytes: usize = st.replies.iter().map(ReconMsg::encoded_len).sum();
    assert!(bytes <= 8 * a.len() + 200, "{bytes} B reply");
}

/// Prints the table for `common` shared messages and checks the 10-spread bound.
fn table(common: usize) -> Vec<(String, usize, usize)> {
    let cases = [
        ("0", 0, 0, false),
        ("10 spread", 5, 5, false),
        ("10 recent", 5, 5, true),
        ("1,000 spread", 500, 500, false),
        ("1,000 recent", 500, 500, true),
    ];
    let mut rows = Vec::new();
    for (name, da, db, recent) in cases {
        let (a, b) = make_sets(common, da, db, recent, 77);
        let o = run(&a, &b, Delivery::Never);
        assert!(exact(&a, &b, &o), "{name}");
        eprintln!(
            "{common} shared / {name:>12}: {} half trips, {} messages, {} B",
            o.half_trips, o.messages, o.bytes
        );
        rows.push((name.to_string(), o.half_trips, o.bytes));
    }
    eprintln!("naive id list: {} B each way", 32 * common);
    let ten = rows[1].2;
    assert!(ten <= 2048, "10 spread took {ten} B");
    rows
}

#[test]
fn byte_counts_small() {
    table(20_000);
}

/// `cargo test -p dn-proto --release recon::tests::byte_counts_100k -- --ignored --nocapture`
/// Also prints how long one step over 100,000 ids takes in this build.
#[test]
fn byte_counts_100k() {
    table(100_000);
    let (a, b) = make_sets(100_000, 500, 500, false, 5);
    let t = std::time::Instant::now();
    let first = start(&a);
    let t_start = t.elapsed();
    let t = std::time::Instant::now();
    let st = step(&b, &first).expect("step");
    let t_sketch = t.elapsed();
    let t = std::time::Instant::now();
    step(&a, &st.replies[0]).expect("step");
    eprintln!(
        "100k ids: start {t_start:?}, summary→sketch {t_sketch:?}, decode 1,000 {:?}",
        t.elapsed()
    );
    for f in figures() {
        eprintln!("{f:?}");
        assert!(f.exact, "{}", f.scenario);
    }
}
