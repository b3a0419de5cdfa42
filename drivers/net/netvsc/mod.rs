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
//! (`rust/netdev.rs`) with the host's address.
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

use crate::vmbus::channel::{Channel, ChannelHandler};
use crate::rust::base::errno::ETIMEDOUT;
use crate::rust::base::cpu::{cpu_online, nr_cpu_ids};
use crate::rust::base::memory::Buffer;
use crate::rust::base::time::{now_ms, RateLimit};
use crate::rust::base::work::{BhOff, Work, WorkFn};
use crate::rust::net::netdev::{Features, Gso, HeldSkbs, Net, NetDevice, NetOps, RxFrame, RxMeta, Skb, SkbInfo, SkbPiece, Tx};
use crate::drivers::net::proto::frame::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_TCP, PROTO_UDP};
use crate::drivers::net::proto::ndis::{
    self, filter, oid, write_rss_params, OffloadCaps, OffloadParams, RssCaps, ITAB_NUM, MEDIA_STATE_CONNECTED,
};
use crate::drivers::net::proto::toeplitz;
use crate::drivers::net::proto::offload::{prepare_lso, prepare_lso_prefix};
use crate::drivers::net::proto::nvsp::{
    self, send_sections, Message as Nvsp, Negotiation, NdisConfig, RndisChannel, RndisPacket, Sender, Step, Version,
};
use crate::drivers::net::proto::ppi::{ChecksumInfo, LsoInfo, Ppi, RxInfo, VlanInfo};
use crate::drivers::net::proto::rndis::{self, status as rndis_status, Message as Rndis, PacketHead, StatusEvent};
use crate::drivers::net::proto::sections::{self, SendSections};
use crate::drivers::net::proto::wire::Error as WireError;
use crate::vmbus::device::{Device, DeviceHandle, Driver, OpenChannel, SharedBuffer, SubchannelOpener};
use crate::vmbus_core::guid::{class, Guid};
use crate::vmbus_core::ring::{
    self, GpaBuffer, PacketInfo, PACKET_TYPE_COMPLETION, PACKET_TYPE_INBAND, PACKET_TYPE_TRANSFER_PAGES,
};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, CondVar, Mutex, SpinLock};
use kernel::{c_str, new_condvar, new_mutex, new_spinlock};


const RING: usize = 256 * 1024;
/// Channels (queues) at most: the primary and its subchannels.
const MAX_CHANNELS: usize = 8;
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

/// What is wrong with an RNDIS message that did not parse.
fn rndis_error(e: &WireError) -> &'static str {
    match e {
        WireError::TooShort { .. } => "RNDIS message longer than its range",
        WireError::UnknownType(_) => "unknown RNDIS message type",
        WireError::BadField("data_offset" | "data_len") => "RNDIS packet data outside its message",
        _ => "malformed RNDIS message",
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

/// What a transmitted frame asks of the host ([`Nic::tx_plan`]).
struct TxPlan {
    ppis: [Ppi; 2],
    count: usize,
    /// An LSOv2 frame: its headers are prepared as Hyper-V wants them.
    lso: bool,
    /// A partial checksum the host does not do: completed here.
    software_csum: bool,
}

impl TxPlan {
    fn push(&mut self, ppi: Ppi) {
        if let Some(slot) = self.ppis.get_mut(self.count) {
            *slot = ppi;
            self.count += 1;
        }
    }

    fn ppis(&self) -> &[Ppi] {
        self.ppis.get(..self.count).unwrap_or(&[])
    }

    /// Prepares the driver's copy of the frame.
    fn finish(&self, frame: &mut [u8], info: &SkbInfo) -> Result {
        if self.lso {
            prepare_lso(frame).map_err(|_| EINVAL)?;
        } else if self.software_csum {
            frame::fill_partial_checksum(frame, info.csum_start as usize, info.csum_offset as usize)
                .map_err(|_| EINVAL)?;
        }
        Ok(())
    }
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
    /// Receive completions waiting for ring room, per channel.
    #[pin]
    pending: SpinLock<KVec<PendingCompletions>>,
    link_up: AtomicBool,
    version: AtomicU32,
    /// Whether the user wants receive coalescing (`ethtool -K lro`), for
    /// a re-initialisation to keep.
    lro_wanted: AtomicBool,
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
        let mut pending = KVec::with_capacity(MAX_CHANNELS, GFP_KERNEL)?;
        for _ in 0..MAX_CHANNELS {
            pending.push(PendingCompletions { tids: [0; PENDING_COMPLETIONS], len: 0 }, GFP_KERNEL)?;
        }
        Arc::pin_init(
            pin_init!(Nic {
                relid,
                channels <- new_spinlock!(Default::default(), "netvsc_channels"),
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
                pending <- new_spinlock!(pending, "netvsc_pending"),
                link_up: AtomicBool::new(false),
                version: AtomicU32::new(0),
                lro_wanted: AtomicBool::new(true),
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

    // ----- control requests (task context) ------------------------------

    /// Sends `message` (with `send`) and waits for the answer `awaited`;
    /// returns its bytes' length in `out`.
    fn request(&self, awaited: Awaited, send: impl FnOnce(&Channel) -> Result, out: &mut [u8; 256]) -> Result<usize> {
        let _one = self.control_lock.lock();
        let channel = self.channel().ok_or(ENODEV)?;
        locked(&self.control, |c| {
            c.awaited = awaited;
            c.done = false;
            c.len = 0;
        });
        if let Err(e) = send(&channel) {
            locked(&self.control, |c| c.awaited = Awaited::None);
            return Err(e);
        }
        let deadline = now_ms().saturating_add(CONTROL_TIMEOUT_MS);
        loop {
            let answer = locked(&self.control, |c| {
                if c.done {
                    c.awaited = Awaited::None;
                    out.copy_from_slice(&c.answer);
                    Some(c.len)
                } else {
                    None
                }
            });
            if let Some(len) = answer {
                return Ok(len);
            }
            if now_ms() > deadline {
                locked(&self.control, |c| c.awaited = Awaited::None);
                pr_err!("netvsc: relid {}: the host did not answer a control request in {} ms\n", self.relid, CONTROL_TIMEOUT_MS);
                return Err(ETIMEDOUT());
            }
            // Woken by the answer; the timeout only bounds a missed wake-up.
            let mut guard = self.control_sleep.lock();
            if !locked(&self.control, |c| c.done) {
                let _ = self.control_wake.wait_interruptible_timeout(&mut guard, kernel::time::msecs_to_jiffies(20));
            }
        }
    }
}

impl Nic {
    /// Sends an NVSP message that needs no answer.
    fn send_nvsp(&self, message: &Nvsp) -> Result {
        let message = encode(message)?;
        let channel = self.channel().ok_or(ENODEV)?;
        channel.send_inband(0, false, &[message.bytes()], CONTROL_TIMEOUT_MS as u32)
    }

    /// Sends an NVSP request and returns the host's completion, parsed.
    fn nvsp_request(&self, message: &Nvsp) -> Result<Nvsp> {
        let message = encode(message)?;
        let mut answer = [0u8; 256];
        let len = self.request(
            Awaited::Nvsp,
            |c| c.send_inband(TID_CONTROL, true, &[message.bytes()], CONTROL_TIMEOUT_MS as u32),
            &mut answer,
        )?;
        let version = Version::from_raw(self.version.load(Ordering::Relaxed));
        Nvsp::parse(answer.get(..len).unwrap_or(&[]), Sender::Host, version).map_err(|_| {
            self.host_error("malformed NVSP completion");
            EIO
        })
    }

    /// Sends an RNDIS control message (built by `build` with the request
    /// id) through a send-buffer section; returns the answer's bytes.
    fn rndis_request(&self, build: impl FnOnce(u32, &mut [u8]) -> Result<usize>, answer: &mut [u8; 256]) -> Result<usize> {
        let req_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        // Big enough for the largest, RSS parameters with their table.
        let mut message = KVec::from_elem(0u8, 1024, GFP_KERNEL)?;
        let len = build(req_id, &mut message)?;
        let (section, tid) = self.stage(message.get(..len).unwrap_or(&[]))?;
        let sent = self.request(
            Awaited::Rndis(req_id),
            |c| {
                let r = Self::announce(c, RndisChannel::Control, section, len, tid, CONTROL_TIMEOUT_MS as u32);
                if r.is_err() {
                    self.free_section(section);
                }
                r
            },
            answer,
        )?;
        Ok(sent)
    }

    /// Copies a message into a free send-buffer section.
    fn stage(&self, message: &[u8]) -> Result<(u32, u64)> {
        let sections = locked(&self.sections, |s| s.clone()).ok_or(ENODEV)?;
        let section = sections.alloc().ok_or(EBUSY)?;
        let section_size = self.section_size.load(Ordering::Relaxed) as usize;
        let written = locked(&self.buffers, |b| -> Result {
            if message.len() > section_size {
                return Err(E2BIG);
            }
            let buffer = b.as_ref().and_then(|b| b.send.buffer()).ok_or(ENODEV)?;
            buffer.write(section as usize * section_size, message)
        });
        if let Err(e) = written {
            sections.free(section);
            return Err(e);
        }
        Ok((section, sections.tid(section)))
    }

    fn free_section(&self, section: u32) -> bool {
        locked(&self.sections, |s| s.as_ref().map(|s| s.free(section))).unwrap_or(false)
    }

    /// NVSP SEND_RNDIS_PKT naming `section`.
    fn announce(channel: &Channel, kind: RndisChannel, section: u32, len: usize, tid: u64, timeout_ms: u32) -> Result {
        let message = Nvsp::SendRndisPacket(RndisPacket {
            channel: kind,
            section_index: section,
            section_size: len as u32,
        });
        channel.send_inband(tid, true, &[encode(&message)?.bytes()], timeout_ms)
    }

    /// RNDIS QUERY of `oid`; copies the answer's information into `info`
    /// and returns its length.
    fn query(&self, oid: u32, info: &mut [u8]) -> Result<usize> {
        self.query_with(oid, &[], info)
    }

    /// RNDIS QUERY of `oid` with `request` as the query's information
    /// buffer; as [`Self::query`]. `EIO` if the host says no.
    fn query_with(&self, oid: u32, request: &[u8], info: &mut [u8]) -> Result<usize> {
        let mut answer = [0u8; 256];
        let len = self.rndis_request(
            |req_id, out| {
                Rndis::Query(rndis::Request { req_id, oid, info: request }).write(out).map_err(|_| EINVAL)
            },
            &mut answer,
        )?;
        match Rndis::parse(answer.get(..len).unwrap_or(&[])) {
            Ok(Rndis::QueryComplete(q)) if q.status == rndis_status::SUCCESS => {
                let n = q.info.len().min(info.len());
                info.get_mut(..n).ok_or(EINVAL)?.copy_from_slice(q.info.get(..n).unwrap_or(&[]));
                Ok(n)
            }
            Ok(Rndis::QueryComplete(_)) => Err(EIO),
            _ => {
                self.host_error("bad answer to an RNDIS query");
                Err(EIO)
            }
        }
    }

    /// RNDIS SET of `oid` to `info`.
    fn set(&self, oid: u32, info: &[u8]) -> Result {
        let mut answer = [0u8; 256];
        let len = self.rndis_request(
            |req_id, out| Rndis::Set(rndis::Request { req_id, oid, info }).write(out).map_err(|_| EINVAL),
            &mut answer,
        )?;
        match Rndis::parse(answer.get(..len).unwrap_or(&[])) {
            Ok(Rndis::SetComplete { status, .. }) if status == rndis_status::SUCCESS => Ok(()),
            Ok(Rndis::SetComplete { .. }) => Err(EIO),
            _ => {
                self.host_error("bad answer to an RNDIS set");
                Err(EIO)
            }
        }
    }

    fn set_filter(&self, bits: u32) -> Result {
        self.set(oid::GEN_CURRENT_PACKET_FILTER, &bits.to_le_bytes())
    }

    // ----- the receive path (NAPI, softirq) ------------------------------

    /// Hands a control answer to the waiting request, if it is the one
    /// awaited.
    fn answer(&self, kind: Awaited, bytes: &[u8]) -> bool {
        let taken = locked(&self.control, |c| {
            if c.awaited != kind || c.done {
                return false;
            }
            let n = bytes.len().min(c.answer.len());
            if let (Some(dst), Some(src)) = (c.answer.get_mut(..n), bytes.get(..n)) {
                dst.copy_from_slice(src);
            }
            c.len = n;
            c.done = true;
            true
        });
        if taken {
            self.control_wake.notify_all();
        }
        taken
    }

    /// One packet from the host on `queue`'s channel.
    fn packet(&self, dev: &Net, channel: &Channel, queue: u16, info: &PacketInfo, bytes: &[u8]) {
        match info.descriptor.packet_type {
            PACKET_TYPE_COMPLETION => self.completion(dev, info.descriptor.transaction_id, info.payload(bytes)),
            PACKET_TYPE_TRANSFER_PAGES => self.transfer_pages(dev, channel, queue, info, bytes),
            // The host's own NVSP messages (the send indirection table, VF
            // association) need nothing from a NIC without subchannels.
            PACKET_TYPE_INBAND => {}
            _ => self.host_error("unexpected packet type"),
        }
    }

    /// The host completed transaction `tid` with the NVSP message `body`.
    ///
    /// A transmitted frame's completion frees the section (or the bounce
    /// buffer) it names, if that is in flight with that id; any other id
    /// frees nothing. Its message must be SEND_RNDIS_PKT_COMPLETE; one that
    /// is not is reported, but the packet it names is freed all the same:
    /// the id is what the guest relies on, and keeping the section would
    /// let a host that garbles completions stop the queue for good.
    fn completion(&self, dev: &Net, tid: u64, body: &[u8]) {
        if tid == TID_CONTROL {
            if !self.answer(Awaited::Nvsp, body) {
                self.host_error("unexpected NVSP completion");
            }
            return;
        }
        let freed = if tid & BOUNCE_TID != 0 {
            // The skb a send held goes before its slot can be taken again.
            self.bounces_used.complete_then(tid & !BOUNCE_TID, |slot| self.tx_held.release(slot as usize)).is_ok()
        } else {
            locked(&self.sections, |s| s.as_ref().map(|s| s.complete(tid).is_ok())).unwrap_or(false)
        };
        if !freed {
            return self.host_error("completion of no packet in flight");
        }
        let version = Version::from_raw(self.version.load(Ordering::Relaxed));
        if !matches!(Nvsp::parse(body, Sender::Host, version), Ok(Nvsp::SendRndisPacketComplete { .. })) {
            self.host_error("malformed completion");
        }
        // A control message's section is freed the same way; the answer
        // comes separately. Sections are shared by all queues, so any
        // queue that stopped for want of one may go on.
        for queue in 0..dev.queues() {
            if dev.queue_stopped(queue) {
                dev.wake_queue(queue);
            }
        }
    }

    /// Received RNDIS messages in the receive buffer.
    fn transfer_pages(&self, dev: &Net, channel: &Channel, queue: u16, info: &PacketInfo, bytes: &[u8]) {
        let tid = info.descriptor.transaction_id;
        let version = Version::from_raw(self.version.load(Ordering::Relaxed));
        let is_rndis = matches!(
            Nvsp::parse(info.payload(bytes), Sender::Host, version),
            Ok(Nvsp::SendRndisPacket(_))
        );
        match ring::parse_transfer_pages(info.header(bytes)) {
            _ if !is_rndis => self.host_error("transfer-page packet without SEND_RNDIS_PKT"),
            Ok((set_id, _)) if set_id != nvsp::RECEIVE_BUFFER_ID => {
                self.host_error("transfer-page packet names no receive buffer")
            }
            Ok((_, ranges)) => {
                for range in ranges {
                    self.receive_range(dev, queue, range.byte_offset as usize, range.byte_count as usize);
                }
            }
            Err(_) => self.host_error("malformed transfer-page packet"),
        }
        // Completed even when malformed: the host gets its slots back.
        self.complete_receive(channel, queue, tid);
    }

    fn receive_range(&self, dev: &Net, queue: u16, offset: usize, len: usize) {
        // A data packet is read in two steps: its header and PPIs from a
        // copy of the range's first bytes, then the frame copied once,
        // straight from the receive buffer into an skb (under the lock
        // that keeps the buffer; handed up after it, since the stack may
        // transmit from inside).
        if len > MAX_RECEIVE {
            return self.host_error("transfer-page range longer than an RNDIS message");
        }
        let mut head = [0u8; RX_HEAD];
        let peek = len.min(RX_HEAD);
        let copied = locked(&self.buffers, |b| -> Result<Option<(PacketHead<'_>, Result<RxFrame>)>> {
            let b = b.as_ref().ok_or(ENODEV)?;
            let buffer = b.recv.buffer().ok_or(ENODEV)?;
            if offset.checked_add(len).is_none_or(|end| end > buffer.len()) {
                return Err(EINVAL);
            }
            buffer.read(offset, head.get_mut(..peek).ok_or(EINVAL)?)?;
            let Some(packet) = rndis::parse_packet_head(head.get(..peek).unwrap_or(&[]), len) else {
                return Ok(None);
            };
            if packet.data_len < ETH_HLEN {
                return Ok(None);
            }
            let frame = buffer.raw_range(offset + packet.data_offset, packet.data_len)?;
            // SAFETY: `frame` is valid for `data_len` bytes while the
            // buffer lives, which the lock ensures for this call.
            let skb = unsafe { dev.rx_copy(queue, frame, packet.data_len) };
            Ok(Some((packet, skb)))
        });
        match copied {
            Err(_) => self.host_error("transfer-page range outside the receive buffer"),
            Ok(Some((packet, Ok(skb)))) => dev.rx_up(queue, skb, Self::rx_meta(packet.ppis)),
            // No skb: dropped and counted.
            Ok(Some((_, Err(_)))) => {}
            // Not a data packet, or one the whole parse must judge.
            Ok(None) => self.receive_message(dev, queue, offset, len),
        }
    }

    /// What a received packet's PPIs say about its frame.
    fn rx_meta(ppis: &[u8]) -> RxMeta {
        let mut meta = RxMeta::default();
        if let Ok(info) = RxInfo::collect(ppis) {
            meta.csum_ok = info.checksum.is_some_and(|c| {
                let good = ChecksumInfo::RX_TCP_SUCCEEDED | ChecksumInfo::RX_UDP_SUCCEEDED;
                let bad = ChecksumInfo::RX_TCP_FAILED | ChecksumInfo::RX_UDP_FAILED | ChecksumInfo::RX_IP_FAILED;
                c.0 & good != 0 && c.0 & bad == 0
            });
            meta.vlan_tci = info.vlan.map(|v| v.tci());
            meta.hash = info.hash_value;
        }
        meta
    }

    /// A received RNDIS message, copied whole and parsed: control answers,
    /// status indications, and data packets the fast path left alone.
    fn receive_message(&self, dev: &Net, queue: u16, offset: usize, len: usize) {
        let mut scratch = self.rx_scratch.lock();
        let copied = locked(&self.buffers, |b| -> Result {
            let b = b.as_ref().ok_or(ENODEV)?;
            let buffer = b.recv.buffer().ok_or(ENODEV)?;
            buffer.read(offset, scratch.get_mut(..len).ok_or(EINVAL)?)
        });
        if copied.is_err() {
            return self.host_error("transfer-page range outside the receive buffer");
        }
        let message = scratch.get(..len).unwrap_or(&[]);
        match Rndis::parse(message) {
            Ok(Rndis::Packet(p)) if p.data.len() < ETH_HLEN => {
                self.host_error("received frame shorter than an Ethernet header")
            }
            Ok(Rndis::Packet(p)) => {
                let _ = dev.rx(queue, p.data, Self::rx_meta(p.ppis));
            }
            Ok(Rndis::IndicateStatus(ind)) => match ind.event() {
                Ok(StatusEvent::MediaConnect) => {
                    self.link_up.store(true, Ordering::Relaxed);
                    dev.carrier(true);
                }
                Ok(StatusEvent::MediaDisconnect) => {
                    self.link_up.store(false, Ordering::Relaxed);
                    dev.carrier(false);
                }
                Ok(StatusEvent::LinkSpeed(speed)) => dev.set_link_speed(speed / 10_000),
                Ok(_) => {}
                Err(_) => self.host_error("malformed status indication"),
            },
            Ok(m @ (Rndis::InitializeComplete(_) | Rndis::QueryComplete(_) | Rndis::SetComplete { .. })) => {
                let awaited = m.req_id().map_or(Awaited::None, Awaited::Rndis);
                if !self.answer(awaited, message) {
                    self.host_error("RNDIS answer to no request");
                }
            }
            Ok(_) => self.host_error("unexpected RNDIS message"),
            Err(e) => self.host_error(rndis_error(&e)),
        }
    }

    /// Completes a transfer-page packet; if the ring is full, later.
    fn complete_receive(&self, channel: &Channel, queue: u16, tid: u64) {
        if Self::send_receive_completion(channel, tid).is_err() {
            let kept = locked(&self.pending, |p| p.get_mut(usize::from(queue)).is_some_and(|p| p.push(tid)));
            if !kept {
                self.host_error("receive completions piling up");
            }
        }
    }

    fn send_receive_completion(channel: &Channel, tid: u64) -> Result {
        let message = encode(&Nvsp::SendRndisPacketComplete { status: nvsp::status::SUCCESS })?;
        channel.send_completion(tid, &[message.bytes()], 0)
    }

    /// Sends the completions that waited for room; false if some still
    /// wait.
    fn flush_pending(&self, channel: &Channel, queue: u16) -> bool {
        locked(&self.pending, |p| {
            p.get_mut(usize::from(queue))
                .is_none_or(|p| p.flush(|tid| Self::send_receive_completion(channel, tid).is_ok()))
        })
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

impl NetOps for Nic {
    fn open_net(&self, net: &Net) -> Result {
        self.set_filter(filter::DIRECTED | filter::BROADCAST | filter::ALL_MULTICAST)?;
        net.carrier(self.link_up.load(Ordering::Relaxed));
        Ok(())
    }

    fn stop_net(&self, net: &Net) {
        net.carrier(false);
        // A rescinded NIC cannot answer; going down goes on regardless.
        let _ = self.set_filter(0);
    }

    fn xmit_net(&self, net: &Net, queue: u16, skb: &Skb) -> Tx {
        let Some(channel) = self.channel_of(queue) else { return Tx::Dropped };
        let info = skb.info();
        let Some(plan) = self.tx_plan(&info) else { return Tx::Dropped };
        let len = info.len as usize;
        let mut head = [0u8; TX_HEAD];
        let Ok(header) = rndis::write_packet_header(&mut head, plan.ppis(), len) else {
            return Tx::Dropped;
        };
        let sent = if header + len > self.section_size.load(Ordering::Relaxed) as usize {
            // From the skb's pages; through a bounce buffer where that
            // cannot be (a checksum done here, too many pieces).
            let from_pages = if plan.software_csum {
                Err(E2BIG)
            } else {
                self.send_pages(&channel, skb, &info, &plan, &mut head, header)
            };
            match from_pages {
                Err(e) if e == E2BIG => {
                    self.send_copy(skb, &info, &plan, &head[..header], |message| self.send_bounced(&channel, message))
                }
                sent => sent,
            }
        } else {
            self.send_copy(skb, &info, &plan, &head[..header], |message| self.send_staged(&channel, message))
        };
        match sent {
            Ok(()) => {
                net.tx_done(queue, 1, len as u64);
                Tx::Sent
            }
            // No free section or slot, or a full ring: completions will
            // wake the queue.
            Err(e) if e == EBUSY || e == EAGAIN => Tx::Busy,
            Err(_) => Tx::Dropped,
        }
    }

    fn poll_net(&self, net: &Net, queue: u16, budget: i32) -> i32 {
        let Some(channel) = self.channel_of(queue) else { return 0 };
        if !self.flush_pending(&channel, queue) {
            // The ring is still full of completions: try again soon.
            return budget;
        }
        let budget = budget.max(0) as usize;
        let mut done = 0usize;
        while done < budget {
            let polled = channel.poll(budget - done, |info, bytes| {
                done += 1;
                self.packet(net, &channel, queue, info, bytes);
            });
            match polled {
                Ok(true) => continue,
                Ok(false) => break,
                Err(_) => break,
            }
        }
        done.min(budget) as i32
    }

    fn set_channels_net(&self, net: &Net, count: u32) -> Result {
        let count = u16::try_from(count).map_err(|_| EINVAL)?;
        if count == 0 || u32::from(count) > self.opened.load(Ordering::Relaxed) {
            return Err(EINVAL);
        }
        if self.opened.load(Ordering::Relaxed) < 2 {
            return net.set_queues(count);
        }
        // The stack sends on a queue only once the host may answer on it,
        // and stops only after the host has moved receives off it.
        let current = net.queues();
        if count > current {
            net.set_queues(count)?;
            self.set_rss(count).inspect_err(|_| {
                let _ = net.set_queues(current);
            })
        } else {
            self.set_rss(count)?;
            net.set_queues(count)
        }
    }

    fn set_lro_net(&self, _net: &Net, on: bool) -> Result {
        self.lro_wanted.store(on, Ordering::Relaxed);
        let version = Version::from_raw(self.version.load(Ordering::Relaxed)).ok_or(ENODEV)?;
        let state = if on { ndis::offload::ENABLED } else { ndis::offload::DISABLED };
        self.set_offloads(&OffloadParams { rsc_ip_v4: state, rsc_ip_v6: state, ..Default::default() }, version)
    }

    fn change_mtu_net(&self, net: &Net, mtu: u32) -> Result {
        if mtu > self.max_mtu() {
            return Err(EINVAL);
        }
        // The host learns the MTU only from the NDIS config, sent before
        // the buffers: the NIC is set up again (as the C driver's
        // netvsc_change_mtu does), back at the old MTU if that fails.
        let old = net.mtu();
        if mtu == old {
            return Ok(());
        }
        let mut link = self.link.lock();
        if link.setup.as_ref().is_some_and(|setup| !setup.done.load(Ordering::Acquire)) {
            // Its last steps take rtnl, which the caller holds.
            return Err(EBUSY);
        }
        // The channels' handlers and the subchannel setup hold the NIC.
        let this: Arc<Nic> = locked(&self.dev, |d| d.as_ref().map(|d| Arc::from(d.owner()))).ok_or(ENODEV)?;
        let device = link.device.take().ok_or(ENODEV)?;
        let result = this.reinit(net, &device, &mut link, mtu).or_else(|e| {
            pr_err!("netvsc: relid {}: setting the NIC up for MTU {} failed ({:?}); back to {}\n", self.relid, mtu, e, old);
            this.reinit(net, &device, &mut link, old).inspect_err(|e| {
                pr_err!("netvsc: relid {}: the NIC did not come back ({:?}); it stays down\n", self.relid, e);
            })?;
            Err(e)
        });
        link.device = Some(device);
        result
    }
}

impl Nic {
    /// Sends a frame too big for a send section from the skb's own pages,
    /// as the C driver does: a GPA-direct packet whose first range is the
    /// slot's RNDIS header and a prepared copy of the frame's start, the
    /// others the rest of the frame where it lies. The skb is held until
    /// the host completes the send. `head` holds the RNDIS header, of
    /// `header` bytes. `E2BIG` for an skb in too many pieces or with
    /// headers too long for the copy (nothing is sent); `EBUSY` while
    /// every slot is in flight.
    fn send_pages(
        &self,
        channel: &Channel,
        skb: &Skb,
        info: &SkbInfo,
        plan: &TxPlan,
        head: &mut [u8; TX_HEAD],
        header: usize,
    ) -> Result {
        let len = info.len as usize;
        let copied = len.min(TX_HEAD.saturating_sub(header));
        let start = head.get_mut(header..header + copied).ok_or(EINVAL)?;
        skb.copy_to(0, start)?;
        if plan.lso {
            // Headers longer than the copy: the bounce buffer's whole copy
            // is prepared instead (or refused).
            prepare_lso_prefix(start).map_err(|_| E2BIG)?;
        }
        let head = head.get(..header + copied).ok_or(EINVAL)?;
        // The rest, as ranges over page numbers; page 0 is the head's.
        let mut pieces = [SkbPiece::default(); TX_PIECES];
        let count = skb.pieces(copied as u32, &mut pieces)?;
        let mut pfns = [0u64; TX_PAGES];
        let mut spans = [(0u32, 0u32, 0usize, 0usize); TX_PIECES];
        let mut used = 1;
        for (piece, span) in pieces.iter().take(count).zip(spans.iter_mut()) {
            let first = piece.phys >> 12;
            let pages = ((piece.phys + u64::from(piece.len)).div_ceil(4096) - first) as usize;
            let to = pfns.get_mut(used..used + pages).ok_or(E2BIG)?;
            for (i, pfn) in to.iter_mut().enumerate() {
                *pfn = first + i as u64;
            }
            *span = ((piece.phys % 4096) as u32, piece.len, used, pages);
            used += pages;
        }
        let slot = self.bounces_used.alloc().ok_or(EBUSY)?;
        let sent = (|| {
            let at = slot as usize * TX_HEAD;
            self.tx_heads.write(at, head)?;
            pfns[0] = self.tx_heads.pfn(at / 4096).ok_or(EINVAL)?;
            let empty = GpaBuffer { byte_offset: 0, byte_count: 0, pfns: &[] };
            let mut ranges = [empty; TX_PIECES + 1];
            ranges[0] = GpaBuffer { byte_offset: (at % 4096) as u32, byte_count: head.len() as u32, pfns: pfns.get(..1).ok_or(EINVAL)? };
            for (range, &(byte_offset, byte_count, from, pages)) in ranges.iter_mut().skip(1).zip(spans.iter().take(count)) {
                *range = GpaBuffer { byte_offset, byte_count, pfns: pfns.get(from..from + pages).ok_or(EINVAL)? };
            }
            let header = encode(&Nvsp::SendRndisPacket(RndisPacket {
                channel: RndisChannel::Data,
                section_index: nvsp::NO_SECTION,
                section_size: 0,
            }))?;
            // Held before the send: its completion may come at once.
            self.tx_held.hold(slot as usize, skb)?;
            let tid = self.bounces_used.tid(slot) | BOUNCE_TID;
            channel.send_gpa_direct(tid, true, ranges.get(..count + 1).ok_or(EINVAL)?, &[header.bytes()], 0)
        })();
        if sent.is_err() {
            self.tx_held.release(slot as usize);
            self.bounces_used.free(slot);
        }
        sent
    }

    /// Copies the frame after its RNDIS `header` into the scratch buffer,
    /// prepared for the host, and hands the message to `send`.
    fn send_copy(&self, skb: &Skb, info: &SkbInfo, plan: &TxPlan, header: &[u8], send: impl FnOnce(&[u8]) -> Result) -> Result {
        let total = header.len() + info.len as usize;
        let mut scratch = self.tx_scratch.lock();
        let message = scratch.get_mut(..total).ok_or(E2BIG)?;
        let (head, frame) = message.split_at_mut(header.len());
        head.copy_from_slice(header);
        skb.copy_to(0, frame)?;
        plan.finish(frame, info)?;
        send(message)
    }

    /// Sends an RNDIS message through a free section of the send buffer.
    fn send_staged(&self, channel: &Channel, message: &[u8]) -> Result {
        let (section, tid) = self.stage(message)?;
        Self::announce(channel, RndisChannel::Data, section, message.len(), tid, 0).inspect_err(|_| {
            self.free_section(section);
        })
    }

    /// Sends a frame too big for a send section (with its RNDIS header,
    /// `message`) as a GPA-direct packet naming a bounce buffer's pages.
    /// `EBUSY` while every bounce buffer waits for its completion.
    fn send_bounced(&self, channel: &Channel, message: &[u8]) -> Result {
        let slot = self.bounces_used.alloc().ok_or(EBUSY)?;
        let sent = (|| {
            let bounce = self.bounces.get(slot as usize).ok_or(EINVAL)?;
            bounce.write(0, message)?;
            let mut pfns = [0u64; BOUNCE / 4096];
            let pages = message.len().div_ceil(4096);
            for (i, pfn) in pfns.iter_mut().enumerate().take(pages) {
                *pfn = bounce.pfn(i).ok_or(EINVAL)?;
            }
            let range = GpaBuffer { byte_offset: 0, byte_count: message.len() as u32, pfns: pfns.get(..pages).ok_or(EINVAL)? };
            let header = encode(&Nvsp::SendRndisPacket(RndisPacket {
                channel: RndisChannel::Data,
                section_index: nvsp::NO_SECTION,
                section_size: 0,
            }))?;
            let tid = self.bounces_used.tid(slot) | BOUNCE_TID;
            channel.send_gpa_direct(tid, true, &[range], &[header.bytes()], 0)
        })();
        if sent.is_err() {
            self.bounces_used.free(slot);
        }
        sent
    }

    /// What a frame asks of the host, as PPIs, and what this driver must
    /// do to its copy first; `None` for a frame that cannot be sent.
    fn tx_plan(&self, info: &SkbInfo) -> Option<TxPlan> {
        let mut plan = TxPlan { ppis: [Ppi::HashValue(0); 2], count: 0, lso: false, software_csum: false };
        let v6 = match info.protocol {
            ETHERTYPE_IPV4 => Some(false),
            ETHERTYPE_IPV6 => Some(true),
            _ => None,
        };
        match info.gso {
            Gso::TcpV4 | Gso::TcpV6 => {
                let ipv6 = info.gso == Gso::TcpV6;
                plan.push(Ppi::Lso(LsoInfo::v2(info.gso_size, info.transport_offset?, ipv6)?));
                plan.lso = true;
            }
            // Only TCP segmentation is offered; the stack does the rest.
            Gso::Other => return None,
            Gso::None if info.csum_partial => {
                let udp = self.udp_csum.load(Ordering::Relaxed);
                let kind = match info.l4_proto {
                    PROTO_TCP => Some(ChecksumInfo::TX_TCP),
                    PROTO_UDP if udp => Some(ChecksumInfo::TX_UDP),
                    _ => None,
                };
                let request = match (v6, kind, info.transport_offset) {
                    (Some(v6), Some(kind), Some(at)) => {
                        let ip = if v6 { ChecksumInfo::TX_IPV6 } else { ChecksumInfo::TX_IPV4 };
                        ChecksumInfo::tx(ip | kind, at)
                    }
                    _ => None,
                };
                match request {
                    Some(c) => plan.push(Ppi::Checksum(c)),
                    // A checksum the host does not do: done here.
                    None => plan.software_csum = true,
                }
            }
            Gso::None => {}
        }
        if let Some(tci) = info.vlan_tci {
            plan.push(Ppi::Vlan(VlanInfo::from_tci(tci)));
        }
        Some(plan)
    }

    /// RNDIS QUERY of the host's offloads, then SET of the ones this
    /// driver uses; the device features they give, and the largest TSO
    /// frame. A host that offers none gets plain frames.
    fn offloads(&self, version: Version) -> Result<(Features, u32)> {
        let base = Features::RX_CSUM | Features::SG | Features::VLAN_TX | Features::VLAN_RX | Features::RXHASH;
        let mut query = [0u8; ndis::OFFLOAD_SIZE];
        let n = OffloadCaps::write_query(&mut query, version).map_err(|_| EINVAL)?;
        let mut info = [0u8; ndis::OFFLOAD_SIZE];
        let caps = match self.query_with(oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, query.get(..n).unwrap_or(&[]), &mut info) {
            Ok(len) => OffloadCaps::parse(info.get(..len).unwrap_or(&[])).map_err(|_| {
                self.host_error("malformed offload capabilities");
                EIO
            })?,
            Err(e) if e == EIO => return Ok((base, 0)),
            Err(e) => return Err(e),
        };
        let mut params = OffloadParams::default();
        let mut features = base;
        if caps.tx_tcp4() && caps.tx_tcp6() {
            params.tcp_ip_v4_csum = ndis::offload::TX_RX_ENABLED;
            params.tcp_ip_v6_csum = ndis::offload::TX_RX_ENABLED;
            features = features | Features::TX_CSUM;
            if caps.tx_udp4() && caps.tx_udp6() && version.has_udp_checksum_offload() {
                params.udp_ip_v4_csum = ndis::offload::TX_RX_ENABLED;
                params.udp_ip_v6_csum = ndis::offload::TX_RX_ENABLED;
                self.udp_csum.store(true, Ordering::Relaxed);
            }
        }
        if caps.rsc() && version.has_rsc() {
            params.rsc_ip_v4 = ndis::offload::ENABLED;
            params.rsc_ip_v6 = ndis::offload::ENABLED;
            features = features | Features::LRO;
        }
        let mut tso_max = 0;
        if let (Some(max4), Some(max6), true) = (caps.lso4(), caps.lso6(), features.contains(Features::TX_CSUM)) {
            params.lso_v2_ipv4 = ndis::offload::ENABLED;
            params.lso_v2_ipv6 = ndis::offload::ENABLED;
            features = features | Features::TSO;
            tso_max = max4.min(max6).min(TSO_MAX_SIZE);
        }
        self.set_offloads(&params, version)?;
        Ok((features, tso_max))
    }

    /// RNDIS SET of the offload parameters (fields left 0 stay as they
    /// are at the host).
    fn set_offloads(&self, params: &OffloadParams, version: Version) -> Result {
        let mut set = [0u8; 64];
        let n = params.write(&mut set, version).map_err(|_| EINVAL)?;
        self.set(oid::TCP_OFFLOAD_PARAMETERS, set.get(..n).unwrap_or(&[]))
    }

    /// Asks the host for subchannels (NVSP 5 and newer, RSS offered), one
    /// per online CPU up to the host's receive queues, and opens those it
    /// allocates as queues 1 and up. Returns the subchannels; none is not
    /// an error.
    fn open_subchannels(
        self: &Arc<Self>,
        opener: &SubchannelOpener,
        version: Version,
        give_up: &dyn Fn() -> bool,
    ) -> Result<KVec<OpenChannel>> {
        let none = KVec::new();
        if !version.has_subchannels() {
            return Ok(none);
        }
        let mut query = [0u8; 64];
        let n = RssCaps { header: RssCaps::QUERY_HEADER, ..Default::default() }.write(&mut query).map_err(|_| EINVAL)?;
        let mut info = [0u8; 64];
        let caps = match self.query_with(oid::GEN_RECEIVE_SCALE_CAPABILITIES, query.get(..n).unwrap_or(&[]), &mut info) {
            Ok(len) => RssCaps::parse(info.get(..len).unwrap_or(&[])).map_err(|_| {
                self.host_error("malformed RSS capabilities");
                EIO
            })?,
            // No RSS: one channel.
            Err(e) if e == EIO => return Ok(none),
            Err(e) => return Err(e),
        };
        let cpus = (0..nr_cpu_ids()).filter(|&c| cpu_online(c)).count() as u32;
        let want = caps.num_recv_que.min(cpus).min(MAX_CHANNELS as u32);
        if want < 2 {
            return Ok(none);
        }
        let answer = self.nvsp_request(&Nvsp::SubchannelRequest { num_subchannels: want - 1 })?;
        let allocated = match answer {
            Nvsp::SubchannelComplete { status, num_subchannels } if status == nvsp::status::SUCCESS => {
                num_subchannels.min(want - 1)
            }
            _ => {
                pr_err!("netvsc: relid {}: the host allocated no subchannels; one queue\n", self.relid);
                return Ok(none);
            }
        };
        if allocated == 0 {
            return Ok(none);
        }
        let handler = |i: usize| -> Result<Arc<dyn ChannelHandler>> {
            let queue = u16::try_from(i + 1).map_err(|_| EINVAL)?;
            Ok(Arc::new(QueueHandler { nic: self.clone(), queue }, GFP_KERNEL)?)
        };
        let subs = opener.open(allocated as usize, RING, RING, &handler, SUBCHANNEL_TIMEOUT_MS, give_up)?;
        locked(&self.channels, |c| {
            for (slot, sub) in c.iter_mut().skip(1).zip(subs.iter()) {
                *slot = Some(sub.channel().clone());
            }
        });
        self.opened.store((subs.len() + 1).min(MAX_CHANNELS) as u32, Ordering::Relaxed);
        Ok(subs)
    }

    /// RSS over the first `queues` channels: the default Toeplitz key, the
    /// indirection table round-robin.
    fn set_rss(&self, queues: u16) -> Result {
        let mut table = [0u32; ITAB_NUM];
        for (i, entry) in table.iter_mut().enumerate() {
            *entry = (i as u32).checked_rem(u32::from(queues)).ok_or(EINVAL)?;
        }
        let mut params = KVec::from_elem(0u8, 1024, GFP_KERNEL)?;
        let n = write_rss_params(&mut params, 0, ndis::hash::GUEST_DEFAULT, &table, &toeplitz::DEFAULT_KEY)
            .map_err(|_| EINVAL)?;
        self.set(oid::GEN_RECEIVE_SCALE_PARAMETERS, params.get(..n).unwrap_or(&[]))
    }

    /// The largest MTU: NVSP 2 and newer take frames of up to 64 KiB (the
    /// ones bigger than a send section go through the bounce buffer).
    fn max_mtu(&self) -> u32 {
        Version::from_raw(self.version.load(Ordering::Relaxed)).map_or(1500, Version::max_mtu)
    }

    /// NVSP version negotiation, newest first.
    fn negotiate(&self) -> Result<Version> {
        let (mut negotiation, mut step) = Negotiation::start(false);
        loop {
            match step {
                Step::Propose(message) => {
                    if let Some(v) = negotiation.proposed() {
                        self.version.store(v.raw(), Ordering::Relaxed);
                    }
                    let answer = self.nvsp_request(&message)?;
                    let Nvsp::InitComplete(c) = answer else {
                        self.host_error("answer to INIT is not INIT_COMPLETE");
                        return Err(EIO);
                    };
                    step = negotiation.on_init_complete(&c);
                }
                Step::Done(v) => {
                    self.version.store(v.raw(), Ordering::Relaxed);
                    return Ok(v);
                }
                Step::Failed => {
                    pr_err!("netvsc: relid {}: the host accepts no NVSP version this driver speaks\n", self.relid);
                    return Err(ENODEV);
                }
            }
        }
    }

    /// Shares the receive and send buffers and tells the host.
    fn share_buffers(&self, device: &DeviceHandle) -> Result {
        let recv = device.share_buffer(RECV_BUFFER)?;
        let answer = self.nvsp_request(&Nvsp::SendReceiveBuffer { gpadl: recv.handle(), id: nvsp::RECEIVE_BUFFER_ID })?;
        match answer {
            Nvsp::SendReceiveBufferComplete(c) if c.status == nvsp::status::SUCCESS => {
                c.slots(RECV_BUFFER as u32).map_err(|_| {
                    self.host_error("receive buffer sections outside the buffer");
                    EIO
                })?;
            }
            _ => {
                pr_err!("netvsc: relid {}: the host refused the receive buffer\n", self.relid);
                return Err(EIO);
            }
        }
        let send = device.share_buffer(SEND_BUFFER)?;
        let answer = self.nvsp_request(&Nvsp::SendSendBuffer { gpadl: send.handle(), id: nvsp::SEND_BUFFER_ID })?;
        let (section_size, count) = match answer {
            Nvsp::SendSendBufferComplete { status, section_size } => {
                send_sections(status, section_size, SEND_BUFFER as u32).map_err(|_| {
                    pr_err!("netvsc: relid {}: the host refused the send buffer\n", self.relid);
                    EIO
                })?
            }
            _ => {
                self.host_error("answer to SEND_SEND_BUF is not its completion");
                return Err(EIO);
            }
        };
        let sections = Arc::new(new_sections(count)?, GFP_KERNEL)?;
        locked(&self.buffers, |b| *b = Some(Buffers { recv, send }));
        self.section_size.store(section_size, Ordering::Relaxed);
        locked(&self.sections, |s| *s = Some(sections));
        Ok(())
    }

    /// RNDIS INITIALIZE.
    fn rndis_init(&self) -> Result {
        let mut answer = [0u8; 256];
        let len = self.rndis_request(
            |req_id, out| {
                Rndis::Initialize(rndis::InitRequest {
                    req_id,
                    major: RNDIS_VERSION.0,
                    minor: RNDIS_VERSION.1,
                    max_xfer_size: RNDIS_MAX_XFER,
                })
                .write(out)
                .map_err(|_| EINVAL)
            },
            &mut answer,
        )?;
        match Rndis::parse(answer.get(..len).unwrap_or(&[])) {
            Ok(Rndis::InitializeComplete(c)) if c.status == rndis_status::SUCCESS => Ok(()),
            _ => {
                pr_err!("netvsc: relid {}: RNDIS INITIALIZE failed\n", self.relid);
                Err(EIO)
            }
        }
    }

    fn query_u32(&self, oid: u32) -> Result<u32> {
        let mut info = [0u8; 4];
        match self.query(oid, &mut info)? {
            4 => Ok(u32::from_le_bytes(info)),
            _ => Err(EIO),
        }
    }
}

/// Sets a NIC's subchannels up once probe has returned, since the host's
/// offers come through the context that runs probe (as the C driver's
/// subchannel work does): asks for them, opens them, then uses them as
/// queues and spreads receives over them with RSS.
#[pin_data]
struct SubchannelSetup {
    nic: Arc<Nic>,
    opener: SubchannelOpener,
    /// Set when the channels go: the setup stops waiting for offers.
    cancelled: AtomicBool,
    /// Set when a run has finished (it takes rtnl until then).
    done: AtomicBool,
    /// The subchannels opened, closed before the primary.
    #[pin]
    opened: Mutex<KVec<OpenChannel>>,
}

impl SubchannelSetup {
    fn run(&self) -> Result<u16> {
        let give_up = || self.cancelled.load(Ordering::Relaxed);
        let version = Version::from_raw(self.nic.version.load(Ordering::Relaxed)).ok_or(ENODEV)?;
        let subs = self.nic.open_subchannels(&self.opener, version, &give_up)?;
        if subs.is_empty() {
            return Ok(1);
        }
        *self.opened.lock() = subs;
        let channels = self.nic.opened.load(Ordering::Relaxed) as u16;
        let net = locked(&self.nic.dev, |d| d.clone()).ok_or(ENODEV)?;
        net.set_max_channels(channels);
        // Queues before RSS, so that nothing arrives on a queue the stack
        // does not use yet.
        net.set_queues(channels)?;
        self.nic.set_rss(channels)?;
        Ok(channels)
    }
}

impl WorkFn for SubchannelSetup {
    fn work(this: ArcBorrow<'_, Self>) {
        let result = this.run();
        this.done.store(true, Ordering::Release);
        match result {
            Ok(1) => {}
            Ok(n) => pr_info!("netvsc: relid {}: {} queues\n", this.nic.relid, n),
            Err(e) if this.cancelled.load(Ordering::Relaxed) => {
                pr_info!("netvsc: relid {}: subchannel setup stopped: {:?}\n", this.nic.relid, e)
            }
            Err(e) => pr_err!("netvsc: relid {}: subchannel setup failed ({:?}); one queue\n", this.nic.relid, e),
        }
    }
}

impl Nic {
    /// Opens the primary channel on `device` and brings the NIC up on it
    /// for an interface MTU of `mtu`: NVSP version, NDIS config and
    /// version, the buffers, RNDIS INITIALIZE, the address, link state,
    /// speed and offloads. On failure [`Nic::release`] undoes what was
    /// done.
    fn attach(self: &Arc<Self>, device: &DeviceHandle, link: &mut Link, mtu: u32) -> Result<Attached> {
        let open = device.open_channel(RING, RING, Arc::new(QueueHandler { nic: self.clone(), queue: 0 }, GFP_KERNEL)?)?;
        locked(&self.channels, |c| {
            if let Some(slot) = c.get_mut(0) {
                *slot = Some(open.channel().clone());
            }
        });
        self.opened.store(1, Ordering::Relaxed);
        link.open = Some(open);

        let version = self.negotiate()?;
        if version.has_ndis_config() {
            self.send_nvsp(&Nvsp::SendNdisConfig(NdisConfig::for_guest(version, mtu, false)))?;
        }
        let (major, minor) = version.ndis_version();
        self.send_nvsp(&Nvsp::SendNdisVersion { major, minor })?;
        self.share_buffers(device)?;
        self.rndis_init()?;
        let mut mac = [0u8; 6];
        if self.query(oid::P802_3_PERMANENT_ADDRESS, &mut mac)? != 6 {
            pr_err!("netvsc: relid {}: the host gave no permanent address\n", self.relid);
            return Err(EIO);
        }
        let media = self.query_u32(oid::GEN_MEDIA_CONNECT_STATUS).unwrap_or(MEDIA_STATE_CONNECTED);
        self.link_up.store(media == MEDIA_STATE_CONNECTED, Ordering::Relaxed);
        let speed = self.query_u32(oid::GEN_LINK_SPEED).unwrap_or(0);
        let (features, tso_max) = self.offloads(version)?;
        Ok(Attached { version, mac, speed, features, tso_max })
    }

    /// Closes the channels, the subchannels' setup and the subchannels
    /// first, and takes the buffers back after them: what
    /// [`Nic::attach`] and the setup made. What was in flight goes with
    /// the channel.
    /// The subchannel setup must not be running (remove cancelled it; an
    /// MTU change waits for it to be done).
    fn release(&self, link: &mut Link) {
        locked(&self.channels, |c| *c = Default::default());
        self.opened.store(0, Ordering::Relaxed);
        if let Some(setup) = link.setup.as_ref() {
            setup.cancelled.store(true, Ordering::Relaxed);
            let subchannels = core::mem::take(&mut *setup.opened.lock());
            drop(subchannels);
        }
        drop(link.open.take());
        self.section_size.store(0, Ordering::Relaxed);
        locked(&self.sections, |s| *s = None);
        let buffers = locked(&self.buffers, |b| b.take());
        drop(buffers);
        for slot in 0..BOUNCES {
            self.tx_held.release(slot as usize);
            self.bounces_used.free(slot);
        }
        locked(&self.pending, |p| p.iter_mut().for_each(|p| p.len = 0));
    }

    /// Sets the subchannels up after probe or a re-initialisation, in a
    /// work item (NVSP 5 and newer).
    fn start_subchannels(self: &Arc<Self>, link: &mut Link, version: Version) -> Result {
        if !version.has_subchannels() {
            return Ok(());
        }
        if link.setup_work.is_none() {
            let opener = link.open.as_ref().ok_or(ENODEV)?.subchannel_opener();
            let setup = Arc::pin_init(
                pin_init!(SubchannelSetup {
                    nic: self.clone(),
                    opener,
                    cancelled: AtomicBool::new(false),
                    done: AtomicBool::new(false),
                    opened <- new_mutex!(KVec::new(), "netvsc_subchannels"),
                }),
                GFP_KERNEL,
            )?;
            // Its own lockdep class: remove cancels it under the bus's
            // device lock, which the bus's offer work takes.
            let work = Work::new_in_class(setup.clone(), kernel::static_lock_class!(), c_str!("netvsc_subchannel_setup"))?;
            link.setup = Some(setup);
            link.setup_work = Some(work);
        }
        // The opener stays valid: it opens the subchannels of the device,
        // whichever time its primary channel was opened.
        if let (Some(setup), Some(work)) = (link.setup.as_ref(), link.setup_work.as_ref()) {
            setup.cancelled.store(false, Ordering::Relaxed);
            setup.done.store(false, Ordering::Relaxed);
            work.queue_on(u32::MAX);
        }
        Ok(())
    }

    /// Takes the NIC apart and sets it up again for an interface MTU of
    /// `mtu` (rtnl held): the interface is detached meanwhile, its NAPI
    /// stopped; its features and address stay as they are, and it keeps
    /// one queue until the subchannels are back.
    fn reinit(self: &Arc<Self>, net: &Net, device: &DeviceHandle, link: &mut Link, mtu: u32) -> Result {
        net.detach();
        let running = net.is_running();
        if running {
            let _ = self.set_filter(0);
        }
        for queue in 0..MAX_CHANNELS as u16 {
            net.napi_disable(queue);
        }
        self.release(link);
        net.set_max_channels(1);
        net.set_queues(1)?;
        for queue in 0..MAX_CHANNELS as u16 {
            net.napi_enable(queue);
        }
        let attached = self.attach(device, link, mtu).inspect_err(|_| self.release(link))?;
        if !self.lro_wanted.load(Ordering::Relaxed) && attached.features.contains(Features::LRO) {
            self.set_lro_net(net, false)?;
        }
        if running {
            self.open_net(net)?;
        }
        net.attach();
        self.start_subchannels(link, attached.version)?;
        pr_info!("netvsc: relid {}: set up again for MTU {}\n", self.relid, mtu);
        Ok(())
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
        let queues = MAX_CHANNELS as u16;
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
