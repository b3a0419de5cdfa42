// SPDX-License-Identifier: GPL-2.0
//! The VMBus interrupt (`rust/vmbus/interrupt.c`), shared by every
//! hypervisor backend: what runs on the CPU that took it, first in softirq
//! context, then in process context.

use crate::rust::bindings;
use core::marker::PhantomData;
use kernel::ffi::c_void;
use kernel::sync::{Arc, ArcBorrow};
use kernel::types::ForeignOwnable;

/// What the VMBus interrupt runs, on the CPU that took it: first in
/// softirq context, then, if that asks for it, in a process-context work
/// item.
pub(crate) trait Dpc: Send + Sync + 'static {
    /// Softirq context: handles what may be handled there (channel events
    /// whose handlers never sleep); returns whether [`Dpc::run`] must
    /// follow for the rest.
    fn run_softirq(this: ArcBorrow<'_, Self>, cpu: u32) -> bool;
    /// Process context, after `run_softirq` asked for it: the SynIC
    /// message slot, and handlers that may sleep.
    fn run(this: ArcBorrow<'_, Self>, cpu: u32);
}

/// The registered interrupt work. Only one may exist at a time.
///
/// # Invariants
///
/// `data` is `Arc::<T>::into_foreign` of the handler given to C, which
/// keeps it until `drop` unregisters.
pub(crate) struct IsrRegistration<T: Dpc> {
    data: *const c_void,
    _handler: PhantomData<T>,
}

// SAFETY: `data` stands for an `Arc<T>` with `T: Send + Sync`.
unsafe impl<T: Dpc> Send for IsrRegistration<T> {}
// SAFETY: no method uses `data` through `&self`.
unsafe impl<T: Dpc> Sync for IsrRegistration<T> {}

impl<T: Dpc> IsrRegistration<T> {
    /// Makes each VMBus interrupt run `handler`'s [`Dpc`] methods on the
    /// interrupted CPU.
    pub(crate) fn new(handler: Arc<T>) -> Self {
        let data = handler.into_foreign();
        // SAFETY: `data` stays valid until `drop` unregisters, and both
        // callbacks match it.
        unsafe { bindings::rustic_hv_isr_register(Some(Self::softirq_cb), Some(Self::task_cb), data) };
        // INVARIANT: registered just now with `data`.
        IsrRegistration {
            data,
            _handler: PhantomData,
        }
    }

    unsafe extern "C" fn softirq_cb(data: *const c_void, cpu: u32) -> bool {
        // SAFETY: C passes the `data` registered in `new`; `drop` waits for
        // this call before letting it go.
        let handler = unsafe { Arc::<T>::borrow(data) };
        T::run_softirq(handler, cpu)
    }

    unsafe extern "C" fn task_cb(data: *const c_void, cpu: u32) {
        // SAFETY: as in `softirq_cb`.
        let handler = unsafe { Arc::<T>::borrow(data) };
        T::run(handler, cpu);
    }
}

impl<T: Dpc> IsrRegistration<T> {
    /// Runs `cpu`'s interrupt work once as an interrupt would: for what
    /// arrived while nothing was registered (an interrupt then is lost).
    pub(crate) fn poll(&self, cpu: u32) {
        // SAFETY: registered (type invariant); C checks `cpu`.
        unsafe { bindings::rustic_hv_isr_poll(cpu) }
    }
}

impl<T: Dpc> Drop for IsrRegistration<T> {
    /// The owner stops the interrupt source first; this then waits for the
    /// work items and releases the handler.
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); after this C no longer uses
        // `data`.
        unsafe { bindings::rustic_hv_isr_unregister() };
        // SAFETY: `data` came from `into_foreign` in `new`; no borrow is left.
        drop(unsafe { Arc::<T>::from_foreign(self.data) });
    }
}
