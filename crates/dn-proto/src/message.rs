//! The message model: immutable, signed by its author, identified by the SHA-256 of its signed
//! bytes. See `docs/protocol.md` §2 for the byte layout.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::coding::{CodingError, Decode, Encode, Reader, Writer};
use crate::ProtoError;

/// Protocol version carried by every message and hello.
pub const PROTOCOL_VERSION: u8 = 1;
/// Domain-separation prefix of the signed bytes.
pub const MESSAGE_MAGIC: &[u8; 5] = b"DNMSG";
/// Largest message body in bytes (UTF-8).
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// The start of the body of an urgent message (docs/protocol.md §2.5): U+1F6A8, a space,
/// `URGENT:` and a space. The flag is part of the signed body, so it cannot be added or
/// removed on the way, and older nodes store, relay and show it as ordinary text. In the `dm`
/// room and private rooms it goes before the envelope (`"🚨 URGENT: dm1:…"`), so carriers can
/// prioritise it without reading anything else. [`MAX_BODY_BYTES`] includes it.
pub const URGENT_MARKER: &str = "\u{1F6A8} URGENT: ";

/// Whether a message body marks its message urgent: it starts with [`URGENT_MARKER`]. The
/// marker defines it: a text typed with the marker at its start is urgent too.
pub fn is_urgent(body: &str) -> bool {
    body.starts_with(URGENT_MARKER)
}

/// The body without its [`URGENT_MARKER`] (unchanged when it has none): what users read, and
/// what carries a DM or private-room envelope.
pub fn strip_urgent(body: &str) -> &str {
    body.strip_prefix(URGENT_MARKER).unwrap_or(body)
}

/// `body` marked urgent ([`URGENT_MARKER`] in front), or unchanged when `urgent` is false or
/// it is marked already.
pub fn mark_urgent(body: &str, urgent: bool) -> String {
    if urgent && !is_urgent(body) {
        format!("{URGENT_MARKER}{body}")
    } else {
        body.to_string()
    }
}

/// Largest display name in bytes (UTF-8).
pub const MAX_NAME_BYTES: usize = 64;
/// Largest room name in bytes.
pub const MAX_ROOM_BYTES: usize = 64;

/// A node's identity: its Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 32]);

/// The fingerprint ([`NodeId::fingerprint`]) of a node id written in hex; text that is not at
/// least 16 characters long is returned unchanged (never a panic on odd input).
pub fn hex_fingerprint(hex_id: &str) -> String {
    match (
        hex_id.get(0..4),
        hex_id.get(4..8),
        hex_id.get(8..12),
        hex_id.get(12..16),
    ) {
        (Some(a), Some(b), Some(c), Some(d)) => format!("{a}-{b}-{c}-{d}"),
        _ => hex_id.to_string(),
    }
}

impl NodeId {
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<Self, ProtoError> {
        let v = hex::decode(s.trim()).map_err(|_| ProtoError::BadNodeId)?;
        let a: [u8; 32] = v.try_into().map_err(|_| ProtoError::BadNodeId)?;
        Ok(NodeId(a))
    }
    /// Short fingerprint for humans: the first 16 hex characters (64 bits) in groups of four,
    /// `abcd-ef01-2345-6789`. At 64 bits, making a key whose fingerprint matches a given one
    /// takes about 2^63 key generations (32 bits took ~29 core-hours).
    pub fn fingerprint(&self) -> String {
        hex_fingerprint(&self.to_hex())
    }
    /// The Ed25519 verifying key, if these bytes are a valid point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, ProtoError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| ProtoError::BadNodeId)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", &self.to_hex()[..10])
    }
}

/// A message id: SHA-256 of the signed bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, ProtoError> {
        let v = hex::decode(s.trim()).map_err(|_| ProtoError::BadMessageId)?;
        let a: [u8; 32] = v.try_into().map_err(|_| ProtoError::BadMessageId)?;
        Ok(MessageId(a))
    }
}
impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", &self.to_hex()[..10])
    }
}

/// Wire form: the 32 key bytes.
impl Encode for NodeId {
    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.0);
    }
}
impl Decode for NodeId {
    type Error = CodingError;
    /// Reads 32 bytes; whether they are a valid key is checked where it matters
    /// ([`NodeId::verifying_key`]).
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodingError> {
        r.array().map(NodeId)
    }
}

/// Wire form: the 32 hash bytes.
impl Encode for MessageId {
    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.0);
    }
}
impl Decode for MessageId {
    type Error = CodingError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodingError> {
        r.array().map(MessageId)
    }
}

/// Checks and normalises a room name: trimmed, lowercased, 1–64 bytes of `a-z 0-9 - _ .`.
pub fn normalize_room(name: &str) -> Result<String, ProtoError> {
    let n = name.trim().to_lowercase();
    let n = n.strip_prefix('#').unwrap_or(&n).to_string();
    if n.is_empty() || n.len() > MAX_ROOM_BYTES {
        return Err(ProtoError::BadRoom(name.to_string()));
    }
    if !n
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
    {
        return Err(ProtoError::BadRoom(name.to_string()));
    }
    Ok(n)
}

/// Checks a display name: 1–64 bytes of UTF-8 after trimming, no control characters.
pub fn normalize_name(name: &str) -> Result<String, ProtoError> {
    let n = name.trim();
    if n.is_empty() || n.len() > MAX_NAME_BYTES || n.chars().any(char::is_control) {
        return Err(ProtoError::BadName);
    }
    Ok(n.to_string())
}

fn check_body(body: &str) -> Result<(), ProtoError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ProtoError::BodyTooLarge {
            len: body.len(),
            max: MAX_BODY_BYTES,
        });
    }
    if body.trim().is_empty() {
        return Err(ProtoError::EmptyBody);
    }
    Ok(())
}

/// An immutable, signed chat message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    /// Protocol version (1).
    pub version: u8,
    /// Normalised room name.
    pub room: String,
    /// Author's node id.
    pub author: NodeId,
    /// Author's clock at creation, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Author's display name at creation.
    pub author_name: String,
    /// UTF-8 text, at most [`MAX_BODY_BYTES`].
    pub body: String,
    /// Ed25519 signature over [`Message::signed_bytes`].
    pub signature: [u8; 64],
}

impl Message {
    /// Creates and signs a message. Fails on a bad room, name or body.
    pub fn create(
        key: &SigningKey,
        room: &str,
        author_name: &str,
        timestamp: u64,
        body: &str,
    ) -> Result<Self, ProtoError> {
        let room = normalize_room(room)?;
        let author_name = normalize_name(author_name)?;
        check_body(body)?;
        let mut m = Message {
            version: PROTOCOL_VERSION,
            room,
            author: NodeId(key.verifying_key().to_bytes()),
            timestamp,
            author_name,
            body: body.to_string(),
            signature: [0; 64],
        };
        m.signature = key.sign(&m.signed_bytes()).to_bytes();
        Ok(m)
    }

    /// The exact bytes the author signs (docs/protocol.md §2):
    /// `"DNMSG" | version u8 | room (u8 len + bytes) | author 32 | timestamp u64 BE |
    ///  author_name (u8 len + bytes) | body (u16 BE len + bytes)`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w =
            Writer::with_capacity(64 + self.room.len() + self.author_name.len() + self.body.len());
        w.bytes(MESSAGE_MAGIC);
        w.u8(self.version);
        w.str8(&self.room);
        w.put(&self.author);
        w.u64(self.timestamp);
        w.str8(&self.author_name);
        w.str16(&self.body);
        w.into_vec()
    }

    /// Parses signed bytes plus a signature back into a message. Does not verify; call
    /// [`Message::verify`].
    pub fn from_signed_bytes(signed: &[u8], signature: [u8; 64]) -> Result<Self, ProtoError> {
        let mut r = Reader::new(signed);
        if r.bytes(5)? != MESSAGE_MAGIC {
            return Err(ProtoError::Malformed("bad message magic"));
        }
        let version = r.u8()?;
        if version != PROTOCOL_VERSION {
            return Err(ProtoError::UnsupportedVersion(version));
        }
        let room = r.str8()?;
        let author = r.get::<NodeId>()?;
        let timestamp = r.u64()?;
        let author_name = r.str8()?;
        let body = r.str16()?;
        r.finish()?;
        Ok(Message {
            version,
            room,
            author,
            timestamp,
            author_name,
            body,
            signature,
        })
    }

    /// The message id: SHA-256 of the signed bytes.
    pub fn id(&self) -> MessageId {
        MessageId(Sha256::digest(self.signed_bytes()).into())
    }

    /// Full validation: room and name rules, body size, signature by the author.
    pub fn verify(&self) -> Result<(), ProtoError> {
        if self.version != PROTOCOL_VERSION {
            return Err(ProtoError::UnsupportedVersion(self.version));
        }
        if normalize_room(&self.room)? != self.room {
            return Err(ProtoError::BadRoom(self.room.clone()));
        }
        if normalize_name(&self.author_name)? != self.author_name {
            return Err(ProtoError::BadName);
        }
        check_body(&self.body)?;
        let key = self.author.verifying_key()?;
        key.verify(
            &self.signed_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| ProtoError::BadSignature)
    }
}

/// Wire form: `signed_len u16 BE | signed bytes | signature 64`.
impl Encode for Message {
    fn encode(&self, w: &mut Writer) {
        let signed = self.signed_bytes();
        w.u16(signed.len() as u16);
        w.bytes(&signed);
        w.bytes(&self.signature);
    }
}

/// Reads the wire form written by [`Encode`]; does not verify (call [`Message::verify`]).
impl Decode for Message {
    type Error = ProtoError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        let signed = r.bytes16()?;
        let sig = r.array()?;
        Message::from_signed_bytes(signed, sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn key() -> SigningKey {
        SigningKey::generate(&mut OsRng)
    }

    #[test]
    fn sign_verify_roundtrip() {
        let k = key();
        let m = Message::create(&k, "Medical", "Ana", 1_700_000_000_000, "need insulin").unwrap();
        assert_eq!(m.room, "medical");
        m.verify().unwrap();
        let back = Message::from_signed_bytes(&m.signed_bytes(), m.signature).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.id(), m.id());
    }

    #[test]
    fn tampering_is_detected() {
        let k = key();
        let mut m = Message::create(&k, "medical", "Ana", 1, "hello").unwrap();
        m.body = "hellO".into();
        assert!(matches!(m.verify(), Err(ProtoError::BadSignature)));
        let mut m2 = Message::create(&k, "medical", "Ana", 1, "hello").unwrap();
        m2.author = NodeId(key().verifying_key().to_bytes());
        assert!(matches!(m2.verify(), Err(ProtoError::BadSignature)));
    }

    #[test]
    fn limits() {
        let k = key();
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert!(matches!(
            Message::create(&k, "r", "n", 1, &big),
            Err(ProtoError::BodyTooLarge { .. })
        ));
        assert!(Message::create(&k, "r", "n", 1, &"x".repeat(MAX_BODY_BYTES)).is_ok());
        assert!(Message::create(&k, "bad room!", "n", 1, "x").is_err());
        assert!(Message::create(&k, "r", "", 1, "x").is_err());
        assert!(Message::create(&k, "r", "n", 1, "   ").is_err());
    }

    #[test]
    fn known_vector_layout() {
        // Fixed key → fixed bytes; guards the documented layout against accidental change.
        let k = SigningKey::from_bytes(&[7u8; 32]);
        let m = Message::create(&k, "medical", "Ana", 1_700_000_000_000, "hi").unwrap();
        let s = m.signed_bytes();
        assert_eq!(&s[0..5], b"DNMSG");
        assert_eq!(s[5], 1);
        assert_eq!(s[6], 7);
        assert_eq!(&s[7..14], b"medical");
        assert_eq!(&s[14..46], &m.author.0);
        assert_eq!(&s[46..54], &1_700_000_000_000u64.to_be_bytes());
        assert_eq!(s[54], 3);
        assert_eq!(&s[55..58], b"Ana");
        assert_eq!(&s[58..60], &[0, 2]);
        assert_eq!(&s[60..], b"hi");
    }
}
