//! The errors the decoders report for truncated, over-long and invalid input, through the
//! public API. The byte-level reasons come from `dn_proto::coding` and must read the same in
//! every error type (`truncated`, `trailing bytes`, `invalid UTF-8`).

use dn_proto::coding::{self, CodingError, Decode, Reader};
use dn_proto::dm::{self, DmEnvelope, DmError};
use dn_proto::recon::{self, ReconError, ReconMsg};
use dn_proto::topo::TopoRecord;
use dn_proto::{Frame, Message, MessageId, NodeId, ProtoError};
use ed25519_dalek::SigningKey;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

#[test]
fn frame_errors() {
    let f = Frame::Prune {
        room: "medical".into(),
    };
    let enc = f.encode();
    assert_eq!(
        Frame::decode(&enc[..enc.len() - 1]),
        Err(ProtoError::Malformed("truncated"))
    );
    let mut extra = enc.clone();
    extra.push(0);
    assert_eq!(
        Frame::decode(&extra),
        Err(ProtoError::Malformed("trailing bytes"))
    );
    assert_eq!(
        Frame::decode(&[8, 2, 0xc3, 0x28]),
        Err(ProtoError::Malformed("invalid UTF-8"))
    );
    assert_eq!(
        Frame::decode(&[6, 1, b'a', 0x04, 0x01]),
        Err(ProtoError::Malformed("too many ids"))
    );
    assert_eq!(Frame::decode(&[]), Err(ProtoError::Malformed("truncated")));
}

#[test]
fn message_and_topology_errors() {
    let m = Message::create(&key(1), "medical", "Ana", 1, "hello").unwrap();
    let signed = m.signed_bytes();
    assert_eq!(
        Message::from_signed_bytes(&signed[..signed.len() - 1], m.signature),
        Err(ProtoError::Malformed("truncated"))
    );
    let mut w = coding::Writer::default();
    w.put(&m);
    let bytes = w.into_vec();
    let mut r = Reader::new(&bytes);
    assert_eq!(Message::decode(&mut r).as_ref(), Ok(&m));
    assert_eq!(r.finish(), Ok(()));
    assert_eq!(
        coding::from_slice::<Message>(&bytes[..bytes.len() - 1]),
        Err(ProtoError::Malformed("truncated"))
    );

    let rec = TopoRecord::create(&key(2), 1, "n", vec![]);
    let bytes = coding::to_vec(&rec, 0);
    assert_eq!(coding::from_slice::<TopoRecord>(&bytes).as_ref(), Ok(&rec));
    assert_eq!(
        coding::from_slice::<TopoRecord>(&bytes[..10]),
        Err(ProtoError::Malformed("truncated"))
    );
}

#[test]
fn id_codings() {
    let id = MessageId([7; 32]);
    let node = NodeId([9; 32]);
    assert_eq!(coding::to_vec(&id, 32), vec![7; 32]);
    assert_eq!(coding::from_slice::<NodeId>(&[9; 32]), Ok(node));
    assert_eq!(
        coding::from_slice::<NodeId>(&[9; 31]),
        Err(CodingError::UnexpectedEnd)
    );
    assert_eq!(
        coding::from_slice::<MessageId>(&[9; 33]),
        Err(CodingError::TrailingBytes)
    );
}

#[test]
fn recon_errors() {
    let msg = recon::start_with_salt(&[(1, MessageId([1; 32]))], [2; 16]);
    let enc = msg.encode();
    assert_eq!(
        ReconMsg::decode(&enc[..enc.len() - 1]),
        Err(ReconError::Malformed("truncated"))
    );
    let mut extra = enc.clone();
    extra.push(0);
    assert_eq!(
        ReconMsg::decode(&extra),
        Err(ReconError::Malformed("trailing bytes"))
    );
    assert_eq!(
        ReconMsg::decode(&vec![1; recon::MAX_MSG_BYTES + 1]),
        Err(ReconError::TooLarge(recon::MAX_MSG_BYTES + 1))
    );
    // A frame carrying a bad reconciliation message says so.
    let mut frame = vec![10, 1, b'a'];
    frame.extend_from_slice(&((enc.len() - 1) as u16).to_be_bytes());
    frame.extend_from_slice(&enc[..enc.len() - 1]);
    assert_eq!(
        Frame::decode(&frame),
        Err(ProtoError::Malformed("bad reconciliation message"))
    );
}

#[test]
fn dm_errors() {
    let to = NodeId(key(2).verifying_key().to_bytes());
    let env = dm::seal(&key(1), &to, "hi", 1, [3; 32], [4; 24]).unwrap();
    let enc = env.encode();
    assert_eq!(
        DmEnvelope::decode(&enc[..enc.len() - 1]),
        Err(DmError::Malformed("truncated"))
    );
    assert_eq!(
        DmEnvelope::decode(&enc[..50]),
        Err(DmError::Malformed("truncated"))
    );
    let mut extra = enc.clone();
    extra.push(0);
    assert_eq!(
        DmEnvelope::decode(&extra),
        Err(DmError::Malformed("trailing bytes"))
    );
    assert_eq!(
        DmEnvelope::decode(&vec![0; dm::MAX_DM_ENVELOPE_BYTES + 1]),
        Err(DmError::Malformed("envelope too large"))
    );
}
