//! Version negotiation, the first message on every IC channel
//! (`struct icmsg_negotiate` after the headers).
//!
//! The host offers `icframe_vercnt` framework versions then `icmsg_vercnt`
//! service versions. The guest walks its own tables newest first and takes
//! the first entry the host offered, framework then service, and answers in
//! place with one version of each (counts 1, 1), or with counts 0, 0 if
//! either has no match: the answer `vmbus_prep_negotiate_resp()` in
//! `drivers/hv/channel_mgmt.c` builds.

use super::icmsg::{IcHeader, IcVersion, ICMSG_HDR, MSG_NEGOTIATE};
use super::wire::{self, Error, Reader, Result, Writer};

/// Bytes of `struct icmsg_negotiate` before its version array.
pub const NEGOTIATE_HDR: usize = 8;
/// Offset of the first offered version in the packet.
pub const VERSIONS_AT: usize = ICMSG_HDR + NEGOTIATE_HDR;
/// The most versions of either kind the guest reads
/// (`IC_VERSION_NEGOTIATION_MAX_VER_COUNT`).
pub const MAX_VER_COUNT: u16 = 100;
/// `icmsgsize` of the answer: the negotiate header and two versions.
pub const RESPONSE_MSG_SIZE: u16 = 0x10;
/// Bytes the answer occupies from the start of the packet.
pub const RESPONSE_LEN: usize = VERSIONS_AT + 8;

/// The framework and service versions both sides agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The IC framework version.
    pub framework: IcVersion,
    /// The service's message version.
    pub service: IcVersion,
}

/// `ICMSG_NEGOTIATE_PKT_SIZE(fw, srv)`: the packet length that holds both
/// version lists.
pub fn packet_size(fw_count: u16, srv_count: u16) -> usize {
    // At most 36 + 2 * 65535 * 4: no overflow, saturating only to say so.
    let versions = usize::from(fw_count).saturating_add(usize::from(srv_count));
    VERSIONS_AT.saturating_add(versions.saturating_mul(4))
}

/// The guest's side: answers the host's NEGOTIATE in `buf`, whose first
/// `len` bytes are the packet received (`buf` is the guest's receive
/// buffer and may be longer). `fw` and `srv` are the guest's tables,
/// newest first. Returns the agreement, or `None` when the answer says
/// "no common version" (counts 0, 0), as the C driver does for offers it
/// cannot read (counts over [`MAX_VER_COUNT`] or past `len`).
///
/// Fails, leaving `buf` unchanged, only when `len` is too short for the
/// two counts or `buf` cannot hold the answer; the C driver then sends
/// the packet back untouched apart from the flags.
pub fn respond(
    buf: &mut [u8],
    len: usize,
    fw: &[IcVersion],
    srv: &[IcVersion],
) -> Result<Option<Agreement>> {
    let pkt = buf.get(..len).ok_or(Error::BufferTooSmall {
        need: len,
        len: buf.len(),
    })?;
    wire::need(pkt, ICMSG_HDR + 4)?;
    wire::need(buf, RESPONSE_LEN).map_err(|_| Error::BufferTooSmall {
        need: RESPONSE_LEN,
        len: buf.len(),
    })?;
    let r = Reader::new(pkt);
    let fw_count = r.u16(ICMSG_HDR)?;
    let srv_count = r.u16(ICMSG_HDR + 2)?;
    let readable = fw_count <= MAX_VER_COUNT
        && srv_count <= MAX_VER_COUNT
        && packet_size(fw_count, srv_count) <= len;
    let offered = |at: u16| IcVersion::read(&r, VERSIONS_AT + usize::from(at) * 4).ok();
    let pick = |ours: &[IcVersion], from: u16, count: u16| {
        ours.iter()
            .copied()
            .find(|v| (from..from.saturating_add(count)).any(|i| offered(i) == Some(*v)))
    };
    let agreed = if readable {
        pick(fw, 0, fw_count).and_then(|f| pick(srv, fw_count, srv_count).map(|s| (f, s)))
    } else {
        None
    };
    let mut w = Writer::new(buf, 0);
    w.u16(ICMSG_HDR - 10, RESPONSE_MSG_SIZE); // icmsgsize
    let (count, f, s) = match agreed {
        Some((f, s)) => (1, f, s),
        // The C driver echoes garbage versions with zero counts; zeros say
        // the same and leak nothing.
        None => (0, IcVersion::new(0, 0), IcVersion::new(0, 0)),
    };
    w.u16(ICMSG_HDR, count);
    w.u16(ICMSG_HDR + 2, count);
    f.write(&mut w, VERSIONS_AT);
    s.write(&mut w, VERSIONS_AT + 4);
    w.finish()?;
    Ok(agreed.map(|(framework, service)| Agreement { framework, service }))
}

/// The host's side: builds a NEGOTIATE offering `fw` then `srv` into
/// `buf`; returns the packet length.
pub fn build_request(
    buf: &mut [u8],
    transaction_id: u8,
    fw: &[IcVersion],
    srv: &[IcVersion],
) -> Result<usize> {
    let fw_count = u16::try_from(fw.len()).map_err(|_| Error::BadField("icframe_vercnt"))?;
    let srv_count = u16::try_from(srv.len()).map_err(|_| Error::BadField("icmsg_vercnt"))?;
    let len = packet_size(fw_count, srv_count);
    let body = len.saturating_sub(ICMSG_HDR);
    let hdr = IcHeader {
        pipe_flags: 0,
        pipe_size: wire::to_u32(len.saturating_sub(super::icmsg::PIPE_HDR_SIZE), "msgsize")?,
        frame_version: IcVersion::new(0, 0),
        msg_type: MSG_NEGOTIATE,
        msg_version: IcVersion::new(0, 0),
        msg_size: u16::try_from(body).map_err(|_| Error::BadField("icmsgsize"))?,
        status: 0,
        transaction_id,
        flags: super::icmsg::FLAG_TRANSACTION | super::icmsg::FLAG_REQUEST,
    };
    wire::need(buf, len).map_err(|_| Error::BufferTooSmall {
        need: len,
        len: buf.len(),
    })?;
    let mut w = Writer::new(buf, len);
    hdr.write_into(&mut w);
    w.u16(ICMSG_HDR, fw_count);
    w.u16(ICMSG_HDR + 2, srv_count);
    let mut at = VERSIONS_AT;
    for v in fw.iter().chain(srv.iter()) {
        v.write(&mut w, at);
        at = at.saturating_add(4);
    }
    w.finish()
}

/// The host's side: reads the guest's answer. `Ok(None)` is a guest that
/// found no common version.
pub fn parse_response(pkt: &[u8]) -> Result<Option<Agreement>> {
    super::icmsg::expect_response(pkt, MSG_NEGOTIATE)?;
    let r = Reader::new(pkt);
    let counts = (r.u16(ICMSG_HDR)?, r.u16(ICMSG_HDR + 2)?);
    match counts {
        (0, 0) => Ok(None),
        (1, 1) => Ok(Some(Agreement {
            framework: IcVersion::read(&r, VERSIONS_AT)?,
            service: IcVersion::read(&r, VERSIONS_AT + 4)?,
        })),
        _ => Err(Error::BadField("icframe_vercnt")),
    }
}
