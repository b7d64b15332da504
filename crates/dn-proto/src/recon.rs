//! # Set reconciliation: catch-up whose cost grows with the difference, not with history
//!
//! Two nodes each hold the ids of a room's messages and must learn the symmetric difference.
//! Pure and synchronous: no I/O, no clock, no randomness, and **no session state** — every
//! message carries all the state the next step needs, so a sync cut off midway is simply
//! started again; what already arrived is no longer in the difference and costs nothing.
//!
//! ## Design
//! - **Short ids.** Each id is mapped to 64 bits by SHA-256's compression function keyed with
//!   a 16-byte per-session *salt* (`"DNrecon1" ‖ salt ‖ id ‖ 0⁸` as one block from the
//!   standard IV). Nobody can precompute short-id collisions without the salt; a collision
//!   between two differing messages (≈ d²/2⁶⁵) only hides them until the next session.
//! - **Ranges of hash space.** Everything is said about a [`Range`] of short ids (a bit
//!   prefix). The first message covers everything; big work is split into halves, so every
//!   message stays under [`MAX_MSG_BYTES`] and every part stands on its own.
//! - **Summary** = count + 128-bit fingerprint (wrapping sum of a 128-bit mix of each short
//!   id) + a parity bitmap of ≤ 2,048 bits. Equal sets stop after this one message. The
//!   number of odd buckets of the XOR of both bitmaps estimates the difference `d` (exact for
//!   small `d`, ±6 % at 1,000), so the answer is sized right the first time. Past ≈ 3,000 the
//!   bitmap saturates and the answer is eight sub-range summaries (one more half trip).
//! - **Sketch** = an invertible Bloom lookup table: 4 hash functions (position also depends on
//!   the table size), 10-byte cells holding wrapping sums of short id and a 16-bit checksum,
//!   ≈ 1.4 cells per difference. The receiver subtracts its own table and peels, learning both
//!   directions at once: it pushes what the peer lacks and asks (`wants`) for what it lacks.
//!   If peeling stalls, what peeled is kept (pushed / wanted) and listed as `handled`; both
//!   sides leave those out and only the rest goes into a *residual* sketch, sized from the
//!   empty cells of the failed one — a failure costs a few hundred bytes, not a restart.
//!   A complete decode is checked against the count and the 128-bit fingerprint.
//! - **Ids / Request.** Where an explicit list of short ids (8 B each) is cheaper than a
//!   sketch (tiny sets, or a difference near the set size) a side sends its list, or asks for
//!   the peer's when that one is much shorter. One side empty costs one tiny message.
//!
//! Unlike range-based reconciliation over (timestamp, id), the cost does not depend on
//! *where* in history the differences are. 100,000 shared ids (see [`figures`]): 0 differences
//! 302 B in 1 message (46 B with [`start_compact`]); 10 differences 812 B in 3 messages,
//! spread or recent (negentropy 13.9 KB spread / 1.8 KB recent); 1,000 differences ≈ 20 KB in
//! 3 messages (negentropy 787 KB / 22 KB); naive id list 3.2 MB each way. One step over
//! 100,000 ids takes ≈ 10–25 ms in a debug build (SHA-256 compression + a sort).
//!
//! ## Use
//! The initiator sends [`start`] (or [`start_with_salt`] with 16 random bytes, or
//! [`start_compact`] where the sets are probably equal); each side answers every
//! [`ReconMsg`] it receives with [`step`], sends all `replies`, and pushes the
//! `we_have_they_lack` messages. The side that lacks messages asks for them inside its reply
//! (`wants`); the peer's [`step`] resolves them into its own `we_have_they_lack`, so no
//! separate want frame is needed; `they_have_we_lack` says what will arrive. A step with no
//! replies ends that side's part of the exchange. Sets are `(timestamp, id)` in any order;
//! pushes come out ordered by timestamp.
//!
//! Limits: a message is at most [`MAX_MSG_BYTES`] (fits a 64 KiB frame), at most
//! [`MAX_ROUNDS`] rounds. Any answer is bounded by a few bytes (8–16) per id we hold, so a
//! hostile `Request` or summary can make us send about our id list, no more: allow one
//! exchange in flight per (peer, room), and prefer a random salt ([`start_with_salt`]).
//!
//! ## Wire layout (all integers big-endian)
//! ```text
//! ReconMsg := version u8 (=1) | round u8 | salt [16] | nparts u16 | Part × nparts
//!             | nwants u16 | want u64 × nwants                     (≤ 60,000 bytes in all)
//! Part     := kind u8 | depth u8 (≤ 32) | prefix: ceil(depth/8) bytes (the range's top bits,
//!             bits past depth zero) | body          (parts sorted by range, never overlapping)
//!   1 Summary: count u32 | fp [16] | nbitmap u16 (0, or a power of two in 8..=256) | bitmap
//!   2 Sketch : count u32 | fp [16] | nhandled u16 | handled u64 × n
//!              | ncells u16 (multiple of 4, 4..=4096) | (key u64 | chk u16) × ncells
//!   3 Ids    : nhandled u16 | handled u64 × n | nids u16 | id u64 × n
//!   4 Request: (empty) — "send me your Ids for this range"
//! ```
//! Short-id lists inside a part are strictly increasing and inside the part's range. The
//! count, fingerprint, cells and ids of Sketch and Ids parts cover the sender's ids in the
//! range minus `handled` (short ids both sides leave out: already pushed or wanted).

#[cfg(any(test, feature = "sim"))]
mod sim;
mod sketch;
#[cfg(test)]
mod tests;
mod wire;

use sha2::compress256;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

use crate::coding::CodingError;
use crate::message::MessageId;

#[cfg(any(test, feature = "sim"))]
pub use sim::{figures, make_sets, simulate, Delivery, Figure, SimOutcome};
pub use sketch::Cell;

use sketch::{
    bucket, build, cells_for, estimate_from_parity, fp_term, peel, with_margin, CELL_BYTES,
};
use wire::{part_len, range_len, MSG_OVERHEAD};

/// Version byte of every [`ReconMsg`].
pub const RECON_VERSION: u8 = 1;
/// Largest encoded [`ReconMsg`]; fits a 64 KiB frame with room to spare.
pub const MAX_MSG_BYTES: usize = 60_000;
/// Most cells in one sketch part.
pub const MAX_CELLS: usize = 4096;
/// Deepest range split (2³² ranges).
pub const MAX_DEPTH: u8 = 32;
/// Largest parity bitmap in a summary.
pub const MAX_BITMAP_BYTES: usize = 256;
/// A message of this round or later is refused ([`ReconError::TooManyRounds`]); honest
/// exchanges need fewer than 8.
pub const MAX_ROUNDS: u8 = 24;

/// Room for parts in one message.
const PART_BUDGET: usize = MAX_MSG_BYTES - MSG_OVERHEAD;
/// Difference guessed when a summary carries no bitmap.
const DEFAULT_GUESS: f64 = 16.0;
/// Sets this small start with their id list instead of a summary.
const START_LIST_MAX: usize = 4;

/// One element of a set: `(timestamp in ms, id)`.
pub type Entry = (u64, MessageId);

/// Per-session key of the short-id hash.
pub type Salt = [u8; 16];

/// What can be wrong with a reconciliation message.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReconError {
    /// Bytes ended early, had trailing data, or broke a structural rule.
    #[error("malformed reconciliation message: {0}")]
    Malformed(&'static str),
    /// Over [`MAX_MSG_BYTES`].
    #[error("reconciliation message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// A version this node does not speak.
    #[error("unsupported reconciliation version {0}")]
    UnsupportedVersion(u8),
    /// The exchange went on for [`MAX_ROUNDS`] messages; start again later.
    #[error("reconciliation ran past {MAX_ROUNDS} rounds")]
    TooManyRounds,
}

impl From<CodingError> for ReconError {
    fn from(e: CodingError) -> Self {
        ReconError::Malformed(e.as_str())
    }
}

/// The short ids whose top `depth` bits equal those of `prefix` (lower bits zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    /// Number of fixed leading bits, 0..=[`MAX_DEPTH`].
    pub depth: u8,
    /// The fixed bits, left-aligned.
    pub prefix: u64,
}

impl Range {
    /// Every short id.
    pub const ALL: Range = Range {
        depth: 0,
        prefix: 0,
    };
    fn free_bits(&self) -> u64 {
        u64::MAX.checked_shr(u32::from(self.depth)).unwrap_or(0)
    }
    /// Smallest short id in the range.
    pub fn lo(&self) -> u64 {
        self.prefix & !self.free_bits()
    }
    /// Largest short id in the range.
    pub fn hi(&self) -> u64 {
        self.lo() | self.free_bits()
    }
    /// Whether `short` lies in the range.
    pub fn contains(&self, short: u64) -> bool {
        short & !self.free_bits() == self.lo()
    }
    /// The two halves, unless at [`MAX_DEPTH`].
    fn halves(&self) -> Option<(Range, Range)> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        let depth = self.depth + 1;
        let bit = 1u64 << (64 - u32::from(depth));
        Some((
            Range {
                depth,
                prefix: self.lo(),
            },
            Range {
                depth,
                prefix: self.lo() | bit,
            },
        ))
    }
}

/// One statement about a range of the sender's set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// "This is a digest of my ids here; answer with what you need."
    Summary {
        /// Range.
        range: Range,
        /// Number of the sender's ids in the range.
        count: u32,
        /// Wrapping sum of the fingerprint terms of their short ids.
        fp: u128,
        /// Parity bitmap (bucket of each short id XOR-ed in), or empty.
        bitmap: Vec<u8>,
    },
    /// "Decode this table against yours, leaving out `handled`."
    Sketch {
        /// Range.
        range: Range,
        /// Number of the sender's ids in the range, `handled` left out.
        count: u32,
        /// Their fingerprint.
        fp: u128,
        /// Short ids both sides leave out (sorted).
        handled: Vec<u64>,
        /// The IBLT.
        cells: Vec<Cell>,
    },
    /// "These are all my short ids here, `handled` left out."
    Ids {
        /// Range.
        range: Range,
        /// Short ids both sides leave out (sorted).
        handled: Vec<u64>,
        /// The sender's short ids (sorted).
        ids: Vec<u64>,
    },
    /// "Send me your `Ids` for this range."
    Request {
        /// Range.
        range: Range,
    },
}

impl Part {
    /// The range the part speaks about.
    pub fn range(&self) -> Range {
        match self {
            Part::Summary { range, .. }
            | Part::Sketch { range, .. }
            | Part::Ids { range, .. }
            | Part::Request { range } => *range,
        }
    }
}

/// One reconciliation message. [`ReconMsg::encode`] / [`ReconMsg::decode`] convert to bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconMsg {
    /// 0 for the first message, +1 per reply.
    pub round: u8,
    /// Key of the short-id hash for the whole exchange.
    pub salt: Salt,
    /// Statements about disjoint ranges, sorted.
    pub parts: Vec<Part>,
    /// Short ids the sender lacks; the receiver pushes the matching messages.
    pub wants: Vec<u64>,
}

/// A short id the peer holds and we lack (already asked for in the reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WantKey(pub u64);

/// The outcome of processing one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Messages to send to the peer (each ≤ [`MAX_MSG_BYTES`]); empty = nothing more to say.
    pub replies: Vec<ReconMsg>,
    /// Push these messages to the peer (ordered by timestamp, then id).
    pub we_have_they_lack: Vec<MessageId>,
    /// The peer holds these and will push them: they are requested in `replies` already.
    pub they_have_we_lack: Vec<WantKey>,
}

impl Step {
    /// True when there is nothing to send.
    pub fn is_done(&self) -> bool {
        self.replies.is_empty() && self.we_have_they_lack.is_empty()
    }
}

const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The 64-bit short id of `id` under `salt`: the first 8 bytes of SHA-256's compression of
/// the block `"DNrecon1" ‖ salt ‖ id ‖ 0⁸` from the standard IV.
pub fn short_id(salt: &Salt, id: &MessageId) -> u64 {
    let mut block = [0u8; 64];
    block[..8].copy_from_slice(b"DNrecon1");
    block[8..24].copy_from_slice(salt);
    block[24..56].copy_from_slice(&id.0);
    let mut st = SHA256_IV;
    compress256(&mut st, &[GenericArray::from(block)]);
    (u64::from(st[0]) << 32) | u64::from(st[1])
}

/// A salt derived from the set itself (changes whenever the set does). Prefer
/// [`start_with_salt`] with 16 random bytes where randomness is at hand.
pub fn derive_salt(set: &[(u64, MessageId)]) -> Salt {
    let mut acc = [0u8; 32];
    for (_, id) in set {
        for (a, b) in acc.iter_mut().zip(id.0.iter()) {
            *a ^= b;
        }
    }
    let mut h = Sha256::new();
    h.update(b"DNrecon-salt");
    h.update((set.len() as u64).to_be_bytes());
    h.update(acc);
    let d = h.finalize();
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&d[..16]);
    salt
}

/// (short id, index into the caller's set), sorted by short id, duplicates removed.
type Item = (u64, u32);

fn prepare(set: &[(u64, MessageId)], salt: &Salt) -> Vec<Item> {
    let n = set.len().min(u32::MAX as usize);
    let mut items: Vec<Item> = set[..n]
        .iter()
        .enumerate()
        .map(|(i, (_, id))| (short_id(salt, id), i as u32))
        .collect();
    let id_of = |i: u32| set[i as usize].1;
    items.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| id_of(a.1).cmp(&id_of(b.1))));
    items.dedup_by(|a, b| a.0 == b.0 && id_of(a.1) == id_of(b.1));
    items
}

fn in_range(items: &[Item], r: Range) -> &[Item] {
    let a = items.partition_point(|x| x.0 < r.lo());
    let b = items.partition_point(|x| x.0 <= r.hi());
    &items[a..b.max(a)]
}

fn find(items: &[Item], short: u64) -> &[Item] {
    let a = items.partition_point(|x| x.0 < short);
    let b = items.partition_point(|x| x.0 <= short);
    &items[a..b.max(a)]
}

/// `items` minus every item whose short id is in `excl` (both sorted).
fn without(items: &[Item], excl: &[u64]) -> Vec<Item> {
    if excl.is_empty() {
        return items.to_vec();
    }
    let mut out = Vec::with_capacity(items.len());
    let mut j = 0;
    for it in items {
        while j < excl.len() && excl[j] < it.0 {
            j += 1;
        }
        if j < excl.len() && excl[j] == it.0 {
            continue;
        }
        out.push(*it);
    }
    out
}

fn count_of(v: &[Item]) -> u32 {
    u32::try_from(v.len()).unwrap_or(u32::MAX)
}

fn fp_of(v: &[Item]) -> u128 {
    v.iter().fold(0u128, |a, x| a.wrapping_add(fp_term(x.0)))
}

fn bitmap_of(v: &[Item], bytes: usize) -> Vec<u8> {
    let mut bm = vec![0u8; bytes];
    let bits = bytes * 8;
    if bits == 0 {
        return bm;
    }
    for x in v {
        let b = bucket(x.0, bits);
        bm[b / 8] ^= 1 << (b % 8);
    }
    bm
}

/// Bitmap size for a set of `n`: ≥ 2n bits, 64..=2,048 bits.
fn bitmap_bytes_for(n: usize) -> usize {
    (2 * n.max(1))
        .next_power_of_two()
        .clamp(64, MAX_BITMAP_BYTES * 8)
        / 8
}

fn split<T>(v: &[T], key: impl Fn(&T) -> u64, boundary: u64) -> (&[T], &[T]) {
    let i = v.partition_point(|x| key(x) < boundary);
    v.split_at(i)
}

fn shorts(v: &[Item]) -> Vec<u64> {
    let mut s: Vec<u64> = v.iter().map(|x| x.0).collect();
    s.dedup();
    s
}

/// What one step produces, before packing into messages.
#[derive(Default)]
struct Out {
    parts: Vec<Part>,
    wants: Vec<u64>,
    push: Vec<u32>,
}

impl Out {
    fn push_all(&mut self, v: &[Item]) {
        self.push.extend(v.iter().map(|x| x.1));
    }

    /// Our list of `view` (sorted), split into halves until each part fits.
    fn ids(&mut self, range: Range, view: &[Item], excl: &[u64]) {
        let size = 1 + range_len(range) + 2 + 8 * excl.len() + 2 + 8 * view.len();
        if size > PART_BUDGET {
            if let Some((lo, hi)) = range.halves() {
                let (v1, v2) = split(view, |x| x.0, hi.lo());
                let (e1, e2) = split(excl, |x| *x, hi.lo());
                self.ids(lo, v1, e1);
                self.ids(hi, v2, e2);
                return;
            }
        }
        // Fits (or, in a degenerate 2⁻³²-wide range, cut to fit: the peer then pushes a few
        // messages we already hold).
        let room = PART_BUDGET.saturating_sub(1 + range_len(range) + 4) / 8;
        let excl = &excl[..excl.len().min(room)];
        let mut ids = shorts(view);
        ids.truncate(room - excl.len());
        self.parts.push(Part::Ids {
            range,
            handled: excl.to_vec(),
            ids,
        });
    }

    /// A sketch of `view` sized for `d` differences, or our list where that is cheaper; split
    /// into halves while a part would not fit.
    fn sketch(&mut self, range: Range, view: &[Item], excl: &[u64], d: f64) {
        let m = cells_for(d);
        if view.is_empty() || 8 * view.len() <= CELL_BYTES * m {
            return self.ids(range, view, excl);
        }
        let size = 1 + range_len(range) + 4 + 16 + 2 + 8 * excl.len() + 2 + CELL_BYTES * m;
        if m > MAX_CELLS || size > PART_BUDGET {
            if let Some((lo, hi)) = range.halves() {
                let half = d / 2.0;
                let dh = half + 2.0 * half.sqrt() + 1.0;
                let (v1, v2) = split(view, |x| x.0, hi.lo());
                let (e1, e2) = split(excl, |x| *x, hi.lo());
                self.sketch(lo, v1, e1, dh);
                self.sketch(hi, v2, e2, dh);
                return;
            }
            return self.ids(range, view, excl);
        }
        self.parts.push(Part::Sketch {
            range,
            count: count_of(view),
            fp: fp_of(view),
            handled: excl.to_vec(),
            cells: build(view.iter().map(|x| x.0), m),
        });
    }

    /// Our summaries of the eight sub-ranges of `range` (false if it cannot be split).
    fn summaries(&mut self, range: Range, view: &[Item]) -> bool {
        if range.depth + 3 > MAX_DEPTH {
            return false;
        }
        let depth = range.depth + 3;
        let step = 1u64 << (64 - u32::from(depth));
        for k in 0..8u64 {
            let sub = Range {
                depth,
                prefix: range.lo() | (k * step),
            };
            let v = in_range(view, sub);
            self.parts.push(Part::Summary {
                range: sub,
                count: count_of(v),
                fp: fp_of(v),
                bitmap: bitmap_of(v, bitmap_bytes_for(v.len())),
            });
        }
        true
    }

    /// Answers a peer that has `n_peer` ids in `range` (after `excl`) and about `d`
    /// differences with us: our list, a request for theirs, or a sketch.
    fn plan(&mut self, range: Range, view: &[Item], excl: &[u64], n_peer: u32, d: f64) {
        let sketch_cost = CELL_BYTES * cells_for(d) + 8 * excl.len();
        let own_list = 8 * view.len() + 8 * excl.len();
        let peer_list = 8 * n_peer as usize;
        if excl.is_empty() && 2 * peer_list + 64 < own_list.min(sketch_cost) {
            self.parts.push(Part::Request { range });
        } else {
            self.sketch(range, view, excl, d);
        }
    }

    fn on_summary(&mut self, items: &[Item], range: Range, count: u32, fp: u128, bitmap: &[u8]) {
        let view = in_range(items, range);
        if count_of(view) == count && fp_of(view) == fp {
            return;
        }
        if view.is_empty() {
            return self.ids(range, view, &[]);
        }
        if count == 0 {
            return self.push_all(view);
        }
        let lower = (f64::from(count) - view.len() as f64).abs();
        let d = if bitmap.is_empty() {
            // A compact summary: answer with ours, bitmap included, unless lists are cheaper.
            let bytes = bitmap_bytes_for(view.len().max(count as usize));
            if 8 * view.len().min(count as usize) > bytes + 64 {
                self.parts.push(Part::Summary {
                    range,
                    count: count_of(view),
                    fp: fp_of(view),
                    bitmap: bitmap_of(view, bytes),
                });
                return;
            }
            DEFAULT_GUESS
        } else {
            let mine = bitmap_of(view, bitmap.len());
            let odd: u32 = mine
                .iter()
                .zip(bitmap)
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            let bits = bitmap.len() * 8;
            let (est, saturated) = estimate_from_parity(odd as usize, bits);
            if saturated {
                // Only a lower bound. Unless our list is cheaper anyway, measure again on
                // eight sub-ranges (≈ 2.2 KB, one more half round trip).
                let list = 8 * view.len();
                if list > CELL_BYTES * cells_for(est.max(lower)) && self.summaries(range, view) {
                    return;
                }
                2.0 * est
            } else {
                with_margin(est.max(1.0), bits)
            }
        };
        self.plan(range, view, &[], count, d.max(lower));
    }

    fn on_sketch(
        &mut self,
        items: &[Item],
        range: Range,
        count: u32,
        fp: u128,
        handled: &[u64],
        cells: &[Cell],
    ) {
        let view = without(in_range(items, range), handled);
        let n = count_of(&view);
        if n == count && fp_of(&view) == fp {
            return;
        }
        if view.is_empty() {
            return self.ids(range, &view, handled);
        }
        if count == 0 {
            return self.push_all(&view);
        }
        let mine = build(view.iter().map(|x| x.0), cells.len());
        let diff: Vec<Cell> = cells
            .iter()
            .zip(&mine)
            .map(|(p, q)| Cell {
                key: p.key.wrapping_sub(q.key),
                chk: p.chk.wrapping_sub(q.chk),
            })
            .collect();
        let mut p = peel(diff);
        let have = |s: u64| !find(&view, s).is_empty();
        let valid = p.mine.iter().all(|s| have(*s))
            && p.peer
                .iter()
                .all(|s| !have(*s) && range.contains(*s) && handled.binary_search(s).is_err());
        let net = i64::from(count) - i64::from(n);
        let net_ok = net == p.peer.len() as i64 - p.mine.len() as i64;
        let sum = |v: &[u64]| v.iter().fold(0u128, |a, s| a.wrapping_add(fp_term(*s)));
        let fp_ok = fp.wrapping_sub(fp_of(&view)) == sum(&p.peer).wrapping_sub(sum(&p.mine));
        if p.complete && valid && net_ok && fp_ok {
            for s in &p.mine {
                self.push_all(find(&view, *s));
            }
            self.wants.extend(p.peer);
            return;
        }
        // Stalled (or inconsistent): keep what peeled cleanly, sketch the rest.
        let core = if valid && !p.complete {
            p.core_estimate
        } else {
            p.mine.clear();
            p.peer.clear();
            2.0 * cells.len() as f64
        };
        p.mine.sort_unstable();
        p.mine.dedup();
        p.peer.sort_unstable();
        p.peer.dedup();
        let rest_net = (net - p.peer.len() as i64 + p.mine.len() as i64).unsigned_abs() as f64;
        let mut d = rest_net.max(core * 1.1 + 2.0 * core.sqrt() + 2.0);
        if p.mine.is_empty() && p.peer.is_empty() {
            d = d.max(2.0 * cells.len() as f64 / 1.4);
        }
        let mut excl: Vec<u64> = handled
            .iter()
            .chain(&p.mine)
            .chain(&p.peer)
            .copied()
            .collect();
        excl.sort_unstable();
        excl.dedup();
        let rest = without(&view, &p.mine);
        let sketch_cost = CELL_BYTES * cells_for(d) + 8 * excl.len() + 8 * p.peer.len();
        let own_list = 8 * view.len() + 8 * handled.len();
        if own_list <= sketch_cost {
            // Settle this range with a list instead (dropping the partial result).
            if handled.is_empty() && 16 * count as usize + 64 < own_list {
                self.parts.push(Part::Request { range });
            } else {
                self.ids(range, &view, handled);
            }
            return;
        }
        for s in &p.mine {
            self.push_all(find(&view, *s));
        }
        self.wants.extend_from_slice(&p.peer);
        self.sketch(range, &rest, &excl, d);
    }

    fn on_ids(&mut self, items: &[Item], range: Range, handled: &[u64], ids: &[u64]) {
        let view = without(in_range(items, range), handled);
        let (mut i, mut j) = (0, 0);
        while i < view.len() || j < ids.len() {
            match (view.get(i), ids.get(j)) {
                (Some(a), Some(b)) if a.0 == *b => {
                    while view.get(i).is_some_and(|x| x.0 == *b) {
                        i += 1;
                    }
                    j += 1;
                }
                (Some(a), Some(b)) if a.0 < *b => {
                    self.push.push(a.1);
                    i += 1;
                }
                (Some(a), None) => {
                    self.push.push(a.1);
                    i += 1;
                }
                (_, Some(b)) => {
                    self.wants.push(*b);
                    j += 1;
                }
                (None, None) => break,
            }
        }
    }
}

fn pack(parts: Vec<Part>, mut wants: Vec<u64>, round: u8, salt: Salt) -> Vec<ReconMsg> {
    wants.sort_unstable();
    wants.dedup();
    let fresh = || ReconMsg {
        round,
        salt,
        parts: Vec::new(),
        wants: Vec::new(),
    };
    let mut msgs = Vec::new();
    let mut cur = fresh();
    let mut size = MSG_OVERHEAD;
    for p in parts {
        let l = part_len(&p);
        if size + l > MAX_MSG_BYTES && !cur.parts.is_empty() {
            msgs.push(std::mem::replace(&mut cur, fresh()));
            size = MSG_OVERHEAD;
        }
        cur.parts.push(p);
        size += l;
    }
    for w in wants {
        if size + 8 > MAX_MSG_BYTES {
            msgs.push(std::mem::replace(&mut cur, fresh()));
            size = MSG_OVERHEAD;
        }
        cur.wants.push(w);
        size += 8;
    }
    if !cur.parts.is_empty() || !cur.wants.is_empty() {
        msgs.push(cur);
    }
    msgs
}

/// Initiator: the first message for our set, with a salt derived from the set.
/// `set` is `(timestamp, id)` pairs in any order.
pub fn start(set: &[(u64, MessageId)]) -> ReconMsg {
    start_with_salt(set, derive_salt(set))
}

/// Initiator: the first message for our set under the given salt (use 16 random bytes).
/// It carries a ≤ 256-byte bitmap so that the peer can size its answer at once.
pub fn start_with_salt(set: &[(u64, MessageId)], salt: Salt) -> ReconMsg {
    start_inner(set, salt, true)
}

/// Initiator, when the sets are probably equal: a ≈ 50-byte first message (count and
/// fingerprint only). If the sets differ, the peer answers with its own bitmap, which costs
/// one more half round trip than [`start_with_salt`].
pub fn start_compact(set: &[(u64, MessageId)], salt: Salt) -> ReconMsg {
    start_inner(set, salt, false)
}

fn start_inner(set: &[(u64, MessageId)], salt: Salt, with_bitmap: bool) -> ReconMsg {
    let items = prepare(set, &salt);
    let part = if items.len() <= START_LIST_MAX {
        Part::Ids {
            range: Range::ALL,
            handled: Vec::new(),
            ids: shorts(&items),
        }
    } else {
        Part::Summary {
            range: Range::ALL,
            count: count_of(&items),
            fp: fp_of(&items),
            bitmap: if with_bitmap {
                bitmap_of(&items, bitmap_bytes_for(items.len()))
            } else {
                Vec::new()
            },
        }
    };
    ReconMsg {
        round: 0,
        salt,
        parts: vec![part],
        wants: Vec::new(),
    }
}

/// Either side: processes the peer's message against our set (`(timestamp, id)` pairs in any
/// order). O(n log n) in the set size plus O(message size).
pub fn step(set: &[(u64, MessageId)], msg: &ReconMsg) -> Result<Step, ReconError> {
    if msg.round >= MAX_ROUNDS {
        return Err(ReconError::TooManyRounds);
    }
    let items = prepare(set, &msg.salt);
    let mut out = Out::default();
    for w in &msg.wants {
        for it in find(&items, *w) {
            out.push.push(it.1);
        }
    }
    for part in &msg.parts {
        match part {
            Part::Summary {
                range,
                count,
                fp,
                bitmap,
            } => out.on_summary(&items, *range, *count, *fp, bitmap),
            Part::Sketch {
                range,
                count,
                fp,
                handled,
                cells,
            } => out.on_sketch(&items, *range, *count, *fp, handled, cells),
            Part::Ids {
                range,
                handled,
                ids,
            } => out.on_ids(&items, *range, handled, ids),
            Part::Request { range } => out.ids(*range, in_range(&items, *range), &[]),
        }
    }
    let they_have_we_lack = {
        let mut w: Vec<WantKey> = out.wants.iter().map(|s| WantKey(*s)).collect();
        w.sort_unstable();
        w.dedup();
        w
    };
    Ok(Step {
        replies: pack(out.parts, out.wants, msg.round + 1, msg.salt),
        we_have_they_lack: ordered_ids(set, out.push),
        they_have_we_lack,
    })
}

fn ordered_ids(set: &[(u64, MessageId)], mut idx: Vec<u32>) -> Vec<MessageId> {
    idx.sort_unstable_by_key(|i| set[*i as usize]);
    idx.dedup_by_key(|i| set[*i as usize].1);
    idx.into_iter().map(|i| set[i as usize].1).collect()
}

/// The side that holds messages: the full ids of our messages matching the peer's wants
/// under `salt` (what [`step`] already does for `wants` inside a message).
pub fn resolve(set: &[(u64, MessageId)], salt: &Salt, wants: &[WantKey]) -> Vec<MessageId> {
    let items = prepare(set, salt);
    let idx = wants
        .iter()
        .flat_map(|w| find(&items, w.0).iter().map(|x| x.1))
        .collect();
    ordered_ids(set, idx)
}
