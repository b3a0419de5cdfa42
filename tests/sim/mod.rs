// SPDX-License-Identifier: GPL-2.0
//! Test builds only: the simulated Hyper-V, selected with `simulate=1`.
//!
//! - [`hypervisor`]: the hypervisor side of SynIC: a message page whose
//!   SINT2 slot follows Hyper-V's message-pending and EOM rules, a queue
//!   of messages waiting for the slot, HvPostMessage and HvSignalEvent,
//!   and an asynchronous interrupt (an IPI to the target CPU, so the guest
//!   takes it in hard-IRQ context there); the debugfs control `sim`;
//! - [`host`]: the VMBus host's control plane, written from the host's
//!   side: it shares the wire formats (`vmbus_core::msg`) with the guest,
//!   not the guest's state machine; it knows no device class;
//! - [`vsp`]: the host's end of open channels;
//! - [`chaos`]: `chaos NAME SECONDS [SEED]`, faults drawn at random from
//!   every fault the simulator registers, while the guest runs traffic;
//! - [`model`]: the interface a simulated device class implements
//!   (`DeviceModel`: devices, offer facts, counters, debugfs commands, the
//!   model of each opened channel) and the registry's machinery;
//! - [`devices`]: the registry, one line per model, and the models that
//!   belong to no driver: the echo device and the devices offered without
//!   a model yet. The synthetic NIC model (netvsp, the virtual switch
//!   joining the simulated NICs, fault injection at their NVSP/RNDIS
//!   layer) lives with the netvsc driver, in `drivers/net/sim/`.
//!
//! Parameters (read-only, given to insmod):
//! - `sim_versions=all|none|silent|M.m[,M.m...]`: the versions the host
//!   accepts (`silent`: it never answers INITIATE_CONTACT);
//! - `sim_post_busy=N`: the first N HvPostMessage calls fail as on a full
//!   message port (the guest's retries during connect; `fault
//!   post-busy=N` does it later; the port also fills for real, at 16
//!   messages: [`hypervisor`]);
//! - `sim_stale_message=1`: a timer message waits in the SINT2 slot, its
//!   interrupt lost, when the guest starts ([`hypervisor`]);
//! - `sim_channel_timeout_ms=MS`: the guest's deadline for channel
//!   requests (GPADLs, opens), shortened for the scenarios that wait one
//!   out (0, the default: the module's own);
//! - `sim_devices=default|none|NAME[,NAME...]`: the devices offered at
//!   connect, by the names the models give them (listed in [`devices`];
//!   `default`: those each model marks so).
//!
//! Counters in /sys/kernel/debug/hv_rustic/: the host's ([`host::COUNTERS`]:
//! `sim_initiate_contact`, `sim_version` (the raw version last accepted),
//! `sim_request_offers`, `sim_offers_sent`, `sim_unload`, `sim_unexpected`,
//! `sim_signals`, `sim_posts_no_port` and `sim_posts_busy` (HvPostMessage
//! calls refused: no port at that connection id, a full port),
//! `sim_gpadls_held` and `sim_channels_open` (gauges of what the host holds
//! of the guest now), ...) and chaos's (`sim_chaos_runs`,
//! `sim_chaos_faults`) and each model's ([`model::counters`]).

pub(crate) mod chaos;
pub(crate) mod devices;
pub(crate) mod host;
pub(crate) mod hypervisor;
pub(crate) mod model;
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
    let timeout = crate::rust::sim::channel_timeout_param();
    crate::vmbus::connection::CHANNEL_TIMEOUT_OVERRIDE_MS.store(u64::from(timeout), core::sync::atomic::Ordering::Relaxed);
    let hv = Hypervisor::new()?;
    let control = Control::new(kernel::c_str!("sim"), hv.clone())?;
    Ok(Some((Backend::new(hv), Simulator { _control: control })))
}
