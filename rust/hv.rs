// SPDX-License-Identifier: GPL-2.0
//! Safe wrappers over `rust/hv.c` (the VMBus interrupt and its work item,
//! time) and, in test builds, `rust/sim_hv.c` (the simulated hypervisor's
//! parameters, page and interrupt).

use super::bindings;
use core::marker::PhantomData;
use super::vmbus_core::shared::SharedMem;
use core::ptr::NonNull;
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow, LockClassKey};
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
#[cfg_attr(not(rustic_test_build), expect(dead_code, reason = "only the simulator loops that long so far"))]
pub(crate) fn cond_resched() {
    // SAFETY: process context (work items and writers of control files).
    unsafe { bindings::rustic_cond_resched() }
}

/// The number of CPU ids (CPUs are numbered below it).
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

pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: reads a kernel variable.
    unsafe { bindings::rustic_nr_cpu_ids() }
}

/// Whether `cpu` is online.
pub(crate) fn cpu_online(cpu: u32) -> bool {
    // SAFETY: C checks `cpu`.
    unsafe { bindings::rustic_cpu_online(cpu) }
}

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

/// Lets a message through at most once per `interval_ms` (the kernel's
/// `printk_ratelimited`, which Rust does not have in 6.12), from any
/// context.
pub(crate) struct RateLimit {
    interval_ms: u64,
    last: core::sync::atomic::AtomicU64,
}

impl RateLimit {
    pub(crate) const fn new(interval_ms: u64) -> Self {
        RateLimit { interval_ms, last: core::sync::atomic::AtomicU64::new(0) }
    }

    /// Whether a message may go out now.
    pub(crate) fn allow(&self) -> bool {
        use core::sync::atomic::Ordering::Relaxed;
        let now = now_ms();
        let last = self.last.load(Relaxed);
        now.saturating_sub(last) >= self.interval_ms && self.last.compare_exchange(last, now, Relaxed, Relaxed).is_ok()
    }
}

/// A monotonic clock in milliseconds.
pub(crate) fn now_ms() -> u64 {
    // SAFETY: reads jiffies; no preconditions.
    unsafe { bindings::rustic_now_ms() }
}

/// Sleeps for about `ms` milliseconds (process context only).
pub(crate) fn msleep(ms: u32) {
    // SAFETY: callers are in process context (the module's init and exit
    // paths and work items).
    unsafe { bindings::rustic_msleep(ms) }
}

/// Test builds: the simulated hypervisor's C side.
#[cfg(rustic_test_build)]
pub(crate) mod sim {
    use super::bindings;
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
                len: pfns.len() * super::Page::SIZE,
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
        pub(crate) unsafe fn shared_static(&self) -> super::SharedMem<'static> {
            // SAFETY: valid for `len` bytes for as long as the caller
            // promises; reached only through `SharedMem`.
            unsafe { super::SharedMem::from_raw(self.ptr.as_ptr(), self.len) }
                .unwrap_or_else(|_| super::SharedMem::from_slice(&mut []))
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: from `rustic_sim_map` (invariant); unmapped once.
            unsafe { bindings::rustic_sim_unmap(self.ptr.as_ptr().cast()) }
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

/// The real Hyper-V backend's C side (`rust/hv_real.c`). Built always;
/// never run by the project's tests (no Hyper-V here).
pub(crate) mod real {
    use super::bindings;
    use super::super::vmbus_core::shared::SharedMem;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicBool, Ordering};
    use kernel::prelude::*;

    /// Whether this is a Hyper-V guest the backend supports.
    pub(crate) fn available() -> bool {
        // SAFETY: reads the kernel's Hyper-V state; no preconditions.
        unsafe { bindings::rustic_hvr_available() }
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
        /// Enables the SynIC message page, SINT2 and the VMBus handler.
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
}
