// SPDX-License-Identifier: GPL-2.0
//! netvsc: the driver of Hyper-V's synthetic NIC (class
//! `f8615163-df3e-46c5-913f-f2d2f965ed0e`), on RustIC's VMBus, with the
//! kernel-independent protocols of `netvsc_core`.
//!
//! Probe, as the C hv_netvsc does it: open the channel; NVSP version
//! negotiation, newest first; the NDIS config and version; the receive
//! buffer (16 MiB) and the send buffer (1 MiB), each shared through a
//! GPADL and announced to the host; RNDIS INITIALIZE; the permanent
//! address, the link state and speed; then an Ethernet `net_device`
//! (`rust/net/netdev.rs`) with the host's address.
//!
//! - Transmit (softirq): each frame is copied behind an RNDIS packet
//!   header into a free section of the send buffer and announced with an
//!   NVSP SEND_RNDIS_PKT; the host's completion frees the section. A full
//!   ring or no free section stops the queue until completions come.
//! - Receive (NAPI): the host names RNDIS messages in the receive buffer
//!   with transfer-page packets; each range is checked against the buffer,
//!   copied out and parsed; data packets become skbs, status indications
//!   set the carrier and speed, control answers wake the waiting request;
//!   every transfer-page packet is completed so the host can reuse it.
//! - Control requests (probe, open, stop) wait for their answer, bounded.
//! - An MTU change sets the NIC up again, as the C driver does: the host
//!   learns the MTU only from the NDIS config, sent before the buffers. The
//!   interface is detached; the channels and buffers go; probe's steps run
//!   again with the new MTU (with the old one if that fails), then the
//!   subchannel setup.
//!
//! Everything the host sends is checked: a completion must name a packet
//! in flight with the transaction id it went out with (a section's id
//! carries a generation, so a repeated or stale completion frees nothing)
//! and carry SEND_RNDIS_PKT_COMPLETE; a transfer-page packet must be
//! SEND_RNDIS_PKT naming the receive buffer's page set, each range inside
//! the buffer and no longer than an RNDIS message, each message parse and a
//! frame be at least an Ethernet header. What fails is dropped with a
//! rate-limited message naming the fault and counted (`ethtool -S`
//! `host_errors` of the interface, [`ERRORS`] of all); the NIC goes on,
//! and a transfer-page packet is completed all the same, so the host gets
//! its slots back. A bad answer during probe fails the probe.
//!
//! The parts: `setup` (attaching to the host, control requests, the MTU
//! change's re-initialisation, subchannels), `tx` (transmit and send
//! completions), `rx` (receive, NAPI), `ndo` (the interface's operations
//! and ethtool's).

mod ndo;
mod rx;
mod setup;
mod tx;

use crate::vmbus::channel::{Channel, ChannelHandler};
use crate::rust::base::cpu::nr_cpu_ids;
use crate::rust::base::memory::Buffer;
use crate::rust::base::time::RateLimit;
use crate::rust::base::work::{BhOff, Work};
use crate::rust::net::netdev::{Features, HeldSkbs, NetDevice, RxMeta};
use crate::drivers::net::proto::nvsp::{self, Message as Nvsp, Version};
use crate::drivers::net::proto::rsc::Rsc;
use crate::drivers::net::proto::sections::{self, SendSections};
use crate::vmbus::device::{Device, DeviceHandle, Driver, OpenChannel, SharedBuffer};
use crate::vmbus_core::guid::{class, Guid};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use core::pin::Pin;
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex, SpinLock};
use kernel::{c_str, new_condvar, new_mutex, new_spinlock};
use setup::SubchannelSetup;

const RING: usize = 256 * 1024;
/// Channels (queues) at most: the primary and its subchannels; as many as
/// the host offers, up to Linux's most (`VRSS_CHANNEL_MAX`).
const MAX_CHANNELS: usize = 64;

/// The queues a NIC is made with: one per CPU at most (as the C driver
/// caps them), so a small guest does not pay for 64.
fn queue_limit() -> usize {
    MAX_CHANNELS.min(usize::try_from(nr_cpu_ids()).unwrap_or(MAX_CHANNELS)).max(1)
}
/// How long the host gets to offer the subchannels it allocated.
const SUBCHANNEL_TIMEOUT_MS: u32 = 5000;
const RECV_BUFFER: usize = 16 * 1024 * 1024;
const SEND_BUFFER: usize = 1024 * 1024;
/// How long the host gets to answer a control request.
const CONTROL_TIMEOUT_MS: u64 = 5000;
/// Transaction ids: control requests use [`TID_CONTROL`]; a frame from
/// the send buffer the id of its section ([`SendSections::tid`], with the
/// top bit set), one from a bounce buffer the id of its buffer in the
/// bounce buffers' [`SendSections`] with [`BOUNCE_TID`] set too.
const TID_CONTROL: u64 = 1;
const BOUNCE_TID: u64 = 1 << 31;
/// A bounce buffer holds the largest frame (a TSO frame or a 64 KiB MTU's)
/// and its RNDIS header.
const BOUNCE: usize = 17 * 4096;
/// The most segments of a TSO frame.
const TSO_MAX_SEGS: u32 = 4096;
/// Send slots for frames bigger than a send section, each with a bounce
/// buffer: the large frames in flight at once.
const BOUNCES: u32 = 8;
/// Room for a frame's RNDIS header. A large frame's header and start (its
/// headers, prepared for the host) go in its slot's part of the
/// `tx_heads` page; the rest of the frame goes from the skb's own pages.
const TX_HEAD: usize = 512;
/// The most physically contiguous pieces, and pages, of an skb sent from
/// its pages; one with more is copied into a bounce buffer.
const TX_PIECES: usize = 20;
const TX_PAGES: usize = 40;
/// The largest TSO frame this driver sends: with its headers it fits a
/// bounce buffer. The host may offer less.
const TSO_MAX_SIZE: u32 = 62780;

/// The largest RNDIS message taken from the receive buffer.
const MAX_RECEIVE: usize = 65536 + 512;
/// The shortest frame the stack takes: an Ethernet header.
const ETH_HLEN: usize = 14;
/// The bytes of a received range copied to read its RNDIS header and PPIs
/// (44 bytes of header and about 70 of PPIs from Hyper-V).
const RX_HEAD: usize = 256;
/// Receive completions that could not be sent at once (the ring was full)
/// and wait for the next poll.
const PENDING_COMPLETIONS: usize = 256;
/// `RNDIS_MAJOR_VERSION`, `RNDIS_MINOR_VERSION`, the transfer size the C
/// driver offers.
const RNDIS_VERSION: (u32, u32) = (1, 0);
const RNDIS_MAX_XFER: u32 = 0x4000;

/// Bad input from the host, every NIC's (each NIC also counts its own:
/// `ethtool -S` `host_errors`).
pub(crate) static ERRORS: AtomicU64 = AtomicU64::new(0);

/// Logs bad input from the host, at most every 200 ms, and counts it.
fn host_error(relid: u32, what: &str) {
    ERRORS.fetch_add(1, Ordering::Relaxed);
    static LIMIT: RateLimit = RateLimit::new(200);
    if LIMIT.allow() {
        pr_err!("netvsc: relid {}: {}; dropped\n", relid, what);
    }
}

/// An NVSP message, written out for sending.
fn encode(message: &Nvsp) -> Result<nvsp::Encoded> {
    message.encode().map_err(|_| EINVAL)
}

/// Runs `f` on the value behind a spinlock that softirq code takes too.
fn locked<T, R>(lock: &SpinLock<T>, f: impl FnOnce(&mut T) -> R) -> R {
    let _bh = BhOff::new();
    let mut guard = lock.lock();
    f(&mut guard)
}

/// Send slots (the send buffer's sections; the bounce buffers): which are
/// in flight, and with which transaction id (`netvsc_core::sections`: a completion frees only the
/// section it names, once).
type Sections = SendSections<KVec<AtomicU64>, KVec<AtomicU32>>;

/// `count` free sections.
fn new_sections(count: u32) -> Result<Sections> {
    let mut used = KVec::with_capacity(sections::words(count), GFP_KERNEL)?;
    for _ in 0..sections::words(count) {
        used.push(AtomicU64::new(0), GFP_KERNEL)?;
    }
    let mut generations = KVec::with_capacity(count as usize, GFP_KERNEL)?;
    for _ in 0..count {
        generations.push(AtomicU32::new(0), GFP_KERNEL)?;
    }
    SendSections::new(used, generations, count).ok_or(EINVAL)
}

/// Receive completions that found the ring full, oldest first.
struct PendingCompletions {
    tids: [u64; PENDING_COMPLETIONS],
    len: usize,
}

impl PendingCompletions {
    /// Keeps one; false when full.
    fn push(&mut self, tid: u64) -> bool {
        let Some(slot) = self.tids.get_mut(self.len) else {
            return false;
        };
        *slot = tid;
        self.len += 1;
        true
    }

    /// Hands them to `send`, oldest first, until one does not go; returns
    /// whether none is left.
    fn flush(&mut self, mut send: impl FnMut(u64) -> bool) -> bool {
        let kept = self.tids.get(..self.len).unwrap_or(&[]);
        let sent = kept.iter().take_while(|&&tid| send(tid)).count();
        for i in 0..self.len - sent {
            if let Some(&tid) = self.tids.get(i + sent) {
                if let Some(slot) = self.tids.get_mut(i) {
                    *slot = tid;
                }
            }
        }
        self.len -= sent;
        self.len == 0
    }
}

/// A coalesced frame being joined on one queue ([`Rsc`] decides).
struct RscFrame {
    state: Rsc,
    /// The frame so far: `data[..len]`.
    data: VVec<u8>,
    len: usize,
    /// Its first fragment's checksum, VLAN and hash information.
    meta: RxMeta,
}

/// What a control request waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Awaited {
    None,
    /// The completion of the NVSP request in flight.
    Nvsp,
    /// The RNDIS answer with this request id.
    Rndis(u32),
}

/// The control request in flight and its answer.
struct ControlSlot {
    awaited: Awaited,
    answer: [u8; 256],
    len: usize,
    done: bool,
}

/// The buffers shared with the host, once announced.
struct Buffers {
    recv: SharedBuffer,
    send: SharedBuffer,
}

/// One NIC: what the transmit, receive and control paths share.
#[pin_data]
pub(crate) struct Nic {
    relid: u32,
    /// The open channels: the primary (queue 0), then the subchannels.
    #[pin]
    channels: SpinLock<[Option<Arc<Channel>>; MAX_CHANNELS]>,
    /// How many of `channels` are open.
    opened: AtomicU32,
    /// The net_device, for the channel's signal (NAPI scheduling); taken
    /// out at remove before the device goes.
    #[pin]
    dev: SpinLock<Option<Arc<NetDevice<Nic>>>>,
    #[pin]
    buffers: SpinLock<Option<Buffers>>,
    /// The send buffer's section size (0 before it is shared): read on
    /// every transmit, without the lock.
    section_size: AtomicU32,
    #[pin]
    sections: SpinLock<Option<Arc<Sections>>>,
    #[pin]
    control: SpinLock<ControlSlot>,
    /// Control requests, one at a time.
    #[pin]
    control_lock: Mutex<()>,
    /// A request's waiter sleeps on `control_wake` with this held.
    #[pin]
    control_sleep: Mutex<()>,
    #[pin]
    control_wake: CondVar,
    next_request: AtomicU32,
    /// A frame being sent: built here, then copied into its section.
    #[pin]
    tx_scratch: SpinLock<VVec<u8>>,
    /// Frames bigger than a send section go out from these as GPA-direct
    /// packets; a completion frees its buffer.
    bounces: KVec<Buffer>,
    bounces_used: Sections,
    /// Each send slot's RNDIS header and frame start, when the frame goes
    /// from its own pages; the skb is held until its completion.
    tx_heads: Buffer,
    tx_held: HeldSkbs,
    /// Whether the host computes UDP checksums for us (TCP's is a given
    /// once transmit checksums are on).
    udp_csum: AtomicBool,
    /// A received RNDIS message, copied out of the receive buffer.
    #[pin]
    rx_scratch: SpinLock<VVec<u8>>,
    /// The size of the receive buffer's sections the host announced (0
    /// before it is shared): no transfer-page range may be longer.
    rx_section: AtomicU32,
    /// Each queue's coalesced (RSC) frame being joined from its fragments;
    /// taken by the queue's NAPI for one transfer-page packet at a time.
    rsc: KVec<Pin<KBox<SpinLock<RscFrame>>>>,
    /// Receive completions waiting for ring room, per channel.
    #[pin]
    pending: SpinLock<VVec<PendingCompletions>>,
    link_up: AtomicBool,
    version: AtomicU32,
    /// Whether the user wants receive coalescing (`ethtool -K lro`), for
    /// a re-initialisation to keep.
    lro_wanted: AtomicBool,
    /// An MTU change that failed is putting the NIC back at its old MTU:
    /// control requests wait out a pending signal (each still bounded),
    /// which would otherwise leave the NIC down.
    restoring: AtomicBool,
    /// An MTU change is under way (rtnl held): a control request that
    /// times out marks the host unresponsive ([`Nic::host_silent`]).
    changing_mtu: AtomicBool,
    /// The host let a control request of this MTU change time out: the
    /// change's remaining requests fail at once instead of each waiting
    /// out its timeout under rtnl.
    host_silent: AtomicBool,
    /// The device and the channels set up on it: taken apart and made
    /// again by an MTU change.
    #[pin]
    link: Mutex<Link>,
}

/// What a NIC is set up with on its device.
struct Link {
    device: Option<DeviceHandle>,
    /// The primary channel.
    open: Option<OpenChannel>,
    /// The subchannel setup (it holds the subchannels) and its work
    /// item, made once: the work is freed only at remove, since freeing
    /// it cancels it, and an MTU change runs under rtnl, which the work
    /// takes.
    setup: Option<Arc<SubchannelSetup>>,
    setup_work: Option<Work<SubchannelSetup>>,
}

/// What bringing a NIC up on its channel found out.
struct Attached {
    version: Version,
    mac: [u8; 6],
    speed: u32,
    features: Features,
    tso_max: u32,
}

impl Nic {
    fn new(relid: u32) -> Result<Arc<Nic>> {
        let tx_scratch = VVec::from_elem(0u8, BOUNCE, GFP_KERNEL)?;
        let rx_scratch = VVec::from_elem(0u8, MAX_RECEIVE, GFP_KERNEL)?;
        let mut bounces = KVec::with_capacity(BOUNCES as usize, GFP_KERNEL)?;
        for _ in 0..BOUNCES {
            bounces.push(Buffer::new(BOUNCE)?, GFP_KERNEL)?;
        }
        let bounces_used = new_sections(BOUNCES)?;
        let tx_heads = Buffer::new((BOUNCES as usize * TX_HEAD).next_multiple_of(4096))?;
        let tx_held = HeldSkbs::new(BOUNCES as usize)?;
        let mut rsc = KVec::with_capacity(queue_limit(), GFP_KERNEL)?;
        for _ in 0..queue_limit() {
            let frame = RscFrame { state: Rsc::new(), data: VVec::from_elem(0u8, MAX_RECEIVE, GFP_KERNEL)?, len: 0, meta: RxMeta::default() };
            rsc.push(KBox::pin_init(new_spinlock!(frame, "netvsc_rsc"), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        // 2 KiB per queue: vmalloc'd rather than one large kmalloc.
        let mut pending = VVec::with_capacity(queue_limit(), GFP_KERNEL)?;
        for _ in 0..queue_limit() {
            pending.push(PendingCompletions { tids: [0; PENDING_COMPLETIONS], len: 0 }, GFP_KERNEL)?;
        }
        Arc::pin_init(
            pin_init!(Nic {
                relid,
                channels <- new_spinlock!([const { None }; MAX_CHANNELS], "netvsc_channels"),
                opened: AtomicU32::new(0),
                dev <- new_spinlock!(None, "netvsc_dev"),
                buffers <- new_spinlock!(None, "netvsc_buffers"),
                section_size: AtomicU32::new(0),
                sections <- new_spinlock!(None, "netvsc_sections"),
                control <- new_spinlock!(
                    ControlSlot { awaited: Awaited::None, answer: [0; 256], len: 0, done: false },
                    "netvsc_control"
                ),
                control_lock <- new_mutex!((), "netvsc_control_lock"),
                control_sleep <- new_mutex!((), "netvsc_control_sleep"),
                control_wake <- new_condvar!("netvsc_control_wake"),
                next_request: AtomicU32::new(1),
                tx_scratch <- new_spinlock!(tx_scratch, "netvsc_tx_scratch"),
                bounces,
                bounces_used,
                tx_heads,
                tx_held,
                udp_csum: AtomicBool::new(false),
                rx_scratch <- new_spinlock!(rx_scratch, "netvsc_rx_scratch"),
                rx_section: AtomicU32::new(0),
                rsc,
                pending <- new_spinlock!(pending, "netvsc_pending"),
                link_up: AtomicBool::new(false),
                version: AtomicU32::new(0),
                lro_wanted: AtomicBool::new(true),
                restoring: AtomicBool::new(false),
                changing_mtu: AtomicBool::new(false),
                host_silent: AtomicBool::new(false),
                link <- new_mutex!(Link { device: None, open: None, setup: None, setup_work: None }, "netvsc_link"),
            }),
            GFP_KERNEL,
        )
    }

    /// The primary channel.
    fn channel(&self) -> Option<Arc<Channel>> {
        self.channel_of(0)
    }

    /// The channel of `queue`.
    fn channel_of(&self, queue: u16) -> Option<Arc<Channel>> {
        locked(&self.channels, |c| c.get(usize::from(queue)).cloned().flatten())
    }

    /// Bad input from the host: logged (rate-limited) and counted, in all
    /// and for this NIC's interface.
    fn host_error(&self, what: &str) {
        host_error(self.relid, what);
        locked(&self.dev, |d| {
            if let Some(dev) = d.as_ref() {
                dev.count_host_error();
            }
        });
    }

    /// The largest MTU: NVSP 2 and newer take frames of up to 64 KiB (the
    /// ones bigger than a send section go through the bounce buffer).
    fn max_mtu(&self) -> u32 {
        Version::from_raw(self.version.load(Ordering::Relaxed)).map_or(1500, Version::max_mtu)
    }
}

/// The interrupt of one of a NIC's channels.
struct QueueHandler {
    nic: Arc<Nic>,
    queue: u16,
}

impl ChannelHandler for QueueHandler {
    /// The host signalled: the queue's NAPI does the work.
    fn on_event(&self, _channel: &Channel) {
        locked(&self.nic.dev, |d| {
            if let Some(dev) = d.as_ref() {
                dev.napi_schedule(self.queue);
            }
        });
    }

    /// Scheduling NAPI needs no sleep, and the lock is taken with softirqs
    /// off everywhere.
    fn softirq_safe(&self) -> bool {
        true
    }
}

/// What the driver keeps per NIC.
pub(crate) struct NetvscData {
    nic: Arc<Nic>,
    net: Option<Arc<NetDevice<Nic>>>,
}

impl Drop for NetvscData {
    fn drop(&mut self) {
        // The subchannel setup stops first; then the interface (it stops,
        // the filter is cleared), then the channels, the subchannels
        // before the primary; the buffers' GPADLs go last, after the host
        // let go. The link's lock is not held across unregister, which
        // takes rtnl (an MTU change holds rtnl and takes the lock).
        // Without the device an MTU change from now on fails (ENODEV)
        // rather than setting the NIC up again.
        let (work, device) = {
            let mut link = self.nic.link.lock();
            if let Some(setup) = link.setup.as_ref() {
                setup.cancelled.store(true, Ordering::Relaxed);
            }
            (link.setup_work.take(), link.device.take())
        };
        drop(work);
        if let Some(net) = self.net.as_ref() {
            net.unregister();
        }
        let net = locked(&self.nic.dev, |d| d.take());
        drop(net);
        drop(self.net.take());
        let mut link = self.nic.link.lock();
        self.nic.release(&mut link);
        // The setup holds the NIC.
        link.setup = None;
        drop(link);
        drop(device);
    }
}

/// The netvsc driver.
pub(crate) struct NetvscDriver;

impl Driver for NetvscDriver {
    type Data = KBox<NetvscData>;
    const NAME: &'static CStr = c_str!("hv_netvsc");
    const CLASS_IDS: &'static [Guid] = &[class::NETWORK];

    fn probe(dev: &Device<'_>) -> Result<Self::Data> {
        let relid = dev.offer().relid;
        let nic = Nic::new(relid)?;
        // A placeholder address until the host's is known (NAPI, which
        // carries the answers, needs the device first).
        // CAST: at most MAX_CHANNELS.
        let queues = queue_limit() as u16;
        let net = Arc::new(NetDevice::new(nic.clone(), [0x02, 0, 0, 0, 0, 1], queues, Some(dev.device()))?, GFP_KERNEL)?;
        let data = KBox::new(NetvscData { nic: nic.clone(), net: Some(net.clone()) }, GFP_KERNEL)?;
        for queue in 0..queues {
            net.napi_enable(queue);
        }
        locked(&nic.dev, |d| *d = Some(net));
        // The link's lock is not held across register, which takes rtnl
        // (an MTU change holds rtnl and takes the lock).
        let a = {
            let mut link = nic.link.lock();
            let device = dev.handle();
            let a = nic.attach(&device, &mut link, 1500)?;
            link.device = Some(device);
            a
        };

        let net = data.net.as_ref().ok_or(ENODEV)?;
        net.set_features(a.features)?;
        if a.features.contains(Features::TSO) {
            net.set_tso_max(a.tso_max, TSO_MAX_SEGS);
        }
        net.set_mac(&a.mac)?;
        net.set_max_mtu(nic.max_mtu());
        net.set_link_speed(a.speed / 10_000);
        net.set_ring((RING / 4096) as u32, (RING / 4096) as u32);
        net.set_info(c_str!("vmbus"));
        net.set_max_channels(1);
        net.set_queues(1)?;
        net.register()?;
        let mac = a.mac;
        pr_info!(
            "netvsc: relid {}: {} up, NVSP {:#x}, address {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}\n",
            relid, net.name(), a.version.raw(), mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
        nic.start_subchannels(&mut nic.link.lock(), a.version)?;
        Ok(data)
    }

    fn remove(_dev: &Device<'_>, data: Self::Data) {
        drop(data);
    }

    fn rescind(_dev: &Device<'_>, data: &NetvscData) {
        // Nothing more goes to the host; remove follows.
        for queue in 0..MAX_CHANNELS as u16 {
            if let Some(channel) = data.nic.channel_of(queue) {
                channel.mark_closed();
            }
        }
    }
}
