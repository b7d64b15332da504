//! Invites: the capability to read and write a private room at one epoch, as a text code a
//! person can pass on, and as the payload of a key grant sent in a direct message.

use std::fmt;

use sha2::{Digest, Sha256};

use super::{RoomId, GRANT_DM_PREFIX};
use crate::coding::{Reader, Writer};
use crate::message::{normalize_room, NodeId, MAX_ROOM_BYTES};

/// Start of every invite code (version 1).
pub const INVITE_CODE_PREFIX: &str = "DNI1-";
/// Invite payload version.
pub const INVITE_VERSION: u8 = 1;
/// Most significant characters (not counting spaces and dashes) [`Invite::from_code`] reads:
/// more than any valid code has (4 of prefix + 247 of data).
pub const MAX_INVITE_CODE_CHARS: usize = 4 + MAX_DATA_CHARS;

const CHECKSUM_DOMAIN: &[u8] = b"DisasterNet invite v1";
const CHECKSUM_BYTES: usize = 4;
/// `version 1 | room id 16 | epoch 4 | key 32 | creator 32 | name length 1`.
const FIXED_PAYLOAD_BYTES: usize = 1 + 16 + 4 + 32 + 32 + 1;
const MIN_INVITE_BYTES: usize = FIXED_PAYLOAD_BYTES + 1 + CHECKSUM_BYTES;
const MAX_INVITE_BYTES: usize = FIXED_PAYLOAD_BYTES + MAX_ROOM_BYTES + CHECKSUM_BYTES;
const MAX_DATA_CHARS: usize = (MAX_INVITE_BYTES * 8).div_ceil(5);
const GROUP: usize = 5;

/// Crockford's base32 alphabet: digits and capitals without I, L, O and U.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Why an invite code was refused, in words a relief worker can act on.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum InviteError {
    /// The text does not start with `DNI1-`.
    #[error("this is not a DisasterNet invite code (it should start with DNI1-)")]
    NotAnInvite,
    /// An invite of a later format (`DNI2-`, …).
    #[error(
        "this invite code is for a newer version of DisasterNet (invite version {0}); \
         update DisasterNet to use it"
    )]
    UnsupportedVersion(u8),
    /// A character that no code contains (1-based position in the text as given).
    #[error("character {position} ('{}') cannot appear in an invite code", .ch.escape_debug())]
    BadCharacter {
        /// Position in the text, counting from 1 (spaces and dashes included).
        position: usize,
        /// The character.
        ch: char,
    },
    /// Too short to be a whole code.
    #[error("the invite code is incomplete: part of it is missing (copy the whole code)")]
    Truncated,
    /// Longer than any code.
    #[error("the invite code is too long: it has extra characters (copy only the code)")]
    TooLong,
    /// The checksum does not match: a character is wrong, missing, extra or swapped.
    #[error(
        "the invite code has a typo: a character is wrong or missing \
         (check it against the original)"
    )]
    Checksum,
    /// The room name inside is not a valid room name.
    #[error("the room name inside the invite code is not valid")]
    BadName,
    /// The checksum matches but the contents are not a valid invite (a broken program made it).
    #[error("the invite code is damaged ({0})")]
    Malformed(&'static str),
}

/// An invite: the capability to read and write a private room at one epoch. Also the payload of
/// a key grant ([`grant_text`]). `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Invite {
    /// The room.
    pub room: RoomId,
    /// The epoch of `key`.
    pub epoch: u32,
    /// The epoch key.
    pub key: [u8; 32],
    /// The room's creator (its first admin, [`super::Membership::new`]).
    pub creator: NodeId,
    /// The room's human name (room-name rules, `message::normalize_room`).
    pub name: String,
}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invite")
            .field("room", &self.room)
            .field("epoch", &self.epoch)
            .field("key", &"<secret>")
            .field("creator", &self.creator)
            .field("name", &self.name)
            .finish()
    }
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let d = Sha256::new()
        .chain_update(CHECKSUM_DOMAIN)
        .chain_update(payload)
        .finalize();
    let mut c = [0u8; CHECKSUM_BYTES];
    c.copy_from_slice(&d[..CHECKSUM_BYTES]);
    c
}

/// Crockford base32, most significant bit first, the last character padded with zero bits.
fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity((data.len() * 8).div_ceil(5));
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(CROCKFORD[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(CROCKFORD[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The value of a base32 character, read tolerantly: either case, `O` as 0, `I` and `L` as 1.
fn base32_value(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        c => c,
    };
    CROCKFORD
        .iter()
        .position(|&a| char::from(a) == c)
        .map(|v| v as u8)
}

/// Decodes 5-bit values; `None` unless they are exactly the encoding of whole bytes (fewer
/// than 5 padding bits, all zero).
fn base32_decode(values: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(values.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &v in values {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (bits < 5 && acc == 0).then_some(out)
}

impl Invite {
    /// The binary payload: `version u8 (1) | room id 16 | epoch u32 BE | key 32 | creator 32 |
    /// name str8`.
    fn payload(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(FIXED_PAYLOAD_BYTES + self.name.len());
        w.u8(INVITE_VERSION);
        w.bytes(&self.room.0);
        w.u32(self.epoch);
        w.bytes(&self.key);
        w.put(&self.creator);
        w.str8(&self.name);
        w.into_vec()
    }

    /// The text code: `"DNI1-"` + Crockford base32 (upper case) of payload ‖ checksum, in
    /// groups of 5 joined by `-`. The checksum is the first 4 bytes of
    /// SHA-256("DisasterNet invite v1" ‖ payload). A name that breaks the room-name rules gives
    /// a code that [`Invite::from_code`] refuses.
    pub fn to_code(&self) -> String {
        let mut bytes = self.payload();
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        let data = base32_encode(&bytes);
        let groups: Vec<&str> = data
            .as_bytes()
            .chunks(GROUP)
            .filter_map(|g| std::str::from_utf8(g).ok())
            .collect();
        format!("{INVITE_CODE_PREFIX}{}", groups.join("-"))
    }

    /// Reads a code written by [`Invite::to_code`], tolerantly: any case, spaces, line breaks
    /// and dashes anywhere, `O` read as 0 and `I`/`L` as 1. A wrong, missing, extra or swapped
    /// character is refused ([`InviteError::Checksum`]); never panics.
    pub fn from_code(code: &str) -> Result<Invite, InviteError> {
        let mut sig: Vec<(usize, char)> = Vec::new();
        for (i, c) in code.chars().enumerate() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            if sig.len() == MAX_INVITE_CODE_CHARS {
                return Err(InviteError::TooLong);
            }
            sig.push((i + 1, c));
        }
        let upper = |k: usize| sig.get(k).map(|(_, c)| c.to_ascii_uppercase());
        if (upper(0), upper(1), upper(2)) != (Some('D'), Some('N'), Some('I')) {
            return Err(InviteError::NotAnInvite);
        }
        match upper(3) {
            Some('1' | 'I' | 'L') => {}
            Some(d @ '0'..='9') => return Err(InviteError::UnsupportedVersion(d as u8 - b'0')),
            Some(_) => return Err(InviteError::NotAnInvite),
            None => return Err(InviteError::Truncated),
        }
        let mut values = Vec::with_capacity(sig.len());
        for &(position, ch) in &sig[4..] {
            values.push(base32_value(ch).ok_or(InviteError::BadCharacter { position, ch })?);
        }
        if values.len() * 5 / 8 < MIN_INVITE_BYTES {
            return Err(InviteError::Truncated);
        }
        let bytes = base32_decode(&values).ok_or(InviteError::Checksum)?;
        if bytes.len() > MAX_INVITE_BYTES {
            return Err(InviteError::TooLong);
        }
        let (payload, sum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
        if checksum(payload) != sum {
            return Err(InviteError::Checksum);
        }
        Self::from_payload(payload)
    }

    fn from_payload(payload: &[u8]) -> Result<Invite, InviteError> {
        let bad = |e: crate::coding::CodingError| InviteError::Malformed(e.as_str());
        let mut r = Reader::new(payload);
        let version = r.u8().map_err(bad)?;
        if version != INVITE_VERSION {
            return Err(InviteError::UnsupportedVersion(version));
        }
        let room = RoomId(r.array().map_err(bad)?);
        let epoch = r.u32().map_err(bad)?;
        let key = r.array().map_err(bad)?;
        let creator = NodeId(r.array().map_err(bad)?);
        let name = r.str8().map_err(bad)?;
        r.finish().map_err(bad)?;
        if normalize_room(&name).ok().as_ref() != Some(&name) {
            return Err(InviteError::BadName);
        }
        Ok(Invite {
            room,
            epoch,
            key,
            creator,
            name,
        })
    }
}

/// The text of a direct message that grants `inv` (a new epoch key after a removal, or an
/// invite sent to one person): [`GRANT_DM_PREFIX`] + [`Invite::to_code`].
pub fn grant_text(inv: &Invite) -> String {
    format!("{GRANT_DM_PREFIX}{}", inv.to_code())
}

/// The invite in the text of a direct message: `None` if the text is not a grant (does not
/// start with [`GRANT_DM_PREFIX`]), else the parsed code or why it was refused.
pub fn grant_from_text(text: &str) -> Option<Result<Invite, InviteError>> {
    text.strip_prefix(GRANT_DM_PREFIX).map(Invite::from_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invite {
        Invite {
            room: RoomId::from_key(&[0x42; 32]),
            epoch: 2,
            key: [7; 32],
            creator: NodeId([0x8a; 32]),
            name: "medical".into(),
        }
    }

    #[test]
    fn base32_roundtrip_and_padding() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let s = base32_encode(&data);
            assert_eq!(s.len(), (n * 8).div_ceil(5));
            let v: Vec<u8> = s.chars().map(|c| base32_value(c).unwrap()).collect();
            assert_eq!(base32_decode(&v), Some(data));
        }
        assert_eq!(base32_encode(&[0xff, 0x00]), "ZW00");
        assert_eq!(base32_encode(b"f"), "CR");
        // Non-zero padding bits, or a length that is no whole number of bytes: refused.
        assert_eq!(base32_decode(&[12, 24]), Some(b"f".to_vec()));
        assert_eq!(base32_decode(&[12, 25]), None);
        assert_eq!(base32_decode(&[12, 24, 0]), None);
        for (c, v) in [('o', 0), ('O', 0), ('i', 1), ('L', 1), ('l', 1), ('z', 31)] {
            assert_eq!(base32_value(c), Some(v));
        }
        for c in ['U', 'u', '*', 'é', ' '] {
            assert_eq!(base32_value(c), None);
        }
    }

    #[test]
    fn code_roundtrip_and_tolerance() {
        let inv = sample();
        let code = inv.to_code();
        assert!(code.starts_with("DNI1-"), "{code}");
        assert!(code[5..].split('-').all(|g| (1..=5).contains(&g.len())));
        assert!(code[5..].split('-').rev().skip(1).all(|g| g.len() == 5));
        assert_eq!(Invite::from_code(&code), Ok(inv.clone()));
        // Lower case, line breaks, spaces, no dashes, O for 0 and l for 1.
        let sloppy: String = code
            .to_lowercase()
            .replace('-', " ")
            .replace('0', "o")
            .replace('1', "l");
        let sloppy = format!("  {}\n{}\r\n", &sloppy[..40], &sloppy[40..]);
        assert_eq!(Invite::from_code(&sloppy), Ok(inv.clone()));
        assert_eq!(Invite::from_code(&code.replace('-', "")), Ok(inv.clone()));
        let dbg = format!("{inv:?}");
        assert!(
            dbg.contains("<secret>") && !dbg.contains("7, 7, 7"),
            "{dbg}"
        );
    }

    #[test]
    fn every_single_substitution_swap_deletion_and_insertion_is_refused() {
        let code = sample().to_code();
        let chars: Vec<char> = code.chars().collect();
        let data: Vec<usize> = (5..chars.len()).filter(|&i| chars[i] != '-').collect();
        let mut refused = 0;
        for &i in &data {
            for &a in CROCKFORD {
                let a = char::from(a);
                if a == chars[i] {
                    continue;
                }
                let mut c = chars.clone();
                c[i] = a;
                let s: String = c.iter().collect();
                assert!(Invite::from_code(&s).is_err(), "substitution at {i}: {s}");
                refused += 1;
            }
        }
        assert_eq!(refused, data.len() * 31);
        for w in data.windows(2) {
            let (i, j) = (w[0], w[1]);
            if chars[i] == chars[j] {
                continue;
            }
            let mut c = chars.clone();
            c.swap(i, j);
            let s: String = c.iter().collect();
            assert!(Invite::from_code(&s).is_err(), "swap at {i}: {s}");
        }
        for &i in &data {
            let mut c = chars.clone();
            c.remove(i);
            let s: String = c.iter().collect();
            let e = Invite::from_code(&s);
            assert!(
                matches!(e, Err(InviteError::Checksum | InviteError::Truncated)),
                "deletion at {i}: {e:?}"
            );
            for &a in CROCKFORD {
                let mut c = chars.clone();
                c.insert(i, char::from(a));
                let s: String = c.iter().collect();
                assert!(Invite::from_code(&s).is_err(), "insertion at {i}");
            }
        }
    }

    #[test]
    fn clear_errors() {
        let code = sample().to_code();
        assert_eq!(Invite::from_code("hello"), Err(InviteError::NotAnInvite));
        assert_eq!(Invite::from_code(""), Err(InviteError::NotAnInvite));
        assert_eq!(Invite::from_code("DNI"), Err(InviteError::Truncated));
        assert_eq!(Invite::from_code("DNIX-ABC"), Err(InviteError::NotAnInvite));
        assert_eq!(
            Invite::from_code(&code.replacen("DNI1", "DNI2", 1)),
            Err(InviteError::UnsupportedVersion(2))
        );
        assert_eq!(Invite::from_code(&code[..40]), Err(InviteError::Truncated));
        let mut with_u = code.clone();
        with_u.replace_range(7..8, "U");
        assert_eq!(
            Invite::from_code(&with_u),
            Err(InviteError::BadCharacter {
                position: 8,
                ch: 'U'
            })
        );
        assert_eq!(
            InviteError::BadCharacter {
                position: 8,
                ch: 'U'
            }
            .to_string(),
            "character 8 ('U') cannot appear in an invite code"
        );
        assert!(InviteError::Checksum.to_string().contains("typo"));
        let long = format!("{code}{}", "0".repeat(MAX_INVITE_CODE_CHARS));
        assert_eq!(Invite::from_code(&long), Err(InviteError::TooLong));
        // A valid checksum over a bad name or a bad structure.
        let mut bad = sample();
        bad.name = "Bad Name".into();
        assert_eq!(Invite::from_code(&bad.to_code()), Err(InviteError::BadName));
        let mut payload = sample().payload();
        payload.push(0);
        let sum = checksum(&payload);
        payload.extend_from_slice(&sum);
        let code = format!("DNI1-{}", base32_encode(&payload));
        assert_eq!(
            Invite::from_code(&code),
            Err(InviteError::Malformed("trailing bytes"))
        );
        let mut payload = sample().payload();
        payload[0] = 2;
        let sum = checksum(&payload);
        payload.extend_from_slice(&sum);
        let code = format!("DNI1-{}", base32_encode(&payload));
        assert_eq!(
            Invite::from_code(&code),
            Err(InviteError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn longest_name_fits_and_garbage_never_panics() {
        let mut inv = sample();
        inv.name = "a".repeat(MAX_ROOM_BYTES);
        let code = inv.to_code();
        assert_eq!(Invite::from_code(&code), Ok(inv));
        assert_eq!(
            code.chars().filter(|c| *c != '-').count(),
            MAX_INVITE_CODE_CHARS
        );
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let len = (s % 300) as usize;
            let g: String = (0..len)
                .map(|i| char::from(CROCKFORD[((s >> (i % 59)) & 31) as usize]))
                .collect();
            assert!(Invite::from_code(&format!("DNI1-{g}")).is_err());
        }
    }

    #[test]
    fn grant_roundtrip() {
        let inv = sample();
        let text = grant_text(&inv);
        assert!(text.starts_with("dnroomkey:DNI1-"));
        assert_eq!(grant_from_text(&text), Some(Ok(inv)));
        assert_eq!(grant_from_text("see you at the school"), None);
        assert_eq!(
            grant_from_text("dnroomkey:DNI1-0000"),
            Some(Err(InviteError::Truncated))
        );
    }
}
