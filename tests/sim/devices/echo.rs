// SPDX-License-Identifier: GPL-2.0
//! The echo device model (`echo0`..`echo3`: class `RUSTIC_ECHO`, relids
//! 30..33), for the test echo driver (`crate::testing::drivers::echo`).
//!
//! Each channel (primary or subchannel) echoes what the guest sends:
//! in-band packets as they are, GPA-direct packets as the bytes of the
//! guest pages they name (mapped as Hyper-V would), as a completion when
//! the guest asked for one. A packet that starts with the driver's
//! `MAGIC_COMPLETE` is answered with a packet asking for a completion; one
//! that starts with `MAGIC_SUBCHANNELS` also asks the host for that many
//! subchannels.
//!
//! Counters: `sim_echoed` (packets echoed), `sim_completions` (the
//! guest's completions received).

use crate::rust::sim;
use crate::testing::drivers::echo::{MAGIC_COMPLETE, MAGIC_SUBCHANNELS};
use crate::testing::sim::hypervisor::HostRequests;
use crate::testing::sim::model::{ChannelModel, Counter, Device, DeviceModel, Opening, Served};
use crate::testing::sim::vsp::{OutKind, Outbox};
use crate::vmbus_core::guid::class;
use crate::vmbus_core::ring::{
    self, PacketInfo, FLAG_COMPLETION_REQUESTED, PACKET_TYPE_COMPLETION, PACKET_TYPE_GPA_DIRECT, PACKET_TYPE_INBAND,
};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::Arc;

static ECHOED: AtomicU64 = AtomicU64::new(0);
static COMPLETIONS: AtomicU64 = AtomicU64::new(0);

static COUNTERS: [Counter; 2] = [
    (kernel::c_str!("sim_echoed"), &ECHOED),
    (kernel::c_str!("sim_completions"), &COMPLETIONS),
];

/// Echo device `n` (relid 30 + `n`).
const fn echo(name: &'static str, n: u8) -> Device {
    Device::numbered(name, class::RUSTIC_ECHO, 0xec, 30 + n as u32, n)
}

static DEVICES: [Device; 4] = [echo("echo0", 0), echo("echo1", 1), echo("echo2", 2), echo("echo3", 3)];

/// The echo devices; their channels share nothing.
pub(crate) struct EchoModel;

impl DeviceModel for EchoModel {
    fn devices() -> &'static [Device] {
        &DEVICES
    }

    fn counters() -> &'static [Counter] {
        &COUNTERS
    }

    fn new() -> Result<Self> {
        Ok(EchoModel)
    }

    fn open(&self, channel: &Opening<'_>) -> Result<Served> {
        Served::new(Echo::new(channel.relid, channel.requests.clone())?, None)
    }
}

/// One echo channel.
struct Echo {
    /// The bytes of a GPA-direct packet's pages.
    gpa: VVec<u8>,
    relid: u32,
    requests: Arc<HostRequests>,
}

impl Echo {
    fn new(relid: u32, requests: Arc<HostRequests>) -> Result<Self> {
        Ok(Echo {
            gpa: VVec::from_elem(0u8, 65536 + 4096, GFP_KERNEL)?,
            relid,
            requests,
        })
    }

    /// Copies the first range of a GPA-direct packet out of guest memory,
    /// mapping its pages as Hyper-V would; the length, or None if the
    /// packet is malformed.
    fn read_gpa(&mut self, header: &[u8]) -> Option<usize> {
        let mut ranges = ring::parse_gpa_direct(header).ok()?;
        let (range, pfn_bytes) = ranges.next()?;
        let mut pfns: KVec<u64> = KVec::new();
        for chunk in pfn_bytes.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            pfns.push(u64::from_le_bytes(w), GFP_KERNEL).ok()?;
        }
        let mapping = sim::Mapping::new(&pfns).ok()?;
        let len = range.byte_count as usize;
        let dst = self.gpa.get_mut(..len)?;
        // SAFETY: the handle is used only here, while `mapping` lives.
        let mem = unsafe { mapping.shared_static() };
        mem.read_bytes(range.byte_offset as usize, dst).ok()?;
        Some(len)
    }
}

impl ChannelModel for Echo {
    fn packet(&mut self, info: &PacketInfo, bytes: &[u8], out: &mut Outbox) {
        let tid = info.descriptor.transaction_id;
        let wants_completion = info.descriptor.flags & FLAG_COMPLETION_REQUESTED != 0;
        let payload = match info.descriptor.packet_type {
            PACKET_TYPE_INBAND => {
                let payload = info.payload(bytes);
                if payload.get(..4) == Some(&MAGIC_COMPLETE.to_le_bytes()[..]) {
                    ECHOED.fetch_add(1, Ordering::Relaxed);
                    let _ = out.push(OutKind::Inband(true), tid, payload);
                    return;
                }
                if payload.get(..4) == Some(&MAGIC_SUBCHANNELS.to_le_bytes()[..]) {
                    // The count is the header's length field.
                    let count = payload
                        .get(4..6)
                        .and_then(|b| <[u8; 2]>::try_from(b).ok())
                        .map_or(0, u16::from_le_bytes);
                    self.requests.offer_subchannels(self.relid, count);
                }
                payload
            }
            PACKET_TYPE_GPA_DIRECT => {
                let Some(len) = self.read_gpa(info.header(bytes)) else {
                    pr_err!("sim: echo: malformed GPA-direct packet dropped\n");
                    return;
                };
                self.gpa.get(..len).unwrap_or(&[])
            }
            PACKET_TYPE_COMPLETION => {
                COMPLETIONS.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => return,
        };
        ECHOED.fetch_add(1, Ordering::Relaxed);
        let kind = if wants_completion { OutKind::Completion } else { OutKind::Inband(false) };
        let _ = out.push(kind, tid, payload);
    }
}
