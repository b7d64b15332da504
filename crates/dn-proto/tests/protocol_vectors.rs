//! Test vectors of `docs/protocol.md`, checked against the code through dn-proto's public API.
//!
//! Every hex constant here appears verbatim in `docs/protocol.md` (whitespace aside, since long
//! ones are wrapped there); [`docs_contain_every_vector`] checks that, so the document and the
//! code cannot drift apart silently. The reconciliation and neighbour-list vectors were also
//! reproduced independently (Python: a SHA-256 compression function, the mixers of §4.4.2 and
//! `cryptography`'s Ed25519) from the text of the document alone.
#![allow(clippy::unwrap_used)]

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use dn_proto::message::{normalize_name, normalize_room};
use dn_proto::private::{self, Content, Invite, InviteError, Plain, RoomId};
use dn_proto::recon::{self, Part, Range, ReconMsg, Salt};
use dn_proto::topo::{Neighbour, TopoRecord};
use dn_proto::{Frame, Message, MessageId, NodeId};
use ed25519_dalek::SigningKey;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

/// The salt of every reconciliation vector: bytes 00, 01, …, 0f.
const SALT: Salt = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// §4.4.1: `id(1)`, the block hashed for its short id, and the short id.
const ID_1: &str = "b40711a88c7039756fb8a73827eabe2c0fe5a0346ca7e0a104adc0fc764f528d";
const SHORT_ID_BLOCK: &str = "444e7265636f6e31000102030405060708090a0b0c0d0e0f\
b40711a88c7039756fb8a73827eabe2c0fe5a0346ca7e0a104adc0fc764f528d0000000000000000";
const SHORT_ID_1: &str = "b10ed39724bf494c";

/// §4.4.8: the set {id(1), id(2), id(3)}: sorted short ids, fingerprint, and the Recon frames.
const SHORTS_123: [&str; 3] = ["3b62c85de3cc7458", "58bbf157139ad439", "b10ed39724bf494c"];
const FP_123: &str = "a01d56f6a8c6b965f8c62bc816a8f309";
const SUMMARY_123: &str = "0a076d65646963616c00360100000102030405060708090a0b0c0d0e0f000101\
0000000003a01d56f6a8c6b965f8c62bc816a8f309000800080000000044000000";
const START_123: &str = "0a076d65646963616c00340100000102030405060708090a0b0c0d0e0f000103\
00000000033b62c85de3cc745858bbf157139ad439b10ed39724bf494c0000";

/// §4.4.8: A = id(1..=6), B = id(1..=5) + id(7).
const SMALL_R0: &str = "0a076d65646963616c00360100000102030405060708090a0b0c0d0e0f000101\
00000000063558da5065829601a02aadd29c68f2aa000800480000100046000000";
const SMALL_R1: &str = "0a076d65646963616c004c0101000102030405060708090a0b0c0d0e0f000103\
0000000006226bed169244fa6b3b62c85de3cc745858bbf157139ad439ae25bc36104f0e1eb10ed39724bf494c\
f263eb445f22c0be0000";
const SMALL_R2: &str = "0a076d65646963616c001e0102000102030405060708090a0b0c0d0e0f00000001\
226bed169244fa6b";

/// §4.4.8: A = id(1..=100), B = id(1..=99) + id(101).
const SKETCH_R0: &str = "0a076d65646963616c004e0100000102030405060708090a0b0c0d0e0f000101\
0000000064c9b1a174f085a9aba7843be19fa9145b002066a83c68b1445136284c0000200042c0009104020280cb\
a108542a49150d94040000";
const SKETCH_R1: &str = "0a076d65646963616c01200101000102030405060708090a0b0c0d0e0f000102\
0000000064c8b51451202fdcacd104d21bf36648da0000001843e4e9a3261f8be73dd1ca453a61618e814b89b170\
c8f4f4ab07d8f4a045badbe462dcaa86318790d426fa7232614b5ab462dbff9a1a759b157a1a438b97c6df7c2b0e\
794d2979b39582e6347a627173528c66b5f5a2eb77f700590e788dff8a06dee03129c1db3944193dd28a730f4d7b\
091bb714299dbc69b2631a5d3bf6950cf32393c14b53a7f69e7c3d871463ecbaec609ce94f4b7e472e39f2bfc238\
edc4f8809649551538a15ac52441d1c844aa62713614adf63850a33e78df8205f2ba4cb5219bab02d493b7a9fff9\
09da86866cc4405f16e78b89732570c7613ab845e706a4986aaffb9d948b1b886b97600000";
const SKETCH_R2: &str = "0a076d65646963616c001e0102000102030405060708090a0b0c0d0e0f00000001\
01423ccc4f544780";
/// `ReconDone` for room `medical`.
const RECON_DONE: &str = "0b076d65646963616c";

/// §4.3.1: the record of secret key 32×09, seq 1700000000000, name `relay`.
const TOPO_NODE: &str = "fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618";
const TOPO_SIGNED: &str = "444e544f5001fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac\
835e9f6180000018bcfe568000572656c617900028a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf374\
8801b40f6f5c010a0000021c848139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39400";
const TOPO_SIGNATURE: &str = "dc30f700331c38937c6a6c77f89320f9110b1824f23352ef018d0e71233445\
36cd6e1c3fc1a0cfa04973c82af4db18e633d8c919a353c900d41c956e1a763205";

/// §4.1: a Hello of the same node, name `Ana`, rooms `dm` and `medical`, `listen_port` 0.
const HELLO: &str = "0101fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618\
03416e61000202646d076d65646963616c0000";

/// §8: the private room whose first key is 32×`42`: its id and wire name.
const PR_ROOM_ID: &str = "923433d4af353ea4b96126d52c61bbdc";
const PR_ROOM_NAME: &str = "p.923433d4af353ea4b96126d52c61bbdc";
/// §8: the message key of epoch key 32×`07` in that room.
const PR_MESSAGE_KEY: &str = "7f41baca4f7cfec8c1e08cf43f84f32ac610b1bf713ad16345dccff53e4c745b";
/// §8: author = node of secret key 32×`01`, timestamp 1700000000000, epoch 2, nonce 24×`04`.
const PR_AAD: &str = "444e505201923433d4af353ea4b96126d52c61bbdc8a88e3dd7409f195fd52db2d3cba5d\
72ca6709bf1d94121bf3748801b40f6f5c0000018bcfe5680000000002040404040404040404040404040404040404\
040404040404";
/// §8: Text `hi` from `Ana` in `medical`: plaintext, envelope and message body.
const PR_PLAIN: &str = "01076d65646963616c03416e6100026869";
const PR_ENVELOPE: &str = "444e50520100000002040404040404040404040404040404040404040404040404\
002113737ed6d7d6545f21d81fb9d39528b4ed3aef912907ead8edb087c7c5f514a578";
const PR_BODY: &str =
    "pr1:RE5QUgEAAAACBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEACETc37W19ZUXyHYH7nTlSi07Trv\
kSkH6tjtsIfHxfUUpXg=";
/// §8.4: the invite to that room at epoch 2 (key 32×`07`), creator the same node, name
/// `medical`: payload, checksum and code.
const INVITE_PAYLOAD: &str = "01923433d4af353ea4b96126d52c61bbdc00000002070707070707070707070707\
07070707070707070707070707070707070707078a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf37488\
01b40f6f5c076d65646963616c";
const INVITE_CHECKSUM: &str = "f6dc1dff";
const INVITE_CODE: &str = "DNI1-06938-CYMNW-TKX95-SC4KD-AB31Q-FE000-00083-GE1R7-0W3GE-1R70W-\
3GE1R-70W3G-E1R70-W3GE1-R70W3-GE1R7-0W3GF-2M8WF-EQ82F-HJQYN-5PSD7-JX5TW-PACW4-VY7CM-28DZ6-\
X4806-T0YVT-W0XPP-AS39C-DGPSX-PW3QZ-G";

/// `id(i)` of the vectors: SHA-256 of `i` as a big-endian u32 (any 32 bytes would do).
fn id(i: u32) -> MessageId {
    MessageId(Sha256::digest(i.to_be_bytes()).into())
}

/// `(timestamp, id)` pairs; the timestamp (`i` ms) only orders the pushes.
fn set(ids: impl IntoIterator<Item = u32>) -> Vec<(u64, MessageId)> {
    ids.into_iter().map(|i| (u64::from(i), id(i))).collect()
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn node(seed: u8) -> NodeId {
    NodeId(key(seed).verifying_key().to_bytes())
}

/// The frame body (type byte and payload) carrying `msg` for room `medical`, in hex.
fn recon_frame(msg: &ReconMsg) -> String {
    hex::encode(
        Frame::Recon {
            room: "medical".into(),
            msg: msg.clone(),
        }
        .encode(),
    )
}

/// The `ReconMsg` inside a documented Recon frame (decoding must give back the same bytes).
fn decode_recon(frame_hex: &str) -> ReconMsg {
    let bytes = hex::decode(frame_hex).unwrap();
    let frame = Frame::decode(&bytes).unwrap();
    assert_eq!(frame.encode(), bytes, "decode then encode is the identity");
    match frame {
        Frame::Recon { room, msg } => {
            assert_eq!(room, "medical");
            msg
        }
        other => panic!("not a Recon frame: {}", other.kind()),
    }
}

#[test]
fn short_id_is_the_compression_of_one_documented_block() {
    assert_eq!(hex::encode(id(1).0), ID_1);
    let mut block = Vec::new();
    block.extend_from_slice(b"DNrecon1");
    block.extend_from_slice(&SALT);
    block.extend_from_slice(&id(1).0);
    block.extend_from_slice(&[0u8; 8]);
    assert_eq!(hex::encode(&block), SHORT_ID_BLOCK);

    // The SHA-256 compression function from the standard IV over that one block (no padding,
    // no length), first 8 bytes of the resulting state, big-endian.
    let mut state: [u32; 8] = [
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ];
    let block: [u8; 64] = block.try_into().unwrap();
    sha2::compress256(&mut state, &[GenericArray::from(block)]);
    let expected = (u64::from(state[0]) << 32) | u64::from(state[1]);
    let short = recon::short_id(&SALT, &id(1));
    assert_eq!(short, expected);
    assert_eq!(format!("{short:016x}"), SHORT_ID_1);
    // Not SHA-256 of the block (that would add a padding block).
    assert_ne!(&Sha256::digest(block)[..8], &short.to_be_bytes());
    // The salt matters.
    assert_ne!(recon::short_id(&[0u8; 16], &id(1)), short);
}

#[test]
fn summary_of_three_ids() {
    let three = set([1, 2, 3]);
    let mut shorts: Vec<u64> = three
        .iter()
        .map(|(_, m)| recon::short_id(&SALT, m))
        .collect();
    shorts.sort_unstable();
    let hexes: Vec<String> = shorts.iter().map(|s| format!("{s:016x}")).collect();
    assert_eq!(hexes, SHORTS_123);

    // The documented Summary (count 3, fingerprint, 64-bit parity bitmap) decodes, and a node
    // holding exactly these three ids finds the sets equal: no reply, nothing to push.
    let msg = decode_recon(SUMMARY_123);
    let Some(Part::Summary {
        range,
        count,
        fp,
        bitmap,
    }) = msg.parts.first().cloned()
    else {
        panic!("not a summary");
    };
    assert_eq!(
        (range, count, msg.round, msg.salt),
        (Range::ALL, 3, 0, SALT)
    );
    assert_eq!(format!("{fp:032x}"), FP_123);
    assert_eq!(hex::encode(&bitmap), "0008000000004400");
    let step = recon::step(&three, &msg).unwrap();
    assert!(step.replies.is_empty() && step.we_have_they_lack.is_empty());

    // Any other fingerprint or count makes the receiver answer (here: with its id list).
    for (c, f) in [(3, fp.wrapping_add(1)), (2, fp)] {
        let other = ReconMsg {
            parts: vec![Part::Summary {
                range,
                count: c,
                fp: f,
                bitmap: bitmap.clone(),
            }],
            ..msg.clone()
        };
        let step = recon::step(&three, &other).unwrap();
        assert_eq!(step.replies.len(), 1, "count {c}, fp {f:032x}");
    }

    // A set of at most 4 ids starts with its list instead of a summary.
    let start = recon::start_with_salt(&three, SALT);
    assert_eq!(recon_frame(&start), START_123);
}

/// Runs start → step (B) → step (A) → step (B) and checks every frame and every push.
fn exchange(a: &[(u64, MessageId)], b: &[(u64, MessageId)], frames: [&str; 3], a_lacks: u32) {
    let r0 = recon::start_with_salt(a, SALT);
    assert_eq!(recon_frame(&r0), frames[0]);
    assert_eq!(decode_recon(frames[0]), r0);

    let s1 = recon::step(b, &decode_recon(frames[0])).unwrap();
    assert_eq!(s1.replies.len(), 1);
    assert!(s1.we_have_they_lack.is_empty());
    assert_eq!(recon_frame(&s1.replies[0]), frames[1]);

    let s2 = recon::step(a, &decode_recon(frames[1])).unwrap();
    assert_eq!(s2.replies.len(), 1);
    assert_eq!(recon_frame(&s2.replies[0]), frames[2]);
    // A pushes what B lacks and wants (by short id) what it lacks itself.
    let b_ids: Vec<MessageId> = b.iter().map(|x| x.1).collect();
    let pushed: Vec<MessageId> = a
        .iter()
        .map(|x| x.1)
        .filter(|m| !b_ids.contains(m))
        .collect();
    assert_eq!(s2.we_have_they_lack, pushed);
    assert_eq!(
        s2.replies[0].wants,
        vec![recon::short_id(&SALT, &id(a_lacks))]
    );

    // B resolves the want, pushes it, and has nothing more to say: it sends ReconDone.
    let s3 = recon::step(b, &decode_recon(frames[2])).unwrap();
    assert!(s3.replies.is_empty());
    assert_eq!(s3.we_have_they_lack, vec![id(a_lacks)]);
    let done = Frame::ReconDone {
        room: "medical".into(),
    };
    assert_eq!(hex::encode(done.encode()), RECON_DONE);
}

#[test]
fn small_exchange_with_an_id_list() {
    let a = set(1..=6);
    let b = set((1..=5).chain([7]));
    exchange(&a, &b, [SMALL_R0, SMALL_R1, SMALL_R2], 7);
    // B's answer is its full list: one Ids part over the whole range, nothing handled.
    let r1 = decode_recon(SMALL_R1);
    assert!(matches!(&r1.parts[..], [Part::Ids { range, handled, ids }]
        if *range == Range::ALL && handled.is_empty() && ids.len() == 6));
}

#[test]
fn exchange_with_a_sketch() {
    let a = set(1..=100);
    let b = set((1..=99).chain([101]));
    exchange(&a, &b, [SKETCH_R0, SKETCH_R1, SKETCH_R2], 101);
    // The start carries a 32-byte bitmap (256 bits for 100 ids); the answer is a 24-cell IBLT.
    let r0 = decode_recon(SKETCH_R0);
    assert!(
        matches!(&r0.parts[..], [Part::Summary { count: 100, bitmap, .. }] if bitmap.len() == 32)
    );
    let r1 = decode_recon(SKETCH_R1);
    assert!(
        matches!(&r1.parts[..], [Part::Sketch { count: 100, handled, cells, .. }]
        if handled.is_empty() && cells.len() == 24)
    );
}

#[test]
fn neighbour_list_signed_bytes_and_signature() {
    let neighbours = vec![
        Neighbour {
            id: node(1),
            addr: Some("10.0.0.2:7300".parse().unwrap()),
            rtt_ms: None,
        },
        Neighbour {
            id: node(2),
            addr: None,
            rtt_ms: None,
        },
    ];
    let rec = TopoRecord::create(&key(9), 1_700_000_000_000, "relay", neighbours);
    assert_eq!(rec.node.to_hex(), TOPO_NODE);
    assert_eq!(hex::encode(rec.signed_bytes()), TOPO_SIGNED);
    assert_eq!(hex::encode(rec.signature), TOPO_SIGNATURE);
    rec.verify().unwrap();

    // On the wire: type 9, signed_len u16, signed bytes, signature.
    let wire = format!(
        "09{:04x}{TOPO_SIGNED}{TOPO_SIGNATURE}",
        TOPO_SIGNED.len() / 2
    );
    let frame = Frame::decode(&hex::decode(&wire).unwrap()).unwrap();
    assert_eq!(frame, Frame::Topo(rec.clone()));

    // One changed bit of the signed bytes breaks the signature.
    let mut bad = rec;
    bad.seq += 1;
    assert!(bad.verify().is_err());
}

#[test]
fn hello_lists_dm_and_may_say_port_zero() {
    let hello = Frame::Hello {
        version: 1,
        node: node(9),
        name: "Ana".into(),
        rooms: vec!["dm".into(), "medical".into()],
        listen_port: 0,
    };
    assert_eq!(hex::encode(hello.encode()), HELLO);
    assert_eq!(Frame::decode(&hex::decode(HELLO).unwrap()).unwrap(), hello);
}

#[test]
fn room_name_examples() {
    let ok = [
        ("medical", "medical"),
        ("  #Medical ", "medical"),
        ("Camp-3_North.b", "camp-3_north.b"),
        ("#dm", "dm"),
        // U+212A KELVIN SIGN lowercases to ASCII `k`.
        ("\u{212A}itchen", "kitchen"),
    ];
    for (input, normal) in ok {
        assert_eq!(normalize_room(input).unwrap(), normal, "{input:?}");
    }
    let sixty_four = "a".repeat(64);
    assert_eq!(normalize_room(&sixty_four).unwrap(), sixty_four);
    let bad = [
        String::new(),
        "#".into(),
        "##medical".into(),
        "# medical".into(),
        "medical team".into(),
        "médical".into(),
        "med/ical".into(),
        "a".repeat(65),
    ];
    for input in bad {
        assert!(normalize_room(&input).is_err(), "{input:?}");
    }
}

#[test]
fn display_name_examples() {
    let ok = [
        ("Ana", "Ana"),
        ("  Ana María \n", "Ana María"),
        ("ANA", "ANA"),
        ("Ana\u{200B}", "Ana\u{200B}"),
    ];
    for (input, normal) in ok {
        assert_eq!(normalize_name(input).unwrap(), normal, "{input:?}");
    }
    // 64 bytes: 32 × "é" (2 bytes each) fits, 33 do not.
    assert!(normalize_name(&"é".repeat(32)).is_ok());
    let bad = [
        String::new(),
        "   ".into(),
        "Ana\tB".into(),
        "Ana\u{7}".into(),
        "Ana\u{85}B".into(),
        "é".repeat(33),
        "a".repeat(65),
    ];
    for input in bad {
        assert!(normalize_name(&input).is_err(), "{input:?}");
    }
}

#[test]
fn private_room_envelope() {
    let room = RoomId::from_key(&[0x42; 32]);
    assert_eq!(hex::encode(room.0), PR_ROOM_ID);
    assert_eq!(room.room_name(), PR_ROOM_NAME);
    assert_eq!(RoomId::parse(PR_ROOM_NAME), Some(room));
    // The message key and associated data, recomputed from the text of §8.
    let mut mk = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(&room.0), &[7; 32])
        .expand(b"DisasterNet private room v1 message", &mut mk)
        .unwrap();
    assert_eq!(hex::encode(mk), PR_MESSAGE_KEY);
    let author = node(1);
    let mut aad = b"DNPR\x01".to_vec();
    aad.extend_from_slice(&room.0);
    aad.extend_from_slice(&author.0);
    aad.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
    aad.extend_from_slice(&2u32.to_be_bytes());
    aad.extend_from_slice(&[4; 24]);
    assert_eq!(hex::encode(&aad), PR_AAD);
    let plain = Plain {
        room_name: "medical".into(),
        author_name: "Ana".into(),
        content: Content::Text("hi".into()),
    };
    let body = private::seal(
        &room,
        2,
        &[7; 32],
        &author,
        1_700_000_000_000,
        &plain,
        [4; 24],
    )
    .unwrap();
    assert_eq!(body, PR_BODY);
    let env = private::from_body(&body).unwrap();
    assert_eq!(hex::encode(env.encode()), PR_ENVELOPE);
    assert_eq!(env.epoch, 2);
    // The ciphertext is XChaCha20-Poly1305 of the documented plaintext under that key and AAD.
    let opened = XChaCha20Poly1305::new(&mk.into())
        .decrypt(
            XNonce::from_slice(&[4; 24]),
            Payload {
                msg: &env.ciphertext,
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(hex::encode(opened), PR_PLAIN);
    assert_eq!(
        private::open(&room, &[7; 32], &author, 1_700_000_000_000, &env),
        Ok(plain)
    );
    let msg = Message::create(
        &key(1),
        PR_ROOM_NAME,
        private::HIDDEN_AUTHOR_NAME,
        1_700_000_000_000,
        &body,
    )
    .unwrap();
    assert_eq!(private::check_carried(&msg), Ok(()));
}

#[test]
fn invite_code() {
    let inv = Invite {
        room: RoomId::from_key(&[0x42; 32]),
        epoch: 2,
        key: [7; 32],
        creator: node(1),
        name: "medical".into(),
    };
    let payload = hex::decode(INVITE_PAYLOAD).unwrap();
    let mut h = Sha256::new();
    h.update(b"DisasterNet invite v1");
    h.update(&payload);
    assert_eq!(hex::encode(&h.finalize()[..4]), INVITE_CHECKSUM);
    assert_eq!(inv.to_code(), INVITE_CODE);
    assert_eq!(Invite::from_code(INVITE_CODE), Ok(inv.clone()));
    assert_eq!(
        private::grant_from_text(&format!("dnroomkey:{INVITE_CODE}")),
        Some(Ok(inv))
    );
    let typo = INVITE_CODE.replacen("CYMNW", "CYMNV", 1);
    assert_eq!(Invite::from_code(&typo), Err(InviteError::Checksum));
}

#[test]
fn docs_contain_every_vector() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    let text = std::fs::read_to_string(path).unwrap();
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut all = vec![
        ID_1,
        SHORT_ID_BLOCK,
        SHORT_ID_1,
        FP_123,
        SUMMARY_123,
        START_123,
        SMALL_R0,
        SMALL_R1,
        SMALL_R2,
        SKETCH_R0,
        SKETCH_R1,
        SKETCH_R2,
        RECON_DONE,
        TOPO_NODE,
        TOPO_SIGNED,
        TOPO_SIGNATURE,
        HELLO,
        PR_ROOM_ID,
        PR_ROOM_NAME,
        PR_MESSAGE_KEY,
        PR_AAD,
        PR_PLAIN,
        PR_ENVELOPE,
        PR_BODY,
        INVITE_PAYLOAD,
        INVITE_CHECKSUM,
        INVITE_CODE,
    ];
    all.extend(SHORTS_123);
    for v in all {
        assert!(compact.contains(v), "docs/protocol.md lacks the vector {v}");
    }
}
