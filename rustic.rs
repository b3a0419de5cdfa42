// SPDX-License-Identifier: GPL-2.0
//! RustIC: Hyper-V VMBus guest drivers in Rust (`hv_rustic.ko`).
//!
//! This is the crate root of the module. Its layers, each a folder, depend
//! one way (`tests/build/layers.sh` checks it):
//!
//! - `rust/`: the kernel layer (bindings, C shims, safe wrappers);
//! - `vmbus/`: the bus, the connection, channels, the hypervisor interface,
//!   over the kernel-independent `vmbus/core` (compiled in from the same
//!   files Cargo builds for host tests);
//! - `drivers/`: one folder per device class;
//! - `tests/` (test builds only): the simulated host and test drivers.

// `pin_init!` of structs with many fields (the netvsc NIC) recurses deeper
// than the default allows.
#![recursion_limit = "256"]

use kernel::prelude::*;

/// The kernel layer: bindings, C shims, safe wrappers.
#[path = "rust/mod.rs"]
mod rust;

/// The kernel-independent VMBus core (`vmbus/core`, the `vmbus-core` crate):
/// wire formats, ring buffer, control plane.
#[path = "vmbus/core/src/lib.rs"]
pub mod vmbus_core;

/// VMBus: hypervisor interface, connection, channels, devices, the bus.
#[path = "vmbus/mod.rs"]
mod vmbus;

/// The device drivers.
#[path = "drivers/mod.rs"]
pub mod drivers;

/// Test builds only: the simulated host, test drivers, KUnit cases.
#[cfg(rustic_test_build)]
#[path = "tests/mod.rs"]
mod testing;

module! {
    type: Rustic,
    name: "hv_rustic",
    author: "RustIC developers",
    description: "Hyper-V VMBus guest drivers in Rust",
    license: "GPL",
}

struct Rustic {
    /// The simulator, when it runs: its debugfs control, dropped first so
    /// that no command races the unload.
    simulator: Option<Simulator>,
    /// The connection: dropping it removes the offered devices and unloads.
    vmbus: Option<vmbus::connection::Vmbus>,
    #[cfg(rustic_test_build)]
    _test_drivers: testing::Drivers,
    _drivers: drivers::Drivers,
    _bus: vmbus::bus::Bus,
}

/// What keeps the simulator running; production builds have none.
#[cfg(rustic_test_build)]
type Simulator = testing::sim::Simulator;
#[cfg(not(rustic_test_build))]
enum Simulator {}

/// The hypervisor backend this machine has: in a test build loaded with
/// `simulate=1` the simulator, else Hyper-V when it is there, else none.
fn backend() -> Result<(Option<vmbus::hv::Backend>, Option<Simulator>)> {
    #[cfg(rustic_test_build)]
    if let Some((backend, simulator)) = testing::sim::start()? {
        return Ok((Some(backend), Some(simulator)));
    }
    Ok((vmbus::hyperv::probe()?, None))
}

impl kernel::Module for Rustic {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let bus = vmbus::bus::Bus::new()?;
        let drivers = drivers::Drivers::register()?;
        #[cfg(rustic_test_build)]
        let test_drivers = testing::register(&bus)?;
        let (backend, simulator) = backend()?;
        // Without a backend (the probe said why, in one line) the module
        // loads all the same, with an empty bus.
        let vmbus = match backend {
            Some(backend) => Some(vmbus::connection::Vmbus::start(bus.devices(), backend)?),
            None => None,
        };
        pr_info!("RustIC {} loaded\n", rust::base::version());
        Ok(Rustic {
            simulator,
            vmbus,
            #[cfg(rustic_test_build)]
            _test_drivers: test_drivers,
            _drivers: drivers,
            _bus: bus,
        })
    }
}

impl Drop for Rustic {
    fn drop(&mut self) {
        drop(self.simulator.take());
        // The connection next (devices removed, UNLOAD answered), so that
        // the log says "unloaded" last; then the drivers, then the bus.
        drop(self.vmbus.take());
        pr_info!("RustIC {} unloaded\n", rust::base::version());
    }
}
