//! Little-endian field access shared by the protocol modules, and the one
//! error type of this crate.
//!
//! Readers return `None` past the end of the bytes instead of panicking;
//! the [`Writer`] records a write that does not fit and fails at
//! [`Writer::finish`]. Neither has a panic path: no slice indexing, no
//! `copy_from_slice` (whose length-mismatch panic objtool on 6.12 does not
//! know to be `noreturn`), no unchecked arithmetic.

/// Why bytes are not a valid message, or why a message cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the message, or the field being read, needs.
    TooShort {
        /// Bytes needed.
        need: usize,
        /// Bytes there are.
        len: usize,
    },
    /// More bytes than the protocol allows for this message.
    TooLong {
        /// The most the protocol allows.
        max: usize,
        /// Bytes there are (or that a length field claims).
        len: usize,
    },
    /// A message type this crate does not know.
    UnknownType(u32),
    /// A message type the sender named in the parse call never sends.
    WrongSender(u32),
    /// A known message that the receiver's state does not allow now (an
    /// input report before the device info, a second device info).
    Unexpected(u32),
    /// A field holds a value the protocol does not allow; the C name of the
    /// field.
    BadField(&'static str),
    /// The output buffer is too small for the message being built.
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes there are.
        len: usize,
    },
}

/// Shorthand for this crate's results.
pub type Result<T> = core::result::Result<T, Error>;

/// Copies the common prefix of `src` into `dst`; no length-mismatch panic.
pub fn copy(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    // One memcpy: frames go through here whole (a byte loop costs several
    // times as much under an emulated CPU).
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
}

/// `len` bytes at `at`, or `None` if they are not all there.
pub fn slice_at(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}

/// An array of `N` bytes at `at`.
pub fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    slice_at(b, at, N)?.try_into().ok()
}

/// The byte at `at`.
pub fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

/// The little-endian `u16` at `at`.
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_le_bytes)
}

/// The little-endian `u32` at `at`.
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_le_bytes)
}

/// The little-endian `u64` at `at`.
pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    bytes_at(b, at).map(u64::from_le_bytes)
}

/// A reader over one message that turns a missing field into
/// [`Error::TooShort`] naming the length the read needed.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `b`.
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b }
    }

    fn short(&self, at: usize, n: usize) -> Error {
        Error::TooShort {
            need: at.saturating_add(n),
            len: self.b.len(),
        }
    }

    /// The byte at `at`.
    pub fn u8(&self, at: usize) -> Result<u8> {
        u8_at(self.b, at).ok_or(self.short(at, 1))
    }

    /// The `u16` at `at`.
    pub fn u16(&self, at: usize) -> Result<u16> {
        u16_at(self.b, at).ok_or(self.short(at, 2))
    }

    /// The `u32` at `at`.
    pub fn u32(&self, at: usize) -> Result<u32> {
        u32_at(self.b, at).ok_or(self.short(at, 4))
    }

    /// The `u64` at `at`.
    pub fn u64(&self, at: usize) -> Result<u64> {
        u64_at(self.b, at).ok_or(self.short(at, 8))
    }

    /// `N` bytes at `at`.
    pub fn array<const N: usize>(&self, at: usize) -> Result<[u8; N]> {
        bytes_at(self.b, at).ok_or(self.short(at, N))
    }

    /// `len` bytes at `at`, borrowed.
    pub fn slice(&self, at: usize, len: usize) -> Result<&'a [u8]> {
        slice_at(self.b, at, len).ok_or(self.short(at, len))
    }
}

/// Fails with [`Error::TooShort`] unless `b` has at least `need` bytes.
pub fn need(b: &[u8], need: usize) -> Result<()> {
    if b.len() < need {
        Err(Error::TooShort { need, len: b.len() })
    } else {
        Ok(())
    }
}

/// Writes little-endian fields into a caller's buffer. A write past the end
/// is dropped and remembered; [`Writer::finish`] then fails.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    need: usize,
}

impl<'a> Writer<'a> {
    /// Writes into `buf`, zeroing the first `len` bytes (the message's
    /// fixed part), so that reserved fields and padding go out as zero.
    pub fn new(buf: &'a mut [u8], len: usize) -> Writer<'a> {
        for b in buf.iter_mut().take(len) {
            *b = 0;
        }
        Writer { buf, need: len }
    }

    /// Copies `v` to `at`.
    pub fn bytes(&mut self, at: usize, v: &[u8]) {
        let Some(end) = at.checked_add(v.len()) else {
            self.need = usize::MAX;
            return;
        };
        self.need = self.need.max(end);
        if let Some(dst) = self.buf.get_mut(at..end) {
            copy(dst, v);
        }
    }

    /// Writes `v` at `at`.
    pub fn u8(&mut self, at: usize, v: u8) {
        self.bytes(at, &[v]);
    }

    /// Writes `v` at `at`, little-endian.
    pub fn u16(&mut self, at: usize, v: u16) {
        self.bytes(at, &v.to_le_bytes());
    }

    /// Writes `v` at `at`, little-endian.
    pub fn u32(&mut self, at: usize, v: u32) {
        self.bytes(at, &v.to_le_bytes());
    }

    /// Writes `v` at `at`, little-endian.
    pub fn u64(&mut self, at: usize, v: u64) {
        self.bytes(at, &v.to_le_bytes());
    }

    /// Zeroes `len` bytes at `at`.
    pub fn zero(&mut self, at: usize, len: usize) {
        let Some(end) = at.checked_add(len) else {
            self.need = usize::MAX;
            return;
        };
        self.need = self.need.max(end);
        if let Some(dst) = self.buf.get_mut(at..end) {
            for b in dst {
                *b = 0;
            }
        }
    }

    /// The message length: the end of the furthest write, or the fixed
    /// length given to [`Writer::new`] if that is larger. Fails if any write
    /// did not fit.
    pub fn finish(self) -> Result<usize> {
        if self.need > self.buf.len() {
            Err(Error::BufferTooSmall {
                need: self.need,
                len: self.buf.len(),
            })
        } else {
            Ok(self.need)
        }
    }
}

/// `a + b`, or [`Error::BadField`] naming `field` on overflow.
pub fn add(a: usize, b: usize, field: &'static str) -> Result<usize> {
    a.checked_add(b).ok_or(Error::BadField(field))
}

/// A `u32` wire value as `usize`, which holds it on every target this crate
/// builds for (the kernel module is 64-bit only).
pub fn to_usize(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A length as a `u32` wire value, or [`Error::BadField`] naming `field`.
pub fn to_u32(v: usize, field: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::BadField(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_reports_writes_that_do_not_fit() {
        let mut buf = [0xffu8; 6];
        let mut w = Writer::new(&mut buf, 4);
        w.u32(0, 0x0403_0201);
        w.u16(4, 0x0605);
        assert_eq!(w.finish(), Ok(6));
        assert_eq!(buf, [1, 2, 3, 4, 5, 6]);
        let mut w = Writer::new(&mut buf, 4);
        w.u32(4, 1);
        assert_eq!(w.finish(), Err(Error::BufferTooSmall { need: 8, len: 6 }));
        let mut w = Writer::new(&mut buf, 8);
        w.u8(0, 1);
        assert_eq!(w.finish(), Err(Error::BufferTooSmall { need: 8, len: 6 }));
        let mut w = Writer::new(&mut buf, 0);
        w.bytes(usize::MAX, &[1]);
        assert!(w.finish().is_err());
    }

    #[test]
    fn readers_stop_at_the_end() {
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(u32_at(&b, 1), Some(0x0504_0302));
        assert_eq!(u32_at(&b, 2), None);
        assert_eq!(u32_at(&b, usize::MAX), None);
        let r = Reader::new(&b);
        assert_eq!(r.u64(0), Err(Error::TooShort { need: 8, len: 5 }));
        assert_eq!(r.slice(3, 2), Ok(&b[3..]));
        assert!(r.slice(usize::MAX, 2).is_err());
    }
}
