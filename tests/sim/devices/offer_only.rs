// SPDX-License-Identifier: GPL-2.0
//! Devices the simulated host offers without a model of their own yet:
//! `kbd`, `heartbeat` (each to be replaced by its class's model)
//! and `test` (the class the test driver binds; its channel is never
//! opened). An opened channel's packets are read and dropped.

use crate::testing::sim::model::{ChannelModel, Device, DeviceModel, Opening, Served};
use crate::testing::sim::vsp::Outbox;
use crate::vmbus_core::guid::{class, Guid};
use crate::vmbus_core::ring::PacketInfo;
use kernel::prelude::*;

/// The devices offered and nothing more.
pub(crate) struct OfferOnly;

static DEVICES: [Device; 3] = [
    Device {
        name: "kbd",
        class: class::KEYBOARD,
        instance: Guid::from_fields(0xd34b2567, 0xb9b6, 0x42b9, [0x87, 0x78, 0x0a, 0x4e, 0xc0, 0xb9, 0x55, 0xbf]),
        relid: 3,
        monitor_id: None,
        default: true,
    },
    Device {
        name: "heartbeat",
        class: class::HEARTBEAT,
        instance: Guid::from_fields(0xfd149e91, 0x82e0, 0x4a7d, [0xaf, 0xa6, 0x2a, 0x4b, 0xa1, 0x49, 0x9a, 0xe9]),
        relid: 7,
        monitor_id: None,
        default: true,
    },
    Device {
        name: "test",
        class: class::RUSTIC_TEST,
        instance: Guid::from_fields(0x5151a005, 0x0005, 0x4e7e, [0x8a, 0x11, 0x00, 0x15, 0x5d, 0x00, 0x00, 0x05]),
        relid: 200,
        monitor_id: Some(2),
        default: true,
    },
];

impl DeviceModel for OfferOnly {
    fn devices() -> &'static [Device] {
        &DEVICES
    }

    fn new() -> Result<Self> {
        Ok(OfferOnly)
    }

    fn open(&self, _channel: &Opening<'_>) -> Result<Served> {
        Served::new(Sink, None)
    }
}

/// Reads and drops every packet.
struct Sink;

impl ChannelModel for Sink {
    fn packet(&mut self, _info: &PacketInfo, _bytes: &[u8], _out: &mut Outbox) {}
}
