// SPDX-License-Identifier: GPL-2.0
//! RustIC: Hyper-V VMBus guest drivers in Rust (`hv_rustic.ko`).
//!
//! This is the crate root of the module. The kernel-independent VMBus core is
//! compiled in from `vmbus/core/src` (the same files Cargo builds for host
//! tests); the kernel layer lives in `rust/`.

// `pin_init!` of structs with many fields (the netvsc NIC) recurses deeper
// than the default allows.
#![recursion_limit = "256"]

use kernel::prelude::*;

#[path = "rust/bindings.rs"]
mod bindings;

#[path = "rust/kernel_glue.rs"]
mod kernel_glue;

#[path = "rust/vmbus_bus.rs"]
mod vmbus_bus;

#[path = "rust/netdev.rs"]
mod netdev;

/// The synthetic network driver (netvsc).
#[path = "net/netvsc.rs"]
mod netvsc;

#[cfg(rustic_test_build)]
#[path = "rust/test_ctl.rs"]
mod test_ctl;

#[path = "rust/hv.rs"]
mod hv_glue;

/// The hypervisor interface and its backends.
#[path = "vmbus/hv.rs"]
mod hv;

/// An open channel: rings, signals, the driver's handler.
#[path = "vmbus/channel.rs"]
mod channel;

/// The guest's VMBus connection.
#[path = "vmbus/connection.rs"]
mod connection;

/// Test builds: the simulated hypervisor and VMBus host.
#[cfg(rustic_test_build)]
#[path = "vmbus/sim/mod.rs"]
mod sim;

/// The `vmbus` bus: bus_type, devices, drivers.
#[path = "vmbus/bus.rs"]
mod bus;

#[cfg(rustic_test_build)]
#[path = "vmbus/test_driver.rs"]
mod test_driver;

#[cfg(rustic_test_build)]
#[path = "vmbus/echo_driver.rs"]
mod echo_driver;

/// The kernel-independent VMBus core: wire formats, ring buffer, control plane.
///
/// Module list kept in step with `vmbus/core/src/lib.rs`
/// (`tests/check-core-modules.sh` fails the build if they differ).
#[path = "vmbus/core/src"]
pub mod vmbus_core {
    pub mod bus;
    pub mod control;
    pub mod event;
    pub mod guid;
    pub mod msg;
    pub mod ring;
    pub mod shared;
    pub mod version;
}

/// The kernel-independent netvsc protocols: NVSP, RNDIS, per-packet info,
/// NDIS objects, Toeplitz (used by the netvsc driver); and the simulated
/// host's side of them (netvsp, the RNDIS device, the virtual switch,
/// transmit offloads), which the test builds' simulated NICs use.
///
/// Module list kept in step with `net/core/src/lib.rs`
/// (`tests/build/core-modules.sh` checks it).
#[path = "net/core/src"]
pub mod netvsc_core {
    pub mod frame;
    pub mod ndis;
    pub mod netfault;
    pub mod netvsp;
    pub mod nvsp;
    pub mod offload;
    pub mod ppi;
    pub mod rndis;
    pub mod rndis_dev;
    pub mod sections;
    pub mod toeplitz;
    pub mod vswitch;
    pub mod wire;
}

#[cfg(CONFIG_KUNIT)]
#[path = "tests/kunit/cases.rs"]
mod kunit_cases;

module! {
    type: Rustic,
    name: "hv_rustic",
    author: "RustIC developers",
    description: "Hyper-V VMBus guest drivers in Rust",
    license: "GPL",
}

struct Rustic {
    // Dropped first: removes the offered devices and unloads the connection.
    _vmbus: Option<connection::Vmbus>,
    _bus: bus::Bus,
}

impl kernel::Module for Rustic {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let bus = bus::Bus::new()?;
        #[cfg(rustic_test_build)]
        for (name, value) in sim::host::COUNTERS {
            bus.counter(name, value);
        }
        let vmbus = connection::Vmbus::start(bus.devices())?;
        pr_info!("RustIC {} loaded\n", kernel_glue::version());
        Ok(Rustic {
            _vmbus: vmbus,
            _bus: bus,
        })
    }
}

impl Drop for Rustic {
    fn drop(&mut self) {
        // The connection first (devices removed, UNLOAD answered), so that
        // the log says "unloaded" last.
        drop(self._vmbus.take());
        pr_info!("RustIC {} unloaded\n", kernel_glue::version());
    }
}
