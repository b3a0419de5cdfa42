// SPDX-License-Identifier: GPL-2.0
//! Time: a monotonic millisecond clock, sleeping, and rate limiting.

use crate::rust::bindings;

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
