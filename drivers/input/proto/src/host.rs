//! The simulated host's keyboard and mouse devices, written from the
//! host's side: they answer the guest's protocol requests as Hyper-V does,
//! send the mouse's device info with an absolute-pointer report descriptor
//! laid out like Hyper-V's, turn typed keys, pointer moves, buttons and
//! wheel turns into messages, and inject the faults a lying host would.
//!
//! Sans-I/O and allocation-free: a guest packet goes in through
//! `on_guest_packet`, injected input queues messages, and the caller
//! drains the queue with `pop`, which writes one message into the caller's
//! buffer (the ring packet's payload).

use super::keyboard::{self, Keystroke, IS_BREAK, IS_E0, IS_E1, IS_UNICODE};
use super::mouse::{self, DEVICE_INFO_SIZE, HID_HEADER_SIZE, PIPE_HEADER_SIZE};
use super::wire::{Error, Result, Writer};

/// Messages a device holds before the guest drains them.
pub const QUEUE_LEN: usize = 64;

/// A fixed-capacity FIFO.
#[derive(Clone, Debug)]
struct Queue<T: Copy> {
    items: [Option<T>; QUEUE_LEN],
    head: usize,
    len: usize,
}

impl<T: Copy> Queue<T> {
    fn new() -> Self {
        Queue {
            items: [None; QUEUE_LEN],
            head: 0,
            len: 0,
        }
    }

    fn room(&self) -> usize {
        QUEUE_LEN.saturating_sub(self.len)
    }

    fn push(&mut self, v: T) -> Result<()> {
        if self.len >= QUEUE_LEN {
            return Err(Error::BufferTooSmall {
                need: QUEUE_LEN + 1,
                len: QUEUE_LEN,
            });
        }
        // INVARIANT: head < QUEUE_LEN and len <= QUEUE_LEN, so neither
        // sum overflows; saturating and wrapping keep panic paths out.
        let at = self.head.wrapping_add(self.len) % QUEUE_LEN;
        if let Some(slot) = self.items.get_mut(at) {
            *slot = Some(v);
        }
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    fn peek(&self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.items.get(self.head).copied().flatten()
    }

    fn drop_front(&mut self) {
        if self.len > 0 {
            if let Some(slot) = self.items.get_mut(self.head) {
                *slot = None;
            }
            self.head = self.head.wrapping_add(1) % QUEUE_LEN;
            self.len = self.len.saturating_sub(1);
        }
    }
}

/// Writes the queue's first message with `enc`; the message stays queued if
/// the buffer is too small, so the caller can retry with a larger one.
fn pop_with<T: Copy>(
    q: &mut Queue<T>,
    buf: &mut [u8],
    enc: impl FnOnce(T, &mut [u8]) -> Result<usize>,
) -> Option<Result<usize>> {
    let m = q.peek()?;
    let r = enc(m, buf);
    if !matches!(r, Err(Error::BufferTooSmall { .. })) {
        q.drop_front();
    }
    Some(r)
}

/// The set-1 prefix of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// A plain key.
    None,
    /// An extended key (arrows, right Ctrl/Alt, keypad Enter...).
    E0,
    /// The 0xE1 prefix (only Pause uses it).
    E1,
}

/// A key as the host names it: a set-1 make code and its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// Set-1 make code, below 0x80.
    pub code: u8,
    /// Prefix.
    pub prefix: Prefix,
}

impl Key {
    /// A plain key.
    pub const fn plain(code: u8) -> Key {
        Key {
            code,
            prefix: Prefix::None,
        }
    }

    /// An extended (0xE0) key.
    pub const fn extended(code: u8) -> Key {
        Key {
            code,
            prefix: Prefix::E0,
        }
    }

    fn keystroke(self, release: bool) -> Keystroke {
        let prefix = match self.prefix {
            Prefix::None => 0,
            Prefix::E0 => IS_E0,
            Prefix::E1 => IS_E1,
        };
        Keystroke {
            make_code: u16::from(self.code),
            info: prefix | if release { IS_BREAK } else { 0 },
        }
    }
}

/// Faults the keyboard injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyboardFault {
    /// A keystroke cut after its make code (6 bytes).
    Short,
    /// A keystroke padded past the protocol's 256-byte maximum.
    Oversized,
    /// A message of an unknown type (0x55).
    UnknownType,
    /// A keystroke whose make code does not fit a scancode byte (0x1e1e).
    WideMakeCode,
    /// A keystroke whose make code has the release bit set (0x9e).
    ReleaseBitMakeCode,
    /// A keystroke flagged both E0 and E1.
    BothPrefixes,
    /// A protocol response when none was asked for.
    ResponseAgain,
    /// A message type only the guest sends (an LED message).
    GuestOnlyType,
    /// A keystroke (A press) sent before the protocol response.
    KeyBeforeResponse,
}

#[derive(Clone, Copy, Debug)]
enum KbdOut {
    Msg(keyboard::Message),
    Fault(KeyboardFault),
}

/// Counters of a simulated device, for tests and debugfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Guest packets handled.
    pub received: u64,
    /// Guest packets refused.
    pub bad: u64,
    /// Messages written by `pop`.
    pub sent: u64,
    /// Faults injected.
    pub faults: u64,
}

/// The simulated synthetic keyboard.
#[derive(Clone, Debug)]
pub struct KeyboardHost {
    accept: bool,
    connected: bool,
    leds: u16,
    queue: Queue<KbdOut>,
    counters: Counters,
}

impl KeyboardHost {
    /// A keyboard that accepts version 1.0 if `accept`.
    pub fn new(accept: bool) -> KeyboardHost {
        KeyboardHost {
            accept,
            connected: false,
            leds: 0,
            queue: Queue::new(),
            counters: Counters::default(),
        }
    }

    /// Whether the guest has been answered with an accepted version.
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// The LED flags the guest last sent.
    pub fn leds(&self) -> u16 {
        self.leds
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Handles one guest packet: a protocol request is answered (accepted
    /// only for version 1.0 and if this keyboard accepts), an LED message
    /// is recorded. Anything else is an error and changes nothing.
    pub fn on_guest_packet(&mut self, b: &[u8]) -> Result<()> {
        self.counters.received = self.counters.received.wrapping_add(1);
        let r = self.handle(b);
        if r.is_err() {
            self.counters.bad = self.counters.bad.wrapping_add(1);
        }
        r
    }

    fn handle(&mut self, b: &[u8]) -> Result<()> {
        match keyboard::Message::parse(b, keyboard::Sender::Guest)? {
            keyboard::Message::ProtocolRequest { version } => {
                let ok = self.accept && version == keyboard::VERSION;
                let status = if ok { keyboard::PROTOCOL_ACCEPTED } else { 0 };
                self.queue
                    .push(KbdOut::Msg(keyboard::Message::ProtocolResponse { status }))?;
                self.connected = ok;
                Ok(())
            }
            keyboard::Message::LedIndicators { flags } => {
                self.leds = flags;
                Ok(())
            }
            _ => Err(Error::WrongSender(0)),
        }
    }

    fn push_strokes(&mut self, strokes: &[Keystroke]) -> Result<()> {
        if !self.connected {
            return Err(Error::Unexpected(keyboard::MSG_EVENT));
        }
        if self.queue.room() < strokes.len() {
            return Err(Error::BufferTooSmall {
                need: strokes.len(),
                len: self.queue.room(),
            });
        }
        for k in strokes {
            self.queue.push(KbdOut::Msg(keyboard::Message::Event(*k)))?;
        }
        Ok(())
    }

    fn key_strokes(&mut self, key: Key, down: bool, up: bool) -> Result<()> {
        if key.code >= 0x80 {
            return Err(Error::BadField("code"));
        }
        match (down, up) {
            (true, true) => self.push_strokes(&[key.keystroke(false), key.keystroke(true)]),
            (true, false) => self.push_strokes(&[key.keystroke(false)]),
            _ => self.push_strokes(&[key.keystroke(true)]),
        }
    }

    /// Presses `key`.
    pub fn press(&mut self, key: Key) -> Result<()> {
        self.key_strokes(key, true, false)
    }

    /// Releases `key`.
    pub fn release(&mut self, key: Key) -> Result<()> {
        self.key_strokes(key, false, true)
    }

    /// Presses and releases `key`.
    pub fn tap(&mut self, key: Key) -> Result<()> {
        self.key_strokes(key, true, true)
    }

    /// Presses and releases Pause, which a PC keyboard sends as E1 1D 45
    /// E1 9D C5: E1-prefixed Ctrl then NumLock, and the same released.
    pub fn pause(&mut self) -> Result<()> {
        let ctrl = Key {
            code: 0x1d,
            prefix: Prefix::E1,
        };
        let numlock = Key::plain(0x45);
        self.push_strokes(&[
            ctrl.keystroke(false),
            numlock.keystroke(false),
            ctrl.keystroke(true),
            numlock.keystroke(true),
        ])
    }

    /// Types one UTF-16 unit as a unicode keystroke.
    pub fn unicode(&mut self, unit: u16) -> Result<()> {
        self.push_strokes(&[Keystroke {
            make_code: unit,
            info: IS_UNICODE,
        }])
    }

    /// Queues a fault message.
    pub fn fault(&mut self, f: KeyboardFault) -> Result<()> {
        self.queue.push(KbdOut::Fault(f))?;
        self.counters.faults = self.counters.faults.wrapping_add(1);
        Ok(())
    }

    /// Writes the next queued message into `buf`: its length, `None` when
    /// the queue is empty. A buffer too small keeps the message queued.
    pub fn pop(&mut self, buf: &mut [u8]) -> Option<Result<usize>> {
        let r = pop_with(&mut self.queue, buf, encode_kbd);
        if let Some(Ok(_)) = r {
            self.counters.sent = self.counters.sent.wrapping_add(1);
        }
        r
    }
}

fn encode_kbd(m: KbdOut, buf: &mut [u8]) -> Result<usize> {
    let key_a = Key::plain(0x1e);
    let f = match m {
        KbdOut::Msg(msg) => return msg.encode(buf),
        KbdOut::Fault(f) => f,
    };
    let event = |k: Keystroke, buf: &mut [u8]| keyboard::Message::Event(k).encode(buf);
    match f {
        KeyboardFault::Short => {
            let mut w = Writer::new(buf, 6);
            w.u32(0, keyboard::MSG_EVENT);
            w.u16(4, 0x1e);
            w.finish()
        }
        KeyboardFault::Oversized => {
            let n = event(key_a.keystroke(false), buf)?;
            let mut w = Writer::new(buf, 0);
            w.zero(n, (keyboard::MAX_MESSAGE_SIZE + 8).saturating_sub(n));
            w.finish()
        }
        KeyboardFault::UnknownType => {
            let mut w = Writer::new(buf, keyboard::KEYSTROKE_SIZE);
            w.u32(0, 0x55);
            w.finish()
        }
        KeyboardFault::WideMakeCode => event(
            Keystroke {
                make_code: 0x1e1e,
                info: 0,
            },
            buf,
        ),
        KeyboardFault::ReleaseBitMakeCode => event(
            Keystroke {
                make_code: 0x9e,
                info: 0,
            },
            buf,
        ),
        KeyboardFault::BothPrefixes => event(
            Keystroke {
                make_code: 0x1d,
                info: IS_E0 | IS_E1,
            },
            buf,
        ),
        KeyboardFault::ResponseAgain => keyboard::Message::ProtocolResponse {
            status: keyboard::PROTOCOL_ACCEPTED,
        }
        .encode(buf),
        KeyboardFault::GuestOnlyType => keyboard::Message::LedIndicators { flags: 7 }.encode(buf),
        KeyboardFault::KeyBeforeResponse => event(key_a.keystroke(false), buf),
    }
}

/// The report descriptor the simulated mouse sends: one report of 6
/// bytes, no report id; 5 buttons and 3 bits of padding, absolute X and Y
/// (16 bits each, 0 to 0x7fff), a relative wheel (8 bits, -127 to 127).
/// Like Hyper-V's, it starts Mouse / Pointer / Button page with the button
/// Usage Maximum at byte 14 (where Hyper-V's has the bug the guest
/// patches; [`DeviceInfoKind::Sa167`] reproduces that).
pub const REPORT_DESCRIPTOR: [u8; 63] = [
    0x05, 0x01, // Usage Page (Generic Desktop)
    0x09, 0x02, // Usage (Mouse)
    0xa1, 0x01, // Collection (Application)
    0x09, 0x01, //   Usage (Pointer)
    0xa1, 0x00, //   Collection (Physical)
    0x05, 0x09, //     Usage Page (Button)
    0x19, 0x01, //     Usage Minimum (1)
    0x29, 0x05, //     Usage Maximum (5)  <- byte 14
    0x15, 0x00, //     Logical Minimum (0)
    0x25, 0x01, //     Logical Maximum (1)
    0x95, 0x05, //     Report Count (5)
    0x75, 0x01, //     Report Size (1)
    0x81, 0x02, //     Input (Data, Variable, Absolute)
    0x95, 0x01, //     Report Count (1)
    0x75, 0x03, //     Report Size (3)
    0x81, 0x01, //     Input (Constant): padding
    0x05, 0x01, //     Usage Page (Generic Desktop)
    0x09, 0x30, //     Usage (X)
    0x09, 0x31, //     Usage (Y)
    0x15, 0x00, //     Logical Minimum (0)
    0x26, 0xff, 0x7f, // Logical Maximum (32767)
    0x75, 0x10, //     Report Size (16)
    0x95, 0x02, //     Report Count (2)
    0x81, 0x02, //     Input (Data, Variable, Absolute)
    0x09, 0x38, //     Usage (Wheel)
    0x15, 0x81, //     Logical Minimum (-127)
    0x25, 0x7f, //     Logical Maximum (127)
    0x75, 0x08, //     Report Size (8)
    0x95, 0x01, //     Report Count (1)
    0x81, 0x06, //     Input (Data, Variable, Relative)
    0xc0, //   End Collection
    0xc0, // End Collection
];

/// The largest absolute coordinate.
pub const ABS_MAX: u16 = 0x7fff;
/// Bytes in one report of [`REPORT_DESCRIPTOR`].
pub const REPORT_SIZE: usize = 6;
/// The version `hv_input_dev_info` carries.
pub const DEVICE_VERSION: u16 = 0x0001;

/// One report of [`REPORT_DESCRIPTOR`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PointerReport {
    /// Buttons 1 to 5 in bits 0 to 4.
    pub buttons: u8,
    /// Absolute X, 0 to [`ABS_MAX`].
    pub x: u16,
    /// Absolute Y.
    pub y: u16,
    /// Wheel steps since the last report.
    pub wheel: i8,
}

impl PointerReport {
    /// The report's bytes.
    pub fn to_bytes(&self) -> [u8; REPORT_SIZE] {
        let [x0, x1] = self.x.to_le_bytes();
        let [y0, y1] = self.y.to_le_bytes();
        [
            self.buttons & 0x1f,
            x0,
            x1,
            y0,
            y1,
            self.wheel.to_le_bytes()[0],
        ]
    }

    /// Reads a report as the HID core would (for tests).
    pub fn from_bytes(b: &[u8]) -> Option<PointerReport> {
        let b: [u8; REPORT_SIZE] = b.try_into().ok()?;
        let [buttons, x0, x1, y0, y1, w] = b;
        Some(PointerReport {
            buttons: buttons & 0x1f,
            x: u16::from_le_bytes([x0, x1]),
            y: u16::from_le_bytes([y0, y1]),
            wheel: i8::from_le_bytes([w]),
        })
    }
}

/// Which device info the mouse sends after approving the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceInfoKind {
    /// A correct one.
    Good,
    /// A correct one with Hyper-V's byte-14 bug (0x25 for 0x29).
    Sa167,
    /// `bLength` larger than the rest of the packet.
    HidLengthLies,
    /// `bLength` below the descriptor's 9 bytes.
    HidLengthShort,
    /// `wDescriptorLength` larger than the bytes that follow.
    ReportLengthLies,
    /// `wDescriptorLength` of 0.
    ReportLengthZero,
    /// A report descriptor of 4097 bytes, all present.
    ReportTooBig,
    /// None: the guest's wait must time out.
    Never,
}

/// Faults the mouse injects at any time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MouseFault {
    /// A packet of 6 bytes: not even a pipe header.
    Short,
    /// An input report of `HID_MAX_BUFFER_SIZE + 1` bytes, all present.
    Oversized,
    /// A pipe message of type INVALID (0).
    BadPipeType,
    /// A pipe size larger than the packet.
    PipeSizeLies,
    /// An input report whose HID size is larger than the pipe payload.
    ReportSizeLies,
    /// An input report of zero bytes.
    EmptyReport,
    /// A HID message of unknown type (9).
    UnknownType,
    /// A second, good, device info.
    DeviceInfoAgain,
    /// A device info ack: a type only the guest sends.
    GuestOnlyType,
    /// A protocol response whose pipe size is larger than 16.
    OversizedResponse,
    /// A report (buttons 1, at the origin) sent whatever the state.
    EarlyReport,
}

#[derive(Clone, Copy, Debug)]
enum MouseOut {
    Response { approved: bool },
    DeviceInfo(DeviceInfoKind),
    Report(PointerReport),
    Fault(MouseFault),
}

/// Where the simulated mouse is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MouseState {
    /// Waiting for the guest's request.
    AwaitingRequest,
    /// Device info sent; waiting for the ack.
    AwaitingAck,
    /// Acked: reports may flow.
    Ready,
    /// The version was refused.
    Refused,
}

/// The simulated synthetic mouse.
#[derive(Clone, Debug)]
pub struct MouseHost {
    approve: bool,
    device_info: DeviceInfoKind,
    state: MouseState,
    pointer: PointerReport,
    queue: Queue<MouseOut>,
    counters: Counters,
}

impl MouseHost {
    /// A mouse that approves version 2.0 if `approve` and then sends
    /// `device_info`.
    pub fn new(approve: bool, device_info: DeviceInfoKind) -> MouseHost {
        MouseHost {
            approve,
            device_info,
            state: MouseState::AwaitingRequest,
            pointer: PointerReport::default(),
            queue: Queue::new(),
            counters: Counters::default(),
        }
    }

    /// Where the protocol is.
    pub fn state(&self) -> MouseState {
        self.state
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Handles one guest packet: a request is answered (and, if approved,
    /// followed by the device info), the ack makes the mouse ready.
    pub fn on_guest_packet(&mut self, b: &[u8]) -> Result<()> {
        self.counters.received = self.counters.received.wrapping_add(1);
        let r = self.handle(b);
        if r.is_err() {
            self.counters.bad = self.counters.bad.wrapping_add(1);
        }
        r
    }

    fn handle(&mut self, b: &[u8]) -> Result<()> {
        match mouse::Message::parse(b, mouse::Sender::Guest)? {
            mouse::Message::ProtocolRequest { version } => {
                if self.state != MouseState::AwaitingRequest {
                    return Err(Error::Unexpected(mouse::MSG_PROTOCOL_REQUEST));
                }
                let approved = self.approve && version == mouse::VERSION;
                if self.queue.room() < 2 {
                    return Err(Error::BufferTooSmall {
                        need: 2,
                        len: self.queue.room(),
                    });
                }
                self.queue.push(MouseOut::Response { approved })?;
                if approved {
                    if self.device_info != DeviceInfoKind::Never {
                        self.queue.push(MouseOut::DeviceInfo(self.device_info))?;
                    }
                    self.state = MouseState::AwaitingAck;
                } else {
                    self.state = MouseState::Refused;
                }
                Ok(())
            }
            mouse::Message::DeviceInfoAck => {
                if self.state != MouseState::AwaitingAck {
                    return Err(Error::Unexpected(mouse::MSG_DEVICE_INFO_ACK));
                }
                self.state = MouseState::Ready;
                Ok(())
            }
            _ => Err(Error::WrongSender(0)),
        }
    }

    fn report(&mut self, wheel: i8) -> Result<()> {
        if self.state != MouseState::Ready {
            return Err(Error::Unexpected(mouse::MSG_INPUT_REPORT));
        }
        let mut r = self.pointer;
        r.wheel = wheel;
        self.queue.push(MouseOut::Report(r))
    }

    /// Moves the pointer to (`x`, `y`), each clamped to [`ABS_MAX`].
    pub fn move_to(&mut self, x: u16, y: u16) -> Result<()> {
        let old = self.pointer;
        self.pointer.x = x.min(ABS_MAX);
        self.pointer.y = y.min(ABS_MAX);
        self.report(0).inspect_err(|_| self.pointer = old)
    }

    /// Presses (`down`) or releases button `n` (1 to 5).
    pub fn button(&mut self, n: u8, down: bool) -> Result<()> {
        if !(1..=5).contains(&n) {
            return Err(Error::BadField("button"));
        }
        let old = self.pointer;
        let bit = 1u8 << (n - 1);
        if down {
            self.pointer.buttons |= bit;
        } else {
            self.pointer.buttons &= !bit;
        }
        self.report(0).inspect_err(|_| self.pointer = old)
    }

    /// Turns the wheel by `steps` (positive: away from the user).
    pub fn wheel(&mut self, steps: i8) -> Result<()> {
        if steps == i8::MIN {
            return Err(Error::BadField("wheel"));
        }
        self.report(steps)
    }

    /// Queues a fault message.
    pub fn fault(&mut self, f: MouseFault) -> Result<()> {
        self.queue.push(MouseOut::Fault(f))?;
        self.counters.faults = self.counters.faults.wrapping_add(1);
        Ok(())
    }

    /// Writes the next queued message into `buf`: its length, `None` when
    /// the queue is empty. A buffer too small keeps the message queued
    /// (the oversized report needs 16 KiB and a bit).
    pub fn pop(&mut self, buf: &mut [u8]) -> Option<Result<usize>> {
        let r = pop_with(&mut self.queue, buf, encode_mouse);
        if let Some(Ok(_)) = r {
            self.counters.sent = self.counters.sent.wrapping_add(1);
        }
        r
    }
}

/// A pipe message with a HID message of type `ty` whose body is `len`
/// bytes written by `body` (at offsets relative to the body); the pipe and
/// HID sizes are as given, so faults can make them lie.
fn encode_sized(
    buf: &mut [u8],
    ty: u32,
    pipe_size: u32,
    hid_size: u32,
    len: usize,
    body: impl FnOnce(&mut Writer<'_>, usize),
) -> Result<usize> {
    let at = PIPE_HEADER_SIZE + HID_HEADER_SIZE;
    let mut w = Writer::new(buf, at + len);
    w.u32(0, mouse::PIPE_DATA);
    w.u32(4, pipe_size);
    w.u32(8, ty);
    w.u32(12, hid_size);
    body(&mut w, at);
    w.finish()
}

/// A message whose sizes tell the truth.
fn encode_body(
    buf: &mut [u8],
    ty: u32,
    len: usize,
    body: impl FnOnce(&mut Writer<'_>, usize),
) -> Result<usize> {
    let hid = u32::try_from(len).map_err(|_| Error::BadField("size"))?;
    let pipe = hid
        .checked_add(HID_HEADER_SIZE as u32)
        .ok_or(Error::BadField("size"))?;
    encode_sized(buf, ty, pipe, hid, len, body)
}

fn encode_device_info(buf: &mut [u8], kind: DeviceInfoKind) -> Result<usize> {
    let big = kind == DeviceInfoKind::ReportTooBig;
    let rlen = if big {
        mouse::MAX_REPORT_DESCRIPTOR + 1
    } else {
        REPORT_DESCRIPTOR.len()
    };
    let len = DEVICE_INFO_SIZE - HID_HEADER_SIZE + rlen;
    let hid_len: u8 = match kind {
        DeviceInfoKind::HidLengthLies => 0xff,
        DeviceInfoKind::HidLengthShort => 6,
        _ => mouse::HID_DESCRIPTOR_SIZE as u8,
    };
    let wlen: u16 = match kind {
        DeviceInfoKind::ReportLengthLies => (rlen + 1) as u16,
        DeviceInfoKind::ReportLengthZero => 0,
        _ => rlen as u16,
    };
    encode_body(buf, mouse::MSG_DEVICE_INFO, len, |w, at| {
        // hv_input_dev_info
        w.u32(at, mouse::DEV_INFO_SIZE as u32);
        w.u16(at + 4, mouse::VENDOR_MICROSOFT);
        w.u16(at + 6, mouse::PRODUCT_MOUSE);
        w.u16(at + 8, DEVICE_VERSION);
        // hid_descriptor: HID 1.01, one report descriptor
        let d = at + mouse::DEV_INFO_SIZE;
        w.u8(d, hid_len);
        w.u8(d + 1, 0x21);
        w.u16(d + 2, 0x0101);
        w.u8(d + 4, 0);
        w.u8(d + 5, 1);
        w.u8(d + 6, 0x22);
        w.u16(d + 7, wlen);
        let r = d + mouse::HID_DESCRIPTOR_SIZE;
        if big {
            // A descriptor that is valid as far as it goes, padded with
            // zero (short "Input" items would be 0x80; 0 is a no-op main
            // item the HID core would refuse, which is beside the point).
            w.bytes(r, &REPORT_DESCRIPTOR);
            w.zero(r + REPORT_DESCRIPTOR.len(), rlen - REPORT_DESCRIPTOR.len());
        } else {
            w.bytes(r, &REPORT_DESCRIPTOR);
            if kind == DeviceInfoKind::Sa167 {
                w.u8(r + 14, 0x25);
            }
        }
    })
}

fn encode_mouse(m: MouseOut, buf: &mut [u8]) -> Result<usize> {
    let report = |r: PointerReport, buf: &mut [u8]| {
        encode_body(buf, mouse::MSG_INPUT_REPORT, REPORT_SIZE, |w, at| {
            w.bytes(at, &r.to_bytes())
        })
    };
    let f = match m {
        MouseOut::Response { approved } => {
            return encode_body(buf, mouse::MSG_PROTOCOL_RESPONSE, 5, |w, at| {
                w.u32(at, mouse::VERSION);
                w.u8(at + 4, u8::from(approved));
            })
        }
        MouseOut::DeviceInfo(kind) => return encode_device_info(buf, kind),
        MouseOut::Report(r) => return report(r, buf),
        MouseOut::Fault(f) => f,
    };
    match f {
        MouseFault::Short => {
            let mut w = Writer::new(buf, 6);
            w.u32(0, mouse::PIPE_DATA);
            w.finish()
        }
        MouseFault::Oversized => encode_body(
            buf,
            mouse::MSG_INPUT_REPORT,
            mouse::MAX_REPORT + 1,
            |_, _| {},
        ),
        MouseFault::BadPipeType => {
            let n = report(PointerReport::default(), buf)?;
            let mut w = Writer::new(buf, 0);
            w.u32(0, 0);
            w.finish().map(|_| n)
        }
        MouseFault::PipeSizeLies => encode_sized(
            buf,
            mouse::MSG_INPUT_REPORT,
            0x1000,
            REPORT_SIZE as u32,
            REPORT_SIZE,
            |_, _| {},
        ),
        MouseFault::ReportSizeLies => encode_sized(
            buf,
            mouse::MSG_INPUT_REPORT,
            (HID_HEADER_SIZE + REPORT_SIZE) as u32,
            0x4000,
            REPORT_SIZE,
            |_, _| {},
        ),
        MouseFault::EmptyReport => encode_body(buf, mouse::MSG_INPUT_REPORT, 0, |_, _| {}),
        MouseFault::UnknownType => encode_body(buf, 9, 4, |_, _| {}),
        MouseFault::DeviceInfoAgain => encode_device_info(buf, DeviceInfoKind::Good),
        MouseFault::GuestOnlyType => mouse::encode_ack(buf),
        MouseFault::OversizedResponse => {
            encode_body(buf, mouse::MSG_PROTOCOL_RESPONSE, 64, |w, at| {
                w.u32(at, mouse::VERSION);
                w.u8(at + 4, 1);
            })
        }
        MouseFault::EarlyReport => report(
            PointerReport {
                buttons: 1,
                ..PointerReport::default()
            },
            buf,
        ),
    }
}
