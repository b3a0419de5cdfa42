// SPDX-License-Identifier: GPL-2.0
//! The crash-path unload's kernel side (`rust/vmbus/crash.c`): the panic
//! notifier and Hyper-V's kexec and crash handlers, and the pieces of the
//! path that work with interrupts off (busy waits, interrupts off on this
//! CPU).

use crate::rust::bindings;

/// The registered hooks: while it lives, a panic (and, with Hyper-V's
/// hooks, a kexec or a crash dump) runs the callback given to
/// [`CrashHooks::register`]. Only one may exist at a time.
pub(crate) struct CrashHooks(());

impl CrashHooks {
    /// Runs `callback` on panic, and with `hyperv_hooks` also from the
    /// kernel's Hyper-V kexec and crash handlers. `callback` runs with
    /// interrupts off on any CPU, possibly with the others stopped: it may
    /// not sleep, take sleeping locks, or wait on other CPUs.
    pub(crate) fn register(callback: extern "C" fn(), hyperv_hooks: bool) -> Self {
        // SAFETY: `callback` is a plain function, valid for the module's
        // life; `drop` unregisters before the module goes.
        unsafe { bindings::rustic_crash_register(Some(callback), hyperv_hooks) };
        CrashHooks(())
    }
}

impl Drop for CrashHooks {
    fn drop(&mut self) {
        // SAFETY: registered in `register`; after this no hook calls it.
        unsafe { bindings::rustic_crash_unregister() };
    }
}

/// Busy-waits about `ms` milliseconds; any context.
pub(crate) fn mdelay(ms: u32) {
    // SAFETY: no preconditions.
    unsafe { bindings::rustic_mdelay(ms) }
}

/// Interrupts off on this CPU while it lives (restored on drop).
pub(crate) struct IrqsOff {
    flags: kernel::ffi::c_ulong,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl IrqsOff {
    pub(crate) fn new() -> Self {
        // SAFETY: paired with the restore in drop, on this CPU (not `Send`).
        let flags = unsafe { bindings::rustic_local_irq_save() };
        IrqsOff { flags, _not_send: core::marker::PhantomData }
    }
}

impl Drop for IrqsOff {
    fn drop(&mut self) {
        // SAFETY: the flags of the save in `new`, on the same CPU.
        unsafe { bindings::rustic_local_irq_restore(self.flags) }
    }
}
