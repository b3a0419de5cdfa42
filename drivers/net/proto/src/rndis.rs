//! RNDIS, the message set NVSP carries: data packets (with their per-packet
//! information, see [`super::ppi`]) and the control messages that
//! initialize the device, query and set OIDs, and indicate status.
//!
//! Every RNDIS message is an 8-byte header (`ndis_msg_type`, `msg_len`)
//! followed by a type-specific body. Offsets inside a body
//! (`data_offset`, `per_pkt_info_offset`, `info_buf_offset`,
//! `status_buf_offset`) count from the start of the body, not of the
//! message. The parser checks `msg_len` against the bytes given and every
//! offset and length against `msg_len`; parsed messages borrow their
//! variable parts (frame, PPI list, information buffer) from the caller's
//! bytes, which must already be a private copy, never shared memory.

use core::mem::{offset_of, size_of};

use super::ppi::{self, Ppi};
use super::wire::{add, need, to_u32, to_usize, Error, Reader, Result, Writer};

/// `RNDIS_MAJOR_VERSION`.
pub const MAJOR_VERSION: u32 = 1;
/// `RNDIS_MINOR_VERSION`.
pub const MINOR_VERSION: u32 = 0;
/// The `max_xfer_size` the C guest asks for in INITIALIZE.
pub const GUEST_MAX_XFER_SIZE: u32 = 0x4000;
/// `RNDIS_MEDIUM_802_3`.
pub const MEDIUM_802_3: u32 = 0;
/// `RNDIS_DF_CONNECTIONLESS`.
pub const DF_CONNECTIONLESS: u32 = 1;
/// Largest `pkt_alignment_factor` accepted (a 4 KiB alignment; the C driver
/// shifts by whatever the host says).
pub const MAX_ALIGNMENT_FACTOR: u32 = 12;

/// Message types (`RNDIS_MSG_*`).
pub mod msg {
    /// Set in the type of a completion.
    pub const COMPLETION: u32 = 0x8000_0000;
    /// `RNDIS_MSG_PACKET`.
    pub const PACKET: u32 = 1;
    /// `RNDIS_MSG_INIT`.
    pub const INIT: u32 = 2;
    /// `RNDIS_MSG_INIT_C`.
    pub const INIT_C: u32 = INIT | COMPLETION;
    /// `RNDIS_MSG_HALT`.
    pub const HALT: u32 = 3;
    /// `RNDIS_MSG_QUERY`.
    pub const QUERY: u32 = 4;
    /// `RNDIS_MSG_QUERY_C`.
    pub const QUERY_C: u32 = QUERY | COMPLETION;
    /// `RNDIS_MSG_SET`.
    pub const SET: u32 = 5;
    /// `RNDIS_MSG_SET_C`.
    pub const SET_C: u32 = SET | COMPLETION;
    /// `RNDIS_MSG_RESET`.
    pub const RESET: u32 = 6;
    /// `RNDIS_MSG_RESET_C`.
    pub const RESET_C: u32 = RESET | COMPLETION;
    /// `RNDIS_MSG_INDICATE`.
    pub const INDICATE: u32 = 7;
    /// `RNDIS_MSG_KEEPALIVE`.
    pub const KEEPALIVE: u32 = 8;
    /// `RNDIS_MSG_KEEPALIVE_C`.
    pub const KEEPALIVE_C: u32 = KEEPALIVE | COMPLETION;
}

/// Status values (`RNDIS_STATUS_*`) used in completions and indications.
pub mod status {
    /// `RNDIS_STATUS_SUCCESS`.
    pub const SUCCESS: u32 = 0;
    /// `RNDIS_STATUS_PENDING`.
    pub const PENDING: u32 = 0x0000_0103;
    /// `RNDIS_STATUS_MEDIA_CONNECT`.
    pub const MEDIA_CONNECT: u32 = 0x4001_000b;
    /// `RNDIS_STATUS_MEDIA_DISCONNECT`.
    pub const MEDIA_DISCONNECT: u32 = 0x4001_000c;
    /// `RNDIS_STATUS_LINK_SPEED_CHANGE`: the buffer holds the new speed.
    pub const LINK_SPEED_CHANGE: u32 = 0x4001_0013;
    /// `RNDIS_STATUS_NETWORK_CHANGE`.
    pub const NETWORK_CHANGE: u32 = 0x4001_0018;
    /// `RNDIS_STATUS_FAILURE`.
    pub const FAILURE: u32 = 0xc000_0001;
    /// `RNDIS_STATUS_NOT_SUPPORTED`.
    pub const NOT_SUPPORTED: u32 = 0xc000_00bb;
    /// `RNDIS_STATUS_INVALID_DATA`.
    pub const INVALID_DATA: u32 = 0xc001_0015;
    /// `RNDIS_STATUS_BUFFER_TOO_SHORT`.
    pub const BUFFER_TOO_SHORT: u32 = 0xc001_0016;
    /// `RNDIS_STATUS_INVALID_OID`.
    pub const INVALID_OID: u32 = 0xc001_0017;
}

// ---------------------------------------------------------------------------
// Wire layouts (hyperv_net.h).

/// The head of `struct rndis_message`.
#[repr(C)]
pub struct HeaderWire {
    /// `ndis_msg_type`.
    pub ndis_msg_type: u32,
    /// `msg_len`: the whole message, header included.
    pub msg_len: u32,
}

/// `RNDIS_HEADER_SIZE`.
pub const HEADER_SIZE: usize = size_of::<HeaderWire>();

/// `struct rndis_packet`.
#[repr(C)]
pub struct PacketWire {
    /// `data_offset`.
    pub data_offset: u32,
    /// `data_len`.
    pub data_len: u32,
    /// `oob_data_offset`.
    pub oob_data_offset: u32,
    /// `oob_data_len`.
    pub oob_data_len: u32,
    /// `num_oob_data_elements`.
    pub num_oob_data_elements: u32,
    /// `per_pkt_info_offset`.
    pub per_pkt_info_offset: u32,
    /// `per_pkt_info_len`.
    pub per_pkt_info_len: u32,
    /// `vc_handle`.
    pub vc_handle: u32,
    /// `reserved`.
    pub reserved: u32,
}

/// `struct rndis_initialize_request`.
#[repr(C)]
pub struct InitRequestWire {
    /// `req_id`.
    pub req_id: u32,
    /// `major_ver`.
    pub major_ver: u32,
    /// `minor_ver`.
    pub minor_ver: u32,
    /// `max_xfer_size`.
    pub max_xfer_size: u32,
}

/// `struct rndis_initialize_complete`.
#[repr(C)]
pub struct InitCompleteWire {
    /// `req_id`.
    pub req_id: u32,
    /// `status`.
    pub status: u32,
    /// `major_ver`.
    pub major_ver: u32,
    /// `minor_ver`.
    pub minor_ver: u32,
    /// `dev_flags`.
    pub dev_flags: u32,
    /// `medium`.
    pub medium: u32,
    /// `max_pkt_per_msg`.
    pub max_pkt_per_msg: u32,
    /// `max_xfer_size`.
    pub max_xfer_size: u32,
    /// `pkt_alignment_factor`.
    pub pkt_alignment_factor: u32,
    /// `af_list_offset`.
    pub af_list_offset: u32,
    /// `af_list_size`.
    pub af_list_size: u32,
}

/// `struct rndis_query_request`; `struct rndis_set_request` has the same
/// layout (with its information buffer following).
#[repr(C)]
pub struct RequestWire {
    /// `req_id`.
    pub req_id: u32,
    /// `oid`.
    pub oid: u32,
    /// `info_buflen`.
    pub info_buflen: u32,
    /// `info_buf_offset`.
    pub info_buf_offset: u32,
    /// `dev_vc_handle`.
    pub dev_vc_handle: u32,
}

/// `struct rndis_query_complete`.
#[repr(C)]
pub struct QueryCompleteWire {
    /// `req_id`.
    pub req_id: u32,
    /// `status`.
    pub status: u32,
    /// `info_buflen`.
    pub info_buflen: u32,
    /// `info_buf_offset`.
    pub info_buf_offset: u32,
}

/// `struct rndis_set_complete`; `struct rndis_keepalive_complete` has the
/// same layout.
#[repr(C)]
pub struct StatusCompleteWire {
    /// `req_id`.
    pub req_id: u32,
    /// `status`.
    pub status: u32,
}

/// `struct rndis_reset_complete`.
#[repr(C)]
pub struct ResetCompleteWire {
    /// `status`.
    pub status: u32,
    /// `addressing_reset`.
    pub addressing_reset: u32,
}

/// `struct rndis_indicate_status`.
#[repr(C)]
pub struct IndicateStatusWire {
    /// `status`.
    pub status: u32,
    /// `status_buflen`.
    pub status_buflen: u32,
    /// `status_buf_offset`.
    pub status_buf_offset: u32,
}

/// `struct rndis_halt_request`, `struct rndis_keepalive_request` and
/// `struct rndis_reset_request` (whose one field is `reserved`).
#[repr(C)]
pub struct ReqIdWire {
    /// `req_id`.
    pub req_id: u32,
}

/// `RNDIS_MESSAGE_SIZE(struct rndis_packet)`: header and packet, where the
/// PPIs start.
pub const PACKET_HEADER_SIZE: usize = HEADER_SIZE + size_of::<PacketWire>();

// ---------------------------------------------------------------------------
// Parsed messages.

/// A data packet: one Ethernet frame and its per-packet information.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The frame.
    pub data: &'a [u8],
    /// The PPI list (empty if none); walk it with [`ppi::PpiIter`].
    pub ppis: &'a [u8],
}

impl Packet<'_> {
    /// Interprets the PPI list.
    pub fn info(&self) -> Result<ppi::RxInfo> {
        ppi::RxInfo::collect(self.ppis)
    }
}

/// INITIALIZE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitRequest {
    /// `req_id`.
    pub req_id: u32,
    /// `major_ver`.
    pub major: u32,
    /// `minor_ver`.
    pub minor: u32,
    /// `max_xfer_size`.
    pub max_xfer_size: u32,
}

/// INITIALIZE_CMPLT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitComplete {
    /// `req_id`.
    pub req_id: u32,
    /// An RNDIS [`status`].
    pub status: u32,
    /// `major_ver`.
    pub major: u32,
    /// `minor_ver`.
    pub minor: u32,
    /// `dev_flags`.
    pub dev_flags: u32,
    /// `medium`.
    pub medium: u32,
    /// `max_pkt_per_msg`: packets the host takes in one message.
    pub max_pkt_per_msg: u32,
    /// `max_xfer_size`.
    pub max_xfer_size: u32,
    /// `pkt_alignment_factor`: packets in one message are aligned to
    /// `1 << factor`.
    pub pkt_alignment_factor: u32,
    /// `af_list_offset`.
    pub af_list_offset: u32,
    /// `af_list_size`.
    pub af_list_size: u32,
}

impl InitComplete {
    /// The packet alignment in bytes, or an error for a factor above
    /// [`MAX_ALIGNMENT_FACTOR`].
    pub fn packet_alignment(&self) -> Result<u32> {
        if self.pkt_alignment_factor > MAX_ALIGNMENT_FACTOR {
            return Err(Error::BadField("pkt_alignment_factor"));
        }
        1u32.checked_shl(self.pkt_alignment_factor)
            .ok_or(Error::BadField("pkt_alignment_factor"))
    }
}

/// QUERY or SET: an OID and its information buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// `req_id`.
    pub req_id: u32,
    /// The OID (see [`super::ndis::oid`]).
    pub oid: u32,
    /// The information buffer.
    pub info: &'a [u8],
}

/// QUERY_CMPLT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryComplete<'a> {
    /// `req_id`.
    pub req_id: u32,
    /// An RNDIS [`status`].
    pub status: u32,
    /// The information buffer.
    pub info: &'a [u8],
}

/// INDICATE_STATUS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Indication<'a> {
    /// An RNDIS [`status`] saying what happened.
    pub status: u32,
    /// The status buffer.
    pub buf: &'a [u8],
}

/// What an INDICATE_STATUS means to a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusEvent {
    /// The link is up.
    MediaConnect,
    /// The link is down.
    MediaDisconnect,
    /// The link speed changed; in units of 100 bit/s.
    LinkSpeed(u32),
    /// The network changed (the guest bounces the link to renew DHCP).
    NetworkChange,
    /// Anything else; the C driver ignores it.
    Other(u32),
}

impl Indication<'_> {
    /// What the indication means; fails for a speed change without a
    /// 4-byte speed.
    pub fn event(&self) -> Result<StatusEvent> {
        Ok(match self.status {
            status::MEDIA_CONNECT => StatusEvent::MediaConnect,
            status::MEDIA_DISCONNECT => StatusEvent::MediaDisconnect,
            status::NETWORK_CHANGE => StatusEvent::NetworkChange,
            status::LINK_SPEED_CHANGE => StatusEvent::LinkSpeed(
                Reader::new(self.buf)
                    .u32(0)
                    .map_err(|_| Error::BadField("status_buflen"))?,
            ),
            other => StatusEvent::Other(other),
        })
    }
}

/// An RNDIS message, parsed and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// PACKET_MSG.
    Packet(Packet<'a>),
    /// INITIALIZE_MSG.
    Initialize(InitRequest),
    /// INITIALIZE_CMPLT.
    InitializeComplete(InitComplete),
    /// HALT_MSG.
    Halt {
        /// `req_id`.
        req_id: u32,
    },
    /// QUERY_MSG.
    Query(Request<'a>),
    /// QUERY_CMPLT.
    QueryComplete(QueryComplete<'a>),
    /// SET_MSG.
    Set(Request<'a>),
    /// SET_CMPLT.
    SetComplete {
        /// `req_id`.
        req_id: u32,
        /// An RNDIS [`status`].
        status: u32,
    },
    /// RESET_MSG.
    Reset,
    /// RESET_CMPLT.
    ResetComplete {
        /// An RNDIS [`status`].
        status: u32,
        /// `addressing_reset`.
        addressing_reset: u32,
    },
    /// INDICATE_STATUS_MSG.
    IndicateStatus(Indication<'a>),
    /// KEEPALIVE_MSG.
    KeepAlive {
        /// `req_id`.
        req_id: u32,
    },
    /// KEEPALIVE_CMPLT.
    KeepAliveComplete {
        /// `req_id`.
        req_id: u32,
        /// An RNDIS [`status`].
        status: u32,
    },
}

/// The body size each message type needs, or `None` for unknown types.
pub fn body_size(msg_type: u32) -> Option<usize> {
    Some(match msg_type {
        msg::PACKET => size_of::<PacketWire>(),
        msg::INIT => size_of::<InitRequestWire>(),
        msg::INIT_C => size_of::<InitCompleteWire>(),
        msg::HALT | msg::RESET | msg::KEEPALIVE => size_of::<ReqIdWire>(),
        msg::QUERY | msg::SET => size_of::<RequestWire>(),
        msg::QUERY_C => size_of::<QueryCompleteWire>(),
        msg::SET_C | msg::KEEPALIVE_C => size_of::<StatusCompleteWire>(),
        msg::RESET_C => size_of::<ResetCompleteWire>(),
        msg::INDICATE => size_of::<IndicateStatusWire>(),
        _ => return None,
    })
}

/// Every message type this module handles.
pub const ALL_TYPES: [u32; 13] = [
    msg::PACKET,
    msg::INIT,
    msg::INIT_C,
    msg::HALT,
    msg::QUERY,
    msg::QUERY_C,
    msg::SET,
    msg::SET_C,
    msg::RESET,
    msg::RESET_C,
    msg::INDICATE,
    msg::KEEPALIVE,
    msg::KEEPALIVE_C,
];

/// The `len` bytes at `offset` in `body`, where `offset` may not point into
/// the first `fixed` bytes (the body's own fields). An empty buffer is
/// accepted whatever its offset.
fn buffer_at<'a>(
    body: &'a [u8],
    offset: u32,
    len: u32,
    fixed: usize,
    field: &'static str,
) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    let offset = to_usize(offset);
    if offset < fixed {
        return Err(Error::BadField(field));
    }
    super::wire::slice_at(body, offset, to_usize(len)).ok_or(Error::BadField(field))
}

impl<'a> Message<'a> {
    /// The wire message type.
    pub fn msg_type(&self) -> u32 {
        match self {
            Message::Packet(_) => msg::PACKET,
            Message::Initialize(_) => msg::INIT,
            Message::InitializeComplete(_) => msg::INIT_C,
            Message::Halt { .. } => msg::HALT,
            Message::Query(_) => msg::QUERY,
            Message::QueryComplete(_) => msg::QUERY_C,
            Message::Set(_) => msg::SET,
            Message::SetComplete { .. } => msg::SET_C,
            Message::Reset => msg::RESET,
            Message::ResetComplete { .. } => msg::RESET_C,
            Message::IndicateStatus(_) => msg::INDICATE,
            Message::KeepAlive { .. } => msg::KEEPALIVE,
            Message::KeepAliveComplete { .. } => msg::KEEPALIVE_C,
        }
    }

    /// The request id of a request or completion that has one.
    pub fn req_id(&self) -> Option<u32> {
        match *self {
            Message::Initialize(InitRequest { req_id, .. })
            | Message::InitializeComplete(InitComplete { req_id, .. })
            | Message::Halt { req_id }
            | Message::Query(Request { req_id, .. })
            | Message::QueryComplete(QueryComplete { req_id, .. })
            | Message::Set(Request { req_id, .. })
            | Message::SetComplete { req_id, .. }
            | Message::KeepAlive { req_id }
            | Message::KeepAliveComplete { req_id, .. } => Some(req_id),
            _ => None,
        }
    }

    /// Parses one RNDIS message at the start of `bytes` (a copy of the
    /// transfer-page range, send-buffer section or page buffer). The
    /// message is `msg_len` bytes; what follows it is ignored, except that
    /// an INDICATE_STATUS buffer may reach past `msg_len` into the rest of
    /// `bytes`, because older Hyper-V switches left it out of `msg_len`
    /// (the C driver allows that too).
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>> {
        let r = Reader::new(bytes);
        let ty = r.u32(offset_of!(HeaderWire, ndis_msg_type))?;
        let msg_len = to_usize(r.u32(offset_of!(HeaderWire, msg_len))?);
        let body_len = body_size(ty).ok_or(Error::UnknownType(ty))?;
        if msg_len < HEADER_SIZE {
            return Err(Error::BadField("msg_len"));
        }
        need(bytes, msg_len)?;
        let whole = bytes.get(..msg_len).unwrap_or(&[]);
        let body = whole.get(HEADER_SIZE..).unwrap_or(&[]);
        need(body, body_len).map_err(|_| Error::TooShort {
            need: HEADER_SIZE.saturating_add(body_len),
            len: msg_len,
        })?;
        let b = Reader::new(body);
        Ok(match ty {
            msg::PACKET => Message::Packet(parse_packet(body)?),
            msg::INIT => Message::Initialize(InitRequest {
                req_id: b.u32(offset_of!(InitRequestWire, req_id))?,
                major: b.u32(offset_of!(InitRequestWire, major_ver))?,
                minor: b.u32(offset_of!(InitRequestWire, minor_ver))?,
                max_xfer_size: b.u32(offset_of!(InitRequestWire, max_xfer_size))?,
            }),
            msg::INIT_C => Message::InitializeComplete(InitComplete {
                req_id: b.u32(offset_of!(InitCompleteWire, req_id))?,
                status: b.u32(offset_of!(InitCompleteWire, status))?,
                major: b.u32(offset_of!(InitCompleteWire, major_ver))?,
                minor: b.u32(offset_of!(InitCompleteWire, minor_ver))?,
                dev_flags: b.u32(offset_of!(InitCompleteWire, dev_flags))?,
                medium: b.u32(offset_of!(InitCompleteWire, medium))?,
                max_pkt_per_msg: b.u32(offset_of!(InitCompleteWire, max_pkt_per_msg))?,
                max_xfer_size: b.u32(offset_of!(InitCompleteWire, max_xfer_size))?,
                pkt_alignment_factor: b.u32(offset_of!(InitCompleteWire, pkt_alignment_factor))?,
                af_list_offset: b.u32(offset_of!(InitCompleteWire, af_list_offset))?,
                af_list_size: b.u32(offset_of!(InitCompleteWire, af_list_size))?,
            }),
            msg::HALT => Message::Halt {
                req_id: b.u32(offset_of!(ReqIdWire, req_id))?,
            },
            msg::RESET => Message::Reset,
            msg::KEEPALIVE => Message::KeepAlive {
                req_id: b.u32(offset_of!(ReqIdWire, req_id))?,
            },
            msg::QUERY | msg::SET => {
                let req = Request {
                    req_id: b.u32(offset_of!(RequestWire, req_id))?,
                    oid: b.u32(offset_of!(RequestWire, oid))?,
                    info: buffer_at(
                        body,
                        b.u32(offset_of!(RequestWire, info_buf_offset))?,
                        b.u32(offset_of!(RequestWire, info_buflen))?,
                        size_of::<RequestWire>(),
                        "info_buf_offset",
                    )?,
                };
                if ty == msg::QUERY {
                    Message::Query(req)
                } else {
                    Message::Set(req)
                }
            }
            msg::QUERY_C => Message::QueryComplete(QueryComplete {
                req_id: b.u32(offset_of!(QueryCompleteWire, req_id))?,
                status: b.u32(offset_of!(QueryCompleteWire, status))?,
                info: buffer_at(
                    body,
                    b.u32(offset_of!(QueryCompleteWire, info_buf_offset))?,
                    b.u32(offset_of!(QueryCompleteWire, info_buflen))?,
                    size_of::<QueryCompleteWire>(),
                    "info_buf_offset",
                )?,
            }),
            msg::SET_C => Message::SetComplete {
                req_id: b.u32(offset_of!(StatusCompleteWire, req_id))?,
                status: b.u32(offset_of!(StatusCompleteWire, status))?,
            },
            msg::KEEPALIVE_C => Message::KeepAliveComplete {
                req_id: b.u32(offset_of!(StatusCompleteWire, req_id))?,
                status: b.u32(offset_of!(StatusCompleteWire, status))?,
            },
            msg::RESET_C => Message::ResetComplete {
                status: b.u32(offset_of!(ResetCompleteWire, status))?,
                addressing_reset: b.u32(offset_of!(ResetCompleteWire, addressing_reset))?,
            },
            msg::INDICATE => {
                let all = bytes.get(HEADER_SIZE..).unwrap_or(&[]);
                Message::IndicateStatus(Indication {
                    status: b.u32(offset_of!(IndicateStatusWire, status))?,
                    buf: buffer_at(
                        all,
                        b.u32(offset_of!(IndicateStatusWire, status_buf_offset))?,
                        b.u32(offset_of!(IndicateStatusWire, status_buflen))?,
                        size_of::<IndicateStatusWire>(),
                        "status_buf_offset",
                    )?,
                })
            }
            _ => return Err(Error::UnknownType(ty)),
        })
    }

    /// Writes the message into `buf` and returns its length (`msg_len`).
    /// Information and status buffers follow the fixed body directly; a
    /// packet's PPIs follow the packet header and its frame follows them.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize> {
        if let Message::Packet(p) = self {
            return write_packet(buf, p.ppis, p.data);
        }
        let ty = self.msg_type();
        let body_len = body_size(ty).ok_or(Error::UnknownType(ty))?;
        let fixed = HEADER_SIZE.saturating_add(body_len);
        let mut w = Writer::new(buf, fixed);
        const B: usize = HEADER_SIZE;
        let mut tail: &[u8] = &[];
        match *self {
            Message::Packet(_) => {}
            Message::Initialize(i) => {
                w.u32(B + offset_of!(InitRequestWire, req_id), i.req_id);
                w.u32(B + offset_of!(InitRequestWire, major_ver), i.major);
                w.u32(B + offset_of!(InitRequestWire, minor_ver), i.minor);
                w.u32(
                    B + offset_of!(InitRequestWire, max_xfer_size),
                    i.max_xfer_size,
                );
            }
            Message::InitializeComplete(c) => {
                w.u32(B + offset_of!(InitCompleteWire, req_id), c.req_id);
                w.u32(B + offset_of!(InitCompleteWire, status), c.status);
                w.u32(B + offset_of!(InitCompleteWire, major_ver), c.major);
                w.u32(B + offset_of!(InitCompleteWire, minor_ver), c.minor);
                w.u32(B + offset_of!(InitCompleteWire, dev_flags), c.dev_flags);
                w.u32(B + offset_of!(InitCompleteWire, medium), c.medium);
                w.u32(
                    B + offset_of!(InitCompleteWire, max_pkt_per_msg),
                    c.max_pkt_per_msg,
                );
                w.u32(
                    B + offset_of!(InitCompleteWire, max_xfer_size),
                    c.max_xfer_size,
                );
                w.u32(
                    B + offset_of!(InitCompleteWire, pkt_alignment_factor),
                    c.pkt_alignment_factor,
                );
                w.u32(
                    B + offset_of!(InitCompleteWire, af_list_offset),
                    c.af_list_offset,
                );
                w.u32(
                    B + offset_of!(InitCompleteWire, af_list_size),
                    c.af_list_size,
                );
            }
            Message::Halt { req_id } | Message::KeepAlive { req_id } => {
                w.u32(B + offset_of!(ReqIdWire, req_id), req_id);
            }
            Message::Reset => {}
            Message::Query(r) | Message::Set(r) => {
                w.u32(B + offset_of!(RequestWire, req_id), r.req_id);
                w.u32(B + offset_of!(RequestWire, oid), r.oid);
                w.u32(
                    B + offset_of!(RequestWire, info_buflen),
                    to_u32(r.info.len(), "info_buflen")?,
                );
                w.u32(
                    B + offset_of!(RequestWire, info_buf_offset),
                    size_of::<RequestWire>() as u32,
                );
                tail = r.info;
            }
            Message::QueryComplete(c) => {
                w.u32(B + offset_of!(QueryCompleteWire, req_id), c.req_id);
                w.u32(B + offset_of!(QueryCompleteWire, status), c.status);
                w.u32(
                    B + offset_of!(QueryCompleteWire, info_buflen),
                    to_u32(c.info.len(), "info_buflen")?,
                );
                w.u32(
                    B + offset_of!(QueryCompleteWire, info_buf_offset),
                    size_of::<QueryCompleteWire>() as u32,
                );
                tail = c.info;
            }
            Message::SetComplete { req_id, status }
            | Message::KeepAliveComplete { req_id, status } => {
                w.u32(B + offset_of!(StatusCompleteWire, req_id), req_id);
                w.u32(B + offset_of!(StatusCompleteWire, status), status);
            }
            Message::ResetComplete {
                status,
                addressing_reset,
            } => {
                w.u32(B + offset_of!(ResetCompleteWire, status), status);
                w.u32(
                    B + offset_of!(ResetCompleteWire, addressing_reset),
                    addressing_reset,
                );
            }
            Message::IndicateStatus(i) => {
                w.u32(B + offset_of!(IndicateStatusWire, status), i.status);
                w.u32(
                    B + offset_of!(IndicateStatusWire, status_buflen),
                    to_u32(i.buf.len(), "status_buflen")?,
                );
                w.u32(
                    B + offset_of!(IndicateStatusWire, status_buf_offset),
                    size_of::<IndicateStatusWire>() as u32,
                );
                tail = i.buf;
            }
        }
        w.bytes(fixed, tail);
        let len = add(fixed, tail.len(), "msg_len")?;
        w.u32(offset_of!(HeaderWire, ndis_msg_type), ty);
        w.u32(offset_of!(HeaderWire, msg_len), to_u32(len, "msg_len")?);
        w.finish()
    }
}

/// Checks a data packet's body: the frame lies after the packet header and
/// within the message, and so does the PPI list (if `per_pkt_info_offset`
/// is not 0). Out-of-band data, which no Hyper-V host sends, is ignored as
/// in the C driver.
fn parse_packet(body: &[u8]) -> Result<Packet<'_>> {
    let b = Reader::new(body);
    let fixed = size_of::<PacketWire>();
    let data_offset = to_usize(b.u32(offset_of!(PacketWire, data_offset))?);
    let data_len = to_usize(b.u32(offset_of!(PacketWire, data_len))?);
    if data_offset < fixed {
        return Err(Error::BadField("data_offset"));
    }
    let data =
        super::wire::slice_at(body, data_offset, data_len).ok_or(Error::BadField("data_len"))?;
    let ppi_offset = b.u32(offset_of!(PacketWire, per_pkt_info_offset))?;
    let ppi_len = b.u32(offset_of!(PacketWire, per_pkt_info_len))?;
    let ppis = if ppi_offset == 0 {
        &[][..]
    } else {
        buffer_at(body, ppi_offset, ppi_len, fixed, "per_pkt_info_offset")?
    };
    Ok(Packet { data, ppis })
}

/// Where a received data packet's frame lies, found from a copy of the
/// message's first bytes: the header and PPIs are checked in that copy,
/// and the frame is then copied once, straight from the receive buffer to
/// where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHead<'a> {
    /// The frame's offset from the start of the message.
    pub data_offset: usize,
    /// The frame's length.
    pub data_len: usize,
    /// The PPI list (empty if none), inside the copy.
    pub ppis: &'a [u8],
}

/// The layout of the data packet at the start of a `len`-byte range, whose
/// first bytes `head` holds (a copy). `None` when it is not a data packet,
/// is malformed, or its PPI list reaches past `head`: then copy the whole
/// range and use [`Message::parse`], which decides. A `Some` is exactly
/// what [`Message::parse`] of the whole range would find.
pub fn parse_packet_head(head: &[u8], len: usize) -> Option<PacketHead<'_>> {
    let r = Reader::new(head);
    if r.u32(offset_of!(HeaderWire, ndis_msg_type)).ok()? != msg::PACKET {
        return None;
    }
    let msg_len = to_usize(r.u32(offset_of!(HeaderWire, msg_len)).ok()?);
    if msg_len > len || msg_len < PACKET_HEADER_SIZE {
        return None;
    }
    let body = head.get(HEADER_SIZE..msg_len.min(head.len()))?;
    let b = Reader::new(body);
    let fixed = size_of::<PacketWire>();
    let data_offset = to_usize(b.u32(offset_of!(PacketWire, data_offset)).ok()?);
    let data_len = to_usize(b.u32(offset_of!(PacketWire, data_len)).ok()?);
    if data_offset < fixed || data_offset.checked_add(data_len)? > msg_len - HEADER_SIZE {
        return None;
    }
    let ppi_offset = b.u32(offset_of!(PacketWire, per_pkt_info_offset)).ok()?;
    let ppi_len = b.u32(offset_of!(PacketWire, per_pkt_info_len)).ok()?;
    let ppis = if ppi_offset == 0 {
        &[][..]
    } else {
        buffer_at(body, ppi_offset, ppi_len, fixed, "per_pkt_info_offset").ok()?
    };
    Some(PacketHead { data_offset: HEADER_SIZE + data_offset, data_len, ppis })
}

/// Writes a data packet's RNDIS header and PPI list (raw bytes) for a frame
/// of `data_len` bytes that follows them, and returns the header's length
/// (where the frame goes). `msg_len` includes the frame. This is the send
/// path's form: the frame itself travels in its own page ranges.
pub fn write_packet_header_raw(buf: &mut [u8], ppis: &[u8], data_len: usize) -> Result<usize> {
    let mut w = Writer::new(buf, PACKET_HEADER_SIZE);
    const B: usize = HEADER_SIZE;
    let fixed = size_of::<PacketWire>();
    let data_offset = add(fixed, ppis.len(), "data_offset")?;
    let msg_len = add(
        add(HEADER_SIZE, data_offset, "msg_len")?,
        data_len,
        "msg_len",
    )?;
    w.u32(offset_of!(HeaderWire, ndis_msg_type), msg::PACKET);
    w.u32(offset_of!(HeaderWire, msg_len), to_u32(msg_len, "msg_len")?);
    w.u32(
        B + offset_of!(PacketWire, data_offset),
        to_u32(data_offset, "data_offset")?,
    );
    w.u32(
        B + offset_of!(PacketWire, data_len),
        to_u32(data_len, "data_len")?,
    );
    // The C driver always points per_pkt_info_offset just past the header.
    w.u32(
        B + offset_of!(PacketWire, per_pkt_info_offset),
        fixed as u32,
    );
    w.u32(
        B + offset_of!(PacketWire, per_pkt_info_len),
        to_u32(ppis.len(), "per_pkt_info_len")?,
    );
    w.bytes(PACKET_HEADER_SIZE, ppis);
    w.finish()
}

/// [`write_packet_header_raw`] with typed PPIs, each written as a 16-byte
/// record as the C driver does.
pub fn write_packet_header(buf: &mut [u8], ppis: &[Ppi], data_len: usize) -> Result<usize> {
    let mut list = [0u8; 8 * ppi::PPI_SIZE];
    if ppis.len() > 8 {
        return Err(Error::BadField("per_pkt_info_len"));
    }
    let n = ppi::write_list(&mut list, ppis)?;
    write_packet_header_raw(buf, list.get(..n).unwrap_or(&[]), data_len)
}

/// Writes a whole data packet: header, raw PPI list and frame.
pub fn write_packet(buf: &mut [u8], ppis: &[u8], data: &[u8]) -> Result<usize> {
    let head = write_packet_header_raw(buf, ppis, data.len())?;
    let end = add(head, data.len(), "msg_len")?;
    let len = buf.len();
    let dst = buf
        .get_mut(head..end)
        .ok_or(Error::BufferTooSmall { need: end, len })?;
    super::wire::copy(dst, data);
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_c_structs() {
        assert_eq!(HEADER_SIZE, 8);
        assert_eq!(size_of::<PacketWire>(), 36);
        assert_eq!(PACKET_HEADER_SIZE, 44);
        assert_eq!(size_of::<InitRequestWire>(), 16);
        assert_eq!(size_of::<InitCompleteWire>(), 44);
        assert_eq!(size_of::<RequestWire>(), 20);
        assert_eq!(size_of::<QueryCompleteWire>(), 16);
        assert_eq!(size_of::<StatusCompleteWire>(), 8);
        assert_eq!(size_of::<ResetCompleteWire>(), 8);
        assert_eq!(size_of::<IndicateStatusWire>(), 12);
        assert_eq!(size_of::<ReqIdWire>(), 4);
    }

    #[test]
    fn alignment_factor_is_bounded() {
        let mut c = InitComplete {
            req_id: 1,
            status: 0,
            major: 1,
            minor: 0,
            dev_flags: 1,
            medium: 0,
            max_pkt_per_msg: 8,
            max_xfer_size: 0x4000,
            pkt_alignment_factor: 3,
            af_list_offset: 0,
            af_list_size: 0,
        };
        assert_eq!(c.packet_alignment(), Ok(8));
        c.pkt_alignment_factor = 40;
        assert!(c.packet_alignment().is_err());
    }
}
