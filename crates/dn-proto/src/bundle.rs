//! Bundles: signed messages carried between camps on a file (a USB stick), with no I/O here.
//! Layout in `docs/protocol.md` §9.
//!
//! A bundle is a header, then one record per message (the message's signed bytes and
//! signature of §2, so each record verifies alone), then a trailer with the record count and
//! the SHA-256 of every byte before the hash. The [`Encoder`] produces the bytes piece by
//! piece (a writer never holds the whole bundle); the [`Decoder`] takes the file in chunks of
//! any size and yields [`Step`]s, so a reader can show progress, import every record whose
//! signature verifies, and still report a truncated or tampered file ([`Step::End`],
//! [`Decoder::finish`]). The decoder never allocates from a length read in the file: it
//! buffers only what it was given, and a record length over [`MAX_RECORD_BYTES`] ends the
//! decoding as corrupt ([`BundleError::RecordTooLarge`]).
//!
//! This is not the human export (JSON Lines, CSV, HTML of `docs/protocol.md` §6): those stay
//! for reading and auditing.

use sha2::{Digest, Sha256};

use crate::message::{Message, NodeId};

/// First bytes of every bundle.
pub const BUNDLE_MAGIC: &[u8; 8] = b"DNBUNDLE";
/// Bundle format version.
pub const BUNDLE_VERSION: u8 = 1;
/// Bytes of the header: magic 8, version 1, flags 1, created 8, creator 32, count hint 4.
pub const HEADER_BYTES: usize = 54;
/// Largest signed-bytes length of one record. A valid message is far smaller (about 8.4 KB);
/// a longer length is treated as corruption, never as an amount to allocate.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Bytes of the trailer after its zero marker: count u64 and SHA-256.
const TRAILER_BODY: usize = 8 + 32;
/// Bytes of a record besides its signed bytes: length u32 and signature 64.
const RECORD_OVERHEAD: usize = 4 + 64;

/// Why a bundle cannot be read (on). Everything decoded before it stays valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The first bytes are not [`BUNDLE_MAGIC`].
    #[error("not a DisasterNet bundle")]
    NotABundle,
    /// A bundle version this node does not read.
    #[error("bundle version {0} is not supported (this node reads version 1)")]
    UnsupportedVersion(u8),
    /// A record length over [`MAX_RECORD_BYTES`]: the file is damaged from here on.
    #[error("record of {0} bytes is over the limit: the bundle is damaged from here on")]
    RecordTooLarge(u32),
    /// Bytes after the trailer.
    #[error("data after the end of the bundle")]
    TrailingData,
}

/// The bundle header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format flags; 0 in version 1 (readers ignore them).
    pub flags: u8,
    /// When the bundle was written, ms since the Unix epoch (the writer's clock; not signed).
    pub created_ms: u64,
    /// The node that wrote it (not signed: the records prove themselves).
    pub creator: NodeId,
    /// Records the writer expected to write (a hint for progress; the trailer has the count).
    pub count_hint: u32,
}

impl Header {
    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        b[0..8].copy_from_slice(BUNDLE_MAGIC);
        b[8] = BUNDLE_VERSION;
        b[9] = self.flags;
        b[10..18].copy_from_slice(&self.created_ms.to_be_bytes());
        b[18..50].copy_from_slice(&self.creator.0);
        b[50..54].copy_from_slice(&self.count_hint.to_be_bytes());
        b
    }

    /// Reads a header from the first [`HEADER_BYTES`] of `b` (which must have that many).
    fn parse(b: &[u8]) -> Result<Header, BundleError> {
        let at = |i: usize| b.get(i).copied().unwrap_or(0);
        let be = |r: std::ops::Range<usize>| {
            b.get(r)
                .map(|s| s.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
                .unwrap_or(0)
        };
        if b.get(0..8) != Some(&BUNDLE_MAGIC[..]) {
            return Err(BundleError::NotABundle);
        }
        if at(8) != BUNDLE_VERSION {
            return Err(BundleError::UnsupportedVersion(at(8)));
        }
        let mut creator = [0u8; 32];
        if let Some(s) = b.get(18..50) {
            creator.copy_from_slice(s);
        }
        Ok(Header {
            flags: at(9),
            created_ms: be(10..18),
            creator: NodeId(creator),
            count_hint: be(50..54) as u32,
        })
    }
}

/// Writes a bundle piece by piece: [`Encoder::new`] gives the header bytes, each
/// [`Encoder::record`] one record's, [`Encoder::finish`] the trailer's. Write them in that
/// order.
pub struct Encoder {
    hash: Sha256,
    count: u64,
}

impl Encoder {
    /// A new bundle with `header`, and the header's bytes.
    pub fn new(header: &Header) -> (Encoder, Vec<u8>) {
        let bytes = header.to_bytes().to_vec();
        let mut hash = Sha256::new();
        hash.update(&bytes);
        (Encoder { hash, count: 0 }, bytes)
    }

    /// One record's bytes: `len u32 | signed | signature 64`.
    pub fn record(&mut self, msg: &Message) -> Vec<u8> {
        let signed = msg.signed_bytes();
        let mut b = Vec::with_capacity(RECORD_OVERHEAD + signed.len());
        b.extend_from_slice(&(signed.len() as u32).to_be_bytes());
        b.extend_from_slice(&signed);
        b.extend_from_slice(&msg.signature);
        self.hash.update(&b);
        self.count += 1;
        b
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The trailer's bytes: `0 u32 | count u64 | SHA-256 of every byte before the hash`.
    pub fn finish(mut self) -> Vec<u8> {
        let mut b = Vec::with_capacity(4 + TRAILER_BODY);
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&self.count.to_be_bytes());
        self.hash.update(&b);
        b.extend_from_slice(&self.hash.finalize());
        b
    }
}

/// What the [`Decoder`] found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Give it more bytes ([`Decoder::push`]), or call [`Decoder::finish`] at the end of the
    /// file.
    NeedMore,
    /// The header (always the first step).
    Header(Header),
    /// One record: the message it holds (not verified yet: call [`Message::verify`]), or why
    /// its bytes are not a message (the records after it are still read).
    Record(Result<Message, crate::ProtoError>),
    /// The trailer: whether its count matches the records read and its hash the bytes.
    End {
        /// The count in the trailer equals the records read.
        count_ok: bool,
        /// The SHA-256 in the trailer equals that of the bytes before it.
        checksum_ok: bool,
    },
    /// The bundle cannot be read on (wrong magic or version, a record length over the cap,
    /// data after the trailer). Every later call returns it again.
    Corrupt(BundleError),
}

/// How a bundle ended, from [`Decoder::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The file ended before the trailer (or inside it).
    pub truncated: bool,
    /// The trailer was read and its count and hash match. False when truncated or corrupt.
    pub checksum_ok: bool,
    /// Records read.
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Header,
    Records,
    Ended { count_ok: bool, checksum_ok: bool },
    Corrupt(BundleError),
}

/// Reads a bundle from chunks of bytes. Feed chunks with [`Decoder::push`] and take
/// [`Decoder::step`] until it says [`Step::NeedMore`]; at the end of the file call
/// [`Decoder::finish`].
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    hash: Sha256,
    state: State,
    records: u64,
    consumed: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder expecting the header.
    pub fn new() -> Decoder {
        Decoder {
            buf: Vec::new(),
            pos: 0,
            hash: Sha256::new(),
            state: State::Header,
            records: 0,
            consumed: 0,
        }
    }

    /// Appends the next bytes of the file.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes of the file decoded so far (header, records and trailer taken).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes given but not decoded yet.
    fn avail(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Takes `n` bytes (which must be available) into the hash.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let end = (self.pos + n).min(self.buf.len());
        let v = self.buf.get(self.pos..end).unwrap_or(&[]).to_vec();
        self.hash.update(&v);
        self.pos = end;
        self.consumed += v.len() as u64;
        v
    }

    fn corrupt(&mut self, e: BundleError) -> Step {
        self.state = State::Corrupt(e.clone());
        Step::Corrupt(e)
    }

    /// The next step with the bytes given so far.
    pub fn step(&mut self) -> Step {
        match self.state.clone() {
            State::Corrupt(e) => Step::Corrupt(e),
            State::Ended { .. } => {
                if self.avail().is_empty() {
                    Step::NeedMore
                } else {
                    self.corrupt(BundleError::TrailingData)
                }
            }
            State::Header => {
                let have = self.avail();
                // A wrong magic is reported as soon as the bytes given show it.
                let n = have.len().min(BUNDLE_MAGIC.len());
                if have.get(..n) != BUNDLE_MAGIC.get(..n) {
                    return self.corrupt(BundleError::NotABundle);
                }
                if have.len() < HEADER_BYTES {
                    return Step::NeedMore;
                }
                let bytes = self.take(HEADER_BYTES);
                match Header::parse(&bytes) {
                    Ok(h) => {
                        self.state = State::Records;
                        Step::Header(h)
                    }
                    Err(e) => self.corrupt(e),
                }
            }
            State::Records => {
                let have = self.avail();
                let Some(len) = have.get(..4) else {
                    return Step::NeedMore;
                };
                let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                if len == 0 {
                    if have.len() < 4 + TRAILER_BODY {
                        return Step::NeedMore;
                    }
                    let head = self.take(4 + 8);
                    let mut count = [0u8; 8];
                    count.copy_from_slice(head.get(4..12).unwrap_or(&[0; 8]));
                    let digest: [u8; 32] = self.hash.clone().finalize().into();
                    let stored = self.take(32);
                    let count_ok = u64::from_be_bytes(count) == self.records;
                    let checksum_ok = stored == digest;
                    self.state = State::Ended {
                        count_ok,
                        checksum_ok,
                    };
                    return Step::End {
                        count_ok,
                        checksum_ok,
                    };
                }
                if len as usize > MAX_RECORD_BYTES {
                    return self.corrupt(BundleError::RecordTooLarge(len));
                }
                let total = RECORD_OVERHEAD + len as usize;
                if have.len() < total {
                    return Step::NeedMore;
                }
                let rec = self.take(total);
                self.records += 1;
                let signed = rec.get(4..4 + len as usize).unwrap_or(&[]);
                let mut sig = [0u8; 64];
                sig.copy_from_slice(rec.get(4 + len as usize..).unwrap_or(&[0; 64]));
                Step::Record(Message::from_signed_bytes(signed, sig))
            }
        }
    }

    /// The end of the file: how the bundle ended. Call after [`Decoder::step`] said
    /// [`Step::NeedMore`] and no bytes are left.
    pub fn finish(&self) -> Outcome {
        match &self.state {
            State::Ended {
                count_ok,
                checksum_ok,
            } => Outcome {
                truncated: false,
                checksum_ok: *count_ok && *checksum_ok,
                records: self.records,
            },
            State::Corrupt(BundleError::TrailingData) => Outcome {
                truncated: false,
                checksum_ok: false,
                records: self.records,
            },
            _ => Outcome {
                truncated: true,
                checksum_ok: false,
                records: self.records,
            },
        }
    }
}

/// Encodes a whole bundle in memory (tests, fuzzing, small bundles).
pub fn encode(header: &Header, messages: &[Message]) -> Vec<u8> {
    let (mut enc, mut out) = Encoder::new(header);
    for m in messages {
        out.extend(enc.record(m));
    }
    out.extend(enc.finish());
    out
}

/// Everything a whole in-memory bundle holds, decoded in one go (tests, fuzzing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The header, if it was read.
    pub header: Option<Header>,
    /// Every record, in order.
    pub records: Vec<Result<Message, crate::ProtoError>>,
    /// Why decoding stopped early, if it did.
    pub error: Option<BundleError>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Decodes a whole bundle given as `chunk`-byte pieces (any `chunk` ≥ 1 gives the same).
pub fn decode_chunked(bytes: &[u8], chunk: usize) -> Decoded {
    let mut d = Decoder::new();
    let mut out = Decoded {
        header: None,
        records: Vec::new(),
        error: None,
        outcome: d.finish(),
    };
    let mut pieces = bytes.chunks(chunk.max(1));
    loop {
        match d.step() {
            Step::NeedMore => match pieces.next() {
                Some(p) => d.push(p),
                None => break,
            },
            Step::Header(h) => out.header = Some(h),
            Step::Record(r) => out.records.push(r),
            Step::End { .. } => {}
            Step::Corrupt(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out.outcome = d.finish();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn msgs() -> Vec<Message> {
        let k = SigningKey::from_bytes(&[7u8; 32]);
        (0..3)
            .map(|i| Message::create(&k, "medical", "Ana", 1_700_000_000_000 + i, "hi").unwrap())
            .collect()
    }

    fn header() -> Header {
        Header {
            flags: 0,
            created_ms: 1_700_000_000_000,
            creator: NodeId(
                SigningKey::from_bytes(&[7u8; 32])
                    .verifying_key()
                    .to_bytes(),
            ),
            count_hint: 3,
        }
    }

    #[test]
    fn roundtrip_in_any_chunk_size() {
        let m = msgs();
        let b = encode(&header(), &m);
        for chunk in [1, 2, 7, 64, 1 << 20] {
            let d = decode_chunked(&b, chunk);
            assert_eq!(d.header, Some(header()));
            assert_eq!(d.error, None);
            let got: Vec<Message> = d.records.into_iter().map(Result::unwrap).collect();
            assert_eq!(got, m);
            for g in &got {
                g.verify().unwrap();
            }
            assert_eq!(
                d.outcome,
                Outcome {
                    truncated: false,
                    checksum_ok: true,
                    records: 3
                }
            );
        }
    }

    #[test]
    fn test_vector_layout() {
        // Pinned in docs/protocol.md §9.3.
        let k = SigningKey::from_bytes(&[7u8; 32]);
        let m = Message::create(&k, "medical", "Ana", 1_700_000_000_000, "hi").unwrap();
        let h = Header {
            count_hint: 1,
            ..header()
        };
        let b = encode(&h, std::slice::from_ref(&m));
        assert_eq!(&b[..8], b"DNBUNDLE");
        assert_eq!(b[8], 1);
        assert_eq!(b[9], 0);
        assert_eq!(&b[10..18], &1_700_000_000_000u64.to_be_bytes());
        assert_eq!(&b[18..50], &m.author.0);
        assert_eq!(&b[50..54], &[0, 0, 0, 1]);
        assert_eq!(&b[54..58], &[0, 0, 0, 62]);
        assert_eq!(&b[58..120], &m.signed_bytes()[..]);
        assert_eq!(&b[120..184], &m.signature[..]);
        assert_eq!(&b[184..188], &[0, 0, 0, 0]);
        assert_eq!(&b[188..196], &1u64.to_be_bytes());
        let digest: [u8; 32] = Sha256::digest(&b[..196]).into();
        assert_eq!(&b[196..], &digest[..]);
        assert_eq!(b.len(), 228);
        assert_eq!(
            hex::encode(digest),
            "6c60e0c2d1b38c01fc965ad1403d67230ba76e3c27b39e8c074844d0e8d75bb2"
        );
    }

    #[test]
    fn truncation_at_every_byte_is_reported_and_keeps_whole_records() {
        let m = msgs();
        let b = encode(&header(), &m);
        let rec = RECORD_OVERHEAD + m[0].signed_bytes().len();
        for cut in 0..b.len() {
            let d = decode_chunked(&b[..cut], 5);
            assert!(d.outcome.truncated, "cut at {cut}");
            assert!(!d.outcome.checksum_ok, "cut at {cut}");
            assert_eq!(d.error, None, "cut at {cut}");
            let whole = cut.saturating_sub(HEADER_BYTES) / rec;
            let expect = if cut < HEADER_BYTES { 0 } else { whole.min(3) };
            assert_eq!(d.records.len(), expect, "cut at {cut}");
            assert!(d.records.iter().all(Result::is_ok), "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_is_detected_and_other_records_survive() {
        let m = msgs();
        let b = encode(&header(), &m);
        for i in 0..b.len() {
            let mut t = b.clone();
            t[i] ^= 0x01;
            let d = decode_chunked(&t, 16);
            let valid = d
                .records
                .iter()
                .filter(|r| r.as_ref().is_ok_and(|m| m.verify().is_ok()))
                .count();
            let whole = !d.outcome.truncated && d.error.is_none() && d.outcome.checksum_ok;
            // Either the damage is reported (checksum, truncation, corruption), or it was in a
            // field the checksum does not need to cover (none: every byte is covered).
            assert!(!whole, "flip at {i} went unnoticed");
            if i >= HEADER_BYTES + 4 && d.error.is_none() && !d.outcome.truncated {
                // One record at most is damaged; the others still verify.
                assert!(valid >= 2, "flip at {i}: only {valid} valid records");
            }
        }
    }

    #[test]
    fn oversize_length_is_corrupt_without_allocating() {
        let mut b = header().to_bytes().to_vec();
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        let d = decode_chunked(&b, 1024);
        assert_eq!(d.error, Some(BundleError::RecordTooLarge(u32::MAX)));
        assert!(d.outcome.truncated);
        let mut b = header().to_bytes().to_vec();
        b.extend_from_slice(&((MAX_RECORD_BYTES as u32) + 1).to_be_bytes());
        assert!(matches!(
            decode_chunked(&b, 3).error,
            Some(BundleError::RecordTooLarge(_))
        ));
    }

    #[test]
    fn not_a_bundle_and_wrong_version_and_trailing_data() {
        assert_eq!(
            decode_chunked(b"{\"id\":1}\n", 4).error,
            Some(BundleError::NotABundle)
        );
        let mut b = encode(&header(), &msgs());
        b[8] = 2;
        assert_eq!(
            decode_chunked(&b, 100).error,
            Some(BundleError::UnsupportedVersion(2))
        );
        let mut b = encode(&header(), &msgs());
        b.push(0);
        let d = decode_chunked(&b, 100);
        assert_eq!(d.error, Some(BundleError::TrailingData));
        assert_eq!(d.records.len(), 3);
        assert!(!d.outcome.truncated && !d.outcome.checksum_ok);
    }

    #[test]
    fn random_damage_never_panics_and_reads_the_same_in_any_chunks() {
        // Deterministic xorshift: flipped, dropped and inserted bytes, cut files, through the
        // fuzz target's body (which checks chunk independence and re-encoding).
        let good = encode(&header(), &msgs());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2_000 {
            let mut b = good.clone();
            for _ in 0..(1 + next() % 4) {
                let at = (next() as usize) % b.len().max(1);
                match next() % 4 {
                    0 => b[at] ^= 1 << (next() % 8),
                    1 => {
                        b.remove(at);
                    }
                    2 => b.insert(at, next() as u8),
                    _ => b.truncate(at),
                }
                if b.is_empty() {
                    break;
                }
            }
            crate::fuzzing::bundle(&b);
        }
    }

    #[test]
    fn a_bad_record_is_skipped_and_the_rest_read() {
        let m = msgs();
        let mut b = encode(&header(), &m);
        // Break the magic of the second record's signed bytes.
        let rec = RECORD_OVERHEAD + m[0].signed_bytes().len();
        b[HEADER_BYTES + rec + 4] = b'X';
        let d = decode_chunked(&b, 9);
        assert_eq!(d.records.len(), 3);
        assert!(d.records[0].is_ok() && d.records[1].is_err() && d.records[2].is_ok());
        assert!(!d.outcome.checksum_ok && !d.outcome.truncated);
    }
}
