//! Byte-level coding shared by every wire type: a bounds-checked big-endian [`Reader`], a
//! [`Writer`], and the [`Encode`] / [`Decode`] traits the wire types implement.
//!
//! This is a leaf module: it imports only `std`, and every module with a byte layout
//! (`message`, `topo`, `recon`, `dm`, `codec`) builds on it. Its one error, [`CodingError`],
//! converts into each of their error types ([`ProtoError`](crate::ProtoError),
//! [`ReconError`](crate::recon::ReconError), [`DmError`](crate::dm::DmError)) where those are
//! defined. Reads never panic on hostile input; counts read from the wire are checked against
//! their limits by the caller *before* anything is allocated for them.

use std::fmt;

/// Why bytes could not be read, independent of what they were meant to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodingError {
    /// The bytes ended before the value did.
    UnexpectedEnd,
    /// Bytes were left over after a complete value ([`Reader::finish`]).
    TrailingBytes,
    /// A string was not valid UTF-8.
    InvalidUtf8,
}

impl CodingError {
    /// Short description, as carried by the `Malformed` variants of the crate's errors.
    pub fn as_str(self) -> &'static str {
        match self {
            CodingError::UnexpectedEnd => "truncated",
            CodingError::TrailingBytes => "trailing bytes",
            CodingError::InvalidUtf8 => "invalid UTF-8",
        }
    }
}

impl fmt::Display for CodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for CodingError {}

/// A value with a binary form written to a [`Writer`].
pub trait Encode {
    /// Appends the value's bytes to `w`.
    fn encode(&self, w: &mut Writer);
}

/// A value read back from its binary form.
pub trait Decode: Sized {
    /// What can be wrong beyond running out of bytes.
    type Error: From<CodingError>;
    /// Reads one value from `r`, leaving `r` just past it.
    fn decode(r: &mut Reader<'_>) -> Result<Self, Self::Error>;
}

/// The bytes of `value`, with room reserved for `capacity` bytes.
pub fn to_vec<T: Encode + ?Sized>(value: &T, capacity: usize) -> Vec<u8> {
    let mut w = Writer::with_capacity(capacity);
    value.encode(&mut w);
    w.into_vec()
}

/// Decodes exactly one value from `buf`: trailing bytes are an error.
pub fn from_slice<T: Decode>(buf: &[u8]) -> Result<T, T::Error> {
    let mut r = Reader::new(buf);
    let v = T::decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

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
    /// u128, big-endian.
    pub fn u128(&mut self, v: u128) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// String with a one-byte length; longer strings are cut to 255 bytes (callers keep
    /// within the limit, so this never happens to valid data).
    pub fn str8(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(255)];
        self.u8(b.len() as u8);
        self.bytes(b);
    }
    /// String with a two-byte length; longer strings are cut to 65,535 bytes.
    pub fn str16(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(65535)];
        self.u16(b.len() as u16);
        self.bytes(b);
    }
    /// Bytes with a two-byte length; longer input is cut to 65,535 bytes.
    pub fn bytes16(&mut self, b: &[u8]) {
        let b = &b[..b.len().min(usize::from(u16::MAX))];
        self.u16(b.len() as u16);
        self.bytes(b);
    }
    /// Any [`Encode`] value.
    pub fn put<T: Encode + ?Sized>(&mut self, v: &T) {
        v.encode(self);
    }
    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// True when nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
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
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], CodingError> {
        if self.buf.len() < n {
            return Err(CodingError::UnexpectedEnd);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], CodingError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, CodingError> {
        Ok(u8::from_be_bytes(self.array()?))
    }
    /// u16, big-endian.
    pub fn u16(&mut self) -> Result<u16, CodingError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    /// u32, big-endian.
    pub fn u32(&mut self) -> Result<u32, CodingError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    /// u64, big-endian.
    pub fn u64(&mut self) -> Result<u64, CodingError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// u128, big-endian.
    pub fn u128(&mut self) -> Result<u128, CodingError> {
        Ok(u128::from_be_bytes(self.array()?))
    }
    /// Bytes with a two-byte length.
    pub fn bytes16(&mut self) -> Result<&'a [u8], CodingError> {
        let n = usize::from(self.u16()?);
        self.bytes(n)
    }
    /// UTF-8 string with a one-byte length.
    pub fn str8(&mut self) -> Result<String, CodingError> {
        let n = usize::from(self.u8()?);
        utf8(self.bytes(n)?)
    }
    /// UTF-8 string with a two-byte length.
    pub fn str16(&mut self) -> Result<String, CodingError> {
        utf8(self.bytes16()?)
    }
    /// Any [`Decode`] value.
    pub fn get<T: Decode>(&mut self) -> Result<T, T::Error> {
        T::decode(self)
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
    /// Fails if bytes are left over.
    pub fn finish(&self) -> Result<(), CodingError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(CodingError::TrailingBytes)
        }
    }
}

fn utf8(b: &[u8]) -> Result<String, CodingError> {
    String::from_utf8(b.to_vec()).map_err(|_| CodingError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_roundtrip_big_endian() {
        let mut w = Writer::default();
        w.u8(1);
        w.u16(0x0203);
        w.u32(0x0405_0607);
        w.u64(0x0809_0a0b_0c0d_0e0f);
        w.u128(1 << 120);
        w.str8("héllo");
        w.str16("");
        w.bytes16(&[9, 9]);
        w.bytes(&[7; 3]);
        let b = w.into_vec();
        assert_eq!(
            &b[..15],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
        let mut r = Reader::new(&b);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.u64(), Ok(0x0809_0a0b_0c0d_0e0f));
        assert_eq!(r.u128(), Ok(1 << 120));
        assert_eq!(r.str8().as_deref(), Ok("héllo"));
        assert_eq!(r.str16().as_deref(), Ok(""));
        assert_eq!(r.bytes16(), Ok(&[9u8, 9][..]));
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.finish(), Err(CodingError::TrailingBytes));
        assert_eq!(r.array::<3>(), Ok([7; 3]));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(r.u8(), Err(CodingError::UnexpectedEnd));
    }

    #[test]
    fn short_input_and_bad_utf8_are_errors() {
        assert_eq!(Reader::new(&[0; 7]).u64(), Err(CodingError::UnexpectedEnd));
        assert_eq!(
            Reader::new(&[0, 5, 1]).str16(),
            Err(CodingError::UnexpectedEnd)
        );
        assert_eq!(
            Reader::new(&[1, 0xff]).str8(),
            Err(CodingError::InvalidUtf8)
        );
        // A failed read consumes nothing.
        let mut r = Reader::new(&[1, 2, 3]);
        assert!(r.array::<4>().is_err());
        assert_eq!(r.remaining(), 3);
    }

    #[test]
    fn over_long_strings_are_cut_to_their_length_field() {
        let mut w = Writer::default();
        w.str8(&"x".repeat(300));
        let b = w.into_vec();
        assert_eq!(b.len(), 256);
        assert_eq!(b[0], 255);
    }

    struct Pair(u8, u16);
    impl Encode for Pair {
        fn encode(&self, w: &mut Writer) {
            w.u8(self.0);
            w.u16(self.1);
        }
    }
    impl Decode for Pair {
        type Error = CodingError;
        fn decode(r: &mut Reader<'_>) -> Result<Self, CodingError> {
            Ok(Pair(r.u8()?, r.u16()?))
        }
    }

    #[test]
    fn traits_and_whole_buffer_helpers() {
        let b = to_vec(&Pair(1, 2), 3);
        assert_eq!(b, [1, 0, 2]);
        let p: Pair = from_slice(&b).unwrap();
        assert_eq!((p.0, p.1), (1, 2));
        assert!(from_slice::<Pair>(&[1, 0, 2, 0]).is_err());
        assert!(from_slice::<Pair>(&[1, 0]).is_err());
        let mut w = Writer::default();
        w.put(&Pair(3, 4));
        assert_eq!(w.len(), 3);
        let mut r = Reader::new(&[3, 0, 4]);
        assert!(r.get::<Pair>().is_ok());
    }
}
