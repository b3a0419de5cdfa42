// SPDX-License-Identifier: GPL-2.0
//! The kernel layer: the module's bindings, its C shims and the safe Rust
//! over them, by kernel subsystem. It uses nothing of the project above it
//! (only the kernel-independent `vmbus_core`, for the shared-memory
//! accessor); `tests/build/layers.sh` checks that.

pub(crate) mod base;
pub(crate) mod bindings;
/// Network devices.
pub(crate) mod net {
    pub(crate) mod netdev;
}
/// SCSI hosts.
pub(crate) mod scsi {
    pub(crate) mod scsi_host;
}
#[cfg(rustic_test_build)]
pub(crate) mod sim;
pub(crate) mod vmbus;
