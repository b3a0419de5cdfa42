// SPDX-License-Identifier: GPL-2.0
//! The kernel side of VMBus: the `vmbus` bus_type shim, the VMBus
//! interrupt, and the real Hyper-V backend's C side.

pub(crate) mod bus_type;
pub(crate) mod crash;
pub(crate) mod hyperv;
pub(crate) mod interrupt;
