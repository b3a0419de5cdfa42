// SPDX-License-Identifier: GPL-2.0
//! Work items and the execution-context helpers around them (softirqs
//! off, task context, scheduling points).

use crate::rust::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow, LockClassKey};
use kernel::types::ForeignOwnable;

/// What a [`Work`] item runs (process context).
pub(crate) trait WorkFn: Send + Sync + 'static {
    /// One run of the work.
    fn work(this: ArcBorrow<'_, Self>);
}

/// A work item that runs `T::work` when queued; dropping it cancels and
/// waits for a running instance.
///
/// # Invariants
///
/// `ptr` is a live `rustic_work` whose data is `Arc::<T>::into_foreign`
/// of `data`'s reference, freed only in `drop`.
pub(crate) struct Work<T: WorkFn> {
    ptr: NonNull<bindings::rustic_work>,
    data: *const c_void,
    _handler: PhantomData<T>,
}

// SAFETY: the C work item may be queued from any thread; `data` stands for
// an `Arc<T>` with `T: Send + Sync`.
unsafe impl<T: WorkFn> Send for Work<T> {}
// SAFETY: queueing is thread-safe in C.
unsafe impl<T: WorkFn> Sync for Work<T> {}

impl<T: WorkFn> Work<T> {
    /// A work item running `handler.work()`.
    pub(crate) fn new(handler: Arc<T>) -> Result<Self> {
        let data = handler.into_foreign();
        // SAFETY: `run_cb` matches `data`, which stays valid until `drop`
        // has cancelled the work.
        let ptr = unsafe { bindings::rustic_work_new(Some(Self::run_cb), data) };
        let Some(ptr) = NonNull::new(ptr) else {
            // SAFETY: from `into_foreign` above; C did not keep it.
            drop(unsafe { Arc::<T>::from_foreign(data) });
            return Err(ENOMEM);
        };
        // INVARIANT: a fresh work item with `data`.
        Ok(Work {
            ptr,
            data,
            _handler: PhantomData,
        })
    }

    /// A work item in a lockdep class of its own (`class`, from
    /// `kernel::static_lock_class!()`), for work that is cancelled while
    /// holding a lock that other work items take: sharing their class
    /// would look like a cycle to lockdep.
    pub(crate) fn new_in_class(handler: Arc<T>, class: &'static LockClassKey, name: &'static CStr) -> Result<Self> {
        let data = handler.into_foreign();
        // SAFETY: as in `new`; `LockClassKey` is a transparent wrapper of
        // a static `lock_class_key`, and `name` is static too.
        let ptr = unsafe {
            bindings::rustic_work_new_in_class(
                Some(Self::run_cb),
                data,
                core::ptr::from_ref(class).cast_mut().cast(),
                name.as_char_ptr(),
            )
        };
        let Some(ptr) = NonNull::new(ptr) else {
            // SAFETY: from `into_foreign` above; C did not keep it.
            drop(unsafe { Arc::<T>::from_foreign(data) });
            return Err(ENOMEM);
        };
        // INVARIANT: a fresh work item with `data`.
        Ok(Work { ptr, data, _handler: PhantomData })
    }

    unsafe extern "C" fn run_cb(data: *const c_void) {
        // SAFETY: C passes the `data` given in `new`; `drop` cancels the
        // work before releasing it.
        let handler = unsafe { Arc::<T>::borrow(data) };
        T::work(handler);
    }

    /// Queues the work on `cpu` (any CPU if that one is offline); a no-op
    /// while it is queued and not yet running.
    pub(crate) fn queue_on(&self, cpu: u32) {
        // SAFETY: live work item (invariant).
        unsafe { bindings::rustic_work_queue(self.ptr.as_ptr(), cpu) }
    }

    /// Queues the work to run after `ms` milliseconds.
    #[cfg_attr(not(rustic_test_build), expect(dead_code, reason = "only the simulator delays work so far"))]
    pub(crate) fn queue_after(&self, ms: u32) {
        // SAFETY: live work item (invariant).
        unsafe { bindings::rustic_work_queue_delayed(self.ptr.as_ptr(), ms) }
    }
}

impl<T: WorkFn> Drop for Work<T> {
    fn drop(&mut self) {
        // SAFETY: live work item (invariant); C cancels it and waits for a
        // running instance before freeing, so `data` is unused after.
        unsafe { bindings::rustic_work_free(self.ptr.as_ptr()) };
        // SAFETY: from `into_foreign` in `new`; no borrow is left.
        drop(unsafe { Arc::<T>::from_foreign(self.data) });
    }
}

/// A scheduling point for long loops (process context).
pub(crate) fn cond_resched() {
    // SAFETY: process context (work items and writers of control files).
    unsafe { bindings::rustic_cond_resched() }
}

/// Softirqs off on this CPU while it lives: taken around every spinlock
/// that softirq code (NAPI polls, transmits) also takes, so that such a
/// lock is never held by a task a softirq interrupts on the same CPU.
pub(crate) struct BhOff(core::marker::PhantomData<*mut ()>);

impl BhOff {
    pub(crate) fn new() -> Self {
        // SAFETY: no preconditions; paired with the enable in drop.
        unsafe { bindings::rustic_local_bh_disable() };
        BhOff(core::marker::PhantomData)
    }
}

impl Drop for BhOff {
    fn drop(&mut self) {
        // SAFETY: paired with the disable in `new`, on the same CPU (the
        // type is not `Send`, and softirqs off pins the task).
        unsafe { bindings::rustic_local_bh_enable() };
    }
}

/// Whether this is task context (not interrupt or softirq).
pub(crate) fn in_task() -> bool {
    // SAFETY: reads the preempt count.
    unsafe { bindings::rustic_in_task() }
}
