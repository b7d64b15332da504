use ed25519_dalek::SigningKey;

use super::*;
use crate::Message;

const TS: u64 = 1_700_000_000_000;
const KEY: [u8; 32] = [7; 32];

fn room() -> RoomId {
    RoomId::from_key(&[0x42; 32])
}
fn signer() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}
fn author() -> NodeId {
    NodeId(signer().verifying_key().to_bytes())
}
fn plain(content: Content) -> Plain {
    Plain {
        room_name: "medical".into(),
        author_name: "Ana".into(),
        content,
    }
}
fn sealed(content: Content) -> String {
    seal(&room(), 2, &KEY, &author(), TS, &plain(content), [4; 24]).unwrap()
}

#[test]
fn room_id_and_name() {
    let r = room();
    let name = r.room_name();
    assert_eq!(name.len(), 34);
    assert!(name.starts_with("p."));
    assert_eq!(RoomId::parse(&name), Some(r));
    assert!(is_private_room(&name));
    assert_eq!(crate::message::normalize_room(&name).as_deref(), Ok(&*name));
    assert_ne!(RoomId::from_key(&[0x43; 32]), r);
    for bad in [
        "medical",
        "p.",
        &name.to_uppercase(),
        &name.replace("p.", "q."),
        &name[..33],
        &format!("{name}0"),
        &format!("#{name}"),
        "p.0123456789abcdef0123456789abcdeg",
    ] {
        assert_eq!(RoomId::parse(bad), None, "{bad}");
        assert!(!is_private_room(bad));
    }
}

#[test]
fn roundtrip_every_kind() {
    let contents = [
        Content::Text("need insulin at the school, room 4".into()),
        Content::Join,
        Content::Remove {
            member: NodeId([9; 32]),
            new_epoch: 3,
        },
        Content::Promote {
            member: NodeId([8; 32]),
        },
    ];
    for c in contents {
        let body = sealed(c.clone());
        assert!(body.starts_with("pr1:"));
        let env = from_body(&body).unwrap();
        assert_eq!(env.epoch, 2);
        assert_eq!(to_body(&env), body);
        assert_eq!(Envelope::decode(&env.encode()), Ok(env.clone()));
        assert_eq!(open(&room(), &KEY, &author(), TS, &env), Ok(plain(c)));
    }
}

#[test]
fn seal_normalises_and_validates() {
    let p = Plain {
        room_name: " #Medical ".into(),
        author_name: " Ana ".into(),
        content: Content::Join,
    };
    let body = seal(&room(), 0, &KEY, &author(), TS, &p, [4; 24]).unwrap();
    let env = from_body(&body).unwrap();
    assert_eq!(
        open(&room(), &KEY, &author(), TS, &env),
        Ok(plain(Content::Join))
    );
    let s = |room_name: &str, author_name: &str, content: Content| {
        let p = Plain {
            room_name: room_name.into(),
            author_name: author_name.into(),
            content,
        };
        seal(&room(), 0, &KEY, &author(), TS, &p, [4; 24])
    };
    let t = |x: &str| Content::Text(x.into());
    assert_eq!(s("bad room", "Ana", t("x")), Err(PrivateError::BadRoomName));
    assert_eq!(s("", "Ana", t("x")), Err(PrivateError::BadRoomName));
    assert_eq!(s("medical", "", t("x")), Err(PrivateError::BadName));
    assert_eq!(s("medical", "a\u{7}b", t("x")), Err(PrivateError::BadName));
    assert_eq!(s("medical", "Ana", t(" \n")), Err(PrivateError::Empty));
    assert_eq!(
        s("medical", "Ana", t(&"x".repeat(MAX_PRIVATE_TEXT_BYTES + 1))),
        Err(PrivateError::TooLarge {
            len: MAX_PRIVATE_TEXT_BYTES + 1,
            max: MAX_PRIVATE_TEXT_BYTES
        })
    );
}

#[test]
fn wrong_room_author_timestamp_epoch_or_key_fails() {
    let env = from_body(&sealed(Content::Text("hello".into()))).unwrap();
    let other_room = RoomId::from_key(&[0x43; 32]);
    let other = NodeId(SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes());
    let d = Err(PrivateError::Decrypt);
    assert_eq!(open(&other_room, &KEY, &author(), TS, &env), d);
    assert_eq!(open(&room(), &KEY, &other, TS, &env), d);
    assert_eq!(open(&room(), &KEY, &author(), TS + 1, &env), d);
    assert_eq!(open(&room(), &[8; 32], &author(), TS, &env), d);
    let mut relabelled = env.clone();
    relabelled.epoch = 3;
    assert_eq!(open(&room(), &KEY, &author(), TS, &relabelled), d);
    assert!(open(&room(), &KEY, &author(), TS, &env).is_ok());
}

#[test]
fn every_bit_flip_of_an_envelope_fails_to_open() {
    let enc = from_body(&sealed(Content::Text("hi".into())))
        .unwrap()
        .encode();
    for i in 0..enc.len() {
        for bit in 0..8 {
            let mut e = enc.clone();
            e[i] ^= 1 << bit;
            if let Ok(d) = Envelope::decode(&e) {
                assert!(
                    open(&room(), &KEY, &author(), TS, &d).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
    }
}

#[test]
fn largest_text_fits_a_signed_message_body() {
    assert_eq!(MAX_PRIVATE_ENVELOPE_BYTES, 6141);
    assert_eq!(MAX_PRIVATE_TEXT_BYTES, 5957);
    let p = Plain {
        room_name: "r".repeat(64),
        author_name: "é".repeat(32),
        content: Content::Text("x".repeat(MAX_PRIVATE_TEXT_BYTES)),
    };
    let body = seal(&room(), u32::MAX, &KEY, &author(), TS, &p, [4; 24]).unwrap();
    assert_eq!(body.len(), crate::message::MAX_BODY_BYTES);
    let env = from_body(&body).unwrap();
    assert_eq!(env.encode().len(), MAX_PRIVATE_ENVELOPE_BYTES);
    let m = Message::create(
        &signer(),
        &room().room_name(),
        HIDDEN_AUTHOR_NAME,
        TS,
        &body,
    )
    .unwrap();
    m.verify().unwrap();
    assert_eq!(check_carried(&m), Ok(()));
    assert_eq!(
        open(
            &room(),
            &KEY,
            &m.author,
            m.timestamp,
            &from_body(&m.body).unwrap()
        ),
        Ok(p)
    );
}

#[test]
fn check_carried_refuses_a_real_name_a_non_envelope_and_an_open_room() {
    let body = sealed(Content::Text("secret".into()));
    let rn = room().room_name();
    let msg = |room: &str, name: &str, body: &str| {
        Message::create(&signer(), room, name, TS, body).unwrap()
    };
    assert_eq!(check_carried(&msg(&rn, "-", &body)), Ok(()));
    assert_eq!(
        check_carried(&msg(&rn, "Ana", &body)),
        Err(PrivateError::NameNotHidden)
    );
    assert!(matches!(
        check_carried(&msg(&rn, "-", "patient in tent 4")),
        Err(PrivateError::Malformed(_))
    ));
    assert!(check_carried(&msg(&rn, "-", "pr1:!!!")).is_err());
    assert!(check_carried(&msg(&rn, "-", &format!("{body} "))).is_err());
    assert_eq!(
        check_carried(&msg("medical", "-", &body)),
        Err(PrivateError::NotPrivateRoom)
    );
}

#[test]
fn decode_rejects_truncated_long_and_garbage() {
    let enc = from_body(&sealed(Content::Join)).unwrap().encode();
    for n in 0..enc.len() {
        assert!(Envelope::decode(&enc[..n]).is_err(), "truncated at {n}");
    }
    let mut extra = enc.clone();
    extra.push(0);
    assert!(Envelope::decode(&extra).is_err());
    let mut v2 = enc.clone();
    v2[4] = 2;
    assert_eq!(
        Envelope::decode(&v2),
        Err(PrivateError::UnsupportedVersion(2))
    );
    let mut magic = enc.clone();
    magic[0] = b'X';
    assert!(matches!(
        Envelope::decode(&magic),
        Err(PrivateError::Malformed(_))
    ));
    for len in [
        (MAX_PRIVATE_PLAINTEXT_BYTES + PRIVATE_TAG_BYTES + 1) as u16,
        (MIN_PRIVATE_PLAINTEXT_BYTES + PRIVATE_TAG_BYTES - 1) as u16,
        0,
        u16::MAX,
    ] {
        let mut e = enc[..PRIVATE_HEADER_BYTES - 2].to_vec();
        e.extend_from_slice(&len.to_be_bytes());
        e.resize(e.len() + usize::from(len), 0);
        assert!(Envelope::decode(&e).is_err(), "{len}");
    }
    assert!(Envelope::decode(&vec![0u8; MAX_PRIVATE_ENVELOPE_BYTES + 1]).is_err());
    assert!(from_body(&format!("pr1:{}", "A".repeat(9000))).is_err());
    assert!(from_body("dm1:AAAA").is_err());
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let len = (s % 200) as usize;
        let mut g: Vec<u8> = (0..len)
            .map(|i| (s.rotate_left(i as u32 % 64) >> 3) as u8)
            .collect();
        if len >= 5 && s.is_multiple_of(2) {
            g[..5].copy_from_slice(b"DNPR\x01");
        }
        if let Ok(env) = Envelope::decode(&g) {
            assert!(open(&room(), &KEY, &author(), TS, &env).is_err());
        }
    }
}

/// Plaintext rules on open: a plaintext that authenticates but breaks them is refused.
#[test]
fn open_validates_the_plaintext() {
    let mk = message_key(&room(), &KEY).unwrap();
    let seal_raw = |bytes: &[u8]| {
        let nonce = [5u8; 24];
        let aad = aad(&room(), &author(), TS, 0, &nonce);
        let ciphertext = XChaCha20Poly1305::new(mk.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: bytes,
                    aad: &aad,
                },
            )
            .unwrap();
        let env = Envelope {
            epoch: 0,
            nonce,
            ciphertext,
        };
        open(&room(), &KEY, &author(), TS, &env)
    };
    let good = encode_plain("medical", "Ana", &Content::Join);
    assert_eq!(seal_raw(&good), Ok(plain(Content::Join)));
    let mut trailing = good.to_vec();
    trailing.push(0);
    assert_eq!(
        seal_raw(&trailing),
        Err(PrivateError::Malformed("trailing bytes"))
    );
    let mut kind = good.to_vec();
    kind[0] = 9;
    assert_eq!(seal_raw(&kind), Err(PrivateError::UnknownKind(9)));
    assert_eq!(
        seal_raw(&encode_plain("Medical", "Ana", &Content::Join)),
        Err(PrivateError::BadRoomName)
    );
    assert_eq!(
        seal_raw(&encode_plain("medical", " Ana", &Content::Join)),
        Err(PrivateError::BadName)
    );
    assert_eq!(
        seal_raw(&encode_plain("medical", "Ana", &Content::Text(" ".into()))),
        Err(PrivateError::Empty)
    );
    assert!(seal_raw(&good[..good.len() - 1]).is_err());
}
