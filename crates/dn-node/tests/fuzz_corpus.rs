//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same target bodies
//! the cargo-fuzz targets run, on stable, as part of `cargo test`: every input the fuzzer ever
//! kept, and every crash ever found, is checked on each build. A missing or empty corpus
//! directory fails, so the replay can never silently test nothing.
//!
//! The `#[ignore]`d `write_seed_corpus` regenerates the hand-made seeds (valid encodings of
//! every frame, reconciliation message kind, envelope, record, beacon, request, export line,
//! backup and bundle): `cargo test -p dn-node --test fuzz_corpus -- --ignored write_seed_corpus`.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use dn_node::api::{ExportFormat, Request};
use dn_proto::codec::Frame;
use dn_proto::coding::{Encode as _, Writer};
use dn_proto::fuzzing::{self as pf, Action};
use dn_proto::recon::{self, Part, ReconMsg};
use dn_proto::topo::{Neighbour, TopoRecord};
use dn_proto::{Message, MessageId};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

/// A fuzz target: its name (the corpus directory and the cargo-fuzz target) and body.
type Target = (&'static str, fn(&[u8]));

/// Every fuzz target.
const TARGETS: &[Target] = &[
    ("frame", pf::frame),
    ("recon", pf::recon),
    ("dm", pf::dm),
    ("topo", pf::topo),
    ("protocol", pf::protocol),
    ("private", pf::private),
    ("invite", pf::invite),
    ("bundle", pf::bundle),
    ("beacon", dn_node::fuzzing::beacon),
    ("control_request", dn_node::fuzzing::control_request),
    ("export_line", dn_node::fuzzing::export_line),
    ("backup", dn_node::fuzzing::backup),
];

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// Runs `body` on every file of `dir`: the number of inputs and the files that panicked, or
/// an error when the directory is missing or holds no input.
fn replay(dir: &Path, body: fn(&[u8])) -> Result<(usize, Vec<String>), String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("corpus directory {} is missing: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading {}: {e}", dir.display()))?;
    files.retain(|p| p.is_file());
    files.sort();
    if files.is_empty() {
        return Err(format!("corpus directory {} is empty", dir.display()));
    }
    let mut failures = Vec::new();
    for file in &files {
        let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failures.push(file.display().to_string());
        }
    }
    Ok((files.len(), failures))
}

#[test]
fn fuzz_corpus_replays_without_failures() {
    let root = corpus_root();
    let mut total = 0;
    let mut failures = Vec::new();
    for (name, body) in TARGETS {
        let (n, failed) = replay(&root.join(name), *body).unwrap_or_else(|e| panic!("{e}"));
        println!("fuzz corpus: {name}: replayed {n} inputs");
        total += n;
        failures.extend(failed);
    }
    println!(
        "fuzz corpus: replayed {total} inputs for {} targets",
        TARGETS.len()
    );
    assert!(
        failures.is_empty(),
        "fuzz corpus inputs that fail: {failures:#?}"
    );
}

#[test]
fn replay_refuses_a_missing_or_empty_corpus_and_reports_failing_inputs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert!(replay(&tmp.path().join("nope"), pf::frame).is_err());
    assert!(replay(tmp.path(), pf::frame).is_err());
    std::fs::write(tmp.path().join("x"), [1u8]).expect("write");
    assert_eq!(replay(tmp.path(), pf::frame), Ok((1, vec![])));
    fn boom(_: &[u8]) {
        panic!("found");
    }
    let (n, failed) = replay(tmp.path(), boom).expect("replay");
    assert_eq!((n, failed.len()), (1, 1));
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    // The targets listed here, the corpus directories and fuzz/fuzz_targets/*.rs must agree.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    let listed: BTreeSet<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn the_protocol_harness_reaches_a_serving_node() {
    // The prelude must leave two hello'd peers: a valid message from one is stored, a Graft
    // for the node's own messages is served, and garbage or truncated chunks are only counted.
    let peer_key = SigningKey::from_bytes(&pf::PEER_SEEDS[0]);
    let m = Message::create(&peer_key, pf::ROOM, "Ana", pf::WALL_MS - 1, "need insulin")
        .expect("valid message");
    let own = SigningKey::from_bytes(&pf::NODE_SEED);
    let mine = Message::create(
        &own,
        pf::ROOM,
        "hub",
        pf::WALL_MS - 60_000,
        "water at the school",
    )
    .expect("valid message");
    let graft = Frame::Graft {
        room: pf::ROOM.into(),
        ids: vec![mine.id()],
    };
    let before = pf::protocol_counters(&[]);
    let c = pf::protocol_counters(&pf::protocol_input(&[
        (
            pf::selector(0, Action::Frame, 0),
            Frame::Msg {
                hops: 3,
                message: m,
            }
            .encode(),
        ),
        (pf::selector(1, Action::Frame, 1), graft.encode()),
        (pf::selector(1, Action::Frame, 0), vec![0xff, 1, 2]),
        (pf::selector(1, Action::Tick, 15), vec![]),
    ]));
    assert_eq!(c.received, 1, "{c:?}");
    assert!(c.sent > before.sent, "graft not served: {c:?}");
    assert_eq!(c.rejected, before.rejected + 1, "{c:?}");
    pf::protocol(&[pf::selector(0, Action::Frame, 0), 0]);
}

// ------------------------------------------------------------------------------ seed corpus

struct Seeds {
    root: PathBuf,
}

impl Seeds {
    fn put(&self, target: &str, label: &str, data: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        std::fs::write(dir.join(format!("seed-{label}")), data).expect("write seed");
    }
}

fn entries(n: u64, tag: u8) -> Vec<(u64, MessageId)> {
    (0..n)
        .map(|i| {
            let mut h = Sha256::new();
            h.update([tag]);
            h.update(i.to_be_bytes());
            (i, MessageId(h.finalize().into()))
        })
        .collect()
}

/// Runs a reconciliation between `a` and `b` and returns every message exchanged.
fn exchange(a: &[(u64, MessageId)], b: &[(u64, MessageId)]) -> Vec<ReconMsg> {
    let mut msgs = vec![recon::start(a)];
    let mut turn_b = true;
    let mut pending = msgs.clone();
    for _ in 0..12 {
        let mut next = Vec::new();
        for m in &pending {
            let set = if turn_b { b } else { a };
            if let Ok(step) = recon::step(set, m) {
                next.extend(step.replies);
            }
        }
        if next.is_empty() {
            break;
        }
        msgs.extend(next.iter().cloned());
        pending = next;
        turn_b = !turn_b;
    }
    msgs
}

fn part_kind(p: &Part) -> &'static str {
    match p {
        Part::Summary { .. } => "summary",
        Part::Sketch { .. } => "sketch",
        Part::Ids { .. } => "ids",
        Part::Request { .. } => "request",
    }
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus; run by hand (see fuzz/README.md)"]
fn write_seed_corpus() {
    let seeds = Seeds {
        root: corpus_root(),
    };
    let node = pf::node_id(&pf::NODE_SEED);
    let peer_key = SigningKey::from_bytes(&pf::PEER_SEEDS[0]);
    let peer = pf::node_id(&pf::PEER_SEEDS[0]);
    let other = pf::node_id(&pf::PEER_SEEDS[1]);
    let stranger = SigningKey::from_bytes(&[0x66; 32]);
    let msg = |key: &SigningKey, room: &str, ts: u64, body: &str| {
        Message::create(key, room, "Ana", ts, body).expect("valid message")
    };
    let peer_msg = msg(
        &peer_key,
        pf::ROOM,
        pf::WALL_MS - 5_000,
        "clinic needs blood type O",
    );
    let future_msg = msg(
        &peer_key,
        pf::ROOM,
        pf::WALL_MS + 3_600_000,
        "from the future",
    );
    let carried_msg = msg(
        &stranger,
        "logistics",
        pf::WALL_MS - 1,
        "two trucks at the depot",
    );
    let own = SigningKey::from_bytes(&pf::NODE_SEED);
    let own_msg = msg(&own, pf::ROOM, pf::WALL_MS - 60_000, "water at the school");

    // Direct message, sealed so that the dm target's fixed key opens it.
    let dm_from = SigningKey::from_bytes(&pf::DM_SENDER_SEED);
    let dm_to = pf::node_id(&pf::DM_RECIPIENT_SEED);
    let env = dn_proto::dm::seal(
        &dm_from,
        &dm_to,
        "meet at gate 3",
        pf::DM_TIMESTAMP,
        [7; 32],
        [9; 24],
    )
    .expect("seal");
    seeds.put("dm", "envelope", &env.encode());
    seeds.put("dm", "body", dn_proto::dm::to_body(&env).as_bytes());
    let dm_msg = msg(
        &dm_from,
        dn_proto::dm::DM_ROOM,
        pf::WALL_MS - 10,
        &dn_proto::dm::to_body(&env),
    );

    // Private-room envelopes, bodies and plaintexts; invite codes and grants.
    for (target, label, data) in pf::private_seeds() {
        seeds.put(target, &label, &data);
    }

    // Topology records.
    let topo = TopoRecord::create(
        &peer_key,
        42,
        "peer",
        vec![
            Neighbour {
                id: node,
                addr: Some("10.0.0.1:7300".parse().expect("addr")),
                rtt_ms: None,
            },
            Neighbour {
                id: other,
                addr: None,
                rtt_ms: None,
            },
        ],
    );
    let topo_empty = TopoRecord::create(&stranger, 1, "", vec![]);
    let topo_rtt = TopoRecord::create(
        &peer_key,
        43,
        "peer",
        vec![
            Neighbour {
                id: node,
                addr: Some("10.0.0.1:7300".parse().expect("addr")),
                rtt_ms: Some(12),
            },
            Neighbour {
                id: other,
                addr: None,
                rtt_ms: Some(u16::MAX),
            },
        ],
    );
    for (label, rec) in [
        ("two-neighbours", &topo),
        ("empty", &topo_empty),
        ("round-trip-times", &topo_rtt),
    ] {
        let mut w = Writer::default();
        rec.encode(&mut w);
        seeds.put("topo", label, &w.into_vec());
    }

    // Reconciliation messages of every round and part kind.
    let mut kinds = BTreeSet::new();
    let mut recon_msgs = Vec::new();
    let big = entries(300, 1);
    let mut big_b = big.clone();
    big_b.truncate(280);
    big_b.extend(entries(15, 2));
    let cases = [
        ("small-vs-empty", entries(3, 1), vec![]),
        ("empty-vs-small", vec![], entries(3, 1)),
        ("big-vs-big", big.clone(), big_b),
        ("big-vs-small", big.clone(), entries(6, 1)),
        ("small-vs-big", entries(6, 1), big.clone()),
        ("big-vs-disjoint", big.clone(), entries(200, 3)),
    ];
    for (label, a, b) in &cases {
        for (i, m) in exchange(a, b).iter().enumerate() {
            for p in &m.parts {
                kinds.insert(part_kind(p));
            }
            seeds.put("recon", &format!("{label}-{i}"), &m.encode());
            recon_msgs.push(m.clone());
        }
    }
    let compact = recon::start_compact(&big, [5; 16]);
    seeds.put("recon", "compact", &compact.encode());
    println!("recon part kinds seeded: {kinds:?}");
    assert_eq!(kinds.len(), 4, "every recon part kind is seeded: {kinds:?}");

    // Every frame type.
    let frames: Vec<(&str, Frame)> = vec![
        ("hello", pf::peer_hello(peer)),
        (
            "rooms",
            Frame::Rooms {
                rooms: vec![pf::ROOM.into(), "logistics".into()],
            },
        ),
        (
            "msg",
            Frame::Msg {
                hops: 7,
                message: peer_msg.clone(),
            },
        ),
        (
            "msg-future",
            Frame::Msg {
                hops: 1,
                message: future_msg.clone(),
            },
        ),
        (
            "msg-carried",
            Frame::Msg {
                hops: 3,
                message: carried_msg.clone(),
            },
        ),
        (
            "msg-dm",
            Frame::Msg {
                hops: 64,
                message: dm_msg.clone(),
            },
        ),
        (
            "recon-start",
            Frame::Recon {
                room: pf::ROOM.into(),
                msg: recon::start(&[(peer_msg.timestamp, peer_msg.id())]),
            },
        ),
        (
            "recon-summary",
            Frame::Recon {
                room: pf::ROOM.into(),
                msg: recon::start(&big),
            },
        ),
        (
            "ihave",
            Frame::IHave {
                room: pf::ROOM.into(),
                ids: vec![peer_msg.id(), own_msg.id()],
            },
        ),
        (
            "graft",
            Frame::Graft {
                room: pf::ROOM.into(),
                ids: vec![own_msg.id()],
            },
        ),
        (
            "graft-empty",
            Frame::Graft {
                room: pf::ROOM.into(),
                ids: vec![],
            },
        ),
        (
            "prune",
            Frame::Prune {
                room: pf::ROOM.into(),
            },
        ),
        ("topo", Frame::Topo(topo.clone())),
        (
            "recon-done",
            Frame::ReconDone {
                room: pf::ROOM.into(),
            },
        ),
    ];
    for (label, f) in &frames {
        seeds.put("frame", label, &f.encode());
    }
    for (i, m) in recon_msgs.iter().take(8).enumerate() {
        let f = Frame::Recon {
            room: pf::ROOM.into(),
            msg: m.clone(),
        };
        seeds.put("frame", &format!("recon-{i}"), &f.encode());
    }

    // The protocol entry point: one input per frame type, then whole conversations.
    let fr = |peer_ix: u8, f: &Frame| (pf::selector(peer_ix, Action::Frame, 1), f.encode());
    let tick = (pf::selector(0, Action::Tick, 15), vec![]);
    let timers = (pf::selector(0, Action::Timers, 4), vec![]);
    for (label, f) in &frames {
        seeds.put("protocol", label, &pf::protocol_input(&[fr(0, f)]));
    }
    let ihave_then_graft = pf::protocol_input(&[
        fr(
            0,
            &Frame::IHave {
                room: pf::ROOM.into(),
                ids: vec![peer_msg.id()],
            },
        ),
        fr(
            1,
            &Frame::IHave {
                room: pf::ROOM.into(),
                ids: vec![peer_msg.id()],
            },
        ),
        timers.clone(),
        timers.clone(),
        fr(
            1,
            &Frame::Msg {
                hops: 5,
                message: peer_msg.clone(),
            },
        ),
        fr(
            0,
            &Frame::Msg {
                hops: 5,
                message: peer_msg.clone(),
            },
        ),
    ]);
    seeds.put("protocol", "ihave-timer-graft-msg", &ihave_then_graft);
    // The node's own set as the peer would reconcile it.
    let node_set: Vec<(u64, MessageId)> = vec![(own_msg.timestamp, own_msg.id())];
    let peer_set = vec![
        (own_msg.timestamp, own_msg.id()),
        (peer_msg.timestamp, peer_msg.id()),
    ];
    let mut convo = vec![
        fr(
            0,
            &Frame::Recon {
                room: pf::ROOM.into(),
                msg: recon::start(&peer_set),
            },
        ),
        fr(
            0,
            &Frame::Msg {
                hops: 9,
                message: peer_msg.clone(),
            },
        ),
        fr(
            1,
            &Frame::Recon {
                room: pf::ROOM.into(),
                msg: recon::start(&node_set),
            },
        ),
        fr(
            1,
            &Frame::ReconDone {
                room: pf::ROOM.into(),
            },
        ),
        fr(
            0,
            &Frame::Rooms {
                rooms: vec![pf::ROOM.into(), "logistics".into()],
            },
        ),
        fr(
            0,
            &Frame::Msg {
                hops: 2,
                message: carried_msg.clone(),
            },
        ),
        fr(
            1,
            &Frame::Prune {
                room: pf::ROOM.into(),
            },
        ),
        fr(0, &Frame::Topo(topo.clone())),
        fr(1, &Frame::Topo(topo_empty.clone())),
        (pf::selector(1, Action::Reconnect, 2), vec![]),
        fr(0, &pf::peer_hello(peer)),
        fr(
            0,
            &Frame::Msg {
                hops: 64,
                message: dm_msg.clone(),
            },
        ),
        tick.clone(),
        timers,
        fr(
            1,
            &Frame::Graft {
                room: pf::ROOM.into(),
                ids: vec![own_msg.id(), peer_msg.id()],
            },
        ),
    ];
    seeds.put("protocol", "conversation", &pf::protocol_input(&convo));
    convo.push((pf::selector(0, Action::Frame, 0), vec![99, 1, 2, 3]));
    convo.push(fr(
        0,
        &Frame::Hello {
            version: 9,
            node: other,
            name: "x".into(),
            rooms: vec![],
            listen_port: 1,
        },
    ));
    seeds.put(
        "protocol",
        "conversation-then-bad-hello",
        &pf::protocol_input(&convo),
    );
    let recon_rounds: Vec<(u8, Vec<u8>)> = recon_msgs
        .iter()
        .map(|m| {
            fr(
                0,
                &Frame::Recon {
                    room: pf::ROOM.into(),
                    msg: m.clone(),
                },
            )
        })
        .take(12)
        .collect();
    seeds.put(
        "protocol",
        "recon-rounds",
        &pf::protocol_input(&recon_rounds),
    );

    // LAN beacon.
    seeds.put("beacon", "beacon", &dn_node::beacon::encode(&peer, 7300));

    // Control-socket requests: one per op.
    let requests = [
        Request::Identity,
        Request::SetName { name: "Ana".into() },
        Request::JoinRoom {
            room: "medical".into(),
        },
        Request::SetMuted {
            room: "medical".into(),
            muted: true,
        },
        Request::LeaveRoom {
            room: "medical".into(),
        },
        Request::Rooms,
        Request::Send {
            room: "medical".into(),
            body: "need insulin".into(),
            urgent: false,
        },
        Request::Messages {
            room: "medical".into(),
            limit: 50,
            before: Some(own_msg.id().to_hex()),
        },
        Request::Peers,
        Request::Status,
        Request::Export {
            room: None,
            path: "/tmp/x.jsonl".into(),
            format: ExportFormat::Csv,
        },
        Request::BackupIdentity {
            path: "/tmp/key.backup".into(),
        },
        Request::Network,
        Request::Diagnose,
        Request::Urgent {
            room: Some("medical".into()),
        },
        Request::AckUrgent {
            room: "medical".into(),
            id: None,
        },
        Request::ExportBundle {
            path: "/tmp/camp.dnbundle".into(),
            rooms: Some(vec!["medical".into()]),
            since_ms: Some(1_700_000_000_000),
        },
        Request::ImportBundle {
            path: "/tmp/camp.dnbundle".into(),
        },
        Request::BundleProgress {
            path: "/tmp/camp.dnbundle".into(),
        },
        Request::AddRelay {
            addr: "[fe80::1%eth0]:7300".into(),
        },
        Request::RemoveRelay {
            addr: "relay.example.org:7300".into(),
        },
        Request::ListRelays,
        Request::SendDm {
            to: peer.to_hex(),
            body: "hi".into(),
            urgent: true,
        },
        Request::DmLog {
            with: peer.to_hex(),
            limit: 20,
        },
        Request::AddPeer {
            addr: "127.0.0.1:7300".into(),
        },
        Request::Activate,
    ];
    for r in &requests {
        let json = serde_json::to_string(r).expect("serialise");
        let op: String = json.split('"').nth(3).unwrap_or("op").to_string();
        seeds.put("control_request", &op, json.as_bytes());
    }

    // Export lines and key backups.
    for (label, m) in [
        ("room", &own_msg),
        ("dm", &dm_msg),
        ("carried", &carried_msg),
    ] {
        let line = serde_json::to_string(&dn_node::export::export_line(m)).expect("serialise");
        seeds.put("export_line", label, line.as_bytes());
    }
    let backup = format!(
        "{}\n{}\n",
        dn_node::identity::BACKUP_HEADER,
        hex::encode(peer_key.to_bytes())
    );
    seeds.put("backup", "backup", backup.as_bytes());
    seeds.put(
        "backup",
        "plain-key",
        format!("{}\n", hex::encode([0x77u8; 32])).as_bytes(),
    );

    // Bundles: a whole one, a truncated one, one with a damaged record, an empty one.
    let header = dn_proto::bundle::Header {
        flags: 0,
        created_ms: pf::WALL_MS,
        creator: node,
        count_hint: 3,
    };
    let whole = dn_proto::bundle::encode(&header, &[own_msg.clone(), dm_msg.clone(), carried_msg]);
    seeds.put("bundle", "whole", &whole);
    seeds.put("bundle", "truncated", &whole[..whole.len() / 2]);
    let mut damaged = whole.clone();
    damaged[dn_proto::bundle::HEADER_BYTES + 10] ^= 0x40;
    seeds.put("bundle", "damaged", &damaged);
    seeds.put("bundle", "empty", &dn_proto::bundle::encode(&header, &[]));
}
