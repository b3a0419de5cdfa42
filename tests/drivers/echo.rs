// SPDX-License-Identifier: GPL-2.0
//! Test builds only: the driver of the simulator's echo device
//! ([`class::RUSTIC_ECHO`]), which drives a channel end to end before netvsc and
//! storvsc exist.
//!
//! Probe opens the channel (256 KiB rings each way), shares a 2 MiB buffer
//! with the host through a GPADL (as netvsc shares its send buffer) and
//! creates the debugfs control `/sys/kernel/debug/hv_rustic/echo<relid>`,
//! which takes one command per write:
//!
//! - `send COUNT FIRST LAST`: COUNT in-band packets, packet `i` carrying
//!   `FIRST + i % (LAST - FIRST + 1)` bytes of data (0..=65536) after a
//!   16-byte header (magic, length, sequence number); odd sequence numbers
//!   ask for a completion, which the host's echo answers as one.
//! - `gpa COUNT FIRST LAST`: the same, but each packet is GPA-direct: its
//!   bytes lie in a slot of the shared buffer, which the host maps by page
//!   number and echoes in-band.
//! - `complete COUNT`: COUNT packets the host answers with a packet that
//!   asks for a completion; the driver sends that completion.
//! - `retarget CPU`: moves the primary channel's interrupts to CPU.
//! - `subchannels N COUNT`: asks the host (over the primary channel) for N
//!   subchannels (at most 63: 64 channels, Linux's most for a NIC), opens
//!   them as they are offered, each on a
//!   CPU of its own, and sends COUNT packets spread over them. They stay
//!   open until the device goes.
//!
//! - `slow MS`: from now on every echo handler call (all devices) first
//!   sleeps MS ms (0: no more), so that a close finds one under way
//!   (counted in `echo_slow_started` and `echo_slow_finished`).
//!
//! A write returns when every echo is back and checked (type, transaction
//! id, order, length, every data byte), with `-EIO` on any mismatch and
//! `-ETIMEDOUT` if the echoes stop coming for 10 s.
//!
//! Counters in /sys/kernel/debug/hv_rustic/: `echo_sent`, `echo_received`,
//! `echo_bytes` (data bytes checked), `echo_errors`, `echo_late_handlers`
//! (handler calls still running after the driver's close of their
//! channel returned: a bus bug).

use crate::vmbus::channel::{Channel, ChannelHandler};
use crate::rust::base::errno::ETIMEDOUT;
use crate::rust::base::time::{msleep, now_ms};
use crate::vmbus::device::SharedBuffer;
use crate::vmbus_core::ring::{GpaBuffer, FLAG_COMPLETION_REQUESTED};
use crate::rust::base::debugfs::{Control, ControlHandler};
use crate::vmbus::device::{Device, Driver, OpenChannel};
use crate::vmbus_core::guid::{class, Guid};
use crate::vmbus_core::ring::{PacketInfo, PACKET_TYPE_COMPLETION, PACKET_TYPE_INBAND};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::c_str;
use kernel::prelude::*;
use kernel::new_mutex;
use kernel::sync::{Arc, Mutex};

const MAGIC: u32 = 0xec40_ec40;
/// The header magic of `complete` packets (the host's echo answers them
/// with a packet asking for a completion).
pub(crate) const MAGIC_COMPLETE: u32 = 0xc0de_ec40;
/// The header magic of a subchannel request (its length field is the
/// count; the host's echo asks the host for them).
pub(crate) const MAGIC_SUBCHANNELS: u32 = 0x5eb0_ec40;
/// The shared buffer: slots of 17 pages (64 KiB of data and the header).
const SHARED: usize = 2 * 1024 * 1024;
const SLOT: usize = 17 * 4096;
const SLOTS: u64 = (SHARED / SLOT) as u64;
/// `complete` requests outstanding at most.
const COMPLETE_WINDOW: u64 = 32;
const HEADER: usize = 16;
/// Most data bytes in one packet.
const MAX_DATA: usize = 65536;
const RING: usize = 256 * 1024;
/// Subchannels one device may ask for.
const MAX_SUBCHANNELS: usize = 63;
/// How long the sender waits for ring space, and for echoes to progress.
const SEND_TIMEOUT_MS: u32 = 10_000;

static SENT: AtomicU64 = AtomicU64::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);
static LATE_HANDLERS: AtomicU64 = AtomicU64::new(0);
static SLOW_STARTED: AtomicU64 = AtomicU64::new(0);
static SLOW_FINISHED: AtomicU64 = AtomicU64::new(0);
/// `slow MS`: how long each handler call sleeps first.
static SLOW_MS: AtomicU32 = AtomicU32::new(0);

/// Adds the counter files.
pub(crate) fn add_counters(control: &crate::vmbus::bus::Bus) {
    control.counter(c_str!("echo_sent"), &SENT);
    control.counter(c_str!("echo_received"), &RECEIVED);
    control.counter(c_str!("echo_bytes"), &BYTES);
    control.counter(c_str!("echo_errors"), &ERRORS);
    control.counter(c_str!("echo_late_handlers"), &LATE_HANDLERS);
    control.counter(c_str!("echo_slow_started"), &SLOW_STARTED);
    control.counter(c_str!("echo_slow_finished"), &SLOW_FINISHED);
}

/// The data byte at `i` of packet `seq`.
fn pattern(seq: u64, i: usize) -> u8 {
    (seq as u8).wrapping_mul(31).wrapping_add(i as u8)
}

/// Writes packet `seq` into `buf`: the header (magic, `len`, `seq`), then
/// `len` data bytes of its pattern; returns the packet.
fn fill_packet(buf: &mut [u8], magic: u32, seq: u64, len: usize) -> Result<&[u8]> {
    let packet = buf.get_mut(..HEADER + len).ok_or(EINVAL)?;
    let (header, data) = packet.split_at_mut(HEADER);
    let (h0, h1) = header.split_at_mut(8);
    h0.copy_from_slice(&(u64::from(magic) | (len as u64) << 32).to_le_bytes());
    h1.copy_from_slice(&seq.to_le_bytes());
    for (j, b) in data.iter_mut().enumerate() {
        *b = pattern(seq, j);
    }
    Ok(packet)
}

/// The receiving side: checks each echo against what was sent.
struct Receiver {
    relid: u32,
    /// The sequence number the next echo must carry.
    next: AtomicU64,
    received: AtomicU64,
    failed: AtomicBool,
    /// Set once the driver's close of this channel has returned.
    closed: AtomicBool,
}

impl Receiver {
    /// Waits until `target` echoes are back, or no progress for
    /// SEND_TIMEOUT_MS; `ENODEV` once `gone` is set.
    fn wait_for(&self, target: u64, gone: &AtomicBool) -> Result {
        let mut last_seen = self.received.load(Ordering::Acquire);
        let mut last_progress = now_ms();
        loop {
            if self.failed.load(Ordering::Relaxed) {
                return Err(EIO);
            }
            let got = self.received.load(Ordering::Acquire);
            if got >= target {
                return Ok(());
            }
            if got != last_seen {
                last_seen = got;
                last_progress = now_ms();
            } else if now_ms().saturating_sub(last_progress) > u64::from(SEND_TIMEOUT_MS) {
                pr_err!("echo {}: {} of {} echoes back; the rest stopped coming\n", self.relid, got, target);
                return Err(ETIMEDOUT());
            }
            if gone.load(Ordering::Relaxed) {
                return Err(ENODEV);
            }
            if kernel::current!().signal_pending() {
                return Err(EINTR);
            }
            msleep(1);
        }
    }

    fn new(relid: u32) -> Result<Arc<Self>> {
        Ok(Arc::new(
            Receiver {
                relid,
                next: AtomicU64::new(0),
                received: AtomicU64::new(0),
                failed: AtomicBool::new(false),
                closed: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?)
    }

    fn fail(&self, seq: u64, what: &str) {
        ERRORS.fetch_add(1, Ordering::Relaxed);
        if !self.failed.swap(true, Ordering::Relaxed) {
            pr_err!("echo {}: packet {}: {}\n", self.relid, seq, what);
        }
    }

    fn check(&self, channel: &Channel, info: &PacketInfo, bytes: &[u8]) {
        let expected = self.next.load(Ordering::Relaxed);
        let payload = info.payload(bytes);
        let word = |at: usize| -> u64 {
            let mut w = [0u8; 8];
            if let Some(b) = payload.get(at..at + 8) {
                w.copy_from_slice(b);
            }
            u64::from_le_bytes(w)
        };
        let head = word(0);
        let (magic, len) = (head as u32, (head >> 32) as usize);
        let seq = word(8);
        if magic == MAGIC_SUBCHANNELS {
            if seq != expected {
                return self.fail(expected, "subchannel request echo out of order");
            }
            self.next.store(expected + 1, Ordering::Relaxed);
            self.received.fetch_add(1, Ordering::Release);
            return;
        }
        if magic == MAGIC_COMPLETE {
            let asked = info.descriptor.flags & FLAG_COMPLETION_REQUESTED != 0;
            if seq != expected || info.descriptor.packet_type != PACKET_TYPE_INBAND || !asked {
                return self.fail(expected, "bad completion request");
            }
            // Never waits: this runs with the inbound ring locked.
            if channel.send_completion(seq, &[], 0).is_err() {
                return self.fail(seq, "cannot send the completion");
            }
            self.next.store(expected + 1, Ordering::Relaxed);
            self.received.fetch_add(1, Ordering::Release);
            RECEIVED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let want_type = if seq % 2 == 1 { PACKET_TYPE_COMPLETION } else { PACKET_TYPE_INBAND };
        if magic != MAGIC || payload.len() < HEADER + len {
            return self.fail(expected, "bad header or short payload");
        }
        if seq != expected || info.descriptor.transaction_id != seq {
            return self.fail(expected, "out of order or wrong transaction id");
        }
        if info.descriptor.packet_type != want_type {
            return self.fail(seq, "wrong packet type");
        }
        let data = payload.get(HEADER..HEADER + len).unwrap_or(&[]);
        if data.iter().enumerate().any(|(i, &b)| b != pattern(seq, i)) {
            return self.fail(seq, "data corrupted");
        }
        self.next.store(expected + 1, Ordering::Relaxed);
        self.received.fetch_add(1, Ordering::Release);
        RECEIVED.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(len as u64, Ordering::Relaxed);
    }
}

impl ChannelHandler for Receiver {
    fn on_event(&self, channel: &Channel) {
        let slow = SLOW_MS.load(Ordering::Relaxed);
        if slow > 0 {
            SLOW_STARTED.fetch_add(1, Ordering::SeqCst);
            // Process context: the echo handler is not softirq-safe.
            msleep(slow);
        }
        self.check_not_closed();
        self.drain(channel);
        self.check_not_closed();
        if slow > 0 {
            SLOW_FINISHED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Receiver {
    /// A handler call is under way after its channel's close returned.
    fn check_not_closed(&self) {
        if self.closed.load(Ordering::SeqCst) {
            LATE_HANDLERS.fetch_add(1, Ordering::Relaxed);
            pr_err!("echo {}: handler running after its channel was closed\n", self.relid);
        }
    }

    fn drain(&self, channel: &Channel) {
        // Batches of 64 with signals masked, until the ring is empty.
        loop {
            match channel.poll(64, |info, bytes| self.check(channel, info, bytes)) {
                Ok(true) => continue,
                Ok(false) => return,
                Err(_) => {
                    self.fail(self.next.load(Ordering::Relaxed), "channel failed");
                    return;
                }
            }
        }
    }
}

/// One bound echo device.
#[pin_data]
pub(crate) struct EchoDevice {
    rx: Arc<Receiver>,
    /// Open subchannels and their receivers (closed before the primary).
    #[pin]
    subs: Mutex<KVec<(OpenChannel, Arc<Receiver>)>>,
    open: OpenChannel,
    shared: SharedBuffer,
    /// Sequence number of the next packet sent.
    sent: AtomicU64,
    rescinded: AtomicBool,
    /// One sender at a time.
    busy: AtomicBool,
}

impl EchoDevice {
    /// Sends COUNT packets of `kind`, then waits for every echo.
    fn send(&self, kind: Kind, count: u64, first: usize, last: usize) -> Result {
        if first > last || last > MAX_DATA {
            return Err(EINVAL);
        }
        let mut buf = KVec::from_elem(0u8, HEADER + last, GFP_KERNEL)?;
        let span = (last - first + 1) as u64;
        let channel = self.open.channel();
        for i in 0..count {
            self.check_going_on()?;
            let seq = self.sent.load(Ordering::Relaxed);
            let len = match kind {
                Kind::Complete => 0,
                _ => first + i.checked_rem(span).unwrap_or(0) as usize,
            };
            let magic = if kind == Kind::Complete { MAGIC_COMPLETE } else { MAGIC };
            let packet = fill_packet(&mut buf, magic, seq, len)?;
            match kind {
                Kind::Inband => channel.send_inband(seq, seq % 2 == 1, &[packet], SEND_TIMEOUT_MS)?,
                Kind::Complete => {
                    // The receiver sends its completions into this same
                    // ring and must not wait (it holds the inbound ring),
                    // so few requests may be outstanding: their answers
                    // always find room.
                    self.wait_received(seq.saturating_sub(COMPLETE_WINDOW))?;
                    channel.send_inband(seq, false, &[packet], SEND_TIMEOUT_MS)?
                }
                Kind::Gpa => {
                    // A slot is free again once the echo of its last
                    // packet is back.
                    let reuse = seq.saturating_sub(SLOTS - 1);
                    self.wait_received(reuse)?;
                    let slot = seq.checked_rem(SLOTS).unwrap_or(0) as usize * SLOT;
                    let buffer = self.shared.buffer().ok_or(ENODEV)?;
                    buffer.write(slot, packet)?;
                    let mut pfns = [0u64; SLOT / 4096];
                    let pages = (HEADER + len).div_ceil(4096);
                    for (k, pfn) in pfns.iter_mut().enumerate().take(pages) {
                        *pfn = buffer.pfn(slot / 4096 + k).ok_or(EINVAL)?;
                    }
                    let range = GpaBuffer {
                        byte_offset: 0,
                        byte_count: (HEADER + len) as u32,
                        pfns: pfns.get(..pages).ok_or(EINVAL)?,
                    };
                    channel.send_gpa_direct(seq, seq % 2 == 1, &[range], &[], SEND_TIMEOUT_MS)?;
                }
            }
            self.sent.store(seq + 1, Ordering::Relaxed);
            SENT.fetch_add(1, Ordering::Relaxed);
        }
        self.wait_received(self.sent.load(Ordering::Relaxed))
    }

    /// `ENODEV` once the device is rescinded, `EINTR` when the writer was
    /// signalled (a killed test must not leave a sender holding the module).
    fn check_going_on(&self) -> Result {
        if self.rescinded.load(Ordering::Relaxed) {
            return Err(ENODEV);
        }
        if kernel::current!().signal_pending() {
            return Err(EINTR);
        }
        Ok(())
    }

    /// Waits until `target` echoes are back on the primary channel.
    fn wait_received(&self, target: u64) -> Result {
        self.rx.wait_for(target, &self.rescinded)
    }
}

impl EchoDevice {
    /// Asks for `n` subchannels, opens them and spreads `count` checked
    /// round trips over them.
    fn subchannels(&self, n: usize, count: u64) -> Result {
        if n == 0 || n > MAX_SUBCHANNELS || !self.subs.lock().is_empty() {
            return Err(EINVAL);
        }
        // The request: an echo packet whose length field is the count.
        let seq = self.sent.load(Ordering::Relaxed);
        let mut request = [0u8; HEADER + MAX_SUBCHANNELS];
        let request = fill_packet(&mut request, MAGIC_SUBCHANNELS, seq, n)?;
        self.open.channel().send_inband(seq, false, &[request], SEND_TIMEOUT_MS)?;
        self.sent.store(seq + 1, Ordering::Relaxed);
        self.wait_received(seq + 1)?;

        let mut rxs = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            rxs.push(Receiver::new(self.rx.relid)?, GFP_KERNEL)?;
        }
        let handler = |i: usize| -> Result<Arc<dyn ChannelHandler>> {
            let rx: Arc<dyn ChannelHandler> = rxs.get(i).cloned().ok_or(EINVAL)?;
            Ok(rx)
        };
        let opened = self.open.subchannel_opener().open(n, RING, RING, &handler, SEND_TIMEOUT_MS, &|| false)?;
        let mut buf = KVec::from_elem(0u8, HEADER + 1024, GFP_KERNEL)?;
        let mut sent = KVec::from_elem(0u64, n, GFP_KERNEL)?;
        for i in 0..count {
            self.check_going_on()?;
            let k = i.checked_rem(n as u64).unwrap_or(0) as usize;
            let (Some(sub), Some(seq)) = (opened.get(k), sent.get_mut(k)) else {
                return Err(EINVAL);
            };
            let len = i.checked_rem(1025).unwrap_or(0) as usize;
            let packet = fill_packet(&mut buf, MAGIC, *seq, len)?;
            sub.channel().send_inband(*seq, *seq % 2 == 1, &[packet], SEND_TIMEOUT_MS)?;
            *seq += 1;
            SENT.fetch_add(1, Ordering::Relaxed);
        }
        for (rx, &want) in rxs.iter().zip(sent.iter()) {
            rx.wait_for(want, &self.rescinded)?;
        }
        let mut subs = self.subs.lock();
        for (open, rx) in opened.into_iter().zip(rxs.into_iter()) {
            subs.push((open, rx), GFP_KERNEL)?;
        }
        Ok(())
    }
}

/// What a command sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inband,
    Gpa,
    Complete,
}

/// Parses a decimal number.
fn number(word: Option<&str>) -> Result<u64> {
    word.and_then(|w| w.parse().ok()).ok_or(EINVAL)
}

impl ControlHandler for EchoDevice {
    fn command(&self, input: &[u8]) -> Result {
        let text = core::str::from_utf8(input).map_err(|_| EINVAL)?.trim();
        let mut words = text.split_ascii_whitespace();
        let kind = match words.next() {
            Some("send") => Kind::Inband,
            Some("gpa") => Kind::Gpa,
            Some("complete") => Kind::Complete,
            Some("slow") => {
                let ms = u32::try_from(number(words.next())?).map_err(|_| EINVAL)?;
                SLOW_MS.store(ms.min(10_000), Ordering::Relaxed);
                return Ok(());
            }
            Some("retarget") => {
                let cpu = u32::try_from(number(words.next())?).map_err(|_| EINVAL)?;
                return self.open.set_target_cpu(cpu);
            }
            Some("subchannels") => {
                let n = number(words.next())? as usize;
                let count = number(words.next())?;
                if words.next().is_some() {
                    return Err(EINVAL);
                }
                if self.busy.swap(true, Ordering::Acquire) {
                    return Err(EBUSY);
                }
                let r = self.subchannels(n, count);
                self.busy.store(false, Ordering::Release);
                return r;
            }
            _ => return Err(EINVAL),
        };
        let count = number(words.next())?;
        let (first, last) = match kind {
            Kind::Complete => (0, 0),
            _ => (number(words.next())? as usize, number(words.next())? as usize),
        };
        if words.next().is_some() {
            return Err(EINVAL);
        }
        if self.busy.swap(true, Ordering::Acquire) {
            return Err(EBUSY);
        }
        let r = self.send(kind, count, first, last);
        self.busy.store(false, Ordering::Release);
        r
    }
}

/// What the driver keeps per device: the control file, then the device
/// (the control goes first, so no writer is left when the channel closes).
pub(crate) struct EchoData {
    control: Option<Control<EchoDevice>>,
    dev: Arc<EchoDevice>,
}

impl Drop for EchoData {
    fn drop(&mut self) {
        drop(self.control.take());
    }
}

/// The relids the driver names a control for (two digits): the
/// simulator's echo relids 30..33 and those a hot-add may name.
const FIRST_NAMED: u32 = 10;
const NAMED: usize = 90;

/// Control file names `echo<relid>` with NUL, by relid - [`FIRST_NAMED`].
static NAMES: [[u8; 7]; NAMED] = names();

const fn names() -> [[u8; 7]; NAMED] {
    let mut t = [[0u8; 7]; NAMED];
    let mut i = 0;
    while i < NAMED {
        let relid = FIRST_NAMED as usize + i;
        // PANIC: compile-time evaluation, `i < NAMED`.
        t[i] = [b'e', b'c', b'h', b'o', b'0' + (relid / 10) as u8, b'0' + (relid % 10) as u8, 0];
        i += 1;
    }
    t
}

/// The control file name of channel `relid`, if it has one.
fn control_name(relid: u32) -> Option<&'static CStr> {
    let i = relid.checked_sub(FIRST_NAMED)?;
    CStr::from_bytes_with_nul(NAMES.get(i as usize)?).ok()
}

/// The echo driver.
pub(crate) struct EchoDriver;

impl Driver for EchoDriver {
    type Data = KBox<EchoData>;
    const NAME: &'static CStr = c_str!("rustic_echo");
    const CLASS_IDS: &'static [Guid] = &[class::RUSTIC_ECHO];

    fn probe(dev: &Device<'_>) -> Result<Self::Data> {
        let relid = dev.offer().relid;
        let name = control_name(relid).ok_or(ENODEV)?;
        let rx = Receiver::new(relid)?;
        let device = dev.handle();
        let open = device.open_channel(RING, RING, rx.clone())?;
        let shared = device.share_buffer(SHARED)?;
        let echo = Arc::pin_init(
            pin_init!(EchoDevice {
                rx,
                subs <- new_mutex!(KVec::new(), "echo_subchannels"),
                open,
                shared,
                sent: AtomicU64::new(0),
                rescinded: AtomicBool::new(false),
                busy: AtomicBool::new(false),
            }),
            GFP_KERNEL,
        )?;
        let control = Control::new(name, echo.clone())?;
        pr_info!(
            "echo: relid {} open on CPU {}, buffer GPADL {:#x}\n",
            relid,
            dev.offer().target_cpu,
            echo.shared.handle()
        );
        Ok(KBox::new(EchoData { control: Some(control), dev: echo }, GFP_KERNEL)?)
    }

    fn remove(_dev: &Device<'_>, data: Self::Data) {
        data.dev.rescinded.store(true, Ordering::Relaxed);
        let rx = data.dev.rx.clone();
        let subs = {
            let subs = data.dev.subs.lock();
            let mut rxs = KVec::new();
            for (_, sub_rx) in subs.iter() {
                let _ = rxs.push(sub_rx.clone(), GFP_KERNEL);
            }
            rxs
        };
        // The last reference to the device: its channels close here.
        drop(data);
        rx.closed.store(true, Ordering::SeqCst);
        for sub in subs.iter() {
            sub.closed.store(true, Ordering::SeqCst);
        }
    }

    fn rescind(_dev: &Device<'_>, data: &EchoData) {
        // Senders stop now rather than at their timeout.
        data.dev.rescinded.store(true, Ordering::Relaxed);
        data.dev.open.channel().mark_closed();
    }
}
