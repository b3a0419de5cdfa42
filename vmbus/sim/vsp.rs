// SPDX-License-Identifier: GPL-2.0
//! The simulated host's open channels and the device models (VSPs) behind
//! them, written from the host's side: the host reads the guest's outbound
//! ring and writes its inbound ring with the same `vmbus_core::ring` code
//! the guest uses, in the opposite roles.
//!
//! - The guest's HvSignalEvent queues the channel's work (any CPU); the
//!   work drains the guest's ring with signals masked, hands each packet
//!   to the [`Vsp`], and writes the answers.
//! - A full inbound ring is back-pressure: the host keeps the answer it
//!   could not write, asks the guest (`pending_send_sz`) to signal when
//!   there is room, and stops reading until then.
//! - Host-to-guest signals set the channel's event flag on its target
//!   CPU's event page and interrupt that CPU ([`GuestInterrupts`]).
//!
//! Device models: [`Echo`] answers every in-band packet with the same bytes
//! (as a completion when the guest asked for one); [`Sink`] reads and drops
//! packets, for devices without a model yet.

use super::super::hv_glue::{cond_resched, msleep, nr_cpu_ids, sim, Page, WorkFn};
use super::super::vmbus_core::event;
use super::super::vmbus_core::ring::{
    self, Consumer, PacketInfo, Producer, ReadError, Signal, WriteError, FLAG_COMPLETION_REQUESTED,
    PACKET_TYPE_COMPLETION, PACKET_TYPE_GPA_DIRECT, PACKET_TYPE_INBAND,
};
use super::super::vmbus_core::shared::SharedMem;
use super::host::{COMPLETIONS, ECHOED};
use super::hypervisor::HostRequests;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex};

/// The simulated SynIC event flags pages (one per CPU) and the interrupt.
pub(crate) struct GuestInterrupts {
    event_pages: KVec<Page>,
    stopped: AtomicBool,
}

impl GuestInterrupts {
    pub(crate) fn new() -> Result<Arc<Self>> {
        let n = nr_cpu_ids() as usize;
        let mut event_pages = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            event_pages.push(Page::new()?, GFP_KERNEL)?;
        }
        Ok(Arc::new(
            GuestInterrupts {
                event_pages,
                stopped: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?)
    }

    /// The event flags page of `cpu`.
    pub(crate) fn event_page(&self, cpu: u32) -> Option<SharedMem<'_>> {
        self.event_pages.get(cpu as usize).map(Page::shared)
    }

    /// Raises an interrupt on `cpu` unless stopped.
    pub(crate) fn raise(&self, cpu: u32) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = sim::raise(cpu) {
            pr_err!("sim: cannot raise the VMBus interrupt on CPU {}: {:?}\n", cpu, e);
        }
    }

    /// Signals channel `relid` on `cpu`: its event flag, then the
    /// interrupt (only when the flag was clear; a set one has one coming).
    pub(crate) fn signal(&self, relid: u32, cpu: u32) {
        let Some(page) = self.event_page(cpu) else {
            return;
        };
        let Ok(slot) = event::vmbus_slot(page) else {
            return;
        };
        if event::set(slot, relid) == Ok(true) {
            self.raise(cpu);
        }
    }

    /// Stops raising interrupts and waits (up to a second) until none is
    /// in flight.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for _ in 0..1000 {
            if sim::irq_idle() {
                return;
            }
            msleep(1);
        }
        pr_err!("sim: an interrupt is still in flight after 1 s\n");
    }
}

/// What a device model answers to one guest packet.
pub(crate) enum Answer<'p> {
    /// Nothing.
    None,
    /// An in-band packet with this transaction id and payload; the bool
    /// asks the guest for a completion.
    Inband(u64, bool, &'p [u8]),
    /// A completion for this transaction id, with this payload.
    Completion(u64, &'p [u8]),
}

/// A device model behind a channel.
pub(crate) trait Vsp: Send {
    /// The answer to one guest packet (`bytes` is the whole packet).
    fn packet<'p>(&'p mut self, info: &PacketInfo, bytes: &'p [u8]) -> Answer<'p>;
}

/// The first word of an echo payload that asks the host to answer with a
/// packet requesting a completion (the echo driver's `complete` command).
pub(crate) const ECHO_WANTS_COMPLETION: u32 = 0xc0de_ec40;
/// The first word of an echo payload that asks for subchannels (as many
/// as its second word says); echoed like any other.
pub(crate) const ECHO_WANTS_SUBCHANNELS: u32 = 0x5eb0_ec40;

/// Echoes what the guest sends: in-band packets as they are, GPA-direct
/// packets as the bytes of the guest pages they name; as a completion when
/// the guest asked for one. Counts the guest's completions.
pub(crate) struct Echo {
    /// The bytes of a GPA-direct packet's pages.
    gpa: VVec<u8>,
    relid: u32,
    requests: Arc<HostRequests>,
}

impl Echo {
    pub(crate) fn new(relid: u32, requests: Arc<HostRequests>) -> Result<Self> {
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

impl Vsp for Echo {
    fn packet<'p>(&'p mut self, info: &PacketInfo, bytes: &'p [u8]) -> Answer<'p> {
        let tid = info.descriptor.transaction_id;
        let wants_completion = info.descriptor.flags & FLAG_COMPLETION_REQUESTED != 0;
        let payload = match info.descriptor.packet_type {
            PACKET_TYPE_INBAND => {
                let payload = info.payload(bytes);
                if payload.get(..4) == Some(&ECHO_WANTS_COMPLETION.to_le_bytes()[..]) {
                    ECHOED.fetch_add(1, Ordering::Relaxed);
                    return Answer::Inband(tid, true, payload);
                }
                if payload.get(..4) == Some(&ECHO_WANTS_SUBCHANNELS.to_le_bytes()[..]) {
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
                    return Answer::None;
                };
                self.gpa.get(..len).unwrap_or(&[])
            }
            PACKET_TYPE_COMPLETION => {
                COMPLETIONS.fetch_add(1, Ordering::Relaxed);
                return Answer::None;
            }
            _ => return Answer::None,
        };
        ECHOED.fetch_add(1, Ordering::Relaxed);
        if wants_completion {
            Answer::Completion(tid, payload)
        } else {
            Answer::Inband(tid, false, payload)
        }
    }
}

/// Reads and drops every packet.
pub(crate) struct Sink;

impl Vsp for Sink {
    fn packet<'p>(&'p mut self, _info: &PacketInfo, _bytes: &'p [u8]) -> Answer<'p> {
        Answer::None
    }
}

/// The device model of a channel.
pub(crate) enum Model {
    Echo(Echo),
    Sink(Sink),
}

impl Model {
    fn packet<'p>(&'p mut self, info: &PacketInfo, bytes: &'p [u8]) -> Answer<'p> {
        match self {
            Model::Echo(m) => m.packet(info, bytes),
            Model::Sink(m) => m.packet(info, bytes),
        }
    }
}

/// The kind of a held answer.
#[derive(Clone, Copy)]
enum Held {
    Inband { completion_requested: bool },
    Completion,
}

/// The host's end of one open channel.
struct Ends {
    /// Reads the guest's outbound ring.
    from_guest: Consumer<'static>,
    /// Writes the guest's inbound ring.
    to_guest: Producer<'static>,
    vsp: Model,
    /// The packet being handled (copied out of the ring).
    scratch: VVec<u8>,
    /// An answer that did not fit yet: (kind, transaction id, len).
    held: Option<(Held, u64, usize)>,
    held_bytes: VVec<u8>,
}

/// An open channel on the host side.
#[pin_data]
pub(crate) struct HostChannel {
    pub(crate) relid: u32,
    /// The guest CPU its signals go to.
    target_cpu: AtomicU32,
    interrupts: Arc<GuestInterrupts>,
    /// Set on close or rescind: the work stops touching the rings.
    closed: AtomicBool,
    /// Set by fault injection: the host stops serving this channel.
    pub(crate) stalled: AtomicBool,
    #[pin]
    ends: Mutex<Ends>,
    /// The guest's inbound ring, for fault injection.
    in_ring: SharedMem<'static>,
    /// The guest's ring buffer as the host mapped it (the handles in
    /// `ends` point into it; dropped after them).
    _rings: Arc<sim::Mapping>,
}

/// Packets handled per work run before yielding the CPU.
const BATCH: usize = 256;

pub(crate) static PACKETS_SERVED: AtomicU64 = AtomicU64::new(0);

impl HostChannel {
    /// The host's end of a channel whose ring buffer is `rings`: the
    /// guest's outbound ring in the first `downstream` pages, its inbound
    /// ring in the rest.
    pub(crate) fn new(
        relid: u32,
        target_cpu: u32,
        interrupts: Arc<GuestInterrupts>,
        rings: Arc<sim::Mapping>,
        downstream: usize,
        vsp: Model,
    ) -> Result<Arc<Self>> {
        // SAFETY: `rings` is kept in the channel, after the handles made
        // from it, so they never outlive the mapping.
        let mem = unsafe { rings.shared_static() };
        let split = downstream.checked_mul(Page::SIZE).ok_or(EINVAL)?;
        let total = mem.len();
        if split == 0 || split >= total {
            return Err(EINVAL);
        }
        let out_ring = mem.subrange(0, split).map_err(|_| EINVAL)?;
        let in_ring = mem.subrange(split, total - split).map_err(|_| EINVAL)?;
        let from_guest = Consumer::new(out_ring).map_err(|_| EINVAL)?;
        let to_guest = Producer::new(in_ring).map_err(|_| EINVAL)?;
        let scratch = VVec::from_elem(0u8, from_guest.data_size() as usize, GFP_KERNEL)?;
        let held_bytes = VVec::from_elem(0u8, from_guest.data_size() as usize, GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(HostChannel {
                relid,
                target_cpu: AtomicU32::new(target_cpu),
                interrupts,
                closed: AtomicBool::new(false),
                stalled: AtomicBool::new(false),
                ends <- new_mutex!(
                    Ends { from_guest, to_guest, vsp, scratch, held: None, held_bytes },
                    "sim_host_channel"
                ),
                in_ring,
                _rings: rings,
            }),
            GFP_KERNEL,
        )
    }

    /// CHANNELMSG_MODIFYCHANNEL: signals go to `cpu` from now on.
    pub(crate) fn retarget(&self, cpu: u32) {
        self.target_cpu.store(cpu, Ordering::Relaxed);
    }

    /// Stops serving (close, rescind): the work returns at once from now.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn signal_guest(&self) {
        self.interrupts.signal(self.relid, self.target_cpu.load(Ordering::Relaxed));
    }

    /// Fault injection: makes the guest's inbound write index invalid and
    /// signals it, as a host that scribbles on the ring header would.
    pub(crate) fn corrupt_inbound_index(&self) {
        let size = (self.in_ring.len() - ring::HEADER_SIZE) as u32;
        let ends = self.ends.lock();
        // Past the end of the data area: no valid index is that large.
        let _ = self.in_ring.store_u32(ring::WRITE_INDEX_OFFSET, size + 8, Ordering::SeqCst);
        drop(ends);
        self.signal_guest();
    }

    /// Writes the held answer; false if it still does not fit (the guest
    /// will signal when it has room).
    fn flush_held(ends: &mut Ends, signal: &mut bool) -> core::result::Result<bool, ()> {
        let Some((kind, tid, len)) = ends.held else {
            return Ok(true);
        };
        let payload = ends.held_bytes.get(..len).unwrap_or(&[]);
        let written = match kind {
            Held::Completion => ends.to_guest.write_completion(tid, &[payload]),
            Held::Inband { completion_requested } => ends.to_guest.write_inband(tid, completion_requested, &[payload]),
        };
        match written {
            Ok(s) => {
                *signal |= s == Signal::Yes;
                ends.held = None;
                let _ = ends.to_guest.clear_space_request();
                Ok(true)
            }
            Err(WriteError::Full { needed }) => match ends.to_guest.request_space(needed) {
                Ok(true) => Self::flush_held(ends, signal),
                Ok(false) => Ok(false),
                Err(_) => Err(()),
            },
            Err(_) => Err(()),
        }
    }

    /// One round of service: answers what the guest sent, as far as the
    /// guest's inbound ring has room. Returns whether to go on at once
    /// (the batch limit was reached with packets left).
    fn serve(&self) -> bool {
        if self.closed.load(Ordering::SeqCst) || self.stalled.load(Ordering::SeqCst) {
            return false;
        }
        let mut more = false;
        let mut guard = self.ends.lock();
        let ends = &mut *guard;
        let mut signal_guest = false;
        let mut broken = false;
        'rounds: for _ in 0..4 {
            match Self::flush_held(ends, &mut signal_guest) {
                Ok(true) => {}
                Ok(false) => break,
                Err(()) => {
                    broken = true;
                    break;
                }
            }
            if ends.from_guest.begin_poll().is_err() {
                broken = true;
                break;
            }
            let mut handled = 0;
            while handled < BATCH {
                let info = match ends.from_guest.read_packet(&mut ends.scratch) {
                    Ok(info) => info,
                    Err(ReadError::Empty) => break,
                    Err(_) => {
                        broken = true;
                        break 'rounds;
                    }
                };
                handled += 1;
                PACKETS_SERVED.fetch_add(1, Ordering::Relaxed);
                let bytes = ends.scratch.get(..info.len).unwrap_or(&[]);
                let (kind, tid, payload) = match ends.vsp.packet(&info, bytes) {
                    Answer::None => continue,
                    Answer::Inband(tid, c, p) => (Held::Inband { completion_requested: c }, tid, p),
                    Answer::Completion(tid, p) => (Held::Completion, tid, p),
                };
                let len = payload.len();
                let Some(dst) = ends.held_bytes.get_mut(..len) else {
                    broken = true;
                    break 'rounds;
                };
                dst.copy_from_slice(payload);
                ends.held = Some((kind, tid, len));
                match Self::flush_held(ends, &mut signal_guest) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(()) => {
                        broken = true;
                        break 'rounds;
                    }
                }
            }
            // Commit what was read: a guest waiting for outbound room is
            // signalled when this frees what it asked for.
            match ends.from_guest.end_poll() {
                Ok(end) => {
                    signal_guest |= end.signal_writer == Signal::Yes;
                    more = end.more && ends.held.is_none();
                    if !more {
                        break;
                    }
                }
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        drop(guard);
        if broken {
            pr_err!("sim: relid {}: the guest's ring is corrupt; the host stops serving it\n", self.relid);
            self.close();
        }
        if signal_guest {
            self.signal_guest();
        }
        more && !broken
    }
}

impl WorkFn for HostChannel {
    fn work(this: ArcBorrow<'_, Self>) {
        while this.serve() {
            cond_resched();
        }
    }
}
