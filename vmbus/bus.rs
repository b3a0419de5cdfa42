// SPDX-License-Identifier: GPL-2.0
//! The `vmbus` bus of hv_rustic.ko: the bus_type, the table of devices made
//! from the host's offers, and the drivers inside the module. No `unsafe`
//! here: the kernel objects are behind the wrappers in `rust/vmbus/bus_type.rs`.
//!
//! Devices come from the host's offers (`crate::vmbus::connection`). Test builds
//! can also create and remove devices directly through the debugfs control
//! file `/sys/kernel/debug/hv_rustic/bus`, one command per write:
//!
//! ```text
//! add class=<guid> instance=<guid> relid=<n> [monitor=<n>] [cpu=<n>]
//! remove <instance-guid>
//! rescind <instance-guid>
//! ```
//!
//! GUIDs are in the text form, braces optional; numbers are decimal or
//! `0x` hex; `relid` < 2048, `monitor` < 128 (omitted: no monitor id),
//! `cpu` a possible CPU (default 0). `remove` unregisters the device (its
//! driver's remove runs); `rescind` first calls the bound driver's rescind.
//! Errors: `-EINVAL` for anything that does not parse or is out of range,
//! `-EEXIST` for a relid or instance GUID already on the bus, `-ENOENT` for
//! an instance GUID that is not.

use crate::vmbus::connection::Connection;
use crate::vmbus::device::{BusRegistration, DeviceRegistration};
use crate::vmbus_core::bus::OfferFacts;
use crate::vmbus_core::guid::Guid;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::rbtree::RBTree;
use kernel::sync::{Arc, Mutex};

/// The devices on the bus, by primary channel relid.
#[pin_data]
pub(crate) struct Devices {
    // Devices are unregistered while this lock is held, so that a new
    // device of the same name never races the sysfs removal of the old.
    #[pin]
    table: Mutex<RBTree<u32, DeviceRegistration>>,
}

impl Devices {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Devices { table <- new_mutex!(RBTree::new(), "vmbus_devices") }),
            GFP_KERNEL,
        )
    }

    /// Creates a device from an offer. Relids and instance GUIDs are unique
    /// on the bus.
    pub(crate) fn add(&self, offer: OfferFacts, link: Option<Arc<Connection>>) -> Result {
        let mut table = self.table.lock();
        if table.get(&offer.relid).is_some()
            || table.values().any(|d| d.offer().instance == offer.instance)
        {
            return Err(EEXIST);
        }
        let device = DeviceRegistration::new(offer, link)?;
        table.try_create_and_insert(offer.relid, device, GFP_KERNEL)?;
        Ok(())
    }

    /// Removes the device with this instance GUID, calling its driver's
    /// rescind first when `rescind` is set.
    #[cfg_attr(not(rustic_test_build), expect(dead_code, reason = "only the test builds' debugfs control removes devices by instance"))]
    pub(crate) fn remove(&self, instance: &Guid, rescind: bool) -> Result {
        let mut table = self.table.lock();
        let relid = table
            .iter()
            .find(|(_, d)| d.offer().instance == *instance)
            .map(|(relid, _)| *relid)
            .ok_or(ENOENT)?;
        let device = table.remove(&relid).ok_or(ENOENT)?;
        if rescind {
            device.rescind();
        }
        drop(device);
        Ok(())
    }

    /// Tells the device with this instance GUID that the host offered one
    /// of its subchannels; false if there is no such device (or no
    /// memory).
    pub(crate) fn subchannel_offered(&self, instance: &Guid, relid: u32, index: u16, monitor_id: Option<u8>) -> bool {
        let table = self.table.lock();
        let offered = table
            .values()
            .find(|d| d.offer().instance == *instance)
            .is_some_and(|device| device.subchannel_offered(relid, index, monitor_id));
        offered
    }

    /// Forgets the rescinded subchannel `relid`: `Some(true)` if no driver
    /// had opened it, `Some(false)` if one has it open, `None` if no
    /// device has it.
    pub(crate) fn subchannel_rescinded(&self, relid: u32) -> Option<bool> {
        let table = self.table.lock();
        let found = table.values().find_map(|device| device.subchannel_rescinded(relid));
        found
    }

    /// Removes the device of primary channel `relid`, calling its driver's
    /// rescind first.
    pub(crate) fn remove_relid(&self, relid: u32) -> Result {
        let device = self.table.lock().remove(&relid).ok_or(ENOENT)?;
        device.rescind();
        drop(device);
        Ok(())
    }

    /// Removes every device.
    pub(crate) fn clear(&self) {
        let mut table = self.table.lock();
        loop {
            let Some(relid) = table.keys().next().copied() else {
                break;
            };
            drop(table.remove(&relid));
        }
    }
}

#[cfg(rustic_test_build)]
impl crate::rust::base::debugfs::ControlHandler for Devices {
    fn command(&self, input: &[u8]) -> Result {
        use crate::vmbus_core::bus::Command;
        match Command::parse(input).map_err(|_| EINVAL)? {
            Command::Add(offer) => self.add(offer, None),
            Command::Remove(instance) => self.remove(&instance, false),
            Command::Rescind(instance) => self.remove(&instance, true),
        }
    }
}

/// The bus and the devices on it. Dropping it removes the test control,
/// then every device (their drivers' remove runs), then the bus. Drivers
/// register themselves ([`super::device::driver_list!`]) and must be
/// unregistered before the bus goes.
pub(crate) struct Bus {
    #[cfg(rustic_test_build)]
    control: Option<crate::rust::base::debugfs::Control<Devices>>,
    devices: Arc<Devices>,
    _bus: BusRegistration,
}

impl Bus {
    /// Registers the bus `vmbus` (in test builds, also its debugfs
    /// control).
    pub(crate) fn new() -> Result<Self> {
        let bus = BusRegistration::new()?;
        let devices = Devices::new()?;
        #[cfg(rustic_test_build)]
        let control = Some(crate::rust::base::debugfs::Control::new(kernel::c_str!("bus"), devices.clone())?);
        Ok(Bus {
            #[cfg(rustic_test_build)]
            control,
            devices,
            _bus: bus,
        })
    }

    /// The devices, for the connection to add offers to.
    pub(crate) fn devices(&self) -> Arc<Devices> {
        self.devices.clone()
    }

    /// Test builds: adds a read-only debugfs counter next to the control.
    #[cfg(rustic_test_build)]
    pub(crate) fn counter(&self, name: &'static kernel::str::CStr, value: &'static core::sync::atomic::AtomicU64) {
        if let Some(control) = &self.control {
            control.counter(name, value);
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        #[cfg(rustic_test_build)]
        drop(self.control.take());
        self.devices.clear();
    }
}
