//! Byte layout of [`ReconMsg`] (big-endian, see the module docs of [`crate::recon`]): the
//! [`Encode`] / [`Decode`] impls of [`Range`], [`Cell`], [`Part`] and [`ReconMsg`] over the
//! shared [`crate::coding`] reader and writer. Decoding is bounds-checked, enforces every
//! structural rule and never panics.

use super::sketch::{Cell, CELL_BYTES, K};
use super::{
    Part, Range, ReconError, ReconMsg, MAX_BITMAP_BYTES, MAX_CELLS, MAX_DEPTH, MAX_MSG_BYTES,
    RECON_VERSION,
};
use crate::coding::{self, CodingError, Decode, Encode, Reader, Writer};

const KIND_SUMMARY: u8 = 1;
const KIND_SKETCH: u8 = 2;
const KIND_IDS: u8 = 3;
const KIND_REQUEST: u8 = 4;

/// Bytes of the message header plus the wants count.
pub(super) const MSG_OVERHEAD: usize = 1 + 1 + 16 + 2 + 2;

fn bad(what: &'static str) -> ReconError {
    ReconError::Malformed(what)
}

fn prefix_bytes(depth: u8) -> usize {
    usize::from(depth).div_ceil(8)
}

/// Encoded size of a range.
pub(super) fn range_len(r: Range) -> usize {
    1 + prefix_bytes(r.depth)
}

/// `depth u8 | prefix: ceil(depth/8) bytes`.
impl Encode for Range {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.depth);
        let be = self.prefix.to_be_bytes();
        w.bytes(&be[..prefix_bytes(self.depth).min(be.len())]);
    }
}

impl Decode for Range {
    type Error = ReconError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReconError> {
        let depth = r.u8()?;
        if depth > MAX_DEPTH {
            return Err(bad("range depth over the limit"));
        }
        let mut be = [0u8; 8];
        let n = prefix_bytes(depth);
        be[..n].copy_from_slice(r.bytes(n)?);
        let prefix = u64::from_be_bytes(be);
        let range = Range { depth, prefix };
        if range.lo() != prefix {
            return Err(bad("range prefix has bits below its depth"));
        }
        Ok(range)
    }
}

/// `key u64 | chk u16`.
impl Encode for Cell {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.key);
        w.u16(self.chk);
    }
}

impl Decode for Cell {
    type Error = CodingError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodingError> {
        Ok(Cell {
            key: r.u64()?,
            chk: r.u16()?,
        })
    }
}

fn write_list(w: &mut Writer, v: &[u64]) {
    let n = v.len().min(usize::from(u16::MAX));
    w.u16(n as u16);
    for x in &v[..n] {
        w.u64(*x);
    }
}

/// A list of short ids; when `within` is given they must be strictly increasing and inside it.
fn read_list(r: &mut Reader<'_>, within: Option<Range>) -> Result<Vec<u64>, ReconError> {
    let n = usize::from(r.u16()?);
    let mut v = Vec::with_capacity(n.min(MAX_MSG_BYTES / 8));
    for _ in 0..n {
        let x = r.u64()?;
        if let Some(range) = within {
            if !range.contains(x) {
                return Err(bad("short id outside its range"));
            }
            if v.last().is_some_and(|p| *p >= x) {
                return Err(bad("short ids not strictly increasing"));
            }
        }
        v.push(x);
    }
    Ok(v)
}

/// Encoded size of a part.
pub(super) fn part_len(p: &Part) -> usize {
    1 + range_len(p.range())
        + match p {
            Part::Summary { bitmap, .. } => 4 + 16 + 2 + bitmap.len(),
            Part::Sketch { handled, cells, .. } => {
                4 + 16 + 2 + 8 * handled.len() + 2 + CELL_BYTES * cells.len()
            }
            Part::Ids { handled, ids, .. } => 2 + 8 * handled.len() + 2 + 8 * ids.len(),
            Part::Request { .. } => 0,
        }
}

/// `kind u8 | range | body` (see the wire layout in [`crate::recon`]).
impl Encode for Part {
    fn encode(&self, w: &mut Writer) {
        match self {
            Part::Summary {
                range,
                count,
                fp,
                bitmap,
            } => {
                w.u8(KIND_SUMMARY);
                w.put(range);
                w.u32(*count);
                w.u128(*fp);
                let n = bitmap.len().min(MAX_BITMAP_BYTES);
                w.u16(n as u16);
                w.bytes(&bitmap[..n]);
            }
            Part::Sketch {
                range,
                count,
                fp,
                handled,
                cells,
            } => {
                w.u8(KIND_SKETCH);
                w.put(range);
                w.u32(*count);
                w.u128(*fp);
                write_list(w, handled);
                let n = cells.len().min(MAX_CELLS);
                w.u16(n as u16);
                for c in &cells[..n] {
                    w.put(c);
                }
            }
            Part::Ids {
                range,
                handled,
                ids,
            } => {
                w.u8(KIND_IDS);
                w.put(range);
                write_list(w, handled);
                write_list(w, ids);
            }
            Part::Request { range } => {
                w.u8(KIND_REQUEST);
                w.put(range);
            }
        }
    }
}

/// Reads one part and checks its own rules (counts, id lists inside the range); the order of
/// parts is checked by [`ReconMsg`]'s decoder.
impl Decode for Part {
    type Error = ReconError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReconError> {
        let kind = r.u8()?;
        let range = r.get::<Range>()?;
        Ok(match kind {
            KIND_SUMMARY => {
                let count = r.u32()?;
                let fp = r.u128()?;
                let n = usize::from(r.u16()?);
                if n != 0 && (!n.is_power_of_two() || !(8..=MAX_BITMAP_BYTES).contains(&n)) {
                    return Err(bad("bitmap length must be 0 or a power of two in 8..=256"));
                }
                let bitmap = r.bytes(n)?.to_vec();
                Part::Summary {
                    range,
                    count,
                    fp,
                    bitmap,
                }
            }
            KIND_SKETCH => {
                let count = r.u32()?;
                let fp = r.u128()?;
                let handled = read_list(r, Some(range))?;
                let n = usize::from(r.u16()?);
                if n == 0 || n % K != 0 || n > MAX_CELLS {
                    return Err(bad(
                        "cell count must be a non-zero multiple of 4, at most 4096",
                    ));
                }
                let mut cells = Vec::with_capacity(n);
                for _ in 0..n {
                    cells.push(r.get::<Cell>()?);
                }
                Part::Sketch {
                    range,
                    count,
                    fp,
                    handled,
                    cells,
                }
            }
            KIND_IDS => Part::Ids {
                range,
                handled: read_list(r, Some(range))?,
                ids: read_list(r, Some(range))?,
            },
            KIND_REQUEST => Part::Request { range },
            _ => return Err(bad("unknown part kind")),
        })
    }
}

/// `version u8 | round u8 | salt [16] | nparts u16 | parts | nwants u16 | wants`.
impl Encode for ReconMsg {
    fn encode(&self, w: &mut Writer) {
        w.u8(RECON_VERSION);
        w.u8(self.round);
        w.bytes(&self.salt);
        let n = self.parts.len().min(usize::from(u16::MAX));
        w.u16(n as u16);
        for p in &self.parts[..n] {
            w.put(p);
        }
        write_list(w, &self.wants);
    }
}

/// Reads one message; the size limit is checked by [`ReconMsg::decode`], which sees the whole
/// buffer.
impl Decode for ReconMsg {
    type Error = ReconError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReconError> {
        let version = r.u8()?;
        if version != RECON_VERSION {
            return Err(ReconError::UnsupportedVersion(version));
        }
        let round = r.u8()?;
        let salt = r.array()?;
        let n = usize::from(r.u16()?);
        let mut parts: Vec<Part> = Vec::with_capacity(n.min(MAX_MSG_BYTES / 2));
        for _ in 0..n {
            let p = r.get::<Part>()?;
            if let Some(prev) = parts.last() {
                if p.range().lo() <= prev.range().hi() {
                    return Err(bad("parts overlap or are out of order"));
                }
            }
            parts.push(p);
        }
        let wants = read_list(r, None)?;
        Ok(ReconMsg {
            round,
            salt,
            parts,
            wants,
        })
    }
}

impl ReconMsg {
    /// Encoded size in bytes (what [`ReconMsg::encode`] returns, without allocating).
    pub fn encoded_len(&self) -> usize {
        MSG_OVERHEAD + self.parts.iter().map(part_len).sum::<usize>() + 8 * self.wants.len()
    }

    /// Encodes the message. Messages built by this module are at most [`MAX_MSG_BYTES`];
    /// a hand-built one that is larger encodes but will not decode.
    pub fn encode(&self) -> Vec<u8> {
        coding::to_vec(self, self.encoded_len())
    }

    /// Decodes a message. Errors on anything malformed: wrong version, over
    /// [`MAX_MSG_BYTES`], truncation, trailing bytes, unknown part kinds, ranges deeper than
    /// [`MAX_DEPTH`] or overlapping / out of order, bad bitmap or cell counts, unsorted or
    /// out-of-range id lists.
    pub fn decode(buf: &[u8]) -> Result<ReconMsg, ReconError> {
        if buf.len() > MAX_MSG_BYTES {
            return Err(ReconError::TooLarge(buf.len()));
        }
        coding::from_slice(buf)
    }
}
