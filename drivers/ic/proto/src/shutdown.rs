//! The shutdown service's request (`struct shutdown_msg_data`).

use super::icmsg::ICMSG_HDR;
use super::wire::{self, Reader, Result, Writer};

/// Bytes of the body: reason, timeout, flags and a 2048-byte message.
pub const BODY_SIZE: usize = 12 + DISPLAY_MESSAGE_SIZE;
/// Bytes of `display_message`.
pub const DISPLAY_MESSAGE_SIZE: usize = 2048;
/// Shortest packet the guest acts on.
pub const MIN_PACKET: usize = ICMSG_HDR + BODY_SIZE;

/// Flag bit 0: "by force"; Linux always acts by force, so it is ignored.
pub const FLAG_FORCE: u32 = 1;
/// Flag value of a reboot request (shutdown 3.1 and later).
pub const FLAG_REBOOT: u32 = 2;
/// Flag value of a hibernate request (shutdown 3.2 and later).
pub const FLAG_HIBERNATE: u32 = 4;

/// What the host asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Power off (flags 0 or 1).
    PowerOff,
    /// Reboot (flags 2 or 3).
    Reboot,
    /// Hibernate (flags 4 or 5); answered with a failure where the guest
    /// cannot hibernate.
    Hibernate,
}

impl Action {
    /// The action a `flags` value asks for; `None` for anything else,
    /// which the guest answers with `HV_E_FAIL`. Like the C driver, the
    /// negotiated version does not gate the action: a host only sends what
    /// the version it agreed to has.
    pub fn from_flags(flags: u32) -> Option<Action> {
        match flags & !FLAG_FORCE {
            0 => Some(Action::PowerOff),
            FLAG_REBOOT => Some(Action::Reboot),
            FLAG_HIBERNATE => Some(Action::Hibernate),
            _ => None,
        }
    }

    /// The flags value the host sends for this action.
    pub fn flags(self) -> u32 {
        match self {
            Action::PowerOff => 0,
            Action::Reboot => FLAG_REBOOT,
            Action::Hibernate => FLAG_HIBERNATE,
        }
    }
}

/// A shutdown request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// `reason_code`.
    pub reason_code: u32,
    /// `timeout_seconds`.
    pub timeout_seconds: u32,
    /// `flags`.
    pub flags: u32,
    /// `display_message` up to its first NUL (bytes as sent).
    pub display_message: &'a [u8],
}

impl<'a> Request<'a> {
    /// Reads the request from a whole packet.
    pub fn parse(pkt: &'a [u8]) -> Result<Request<'a>> {
        wire::need(pkt, MIN_PACKET)?;
        let r = Reader::new(pkt);
        let msg = r.slice(ICMSG_HDR + 12, DISPLAY_MESSAGE_SIZE)?;
        let end = msg.iter().position(|&b| b == 0).unwrap_or(msg.len());
        Ok(Request {
            reason_code: r.u32(ICMSG_HDR)?,
            timeout_seconds: r.u32(ICMSG_HDR + 4)?,
            flags: r.u32(ICMSG_HDR + 8)?,
            display_message: msg.get(..end).unwrap_or(&[]),
        })
    }

    /// The action asked for, if the flags name one.
    pub fn action(&self) -> Option<Action> {
        Action::from_flags(self.flags)
    }

    /// Writes the body at [`ICMSG_HDR`] (the message cut to fit).
    pub fn write_body(&self, w: &mut Writer<'_>) {
        w.u32(ICMSG_HDR, self.reason_code);
        w.u32(ICMSG_HDR + 4, self.timeout_seconds);
        w.u32(ICMSG_HDR + 8, self.flags);
        let n = self.display_message.len().min(DISPLAY_MESSAGE_SIZE - 1);
        w.bytes(ICMSG_HDR + 12, self.display_message.get(..n).unwrap_or(&[]));
    }
}
