// SPDX-License-Identifier: GPL-2.0
//! The device drivers, one folder per device class: the driver, its
//! kernel-independent protocol crate (`proto/`) and, for test builds, the
//! simulated host's model of the device (`sim/`).

pub mod net;
pub mod storage;

crate::vmbus::device::driver_list! {
    /// The drivers of hv_rustic.ko, registered at load in this order.
    pub(crate) Drivers: net::netvsc::NetvscDriver, storage::storvsc::StorvscDriver,
}
