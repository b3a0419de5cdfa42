// SPDX-License-Identifier: GPL-2.0
//! The general kernel services the module needs and 6.12 has no Rust
//! abstraction for: work items, CPUs, shared memory, time and rate limits,
//! KUnit, and (test builds) debugfs controls.

pub(crate) mod cpu;
#[cfg(rustic_test_build)]
pub(crate) mod debugfs;
pub(crate) mod errno;
#[cfg(all(rustic_test_build, CONFIG_KUNIT))]
pub(crate) mod kunit;
pub(crate) mod memory;
pub(crate) mod time;
pub(crate) mod work;

use crate::rust::bindings;
use kernel::str::CStr;

/// The module's version string, as `modinfo` shows it.
pub(crate) fn version() -> &'static CStr {
    // SAFETY: `rustic_version` returns a pointer to a NUL-terminated string
    // literal with static lifetime (rust/base/shim.c).
    unsafe { CStr::from_char_ptr(bindings::rustic_version()) }
}


/// A `struct device` borrowed for `'a`, to parent other kernel devices on
/// (a net_device's `/sys/class/net/*/device` link); whoever keeps it
/// longer takes a reference (`get_device`), as the net_device shim does.
///
/// # Invariants
///
/// `ptr` is a live `struct device` for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct DeviceRef<'a> {
    ptr: *mut bindings::device,
    _life: core::marker::PhantomData<&'a bindings::device>,
}

impl DeviceRef<'_> {
    /// # Safety
    ///
    /// `ptr` must be a live `struct device` for the chosen lifetime.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::device) -> Self {
        // INVARIANT: the caller's guarantee.
        DeviceRef { ptr, _life: core::marker::PhantomData }
    }

    /// The raw pointer, for C.
    pub(crate) fn as_raw(&self) -> *mut bindings::device {
        self.ptr
    }
}
