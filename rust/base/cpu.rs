// SPDX-License-Identifier: GPL-2.0
//! CPU numbering and state.

use crate::rust::bindings;

/// The number of CPU ids (CPUs are numbered below it).
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: reads a kernel variable.
    unsafe { bindings::rustic_nr_cpu_ids() }
}

/// Whether `cpu` is online.
pub(crate) fn cpu_online(cpu: u32) -> bool {
    // SAFETY: C checks `cpu`.
    unsafe { bindings::rustic_cpu_online(cpu) }
}

/// Keeps CPUs from coming online or going offline while it lives
/// (`cpus_read_lock`); process context only, it may sleep.
pub(crate) struct CpusReadLock(());

impl CpusReadLock {
    pub(crate) fn new() -> Self {
        // SAFETY: process context (the caller's); released in `drop`.
        unsafe { bindings::rustic_cpus_read_lock() };
        CpusReadLock(())
    }
}

impl Drop for CpusReadLock {
    fn drop(&mut self) {
        // SAFETY: taken in `new`.
        unsafe { bindings::rustic_cpus_read_unlock() };
    }
}

/// Whether `cpu` is a possible CPU (one that may ever come online).
pub(crate) fn cpu_possible(cpu: u32) -> bool {
    // SAFETY: no preconditions; C checks the range.
    unsafe { bindings::rustic_cpu_possible(cpu) }
}

/// The NUMA node of `cpu`.
pub(crate) fn cpu_to_node(cpu: u32) -> i32 {
    // SAFETY: no preconditions; any CPU number is accepted.
    unsafe { bindings::rustic_cpu_to_node(cpu) }
}

/// The CPU this runs on (only stable while preemption or interrupts are
/// off).
#[cfg_attr(not(rustic_test_build), expect(dead_code, reason = "only the simulator's crash trigger asks"))]
pub(crate) fn this_cpu() -> u32 {
    // SAFETY: reads the CPU number; no preconditions.
    unsafe { bindings::rustic_this_cpu() }
}
