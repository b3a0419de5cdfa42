//! The simulated Hyper-V host's side of the five services, written from
//! the host's point of view: each engine builds the host's requests into a
//! caller's buffer and checks the guest's answers. What the engines send
//! is what Hyper-V sends; [`Fault`] and the per-service knobs make them
//! send what a broken or hostile host would.
//!
//! Only test builds of hv_rustic.ko compile this module (feature "host").

use super::icmsg::{self, IcHeader, IcVersion, ICMSG_HDR, PIPE_HDR_SIZE};
use super::kvp::{self, off};
use super::negotiate::{self, Agreement};
use super::service::Service;
use super::shutdown::{self, Action};
use super::timesync::Sample;
use super::wire::{self, Error, Reader, Result, Writer};
use super::{heartbeat, utf16, vss};

/// A fault applied to the next packet an engine builds, then cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Send only the first `n` bytes.
    Truncate(usize),
    /// Put this message type in the header.
    MsgType(u16),
    /// Overwrite the byte at this offset.
    Poke {
        /// Offset from the packet's start.
        at: usize,
        /// The new byte.
        byte: u8,
    },
}

/// What every engine shares: the service, the versions it offers, what
/// was agreed, transaction ids and the pending fault.
#[derive(Clone, Debug)]
pub struct Channel {
    service: Service,
    fw_offer: &'static [IcVersion],
    srv_offer: &'static [IcVersion],
    agreed: Option<Agreement>,
    next_tid: u8,
    sent_tid: Option<u8>,
    fault: Option<Fault>,
}

impl Channel {
    /// A channel for `service` offering the versions the guest knows
    /// (Hyper-V offers several; the guest picks).
    pub fn new(service: Service) -> Channel {
        Channel {
            service,
            fw_offer: service.framework_versions(),
            srv_offer: service.service_versions(),
            agreed: None,
            next_tid: 0,
            sent_tid: None,
            fault: None,
        }
    }

    /// Offers other versions in the next NEGOTIATE (an older host, or one
    /// offering only versions the guest does not speak).
    pub fn offer(&mut self, fw: &'static [IcVersion], srv: &'static [IcVersion]) {
        self.fw_offer = fw;
        self.srv_offer = srv;
    }

    /// Applies `f` to the next packet built.
    pub fn inject(&mut self, f: Fault) {
        self.fault = Some(f);
    }

    /// The versions agreed, once the guest answered the NEGOTIATE.
    pub fn agreed(&self) -> Option<Agreement> {
        self.agreed
    }

    /// The service.
    pub fn service(&self) -> Service {
        self.service
    }

    /// Builds the NEGOTIATE; returns its length.
    pub fn negotiate(&mut self, buf: &mut [u8]) -> Result<usize> {
        let tid = self.take_tid();
        let len = negotiate::build_request(buf, tid, self.fw_offer, self.srv_offer)?;
        Ok(self.finish(buf, len))
    }

    /// Takes the guest's answer to the NEGOTIATE; an agreement on versions
    /// the host did not offer is an error.
    pub fn on_negotiate_response(&mut self, pkt: &[u8]) -> Result<Option<Agreement>> {
        self.check_tid(pkt)?;
        let a = negotiate::parse_response(pkt)?;
        if let Some(a) = a {
            if !self.fw_offer.contains(&a.framework) || !self.srv_offer.contains(&a.service) {
                return Err(Error::BadField("icversion_data"));
            }
        }
        self.agreed = a;
        Ok(a)
    }

    fn take_tid(&mut self) -> u8 {
        let t = self.next_tid;
        self.next_tid = t.wrapping_add(1);
        self.sent_tid = Some(t);
        t
    }

    fn check_tid(&self, pkt: &[u8]) -> Result<IcHeader> {
        let h = IcHeader::parse(pkt)?;
        if Some(h.transaction_id) != self.sent_tid {
            return Err(Error::BadField("ictransaction_id"));
        }
        Ok(h)
    }

    /// Starts a service message of `body_len` bytes in `buf` (zeroed
    /// headers and body); the caller writes the body through the writer.
    fn start<'a>(&mut self, buf: &'a mut [u8], body_len: usize) -> Result<(Writer<'a>, usize)> {
        let len = ICMSG_HDR + body_len;
        wire::need(buf, len).map_err(|_| Error::BufferTooSmall {
            need: len,
            len: buf.len(),
        })?;
        let a = self.agreed.ok_or(Error::BadField("not negotiated"))?;
        let hdr = IcHeader {
            pipe_flags: 0,
            pipe_size: wire::to_u32(len - PIPE_HDR_SIZE, "msgsize")?,
            frame_version: a.framework,
            msg_type: self.service.msg_type(),
            msg_version: a.service,
            msg_size: u16::try_from(body_len).map_err(|_| Error::BadField("icmsgsize"))?,
            status: 0,
            transaction_id: self.take_tid(),
            flags: icmsg::FLAG_TRANSACTION | icmsg::FLAG_REQUEST,
        };
        let mut w = Writer::new(buf, len);
        hdr.write_into(&mut w);
        Ok((w, len))
    }

    /// Applies the pending fault to `buf[..len]`; returns the length to
    /// send.
    fn finish(&mut self, buf: &mut [u8], len: usize) -> usize {
        match self.fault.take() {
            None => len,
            Some(Fault::Truncate(n)) => len.min(n),
            Some(Fault::MsgType(t)) => {
                let mut w = Writer::new(buf, 0);
                w.u16(12, t);
                len
            }
            Some(Fault::Poke { at, byte }) => {
                if let Some(b) = buf.get_mut(at) {
                    *b = byte;
                }
                len
            }
        }
    }

    /// Checks an answer to the last request: a response to it, of this
    /// service's type; returns its header (status in it).
    fn response(&self, pkt: &[u8]) -> Result<IcHeader> {
        self.check_tid(pkt)?;
        icmsg::expect_response(pkt, self.service.msg_type())
    }
}

/// Heartbeat: sends sequence numbers and counts correct answers.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    /// The channel.
    pub ch: Channel,
    seq: u64,
    pending: Option<u64>,
    /// Answers that were the sequence number plus one.
    pub correct: u64,
    /// Answers that were not (or came with no heartbeat pending).
    pub wrong: u64,
}

impl Heartbeat {
    /// An engine whose first sequence number is `first`.
    pub fn new(first: u64) -> Heartbeat {
        Heartbeat {
            ch: Channel::new(Service::Heartbeat),
            seq: first,
            pending: None,
            correct: 0,
            wrong: 0,
        }
    }

    /// Builds the next heartbeat; returns its length.
    pub fn beat(&mut self, buf: &mut [u8]) -> Result<usize> {
        let (mut w, len) = self.ch.start(buf, heartbeat::BODY_SIZE)?;
        w.u64(ICMSG_HDR, self.seq);
        w.finish()?;
        self.pending = Some(self.seq);
        self.seq = self.seq.wrapping_add(1);
        Ok(self.ch.finish(buf, len))
    }

    /// Takes the guest's answer; `Ok(true)` when it was right.
    pub fn on_response(&mut self, pkt: &[u8]) -> Result<bool> {
        let ok = self.ch.response(pkt).is_ok()
            && self.pending.take().map(|s| s.wrapping_add(1)) == Some(heartbeat::sequence(pkt)?);
        if ok {
            self.correct = self.correct.saturating_add(1);
        } else {
            self.wrong = self.wrong.saturating_add(1);
        }
        Ok(ok)
    }
}

/// Shutdown: asks the guest to power off, reboot or hibernate.
#[derive(Clone, Debug)]
pub struct Shutdown {
    /// The channel.
    pub ch: Channel,
}

impl Shutdown {
    /// A new engine.
    pub fn new() -> Shutdown {
        Shutdown {
            ch: Channel::new(Service::Shutdown),
        }
    }

    /// Builds a request with raw `flags` (a valid action's flags, or any
    /// other value to test the guest's refusal).
    pub fn request_flags(
        &mut self,
        buf: &mut [u8],
        flags: u32,
        reason: u32,
        message: &[u8],
    ) -> Result<usize> {
        let (mut w, len) = self.ch.start(buf, shutdown::BODY_SIZE)?;
        shutdown::Request {
            reason_code: reason,
            timeout_seconds: 0,
            flags,
            display_message: message,
        }
        .write_body(&mut w);
        w.finish()?;
        Ok(self.ch.finish(buf, len))
    }

    /// Builds a request for `action`.
    pub fn request(&mut self, buf: &mut [u8], action: Action) -> Result<usize> {
        self.request_flags(buf, action.flags(), 0, b"RustIC simulated host")
    }

    /// The status of the guest's answer.
    pub fn on_response(&mut self, pkt: &[u8]) -> Result<u32> {
        self.ch.response(pkt).map(|h| h.status)
    }
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown::new()
    }
}

/// Time sync: sends SYNC and SAMPLE messages in the negotiated layout.
#[derive(Clone, Debug)]
pub struct TimeSync {
    /// The channel.
    pub ch: Channel,
}

impl TimeSync {
    /// A new engine.
    pub fn new() -> TimeSync {
        TimeSync {
            ch: Channel::new(Service::TimeSync),
        }
    }

    /// Builds a sample of `host_time` (100 ns since 1601) taken at the
    /// VM's `reference_time`, with `flags`.
    pub fn sample(
        &mut self,
        buf: &mut [u8],
        host_time: u64,
        reference_time: u64,
        flags: u8,
    ) -> Result<usize> {
        let version = self.ch.agreed.map_or(IcVersion::new(0, 0), |a| a.service);
        let body = if version >= super::timesync::REF_DATA_VERSION {
            super::timesync::REF_DATA_SIZE
        } else {
            super::timesync::DATA_SIZE
        };
        let (mut w, len) = self.ch.start(buf, body)?;
        Sample {
            parent_time: host_time,
            reference_time: Some(reference_time),
            flags,
        }
        .write_body(&mut w, version);
        w.finish()?;
        Ok(self.ch.finish(buf, len))
    }

    /// Checks the guest's answer; returns its status.
    pub fn on_response(&mut self, pkt: &[u8]) -> Result<u32> {
        self.ch.response(pkt).map(|h| h.status)
    }
}

impl Default for TimeSync {
    fn default() -> TimeSync {
        TimeSync::new()
    }
}

/// Knobs of the KVP engine, applied to the next request then cleared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvpFaults {
    /// Send this key size instead of the key's.
    pub key_size: Option<u32>,
    /// Send this value size instead of the value's.
    pub value_size: Option<u32>,
    /// Send this pool instead of the one asked for.
    pub pool: Option<u8>,
    /// Send this operation instead of the one asked for.
    pub operation: Option<u8>,
    /// Replace the key's first code unit with a lone surrogate.
    pub lone_surrogate: bool,
}

/// IP settings the host injects or reads (strings as the daemon has them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpInfo<'a> {
    /// The adapter's id (its MAC address, as Hyper-V names it).
    pub adapter_id: &'a str,
    /// `ADDR_FAMILY_*`.
    pub addr_family: u8,
    /// Whether DHCP is on.
    pub dhcp_enabled: bool,
    /// Addresses, `;`-separated.
    pub ip_addr: &'a str,
    /// Subnet masks.
    pub sub_net: &'a str,
    /// Gateways.
    pub gate_way: &'a str,
    /// DNS servers.
    pub dns_addr: &'a str,
}

/// KVP: the host's pool operations and IP information requests.
#[derive(Clone, Debug)]
pub struct Kvp {
    /// The channel.
    pub ch: Channel,
    /// The knobs for the next request.
    pub faults: KvpFaults,
    op: Option<u8>,
}

/// The guest's answer to a KVP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvpAnswer<'a> {
    /// The header's status.
    pub status: u32,
    /// The key (UTF-16LE, terminator excluded) of an ENUMERATE answer.
    pub key: &'a [u8],
    /// The value (UTF-16LE, terminator excluded) of a GET or ENUMERATE.
    pub value: &'a [u8],
}

impl Kvp {
    /// A new engine.
    pub fn new() -> Kvp {
        Kvp {
            ch: Channel::new(Service::Kvp),
            faults: KvpFaults::default(),
            op: None,
        }
    }

    fn start<'a>(&mut self, buf: &'a mut [u8], op: u8, pool: u8) -> Result<(Writer<'a>, usize)> {
        if pool >= kvp::POOL_COUNT && self.faults.pool.is_none() {
            return Err(Error::BadField("pool"));
        }
        let len = kvp::packet_len_for(op)?;
        let (mut w, len) = self.ch.start(buf, len - ICMSG_HDR)?;
        w.u8(
            ICMSG_HDR + off::OPERATION,
            self.faults.operation.unwrap_or(op),
        );
        w.u8(ICMSG_HDR + off::POOL, self.faults.pool.unwrap_or(pool));
        self.op = Some(op);
        Ok((w, len))
    }

    fn string(
        &mut self,
        w: &mut Writer<'_>,
        at: usize,
        size_at: usize,
        s: &str,
        max: usize,
        value: bool,
    ) -> Result<()> {
        let mut units = [0u8; kvp::MAX_VALUE_SIZE];
        let n = utf16::from_utf8(
            s.as_bytes(),
            units.get_mut(..max.saturating_sub(2)).unwrap_or(&mut []),
        )?;
        w.bytes(at, units.get(..n).unwrap_or(&[]));
        if !value && self.faults.lone_surrogate {
            w.u16(at, 0xd800);
        }
        w.u16(at.saturating_add(n), 0);
        let size = wire::to_u32(n.saturating_add(2), "size")?;
        let size = if value {
            self.faults.value_size.unwrap_or(size)
        } else {
            self.faults.key_size.unwrap_or(size)
        };
        w.u32(size_at, size);
        Ok(())
    }

    /// GET `key` from `pool`.
    pub fn get(&mut self, buf: &mut [u8], pool: u8, key: &str) -> Result<usize> {
        let (mut w, len) = self.start(buf, kvp::OP_GET, pool)?;
        self.string(
            &mut w,
            ICMSG_HDR + off::KEY,
            ICMSG_HDR + off::KEY_SIZE,
            key,
            kvp::MAX_KEY_SIZE,
            false,
        )?;
        let len = self.done_w(w, len)?;
        Ok(self.ch.finish(buf, len))
    }

    /// SET `key` to the string `value` in `pool`.
    pub fn set(&mut self, buf: &mut [u8], pool: u8, key: &str, value: &str) -> Result<usize> {
        let (mut w, len) = self.start(buf, kvp::OP_SET, pool)?;
        w.u32(ICMSG_HDR + off::VALUE_TYPE, kvp::REG_SZ);
        self.string(
            &mut w,
            ICMSG_HDR + off::KEY,
            ICMSG_HDR + off::KEY_SIZE,
            key,
            kvp::MAX_KEY_SIZE,
            false,
        )?;
        self.string(
            &mut w,
            ICMSG_HDR + off::VALUE,
            ICMSG_HDR + off::VALUE_SIZE,
            value,
            kvp::MAX_VALUE_SIZE,
            true,
        )?;
        let len = self.done_w(w, len)?;
        Ok(self.ch.finish(buf, len))
    }

    /// SET `key` to the number `value` (`REG_U32` if it fits, else
    /// `REG_U64`) in `pool`.
    pub fn set_number(&mut self, buf: &mut [u8], pool: u8, key: &str, value: u64) -> Result<usize> {
        let (mut w, len) = self.start(buf, kvp::OP_SET, pool)?;
        self.string(
            &mut w,
            ICMSG_HDR + off::KEY,
            ICMSG_HDR + off::KEY_SIZE,
            key,
            kvp::MAX_KEY_SIZE,
            false,
        )?;
        match u32::try_from(value) {
            Ok(v) => {
                w.u32(ICMSG_HDR + off::VALUE_TYPE, kvp::REG_U32);
                w.u32(ICMSG_HDR + off::VALUE, v);
                w.u32(ICMSG_HDR + off::VALUE_SIZE, 4);
            }
            Err(_) => {
                w.u32(ICMSG_HDR + off::VALUE_TYPE, kvp::REG_U64);
                w.u64(ICMSG_HDR + off::VALUE, value);
                w.u32(ICMSG_HDR + off::VALUE_SIZE, 8);
            }
        }
        let len = self.done_w(w, len)?;
        Ok(self.ch.finish(buf, len))
    }

    /// DELETE `key` from `pool`.
    pub fn delete(&mut self, buf: &mut [u8], pool: u8, key: &str) -> Result<usize> {
        let (mut w, len) = self.start(buf, kvp::OP_DELETE, pool)?;
        self.string(
            &mut w,
            ICMSG_HDR + off::DELETE_KEY,
            ICMSG_HDR + off::DELETE_KEY_SIZE,
            key,
            kvp::MAX_KEY_SIZE,
            false,
        )?;
        let len = self.done_w(w, len)?;
        Ok(self.ch.finish(buf, len))
    }

    /// ENUMERATE item `index` of `pool`.
    pub fn enumerate(&mut self, buf: &mut [u8], pool: u8, index: u32) -> Result<usize> {
        let (mut w, len) = self.start(buf, kvp::OP_ENUMERATE, pool)?;
        w.u32(ICMSG_HDR + off::ENUM_INDEX, index);
        let len = self.done_w(w, len)?;
        Ok(self.ch.finish(buf, len))
    }

    /// GET_IP_INFO for `adapter_id` (family and id only, as Hyper-V asks).
    pub fn get_ip_info(
        &mut self,
        buf: &mut [u8],
        adapter_id: &str,
        addr_family: u8,
    ) -> Result<usize> {
        self.ip(
            buf,
            kvp::OP_GET_IP_INFO,
            &IpInfo {
                adapter_id,
                addr_family,
                ..IpInfo::default()
            },
        )
    }

    /// SET_IP_INFO: inject `info`.
    pub fn set_ip_info(&mut self, buf: &mut [u8], info: &IpInfo<'_>) -> Result<usize> {
        self.ip(buf, kvp::OP_SET_IP_INFO, info)
    }

    fn ip(&mut self, buf: &mut [u8], op: u8, info: &IpInfo<'_>) -> Result<usize> {
        let (mut w, len) = self.start(buf, op, kvp::POOL_COUNT - 1)?;
        let at = ICMSG_HDR + off::IP_MSG_VAL;
        let strings = [
            (off::IP_ADAPTER_ID, kvp::MAX_ADAPTER_ID, info.adapter_id),
            (off::IP_ADDR, kvp::MAX_IP_ADDR, info.ip_addr),
            (off::IP_SUBNET, kvp::MAX_IP_ADDR, info.sub_net),
            (off::IP_GATEWAY, kvp::MAX_GATEWAY, info.gate_way),
            (off::IP_DNS, kvp::MAX_IP_ADDR, info.dns_addr),
        ];
        for (o, units, s) in strings {
            let mut tmp = [0u8; 2 * kvp::MAX_IP_ADDR];
            // One unit left for the terminator, which the zeroed packet has.
            let n = utf16::from_utf8(
                s.as_bytes(),
                tmp.get_mut(..units.saturating_sub(1).saturating_mul(2))
                    .unwrap_or(&mut []),
            )?;
            w.bytes(at.saturating_add(o), tmp.get(..n).unwrap_or(&[]));
        }
        w.u8(at + off::IP_ADDR_FAMILY, info.addr_family);
        w.u8(at + off::IP_DHCP, u8::from(info.dhcp_enabled));
        let len = self.done_w(w, len)?;
        Ok(self.ch.finish(buf, len))
    }

    fn done_w(&mut self, w: Writer<'_>, len: usize) -> Result<usize> {
        w.finish()?;
        self.faults = KvpFaults::default();
        Ok(len)
    }

    /// Reads the guest's answer to the last request: the status and, for
    /// GET and ENUMERATE with `HV_S_OK`, the key and value with their
    /// sizes checked.
    pub fn on_response<'a>(&mut self, pkt: &'a [u8]) -> Result<KvpAnswer<'a>> {
        let h = self.ch.response(pkt)?;
        let op = self.op.take().ok_or(Error::BadField("no request"))?;
        let mut a = KvpAnswer {
            status: h.status,
            key: &[],
            value: &[],
        };
        if h.status != icmsg::S_OK || !matches!(op, kvp::OP_GET | kvp::OP_ENUMERATE) {
            return Ok(a);
        }
        let base = ICMSG_HDR
            + if op == kvp::OP_ENUMERATE {
                off::ENUM_SHIFT
            } else {
                0
            };
        let r = Reader::new(pkt);
        let sized = |at: usize, size_at: usize, max: usize| -> Result<&'a [u8]> {
            let size = wire::to_usize(r.u32(size_at)?);
            if size < 2 || size > max || size & 1 != 0 {
                return Err(Error::BadField("size"));
            }
            r.slice(at, size - 2)
        };
        if op == kvp::OP_ENUMERATE {
            a.key = sized(base + off::KEY, base + off::KEY_SIZE, kvp::MAX_KEY_SIZE)?;
        }
        a.value = sized(
            base + off::VALUE,
            base + off::VALUE_SIZE,
            kvp::MAX_VALUE_SIZE,
        )?;
        Ok(a)
    }

    /// Reads the IP information in the guest's answer to GET_IP_INFO into
    /// `out` as UTF-8, one field per slot: adapter id, addresses, subnets,
    /// gateways, DNS servers. Returns the lengths and the family and DHCP
    /// bytes.
    pub fn ip_answer(
        pkt: &[u8],
        out: &mut [[u8; kvp::MAX_IP_ADDR]; 5],
    ) -> Result<([usize; 5], u8, bool)> {
        let at = ICMSG_HDR + off::IP_MSG_VAL;
        let r = Reader::new(pkt);
        let fields = [
            (off::IP_ADAPTER_ID, kvp::MAX_ADAPTER_ID),
            (off::IP_ADDR, kvp::MAX_IP_ADDR),
            (off::IP_SUBNET, kvp::MAX_IP_ADDR),
            (off::IP_GATEWAY, kvp::MAX_GATEWAY),
            (off::IP_DNS, kvp::MAX_IP_ADDR),
        ];
        let mut lens = [0usize; 5];
        for ((o, units), (slot, len)) in fields.into_iter().zip(out.iter_mut().zip(lens.iter_mut()))
        {
            *len = utf16::to_utf8(
                r.slice(at.saturating_add(o), units.saturating_mul(2))?,
                slot,
            )?;
        }
        Ok((
            lens,
            r.u8(at + off::IP_ADDR_FAMILY)?,
            r.u8(at + off::IP_DHCP)? != 0,
        ))
    }
}

impl Default for Kvp {
    fn default() -> Kvp {
        Kvp::new()
    }
}

/// VSS: drives a backup (HOT_BACKUP check, FREEZE, THAW).
#[derive(Clone, Debug)]
pub struct Vss {
    /// The channel.
    pub ch: Channel,
}

impl Vss {
    /// A new engine.
    pub fn new() -> Vss {
        Vss {
            ch: Channel::new(Service::Vss),
        }
    }

    /// Builds a request for `op` (any byte, to test unknown operations).
    pub fn request(&mut self, buf: &mut [u8], op: u8) -> Result<usize> {
        let (mut w, len) = self.ch.start(buf, vss::MSG_SIZE)?;
        vss::Msg {
            operation: op,
            flags: 0,
        }
        .write(&mut w, ICMSG_HDR);
        w.finish()?;
        Ok(self.ch.finish(buf, len))
    }

    /// The status and flags of the guest's answer.
    pub fn on_response(&mut self, pkt: &[u8]) -> Result<(u32, u32)> {
        let h = self.ch.response(pkt)?;
        let m = vss::Msg::decode(pkt.get(ICMSG_HDR..).unwrap_or(&[]))?;
        Ok((h.status, m.flags))
    }
}

impl Default for Vss {
    fn default() -> Vss {
        Vss::new()
    }
}
