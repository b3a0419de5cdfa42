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
//! - Unload: remove the devices, send UNLOAD and wait for the response,
//!   bounded; then stop the backend's interrupt and drain the work.
//!
//! - Channels: drivers create GPADLs and open channels through
//!   [`Connection::open_channel`] (`crate::vmbus::channel`); every request waits,
//!   bounded, for the host's answer. The interrupt's softirq work on each
//!   CPU takes that CPU's event flags and runs the signalled channels'
//!   handlers, those that may sleep in the process-context work after it.
//! - Rescind: the device goes (its driver closes the channel; GPADLs of a
//!   rescinded channel need no answer), then RELID_RELEASED.
//!
//! Posts: HvPostMessage refused for now (a full port) is retried, bounded
//! ([`post`]); a post that fails for good goes to the core
//! (`Control::post_failed`), which fails its request at once.
//!
//! Time: the core's deadlines are in milliseconds of [`now_ms`]. Every
//! request has a waiter, which sleeps on a condition variable woken by the
//! host's answers and calls `advance` at least every [`TICK_MS`], so an
//! unanswered request fails at its deadline.

use crate::vmbus::bus::Devices;
use crate::vmbus::channel::{Channel, ChannelHandler, ChannelParams};
use crate::vmbus::hv::{message_waiting, take_message, Backend, CONNECT_CPU, VMBUS_MESSAGE_TYPE};
use crate::rust::base::errno::ETIMEDOUT;
use crate::rust::base::cpu::{cpu_online, nr_cpu_ids};
use crate::rust::base::memory::{Buffer, Page};
use crate::rust::base::time::{msleep, now_ms, RateLimit};
use crate::rust::base::work::{cond_resched, BhOff, Work, WorkFn};
use crate::rust::vmbus::interrupt::{Dpc, IsrRegistration};
use crate::vmbus_core::bus::{monitor_view, MonitorView, OfferFacts};
use crate::vmbus_core::control::{
    encode, Action, ChannelState, Config, ConnectionState, Control, Error, OpenRequest, PostError, RequestId,
};
use crate::vmbus_core::event;
use crate::vmbus_core::guid::{self, Guid};
use crate::vmbus_core::msg::{GpadlSplit, Message, Offer, USER_DEFINED_BYTES};
use crate::vmbus_core::version::{self, Version};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, CondVar, CondVarTimeoutResult, Mutex, SpinLock};
use kernel::{new_condvar, new_mutex, new_spinlock};

/// Channels and GPADLs the connection tracks.
const CHANNELS: usize = 32;
const GPADLS: usize = 32;

/// How long the host gets to answer any one request.
const REQUEST_TIMEOUT_MS: u64 = 5000;
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
static POST_FAILED_LOG: RateLimit = RateLimit::new(1000);
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
    /// Finished driver requests not yet collected by their waiters.
    completed: [Option<(RequestId, core::result::Result<(), Error>)>; CHANNELS],
    /// Each offered channel's relid and HvSignalEvent connection id, from
    /// its offer until the relid is released (as long as the core's
    /// channel table holds it, which has the same room).
    signal_ids: [Option<(u32, u32)>; CHANNELS],
}

/// Puts `value` in the first free slot; false when all are taken.
fn put<T>(slots: &mut [Option<T>], value: T) -> bool {
    match slots.iter_mut().find(|s| s.is_none()) {
        Some(slot) => {
            *slot = Some(value);
            true
        }
        None => false,
    }
}

/// Frees the signal id slot of `relid`, if it has one.
fn forget_signal_id(status: &mut Status, relid: u32) {
    for slot in status.signal_ids.iter_mut() {
        if slot.is_some_and(|(r, _)| r == relid) {
            *slot = None;
        }
    }
}

struct Inner {
    control: KBox<Control<CHANNELS, GPADLS>>,
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
    /// Open channels, for the event dispatch (which reads it in softirq
    /// context: take it with [`Connection::with_open`]).
    #[pin]
    open: SpinLock<[Option<Arc<Channel>>; CHANNELS]>,
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
}

impl Connection {
    /// Performs one action under the lock; device changes are deferred,
    /// and so are the posts that failed (for [`Control::post_failed`],
    /// once the call that asked for them has returned).
    fn perform(
        backend: &Backend,
        status: &mut Status,
        deferred: &mut KVec<Deferred>,
        failed: &mut KVec<(Message, PostError)>,
        action: Action,
    ) {
        if let Action::Send { message: Message::RelidReleased { child_relid }, .. } = &action {
            // The core forgot the channel: its slot goes too.
            forget_signal_id(status, *child_relid);
        }
        match action {
            Action::Send {
                connection_id,
                message,
            } => {
                if let Err(kind) = post(backend, connection_id, &message) {
                    if failed.push((message, kind), GFP_KERNEL).is_err() {
                        pr_err!("vmbus: out of memory, a failed post of {:?} is not reported\n", message.message_type());
                    }
                }
            }
            Action::SendGpadl { .. } => pr_err!("vmbus: GPADLs are not supported yet\n"),
            Action::Offer(offer) => {
                forget_signal_id(status, offer.child_relid);
                // The core's table has the same room, so this has a slot.
                if !put(&mut status.signal_ids, (offer.child_relid, offer.connection_id)) {
                    pr_err!("vmbus: no room for relid {}\n", offer.child_relid);
                }
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
        f: impl FnOnce(&mut Control<CHANNELS, GPADLS>, &mut dyn FnMut(Action)) -> R,
    ) -> (R, KVec<Deferred>) {
        let mut deferred = KVec::new();
        let mut failed = KVec::new();
        let r = {
            let mut guard = self.inner.lock();
            let Inner { control, status } = &mut *guard;
            let backend = &self.backend;
            let r = {
                let mut sink = |a: Action| Self::perform(backend, status, &mut deferred, &mut failed, a);
                f(&mut **control, &mut sink)
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
                let mut sink = |a: Action| Self::perform(backend, status, &mut deferred, &mut failed, a);
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
    fn with_control<R>(&self, f: impl FnOnce(&mut Control<CHANNELS, GPADLS>, &mut dyn FnMut(Action)) -> R) -> R {
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
                    if !self.devices.subchannel_offered(&offer.if_instance, offer.child_relid) {
                        pr_err!(
                            "vmbus: subchannel relid {} has no device to go to; ignored\n",
                            offer.child_relid
                        );
                    }
                    return;
                }
                let facts = OfferFacts {
                    class: offer.if_type,
                    instance: offer.if_instance,
                    relid: offer.child_relid,
                    monitor_id: offer.monitor_id,
                    target_cpu: self.pick_cpu(&offer.if_type),
                };
                if let Err(e) = self.devices.add(facts, Some(self.clone())) {
                    pr_err!("vmbus: cannot add the device of relid {}: {:?}\n", offer.child_relid, e);
                }
            }
            Deferred::Rescind(relid) => {
                // The driver's remove closes the channel and tears its
                // GPADLs down (no answer needed once rescinded). A
                // rescinded subchannel is closed here; its driver's handle
                // then finds it closed.
                if self.devices.remove_relid(relid).is_err() && !self.devices.subchannel_rescinded(relid) {
                    let open = self.with_open(|open| open.iter().flatten().find(|c| c.relid == relid).cloned());
                    if let Some(channel) = open {
                        self.close_channel(&channel);
                    }
                }
                self.with_control(|c, sink| match c.release_relid(now_ms(), relid, &mut |a| sink(a)) {
                    Ok(()) => pr_info!("vmbus: relid {} rescinded and released\n", relid),
                    Err(e) => pr_err!("vmbus: cannot release relid {}: {:?}\n", relid, e),
                });
            }
        }
    }

    /// A target CPU for a new device's channel: for bulk I/O classes,
    /// round robin over online CPUs where the backend allows; else (and on
    /// Hyper-V, which so far spreads nothing) [`CONNECT_CPU`].
    pub(crate) fn pick_cpu(&self, class: &Guid) -> u32 {
        if !guid::class::is_performance(class) || !self.backend.all_cpus() {
            return CONNECT_CPU;
        }
        let n = nr_cpu_ids().max(1);
        for _ in 0..n {
            let cpu = self.next_cpu.fetch_add(1, Ordering::Relaxed).checked_rem(n).unwrap_or(0);
            if cpu_online(cpu) {
                return cpu;
            }
        }
        CONNECT_CPU
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
        start: impl FnOnce(&mut Control<CHANNELS, GPADLS>, RequestId, &mut dyn FnMut(Action)) -> core::result::Result<(), Error>,
    ) -> core::result::Result<(), Error> {
        let id = RequestId(self.next_request.fetch_add(1, Ordering::Relaxed));
        {
            let status = &self.inner.lock().status;
            if status.closing && status.host_gone {
                return Err(Error::Unloaded);
            }
        }
        self.with_control(|c, sink| start(c, id, sink))?;
        let mut result = Err(Error::Timeout);
        // The core fails the request at its deadline; the extra second only
        // guards against a core that did not.
        let finished = self.wait(REQUEST_TIMEOUT_MS.saturating_add(1000), |status| {
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
    /// pages anyway, so the buffer is then given up ([`Buffer::leak`]).
    pub(crate) fn share(&self, relid: u32, buffer: Buffer) -> Result<(u32, Buffer)> {
        match self.create_gpadl(relid, &buffer) {
            Ok(handle) => Ok((handle, buffer)),
            Err((e, host_may_hold)) => {
                if host_may_hold {
                    buffer.leak(relid);
                }
                Err(e)
            }
        }
    }

    /// Creates the GPADL of `buffer`; on error, whether the host may hold
    /// (and map) its pages all the same: after a timeout, or when a body
    /// message failed to post after the header went through.
    fn create_gpadl(&self, relid: u32, buffer: &Buffer) -> core::result::Result<u32, (kernel::error::Error, bool)> {
        let no_host = |e| (e, false);
        let pages = buffer.pages();
        let mut pfns = KVec::with_capacity(pages, GFP_KERNEL).map_err(|e| no_host(e.into()))?;
        for i in 0..pages {
            pfns.push(buffer.pfn(i).ok_or(no_host(EINVAL))?, GFP_KERNEL)
                .map_err(|e| no_host(e.into()))?;
        }
        let byte_count = u32::try_from(buffer.len()).map_err(|_| no_host(EINVAL))?;
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
            (request_errno(e), e == Error::Timeout || body_failed)
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
        let signal_id = {
            let guard = self.inner.lock();
            guard
                .status
                .signal_ids
                .iter()
                .flatten()
                .find(|(r, _)| *r == relid)
                .map(|&(_, id)| id)
                .ok_or(ENODEV)?
        };
        let pages = params.pages()?;
        let ring = Buffer::new(pages * Page::SIZE)?;
        let (gpadl, ring) = self.share(relid, ring)?;
        let channel = match Channel::new(self.clone(), relid, signal_id, gpadl, params, ring, handler) {
            Ok(c) => c,
            Err(e) => {
                // The ring went with the failed channel (leaked unless the
                // teardown below succeeds first — it cannot: it is gone).
                let _ = self.teardown_gpadl(relid, gpadl);
                return Err(e);
            }
        };
        if !self.with_open(|open| put(open, channel.clone())) {
            self.release(&channel);
            return Err(ENOSPC);
        }
        let open = OpenRequest {
            relid,
            ring_gpadl: gpadl,
            downstream_page_offset: (params.send_ring / Page::SIZE + 1) as u32,
            target_vp: self.backend.vp_index(params.target_cpu),
            user_data: [0; USER_DEFINED_BYTES],
        };
        if let Err(e) = self.request(|c, id, sink| c.open(now_ms(), id, &open, &mut |a| sink(a))) {
            pr_err!("vmbus: relid {}: open failed: {:?}\n", relid, e);
            self.unlist(&channel);
            // A timed-out open leaves the host's view unknown: the ring
            // stays (the core marks the channel failed) until a rescind.
            if e != Error::Timeout {
                self.release(&channel);
            }
            return Err(request_errno(e));
        }
        Ok(channel)
    }

    /// Aims an open channel's interrupts at `cpu` (CHANNELMSG_MODIFYCHANNEL,
    /// VMBus 4.1 and newer; from 5.3 the host confirms it).
    pub(crate) fn retarget(&self, channel: &Channel, cpu: u32) -> Result {
        if !cpu_online(cpu) || (!self.backend.all_cpus() && cpu != CONNECT_CPU) {
            return Err(EINVAL);
        }
        let vp = self.backend.vp_index(cpu);
        self.request(|c, id, sink| c.modify_channel(now_ms(), id, channel.relid, vp, &mut |a| sink(a)))
            .map_err(|e| {
                pr_err!("vmbus: relid {}: cannot move to CPU {}: {:?}\n", channel.relid, cpu, e);
                request_errno(e)
            })?;
        channel.set_target_cpu(cpu);
        Ok(())
    }

    /// Takes `channel` out of the event dispatch.
    fn unlist(&self, channel: &Arc<Channel>) {
        channel.mark_closed();
        // Also waits for a softirq serving it: none does after this.
        self.with_open(|open| {
            for slot in open.iter_mut() {
                if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, channel)) {
                    *slot = None;
                }
            }
        });
    }

    /// Runs `f` on the open channels' table, under its lock with softirqs
    /// off. `f` must not drop the last reference to a channel (its
    /// buffers are freed in process context).
    fn with_open<R>(&self, f: impl FnOnce(&mut [Option<Arc<Channel>>; CHANNELS]) -> R) -> R {
        let _bh = BhOff::new();
        let mut open = self.open.lock();
        f(&mut open)
    }

    /// Tears the ring's GPADL down; on success the ring may be freed.
    fn release(&self, channel: &Arc<Channel>) {
        if self.teardown_gpadl(channel.relid, channel.ring_gpadl).is_ok() {
            channel.release_ring();
        }
    }

    /// Closes an open channel: no more handler calls, CLOSECHANNEL (unless
    /// rescinded), then the ring's GPADL is torn down.
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
                if let Some(channel) = open.iter().flatten().find(|c| c.relid == relid) {
                    deferred |= !channel.dispatch_softirq();
                }
            });
            deferred
        })
    }

    /// Process context: serves the channels the softirq left.
    fn dispatch_deferred(&self) {
        let mut due: [Option<Arc<Channel>>; CHANNELS] = Default::default();
        self.with_open(|open| {
            let signalled = open.iter().flatten().filter(|c| c.take_deferred());
            for (slot, channel) in due.iter_mut().zip(signalled) {
                *slot = Some(channel.clone());
            }
        });
        for channel in due.iter().flatten() {
            channel.dispatch();
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
            let ((), deferred) = this.with_control_deferred(|c, sink| {
                if let Err(e) = c.handle_message(message.payload(), &mut |a| sink(a)) {
                    rejected(Some(e));
                }
            });
            this.answered.notify_all();
            if !deferred.is_empty() {
                this.queue_device_changes(deferred);
            }
        }
        message_waiting(&*this.backend)
    }
}

/// The running connection; dropping it unloads.
pub(crate) struct Vmbus {
    conn: Arc<Connection>,
    isr: Option<IsrRegistration<Connection>>,
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
        };
        // Copied from a constant and configured in place: the table is
        // kilobytes, too big for the stack.
        const UNCONFIGURED: Control<CHANNELS, GPADLS> = Control::new(Config {
            max_version: Version::WIN10_V5_3,
            target_vcpu: 0,
            interrupt_page: 0,
            monitor_pages: [0; 2],
            vtl: 0,
            timeout: REQUEST_TIMEOUT_MS,
        });
        let mut control = KBox::<Control<CHANNELS, GPADLS>>::new_uninit(GFP_KERNEL)?.write(UNCONFIGURED);
        control.configure(config).map_err(|_| EINVAL)?;
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
            }),
            GFP_KERNEL,
        )?;
        *conn.device_work.lock() = Some(Work::new(conn.clone())?);
        let vmbus = Vmbus {
            isr: Some(IsrRegistration::new(conn.clone())),
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
        let version = conn.inner.lock().control.version();
        if let Some(v) = version {
            pr_info!("vmbus: connected, version {}\n", v);
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
        conn.inner.lock().status.closing = true;
        // No device changes from now on (dropping the work waits for it).
        let work = conn.device_work.lock().take();
        drop(work);
        conn.devices.clear();
        let connected = conn.inner.lock().control.state() == ConnectionState::Connected;
        if conn.inner.lock().status.host_gone {
            pr_err!("vmbus: unloading without UNLOAD: the host stopped answering\n");
        } else if connected {
            let started = conn.with_control(|c, sink| c.unload(now_ms(), UNLOAD, &mut |a| sink(a)));
            if started.is_ok() && conn.wait(REQUEST_TIMEOUT_MS.saturating_add(1000), |s| s.unload.is_some()) {
                match conn.inner.lock().status.unload {
                    Some(Ok(())) => pr_info!("vmbus: unloaded, the host acknowledged\n"),
                    Some(Err(Error::Timeout)) => {
                        pr_err!("vmbus: no UNLOAD_RESPONSE within {} ms; giving up\n", REQUEST_TIMEOUT_MS)
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
    }
}
