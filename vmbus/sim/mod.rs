// SPDX-License-Identifier: GPL-2.0
//! Test builds only: the simulated Hyper-V, selected with `simulate=1`.
//!
//! - [`hypervisor`]: the hypervisor side of SynIC: a message page whose
//!   SINT2 slot follows Hyper-V's message-pending and EOM rules, a queue
//!   of messages waiting for the slot, HvPostMessage and HvSignalEvent,
//!   and an asynchronous interrupt (an IPI to the target CPU, so the guest
//!   takes it in hard-IRQ context there);
//! - [`host`]: the VMBus host's control plane, written from the host's
//!   side: it shares the wire formats (`vmbus_core::msg`) with the guest,
//!   not the guest's state machine;
//! - [`vsp`]: the host's end of open channels and the echo device model;
//! - [`netvsp`]: the synthetic NIC model and the virtual switch joining
//!   the simulated NICs;
//! - [`netfault`]: fault injection at the NICs' NVSP/RNDIS layer.
//!
//! Parameters (read-only, given to insmod):
//! - `sim_versions=all|none|silent|M.m[,M.m...]`: the versions the host
//!   accepts (`silent`: it never answers INITIATE_CONTACT);
//! - `sim_devices=default|none|NAME[,NAME...]` with names `net`, `scsi`,
//!   `kbd`, `heartbeat`, `test` (`default`: these five), `echo0`..`echo3`
//!   and `nic0`..`nic3` (synthetic NICs on one switch).
//!
//! Counters in /sys/kernel/debug/hv_rustic/: `sim_initiate_contact`,
//! `sim_version` (the raw version last accepted), `sim_request_offers`,
//! `sim_offers_sent`, `sim_unload`, `sim_unexpected`, `sim_signals`.

pub(crate) mod host;
pub(crate) mod hypervisor;
pub(crate) mod netfault;
pub(crate) mod netvsp;
pub(crate) mod vsp;

pub(crate) use hypervisor::Hypervisor;
