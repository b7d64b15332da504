//! The frames two nodes exchange on a QUIC stream and their binary encoding. Layout in
//! `docs/protocol.md` §3. Decoding never panics on hostile input.
//!
//! A [`Frame`] wraps the other wire types ([`Message`], [`TopoRecord`], [`ReconMsg`]); each of
//! them encodes itself through the [`Encode`] / [`Decode`] traits of the leaf module
//! [`crate::coding`], so this module only adds the frame type byte, the frame's own fields
//! and the size limits. Nothing but users of [`Frame`] imports it.

use crate::coding::{self, Decode, Encode, Reader, Writer};
use crate::message::{Message, MessageId, NodeId};
use crate::recon::ReconMsg;
use crate::topo::TopoRecord;
use crate::ProtoError;

/// Largest frame body (type byte + payload) accepted on the wire.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Most ids in one `IHave` or `Graft` frame.
pub const MAX_IDS_PER_FRAME: usize = 1024;
/// Most rooms listed in a `Hello` or `Rooms` frame.
pub const MAX_ROOMS: usize = 256;

/// A frame exchanged between two connected nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// First frame on every connection, in both directions.
    Hello {
        /// Protocol version of the sender.
        version: u8,
        /// Sender's node id; must equal its TLS certificate key.
        node: NodeId,
        /// Sender's display name (may be empty before one is set).
        name: String,
        /// Rooms the sender has joined.
        rooms: Vec<String>,
        /// UDP port the sender accepts QUIC connections on.
        listen_port: u16,
    },
    /// The sender's joined rooms changed.
    Rooms {
        /// Full list of joined rooms.
        rooms: Vec<String>,
    },
    /// A message pushed to the receiver.
    Msg {
        /// How many more times the message may be forwarded.
        hops: u8,
        /// The message.
        message: Message,
    },
    /// One set-reconciliation message for a room (catch-up; see [`crate::recon`]).
    Recon {
        /// Room.
        room: String,
        /// The reconciliation message.
        msg: ReconMsg,
    },
    /// Lazy announcement: the sender has stored these new messages (not pushed to us).
    IHave {
        /// Room.
        room: String,
        /// Ids announced.
        ids: Vec<MessageId>,
    },
    /// Make the link an eager (tree) link for the room again, and send these messages.
    Graft {
        /// Room.
        room: String,
        /// Ids wanted now (may be empty).
        ids: Vec<MessageId>,
    },
    /// Stop pushing messages of this room to the sender; announce them lazily instead.
    Prune {
        /// Room.
        room: String,
    },
    /// A signed neighbour list (flooded to every node).
    Topo(TopoRecord),
    /// The sender's side of a room's reconciliation ended with nothing more to say.
    ReconDone {
        /// Room.
        room: String,
    },
}

const T_HELLO: u8 = 1;
const T_ROOMS: u8 = 2;
const T_MSG: u8 = 3;
// Types 4 and 5 (full id-set offers) belonged to an early draft and are not used.
const T_IHAVE: u8 = 6;
const T_GRAFT: u8 = 7;
const T_PRUNE: u8 = 8;
const T_TOPO: u8 = 9;
const T_RECON: u8 = 10;
const T_RECON_DONE: u8 = 11;

fn write_rooms(w: &mut Writer, rooms: &[String]) {
    let n = rooms.len().min(MAX_ROOMS);
    w.u16(n as u16);
    for r in &rooms[..n] {
        w.str8(r);
    }
}

fn read_rooms(r: &mut Reader<'_>) -> Result<Vec<String>, ProtoError> {
    let n = usize::from(r.u16()?);
    if n > MAX_ROOMS {
        return Err(ProtoError::Malformed("too many rooms"));
    }
    Ok((0..n).map(|_| r.str8()).collect::<Result<_, _>>()?)
}

fn write_ids(w: &mut Writer, ids: &[MessageId]) {
    let n = ids.len().min(MAX_IDS_PER_FRAME);
    w.u16(n as u16);
    for id in &ids[..n] {
        w.put(id);
    }
}

fn read_ids(r: &mut Reader<'_>) -> Result<Vec<MessageId>, ProtoError> {
    let n = usize::from(r.u16()?);
    if n > MAX_IDS_PER_FRAME {
        return Err(ProtoError::Malformed("too many ids"));
    }
    Ok((0..n)
        .map(|_| r.get::<MessageId>())
        .collect::<Result<_, _>>()?)
}

/// Frame body: `type u8 | payload` (docs/protocol.md §3), without the length prefix.
impl Encode for Frame {
    fn encode(&self, w: &mut Writer) {
        match self {
            Frame::Hello {
                version,
                node,
                name,
                rooms,
                listen_port,
            } => {
                w.u8(T_HELLO);
                w.u8(*version);
                w.put(node);
                w.str8(name);
                write_rooms(w, rooms);
                w.u16(*listen_port);
            }
            Frame::Rooms { rooms } => {
                w.u8(T_ROOMS);
                write_rooms(w, rooms);
            }
            Frame::Msg { hops, message } => {
                w.u8(T_MSG);
                w.u8(*hops);
                w.put(message);
            }
            Frame::Recon { room, msg } => {
                w.u8(T_RECON);
                w.str8(room);
                let bytes = msg.encode();
                w.u16(bytes.len().min(usize::from(u16::MAX)) as u16);
                w.bytes(&bytes);
            }
            Frame::IHave { room, ids } => {
                w.u8(T_IHAVE);
                w.str8(room);
                write_ids(w, ids);
            }
            Frame::Graft { room, ids } => {
                w.u8(T_GRAFT);
                w.str8(room);
                write_ids(w, ids);
            }
            Frame::Prune { room } => {
                w.u8(T_PRUNE);
                w.str8(room);
            }
            Frame::Topo(rec) => {
                w.u8(T_TOPO);
                w.put(rec);
            }
            Frame::ReconDone { room } => {
                w.u8(T_RECON_DONE);
                w.str8(room);
            }
        }
    }
}

/// Reads one frame body. The size limit is checked by [`Frame::decode`], which sees the whole
/// body; the payload's own counts are checked here before anything is allocated.
impl Decode for Frame {
    type Error = ProtoError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(match r.u8()? {
            T_HELLO => Frame::Hello {
                version: r.u8()?,
                node: r.get::<NodeId>()?,
                name: r.str8()?,
                rooms: read_rooms(r)?,
                listen_port: r.u16()?,
            },
            T_ROOMS => Frame::Rooms {
                rooms: read_rooms(r)?,
            },
            T_MSG => Frame::Msg {
                hops: r.u8()?,
                message: r.get::<Message>()?,
            },
            T_RECON => {
                let room = r.str8()?;
                let msg = ReconMsg::decode(r.bytes16()?)
                    .map_err(|_| ProtoError::Malformed("bad reconciliation message"))?;
                Frame::Recon { room, msg }
            }
            T_IHAVE => Frame::IHave {
                room: r.str8()?,
                ids: read_ids(r)?,
            },
            T_GRAFT => Frame::Graft {
                room: r.str8()?,
                ids: read_ids(r)?,
            },
            T_PRUNE => Frame::Prune { room: r.str8()? },
            T_TOPO => Frame::Topo(r.get::<TopoRecord>()?),
            T_RECON_DONE => Frame::ReconDone { room: r.str8()? },
            t => return Err(ProtoError::UnknownFrame(t)),
        })
    }
}

impl Frame {
    /// Encodes the frame body (type byte + payload), without the length prefix.
    pub fn encode(&self) -> Vec<u8> {
        coding::to_vec(self, 128)
    }

    /// Encodes with the 4-byte big-endian length prefix used on the stream.
    pub fn encode_prefixed(&self) -> Vec<u8> {
        let body = self.encode();
        let mut out = Vec::with_capacity(body.len() + 4);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a frame body. Oversized bodies, unknown types, malformed payloads and trailing
    /// bytes are errors.
    pub fn decode(buf: &[u8]) -> Result<Frame, ProtoError> {
        if buf.len() > MAX_FRAME_BYTES {
            return Err(ProtoError::FrameTooLarge(buf.len()));
        }
        coding::from_slice(buf)
    }

    /// Short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "hello",
            Frame::Rooms { .. } => "rooms",
            Frame::Msg { .. } => "msg",
            Frame::Recon { .. } => "recon",
            Frame::IHave { .. } => "ihave",
            Frame::Graft { .. } => "graft",
            Frame::Prune { .. } => "prune",
            Frame::Topo(_) => "topo",
            Frame::ReconDone { .. } => "recon-done",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn sample() -> Vec<Frame> {
        let k = SigningKey::from_bytes(&[3u8; 32]);
        let m = Message::create(&k, "medical", "Ana", 5, "hello").unwrap();
        vec![
            Frame::Hello {
                version: 1,
                node: m.author,
                name: "Ana".into(),
                rooms: vec!["medical".into(), "logistics".into()],
                listen_port: 7300,
            },
            Frame::Rooms { rooms: vec![] },
            Frame::Msg {
                hops: 7,
                message: m.clone(),
            },
            Frame::Recon {
                room: "medical".into(),
                msg: crate::recon::start(&[(5, m.id())]),
            },
            Frame::IHave {
                room: "medical".into(),
                ids: vec![m.id()],
            },
            Frame::Graft {
                room: "medical".into(),
                ids: vec![],
            },
            Frame::Prune {
                room: "medical".into(),
            },
            Frame::Topo(crate::topo::TopoRecord::create(
                &k,
                9,
                "Ana",
                vec![crate::topo::Neighbour {
                    id: m.author,
                    addr: None,
                    rtt_ms: None,
                }],
            )),
        ]
    }

    #[test]
    fn roundtrip() {
        for f in sample() {
            let enc = f.encode();
            assert_eq!(Frame::decode(&enc).unwrap(), f);
            let p = f.encode_prefixed();
            assert_eq!(
                u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize,
                enc.len()
            );
        }
    }

    #[test]
    fn every_truncation_and_bitflip_is_an_error_not_a_panic() {
        for f in sample() {
            let enc = f.encode();
            for n in 0..enc.len() {
                assert!(
                    Frame::decode(&enc[..n]).is_err(),
                    "{} truncated at {n}",
                    f.kind()
                );
            }
            for i in 0..enc.len() {
                let mut e = enc.clone();
                e[i] ^= 0xff;
                let _ = Frame::decode(&e); // must not panic
            }
            let mut extra = enc.clone();
            extra.push(0);
            assert!(Frame::decode(&extra).is_err());
        }
        assert!(matches!(
            Frame::decode(&[99]),
            Err(ProtoError::UnknownFrame(99))
        ));
        assert!(Frame::decode(&vec![0u8; MAX_FRAME_BYTES + 1]).is_err());
    }
}
