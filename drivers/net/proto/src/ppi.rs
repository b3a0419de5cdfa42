//! RNDIS per-packet information (PPI): the list of typed records between an
//! RNDIS data packet's header and its frame, carrying checksum offload,
//! large-send (LSO), 802.1Q and RSS hash information in either direction.
//!
//! Each record is a 12-byte header (`struct rndis_per_packet_info`: `size`,
//! `type:31` with `internal:1`, `ppi_offset`) followed by its data;
//! `ppi_offset` counts from the record's start, `size` covers header and
//! data. The C driver writes every record as 16 bytes (header and a 4-byte
//! value). [`PpiIter`] walks a list with every size and offset checked and
//! always advances by at least a header, so it ends; [`RxInfo::collect`]
//! keeps the first record of each kind, as the C driver's lookup does.

use core::mem::{offset_of, size_of};

use super::wire::{add, to_u32, to_usize, Error, Reader, Result, Writer};

/// `struct rndis_per_packet_info`.
#[repr(C, packed)]
pub struct PpiWire {
    /// `size`: header plus data.
    pub size: u32,
    /// `type:31` and `internal:1` (bit 31).
    pub type_internal: u32,
    /// `ppi_offset`: of the data from the record's start.
    pub ppi_offset: u32,
}

/// `sizeof(struct rndis_per_packet_info)`.
pub const PPI_HEADER_SIZE: usize = size_of::<PpiWire>();
/// Size of every record this module builds: the header and a 4-byte value
/// (`NDIS_CSUM_PPI_SIZE`, `NDIS_LSO_PPI_SIZE`, ...).
pub const PPI_SIZE: usize = PPI_HEADER_SIZE + 4;
/// `internal` bit of `type_internal`.
pub const INTERNAL_BIT: u32 = 1 << 31;

/// Non-internal PPI types (`enum ndis_per_pkt_info_type`).
pub mod kind {
    /// `TCPIP_CHKSUM_PKTINFO`.
    pub const CHECKSUM: u32 = 0;
    /// `IPSEC_PKTINFO`.
    pub const IPSEC: u32 = 1;
    /// `TCP_LARGESEND_PKTINFO`.
    pub const LSO: u32 = 2;
    /// `CLASSIFICATION_HANDLE_PKTINFO`.
    pub const CLASSIFICATION_HANDLE: u32 = 3;
    /// `SG_LIST_PKTINFO`.
    pub const SG_LIST: u32 = 5;
    /// `IEEE_8021Q_INFO`.
    pub const IEEE_8021Q: u32 = 6;
    /// `ORIGINAL_PKTINFO`.
    pub const ORIGINAL: u32 = 7;
    /// `NBL_HASH_VALUE` (= `PACKET_CANCEL_ID`): the RSS hash of a received
    /// frame, or the guest's hash of a sent one.
    pub const NBL_HASH_VALUE: u32 = 8;
    /// The RSS hash info (`NDIS_HASH_*` bits: function and type) of a
    /// received frame. Linux does not name it; the slot is
    /// `ORIGINAL_NET_BUFLIST`, the type FreeBSD's hn driver reads.
    pub const NBL_HASH_INFO: u32 = 9;
    /// `CACHED_NET_BUFLIST`.
    pub const CACHED_NET_BUFLIST: u32 = 10;
    /// `SHORT_PKT_PADINFO`.
    pub const SHORT_PKT_PADINFO: u32 = 11;
    /// Internal type `RNDIS_PKTINFO_ID` (with the internal bit set): RSC
    /// fragment marks.
    pub const INTERNAL_PKTINFO_ID: u32 = 1;
}

/// One record of a PPI list, checked but not interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPpi<'a> {
    /// The 31-bit type.
    pub kind: u32,
    /// The internal bit.
    pub internal: bool,
    /// The data, `ppi_offset..size` of the record.
    pub data: &'a [u8],
}

/// Walks a PPI list. Yields `Err` once for a malformed record and then
/// stops.
#[derive(Clone, Debug)]
pub struct PpiIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> PpiIter<'a> {
    /// Walks `list`, the `per_pkt_info_len` bytes at `per_pkt_info_offset`.
    pub fn new(list: &'a [u8]) -> PpiIter<'a> {
        PpiIter {
            rest: list,
            failed: false,
        }
    }

    fn next_record(&mut self) -> Result<RawPpi<'a>> {
        let r = Reader::new(self.rest);
        let size = to_usize(r.u32(offset_of!(PpiWire, size))?);
        let type_internal = r.u32(offset_of!(PpiWire, type_internal))?;
        let offset = to_usize(r.u32(offset_of!(PpiWire, ppi_offset))?);
        if size < PPI_HEADER_SIZE || size > self.rest.len() {
            return Err(Error::BadField("size"));
        }
        if offset < PPI_HEADER_SIZE || offset > size {
            return Err(Error::BadField("ppi_offset"));
        }
        let data = self
            .rest
            .get(offset..size)
            .ok_or(Error::BadField("ppi_offset"))?;
        self.rest = self.rest.get(size..).unwrap_or(&[]);
        Ok(RawPpi {
            kind: type_internal & !INTERNAL_BIT,
            internal: type_internal & INTERNAL_BIT != 0,
            data,
        })
    }
}

impl<'a> Iterator for PpiIter<'a> {
    type Item = Result<RawPpi<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let item = self.next_record();
        if item.is_err() {
            self.failed = true;
        }
        Some(item)
    }
}

/// `struct ndis_tcp_ip_checksum_info`: checksum offload, as a request on
/// send and as a result on receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChecksumInfo(pub u32);

impl ChecksumInfo {
    /// Send: `is_ipv4`.
    pub const TX_IPV4: u32 = 1 << 0;
    /// Send: `is_ipv6`.
    pub const TX_IPV6: u32 = 1 << 1;
    /// Send: `tcp_checksum`.
    pub const TX_TCP: u32 = 1 << 2;
    /// Send: `udp_checksum`.
    pub const TX_UDP: u32 = 1 << 3;
    /// Send: `ip_header_checksum`.
    pub const TX_IP_HEADER: u32 = 1 << 4;
    /// Send: `tcp_header_offset`, bits 16..26.
    pub const TX_TCP_HEADER_OFFSET_SHIFT: u32 = 16;
    /// Largest `tcp_header_offset` (10 bits).
    pub const TX_TCP_HEADER_OFFSET_MAX: u32 = 0x3ff;
    /// Receive: `tcp_checksum_failed`.
    pub const RX_TCP_FAILED: u32 = 1 << 0;
    /// Receive: `udp_checksum_failed`.
    pub const RX_UDP_FAILED: u32 = 1 << 1;
    /// Receive: `ip_checksum_failed`.
    pub const RX_IP_FAILED: u32 = 1 << 2;
    /// Receive: `tcp_checksum_succeeded`.
    pub const RX_TCP_SUCCEEDED: u32 = 1 << 3;
    /// Receive: `udp_checksum_succeeded`.
    pub const RX_UDP_SUCCEEDED: u32 = 1 << 4;
    /// Receive: `ip_checksum_succeeded`.
    pub const RX_IP_SUCCEEDED: u32 = 1 << 5;
    /// Receive: `loopback`.
    pub const RX_LOOPBACK: u32 = 1 << 6;
    /// Receive: `tcp_checksum_value_invalid`.
    pub const RX_TCP_VALUE_INVALID: u32 = 1 << 7;
    /// Receive: `ip_checksum_value_invalid`.
    pub const RX_IP_VALUE_INVALID: u32 = 1 << 8;

    /// A send request: checksum the L4 header at `tcp_header_offset` (the
    /// transport offset in the frame; `None` if it needs more than 10
    /// bits). `flags` are the `TX_*` bits.
    pub fn tx(flags: u32, tcp_header_offset: u32) -> Option<ChecksumInfo> {
        if tcp_header_offset > Self::TX_TCP_HEADER_OFFSET_MAX {
            return None;
        }
        let low = flags & 0x1f;
        Some(ChecksumInfo(
            low | (tcp_header_offset << Self::TX_TCP_HEADER_OFFSET_SHIFT),
        ))
    }

    /// Send: the transport header offset.
    pub fn tx_tcp_header_offset(self) -> u32 {
        (self.0 >> Self::TX_TCP_HEADER_OFFSET_SHIFT) & Self::TX_TCP_HEADER_OFFSET_MAX
    }

    /// Whether all of `bits` are set.
    pub fn has(self, bits: u32) -> bool {
        self.0 & bits == bits
    }
}

/// `struct ndis_tcp_lso_info` in its LSOv2 send form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LsoInfo(pub u32);

impl LsoInfo {
    /// Largest MSS (20 bits).
    pub const MSS_MAX: u32 = 0xf_ffff;
    /// Largest TCP header offset (10 bits).
    pub const TCP_HEADER_OFFSET_MAX: u32 = 0x3ff;
    /// `type` bit: 1 is `NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE`.
    pub const TYPE_V2: u32 = 1 << 30;
    /// `ip_version` bit: 1 is `NDIS_TCP_LARGE_SEND_OFFLOAD_IPV6`.
    pub const IPV6: u32 = 1 << 31;

    /// An LSOv2 send request; `None` if a field does not fit its bits.
    pub fn v2(mss: u32, tcp_header_offset: u32, ipv6: bool) -> Option<LsoInfo> {
        if mss > Self::MSS_MAX || tcp_header_offset > Self::TCP_HEADER_OFFSET_MAX {
            return None;
        }
        let ip = if ipv6 { Self::IPV6 } else { 0 };
        Some(LsoInfo(
            mss | (tcp_header_offset << 20) | Self::TYPE_V2 | ip,
        ))
    }

    /// `mss`.
    pub fn mss(self) -> u32 {
        self.0 & Self::MSS_MAX
    }

    /// `tcp_header_offset`.
    pub fn tcp_header_offset(self) -> u32 {
        (self.0 >> 20) & Self::TCP_HEADER_OFFSET_MAX
    }

    /// Whether the `type` is LSOv2.
    pub fn is_v2(self) -> bool {
        self.0 & Self::TYPE_V2 != 0
    }

    /// Whether the segments are IPv6.
    pub fn is_ipv6(self) -> bool {
        self.0 & Self::IPV6 != 0
    }
}

/// `struct ndis_pkt_8021q_info`: priority, CFI and VLAN id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VlanInfo(pub u32);

impl VlanInfo {
    /// From the three fields; `None` if one does not fit its bits.
    pub fn new(priority: u8, cfi: bool, vlan_id: u16) -> Option<VlanInfo> {
        if priority > 7 || vlan_id > 0xfff {
            return None;
        }
        Some(VlanInfo(
            u32::from(priority) | (u32::from(cfi) << 3) | (u32::from(vlan_id) << 4),
        ))
    }

    /// From 802.1Q tag control information (the inverse of [`Self::tci`]).
    pub fn from_tci(tci: u16) -> VlanInfo {
        let priority = u32::from(tci >> 13);
        let cfi = u32::from((tci >> 12) & 1);
        VlanInfo(priority | (cfi << 3) | (u32::from(tci & 0xfff) << 4))
    }

    /// `pri`.
    pub fn priority(self) -> u8 {
        (self.0 & 7) as u8
    }

    /// `cfi`.
    pub fn cfi(self) -> bool {
        self.0 & 8 != 0
    }

    /// `vlanid`.
    pub fn vlan_id(self) -> u16 {
        ((self.0 >> 4) & 0xfff) as u16
    }

    /// The 802.1Q tag control information (priority, CFI/DEI, id).
    pub fn tci(self) -> u16 {
        (u16::from(self.priority()) << 13) | (u16::from(self.cfi()) << 12) | self.vlan_id()
    }
}

/// `struct rndis_pktinfo_id`: marks the fragments of a coalesced (RSC)
/// receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PktInfoId {
    /// `ver` (`RNDIS_PKTINFO_ID_V1`).
    pub version: u8,
    /// `flag`: `RNDIS_PKTINFO_*` bits.
    pub flags: u8,
    /// `pkt_id`.
    pub packet_id: u16,
}

impl PktInfoId {
    /// `RNDIS_PKTINFO_SUBALLOC`: part of a coalesced receive.
    pub const SUBALLOC: u8 = 1 << 0;
    /// `RNDIS_PKTINFO_1ST_FRAG`.
    pub const FIRST_FRAG: u8 = 1 << 1;
    /// `RNDIS_PKTINFO_LAST_FRAG`.
    pub const LAST_FRAG: u8 = 1 << 2;
}

/// A PPI of a kind this crate interprets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ppi {
    /// Checksum offload.
    Checksum(ChecksumInfo),
    /// Large send offload.
    Lso(LsoInfo),
    /// 802.1Q tag.
    Vlan(VlanInfo),
    /// RSS hash value.
    HashValue(u32),
    /// RSS hash info (`NDIS_HASH_*` bits).
    HashInfo(u32),
    /// RSC fragment marks (internal).
    PktInfoId(PktInfoId),
}

impl Ppi {
    /// The type and internal bit.
    pub fn kind(&self) -> (u32, bool) {
        match self {
            Ppi::Checksum(_) => (kind::CHECKSUM, false),
            Ppi::Lso(_) => (kind::LSO, false),
            Ppi::Vlan(_) => (kind::IEEE_8021Q, false),
            Ppi::HashValue(_) => (kind::NBL_HASH_VALUE, false),
            Ppi::HashInfo(_) => (kind::NBL_HASH_INFO, false),
            Ppi::PktInfoId(_) => (kind::INTERNAL_PKTINFO_ID, true),
        }
    }

    /// The 4-byte value.
    pub fn value(&self) -> [u8; 4] {
        match *self {
            Ppi::Checksum(c) => c.0.to_le_bytes(),
            Ppi::Lso(l) => l.0.to_le_bytes(),
            Ppi::Vlan(v) => v.0.to_le_bytes(),
            Ppi::HashValue(h) | Ppi::HashInfo(h) => h.to_le_bytes(),
            Ppi::PktInfoId(p) => {
                let id = p.packet_id.to_le_bytes();
                [p.version, p.flags, id[0], id[1]]
            }
        }
    }

    /// Interprets a record: `Ok(None)` for kinds this crate does not know,
    /// `Err` for a known kind whose data is shorter than its value.
    pub fn decode(raw: &RawPpi<'_>) -> Result<Option<Ppi>> {
        let v = Reader::new(raw.data).array::<4>(0);
        let u = |v: [u8; 4]| u32::from_le_bytes(v);
        let ppi = match (raw.kind, raw.internal) {
            (kind::CHECKSUM, false) => Ppi::Checksum(ChecksumInfo(u(v?))),
            (kind::LSO, false) => Ppi::Lso(LsoInfo(u(v?))),
            (kind::IEEE_8021Q, false) => Ppi::Vlan(VlanInfo(u(v?))),
            (kind::NBL_HASH_VALUE, false) => Ppi::HashValue(u(v?)),
            (kind::NBL_HASH_INFO, false) => Ppi::HashInfo(u(v?)),
            (kind::INTERNAL_PKTINFO_ID, true) => {
                let [version, flags, a, b] = v?;
                Ppi::PktInfoId(PktInfoId {
                    version,
                    flags,
                    packet_id: u16::from_le_bytes([a, b]),
                })
            }
            _ => return Ok(None),
        };
        Ok(Some(ppi))
    }
}

/// Writes `ppis` as a PPI list of [`PPI_SIZE`]-byte records at the start of
/// `buf`; returns its length.
pub fn write_list(buf: &mut [u8], ppis: &[Ppi]) -> Result<usize> {
    let len = ppis
        .len()
        .checked_mul(PPI_SIZE)
        .ok_or(Error::BadField("per_pkt_info_len"))?;
    let mut w = Writer::new(buf, len);
    let mut at = 0usize;
    for p in ppis {
        let (kind, internal) = p.kind();
        let type_internal = kind | if internal { INTERNAL_BIT } else { 0 };
        w.u32(
            at.saturating_add(offset_of!(PpiWire, size)),
            PPI_SIZE as u32,
        );
        w.u32(
            at.saturating_add(offset_of!(PpiWire, type_internal)),
            type_internal,
        );
        w.u32(
            at.saturating_add(offset_of!(PpiWire, ppi_offset)),
            PPI_HEADER_SIZE as u32,
        );
        w.bytes(add(at, PPI_HEADER_SIZE, "per_pkt_info_len")?, &p.value());
        at = add(at, PPI_SIZE, "per_pkt_info_len")?;
    }
    let n = w.finish()?;
    to_u32(n, "per_pkt_info_len")?;
    Ok(n)
}

/// What a received packet's PPIs say, the first record of each kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RxInfo {
    /// Checksum results.
    pub checksum: Option<ChecksumInfo>,
    /// 802.1Q tag.
    pub vlan: Option<VlanInfo>,
    /// RSS hash value.
    pub hash_value: Option<u32>,
    /// RSS hash info.
    pub hash_info: Option<u32>,
    /// RSC fragment marks.
    pub pktinfo_id: Option<PktInfoId>,
    /// LSO (only on send; a host reads it).
    pub lso: Option<LsoInfo>,
}

impl RxInfo {
    /// Walks `list`; fails on the first malformed record (the C driver
    /// drops such packets' metadata, this rejects the packet).
    pub fn collect(list: &[u8]) -> Result<RxInfo> {
        let mut info = RxInfo::default();
        for raw in PpiIter::new(list) {
            match Ppi::decode(&raw?)? {
                Some(Ppi::Checksum(c)) => {
                    info.checksum.get_or_insert(c);
                }
                Some(Ppi::Lso(l)) => {
                    info.lso.get_or_insert(l);
                }
                Some(Ppi::Vlan(v)) => {
                    info.vlan.get_or_insert(v);
                }
                Some(Ppi::HashValue(h)) => {
                    info.hash_value.get_or_insert(h);
                }
                Some(Ppi::HashInfo(h)) => {
                    info.hash_info.get_or_insert(h);
                }
                Some(Ppi::PktInfoId(p)) => {
                    info.pktinfo_id.get_or_insert(p);
                }
                None => {}
            }
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_c_struct() {
        assert_eq!(PPI_HEADER_SIZE, 12);
        assert_eq!(offset_of!(PpiWire, ppi_offset), 8);
        assert_eq!(PPI_SIZE, 16);
    }

    #[test]
    fn bitfields_sit_where_gcc_puts_them() {
        let l = LsoInfo::v2(1448, 54, true).unwrap();
        assert_eq!(l.0, 1448 | (54 << 20) | (1 << 30) | (1 << 31));
        assert_eq!(
            (l.mss(), l.tcp_header_offset(), l.is_ipv6()),
            (1448, 54, true)
        );
        assert!(LsoInfo::v2(1 << 20, 0, false).is_none());
        let v = VlanInfo::new(5, true, 0x123).unwrap();
        assert_eq!(v.0, 5 | 8 | (0x123 << 4));
        assert_eq!(v.tci(), (5 << 13) | (1 << 12) | 0x123);
        let c = ChecksumInfo::tx(ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_TCP, 34).unwrap();
        assert_eq!(c.0, 1 | 4 | (34 << 16));
        assert_eq!(c.tx_tcp_header_offset(), 34);
        assert!(ChecksumInfo::tx(0, 1024).is_none());
    }

    #[test]
    fn a_zero_size_record_ends_the_walk_with_an_error() {
        let list = [0u8; 24];
        let mut it = PpiIter::new(&list);
        assert_eq!(it.next(), Some(Err(Error::BadField("size"))));
        assert_eq!(it.next(), None);
    }
}
