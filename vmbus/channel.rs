// SPDX-License-Identifier: GPL-2.0
//! An open VMBus channel: two rings in one guest buffer that the host maps
//! through a GPADL, the outbound ring written here and the inbound ring
//! read here (`vmbus_core::ring`), and the signals between the two sides.
//!
//! - Sending: [`Channel::send_inband`], [`Channel::send_gpa_direct`],
//!   [`Channel::send_completion`]. A full ring is back-pressure: the
//!   sender asks the host (`pending_send_sz`) to signal when enough is
//!   free and waits for that signal, bounded by the caller's timeout;
//!   `timeout_ms == 0` fails at once with `EAGAIN` instead.
//! - Receiving: the host's signal runs the driver's
//!   [`ChannelHandler::on_event`] on the channel's target CPU, in softirq
//!   context if the handler says it may run there
//!   ([`ChannelHandler::softirq_safe`], netvsc's: it only schedules NAPI),
//!   else in process context; the handler drains the ring with
//!   [`Channel::poll`], which
//!   masks the host's signals while it reads (the batched mode NAPI uses)
//!   and tells whether to poll again.
//! - A ring the host corrupts poisons the channel: every later call fails
//!   with `EIO`, with one message in the log.
//!
//! The ring locks are spinlocks that netvsc takes in softirq (transmit,
//! NAPI), so everyone takes them with softirqs off ([`BhOff`]). Senders
//! waiting for room sleep without them ([`SpaceWait`]).


use crate::vmbus::connection::Connection;
use crate::rust::base::errno::ETIMEDOUT;
use crate::rust::base::memory::{Buffer, Page};
use crate::rust::base::time::{msleep, now_ms, RateLimit};
use crate::rust::base::work::{in_task, BhOff};
use crate::vmbus_core::bus::RingView;
use crate::vmbus_core::ring::{
    self, Consumer, GpaBuffer, PacketInfo, Producer, ReadError, Signal, WriteError,
};
use crate::vmbus_core::shared::SharedMem;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex, SpinLock};
use kernel::{new_condvar, new_mutex, new_spinlock};

/// What a driver does when the host signals its channel.
pub(crate) trait ChannelHandler: Send + Sync + 'static {
    /// The host signalled `channel` (on its target CPU; softirq or process
    /// context, as [`ChannelHandler::softirq_safe`] says): drain it with
    /// [`Channel::poll`], or schedule what will.
    fn on_event(&self, channel: &Channel);

    /// Whether `on_event` may run in softirq context: it never sleeps and
    /// takes only locks that are taken with softirqs off. Serving it there
    /// saves a switch to a worker thread per interrupt.
    fn softirq_safe(&self) -> bool {
        false
    }
}

/// Ring sizes and placement of a channel to open.
#[derive(Clone, Copy)]
pub(crate) struct ChannelParams {
    /// Bytes of the outbound (guest-to-host) ring's data area.
    pub(crate) send_ring: usize,
    /// Bytes of the inbound (host-to-guest) ring's data area.
    pub(crate) recv_ring: usize,
    /// The CPU the host interrupts for this channel.
    pub(crate) target_cpu: u32,
}

impl ChannelParams {
    /// Pages of the whole ring buffer (each ring has a header page).
    pub(crate) fn pages(&self) -> Result<usize> {
        let data_pages = |bytes: usize| -> Result<usize> {
            if bytes == 0 || bytes % Page::SIZE != 0 || bytes > ring::MAX_DATA_SIZE {
                return Err(EINVAL);
            }
            Ok(bytes / Page::SIZE + 1)
        };
        Ok(data_pages(self.send_ring)? + data_pages(self.recv_ring)?)
    }
}

/// The inbound side: the consumer and the buffer packets are copied into.
struct Inbound {
    consumer: Consumer<'static>,
    scratch: VVec<u8>,
}

/// Per-channel counters (the sysfs ring statistics).
#[derive(Default)]
pub(crate) struct ChannelStats {
    pub(crate) interrupts: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) out_full_first: AtomicU64,
    pub(crate) out_full_total: AtomicU64,
}

/// An open channel. Created by [`Connection::open_channel`]; closed by
/// [`Connection::close_channel`].
#[pin_data]
pub(crate) struct Channel {
    pub(crate) relid: u32,
    /// Connection id of HvSignalEvent for this channel.
    signal_id: u32,
    /// The CPU the host interrupts for this channel.
    target_cpu: AtomicU32,
    /// The handle of the ring's GPADL, once the host has it.
    ring_gpadl: AtomicU32,
    conn: Arc<Connection>,
    #[pin]
    outbound: SpinLock<Producer<'static>>,
    #[pin]
    inbound: SpinLock<Inbound>,
    /// Senders waiting for outbound space.
    #[pin]
    space: SpaceWait,
    handler: Arc<dyn ChannelHandler>,
    poisoned: AtomicBool,
    closed: AtomicBool,
    /// Handler calls under way or about to check `closed`
    /// ([`Channel::run_handler`]); [`Channel::quiesce`] waits for none.
    in_handler: AtomicU32,
    /// Signalled, and left by the softirq for process context.
    deferred: AtomicBool,
    /// Set by the first close; a second (rescind, then the driver) is a
    /// no-op.
    torn_down: AtomicBool,
    /// A sender that does not wait found the ring full and asked the host
    /// (`pending_send_sz`) to signal when there is room: the signal runs
    /// the handler, which tries again. Cleared by the next send that fits.
    space_armed: AtomicBool,
    pub(crate) stats: ChannelStats,
    /// Views of the two rings for sysfs (header reads only).
    out_mem: SharedMem<'static>,
    in_mem: SharedMem<'static>,
    /// The ring buffer; the handles above point into it (dropped after
    /// them).
    ring: RingMemory,
}

/// Where senders wait for outbound space: they sleep on `wake` with `lock`
/// held (not the ring's spinlock, which is taken with softirqs off).
#[pin_data]
struct SpaceWait {
    #[pin]
    lock: Mutex<()>,
    #[pin]
    wake: CondVar,
    /// How many senders wait (or are about to).
    waiters: AtomicU32,
    /// Bumped by every host signal; a waiter sleeps only while it is
    /// unchanged since it last found the ring full.
    signals: AtomicU32,
}

impl SpaceWait {
    fn new() -> impl PinInit<Self> {
        pin_init!(SpaceWait {
            lock <- new_mutex!((), "vmbus_channel_space_lock"),
            wake <- new_condvar!("vmbus_channel_space"),
            waiters: AtomicU32::new(0),
            signals: AtomicU32::new(0),
        })
    }

    /// Counts a host signal; returns whether no sender waits (any
    /// context). A waiter that counts itself after this sees the bump.
    fn count_signal(&self) -> bool {
        self.signals.fetch_add(1, Ordering::SeqCst);
        self.waiters.load(Ordering::SeqCst) == 0
    }

    /// The host signalled (or the channel closed): wakes the waiters
    /// (process context: takes the mutex if there are any).
    fn notify(&self) {
        if !self.count_signal() {
            // A waiter checks `signals` under the lock before it sleeps:
            // it is either asleep already or sees the bump.
            drop(self.lock.lock());
            self.wake.notify_all();
        }
    }
}

/// A channel's ring buffer, which the host maps from its GPADL's creation
/// until its teardown: freed on drop only once released (or if the host
/// never had it), else leaked with a message.
struct RingMemory {
    buffer: Option<Buffer>,
    relid: u32,
    released: AtomicBool,
}

impl Drop for RingMemory {
    fn drop(&mut self) {
        if self.released.load(Ordering::Acquire) {
            return;
        }
        if let Some(ring) = self.buffer.take() {
            ring.leak(self.relid);
        }
    }
}

/// Test builds: the simulator's `fault open-nomem=N` makes the Nth next
/// channel's allocation fail (0: none armed).
#[cfg(rustic_test_build)]
pub(crate) static FAIL_NTH_ALLOCATION: AtomicU32 = AtomicU32::new(0);

/// Whether this channel's allocation is the one `fault open-nomem` asked
/// to fail (never in production builds).
fn allocation_fault() -> bool {
    #[cfg(rustic_test_build)]
    {
        let countdown = FAIL_NTH_ALLOCATION.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if countdown == Ok(1) {
            pr_info!("vmbus: injecting an allocation failure into a channel open\n");
            return true;
        }
    }
    false
}

/// How long closing waits for a handler call under way to return. A
/// handler drains a ring with the host's packets bounded by its budget, so
/// this is far more than one needs; one stuck longer is reported.
const QUIESCE_TIMEOUT_MS: u64 = 10_000;

impl Channel {
    /// Allocates a channel and its ring buffer (outbound ring first,
    /// inbound after it) and sets both ring ends up. Everything that can
    /// fail to allocate does so here, before the host is told of the
    /// buffer ([`Channel::set_ring_gpadl`] once it is).
    pub(crate) fn new(
        conn: Arc<Connection>,
        relid: u32,
        signal_id: u32,
        params: ChannelParams,
        handler: Arc<dyn ChannelHandler>,
    ) -> Result<Arc<Channel>> {
        let ring = Buffer::new(params.pages()? * Page::SIZE)?;
        let out_len = params.send_ring + ring::HEADER_SIZE;
        let in_len = params.recv_ring + ring::HEADER_SIZE;
        // SAFETY: the buffer moves into the channel, which keeps it until
        // drop and frees it only after these handles are gone (fields are
        // never handed out beyond the channel's life).
        let mem = unsafe { ring.shared_static() };
        let out_mem = mem.subrange(0, out_len).map_err(|_| EINVAL)?;
        let in_mem = mem.subrange(out_len, in_len).map_err(|_| EINVAL)?;
        ring::init_ring(out_mem).map_err(|_| EINVAL)?;
        ring::init_ring(in_mem).map_err(|_| EINVAL)?;
        let producer = Producer::new(out_mem).map_err(|_| EINVAL)?;
        let consumer = Consumer::new(in_mem).map_err(|_| EINVAL)?;
        let scratch = VVec::from_elem(0u8, params.recv_ring, GFP_KERNEL)?;
        if allocation_fault() {
            return Err(ENOMEM);
        }
        Arc::pin_init(
            pin_init!(Channel {
                relid,
                signal_id,
                target_cpu: AtomicU32::new(params.target_cpu),
                ring_gpadl: AtomicU32::new(0),
                conn,
                outbound <- new_spinlock!(producer, "vmbus_channel_out"),
                inbound <- new_spinlock!(Inbound { consumer, scratch }, "vmbus_channel_in"),
                space <- SpaceWait::new(),
                handler,
                poisoned: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                in_handler: AtomicU32::new(0),
                deferred: AtomicBool::new(false),
                torn_down: AtomicBool::new(false),
                space_armed: AtomicBool::new(false),
                stats: ChannelStats::default(),
                out_mem,
                in_mem,
                // Not shared yet: free to go until the GPADL is asked for.
                ring: RingMemory { buffer: Some(ring), relid: *relid, released: AtomicBool::new(true) },
            }),
            GFP_KERNEL,
        )
    }

    /// The ring buffer, to describe to the host.
    pub(crate) fn ring_buffer(&self) -> Option<&Buffer> {
        self.ring.buffer.as_ref()
    }

    /// From now on the host may map the ring: it is not freed until
    /// [`Channel::release_ring`]. Called before the GPADL is asked for.
    pub(crate) fn hold_ring(&self) {
        self.ring.released.store(false, Ordering::Release);
    }

    /// The host knows the ring as GPADL `gpadl`.
    pub(crate) fn set_ring_gpadl(&self, gpadl: u32) {
        self.ring_gpadl.store(gpadl, Ordering::Release);
    }

    /// The handle of the ring's GPADL (0 before it has one).
    pub(crate) fn ring_gpadl(&self) -> u32 {
        self.ring_gpadl.load(Ordering::Acquire)
    }

    /// Bytes of the ring buffer.
    pub(crate) fn ring_len(&self) -> usize {
        self.ring.buffer.as_ref().map_or(0, Buffer::len)
    }

    /// The CPU the host interrupts for this channel.
    pub(crate) fn target_cpu(&self) -> u32 {
        self.target_cpu.load(Ordering::Relaxed)
    }

    pub(crate) fn set_target_cpu(&self, cpu: u32) {
        self.target_cpu.store(cpu, Ordering::Relaxed);
    }

    /// Whether the ring was found corrupt.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    fn poison(&self, what: &str) -> Error {
        if !self.poisoned.swap(true, Ordering::Relaxed) {
            pr_err!("vmbus: relid {}: the host corrupted the {} ring; channel disabled\n", self.relid, what);
        }
        EIO
    }

    /// The host may free the ring now (its GPADL is torn down).
    pub(crate) fn release_ring(&self) {
        self.ring.released.store(true, Ordering::Release);
    }

    /// Claims the channel's close; false if it was closed already.
    pub(crate) fn begin_teardown(&self) -> bool {
        !self.torn_down.swap(true, Ordering::AcqRel)
    }

    /// Marks the channel closed: senders and pollers stop, and handlers
    /// not yet started do not start ([`Channel::quiesce`] also waits for
    /// those under way).
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.space.notify();
    }

    fn signal_host(&self) {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.conn.signal_event(self.signal_id) {
            // Signals go out on every poll: a hypervisor that keeps
            // refusing them would otherwise fill the log.
            static LIMIT: RateLimit = RateLimit::new(1000);
            if LIMIT.allow() {
                pr_err!("vmbus: relid {}: HvSignalEvent failed: {:?}\n", self.relid, e);
            }
        }
    }

    /// Writes one packet with `write`, waiting up to `timeout_ms` for room
    /// (in task context only: elsewhere a full ring fails at once).
    fn send_with(
        &self,
        timeout_ms: u32,
        write: impl Fn(&mut Producer<'static>) -> core::result::Result<Signal, WriteError>,
    ) -> Result {
        let timeout_ms = if in_task() { timeout_ms } else { 0 };
        // Set the first time the ring is full: sends that fit pay nothing.
        let mut deadline = None;
        let mut first = true;
        let mut retried = false;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(ENODEV);
            }
            if self.is_poisoned() {
                return Err(EIO);
            }
            let bh = BhOff::new();
            let mut out = self.outbound.lock();
            let needed = match write(&mut out) {
                Ok(signal) => {
                    // A plain load first: most sends find nothing armed.
                    let armed = self.space_armed.load(Ordering::Relaxed) && self.space_armed.swap(false, Ordering::Relaxed);
                    if !first || armed {
                        let _ = out.clear_space_request();
                    }
                    drop(out);
                    drop(bh);
                    if signal == Signal::Yes {
                        self.signal_host();
                    }
                    return Ok(());
                }
                Err(WriteError::Full { needed }) => needed,
                Err(WriteError::TooLarge) => return Err(E2BIG),
                Err(WriteError::Corrupt(_)) => {
                    drop(out);
                    return Err(self.poison("outbound"));
                }
            };
            let counter = if first { &self.stats.out_full_first } else { &self.stats.out_full_total };
            counter.fetch_add(1, Ordering::Relaxed);
            first = false;
            if timeout_ms == 0 {
                // No wait here, but the host is asked to signal once the
                // space is free, as a waiter would: a caller that polls
                // (NAPI) can then stop until that signal instead of
                // spinning on a ring the host does not drain.
                match out.request_space(needed) {
                    // Room appeared meanwhile: try once more.
                    Ok(true) if !retried => {
                        retried = true;
                        continue;
                    }
                    Ok(_) => self.space_armed.store(true, Ordering::Relaxed),
                    Err(_) => {
                        drop(out);
                        return Err(self.poison("outbound"));
                    }
                }
                return Err(EAGAIN);
            }
            let now = now_ms();
            let deadline = *deadline.get_or_insert(now.saturating_add(u64::from(timeout_ms)));
            if now >= deadline {
                return Err(crate::rust::base::errno::ETIMEDOUT());
            }
            // Counted and noted before asking, so that the signal the host
            // sends for the space finds this waiter (`dispatch`).
            self.space.waiters.fetch_add(1, Ordering::SeqCst);
            let seen = self.space.signals.load(Ordering::SeqCst);
            let asked = out.request_space(needed);
            drop(out);
            drop(bh);
            match asked {
                Ok(true) => {}
                Err(_) => {
                    self.space.waiters.fetch_sub(1, Ordering::SeqCst);
                    return Err(self.poison("outbound"));
                }
                // The host signals when the space is free; the signal wakes
                // this wait. Re-check at least every 100 ms in case the
                // host never does.
                Ok(false) => {
                    let wait = (deadline - now).min(100) as u32;
                    let mut guard = self.space.lock.lock();
                    if self.space.signals.load(Ordering::SeqCst) == seen {
                        let res = self.space.wake.wait_interruptible_timeout(&mut guard, kernel::time::msecs_to_jiffies(wait));
                        drop(guard);
                        if matches!(res, kernel::sync::CondVarTimeoutResult::Signal { .. }) {
                            msleep(1);
                        }
                    }
                }
            }
            self.space.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Sends an in-band packet (the concatenation of `payload`).
    pub(crate) fn send_inband(&self, transaction_id: u64, completion: bool, payload: &[&[u8]], timeout_ms: u32) -> Result {
        self.send_with(timeout_ms, |p| p.write_inband(transaction_id, completion, payload))
    }

    /// Sends a completion for the host's `transaction_id`.
    pub(crate) fn send_completion(&self, transaction_id: u64, payload: &[&[u8]], timeout_ms: u32) -> Result {
        self.send_with(timeout_ms, |p| p.write_completion(transaction_id, payload))
    }

    /// Sends a GPA-direct packet naming guest pages, with `payload` after
    /// the ranges.
    pub(crate) fn send_gpa_direct(
        &self,
        transaction_id: u64,
        completion: bool,
        ranges: &[GpaBuffer<'_>],
        payload: &[&[u8]],
        timeout_ms: u32,
    ) -> Result {
        self.send_with(timeout_ms, |p| p.write_gpa_direct(transaction_id, completion, ranges, payload))
    }

    /// Reads up to `budget` packets with the host's signals masked, handing
    /// each to `f` (descriptor and the packet bytes). Returns whether more
    /// may be waiting: then poll again (no signal will come for them).
    // Not `expect`: the production module's drivers may use it or not
    // (netvsc polls with `poll_while`; test builds' echo driver with this).
    #[allow(dead_code)]
    pub(crate) fn poll(&self, budget: usize, mut f: impl FnMut(&PacketInfo, &[u8])) -> Result<bool> {
        self.poll_while(budget, |info, bytes| {
            f(info, bytes);
            true
        })
    }

    /// As [`Channel::poll`], but `f` says after each packet whether to go
    /// on: when it says no, reading stops there as if the budget were
    /// spent (more may be waiting; the host's signals stay masked).
    pub(crate) fn poll_while(&self, budget: usize, mut f: impl FnMut(&PacketInfo, &[u8]) -> bool) -> Result<bool> {
        if self.is_poisoned() {
            return Err(EIO);
        }
        if self.closed.load(Ordering::Acquire) {
            return Ok(false);
        }
        let bh = BhOff::new();
        let mut guard = self.inbound.lock();
        let Inbound { consumer, scratch } = &mut *guard;
        if consumer.begin_poll().is_err() {
            drop(guard);
            return Err(self.poison("inbound"));
        }
        let mut signal = false;
        let mut read = 0;
        let mut stopped = false;
        while read < budget && !stopped {
            match consumer.read_packet(scratch) {
                Ok(info) => {
                    read += 1;
                    stopped = !f(&info, scratch.get(..info.len).unwrap_or(&[]));
                    // Give the host room as we go, not only at the end.
                    if read % 16 == 0 {
                        match consumer.commit() {
                            Ok(s) => signal |= s == Signal::Yes,
                            Err(_) => {
                                drop(guard);
                                return Err(self.poison("inbound"));
                            }
                        }
                    }
                }
                Err(ReadError::Empty) => break,
                Err(ReadError::BufferTooSmall { .. }) | Err(ReadError::Corrupt(_)) => {
                    drop(guard);
                    return Err(self.poison("inbound"));
                }
            }
        }
        let more = if read == budget || stopped {
            // Budget spent: stay masked, the caller polls again.
            match consumer.commit() {
                Ok(s) => signal |= s == Signal::Yes,
                Err(_) => {
                    drop(guard);
                    return Err(self.poison("inbound"));
                }
            }
            true
        } else {
            match consumer.end_poll() {
                Ok(end) => {
                    signal |= end.signal_writer == Signal::Yes;
                    end.more
                }
                Err(_) => {
                    drop(guard);
                    return Err(self.poison("inbound"));
                }
            }
        };
        drop(guard);
        drop(bh);
        if signal {
            self.signal_host();
        }
        Ok(more)
    }

    /// The host signalled (process context): wake blocked senders, run the
    /// driver's handler.
    pub(crate) fn dispatch(&self) {
        self.space.notify();
        self.run_handler();
    }

    /// The host signalled (softirq context): runs the handler here if it
    /// may and no sender waits for room (waking one takes a mutex); else
    /// marks the channel for [`Channel::take_deferred`] and returns false.
    pub(crate) fn dispatch_softirq(&self) -> bool {
        if !self.handler.softirq_safe() || !self.space.count_signal() {
            self.deferred.store(true, Ordering::Release);
            return false;
        }
        self.run_handler();
        true
    }

    /// Counts the signal and runs the driver's handler, unless closed.
    fn run_handler(&self) {
        self.stats.interrupts.fetch_add(1, Ordering::Relaxed);
        // Counted before `closed` is read (both SeqCst), pairing with
        // `quiesce`, which sets `closed` before it reads the count: either
        // this sees the close, or the close waits for this call.
        self.in_handler.fetch_add(1, Ordering::SeqCst);
        if !self.closed.load(Ordering::SeqCst) {
            self.handler.on_event(self);
        }
        self.in_handler.fetch_sub(1, Ordering::SeqCst);
    }

    /// Marks the channel closed and waits until no handler call is under
    /// way: none starts after this returns true. False (with a message)
    /// if one has not returned within [`QUIESCE_TIMEOUT_MS`]. Process
    /// context, and not from the channel's own handler.
    pub(crate) fn quiesce(&self) -> Result {
        self.closed.store(true, Ordering::SeqCst);
        self.space.notify();
        let deadline = now_ms().saturating_add(QUIESCE_TIMEOUT_MS);
        while self.in_handler.load(Ordering::SeqCst) != 0 {
            if now_ms() > deadline {
                pr_err!("vmbus: relid {}: a handler still runs {} ms after close\n", self.relid, QUIESCE_TIMEOUT_MS);
                return Err(ETIMEDOUT());
            }
            msleep(1);
        }
        Ok(())
    }

    /// Whether the softirq left a signal for process context (to
    /// [`Channel::dispatch`] there); clears it.
    pub(crate) fn take_deferred(&self) -> bool {
        self.deferred.swap(false, Ordering::AcqRel)
    }

    /// The rings' header fields, as sysfs shows them.
    pub(crate) fn ring_views(&self) -> (RingView, RingView) {
        (RingView::of(self.in_mem), RingView::of(self.out_mem))
    }
}
