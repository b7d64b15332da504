//! Golden vectors: one fixed instance of every wire type, encoded with the public API and
//! compared byte for byte with hex captured from the implementation before the codec was
//! restructured (issue #10). A change to any layout in `docs/protocol.md` shows up here.
//!
//! Everything is deterministic: keys from fixed seeds, fixed timestamps, fixed salts and fixed
//! randomness for the direct-message envelope. To see the bytes of a failing case, run with
//! `GOLDEN_PRINT=1 cargo test -p dn-proto --test golden -- --nocapture`.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use dn_proto::dm::{self, DmEnvelope};
use dn_proto::recon::{self, Part, ReconMsg};
use dn_proto::topo::{Neighbour, TopoRecord};
use dn_proto::{Frame, Message, MessageId, NodeId};
use ed25519_dalek::SigningKey;

const TS: u64 = 1_700_000_000_000;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn node(n: u8) -> NodeId {
    NodeId(key(n).verifying_key().to_bytes())
}

fn message() -> Message {
    Message::create(&key(1), "medical", "Ana", TS, "need insulin at the school")
        .expect("valid message")
}

fn topo_record() -> TopoRecord {
    TopoRecord::create(
        &key(2),
        42,
        "Ben",
        vec![
            Neighbour {
                id: node(1),
                addr: Some(SocketAddrV4::new([10, 0, 0, 1].into(), 7300)),
                rtt_ms: None,
            },
            Neighbour {
                id: node(3),
                addr: None,
                rtt_ms: None,
            },
        ],
    )
}

/// `n` entries `(timestamp, id)` with ids `[tag, i (u16 BE), 0, …]`.
fn entries(n: u16, tag: u8) -> Vec<(u64, MessageId)> {
    (0..n)
        .map(|i| {
            let mut id = [0; 32];
            id[0] = tag;
            id[1..3].copy_from_slice(&i.to_be_bytes());
            (TS + u64::from(i), MessageId(id))
        })
        .collect()
}

const SALT: [u8; 16] = [0x5a; 16];

/// Every message of a reconciliation between `a` (initiator, fixed salt) and `b`.
fn exchange(a: &[(u64, MessageId)], b: &[(u64, MessageId)]) -> Vec<ReconMsg> {
    let mut msgs = vec![recon::start_with_salt(a, SALT)];
    let mut pending = msgs.clone();
    let mut turn_b = true;
    for _ in 0..12 {
        let set = if turn_b { b } else { a };
        let next: Vec<ReconMsg> = pending
            .iter()
            .flat_map(|m| recon::step(set, m).expect("valid recon message").replies)
            .collect();
        if next.is_empty() {
            break;
        }
        msgs.extend(next.iter().cloned());
        pending = next;
        turn_b = !turn_b;
    }
    msgs
}

fn kind(p: &Part) -> &'static str {
    match p {
        Part::Summary { .. } => "summary",
        Part::Sketch { .. } => "sketch",
        Part::Ids { .. } => "ids",
        Part::Request { .. } => "request",
    }
}

/// Reconciliation messages: the start over a small set, over a larger one (with and without
/// bitmap), and the first message carrying each part kind in a few exchanges.
fn recon_msgs() -> Vec<(String, ReconMsg)> {
    let mut out = vec![
        (
            "recon-start-small".to_string(),
            recon::start_with_salt(&entries(3, 1), SALT),
        ),
        (
            "recon-start-40".to_string(),
            recon::start_with_salt(&entries(40, 1), SALT),
        ),
        (
            "recon-compact-40".to_string(),
            recon::start_compact(&entries(40, 1), SALT),
        ),
    ];
    let mut big_b = entries(300, 1);
    big_b.truncate(280);
    big_b.extend(entries(15, 2));
    let mut seen = BTreeMap::new();
    for (a, b) in [
        (entries(300, 1), big_b),
        (entries(300, 1), entries(6, 1)),
        (entries(6, 1), entries(300, 1)),
        (entries(300, 1), entries(200, 3)),
    ] {
        for m in exchange(&a, &b) {
            for p in &m.parts {
                seen.entry(kind(p)).or_insert_with(|| m.clone());
            }
        }
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        ["ids", "request", "sketch", "summary"],
        "the exchanges no longer produce every part kind"
    );
    out.extend(
        seen.into_iter()
            .map(|(k, m)| (format!("recon-with-{k}"), m)),
    );
    out
}

fn envelope() -> DmEnvelope {
    dm::seal(&key(4), &node(5), "meet at gate 3", TS, [7; 32], [9; 24]).expect("seal")
}

fn frames() -> Vec<(&'static str, Frame)> {
    let m = message();
    vec![
        (
            "frame-hello",
            Frame::Hello {
                version: 1,
                node: node(1),
                name: "Ana".into(),
                rooms: vec!["medical".into(), "logistics".into()],
                listen_port: 7300,
            },
        ),
        (
            "frame-rooms",
            Frame::Rooms {
                rooms: vec!["medical".into()],
            },
        ),
        (
            "frame-msg",
            Frame::Msg {
                hops: 7,
                message: m.clone(),
            },
        ),
        (
            "frame-recon",
            Frame::Recon {
                room: "medical".into(),
                msg: recon::start_with_salt(&[(TS, m.id())], SALT),
            },
        ),
        (
            "frame-ihave",
            Frame::IHave {
                room: "medical".into(),
                ids: vec![m.id(), MessageId([9; 32])],
            },
        ),
        (
            "frame-graft",
            Frame::Graft {
                room: "medical".into(),
                ids: vec![m.id()],
            },
        ),
        (
            "frame-prune",
            Frame::Prune {
                room: "medical".into(),
            },
        ),
        ("frame-topo", Frame::Topo(topo_record())),
        (
            "frame-recon-done",
            Frame::ReconDone {
                room: "medical".into(),
            },
        ),
    ]
}

/// Every case as (name, encoded bytes), each checked to decode back to its value.
fn cases() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let m = message();
    out.push(("message-signed".to_string(), m.signed_bytes()));
    let rec = topo_record();
    out.push(("topo-signed".to_string(), rec.signed_bytes()));
    for (name, f) in frames() {
        let enc = f.encode();
        assert_eq!(Frame::decode(&enc).as_ref(), Ok(&f), "{name}");
        assert_eq!(&f.encode_prefixed()[4..], &enc[..], "{name}");
        out.push((name.to_string(), enc));
    }
    for (name, r) in recon_msgs() {
        let enc = r.encode();
        assert_eq!(ReconMsg::decode(&enc).as_ref(), Ok(&r), "{name}");
        out.push((name, enc));
    }
    let env = envelope();
    let enc = env.encode();
    assert_eq!(DmEnvelope::decode(&enc).as_ref(), Ok(&env));
    out.push(("dm-envelope".to_string(), enc));
    out
}

#[test]
fn golden_vectors() {
    let got = cases();
    if std::env::var_os("GOLDEN_PRINT").is_some() {
        for (name, bytes) in &got {
            println!("    (\"{name}\", \"{}\"),", hex::encode(bytes));
        }
    }
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    let want_names: Vec<&str> = GOLDEN.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want_names, "set of golden cases changed");
    for ((name, bytes), (_, want)) in got.iter().zip(GOLDEN) {
        assert_eq!(&hex::encode(bytes), want, "{name}: bytes changed");
    }
}

#[test]
fn golden_vectors_decode() {
    // The captured bytes themselves decode to values that encode back to them.
    for (name, want) in GOLDEN {
        let bytes = hex::decode(want).unwrap();
        if name.starts_with("frame-") {
            assert_eq!(Frame::decode(&bytes).unwrap().encode(), bytes, "{name}");
        } else if name.starts_with("recon-") {
            assert_eq!(ReconMsg::decode(&bytes).unwrap().encode(), bytes, "{name}");
        } else if *name == "dm-envelope" {
            assert_eq!(
                DmEnvelope::decode(&bytes).unwrap().encode(),
                bytes,
                "{name}"
            );
        }
    }
}

/// Captured from the codec before the restructuring of issue #10.
const GOLDEN: &[(&str, &str)] = &[
    (
        "message-signed",
        concat!(
            "444e4d534701076d65646963616c8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf374",
            "8801b40f6f5c0000018bcfe5680003416e61001a6e65656420696e73756c696e2061742074686520",
            "7363686f6f6c",
        ),
    ),
    (
        "topo-signed",
        concat!(
            "444e544f50018139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3940000",
            "00000000002a0342656e00028a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801",
            "b40f6f5c010a0000011c84ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac",
            "8737d100",
        ),
    ),
    (
        "frame-hello",
        concat!(
            "01018a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c03416e610002",
            "076d65646963616c096c6f676973746963731c84",
        ),
    ),
    ("frame-rooms", "020001076d65646963616c"),
    (
        "frame-msg",
        concat!(
            "03070056444e4d534701076d65646963616c8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94",
            "121bf3748801b40f6f5c0000018bcfe5680003416e61001a6e65656420696e73756c696e20617420",
            "746865207363686f6f6c2d5a935b50dddadecd8aadfeaeee15f2ca86dd10289333b970db4d8d364a",
            "3ea15ea5cfcf15be88214e8642c896eb04348047ffea5cac2bd149be02d039b05003",
        ),
    ),
    (
        "frame-recon",
        concat!(
            "0a076d65646963616c002401005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a0001030000000001b57fa4",
            "4e0cbc8ee30000",
        ),
    ),
    (
        "frame-ihave",
        concat!(
            "06076d65646963616c0002f917dd9f7c6d9ae9558bd340c01f9e9a880a4d93daa6c55a86a5e7195c",
            "d75c9f0909090909090909090909090909090909090909090909090909090909090909",
        ),
    ),
    (
        "frame-graft",
        concat!(
            "07076d65646963616c0001f917dd9f7c6d9ae9558bd340c01f9e9a880a4d93daa6c55a86a5e7195c",
            "d75c9f",
        ),
    ),
    ("frame-prune", "08076d65646963616c"),
    (
        "frame-topo",
        concat!(
            "09007c444e544f50018139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3",
            "94000000000000002a0342656e00028a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3",
            "748801b40f6f5c010a0000011c84ed4928c628d1c2c6eae90338905995612959273a5c63f93636c1",
            "4614ac8737d100ce63de3080fc2b8b08db5e1dc4ed145598ce80089a0f748bd9513dcb9ff3ef8ef3",
            "abd047831a06ade6c2bf86e07dd030d8a907c5e6f96651b9dc758b479e4108",
        ),
    ),
    ("frame-recon-done", "0b076d65646963616c"),
    (
        "recon-start-small",
        concat!(
            "01005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a00010300000000032d7f65c84de2da7860411d895fca",
            "bb01db225fa0d84e9e2d0000",
        ),
    ),
    (
        "recon-start-40",
        concat!(
            "01005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a000101000000002812e4ac59b21d4b3ab80e388203e1",
            "81f80010854002008a018b40881e2184c03610940000",
        ),
    ),
    (
        "recon-compact-40",
        concat!(
            "01005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a000101000000002812e4ac59b21d4b3ab80e388203e1",
            "81f800000000",
        ),
    ),
    (
        "recon-with-ids",
        concat!(
            "01015a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a00010300000000062d7f65c84de2da7860411d895fca",
            "bb0181948cb833130bf2db225fa0d84e9e2de0dfabe524cf07dff229fd66616157180000",
        ),
    ),
    (
        "recon-with-request",
        "01015a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a000104000000",
    ),
    (
        "recon-with-sketch",
        concat!(
            "01015a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a000102000000012757303f84da5ce8d788aa71f423b5",
            "b05e00000050bb53453ff53e4cf6d9de959114d8d74f488af38c08509d33b3f46391bfd8cbff8ff8",
            "a17caf2fc458746911720ac75f4d78c3bd9d29d852379336076f490689479e4c5dbdfb437d0ce51d",
            "7d7e02e97d6a06e4577040a00d010a04f0afac9f0880b6d5adbc89d3a88b4c10ca0b185fbadf38d8",
            "cff1193e44b24ef8577519f42fe07c39ce8804410c7396f178c2e50bbe5d2f7dad71b530b41d82a8",
            "f9b6c0586bac68407c357b5a7ef4e760fb8db0a182dfc49c31dd8a6187d1657a020c0ee330a28e0c",
            "0b0b673a75c1083e67877f089fc48096eeea069347b17fe15aed9e5e03ddc0979d8522d5262f7273",
            "89c1bacab1d8ff17d656f858fcd45f7bd665e110f56244246234e632a14a66b707f574083c976ecd",
            "a5f2f71eb7956eb89e8dfc6602ba8dcecdac5e0192bdd07cc2cb82f42a9d4f2bd03739a447288209",
            "05fd58c2b0a6058bd744c880c363870d02b20d080b86971fa96cf176117a8247a1b2e894c36197fd",
            "1a9a511f224d2856554e17523cfbd5b48b33c52322de2c1b15de68380f2b5b44677e0b059bb9e955",
            "c822b1e308b240b1650e000979d3036b385b10f1248712c344677ab7d66ef9737034847be4333773",
            "646ae3dc38697e0ae3477b3ebd91274acfd59b41fe05a9b3da8a15fa17bc6582fee1d76decd679af",
            "192d29aca1380dca2f4974a9e77eabef34c723616b0f70f9c0d533cb44b63feae62bd09a2f8d2802",
            "5e5c9c650970a9b5e0a6d8dd554da4c4da11bb3ab6f5639d47f84f81e797eadf54774919d1f47622",
            "94e784efce62134669aefaad67f336ed1a54067097c800528a182e0022cefe430aae9cd85fa61614",
            "25903337eaf199ed44d81daf6238d5d8ecc96268e8b15c10050c39ff03020151fcce01080824f9bf",
            "989eb10ba3eee2a7c19c2ace9558928bda8dbd1a3989039627f7e440d7945975f0981a3489344243",
            "493116d5678f681c815c574993ad52cd16931415f7025e343bb008a6d797c6d7f39875f3f55f5cee",
            "742a5e12c31cb0574e52b41fbb7f3f6daaf08a5d331d5943f4f33eed95cfaa0cacb5be97af485b06",
            "1d2dc99d10486c9d3715099cfe973f7ccaab2c2abf11c83177ecfcc72ecfa9c18ba7503e414893ba",
            "6cc0566e84720000",
        ),
    ),
    (
        "recon-with-summary",
        concat!(
            "01005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a000101000000012c57c2fbaa8cd4489af13abe7b1795",
            "44740080088100602214086cc80403001201ba500000149510430240101280041000908220028860",
            "0ca5484580194080081080801d4810100008ce1099c0401e1400488346404a800408012886709e10",
            "00261100103004208017180088508594804150029ca00412d810021008ac252000061402c3212211",
            "2c583304a0475900012de0800000",
        ),
    ),
    (
        "dm-envelope",
        concat!(
            "444e444d016e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf113be4f",
            "eaeaf204c7fd3358fc9c00721881d174278128227ec674f37f7fe97b6d0909090909090909090909",
            "09090909090909090909090909c1937c0650831976654193ad6356793d1dc006c804481dd4736f1b",
            "6b4aebd591ab2f003fab41b3b74a2447f58f9c123d72aa3af4576c5b846ec7c9488a799c6e812a26",
            "a7a1520aee4b4bc1306a0091f930baaee4687d04d7f734a68c0e014791001e858ae03d580f4d5561",
            "be3f8ba34d62f7f7f088641c3f49badb8e0e866081",
        ),
    ),
];
