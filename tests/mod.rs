// SPDX-License-Identifier: GPL-2.0
//! Test builds only: the simulated Hyper-V host, the drivers of the
//! simulator's test devices, and the KUnit cases.

pub(crate) mod drivers;
#[cfg(CONFIG_KUNIT)]
#[path = "kunit/cases.rs"]
pub(crate) mod kunit;
pub(crate) mod sim;

use crate::vmbus::bus::Bus;
use kernel::prelude::*;

crate::vmbus::device::driver_list! {
    /// The drivers of the test classes.
    pub(crate) Drivers: drivers::test::TestDriver, drivers::echo::EchoDriver,
}

/// Registers the test drivers and puts their counters, the simulated
/// host's and its device models' beside the bus's debugfs control.
pub(crate) fn register(bus: &Bus) -> Result<Drivers> {
    let registered = Drivers::register()?;
    drivers::test::add_counters(bus);
    drivers::echo::add_counters(bus);
    let own = Iterator::chain(sim::host::COUNTERS.iter(), sim::chaos::COUNTERS.iter());
    for &(name, value) in Iterator::chain(own, sim::model::counters()) {
        bus.counter(name, value);
    }
    bus.counter(kernel::c_str!("vmbus_held_bytes"), &crate::vmbus::connection::HELD_BYTES);
    Ok(registered)
}
