//! The wire codec: big-endian primitives and the frames two nodes exchange on a QUIC stream.
//! Layout in `docs/protocol.md` §3. Decoding never panics on hostile input.

use crate::message::{Message, MessageId, NodeId};
use crate::ProtoError;

/// Largest frame body (type byte + payload) accepted on the wire.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Most ids in one `IHave` or `Graft` frame.
pub const MAX_IDS_PER_FRAME: usize = 1024;
/// Most rooms listed in a `Hello` or `Rooms` frame.
pub const MAX_ROOMS: usize = 256;

/// Appends big-endian primitives to a buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }
    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// u16, big-endian.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// u32, big-endian.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// u64, big-endian.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// String with a one-byte length (callers guarantee ≤ 255 bytes).
    pub fn str8(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(255)];
        self.u8(b.len() as u8);
        self.bytes(b);
    }
    /// String with a two-byte length (callers guarantee ≤ 65535 bytes).
    pub fn str16(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(65535)];
        self.u16(b.len() as u16);
        self.bytes(b);
    }
    /// The bytes written.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads big-endian primitives from a slice; every read is bounds-checked.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if self.buf.len() < n {
            return Err(ProtoError::Malformed("truncated"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.bytes(1)?[0])
    }
    /// u16, big-endian.
    pub fn u16(&mut self) -> Result<u16, ProtoError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// u64, big-endian.
    pub fn u64(&mut self) -> Result<u64, ProtoError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_be_bytes(a))
    }
    /// 32 raw bytes.
    pub fn array32(&mut self) -> Result<[u8; 32], ProtoError> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.bytes(32)?);
        Ok(a)
    }
    /// 64 raw bytes.
    pub fn array64(&mut self) -> Result<[u8; 64], ProtoError> {
        let mut a = [0u8; 64];
        a.copy_from_slice(self.bytes(64)?);
        Ok(a)
    }
    /// UTF-8 string with a one-byte length.
    pub fn str8(&mut self) -> Result<String, ProtoError> {
        let n = self.u8()? as usize;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Malformed("invalid UTF-8"))
    }
    /// UTF-8 string with a two-byte length.
    pub fn str16(&mut self) -> Result<String, ProtoError> {
        let n = self.u16()? as usize;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Malformed("invalid UTF-8"))
    }
    /// Fails if bytes are left over.
    pub fn finish(&self) -> Result<(), ProtoError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::Malformed("trailing bytes"))
        }
    }
}

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
        msg: crate::recon::ReconMsg,
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
    Topo(crate::topo::TopoRecord),
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
    let n = r.u16()? as usize;
    if n > MAX_ROOMS {
        return Err(ProtoError::Malformed("too many rooms"));
    }
    (0..n).map(|_| r.str8()).collect()
}

fn write_ids(w: &mut Writer, ids: &[MessageId]) {
    let n = ids.len().min(MAX_IDS_PER_FRAME);
    w.u16(n as u16);
    for id in &ids[..n] {
        w.bytes(&id.0);
    }
}

fn read_ids(r: &mut Reader<'_>) -> Result<Vec<MessageId>, ProtoError> {
    let n = r.u16()? as usize;
    if n > MAX_IDS_PER_FRAME {
        return Err(ProtoError::Malformed("too many ids"));
    }
    (0..n).map(|_| r.array32().map(MessageId)).collect()
}

impl Frame {
    /// Encodes the frame body (type byte + payload), without the length prefix.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(128);
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
                w.bytes(&node.0);
                w.str8(name);
                write_rooms(&mut w, rooms);
                w.u16(*listen_port);
            }
            Frame::Rooms { rooms } => {
                w.u8(T_ROOMS);
                write_rooms(&mut w, rooms);
            }
            Frame::Msg { hops, message } => {
                w.u8(T_MSG);
                w.u8(*hops);
                message.encode(&mut w);
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
                write_ids(&mut w, ids);
            }
            Frame::Graft { room, ids } => {
                w.u8(T_GRAFT);
                w.str8(room);
                write_ids(&mut w, ids);
            }
            Frame::Prune { room } => {
                w.u8(T_PRUNE);
                w.str8(room);
            }
            Frame::Topo(rec) => {
                w.u8(T_TOPO);
                rec.encode(&mut w);
            }
            Frame::ReconDone { room } => {
                w.u8(T_RECON_DONE);
                w.str8(room);
            }
        }
        w.into_vec()
    }

    /// Encodes with the 4-byte big-endian length prefix used on the stream.
    pub fn encode_prefixed(&self) -> Vec<u8> {
        let body = self.encode();
        let mut out = Vec::with_capacity(body.len() + 4);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a frame body. Unknown types and malformed payloads are errors.
    pub fn decode(buf: &[u8]) -> Result<Frame, ProtoError> {
        if buf.len() > MAX_FRAME_BYTES {
            return Err(ProtoError::FrameTooLarge(buf.len()));
        }
        let mut r = Reader::new(buf);
        let f = match r.u8()? {
            T_HELLO => Frame::Hello {
                version: r.u8()?,
                node: NodeId(r.array32()?),
                name: r.str8()?,
                rooms: read_rooms(&mut r)?,
                listen_port: r.u16()?,
            },
            T_ROOMS => Frame::Rooms {
                rooms: read_rooms(&mut r)?,
            },
            T_MSG => Frame::Msg {
                hops: r.u8()?,
                message: Message::decode(&mut r)?,
            },
            T_RECON => {
                let room = r.str8()?;
                let n = r.u16()? as usize;
                let msg = crate::recon::ReconMsg::decode(r.bytes(n)?)
                    .map_err(|_| ProtoError::Malformed("bad reconciliation message"))?;
                Frame::Recon { room, msg }
            }
            T_IHAVE => Frame::IHave {
                room: r.str8()?,
                ids: read_ids(&mut r)?,
            },
            T_GRAFT => Frame::Graft {
                room: r.str8()?,
                ids: read_ids(&mut r)?,
            },
            T_PRUNE => Frame::Prune { room: r.str8()? },
            T_TOPO => Frame::Topo(crate::topo::TopoRecord::decode(&mut r)?),
            T_RECON_DONE => Frame::ReconDone { room: r.str8()? },
            t => return Err(ProtoError::UnknownFrame(t)),
        };
        r.finish()?;
        Ok(f)
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
