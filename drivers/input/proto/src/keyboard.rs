//! The synthetic keyboard protocol (version 1.0), guest side.
//!
//! Every message starts with a 32-bit little-endian type. The guest sends a
//! protocol request naming version 1.0 and waits for the host's response;
//! from then on the host sends one keystroke event per key transition, and
//! the guest may tell the host its LED state. A keystroke carries a set-1
//! make code and flags (break, E0 prefix, E1 prefix, unicode); the guest
//! turns it into the bytes a translated (XL) i8042 port would have produced,
//! which is what `atkbd` expects from the serio port.
//!
//! Unlike the C driver, a keystroke is refused before the protocol response,
//! a make code with the release bit set (or wider than a byte) is refused
//! rather than truncated, a unicode keystroke is reported as such instead of
//! being fed to `atkbd` as a scancode, and a message longer than the
//! protocol's maximum is refused.

use super::wire::{Error, Reader, Result, Writer};

/// Protocol version 1.0 (major in the high half).
pub const VERSION: u32 = 1 << 16;
/// The longest message the protocol allows (`HK_MAXIMUM_MESSAGE_SIZE`);
/// VMBus pads packets to 8 bytes, so shorter messages arrive with a tail.
pub const MAX_MESSAGE_SIZE: usize = 256;
/// Send and receive ring size the C driver opens the channel with,
/// `VMBUS_RING_SIZE(36 KiB)`: with 4 KiB pages that is 36 KiB, the ring
/// header included (the macro adds no header page to a payload of eight
/// pages or more).
pub const RING_SIZE: usize = 36 * 1024;

/// `SYNTH_KBD_PROTOCOL_REQUEST`: guest to host.
pub const MSG_PROTOCOL_REQUEST: u32 = 1;
/// `SYNTH_KBD_PROTOCOL_RESPONSE`: host to guest.
pub const MSG_PROTOCOL_RESPONSE: u32 = 2;
/// `SYNTH_KBD_EVENT`: a keystroke, host to guest.
pub const MSG_EVENT: u32 = 3;
/// `SYNTH_KBD_LED_INDICATORS`: guest to host.
pub const MSG_LED_INDICATORS: u32 = 4;

/// Protocol request: type, requested version.
pub const PROTOCOL_REQUEST_SIZE: usize = 8;
/// Protocol response: type, status (bit 0: accepted).
pub const PROTOCOL_RESPONSE_SIZE: usize = 8;
/// Keystroke: type, make code (u16), reserved (u16), info flags (u32).
pub const KEYSTROKE_SIZE: usize = 12;
/// LED indicators: type, flags (u16), padded to 8.
pub const LED_INDICATORS_SIZE: usize = 8;

/// Response status bit: the host accepts the requested version.
pub const PROTOCOL_ACCEPTED: u32 = 1 << 0;

/// Keystroke info bit: the make code is a UTF-16 unit, not a scancode.
pub const IS_UNICODE: u32 = 1 << 0;
/// Keystroke info bit: the key was released.
pub const IS_BREAK: u32 = 1 << 1;
/// Keystroke info bit: the scancode has the 0xE0 prefix.
pub const IS_E0: u32 = 1 << 2;
/// Keystroke info bit: the scancode has the 0xE1 prefix.
pub const IS_E1: u32 = 1 << 3;

/// LED flag: Scroll Lock on (Windows' `KEYBOARD_SCROLL_LOCK_ON`).
pub const LED_SCROLL_LOCK: u16 = 1;
/// LED flag: Num Lock on.
pub const LED_NUM_LOCK: u16 = 2;
/// LED flag: Caps Lock on.
pub const LED_CAPS_LOCK: u16 = 4;

/// The set-1 prefix byte of extended keys.
pub const SCAN_E0: u8 = 0xe0;
/// The set-1 prefix byte of Pause.
pub const SCAN_E1: u8 = 0xe1;
/// The release bit of a set-1 scancode.
pub const SCAN_RELEASE: u8 = 0x80;

/// One keystroke as the host sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keystroke {
    /// Set-1 make code (or a UTF-16 unit with [`IS_UNICODE`]).
    pub make_code: u16,
    /// `IS_*` flags.
    pub info: u32,
}

impl Keystroke {
    /// Whether this is a key release.
    pub fn is_break(&self) -> bool {
        self.info & IS_BREAK != 0
    }
}

/// A keyboard message, either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// Guest asks for a protocol version.
    ProtocolRequest {
        /// The version asked for.
        version: u32,
    },
    /// Host answers the request.
    ProtocolResponse {
        /// The status word; [`PROTOCOL_ACCEPTED`] is the only defined bit.
        status: u32,
    },
    /// A key transition.
    Event(Keystroke),
    /// Guest tells the host its LED state.
    LedIndicators {
        /// `LED_*` flags.
        flags: u16,
    },
}

/// Who sent the bytes being parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// The guest (parsed by the host).
    Guest,
    /// The host (parsed by the guest).
    Host,
}

impl Message {
    /// Parses one message from the in-band payload of a VMBus packet.
    /// Trailing bytes (VMBus padding) are allowed up to
    /// [`MAX_MESSAGE_SIZE`]; a type `from` does not send is refused.
    pub fn parse(b: &[u8], from: Sender) -> Result<Message> {
        if b.len() > MAX_MESSAGE_SIZE {
            return Err(Error::TooLong {
                max: MAX_MESSAGE_SIZE,
                len: b.len(),
            });
        }
        let r = Reader::new(b);
        let ty = r.u32(0)?;
        let (msg, need, sender) = match ty {
            MSG_PROTOCOL_REQUEST => (
                Message::ProtocolRequest { version: r.u32(4)? },
                PROTOCOL_REQUEST_SIZE,
                Sender::Guest,
            ),
            MSG_PROTOCOL_RESPONSE => (
                Message::ProtocolResponse { status: r.u32(4)? },
                PROTOCOL_RESPONSE_SIZE,
                Sender::Host,
            ),
            MSG_EVENT => {
                // Reading the last field first turns a short keystroke
                // into TooShort before any field is used.
                let info = r.u32(8)?;
                let make_code = r.u16(4)?;
                (
                    Message::Event(Keystroke { make_code, info }),
                    KEYSTROKE_SIZE,
                    Sender::Host,
                )
            }
            // The LED message is 6 bytes of fields; Windows pads it to 8,
            // but a 6-byte one is still whole.
            MSG_LED_INDICATORS => (
                Message::LedIndicators { flags: r.u16(4)? },
                6,
                Sender::Guest,
            ),
            other => return Err(Error::UnknownType(other)),
        };
        super::wire::need(b, need)?;
        if sender != from {
            return Err(Error::WrongSender(ty));
        }
        Ok(msg)
    }

    /// Writes the message into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let len = match self {
            Message::ProtocolRequest { .. } => PROTOCOL_REQUEST_SIZE,
            Message::ProtocolResponse { .. } => PROTOCOL_RESPONSE_SIZE,
            Message::Event(_) => KEYSTROKE_SIZE,
            Message::LedIndicators { .. } => LED_INDICATORS_SIZE,
        };
        let mut w = Writer::new(buf, len);
        match *self {
            Message::ProtocolRequest { version } => {
                w.u32(0, MSG_PROTOCOL_REQUEST);
                w.u32(4, version);
            }
            Message::ProtocolResponse { status } => {
                w.u32(0, MSG_PROTOCOL_RESPONSE);
                w.u32(4, status);
            }
            Message::Event(k) => {
                w.u32(0, MSG_EVENT);
                w.u16(4, k.make_code);
                w.u32(8, k.info);
            }
            Message::LedIndicators { flags } => {
                w.u32(0, MSG_LED_INDICATORS);
                w.u16(4, flags);
            }
        }
        w.finish()
    }
}

/// The serio bytes of one keystroke: a prefix (if any) and the scancode
/// with the release bit on a break, in the order `atkbd` must see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scancodes {
    bytes: [u8; 2],
    len: u8,
}

impl Scancodes {
    /// The bytes, first to last.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// The serio bytes for a keystroke, as a translated i8042 port delivers
/// them: 0xE0 or 0xE1 first if flagged, then the make code, with 0x80 set
/// on a release. A unicode keystroke has no scancode
/// ([`Error::BadField`] `"info"`), and neither does a make code that is
/// not a 7-bit set-1 code (`"make_code"`), or one flagged both E0 and E1.
pub fn scancodes(k: &Keystroke) -> Result<Scancodes> {
    if k.info & IS_UNICODE != 0 || k.info & (IS_E0 | IS_E1) == IS_E0 | IS_E1 {
        return Err(Error::BadField("info"));
    }
    let code = u8::try_from(k.make_code).map_err(|_| Error::BadField("make_code"))?;
    if code & SCAN_RELEASE != 0 {
        return Err(Error::BadField("make_code"));
    }
    let code = if k.is_break() {
        code | SCAN_RELEASE
    } else {
        code
    };
    let prefix = if k.info & IS_E0 != 0 {
        Some(SCAN_E0)
    } else if k.info & IS_E1 != 0 {
        Some(SCAN_E1)
    } else {
        None
    };
    Ok(match prefix {
        Some(p) => Scancodes {
            bytes: [p, code],
            len: 2,
        },
        None => Scancodes {
            bytes: [code, 0],
            len: 1,
        },
    })
}

/// What a host message means to the guest driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The host accepted version 1.0: register the serio port.
    Connected,
    /// Bytes to hand to `serio_interrupt`, in order; `wake` is true on a
    /// key press (the C driver wakes the system on presses only, so that
    /// the release of the Enter that started a suspend does not end it).
    Keys {
        /// The scancode bytes.
        scancodes: Scancodes,
        /// Signal a wakeup event.
        wake: bool,
    },
    /// A unicode keystroke: `atkbd` has no way to take it; the driver drops
    /// it (quietly: Hyper-V sends these for typed text when asked).
    Unicode(u16),
}

/// Where the guest is in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The request is sent; waiting for the response.
    AwaitingResponse,
    /// Version 1.0 accepted; keystrokes flow.
    Ready,
    /// The host refused the version; the device fails to probe.
    Refused,
}

/// The guest's side of one keyboard channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guest {
    state: State,
}

impl Default for Guest {
    fn default() -> Self {
        Self::new()
    }
}

impl Guest {
    /// A guest that has not yet sent its request.
    pub fn new() -> Guest {
        Guest {
            state: State::AwaitingResponse,
        }
    }

    /// Where the protocol is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Writes the protocol request (send it with COMPLETION_REQUESTED, as
    /// the C driver does); returns its length.
    pub fn request(&self, buf: &mut [u8]) -> Result<usize> {
        Message::ProtocolRequest { version: VERSION }.encode(buf)
    }

    /// Writes an LED-state message; returns its length.
    pub fn leds(&self, flags: u16, buf: &mut [u8]) -> Result<usize> {
        Message::LedIndicators {
            flags: flags & (LED_SCROLL_LOCK | LED_NUM_LOCK | LED_CAPS_LOCK),
        }
        .encode(buf)
    }

    /// Handles one in-band host packet. An error means: drop the packet
    /// with a rate-limited message; the state is unchanged except that a
    /// refused version is [`State::Refused`] (and an error).
    pub fn on_packet(&mut self, b: &[u8]) -> Result<Event> {
        match Message::parse(b, Sender::Host)? {
            Message::ProtocolResponse { status } => {
                if self.state != State::AwaitingResponse {
                    return Err(Error::Unexpected(MSG_PROTOCOL_RESPONSE));
                }
                if status & PROTOCOL_ACCEPTED == 0 {
                    self.state = State::Refused;
                    return Err(Error::BadField("proto_status"));
                }
                self.state = State::Ready;
                Ok(Event::Connected)
            }
            Message::Event(k) => {
                if self.state != State::Ready {
                    return Err(Error::Unexpected(MSG_EVENT));
                }
                // Bits above IS_E1 are reserved; a newer host may use
                // them, so they are ignored rather than refused.
                if k.info & IS_UNICODE != 0 {
                    return Ok(Event::Unicode(k.make_code));
                }
                Ok(Event::Keys {
                    scancodes: scancodes(&k)?,
                    wake: !k.is_break(),
                })
            }
            // parse() refuses guest-only types from the host.
            Message::ProtocolRequest { .. } => Err(Error::WrongSender(MSG_PROTOCOL_REQUEST)),
            Message::LedIndicators { .. } => Err(Error::WrongSender(MSG_LED_INDICATORS)),
        }
    }
}
