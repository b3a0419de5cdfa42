// SPDX-License-Identifier: GPL-2.0
//! The simulated host's open channels, written from the host's side: the
//! host reads the guest's outbound ring and writes its inbound ring with
//! the same `vmbus_core::ring` code the guest uses, in the opposite roles.
//!
//! - The guest's HvSignalEvent queues the channel's work (any CPU); the
//!   work drains the guest's ring with signals masked, hands each packet
//!   to the channel's device model (a [`ChannelModel`], one dynamic call
//!   per packet), and writes the answers.
//! - A full inbound ring is back-pressure: the host keeps the answer it
//!   could not write ([`Outbox`]), asks the guest (`pending_send_sz`) to
//!   signal when there is room, and stops reading until then.
//! - Host-to-guest signals set the channel's event flag on its target
//!   CPU's event page and interrupt that CPU ([`GuestInterrupts`]).
//! - Closing a channel tells its model's [`ChannelHook`], if it has one.

use crate::rust::sim;

use crate::rust::base::cpu::nr_cpu_ids;

use crate::rust::base::memory::Page;

use crate::rust::base::time::msleep;

use crate::rust::base::work::{cond_resched, WorkFn};
use crate::vmbus_core::event;
use crate::vmbus_core::ring::{self, Consumer, Producer, ReadError, Signal, TransferPageRange, WriteError};
use crate::vmbus_core::shared::SharedMem;
use crate::testing::sim::chaos::ChaosFault;
use crate::testing::sim::model::{ChannelHook, ChannelModel, Served};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::new_mutex;
use kernel::prelude::*;
use core::pin::Pin;
use kernel::sync::{Arc, ArcBorrow, Mutex, UniqueArc};

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

/// The rings' faults, for chaos (`crate::testing::sim::chaos`): the host
/// scribbles on the device's inbound ring index, or stops serving its
/// channel; either breaks the channel until the host resets the device.
pub(crate) static RING_FAULTS: [ChaosFault; 2] =
    [ChaosFault::until_reset("corrupt-ring {dev}"), ChaosFault::until_reset("stall {dev}")];

/// How the host writes one packet to the guest.
#[derive(Clone, Copy)]
pub(crate) enum OutKind {
    /// In-band; the bool asks the guest for a completion.
    Inband(bool),
    /// A completion of the guest's packet.
    Completion,
    /// A transfer-page packet naming one range of transfer page set
    /// `set_id` (the guest's receive buffer).
    TransferPages { set_id: u16, offset: u32, len: u32 },
    /// A transfer-page packet naming `count` ranges of set `set_id`, kept
    /// in the outbox from `first` on ([`Outbox::push_ranges`]).
    TransferRanges { set_id: u16, first: usize, count: usize },
}

/// Packets a device model has for the guest, written in order as the
/// guest's inbound ring has room; what does not fit waits here and the
/// host reads nothing more from the guest until it is out.
pub(crate) struct Outbox {
    /// (kind, transaction id, payload start, payload length) in `bytes`.
    packets: [Option<(OutKind, u64, usize, usize)>; Outbox::PACKETS],
    /// Packets queued (written ones included) since the outbox was last
    /// empty: the next goes after them, so the order holds.
    queued: usize,
    bytes: VVec<u8>,
    used: usize,
    /// The ranges of queued [`OutKind::TransferRanges`] packets.
    ranges: VVec<TransferPageRange>,
    ranges_used: usize,
}

impl Outbox {
    const PACKETS: usize = 8;
    /// Ranges the queued packets may name in all.
    const RANGES: usize = 512;

    fn new(capacity: usize) -> Result<Self> {
        Ok(Outbox {
            packets: [None; Outbox::PACKETS],
            queued: 0,
            bytes: VVec::from_elem(0u8, capacity, GFP_KERNEL)?,
            used: 0,
            ranges: VVec::from_elem(TransferPageRange::default(), Outbox::RANGES, GFP_KERNEL)?,
            ranges_used: 0,
        })
    }

    /// Queues a transfer-page packet naming `ranges` of set `set_id`;
    /// `ENOSPC` when the outbox is full.
    pub(crate) fn push_ranges(&mut self, set_id: u16, ranges: &[TransferPageRange], transaction_id: u64, payload: &[u8]) -> Result {
        let first = self.ranges_used;
        let end = first.checked_add(ranges.len()).ok_or(ENOSPC)?;
        // Element by element: copy_from_slice keeps a panic path.
        for (to, from) in self.ranges.get_mut(first..end).ok_or(ENOSPC)?.iter_mut().zip(ranges) {
            *to = *from;
        }
        self.push(OutKind::TransferRanges { set_id, first, count: ranges.len() }, transaction_id, payload)?;
        self.ranges_used = end;
        Ok(())
    }

    /// Queues one packet; `ENOSPC` when the outbox is full (the model
    /// produced more for one guest packet than it may).
    pub(crate) fn push(&mut self, kind: OutKind, transaction_id: u64, payload: &[u8]) -> Result {
        let slot = self.packets.get_mut(self.queued).ok_or(ENOSPC)?;
        let end = self.used.checked_add(payload.len()).ok_or(ENOSPC)?;
        self.bytes.get_mut(self.used..end).ok_or(ENOSPC)?.copy_from_slice(payload);
        *slot = Some((kind, transaction_id, self.used, payload.len()));
        self.queued += 1;
        self.used = end;
        Ok(())
    }

    /// Room left, in packets.
    pub(crate) fn room(&self) -> usize {
        Outbox::PACKETS.saturating_sub(self.queued)
    }

    /// Writes the queued packets in order; Ok(false) when the ring filled
    /// first (the guest is asked to signal when it has room).
    fn flush(&mut self, to_guest: &mut Producer<'_>, signal: &mut bool) -> core::result::Result<bool, ()> {
        for i in 0..Outbox::PACKETS {
            let Some(Some((kind, tid, start, len))) = self.packets.get(i).copied() else {
                continue;
            };
            let payload = self.bytes.get(start..start + len).unwrap_or(&[]);
            let written = match kind {
                OutKind::Completion => to_guest.write_completion(tid, &[payload]),
                OutKind::Inband(c) => to_guest.write_inband(tid, c, &[payload]),
                OutKind::TransferPages { set_id, offset, len } => {
                    let range = [TransferPageRange { byte_count: len, byte_offset: offset }];
                    to_guest.write_transfer_pages(tid, set_id, &range, &[payload])
                }
                OutKind::TransferRanges { set_id, first, count } => {
                    let ranges = self.ranges.get(first..first.saturating_add(count)).unwrap_or(&[]);
                    to_guest.write_transfer_pages(tid, set_id, ranges, &[payload])
                }
            };
            match written {
                Ok(s) => {
                    *signal |= s == Signal::Yes;
                    if let Some(p) = self.packets.get_mut(i) {
                        *p = None;
                    }
                    let _ = to_guest.clear_space_request();
                }
                Err(WriteError::Full { needed }) => match to_guest.request_space(needed) {
                    // Room appeared meanwhile: go round again.
                    Ok(true) => return self.flush(to_guest, signal),
                    Ok(false) => return Ok(false),
                    Err(_) => return Err(()),
                },
                Err(_) => return Err(()),
            }
        }
        self.used = 0;
        self.queued = 0;
        self.ranges_used = 0;
        Ok(true)
    }
}

/// The host's end of one open channel.
struct Ends {
    /// Reads the guest's outbound ring.
    from_guest: Consumer<'static>,
    /// Writes the guest's inbound ring.
    to_guest: Producer<'static>,
    /// The channel's device model.
    model: Pin<UniqueArc<dyn ChannelModel>>,
    /// The packet being handled (copied out of the ring).
    scratch: VVec<u8>,
    /// Answers not written yet.
    out: Outbox,
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
    /// Set by fault injection: the host stops reading the guest's
    /// outbound ring but goes on writing to it (received frames).
    pub(crate) undrained: AtomicBool,
    #[pin]
    ends: Mutex<Ends>,
    /// The guest's inbound ring, for fault injection.
    in_ring: SharedMem<'static>,
    /// What kicks the channel from outside it, told when it closes.
    hook: Option<Arc<dyn ChannelHook>>,
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
    /// ring in the rest; `served` is what its device model serves it with.
    pub(crate) fn new(
        relid: u32,
        target_cpu: u32,
        interrupts: Arc<GuestInterrupts>,
        rings: Arc<sim::Mapping>,
        downstream: usize,
        served: Served,
    ) -> Result<Arc<Self>> {
        let Served { model, hook } = served;
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
        let out = Outbox::new(from_guest.data_size() as usize)?;
        Arc::pin_init(
            pin_init!(HostChannel {
                relid,
                target_cpu: AtomicU32::new(target_cpu),
                interrupts,
                closed: AtomicBool::new(false),
                stalled: AtomicBool::new(false),
                undrained: AtomicBool::new(false),
                ends <- new_mutex!(
                    Ends { from_guest, to_guest, model, scratch, out },
                    "sim_host_channel"
                ),
                in_ring,
                hook,
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
        if let Some(hook) = &self.hook {
            hook.closed();
        }
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

    /// One round of service: answers what the guest sent and writes what
    /// the device has for it, as far as the guest's inbound ring has room.
    /// Returns whether to go on at once (a batch limit was reached with
    /// work left).
    fn serve(&self) -> bool {
        if self.closed.load(Ordering::SeqCst) || self.stalled.load(Ordering::SeqCst) {
            return false;
        }
        let mut more = false;
        let mut guard = self.ends.lock();
        let Ends { from_guest, to_guest, model, scratch, out } = &mut *guard;
        let mut signal_guest = false;
        let mut broken = false;
        'rounds: for _ in 0..4 {
            match out.flush(to_guest, &mut signal_guest) {
                Ok(true) => {}
                Ok(false) => break,
                Err(()) => {
                    broken = true;
                    break;
                }
            }
            if self.undrained.load(Ordering::SeqCst) {
                // Only what the device has unasked.
                let unasked = model.pending(out);
                match out.flush(to_guest, &mut signal_guest) {
                    Ok(true) if unasked => {
                        more = true;
                        continue;
                    }
                    // Done, or the inbound ring is full (the guest signals).
                    Ok(_) => {
                        more = false;
                        break;
                    }
                    Err(()) => {
                        broken = true;
                        break;
                    }
                }
            }
            if from_guest.begin_poll().is_err() {
                broken = true;
                break;
            }
            let mut handled = 0;
            let mut ring_full = false;
            while handled < BATCH {
                let info = match from_guest.read_packet(scratch) {
                    Ok(info) => info,
                    Err(ReadError::Empty) => break,
                    Err(_) => {
                        broken = true;
                        break 'rounds;
                    }
                };
                handled += 1;
                PACKETS_SERVED.fetch_add(1, Ordering::Relaxed);
                model.packet(&info, scratch.get(..info.len).unwrap_or(&[]), out);
                match out.flush(to_guest, &mut signal_guest) {
                    Ok(true) => {}
                    Ok(false) => {
                        ring_full = true;
                        break;
                    }
                    Err(()) => {
                        broken = true;
                        break 'rounds;
                    }
                }
            }
            // Commit what was read: a guest waiting for outbound room is
            // signalled when this frees what it asked for.
            match from_guest.end_poll() {
                Ok(end) => {
                    signal_guest |= end.signal_writer == Signal::Yes;
                    more = end.more && !ring_full;
                }
                Err(_) => {
                    broken = true;
                    break;
                }
            }
            if ring_full {
                break;
            }
            // Then what the device has unasked.
            let unasked = model.pending(out);
            match out.flush(to_guest, &mut signal_guest) {
                Ok(true) => more |= unasked,
                Ok(false) => break,
                Err(()) => {
                    broken = true;
                    break;
                }
            }
            if !more {
                break;
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
