//! The one way into memory shared with the host.
//!
//! The host may change shared memory at any moment, so no Rust reference
//! (`&T`, `&[u8]`) ever points into it: the compiler would be entitled to
//! assume such memory is stable. [`SharedMem`] instead hands out copies:
//! 32-bit fields are atomics with an explicit [`Ordering`], bulk data is
//! copied in or out with one bounds check per call. Callers copy, then
//! validate, and read each host field once.
//!
//! This is the only module of the core allowed `unsafe`.
#![allow(unsafe_code)]

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

/// An access fell outside the shared region, or a field was misaligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds;

/// A region of memory shared with an untrusted peer.
///
/// Cheap to copy: a copy is another handle to the same memory, which is how
/// the guest and a simulated host (or two test threads) share one ring.
///
/// # Invariants
///
/// `base` is 8-byte aligned and `base..base + len` is valid for reads and
/// writes for `'a`. Nobody holds a Rust reference into that range while a
/// `SharedMem` over it exists; every access goes through atomics, volatile
/// operations or the bulk copies below.
#[derive(Clone, Copy)]
pub struct SharedMem<'a> {
    base: NonNull<u8>,
    len: usize,
    _memory: PhantomData<&'a [AtomicU32]>,
}

// SAFETY: a `SharedMem` is a pointer and a length. Memory reached through it
// is only accessed with atomics or with copies whose races the protocol above
// it tolerates (see `read_bytes`), so handles may move between threads.
unsafe impl Send for SharedMem<'_> {}
// SAFETY: as for `Send`; no method hands out a reference into the region.
unsafe impl Sync for SharedMem<'_> {}

impl<'a> SharedMem<'a> {
    /// Wraps raw shared memory (the kernel maps ring pages and calls this).
    ///
    /// # Safety
    ///
    /// `base` must be non-null, 8-byte aligned and valid for reads and writes
    /// of `len` bytes for the whole of `'a`, and for that time nothing may
    /// access the range through Rust references; other agents (the host,
    /// other handles) may access it concurrently with atomic or plain stores.
    pub unsafe fn from_raw(base: *mut u8, len: usize) -> Result<Self, OutOfBounds> {
        let base = NonNull::new(base).ok_or(OutOfBounds)?;
        if base.as_ptr() as usize % 8 != 0 {
            return Err(OutOfBounds);
        }
        // INVARIANT: alignment checked above; validity is the caller's promise.
        Ok(SharedMem {
            base,
            len,
            _memory: PhantomData,
        })
    }

    /// Wraps a buffer the caller owns, for host tests, fuzzing and
    /// benchmarks. `u64` storage gives the 8-byte alignment rings need.
    ///
    /// Handles are `Copy` and `Send`, so that a producer and a consumer can
    /// share a ring across threads. Bulk copies are plain (not atomic)
    /// copies, race-free only while the ring protocol's ownership holds: one
    /// writer and one reader per ring. Two writers (or two readers) of one
    /// ring on different threads would race; nothing in the type stops that.
    /// (OpenVMM avoids it with byte-wise atomic copies, at a throughput cost.)
    pub fn from_slice(buf: &'a mut [u64]) -> Self {
        let len = core::mem::size_of_val(buf);
        let base = NonNull::from(buf).cast::<u8>();
        // INVARIANT: the exclusive borrow is held for `'a`, so no references
        // into the buffer exist while handles do; `u64` storage is 8-aligned.
        SharedMem {
            base,
            len,
            _memory: PhantomData,
        }
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A handle to `len` bytes starting at `offset`, which must be 8-aligned.
    pub fn subrange(&self, offset: usize, len: usize) -> Result<SharedMem<'a>, OutOfBounds> {
        let end = offset.checked_add(len).ok_or(OutOfBounds)?;
        if end > self.len || offset % 8 != 0 {
            return Err(OutOfBounds);
        }
        // SAFETY: `offset <= self.len`, so the result stays inside (or one
        // past the end of) the region the invariant says is valid, and an
        // in-bounds offset from a non-null pointer is non-null.
        let base = unsafe { NonNull::new_unchecked(self.base.as_ptr().add(offset)) };
        // INVARIANT: a sub-range of a valid region, 8-aligned because both
        // the base and `offset` are.
        Ok(SharedMem {
            base,
            len,
            _memory: PhantomData,
        })
    }

    /// The address of the `len` bytes at `offset`, bounds-checked, for code
    /// outside Rust that copies them out once (the kernel's copy of a
    /// received frame into an skb): the one way around [`read_bytes`]. It
    /// stays valid for `'a`; never make a reference from it.
    ///
    /// [`read_bytes`]: SharedMem::read_bytes
    pub fn raw_range(&self, offset: usize, len: usize) -> Result<*const u8, OutOfBounds> {
        let end = offset.checked_add(len).ok_or(OutOfBounds)?;
        if end > self.len {
            return Err(OutOfBounds);
        }
        Ok(self.base.as_ptr().wrapping_add(offset).cast_const())
    }

    /// Pointer to a naturally aligned `u32` at `offset`, bounds-checked.
    #[inline(always)]
    fn u32_at(&self, offset: usize) -> Result<&'a AtomicU32, OutOfBounds> {
        let end = offset.checked_add(4).ok_or(OutOfBounds)?;
        if end > self.len || offset % 4 != 0 {
            return Err(OutOfBounds);
        }
        // SAFETY: in bounds (checked above), 4-aligned (base is 8-aligned,
        // offset 4-aligned) and valid for `'a` by the invariant. An
        // `AtomicU32` reference is the sanctioned way to share a word with
        // other agents: every access through it is atomic, so a concurrent
        // host write is not a data race on our side.
        Ok(unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast::<u32>()) })
    }

    /// Atomically loads the `u32` at `offset` (4-aligned).
    #[inline]
    pub fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, OutOfBounds> {
        Ok(u32::from_le(self.u32_at(offset)?.load(order)))
    }

    /// Atomically stores `value` at `offset` (4-aligned).
    #[inline]
    pub fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), OutOfBounds> {
        self.u32_at(offset)?.store(value.to_le(), order);
        Ok(())
    }

    /// Atomically replaces the `u32` at `offset` with `value`, returning the
    /// old value (test-and-clear of a word of event flags).
    #[inline]
    pub fn swap_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<u32, OutOfBounds> {
        Ok(u32::from_le(self.u32_at(offset)?.swap(value.to_le(), order)))
    }

    /// Atomically ORs `bits` into the `u32` at `offset`, returning the old
    /// value (setting an event flag).
    #[inline]
    pub fn fetch_or_u32(&self, offset: usize, bits: u32, order: Ordering) -> Result<u32, OutOfBounds> {
        Ok(u32::from_le(self.u32_at(offset)?.fetch_or(bits.to_le(), order)))
    }

    #[inline(always)]
    fn check_range(&self, offset: usize, len: usize) -> Result<(), OutOfBounds> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(OutOfBounds),
        }
    }

    /// Copies `dst.len()` bytes starting at `offset` out of shared memory.
    ///
    /// The ring protocol gives the reader exclusive use of the bytes it
    /// copies (the writer publishes them before the index that makes them
    /// visible and does not touch them again until the read index moves on),
    /// so a well-behaved peer never writes them concurrently. A malicious one
    /// can only change which bytes land in `dst`: the caller validates the
    /// copy, never the shared original, exactly as with the C drivers'
    /// `memcpy` out of the ring.
    #[inline]
    pub fn read_bytes(&self, offset: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check_range(offset, dst.len())?;
        // SAFETY: the source range is in bounds (checked above) and valid by
        // the invariant; `dst` is a distinct local buffer, so they cannot
        // overlap; byte copies have no alignment requirement.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
        Ok(())
    }

    /// Copies `src` into shared memory at `offset`.
    ///
    /// As for [`SharedMem::read_bytes`], the protocol reserves the target
    /// range for the writer until it publishes the index covering it.
    #[inline]
    pub fn write_bytes(&self, offset: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        self.check_range(offset, src.len())?;
        // SAFETY: the target range is in bounds (checked above) and valid for
        // writes by the invariant; `src` is caller memory, not shared memory
        // handed out by us, so the ranges do not overlap.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(offset), src.len());
        }
        Ok(())
    }

    /// Pointer to a naturally aligned `u64` at `offset`, bounds-checked.
    #[inline(always)]
    fn u64_ptr(&self, offset: usize) -> Result<*mut u64, OutOfBounds> {
        self.check_range(offset, 8)?;
        if offset % 8 != 0 {
            return Err(OutOfBounds);
        }
        // SAFETY: in bounds (checked above), so the offset stays inside the
        // allocation the invariant describes.
        Ok(unsafe { self.base.as_ptr().add(offset) }.cast::<u64>())
    }

    /// Reads the little-endian `u64` at `offset` (8-aligned) with one
    /// volatile load: the value is fetched exactly once, so a peer changing
    /// it cannot make two uses of it disagree. For descriptors and trailers.
    #[inline(always)]
    pub fn read_u64(&self, offset: usize) -> Result<u64, OutOfBounds> {
        let p = self.u64_ptr(offset)?;
        // SAFETY: `p` is in bounds, 8-aligned (base and offset are) and valid
        // for reads by the invariant. A racing plain store by the peer can
        // only change the value we get, which the caller validates.
        Ok(u64::from_le(unsafe { p.read_volatile() }))
    }

    /// Writes `value` little-endian at `offset` (8-aligned) with one
    /// volatile store.
    #[inline(always)]
    pub fn write_u64(&self, offset: usize, value: u64) -> Result<(), OutOfBounds> {
        let p = self.u64_ptr(offset)?;
        // SAFETY: as in `read_u64`, and valid for writes by the invariant.
        unsafe { p.write_volatile(value.to_le()) };
        Ok(())
    }

    /// Sets `len` bytes starting at `offset` to zero.
    pub fn zero(&self, offset: usize, len: usize) -> Result<(), OutOfBounds> {
        self.check_range(offset, len)?;
        // SAFETY: in bounds (checked above) and valid for writes by the
        // invariant.
        unsafe { core::ptr::write_bytes(self.base.as_ptr().add(offset), 0, len) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_bytes_round_trip() {
        let mut buf = [0u64; 4];
        let mem = SharedMem::from_slice(&mut buf);
        assert_eq!(mem.len(), 32);
        mem.store_u32(4, 0xdead_beef, Ordering::Release).unwrap();
        assert_eq!(mem.load_u32(4, Ordering::Acquire), Ok(0xdead_beef));
        mem.write_bytes(30, &[1, 2]).unwrap();
        let mut two = [0u8; 2];
        mem.read_bytes(30, &mut two).unwrap();
        assert_eq!(two, [1, 2]);
        let mut word = [0u8; 4];
        mem.read_bytes(4, &mut word).unwrap();
        assert_eq!(u32::from_le_bytes(word), 0xdead_beef);
    }

    #[test]
    fn swap_and_fetch_or_are_word_atomics() {
        let mut buf = [0u64; 1];
        let mem = SharedMem::from_slice(&mut buf);
        assert_eq!(mem.fetch_or_u32(4, 0b101, Ordering::SeqCst), Ok(0));
        assert_eq!(mem.fetch_or_u32(4, 0b010, Ordering::SeqCst), Ok(0b101));
        assert_eq!(mem.swap_u32(4, 0, Ordering::SeqCst), Ok(0b111));
        assert_eq!(mem.load_u32(4, Ordering::SeqCst), Ok(0));
        assert_eq!(mem.swap_u32(6, 0, Ordering::SeqCst), Err(OutOfBounds));
        assert_eq!(mem.fetch_or_u32(8, 1, Ordering::SeqCst), Err(OutOfBounds));
    }

    #[test]
    fn every_access_is_bounds_checked() {
        let mut buf = [0u64; 2];
        let mem = SharedMem::from_slice(&mut buf);
        assert_eq!(mem.load_u32(13, Ordering::Relaxed), Err(OutOfBounds));
        assert_eq!(mem.load_u32(14, Ordering::Relaxed), Err(OutOfBounds));
        assert_eq!(mem.load_u32(16, Ordering::Relaxed), Err(OutOfBounds));
        assert_eq!(
            mem.load_u32(usize::MAX - 1, Ordering::Relaxed),
            Err(OutOfBounds)
        );
        assert_eq!(mem.store_u32(16, 0, Ordering::Relaxed), Err(OutOfBounds));
        assert_eq!(mem.read_bytes(15, &mut [0u8; 2]), Err(OutOfBounds));
        assert_eq!(mem.read_bytes(usize::MAX, &mut [0u8; 2]), Err(OutOfBounds));
        assert_eq!(mem.write_bytes(10, &[0u8; 7]), Err(OutOfBounds));
        assert_eq!(mem.raw_range(10, 7), Err(OutOfBounds));
        assert_eq!(mem.raw_range(usize::MAX, 2), Err(OutOfBounds));
        assert_eq!(mem.raw_range(16, 0).map(|p| p as usize - mem.base.as_ptr() as usize), Ok(16));
        assert_eq!(mem.raw_range(3, 13).map(|p| p as usize - mem.base.as_ptr() as usize), Ok(3));
        assert_eq!(mem.zero(8, 9), Err(OutOfBounds));
        assert_eq!(mem.read_u64(4), Err(OutOfBounds), "misaligned word");
        assert_eq!(mem.read_u64(16), Err(OutOfBounds));
        assert_eq!(mem.write_u64(12, 0), Err(OutOfBounds));
        mem.write_u64(8, 0x0102_0304_0506_0708).unwrap();
        assert_eq!(mem.read_u64(8), Ok(0x0102_0304_0506_0708));
        assert_eq!(mem.load_u32(8, Ordering::Relaxed), Ok(0x0506_0708));
        assert!(mem.subrange(8, 9).is_err());
        assert!(mem.subrange(4, 4).is_err(), "misaligned sub-range");
        let tail = mem.subrange(8, 8).unwrap();
        tail.store_u32(4, 7, Ordering::Relaxed).unwrap();
        assert_eq!(mem.load_u32(12, Ordering::Relaxed), Ok(7));
        assert_eq!(tail.load_u32(8, Ordering::Relaxed), Err(OutOfBounds));
    }
}
