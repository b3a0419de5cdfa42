// SPDX-License-Identifier: GPL-2.0
//! The guest's VMBus connection in the kernel: the sans-I/O control plane
//! (`vmbus_core::control::Control`) driven by a hypervisor backend.
//!
//! - Load: connect, newest version first (the core falls back on each
//!   rejection, and on an INITIATE_CONTACT no port took: a host older
//!   than 5.0 has none at connection id 4); the host's messages come from the SynIC slot in the
//!   interrupt's work item ([`Dpc::run`]); offers of primary channels
//!   become devices on the bus. Load waits, bounded, for the version and
//!   then for ALLOFFERS_DELIVERED; a failed or timed-out negotiation fails
//!   the load (as the C driver's `vmbus_bus_init` does).
//! - Unload: remove the devices, send UNLOAD (not to hosts older than
//!   3.0, which cannot reconnect a guest) and wait for the response as long
//!   as an Azure host may need ([`UNLOAD_TIMEOUT_MS`]); then stop the
//!   backend's interrupt and drain the work.
//! - Crash path ([`crash_unload`]): on kexec, kdump and panic the host must
//!   stop writing into rings, buffers and SynIC pages the next kernel will
//!   own, so UNLOAD is posted and its answer awaited by polling every CPU's
//!   message page with interrupts off (the C driver's
//!   `vmbus_wait_for_unload`); no lock, no sleep, no other CPU involved.
//!
//! - Channels: drivers create GPADLs and open channels through
//!   [`Connection::open_channel`] (`crate::vmbus::channel`); every request waits,
//!   bounded, for the host's answer. The interrupt's softirq work on each
//!   CPU takes that CPU's event flags and runs the signalled channels'
//!   handlers, those that may sleep in the process-context work after it.
//! - Rescind: the device goes (its driver closes the channel; GPADLs of a
//!   rescinded channel need no answer), then RELID_RELEASED.
//! - Memory the host may still map, because a GPADL, an open or a teardown
//!   went unanswered, is kept ([`Held`]) until the host lets go: a late
//!   answer, a rescind, or an answered UNLOAD; never freed before.
//!
//! Posts: HvPostMessage refused for now (a full port) is retried, bounded
//! ([`post`]); a post that fails for good goes to the core
//! (`Control::post_failed`), which fails its request at once.
//!
//! Time: the core's deadlines are in milliseconds of [`now_ms`]
//! ([`REQUEST_TIMEOUT_MS`] for connect, [`UNLOAD_TIMEOUT_MS`] for unload, [`CHANNEL_TIMEOUT_MS`]
//! for channel requests). Every
//! request has a waiter, which sleeps on a condition variable woken by the
//! host's answers and calls `advance` at least every [`TICK_MS`], so an
//! unanswered request fails at its deadline.

use crate::vmbus::bus::Devices;
use crate::vmbus::channel::{Channel, ChannelHandler, ChannelParams};
use crate::vmbus::hv::{
    clear_slot, discard_message, message_waiting, take_message, Backend, Discarded, CONNECT_CPU, VMBUS_MESSAGE_TYPE,
};
use crate::rust::base::errno::ETIMEDOUT;
use crate::rust::base::cpu::{cpu_online, nr_cpu_ids, CpusReadLock};
use crate::rust::base::memory::{Buffer, Page};
use crate::rust::base::time::{msleep, now_ms, RateLimit};
use crate::rust::base::work::{cond_resched, BhOff, Work, WorkFn};
use crate::rust::vmbus::crash::{mdelay, CrashHooks, IrqsOff};
use crate::rust::vmbus::interrupt::{Dpc, IsrRegistration};
use crate::vmbus_core::bus::{monitor_view, MonitorView, OfferFacts};
use crate::vmbus_core::control::{
    encode, Action, ChannelEntry, ChannelState, Config, ConnectionState, Control, Error, GpadlEntry, GpadlState,
    OpenRequest, PostError, RequestId, Slots,
};
use crate::vmbus_core::event;
use crate::vmbus_core::guid::{self, Guid};
use crate::vmbus_core::msg::{
    GpadlSplit, Message, MessageType, Offer, HVMSG_CHANNEL, HVMSG_TIMER_EXPIRED, MAX_CHANNEL_RELIDS, USER_DEFINED_BYTES,
};
use crate::vmbus_core::version::{self, Version};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, CondVar, CondVarTimeoutResult, Mutex, SpinLock};
use kernel::{new_condvar, new_mutex, new_spinlock};

/// A table of the control plane's, grown as needed (fallibly, in process
/// context: it is used under the connection's mutex), up to `limit` slots.
struct Grown<T> {
    slots: KVec<Option<T>>,
    limit: usize,
}

impl<T> Grown<T> {
    const fn new(limit: usize) -> Self {
        Grown { slots: KVec::new(), limit }
    }
}

impl<T> Slots<T> for Grown<T> {
    fn slots(&self) -> &[Option<T>] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [Option<T>] {
        &mut self.slots
    }

    /// Doubles the table (16 slots at first), as far as the limit allows.
    fn grow(&mut self) -> bool {
        let len = self.slots.len();
        let more = len.max(16).min(self.limit.saturating_sub(len));
        if more == 0 || self.slots.reserve(more, GFP_KERNEL).is_err() {
            return false;
        }
        // Within the reserved capacity: these pushes do not allocate.
        (0..more).all(|_| self.slots.push(None, GFP_KERNEL).is_ok())
    }
}

/// The control plane: a channel per relid at most, and as many GPADLs as
/// memory allows.
type Tables = Control<Grown<ChannelEntry>, Grown<GpadlEntry>>;

/// How long the host gets to answer a connection request (a version
/// proposal, UNLOAD).
const REQUEST_TIMEOUT_MS: u64 = 5000;
/// How long the host gets to answer UNLOAD: an Azure host writes back
/// the dirty data of its disk cache first, which the C driver documents as
/// taking up to 50 s; like the C crash path, allow twice that.
const UNLOAD_TIMEOUT_MS: u64 = 100_000;
/// The crash path's poll of the message pages: every 10 ms, a line every
/// 5 s so that a watcher of the console does not take it for a hang.
const CRASH_POLL_MS: u32 = 10;
const CRASH_NOTICE_MS: u32 = 5000;
/// How long the host gets to answer a channel request: GPADL creation
/// (mapping a 16 MiB receive buffer on a busy host), GPADL teardown,
/// OPENCHANNEL, MODIFYCHANNEL. The C driver waits for these without a
/// bound; this is generous but bounded, and a request that runs out keeps
/// the memory the host may map until the host lets go ([`Held`]).
const CHANNEL_TIMEOUT_MS: u64 = 30_000;

/// Test builds: a shorter channel deadline for scenarios that wait one out
/// (the simulator's `sim_channel_timeout_ms`), set before the connection
/// starts; 0 keeps [`CHANNEL_TIMEOUT_MS`].
#[cfg(rustic_test_build)]
pub(crate) static CHANNEL_TIMEOUT_OVERRIDE_MS: AtomicU64 = AtomicU64::new(0);

/// The channel deadline this connection uses.
fn channel_timeout_ms() -> u64 {
    #[cfg(rustic_test_build)]
    {
        let ms = CHANNEL_TIMEOUT_OVERRIDE_MS.load(Ordering::Relaxed);
        if ms != 0 {
            return ms;
        }
    }
    CHANNEL_TIMEOUT_MS
}
/// How long load waits for every offer after the version is agreed.
const OFFERS_TIMEOUT_MS: u64 = 10000;
/// The longest a waiter sleeps between looks at the clock.
const TICK_MS: u32 = 50;

/// Tries of one HvPostMessage while the host's message port is full (the
/// C driver's bound), and the longest pause between two: at most about
/// 2 s in all, well inside a request's timeout.
const POST_TRIES: u32 = 100;
const POST_PAUSE_MAX_MS: u32 = 20;

/// A host keeping its port full would otherwise flood the log.
static POST_RETRIED_LOG: RateLimit = RateLimit::new(1000);
/// So would a host offering more channels than memory holds.
static REFUSED_LOG: RateLimit = RateLimit::new(1000);
static POST_FAILED_LOG: RateLimit = RateLimit::new(1000);
static OTHER_MESSAGE_LOG: RateLimit = RateLimit::new(1000);
/// A host may send a storm of bad control messages (each interrupt takes
/// up to 256): one line a second says so, with the count of all so far.
static REJECTED_LOG: RateLimit = RateLimit::new(1000);
static REJECTED: AtomicU64 = AtomicU64::new(0);

/// Counts a control message from the host that was dropped, and says so
/// at most once a second.
fn rejected(error: Option<Error>) {
    let total = REJECTED.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    if REJECTED_LOG.allow() {
        match error {
            Some(e) => pr_err!("vmbus: host message rejected: {:?} ({} rejected in all)\n", e, total),
            None => pr_err!("vmbus: malformed SynIC message dropped ({} rejected in all)\n", total),
        }
    }
}

/// HvPostMessage of `message` to `connection_id`, retried while the host
/// refuses it for now. The backends report `HV_STATUS_INVALID_CONNECTION_ID`
/// as `ENXIO` and a full port (`HV_STATUS_INSUFFICIENT_BUFFERS`,
/// `HV_STATUS_INSUFFICIENT_MEMORY`) as `EAGAIN`.
///
/// - `ENXIO` on INITIATE_CONTACT: no port for that version's connection id
///   (a host older than 5.0); not retried, the control plane moves on to
///   the next version. On any other message it is taken as transient, as
///   the C driver (`vmbus_post_msg`) does.
/// - `EAGAIN`: retried up to [`POST_TRIES`] times, pausing 1, 2, 4 ... up
///   to [`POST_PAUSE_MAX_MS`] ms between tries.
/// - Anything else fails at once.
///
/// Context: every post is made with the connection's mutex held
/// ([`Connection::with_control_deferred`], which `create_gpadl`'s request
/// goes through too), a sleeping lock, so always in process context
/// (driver calls, load and unload, the interrupt's process-context work
/// that takes host messages): the pauses sleep (`msleep`) rather than
/// spin. They hold the mutex, which delays the message work by at most
/// the bound above; draining the port is the host's job and needs nothing
/// of ours. Nothing posts from atomic context; a caller there would need a
/// busy-waiting variant.
fn post(backend: &Backend, connection_id: u32, message: &Message) -> core::result::Result<(), PostError> {
    let (buf, len) = encode(message);
    let payload = buf.get(..len).unwrap_or(&[]);
    let mut pause_ms = 1;
    let mut last = PostError::Busy;
    for tries in 1..=POST_TRIES {
        let e = match backend.post_message(connection_id, VMBUS_MESSAGE_TYPE, payload) {
            Ok(()) => {
                if tries > 1 && POST_RETRIED_LOG.allow() {
                    pr_info!(
                        "vmbus: HvPostMessage of {:?} went through after {} tries\n",
                        message.message_type(),
                        tries
                    );
                }
                return Ok(());
            }
            Err(e) => e,
        };
        if e == ENXIO {
            if matches!(message, Message::InitiateContact(_)) {
                return Err(PostError::NoConnection);
            }
            last = PostError::NoConnection;
        } else if e == EAGAIN {
            last = PostError::Busy;
        } else {
            if POST_FAILED_LOG.allow() {
                pr_err!("vmbus: HvPostMessage of {:?} failed: {:?}\n", message.message_type(), e);
            }
            return Err(PostError::Other);
        }
        if tries < POST_TRIES {
            msleep(pause_ms);
            pause_ms = pause_ms.saturating_mul(2).min(POST_PAUSE_MAX_MS);
        }
    }
    if POST_FAILED_LOG.allow() {
        pr_err!(
            "vmbus: HvPostMessage of {:?} still refused ({:?}) after {} tries; giving up\n",
            message.message_type(),
            last,
            POST_TRIES
        );
    }
    Err(last)
}

const CONNECT: RequestId = RequestId(1);
const UNLOAD: RequestId = RequestId(2);
/// Driver requests get ids from here up.
const FIRST_DRIVER_REQUEST: u64 = 16;

/// What the waits look at.
#[derive(Default)]
struct Status {
    connect: Option<core::result::Result<(), Error>>,
    unload: Option<core::result::Result<(), Error>>,
    all_offers: bool,
    closing: bool,
    /// A request timed out while closing: the host stopped answering, so
    /// the rest of the unload does not wait for it.
    host_gone: bool,
    /// Finished driver requests not yet collected by their waiters: one
    /// slot per request that ever waited at once (grown as needed).
    completed: KVec<Option<(RequestId, core::result::Result<(), Error>)>>,
    /// Memory the host may still map, kept until it lets go
    /// ([`Connection::reclaim`]).
    held: KVec<Held>,
}

/// Bytes kept because the host may still map them ([`Held`]); a debugfs
/// counter in test builds.
pub(crate) static HELD_BYTES: AtomicU64 = AtomicU64::new(0);

/// What is kept for the host: a driver's buffer, or a channel with its
/// rings.
enum HeldMemory {
    Buffer(Buffer),
    Ring(Arc<Channel>),
}

/// Memory the host may still map through GPADL `gpadl` of channel `relid`
/// because a request about it got no answer in time: kept until the core
/// forgets the GPADL (the host answered late, the channel was rescinded,
/// the connection unloaded), then freed ([`Held::free`]). Dropped
/// otherwise (a host that never let go), it is leaked, never freed.
struct Held {
    relid: u32,
    gpadl: u32,
    bytes: usize,
    memory: Option<HeldMemory>,
}

impl Held {
    fn new(relid: u32, gpadl: u32, memory: HeldMemory) -> Held {
        let bytes = match &memory {
            HeldMemory::Buffer(b) => b.len(),
            HeldMemory::Ring(c) => c.ring_len(),
        };
        HELD_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
        pr_warn!(
            "vmbus: relid {}: keeping {} bytes the host may still map (GPADL {:#x}) until it lets go\n",
            relid,
            bytes,
            gpadl
        );
        Held { relid, gpadl, bytes, memory: Some(memory) }
    }

    /// The host let go: frees the memory.
    fn free(mut self) {
        match self.memory.take() {
            Some(HeldMemory::Buffer(buffer)) => drop(buffer),
            Some(HeldMemory::Ring(channel)) => channel.release_ring(),
            None => {}
        }
        HELD_BYTES.fetch_sub(self.bytes as u64, Ordering::Relaxed);
        pr_info!("vmbus: relid {}: the host let go of GPADL {:#x}; {} bytes freed\n", self.relid, self.gpadl, self.bytes);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        match self.memory.take() {
            Some(HeldMemory::Buffer(buffer)) => buffer.leak(self.relid),
            // Its ring is not released: leaked when the last reference goes.
            Some(HeldMemory::Ring(channel)) => drop(channel),
            None => return,
        }
        HELD_BYTES.fetch_sub(self.bytes as u64, Ordering::Relaxed);
    }
}

/// Puts `value` in the first free slot, adding one if all are taken; false
/// when out of memory.
fn put<T>(slots: &mut KVec<Option<T>>, value: T) -> bool {
    match slots.iter_mut().find(|s| s.is_none()) {
        Some(slot) => {
            *slot = Some(value);
            true
        }
        None => slots.push(Some(value), GFP_KERNEL).is_ok(),
    }
}

struct Inner {
    control: Tables,
    status: Status,
}

/// What a failed request means to a driver.
fn request_errno(e: Error) -> kernel::error::Error {
    match e {
        Error::Timeout => ETIMEDOUT(),
        Error::Rescinded | Error::Unloaded | Error::UnknownChannel => ENODEV,
        Error::TableFull => ENOSPC,
        Error::Busy => EBUSY,
        Error::Unsupported => EINVAL,
        Error::HostStatus(_) => EIO,
        Error::PostFailed(PostError::NoConnection) => ENXIO,
        Error::PostFailed(PostError::Busy) => EBUSY,
        Error::PostFailed(PostError::Other) => EIO,
        _ => EINVAL,
    }
}

/// Offers and rescinds, carried out after the lock is dropped (adding a
/// device probes its driver, which may call back into the connection).
enum Deferred {
    Offer(Offer),
    Rescind(u32),
    /// Held memory may be free to go ([`Connection::reclaim`]).
    Reclaim,
}

/// The connection.
#[pin_data]
pub(crate) struct Connection {
    backend: Backend,
    devices: Arc<Devices>,
    #[pin]
    inner: Mutex<Inner>,
    /// Woken whenever a host message was handled.
    #[pin]
    answered: CondVar,
    /// Open channels by relid, for the event dispatch (which reads it in
    /// softirq context: take it with [`Connection::with_open`]). Grown,
    /// outside the lock, to the highest relid opened
    /// ([`Connection::list`]).
    #[pin]
    open: SpinLock<KVec<Option<Arc<Channel>>>>,
    next_request: AtomicU64,
    /// Round-robin choice of target CPUs for new devices.
    next_cpu: AtomicU32,
    /// Offers and rescinds waiting for the device work, in order. Drivers'
    /// probe and remove wait on the host, so they cannot run in the
    /// interrupt's work, which is what takes the host's answers.
    #[pin]
    device_changes: Mutex<KVec<Deferred>>,
    /// Device changes queued and not yet made.
    device_changes_pending: AtomicU32,
    /// The work making them (taken out at unload, which breaks the
    /// reference cycle it makes).
    #[pin]
    device_work: Mutex<Option<Work<Connection>>>,
    /// The two monitor pages given to the host (server, client), which it
    /// fills for monitored channels; the sysfs monitor attributes read them.
    monitor_pages: [Page; 2],
    /// The crash path's state, read and written without locks.
    crash: CrashState,
}

/// What the crash path needs, in atomics (it takes no lock).
#[derive(Default)]
struct CrashState {
    /// The negotiated version (raw), 0 until connected; and the
    /// connection id the host takes messages on.
    version: AtomicU32,
    message_connection_id: AtomicU32,
    /// The crash path ran: the host forgot the guest, nothing more is
    /// posted, and requests fail at once.
    ran: AtomicBool,
    /// The message work saw the UNLOAD_RESPONSE after the crash path began
    /// (it may take the slot first on another CPU).
    answered: AtomicBool,
    /// The crash path's UNLOAD was answered: the host holds nothing of the
    /// guest any more.
    answered_unload: AtomicBool,
}

impl Connection {
    /// Performs one action under the lock; device changes are deferred,
    /// and so are the posts that failed (for [`Control::post_failed`],
    /// once the call that asked for them has returned).
    fn perform(
        backend: &Backend,
        crashed: bool,
        status: &mut Status,
        deferred: &mut KVec<Deferred>,
        failed: &mut KVec<(Message, PostError)>,
        action: Action,
    ) {
        match action {
            Action::Send {
                connection_id,
                message,
            } => {
                // After the crash path the host has forgotten the guest:
                // nothing is posted, and what asked for it fails at once.
                let posted = if crashed { Err(PostError::Other) } else { post(backend, connection_id, &message) };
                if let Err(kind) = posted {
                    if failed.push((message, kind), GFP_KERNEL).is_err() {
                        pr_err!("vmbus: out of memory, a failed post of {:?} is not reported\n", message.message_type());
                    }
                }
            }
            Action::SendGpadl { .. } => pr_err!("vmbus: GPADLs are not supported yet\n"),
            Action::Refused { child_relid, reason } => {
                if REFUSED_LOG.allow() {
                    pr_err!("vmbus: offer of relid {} refused ({:?}); released\n", child_relid, reason);
                }
            }
            Action::Offer(offer) => {
                if deferred.push(Deferred::Offer(offer), GFP_KERNEL).is_err() {
                    pr_err!("vmbus: out of memory, offer of relid {} dropped\n", offer.child_relid);
                }
            }
            Action::Rescind { child_relid } => {
                if deferred.push(Deferred::Rescind(child_relid), GFP_KERNEL).is_err() {
                    pr_err!("vmbus: out of memory, rescind of relid {} dropped\n", child_relid);
                }
            }
            Action::AllOffersDelivered => status.all_offers = true,
            Action::Complete { request, result } => {
                if request == CONNECT {
                    status.connect = Some(result);
                } else if request == UNLOAD {
                    status.unload = Some(result);
                } else if !put(&mut status.completed, (request, result)) {
                    pr_err!("vmbus: too many unclaimed completions; request {} lost\n", request.0);
                }
            }
        }
    }

    /// Runs `f` on the control plane under the lock and performs its
    /// actions; returns the device changes to make after the lock is gone.
    fn with_control_deferred<R>(
        &self,
        f: impl FnOnce(&mut Tables, &mut dyn FnMut(Action)) -> R,
    ) -> (R, KVec<Deferred>) {
        let mut deferred = KVec::new();
        let mut failed = KVec::new();
        let r = {
            let mut guard = self.inner.lock();
            let Inner { control, status } = &mut *guard;
            let backend = &self.backend;
            let crashed = self.crash.ran.load(Ordering::Acquire);
            let r = {
                let mut sink = |a: Action| Self::perform(backend, crashed, status, &mut deferred, &mut failed, a);
                f(control, &mut sink)
            };
            // The failed posts, in order, now that the call that asked for
            // them has returned and its state is in place. Each may send
            // again (the next version's INITIATE_CONTACT), which may fail
            // in turn: at most once per version, so the bound is generous.
            let mut next = 0;
            while let Some(&(message, kind)) = failed.get(next) {
                next += 1;
                if next > 4 * version::SUPPORTED.len() {
                    break;
                }
                if let Message::InitiateContact(ic) = message {
                    if kind == PostError::NoConnection {
                        // Bounded by the versions; not rate-limited.
                        pr_info!(
                            "vmbus: no port for INITIATE_CONTACT of {:?} (an older host); proposing the next version\n",
                            Version::from_raw(ic.version)
                        );
                    }
                }
                let mut sink = |a: Action| Self::perform(backend, crashed, status, &mut deferred, &mut failed, a);
                // A message with no request (CLOSECHANNEL, REQUESTOFFERS,
                // RELID_RELEASED) changes nothing; `post` logged it.
                let _ = control.post_failed(now_ms(), &message, kind, &mut sink);
            }
            r
        };
        (r, deferred)
    }

    /// Runs `f` on the control plane under the lock and performs its
    /// actions. Only host messages make device changes, and those go
    /// through [`Connection::take_messages`].
    fn with_control<R>(&self, f: impl FnOnce(&mut Tables, &mut dyn FnMut(Action)) -> R) -> R {
        let (r, deferred) = self.with_control_deferred(f);
        if !deferred.is_empty() {
            pr_err!("vmbus: a request produced a device change; ignored\n");
        }
        r
    }

    fn apply(self: &Arc<Self>, d: Deferred) {
        match d {
            Deferred::Offer(offer) => {
                if self.inner.lock().status.closing {
                    return;
                }
                if offer.sub_channel_index != 0 {
                    let offered = self.devices.subchannel_offered(
                        &offer.if_instance,
                        offer.child_relid,
                        offer.sub_channel_index,
                        offer.monitor_id,
                    );
                    if !offered {
                        pr_err!(
                            "vmbus: subchannel relid {} has no device to go to (or no memory); released\n",
                            offer.child_relid
                        );
                        self.give_back(offer.child_relid);
                    }
                    return;
                }
                let facts = OfferFacts {
                    class: offer.if_type,
                    instance: offer.if_instance,
                    relid: offer.child_relid,
                    monitor_id: offer.monitor_id,
                    target_cpu: self.pick_cpu(&offer.if_type, &[]),
                };
                if let Err(e) = self.devices.add(facts, Some(self.clone())) {
                    pr_err!("vmbus: cannot add the device of relid {}: {:?}; released\n", offer.child_relid, e);
                    self.give_back(offer.child_relid);
                }
            }
            Deferred::Rescind(relid) => {
                // The driver's remove closes the channel and tears its
                // GPADLs down (no answer needed once rescinded). A
                // rescinded subchannel is closed here; its driver's handle
                // then finds it closed.
                let waiting = self.devices.subchannel_rescinded(relid) == Some(true);
                if !waiting && self.devices.remove_relid(relid).is_err() {
                    let open = self.with_open(|open| Self::open_at(open, relid).cloned());
                    if let Some(channel) = open {
                        self.close_channel(&channel);
                    }
                }
                // What the channel's GPADLs kept for the host goes now (the
                // host answers for none of them any more), so that the
                // relid can be released.
                self.reclaim();
                self.with_control(|c, sink| match c.release_relid(now_ms(), relid, &mut |a| sink(a)) {
                    Ok(()) => pr_info!("vmbus: relid {} rescinded and released\n", relid),
                    Err(e) => pr_err!("vmbus: cannot release relid {}: {:?}\n", relid, e),
                });
            }
            Deferred::Reclaim => self.reclaim(),
        }
    }

    /// Keeps `memory`, which the host may still map through GPADL `gpadl`
    /// of `relid`, until it lets go ([`Held`]).
    fn hold(&self, relid: u32, gpadl: u32, memory: HeldMemory) {
        let held = Held::new(relid, gpadl, memory);
        let mut guard = self.inner.lock();
        if let Err(kernel::alloc::AllocError) = guard.status.held.push(held, GFP_KERNEL) {
            // The entry went with the failed push, and leaked its memory.
            pr_err!("vmbus: out of memory; relid {}'s GPADL {:#x} is leaked, not kept\n", relid, gpadl);
        }
    }

    /// Keeps a driver's `buffer`, whose GPADL `gpadl` the host did not
    /// confirm torn down, until the host lets go of it.
    pub(crate) fn hold_buffer(&self, relid: u32, gpadl: u32, buffer: Buffer) {
        self.hold(relid, gpadl, HeldMemory::Buffer(buffer));
    }

    /// Frees the held memory the host has let go of (the core no longer
    /// knows its GPADL) and tears down the GPADLs a late answer left
    /// created. Process context outside the message work: a teardown
    /// waits for the host. Nothing is freed unless connected (after an
    /// unload the caller decides: [`Vmbus`]'s drop).
    fn reclaim(&self) {
        let held = {
            let mut guard = self.inner.lock();
            if guard.control.state() != ConnectionState::Connected {
                return;
            }
            core::mem::take(&mut guard.status.held)
        };
        let mut kept = KVec::new();
        for entry in held {
            let (gone, created) = {
                let guard = self.inner.lock();
                let state = guard.control.gpadl_state(entry.gpadl);
                // A failed open still names its ring: not to be torn down.
                let in_use = guard.control.channel_state(entry.relid) == Some(ChannelState::Failed);
                (state.is_none(), state == Some(GpadlState::Created) && !in_use)
            };
            if gone || (created && self.teardown_gpadl(entry.relid, entry.gpadl).is_ok()) {
                entry.free();
            } else if let Err(kernel::alloc::AllocError) = kept.push(entry, GFP_KERNEL) {
                pr_err!("vmbus: out of memory; a held GPADL is leaked\n");
            }
        }
        let mut guard = self.inner.lock();
        for entry in kept {
            // Room for it was there a moment ago; if not, it leaks.
            let _ = guard.status.held.push(entry, GFP_KERNEL);
        }
    }

    /// Gives an offer the guest cannot use back to the host, so that it
    /// is not left half-known (RELID_RELEASED).
    fn give_back(&self, relid: u32) {
        self.with_control(|c, sink| {
            if let Err(e) = c.release_offer(now_ms(), relid, &mut |a| sink(a)) {
                pr_err!("vmbus: cannot release relid {}: {:?}\n", relid, e);
            }
        });
    }

    /// A target CPU for a new channel, as the C driver chooses
    /// (`init_vp_index`): for performance-critical classes, the next online
    /// CPU in a round robin shared by all their channels, skipping those
    /// in `avoid` (a subchannel's siblings) while any other is online;
    /// else, or where the backend cannot spread, [`CONNECT_CPU`].
    pub(crate) fn pick_cpu(&self, class: &Guid, avoid: &[u32]) -> u32 {
        if !guid::class::is_performance(class) || !self.backend.all_cpus() {
            return CONNECT_CPU;
        }
        let n = nr_cpu_ids().max(1);
        let mut fallback = None;
        for _ in 0..n {
            let cpu = self.next_cpu.fetch_add(1, Ordering::Relaxed).checked_rem(n).unwrap_or(0);
            if !cpu_online(cpu) {
                continue;
            }
            if !avoid.contains(&cpu) {
                return cpu;
            }
            fallback.get_or_insert(cpu);
        }
        fallback.unwrap_or(CONNECT_CPU)
    }

    /// The open channel of `relid`, if any (for sysfs).
    pub(crate) fn open_channel_at(&self, relid: u32) -> Option<Arc<Channel>> {
        self.with_open(|open| Self::open_at(open, relid).cloned())
    }

    /// Waits until `done` holds, calling `advance` at least every
    /// [`TICK_MS`]; false after `limit_ms`.
    fn wait(&self, limit_ms: u64, mut done: impl FnMut(&mut Status) -> bool) -> bool {
        let deadline = now_ms().saturating_add(limit_ms);
        loop {
            self.with_control(|c, sink| c.advance(now_ms(), &mut |a| sink(a)));
            let mut guard = self.inner.lock();
            if done(&mut guard.status) {
                return true;
            }
            let now = now_ms();
            if now > deadline {
                return false;
            }
            let tick = (deadline - now).min(u64::from(TICK_MS)).max(1) as u32;
            let res = self
                .answered
                .wait_interruptible_timeout(&mut guard, kernel::time::msecs_to_jiffies(tick));
            drop(guard);
            if matches!(res, CondVarTimeoutResult::Signal { .. }) {
                // A signal is pending (insmod interrupted): the wait returns
                // at once, so pace the loop instead.
                msleep(2);
            }
        }
    }

    /// Starts a driver request with `start` and waits for its completion.
    fn request(
        &self,
        start: impl FnOnce(&mut Tables, RequestId, &mut dyn FnMut(Action)) -> core::result::Result<(), Error>,
    ) -> core::result::Result<(), Error> {
        let id = RequestId(self.next_request.fetch_add(1, Ordering::Relaxed));
        if self.crash.ran.load(Ordering::Acquire) {
            return Err(Error::Unloaded);
        }
        {
            let status = &self.inner.lock().status;
            if status.closing && status.host_gone {
                return Err(Error::Unloaded);
            }
        }
        if let Err(e) = self.with_control(|c, sink| start(c, id, sink)) {
            // A start that failed after it completed the request leaves no
            // completion behind for a waiter that will never come.
            let status = &mut self.inner.lock().status;
            for slot in status.completed.iter_mut() {
                if slot.is_some_and(|(request, _)| request == id) {
                    *slot = None;
                }
            }
            return Err(e);
        }
        let mut result = Err(Error::Timeout);
        // The core fails the request at its deadline; the extra second only
        // guards against a core that did not.
        let limit = REQUEST_TIMEOUT_MS.max(channel_timeout_ms()).saturating_add(1000);
        let finished = self.wait(limit, |status| {
            for slot in status.completed.iter_mut() {
                if let Some((request, r)) = *slot {
                    if request == id {
                        result = r;
                        *slot = None;
                        return true;
                    }
                }
            }
            false
        });
        if !finished {
            result = Err(Error::Timeout);
        }
        if result == Err(Error::Timeout) {
            let status = &mut self.inner.lock().status;
            if status.closing && !status.host_gone {
                status.host_gone = true;
                pr_err!("vmbus: the host stopped answering during unload; not waiting for it any more\n");
            }
        }
        result
    }

    /// What the monitor pages say about `monitor_id`.
    pub(crate) fn monitor_view(&self, monitor_id: u8) -> MonitorView {
        let [server, client] = &self.monitor_pages;
        monitor_view(server.shared(), client.shared(), monitor_id)
    }

    /// HvSignalEvent on a channel's connection id.
    pub(crate) fn signal_event(&self, connection_id: u32) -> Result {
        self.backend.signal_event(connection_id)
    }

    /// Describes `buffer` to the host as a GPADL of channel `relid` and
    /// waits until the host has mapped it; returns the handle and the
    /// buffer. If the host did not answer in time it may have mapped the
    /// pages anyway, so the buffer is then kept until it lets go
    /// ([`Held`]).
    pub(crate) fn share(&self, relid: u32, buffer: Buffer) -> Result<(u32, Buffer)> {
        match self.create_gpadl(relid, &buffer) {
            Ok(handle) => Ok((handle, buffer)),
            Err((e, host_may_hold)) => {
                if let Some(gpadl) = host_may_hold {
                    self.hold_buffer(relid, gpadl, buffer);
                }
                Err(e)
            }
        }
    }

    /// Creates the GPADL of `buffer`; on error, the handle if the host may
    /// hold (and map) its pages all the same: after a timeout, or when a
    /// body message failed to post after the header went through.
    fn create_gpadl(&self, relid: u32, buffer: &Buffer) -> core::result::Result<u32, (kernel::error::Error, Option<u32>)> {
        let no_host = |e| (e, None);
        let pages = buffer.pages();
        let mut pfns = KVec::with_capacity(pages, GFP_KERNEL).map_err(|e| no_host(e.into()))?;
        for i in 0..pages {
            pfns.push(buffer.pfn(i).ok_or(no_host(EINVAL))?, GFP_KERNEL)
                .map_err(|e| no_host(e.into()))?;
        }
        let byte_count = u32::try_from(buffer.len()).map_err(|_| no_host(EINVAL))?;
        // Checked before the core registers the request: a page list the
        // messages cannot carry fails here, not half-way.
        GpadlSplit::new(relid, 0, 0, byte_count, &pfns).map_err(|_| no_host(EINVAL))?;
        let mut handle = 0;
        let mut body_failed = false;
        let backend = &self.backend;
        self.request(|c, id, sink| {
            // The core names the handle in SendGpadl; the messages are
            // built here over the page list, header first, and stop at the
            // first that cannot be posted.
            let mut send_err = None;
            let mut post_err = None;
            let mut gpadl_sink = |a: Action| match a {
                Action::SendGpadl {
                    connection_id,
                    child_relid,
                    gpadl,
                } => {
                    let split = GpadlSplit::new(child_relid, gpadl, 0, byte_count, &pfns);
                    let Ok(mut split) = split else {
                        send_err = Some(Error::InvalidState);
                        return;
                    };
                    while let Some(message) = split.next_message() {
                        if let Err(kind) = post(backend, connection_id, &message) {
                            post_err = Some((message, kind));
                            break;
                        }
                    }
                }
                other => sink(other),
            };
            handle = c.create_gpadl(now_ms(), id, relid, &mut gpadl_sink)?;
            if let Some((message, kind)) = post_err {
                body_failed = matches!(message, Message::GpadlBody(_));
                // Fails the request now (the completion is collected by
                // the wait that follows).
                let _ = c.post_failed(now_ms(), &message, kind, &mut |a| sink(a));
            }
            send_err.map_or(Ok(()), Err)
        })
        .map_err(|e| {
            pr_err!("vmbus: relid {}: GPADL of {} pages failed: {:?}\n", relid, pages, e);
            let host_may_hold = (e == Error::Timeout || body_failed) && handle != 0;
            (request_errno(e), host_may_hold.then_some(handle))
        })?;
        Ok(handle)
    }

    /// Tears a GPADL down and waits for the host to let go of its pages.
    /// On error the pages may still be mapped by the host.
    pub(crate) fn teardown_gpadl(&self, relid: u32, gpadl: u32) -> Result {
        self.request(|c, id, sink| c.teardown_gpadl(now_ms(), id, relid, gpadl, &mut |a| sink(a)))
            .map_err(|e| {
                pr_err!("vmbus: relid {}: GPADL teardown failed: {:?}\n", relid, e);
                request_errno(e)
            })
    }

    /// Opens channel `relid`: allocates and shares its rings, sends
    /// OPENCHANNEL and waits for the result. `handler` runs on the host's
    /// signals from then until [`Connection::close_channel`].
    pub(crate) fn open_channel(
        self: &Arc<Self>,
        relid: u32,
        params: ChannelParams,
        handler: Arc<dyn ChannelHandler>,
    ) -> Result<Arc<Channel>> {
        let signal_id = self.inner.lock().control.signal_connection_id(relid).ok_or(ENODEV)?;
        // Everything is allocated before the host learns of the ring: a
        // failure after the GPADL exists would free what the host maps.
        let channel = Channel::new(self.clone(), relid, signal_id, params, handler)?;
        let gpadl = {
            let ring = channel.ring_buffer().ok_or(EINVAL)?;
            channel.hold_ring();
            match self.create_gpadl(relid, ring) {
                Ok(gpadl) => gpadl,
                Err((e, host_may_hold)) => {
                    match host_may_hold {
                        Some(gpadl) => self.hold(relid, gpadl, HeldMemory::Ring(channel)),
                        None => channel.release_ring(),
                    }
                    return Err(e);
                }
            }
        };
        channel.set_ring_gpadl(gpadl);
        if let Err(e) = self.list(&channel) {
            self.release(&channel);
            return Err(e);
        }
        let open = OpenRequest {
            relid,
            ring_gpadl: gpadl,
            downstream_page_offset: (params.send_ring / Page::SIZE + 1) as u32,
            // `list` may have moved it off a CPU that went offline.
            target_vp: self.backend.vp_index(channel.target_cpu()),
            user_data: [0; USER_DEFINED_BYTES],
        };
        if let Err(e) = self.request(|c, id, sink| c.open(now_ms(), id, &open, &mut |a| sink(a))) {
            pr_err!("vmbus: relid {}: open failed: {:?}\n", relid, e);
            self.unlist(&channel);
            // A timed-out open leaves the host's view unknown: the ring
            // stays (the core marks the channel failed) until the host
            // answers late or rescinds.
            if e == Error::Timeout {
                self.hold(relid, gpadl, HeldMemory::Ring(channel));
            } else {
                self.release(&channel);
            }
            return Err(request_errno(e));
        }
        Ok(channel)
    }

    /// Aims an open channel's interrupts at `cpu` (CHANNELMSG_MODIFYCHANNEL,
    /// VMBus 4.1 and newer; from 5.3 the host confirms it).
    pub(crate) fn retarget(&self, channel: &Channel, cpu: u32) -> Result {
        {
            // Counted on the new CPU before the host is asked, so that it
            // stays online.
            let _cpus = CpusReadLock::new();
            if !cpu_online(cpu) || (!self.backend.all_cpus() && cpu != CONNECT_CPU) {
                return Err(EINVAL);
            }
            self.backend.channel_cpu(cpu, true);
        }
        let vp = self.backend.vp_index(cpu);
        let moved = self.request(|c, id, sink| c.modify_channel(now_ms(), id, channel.relid, vp, &mut |a| sink(a)));
        if let Err(e) = moved {
            self.backend.channel_cpu(cpu, false);
            pr_err!("vmbus: relid {}: cannot move to CPU {}: {:?}\n", channel.relid, cpu, e);
            return Err(request_errno(e));
        }
        // Under the table's lock, as `list` and `unlist` count: the old
        // CPU's count goes if the channel is still listed, else the new
        // one's (the close took the old already).
        self.with_open(|open| {
            let listed = Self::open_at(open, channel.relid).is_some_and(|c| core::ptr::eq(&**c, channel));
            if listed {
                self.backend.channel_cpu(channel.target_cpu(), false);
            } else {
                self.backend.channel_cpu(cpu, false);
            }
            channel.set_target_cpu(cpu);
        });
        Ok(())
    }

    /// Puts `channel` into the event dispatch at its relid, growing the
    /// table first if needed (allocated here, outside the lock; moved in
    /// under it). `EBUSY` if another channel has the relid.
    fn list(&self, channel: &Arc<Channel>) -> Result {
        let index = usize::try_from(channel.relid).map_err(|_| EINVAL)?;
        if index >= MAX_CHANNEL_RELIDS as usize {
            return Err(EINVAL);
        }
        loop {
            let len = self.with_open(|open| open.len());
            if index < len {
                break;
            }
            // Room for twice the relids in use (at least 64), at most all.
            let want = (index + 1).max(len.saturating_mul(2)).max(64).min(MAX_CHANNEL_RELIDS as usize);
            let mut bigger = KVec::with_capacity(want, GFP_KERNEL)?;
            let old = self.with_open(|open| {
                if open.len() >= want {
                    return None;
                }
                // Within `bigger`'s capacity: no allocation under the lock.
                for slot in open.iter_mut() {
                    let _ = bigger.push(slot.take(), GFP_ATOMIC);
                }
                while bigger.len() < want {
                    let _ = bigger.push(None, GFP_ATOMIC);
                }
                Some(core::mem::replace(open, bigger))
            });
            // The old table holds no channel now; freed outside the lock.
            drop(old);
        }
        // CPUs stay as they are until the backend counts the channel on
        // its target, which keeps that CPU online from then on.
        let _cpus = CpusReadLock::new();
        if !cpu_online(channel.target_cpu()) {
            channel.set_target_cpu(CONNECT_CPU);
        }
        // Counted while listed: the count changes with the table's lock
        // held, so a retarget and a close cannot both move it.
        self.with_open(|open| match open.get_mut(index) {
            Some(slot @ None) => {
                *slot = Some(channel.clone());
                self.backend.channel_cpu(channel.target_cpu(), true);
                Ok(())
            }
            Some(Some(_)) => Err(EBUSY),
            None => Err(EINVAL),
        })
    }

    /// Takes `channel` out of the event dispatch and waits (bounded) until
    /// none of its handler calls runs: none starts after this.
    fn unlist(&self, channel: &Arc<Channel>) {
        channel.mark_closed();
        // Also waits for a softirq serving it: none does after this.
        let gone = self.with_open(|open| {
            let slot = usize::try_from(channel.relid).ok().and_then(|i| open.get_mut(i))?;
            if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, channel)) {
                self.backend.channel_cpu(channel.target_cpu(), false);
                slot.take()
            } else {
                None
            }
        });
        // The process-context dispatch runs handlers outside the table's
        // lock ([`Connection::dispatch_deferred`]); a late one has seen the
        // close and returned at once, or is waited for here. A handler
        // stuck past the bound is reported; the channel's memory stays
        // valid while it runs (it holds a reference).
        let _ = channel.quiesce();
        // The caller holds its own reference: this is never the last.
        drop(gone);
    }

    /// The open channel of `relid`, if any (with the table's lock held).
    fn open_at(open: &[Option<Arc<Channel>>], relid: u32) -> Option<&Arc<Channel>> {
        open.get(usize::try_from(relid).ok()?)?.as_ref()
    }

    /// Runs `f` on the open channels' table, under its lock with softirqs
    /// off. `f` must not drop the last reference to a channel (its
    /// buffers are freed in process context).
    fn with_open<R>(&self, f: impl FnOnce(&mut KVec<Option<Arc<Channel>>>) -> R) -> R {
        let _bh = BhOff::new();
        let mut open = self.open.lock();
        f(&mut open)
    }

    /// Tears the ring's GPADL down; on success the ring may be freed, else
    /// it is kept until the host lets go. So it may after the crash path's
    /// UNLOAD was answered: the host let go of every GPADL then.
    fn release(&self, channel: &Arc<Channel>) {
        let gpadl = channel.ring_gpadl();
        if self.teardown_gpadl(channel.relid, gpadl).is_ok()
            || self.crash.answered_unload.load(Ordering::Acquire)
        {
            channel.release_ring();
        } else {
            self.hold(channel.relid, gpadl, HeldMemory::Ring(channel.clone()));
        }
    }

    /// Closes an open channel: no more handler calls (when this returns,
    /// none runs and none will start), CLOSECHANNEL (unless rescinded),
    /// then the ring's GPADL is torn down.
    /// Returns whether this call closed it and it is still offered (not
    /// rescinded): then it may be opened again.
    pub(crate) fn close_channel(&self, channel: &Arc<Channel>) -> bool {
        if !channel.begin_teardown() {
            return false;
        }
        self.unlist(channel);
        let rescinded = self.with_control(|c, sink| {
            if c.channel_state(channel.relid) == Some(ChannelState::Rescinded) {
                return true;
            }
            if let Err(e) = c.close(now_ms(), channel.relid, &mut |a| sink(a)) {
                pr_err!("vmbus: relid {}: close: {:?}\n", channel.relid, e);
            }
            false
        });
        if rescinded {
            pr_info!("vmbus: relid {}: closing a rescinded channel\n", channel.relid);
        }
        self.release(channel);
        !rescinded
    }

    /// Hands offers and rescinds to the device work, in order.
    fn queue_device_changes(&self, deferred: KVec<Deferred>) {
        let mut queue = self.device_changes.lock();
        for d in deferred {
            if queue.push(d, GFP_KERNEL).is_err() {
                pr_err!("vmbus: out of memory, a device change was dropped\n");
                continue;
            }
            self.device_changes_pending.fetch_add(1, Ordering::Relaxed);
        }
        drop(queue);
        if let Some(work) = self.device_work.lock().as_ref() {
            work.queue_on(u32::MAX);
        }
    }

    /// Softirq context: takes `cpu`'s event flags and serves the signalled
    /// channels whose handlers may run here; returns whether some were
    /// left for process context ([`Connection::dispatch_deferred`]).
    fn dispatch_events(&self, cpu: u32) -> bool {
        let Some(page) = self.backend.event_page(cpu) else {
            return false;
        };
        let Ok(slot) = event::vmbus_slot(page) else {
            return false;
        };
        // Served under the table's lock, taken once for the whole scan, so
        // that a channel taken out of it (closing) is not served after.
        self.with_open(|open| {
            let mut deferred = false;
            let _ = event::take_all(slot, |relid| {
                if let Some(channel) = Self::open_at(open, relid) {
                    deferred |= !channel.dispatch_softirq();
                }
            });
            deferred
        })
    }

    /// Process context: serves the channels the softirq left.
    fn dispatch_deferred(&self) {
        // Collected under the lock into a list allocated before it, room
        // for every channel; a channel listed meanwhile keeps its flag and
        // is served in the next round.
        for _ in 0..4 {
            let room = self.with_open(|open| open.len());
            let Ok(mut due) = KVec::<Arc<Channel>>::with_capacity(room, GFP_KERNEL) else {
                pr_err!("vmbus: out of memory serving channels; retried on their next signal\n");
                return;
            };
            let complete = self.with_open(|open| {
                for channel in open.iter().flatten() {
                    if due.len() == due.capacity() {
                        return false;
                    }
                    if channel.take_deferred() {
                        // Within the capacity: no allocation.
                        let _ = due.push(channel.clone(), GFP_ATOMIC);
                    }
                }
                true
            });
            for channel in due.iter() {
                channel.dispatch();
            }
            if complete {
                return;
            }
        }
    }
}

impl WorkFn for Connection {
    /// The device work: adds and removes devices as the host offered and
    /// rescinded them.
    fn work(this: ArcBorrow<'_, Self>) {
        let this: Arc<Self> = this.into();
        loop {
            let batch = core::mem::take(&mut *this.device_changes.lock());
            if batch.is_empty() {
                return;
            }
            for d in batch {
                this.apply(d);
                this.device_changes_pending.fetch_sub(1, Ordering::Relaxed);
                this.answered.notify_all();
            }
        }
    }
}

impl Dpc for Connection {
    fn run_softirq(this: ArcBorrow<'_, Self>, cpu: u32) -> bool {
        let deferred = this.dispatch_events(cpu);
        deferred || (cpu == CONNECT_CPU && message_waiting(&*this.backend))
    }

    fn run(this: ArcBorrow<'_, Self>, cpu: u32) {
        if cpu == CONNECT_CPU {
            // A batch cut off with a message still in the slot gets no new
            // interrupt (the hypervisor waits for the slot to be taken):
            // the next batch follows here, after a chance to reschedule.
            while Self::take_messages(this) {
                cond_resched();
            }
        }
        this.dispatch_deferred();
    }
}

impl Connection {
    /// Takes up to a batch of messages from the slot; returns whether
    /// one is still waiting after the batch.
    fn take_messages(this: ArcBorrow<'_, Self>) -> bool {
        // Bounded: a host that never stops is cut off here, and its next
        // batch waits until the worker has had a chance to yield.
        for _ in 0..256 {
            let Some(message) = take_message(&*this.backend) else {
                return false;
            };
            let Ok(message) = message else {
                rejected(None);
                continue;
            };
            if message.message_type != HVMSG_CHANNEL {
                // Not a channel message: a synthetic timer's expiration
                // (the kernel's Hyper-V timer in its message mode, which
                // only hv_vmbus sets up) or a type this driver does not
                // know. Its slot is free again, so what queued behind it
                // comes through.
                if OTHER_MESSAGE_LOG.allow() {
                    let what = if message.message_type == HVMSG_TIMER_EXPIRED { " (timer expired)" } else { "" };
                    pr_info!(
                        "vmbus: SynIC message of type {:#x}{} is no channel message; ignored\n",
                        message.message_type,
                        what
                    );
                }
                continue;
            }
            if this.crash.ran.load(Ordering::Acquire) {
                // The crash path owns the connection now; only the answer
                // to its UNLOAD matters (it may be polling another CPU).
                if message.payload().get(..4) == Some(&(MessageType::UnloadResponse as u32).to_le_bytes()[..]) {
                    this.crash.answered.store(true, Ordering::Release);
                }
                continue;
            }
            let ((), deferred) = this.with_control_deferred(|c, sink| {
                if let Err(e) = c.handle_message(message.payload(), &mut |a| sink(a)) {
                    rejected(Some(e));
                }
            });
            this.answered.notify_all();
            let deferred = this.reclaim_due(deferred);
            if !deferred.is_empty() {
                this.queue_device_changes(deferred);
            }
        }
        message_waiting(&*this.backend)
    }

    /// Adds a [`Deferred::Reclaim`] to `deferred` if some held memory's
    /// GPADL changed for the better (a late answer): the device work frees
    /// it or tears it down.
    fn reclaim_due(&self, mut deferred: KVec<Deferred>) -> KVec<Deferred> {
        let due = {
            let guard = self.inner.lock();
            guard.status.held.iter().any(|h| {
                let state = guard.control.gpadl_state(h.gpadl);
                let in_use = guard.control.channel_state(h.relid) == Some(ChannelState::Failed);
                state.is_none() || (state == Some(GpadlState::Created) && !in_use)
            })
        };
        if due && deferred.push(Deferred::Reclaim, GFP_KERNEL).is_err() {
            pr_err!("vmbus: out of memory; held memory stays until the next message\n");
        }
        deferred
    }
}

/// The running connection; dropping it unloads.
pub(crate) struct Vmbus {
    conn: Arc<Connection>,
    isr: Option<IsrRegistration<Connection>>,
    /// The crash path's hooks (panic; kexec and kdump on Hyper-V), while
    /// connected.
    crash_hooks: Option<CrashHooks>,
    // The interrupt page (used before 5.0), whose address INITIATE_CONTACT
    // gives the host, as the C driver does; freed after the unload (fields
    // drop after `Drop::drop`). The monitor pages live in the connection.
    _interrupt_page: Page,
}

impl Vmbus {
    /// Connects to the host through `backend`, puts the offered devices on
    /// the bus and waits (bounded) until their drivers have probed.
    // Never inlined into the module's init: its frame is large.
    #[inline(never)]
    pub(crate) fn start(devices: Arc<Devices>, backend: Backend) -> Result<Vmbus> {
        let interrupt_page = Page::new()?;
        let monitor_pages = [Page::new()?, Page::new()?];
        let config = Config {
            max_version: Version::WIN10_V5_3,
            target_vcpu: backend.vp_index(CONNECT_CPU),
            interrupt_page: interrupt_page.phys(),
            monitor_pages: [monitor_pages[0].phys(), monitor_pages[1].phys()],
            vtl: 0,
            timeout: REQUEST_TIMEOUT_MS,
            channel_timeout: channel_timeout_ms(),
        };
        let control = Control::with_tables(
            config,
            Grown::new(MAX_CHANNEL_RELIDS as usize),
            Grown::new(usize::MAX),
        );
        let conn = Arc::pin_init(
            pin_init!(Connection {
                backend,
                devices,
                inner <- new_mutex!(Inner { control, status: Status::default() }, "vmbus_connection"),
                answered <- new_condvar!("vmbus_answered"),
                open <- new_spinlock!(Default::default(), "vmbus_open_channels"),
                next_request: AtomicU64::new(FIRST_DRIVER_REQUEST),
                next_cpu: AtomicU32::new(0),
                device_changes <- new_mutex!(KVec::new(), "vmbus_device_changes"),
                device_changes_pending: AtomicU32::new(0),
                device_work <- new_mutex!(None, "vmbus_device_work"),
                monitor_pages,
                crash: CrashState::default(),
            }),
            GFP_KERNEL,
        )?;
        *conn.device_work.lock() = Some(Work::new(conn.clone())?);
        let isr = IsrRegistration::new(conn.clone());
        // The backend unmasked SINT2 before the handler above was there: an
        // interrupt then was dropped, and a message it announced would
        // block the slot for good. Look once, as an interrupt would.
        isr.poll(CONNECT_CPU);
        let mut vmbus = Vmbus {
            isr: Some(isr),
            crash_hooks: None,
            conn,
            _interrupt_page: interrupt_page,
        };
        let conn = vmbus.conn.clone();
        conn.with_control(|c, sink| c.connect(now_ms(), CONNECT, &mut |a| sink(a)))
            .map_err(|e| {
                pr_err!("vmbus: cannot start connecting: {:?}\n", e);
                EINVAL
            })?;
        // Each proposal gets REQUEST_TIMEOUT_MS; there are at most 8.
        let limit = REQUEST_TIMEOUT_MS.saturating_mul(9);
        if !conn.wait(limit, |s| s.connect.is_some()) {
            pr_err!("vmbus: no answer to version negotiation\n");
            return Err(ETIMEDOUT());
        }
        match conn.inner.lock().status.connect {
            Some(Ok(())) => {}
            Some(Err(Error::Timeout)) => {
                pr_err!("vmbus: the host did not answer INITIATE_CONTACT within {} ms\n", REQUEST_TIMEOUT_MS);
                return Err(ETIMEDOUT());
            }
            Some(Err(e)) => {
                pr_err!("vmbus: version negotiation failed: {:?}\n", e);
                return Err(ENODEV);
            }
            None => return Err(ETIMEDOUT()),
        }
        let (version, message_connection_id) = {
            let inner = conn.inner.lock();
            (inner.control.version(), inner.control.message_connection_id())
        };
        if let Some(v) = version {
            pr_info!("vmbus: connected, version {}\n", v);
            conn.crash.message_connection_id.store(message_connection_id, Ordering::Relaxed);
            conn.crash.version.store(v.raw(), Ordering::Release);
            vmbus.crash_hooks = Some(CrashTarget::set(&conn, conn.backend.is_hyperv()));
        }
        if !conn.wait(OFFERS_TIMEOUT_MS, |s| s.all_offers) {
            pr_err!("vmbus: the host did not deliver all offers within {} ms\n", OFFERS_TIMEOUT_MS);
        }
        // The devices of those offers (and their drivers' probes) too.
        let pending = &conn.device_changes_pending;
        if !conn.wait(OFFERS_TIMEOUT_MS, |_| pending.load(Ordering::Relaxed) == 0) {
            pr_err!("vmbus: the offered devices were not all added within {} ms\n", OFFERS_TIMEOUT_MS);
        }
        Ok(vmbus)
    }
}

impl Drop for Vmbus {
    fn drop(&mut self) {
        let conn = &self.conn;
        // No crash path from now on (it would race the teardown).
        if let Some(hooks) = self.crash_hooks.take() {
            CrashTarget::clear(conn, hooks);
        }
        conn.inner.lock().status.closing = true;
        // No device changes from now on (dropping the work waits for it).
        let work = conn.device_work.lock().take();
        drop(work);
        conn.devices.clear();
        let (connected, version) = {
            let inner = conn.inner.lock();
            (inner.control.state() == ConnectionState::Connected, inner.control.version())
        };
        if conn.crash.ran.load(Ordering::Acquire) {
            pr_info!("vmbus: unloading: the crash path already sent UNLOAD\n");
        } else if conn.inner.lock().status.host_gone {
            pr_err!("vmbus: unloading without UNLOAD: the host stopped answering\n");
        } else if let Some(v) = version.filter(|v| connected && !v.takes_unload()) {
            // As the C driver: a host before 3.0 cannot reconnect a guest
            // and takes no UNLOAD.
            pr_info!("vmbus: unloading without UNLOAD: version {} is older than 3.0\n", v);
        } else if connected {
            let started = conn.with_control(|c, sink| c.unload_within(now_ms(), UNLOAD, UNLOAD_TIMEOUT_MS, &mut |a| sink(a)));
            if started.is_ok() && conn.wait(UNLOAD_TIMEOUT_MS.saturating_add(1000), |s| s.unload.is_some()) {
                match conn.inner.lock().status.unload {
                    Some(Ok(())) => pr_info!("vmbus: unloaded, the host acknowledged\n"),
                    Some(Err(Error::Timeout)) => {
                        pr_err!("vmbus: no UNLOAD_RESPONSE within {} ms; giving up\n", UNLOAD_TIMEOUT_MS)
                    }
                    Some(Err(e)) => pr_err!("vmbus: unload failed: {:?}\n", e),
                    None => {}
                }
            } else {
                pr_err!("vmbus: no UNLOAD_RESPONSE; giving up\n");
            }
        }
        conn.backend.stop();
        drop(self.isr.take());
        // Held memory: the host let go of it all if it answered UNLOAD
        // (here or on the crash path); else it is leaked (dropping a `Held`
        // leaks; its channels' rings too). Either way the entries go now,
        // which also breaks the reference cycle a held channel makes with
        // the connection.
        let (held, let_go) = {
            let mut guard = conn.inner.lock();
            let answered = guard.status.unload == Some(Ok(())) || conn.crash.answered_unload.load(Ordering::Acquire);
            (core::mem::take(&mut guard.status.held), answered)
        };
        for entry in held {
            if let_go {
                entry.free();
            }
        }
    }
}

/// The connection the crash path unloads: set while connected, by the
/// one running [`Vmbus`] (the module has one connection).
static CRASH_TARGET: AtomicPtr<Connection> = AtomicPtr::new(core::ptr::null_mut());
/// Crash-path calls between their look at [`CRASH_TARGET`] and their
/// last use of it; the teardown waits for them.
static CRASH_USERS: AtomicU32 = AtomicU32::new(0);

/// The registration of the connection with the crash path.
struct CrashTarget;

impl CrashTarget {
    /// Makes `conn` the crash path's connection and registers the hooks
    /// that run it (with Hyper-V's own when `hyperv`).
    fn set(conn: &Arc<Connection>, hyperv: bool) -> CrashHooks {
        CRASH_TARGET.store(core::ptr::from_ref::<Connection>(conn).cast_mut(), Ordering::SeqCst);
        CrashHooks::register(crash_hook, hyperv)
    }

    /// Removes the hooks, then waits until no crash path uses the
    /// connection: after this it may go. Bounded by the crash path's own
    /// bound; a crash path that outlived even that (it cannot, short of a
    /// stuck CPU) keeps the connection alive for good.
    fn clear(conn: &Arc<Connection>, hooks: CrashHooks) {
        drop(hooks);
        CRASH_TARGET.store(core::ptr::null_mut(), Ordering::SeqCst);
        let limit = UNLOAD_TIMEOUT_MS.saturating_add(10_000);
        let start = now_ms();
        while CRASH_USERS.load(Ordering::SeqCst) != 0 {
            if now_ms().saturating_sub(start) > limit {
                pr_err!("vmbus: a crash-path unload is still running; leaving the connection in place\n");
                // A reference never dropped: the connection outlives it.
                core::mem::forget(conn.clone());
                break;
            }
            msleep(10);
        }
    }
}

/// What [`crash_unload`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrashUnload {
    /// No connection, or it ran before.
    NotConnected,
    /// The host is older than 3.0: no UNLOAD (as the C driver).
    TooOld,
    /// HvPostMessage of UNLOAD failed.
    PostFailed,
    /// The host answered after about this many milliseconds.
    Answered(u32),
    /// No answer within [`UNLOAD_TIMEOUT_MS`].
    NoAnswer,
}

/// The hooks' entry: panic notifier, kexec and crash handlers.
extern "C" fn crash_hook() {
    let _ = crash_unload();
}

/// The crash-path unload: UNLOAD posted, its answer awaited by polling
/// every CPU's message page, with interrupts off (the hooks call it so;
/// it turns them off itself for any other caller). Runs once per
/// connection; takes no lock, never sleeps, needs no other CPU.
pub(crate) fn crash_unload() -> CrashUnload {
    let _irqs = IrqsOff::new();
    // SeqCst with the teardown's clear-then-look: either it sees this
    // user, or this sees the pointer cleared.
    CRASH_USERS.fetch_add(1, Ordering::SeqCst);
    let target = CRASH_TARGET.load(Ordering::SeqCst);
    // SAFETY: a non-null target is a live connection: `CrashTarget::clear`
    // clears the pointer, then waits for every user counted above before
    // the connection may be dropped.
    let result = match unsafe { target.as_ref() } {
        Some(conn) => conn.crash_unload(),
        None => CrashUnload::NotConnected,
    };
    CRASH_USERS.fetch_sub(1, Ordering::SeqCst);
    result
}

impl Connection {
    fn crash_unload(&self) -> CrashUnload {
        let Some(version) = Version::from_raw(self.crash.version.load(Ordering::Acquire)) else {
            return CrashUnload::NotConnected;
        };
        if self.crash.ran.swap(true, Ordering::AcqRel) {
            return CrashUnload::NotConnected;
        }
        if !version.takes_unload() {
            return CrashUnload::TooOld;
        }
        let (buf, len) = encode(&Message::Unload);
        let connection_id = self.crash.message_connection_id.load(Ordering::Relaxed);
        let payload = buf.get(..len).unwrap_or(&[]);
        if self.backend.post_message_atomic(connection_id, VMBUS_MESSAGE_TYPE, payload).is_err() {
            pr_err!("vmbus: crash path: UNLOAD could not be posted\n");
            return CrashUnload::PostFailed;
        }
        let cpus = nr_cpu_ids();
        let rounds = (UNLOAD_TIMEOUT_MS / u64::from(CRASH_POLL_MS)) as u32;
        let mut answered = None;
        // Counted in rounds, not read from a clock: with interrupts off
        // here (and other CPUs perhaps stopped) jiffies may stand still.
        for round in 0..rounds {
            if self.crash.answered.load(Ordering::Acquire) {
                answered = Some(round);
                break;
            }
            for cpu in 0..cpus {
                if let Some(page) = self.backend.message_page_of(cpu) {
                    // Every other message is dropped: the host forgets them
                    // with the connection.
                    if discard_message(&*self.backend, page) == Discarded::UnloadResponse {
                        answered = Some(round);
                    }
                }
            }
            if answered.is_some() {
                break;
            }
            if round > 0 && round % (CRASH_NOTICE_MS / CRASH_POLL_MS) == 0 {
                pr_notice!("vmbus: crash path: waiting for the host to answer UNLOAD\n");
            }
            mdelay(CRASH_POLL_MS);
        }
        // The next kernel starts with empty slots.
        for cpu in 0..cpus {
            if let Some(page) = self.backend.message_page_of(cpu) {
                clear_slot(page);
            }
        }
        match answered {
            Some(round) => {
                self.crash.answered_unload.store(true, Ordering::Release);
                CrashUnload::Answered(round.saturating_mul(CRASH_POLL_MS))
            }
            None => {
                pr_err!("vmbus: crash path: no UNLOAD_RESPONSE within {} ms; going on\n", UNLOAD_TIMEOUT_MS);
                CrashUnload::NoAnswer
            }
        }
    }
}
