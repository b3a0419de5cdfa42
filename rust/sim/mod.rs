// SPDX-License-Identifier: GPL-2.0
//! Test builds only: the simulated hypervisor's kernel side
//! (`rust/sim/sim.c`): its module parameters, the IPI that stands for
//! Hyper-V's interrupt, and the host's mappings of guest pages.

use crate::rust::base::memory::Page;
use crate::rust::bindings;
use crate::vmbus_core::shared::SharedMem;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::str::CStr;

/// Whether `simulate=1` was given.
pub(crate) fn enabled() -> bool {
    // SAFETY: reads a module parameter.
    unsafe { bindings::rustic_sim_enabled() }
}

/// The `sim_versions` parameter.
pub(crate) fn versions_param() -> &'static CStr {
    // SAFETY: C returns a NUL-terminated parameter string (or a
    // literal), which lives as long as the module; parameters are
    // read-only (0444).
    unsafe { CStr::from_char_ptr(bindings::rustic_sim_versions()) }
}

/// The `sim_devices` parameter.
pub(crate) fn devices_param() -> &'static CStr {
    // SAFETY: as for `versions_param`.
    unsafe { CStr::from_char_ptr(bindings::rustic_sim_devices()) }
}

/// The `sim_post_busy` parameter.
pub(crate) fn post_busy_param() -> u32 {
    // SAFETY: reads a module parameter.
    unsafe { bindings::rustic_sim_post_busy() }
}

/// The `sim_stale_message` parameter.
pub(crate) fn stale_message_param() -> bool {
    // SAFETY: reads a module parameter.
    unsafe { bindings::rustic_sim_stale_message() }
}

/// The `sim_channel_timeout_ms` parameter (0: not given).
pub(crate) fn channel_timeout_param() -> u32 {
    // SAFETY: reads a module parameter.
    unsafe { bindings::rustic_sim_channel_timeout_ms() }
}

/// Interrupts `cpu` asynchronously; coalesced while one is queued.
pub(crate) fn raise(cpu: u32) -> Result {
    // SAFETY: no preconditions; C checks `cpu`.
    kernel::error::to_result(unsafe { bindings::rustic_sim_raise(cpu) })
}

/// The host's mapping of guest pages named by frame number.
///
/// # Invariants
///
/// `ptr` is `len` bytes from `rustic_sim_map`, unmapped only on drop,
/// reached only through [`SharedMem`].
pub(crate) struct Mapping {
    ptr: core::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: plain memory reached only through `SharedMem`.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `pfns` in order into one range.
    pub(crate) fn new(pfns: &[u64]) -> Result<Self> {
        let count = u32::try_from(pfns.len()).map_err(|_| EINVAL)?;
        // SAFETY: `pfns` is valid for `count` entries; C checks each.
        let ptr = unsafe { bindings::rustic_sim_map(pfns.as_ptr(), count) };
        let ptr = core::ptr::NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: a fresh mapping of `count` pages.
        Ok(Mapping {
            ptr,
            len: pfns.len() * Page::SIZE,
        })
    }

    /// Bytes mapped.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The mapped pages, as shared memory not tied to a borrow.
    ///
    /// # Safety
    ///
    /// The caller must not use the handle after `self` is dropped.
    pub(crate) unsafe fn shared_static(&self) -> SharedMem<'static> {
        // SAFETY: valid for `len` bytes for as long as the caller
        // promises; reached only through `SharedMem`.
        unsafe { SharedMem::from_raw(self.ptr.as_ptr(), self.len) }
            .unwrap_or_else(|_| SharedMem::from_slice(&mut []))
    }
}

/// Pages the guest freed while the host still mapped them (found as the
/// host unmaps them: it holds a reference to each mapped page, so such a
/// page is not reused meanwhile). Any is a guest bug.
pub(crate) static FREED_WHILE_MAPPED: AtomicU64 = AtomicU64::new(0);

impl Drop for Mapping {
    fn drop(&mut self) {
        let pages = (self.len / Page::SIZE) as u32;
        // SAFETY: from `rustic_sim_map` with `pages` pages (invariant);
        // unmapped once.
        let freed = unsafe { bindings::rustic_sim_unmap(self.ptr.as_ptr().cast(), pages) };
        if freed > 0 {
            FREED_WHILE_MAPPED.fetch_add(u64::from(freed), Ordering::Relaxed);
            pr_err!("sim: the guest freed {} of {} pages while the host mapped them\n", freed, pages);
        }
    }
}

/// Copies `dst.len()` bytes at `offset` of the guest pages `pfns` (in
/// order) into `dst`, as the host reads a GPA-direct packet's pages:
/// no mapping is made. `EINVAL` if they run past `pfns` or a frame
/// number is not memory.
pub(crate) fn read_pages(pfns: &[u64], offset: u64, dst: &mut [u8]) -> Result {
    let count = u32::try_from(pfns.len()).map_err(|_| EINVAL)?;
    let len = u32::try_from(dst.len()).map_err(|_| EINVAL)?;
    // SAFETY: `pfns` holds `count` entries; `dst` has `len` writable
    // bytes; C checks every frame number and writes no more.
    kernel::error::to_result(unsafe {
        bindings::rustic_sim_read_pages(pfns.as_ptr(), count, offset, dst.as_mut_ptr().cast(), len)
    })
}

/// Whether no simulated interrupt is queued or running.
pub(crate) fn irq_idle() -> bool {
    // SAFETY: reads an atomic.
    unsafe { bindings::rustic_sim_irq_idle() }
}

