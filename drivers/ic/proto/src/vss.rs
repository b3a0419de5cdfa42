//! The VSS (backup) service: `struct hv_vss_msg` on the wire and between
//! the kernel and `hv_vss_daemon` (`/dev/vmbus/hv_vss`), the same 12 bytes.

use super::icmsg::ICMSG_HDR;
use super::wire::{self, Error, Reader, Result, Writer};

/// Bytes of `struct hv_vss_msg`: an 8-byte header (or an `int` error)
/// and 4 bytes of flags.
pub const MSG_SIZE: usize = 12;
/// Shortest packet the guest acts on.
pub const MIN_PACKET: usize = ICMSG_HDR + MSG_SIZE;

/// `VSS_OP_CREATE`.
pub const OP_CREATE: u8 = 0;
/// `VSS_OP_DELETE`.
pub const OP_DELETE: u8 = 1;
/// `VSS_OP_HOT_BACKUP`: "can you be backed up live?"; the daemon checks.
pub const OP_HOT_BACKUP: u8 = 2;
/// `VSS_OP_GET_DM_INFO`: answered by the kernel, flags 0.
pub const OP_GET_DM_INFO: u8 = 3;
/// `VSS_OP_BU_COMPLETE`.
pub const OP_BU_COMPLETE: u8 = 4;
/// `VSS_OP_FREEZE` (5.0): freeze the file systems.
pub const OP_FREEZE: u8 = 5;
/// `VSS_OP_THAW` (5.0): thaw them.
pub const OP_THAW: u8 = 6;
/// `VSS_OP_AUTO_RECOVER`.
pub const OP_AUTO_RECOVER: u8 = 7;
/// `VSS_OP_REGISTER`: a daemon that expects no answer to registering.
pub const OP_REGISTER: u8 = 128;
/// `VSS_OP_REGISTER1`: a daemon that expects the kernel's version back.
pub const OP_REGISTER1: u8 = 129;
/// `VSS_HBU_NO_AUTO_RECOVERY`: the flags of the answer to HOT_BACKUP.
pub const HBU_NO_AUTO_RECOVERY: u32 = 5;

/// A VSS message, host's or daemon's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    /// `vss_hdr.operation`.
    pub operation: u8,
    /// `vss_cf.flags` / `dm_info.flags`.
    pub flags: u32,
}

/// What the guest does with a host request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// FREEZE, THAW, HOT_BACKUP: ask the daemon, answer with its result
    /// (or a failure when it is absent or late).
    Daemon,
    /// Everything else the kernel answers at once, with status 0
    /// (GET_DM_INFO with flags 0).
    Kernel,
}

impl Msg {
    /// Reads the host's request from a packet. Operations past
    /// AUTO_RECOVER are [`Error::UnknownType`].
    pub fn parse_host(pkt: &[u8]) -> Result<Msg> {
        wire::need(pkt, MIN_PACKET)?;
        let m = Msg::decode(pkt.get(ICMSG_HDR..).unwrap_or(&[]))?;
        if m.operation > OP_AUTO_RECOVER {
            return Err(Error::UnknownType(u32::from(m.operation)));
        }
        Ok(m)
    }

    /// Reads the 12-byte form.
    pub fn decode(b: &[u8]) -> Result<Msg> {
        wire::need(b, MSG_SIZE)?;
        let r = Reader::new(b);
        Ok(Msg {
            operation: r.u8(0)?,
            flags: r.u32(8)?,
        })
    }

    /// Writes the 12-byte form at `at`.
    pub fn write(&self, w: &mut Writer<'_>, at: usize) {
        w.u8(at, self.operation);
        w.zero(at.saturating_add(1), 7);
        w.u32(at.saturating_add(8), self.flags);
    }

    /// Where the guest sends this request.
    pub fn route(&self) -> Route {
        match self.operation {
            OP_FREEZE | OP_THAW | OP_HOT_BACKUP => Route::Daemon,
            _ => Route::Kernel,
        }
    }
}

/// The message the kernel writes to the daemon for a host request.
pub fn to_daemon(op: u8, dst: &mut [u8]) -> Result<usize> {
    let mut w = Writer::new(dst, MSG_SIZE);
    Msg {
        operation: op,
        flags: 0,
    }
    .write(&mut w, 0);
    w.finish()
}

/// What the daemon wrote to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaemonMsg {
    /// Registration; `answer` says whether the daemon expects the
    /// kernel's version ([`OP_REGISTER1`], answered by [`registration_reply`]).
    Register {
        /// The daemon reads a reply.
        answer: bool,
    },
    /// The result of the request in flight: 0 or an `HV_*` error.
    Result(u32),
}

/// Reads what the daemon wrote; it must be exactly [`MSG_SIZE`] bytes.
pub fn parse_daemon(b: &[u8]) -> Result<DaemonMsg> {
    if b.len() != MSG_SIZE {
        return Err(Error::BadField("len"));
    }
    let r = Reader::new(b);
    Ok(match r.u8(0)? {
        OP_REGISTER => DaemonMsg::Register { answer: false },
        OP_REGISTER1 => DaemonMsg::Register { answer: true },
        // The header is a union with `int error`.
        _ => DaemonMsg::Result(r.u32(0)?),
    })
}

/// The kernel's answer to [`OP_REGISTER1`]: its version, a `u32`.
pub fn registration_reply() -> [u8; 4] {
    u32::from(OP_REGISTER1).to_le_bytes()
}

/// Writes the guest's answer into the host's packet (held since it
/// arrived): `status` in the header, the flags HOT_BACKUP and GET_DM_INFO
/// answer with, and the response flags.
pub fn answer_host(pkt: &mut [u8], status: u32) -> Result<()> {
    let m = Msg::parse_host(pkt)?;
    let flags = match m.operation {
        OP_HOT_BACKUP => HBU_NO_AUTO_RECOVERY,
        OP_GET_DM_INFO => 0,
        _ => m.flags,
    };
    let mut w = Writer::new(pkt, 0);
    w.u32(ICMSG_HDR + 8, flags);
    w.finish()?;
    super::icmsg::set_status(pkt, status)?;
    super::icmsg::mark_response(pkt)
}
