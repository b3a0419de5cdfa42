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
//! - the synthetic NIC model, the virtual switch joining the simulated NICs
//!   and fault injection at their NVSP/RNDIS layer live with the netvsc
//!   driver, in `drivers/net/sim/`.
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
pub(crate) mod vsp;

pub(crate) use hypervisor::Hypervisor;

use crate::rust::base::debugfs::Control;
use crate::vmbus::hv::Backend;
use kernel::prelude::*;

/// The running simulator: its debugfs control `sim` (the hypervisor's own
/// state lives as long as the connection holds the backend).
pub(crate) struct Simulator {
    _control: Control<Hypervisor>,
}

/// Starts the simulated hypervisor and host when the module was loaded
/// with `simulate=1`: the backend for the connection, and what must be
/// dropped before the connection is (no debugfs command races the unload).
pub(crate) fn start() -> Result<Option<(Backend, Simulator)>> {
    if !crate::rust::sim::enabled() {
        return Ok(None);
    }
    pr_info!("vmbus: using the simulated hypervisor\n");
    let hv = Hypervisor::new()?;
    let control = Control::new(kernel::c_str!("sim"), hv.clone())?;
    Ok(Some((Backend::new(hv), Simulator { _control: control })))
}
