//! Private rooms: a room whose name and messages only holders of its key can read, carried by
//! any node like an open room.
//!
//! A private room is known on the wire by an opaque [`RoomId`], derived from the room's first
//! key, and its wire room name is `"p."` + 32 lowercase hex ([`RoomId::room_name`]). Every
//! message in it is an ordinary signed [`Message`](crate::Message) whose outer author name is
//! [`HIDDEN_AUTHOR_NAME`] and whose body is `"pr1:"` + base64 of an [`Envelope`]: the room
//! name, the author's display name and the content ([`Plain`]), encrypted with
//! XChaCha20-Poly1305 under a key derived from the current **epoch key**. Carriers check the
//! signature and the envelope's structure ([`check_carried`]), deduplicate, reconcile and relay
//! it without being able to read it; they see the author id, the timestamp, the size and the
//! room id. Byte layouts and a worked vector: `docs/protocol.md` ("Private rooms").
//!
//! - **Keys.** The room's first key (32 random bytes from the caller: this crate has no RNG)
//!   names the room for ever: `RoomId = HKDF-SHA256(ikm = first key, no salt, info = "DisasterNet
//!   private room v1 id")[..16]`. Each epoch has its own 32-byte key; the message key is
//!   `HKDF-SHA256(ikm = epoch key, salt = room id, info = "DisasterNet private room v1
//!   message")`, so a key is bound to one room.
//! - **Associated data** binds magic, version, room id, author, timestamp, epoch and nonce: an
//!   envelope lifted into another room, another author's message or another time does not open,
//!   and nor does one relabelled with another epoch.
//! - **Invites** ([`Invite`]) carry the capability to read and write at one epoch: a text code
//!   with a checksum that catches typos ([`Invite::to_code`]), also the payload of the key grant
//!   sent over an end-to-end direct message when a member is removed ([`grant_text`]).
//! - **Membership** ([`Membership`]) is a pure function of the room's control messages (join,
//!   remove, promote) in `(timestamp, id)` order: who is a member or admin, and which messages
//!   of a removed member not to show ([`Membership::shows`]).

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::coding::{self, CodingError, Decode, Encode, Reader, Writer};
use crate::message::MAX_ROOM_BYTES;
use crate::message::{normalize_name, normalize_room, NodeId, MAX_BODY_BYTES, MAX_NAME_BYTES};

mod invite;
mod members;

pub use invite::{
    grant_from_text, grant_text, Invite, InviteError, INVITE_CODE_PREFIX, INVITE_VERSION,
    MAX_INVITE_CODE_CHARS,
};
pub use members::{Event, Membership};

/// Prefix of the wire room name of a private room: `"p."` + 32 lowercase hex of its [`RoomId`].
pub const PRIVATE_ROOM_PREFIX: &str = "p.";
/// Prefix of the body of every private-room message: `"pr1:"` + standard base64 (padded) of an
/// [`Envelope`].
pub const PRIVATE_BODY_PREFIX: &str = "pr1:";
/// The outer (public) author name of every private-room message; the real one is inside.
pub const HIDDEN_AUTHOR_NAME: &str = "-";
/// Text of a direct message that carries a key grant: this prefix + [`Invite::to_code`].
pub const GRANT_DM_PREFIX: &str = "dnroomkey:";

/// Domain-separation prefix of an encoded envelope and of its associated data.
pub const PRIVATE_MAGIC: &[u8; 4] = b"DNPR";
/// Envelope format version.
pub const PRIVATE_VERSION: u8 = 1;
/// Length of the XChaCha20-Poly1305 nonce.
pub const PRIVATE_NONCE_BYTES: usize = 24;
/// Length of a Poly1305 tag.
pub const PRIVATE_TAG_BYTES: usize = 16;
/// Envelope bytes before the ciphertext: magic 4, version 1, epoch 4, nonce 24, length 2.
pub const PRIVATE_HEADER_BYTES: usize = 4 + 1 + 4 + PRIVATE_NONCE_BYTES + 2;
/// Largest encoded envelope (6,141 bytes): the most whose base64 after [`PRIVATE_BODY_PREFIX`]
/// fits a message body of [`MAX_BODY_BYTES`].
pub const MAX_PRIVATE_ENVELOPE_BYTES: usize = (MAX_BODY_BYTES - PRIVATE_BODY_PREFIX.len()) / 4 * 3;
/// Largest plaintext (6,090 bytes): the largest envelope less header and tag.
pub const MAX_PRIVATE_PLAINTEXT_BYTES: usize =
    MAX_PRIVATE_ENVELOPE_BYTES - PRIVATE_HEADER_BYTES - PRIVATE_TAG_BYTES;
/// Smallest valid plaintext (5 bytes): a Join with one-byte room and author names.
pub const MIN_PRIVATE_PLAINTEXT_BYTES: usize = 1 + 2 + 2;
/// Largest text of a [`Content::Text`] (5,957 bytes): the plaintext with the longest room name
/// (64 bytes) and author name (64 bytes) still fits [`MAX_PRIVATE_PLAINTEXT_BYTES`].
pub const MAX_PRIVATE_TEXT_BYTES: usize =
    MAX_PRIVATE_PLAINTEXT_BYTES - (1 + 1 + MAX_ROOM_BYTES + 1 + MAX_NAME_BYTES + 2);

const INFO_ROOM_ID: &[u8] = b"DisasterNet private room v1 id";
const INFO_MESSAGE_KEY: &[u8] = b"DisasterNet private room v1 message";
const AAD_BYTES: usize = 4 + 1 + 16 + 32 + 8 + 4 + PRIVATE_NONCE_BYTES;

const KIND_TEXT: u8 = 1;
const KIND_JOIN: u8 = 2;
const KIND_REMOVE: u8 = 3;
const KIND_PROMOTE: u8 = 4;

/// Everything that can go wrong sealing, opening or carrying a private-room message.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PrivateError {
    /// Envelope or plaintext bytes truncated, trailing or structurally wrong.
    #[error("malformed private room message: {0}")]
    Malformed(&'static str),
    /// Envelope version this build does not know.
    #[error("unsupported private room message version {0}")]
    UnsupportedVersion(u8),
    /// Text over the limit.
    #[error("message is {len} bytes; the limit in a private room is {max} bytes")]
    TooLarge {
        /// Actual length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Text empty or only whitespace.
    #[error("message is empty")]
    Empty,
    /// The display name inside breaks the rules (`message::normalize_name`).
    #[error("invalid display name: use 1-64 bytes of text without control characters")]
    BadName,
    /// The room name inside breaks the rules (`message::normalize_room`).
    #[error("invalid room name: use 1-64 characters a-z, 0-9, '-', '_' or '.'")]
    BadRoomName,
    /// Authentication failed: wrong key or epoch, another room, author or timestamp, or
    /// tampered bytes.
    #[error("private room message does not decrypt (wrong key, or tampered)")]
    Decrypt,
    /// The room is not a private room name (`"p."` + 32 lowercase hex).
    #[error("not a private room")]
    NotPrivateRoom,
    /// The plaintext has a content kind this build does not know.
    #[error("unknown private room message kind {0}")]
    UnknownKind(u8),
    /// A private-room message whose outer author name is not [`HIDDEN_AUTHOR_NAME`]: it would
    /// show the author's name to every carrier.
    #[error("private room message shows its author's name")]
    NameNotHidden,
}

impl From<CodingError> for PrivateError {
    fn from(e: CodingError) -> Self {
        PrivateError::Malformed(e.as_str())
    }
}

/// The opaque id of a private room: carriers and listeners know the room only by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RoomId(pub [u8; 16]);

impl RoomId {
    /// The id of the room whose first key is `first_key`:
    /// HKDF-SHA256(ikm = key, no salt, info = "DisasterNet private room v1 id"), first 16 bytes.
    pub fn from_key(first_key: &[u8; 32]) -> RoomId {
        let mut id = [0u8; 16];
        // 16 bytes is far below HKDF-SHA256's 8,160-byte limit: expand cannot fail.
        let _ = Hkdf::<Sha256>::new(None, first_key).expand(INFO_ROOM_ID, &mut id);
        RoomId(id)
    }

    /// The wire room name: `"p."` + 32 lowercase hex.
    pub fn room_name(&self) -> String {
        format!("{PRIVATE_ROOM_PREFIX}{}", hex::encode(self.0))
    }

    /// Parses a wire room name: exactly `"p."` + 32 lowercase hex characters.
    pub fn parse(room: &str) -> Option<RoomId> {
        let h = room.strip_prefix(PRIVATE_ROOM_PREFIX)?;
        if h.len() != 32 || !h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut id = [0u8; 16];
        hex::decode_to_slice(h, &mut id).ok()?;
        Some(RoomId(id))
    }
}

/// True for the wire name of a private room ([`RoomId::parse`] accepts it).
pub fn is_private_room(room: &str) -> bool {
    RoomId::parse(room).is_some()
}

/// What a private-room message says, once decrypted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Content {
    /// A chat message (kind 1).
    Text(String),
    /// The author joined the room (kind 2).
    Join,
    /// An admin removed `member`; the remaining members get the key of `new_epoch` (kind 3).
    Remove {
        /// The member removed.
        member: NodeId,
        /// The epoch whose key the remaining members receive.
        new_epoch: u32,
    },
    /// An admin made `member` an admin (kind 4).
    Promote {
        /// The member promoted.
        member: NodeId,
    },
}

/// The decrypted part of a private-room message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Plain {
    /// The room's human name (room-name rules, `message::normalize_room`).
    pub room_name: String,
    /// The author's display name (`message::normalize_name`).
    pub author_name: String,
    /// What the message says.
    pub content: Content,
}

/// An encrypted private-room message as carried in a body (layout: the [`Encode`] impl).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Envelope {
    /// Which epoch key encrypts it.
    pub epoch: u32,
    /// XChaCha20-Poly1305 nonce (random per message).
    pub nonce: [u8; PRIVATE_NONCE_BYTES],
    /// Encrypted [`Plain`] followed by its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// `"DNPR" | version u8 (1) | epoch u32 BE | nonce 24 | ciphertext_len u16 BE | ciphertext`.
impl Encode for Envelope {
    fn encode(&self, w: &mut Writer) {
        w.bytes(PRIVATE_MAGIC);
        w.u8(PRIVATE_VERSION);
        w.u32(self.epoch);
        w.bytes(&self.nonce);
        w.bytes16(&self.ciphertext);
    }
}

/// Reads one envelope, checking its structure and the ciphertext length (the tag plus a
/// plaintext of [`MIN_PRIVATE_PLAINTEXT_BYTES`] to [`MAX_PRIVATE_PLAINTEXT_BYTES`]).
impl Decode for Envelope {
    type Error = PrivateError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, PrivateError> {
        if r.bytes(PRIVATE_MAGIC.len())? != PRIVATE_MAGIC {
            return Err(PrivateError::Malformed("bad private room magic"));
        }
        let version = r.u8()?;
        if version != PRIVATE_VERSION {
            return Err(PrivateError::UnsupportedVersion(version));
        }
        let epoch = r.u32()?;
        let nonce = r.array()?;
        let n = usize::from(r.u16()?);
        let lo = MIN_PRIVATE_PLAINTEXT_BYTES + PRIVATE_TAG_BYTES;
        if !(lo..=MAX_PRIVATE_PLAINTEXT_BYTES + PRIVATE_TAG_BYTES).contains(&n) {
            return Err(PrivateError::Malformed("bad ciphertext length"));
        }
        let ciphertext = r.bytes(n)?.to_vec();
        Ok(Envelope {
            epoch,
            nonce,
            ciphertext,
        })
    }
}

impl Envelope {
    /// Binary form (layout: the [`Encode`] impl; `docs/protocol.md` "Private rooms").
    pub fn encode(&self) -> Vec<u8> {
        coding::to_vec(self, PRIVATE_HEADER_BYTES + self.ciphertext.len())
    }

    /// Parses [`Envelope::encode`] output. Checks structure and size only; never panics.
    pub fn decode(buf: &[u8]) -> Result<Self, PrivateError> {
        if buf.len() > MAX_PRIVATE_ENVELOPE_BYTES {
            return Err(PrivateError::Malformed("envelope too large"));
        }
        coding::from_slice(buf)
    }
}

/// The message body that carries `env`: `"pr1:"` + standard base64 (padded).
pub fn to_body(env: &Envelope) -> String {
    format!(
        "{PRIVATE_BODY_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(env.encode())
    )
}

/// The envelope of a private-room message body (structure only: the node picks the key by
/// `env.epoch`, then calls [`open`]). The body must be exactly `"pr1:"` + canonical padded
/// base64, nothing around it but an optional
/// [`URGENT_MARKER`](crate::message::URGENT_MARKER) in front.
pub fn from_body(body: &str) -> Result<Envelope, PrivateError> {
    let b64 = crate::message::strip_urgent(body)
        .strip_prefix(PRIVATE_BODY_PREFIX)
        .ok_or(PrivateError::Malformed("not a private room body"))?;
    if b64.len() > MAX_PRIVATE_ENVELOPE_BYTES.div_ceil(3) * 4 {
        return Err(PrivateError::Malformed("envelope too large"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| PrivateError::Malformed("body is not base64"))?;
    Envelope::decode(&bytes)
}

/// What a carrier (which has no key) checks before storing or relaying a message of a private
/// room: the room is a private room name, the outer author name is [`HIDDEN_AUTHOR_NAME`] (so
/// a buggy client cannot leak a name) and the body decodes as an envelope. The signature is
/// checked as for any message ([`Message::verify`](crate::Message::verify)).
pub fn check_carried(msg: &crate::Message) -> Result<(), PrivateError> {
    if !is_private_room(&msg.room) {
        return Err(PrivateError::NotPrivateRoom);
    }
    if msg.author_name != HIDDEN_AUTHOR_NAME {
        return Err(PrivateError::NameNotHidden);
    }
    from_body(&msg.body).map(|_| ())
}

/// The message key of `room` at one epoch: HKDF-SHA256(salt = room id, ikm = epoch key,
/// info = "DisasterNet private room v1 message").
fn message_key(room: &RoomId, key: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, PrivateError> {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(&room.0), key)
        .expand(INFO_MESSAGE_KEY, okm.as_mut())
        .map_err(|_| PrivateError::Malformed("key derivation"))?;
    Ok(okm)
}

/// Associated data (89 bytes): `"DNPR" | 1 | room id 16 | author 32 | timestamp u64 BE |
/// epoch u32 BE | nonce 24`.
fn aad(room: &RoomId, author: &NodeId, timestamp: u64, epoch: u32, nonce: &[u8; 24]) -> Vec<u8> {
    let mut w = Writer::with_capacity(AAD_BYTES);
    w.bytes(PRIVATE_MAGIC);
    w.u8(PRIVATE_VERSION);
    w.bytes(&room.0);
    w.put(author);
    w.u64(timestamp);
    w.u32(epoch);
    w.bytes(nonce);
    w.into_vec()
}

fn check_text(text: &str) -> Result<(), PrivateError> {
    if text.len() > MAX_PRIVATE_TEXT_BYTES {
        return Err(PrivateError::TooLarge {
            len: text.len(),
            max: MAX_PRIVATE_TEXT_BYTES,
        });
    }
    if text.trim().is_empty() {
        return Err(PrivateError::Empty);
    }
    Ok(())
}

/// The plaintext of an envelope:
/// `kind u8 | room_name str8 | author_name str8 | content` (content: Text = str16, Join =
/// nothing, Remove = member 32 | new_epoch u32 BE, Promote = member 32).
pub(crate) fn encode_plain(
    room_name: &str,
    author_name: &str,
    content: &Content,
) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::with_capacity(MIN_PRIVATE_PLAINTEXT_BYTES + 192);
    let kind = match content {
        Content::Text(_) => KIND_TEXT,
        Content::Join => KIND_JOIN,
        Content::Remove { .. } => KIND_REMOVE,
        Content::Promote { .. } => KIND_PROMOTE,
    };
    w.u8(kind);
    w.str8(room_name);
    w.str8(author_name);
    match content {
        Content::Text(t) => w.str16(t),
        Content::Join => {}
        Content::Remove { member, new_epoch } => {
            w.put(member);
            w.u32(*new_epoch);
        }
        Content::Promote { member } => w.put(member),
    }
    Zeroizing::new(w.into_vec())
}

/// Reads and validates a plaintext written by [`encode_plain`] (names in normal form, text
/// rules, nothing trailing).
pub(crate) fn decode_plain(buf: &[u8]) -> Result<Plain, PrivateError> {
    let mut r = Reader::new(buf);
    let kind = r.u8()?;
    let room_name = r.str8()?;
    let author_name = r.str8()?;
    let content = match kind {
        KIND_TEXT => Content::Text(r.str16()?),
        KIND_JOIN => Content::Join,
        KIND_REMOVE => Content::Remove {
            member: r.get()?,
            new_epoch: r.u32()?,
        },
        KIND_PROMOTE => Content::Promote { member: r.get()? },
        k => return Err(PrivateError::UnknownKind(k)),
    };
    r.finish()?;
    if normalize_room(&room_name).ok().as_ref() != Some(&room_name) {
        return Err(PrivateError::BadRoomName);
    }
    if normalize_name(&author_name).ok().as_ref() != Some(&author_name) {
        return Err(PrivateError::BadName);
    }
    if let Content::Text(t) = &content {
        check_text(t)?;
    }
    Ok(Plain {
        room_name,
        author_name,
        content,
    })
}

/// Encrypts `plain` under the key of `epoch` and returns the message body (`"pr1:"` + base64).
///
/// `author` and `timestamp` must be those of the signed message that will carry the body (its
/// outer author name is [`HIDDEN_AUTHOR_NAME`]). The room and author names are normalised
/// (`message::normalize_room`, `normalize_name`) and a text must be non-blank and at most
/// [`MAX_PRIVATE_TEXT_BYTES`]. `nonce` must be 24 fresh random bytes from a CSPRNG for every
/// message: every message of an epoch uses the same key.
pub fn seal(
    room: &RoomId,
    epoch: u32,
    key: &[u8; 32],
    author: &NodeId,
    timestamp: u64,
    plain: &Plain,
    nonce: [u8; 24],
) -> Result<String, PrivateError> {
    let room_name = normalize_room(&plain.room_name).map_err(|_| PrivateError::BadRoomName)?;
    let author_name = normalize_name(&plain.author_name).map_err(|_| PrivateError::BadName)?;
    if let Content::Text(t) = &plain.content {
        check_text(t)?;
    }
    let bytes = encode_plain(&room_name, &author_name, &plain.content);
    let mk = message_key(room, key)?;
    let aad = aad(room, author, timestamp, epoch, &nonce);
    let ciphertext = XChaCha20Poly1305::new(mk.as_ref().into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &bytes,
                aad: &aad,
            },
        )
        .map_err(|_| PrivateError::Malformed("encryption failed"))?;
    Ok(to_body(&Envelope {
        epoch,
        nonce,
        ciphertext,
    }))
}

/// Decrypts `env` with the key of its epoch and validates the plaintext (same rules as
/// [`seal`], names already normalised; trailing bytes or an unknown kind are errors).
///
/// `author` and `timestamp` must be those of the carrying message *after*
/// [`Message::verify`](crate::Message::verify) succeeded, and `room` the id its room name
/// parses to: the associated data ties the envelope to them.
pub fn open(
    room: &RoomId,
    key: &[u8; 32],
    author: &NodeId,
    timestamp: u64,
    env: &Envelope,
) -> Result<Plain, PrivateError> {
    let mk = message_key(room, key)?;
    let aad = aad(room, author, timestamp, env.epoch, &env.nonce);
    let bytes = XChaCha20Poly1305::new(mk.as_ref().into())
        .decrypt(
            XNonce::from_slice(&env.nonce),
            Payload {
                msg: &env.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| PrivateError::Decrypt)?;
    decode_plain(&Zeroizing::new(bytes))
}

#[cfg(test)]
mod tests;
