// SPDX-License-Identifier: GPL-2.0
//! The simulated host's device models: one line per model in [`MODELS`].
//! A model (`crate::testing::sim::model::DeviceModel`) brings its devices
//! (names, classes, offer facts), counters and debugfs commands; the host
//! offers what is listed here and knows nothing else of them.
//!
//! The host offers the devices of the `default` set first, then the
//! others, each in the order of [`MODELS`]; a device's subchannel relids
//! follow from its place in that order. Today's devices, in that order:
//!
//! - `net` (the NIC model, `crate::drivers::net::sim`), `scsi` (the
//!   storvsp model, `crate::drivers::storage::sim`), `kbd`, `heartbeat`,
//!   `test` ([`offer_only`]): the `default` set;
//! - `echo0`..`echo3` ([`echo`]), `nic0`..`nic3` (the NIC model).

pub(crate) mod echo;
pub(crate) mod offer_only;

use crate::testing::sim::model::Registration;

/// Every device model.
pub(crate) static MODELS: [Registration; 4] = [
    Registration::of::<echo::EchoModel>(),
    Registration::of::<crate::drivers::net::sim::NicModel>(),
    Registration::of::<crate::drivers::storage::sim::StorvspModel>(),
    Registration::of::<offer_only::OfferOnly>(),
];
