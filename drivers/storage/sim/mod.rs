// SPDX-License-Identifier: GPL-2.0
//! The simulated storvsp (test builds): the SCSI controller `scsi` (class
//! SCSI, relid 15, in the `default` set) with one RAM-backed LUN, served by
//! `storvsc_core`'s host engine (`storvsp`) and SCSI target (`target`).
//!
//! The guest's packets go to the engine as they come; an EXECUTE_SRB's
//! GPA-direct range is mapped as Hyper-V would map it, and the target
//! copies straight between those pages and the disk. The engine's answers
//! go back as completions on the channel the request came on.
//!
//! The disk: [`DISK_BYTES`] of 512-byte sectors at path 0, target 0, LUN
//! 0, allocated when the guest first opens the controller and kept for the
//! simulator's life (a driver reload sees the same data). The engine's
//! state starts afresh with every opening of the primary channel.
//!
//! Counters: `sim_scsi_srbs` (SRBs run), `sim_scsi_blocks_read`,
//! `sim_scsi_blocks_written`, `sim_scsi_refused` (SRBs or requests the
//! engine refused, malformed packets included).

use crate::drivers::storage::proto::guest::Class;
use crate::drivers::storage::proto::storvsp::{Action, GuestPacket, HostConfig, Storvsp, VersionSet};
use crate::drivers::storage::proto::target::{DataBuffer, Lun, LunInfo, Luns};
use crate::drivers::storage::proto::vstor::FcWwn;
use crate::rust::sim;
use crate::testing::sim::model::{ChannelModel, Counter, Device, DeviceModel, Opening, Served};
use crate::testing::sim::vsp::{OutKind, Outbox};
use crate::vmbus_core::guid::{class, Guid};
use crate::vmbus_core::ring::{self, PacketInfo, PACKET_TYPE_GPA_DIRECT, PACKET_TYPE_INBAND};
use crate::vmbus_core::shared::SharedMem;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Bytes of the RAM disk.
pub(crate) const DISK_BYTES: usize = 64 * 1024 * 1024;
/// Sector size of the RAM disk.
const SECTOR: u32 = 512;
/// The transfer size the host offers (the C driver's Fibre Channel cap;
/// Hyper-V offers at least this much).
const MAX_TRANSFER: u32 = 512 * 1024;

static SRBS: AtomicU64 = AtomicU64::new(0);
static BLOCKS_READ: AtomicU64 = AtomicU64::new(0);
static BLOCKS_WRITTEN: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

static COUNTERS: [Counter; 4] = [
    (kernel::c_str!("sim_scsi_srbs"), &SRBS),
    (kernel::c_str!("sim_scsi_blocks_read"), &BLOCKS_READ),
    (kernel::c_str!("sim_scsi_blocks_written"), &BLOCKS_WRITTEN),
    (kernel::c_str!("sim_scsi_refused"), &REFUSED),
];

static DEVICES: [Device; 1] = [Device {
    name: "scsi",
    class: class::SCSI,
    instance: Guid::from_fields(0x5151a002, 0x0002, 0x4e7e, [0x8a, 0x11, 0x00, 0x15, 0x5d, 0x00, 0x00, 0x02]),
    relid: 15,
    monitor_id: Some(1),
    default: true,
}];

/// What the controller's channels share: the engine and the disk.
struct Controller {
    vsp: Storvsp,
    disk: Option<VVec<u8>>,
}

/// The simulated storage controller.
pub(crate) struct StorvspModel {
    shared: Arc<Mutex<Controller>>,
}

fn host_config() -> HostConfig {
    HostConfig {
        class: Class::Scsi,
        versions: VersionSet::ALL,
        max_sub_channels: 0,
        multi_channel: false,
        max_transfer_bytes: MAX_TRANSFER,
        wwn: FcWwn::default(),
    }
}

impl DeviceModel for StorvspModel {
    fn devices() -> &'static [Device] {
        &DEVICES
    }

    fn counters() -> &'static [Counter] {
        &COUNTERS
    }

    fn new() -> Result<Self> {
        let shared = Arc::pin_init(new_mutex!(Controller { vsp: Storvsp::new(host_config()), disk: None }), GFP_KERNEL)?;
        Ok(StorvspModel { shared })
    }

    fn open(&self, channel: &Opening<'_>) -> Result<Served> {
        {
            let mut c = self.shared.lock();
            if channel.index == 0 {
                c.vsp = Storvsp::new(host_config());
            }
            if c.disk.is_none() {
                c.disk = Some(VVec::from_elem(0u8, DISK_BYTES, GFP_KERNEL)?);
            }
        }
        Served::new(StorvspChannel { shared: self.shared.clone(), index: channel.index }, None)
    }
}

/// The one LUN, over the disk.
struct Disk<'a>(&'a mut [u8]);

impl Luns for Disk<'_> {
    fn lun(&mut self, path: u8, target: u8, lun: u8) -> Option<Lun<'_>> {
        if (path, target, lun) != (0, 0, 0) {
            return None;
        }
        Some(Lun { info: LunInfo { sector_size: SECTOR, id: 1, thin: false }, medium: &mut *self.0 })
    }

    fn each_lun(&self, path: u8, target: u8, f: &mut dyn FnMut(u8)) {
        if (path, target) == (0, 0) {
            f(0);
        }
    }
}

/// A command's data: its GPA range, mapped.
struct Pages {
    mem: SharedMem<'static>,
    offset: usize,
    len: usize,
}

impl Pages {
    /// Where `at..at + n` of the transfer lies in the mapping.
    fn at(&self, at: usize, n: usize) -> Option<usize> {
        (at.checked_add(n)? <= self.len).then_some(self.offset.checked_add(at)?)
    }
}

impl DataBuffer for Pages {
    fn read(&self, at: usize, dst: &mut [u8]) -> bool {
        self.at(at, dst.len()).is_some_and(|o| self.mem.read_bytes(o, dst).is_ok())
    }

    fn write(&mut self, at: usize, src: &[u8]) -> bool {
        self.at(at, src.len()).is_some_and(|o| self.mem.write_bytes(o, src).is_ok())
    }
}

/// No data.
struct NoData;

impl DataBuffer for NoData {
    fn read(&self, _at: usize, dst: &mut [u8]) -> bool {
        dst.is_empty()
    }

    fn write(&mut self, _at: usize, src: &[u8]) -> bool {
        src.is_empty()
    }
}

/// One open channel of the controller.
struct StorvspChannel {
    shared: Arc<Mutex<Controller>>,
    index: u16,
}

/// Maps a GPA-direct packet's one range: the mapping, the offset in it
/// and the length. None if the packet is malformed.
fn map_range(header: &[u8]) -> Option<(sim::Mapping, usize, u32)> {
    let mut ranges = ring::parse_gpa_direct(header).ok()?;
    let (range, pfn_bytes) = ranges.next()?;
    if ranges.next().is_some() {
        return None;
    }
    let mut pfns: KVec<u64> = KVec::with_capacity(pfn_bytes.len() / 8, GFP_KERNEL).ok()?;
    for chunk in pfn_bytes.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        pfns.push(u64::from_le_bytes(w), GFP_KERNEL).ok()?;
    }
    let mapping = sim::Mapping::new(&pfns).ok()?;
    Some((mapping, range.byte_offset as usize, range.byte_count))
}

impl ChannelModel for StorvspChannel {
    fn packet(&mut self, info: &PacketInfo, bytes: &[u8], out: &mut Outbox) {
        let payload = info.payload(bytes);
        let trans_id = info.descriptor.transaction_id;
        let mapped = match info.descriptor.packet_type {
            PACKET_TYPE_INBAND => None,
            PACKET_TYPE_GPA_DIRECT => match map_range(info.header(bytes)) {
                Some(m) => Some(m),
                None => {
                    REFUSED.fetch_add(1, Ordering::Relaxed);
                    pr_err!("sim: scsi: malformed GPA-direct packet dropped\n");
                    return;
                }
            },
            // The guest's completions of our notices, and anything else.
            _ => return,
        };
        let mut c = self.shared.lock();
        let Controller { vsp, disk } = &mut *c;
        let Some(disk) = disk.as_mut() else { return };
        let before = *vsp.counters();
        let packet = GuestPacket { channel: self.index, trans_id, bytes: payload, data_len: mapped.as_ref().map_or(0, |m| m.2) };
        let actions = match &mapped {
            Some((mapping, offset, len)) => {
                // SAFETY: the handle is used only in this call, while
                // `mapping` lives.
                let mem = unsafe { mapping.shared_static() };
                let mut data = Pages { mem, offset: *offset, len: *len as usize };
                vsp.on_packet(&packet, &mut Disk(disk), &mut data)
            }
            None => vsp.on_packet(&packet, &mut Disk(disk), &mut NoData),
        };
        let after = *vsp.counters();
        drop(c);
        let ran = after.srbs_per_channel.iter().sum::<u64>() - before.srbs_per_channel.iter().sum::<u64>();
        SRBS.fetch_add(ran, Ordering::Relaxed);
        BLOCKS_READ.fetch_add(after.effect.blocks_read.saturating_sub(before.effect.blocks_read), Ordering::Relaxed);
        BLOCKS_WRITTEN.fetch_add(after.effect.blocks_written.saturating_sub(before.effect.blocks_written), Ordering::Relaxed);
        REFUSED.fetch_add(after.srbs_refused.saturating_sub(before.srbs_refused), Ordering::Relaxed);
        let actions = match actions {
            Ok(a) => a,
            Err(e) => {
                REFUSED.fetch_add(1, Ordering::Relaxed);
                pr_err!("sim: scsi: guest packet refused: {:?}\n", e);
                return;
            }
        };
        for action in actions.iter() {
            match action {
                Action::Send { trans_id, bytes, len } => {
                    let _ = out.push(OutKind::Completion, *trans_id, bytes.get(..*len).unwrap_or(&[]));
                }
                // No faults are armed and no subchannels offered yet.
                Action::Hold { .. } | Action::ReleaseHeld | Action::OfferSubChannels(_) => {}
            }
        }
    }
}
