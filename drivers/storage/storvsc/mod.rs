// SPDX-License-Identifier: GPL-2.0
//! storvsc: the driver of Hyper-V's synthetic storage controllers (SCSI
//! ba6163d9-04a1-4d29-b605-72e2ffb1dc7f, the IDE accelerator
//! 32412632-86cb-44a2-9b5c-50d1417354f5 and Fibre Channel
//! 2f9bcc4a-0069-4af3-b76b-6fd0be528cda), on RustIC's VMBus, with the
//! kernel-independent protocol of `storvsc_core` (`drivers/storage/proto`)
//! and a `Scsi_Host` from the shim under `rust/scsi/`.
//!
//! Probe, as the C hv_storvsc does it: open the channel (128 KiB rings);
//! run VSTOR's initialization (BEGIN_INITIALIZATION, versions 6.2, 6.0,
//! 5.1 newest first, QUERY_PROPERTIES, FCHBA_DATA on Fibre Channel,
//! END_INITIALIZATION), each answer awaited at most 180 s; then a SCSI host
//! with the class's limits and the host's transfer size, added and scanned.
//!
//! - A command goes out as EXECUTE_SRB with its data as one GPA-direct
//!   range straight from the scatterlist's pages (the shim's
//!   `virt_boundary_mask` makes every scatterlist one such range; no bounce
//!   copy). Its transaction id is its block-layer tag plus one; the SRB
//!   sent is kept with the command until its completion.
//! - A completion must carry the id of a command in flight (an unknown or
//!   repeated one is dropped and counted) and a whole COMPLETE_IO; its
//!   status and sense are judged against the SRB that was sent
//!   (`srb::complete_io`), never the host's copy of the CDB or length.
//! - Everything else the host sends that does not parse is dropped with a
//!   rate-limited message and counted ([`ERRORS`]).
//! - Rescind: the host will not answer any more; outstanding commands fail
//!   with `DID_NO_CONNECT`, as do new ones, so the SCSI host goes away
//!   without waiting.
//!
//! Not yet: subchannels (every command goes on the primary channel, and
//! `can_queue` is sized for it alone), the host's rescan and LUN removal
//! notices (logged), the host reset handler, Fibre Channel's transport
//! names, IDE's single-device add (the IDE host is scanned instead).

use crate::drivers::storage::proto::guest::{self, Class, HostEvent, Init, InitStep};
use crate::drivers::storage::proto::srb::{self, DataDirection, HostByte};
use crate::drivers::storage::proto::vstor::{Packet, Srb, Version};
use crate::rust::base::errno::ETIMEDOUT;
use crate::rust::base::time::{now_ms, RateLimit};
use crate::rust::base::work::BhOff;
use crate::rust::scsi::scsi_host::{Command, Direction, Limits, ScsiHost, ScsiOps};
use crate::vmbus::channel::{Channel, ChannelHandler};
use crate::vmbus::device::{Device, Driver, OpenChannel};
use crate::vmbus_core::guid::{class, Guid};
use crate::vmbus_core::ring::GpaBuffer;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, CondVarTimeoutResult, Mutex, SpinLock};
use kernel::{c_str, new_condvar, new_mutex, new_spinlock};

/// Bytes of each ring (`storvsc_ringbuffer_size`).
const RING: usize = 128 * 1024;
/// Packets read per poll before the handler polls again.
const POLL_BUDGET: usize = 64;

/// Bad input from the host, every controller's.
pub(crate) static ERRORS: AtomicU64 = AtomicU64::new(0);

/// Logs bad input from the host, at most every 200 ms, and counts it.
fn host_error(relid: u32, what: &str) {
    ERRORS.fetch_add(1, Ordering::Relaxed);
    static LIMIT: RateLimit = RateLimit::new(200);
    if LIMIT.allow() {
        pr_err!("storvsc: relid {}: {}; dropped\n", relid, what);
    }
}

/// `scmnd->result` with host byte `host` and a GOOD status.
fn host_byte(host: HostByte) -> u32 {
    srb::ScsiResult { host, status: srb::sam::GOOD }.raw()
}

/// A command the host has.
struct InFlight {
    cmd: Command,
    /// The SRB as sent: the completion is judged by it.
    sent: Srb,
}

/// One block-layer tag's state.
struct Slot {
    inflight: Option<InFlight>,
    /// Room for the page numbers of the tag's data (`sg_tablesize`).
    pfns: KVec<u64>,
}

/// The answer to the initialization request in flight.
struct Answer {
    awaited: bool,
    done: bool,
    bytes: [u8; 64],
    len: usize,
}

/// A controller: its channel, the commands in flight and the waiting
/// initialization request. The channel's handler and the SCSI host share it.
#[pin_data]
pub(crate) struct Controller {
    relid: u32,
    class: Class,
    /// The negotiated version's raw value; 0 until initialization is done.
    version: AtomicU16,
    /// The SCSI host's number, for the SRB's port.
    port: AtomicU16,
    /// The host rescinded the device (or it is being removed): commands
    /// fail at once.
    gone: AtomicBool,
    #[pin]
    channel: SpinLock<Option<Arc<Channel>>>,
    /// Per tag; taken with softirqs off (the channel's handler may run in
    /// a softirq in a later version; the poll holds them off anyway).
    #[pin]
    slots: SpinLock<KVec<Slot>>,
    #[pin]
    answer: SpinLock<Answer>,
    /// The initialization waiter sleeps on `wake` with this held.
    #[pin]
    sleep: Mutex<()>,
    #[pin]
    wake: CondVar,
    /// Completions dropped: unknown or repeated ids.
    stray: AtomicU64,
}

/// Runs `f` on the value behind a spinlock, softirqs off.
fn locked<T, R>(lock: &SpinLock<T>, f: impl FnOnce(&mut T) -> R) -> R {
    let _bh = BhOff::new();
    let mut guard = lock.lock();
    f(&mut guard)
}

impl Controller {
    fn new(relid: u32, class: Class) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Controller {
                relid,
                class,
                version: AtomicU16::new(0),
                port: AtomicU16::new(0),
                gone: AtomicBool::new(false),
                channel <- new_spinlock!(None, "storvsc_channel"),
                slots <- new_spinlock!(KVec::new(), "storvsc_slots"),
                answer <- new_spinlock!(Answer { awaited: false, done: false, bytes: [0; 64], len: 0 }, "storvsc_answer"),
                sleep <- new_mutex!((), "storvsc_sleep"),
                wake <- new_condvar!("storvsc_wake"),
                stray: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
    }

    fn version(&self) -> Option<Version> {
        Version::from_raw(self.version.load(Ordering::Acquire))
    }

    fn channel(&self) -> Option<Arc<Channel>> {
        locked(&self.channel, |c| c.clone())
    }

    /// Sends an initialization request and returns its answer's bytes
    /// (into `out`), waiting at most [`guest::TIMEOUT_SECS`].
    fn request(&self, packet: &Packet, out: &mut [u8; 64]) -> Result<usize> {
        let channel = self.channel().ok_or(ENODEV)?;
        locked(&self.answer, |a| {
            a.awaited = true;
            a.done = false;
            a.len = 0;
        });
        let bytes = packet.to_bytes();
        let size = self.version().map_or(bytes.len(), Version::packet_size).min(bytes.len());
        let sent = channel.send_inband(guest::INIT_TRANS_ID, true, &[bytes.get(..size).unwrap_or(&bytes)], 5000);
        if let Err(e) = sent {
            locked(&self.answer, |a| a.awaited = false);
            return Err(e);
        }
        let deadline = now_ms().saturating_add(u64::from(guest::TIMEOUT_SECS) * 1000);
        loop {
            let got = locked(&self.answer, |a| {
                if a.done {
                    a.awaited = false;
                    out.copy_from_slice(&a.bytes);
                    Some(a.len)
                } else {
                    None
                }
            });
            if let Some(len) = got {
                return Ok(len);
            }
            if self.gone.load(Ordering::Acquire) {
                locked(&self.answer, |a| a.awaited = false);
                return Err(ENODEV);
            }
            if now_ms() > deadline {
                locked(&self.answer, |a| a.awaited = false);
                pr_err!("storvsc: relid {}: the host did not answer in {} s\n", self.relid, guest::TIMEOUT_SECS);
                return Err(ETIMEDOUT());
            }
            // Woken by the answer; the timeout only bounds a missed wake-up.
            let mut guard = self.sleep.lock();
            if !locked(&self.answer, |a| a.done) {
                let waited = self.wake.wait_interruptible_timeout(&mut guard, kernel::time::msecs_to_jiffies(20));
                if matches!(waited, CondVarTimeoutResult::Signal { .. }) {
                    locked(&self.answer, |a| a.awaited = false);
                    return Err(EINTR);
                }
            }
        }
    }

    /// VSTOR's initialization sequence.
    fn initialize(&self) -> Result<guest::Negotiated> {
        let (mut init, first) = Init::start(self.class);
        let mut packet = first;
        let mut answer = [0u8; 64];
        loop {
            let len = self.request(&packet, &mut answer)?;
            match init.on_reply(answer.get(..len).unwrap_or(&[])) {
                InitStep::Send(next) => packet = next,
                InitStep::Done(negotiated) => return Ok(negotiated),
                InitStep::Failed(e) => {
                    pr_err!("storvsc: relid {}: initialization failed: {:?}\n", self.relid, e);
                    return Err(EIO);
                }
            }
        }
    }

    /// Makes one slot per tag, each with room for `pages` page numbers.
    fn make_slots(&self, tags: u32, pages: usize) -> Result {
        let mut slots = KVec::with_capacity(tags as usize, GFP_KERNEL)?;
        for _ in 0..tags {
            let pfns = KVec::from_elem(0u64, pages, GFP_KERNEL)?;
            slots.push(Slot { inflight: None, pfns }, GFP_KERNEL)?;
        }
        locked(&self.slots, |s| *s = slots);
        Ok(())
    }

    /// Fails every command in flight with `DID_NO_CONNECT` (the host will
    /// not answer them) and every later one.
    fn fail_all(&self) {
        self.gone.store(true, Ordering::Release);
        loop {
            let next = locked(&self.slots, |s| s.iter_mut().find_map(|slot| slot.inflight.take()));
            let Some(f) = next else { break };
            f.cmd.done(host_byte(HostByte::NoConnect), &[], f.sent.data_transfer_length);
        }
    }

    /// One packet from the host.
    fn on_packet(&self, trans_id: u64, payload: &[u8]) {
        let tags = locked(&self.slots, |s| s.len());
        // CAST: the slots were made from a u32 count.
        let event = match guest::host_packet(payload, trans_id, self.version(), tags as u32) {
            Ok(e) => e,
            Err(e) => {
                if !self.gone.load(Ordering::Relaxed) {
                    host_error(self.relid, match e {
                        crate::drivers::storage::proto::wire::Error::BadField(f) => f,
                        _ => "malformed packet",
                    });
                }
                return;
            }
        };
        match event {
            HostEvent::Init(_) | HostEvent::Reset(_) => {
                let taken = locked(&self.answer, |a| {
                    if !a.awaited || a.done {
                        return false;
                    }
                    let n = payload.len().min(a.bytes.len());
                    a.bytes = [0; 64];
                    if let (Some(d), Some(s)) = (a.bytes.get_mut(..n), payload.get(..n)) {
                        d.copy_from_slice(s);
                    }
                    a.len = n;
                    a.done = true;
                    true
                });
                if taken {
                    self.wake.notify_all();
                } else {
                    host_error(self.relid, "an answer with no request waiting");
                }
            }
            HostEvent::Completion { tag, packet } => {
                let inflight = locked(&self.slots, |s| s.get_mut(tag as usize).and_then(|slot| slot.inflight.take()));
                let Some(f) = inflight else {
                    self.stray.fetch_add(1, Ordering::Relaxed);
                    if !self.gone.load(Ordering::Relaxed) {
                        host_error(self.relid, "a completion for no command in flight");
                    }
                    return;
                };
                let outcome = srb::complete_io(&f.sent, &packet.srb(), self.class.is_fc());
                let sense = outcome.sense.get(..usize::from(outcome.sense_len)).unwrap_or(&[]);
                f.cmd.done(outcome.result.raw(), sense, outcome.resid);
                if outcome.followup != srb::Followup::None {
                    pr_info!("storvsc: relid {}: the host asks for {:?} (not handled yet)\n", self.relid, outcome.followup);
                }
            }
            HostEvent::Rescan => {
                pr_info!("storvsc: relid {}: the host's LUNs changed (rescan not handled yet)\n", self.relid);
            }
            HostEvent::FcNames(_) => {}
        }
    }

    /// Sends `cmd`; `Err` hands it back (no room in the ring now).
    fn send(&self, cmd: Command) -> core::result::Result<(), Command> {
        let fail = |cmd: Command, host: HostByte| {
            cmd.done(host_byte(host), &[], 0);
            Ok(())
        };
        let (Some(version), Some(channel)) = (self.version(), self.channel()) else {
            return fail(cmd, HostByte::NoConnect);
        };
        let info = cmd.info();
        let cdb = info.cdb.get(..info.cdb_len).unwrap_or(&[]);
        let opcode = cdb.first().copied().unwrap_or(0);
        if !srb::command_allowed(version, opcode) {
            cmd.done(srb::filtered_result().raw(), &[], info.len);
            return Ok(());
        }
        let direction = match info.direction {
            Direction::Write => DataDirection::Write,
            Direction::Read => DataDirection::Read,
            Direction::None => DataDirection::None,
            Direction::Other => return fail(cmd, HostByte::Error),
        };
        let (Ok(path), Ok(target), Ok(lun)) = (u8::try_from(info.channel), u8::try_from(info.id), u8::try_from(info.lun)) else {
            return fail(cmd, HostByte::BadTarget);
        };
        let command = srb::Command {
            // CAST: the C driver puts the host number here; only its low
            // byte fits, and the host does not route by it.
            port: self.port.load(Ordering::Relaxed) as u8,
            path,
            target,
            lun,
            cdb,
            direction,
            data_len: if direction == DataDirection::None { 0 } else { info.len },
            tagged: info.tagged,
        };
        let Ok(packet) = srb::execute_srb(&command, version) else {
            return fail(cmd, HostByte::Error);
        };
        let bytes = packet.to_bytes();
        let payload = bytes.get(..version.packet_size()).unwrap_or(&bytes);
        let tid = guest::command_trans_id(info.tag);
        let _bh = BhOff::new();
        let mut slots = self.slots.lock();
        // Checked under the lock `fail_all` takes: no command slips in
        // after a rescind drained the slots.
        if self.gone.load(Ordering::Acquire) {
            drop(slots);
            return fail(cmd, HostByte::NoConnect);
        }
        let Some(slot) = slots.get_mut(info.tag as usize) else {
            drop(slots);
            return fail(cmd, HostByte::Error);
        };
        if slot.inflight.is_some() {
            drop(slots);
            return fail(cmd, HostByte::Error);
        }
        let pages = if command.data_len == 0 {
            None
        } else {
            match cmd.pages(&mut slot.pfns) {
                Ok((n, offset)) => Some((n, offset)),
                Err(_) => {
                    drop(slots);
                    return fail(cmd, HostByte::Error);
                }
            }
        };
        slot.inflight = Some(InFlight { cmd, sent: packet.srb() });
        // Sent under the slots' lock, so the page numbers stay put and the
        // completion (which takes the lock) finds the command in its slot.
        let sent = match pages {
            None => channel.send_inband(tid, true, &[payload], 0),
            Some((n, offset)) => {
                let range = GpaBuffer {
                    byte_offset: offset,
                    byte_count: command.data_len,
                    pfns: slot.pfns.get(..n).unwrap_or(&[]),
                };
                channel.send_gpa_direct(tid, true, &[range], &[payload], 0)
            }
        };
        let Err(e) = sent else { return Ok(()) };
        let Some(f) = slot.inflight.take() else { return Ok(()) };
        drop(slots);
        if e == EAGAIN {
            return Err(f.cmd);
        }
        fail(f.cmd, HostByte::NoConnect)
    }
}

impl ScsiOps for Controller {
    fn queuecommand(&self, cmd: Command) -> core::result::Result<(), Command> {
        self.send(cmd)
    }
}

/// The channel's handler: drains the ring into [`Controller::on_packet`].
struct Handler(Arc<Controller>);

impl ChannelHandler for Handler {
    fn on_event(&self, channel: &Channel) {
        loop {
            match channel.poll(POLL_BUDGET, |info, bytes| {
                self.0.on_packet(info.descriptor.transaction_id, info.payload(bytes));
            }) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(_) => break,
            }
        }
    }
}

/// What the driver keeps per controller.
pub(crate) struct StorvscData {
    ctrl: Arc<Controller>,
    host: Option<ScsiHost<Controller>>,
    channel: Option<OpenChannel>,
}

impl Drop for StorvscData {
    fn drop(&mut self) {
        // The devices go first (sd may still send a SYNCHRONIZE CACHE); then
        // nothing is left for the host, and the channel closes.
        if let Some(host) = &self.host {
            host.remove();
        }
        self.ctrl.fail_all();
        locked(&self.ctrl.channel, |c| *c = None);
        drop(self.channel.take());
        drop(self.host.take());
    }
}

/// The controller class of a device class GUID.
fn class_of(guid: &Guid) -> Option<Class> {
    if *guid == class::SCSI {
        Some(Class::Scsi)
    } else if *guid == class::IDE {
        Some(Class::Ide)
    } else if *guid == class::FIBRE_CHANNEL {
        Some(Class::Fc)
    } else {
        None
    }
}

/// The storvsc driver.
pub(crate) struct StorvscDriver;

impl Driver for StorvscDriver {
    type Data = KBox<StorvscData>;
    const NAME: &'static CStr = c_str!("hv_storvsc");
    const CLASS_IDS: &'static [Guid] = &[class::SCSI, class::IDE, class::FIBRE_CHANNEL];

    fn probe(dev: &Device<'_>) -> Result<Self::Data> {
        let relid = dev.offer().relid;
        let class = class_of(&dev.offer().class).ok_or(ENODEV)?;
        let ctrl = Controller::new(relid, class)?;
        let mut data = KBox::new(StorvscData { ctrl: ctrl.clone(), host: None, channel: None }, GFP_KERNEL)?;
        let handler = Arc::new(Handler(ctrl.clone()), GFP_KERNEL)?;
        let channel = dev.handle().open_channel(RING, RING, handler)?;
        locked(&ctrl.channel, |c| *c = Some(channel.channel().clone()));
        data.channel = Some(channel);

        let negotiated = ctrl.initialize()?;
        let version = negotiated.version;
        let limits = guest::host_limits(class, negotiated.properties.max_transfer_bytes).map_err(|_| EINVAL)?;
        // CAST: RING is 128 KiB.
        let can_queue = guest::can_queue(guest::requests_per_channel(RING as u32), 0).max(1);
        ctrl.make_slots(can_queue, usize::from(limits.sg_tablesize))?;
        ctrl.version.store(version.raw(), Ordering::Release);
        let host = ScsiHost::new(
            ctrl.clone(),
            &Limits {
                max_lun: limits.max_lun,
                max_id: limits.max_id,
                max_channel: limits.max_channel,
                max_cmd_len: limits.max_cmd_len,
                max_sectors: limits.max_sectors,
                sg_tablesize: limits.sg_tablesize,
                can_queue,
                cmd_per_lun: guest::CMD_PER_LUN,
                timeout_s: guest::TIMEOUT_SECS,
                write_same: version.allows_write_same(),
            },
        )?;
        // CAST: the low 16 bits; the SRB takes the low 8.
        ctrl.port.store(host.host_no() as u16, Ordering::Relaxed);
        let host_no = host.host_no();
        data.host = Some(host);
        if let Some(host) = &data.host {
            host.add(dev.device())?;
        }
        pr_info!(
            "storvsc: relid {}: host{}, VSTOR {:#x}, {} KiB transfers, {} commands\n",
            relid,
            host_no,
            version.raw(),
            limits.max_sectors / 2,
            can_queue
        );
        Ok(data)
    }

    fn remove(_dev: &Device<'_>, data: Self::Data) {
        drop(data);
    }

    fn rescind(_dev: &Device<'_>, data: &StorvscData) {
        // The host will answer nothing more: fail what it has and what
        // comes; remove follows.
        data.ctrl.fail_all();
        if let Some(channel) = data.ctrl.channel() {
            channel.mark_closed();
        }
    }
}

