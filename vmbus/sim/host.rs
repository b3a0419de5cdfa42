// SPDX-License-Identifier: GPL-2.0
//! The simulated VMBus host's control plane, from the host's side: it
//! receives the guest's channel messages (as HvPostMessage hands them to
//! the host) and answers as Hyper-V does:
//!
//! - INITIATE_CONTACT: on the connection id the proposed version calls for
//!   (4 from 5.0, else 1), answered with VERSION_RESPONSE,
//!   `version_supported` = 1 for a version in the configured set, else 0;
//!   from 5.0 an accepted response names connection id 4 for all later
//!   messages. Messages on any other connection id are dropped, as
//!   Hyper-V drops messages to a port that is not there.
//! - REQUESTOFFERS: one OFFERCHANNEL per configured device, then
//!   ALLOFFERS_DELIVERED.
//! - UNLOAD: forgets the connection and answers UNLOAD_RESPONSE.

use super::super::vmbus_core::guid::Guid;
use super::super::vmbus_core::msg::{Message, Offer, VersionResponse, USER_DEFINED_BYTES};
use super::super::vmbus_core::version::{
    Version, MESSAGE_CONNECTION_ID, MESSAGE_CONNECTION_ID_4, MESSAGE_SINT,
};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::prelude::*;

pub(crate) static INITIATE_CONTACT: AtomicU64 = AtomicU64::new(0);
pub(crate) static VERSION: AtomicU64 = AtomicU64::new(0);
pub(crate) static REQUEST_OFFERS: AtomicU64 = AtomicU64::new(0);
pub(crate) static OFFERS_SENT: AtomicU64 = AtomicU64::new(0);
pub(crate) static UNLOAD: AtomicU64 = AtomicU64::new(0);
pub(crate) static UNEXPECTED: AtomicU64 = AtomicU64::new(0);
pub(crate) static SIGNALS: AtomicU64 = AtomicU64::new(0);

/// The counters, by their debugfs names.
pub(crate) const COUNTERS: [(&kernel::str::CStr, &AtomicU64); 7] = [
    (kernel::c_str!("sim_initiate_contact"), &INITIATE_CONTACT),
    (kernel::c_str!("sim_version"), &VERSION),
    (kernel::c_str!("sim_request_offers"), &REQUEST_OFFERS),
    (kernel::c_str!("sim_offers_sent"), &OFFERS_SENT),
    (kernel::c_str!("sim_unload"), &UNLOAD),
    (kernel::c_str!("sim_unexpected"), &UNEXPECTED),
    (kernel::c_str!("sim_signals"), &SIGNALS),
];

/// A device the host offers.
#[derive(Clone, Copy)]
struct Device {
    name: &'static str,
    class: Guid,
    instance: Guid,
    relid: u32,
    monitor_id: Option<u8>,
}

/// The devices the simulator knows, in offer order.
const DEVICES: [Device; 5] = [
    Device {
        name: "net",
        class: Guid::from_fields(0xf8615163, 0xdf3e, 0x46c5, [0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e]),
        instance: Guid::from_fields(0x5151a001, 0x0001, 0x4e7e, [0x8a, 0x11, 0x00, 0x15, 0x5d, 0x00, 0x00, 0x01]),
        relid: 14,
        monitor_id: Some(0),
    },
    Device {
        name: "scsi",
        class: Guid::from_fields(0xba6163d9, 0x04a1, 0x4d29, [0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f]),
        instance: Guid::from_fields(0x5151a002, 0x0002, 0x4e7e, [0x8a, 0x11, 0x00, 0x15, 0x5d, 0x00, 0x00, 0x02]),
        relid: 15,
        monitor_id: Some(1),
    },
    Device {
        name: "kbd",
        class: Guid::from_fields(0xf912ad6d, 0x2b17, 0x48ea, [0xbd, 0x65, 0xf9, 0x27, 0xa6, 0x1c, 0x76, 0x84]),
        instance: Guid::from_fields(0xd34b2567, 0xb9b6, 0x42b9, [0x87, 0x78, 0x0a, 0x4e, 0xc0, 0xb9, 0x55, 0xbf]),
        relid: 3,
        monitor_id: None,
    },
    Device {
        name: "heartbeat",
        class: Guid::from_fields(0x57164f39, 0x9115, 0x4e78, [0xab, 0x55, 0x38, 0x2f, 0x3b, 0xd5, 0x42, 0x2d]),
        instance: Guid::from_fields(0xfd149e91, 0x82e0, 0x4a7d, [0xaf, 0xa6, 0x2a, 0x4b, 0xa1, 0x49, 0x9a, 0xe9]),
        relid: 7,
        monitor_id: None,
    },
    Device {
        name: "test",
        class: super::super::test_driver::TEST_CLASS,
        instance: Guid::from_fields(0x5151a005, 0x0005, 0x4e7e, [0x8a, 0x11, 0x00, 0x15, 0x5d, 0x00, 0x00, 0x05]),
        relid: 200,
        monitor_id: Some(2),
    },
];

/// The connection as the host sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Disconnected,
    Connected { message_connection_id: u32 },
}

/// The host's control plane.
pub(crate) struct Host {
    /// Accepted raw versions (the first `version_count`).
    versions: [u32; 8],
    version_count: usize,
    /// Never answers INITIATE_CONTACT.
    silent: bool,
    /// Which of [`DEVICES`] are offered.
    offered: [bool; DEVICES.len()],
    state: State,
}

impl Host {
    /// A host configured from the `sim_versions` and `sim_devices` text.
    pub(crate) fn new(versions: &[u8], devices: &[u8]) -> Result<Host> {
        let mut host = Host {
            versions: [0; 8],
            version_count: 0,
            silent: false,
            offered: [false; DEVICES.len()],
            state: State::Disconnected,
        };
        match versions {
            b"all" => {
                for v in super::super::vmbus_core::version::SUPPORTED {
                    host.accept(v.raw())?;
                }
            }
            b"none" => {}
            b"silent" => host.silent = true,
            list => {
                for item in list.split(|&b| b == b',') {
                    let v = parse_version(item).ok_or_else(|| {
                        pr_err!("sim: sim_versions: cannot parse a version\n");
                        EINVAL
                    })?;
                    host.accept(v.raw())?;
                }
            }
        }
        match devices {
            b"default" => host.offered = [true; DEVICES.len()],
            b"none" => {}
            list => {
                for item in list.split(|&b| b == b',') {
                    let i = DEVICES
                        .iter()
                        .position(|d| d.name.as_bytes() == item)
                        .ok_or_else(|| {
                            pr_err!("sim: sim_devices: unknown device name\n");
                            EINVAL
                        })?;
                    if let Some(o) = host.offered.get_mut(i) {
                        *o = true;
                    }
                }
            }
        }
        Ok(host)
    }

    fn accept(&mut self, raw: u32) -> Result {
        let slot = self.versions.get_mut(self.version_count).ok_or(EINVAL)?;
        *slot = raw;
        self.version_count += 1;
        Ok(())
    }

    fn accepts(&self, raw: u32) -> bool {
        self.versions
            .get(..self.version_count)
            .is_some_and(|v| v.contains(&raw))
    }

    /// A guest message posted to `connection_id`; answers go to `send`.
    pub(crate) fn receive(&mut self, connection_id: u32, payload: &[u8], send: &mut impl FnMut(&Message)) {
        let Ok(message) = Message::parse(payload) else {
            UNEXPECTED.fetch_add(1, Relaxed);
            return;
        };
        match (self.state, message) {
            (_, Message::InitiateContact(ic)) => {
                INITIATE_CONTACT.fetch_add(1, Relaxed);
                let proposed = Version::new((ic.version >> 16) as u16, ic.version as u16);
                if connection_id != proposed.initiate_contact_connection_id() {
                    UNEXPECTED.fetch_add(1, Relaxed);
                    return;
                }
                // Hyper-V needs the monitor pages, and the interrupt page
                // before 5.0 or from 5.0 the SINT to post messages to; a
                // proposal without them is counted as a guest error.
                let target_ok = if proposed.host_assigns_connection_id() {
                    ic.interrupt_page & 0xff == u64::from(MESSAGE_SINT)
                } else {
                    ic.interrupt_page != 0
                };
                if !target_ok || ic.monitor_page1 == 0 || ic.monitor_page2 == 0 {
                    UNEXPECTED.fetch_add(1, Relaxed);
                }
                if self.silent {
                    return;
                }
                let supported = self.accepts(ic.version);
                let mut msg_conn_id = 0;
                if supported {
                    let message_connection_id = if proposed.host_assigns_connection_id() {
                        msg_conn_id = MESSAGE_CONNECTION_ID_4;
                        MESSAGE_CONNECTION_ID_4
                    } else {
                        MESSAGE_CONNECTION_ID
                    };
                    self.state = State::Connected {
                        message_connection_id,
                    };
                    VERSION.store(u64::from(ic.version), Relaxed);
                }
                send(&Message::VersionResponse(VersionResponse {
                    supported,
                    connection_state: 0,
                    msg_conn_id,
                }));
            }
            (State::Connected { message_connection_id }, message)
                if connection_id == message_connection_id =>
            {
                self.connected(message, send)
            }
            _ => {
                UNEXPECTED.fetch_add(1, Relaxed);
            }
        }
    }

    fn connected(&mut self, message: Message, send: &mut impl FnMut(&Message)) {
        match message {
            Message::RequestOffers => {
                REQUEST_OFFERS.fetch_add(1, Relaxed);
                for (d, _) in DEVICES.iter().zip(self.offered).filter(|(_, o)| *o) {
                    send(&Message::Offer(Offer {
                        if_type: d.class,
                        if_instance: d.instance,
                        chn_flags: 0,
                        mmio_megabytes: 0,
                        user_def: [0; USER_DEFINED_BYTES],
                        sub_channel_index: 0,
                        child_relid: d.relid,
                        monitor_id: d.monitor_id,
                        dedicated_interrupt: false,
                        connection_id: 0x1_0000 + d.relid,
                    }));
                    OFFERS_SENT.fetch_add(1, Relaxed);
                }
                send(&Message::AllOffersDelivered);
            }
            Message::Unload => {
                let n = UNLOAD.fetch_add(1, Relaxed).saturating_add(1);
                self.state = State::Disconnected;
                pr_info!("sim host: UNLOAD received ({} so far), answering UNLOAD_RESPONSE\n", n);
                send(&Message::UnloadResponse);
            }
            _ => {
                UNEXPECTED.fetch_add(1, Relaxed);
            }
        }
    }
}

/// `M.m` with decimal numbers.
fn parse_version(text: &[u8]) -> Option<Version> {
    let text = core::str::from_utf8(text).ok()?;
    let (major, minor) = text.trim().split_once('.')?;
    Some(Version::new(major.parse().ok()?, minor.parse().ok()?))
}
