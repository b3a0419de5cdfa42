// SPDX-License-Identifier: GPL-2.0
//! The real Hyper-V backend's C side (`rust/vmbus/hyperv.c`). Built
//! always; never run by the project's tests (no Hyper-V here).

use crate::rust::bindings;
use crate::vmbus_core::shared::SharedMem;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;

/// Whether this is a Hyper-V guest the backend supports.
pub(crate) fn available() -> bool {
    // SAFETY: reads the kernel's Hyper-V state; no preconditions.
    unsafe { bindings::rustic_hvr_available() }
}

/// Whether the firmware describes an ACPI VMBus device.
pub(crate) fn acpi_present() -> bool {
    // SAFETY: an ACPI namespace lookup; no preconditions.
    unsafe { bindings::rustic_hvr_acpi_present() }
}

/// CPU 0's SynIC, set up for VMBus: stopped on [`Synic::stop`] or drop.
///
/// # Invariants
///
/// `page` is the message page `rustic_hvr_start` set up, 4 KiB, valid
/// until `drop` frees it; only accessed through [`SharedMem`].
pub(crate) struct Synic {
    page: NonNull<u8>,
    stopped: AtomicBool,
}

// SAFETY: the page is reached only through `SharedMem`; the C calls
// may be made from any CPU.
unsafe impl Send for Synic {}
// SAFETY: as for `Send`.
unsafe impl Sync for Synic {}

impl Synic {
    /// Binds the ACPI VMBus device and enables the SynIC message page,
    /// SINT2 and the VMBus handler. `ENODEV`: no ACPI VMBus device bound.
    pub(crate) fn start() -> Result<Synic> {
        // SAFETY: `available()` held; only one backend exists at a time.
        kernel::error::to_result(unsafe { bindings::rustic_hvr_start() })?;
        // SAFETY: started just now.
        let page = unsafe { bindings::rustic_hvr_message_page() };
        let Some(page) = NonNull::new(page.cast::<u8>()) else {
            // SAFETY: started above; undo it.
            unsafe {
                bindings::rustic_hvr_stop();
                bindings::rustic_hvr_free();
            }
            return Err(ENOMEM);
        };
        // INVARIANT: the page of the start above.
        Ok(Synic {
            page,
            stopped: AtomicBool::new(false),
        })
    }

    /// The message page.
    pub(crate) fn message_page(&self) -> SharedMem<'_> {
        // SAFETY: a page-aligned 4 KiB page valid while `self` lives,
        // reached only through `SharedMem` (invariant).
        unsafe { SharedMem::from_raw(self.page.as_ptr(), 4096) }
            .unwrap_or_else(|_| SharedMem::from_slice(&mut []))
    }

    /// The event flags page of `cpu`.
    pub(crate) fn event_page(&self, cpu: u32) -> Option<SharedMem<'_>> {
        // SAFETY: started (invariant): the pages live until `drop`; C
        // checks `cpu`.
        let page = unsafe { bindings::rustic_hvr_event_flags(cpu) };
        let page = NonNull::new(page.cast::<u8>())?;
        // SAFETY: a 4 KiB page valid while `self` lives, reached only
        // through `SharedMem`.
        unsafe { SharedMem::from_raw(page.as_ptr(), 4096) }.ok()
    }

    /// The message page of `cpu` (every possible CPU has one while the
    /// backend runs).
    pub(crate) fn message_page_of(&self, cpu: u32) -> Option<SharedMem<'_>> {
        // SAFETY: started (invariant): the pages live until `drop`; C
        // checks `cpu`.
        let page = unsafe { bindings::rustic_hvr_message_page_of(cpu) };
        let page = NonNull::new(page.cast::<u8>())?;
        // SAFETY: a 4 KiB page valid while `self` lives, reached only
        // through `SharedMem`.
        unsafe { SharedMem::from_raw(page.as_ptr(), 4096) }.ok()
    }

    /// Writes the EOM MSR on this CPU; any context.
    pub(crate) fn eom_local(&self) {
        // SAFETY: an MSR write on this CPU; no preconditions.
        unsafe { bindings::rustic_hvr_eom_here() }
    }

    /// Writes the EOM MSR on CPU 0.
    pub(crate) fn eom(&self) {
        // SAFETY: process context (the message work).
        unsafe { bindings::rustic_hvr_eom() }
    }

    /// HvPostMessage.
    pub(crate) fn post_message(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result {
        let len = u32::try_from(payload.len()).map_err(|_| EINVAL)?;
        // SAFETY: `payload` is valid for `len` bytes; C copies it.
        kernel::error::to_result(unsafe {
            bindings::rustic_hvr_post_message(connection_id, message_type, payload.as_ptr(), len)
        })
    }

    /// HvSignalEvent.
    pub(crate) fn signal_event(&self, connection_id: u32) -> Result {
        // SAFETY: a fast hypercall with a plain value.
        kernel::error::to_result(unsafe { bindings::rustic_hvr_signal_event(connection_id) })
    }

    /// The VP index of `cpu`.
    /// One more (`targeted`) or one fewer open channel targets `cpu`: the
    /// CPU may go offline only while none does.
    pub(crate) fn count_channel(&self, cpu: u32, targeted: bool) {
        // SAFETY: C checks `cpu`; the counts are atomic.
        unsafe { bindings::rustic_hvr_cpu_channels(cpu, if targeted { 1 } else { -1 }) }
    }

    pub(crate) fn vp_index(&self, cpu: u32) -> u32 {
        // SAFETY: C checks `cpu`.
        unsafe { bindings::rustic_hvr_vp_index(cpu) }
    }

    /// Masks SINT2 and removes the handler (once).
    pub(crate) fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            // SAFETY: started (invariant), stopped only once.
            unsafe { bindings::rustic_hvr_stop() }
        }
    }
}

impl Drop for Synic {
    fn drop(&mut self) {
        self.stop();
        // SAFETY: stopped; no `SharedMem` outlives `self`.
        unsafe { bindings::rustic_hvr_free() }
    }
}
