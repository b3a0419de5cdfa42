// SPDX-License-Identifier: GPL-2.0
//! Memory shared with the host: zeroed page-aligned buffers and single
//! pages, reached only through [`SharedMem`].

use crate::rust::bindings;
use crate::vmbus_core::shared::SharedMem;
use core::ptr::NonNull;
use kernel::prelude::*;

/// Zeroed, page-aligned memory shared with the host: channel rings and
/// driver buffers described to the host by GPADLs.
///
/// # Invariants
///
/// `ptr` is `len` bytes from `rustic_buf_alloc`, freed only on drop, and
/// only ever accessed through [`SharedMem`].
pub(crate) struct Buffer {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: plain memory reached only through `SharedMem`.
unsafe impl Send for Buffer {}
// SAFETY: as for `Send`.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Allocates `len` bytes, a non-zero multiple of [`Page::SIZE`].
    pub(crate) fn new(len: usize) -> Result<Self> {
        if len == 0 || len % Page::SIZE != 0 {
            return Err(EINVAL);
        }
        // SAFETY: no preconditions; C bounds the size.
        let ptr = unsafe { bindings::rustic_buf_alloc(len as u64) };
        // INVARIANT: fresh memory of `len` bytes (or none).
        Ok(Buffer {
            ptr: NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?,
            len,
        })
    }

    /// Its size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Its pages.
    pub(crate) fn pages(&self) -> usize {
        self.len / Page::SIZE
    }

    /// The frame number of page `index` (`None` past the end).
    pub(crate) fn pfn(&self, index: usize) -> Option<u64> {
        let offset = index.checked_mul(Page::SIZE).filter(|&o| o < self.len)?;
        // SAFETY: `offset` lies inside the allocation (invariant).
        Some(unsafe { bindings::rustic_buf_pfn(self.ptr.as_ptr().cast(), offset as u64) })
    }

    /// Gives the memory up for good, because the host may still map it
    /// (its GPADL teardown was not confirmed): never freed, never reused,
    /// and not reported by kmemleak.
    pub(crate) fn leak(self, relid: u32) {
        pr_warn!("vmbus: relid {}: leaking {} bytes the host may still map\n", relid, self.len);
        // SAFETY: from `rustic_buf_alloc` (invariant); only marks it.
        unsafe { bindings::rustic_buf_leak(self.ptr.as_ptr().cast()) };
        core::mem::forget(self);
    }

    /// Copies `bytes` into the buffer at `offset`.
    pub(crate) fn write(&self, offset: usize, bytes: &[u8]) -> Result {
        // SAFETY: the handle is used only within this call, while `self`
        // lives.
        let mem = unsafe { self.shared_static() };
        mem.write_bytes(offset, bytes).map_err(|_| EINVAL)
    }

    /// Copies `dst.len()` bytes at `offset` out of the buffer (which the
    /// host may be writing: the copy is what gets checked).
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) -> Result {
        // SAFETY: the handle is used only within this call, while `self`
        // lives.
        let mem = unsafe { self.shared_static() };
        mem.read_bytes(offset, dst).map_err(|_| EINVAL)
    }

    /// The address of `len` bytes at `offset` ([`SharedMem::raw_range`]),
    /// for a copy made in C while `self` lives.
    pub(crate) fn raw_range(&self, offset: usize, len: usize) -> Result<*const u8> {
        // SAFETY: the handle is used only within this call, while `self`
        // lives; the address it gives is the caller's to use while `self`
        // does.
        let mem = unsafe { self.shared_static() };
        mem.raw_range(offset, len).map_err(|_| EINVAL)
    }

    /// The memory, as shared memory not tied to a borrow of `self`.
    ///
    /// # Safety
    ///
    /// The caller must not use the handle (or copies) after `self` is
    /// dropped; the memory stays put when `self` moves.
    pub(crate) unsafe fn shared_static(&self) -> SharedMem<'static> {
        // SAFETY: page-aligned and valid for `len` bytes for as long as the
        // caller promises to use it; reached only through `SharedMem`.
        unsafe { SharedMem::from_raw(self.ptr.as_ptr(), self.len) }
            .unwrap_or_else(|_| SharedMem::from_slice(&mut []))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: from `rustic_buf_alloc` (invariant); no handle outlives
        // `self`.
        unsafe { bindings::rustic_buf_free(self.ptr.as_ptr().cast()) }
    }
}

/// One zeroed 4 KiB page shared with the host (simulated or real).
///
/// # Invariants
///
/// `ptr` is a page from `rustic_page_alloc`, freed on drop, and only
/// ever accessed through [`SharedMem`].
pub(crate) struct Page {
    ptr: NonNull<u8>,
}

// SAFETY: the page is plain memory reached only through `SharedMem`,
// whose accesses are atomic or tolerated copies.
unsafe impl Send for Page {}
// SAFETY: as for `Send`.
unsafe impl Sync for Page {}

impl Page {
    /// The page size.
    pub(crate) const SIZE: usize = 4096;

    /// Allocates a zeroed page.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions.
        let ptr = unsafe { bindings::rustic_page_alloc() };
        // INVARIANT: a fresh page (or none).
        Ok(Page {
            ptr: NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?,
        })
    }

    /// The page's guest physical address.
    pub(crate) fn phys(&self) -> u64 {
        // SAFETY: a page from `rustic_page_alloc` (invariant).
        unsafe { bindings::rustic_virt_to_phys(self.ptr.as_ptr().cast()) }
    }

    /// The page, as shared memory.
    pub(crate) fn shared(&self) -> SharedMem<'_> {
        // SAFETY: a page is 8-aligned and valid for `SIZE` bytes while
        // `self` lives; nothing takes references into it (invariant).
        // A page-aligned pointer cannot fail the alignment check.
        unsafe { SharedMem::from_raw(self.ptr.as_ptr(), Self::SIZE) }
            .unwrap_or_else(|_| SharedMem::from_slice(&mut []))
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: allocated by `rustic_page_alloc` (invariant); no
        // handle outlives `self`.
        unsafe { bindings::rustic_page_free(self.ptr.as_ptr().cast()) }
    }
}
