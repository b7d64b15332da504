//! Direct messages: text for one node, end-to-end encrypted, carried by any node.
//!
//! A [`DmEnvelope`] is sealed by the sender ([`seal`]) and opened by the recipient or, later, by
//! the sender itself ([`open`]). Carriers see only the recipient id; they cannot read the text.
//! The envelope rides inside an ordinary signed [`Message`](crate::Message) from the sender, and
//! that signature is what authenticates the sender: [`open`] must be given the *verified*
//! author and timestamp of that message. Byte layout and construction: `docs/protocol.md`
//! ("Direct messages").
//!
//! # Construction and why
//!
//! - **No second key pair.** A node is known only by its Ed25519 key, so the X25519 keys are
//!   derived from it: the public key is the Montgomery form of the Ed25519 point (the birational
//!   map, libsodium's `crypto_sign_ed25519_pk_to_curve25519`), the secret scalar is the first
//!   half of SHA-512(seed), clamped by X25519 on use (`crypto_sign_ed25519_sk_to_curve25519`).
//!   Thormarker (ePrint 2021/509) shows this joint use of one key for Ed25519 signatures and an
//!   X25519 ECIES-style KEM is secure. Recipient ids that are not a valid prime-order Ed25519
//!   point are refused rather than encrypted to.
//! - **Ephemeral-static ECDH (ECIES).** Each envelope has a fresh ephemeral X25519 key `e`
//!   (32 random bytes from the caller: this crate has no RNG). The sender needs no interaction
//!   and compromise of one envelope's randomness exposes only that envelope.
//! - **One content key, two wrapped copies.** The text is encrypted once under a content key
//!   `CK`; `CK` is wrapped for the recipient *and* for the sender (ECDH of `e` with the sender's
//!   own X25519 key), so a relief worker can read their sent DMs again after a restart from the
//!   copy stored in the network. Costs 48 bytes, not a second copy of the text.
//! - **XChaCha20-Poly1305** for all three AEAD operations. `CK` and the two wrapping keys are
//!   single-use, so nonce reuse needs reuse of `e`; the random 24-byte nonce from the caller is
//!   defence in depth against that. One primitive keeps interoperation simple (libsodium's
//!   `crypto_aead_xchacha20poly1305_ietf_*`).
//! - **HKDF-SHA256** turns each ECDH output into a wrapping key, salted with the ephemeral and
//!   the slot's public key, and the role byte in `info` separates the recipient and sender slots
//!   (even for a note to oneself). `CK` is HKDF of `e` itself, so one random input suffices.
//! - **Associated data** binds magic, version, sender id, recipient id, timestamp, ephemeral
//!   key and nonce: an envelope lifted into a message from another author, re-addressed or
//!   re-dated does not open. The text's associated data also covers both wrapped keys, so a
//!   change to *any* byte of the envelope makes it fail for both readers.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::coding::{self, CodingError, Decode, Encode, Reader, Writer};
use crate::message::NodeId;

/// Domain-separation prefix of an encoded envelope and of its associated data.
pub const DM_MAGIC: &[u8; 4] = b"DNDM";
/// Envelope format version.
pub const DM_VERSION: u8 = 1;
/// Largest plaintext in bytes (UTF-8).
pub const MAX_DM_PLAINTEXT_BYTES: usize = 8 * 1024;
/// Length of the XChaCha20-Poly1305 nonce.
pub const DM_NONCE_BYTES: usize = 24;
/// Length of a Poly1305 tag.
pub const DM_TAG_BYTES: usize = 16;
/// Length of a wrapped content key: 32-byte key + tag.
pub const DM_WRAPPED_KEY_BYTES: usize = 32 + DM_TAG_BYTES;
/// Encoded size of an envelope beyond its plaintext: 4 + 1 + 32 + 32 + 24 + 48 + 48 + 2 + 16.
pub const DM_OVERHEAD_BYTES: usize =
    4 + 1 + 32 + 32 + DM_NONCE_BYTES + 2 * DM_WRAPPED_KEY_BYTES + 2 + DM_TAG_BYTES;
/// Largest encoded envelope (8 399 bytes).
pub const MAX_DM_ENVELOPE_BYTES: usize = DM_OVERHEAD_BYTES + MAX_DM_PLAINTEXT_BYTES;

const WRAP_AAD_BYTES: usize = 4 + 1 + 32 + 32 + 8 + 32 + DM_NONCE_BYTES;
const INFO_CONTENT_KEY: &[u8] = b"DisasterNet DM v1 content key";
const INFO_WRAP: &[u8] = b"DisasterNet DM v1 wrap";

/// Which wrapped copy of the content key a party opens.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Recipient = 1,
    Sender = 2,
}

/// Everything that can go wrong sealing or opening a direct message.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DmError {
    /// The recipient id is not a usable Ed25519 public key (not a point, or not of prime order).
    #[error("recipient id is not a valid node key")]
    BadRecipient,
    /// The sender id is not a valid Ed25519 public key.
    #[error("sender id is not a valid node key")]
    BadSender,
    /// Plaintext over the limit.
    #[error("direct message is {len} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Actual length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Plaintext empty or only whitespace.
    #[error("direct message is empty")]
    Empty,
    /// Envelope bytes truncated, trailing or structurally wrong.
    #[error("malformed direct message: {0}")]
    Malformed(&'static str),
    /// Envelope version this build does not know.
    #[error("unsupported direct message version {0}")]
    UnsupportedVersion(u8),
    /// The key is neither the recipient's nor the sender's.
    #[error("direct message is not addressed to this node")]
    NotForMe,
    /// Authentication failed: wrong key, wrong sender or timestamp, or tampered bytes.
    #[error("direct message does not decrypt (tampered, or wrong sender/timestamp)")]
    Decrypt,
}

impl From<CodingError> for DmError {
    fn from(e: CodingError) -> Self {
        DmError::Malformed(e.as_str())
    }
}

/// An encrypted direct message as carried by the network (layout: [`DmEnvelope::encode`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DmEnvelope {
    /// The node the message is for (its Ed25519 public key).
    pub recipient: NodeId,
    /// Ephemeral X25519 public key of this envelope.
    pub ephemeral: [u8; 32],
    /// XChaCha20-Poly1305 nonce shared by the three AEAD operations.
    pub nonce: [u8; DM_NONCE_BYTES],
    /// Content key wrapped for the recipient.
    pub wrapped_recipient: [u8; DM_WRAPPED_KEY_BYTES],
    /// Content key wrapped for the sender.
    pub wrapped_sender: [u8; DM_WRAPPED_KEY_BYTES],
    /// Encrypted UTF-8 text followed by its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// `"DNDM" | version u8 (1) | recipient 32 | ephemeral 32 | nonce 24 | wrapped_recipient 48 |
/// wrapped_sender 48 | ciphertext_len u16 BE | ciphertext`.
impl Encode for DmEnvelope {
    fn encode(&self, w: &mut Writer) {
        w.bytes(DM_MAGIC);
        w.u8(DM_VERSION);
        w.put(&self.recipient);
        w.bytes(&self.ephemeral);
        w.bytes(&self.nonce);
        w.bytes(&self.wrapped_recipient);
        w.bytes(&self.wrapped_sender);
        w.bytes16(&self.ciphertext);
    }
}

/// Reads one envelope, checking its structure and the ciphertext length; the overall size
/// limit is checked by [`DmEnvelope::decode`], which sees the whole buffer.
impl Decode for DmEnvelope {
    type Error = DmError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, DmError> {
        if r.bytes(DM_MAGIC.len())? != DM_MAGIC {
            return Err(DmError::Malformed("bad direct message magic"));
        }
        let version = r.u8()?;
        if version != DM_VERSION {
            return Err(DmError::UnsupportedVersion(version));
        }
        let recipient = r.get::<NodeId>()?;
        let ephemeral = r.array()?;
        let nonce = r.array()?;
        let wrapped_recipient = r.array()?;
        let wrapped_sender = r.array()?;
        let n = usize::from(r.u16()?);
        if !(DM_TAG_BYTES..=MAX_DM_PLAINTEXT_BYTES + DM_TAG_BYTES).contains(&n) {
            return Err(DmError::Malformed("bad ciphertext length"));
        }
        let ciphertext = r.bytes(n)?.to_vec();
        Ok(DmEnvelope {
            recipient,
            ephemeral,
            nonce,
            wrapped_recipient,
            wrapped_sender,
            ciphertext,
        })
    }
}

impl DmEnvelope {
    /// Binary form (layout: the [`Encode`] impl; `docs/protocol.md` "Direct messages").
    pub fn encode(&self) -> Vec<u8> {
        coding::to_vec(self, DM_OVERHEAD_BYTES + self.ciphertext.len())
    }

    /// Parses [`DmEnvelope::encode`] output. Checks structure and size only; never panics.
    pub fn decode(buf: &[u8]) -> Result<Self, DmError> {
        if buf.len() > MAX_DM_ENVELOPE_BYTES {
            return Err(DmError::Malformed("envelope too large"));
        }
        coding::from_slice(buf)
    }
}

/// The X25519 public key of a node: Montgomery form of its Ed25519 key. Refuses bytes that are
/// not a point, or a point with a small-order component (no honest key is one).
fn x25519_public(id: &NodeId) -> Option<[u8; 32]> {
    let vk = VerifyingKey::from_bytes(&id.0).ok()?;
    if vk.is_weak() || !vk.to_edwards().is_torsion_free() {
        return None;
    }
    Some(vk.to_montgomery().to_bytes())
}

/// Associated data of the two key wraps (133 bytes):
/// `"DNDM" | 1 | sender 32 | recipient 32 | timestamp u64 BE | ephemeral 32 | nonce 24`.
fn wrap_aad(sender: &NodeId, env: &DmEnvelope, timestamp: u64) -> Vec<u8> {
    let mut w = Writer::with_capacity(WRAP_AAD_BYTES + 2 * DM_WRAPPED_KEY_BYTES);
    w.bytes(DM_MAGIC);
    w.u8(DM_VERSION);
    w.put(sender);
    w.put(&env.recipient);
    w.u64(timestamp);
    w.bytes(&env.ephemeral);
    w.bytes(&env.nonce);
    w.into_vec()
}

/// Associated data of the text (229 bytes): the wrap AAD followed by both wrapped keys, so the
/// text's tag authenticates every byte of the envelope for both readers.
fn body_aad(mut wrap_aad: Vec<u8>, env: &DmEnvelope) -> Vec<u8> {
    wrap_aad.extend_from_slice(&env.wrapped_recipient);
    wrap_aad.extend_from_slice(&env.wrapped_sender);
    wrap_aad
}

fn hkdf32(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>, DmError> {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand_multi_info(info, okm.as_mut())
        .map_err(|_| DmError::Malformed("key derivation"))?;
    Ok(okm)
}

/// Key wrapping the content key for one slot: HKDF-SHA256(salt = ephemeral ‖ slot public key,
/// ikm = X25519 shared secret, info = "DisasterNet DM v1 wrap" ‖ role byte).
fn wrapping_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    slot_public: &[u8; 32],
    role: Role,
) -> Result<Zeroizing<[u8; 32]>, DmError> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(slot_public);
    hkdf32(&salt, shared, &[INFO_WRAP, &[role as u8]])
}

fn aead_seal(key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, DmError> {
    XChaCha20Poly1305::new(key.into())
        .encrypt(XNonce::from_slice(nonce), Payload { msg, aad })
        .map_err(|_| DmError::Malformed("encryption failed"))
}

fn aead_open(key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, DmError> {
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg, aad })
        .map_err(|_| DmError::Decrypt)
}

/// Encrypts `plaintext` from `sender` to `recipient`.
///
/// `timestamp` must be the timestamp of the signed message that will carry the envelope.
/// `ephemeral_secret` and `nonce` must be fresh random bytes from a CSPRNG for every envelope;
/// reusing them breaks confidentiality. Fails on an empty or oversized plaintext and on a
/// recipient id that is not a valid node key.
pub fn seal(
    sender: &SigningKey,
    recipient: &NodeId,
    plaintext: &str,
    timestamp: u64,
    ephemeral_secret: [u8; 32],
    nonce: [u8; DM_NONCE_BYTES],
) -> Result<DmEnvelope, DmError> {
    let ephemeral_secret = Zeroizing::new(ephemeral_secret);
    if plaintext.len() > MAX_DM_PLAINTEXT_BYTES {
        return Err(DmError::TooLarge {
            len: plaintext.len(),
            max: MAX_DM_PLAINTEXT_BYTES,
        });
    }
    if plaintext.trim().is_empty() {
        return Err(DmError::Empty);
    }
    let recipient_x = x25519_public(recipient).ok_or(DmError::BadRecipient)?;
    let sender_vk = sender.verifying_key();
    let sender_id = NodeId(sender_vk.to_bytes());
    let sender_x = sender_vk.to_montgomery().to_bytes();

    let e = StaticSecret::from(*ephemeral_secret);
    let ephemeral = PublicKey::from(&e).to_bytes();
    let content_key = hkdf32(&[], ephemeral_secret.as_ref(), &[INFO_CONTENT_KEY])?;

    let mut env = DmEnvelope {
        recipient: *recipient,
        ephemeral,
        nonce,
        wrapped_recipient: [0; DM_WRAPPED_KEY_BYTES],
        wrapped_sender: [0; DM_WRAPPED_KEY_BYTES],
        ciphertext: Vec::new(),
    };
    let aad = wrap_aad(&sender_id, &env, timestamp);
    for (slot_x, role) in [(recipient_x, Role::Recipient), (sender_x, Role::Sender)] {
        let shared = e.diffie_hellman(&PublicKey::from(slot_x));
        if !shared.was_contributory() {
            return Err(DmError::BadRecipient);
        }
        let kek = wrapping_key(shared.as_bytes(), &ephemeral, &slot_x, role)?;
        let wrapped: [u8; DM_WRAPPED_KEY_BYTES] = aead_seal(&kek, &nonce, &aad, &*content_key)?
            .try_into()
            .map_err(|_| DmError::Malformed("wrapped key length"))?;
        match role {
            Role::Recipient => env.wrapped_recipient = wrapped,
            Role::Sender => env.wrapped_sender = wrapped,
        }
    }
    let aad = body_aad(aad, &env);
    env.ciphertext = aead_seal(&content_key, &nonce, &aad, plaintext.as_bytes())?;
    Ok(env)
}

/// Decrypts an envelope with `me`, which must be the recipient's key or the sender's own key.
///
/// `sender` and `timestamp` must be the author and timestamp of the carrying message *after*
/// [`Message::verify`](crate::Message::verify) succeeded: the envelope alone does not prove who
/// sent it, the message signature does, and the associated data ties the two together.
pub fn open(
    me: &SigningKey,
    sender: &NodeId,
    env: &DmEnvelope,
    timestamp: u64,
) -> Result<String, DmError> {
    let my_id = NodeId(me.verifying_key().to_bytes());
    let role = if my_id == env.recipient {
        Role::Recipient
    } else if my_id == *sender {
        Role::Sender
    } else {
        return Err(DmError::NotForMe);
    };
    open_as(me, role, sender, env, timestamp)
}

fn open_as(
    me: &SigningKey,
    role: Role,
    sender: &NodeId,
    env: &DmEnvelope,
    timestamp: u64,
) -> Result<String, DmError> {
    VerifyingKey::from_bytes(&sender.0).map_err(|_| DmError::BadSender)?;
    let my_x = me.verifying_key().to_montgomery().to_bytes();
    let secret = StaticSecret::from(*Zeroizing::new(me.to_scalar_bytes()));
    let shared = secret.diffie_hellman(&PublicKey::from(env.ephemeral));
    if !shared.was_contributory() {
        return Err(DmError::Decrypt);
    }
    let kek = wrapping_key(shared.as_bytes(), &env.ephemeral, &my_x, role)?;
    let aad = wrap_aad(sender, env, timestamp);
    let wrapped = match role {
        Role::Recipient => &env.wrapped_recipient,
        Role::Sender => &env.wrapped_sender,
    };
    let content_key = Zeroizing::new(aead_open(&kek, &env.nonce, &aad, wrapped)?);
    let content_key: [u8; 32] = content_key
        .as_slice()
        .try_into()
        .map_err(|_| DmError::Decrypt)?;
    let content_key = Zeroizing::new(content_key);
    let aad = body_aad(aad, env);
    let plain = aead_open(&content_key, &env.nonce, &aad, &env.ciphertext)?;
    String::from_utf8(plain).map_err(|_| DmError::Malformed("plaintext is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u64 = 1_700_000_000_000;
    /// y = 2 does not decompress to an Ed25519 point.
    const NOT_A_POINT: [u8; 32] = {
        let mut b = [0u8; 32];
        b[0] = 2;
        b
    };

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }
    fn id(k: &SigningKey) -> NodeId {
        NodeId(k.verifying_key().to_bytes())
    }
    fn sample(text: &str) -> (SigningKey, SigningKey, DmEnvelope) {
        let (a, b) = (key(1), key(2));
        let env = seal(&a, &id(&b), text, TS, [3; 32], [4; 24]).unwrap();
        (a, b, env)
    }

    #[test]
    fn dm_recipient_roundtrip() {
        let (a, b, env) = sample("need insulin at the school, room 4");
        let back = DmEnvelope::decode(&env.encode()).unwrap();
        assert_eq!(back, env);
        assert_eq!(
            open(&b, &id(&a), &back, TS).unwrap(),
            "need insulin at the school, room 4"
        );
        assert_eq!(env.encode().len(), DM_OVERHEAD_BYTES + 34);
    }

    #[test]
    fn dm_sender_reads_own_copy_and_note_to_self_works() {
        let (a, _b, env) = sample("on my way");
        assert_eq!(open(&a, &id(&a), &env, TS).unwrap(), "on my way");
        let self_note = seal(&a, &id(&a), "remember", TS, [5; 32], [6; 24]).unwrap();
        assert_eq!(open(&a, &id(&a), &self_note, TS).unwrap(), "remember");
        assert_eq!(
            open_as(&a, Role::Sender, &id(&a), &self_note, TS).unwrap(),
            "remember"
        );
    }

    #[test]
    fn dm_carrier_cannot_open() {
        let (a, b, env) = sample("secret");
        let carrier = key(9);
        assert_eq!(open(&carrier, &id(&a), &env, TS), Err(DmError::NotForMe));
        for role in [Role::Recipient, Role::Sender] {
            assert_eq!(
                open_as(&carrier, role, &id(&a), &env, TS),
                Err(DmError::Decrypt)
            );
        }
        // Re-addressing the envelope to itself does not help the carrier.
        let mut stolen = env.clone();
        stolen.recipient = id(&carrier);
        assert_eq!(open(&carrier, &id(&a), &stolen, TS), Err(DmError::Decrypt));
        // The recipient cannot read the sender's slot and vice versa.
        assert_eq!(
            open_as(&b, Role::Sender, &id(&a), &env, TS),
            Err(DmError::Decrypt)
        );
        assert_eq!(
            open_as(&a, Role::Recipient, &id(&a), &env, TS),
            Err(DmError::Decrypt)
        );
    }

    #[test]
    fn dm_associated_data_is_bound() {
        let (a, b, env) = sample("hello");
        let other = key(7);
        // Wrong sender (e.g. envelope lifted into another author's message), wrong timestamp.
        assert_eq!(open(&b, &id(&other), &env, TS), Err(DmError::Decrypt));
        assert_eq!(open(&b, &id(&a), &env, TS + 1), Err(DmError::Decrypt));
        assert_eq!(open(&a, &id(&a), &env, TS - 1), Err(DmError::Decrypt));
        assert_eq!(
            open(&b, &NodeId(NOT_A_POINT), &env, TS),
            Err(DmError::BadSender)
        );
    }

    #[test]
    fn dm_every_bit_flip_fails() {
        let (a, b, env) = sample("hi");
        let enc = env.encode();
        for i in 0..enc.len() {
            for bit in 0..8 {
                let mut e = enc.clone();
                e[i] ^= 1 << bit;
                if let Ok(d) = DmEnvelope::decode(&e) {
                    assert!(open(&b, &id(&a), &d, TS).is_err(), "recipient, byte {i}");
                    assert!(open(&a, &id(&a), &d, TS).is_err(), "sender, byte {i}");
                }
            }
        }
    }

    #[test]
    fn dm_invalid_recipient_is_refused() {
        let a = key(1);
        assert!(VerifyingKey::from_bytes(&NOT_A_POINT).is_err());
        let identity = {
            let mut b = [0u8; 32];
            b[0] = 1; // neutral element: valid encoding, small order
            b
        };
        // A real key plus a torsion point (order 2: y = -1): valid point, not prime order.
        let mixed = (key(2).verifying_key().to_edwards()
            + VerifyingKey::from_bytes(&{
                let mut b = [0xffu8; 32];
                b[0] = 0xec;
                b[31] = 0x7f;
                b
            })
            .unwrap()
            .to_edwards())
        .compress()
        .to_bytes();
        for bad in [NOT_A_POINT, identity, mixed] {
            assert_eq!(
                seal(&a, &NodeId(bad), "x", TS, [3; 32], [4; 24]),
                Err(DmError::BadRecipient)
            );
        }
    }

    #[test]
    fn dm_limits() {
        let (a, b) = (key(1), key(2));
        let max = "é".repeat(MAX_DM_PLAINTEXT_BYTES / 2);
        let env = seal(&a, &id(&b), &max, TS, [3; 32], [4; 24]).unwrap();
        let enc = env.encode();
        assert_eq!(enc.len(), MAX_DM_ENVELOPE_BYTES);
        assert_eq!(MAX_DM_ENVELOPE_BYTES, 8399);
        assert_eq!(
            open(&b, &id(&a), &DmEnvelope::decode(&enc).unwrap(), TS).unwrap(),
            max
        );
        let over = "x".repeat(MAX_DM_PLAINTEXT_BYTES + 1);
        assert!(matches!(
            seal(&a, &id(&b), &over, TS, [3; 32], [4; 24]),
            Err(DmError::TooLarge { .. })
        ));
        assert_eq!(
            seal(&a, &id(&b), " \n", TS, [3; 32], [4; 24]),
            Err(DmError::Empty)
        );
    }

    #[test]
    fn dm_decode_rejects_truncated_and_garbage() {
        let (_, _, env) = sample("hello there");
        let enc = env.encode();
        for n in 0..enc.len() {
            assert!(DmEnvelope::decode(&enc[..n]).is_err(), "truncated at {n}");
        }
        let mut extra = enc.clone();
        extra.push(0);
        assert!(DmEnvelope::decode(&extra).is_err());
        let mut v2 = enc.clone();
        v2[4] = 2;
        assert_eq!(DmEnvelope::decode(&v2), Err(DmError::UnsupportedVersion(2)));
        // Ciphertext length field over the limit, and shorter than a tag.
        for len in [
            (MAX_DM_PLAINTEXT_BYTES + DM_TAG_BYTES + 1) as u16,
            15,
            u16::MAX,
        ] {
            let mut e = enc[..DM_OVERHEAD_BYTES - DM_TAG_BYTES - 2].to_vec();
            e.extend_from_slice(&len.to_be_bytes());
            e.resize(e.len() + usize::from(len), 0);
            assert!(DmEnvelope::decode(&e).is_err());
        }
        assert!(DmEnvelope::decode(&vec![0u8; MAX_DM_ENVELOPE_BYTES + 1]).is_err());
        // Pseudo-random garbage (xorshift) with a valid header: errors, never panics.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let len = (s % 400) as usize;
            let mut g: Vec<u8> = (0..len)
                .map(|i| (s.rotate_left(i as u32 % 64) >> 3) as u8)
                .collect();
            if len >= 5 && s.is_multiple_of(2) {
                g[..5].copy_from_slice(b"DNDM\x01");
            }
            let _ = DmEnvelope::decode(&g);
        }
    }

    /// Fixed inputs → fixed bytes. Cross-checked against an independent implementation
    /// (libsodium via PyNaCl + Python's hmac HKDF); see docs/protocol.md "Direct messages".
    #[test]
    fn dm_known_answer() {
        let (a, b, env) = sample("hi");
        assert_eq!(
            hex::encode(id(&b).0),
            "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
        );
        assert_eq!(
            hex::encode(x25519_public(&id(&b)).unwrap()),
            KAT_RECIPIENT_X25519
        );
        assert_eq!(
            hex::encode(env.ephemeral),
            "5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22"
        );
        assert_eq!(
            hex::encode(*hkdf32(&[], &[3; 32], &[INFO_CONTENT_KEY]).unwrap()),
            "9efeb4ec3d82eaae77b3b390310b6185cc5faa24a7fe4811a1f59bf2258137e2"
        );
        assert_eq!(hex::encode(env.encode()), KAT_ENVELOPE);
        assert_eq!(open(&b, &id(&a), &env, TS).unwrap(), "hi");
    }

    const KAT_RECIPIENT_X25519: &str =
        "60346e7c911a5f6ba154129174cafe75b294ac3bbd5549632f48cec6266f8410";
    const KAT_ENVELOPE: &str = concat!(
        "444e444d018139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3945dfedd",
        "3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef220404040404040404040404",
        "04040404040404040404040404a02e5ff0d0a3ebc5c684fe865a8bb9fe11bfed7e605fc7bd19c4a2",
        "ad7ba93e92846d71a8072d94da4f2440c7ccb10b9970581623b36d5442794f0d440922e56e4abd53",
        "bc7ca2756c094c3b12b745c861dab788b2400180fac41f9d04a929670c00122485d1e2964920c44f",
        "f9b10060303cc88bcc",
    );
}

/// The reserved room that carries direct messages. Every node serves it (carries it), so
/// envelopes travel like any room traffic; only sender and recipient can open them.
pub const DM_ROOM: &str = "dm";
/// Prefix of a message body that carries an envelope (`dm1:` + standard base64).
pub const DM_BODY_PREFIX: &str = "dm1:";
/// Largest direct-message text: its envelope in base64 must fit a message body (8 KiB).
pub const MAX_DM_TEXT_BYTES: usize = 5_900;

/// The message body that carries `env`.
pub fn to_body(env: &DmEnvelope) -> String {
    use base64::Engine as _;
    format!(
        "{DM_BODY_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(env.encode())
    )
}

/// The envelope carried by a message body of the [`DM_ROOM`], with or without the
/// [`URGENT_MARKER`](crate::message::URGENT_MARKER) in front.
pub fn from_body(body: &str) -> Result<DmEnvelope, DmError> {
    use base64::Engine as _;
    let b64 = crate::message::strip_urgent(body)
        .strip_prefix(DM_BODY_PREFIX)
        .ok_or(DmError::Malformed("not a DM body"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| DmError::Malformed("DM body is not base64"))?;
    DmEnvelope::decode(&bytes)
}

#[cfg(test)]
mod body_tests {
    use super::*;

    #[test]
    fn largest_text_fits_a_message_body() {
        let a = SigningKey::from_bytes(&[1; 32]);
        let b = SigningKey::from_bytes(&[2; 32]);
        let to = NodeId(b.verifying_key().to_bytes());
        let text = "x".repeat(MAX_DM_TEXT_BYTES);
        let env = seal(&a, &to, &text, 7, [3; 32], [4; 24]).unwrap();
        let body = to_body(&env);
        assert!(
            body.len() <= crate::message::MAX_BODY_BYTES,
            "{}",
            body.len()
        );
        let m = crate::Message::create(&a, DM_ROOM, "A", 7, &body).unwrap();
        let back = from_body(&m.body).unwrap();
        assert_eq!(open(&b, &m.author, &back, 7).unwrap(), text);
        assert!(from_body("hello").is_err());
        assert!(from_body("dm1:!!!").is_err());
    }
}

/// Checks a message body of the [`DM_ROOM`] before a node stores or relays it: the body must
/// decode as an envelope (so within [`MAX_DM_ENVELOPE_BYTES`]) addressed to a valid node key
/// (prime-order Ed25519 point, not the neutral element) other than `author`. A note to oneself
/// never needs to travel, so a carrier refuses it. Carriers cannot check more: the contents are
/// only readable by the two ends.
pub fn check_carried(body: &str, author: &NodeId) -> Result<DmEnvelope, DmError> {
    let env = from_body(body)?;
    if env.recipient == *author {
        return Err(DmError::Malformed("direct message addressed to its author"));
    }
    if x25519_public(&env.recipient).is_none() {
        return Err(DmError::BadRecipient);
    }
    Ok(env)
}
