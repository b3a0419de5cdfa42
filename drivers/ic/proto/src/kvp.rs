//! The KVP (data exchange) service: the host's `struct hv_kvp_msg` (and
//! `struct hv_kvp_ip_msg` for IP information) with UTF-16 strings, and the
//! same `struct hv_kvp_msg` with UTF-8 strings that the kernel and
//! `hv_kvp_daemon` exchange through `/dev/vmbus/hv_kvp`
//! (`include/uapi/linux/hyperv.h`), pinned byte for byte.
//!
//! The guest converts a host request to the daemon's form
//! ([`to_daemon`]), and the daemon's reply into the answer, in the host's
//! packet it kept ([`answer_host`]).

use super::icmsg::{self, ICMSG_HDR};
use super::utf16;
use super::wire::{self, Error, Reader, Result, Writer};

/// `HV_KVP_EXCHANGE_MAX_KEY_SIZE`: bytes of a key.
pub const MAX_KEY_SIZE: usize = 512;
/// `HV_KVP_EXCHANGE_MAX_VALUE_SIZE`: bytes of a value.
pub const MAX_VALUE_SIZE: usize = 2048;
/// `sizeof(struct hv_kvp_msg)`: 4-byte header, a 7428-byte body (the
/// union of the IP value, 7426 bytes, rounded up to its 4-byte alignment).
pub const MSG_SIZE: usize = 7432;
/// `sizeof(struct hv_kvp_ip_msg)`: the host's IP-info message.
pub const IP_MSG_SIZE: usize = 7428;
/// `sizeof(struct hv_kvp_exchg_msg_value)`.
pub const VALUE_STRUCT_SIZE: usize = 12 + MAX_KEY_SIZE + MAX_VALUE_SIZE;

/// `KVP_OP_GET`.
pub const OP_GET: u8 = 0;
/// `KVP_OP_SET`.
pub const OP_SET: u8 = 1;
/// `KVP_OP_DELETE`.
pub const OP_DELETE: u8 = 2;
/// `KVP_OP_ENUMERATE`.
pub const OP_ENUMERATE: u8 = 3;
/// `KVP_OP_GET_IP_INFO`.
pub const OP_GET_IP_INFO: u8 = 4;
/// `KVP_OP_SET_IP_INFO`.
pub const OP_SET_IP_INFO: u8 = 5;
/// `KVP_OP_REGISTER`: an old daemon (no IP injection).
pub const OP_REGISTER: u8 = 4;
/// `KVP_OP_REGISTER1`: the daemon Debian ships.
pub const OP_REGISTER1: u8 = 100;
/// `KVP_POOL_COUNT`: pools 0 (external) to 4 (auto internal).
pub const POOL_COUNT: u8 = 5;
/// The version string the kernel registers with (`HV_DRV_VERSION`).
pub const DRIVER_VERSION: &[u8] = b"3.1";

/// `REG_SZ`: a UTF-16 string.
pub const REG_SZ: u32 = 1;
/// `REG_U32`.
pub const REG_U32: u32 = 4;
/// `REG_U64`.
pub const REG_U64: u32 = 8;

/// `MAX_ADAPTER_ID_SIZE`, `MAX_IP_ADDR_SIZE`, `MAX_GATEWAY_SIZE`: `u16`
/// units of each IP-info string.
pub const MAX_ADAPTER_ID: usize = 128;
/// See [`MAX_ADAPTER_ID`].
pub const MAX_IP_ADDR: usize = 1024;
/// See [`MAX_ADAPTER_ID`].
pub const MAX_GATEWAY: usize = 512;

/// Offsets inside `struct hv_kvp_msg` (from its start).
pub mod off {
    /// `kvp_hdr.operation` (or the first byte of `error`).
    pub const OPERATION: usize = 0;
    /// `kvp_hdr.pool`.
    pub const POOL: usize = 1;
    /// `body`.
    pub const BODY: usize = 4;
    /// `body.kvp_get/kvp_set.data.value_type`.
    pub const VALUE_TYPE: usize = 4;
    /// `...data.key_size`.
    pub const KEY_SIZE: usize = 8;
    /// `...data.value_size`.
    pub const VALUE_SIZE: usize = 12;
    /// `...data.key`.
    pub const KEY: usize = 16;
    /// `...data.value`.
    pub const VALUE: usize = 528;
    /// `body.kvp_enum_data.index`; its `data` follows, 4 bytes later than
    /// GET's.
    pub const ENUM_INDEX: usize = 4;
    /// `body.kvp_enum_data.data` minus `body.kvp_get.data`.
    pub const ENUM_SHIFT: usize = 4;
    /// `body.kvp_delete.key_size`.
    pub const DELETE_KEY_SIZE: usize = 4;
    /// `body.kvp_delete.key`.
    pub const DELETE_KEY: usize = 8;
    /// `body.kvp_register.version`.
    pub const REGISTER_VERSION: usize = 4;
    /// `body.kvp_ip_val` in `hv_kvp_msg`; in `hv_kvp_ip_msg` it is at 2.
    pub const IP_VAL: usize = 4;
    /// `hv_kvp_ip_msg.kvp_ip_val`.
    pub const IP_MSG_VAL: usize = 2;
    /// Inside `struct hv_kvp_ipaddr_value`: `adapter_id`.
    pub const IP_ADAPTER_ID: usize = 0;
    /// `addr_family`.
    pub const IP_ADDR_FAMILY: usize = 256;
    /// `dhcp_enabled`.
    pub const IP_DHCP: usize = 257;
    /// `ip_addr`.
    pub const IP_ADDR: usize = 258;
    /// `sub_net`.
    pub const IP_SUBNET: usize = 2306;
    /// `gate_way`.
    pub const IP_GATEWAY: usize = 4354;
    /// `dns_addr`.
    pub const IP_DNS: usize = 5378;
}

/// The IP-info strings: offset in `hv_kvp_ipaddr_value` and `u16` units.
const IP_STRINGS: [(usize, usize); 4] = [
    (off::IP_ADDR, MAX_IP_ADDR),
    (off::IP_SUBNET, MAX_IP_ADDR),
    (off::IP_GATEWAY, MAX_GATEWAY),
    (off::IP_DNS, MAX_IP_ADDR),
];

/// The packet length each operation needs, so that the answer written in
/// place fits: the headers and the part of the message the operation uses.
pub fn packet_len_for(op: u8) -> Result<usize> {
    let msg = match op {
        OP_GET | OP_SET => off::BODY + VALUE_STRUCT_SIZE,
        OP_ENUMERATE => off::BODY + off::ENUM_SHIFT + VALUE_STRUCT_SIZE,
        OP_DELETE => off::DELETE_KEY + MAX_KEY_SIZE,
        OP_GET_IP_INFO | OP_SET_IP_INFO => IP_MSG_SIZE,
        _ => return Err(Error::UnknownType(u32::from(op))),
    };
    Ok(ICMSG_HDR + msg)
}

/// A host request's operation and pool, checked: a known operation, a
/// pool below [`POOL_COUNT`] and a packet long enough for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// `KVP_OP_*`.
    pub operation: u8,
    /// `KVP_POOL_*`.
    pub pool: u8,
}

impl Request {
    /// Reads and checks the request at [`ICMSG_HDR`] of `pkt`.
    pub fn parse(pkt: &[u8]) -> Result<Request> {
        let r = Reader::new(pkt);
        let operation = r.u8(ICMSG_HDR + off::OPERATION)?;
        let pool = r.u8(ICMSG_HDR + off::POOL)?;
        wire::need(pkt, packet_len_for(operation)?)?;
        if pool >= POOL_COUNT {
            return Err(Error::BadField("pool"));
        }
        Ok(Request { operation, pool })
    }
}

/// A UTF-16 string of the host's: `size` bytes (terminator included) at
/// `at`, at most `max` bytes, an even count.
fn host_string<'a>(
    r: &Reader<'a>,
    at: usize,
    size: u32,
    max: usize,
    field: &'static str,
) -> Result<&'a [u8]> {
    let size = wire::to_usize(size);
    if size > max || size & 1 != 0 {
        return Err(Error::BadField(field));
    }
    r.slice(at, size)
}

/// Converts `src` (UTF-16LE) into `dst` as a NUL-terminated UTF-8 string;
/// returns the bytes written, terminator included (the size the daemon
/// expects).
fn to_c_utf8(src: &[u8], dst: &mut [u8]) -> Result<usize> {
    let room = dst
        .len()
        .checked_sub(1)
        .ok_or(Error::BufferTooSmall { need: 1, len: 0 })?;
    let n = utf16::to_utf8(src, dst.get_mut(..room).unwrap_or(&mut []))?;
    if let Some(b) = dst.get_mut(n) {
        *b = 0;
    }
    Ok(n.saturating_add(1))
}

/// A decimal number as ASCII into `dst`, NUL-terminated; returns the bytes
/// with the terminator.
fn decimal(mut v: u64, dst: &mut [u8]) -> Result<usize> {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        if let Some(d) = digits.get_mut(n) {
            *d = b'0' + (v % 10) as u8;
        }
        n += 1;
        v /= 10;
        if v == 0 || n >= digits.len() {
            break;
        }
    }
    let mut w = Writer::new(dst, 0);
    for i in 0..n {
        w.u8(
            i,
            digits
                .get(n.wrapping_sub(1).wrapping_sub(i))
                .copied()
                .unwrap_or(b'0'),
        );
    }
    w.u8(n, 0);
    w.finish()
}

/// The guest's side: builds in `dst` (at least [`MSG_SIZE`] bytes) the
/// message for the daemon from the host's request in `pkt`. Strings are
/// converted from UTF-16 with their sizes checked; a string that is not
/// valid UTF-16 or does not fit, or a SET of an unknown value type, is an
/// error, which the guest answers with `HV_E_FAIL`. Returns [`MSG_SIZE`].
pub fn to_daemon(pkt: &[u8], dst: &mut [u8]) -> Result<usize> {
    let req = Request::parse(pkt)?;
    let body = pkt.get(ICMSG_HDR..).unwrap_or(&[]);
    let r = Reader::new(body);
    wire::need(dst, MSG_SIZE).map_err(|_| Error::BufferTooSmall {
        need: MSG_SIZE,
        len: dst.len(),
    })?;
    let mut w = Writer::new(dst, MSG_SIZE);
    w.u8(off::OPERATION, req.operation);
    w.u8(off::POOL, req.pool);
    w.finish()?;
    match req.operation {
        OP_GET | OP_SET => {
            let key = host_string(
                &r,
                off::KEY,
                r.u32(off::KEY_SIZE)?,
                MAX_KEY_SIZE,
                "key_size",
            )?;
            let n = to_c_utf8(key, field(dst, off::KEY, MAX_KEY_SIZE)?)?;
            set_u32(dst, off::KEY_SIZE, n)?;
            if req.operation == OP_SET {
                let value_type = r.u32(off::VALUE_TYPE)?;
                let out = field(dst, off::VALUE, MAX_VALUE_SIZE)?;
                let n = match value_type {
                    REG_SZ => {
                        let v = host_string(
                            &r,
                            off::VALUE,
                            r.u32(off::VALUE_SIZE)?,
                            MAX_VALUE_SIZE,
                            "value_size",
                        )?;
                        to_c_utf8(v, out)?
                    }
                    REG_U32 => decimal(u64::from(r.u32(off::VALUE)?), out)?,
                    REG_U64 => decimal(r.u64(off::VALUE)?, out)?,
                    _ => return Err(Error::BadField("value_type")),
                };
                set_u32(dst, off::VALUE_SIZE, n)?;
                set_u32(dst, off::VALUE_TYPE, REG_SZ as usize)?;
            }
        }
        OP_DELETE => {
            let key = host_string(
                &r,
                off::DELETE_KEY,
                r.u32(off::DELETE_KEY_SIZE)?,
                MAX_KEY_SIZE,
                "key_size",
            )?;
            let n = to_c_utf8(key, field(dst, off::DELETE_KEY, MAX_KEY_SIZE)?)?;
            set_u32(dst, off::DELETE_KEY_SIZE, n)?;
        }
        OP_ENUMERATE => set_u32(
            dst,
            off::ENUM_INDEX,
            wire::to_usize(r.u32(off::ENUM_INDEX)?),
        )?,
        // OP_GET_IP_INFO | OP_SET_IP_INFO, the only others `parse` lets by.
        _ => {
            let ip = off::IP_MSG_VAL;
            let out = off::IP_VAL;
            let strings: &[(usize, usize)] = if req.operation == OP_SET_IP_INFO {
                &IP_STRINGS
            } else {
                &[]
            };
            for &(at, units) in strings
                .iter()
                .chain([(off::IP_ADAPTER_ID, MAX_ADAPTER_ID)].iter())
            {
                let src = r.slice(ip.saturating_add(at), units.saturating_mul(2))?;
                // The C driver gives each UTF-8 string `units` bytes.
                to_c_utf8(src, field(dst, out.saturating_add(at), units)?)?;
            }
            let mut w = Writer::new(dst, 0);
            w.u8(out + off::IP_ADDR_FAMILY, r.u8(ip + off::IP_ADDR_FAMILY)?);
            if req.operation == OP_SET_IP_INFO {
                w.u8(out + off::IP_DHCP, r.u8(ip + off::IP_DHCP)?);
            }
            w.finish()?;
        }
    }
    Ok(MSG_SIZE)
}

/// The window of `len` bytes at `at` in `dst`: one conversion's output.
fn field(dst: &mut [u8], at: usize, len: usize) -> Result<&mut [u8]> {
    let need = at.saturating_add(len);
    let n = dst.len();
    dst.get_mut(at..need)
        .ok_or(Error::BufferTooSmall { need, len: n })
}

fn set_u32(dst: &mut [u8], at: usize, v: usize) -> Result<()> {
    let mut w = Writer::new(dst, 0);
    w.u32(at, wire::to_u32(v, "size")?);
    w.finish().map(|_| ())
}

/// How a registered daemon reports errors (`KVP_OP_REGISTER` or
/// `KVP_OP_REGISTER1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaemonVersion {
    /// Old daemons: an empty key means "no such item" (`HV_S_CONT`).
    Register,
    /// Current daemons: the `error` field of the reply.
    Register1,
}

/// The kernel's view of what the daemon wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaemonMsg {
    /// A registration (only taken before one has succeeded).
    Register(DaemonVersion),
    /// The reply to the request in flight, with the status the host gets.
    Reply {
        /// `HV_S_OK` or the daemon's error.
        status: u32,
    },
}

/// Reads what the daemon wrote. Fewer than [`MSG_SIZE`] bytes is an error
/// (`-EINVAL` to the writer). Before registration (`registered` is `None`)
/// only the two registration operations are accepted.
pub fn parse_daemon(b: &[u8], registered: Option<DaemonVersion>) -> Result<DaemonMsg> {
    wire::need(b, MSG_SIZE)?;
    let r = Reader::new(b);
    match registered {
        None => match r.u8(off::OPERATION)? {
            OP_REGISTER => Ok(DaemonMsg::Register(DaemonVersion::Register)),
            OP_REGISTER1 => Ok(DaemonMsg::Register(DaemonVersion::Register1)),
            op => Err(Error::UnknownType(u32::from(op))),
        },
        Some(DaemonVersion::Register1) => Ok(DaemonMsg::Reply { status: r.u32(0)? }),
        Some(DaemonVersion::Register) => {
            let empty = r.u8(off::ENUM_SHIFT + off::KEY)? == 0;
            Ok(DaemonMsg::Reply {
                status: if empty { icmsg::S_CONT } else { icmsg::S_OK },
            })
        }
    }
}

/// The kernel's answer to a registration: the daemon's operation back and
/// the driver's version string. Returns [`MSG_SIZE`].
pub fn registration_reply(v: DaemonVersion, dst: &mut [u8]) -> Result<usize> {
    let mut w = Writer::new(dst, MSG_SIZE);
    w.u8(
        off::OPERATION,
        if v == DaemonVersion::Register1 {
            OP_REGISTER1
        } else {
            OP_REGISTER
        },
    );
    w.bytes(off::REGISTER_VERSION, DRIVER_VERSION);
    w.finish()
}

/// Converts the daemon's NUL-terminated UTF-8 at `at` (at most `max`
/// bytes) into the host's UTF-16 at `to` (at most `units` code units plus
/// a terminator); returns the size in bytes the host is told, terminator
/// included.
fn to_host(
    reply: &[u8],
    at: usize,
    max: usize,
    pkt: &mut [u8],
    to: usize,
    units: usize,
) -> Result<usize> {
    let src = Reader::new(reply).slice(at, max)?;
    let end = to.saturating_add(units.saturating_mul(2));
    let n = pkt.len();
    let dst = pkt
        .get_mut(to..end)
        .ok_or(Error::BufferTooSmall { need: end, len: n })?;
    let written = utf16::from_utf8(src, dst)?;
    let mut w = Writer::new(pkt, 0);
    w.u16(to.saturating_add(written), 0);
    w.finish()?;
    Ok(written.saturating_add(2))
}

/// The guest's side: writes the answer to the host's request into `pkt`
/// (the packet it kept): the daemon's reply (`Some`, with the `status`
/// [`parse_daemon`] gave) or a failure (`None`: no daemon, or too late).
/// Strings go back as UTF-16 with their sizes; one that does not convert
/// turns the answer into `HV_E_FAIL`. Returns the status sent.
pub fn answer_host(pkt: &mut [u8], reply: Option<(&[u8], u32)>) -> Result<u32> {
    let req = Request::parse(pkt)?;
    let status = match reply {
        None => icmsg::E_FAIL,
        Some((_, s)) if s != icmsg::S_OK => s,
        Some((reply, _)) => {
            fill_answer(pkt, req.operation, reply).map_or(icmsg::E_FAIL, |()| icmsg::S_OK)
        }
    };
    icmsg::set_status(pkt, status)?;
    icmsg::mark_response(pkt)?;
    Ok(status)
}

fn fill_answer(pkt: &mut [u8], op: u8, reply: &[u8]) -> Result<()> {
    wire::need(reply, MSG_SIZE)?;
    // `data` of GET is at the body's start, ENUMERATE's 4 bytes later.
    let (reply_at, pkt_at) = if op == OP_ENUMERATE {
        (off::ENUM_SHIFT, ICMSG_HDR + off::ENUM_SHIFT)
    } else {
        (0, ICMSG_HDR)
    };
    match op {
        OP_GET | OP_ENUMERATE => {
            if op == OP_ENUMERATE {
                // Room for the terminator: 254 units of key, 1022 of value.
                let n = to_host(
                    reply,
                    reply_at.saturating_add(off::KEY),
                    MAX_KEY_SIZE,
                    pkt,
                    pkt_at.saturating_add(off::KEY),
                    MAX_KEY_SIZE / 2 - 2,
                )?;
                set_u32(pkt, pkt_at.saturating_add(off::KEY_SIZE), n)?;
            }
            let n = to_host(
                reply,
                reply_at.saturating_add(off::VALUE),
                MAX_VALUE_SIZE,
                pkt,
                pkt_at.saturating_add(off::VALUE),
                MAX_VALUE_SIZE / 2 - 2,
            )?;
            set_u32(pkt, pkt_at.saturating_add(off::VALUE_SIZE), n)?;
            set_u32(pkt, pkt_at.saturating_add(off::VALUE_TYPE), REG_SZ as usize)
        }
        OP_GET_IP_INFO => {
            let ip = ICMSG_HDR + off::IP_MSG_VAL;
            for &(at, units) in IP_STRINGS
                .iter()
                .chain([(off::IP_ADAPTER_ID, MAX_ADAPTER_ID)].iter())
            {
                to_host(
                    reply,
                    off::IP_VAL.saturating_add(at),
                    units.saturating_mul(2),
                    pkt,
                    ip.saturating_add(at),
                    units.saturating_sub(1),
                )?;
            }
            let r = Reader::new(reply);
            let mut w = Writer::new(pkt, 0);
            w.u8(ip + off::IP_DHCP, r.u8(off::IP_VAL + off::IP_DHCP)?);
            w.u8(
                ip + off::IP_ADDR_FAMILY,
                r.u8(off::IP_VAL + off::IP_ADDR_FAMILY)?,
            );
            w.finish().map(|_| ())
        }
        // SET, DELETE, SET_IP_INFO: the status says it all.
        _ => Ok(()),
    }
}
