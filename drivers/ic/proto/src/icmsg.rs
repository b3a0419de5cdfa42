//! The headers in front of every integration-service message: the pipe
//! header (`struct vmbuspipe_hdr`, 8 bytes) and the IC message header
//! (`struct icmsg_hdr`, 20 bytes), with the message types, flags and status
//! codes of `include/linux/hyperv.h` and `include/uapi/linux/hyperv.h`.
//!
//! Every service answers a host request in place: it edits the copy of the
//! request it received and sends the same number of bytes back, with the
//! header's flags set to TRANSACTION | RESPONSE.

use super::wire::{Error, Reader, Result, Writer};

/// Bytes of the pipe header.
pub const PIPE_HDR_SIZE: usize = 8;
/// Bytes of the IC message header.
pub const IC_HDR_SIZE: usize = 20;
/// Offset of a message's body: both headers (`ICMSG_HDR`).
pub const ICMSG_HDR: usize = PIPE_HDR_SIZE + IC_HDR_SIZE;

/// `ICMSGTYPE_NEGOTIATE`.
pub const MSG_NEGOTIATE: u16 = 0;
/// `ICMSGTYPE_HEARTBEAT`.
pub const MSG_HEARTBEAT: u16 = 1;
/// `ICMSGTYPE_KVPEXCHANGE`.
pub const MSG_KVP_EXCHANGE: u16 = 2;
/// `ICMSGTYPE_SHUTDOWN`.
pub const MSG_SHUTDOWN: u16 = 3;
/// `ICMSGTYPE_TIMESYNC`.
pub const MSG_TIMESYNC: u16 = 4;
/// `ICMSGTYPE_VSS`.
pub const MSG_VSS: u16 = 5;

/// `ICMSGHDRFLAG_TRANSACTION`.
pub const FLAG_TRANSACTION: u8 = 1;
/// `ICMSGHDRFLAG_REQUEST`.
pub const FLAG_REQUEST: u8 = 2;
/// `ICMSGHDRFLAG_RESPONSE`.
pub const FLAG_RESPONSE: u8 = 4;

/// `HV_S_OK`.
pub const S_OK: u32 = 0;
/// `HV_E_FAIL`: the generic failure every service answers bad input with.
pub const E_FAIL: u32 = 0x8000_4005;
/// `HV_S_CONT`: a KVP enumeration ran past the last item (old daemons).
pub const S_CONT: u32 = 0x8007_0103;
/// `HV_ERROR_NOT_SUPPORTED`.
pub const ERROR_NOT_SUPPORTED: u32 = 0x8007_0032;
/// `HV_ERROR_MACHINE_LOCKED`.
pub const ERROR_MACHINE_LOCKED: u32 = 0x8007_04F7;
/// `HV_ERROR_DEVICE_NOT_CONNECTED`.
pub const ERROR_DEVICE_NOT_CONNECTED: u32 = 0x8007_048F;
/// `HV_INVALIDARG`.
pub const INVALIDARG: u32 = 0x8007_0057;
/// `HV_GUID_NOTFOUND`: a KVP key that is not in the pool.
pub const GUID_NOTFOUND: u32 = 0x8004_1002;
/// `HV_ERROR_ALREADY_EXISTS`.
pub const ERROR_ALREADY_EXISTS: u32 = 0x8007_0050;
/// `HV_ERROR_DISK_FULL`.
pub const ERROR_DISK_FULL: u32 = 0x8007_0070;

/// A protocol version as the IC messages carry it (`struct ic_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IcVersion {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
}

impl IcVersion {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> IcVersion {
        IcVersion { major, minor }
    }

    /// The C drivers' `major << 16 | minor` form.
    pub const fn packed(self) -> u32 {
        (self.major as u32) << 16 | self.minor as u32
    }

    /// Reads the 4-byte wire form at `at`.
    pub fn read(r: &Reader<'_>, at: usize) -> Result<IcVersion> {
        Ok(IcVersion::new(r.u16(at)?, r.u16(at.saturating_add(2))?))
    }

    /// Writes the 4-byte wire form at `at`.
    pub fn write(self, w: &mut Writer<'_>, at: usize) {
        w.u16(at, self.major);
        w.u16(at.saturating_add(2), self.minor);
    }
}

/// Both headers of one message, read from the first [`ICMSG_HDR`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcHeader {
    /// `vmbuspipe_hdr.flags`.
    pub pipe_flags: u32,
    /// `vmbuspipe_hdr.msgsize`.
    pub pipe_size: u32,
    /// `icverframe`: the framework version.
    pub frame_version: IcVersion,
    /// `icmsgtype`: one of the `MSG_*` values (not checked here).
    pub msg_type: u16,
    /// `icvermsg`: the service's message version.
    pub msg_version: IcVersion,
    /// `icmsgsize`: the body's size as the sender states it.
    pub msg_size: u16,
    /// `status`: an `HV_*` code in a response.
    pub status: u32,
    /// `ictransaction_id`.
    pub transaction_id: u8,
    /// `icflags`: `FLAG_*` bits.
    pub flags: u8,
}

impl IcHeader {
    /// Reads both headers; fails on fewer than [`ICMSG_HDR`] bytes.
    pub fn parse(b: &[u8]) -> Result<IcHeader> {
        let r = Reader::new(b);
        super::wire::need(b, ICMSG_HDR)?;
        Ok(IcHeader {
            pipe_flags: r.u32(0)?,
            pipe_size: r.u32(4)?,
            frame_version: IcVersion::read(&r, 8)?,
            msg_type: r.u16(12)?,
            msg_version: IcVersion::read(&r, 14)?,
            msg_size: r.u16(18)?,
            status: r.u32(20)?,
            transaction_id: r.u8(24)?,
            flags: r.u8(25)?,
        })
    }

    /// Writes both headers to the first [`ICMSG_HDR`] bytes of `b`
    /// (reserved bytes zero).
    pub fn write(&self, b: &mut [u8]) -> Result<()> {
        let mut w = Writer::new(b, ICMSG_HDR);
        self.write_into(&mut w);
        w.finish().map(|_| ())
    }

    /// Writes both headers through `w`, at offset 0.
    pub fn write_into(&self, w: &mut Writer<'_>) {
        w.u32(0, self.pipe_flags);
        w.u32(4, self.pipe_size);
        self.frame_version.write(w, 8);
        w.u16(12, self.msg_type);
        self.msg_version.write(w, 14);
        w.u16(18, self.msg_size);
        w.u32(20, self.status);
        w.u8(24, self.transaction_id);
        w.u8(25, self.flags);
        w.u16(26, 0);
    }

    /// Whether the sender marked this message as a response.
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }
}

/// The message type of a received packet, with its length checked against
/// the headers (what every C service checks first: `recvlen < ICMSG_HDR`).
pub fn msg_type(b: &[u8]) -> Result<u16> {
    IcHeader::parse(b).map(|h| h.msg_type)
}

/// Sets `status` in the message in `b`.
pub fn set_status(b: &mut [u8], status: u32) -> Result<()> {
    super::wire::need(b, ICMSG_HDR)?;
    let mut w = Writer::new(b, 0);
    w.u32(20, status);
    w.finish().map(|_| ())
}

/// Marks the message in `b` as the answer to the host's request:
/// `icflags = TRANSACTION | RESPONSE`, the rest as the request had it.
pub fn mark_response(b: &mut [u8]) -> Result<()> {
    super::wire::need(b, ICMSG_HDR)?;
    let mut w = Writer::new(b, 0);
    w.u8(25, FLAG_TRANSACTION | FLAG_RESPONSE);
    w.finish().map(|_| ())
}

/// Checks that `b` is a response of type `want` to a request of ours.
pub fn expect_response(b: &[u8], want: u16) -> Result<IcHeader> {
    let h = IcHeader::parse(b)?;
    if !h.is_response() {
        return Err(Error::BadField("icflags"));
    }
    if h.msg_type != want {
        return Err(Error::UnknownType(u32::from(h.msg_type)));
    }
    Ok(h)
}
