//! The invertible Bloom lookup table (IBLT) over 64-bit short ids, and the small hash
//! functions derived from a short id (cell positions, checksum, fingerprint term, bitmap bucket).
//!
//! Short ids are already outputs of a keyed hash (SHA-256 compression keyed by the session
//! salt), so an attacker cannot choose them; the fixed mixers below only spread their bits.

/// Hash functions per item: each item lands in one cell of each of `K` equal sub-tables.
/// K = 4 has a far lower error floor than K = 3 for small tables (two items sharing all their
/// cells is the dominant failure), at ~1.3–1.4 cells per difference for large ones.
pub(super) const K: usize = 4;

const C_IDX: u64 = 0xA24B_AED4_963E_E407;
const C_CHK: u64 = 0x9FB2_1C65_1E98_DF25;
const C_FP1: u64 = 0xD6E8_FEB8_6659_FD93;
const C_FP2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const C_BIT: u64 = 0x1656_67B1_9E37_79F9;
const C_SIZE: u64 = 0x27D4_EB2F_1656_67C5;

/// Encoded size of a cell.
pub(super) const CELL_BYTES: usize = 10;

/// One IBLT cell: wrapping sums of the short ids and of their checksums. An item counted
/// negatively (the other side's) is subtracted, so a cell holding one item alone is
/// `(k, chk(k))` or `(-k, -chk(k))` and no separate count is needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    /// Wrapping sum of the short ids in the cell.
    pub key: u64,
    /// Wrapping sum of `chk(short id)` of the items in the cell.
    pub chk: u16,
}

impl Cell {
    fn add(&mut self, short: u64) {
        self.key = self.key.wrapping_add(short);
        self.chk = self.chk.wrapping_add(chk(short));
    }
    fn sub(&mut self, short: u64) {
        self.key = self.key.wrapping_sub(short);
        self.chk = self.chk.wrapping_sub(chk(short));
    }
    fn is_zero(&self) -> bool {
        self.key == 0 && self.chk == 0
    }
}

/// SplitMix64 finaliser: a fast bijective mixer.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 16-bit checksum of a short id, never zero. A stuck cell passes for a single item only if
/// both this checksum and the item's cell position match (≈ 2⁻¹⁶/s); a wrong peel is then
/// caught by the 128-bit fingerprint and count checks.
pub(super) fn chk(short: u64) -> u16 {
    ((mix(short ^ C_CHK) >> 48) as u16).max(1)
}

/// 128-bit fingerprint term of a short id; a set's fingerprint is the wrapping sum.
pub(super) fn fp_term(short: u64) -> u128 {
    (u128::from(mix(short ^ C_FP1)) << 64) | u128::from(mix(short ^ C_FP2))
}

/// Bucket of a short id in a parity bitmap of `bits` bits (a power of two).
pub(super) fn bucket(short: u64, bits: usize) -> usize {
    (mix(short ^ C_BIT) as usize) & (bits - 1)
}

/// Cell of `short` in sub-table `j` of a table with sub-tables of `s` cells.
/// The table size is mixed in so that items colliding in one table are independent in a
/// table of another size (a residual sketch after a failure).
fn index(short: u64, j: usize, s: usize) -> usize {
    let h = mix(short ^ (j as u64 + 1).wrapping_mul(C_IDX) ^ (s as u64).wrapping_mul(C_SIZE));
    j * s + ((u128::from(h) * s as u128) >> 64) as usize
}

/// Measured cells needed to decode `d` differences with ≈ 99 % probability (4 hashes).
const CELLS: [(f64, f64); 16] = [
    (0.0, 4.0),
    (1.0, 8.0),
    (2.0, 16.0),
    (3.0, 20.0),
    (5.0, 24.0),
    (8.0, 32.0),
    (10.0, 36.0),
    (15.0, 44.0),
    (20.0, 52.0),
    (30.0, 64.0),
    (40.0, 76.0),
    (60.0, 100.0),
    (100.0, 156.0),
    (200.0, 292.0),
    (500.0, 700.0),
    (1000.0, 1412.0),
];

/// Cells needed to decode `d` differences with ≈ 99 % probability in one go (interpolated
/// from [`CELLS`], 1.41·d beyond), a multiple of `K`. A failure is cheap: the peeled part is
/// kept and only the rest goes into the next, residual sketch.
pub(super) fn cells_for(d: f64) -> usize {
    let d = if d.is_nan() { 0.0 } else { d.max(0.0) };
    let mut m = 1.41 * d + 2.0;
    for w in CELLS.windows(2) {
        let ((d0, m0), (d1, m1)) = (w[0], w[1]);
        if d <= d1 {
            m = m0 + (m1 - m0) * (d - d0) / (d1 - d0);
            break;
        }
    }
    let m = m.ceil();
    let m = if m < (1u64 << 26) as f64 {
        m as usize
    } else {
        1 << 26
    };
    m.div_ceil(K) * K
}

/// Builds a table of `m` cells (a multiple of `K`) over the given short ids.
pub(super) fn build(shorts: impl Iterator<Item = u64>, m: usize) -> Vec<Cell> {
    let mut cells = vec![Cell::default(); m];
    let s = m / K;
    if s == 0 {
        return cells;
    }
    for x in shorts {
        for j in 0..K {
            cells[index(x, j, s)].add(x);
        }
    }
    cells
}

/// Result of peeling `peer − mine`.
#[derive(Debug, Default)]
pub(super) struct Peeled {
    /// Short ids only the peer holds.
    pub(super) peer: Vec<u64>,
    /// Short ids only we hold.
    pub(super) mine: Vec<u64>,
    /// Every cell ended at zero: the difference is fully known.
    pub(super) complete: bool,
    /// Cells left non-zero (the undecoded "core").
    pub(super) nonzero: usize,
    /// Estimated number of undecoded differences.
    pub(super) core_estimate: f64,
}

/// Peels `diff = peer − mine` (cell-wise). Never loops forever: at most `m` items come out.
pub(super) fn peel(mut diff: Vec<Cell>) -> Peeled {
    let m = diff.len();
    let s = m / K;
    let mut out = Peeled::default();
    if s == 0 {
        return out;
    }
    let pure = |c: &Cell, i: usize| -> Option<(u64, bool)> {
        if c.is_zero() {
            return None;
        }
        let j = i / s;
        if chk(c.key) == c.chk && index(c.key, j, s) == i {
            return Some((c.key, true));
        }
        let neg = c.key.wrapping_neg();
        if chk(neg) == c.chk.wrapping_neg() && index(neg, j, s) == i {
            return Some((neg, false));
        }
        None
    };
    let zero_before = diff.iter().filter(|c| c.is_zero()).count();
    let mut stack: Vec<usize> = (0..m).rev().collect();
    let mut taken = 0usize;
    while let Some(i) = stack.pop() {
        let Some((x, from_peer)) = pure(&diff[i], i) else {
            continue;
        };
        taken += 1;
        if taken > m {
            // Only a hostile table gets here; report failure without the bogus items.
            return Peeled::default();
        }
        if from_peer {
            out.peer.push(x);
        } else {
            out.mine.push(x);
        }
        for j in 0..K {
            let c = index(x, j, s);
            if from_peer {
                diff[c].sub(x);
            } else {
                diff[c].add(x);
            }
            if c != i {
                stack.push(c);
            }
        }
    }
    out.nonzero = diff.iter().filter(|c| !c.is_zero()).count();
    out.complete = out.nonzero == 0;
    if !out.complete {
        // The differences are spread uniformly, so the empty cells of the table before
        // peeling estimate their number; what did not peel is the rest. Every stuck cell also
        // holds ≥ 2 of the K entries of undecoded items.
        let lower = out.nonzero as f64 * 2.0 / K as f64;
        let total = if zero_before > 0 {
            (zero_before as f64 / m as f64).ln() / (1.0 - 1.0 / s as f64).ln()
        } else {
            // Saturated: only a lower bound is known.
            (2.0 * m as f64).max(1.5 * s as f64 * (m as f64).ln())
        };
        let peeled = (out.peer.len() + out.mine.len()) as f64;
        out.core_estimate = lower.max(total - peeled);
    }
    out
}

/// Estimated size of the symmetric difference from two parity bitmaps of `bits` bits, with
/// `saturated` set when the estimate is only a lower bound.
pub(super) fn estimate_from_parity(odd: usize, bits: usize) -> (f64, bool) {
    let m = bits as f64;
    let frac = 2.0 * odd as f64 / m;
    if frac >= 0.95 {
        return ((-(m / 2.0)) * (0.05f64).ln(), true);
    }
    (-(m / 2.0) * (1.0 - frac).ln(), false)
}

/// Adds a safety margin to an estimate from a `bits`-bit parity bitmap: the estimator's
/// spread is about `d·sqrt(2/bits)·e^(2d/bits)`.
pub(super) fn with_margin(d: f64, bits: usize) -> f64 {
    let b = bits.max(1) as f64;
    let spread = d * (2.0 / b).sqrt() * (2.0 * d / b).min(8.0).exp();
    d + 1.3 * spread + 2.0
}
