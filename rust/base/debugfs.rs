// SPDX-License-Identifier: GPL-2.0
//! Test builds only: the debugfs control directory /sys/kernel/debug/hv_rustic/
//! (`rust/base/debugfs.c`) as a safe registration.

use crate::rust::bindings;
use core::marker::PhantomData;
use core::sync::atomic::AtomicU64;
use kernel::error::to_result;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::ForeignOwnable;

/// What handles the commands written to the control file.
pub(crate) trait ControlHandler: Send + Sync + 'static {
    /// Carries out one command (the bytes of one write); an error fails
    /// the write with that errno.
    fn command(&self, input: &[u8]) -> Result;
}

/// A registered control file in the debugfs directory; removed (waiting
/// for writers in progress) when dropped, before the handler's reference
/// is let go. The directory lives while any control file does.
///
/// # Invariants
///
/// `ctl` is the live file C created with `data`, which is
/// `Arc::<T>::into_foreign` of the handler; the directory exists while a
/// value of this type does.
pub(crate) struct Control<T: ControlHandler> {
    ctl: core::ptr::NonNull<bindings::rustic_ctl>,
    data: *const c_void,
    _handler: PhantomData<T>,
}

// SAFETY: `data` stands for an `Arc<T>` with `T: Send + Sync`.
unsafe impl<T: ControlHandler> Send for Control<T> {}
// SAFETY: `&Control` allows only adding counters, which C serialises.
unsafe impl<T: ControlHandler> Sync for Control<T> {}

impl<T: ControlHandler> Control<T> {
    /// Creates the write-only control file `name` (and the directory, if
    /// this is the first).
    pub(crate) fn new(name: &'static CStr, handler: Arc<T>) -> Result<Self> {
        let data = handler.into_foreign();
        // SAFETY: `name` is static; `data` stays valid until `drop`
        // removes the file, and `write_cb` matches it.
        let mut ctl = core::ptr::null_mut();
        let ret = unsafe {
            bindings::rustic_test_ctl_create(name.as_char_ptr(), data, Some(Self::write_cb), &mut ctl)
        };
        let created = to_result(ret).and_then(|()| core::ptr::NonNull::new(ctl).ok_or(EINVAL));
        let ctl = match created {
            Ok(ctl) => ctl,
            Err(e) => {
                // SAFETY: C failed and keeps no copy of `data`.
                drop(unsafe { Arc::<T>::from_foreign(data) });
                return Err(e);
            }
        };
        // INVARIANT: created just now with `data`.
        Ok(Control {
            ctl,
            data,
            _handler: PhantomData,
        })
    }

    /// Adds a read-only file showing a counter.
    pub(crate) fn counter(&self, name: &'static CStr, value: &'static AtomicU64) {
        // SAFETY: the directory exists (type invariant); the name and the
        // counter are static. debugfs reads the u64 plainly, as it does
        // for every counter it shows.
        unsafe { bindings::rustic_test_ctl_counter(name.as_char_ptr(), value.as_ptr()) }
    }

    unsafe extern "C" fn write_cb(data: *const c_void, buf: *const u8, len: usize) -> c_int {
        // SAFETY: C passes the `data` registered in `new`, alive until the
        // file is removed, which waits for this call to return.
        let handler = unsafe { Arc::<T>::borrow(data) };
        // SAFETY: C passes `len` bytes it copied from userspace.
        let input = unsafe { core::slice::from_raw_parts(buf, len) };
        match handler.command(input) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

impl<T: ControlHandler> Drop for Control<T> {
    fn drop(&mut self) {
        // SAFETY: the file exists (type invariant) and is removed once;
        // removing it waits for writers, after which C no longer uses
        // `data`.
        unsafe { bindings::rustic_test_ctl_remove(self.ctl.as_ptr()) };
        // SAFETY: `data` came from `into_foreign` in `new`; no borrow is left.
        drop(unsafe { Arc::<T>::from_foreign(self.data) });
    }
}
