// SPDX-License-Identifier: GPL-2.0
//! The simulated host's synthetic NIC (netvsp), from the host's side: the
//! NVSP host state machine, the RNDIS device and the virtual switch of
//! `netvsc_core` put behind a channel.
//!
//! - [`NicModel`], the device model the simulator's registry
//!   (`crate::testing::sim::devices`) lists: the NICs `net` (relid 14,
//!   monitor id 0, in the `default` set) and `nic0`..`nic3` (relids
//!   40..43), the [`NetSwitch`] that joins them, the `sim_net_*` counters
//!   and the debugfs `sim` commands `link NIC up|down` (a link indication)
//!   and `netfault NIC ...` ([`netfault`]; `clear` disarms them).
//!
//! - NVSP: INIT, the NDIS version and config, the receive and send
//!   buffers (their GPADLs mapped as Hyper-V maps guest memory), RNDIS
//!   packets from a send-buffer section or from GPA-direct page ranges,
//!   the guest's completions of received packets.
//! - RNDIS: control messages go to the RNDIS device; its answers, the link
//!   indications and received frames go to the guest the way Hyper-V sends
//!   them: an RNDIS message written into free slots of the guest's receive
//!   buffer, named by a transfer-page packet, and freed by the guest's
//!   completion. With no free slot the frames wait (bounded) until the
//!   guest completes some.
//! - Frames the guest sends go through the [`NetSwitch`] that joins every
//!   simulated NIC: it learns addresses, floods broadcast, multicast and
//!   unknown unicast, and each port's RNDIS packet filter decides what it
//!   takes. Delivery queues the frame on the receiving NIC's port and
//!   kicks that NIC's channel work, so no NIC's lock is taken while
//!   another's is held.
//! - A large frame going whole to one port leaves its NIC with the buffer
//!   its message was read into; its offloads and switching are done after
//!   the NIC's lock is dropped, so the NIC's other channels (the ACKs and
//!   completions of the same flow) are not held up behind it.
//!
//! - Transmit offloads, as Hyper-V's switch does them: a checksum PPI gets
//!   the checksums filled in, an LSOv2 frame is cut into MSS-sized TCP
//!   segments, a VLAN PPI becomes an 802.1Q tag in the switched frame.
//!   Towards a guest, a tag is taken out again and passed as a PPI.
//!
//! A guest message the host cannot take is counted (`sim_net_errors`),
//! logged (rate-limited) and dropped; an RNDIS packet so dropped is
//! completed with a failure status, as Hyper-V does.
//!
//! Faults armed from debugfs ([`netfault`]) rewrite the NIC's
//! completions and received frames on their way out.

pub(crate) mod netfault;

use crate::rust::sim::{read_pages, Mapping};
use crate::rust::base::time::RateLimit;
use crate::rust::base::work::Work;
use crate::drivers::net::proto::frame::{self, VLAN_HLEN};
use crate::drivers::net::proto::netvsp::{rndis_completion, Action, GuestPacket, Netvsp, RndisSource, RX_HEADER_ROOM};
use crate::drivers::net::proto::offload::{coalesce_in_place, fill_checksums, Segmenter};
use crate::drivers::net::proto::ppi::{ChecksumInfo, LsoInfo, PktInfoId, VlanInfo};
use crate::drivers::net::proto::nvsp::{self, Message as Nvsp, RndisChannel, RndisPacket};
use crate::drivers::net::proto::rndis_dev::{DeviceConfig, Outcome, RndisDevice, Rss, RxChecksums, TxFrame};
use crate::drivers::net::proto::vswitch::{Mac, Port, Switch, MAX_PORTS};
use crate::vmbus_core::guid::{class, Guid};
use crate::vmbus_core::ring::{
    self, PacketInfo, TransferPageRange, PACKET_TYPE_COMPLETION, PACKET_TYPE_GPA_DIRECT, PACKET_TYPE_INBAND,
};
use crate::testing::sim::host::GpadlMaps;
use crate::testing::sim::hypervisor::HostRequests;
use crate::testing::sim::chaos::ChaosFault;
use crate::testing::sim::model::{ChannelHook, ChannelModel, Counter, Device, DeviceModel, Opening, Served};
use netfault::{Armed, FaultTable, NET_FAULTS, NET_RX_SLOTS};
use crate::drivers::net::proto::netfault::{TransferPages, GARBAGE_NVSP, RSC_SPLIT};
use crate::testing::sim::vsp::{HostChannel, OutKind, Outbox};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex, SpinLock};
use kernel::{new_mutex, new_spinlock};

pub(crate) static NET_ERRORS: AtomicU64 = AtomicU64::new(0);
pub(crate) static NET_FRAMES_SWITCHED: AtomicU64 = AtomicU64::new(0);
pub(crate) static NET_FRAMES_DELIVERED: AtomicU64 = AtomicU64::new(0);
pub(crate) static NET_FRAMES_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Segments cut from the guests' LSO frames.
pub(crate) static NET_SEGMENTS: AtomicU64 = AtomicU64::new(0);
/// Frames whose checksums the host filled in for a checksum PPI.
pub(crate) static NET_CHECKSUMMED: AtomicU64 = AtomicU64::new(0);
/// LSO frames delivered whole to a guest that coalesces (RSC).
pub(crate) static NET_COALESCED: AtomicU64 = AtomicU64::new(0);
/// Large frames switched in the buffer the guest's message was read into,
/// their offloads done there.
pub(crate) static NET_HANDED_ON: AtomicU64 = AtomicU64::new(0);
/// Frames tagged from a guest's VLAN PPI.
pub(crate) static NET_TAGGED: AtomicU64 = AtomicU64::new(0);
/// Frames a guest sent bigger than the MTU its NDIS config gave (LSO
/// frames aside): dropped, as Hyper-V's port does.
pub(crate) static NET_OVERSIZE: AtomicU64 = AtomicU64::new(0);

/// RSC fragments sent to the guests (coalesced frames, and frames split
/// by the `rsc-split` fault).
pub(crate) static NET_RSC_FRAGMENTS: AtomicU64 = AtomicU64::new(0);
/// Buffers the guests revoked (NVSP REVOKE_RECV_BUF, REVOKE_SEND_BUF).
pub(crate) static NET_REVOKED: AtomicU64 = AtomicU64::new(0);
/// Buffers still mapped when their NIC's channel closed: the guest did
/// not revoke them before their GPADLs went, as Hyper-V expects.
pub(crate) static NET_UNREVOKED: AtomicU64 = AtomicU64::new(0);

static COUNTERS: [Counter; 15] = [
    (kernel::c_str!("sim_net_errors"), &NET_ERRORS),
    (kernel::c_str!("sim_net_switched"), &NET_FRAMES_SWITCHED),
    (kernel::c_str!("sim_net_delivered"), &NET_FRAMES_DELIVERED),
    (kernel::c_str!("sim_net_dropped"), &NET_FRAMES_DROPPED),
    (kernel::c_str!("sim_net_segmented"), &NET_SEGMENTS),
    (kernel::c_str!("sim_net_coalesced"), &NET_COALESCED),
    (kernel::c_str!("sim_net_checksummed"), &NET_CHECKSUMMED),
    (kernel::c_str!("sim_net_tagged"), &NET_TAGGED),
    (kernel::c_str!("sim_net_handed_on"), &NET_HANDED_ON),
    (kernel::c_str!("sim_net_oversize"), &NET_OVERSIZE),
    (kernel::c_str!("sim_net_faults"), &NET_FAULTS),
    (kernel::c_str!("sim_net_rx_slots"), &NET_RX_SLOTS),
    (kernel::c_str!("sim_net_rsc_fragments"), &NET_RSC_FRAGMENTS),
    (kernel::c_str!("sim_net_revoked"), &NET_REVOKED),
    (kernel::c_str!("sim_net_unrevoked"), &NET_UNREVOKED),
];

/// Simulated NIC `n` (`nic0`..`nic3`: relids 40..43).
const fn nic(name: &'static str, n: u8) -> Device {
    Device::numbered(name, class::NETWORK, 0xae, 40 + n as u32, n)
}

static DEVICES: [Device; 5] = [
    Device {
        name: "net",
        class: class::NETWORK,
        instance: Guid::from_fields(0x5151a001, 0x0001, 0x4e7e, [0x8a, 0x11, 0x00, 0x15, 0x5d, 0x00, 0x00, 0x01]),
        relid: 14,
        monitor_id: Some(0),
        default: true,
    },
    nic("nic0", 0),
    nic("nic1", 1),
    nic("nic2", 2),
    nic("nic3", 3),
];

/// The relid of simulated NIC `name`.
fn relid_of(name: &str) -> Option<u32> {
    DEVICES.iter().find(|d| d.name == name).map(|d| d.relid)
}

/// The synthetic NIC model: every simulated NIC, on one switch.
pub(crate) struct NicModel {
    switch: Arc<NetSwitch>,
}

impl DeviceModel for NicModel {
    fn devices() -> &'static [Device] {
        &DEVICES
    }

    fn counters() -> &'static [Counter] {
        &COUNTERS
    }

    fn faults() -> &'static [ChaosFault] {
        &netfault::CHAOS_FAULTS
    }

    fn new() -> Result<Self> {
        Ok(NicModel { switch: NetSwitch::new()? })
    }

    /// `link NIC up|down`, `netfault NIC KIND [COUNT]`, `netfault NIC off`.
    fn command(&self, words: &[&str]) -> Option<Result> {
        match words.split_first() {
            Some((&"link", args)) => Some(self.link(args)),
            Some((&"netfault", args)) => Some(netfault::command(&self.switch, args)),
            _ => None,
        }
    }

    fn clear(&self) {
        self.switch.clear_faults();
    }

    /// A primary channel makes the NIC's state on a new switch port; a
    /// subchannel serves the state its primary made.
    fn open(&self, channel: &Opening<'_>) -> Result<Served> {
        let queue = channel.index;
        let (nic, port) = if queue == 0 {
            Nic::new(channel.relid, &self.switch, channel.maps.clone(), channel.requests.clone())?
        } else {
            let primary = self.switch.port_of(channel.device.relid).ok_or(ENODEV)?;
            (primary.nic().ok_or(ENODEV)?, primary)
        };
        let hook = Arc::new(NicQueue { port: port.clone(), queue }, GFP_KERNEL);
        let served = hook.map_err(Error::from).and_then(|h| Served::new(NicChannel { nic, queue }, Some(h)));
        if served.is_err() {
            port.detach(queue);
        }
        served
    }
}

impl NicModel {
    /// debugfs `link NIC up|down`.
    fn link(&self, args: &[&str]) -> Result {
        let [name, state] = args else {
            return Err(EINVAL);
        };
        let up = match *state {
            "up" => true,
            "down" => false,
            _ => return Err(EINVAL),
        };
        let relid = relid_of(name).ok_or(ENOENT)?;
        self.switch.port_of(relid).ok_or(ENOENT)?.set_link(up);
        Ok(())
    }
}

/// Channel `queue` of a NIC on its switch port: frames for it kick its
/// work; closing it takes it off the port (the primary's closing takes
/// the port off the switch).
struct NicQueue {
    port: Arc<NicPort>,
    queue: u16,
}

impl ChannelHook for NicQueue {
    fn serving(&self, work: Arc<Work<HostChannel>>) {
        self.port.attach(self.queue, work);
    }

    fn closed(&self) {
        self.port.detach(self.queue);
    }
}

/// Frames, and bytes of them, a port holds for its guest; more are
/// dropped, as a switch port's queue overflows. Deep enough for the
/// segments of the TSO frames a guest has in flight.
const PORT_QUEUE: usize = 1024;
const PORT_QUEUE_BYTES: usize = 8 << 20;
/// The largest RNDIS message the host takes from the guest or builds for
/// it: a 64 KiB frame and its headers.
const MAX_MESSAGE: usize = 65536 + 512;
/// The most pages one GPA-direct range may name: a 64 KiB message and
/// its headers, from any offset.
const MAX_RANGE_PAGES: usize = 18;
/// Channels per simulated NIC: the primary and up to 7 subchannels (the
/// host's limit; a guest takes one per CPU of them).
pub(crate) const MAX_CHANNELS: usize = 8;
/// The most RSC fragments of one frame the host sends: a 64 KiB frame in
/// sections of 1728 bytes is 41.
const RSC_FRAGMENTS_MAX: usize = 64;
/// Received frames written per service round.
const RX_BATCH: usize = 32;
/// A frame at least this long that goes to one port is handed on in the
/// buffer its message was read into (its offloads done there), not copied.
const HAND_ON_MIN: usize = 2048;
/// Message buffers the switch keeps for reuse once a handed-on frame is
/// delivered.
const SPARE_MESSAGES: usize = 64;

/// Logs a bad guest message, at most a few times a second.
fn guest_error(relid: u32, what: &str) {
    NET_ERRORS.fetch_add(1, Ordering::Relaxed);
    static LIMIT: RateLimit = RateLimit::new(200);
    if LIMIT.allow() {
        pr_err!("sim: nic relid {}: {}; dropped\n", relid, what);
    }
}

/// A frame's bytes on their way to a port's guest.
enum FrameBytes {
    /// A copy of its own.
    Copy(KVec<u8>),
    /// `buf[start..start + len]` of the message buffer the sending guest's
    /// message was read into, handed on whole.
    HandedOn { buf: VVec<u8>, start: usize, len: usize },
}

impl FrameBytes {
    fn len(&self) -> usize {
        match self {
            FrameBytes::Copy(bytes) => bytes.len(),
            FrameBytes::HandedOn { len, .. } => *len,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            FrameBytes::Copy(bytes) => bytes,
            FrameBytes::HandedOn { buf, start, len } => buf.get(*start..start.saturating_add(*len)).unwrap_or(&[]),
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            FrameBytes::Copy(bytes) => bytes,
            FrameBytes::HandedOn { buf, start, len } => {
                buf.get_mut(*start..start.saturating_add(*len)).unwrap_or(&mut [])
            }
        }
    }
}

/// Where a frame a guest sent lies in the NIC's message buffer, and the
/// offloads it asks for: a frame [`Nic::hand_on`] switches in place.
struct InPlace {
    at: core::ops::Range<usize>,
    checksum: Option<ChecksumInfo>,
    lso: Option<LsoInfo>,
    vlan: Option<VlanInfo>,
}

/// What became of a guest's RNDIS message.
enum Taken {
    /// Done: whether it was taken.
    Now(bool),
    /// A frame to hand on ([`Nic::hand_on`]).
    HandOn(InPlace),
}

/// A large frame in the message buffer it was read into, taken out of its
/// NIC, and what its completion needs.
struct HandOn {
    buf: VVec<u8>,
    frame: InPlace,
    transaction_id: u64,
    port: Arc<NicPort>,
    faults: Arc<Armed>,
    relid: u32,
}

impl HandOn {
    /// Switches the frame without copying it: its offloads are done where
    /// it lies (an LSO frame made the one coalesced segment, the checksums
    /// filled, the tag put in the room the RNDIS header leaves before it)
    /// and the buffer goes with it. Then completes the guest's packet.
    fn finish(mut self, out: &mut Outbox) {
        let done = offload_in_place(&mut self.buf, &self.frame);
        let switch = &self.port.switch;
        let ok = match done {
            Ok((start, len, checksums)) => {
                NET_HANDED_ON.fetch_add(1, Ordering::Relaxed);
                switch.forward_bytes(self.port.index, FrameBytes::HandedOn { buf: self.buf, start, len }, checksums);
                true
            }
            Err(()) => {
                offload_refused(self.relid);
                switch.keep_message(self.buf);
                false
            }
        };
        complete(&self.faults, self.relid, self.transaction_id, &rndis_completion(ok), out);
    }
}

/// Completes the guest's packet `tid` with `message` (unless an armed
/// fault rewrites the completion).
fn complete(faults: &Armed, relid: u32, tid: u64, message: &Nvsp, out: &mut Outbox) {
    if let Ok(m) = message.encode() {
        netfault::complete(faults, relid, tid, m.bytes(), out);
    }
}

/// The offloads of the frame at `frame.at` in `message`, done where it
/// lies: where the result starts (its tag included), its length and its
/// checksum state.
fn offload_in_place(message: &mut [u8], frame: &InPlace) -> core::result::Result<(usize, usize, RxChecksums), ()> {
    let body = message.get_mut(frame.at.clone()).ok_or(())?;
    let mut start = frame.at.start;
    let mut len = body.len();
    let mut checksums = RxChecksums::Unverified;
    if let Some(lso) = frame.lso {
        len = coalesce_in_place(body, lso).map_err(|_| ())?;
        NET_COALESCED.fetch_add(1, Ordering::Relaxed);
        checksums = RxChecksums::Filled;
    } else if let Some(c) = frame.checksum {
        fill_checksums(body, c).map_err(|_| ())?;
        NET_CHECKSUMMED.fetch_add(1, Ordering::Relaxed);
        checksums = RxChecksums::Filled;
    }
    if let Some(v) = frame.vlan {
        start = start.checked_sub(VLAN_HLEN).ok_or(())?;
        len = len.saturating_add(VLAN_HLEN);
        let tagged = message.get_mut(start..start.saturating_add(len)).ok_or(())?;
        if !frame::retag(tagged, v.tci()) {
            return Err(());
        }
        NET_TAGGED.fetch_add(1, Ordering::Relaxed);
    }
    Ok((start, len, checksums))
}

/// Logs a frame whose offload request it does not fit.
fn offload_refused(relid: u32) {
    guest_error(relid, "offload request the frame does not fit");
}

/// A frame waiting for a port's guest.
struct QueuedFrame {
    bytes: FrameBytes,
    /// Whether the host filled its checksums in (then they are not read
    /// again to be claimed good).
    checksums: RxChecksums,
}

/// Frames waiting for one port's guest, oldest first.
struct FrameQueue {
    frames: KVec<Option<QueuedFrame>>,
    head: usize,
    len: usize,
    bytes: usize,
}

impl FrameQueue {
    fn new() -> Result<Self> {
        let mut frames = KVec::with_capacity(PORT_QUEUE, GFP_KERNEL)?;
        for _ in 0..PORT_QUEUE {
            frames.push(None, GFP_KERNEL)?;
        }
        Ok(FrameQueue { frames, head: 0, len: 0, bytes: 0 })
    }

    /// Queues `frame`; gives it back if the queue is full.
    fn push(&mut self, frame: QueuedFrame) -> core::result::Result<(), QueuedFrame> {
        if self.len >= PORT_QUEUE || self.bytes + frame.bytes.len() > PORT_QUEUE_BYTES {
            return Err(frame);
        }
        let at = (self.head + self.len) % PORT_QUEUE;
        match self.frames.get_mut(at) {
            Some(slot) => {
                self.bytes += frame.bytes.len();
                *slot = Some(frame);
                self.len += 1;
                Ok(())
            }
            None => Err(frame),
        }
    }

    fn pop(&mut self) -> Option<QueuedFrame> {
        if self.len == 0 {
            return None;
        }
        let frame = self.frames.get_mut(self.head)?.take();
        self.head = (self.head + 1) % PORT_QUEUE;
        self.len -= 1;
        self.bytes -= frame.as_ref().map_or(0, |f| f.bytes.len());
        frame
    }

    /// Puts a frame back at the front (it could not be delivered yet).
    fn unpop(&mut self, frame: QueuedFrame) {
        if self.len >= PORT_QUEUE {
            return;
        }
        self.head = (self.head + PORT_QUEUE - 1) % PORT_QUEUE;
        if let Some(slot) = self.frames.get_mut(self.head) {
            self.bytes += frame.bytes.len();
            *slot = Some(frame);
            self.len += 1;
        }
    }
}

/// A link change asked for through debugfs, not yet told to the guest.
const LINK_NO_CHANGE: u8 = 0;
const LINK_UP: u8 = 1;
const LINK_DOWN: u8 = 2;

/// One NIC's port on the switch: the frames waiting for its guest and the
/// channel work that delivers them.
#[pin_data]
struct NicPort {
    switch: Arc<NetSwitch>,
    /// The switch's number for this port.
    index: usize,
    /// Frames waiting for the guest, one queue per channel.
    #[pin]
    frames: Mutex<KVec<FrameQueue>>,
    /// Each open channel's work; cleared when the channel goes.
    #[pin]
    kick: Mutex<[Option<Arc<Work<HostChannel>>>; MAX_CHANNELS]>,
    /// A link change to indicate ([`LINK_UP`], [`LINK_DOWN`]).
    link: AtomicU8,
    /// The guest takes a flow's segments coalesced (RSC is on).
    coalesces: AtomicBool,
    /// The guest's RSS settings, which pick a frame's channel.
    #[pin]
    rss: Mutex<Option<Rss>>,
    /// The NIC's state, for its subchannels' models; cleared when the
    /// primary channel goes.
    #[pin]
    nic: Mutex<Option<SharedNic>>,
}

impl NicPort {
    /// From now on deliveries for channel `queue` queue `work`.
    fn attach(&self, queue: u16, work: Arc<Work<HostChannel>>) {
        if let Some(slot) = self.kick.lock().get_mut(usize::from(queue)) {
            *slot = Some(work);
        }
    }

    /// Channel `queue` closed; the primary's closing (or the device's
    /// going) takes the port off the switch.
    fn detach(&self, queue: u16) {
        if queue != 0 {
            let work = self.kick.lock().get_mut(usize::from(queue)).and_then(Option::take);
            drop(work);
            return;
        }
        let mut ports = self.switch.ports.lock();
        ports.switch.remove_port(self.index);
        if let Some(p) = ports.ports.get_mut(self.index) {
            *p = None;
        }
        drop(ports);
        let works = core::mem::take(&mut *self.kick.lock());
        drop(works);
        let nic = self.nic.lock().take();
        drop(nic);
    }

    /// The NIC's state, while its primary channel is open.
    fn nic(&self) -> Option<SharedNic> {
        self.nic.lock().clone()
    }

    /// Runs channel `queue`'s work; false if that channel is not open.
    fn kick(&self, queue: u16) -> bool {
        match self.kick.lock().get(usize::from(queue)) {
            Some(Some(work)) => {
                work.queue_on(u32::MAX);
                true
            }
            _ => false,
        }
    }

    /// Queues a copy of `frame` for this port's guest.
    fn deliver(&self, frame: &[u8], checksums: RxChecksums) {
        let mut bytes = KVec::new();
        if bytes.extend_from_slice(frame, GFP_KERNEL).is_err() {
            NET_FRAMES_DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.deliver_bytes(FrameBytes::Copy(bytes), checksums);
    }

    /// Queues `bytes` for this port's guest, on the channel its RSS hash
    /// picks (the primary without RSS, or if that one is not open).
    fn deliver_bytes(&self, bytes: FrameBytes, checksums: RxChecksums) {
        let frame = bytes.bytes();
        let rss = self.rss.lock().as_ref().and_then(|r| r.hash(frame).map(|(value, _)| r.queue_for(value)));
        let mut queue = rss.unwrap_or(0);
        if self.kick.lock().get(usize::from(queue)).is_none_or(Option::is_none) {
            queue = 0;
        }
        let frame = QueuedFrame { bytes, checksums };
        let queued = match self.frames.lock().get_mut(usize::from(queue)) {
            Some(q) => q.push(frame),
            None => Err(frame),
        };
        if let Err(frame) = queued {
            NET_FRAMES_DROPPED.fetch_add(1, Ordering::Relaxed);
            self.switch.recycle(frame.bytes);
            return;
        }
        self.kick(queue);
    }

    /// debugfs: the link goes up or down.
    fn set_link(&self, up: bool) {
        self.link.store(if up { LINK_UP } else { LINK_DOWN }, Ordering::SeqCst);
        self.kick(0);
    }
}

struct Ports {
    switch: KBox<Switch>,
    ports: [Option<Arc<NicPort>>; MAX_PORTS],
    /// Which device (its relid) each port belongs to.
    relids: [u32; MAX_PORTS],
}

/// The virtual switch joining every simulated NIC.
#[pin_data]
struct NetSwitch {
    #[pin]
    ports: Mutex<Ports>,
    /// Each NIC's armed fault, kept across its channel's lives.
    #[pin]
    faults: Mutex<FaultTable>,
    /// Message buffers of delivered handed-on frames, for the next.
    #[pin]
    spare_messages: SpinLock<[Option<VVec<u8>>; SPARE_MESSAGES]>,
}

impl NetSwitch {
    fn new() -> Result<Arc<Self>> {
        const EMPTY: Switch = Switch::new();
        let switch = KBox::<Switch>::new_uninit(GFP_KERNEL)?.write(EMPTY);
        Arc::pin_init(
            pin_init!(NetSwitch {
                ports <- new_mutex!(Ports { switch, ports: Default::default(), relids: [0; MAX_PORTS] }, "sim_switch"),
                faults <- new_mutex!(FaultTable::new(), "sim_switch_faults"),
                spare_messages <- new_spinlock!([const { None }; SPARE_MESSAGES], "sim_switch_spares"),
            }),
            GFP_KERNEL,
        )
    }

    /// A new port for the NIC of `relid` with address `mac`; it takes
    /// nothing until the guest sets a packet filter.
    fn add_port(self: &Arc<Self>, relid: u32, mac: Mac) -> Result<Arc<NicPort>> {
        let mut frames = KVec::with_capacity(MAX_CHANNELS, GFP_KERNEL)?;
        for _ in 0..MAX_CHANNELS {
            frames.push(FrameQueue::new()?, GFP_KERNEL)?;
        }
        let mut ports = self.ports.lock();
        let index = ports.switch.add_port(Port::new(Some(mac), 0)).ok_or(ENOSPC)?;
        let port = Arc::pin_init(
            pin_init!(NicPort {
                switch: self.clone(),
                index,
                frames <- new_mutex!(frames, "sim_nic_frames"),
                kick <- new_mutex!(Default::default(), "sim_nic_kick"),
                link: AtomicU8::new(LINK_NO_CHANGE),
                coalesces: AtomicBool::new(false),
                rss <- new_mutex!(None, "sim_nic_rss"),
                nic <- new_mutex!(None, "sim_nic_state"),
            }),
            GFP_KERNEL,
        );
        let port = match port {
            Ok(p) => p,
            Err(e) => {
                ports.switch.remove_port(index);
                return Err(e);
            }
        };
        if let Some(slot) = ports.ports.get_mut(index) {
            *slot = Some(port.clone());
        }
        if let Some(r) = ports.relids.get_mut(index) {
            *r = relid;
        }
        Ok(port)
    }

    /// The armed fault of the NIC with `relid` (debugfs and the NIC's
    /// model share it).
    fn faults_of(&self, relid: u32) -> Result<Arc<Armed>> {
        self.faults.lock().of(relid)
    }

    /// Disarms every NIC's fault.
    fn clear_faults(&self) {
        self.faults.lock().clear();
    }

    /// The port of the NIC with `relid`, if its channel is open.
    fn port_of(&self, relid: u32) -> Option<Arc<NicPort>> {
        let ports = self.ports.lock();
        (0..MAX_PORTS)
            .find(|&i| ports.relids.get(i) == Some(&relid) && ports.ports.get(i).is_some_and(Option::is_some))
            .and_then(|i| ports.ports.get(i).cloned().flatten())
    }

    /// The one port a frame from `from` goes to, if its destination is a
    /// known unicast address on another port.
    fn unicast_port(&self, from: usize, frame: &[u8]) -> Option<Arc<NicPort>> {
        let dst = frame::dst_mac(frame).filter(|d| !frame::is_group(d))?;
        let ports = self.ports.lock();
        let to = ports.switch.lookup(&dst).filter(|&p| p != from)?;
        ports.ports.get(to).cloned().flatten()
    }

    /// Switches a frame from port `from`.
    fn forward(&self, from: usize, frame: &[u8], checksums: RxChecksums) {
        for port in self.targets(from, frame).iter().flatten() {
            port.deliver(frame, checksums);
        }
    }

    /// Switches a frame from port `from` that comes in a buffer of its
    /// own: the last port it goes to gets the buffer, any other a copy.
    fn forward_bytes(&self, from: usize, bytes: FrameBytes, checksums: RxChecksums) {
        let targets = self.targets(from, bytes.bytes());
        let mut ports = targets.iter().flatten().peekable();
        while let Some(port) = ports.next() {
            if ports.peek().is_none() {
                return port.deliver_bytes(bytes, checksums);
            }
            port.deliver(bytes.bytes(), checksums);
        }
        self.recycle(bytes);
    }

    /// The ports a frame from `from` goes to (learning its source).
    fn targets(&self, from: usize, frame: &[u8]) -> [Option<Arc<NicPort>>; MAX_PORTS] {
        let mut targets: [Option<Arc<NicPort>>; MAX_PORTS] = Default::default();
        let mut ports = self.ports.lock();
        let Ok(set) = ports.switch.forward(from, frame) else {
            NET_FRAMES_DROPPED.fetch_add(1, Ordering::Relaxed);
            return targets;
        };
        for i in set.iter() {
            if let (Some(t), Some(p)) = (targets.get_mut(i), ports.ports.get(i)) {
                t.clone_from(p);
            }
        }
        NET_FRAMES_SWITCHED.fetch_add(1, Ordering::Relaxed);
        targets
    }

    /// A message buffer for a NIC whose last one was handed on: a spare,
    /// else a new one.
    fn spare_message(&self) -> Option<VVec<u8>> {
        let spare = self.spare_messages.lock().iter_mut().find_map(Option::take);
        spare.or_else(|| VVec::from_elem(0u8, MAX_MESSAGE, GFP_KERNEL).ok())
    }

    /// Keeps the buffer of a handed-on frame that has been delivered (or
    /// dropped) for the next, while there is room.
    fn recycle(&self, bytes: FrameBytes) {
        if let FrameBytes::HandedOn { buf, .. } = bytes {
            self.keep_message(buf);
        }
    }

    /// Keeps a message buffer for the next NIC whose buffer is handed on,
    /// while there is room.
    fn keep_message(&self, buf: VVec<u8>) {
        if let Some(slot) = self.spare_messages.lock().iter_mut().find(|s| s.is_none()) {
            *slot = Some(buf);
        }
    }

    /// The guest of port `index` set this filter and multicast list.
    fn set_filter(&self, index: usize, filter: u32, multicast: &[Mac]) {
        let mut ports = self.ports.lock();
        if let Some(p) = ports.switch.port_mut(index) {
            p.filter = filter;
            let _ = p.set_multicast(multicast);
        }
    }
}

/// The address of simulated NIC `n`: Hyper-V's OUI 00:15:5d.
fn nic_mac(relid: u32) -> Mac {
    [0x00, 0x15, 0x5d, 0x00, 0x4e, relid as u8]
}

/// A NIC's state, shared by the models of its channels.
type SharedNic = Arc<Mutex<Nic>>;

/// One simulated NIC: the NVSP and RNDIS state and the buffers its
/// channels share.
struct Nic {
    relid: u32,
    nvsp: KBox<Netvsp>,
    rndis: KBox<RndisDevice>,
    port: Arc<NicPort>,
    maps: Arc<GpadlMaps>,
    requests: Arc<HostRequests>,
    /// The guest's receive and send buffers, as mapped.
    recv: Option<Arc<Mapping>>,
    send: Option<Arc<Mapping>>,
    /// An RNDIS message from the guest, copied out.
    message: VVec<u8>,
    /// An RNDIS message for the guest, being built.
    reply: VVec<u8>,
    /// A frame of the guest's being offloaded: the frame (or segment)
    /// starts [`VLAN_HLEN`] bytes in, leaving room for a tag.
    offloaded: VVec<u8>,
    /// The fault debugfs armed for this NIC.
    faults: Arc<Armed>,
    /// Receive-buffer slots in use, as last added to `sim_net_rx_slots`.
    slots_counted: usize,
}

impl Nic {
    /// The state of NIC `relid`, whose primary channel was just opened,
    /// on a new switch port.
    /// The big state (kilobytes) is copied from constants into its boxes,
    /// never built on the stack.
    fn new(
        relid: u32,
        switch: &Arc<NetSwitch>,
        maps: Arc<GpadlMaps>,
        requests: Arc<HostRequests>,
    ) -> Result<(SharedNic, Arc<NicPort>)> {
        let mac = nic_mac(relid);
        let mut config = DeviceConfig::new(mac);
        config.rss_queues = MAX_CHANNELS as u32;
        let mut nvsp = KBox::<Netvsp>::new_uninit(GFP_KERNEL)?.write(Netvsp::DEFAULT);
        nvsp.set_max_subchannels(MAX_CHANNELS as u32 - 1);
        let rndis = KBox::<RndisDevice>::new_uninit(GFP_KERNEL)?.write(RndisDevice::new(config));
        let message = VVec::from_elem(0u8, MAX_MESSAGE, GFP_KERNEL)?;
        let reply = VVec::from_elem(0u8, MAX_MESSAGE, GFP_KERNEL)?;
        let offloaded = VVec::from_elem(0u8, MAX_MESSAGE, GFP_KERNEL)?;
        let faults = switch.faults_of(relid)?;
        let port = switch.add_port(relid, mac)?;
        let nic = Nic {
            relid,
            nvsp,
            rndis,
            port: port.clone(),
            maps,
            requests,
            recv: None,
            send: None,
            message,
            reply,
            offloaded,
            faults,
            slots_counted: 0,
        };
        match Arc::pin_init(new_mutex!(nic, "sim_nic"), GFP_KERNEL) {
            Ok(shared) => {
                *port.nic.lock() = Some(shared.clone());
                Ok((shared, port))
            }
            Err(e) => {
                port.detach(0);
                Err(e)
            }
        }
    }

    /// Brings `sim_net_rx_slots` up to date with this NIC's slots in use.
    fn count_slots(&mut self) {
        let now = self.nvsp.receive_slots_in_use();
        if now >= self.slots_counted {
            NET_RX_SLOTS.fetch_add((now - self.slots_counted) as u64, Ordering::Relaxed);
        } else {
            NET_RX_SLOTS.fetch_sub((self.slots_counted - now) as u64, Ordering::Relaxed);
        }
        self.slots_counted = now;
    }

    /// Copies the RNDIS message of a guest packet out of `source` into
    /// `self.message`; its length.
    fn copy_message(&mut self, source: RndisSource, gpa_header: &[u8]) -> Option<usize> {
        match source {
            RndisSource::SendBuffer { offset, len, .. } => {
                let len = len as usize;
                let map = self.send.as_ref()?;
                // SAFETY: used only here, while `map` lives.
                let mem = unsafe { map.shared_static() };
                mem.read_bytes(offset as usize, self.message.get_mut(..len)?).ok()?;
                Some(len)
            }
            RndisSource::PageRanges { .. } => {
                let mut done = 0usize;
                for (range, pfn_bytes) in ring::parse_gpa_direct(gpa_header).ok()? {
                    let mut pfns = [0u64; MAX_RANGE_PAGES];
                    let count = pfn_bytes.len() / 8;
                    for (i, pfn) in pfns.iter_mut().enumerate().take(count) {
                        let at = i * 8;
                        *pfn = u64::from_le_bytes(pfn_bytes.get(at..at + 8)?.try_into().ok()?);
                    }
                    let end = done.checked_add(range.byte_count as usize)?;
                    let pages = pfns.get(..count)?;
                    read_pages(pages, u64::from(range.byte_offset), self.message.get_mut(done..end)?).ok()?;
                    done = end;
                }
                Some(done)
            }
        }
    }

    /// Writes the `len`-byte RNDIS message in `self.reply` into free slots
    /// of the guest's receive buffer and names them in a transfer-page
    /// packet; false when no slot is free (try again after the guest's
    /// completions) or nothing is mapped.
    fn to_guest(&mut self, len: usize, out: &mut Outbox) -> bool {
        self.to_guest_parts(len, &[], out)
    }

    /// [`Nic::to_guest`] of a message whose first `head` bytes are in
    /// `self.reply` and the rest is `data`, which goes straight into the
    /// receive buffer (unless a frame fault is armed, which rewrites the
    /// whole message).
    fn to_guest_parts(&mut self, head: usize, data: &[u8], out: &mut Outbox) -> bool {
        let Some(len) = head.checked_add(data.len()) else { return false };
        if !data.is_empty() && self.faults.armed_for(netfault::Target::Frame) {
            let Some(rest) = self.reply.get_mut(head..len) else { return false };
            rest.copy_from_slice(data);
            return self.to_guest_parts(len, &[], out);
        }
        let (Some(recv), Some(buffer)) = (self.recv.as_ref(), self.nvsp.receive_buffer()) else {
            return false;
        };
        let Ok(len32) = u32::try_from(len) else { return false };
        let Some(range) = self.nvsp.alloc_receive(len32) else {
            return false;
        };
        // SAFETY: used only here, while `recv` lives.
        let mem = unsafe { recv.shared_static() };
        let mut packet = TransferPages { set_id: buffer.id, offset: range.offset, len: len32, nvsp_rndis: true };
        if data.is_empty() {
            if let Some(m) = self.reply.get_mut(..len) {
                packet = netfault::frame(&self.faults, self.relid, m, packet, buffer.size, buffer.section.sub_alloc_size);
            }
        }
        let offset = range.offset as usize;
        let written = self.reply.get(..head).is_some_and(|m| mem.write_bytes(offset, m).is_ok())
            && (data.is_empty() || mem.write_bytes(offset + head, data).is_ok());
        let header = Nvsp::SendRndisPacket(RndisPacket {
            channel: RndisChannel::Data,
            section_index: nvsp::NO_SECTION,
            section_size: 0,
        })
        .encode();
        let pushed = match (written, header) {
            (true, Ok(header)) => out
                .push(
                    OutKind::TransferPages { set_id: packet.set_id, offset: packet.offset, len: packet.len },
                    range.transaction_id,
                    if packet.nvsp_rndis { header.bytes() } else { &GARBAGE_NVSP },
                )
                .is_ok(),
            _ => false,
        };
        if !pushed {
            self.nvsp.complete_receive(range.transaction_id);
        }
        self.count_slots();
        pushed
    }

    /// Sends the frame `data` to the guest as RSC fragments, as a host
    /// that coalesces does: in at least `pieces` fragments, each an RNDIS
    /// data packet with the frame's PPIs and its `RNDIS_PKTINFO_ID` marks
    /// in a receive section of its own, all named by one transfer-page
    /// packet (the sections are one run, freed by its completion).
    /// `Some(false)` when no run of sections is free yet (try again after
    /// the guest's completions), `None` when the guest cannot take the
    /// frame (it does not coalesce, or it needs too many fragments).
    fn to_guest_fragments(
        &mut self,
        data: &[u8],
        vlan: Option<VlanInfo>,
        checksums: RxChecksums,
        pieces: usize,
        out: &mut Outbox,
    ) -> Option<bool> {
        if pieces <= 1 && !self.port.coalesces.load(Ordering::Relaxed) {
            return None;
        }
        let (Some(recv), Some(buffer)) = (self.recv.as_ref(), self.nvsp.receive_buffer()) else {
            return Some(false);
        };
        let slot = buffer.section.sub_alloc_size as usize;
        let room = slot.checked_sub(RX_HEADER_ROOM as usize).filter(|&r| r > 0)?;
        let pieces = pieces.max(data.len().div_ceil(room)).max(1);
        let chunk = data.len().div_ceil(pieces);
        if pieces > RSC_FRAGMENTS_MAX || chunk == 0 || chunk > room {
            return None;
        }
        let run = u32::try_from(pieces.checked_mul(slot)?).ok()?;
        let Some(range) = self.nvsp.alloc_receive(run) else {
            return Some(false);
        };
        // SAFETY: used only here, while `recv` lives.
        let mem = unsafe { recv.shared_static() };
        let mut ranges = [TransferPageRange::default(); RSC_FRAGMENTS_MAX];
        let mut written = true;
        for (i, (part, r)) in data.chunks(chunk).zip(ranges.iter_mut()).enumerate() {
            let mut flags = PktInfoId::SUBALLOC;
            if i == 0 {
                flags |= PktInfoId::FIRST_FRAG;
            }
            if i + 1 == pieces {
                flags |= PktInfoId::LAST_FRAG;
            }
            let id = PktInfoId { version: 1, flags, packet_id: 0 };
            let built = self.rndis.build_rx_fragment_header(data, vlan, checksums, Some(id), part.len(), &mut self.reply);
            let Ok((head, _)) = built else {
                written = false;
                break;
            };
            let offset = (range.offset as usize).saturating_add(i.saturating_mul(slot));
            written &= self.reply.get(..head).is_some_and(|m| mem.write_bytes(offset, m).is_ok())
                && mem.write_bytes(offset.saturating_add(head), part).is_ok();
            // CAST: within one section.
            *r = TransferPageRange { byte_count: (head + part.len()) as u32, byte_offset: offset as u32 };
        }
        let header = Nvsp::SendRndisPacket(RndisPacket {
            channel: RndisChannel::Data,
            section_index: nvsp::NO_SECTION,
            section_size: 0,
        })
        .encode();
        let pushed = match (written, header, ranges.get(..pieces)) {
            (true, Ok(header), Some(ranges)) => {
                out.push_ranges(buffer.id, ranges, range.transaction_id, header.bytes()).is_ok()
            }
            _ => false,
        };
        if pushed {
            NET_RSC_FRAGMENTS.fetch_add(pieces as u64, Ordering::Relaxed);
        } else {
            self.nvsp.complete_receive(range.transaction_id);
        }
        self.count_slots();
        Some(pushed)
    }

    /// Hands an RNDIS message to the device; returns whether it was taken,
    /// or the frame in it to hand on.
    fn rndis(&mut self, len: usize, out: &mut Outbox) -> Taken {
        let Some(message) = self.message.get(..len) else { return Taken::Now(false) };
        match self.rndis.on_message(message, &mut self.reply) {
            Ok(Outcome::Reply(n)) => {
                self.port.switch.set_filter(self.port.index, self.rndis.packet_filter(), self.rndis.multicast());
                self.port.coalesces.store(self.rndis.coalesces(), Ordering::Relaxed);
                *self.port.rss.lock() = self.rndis.rss().copied();
                if !self.to_guest(n, out) {
                    guest_error(self.relid, "no receive buffer room for an RNDIS reply");
                }
                Taken::Now(true)
            }
            Ok(Outcome::Frame(frame)) => {
                if frame.lso.is_none() && frame.data.len() > self.frame_limit() {
                    NET_OVERSIZE.fetch_add(1, Ordering::Relaxed);
                    return Taken::Now(true);
                }
                if self.goes_whole_to_one_port(&frame) {
                    let at = frame.offset..frame.offset.saturating_add(frame.data.len());
                    return Taken::HandOn(InPlace { at, checksum: frame.checksum, lso: frame.lso, vlan: frame.vlan });
                }
                let sent = send_offloaded(&self.port, &mut self.offloaded, &frame);
                Taken::Now(sent.map_err(|()| offload_refused(self.relid)).is_ok())
            }
            Ok(Outcome::Nothing) => Taken::Now(true),
            Err(_) => {
                guest_error(self.relid, "malformed RNDIS message");
                Taken::Now(false)
            }
        }
    }

    /// Whether a frame is large and goes, whole, to one known port (an
    /// LSO frame only to a guest that coalesces): then [`Nic::hand_on`].
    fn goes_whole_to_one_port(&self, frame: &TxFrame<'_>) -> bool {
        frame.data.len() >= HAND_ON_MIN
            && self
                .port
                .switch
                .unicast_port(self.port.index, frame.data)
                .is_some_and(|to| frame.lso.is_none() || to.coalesces.load(Ordering::Relaxed))
    }

    /// Takes the message buffer, with the frame at `frame.at` in it, out
    /// of the NIC (which gets a spare for its next message), to be
    /// switched once the NIC's lock is dropped ([`HandOn::finish`]).
    /// Without a spare the frame's offloads are done where it lies and it
    /// is copied as any other; then the packet is completed now.
    fn hand_on(&mut self, frame: InPlace, transaction_id: u64, out: &mut Outbox) -> Option<HandOn> {
        let Some(spare) = self.port.switch.spare_message() else {
            let done = offload_in_place(&mut self.message, &frame).and_then(|(start, len, checksums)| {
                let done = self.message.get(start..start.saturating_add(len)).ok_or(())?;
                self.port.switch.forward(self.port.index, done, checksums);
                Ok(())
            });
            let done = done.map_err(|()| offload_refused(self.relid));
            self.complete(transaction_id, &rndis_completion(done.is_ok()), out);
            return None;
        };
        Some(HandOn {
            buf: core::mem::replace(&mut self.message, spare),
            frame,
            transaction_id,
            port: self.port.clone(),
            faults: self.faults.clone(),
            relid: self.relid,
        })
    }

    /// The largest frame the guest may send: what its NDIS config said
    /// (the MTU and the Ethernet header), else Ethernet's 1514, with room
    /// for an 802.1Q tag in the frame (a guest with VLAN offload off).
    fn frame_limit(&self) -> usize {
        self.nvsp.ndis_config().map_or(1514, |c| c.mtu as usize) + VLAN_HLEN
    }

    fn nvsp_packet(&mut self, queue: u16, info: &PacketInfo, bytes: &[u8], out: &mut Outbox, later: &mut Option<HandOn>) {
        let tid = info.descriptor.transaction_id;
        let header = info.header(bytes);
        let page_ranges_len = if info.descriptor.packet_type == PACKET_TYPE_GPA_DIRECT {
            let Ok(ranges) = ring::parse_gpa_direct(header) else {
                return guest_error(self.relid, "malformed GPA-direct packet");
            };
            Some(ranges.fold(0u32, |n, (r, _)| n.saturating_add(r.byte_count)))
        } else {
            None
        };
        let packet = GuestPacket { channel: queue, bytes: info.payload(bytes), transaction_id: tid, page_ranges_len };
        let maps = self.maps.clone();
        let relid = self.relid;
        let actions = match self.nvsp.on_packet(&packet, &|gpadl| maps.size(gpadl, relid)) {
            Ok(a) => a,
            Err(_) => {
                guest_error(self.relid, "NVSP message refused");
                // An RNDIS packet still gets its (failed) completion.
                if let Ok(Nvsp::SendRndisPacket(_)) = Nvsp::parse(packet.bytes, nvsp::Sender::Guest, self.nvsp.version()) {
                    self.complete(tid, &rndis_completion(false), out);
                }
                return;
            }
        };
        for action in actions.iter() {
            match *action {
                Action::Complete { transaction_id, message } => self.complete(transaction_id, &message, out),
                Action::Send { message, .. } => {
                    if let Ok(m) = message.encode() {
                        let _ = out.push(OutKind::Inband(false), 0, m.bytes());
                    }
                }
                Action::MapReceiveBuffer { gpadl, .. } => self.recv = self.maps.get(gpadl, self.relid),
                Action::MapSendBuffer { gpadl, .. } => self.send = self.maps.get(gpadl, self.relid),
                Action::UnmapReceiveBuffer { .. } => {
                    NET_REVOKED.fetch_add(1, Ordering::Relaxed);
                    self.recv = None;
                }
                Action::UnmapSendBuffer { .. } => {
                    NET_REVOKED.fetch_add(1, Ordering::Relaxed);
                    self.send = None;
                }
                Action::Rndis { source, transaction_id, .. } => {
                    let taken = match self.copy_message(source, header) {
                        Some(len) => self.rndis(len, out),
                        None => {
                            guest_error(self.relid, "RNDIS message outside its buffer");
                            Taken::Now(false)
                        }
                    };
                    match taken {
                        Taken::Now(ok) => self.complete(transaction_id, &rndis_completion(ok), out),
                        Taken::HandOn(frame) => match self.hand_on(frame, transaction_id, out) {
                            // One packet carries one RNDIS message; another
                            // would wait for none.
                            Some(h) if later.is_none() => *later = Some(h),
                            Some(h) => h.finish(out),
                            None => {}
                        },
                    }
                }
                Action::OfferSubchannels { count } => {
                    self.requests.offer_subchannels(self.relid, count.min(u32::from(u16::MAX)) as u16)
                }
            }
        }
    }

    fn complete(&mut self, tid: u64, message: &Nvsp, out: &mut Outbox) {
        complete(&self.faults, self.relid, tid, message, out);
    }
}

impl Drop for Nic {
    fn drop(&mut self) {
        // The guest's slots go with the NIC.
        NET_RX_SLOTS.fetch_sub(self.slots_counted as u64, Ordering::Relaxed);
        // The channel closed: a guest revokes its buffers before that (and
        // before their GPADLs go), so that the host stops writing them.
        let unrevoked = u64::from(self.recv.is_some()) + u64::from(self.send.is_some());
        if unrevoked > 0 {
            NET_UNREVOKED.fetch_add(unrevoked, Ordering::Relaxed);
            static LIMIT: RateLimit = RateLimit::new(200);
            if LIMIT.allow() {
                pr_err!("sim: nic relid {}: the guest closed the channel with {} buffer(s) not revoked\n", self.relid, unrevoked);
            }
        }
    }
}

impl Nic {
    /// A packet from the guest on channel `queue`; a large frame in it may
    /// come back in `later`, for the caller to switch once the NIC's lock
    /// is dropped.
    fn packet(&mut self, queue: u16, info: &PacketInfo, bytes: &[u8], out: &mut Outbox, later: &mut Option<HandOn>) {
        match info.descriptor.packet_type {
            PACKET_TYPE_INBAND | PACKET_TYPE_GPA_DIRECT | PACKET_TYPE_COMPLETION => {
                self.nvsp_packet(queue, info, bytes, out, later)
            }
            _ => guest_error(self.relid, "unexpected packet type"),
        }
        self.count_slots();
    }

    /// What channel `queue` has for the guest unasked: link changes (on
    /// the primary) and received frames.
    fn pending(&mut self, queue: u16, out: &mut Outbox) -> bool {
        if !self.rndis.initialized() || self.recv.is_none() {
            return false;
        }
        let link = if queue == 0 { self.port.link.swap(LINK_NO_CHANGE, Ordering::SeqCst) } else { LINK_NO_CHANGE };
        if link != LINK_NO_CHANGE {
            let up = link == LINK_UP;
            let written = self.rndis.link_change(up, &mut self.reply);
            if !written.is_ok_and(|n| self.to_guest(n, out)) {
                // Told later, once there is room.
                self.port.link.store(link, Ordering::SeqCst);
                return false;
            }
        }
        if !self.rndis.link_up() {
            // A NIC whose link is down takes nothing.
            while let Some(frame) = self.pop_frame(queue) {
                NET_FRAMES_DROPPED.fetch_add(1, Ordering::Relaxed);
                self.port.switch.recycle(frame.bytes);
            }
            return false;
        }
        for _ in 0..RX_BATCH {
            if out.room() == 0 {
                return true;
            }
            let Some(frame) = self.pop_frame(queue) else {
                return false;
            };
            let mut frame = frame;
            // A tag goes to the guest out of band.
            let tci = frame::untag(frame.bytes.bytes_mut());
            let data = frame.bytes.bytes().get(if tci.is_some() { VLAN_HLEN } else { 0 }..).unwrap_or(&[]);
            let built = self.rndis.build_rx_header(data, tci.map(VlanInfo::from_tci), frame.checksums, &mut self.reply);
            let Ok((head, _queue)) = built else {
                NET_FRAMES_DROPPED.fetch_add(1, Ordering::Relaxed);
                self.port.switch.recycle(frame.bytes);
                continue;
            };
            // A frame that does not fit a receive section (a coalesced
            // one) goes in RSC fragments to a guest that coalesces; any
            // other guest cannot take it.
            let section = self.nvsp.receive_buffer().map_or(0, |b| b.section.sub_alloc_size) as usize;
            let split = self.faults.rsc_split_armed();
            let delivered = if split || head.saturating_add(data.len()) > section {
                let vlan = tci.map(VlanInfo::from_tci);
                match self.to_guest_fragments(data, vlan, frame.checksums, if split { RSC_SPLIT } else { 1 }, out) {
                    Some(true) if split => self.faults.take_rsc_split(self.relid),
                    Some(delivered) => delivered,
                    None => {
                        NET_FRAMES_DROPPED.fetch_add(1, Ordering::Relaxed);
                        if let Some(tci) = tci {
                            frame::retag(frame.bytes.bytes_mut(), tci);
                        }
                        self.port.switch.recycle(frame.bytes);
                        continue;
                    }
                }
            } else {
                self.to_guest_parts(head, data, out)
            };
            if let Some(tci) = tci {
                frame::retag(frame.bytes.bytes_mut(), tci);
            }
            if !delivered {
                // No room in the receive buffer: the guest's completions
                // bring this back.
                if let Some(q) = self.port.frames.lock().get_mut(usize::from(queue)) {
                    q.unpop(frame);
                }
                return false;
            }
            NET_FRAMES_DELIVERED.fetch_add(1, Ordering::Relaxed);
            self.port.switch.recycle(frame.bytes);
        }
        true
    }

    fn pop_frame(&self, queue: u16) -> Option<QueuedFrame> {
        self.port.frames.lock().get_mut(usize::from(queue))?.pop()
    }
}

/// The model of one of a NIC's channels: channel `queue` of the shared
/// NIC.
struct NicChannel {
    nic: SharedNic,
    queue: u16,
}

impl ChannelModel for NicChannel {
    fn packet(&mut self, info: &PacketInfo, bytes: &[u8], out: &mut Outbox) {
        let mut later = None;
        self.nic.lock().packet(self.queue, info, bytes, out, &mut later);
        // A large frame's offloads and switching need none of the NIC's
        // state: done without its lock, the NIC's other channels go on.
        if let Some(h) = later {
            h.finish(out);
        }
    }

    fn pending(&mut self, out: &mut Outbox) -> bool {
        self.nic.lock().pending(self.queue, out)
    }
}

/// Switches a guest's frame from `port` with the offloads it asks for:
/// checksums filled in, an LSO frame cut into segments, a VLAN tag put in.
/// `scratch` holds each frame on its way (its first [`VLAN_HLEN`] bytes
/// are room for the tag). An offload request the frame does not fit is an
/// error, and nothing of the frame is switched.
fn send_offloaded(port: &NicPort, scratch: &mut [u8], f: &TxFrame<'_>) -> core::result::Result<(), ()> {
    let forward = |scratch: &mut [u8], len: usize, checksums: RxChecksums| {
        let tagged = match f.vlan {
            Some(v) if frame::retag(scratch.get_mut(..VLAN_HLEN + len).unwrap_or(&mut []), v.tci()) => {
                NET_TAGGED.fetch_add(1, Ordering::Relaxed);
                scratch.get(..VLAN_HLEN + len)
            }
            Some(_) => None,
            None => scratch.get(VLAN_HLEN..VLAN_HLEN + len),
        };
        if let Some(frame) = tagged {
            port.switch.forward(port.index, frame, checksums);
        }
    };
    if let Some(lso) = f.lso {
        // A guest that coalesces gets the frame whole, as the segments
        // coalesced; any other the segments.
        let whole = port.switch.unicast_port(port.index, f.data).is_some_and(|p| p.coalesces.load(Ordering::Relaxed));
        let segmenter = if whole { Segmenter::whole(f.data, lso) } else { Segmenter::new(f.data, lso) };
        let mut segments = segmenter.map_err(|_| ())?;
        let counter = if whole { &NET_COALESCED } else { &NET_SEGMENTS };
        while let Some(segment) = segments.next_segment(scratch.get_mut(VLAN_HLEN..).unwrap_or(&mut [])) {
            let len = segment.map_err(|_| ())?;
            counter.fetch_add(1, Ordering::Relaxed);
            forward(scratch, len, RxChecksums::Filled);
        }
        return Ok(());
    }
    if f.checksum.is_none() && f.vlan.is_none() {
        port.switch.forward(port.index, f.data, RxChecksums::Unverified);
        return Ok(());
    }
    let len = f.data.len();
    let body = scratch.get_mut(VLAN_HLEN..VLAN_HLEN + len).ok_or(())?;
    body.copy_from_slice(f.data);
    let mut checksums = RxChecksums::Unverified;
    if let Some(c) = f.checksum {
        fill_checksums(body, c).map_err(|_| ())?;
        NET_CHECKSUMMED.fetch_add(1, Ordering::Relaxed);
        checksums = RxChecksums::Filled;
    }
    forward(scratch, len, checksums);
    Ok(())
}
