// SPDX-License-Identifier: GPL-2.0
//! VMBus: the hypervisor interface, the guest's connection to the host,
//! channels, devices and the `vmbus` bus. It uses the kernel layer
//! (`crate::rust`) and the kernel-independent core (`vmbus/core`, compiled
//! in as `crate::vmbus_core`); drivers sit above it.

pub(crate) mod bus;
pub(crate) mod channel;
pub(crate) mod connection;
pub(crate) mod device;
pub(crate) mod hv;
pub(crate) mod hyperv;
