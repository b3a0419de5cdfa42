// SPDX-License-Identifier: GPL-2.0
//! The simulated hypervisor's SynIC: HvPostMessage into the VMBus host,
//! and the host's messages delivered through the SINT2 slot of a message
//! page with Hyper-V's rules:
//!
//! - a message is written into the slot only when its type is
//!   `HVMSG_NONE`; payload and header first, the type last (release);
//! - while more messages wait, the slot's `msg_pending` flag is set; when
//!   the slot is full the hypervisor sets `msg_pending` and re-checks the
//!   type (SeqCst), pairing with the guest's clear-type-then-read-flags, so
//!   that either the guest sees the flag and writes EOM or the hypervisor
//!   sees the slot free;
//! - EOM makes the hypervisor try delivery again;
//! - each delivery raises the VMBus interrupt on [`CONNECT_CPU`]
//!   asynchronously (an IPI; `rust/sim/`);
//! - HvPostMessage puts the guest's message into the host's message port,
//!   which holds [`PORT_SLOTS`] messages (as QEMU's); the host drains it
//!   asynchronously, in the hypervisor's work, a tick later. A post to a
//!   full port fails (`EAGAIN`, Hyper-V's `HV_STATUS_INSUFFICIENT_BUFFERS`),
//!   as does one to a connection id the host has no port at (`ENXIO`,
//!   `HV_STATUS_INVALID_CONNECTION_ID`).
//!
//! - the crash path (a guest unloading with interrupts off, on kexec,
//!   kdump or panic): HvPostMessage and EOM then take no sleeping lock;
//!   they go through [`CrashPort`], which the host serves from another CPU
//!   while the `crash-unload` command runs the guest's crash path, as
//!   Hyper-V runs beside a crashing guest. Outside that command such a post
//!   fails (the host is not listening there), so a real panic in a test
//!   guest does not wait for an answer that cannot come;
//! - `sim_stale_message=1`: a synthetic timer's message already waits in
//!   the SINT2 slot when the guest starts, its interrupt raised before the
//!   guest's handler is there (as a kexec'd kernel may find one): the guest
//!   must read it all the same, or nothing comes through the slot again.
//!
//! It starts the registry's device models ([`Models`]) with the host and
//! parses the debugfs `sim` commands: its own and the host's (hot-add,
//! rescind, ring and message faults), and hands any other to the models.

use crate::vmbus::hv::{CONNECT_CPU, VMBUS_MESSAGE_TYPE};
use crate::vmbus::connection::{crash_unload, CrashUnload};
use crate::rust::base::cpu::{cpu_online, nr_cpu_ids, this_cpu};
use crate::rust::base::work::cond_resched;
use crate::rust::vmbus::crash::{mdelay, IrqsOff};
use crate::rust::sim;
use crate::rust::base::memory::Page;
use crate::rust::base::time::{msleep, now_ms};
use crate::rust::base::work::{Work, WorkFn};
use crate::vmbus_core::control::encode;
use crate::vmbus_core::msg::{MessageType, HVMSG_NONE, HVMSG_TIMER_EXPIRED, MAX_MESSAGE_SIZE, SYNIC_MESSAGE_SIZE};
use crate::vmbus_core::shared::SharedMem;
use crate::vmbus_core::version::MESSAGE_SINT;
use crate::testing::sim::chaos::{Chaos, ChaosFault};
use crate::testing::sim::devices::MODELS;
use crate::testing::sim::host::{Host, SignalTable, POSTS_BUSY, POSTS_NO_PORT, SIGNALS, UNEXPECTED};
use crate::testing::sim::model::Models;
use crate::testing::sim::vsp::GuestInterrupts;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex, SpinLock};
use kernel::{new_mutex, new_spinlock};

/// Faults injected into the host's next control message (debugfs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fault {
    None,
    /// The message is lost.
    Drop,
    /// It arrives twice.
    Duplicate,
    /// It arrives after the one that follows it.
    Reorder,
    /// It arrives this many milliseconds late.
    Delay(u32),
    /// Its message type is one no version defines.
    BadType,
    /// It is cut short, below its type's size.
    BadSize,
    /// A field is wrong: the relid (or GPADL handle) it names is not one
    /// the guest has.
    BadField,
}

pub(crate) static FAULTS_INJECTED: AtomicU64 = AtomicU64::new(0);

/// The control plane's faults, for chaos (`crate::testing::sim::chaos`):
/// the host's next message faulted, the message port full, the host
/// silent for a while, the device rescinded for a while.
pub(crate) static CONTROL_FAULTS: [ChaosFault; 10] = [
    ChaosFault::once("fault drop"),
    ChaosFault::once("fault duplicate"),
    ChaosFault::once("fault reorder"),
    ChaosFault::once("fault delay={ms}"),
    ChaosFault::once("fault bad-type"),
    ChaosFault::once("fault bad-size"),
    ChaosFault::once("fault bad-field"),
    ChaosFault::once("fault post-busy={n}"),
    ChaosFault::until("silent", "silent off"),
    ChaosFault::until("rescind {dev}", "offer {dev}"),
];

/// Most messages waiting for the slot; more are refused as Hyper-V
/// refuses with HV_STATUS_INSUFFICIENT_BUFFERS.
const QUEUE_LIMIT: usize = 64;
/// Messages the host's message port holds (QEMU's VMBus bridge: 16).
pub(crate) const PORT_SLOTS: usize = 16;
/// How long after a post the host drains its port: Hyper-V handles posts
/// asynchronously, and a guest posting back to back (a large GPADL is 1 +
/// 146 messages) must find the port full and retry.
const PORT_DRAIN_MS: u32 = 1;
/// How often the work looks whether a delayed message is due.
const DELAY_POLL_MS: u32 = 10;
const FLAGS_WORD: usize = 4;
const SENDER: usize = 8;
const PAYLOAD: usize = 16;
const MSG_PENDING_BIT: u32 = 1 << 8;

#[derive(Clone, Copy)]
struct Queued {
    len: usize,
    payload: [u8; MAX_MESSAGE_SIZE],
}

struct Inner {
    queue: KVec<Queued>,
    head: usize,
    host: Host,
    /// The fault for the next host message (of type `fault_type`, if
    /// that is set: `fault drop@open-result`, say).
    fault: Fault,
    fault_type: Option<u32>,
    /// A message held back by `Reorder` (sent after the next one).
    reordered: Option<Queued>,
    /// A message held back by `Delay`, and when it is due.
    delayed: Option<(Queued, u64)>,
    /// The host ignores every guest message (it stopped answering).
    silent: bool,
    /// The next this many HvPostMessage calls find the message port full.
    post_busy: u32,
    /// The host's message port: posted guest messages and their connection
    /// ids, oldest first, not yet received (at most [`PORT_SLOTS`]).
    port: KVec<(u32, Queued)>,
}

/// How long the host serves the crash path at most (past the guest's own
/// bound of 100 s, so that the guest gives up first), in 1 ms steps.
const CRASH_SERVE_MS: u32 = 110_000;

/// The crash path's way into the host: a mailbox for one HvPostMessage and
/// an EOM flag, both usable with interrupts off, served by
/// [`CrashServer`] on another CPU while `armed`.
#[pin_data]
pub(crate) struct CrashPort {
    armed: AtomicBool,
    serving: AtomicBool,
    done: AtomicBool,
    eom: AtomicBool,
    #[pin]
    mailbox: SpinLock<Option<(u32, Queued)>>,
}

/// The host's side of the crash path: a work item on another CPU that
/// receives the crash path's post and redelivers on its EOM.
struct CrashServer {
    hv: Arc<Hypervisor>,
}

/// The simulated hypervisor with the VMBus host behind it.
#[pin_data]
pub(crate) struct Hypervisor {
    page: Page,
    interrupts: Arc<GuestInterrupts>,
    signals: Arc<SignalTable>,
    #[pin]
    inner: Mutex<Inner>,
    /// Requests from device models, and the work that delivers delayed
    /// messages and carries the requests out.
    requests: Arc<HostRequests>,
    /// The device models, for their debugfs commands.
    models: Models,
    #[pin]
    crash: CrashPort,
    /// The crash server's work (taken out at stop: it holds a reference).
    #[pin]
    crash_work: Mutex<Option<Work<CrashServer>>>,
    /// Chaos runs (`chaos NAME SECONDS [SEED]`).
    chaos: Arc<Chaos>,
}

/// What device models ask of the host's control plane (subchannel offers),
/// and the hypervisor's work that carries it out; the work is taken out at
/// stop (it holds a reference to the hypervisor).
#[pin_data]
pub(crate) struct HostRequests {
    #[pin]
    subchannels: SpinLock<[Option<(u32, u16)>; 8]>,
    #[pin]
    work: Mutex<Option<Work<Hypervisor>>>,
}

impl HostRequests {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(HostRequests {
                subchannels <- new_spinlock!([None; 8], "sim_host_requests"),
                work <- new_mutex!(None, "sim_host_work"),
            }),
            GFP_KERNEL,
        )
    }

    fn kick_after(&self, ms: u32) {
        if let Some(w) = self.work.lock().as_ref() {
            if ms == 0 {
                w.queue_on(u32::MAX);
            } else {
                w.queue_after(ms);
            }
        }
    }

    /// A device model asks for `count` subchannels of channel `relid`.
    pub(crate) fn offer_subchannels(&self, relid: u32, count: u16) {
        let queued = {
            let mut slots = self.subchannels.lock();
            match slots.iter_mut().find(|s| s.is_none()) {
                Some(slot) => {
                    *slot = Some((relid, count));
                    true
                }
                None => false,
            }
        };
        if !queued {
            pr_err!("sim: too many subchannel requests; relid {}'s dropped\n", relid);
            return;
        }
        self.kick_after(0);
    }

    fn take(&self) -> Option<(u32, u16)> {
        self.subchannels.lock().iter_mut().find_map(Option::take)
    }
}

impl Hypervisor {
    /// A hypervisor whose host is configured by the module parameters.
    // Not inlined into the connection's start: the host is kilobytes.
    #[inline(never)]
    pub(crate) fn new() -> Result<Arc<Self>> {
        let interrupts = GuestInterrupts::new()?;
        let models = Models::start(&MODELS)?;
        let host = Host::new(
            sim::versions_param().as_bytes(),
            sim::devices_param().as_bytes(),
            &models,
            interrupts.clone(),
            HostRequests::new()?,
        )?;
        let signals = host.signals.clone();
        let requests = host.requests.clone();
        let page = Page::new()?;
        let chaos = Chaos::new()?;
        let hv = Arc::pin_init(
            pin_init!(Hypervisor {
                page,
                interrupts,
                signals,
                inner <- new_mutex!(Inner {
                    queue: KVec::new(),
                    head: 0,
                    host,
                    fault: Fault::None,
                    fault_type: None,
                    reordered: None,
                    delayed: None,
                    silent: false,
                    post_busy: sim::post_busy_param(),
                    port: KVec::new(),
                }, "sim_hypervisor"),
                requests,
                models,
                crash <- pin_init!(CrashPort {
                    armed: AtomicBool::new(false),
                    serving: AtomicBool::new(false),
                    done: AtomicBool::new(false),
                    eom: AtomicBool::new(false),
                    mailbox <- new_spinlock!(None, "sim_crash_mailbox"),
                }),
                crash_work <- new_mutex!(None, "sim_crash_work"),
                chaos,
            }),
            GFP_KERNEL,
        )?;
        *hv.requests.work.lock() = Some(Work::new(hv.clone())?);
        *hv.crash_work.lock() = Some(Work::new(Arc::new(CrashServer { hv: hv.clone() }, GFP_KERNEL)?)?);
        hv.chaos.attach(hv.clone())?;
        if sim::stale_message_param() {
            hv.leave_stale_message();
        }
        Ok(hv)
    }

    /// A synthetic timer's expiration message in the SINT2 slot, and its
    /// interrupt, before the guest has a handler (`sim_stale_message=1`).
    fn leave_stale_message(&self) {
        let page = self.page.shared();
        let Ok(slot) = page.subrange(usize::from(MESSAGE_SINT) * SYNIC_MESSAGE_SIZE, SYNIC_MESSAGE_SIZE) else {
            return;
        };
        // timer_index, reserved, expiration_time, delivery_time.
        let payload = [0u8; 24];
        let _ = slot.write_bytes(PAYLOAD, &payload);
        let _ = slot.write_u64(SENDER, 0);
        let _ = slot.store_u32(FLAGS_WORD, payload.len() as u32, Ordering::SeqCst);
        let _ = slot.store_u32(0, HVMSG_TIMER_EXPIRED, Ordering::SeqCst);
        self.interrupts.raise(CONNECT_CPU);
        pr_info!("sim: a timer message waits in the SINT2 slot before the guest's handler is there\n");
    }

    /// `crash-unload`: runs the guest's crash-path unload here with
    /// interrupts off while the host serves it from another CPU.
    fn crash_unload(&self) -> Result {
        let Some(work) = self.crash_work.lock().take() else {
            return Err(EBUSY);
        };
        *self.crash.mailbox.lock() = None;
        self.crash.eom.store(false, Ordering::Relaxed);
        self.crash.done.store(false, Ordering::Relaxed);
        self.crash.armed.store(true, Ordering::Release);
        let outcome = {
            let _irqs = IrqsOff::new();
            let here = this_cpu();
            match (0..nr_cpu_ids()).find(|&cpu| cpu != here && cpu_online(cpu)) {
                Some(cpu) => {
                    work.queue_on(cpu);
                    Some(crash_unload())
                }
                None => None,
            }
        };
        self.crash.armed.store(false, Ordering::Release);
        self.crash.done.store(true, Ordering::Release);
        // The server looks at `done` every millisecond.
        for _ in 0..1000 {
            if !self.crash.serving.load(Ordering::Acquire) {
                break;
            }
            msleep(1);
        }
        *self.crash_work.lock() = Some(work);
        match outcome {
            Some(CrashUnload::Answered(ms)) => {
                pr_info!("sim: crash-path unload answered after about {} ms, with interrupts off\n", ms);
                Ok(())
            }
            Some(other) => {
                pr_err!("sim: crash-path unload: {:?}\n", other);
                Err(EIO)
            }
            None => {
                pr_err!("sim: crash-path unload needs a second online CPU for the host\n");
                Err(ENODEV)
            }
        }
    }

    /// Chaos's state.
    pub(crate) fn chaos(&self) -> &Chaos {
        &self.chaos
    }

    /// Disarms the fault waiting for the host's next message (chaos does,
    /// before the host's own rescinds and offers).
    pub(crate) fn clear_message_fault(&self) {
        let mut inner = self.inner.lock();
        inner.fault = Fault::None;
        inner.fault_type = None;
    }

    /// Queues a host message for the slot, applying the pending fault.
    fn enqueue(&self, inner: &mut Inner, mut msg: Queued) -> Result {
        // Bytes 0..4 of a channel message are its type.
        let msg_type = msg.payload.first_chunk::<4>().map(|b| u32::from_le_bytes(*b));
        let fault = if inner.fault_type.is_none() || inner.fault_type == msg_type {
            inner.fault_type = None;
            core::mem::replace(&mut inner.fault, Fault::None)
        } else {
            Fault::None
        };
        if fault != Fault::None {
            FAULTS_INJECTED.fetch_add(1, Ordering::Relaxed);
            pr_info!("sim: injecting {:?} into the next host message\n", fault);
        }
        match fault {
            Fault::None => {}
            Fault::Drop => return Ok(()),
            Fault::Duplicate => Self::push(inner, msg)?,
            Fault::Reorder => {
                inner.reordered = Some(msg);
                return Ok(());
            }
            Fault::Delay(ms) => {
                inner.delayed = Some((msg, now_ms().saturating_add(u64::from(ms))));
                // Polled every few ms rather than timed once: the same
                // work drains the message port, which must not wait out
                // the delay (a pending delayed work is not re-armed).
                self.requests.kick_after(ms.clamp(1, DELAY_POLL_MS));
                return Ok(());
            }
            // Byte 0..4 of a channel message is its type.
            Fault::BadType => msg.payload[0] = 0x7f,
            Fault::BadSize => msg.len = 4,
            // The word after the header names the relid (or, for
            // GPADL_TORNDOWN, the handle) in every answer the host sends.
            Fault::BadField => {
                if let Some(w) = msg.payload.get_mut(8..12) {
                    w.copy_from_slice(&0x7ffu32.to_le_bytes());
                }
            }
        }
        Self::push(inner, msg)?;
        if let Some(held) = inner.reordered.take() {
            Self::push(inner, held)?;
        }
        Ok(())
    }

    fn push(inner: &mut Inner, msg: Queued) -> Result {
        if inner.queue.len().saturating_sub(inner.head) >= QUEUE_LIMIT {
            return Err(EAGAIN);
        }
        inner.queue.push(msg, GFP_KERNEL)?;
        Ok(())
    }

    /// Runs `f` on the host (debugfs commands), queueing what it sends.
    fn with_host(&self, f: impl FnOnce(&mut Host, &mut dyn FnMut(&crate::vmbus_core::msg::Message)) -> Result) -> Result {
        let mut guard = self.inner.lock();
        let mut out: KVec<Queued> = KVec::new();
        let mut oom = false;
        let r = {
            let Inner { host, .. } = &mut *guard;
            f(host, &mut |m| {
                let (payload, len) = encode(m);
                oom |= out.push(Queued { len, payload }, GFP_KERNEL).is_err();
            })
        };
        guard.host.refresh_gauges();
        let retired = core::mem::take(&mut guard.host.retired);
        let mut queued = Ok(());
        for m in out {
            let inner = &mut *guard;
            if let Err(e) = self.enqueue(inner, m) {
                queued = Err(e);
            }
        }
        self.deliver(&mut guard);
        drop(guard);
        // Cancels the detached channels' work, outside the lock.
        drop(retired);
        queued?;
        if oom {
            return Err(ENOMEM);
        }
        r
    }

    /// debugfs `sim` commands: `offer NAME [relid=N]`, `rescind NAME`,
    /// `corrupt-ring NAME`, `stall NAME`, `nodrain NAME` (the host stops
    /// reading the guest's outbound ring, still writing the inbound one)
    /// and `drain NAME` (it reads it again),
    /// `fault drop|duplicate|reorder|delay=MS|bad-type|bad-size|bad-field`
    /// (the host's next message; with `@open-result`, `@gpadl-created` or
    /// `@gpadl-torndown` after it, the next of that type), `fault storm=N`
    /// (N bad messages at once, N <= 64), `fault post-busy=N` (the next N
    /// HvPostMessage calls fail as on a full message port, N <= 100000),
    /// `fault open-nomem=N` (the Nth next channel open fails to allocate
    /// its channel, N <= 1000; the guest's own memory, but the fault
    /// belongs with the others), `silent` (stop answering; `silent off`:
    /// answer again), `crash-unload` (the guest's crash-path unload, run
    /// here with interrupts off), `clear` (the faults, the models' too),
    /// `chaos NAME SECONDS [SEED]` (faults drawn at random for a while:
    /// `crate::testing::sim::chaos`);
    /// any other goes to the device models, as its words
    /// ([`Models::command`]: `EINVAL` if no model takes it).
    pub(crate) fn command(&self, input: &[u8]) -> Result {
        let text = core::str::from_utf8(input).map_err(|_| EINVAL)?.trim();
        let (verb, arg) = text.split_once(' ').map_or((text, ""), |(v, a)| (v, a.trim()));
        match verb {
            "offer" => self.with_host(|h, send| h.hot_add(arg.as_bytes(), &mut |m| send(m))),
            "rescind" => self.with_host(|h, send| h.rescind(arg.as_bytes(), &mut |m| send(m))),
            "corrupt-ring" | "stall" | "nodrain" => {
                let relid = Host::relid_of(arg.as_bytes()).ok_or(ENOENT)?;
                let channel = self.signals.channel(relid).ok_or(ENOENT)?;
                FAULTS_INJECTED.fetch_add(1, Ordering::Relaxed);
                match verb {
                    "stall" => channel.stalled.store(true, Ordering::SeqCst),
                    "nodrain" => channel.undrained.store(true, Ordering::SeqCst),
                    _ => channel.corrupt_inbound_index(),
                }
                Ok(())
            }
            // The host drains the channel's outbound ring again.
            "drain" => {
                let relid = Host::relid_of(arg.as_bytes()).ok_or(ENOENT)?;
                let channel = self.signals.channel(relid).ok_or(ENOENT)?;
                channel.undrained.store(false, Ordering::SeqCst);
                self.signals.kick(relid);
                Ok(())
            }
            "fault" => {
                if let Some(n) = arg.strip_prefix("post-busy=") {
                    let n = n.parse::<u32>().map_err(|_| EINVAL)?;
                    if n > 100_000 {
                        return Err(EINVAL);
                    }
                    self.inner.lock().post_busy = n;
                    return Ok(());
                }
                if let Some(n) = arg.strip_prefix("storm=") {
                    let n = n.parse::<usize>().map_err(|_| EINVAL)?;
                    return self.storm(n);
                }
                if let Some(n) = arg.strip_prefix("open-nomem=") {
                    let n = n.parse::<u32>().map_err(|_| EINVAL)?;
                    if n > 1000 {
                        return Err(EINVAL);
                    }
                    FAULTS_INJECTED.fetch_add(1, Ordering::Relaxed);
                    crate::vmbus::channel::FAIL_NTH_ALLOCATION.store(n, Ordering::Relaxed);
                    return Ok(());
                }
                let (arg, only) = match arg.split_once('@') {
                    None => (arg, None),
                    Some((fault, ty)) => {
                        let ty = match ty {
                            "open-result" => MessageType::OpenChannelResult,
                            "gpadl-created" => MessageType::GpadlCreated,
                            "gpadl-torndown" => MessageType::GpadlTorndown,
                            _ => return Err(EINVAL),
                        };
                        (fault, Some(ty as u32))
                    }
                };
                let fault = match arg {
                    "drop" => Fault::Drop,
                    "duplicate" => Fault::Duplicate,
                    "reorder" => Fault::Reorder,
                    "bad-type" => Fault::BadType,
                    "bad-size" => Fault::BadSize,
                    "bad-field" => Fault::BadField,
                    _ => match arg.strip_prefix("delay=").map(str::parse::<u32>) {
                        Some(Ok(ms)) if ms <= 60_000 => Fault::Delay(ms),
                        _ => return Err(EINVAL),
                    },
                };
                let mut inner = self.inner.lock();
                inner.fault = fault;
                inner.fault_type = only;
                Ok(())
            }
            "crash-unload" => self.crash_unload(),
            "silent" => {
                let silent = match arg {
                    "" => true,
                    "off" => false,
                    _ => return Err(EINVAL),
                };
                if silent {
                    FAULTS_INJECTED.fetch_add(1, Ordering::Relaxed);
                }
                self.inner.lock().silent = silent;
                Ok(())
            }
            "chaos" => self.chaos.start(arg),
            "clear" => {
                let mut inner = self.inner.lock();
                inner.fault = Fault::None;
                inner.fault_type = None;
                inner.silent = false;
                inner.post_busy = 0;
                crate::vmbus::channel::FAIL_NTH_ALLOCATION.store(0, Ordering::Relaxed);
                self.models.clear();
                Ok(())
            }
            _ => {
                let mut words = KVec::new();
                for word in text.split_whitespace() {
                    words.push(word, GFP_KERNEL)?;
                }
                self.models.command(&words)
            }
        }
    }

    /// `fault storm=N`: the host sends N (1..=[`QUEUE_LIMIT`]) control
    /// messages of a type no version defines, back to back, unasked: the
    /// guest must drop each without flooding its log.
    fn storm(&self, n: usize) -> Result {
        if n == 0 || n > QUEUE_LIMIT {
            return Err(EINVAL);
        }
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        // All or none, so that a writer may simply try again.
        if inner.queue.len().saturating_sub(inner.head).saturating_add(n) > QUEUE_LIMIT {
            return Err(EAGAIN);
        }
        for _ in 0..n {
            let mut msg = Queued { len: 8, payload: [0; MAX_MESSAGE_SIZE] };
            // Byte 0..4 of a channel message is its type.
            msg.payload[0] = 0x7f;
            Self::push(inner, msg)?;
            FAULTS_INJECTED.fetch_add(1, Ordering::Relaxed);
        }
        self.deliver(inner);
        Ok(())
    }

    /// The host receives what waits in its port, in order (the work).
    fn drain_port(&self) {
        let batch = core::mem::take(&mut self.inner.lock().port);
        for (connection_id, message) in batch {
            let payload = message.payload.get(..message.len).unwrap_or(&[]);
            let r = self.with_host(|host, send| {
                host.receive(connection_id, payload, &mut |m| send(m));
                Ok(())
            });
            if let Err(e) = r {
                pr_err!("sim: the host's answer was lost: {:?}\n", e);
            }
        }
    }

    /// Moves the next queued message into the slot if the slot is free;
    /// else marks it pending.
    fn deliver(&self, inner: &mut Inner) {
        let page = self.page.shared();
        let Ok(slot) = page.subrange(usize::from(MESSAGE_SINT) * SYNIC_MESSAGE_SIZE, SYNIC_MESSAGE_SIZE)
        else {
            return;
        };
        // Two rounds at most: a full slot the guest frees while we mark it.
        for _ in 0..2 {
            let Some(next) = inner.queue.as_slice().get(inner.head).copied() else {
                return;
            };
            if slot.load_u32(0, Ordering::SeqCst) != Ok(HVMSG_NONE) {
                let flags = slot.load_u32(FLAGS_WORD, Ordering::SeqCst).unwrap_or(0);
                let _ = slot.store_u32(FLAGS_WORD, flags | MSG_PENDING_BIT, Ordering::SeqCst);
                if slot.load_u32(0, Ordering::SeqCst) != Ok(HVMSG_NONE) {
                    return;
                }
                continue;
            }
            let more = inner.head.saturating_add(1) < inner.queue.len();
            let len = next.len.min(MAX_MESSAGE_SIZE);
            let _ = slot.write_bytes(PAYLOAD, next.payload.get(..len).unwrap_or(&[]));
            let _ = slot.write_u64(SENDER, 0);
            // `len` <= 240: the cast keeps it.
            let word = len as u32 | if more { MSG_PENDING_BIT } else { 0 };
            let _ = slot.store_u32(FLAGS_WORD, word, Ordering::SeqCst);
            let _ = slot.store_u32(0, VMBUS_MESSAGE_TYPE, Ordering::SeqCst);
            inner.head = inner.head.saturating_add(1);
            if inner.head >= inner.queue.len() {
                inner.queue = KVec::new();
                inner.head = 0;
            }
            self.interrupts.raise(CONNECT_CPU);
            return;
        }
    }
}

impl WorkFn for Hypervisor {
    /// Drains the message port; delivers a delayed message once it is
    /// due; offers the subchannels device models asked for.
    fn work(this: ArcBorrow<'_, Self>) {
        this.drain_port();
        while let Some((relid, count)) = this.requests.take() {
            if let Err(e) = this.with_host(|h, send| h.offer_subchannels(relid, count, &mut |m| send(m))) {
                pr_err!("sim: subchannels of relid {}: {:?}\n", relid, e);
            }
        }
        let mut guard = this.inner.lock();
        match guard.delayed {
            Some((msg, due)) if due <= now_ms() => {
                guard.delayed = None;
                if Self::push(&mut guard, msg).is_err() {
                    pr_err!("sim: the delayed message found the queue full\n");
                }
                this.deliver(&mut guard);
            }
            Some((_, due)) => {
                let left = due.saturating_sub(now_ms()).min(60_000) as u32;
                drop(guard);
                this.requests.kick_after(left.clamp(1, DELAY_POLL_MS));
            }
            None => {}
        }
    }
}

impl WorkFn for CrashServer {
    /// Serves the crash path until it is done: receives its post, and
    /// redelivers after its EOM. Busy-waits in 1 ms steps, counted, not
    /// timed: the crashing CPU may be the one that keeps jiffies.
    fn work(this: ArcBorrow<'_, Self>) {
        let hv = &this.hv;
        hv.crash.serving.store(true, Ordering::Release);
        for _ in 0..CRASH_SERVE_MS {
            if hv.crash.done.load(Ordering::Acquire) {
                break;
            }
            let posted = hv.crash.mailbox.lock().take();
            if let Some((connection_id, message)) = posted {
                let payload = message.payload.get(..message.len).unwrap_or(&[]);
                let r = hv.with_host(|host, send| {
                    host.receive(connection_id, payload, &mut |m| send(m));
                    Ok(())
                });
                if let Err(e) = r {
                    pr_err!("sim: the host's answer to the crash path was lost: {:?}\n", e);
                }
            }
            if hv.crash.eom.swap(false, Ordering::AcqRel) {
                let mut guard = hv.inner.lock();
                hv.deliver(&mut guard);
            }
            mdelay(1);
            cond_resched();
        }
        hv.crash.serving.store(false, Ordering::Release);
    }
}

impl crate::rust::base::debugfs::ControlHandler for Hypervisor {
    fn command(&self, input: &[u8]) -> Result {
        Hypervisor::command(self, input)
    }
}

/// The simulator as the connection's hypervisor backend.
impl crate::vmbus::hv::Hypervisor for Hypervisor {
    /// HvPostMessage: the message goes into the host's port, which the
    /// host drains a tick later ([`Hypervisor::drain_port`]); its answers
    /// queue for the slot. As on Hyper-V the hypercall fails, and nothing
    /// is received, when the host has no port at `connection_id` (`ENXIO`,
    /// `HV_STATUS_INVALID_CONNECTION_ID`) or when the port is full
    /// (`EAGAIN`, `HV_STATUS_INSUFFICIENT_BUFFERS`): [`PORT_SLOTS`]
    /// messages wait, or a fault says so (`fault post-busy=N`,
    /// `sim_post_busy=N`).
    fn post_message(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result {
        if message_type != VMBUS_MESSAGE_TYPE || payload.len() > MAX_MESSAGE_SIZE {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
            return Err(EINVAL);
        }
        {
            let mut inner = self.inner.lock();
            if !inner.host.listens_on(connection_id) {
                POSTS_NO_PORT.fetch_add(1, Ordering::Relaxed);
                return Err(ENXIO);
            }
            if inner.post_busy > 0 {
                inner.post_busy -= 1;
                POSTS_BUSY.fetch_add(1, Ordering::Relaxed);
                return Err(EAGAIN);
            }
            if inner.port.len() >= PORT_SLOTS {
                POSTS_BUSY.fetch_add(1, Ordering::Relaxed);
                return Err(EAGAIN);
            }
            if inner.silent {
                return Ok(());
            }
            let mut message = Queued {
                len: payload.len(),
                payload: [0; MAX_MESSAGE_SIZE],
            };
            if let Some(dst) = message.payload.get_mut(..payload.len()) {
                dst.copy_from_slice(payload);
            }
            inner.port.push((connection_id, message), GFP_KERNEL)?;
        }
        self.requests.kick_after(PORT_DRAIN_MS);
        Ok(())
    }

    /// HvSignalEvent: queues the signalled channel's host work.
    fn signal_event(&self, connection_id: u32) -> Result {
        SIGNALS.fetch_add(1, Ordering::Relaxed);
        if self.signals.signal(connection_id) {
            Ok(())
        } else {
            // Hyper-V answers a signal to a port that is not there with
            // HV_STATUS_INVALID_CONNECTION_ID.
            Err(EINVAL)
        }
    }

    /// The message page of [`CONNECT_CPU`].
    fn message_page(&self) -> SharedMem<'_> {
        self.page.shared()
    }

    /// The event flags page of `cpu`.
    fn event_page(&self, cpu: u32) -> Option<SharedMem<'_>> {
        self.interrupts.event_page(cpu)
    }

    fn all_cpus(&self) -> bool {
        true
    }

    /// The guest wrote the EOM MSR: try delivery again.
    fn end_of_message(&self) {
        let mut guard = self.inner.lock();
        self.deliver(&mut guard);
    }

    fn vp_index(&self, cpu: u32) -> u32 {
        cpu
    }

    /// The crash path's post: into [`CrashPort`]'s mailbox while the
    /// `crash-unload` command runs (a spinlock, no sleep); else refused,
    /// as no host serves it (a panic in a test guest goes on at once).
    fn post_message_atomic(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result {
        if !self.crash.armed.load(Ordering::Acquire) {
            return Err(EIO);
        }
        if message_type != VMBUS_MESSAGE_TYPE || payload.len() > MAX_MESSAGE_SIZE {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
            return Err(EINVAL);
        }
        let mut message = Queued { len: payload.len(), payload: [0; MAX_MESSAGE_SIZE] };
        if let Some(dst) = message.payload.get_mut(..payload.len()) {
            dst.copy_from_slice(payload);
        }
        let mut mailbox = self.crash.mailbox.lock();
        if mailbox.is_some() {
            POSTS_BUSY.fetch_add(1, Ordering::Relaxed);
            return Err(EAGAIN);
        }
        *mailbox = Some((connection_id, message));
        Ok(())
    }

    /// Only [`CONNECT_CPU`] has a message page here.
    fn message_page_of(&self, cpu: u32) -> Option<SharedMem<'_>> {
        (cpu == CONNECT_CPU).then(|| self.page.shared())
    }

    /// EOM with interrupts off: the crash server redelivers.
    fn end_of_message_local(&self) {
        self.crash.eom.store(true, Ordering::Release);
    }

    fn is_hyperv(&self) -> bool {
        false
    }

    /// Stops chaos, raising interrupts (waiting up to a second until none
    /// is in flight) and the delayed deliveries.
    fn stop(&self) {
        self.chaos.stop();
        let work = self.requests.work.lock().take();
        drop(work);
        let work = self.crash_work.lock().take();
        drop(work);
        self.interrupts.stop();
    }
}
