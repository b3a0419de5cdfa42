//! The `vmbus` bus as userspace sees it: what a device is made of (the facts
//! of the host's offer plus the state of its primary channel), the sysfs
//! attributes of a device and of its `channels/<relid>/` directory with the
//! value formats of the C `hv_vmbus` driver, the modalias, the `device` ids
//! the C driver derives from the class GUID, and the text commands of the
//! test builds' debugfs control.
//!
//! Everything here is pure: formatting writes into a caller's buffer and
//! reports running out of room as an error; parsing never panics.

use super::guid::{class, Guid};
use super::msg::HvMonitorPage;
use super::ring;
use super::shared::{OutOfBounds, SharedMem};
use core::fmt::{self, Write};
use core::sync::atomic::Ordering;

/// Microsoft's PCI vendor id, which the C driver shows as every device's
/// `vendor`.
pub const VENDOR_MICROSOFT: u16 = 0x1414;

/// Relids the guest accepts are below this bound (the C driver's
/// `MAX_CHANNEL_RELIDS`: the 2048 bits of the SynIC event-flags page).
pub const MAX_RELID: u32 = 2048;

/// Monitor ids index the monitor pages' 4 trigger groups of 32 bits each.
pub const MAX_MONITOR_ID: u8 = 128;

/// The bytes of `vmbus:` plus 32 hex digits: the modalias without newline.
pub const MODALIAS_LEN: usize = 6 + 32;

/// Device classes in the C driver's `vmbus_devs` table order; a device's
/// `device` attribute is the index of its class here, or [`DEV_TYPE_UNKNOWN`].
const DEV_TYPES: [Guid; 16] = [
    class::IDE,
    class::SCSI,
    class::FIBRE_CHANNEL,
    class::NETWORK,
    class::NETWORK_DIRECT,
    class::PCI_PASSTHROUGH,
    class::VIDEO,
    class::KEYBOARD,
    class::MOUSE,
    class::KVP,
    class::TIMESYNC,
    class::HEARTBEAT,
    class::SHUTDOWN,
    class::FILE_COPY,
    class::VSS,
    class::DYNAMIC_MEMORY,
];

/// The `device` value of a class the C driver does not know.
pub const DEV_TYPE_UNKNOWN: u16 = 16;

/// The `device` id of a class, as the C driver derives it.
///
/// Hyper-V sockets and the classes the C driver refuses (AVMA, RDV, IMC)
/// are not in its table either, so they get [`DEV_TYPE_UNKNOWN`] here too.
pub fn dev_type(class: &Guid) -> u16 {
    let mut index: u16 = 0;
    for known in DEV_TYPES.iter() {
        if known == class {
            return index;
        }
        index = index.saturating_add(1);
    }
    DEV_TYPE_UNKNOWN
}

/// What the host said about a device in its offer, as far as the bus shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfferFacts {
    /// The device's class (interface type) GUID.
    pub class: Guid,
    /// The device's instance GUID, which names it in sysfs.
    pub instance: Guid,
    /// The primary channel's relid, below [`MAX_RELID`].
    pub relid: u32,
    /// The monitor id when the host allocated one, below [`MAX_MONITOR_ID`].
    pub monitor_id: Option<u8>,
    /// The CPU the channel's interrupts are aimed at.
    pub target_cpu: u32,
}

/// The life stages of a channel, numbered as the C driver's `state` shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelState {
    /// Offered by the host, not opened.
    Offer = 0,
    /// An open request is on its way to the host.
    Opening = 1,
    /// The host accepted the open; the guest is finishing it.
    Open = 2,
    /// Open and in use.
    Opened = 3,
}

/// A ring buffer's indices and room, as its debug attributes show them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingView {
    /// The ring's interrupt mask.
    pub interrupt_mask: u32,
    /// The reader's index.
    pub read_index: u32,
    /// The writer's index.
    pub write_index: u32,
    /// Bytes the reader may read.
    pub bytes_to_read: u32,
    /// Bytes the writer may write.
    pub bytes_to_write: u32,
}

impl RingView {
    /// The header of the ring in `mem` (header page, then data) as the C
    /// driver's sysfs shows it (`hv_ringbuffer_get_debuginfo`): indices
    /// as the peers wrote them, clamped room, never a panic.
    pub fn of(mem: SharedMem<'_>) -> RingView {
        let load = |at| mem.load_u32(at, Ordering::Relaxed).unwrap_or(0);
        let size = mem.len().saturating_sub(ring::HEADER_SIZE) as u32;
        let read = load(ring::READ_INDEX_OFFSET);
        let write = load(ring::WRITE_INDEX_OFFSET);
        let readable = if write >= read {
            write - read
        } else {
            size.wrapping_sub(read).wrapping_add(write)
        }
        .min(size);
        RingView {
            interrupt_mask: load(ring::INTERRUPT_MASK_OFFSET),
            read_index: read,
            write_index: write,
            bytes_to_read: readable,
            bytes_to_write: size - readable,
        }
    }
}

/// What the monitor pages say about a channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorView {
    /// The host's (server's) pending bit for the channel.
    pub server_pending: u32,
    /// The guest's (client's) pending bit for the channel.
    pub client_pending: u32,
    /// The host page's latency for the channel.
    pub server_latency: u32,
    /// The guest page's latency for the channel.
    pub client_latency: u32,
    /// The connection id in the host page.
    pub server_conn_id: u32,
    /// The connection id in the guest page.
    pub client_conn_id: u32,
}

/// Where a monitor id's fields lie in a monitor page
/// ([`super::msg::HvMonitorPage`]): its trigger group, and its slot in the
/// latency and parameter tables.
fn monitor_slot(monitor_id: u8) -> Option<(usize, usize)> {
    if monitor_id >= MAX_MONITOR_ID {
        return None;
    }
    Some((usize::from(monitor_id / 32), usize::from(monitor_id % 32)))
}

fn latency_offset(group: usize, slot: usize) -> usize {
    core::mem::offset_of!(HvMonitorPage, latency) + (group * 32 + slot) * 2
}

fn parameter_offset(group: usize, slot: usize) -> usize {
    core::mem::offset_of!(HvMonitorPage, parameter) + (group * 32 + slot) * 8
}

fn pending_offset(group: usize) -> usize {
    core::mem::offset_of!(HvMonitorPage, trigger_group) + group * 8
}

/// Reads one monitor page's view of `monitor_id`: the trigger group's
/// pending word, the latency, the connection id (the C driver's
/// `channel_pending`, `channel_latency`, `channel_conn_id`).
pub fn read_monitor(page: SharedMem<'_>, monitor_id: u8) -> (u32, u32, u32) {
    let Some((group, slot)) = monitor_slot(monitor_id) else {
        return (0, 0, 0);
    };
    let load = |at: usize| page.load_u32(at, Ordering::Relaxed).unwrap_or(0);
    let latency_at = latency_offset(group, slot);
    let latency = load(latency_at & !3) >> ((latency_at & 2) * 8) & 0xffff;
    let conn_id = load(parameter_offset(group, slot)) & 0x00ff_ffff;
    (load(pending_offset(group)), latency, conn_id)
}

/// Both monitor pages' view of `monitor_id` (server: the first page,
/// client: the second, as the C driver's sysfs reads them).
pub fn monitor_view(server: SharedMem<'_>, client: SharedMem<'_>, monitor_id: u8) -> MonitorView {
    let (server_pending, server_latency, server_conn_id) = read_monitor(server, monitor_id);
    let (client_pending, client_latency, client_conn_id) = read_monitor(client, monitor_id);
    MonitorView {
        server_pending,
        client_pending,
        server_latency,
        client_latency,
        server_conn_id,
        client_conn_id,
    }
}

/// Host side: enables `monitor_id`'s trigger group and writes its latency
/// and connection id into a monitor page, as Hyper-V fills the pages for
/// monitored channels.
pub fn write_monitor(page: SharedMem<'_>, monitor_id: u8, latency: u16, connection_id: u32) -> Result<(), OutOfBounds> {
    let (group, slot) = monitor_slot(monitor_id).ok_or(OutOfBounds)?;
    page.fetch_or_u32(0, 1 << group, Ordering::Relaxed)?;
    let at = latency_offset(group, slot);
    let shift = (at & 2) * 8;
    let word = page.load_u32(at & !3, Ordering::Relaxed)?;
    let word = word & !(0xffff << shift) | u32::from(latency) << shift;
    page.store_u32(at & !3, word, Ordering::Relaxed)?;
    page.store_u32(parameter_offset(group, slot), connection_id & 0x00ff_ffff, Ordering::Relaxed)
}

/// The state of one channel that its attributes show.
///
/// A closed channel (every channel until later work opens them) has no
/// rings: their attributes fail with [`AttrError::NoRing`] as the C
/// driver's do (`-EINVAL`), every counter is 0 because nothing has
/// happened on the channel yet, and `monitor` is all zero because no
/// monitor pages are shared with the host before the VMBus connection is
/// made (zeroed pages read 0 in the C driver too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelView {
    /// The channel's life stage.
    pub state: ChannelState,
    /// The CPU its interrupts go to.
    pub target_cpu: u32,
    /// The sub-channel index; 0 for a primary channel.
    pub subchannel_index: u16,
    /// The inbound ring (host to guest), when the channel is open.
    pub inbound: Option<RingView>,
    /// The outbound ring (guest to host), when the channel is open.
    pub outbound: Option<RingView>,
    /// Monitor-page readings.
    pub monitor: MonitorView,
    /// Interrupts taken for the channel.
    pub interrupts: u64,
    /// Signals sent to the host.
    pub events: u64,
    /// Interrupts taken because the inbound ring was full.
    pub intr_in_full: u64,
    /// Interrupts taken because the outbound ring became empty.
    pub intr_out_empty: u64,
    /// Times a write first found the outbound ring full.
    pub out_full_first: u64,
    /// Writes that found the outbound ring full.
    pub out_full_total: u64,
}

impl ChannelView {
    /// A freshly offered, closed channel aimed at `target_cpu`.
    pub const fn closed(target_cpu: u32) -> ChannelView {
        ChannelView {
            state: ChannelState::Offer,
            target_cpu,
            subchannel_index: 0,
            inbound: None,
            outbound: None,
            monitor: MonitorView {
                server_pending: 0,
                client_pending: 0,
                server_latency: 0,
                client_latency: 0,
                server_conn_id: 0,
                client_conn_id: 0,
            },
            interrupts: 0,
            events: 0,
            intr_in_full: 0,
            intr_out_empty: 0,
            out_full_first: 0,
            out_full_total: 0,
        }
    }
}

/// Why an attribute could not be shown or stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrError {
    /// The attribute reads a ring and the channel has none (closed): `-EINVAL`.
    NoRing,
    /// The name is not an attribute of this kind: `-EIO`, as the C driver
    /// answers for a missing show or store.
    Unknown,
    /// The output buffer is too small: `-EFBIG`.
    NoRoom,
    /// A written value does not parse: `-EINVAL`.
    BadValue,
    /// The channel is not open, so it cannot be retargeted: `-EIO`.
    NotOpen,
}

/// The attributes of a device directory, in the C driver's order and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevAttr {
    /// `id`: the primary channel's relid.
    Id,
    /// `state`: the primary channel's [`ChannelState`].
    State,
    /// `monitor_id`.
    MonitorId,
    /// `class_id`: `{guid}`.
    ClassId,
    /// `device_id`: `{guid}` of the instance.
    DeviceId,
    /// `modalias`.
    Modalias,
    /// `numa_node` (only in kernels with NUMA, as in the C driver).
    NumaNode,
    /// `server_monitor_pending`.
    ServerMonitorPending,
    /// `client_monitor_pending`.
    ClientMonitorPending,
    /// `server_monitor_latency`.
    ServerMonitorLatency,
    /// `client_monitor_latency`.
    ClientMonitorLatency,
    /// `server_monitor_conn_id`.
    ServerMonitorConnId,
    /// `client_monitor_conn_id`.
    ClientMonitorConnId,
    /// `out_intr_mask`.
    OutIntrMask,
    /// `out_read_index`.
    OutReadIndex,
    /// `out_write_index`.
    OutWriteIndex,
    /// `out_read_bytes_avail`.
    OutReadBytesAvail,
    /// `out_write_bytes_avail`.
    OutWriteBytesAvail,
    /// `in_intr_mask`.
    InIntrMask,
    /// `in_read_index`.
    InReadIndex,
    /// `in_write_index`.
    InWriteIndex,
    /// `in_read_bytes_avail`.
    InReadBytesAvail,
    /// `in_write_bytes_avail`.
    InWriteBytesAvail,
    /// `channel_vp_mapping`: `relid:cpu` per channel.
    ChannelVpMapping,
    /// `vendor`.
    Vendor,
    /// `device`.
    Device,
}

/// Every device attribute with its sysfs name, in the C driver's order.
pub const DEV_ATTRS: [(DevAttr, &str); 26] = [
    (DevAttr::Id, "id"),
    (DevAttr::State, "state"),
    (DevAttr::MonitorId, "monitor_id"),
    (DevAttr::ClassId, "class_id"),
    (DevAttr::DeviceId, "device_id"),
    (DevAttr::Modalias, "modalias"),
    (DevAttr::NumaNode, "numa_node"),
    (DevAttr::ServerMonitorPending, "server_monitor_pending"),
    (DevAttr::ClientMonitorPending, "client_monitor_pending"),
    (DevAttr::ServerMonitorLatency, "server_monitor_latency"),
    (DevAttr::ClientMonitorLatency, "client_monitor_latency"),
    (DevAttr::ServerMonitorConnId, "server_monitor_conn_id"),
    (DevAttr::ClientMonitorConnId, "client_monitor_conn_id"),
    (DevAttr::OutIntrMask, "out_intr_mask"),
    (DevAttr::OutReadIndex, "out_read_index"),
    (DevAttr::OutWriteIndex, "out_write_index"),
    (DevAttr::OutReadBytesAvail, "out_read_bytes_avail"),
    (DevAttr::OutWriteBytesAvail, "out_write_bytes_avail"),
    (DevAttr::InIntrMask, "in_intr_mask"),
    (DevAttr::InReadIndex, "in_read_index"),
    (DevAttr::InWriteIndex, "in_write_index"),
    (DevAttr::InReadBytesAvail, "in_read_bytes_avail"),
    (DevAttr::InWriteBytesAvail, "in_write_bytes_avail"),
    (DevAttr::ChannelVpMapping, "channel_vp_mapping"),
    (DevAttr::Vendor, "vendor"),
    (DevAttr::Device, "device"),
];

impl DevAttr {
    /// The attribute with this sysfs name.
    pub fn from_name(name: &str) -> Option<DevAttr> {
        DEV_ATTRS.iter().find(|(_, n)| *n == name).map(|(a, _)| *a)
    }

    /// Whether the attribute exists only for channels with a monitor id
    /// (the C driver hides these otherwise).
    pub fn needs_monitor(self) -> bool {
        matches!(
            self,
            DevAttr::MonitorId
                | DevAttr::ServerMonitorPending
                | DevAttr::ClientMonitorPending
                | DevAttr::ServerMonitorLatency
                | DevAttr::ClientMonitorLatency
                | DevAttr::ServerMonitorConnId
                | DevAttr::ClientMonitorConnId
        )
    }
}

/// The attributes of a `channels/<relid>/` directory, with the C driver's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChanAttr {
    /// `out_mask`: the outbound ring's interrupt mask.
    OutMask,
    /// `in_mask`: the inbound ring's interrupt mask.
    InMask,
    /// `read_avail`: bytes to read in the inbound ring.
    ReadAvail,
    /// `write_avail`: room in the outbound ring.
    WriteAvail,
    /// `cpu`: the target CPU (writable on open channels).
    Cpu,
    /// `pending`: the guest monitor page's pending bit.
    Pending,
    /// `latency`: the guest monitor page's latency.
    Latency,
    /// `interrupts`.
    Interrupts,
    /// `events`.
    Events,
    /// `intr_in_full`.
    IntrInFull,
    /// `intr_out_empty`.
    IntrOutEmpty,
    /// `out_full_first`.
    OutFullFirst,
    /// `out_full_total`.
    OutFullTotal,
    /// `monitor_id`.
    MonitorId,
    /// `subchannel_id`.
    SubchannelId,
}

/// Every channel attribute with its sysfs name, in the C driver's order.
pub const CHAN_ATTRS: [(ChanAttr, &str); 15] = [
    (ChanAttr::OutMask, "out_mask"),
    (ChanAttr::InMask, "in_mask"),
    (ChanAttr::ReadAvail, "read_avail"),
    (ChanAttr::WriteAvail, "write_avail"),
    (ChanAttr::Cpu, "cpu"),
    (ChanAttr::Pending, "pending"),
    (ChanAttr::Latency, "latency"),
    (ChanAttr::Interrupts, "interrupts"),
    (ChanAttr::Events, "events"),
    (ChanAttr::IntrInFull, "intr_in_full"),
    (ChanAttr::IntrOutEmpty, "intr_out_empty"),
    (ChanAttr::OutFullFirst, "out_full_first"),
    (ChanAttr::OutFullTotal, "out_full_total"),
    (ChanAttr::MonitorId, "monitor_id"),
    (ChanAttr::SubchannelId, "subchannel_id"),
];

impl ChanAttr {
    /// The attribute with this sysfs name.
    pub fn from_name(name: &str) -> Option<ChanAttr> {
        CHAN_ATTRS.iter().find(|(_, n)| *n == name).map(|(a, _)| *a)
    }

    /// Whether the attribute exists only for channels with a monitor id.
    pub fn needs_monitor(self) -> bool {
        matches!(
            self,
            ChanAttr::Pending | ChanAttr::Latency | ChanAttr::MonitorId
        )
    }
}

/// A `core::fmt::Write` into a byte slice that fails instead of truncating.
struct SliceWriter<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dest = self.out.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn emit(out: &mut [u8], args: fmt::Arguments<'_>) -> Result<usize, AttrError> {
    let mut w = SliceWriter { out, len: 0 };
    w.write_fmt(args).map_err(|_| AttrError::NoRoom)?;
    Ok(w.len)
}

/// Writes `vmbus:` and the class GUID's 16 wire bytes in lower-case hex
/// (the C driver's `%*phN` of the GUID), without a newline.
pub fn modalias(class: &Guid, out: &mut [u8; MODALIAS_LEN]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out[..6].copy_from_slice(b"vmbus:");
    for (i, &byte) in class.bytes.iter().enumerate() {
        // PANIC: i < 16, so 6 + 2 * i + 1 < 38 = MODALIAS_LEN.
        out[6 + 2 * i] = HEX[usize::from(byte >> 4)];
        out[6 + 2 * i + 1] = HEX[usize::from(byte & 0xf)];
    }
}

fn emit_modalias(class: &Guid, out: &mut [u8]) -> Result<usize, AttrError> {
    let mut text = [0u8; MODALIAS_LEN];
    modalias(class, &mut text);
    let dest = out.get_mut(..MODALIAS_LEN + 1).ok_or(AttrError::NoRoom)?;
    dest[..MODALIAS_LEN].copy_from_slice(&text);
    dest[MODALIAS_LEN] = b'\n';
    Ok(MODALIAS_LEN + 1)
}

fn ring<T>(
    ring: Option<RingView>,
    out: &mut [u8],
    pick: impl Fn(&RingView) -> T,
) -> Result<usize, AttrError>
where
    T: fmt::Display,
{
    let ring = ring.ok_or(AttrError::NoRing)?;
    emit(out, format_args!("{}\n", pick(&ring)))
}

/// Writes a device attribute's value, newline included, into `out` and
/// returns its length. `numa_node` is the target CPU's node, which only the
/// kernel knows. The channel list is the primary channel alone until
/// sub-channels exist.
pub fn show_dev_attr(
    attr: DevAttr,
    offer: &OfferFacts,
    chan: &ChannelView,
    numa_node: i32,
    out: &mut [u8],
) -> Result<usize, AttrError> {
    let m = &chan.monitor;
    // The C driver prints the 32-bit ring fields and the monitor id with %d.
    let signed = |v: u32| v as i32;
    match attr {
        DevAttr::Id => emit(out, format_args!("{}\n", signed(offer.relid))),
        DevAttr::State => emit(out, format_args!("{}\n", chan.state as i32)),
        DevAttr::MonitorId => emit(out, format_args!("{}\n", offer.monitor_id.unwrap_or(0))),
        DevAttr::ClassId => emit(out, format_args!("{{{}}}\n", offer.class)),
        DevAttr::DeviceId => emit(out, format_args!("{{{}}}\n", offer.instance)),
        DevAttr::Modalias => emit_modalias(&offer.class, out),
        DevAttr::NumaNode => emit(out, format_args!("{}\n", numa_node)),
        DevAttr::ServerMonitorPending => emit(out, format_args!("{}\n", signed(m.server_pending))),
        DevAttr::ClientMonitorPending => emit(out, format_args!("{}\n", signed(m.client_pending))),
        DevAttr::ServerMonitorLatency => emit(out, format_args!("{}\n", signed(m.server_latency))),
        DevAttr::ClientMonitorLatency => emit(out, format_args!("{}\n", signed(m.client_latency))),
        DevAttr::ServerMonitorConnId => emit(out, format_args!("{}\n", signed(m.server_conn_id))),
        DevAttr::ClientMonitorConnId => emit(out, format_args!("{}\n", signed(m.client_conn_id))),
        DevAttr::OutIntrMask => ring(chan.outbound, out, |r| signed(r.interrupt_mask)),
        DevAttr::OutReadIndex => ring(chan.outbound, out, |r| signed(r.read_index)),
        DevAttr::OutWriteIndex => ring(chan.outbound, out, |r| signed(r.write_index)),
        DevAttr::OutReadBytesAvail => ring(chan.outbound, out, |r| signed(r.bytes_to_read)),
        DevAttr::OutWriteBytesAvail => ring(chan.outbound, out, |r| signed(r.bytes_to_write)),
        DevAttr::InIntrMask => ring(chan.inbound, out, |r| signed(r.interrupt_mask)),
        DevAttr::InReadIndex => ring(chan.inbound, out, |r| signed(r.read_index)),
        DevAttr::InWriteIndex => ring(chan.inbound, out, |r| signed(r.write_index)),
        DevAttr::InReadBytesAvail => ring(chan.inbound, out, |r| signed(r.bytes_to_read)),
        DevAttr::InWriteBytesAvail => ring(chan.inbound, out, |r| signed(r.bytes_to_write)),
        DevAttr::ChannelVpMapping => show_vp_mapping(&[(offer.relid, chan.target_cpu)], out),
        DevAttr::Vendor => emit(out, format_args!("0x{:x}\n", VENDOR_MICROSOFT)),
        DevAttr::Device => emit(out, format_args!("0x{:x}\n", dev_type(&offer.class))),
    }
}

/// Writes `channel_vp_mapping` of a device with these channels, given as
/// `(relid, target CPU)`, the primary first: one `relid:cpu` line each, as
/// the C driver does (`lsvmbus -v` reads it).
pub fn show_vp_mapping(channels: &[(u32, u32)], out: &mut [u8]) -> Result<usize, AttrError> {
    let mut w = SliceWriter { out, len: 0 };
    for (relid, cpu) in channels {
        w.write_fmt(format_args!("{relid}:{cpu}\n"))
            .map_err(|_| AttrError::NoRoom)?;
    }
    Ok(w.len)
}

/// Writes a channel attribute's value, newline included, into `out`.
pub fn show_chan_attr(
    attr: ChanAttr,
    offer: &OfferFacts,
    chan: &ChannelView,
    out: &mut [u8],
) -> Result<usize, AttrError> {
    match attr {
        ChanAttr::OutMask => ring(chan.outbound, out, |r| r.interrupt_mask),
        ChanAttr::InMask => ring(chan.inbound, out, |r| r.interrupt_mask),
        ChanAttr::ReadAvail => ring(chan.inbound, out, |r| r.bytes_to_read),
        ChanAttr::WriteAvail => ring(chan.outbound, out, |r| r.bytes_to_write),
        ChanAttr::Cpu => emit(out, format_args!("{}\n", chan.target_cpu)),
        ChanAttr::Pending => emit(
            out,
            format_args!("{}\n", chan.monitor.client_pending as i32),
        ),
        ChanAttr::Latency => emit(
            out,
            format_args!("{}\n", chan.monitor.client_latency as i32),
        ),
        ChanAttr::Interrupts => emit(out, format_args!("{}\n", chan.interrupts)),
        ChanAttr::Events => emit(out, format_args!("{}\n", chan.events)),
        ChanAttr::IntrInFull => emit(out, format_args!("{}\n", chan.intr_in_full)),
        ChanAttr::IntrOutEmpty => emit(out, format_args!("{}\n", chan.intr_out_empty)),
        ChanAttr::OutFullFirst => emit(out, format_args!("{}\n", chan.out_full_first)),
        ChanAttr::OutFullTotal => emit(out, format_args!("{}\n", chan.out_full_total)),
        ChanAttr::MonitorId => emit(out, format_args!("{}\n", offer.monitor_id.unwrap_or(0))),
        ChanAttr::SubchannelId => emit(out, format_args!("{}\n", chan.subchannel_index)),
    }
}

/// Checks a write to a channel attribute. Only `cpu` is writable, and only
/// on an open channel: retargeting needs the host's consent, which later
/// work asks for. On success returns the CPU number written.
pub fn store_chan_attr(attr: ChanAttr, chan: &ChannelView, input: &[u8]) -> Result<u32, AttrError> {
    if attr != ChanAttr::Cpu {
        return Err(AttrError::Unknown);
    }
    let text = core::str::from_utf8(input).map_err(|_| AttrError::BadValue)?;
    let cpu = parse_u32(text.trim()).ok_or(AttrError::BadValue)?;
    if chan.state != ChannelState::Opened {
        return Err(AttrError::NotOpen);
    }
    Ok(cpu)
}

/// A command written to the test builds' debugfs control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Create a device from these offer facts.
    Add(OfferFacts),
    /// Remove the device with this instance GUID (as a host's rescind
    /// would, without telling its driver first).
    Remove(Guid),
    /// Tell the bound driver that the host rescinded the device, then
    /// remove it.
    Rescind(Guid),
}

/// Why a control command was refused. Every one maps to `-EINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// Not UTF-8, empty, or an unknown verb.
    Verb,
    /// A `key=value` with a key the verb does not take, or a key given twice.
    Key,
    /// A value that does not parse or is out of range.
    Value,
    /// A key the verb needs is missing.
    Missing,
    /// Arguments left over.
    Extra,
}

fn parse_u32(text: &str) -> Option<u32> {
    let (digits, radix) = match text.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    if digits.is_empty() || digits.starts_with('+') {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

fn parse_guid(text: &str) -> Option<Guid> {
    let inner = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => text,
    };
    Guid::parse(inner).ok()
}

impl Command {
    /// Parses one command. Syntax (whitespace-separated, one command per
    /// write, a trailing newline allowed; GUIDs with or without braces;
    /// numbers decimal or `0x` hex):
    ///
    /// ```text
    /// add class=<guid> instance=<guid> relid=<n> [monitor=<n>] [cpu=<n>]
    /// remove <instance-guid>
    /// rescind <instance-guid>
    /// ```
    ///
    /// `relid` must be below [`MAX_RELID`], `monitor` below
    /// [`MAX_MONITOR_ID`] (omitted: the host allocated no monitor id);
    /// `cpu` defaults to 0. Whether the CPU exists is the kernel's to check.
    pub fn parse(input: &[u8]) -> Result<Command, CommandError> {
        let text = core::str::from_utf8(input).map_err(|_| CommandError::Verb)?;
        let mut words = text.split_ascii_whitespace();
        match words.next() {
            Some("add") => Self::parse_add(words),
            Some(verb @ ("remove" | "rescind")) => {
                let guid = words.next().ok_or(CommandError::Missing)?;
                let guid = parse_guid(guid).ok_or(CommandError::Value)?;
                if words.next().is_some() {
                    return Err(CommandError::Extra);
                }
                Ok(if verb == "remove" {
                    Command::Remove(guid)
                } else {
                    Command::Rescind(guid)
                })
            }
            _ => Err(CommandError::Verb),
        }
    }

    fn parse_add<'a>(words: impl Iterator<Item = &'a str>) -> Result<Command, CommandError> {
        let (mut class, mut instance, mut relid, mut monitor, mut cpu) =
            (None, None, None, None, None);
        for word in words {
            let (key, value) = word.split_once('=').ok_or(CommandError::Key)?;
            let slot_taken = match key {
                "class" => class
                    .replace(parse_guid(value).ok_or(CommandError::Value)?)
                    .is_some(),
                "instance" => instance
                    .replace(parse_guid(value).ok_or(CommandError::Value)?)
                    .is_some(),
                "relid" => {
                    let v = parse_u32(value)
                        .filter(|&v| v < MAX_RELID)
                        .ok_or(CommandError::Value)?;
                    relid.replace(v).is_some()
                }
                "monitor" => {
                    let v = parse_u32(value)
                        .and_then(|v| u8::try_from(v).ok())
                        .filter(|&v| v < MAX_MONITOR_ID)
                        .ok_or(CommandError::Value)?;
                    monitor.replace(v).is_some()
                }
                "cpu" => cpu
                    .replace(parse_u32(value).ok_or(CommandError::Value)?)
                    .is_some(),
                _ => return Err(CommandError::Key),
            };
            if slot_taken {
                return Err(CommandError::Key);
            }
        }
        Ok(Command::Add(OfferFacts {
            class: class.ok_or(CommandError::Missing)?,
            instance: instance.ok_or(CommandError::Missing)?,
            relid: relid.ok_or(CommandError::Missing)?,
            monitor_id: monitor,
            target_cpu: cpu.unwrap_or(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::guid::class;
    use super::*;

    const INSTANCE: &str = "12345678-9abc-def0-1122-334455667788";

    fn facts() -> OfferFacts {
        OfferFacts {
            class: class::NETWORK,
            instance: Guid::parse(INSTANCE).unwrap(),
            relid: 14,
            monitor_id: Some(3),
            target_cpu: 1,
        }
    }

    fn show(attr: DevAttr, chan: &ChannelView) -> Result<std::string::String, AttrError> {
        let mut buf = [0u8; 4096];
        let n = show_dev_attr(attr, &facts(), chan, 0, &mut buf)?;
        Ok(std::string::String::from_utf8(buf[..n].to_vec()).unwrap())
    }

    extern crate std;

    #[test]
    fn modalias_is_vmbus_and_wire_bytes_in_hex() {
        let mut out = [0u8; MODALIAS_LEN];
        modalias(&class::NETWORK, &mut out);
        assert_eq!(&out, b"vmbus:635161f83edfc546913ff2d2f965ed0e");
        let chan = ChannelView::closed(1);
        assert_eq!(
            show(DevAttr::Modalias, &chan).unwrap(),
            "vmbus:635161f83edfc546913ff2d2f965ed0e\n"
        );
    }

    #[test]
    fn guid_attributes_are_braced_lower_case() {
        let chan = ChannelView::closed(1);
        assert_eq!(
            show(DevAttr::ClassId, &chan).unwrap(),
            "{f8615163-df3e-46c5-913f-f2d2f965ed0e}\n"
        );
        assert_eq!(
            show(DevAttr::DeviceId, &chan).unwrap(),
            "{12345678-9abc-def0-1122-334455667788}\n"
        );
    }

    #[test]
    fn numeric_attributes_of_a_closed_channel() {
        let chan = ChannelView::closed(1);
        assert_eq!(show(DevAttr::Id, &chan).unwrap(), "14\n");
        assert_eq!(show(DevAttr::State, &chan).unwrap(), "0\n");
        assert_eq!(show(DevAttr::MonitorId, &chan).unwrap(), "3\n");
        assert_eq!(show(DevAttr::Vendor, &chan).unwrap(), "0x1414\n");
        assert_eq!(show(DevAttr::Device, &chan).unwrap(), "0x3\n");
        assert_eq!(show(DevAttr::ChannelVpMapping, &chan).unwrap(), "14:1\n");
        assert_eq!(show(DevAttr::ServerMonitorPending, &chan).unwrap(), "0\n");
        assert_eq!(show(DevAttr::InReadIndex, &chan), Err(AttrError::NoRing));
        assert_eq!(
            show(DevAttr::OutWriteBytesAvail, &chan),
            Err(AttrError::NoRing)
        );
    }

    #[test]
    fn ring_attributes_of_an_open_channel() {
        let mut chan = ChannelView::closed(0);
        chan.state = ChannelState::Opened;
        chan.inbound = Some(RingView {
            interrupt_mask: 1,
            read_index: 8,
            write_index: 16,
            bytes_to_read: 8,
            bytes_to_write: 4080,
        });
        chan.outbound = Some(RingView {
            interrupt_mask: 0,
            read_index: 0,
            write_index: 0,
            bytes_to_read: 0,
            bytes_to_write: 4088,
        });
        assert_eq!(show(DevAttr::InIntrMask, &chan).unwrap(), "1\n");
        assert_eq!(show(DevAttr::InWriteIndex, &chan).unwrap(), "16\n");
        assert_eq!(show(DevAttr::OutWriteBytesAvail, &chan).unwrap(), "4088\n");
        let mut buf = [0u8; 32];
        let n = show_chan_attr(ChanAttr::ReadAvail, &facts(), &chan, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"8\n");
        assert_eq!(store_chan_attr(ChanAttr::Cpu, &chan, b"1\n"), Ok(1));
    }

    #[test]
    fn channel_attributes_of_a_closed_channel() {
        let chan = ChannelView::closed(1);
        let mut buf = [0u8; 32];
        for (attr, name) in CHAN_ATTRS {
            let r = show_chan_attr(attr, &facts(), &chan, &mut buf);
            match name {
                "out_mask" | "in_mask" | "read_avail" | "write_avail" => {
                    assert_eq!(r, Err(AttrError::NoRing))
                }
                "cpu" => assert_eq!(&buf[..r.unwrap()], b"1\n"),
                "monitor_id" => assert_eq!(&buf[..r.unwrap()], b"3\n"),
                _ => assert_eq!(&buf[..r.unwrap()], b"0\n", "{name}"),
            }
        }
        assert_eq!(
            store_chan_attr(ChanAttr::Cpu, &chan, b"0\n"),
            Err(AttrError::NotOpen)
        );
        assert_eq!(
            store_chan_attr(ChanAttr::Cpu, &chan, b"x\n"),
            Err(AttrError::BadValue)
        );
        assert_eq!(
            store_chan_attr(ChanAttr::Events, &chan, b"0\n"),
            Err(AttrError::Unknown)
        );
    }

    #[test]
    fn small_buffer_is_an_error_not_a_panic() {
        let chan = ChannelView::closed(1);
        for (attr, _) in DEV_ATTRS {
            let mut buf = [0u8; 1];
            let r = show_dev_attr(attr, &facts(), &chan, 0, &mut buf);
            assert!(
                matches!(r, Err(AttrError::NoRoom) | Err(AttrError::NoRing)),
                "{attr:?}: {r:?}"
            );
        }
    }

    #[test]
    fn attribute_names_are_the_c_drivers() {
        assert_eq!(
            DevAttr::from_name("in_write_bytes_avail"),
            Some(DevAttr::InWriteBytesAvail)
        );
        assert_eq!(
            DevAttr::from_name("channel_vp_mapping"),
            Some(DevAttr::ChannelVpMapping)
        );
        assert_eq!(DevAttr::from_name("nope"), None);
        assert_eq!(
            ChanAttr::from_name("subchannel_id"),
            Some(ChanAttr::SubchannelId)
        );
        assert!(DevAttr::ClientMonitorConnId.needs_monitor());
        assert!(!DevAttr::Id.needs_monitor());
        assert!(ChanAttr::Latency.needs_monitor());
    }

    #[test]
    fn device_ids_follow_the_c_table() {
        assert_eq!(dev_type(&class::IDE), 0);
        assert_eq!(dev_type(&class::SCSI), 1);
        assert_eq!(dev_type(&class::NETWORK), 3);
        assert_eq!(dev_type(&class::KEYBOARD), 7);
        assert_eq!(dev_type(&class::MOUSE), 8);
        assert_eq!(dev_type(&class::KVP), 9);
        assert_eq!(dev_type(&class::TIMESYNC), 10);
        assert_eq!(dev_type(&class::HEARTBEAT), 11);
        assert_eq!(dev_type(&class::SHUTDOWN), 12);
        assert_eq!(
            dev_type(&Guid::parse("525074dc-8985-46e2-8057-a307dc18a502").unwrap()),
            15
        );
        assert_eq!(dev_type(&Guid::parse(INSTANCE).unwrap()), DEV_TYPE_UNKNOWN);
    }

    #[test]
    fn add_command_parses_with_defaults() {
        let cmd = Command::parse(
            b"add class={f8615163-df3e-46c5-913f-f2d2f965ed0e} instance=12345678-9abc-def0-1122-334455667788 relid=14 monitor=3 cpu=1\n",
        );
        assert_eq!(cmd, Ok(Command::Add(facts())));
        let cmd = Command::parse(b"add relid=0x10 instance=12345678-9abc-def0-1122-334455667788 class=f8615163-df3e-46c5-913f-f2d2f965ed0e");
        let Ok(Command::Add(f)) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!((f.relid, f.monitor_id, f.target_cpu), (16, None, 0));
    }

    #[test]
    fn remove_and_rescind_parse() {
        let g = Guid::parse(INSTANCE).unwrap();
        assert_eq!(
            Command::parse(b"remove 12345678-9abc-def0-1122-334455667788\n"),
            Ok(Command::Remove(g))
        );
        assert_eq!(
            Command::parse(b"rescind {12345678-9ABC-def0-1122-334455667788}"),
            Ok(Command::Rescind(g))
        );
    }

    #[test]
    fn bad_commands_are_refused() {
        let class = "class=f8615163-df3e-46c5-913f-f2d2f965ed0e";
        let inst = "instance=12345678-9abc-def0-1122-334455667788";
        let cases: &[(&[u8], CommandError)] = &[
            (b"", CommandError::Verb),
            (b"\n", CommandError::Verb),
            (b"frobnicate", CommandError::Verb),
            (b"\xff\xfe", CommandError::Verb),
            (b"remove", CommandError::Missing),
            (b"remove not-a-guid", CommandError::Value),
            (
                b"remove 12345678-9abc-def0-1122-334455667788 extra",
                CommandError::Extra,
            ),
        ];
        for (input, err) in cases {
            assert_eq!(Command::parse(input), Err(*err), "{:?}", input);
        }
        let add = |rest: &str| Command::parse(std::format!("add {class} {inst} {rest}").as_bytes());
        assert_eq!(add("relid=2048"), Err(CommandError::Value));
        assert_eq!(add("relid=-1"), Err(CommandError::Value));
        assert_eq!(add("relid=+1"), Err(CommandError::Value));
        assert_eq!(add("relid=99999999999"), Err(CommandError::Value));
        assert_eq!(add("relid=1 monitor=128"), Err(CommandError::Value));
        assert_eq!(add("relid=1 monitor=300"), Err(CommandError::Value));
        assert_eq!(add("relid=1 relid=2"), Err(CommandError::Key));
        assert_eq!(add("relid=1 colour=blue"), Err(CommandError::Key));
        assert_eq!(add("relid=1 bare"), Err(CommandError::Key));
        assert_eq!(add("relid=1 cpu=x"), Err(CommandError::Value));
        assert_eq!(add(""), Err(CommandError::Missing));
        assert_eq!(
            Command::parse(std::format!("add {class} relid=1").as_bytes()),
            Err(CommandError::Missing)
        );
        assert!(add("relid=2047 monitor=127 cpu=0").is_ok());
    }

    #[test]
    fn parse_survives_every_prefix_of_a_command() {
        let full = b"add class={f8615163-df3e-46c5-913f-f2d2f965ed0e} instance=12345678-9abc-def0-1122-334455667788 relid=14 monitor=3 cpu=1";
        for end in 0..=full.len() {
            let _ = Command::parse(&full[..end]);
        }
    }

    #[test]
    fn monitor_pages_round_trip_every_monitor_id() {
        let mut server = [0u64; 512];
        let mut client = [0u64; 512];
        let server = SharedMem::from_slice(&mut server);
        let client = SharedMem::from_slice(&mut client);
        for id in 0..MAX_MONITOR_ID {
            write_monitor(server, id, 100 + u16::from(id), 0x1_0000 + u32::from(id)).unwrap();
            write_monitor(client, id, 7, 0xff00_0000 | u32::from(id)).unwrap();
        }
        for id in 0..MAX_MONITOR_ID {
            let view = monitor_view(server, client, id);
            assert_eq!(view.server_latency, 100 + u32::from(id), "id {id}");
            assert_eq!(view.server_conn_id, 0x1_0000 + u32::from(id));
            assert_eq!(view.client_latency, 7);
            assert_eq!(view.client_conn_id, u32::from(id), "24-bit connection id");
            assert_eq!(view.server_pending, 0);
        }
        assert_eq!(server.load_u32(0, Ordering::Relaxed), Ok(0b1111), "all four groups enabled");
        assert_eq!(write_monitor(server, MAX_MONITOR_ID, 1, 1), Err(OutOfBounds));
        assert_eq!(read_monitor(server, 200), (0, 0, 0));
    }

    #[test]
    fn ring_view_reads_the_header_and_wraps() {
        let mut mem = [0u64; (ring::HEADER_SIZE + 64) / 8];
        let mem = SharedMem::from_slice(&mut mem);
        mem.store_u32(ring::READ_INDEX_OFFSET, 48, Ordering::Relaxed).unwrap();
        mem.store_u32(ring::WRITE_INDEX_OFFSET, 8, Ordering::Relaxed).unwrap();
        mem.store_u32(ring::INTERRUPT_MASK_OFFSET, 1, Ordering::Relaxed).unwrap();
        let view = RingView::of(mem);
        assert_eq!((view.read_index, view.write_index, view.interrupt_mask), (48, 8, 1));
        assert_eq!((view.bytes_to_read, view.bytes_to_write), (24, 40), "wrapped");
        // A peer's nonsense index is shown, with the room clamped.
        mem.store_u32(ring::WRITE_INDEX_OFFSET, 1000, Ordering::Relaxed).unwrap();
        let view = RingView::of(mem);
        assert_eq!((view.bytes_to_read, view.bytes_to_write), (64, 0));
        assert_eq!(RingView::of(SharedMem::from_slice(&mut [])).bytes_to_write, 0);
    }
}
