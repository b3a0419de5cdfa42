//! The RNDIS device: the host's end of RNDIS for one simulated NIC, as
//! Hyper-V's answers it. [`RndisDevice::on_message`] takes one RNDIS
//! message from the guest (the bytes the caller copied out of a send-buffer
//! section or page ranges) and returns what to do: send a completion the
//! device wrote into the caller's buffer, or pass on a data packet's frame
//! ([`TxFrame`], with its checksum, LSO and VLAN requests).
//!
//! The device answers INITIALIZE; QUERY of the OIDs a Linux guest asks
//! (addresses, maximum frame size, link speed, media state, offload
//! capabilities, RSS capabilities); SET of the packet filter, offload
//! parameters, RSS parameters (key and indirection table kept), the current
//! address and the multicast list; KEEPALIVE, HALT and RESET. It writes
//! INDICATE_STATUS for link up, down and speed changes on request, and
//! builds received-data packets ([`RndisDevice::build_rx`]) with the
//! checksum, VLAN and RSS hash PPIs and the queue the indirection table
//! picks.
//!
//! A message the device cannot take (malformed, not a guest's, before
//! INITIALIZE or after HALT) is a [`HostError`] and changes nothing; a
//! well-formed request with a bad information buffer or an unknown OID is
//! answered with an RNDIS failure status, as a device does.

use core::mem::offset_of;

use super::frame::{self, Addrs, PROTO_TCP, PROTO_UDP};
use super::ndis::{
    self, cap, hash, oid, rss_flag, CsumCaps, LsoV2Caps, MacList, ObjectHeader, OffloadCaps,
    OffloadParams, RssCaps, RssParams, ETH_ALEN, HASH_KEY_SIZE, ITAB_NUM, ITAB_NUM_MAX,
    OBJECT_TYPE_OFFLOAD, OBJECT_TYPE_RSS_CAPABILITIES, OFFLOAD_SIZE, OFFLOAD_SIZE_6_0, OFFLOAD_SIZE_6_1,
    RSS_CAPS_REVISION_2,
};
use super::netvsp::HostError;
use super::ppi::{ChecksumInfo, LsoInfo, PktInfoId, Ppi, RxInfo, VlanInfo};
use super::rndis::{self, msg, status, InitComplete, Message, QueryComplete};
use super::toeplitz;
use super::vswitch::{Mac, MULTICAST_MAX};
use super::wire::{Error, Result};

/// `NDIS_RSS_CAPS_*` bits the host reports.
pub mod rss_cap {
    /// `NDIS_RSS_CAPS_MESSAGE_SIGNALED_INTERRUPTS`.
    pub const MSI: u32 = 0x0100_0000;
    /// `NDIS_RSS_CAPS_CLASSIFICATION_AT_ISR`.
    pub const CLASSIFICATION_AT_ISR: u32 = 0x0200_0000;
    /// `NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV4`.
    pub const HASH_TCP_IPV4: u32 = 0x0000_0100;
    /// `NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV6`.
    pub const HASH_TCP_IPV6: u32 = 0x0000_0200;
}

/// The device's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// The permanent address.
    pub mac: Mac,
    /// The answer to OID_GEN_MAXIMUM_FRAME_SIZE (the MTU).
    pub max_frame_size: u32,
    /// Link speed in units of 100 bit/s.
    pub link_speed: u32,
    /// Receive queues offered for RSS (the primary channel and its
    /// sub-channels).
    pub rss_queues: u32,
    /// The largest LSOv2 send, both IP versions.
    pub lso_max_size: u32,
    /// `max_xfer_size` of INITIALIZE_CMPLT.
    pub max_xfer_size: u32,
    /// `max_pkt_per_msg` of INITIALIZE_CMPLT.
    pub max_pkt_per_msg: u32,
    /// `pkt_alignment_factor` of INITIALIZE_CMPLT (alignment `1 << f`).
    pub pkt_alignment_factor: u32,
}

impl DeviceConfig {
    /// A 10 Gbit/s, 1500-byte NIC with address `mac` and 8 queues.
    pub fn new(mac: Mac) -> DeviceConfig {
        DeviceConfig {
            mac,
            max_frame_size: 1500,
            link_speed: 100_000_000,
            rss_queues: 8,
            lso_max_size: 62780,
            max_xfer_size: 0x40000,
            max_pkt_per_msg: 8,
            pkt_alignment_factor: 3,
        }
    }
}

/// RSS as the guest set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rss {
    /// [`hash`] bits.
    pub hash_info: u32,
    /// The Toeplitz key.
    pub key: [u8; HASH_KEY_SIZE],
    /// Bytes of `key` in use.
    pub key_len: usize,
    /// The indirection table: a queue per entry.
    pub table: [u16; ITAB_NUM_MAX],
    /// Entries of `table` in use.
    pub table_len: usize,
}

impl Rss {
    /// The hash of a frame and its hash-info bits, if the frame is of a
    /// hashed type: TCP flows with ports, other IP packets on addresses
    /// alone.
    pub fn hash(&self, data: &[u8]) -> Option<(u32, u32)> {
        let h = frame::parse(data).ok()?;
        let tcp = h.proto == PROTO_TCP;
        let ports = if tcp { h.ports(data) } else { None };
        let (kind_l4, kind_l3) = match h.addrs {
            Addrs::V4(..) => (hash::TCP_IPV4, hash::IPV4),
            Addrs::V6(..) => (hash::TCP_IPV6, hash::IPV6),
        };
        let (ports, kind) = match ports {
            Some(p) if self.hash_info & kind_l4 != 0 => (Some(p), kind_l4),
            _ if self.hash_info & kind_l3 != 0 => (None, kind_l3),
            _ => return None,
        };
        let value = match h.addrs {
            Addrs::V4(s, d) => toeplitz::hash_ipv4(self.key(), s, d, ports),
            Addrs::V6(s, d) => toeplitz::hash_ipv6(self.key(), s, d, ports),
        };
        Some((value, hash::FUNC_TOEPLITZ | kind))
    }

    /// The queue (channel) the indirection table gives a hash.
    pub fn queue_for(&self, hash_value: u32) -> u16 {
        let table = self.table();
        let len = u32::try_from(table.len()).unwrap_or(0);
        hash_value
            .checked_rem(len)
            .and_then(|i| table.get(i as usize))
            .copied()
            .unwrap_or(0)
    }

    /// The key in use.
    pub fn key(&self) -> &[u8] {
        self.key.get(..self.key_len).unwrap_or(&[])
    }

    /// The table in use.
    pub fn table(&self) -> &[u16] {
        self.table.get(..self.table_len).unwrap_or(&[])
    }
}

/// What the guest's frame asks of the host, from a PACKET message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxFrame<'a> {
    /// The frame.
    pub data: &'a [u8],
    /// Its offset in the message the caller passed.
    pub offset: usize,
    /// Checksum offload request.
    pub checksum: Option<ChecksumInfo>,
    /// Large send request.
    pub lso: Option<LsoInfo>,
    /// 802.1Q tag to insert.
    pub vlan: Option<VlanInfo>,
}

/// What to do with a guest message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Send the `len`-byte message written at the start of the caller's
    /// output buffer to the guest (a completion).
    Reply(usize),
    /// Switch this frame.
    Frame(TxFrame<'a>),
    /// Nothing to send (HALT).
    Nothing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Uninitialized,
    Initialized,
    Halted,
}

/// The RNDIS device state.
#[derive(Clone, Debug)]
pub struct RndisDevice {
    config: DeviceConfig,
    state: State,
    current_mac: Mac,
    filter: u32,
    link_up: bool,
    offload: OffloadParams,
    rss: Option<Rss>,
    multicast: [Mac; MULTICAST_MAX],
    multicast_len: usize,
}

fn oid_ok(req_id: u32, info: &[u8], out: &mut [u8]) -> Result<usize> {
    Message::QueryComplete(QueryComplete {
        req_id,
        status: status::SUCCESS,
        info,
    })
    .write(out)
}

/// Records a non-zero offload setting over the current one.
fn merge(cur: &mut u8, new: u8) {
    if new != ndis::offload::NO_CHANGE {
        *cur = new;
    }
}

impl RndisDevice {
    /// A device before INITIALIZE, link up.
    pub fn new(config: DeviceConfig) -> RndisDevice {
        RndisDevice {
            config,
            state: State::Uninitialized,
            current_mac: config.mac,
            filter: 0,
            link_up: true,
            offload: OffloadParams::default(),
            rss: None,
            multicast: [[0; ETH_ALEN]; MULTICAST_MAX],
            multicast_len: 0,
        }
    }

    /// Whether INITIALIZE was answered and no HALT came since.
    pub fn initialized(&self) -> bool {
        self.state == State::Initialized
    }

    /// The packet filter the guest set.
    pub fn packet_filter(&self) -> u32 {
        self.filter
    }

    /// The current address.
    pub fn mac(&self) -> Mac {
        self.current_mac
    }

    /// The offload settings the guest made (fields it never set are 0).
    pub fn offload(&self) -> OffloadParams {
        self.offload
    }

    /// Whether the guest turned receive segment coalescing on for IPv4
    /// and IPv6: it takes a TCP flow's segments as one large packet.
    pub fn coalesces(&self) -> bool {
        self.offload.rsc_ip_v4 == ndis::offload::ENABLED && self.offload.rsc_ip_v6 == ndis::offload::ENABLED
    }

    /// RSS, when the guest enabled it.
    pub fn rss(&self) -> Option<&Rss> {
        self.rss.as_ref()
    }

    /// The multicast list.
    pub fn multicast(&self) -> &[Mac] {
        self.multicast.get(..self.multicast_len).unwrap_or(&[])
    }

    /// Whether the link is up.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// Takes one message from the guest; a reply is written into `out`.
    pub fn on_message<'a>(
        &mut self,
        bytes: &'a [u8],
        out: &mut [u8],
    ) -> core::result::Result<Outcome<'a>, HostError> {
        let m = Message::parse(bytes)?;
        let ty = m.msg_type();
        let not_now = HostError::OutOfOrder(ty);
        if self.state == State::Halted {
            return Err(not_now);
        }
        if self.state == State::Uninitialized && !matches!(m, Message::Initialize(_)) {
            return Err(not_now);
        }
        let n = match m {
            Message::Initialize(i) => {
                if self.state != State::Uninitialized {
                    return Err(not_now);
                }
                let ok = i.major == rndis::MAJOR_VERSION;
                let n = Message::InitializeComplete(InitComplete {
                    req_id: i.req_id,
                    status: if ok { status::SUCCESS } else { status::FAILURE },
                    major: rndis::MAJOR_VERSION,
                    minor: rndis::MINOR_VERSION,
                    dev_flags: rndis::DF_CONNECTIONLESS,
                    medium: rndis::MEDIUM_802_3,
                    max_pkt_per_msg: self.config.max_pkt_per_msg,
                    max_xfer_size: self.config.max_xfer_size,
                    pkt_alignment_factor: self.config.pkt_alignment_factor,
                    af_list_offset: 0,
                    af_list_size: 0,
                })
                .write(out)?;
                if ok {
                    self.state = State::Initialized;
                }
                n
            }
            Message::Packet(p) => {
                let info = RxInfo::collect(p.ppis)?;
                // The parser checked that the frame lies at data_offset of
                // the packet body.
                let data_offset = super::wire::u32_at(
                    bytes,
                    rndis::HEADER_SIZE + offset_of!(rndis::PacketWire, data_offset),
                )
                .map_or(0, super::wire::to_usize);
                let offset = rndis::HEADER_SIZE.saturating_add(data_offset);
                return Ok(Outcome::Frame(TxFrame {
                    data: p.data,
                    offset,
                    checksum: info.checksum,
                    lso: info.lso,
                    vlan: info.vlan,
                }));
            }
            Message::Query(q) => self.query(q.req_id, q.oid, q.info, out)?,
            Message::Set(s) => {
                let st = self.set(s.oid, s.info);
                Message::SetComplete {
                    req_id: s.req_id,
                    status: st,
                }
                .write(out)?
            }
            Message::KeepAlive { req_id } => Message::KeepAliveComplete {
                req_id,
                status: status::SUCCESS,
            }
            .write(out)?,
            Message::Halt { .. } => {
                self.state = State::Halted;
                return Ok(Outcome::Nothing);
            }
            Message::Reset => Message::ResetComplete {
                status: status::SUCCESS,
                addressing_reset: 0,
            }
            .write(out)?,
            // Completions and indications are the device's to send.
            _ => return Err(not_now),
        };
        Ok(Outcome::Reply(n))
    }

    fn offload_caps(&self, asked: ObjectHeader) -> OffloadCaps {
        // The object the guest asked for, if it is a sane one; else the
        // newest.
        let size = usize::from(asked.size);
        let header = if asked.kind == OBJECT_TYPE_OFFLOAD
            && asked.revision >= 1
            && (OFFLOAD_SIZE_6_0..=OFFLOAD_SIZE).contains(&size)
        {
            asked
        } else {
            ObjectHeader {
                kind: OBJECT_TYPE_OFFLOAD,
                revision: 3,
                size: OFFLOAD_SIZE as u16,
            }
        };
        let v4 = cap::IP4 | cap::IP_OPT | cap::ALL_TCP4 | cap::UDP;
        let v6 = cap::ALL_TCP6 | cap::UDP;
        let max = self.config.lso_max_size;
        let size = usize::from(header.size);
        OffloadCaps {
            header,
            csum: CsumCaps {
                ip4_txenc: cap::ENCAP_8023,
                ip4_txcsum: v4,
                ip4_rxenc: cap::ENCAP_8023,
                ip4_rxcsum: v4,
                ip6_txenc: cap::ENCAP_8023,
                ip6_txcsum: v6,
                ip6_rxenc: cap::ENCAP_8023,
                ip6_rxcsum: v6,
            },
            lsov2: LsoV2Caps {
                ip4_encap: cap::ENCAP_8023,
                ip4_maxsz: max,
                ip4_minsg: 2,
                ip6_encap: cap::ENCAP_8023,
                ip6_maxsz: max,
                ip6_minsg: 2,
                ip6_opts: cap::LSOV2_IP6,
            },
            flags: 0,
            // Coalescing (RSC) is offered where the object has room for it.
            rsc_ip4: u8::from(size > OFFLOAD_SIZE_6_1),
            rsc_ip6: u8::from(size > OFFLOAD_SIZE_6_1),
        }
    }

    fn query(&self, req_id: u32, id: u32, info: &[u8], out: &mut [u8]) -> Result<usize> {
        let mut buf = [0u8; OFFLOAD_SIZE];
        let n = match id {
            oid::GEN_MAXIMUM_FRAME_SIZE => {
                return oid_ok(req_id, &self.config.max_frame_size.to_le_bytes(), out)
            }
            oid::GEN_LINK_SPEED => {
                return oid_ok(req_id, &self.config.link_speed.to_le_bytes(), out)
            }
            oid::GEN_MEDIA_CONNECT_STATUS => {
                let s = if self.link_up {
                    ndis::MEDIA_STATE_CONNECTED
                } else {
                    ndis::MEDIA_STATE_DISCONNECTED
                };
                return oid_ok(req_id, &s.to_le_bytes(), out);
            }
            oid::GEN_CURRENT_PACKET_FILTER => {
                return oid_ok(req_id, &self.filter.to_le_bytes(), out)
            }
            oid::P802_3_PERMANENT_ADDRESS => return oid_ok(req_id, &self.config.mac, out),
            oid::P802_3_CURRENT_ADDRESS => return oid_ok(req_id, &self.current_mac, out),
            oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES => {
                let asked = ndis_header(info);
                self.offload_caps(asked).write(&mut buf)?
            }
            oid::GEN_RECEIVE_SCALE_CAPABILITIES => RssCaps {
                header: ObjectHeader {
                    kind: OBJECT_TYPE_RSS_CAPABILITIES,
                    revision: RSS_CAPS_REVISION_2,
                    size: RssCaps::QUERY_HEADER.size,
                },
                cap_flag: rss_cap::MSI
                    | rss_cap::CLASSIFICATION_AT_ISR
                    | rss_cap::HASH_TCP_IPV4
                    | rss_cap::HASH_TCP_IPV6,
                num_int_msg: self.config.rss_queues,
                num_recv_que: self.config.rss_queues,
                num_indirect_tabent: ITAB_NUM as u16,
            }
            .write(&mut buf)?,
            _ => {
                return Message::QueryComplete(QueryComplete {
                    req_id,
                    status: status::NOT_SUPPORTED,
                    info: &[],
                })
                .write(out)
            }
        };
        oid_ok(req_id, buf.get(..n).unwrap_or(&[]), out)
    }

    /// Applies a SET; returns the RNDIS status to answer with.
    fn set(&mut self, id: u32, info: &[u8]) -> u32 {
        let r = match id {
            oid::GEN_CURRENT_PACKET_FILTER => ndis::info_u32(info).map(|f| self.filter = f),
            oid::P802_3_CURRENT_ADDRESS => match ndis::info_mac(info) {
                Ok(m) if !frame::is_group(&m) => {
                    self.current_mac = m;
                    Ok(())
                }
                Ok(_) => Err(Error::BadField("address")),
                Err(e) => Err(e),
            },
            oid::P802_3_MULTICAST_LIST => self.set_multicast(info),
            oid::TCP_OFFLOAD_PARAMETERS => OffloadParams::parse(info).map(|(_, p)| {
                let o = &mut self.offload;
                merge(&mut o.ip_v4_csum, p.ip_v4_csum);
                merge(&mut o.tcp_ip_v4_csum, p.tcp_ip_v4_csum);
                merge(&mut o.udp_ip_v4_csum, p.udp_ip_v4_csum);
                merge(&mut o.tcp_ip_v6_csum, p.tcp_ip_v6_csum);
                merge(&mut o.udp_ip_v6_csum, p.udp_ip_v6_csum);
                merge(&mut o.lso_v2_ipv4, p.lso_v2_ipv4);
                merge(&mut o.lso_v2_ipv6, p.lso_v2_ipv6);
                merge(&mut o.rsc_ip_v4, p.rsc_ip_v4);
                merge(&mut o.rsc_ip_v6, p.rsc_ip_v6);
            }),
            oid::GEN_RECEIVE_SCALE_PARAMETERS => self.set_rss(info),
            _ => return status::NOT_SUPPORTED,
        };
        match r {
            Ok(()) => status::SUCCESS,
            Err(_) => status::INVALID_DATA,
        }
    }

    fn set_multicast(&mut self, info: &[u8]) -> Result<()> {
        let list = MacList::parse(info)?;
        if list.len() > MULTICAST_MAX {
            return Err(Error::BadField("multicast list"));
        }
        let mut n = 0usize;
        for (slot, m) in self.multicast.iter_mut().zip(list.iter()) {
            *slot = m;
            n = n.saturating_add(1);
        }
        self.multicast_len = n;
        Ok(())
    }

    fn set_rss(&mut self, info: &[u8]) -> Result<()> {
        let p = RssParams::parse(info)?;
        if p.flags & rss_flag::DISABLE_RSS != 0 {
            self.rss = None;
            return Ok(());
        }
        let old = self.rss;
        let mut rss = old.unwrap_or(Rss {
            hash_info: hash::GUEST_DEFAULT,
            key: toeplitz::DEFAULT_KEY,
            key_len: HASH_KEY_SIZE,
            table: [0; ITAB_NUM_MAX],
            table_len: 0,
        });
        if p.flags & rss_flag::HASH_INFO_UNCHANGED == 0 || old.is_none() {
            rss.hash_info = p.hash_info;
        }
        if p.flags & rss_flag::HASH_KEY_UNCHANGED == 0 || old.is_none() {
            if p.key.is_empty() {
                return Err(Error::BadField("hashkey_size"));
            }
            rss.key = [0; HASH_KEY_SIZE];
            super::wire::copy(&mut rss.key, p.key);
            rss.key_len = p.key.len();
        }
        if p.flags & rss_flag::ITABLE_UNCHANGED == 0 || old.is_none() {
            if p.table_len() == 0 {
                return Err(Error::BadField("indirect_tabsize"));
            }
            let mut n = 0usize;
            for (slot, e) in rss.table.iter_mut().zip(p.entries()) {
                if e >= self.config.rss_queues {
                    return Err(Error::BadField("indirection table"));
                }
                // Below rss_queues, a u32; queue counts fit u16 in practice.
                *slot = u16::try_from(e).map_err(|_| Error::BadField("indirection table"))?;
                n = n.saturating_add(1);
            }
            rss.table_len = n;
        }
        self.rss = Some(rss);
        Ok(())
    }

    /// Writes an INDICATE_STATUS saying the link went up or down, and
    /// records it (media state queries answer the same).
    pub fn link_change(&mut self, up: bool, out: &mut [u8]) -> Result<usize> {
        self.link_up = up;
        Message::IndicateStatus(rndis::Indication {
            status: if up {
                status::MEDIA_CONNECT
            } else {
                status::MEDIA_DISCONNECT
            },
            buf: &[],
        })
        .write(out)
    }

    /// Writes an INDICATE_STATUS with a new link speed (100 bit/s units),
    /// and records it.
    pub fn link_speed_change(&mut self, speed: u32, out: &mut [u8]) -> Result<usize> {
        self.config.link_speed = speed;
        Message::IndicateStatus(rndis::Indication {
            status: status::LINK_SPEED_CHANGE,
            buf: &speed.to_le_bytes(),
        })
        .write(out)
    }

    /// The RSS hash of a frame and its hash-info bits, when RSS is on and
    /// the frame is of a hashed type (see [`Rss::hash`]).
    pub fn rss_hash(&self, data: &[u8]) -> Option<(u32, u32)> {
        self.rss.as_ref()?.hash(data)
    }

    /// The queue (channel) the indirection table gives a hash; 0 with RSS
    /// off.
    pub fn queue_for(&self, hash_value: u32) -> u16 {
        self.rss.as_ref().map_or(0, |r| r.queue_for(hash_value))
    }

    /// Builds a received-data PACKET message for `data` into `out`: a
    /// checksum PPI saying the IP and TCP/UDP checksums were verified (the
    /// host checked them; only the kinds present are claimed), the VLAN
    /// tag if any, and with RSS on the hash value and hash info. Returns
    /// the message length and the queue to deliver it on.
    pub fn build_rx(
        &self,
        data: &[u8],
        vlan: Option<VlanInfo>,
        out: &mut [u8],
    ) -> Result<(usize, u16)> {
        let (head, queue) = self.build_rx_header(data, vlan, RxChecksums::Unverified, out)?;
        let end = head.checked_add(data.len()).ok_or(Error::BadField("msg_len"))?;
        let len = out.len();
        let dst = out
            .get_mut(head..end)
            .ok_or(Error::BufferTooSmall { need: end, len })?;
        super::wire::copy(dst, data);
        Ok((end, queue))
    }

    /// [`RndisDevice::build_rx`] without the frame: writes the header and
    /// PPIs of the message into `out`, for the frame to be copied after
    /// them straight where the message goes. Returns the header's length
    /// and the queue. With [`RxChecksums::Filled`] the host computed the
    /// frame's checksums itself and claims them without reading the frame
    /// again.
    pub fn build_rx_header(
        &self,
        data: &[u8],
        vlan: Option<VlanInfo>,
        checksums: RxChecksums,
        out: &mut [u8],
    ) -> Result<(usize, u16)> {
        self.build_rx_fragment_header(data, vlan, checksums, None, data.len(), out)
    }

    /// [`RndisDevice::build_rx_header`] for one RSC fragment of the frame
    /// `data` (`fragment`: its `RNDIS_PKTINFO_ID` marks) that carries
    /// `fragment_len` bytes of it: the frame's checksum, VLAN and hash
    /// PPIs go in every fragment's header (the guest takes the first's),
    /// then the marks.
    pub fn build_rx_fragment_header(
        &self,
        data: &[u8],
        vlan: Option<VlanInfo>,
        checksums: RxChecksums,
        fragment: Option<PktInfoId>,
        fragment_len: usize,
        out: &mut [u8],
    ) -> Result<(usize, u16)> {
        let mut ppis = [Ppi::HashValue(0); 5];
        let mut n = 0usize;
        let mut push = |p: Ppi| {
            if let Some(slot) = ppis.get_mut(n) {
                *slot = p;
                n = n.saturating_add(1);
            }
        };
        if let Ok(h) = frame::parse(data) {
            if checksums == RxChecksums::Filled || frame::verify(data, &h) {
                let mut bits = 0;
                if let Addrs::V4(..) = h.addrs {
                    bits |= ChecksumInfo::RX_IP_SUCCEEDED;
                }
                if !h.fragment {
                    match h.proto {
                        PROTO_TCP => bits |= ChecksumInfo::RX_TCP_SUCCEEDED,
                        PROTO_UDP => bits |= ChecksumInfo::RX_UDP_SUCCEEDED,
                        _ => {}
                    }
                }
                if bits != 0 {
                    push(Ppi::Checksum(ChecksumInfo(bits)));
                }
            }
        }
        if let Some(v) = vlan {
            push(Ppi::Vlan(v));
        }
        let mut queue = 0;
        if let Some((value, info)) = self.rss_hash(data) {
            push(Ppi::HashValue(value));
            push(Ppi::HashInfo(info));
            queue = self.queue_for(value);
        }
        if let Some(id) = fragment {
            push(Ppi::PktInfoId(id));
        }
        let mut list = [0u8; 5 * super::ppi::PPI_SIZE];
        let len = super::ppi::write_list(&mut list, ppis.get(..n).unwrap_or(&[]))?;
        let head = rndis::write_packet_header_raw(out, list.get(..len).unwrap_or(&[]), fragment_len)?;
        Ok((head, queue))
    }
}

/// What the host knows of a received frame's checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxChecksums {
    /// Nothing: they are claimed only if they verify.
    Unverified,
    /// The host filled them in itself (checksum offload, LSO segments).
    Filled,
}

/// The object header at the start of a query's information buffer, or a
/// zero one.
fn ndis_header(info: &[u8]) -> ObjectHeader {
    let r = super::wire::Reader::new(info);
    ObjectHeader {
        kind: r.u8(0).unwrap_or(0),
        revision: r.u8(1).unwrap_or(0),
        size: r.u16(2).unwrap_or(0),
    }
}

/// The RNDIS message types a guest sends.
pub const GUEST_REQUESTS: [u32; 7] = [
    msg::PACKET,
    msg::INIT,
    msg::HALT,
    msg::QUERY,
    msg::SET,
    msg::RESET,
    msg::KEEPALIVE,
];
