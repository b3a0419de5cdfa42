//! The OIDs a netvsc guest queries and sets over RNDIS, and the NDIS
//! objects in their information buffers: offload parameters (set by the
//! guest), offload capabilities (reported by the host), RSS capabilities
//! (host) and RSS parameters (set by the guest, with the Toeplitz key and
//! the indirection table), the multicast list and the scalar OIDs.
//!
//! Layouts follow `drivers/net/hyperv/hyperv_net.h` (the structs are not
//! packed there except `struct ndis_recv_scale_cap`; the `#[repr(C)]`
//! mirrors reproduce their padding, and the tests pin every size).

use core::mem::{offset_of, size_of};

use super::nvsp::Version;
use super::wire::{to_u32, to_usize, Error, Reader, Result, Writer};

/// OIDs (`RNDIS_OID_*`, `OID_*`).
pub mod oid {
    /// `RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE` (u32, query).
    pub const GEN_MAXIMUM_FRAME_SIZE: u32 = 0x0001_0106;
    /// `RNDIS_OID_GEN_LINK_SPEED` (u32, in 100 bit/s, query).
    pub const GEN_LINK_SPEED: u32 = 0x0001_0107;
    /// `RNDIS_OID_GEN_CURRENT_PACKET_FILTER` (u32 of [`super::filter`]
    /// bits, set).
    pub const GEN_CURRENT_PACKET_FILTER: u32 = 0x0001_010e;
    /// `RNDIS_OID_GEN_MEDIA_CONNECT_STATUS` (u32 of
    /// [`super::MEDIA_STATE_CONNECTED`] or `..._DISCONNECTED`, query).
    pub const GEN_MEDIA_CONNECT_STATUS: u32 = 0x0001_0114;
    /// `OID_GEN_RECEIVE_SCALE_CAPABILITIES` (query).
    pub const GEN_RECEIVE_SCALE_CAPABILITIES: u32 = 0x0001_0203;
    /// `OID_GEN_RECEIVE_SCALE_PARAMETERS` (set).
    pub const GEN_RECEIVE_SCALE_PARAMETERS: u32 = 0x0001_0204;
    /// `RNDIS_OID_802_3_PERMANENT_ADDRESS` (6 bytes, query).
    pub const P802_3_PERMANENT_ADDRESS: u32 = 0x0101_0101;
    /// `RNDIS_OID_802_3_CURRENT_ADDRESS` (6 bytes, query).
    pub const P802_3_CURRENT_ADDRESS: u32 = 0x0101_0102;
    /// `RNDIS_OID_802_3_MULTICAST_LIST` (6-byte addresses, set).
    pub const P802_3_MULTICAST_LIST: u32 = 0x0101_0103;
    /// `OID_TCP_OFFLOAD_PARAMETERS` (set).
    pub const TCP_OFFLOAD_PARAMETERS: u32 = 0xfc01_020c;
    /// `OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES` (query).
    pub const TCP_OFFLOAD_HARDWARE_CAPABILITIES: u32 = 0xfc01_020d;
}

/// Packet filter bits (`NDIS_PACKET_TYPE_*`).
pub mod filter {
    /// `NDIS_PACKET_TYPE_DIRECTED`.
    pub const DIRECTED: u32 = 0x01;
    /// `NDIS_PACKET_TYPE_MULTICAST`.
    pub const MULTICAST: u32 = 0x02;
    /// `NDIS_PACKET_TYPE_ALL_MULTICAST`.
    pub const ALL_MULTICAST: u32 = 0x04;
    /// `NDIS_PACKET_TYPE_BROADCAST`.
    pub const BROADCAST: u32 = 0x08;
    /// `NDIS_PACKET_TYPE_SOURCE_ROUTING`.
    pub const SOURCE_ROUTING: u32 = 0x10;
    /// `NDIS_PACKET_TYPE_PROMISCUOUS`.
    pub const PROMISCUOUS: u32 = 0x20;
    /// `NDIS_PACKET_TYPE_SMT`.
    pub const SMT: u32 = 0x40;
    /// What the C guest sets when the device opens.
    pub const OPEN: u32 = BROADCAST | ALL_MULTICAST | DIRECTED;
}

/// `RNDIS_MEDIA_STATE_CONNECTED`.
pub const MEDIA_STATE_CONNECTED: u32 = 0;
/// `RNDIS_MEDIA_STATE_DISCONNECTED`.
pub const MEDIA_STATE_DISCONNECTED: u32 = 1;
/// Length of an Ethernet address.
pub const ETH_ALEN: usize = 6;

/// `NDIS_OBJECT_TYPE_DEFAULT`: the type of offload parameters.
pub const OBJECT_TYPE_DEFAULT: u8 = 0x80;
/// `NDIS_OBJECT_TYPE_RSS_CAPABILITIES`.
pub const OBJECT_TYPE_RSS_CAPABILITIES: u8 = 0x88;
/// `NDIS_OBJECT_TYPE_RSS_PARAMETERS`.
pub const OBJECT_TYPE_RSS_PARAMETERS: u8 = 0x89;
/// `NDIS_OBJECT_TYPE_OFFLOAD`: the type of offload capabilities.
pub const OBJECT_TYPE_OFFLOAD: u8 = 0xa7;

/// The little-endian `u32` a scalar OID's information buffer holds.
pub fn info_u32(info: &[u8]) -> Result<u32> {
    Reader::new(info).u32(0)
}

/// The Ethernet address an address OID's information buffer holds.
pub fn info_mac(info: &[u8]) -> Result<[u8; ETH_ALEN]> {
    Reader::new(info).array(0)
}

/// `struct ndis_object_header` (and `struct ndis_obj_header`).
#[repr(C)]
pub struct ObjectHeaderWire {
    /// `type`.
    pub kind: u8,
    /// `revision`.
    pub revision: u8,
    /// `size`: of the whole object.
    pub size: u16,
}

/// A decoded `struct ndis_object_header`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ObjectHeader {
    /// `type`.
    pub kind: u8,
    /// `revision`.
    pub revision: u8,
    /// `size`.
    pub size: u16,
}

impl ObjectHeader {
    fn read(b: &[u8]) -> Result<ObjectHeader> {
        let r = Reader::new(b);
        Ok(ObjectHeader {
            kind: r.u8(offset_of!(ObjectHeaderWire, kind))?,
            revision: r.u8(offset_of!(ObjectHeaderWire, revision))?,
            size: r.u16(offset_of!(ObjectHeaderWire, size))?,
        })
    }

    fn write(self, w: &mut Writer<'_>) {
        w.u8(offset_of!(ObjectHeaderWire, kind), self.kind);
        w.u8(offset_of!(ObjectHeaderWire, revision), self.revision);
        w.u16(offset_of!(ObjectHeaderWire, size), self.size);
    }
}

// ---------------------------------------------------------------------------
// Offload parameters (OID_TCP_OFFLOAD_PARAMETERS).

/// `struct ndis_offload_params`.
#[repr(C)]
pub struct OffloadParamsWire {
    /// `header`.
    pub header: ObjectHeaderWire,
    /// `ip_v4_csum`.
    pub ip_v4_csum: u8,
    /// `tcp_ip_v4_csum`.
    pub tcp_ip_v4_csum: u8,
    /// `udp_ip_v4_csum`.
    pub udp_ip_v4_csum: u8,
    /// `tcp_ip_v6_csum`.
    pub tcp_ip_v6_csum: u8,
    /// `udp_ip_v6_csum`.
    pub udp_ip_v6_csum: u8,
    /// `lso_v1`.
    pub lso_v1: u8,
    /// `ip_sec_v1`.
    pub ip_sec_v1: u8,
    /// `lso_v2_ipv4`.
    pub lso_v2_ipv4: u8,
    /// `lso_v2_ipv6`.
    pub lso_v2_ipv6: u8,
    /// `tcp_connection_ip_v4`.
    pub tcp_connection_ip_v4: u8,
    /// `tcp_connection_ip_v6`.
    pub tcp_connection_ip_v6: u8,
    /// `flags`.
    pub flags: u32,
    /// `ip_sec_v2`.
    pub ip_sec_v2: u8,
    /// `ip_sec_v2_ip_v4`.
    pub ip_sec_v2_ip_v4: u8,
    /// `rsc_ip_v4`.
    pub rsc_ip_v4: u8,
    /// `rsc_ip_v6`.
    pub rsc_ip_v6: u8,
    /// `encapsulated_packet_task_offload`.
    pub encapsulated_packet_task_offload: u8,
    /// `encapsulation_types`.
    pub encapsulation_types: u8,
}

/// `NDIS_OFFLOAD_PARAMETERS_REVISION_3`, what the C guest sends.
pub const OFFLOAD_PARAMETERS_REVISION_3: u8 = 3;
/// `VERSION_4_OFFLOAD_SIZE`: the offload parameters sent up to NVSP 4.
pub const OFFLOAD_PARAMS_SIZE_V4: usize = 22;

/// Values of the offload parameter fields (`NDIS_OFFLOAD_PARAMETERS_*`).
pub mod offload {
    /// `NDIS_OFFLOAD_PARAMETERS_NO_CHANGE`.
    pub const NO_CHANGE: u8 = 0;
    /// `NDIS_OFFLOAD_PARAMETERS_LSOV2_DISABLED`, `..._RSC_DISABLED`.
    pub const DISABLED: u8 = 1;
    /// `NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED`, `..._RSC_ENABLED`.
    pub const ENABLED: u8 = 2;
    /// `NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED`.
    pub const TX_RX_DISABLED: u8 = 1;
    /// `NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED`.
    pub const TX_ENABLED_RX_DISABLED: u8 = 2;
    /// `NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED`.
    pub const RX_ENABLED_TX_DISABLED: u8 = 3;
    /// `NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED`.
    pub const TX_RX_ENABLED: u8 = 4;
}

/// The offload settings a guest asks for; 0 ([`offload::NO_CHANGE`])
/// leaves a setting alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OffloadParams {
    /// `ip_v4_csum`.
    pub ip_v4_csum: u8,
    /// `tcp_ip_v4_csum`.
    pub tcp_ip_v4_csum: u8,
    /// `udp_ip_v4_csum`.
    pub udp_ip_v4_csum: u8,
    /// `tcp_ip_v6_csum`.
    pub tcp_ip_v6_csum: u8,
    /// `udp_ip_v6_csum`.
    pub udp_ip_v6_csum: u8,
    /// `lso_v1`.
    pub lso_v1: u8,
    /// `ip_sec_v1`.
    pub ip_sec_v1: u8,
    /// `lso_v2_ipv4`.
    pub lso_v2_ipv4: u8,
    /// `lso_v2_ipv6`.
    pub lso_v2_ipv6: u8,
    /// `tcp_connection_ip_v4`.
    pub tcp_connection_ip_v4: u8,
    /// `tcp_connection_ip_v6`.
    pub tcp_connection_ip_v6: u8,
    /// `flags`.
    pub flags: u32,
    /// `ip_sec_v2`.
    pub ip_sec_v2: u8,
    /// `ip_sec_v2_ip_v4`.
    pub ip_sec_v2_ip_v4: u8,
    /// `rsc_ip_v4`.
    pub rsc_ip_v4: u8,
    /// `rsc_ip_v6`.
    pub rsc_ip_v6: u8,
    /// `encapsulated_packet_task_offload`.
    pub encapsulated_packet_task_offload: u8,
    /// `encapsulation_types`.
    pub encapsulation_types: u8,
}

/// The byte fields of [`OffloadParams`] with their offsets.
macro_rules! offload_param_bytes {
    ($m:ident) => {
        $m!(ip_v4_csum);
        $m!(tcp_ip_v4_csum);
        $m!(udp_ip_v4_csum);
        $m!(tcp_ip_v6_csum);
        $m!(udp_ip_v6_csum);
        $m!(lso_v1);
        $m!(ip_sec_v1);
        $m!(lso_v2_ipv4);
        $m!(lso_v2_ipv6);
        $m!(tcp_connection_ip_v4);
        $m!(tcp_connection_ip_v6);
        $m!(ip_sec_v2);
        $m!(ip_sec_v2_ip_v4);
        $m!(rsc_ip_v4);
        $m!(rsc_ip_v6);
        $m!(encapsulated_packet_task_offload);
        $m!(encapsulation_types);
    };
}

impl OffloadParams {
    /// The size the guest sends with `version`: 22 bytes up to NVSP 4,
    /// else the whole struct.
    pub fn wire_size(version: Version) -> usize {
        if version <= Version::V4 {
            OFFLOAD_PARAMS_SIZE_V4
        } else {
            size_of::<OffloadParamsWire>()
        }
    }

    /// Writes the parameters as the guest sends them with `version`
    /// (type default, revision 3, the version's size; up to NVSP 4 the UDP
    /// checksum fields are cleared, as the host does not support them).
    pub fn write(&self, buf: &mut [u8], version: Version) -> Result<usize> {
        let size = Self::wire_size(version);
        let mut p = *self;
        if !version.has_udp_checksum_offload() {
            p.udp_ip_v4_csum = 0;
            p.udp_ip_v6_csum = 0;
        }
        let mut full = [0u8; size_of::<OffloadParamsWire>()];
        let mut w = Writer::new(&mut full, 0);
        ObjectHeader {
            kind: OBJECT_TYPE_DEFAULT,
            revision: OFFLOAD_PARAMETERS_REVISION_3,
            size: size as u16,
        }
        .write(&mut w);
        macro_rules! put {
            ($f:ident) => {
                w.u8(offset_of!(OffloadParamsWire, $f), p.$f)
            };
        }
        offload_param_bytes!(put);
        w.u32(offset_of!(OffloadParamsWire, flags), p.flags);
        w.finish()?;
        let mut out = Writer::new(buf, size);
        out.bytes(0, full.get(..size).unwrap_or(&[]));
        out.finish()
    }

    /// Parses what a guest set (the host's side): a default-type object of
    /// at least [`OFFLOAD_PARAMS_SIZE_V4`] bytes within `info`; fields past
    /// its `size` read as no change.
    pub fn parse(info: &[u8]) -> Result<(ObjectHeader, OffloadParams)> {
        let h = ObjectHeader::read(info)?;
        if h.kind != OBJECT_TYPE_DEFAULT {
            return Err(Error::BadField("header.type"));
        }
        let size = usize::from(h.size);
        if size < OFFLOAD_PARAMS_SIZE_V4 {
            return Err(Error::BadField("header.size"));
        }
        let obj = Reader::new(info).slice(0, size)?;
        let r = Reader::new(obj);
        let mut p = OffloadParams::default();
        macro_rules! get {
            ($f:ident) => {
                p.$f = r.u8(offset_of!(OffloadParamsWire, $f)).unwrap_or(0)
            };
        }
        offload_param_bytes!(get);
        p.flags = r.u32(offset_of!(OffloadParamsWire, flags)).unwrap_or(0);
        Ok((h, p))
    }
}

// ---------------------------------------------------------------------------
// Offload capabilities (OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES).

/// `struct ndis_offload`, with the parts this crate does not interpret
/// (LSOv1, IPsec v1 and v2) as opaque words.
#[repr(C)]
pub struct OffloadWire {
    /// `header`.
    pub header: ObjectHeaderWire,
    /// `csum`: `struct ndis_csum_offload`, eight words.
    pub csum: [u32; 8],
    /// `lsov1`.
    pub lsov1: [u32; 4],
    /// `ipsecv1`.
    pub ipsecv1: [u32; 7],
    /// `lsov2`: `struct ndis_lsov2_offload`, seven words.
    pub lsov2: [u32; 7],
    /// `flags`.
    pub flags: u32,
    /// `ipsecv2` (NDIS 6.1).
    pub ipsecv2: [u32; 8],
    /// `rsc` (NDIS 6.30): `ip4`, `ip6`.
    pub rsc: [u8; 2],
    /// `encap_gre`: `flags`, `maxhdr`.
    pub encap_gre: [u32; 2],
}

/// `NDIS_OFFLOAD_SIZE_6_0`: the smallest capabilities object accepted.
pub const OFFLOAD_SIZE_6_0: usize = offset_of!(OffloadWire, ipsecv2);
/// `NDIS_OFFLOAD_SIZE_6_1`.
pub const OFFLOAD_SIZE_6_1: usize = offset_of!(OffloadWire, rsc);
/// `NDIS_OFFLOAD_SIZE`.
pub const OFFLOAD_SIZE: usize = size_of::<OffloadWire>();

/// Capability bits (`NDIS_TXCSUM_CAP_*`, `NDIS_RXCSUM_CAP_*`,
/// `NDIS_LSOV2_CAP_*`, `NDIS_OFFLOAD_ENCAP_*`).
pub mod cap {
    /// IPv4 options / IPv6 extension headers.
    pub const IP_OPT: u32 = 0x001;
    /// TCP options.
    pub const TCP_OPT: u32 = 0x004;
    /// TCP.
    pub const TCP: u32 = 0x010;
    /// UDP.
    pub const UDP: u32 = 0x040;
    /// IPv4 header.
    pub const IP4: u32 = 0x100;
    /// `NDIS_TXCSUM_ALL_TCP4`.
    pub const ALL_TCP4: u32 = TCP | TCP_OPT;
    /// `NDIS_TXCSUM_ALL_TCP6`.
    pub const ALL_TCP6: u32 = TCP | TCP_OPT | IP_OPT;
    /// `NDIS_LSOV2_CAP_IP6`.
    pub const LSOV2_IP6: u32 = IP_OPT | TCP_OPT;
    /// `NDIS_OFFLOAD_ENCAP_8023`.
    pub const ENCAP_8023: u32 = 0x0002;
}

/// `struct ndis_csum_offload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CsumCaps {
    /// `ip4_txenc`.
    pub ip4_txenc: u32,
    /// `ip4_txcsum`.
    pub ip4_txcsum: u32,
    /// `ip4_rxenc`.
    pub ip4_rxenc: u32,
    /// `ip4_rxcsum`.
    pub ip4_rxcsum: u32,
    /// `ip6_txenc`.
    pub ip6_txenc: u32,
    /// `ip6_txcsum`.
    pub ip6_txcsum: u32,
    /// `ip6_rxenc`.
    pub ip6_rxenc: u32,
    /// `ip6_rxcsum`.
    pub ip6_rxcsum: u32,
}

/// `struct ndis_lsov2_offload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LsoV2Caps {
    /// `ip4_encap`.
    pub ip4_encap: u32,
    /// `ip4_maxsz`.
    pub ip4_maxsz: u32,
    /// `ip4_minsg`.
    pub ip4_minsg: u32,
    /// `ip6_encap`.
    pub ip6_encap: u32,
    /// `ip6_maxsz`.
    pub ip6_maxsz: u32,
    /// `ip6_minsg`.
    pub ip6_minsg: u32,
    /// `ip6_opts`.
    pub ip6_opts: u32,
}

/// The host's offload capabilities, the parts a Linux guest uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OffloadCaps {
    /// The object header (type [`OBJECT_TYPE_OFFLOAD`]).
    pub header: ObjectHeader,
    /// Checksum offload.
    pub csum: CsumCaps,
    /// LSOv2.
    pub lsov2: LsoV2Caps,
    /// `flags`.
    pub flags: u32,
    /// `rsc.ip4` (0 when the object is older than NDIS 6.30).
    pub rsc_ip4: u8,
    /// `rsc.ip6`.
    pub rsc_ip6: u8,
}

impl OffloadCaps {
    /// The revision and size of the object the guest asks for with
    /// `version` (the query's information buffer is that header, zeroed
    /// after).
    pub fn query_header(version: Version) -> ObjectHeader {
        let (revision, size) = if version >= Version::V5 {
            (3, OFFLOAD_SIZE)
        } else if version >= Version::V4 {
            (2, OFFLOAD_SIZE_6_1)
        } else {
            (1, OFFLOAD_SIZE_6_0)
        };
        ObjectHeader {
            kind: OBJECT_TYPE_OFFLOAD,
            revision,
            size: size as u16,
        }
    }

    /// Writes the guest's query buffer for `version`.
    pub fn write_query(buf: &mut [u8], version: Version) -> Result<usize> {
        let h = Self::query_header(version);
        let mut w = Writer::new(buf, usize::from(h.size));
        h.write(&mut w);
        w.finish()
    }

    /// Parses the host's answer with the C guest's checks: offload type,
    /// revision at least 1, size from [`OFFLOAD_SIZE_6_0`] to
    /// [`OFFLOAD_SIZE`] and within `info`. RSC is read only if the object reaches it.
    pub fn parse(info: &[u8]) -> Result<OffloadCaps> {
        let header = ObjectHeader::read(info)?;
        if header.kind != OBJECT_TYPE_OFFLOAD {
            return Err(Error::BadField("header.type"));
        }
        if header.revision < 1 {
            return Err(Error::BadField("header.revision"));
        }
        let size = usize::from(header.size);
        // Larger objects are refused too: the C guest's buffer is the
        // struct, so it fails any answer longer than that.
        if !(OFFLOAD_SIZE_6_0..=OFFLOAD_SIZE).contains(&size) {
            return Err(Error::BadField("header.size"));
        }
        let r = Reader::new(Reader::new(info).slice(0, size)?);
        let word = |base: usize, i: usize| r.u32(base.saturating_add(i.saturating_mul(4)));
        let c = offset_of!(OffloadWire, csum);
        let l = offset_of!(OffloadWire, lsov2);
        let rsc = offset_of!(OffloadWire, rsc);
        Ok(OffloadCaps {
            header,
            csum: CsumCaps {
                ip4_txenc: word(c, 0)?,
                ip4_txcsum: word(c, 1)?,
                ip4_rxenc: word(c, 2)?,
                ip4_rxcsum: word(c, 3)?,
                ip6_txenc: word(c, 4)?,
                ip6_txcsum: word(c, 5)?,
                ip6_rxenc: word(c, 6)?,
                ip6_rxcsum: word(c, 7)?,
            },
            lsov2: LsoV2Caps {
                ip4_encap: word(l, 0)?,
                ip4_maxsz: word(l, 1)?,
                ip4_minsg: word(l, 2)?,
                ip6_encap: word(l, 3)?,
                ip6_maxsz: word(l, 4)?,
                ip6_minsg: word(l, 5)?,
                ip6_opts: word(l, 6)?,
            },
            flags: r.u32(offset_of!(OffloadWire, flags))?,
            rsc_ip4: r.u8(rsc).unwrap_or(0),
            rsc_ip6: r.u8(rsc.saturating_add(1)).unwrap_or(0),
        })
    }

    /// Writes the host's answer: `self.header` as given (its `size` bytes,
    /// at most [`OFFLOAD_SIZE`]), the rest of the object from the fields.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize> {
        let size = usize::from(self.header.size);
        if size > OFFLOAD_SIZE {
            return Err(Error::BadField("header.size"));
        }
        let mut full = [0u8; OFFLOAD_SIZE];
        let mut w = Writer::new(&mut full, 0);
        self.header.write(&mut w);
        // A plain walk: `enumerate` leaves an add-overflow panic path here.
        let mut at = offset_of!(OffloadWire, csum);
        let cs = self.csum;
        for v in [
            cs.ip4_txenc,
            cs.ip4_txcsum,
            cs.ip4_rxenc,
            cs.ip4_rxcsum,
            cs.ip6_txenc,
            cs.ip6_txcsum,
            cs.ip6_rxenc,
            cs.ip6_rxcsum,
        ] {
            w.u32(at, v);
            at = at.saturating_add(4);
        }
        let mut at = offset_of!(OffloadWire, lsov2);
        let ls = self.lsov2;
        for v in [
            ls.ip4_encap,
            ls.ip4_maxsz,
            ls.ip4_minsg,
            ls.ip6_encap,
            ls.ip6_maxsz,
            ls.ip6_minsg,
            ls.ip6_opts,
        ] {
            w.u32(at, v);
            at = at.saturating_add(4);
        }
        w.u32(offset_of!(OffloadWire, flags), self.flags);
        w.u8(offset_of!(OffloadWire, rsc), self.rsc_ip4);
        w.u8(offset_of!(OffloadWire, rsc).saturating_add(1), self.rsc_ip6);
        w.finish()?;
        let mut out = Writer::new(buf, size);
        out.bytes(0, full.get(..size).unwrap_or(&[]));
        out.finish()
    }

    /// TCP/IPv4 transmit checksum, with options (the C guest's test).
    pub fn tx_tcp4(&self) -> bool {
        self.csum.ip4_txcsum & cap::ALL_TCP4 == cap::ALL_TCP4
    }

    /// UDP/IPv4 transmit checksum (used only with [`Self::tx_tcp4`]).
    pub fn tx_udp4(&self) -> bool {
        self.tx_tcp4() && self.csum.ip4_txcsum & cap::UDP != 0
    }

    /// TCP/IPv6 transmit checksum, with options and extension headers.
    pub fn tx_tcp6(&self) -> bool {
        self.csum.ip6_txcsum & cap::ALL_TCP6 == cap::ALL_TCP6
    }

    /// UDP/IPv6 transmit checksum (used only with [`Self::tx_tcp6`]).
    pub fn tx_udp6(&self) -> bool {
        self.tx_tcp6() && self.csum.ip6_txcsum & cap::UDP != 0
    }

    /// LSOv2 over IPv4 and its largest send, if TCP/IPv4 checksum is also
    /// offered.
    pub fn lso4(&self) -> Option<u32> {
        (self.tx_tcp4() && self.lsov2.ip4_encap & cap::ENCAP_8023 != 0)
            .then_some(self.lsov2.ip4_maxsz)
    }

    /// LSOv2 over IPv6 and its largest send, if TCP/IPv6 checksum is also
    /// offered and IPv6 options and extension headers are supported.
    pub fn lso6(&self) -> Option<u32> {
        (self.tx_tcp6()
            && self.lsov2.ip6_encap & cap::ENCAP_8023 != 0
            && self.lsov2.ip6_opts & cap::LSOV2_IP6 == cap::LSOV2_IP6)
            .then_some(self.lsov2.ip6_maxsz)
    }

    /// Receive segment coalescing for both IPv4 and IPv6.
    pub fn rsc(&self) -> bool {
        self.rsc_ip4 != 0 && self.rsc_ip6 != 0
    }
}

// ---------------------------------------------------------------------------
// RSS capabilities (OID_GEN_RECEIVE_SCALE_CAPABILITIES).

/// `struct ndis_recv_scale_cap` (packed in C).
#[repr(C, packed)]
pub struct RssCapsWire {
    /// `hdr`.
    pub hdr: ObjectHeaderWire,
    /// `cap_flag`.
    pub cap_flag: u32,
    /// `num_int_msg`.
    pub num_int_msg: u32,
    /// `num_recv_que`.
    pub num_recv_que: u32,
    /// `num_indirect_tabent`.
    pub num_indirect_tabent: u16,
}

/// `NDIS_RECEIVE_SCALE_CAPABILITIES_REVISION_2`.
pub const RSS_CAPS_REVISION_2: u8 = 2;
/// Default indirection table entries (`ITAB_NUM`).
pub const ITAB_NUM: usize = 128;
/// Most indirection table entries (`ITAB_NUM_MAX`).
pub const ITAB_NUM_MAX: usize = 256;

/// The host's RSS capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RssCaps {
    /// The object header (the C guest does not check it).
    pub header: ObjectHeader,
    /// `cap_flag` (`NDIS_RSS_CAPS_*`).
    pub cap_flag: u32,
    /// `num_int_msg`.
    pub num_int_msg: u32,
    /// `num_recv_que`: receive queues; RSS needs at least 2.
    pub num_recv_que: u32,
    /// `num_indirect_tabent`.
    pub num_indirect_tabent: u16,
}

impl RssCaps {
    /// The header of the guest's query buffer.
    pub const QUERY_HEADER: ObjectHeader = ObjectHeader {
        kind: OBJECT_TYPE_RSS_CAPABILITIES,
        revision: RSS_CAPS_REVISION_2,
        size: size_of::<RssCapsWire>() as u16,
    };

    /// Parses the host's answer (at least the whole struct).
    pub fn parse(info: &[u8]) -> Result<RssCaps> {
        let r = Reader::new(info);
        r.slice(0, size_of::<RssCapsWire>())?;
        Ok(RssCaps {
            header: ObjectHeader::read(info)?,
            cap_flag: r.u32(offset_of!(RssCapsWire, cap_flag))?,
            num_int_msg: r.u32(offset_of!(RssCapsWire, num_int_msg))?,
            num_recv_que: r.u32(offset_of!(RssCapsWire, num_recv_que))?,
            num_indirect_tabent: r.u16(offset_of!(RssCapsWire, num_indirect_tabent))?,
        })
    }

    /// Writes the object (the guest's query uses [`Self::QUERY_HEADER`]
    /// and zeros).
    pub fn write(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, size_of::<RssCapsWire>());
        self.header.write(&mut w);
        w.u32(offset_of!(RssCapsWire, cap_flag), self.cap_flag);
        w.u32(offset_of!(RssCapsWire, num_int_msg), self.num_int_msg);
        w.u32(offset_of!(RssCapsWire, num_recv_que), self.num_recv_que);
        w.u16(
            offset_of!(RssCapsWire, num_indirect_tabent),
            self.num_indirect_tabent,
        );
        w.finish()
    }

    /// The indirection table size the guest uses: the host's if it is
    /// 1..=[`ITAB_NUM_MAX`], else [`ITAB_NUM`].
    pub fn table_size(&self) -> usize {
        match usize::from(self.num_indirect_tabent) {
            n @ 1..=ITAB_NUM_MAX => n,
            _ => ITAB_NUM,
        }
    }
}

// ---------------------------------------------------------------------------
// RSS parameters (OID_GEN_RECEIVE_SCALE_PARAMETERS).

/// `struct ndis_recv_scale_param`.
#[repr(C)]
pub struct RssParamsWire {
    /// `hdr`.
    pub hdr: ObjectHeaderWire,
    /// `flag`.
    pub flag: u16,
    /// `base_cpu_number`.
    pub base_cpu_number: u16,
    /// `hashinfo`.
    pub hashinfo: u32,
    /// `indirect_tabsize`: in bytes.
    pub indirect_tabsize: u16,
    /// `indirect_taboffset`: from the start of the object.
    pub indirect_taboffset: u32,
    /// `hashkey_size`.
    pub hashkey_size: u16,
    /// `hashkey_offset`: from the start of the object.
    pub hashkey_offset: u32,
    /// `processor_masks_offset`.
    pub processor_masks_offset: u32,
    /// `num_processor_masks`.
    pub num_processor_masks: u32,
    /// `processor_masks_entry_size`.
    pub processor_masks_entry_size: u32,
}

/// `NDIS_RECEIVE_SCALE_PARAMETERS_REVISION_2`.
pub const RSS_PARAMS_REVISION_2: u8 = 2;
/// Toeplitz key length (`NETVSC_HASH_KEYLEN`,
/// `NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE_REVISION_2`).
pub const HASH_KEY_SIZE: usize = 40;

/// `flag` bits (`NDIS_RSS_PARAM_FLAG_*`).
pub mod rss_flag {
    /// `NDIS_RSS_PARAM_FLAG_BASE_CPU_UNCHANGED`.
    pub const BASE_CPU_UNCHANGED: u16 = 0x0001;
    /// `NDIS_RSS_PARAM_FLAG_HASH_INFO_UNCHANGED`.
    pub const HASH_INFO_UNCHANGED: u16 = 0x0002;
    /// `NDIS_RSS_PARAM_FLAG_ITABLE_UNCHANGED`.
    pub const ITABLE_UNCHANGED: u16 = 0x0004;
    /// `NDIS_RSS_PARAM_FLAG_HASH_KEY_UNCHANGED`.
    pub const HASH_KEY_UNCHANGED: u16 = 0x0008;
    /// `NDIS_RSS_PARAM_FLAG_DISABLE_RSS`.
    pub const DISABLE_RSS: u16 = 0x0010;
}

/// Hash info bits (`NDIS_HASH_*`), in RSS parameters and the hash-info PPI.
pub mod hash {
    /// `NDIS_HASH_FUNC_TOEPLITZ`.
    pub const FUNC_TOEPLITZ: u32 = 0x0000_0001;
    /// `NDIS_HASH_IPV4`.
    pub const IPV4: u32 = 0x0000_0100;
    /// `NDIS_HASH_TCP_IPV4`.
    pub const TCP_IPV4: u32 = 0x0000_0200;
    /// `NDIS_HASH_IPV6`.
    pub const IPV6: u32 = 0x0000_0400;
    /// `NDIS_HASH_IPV6_EX`.
    pub const IPV6_EX: u32 = 0x0000_0800;
    /// `NDIS_HASH_TCP_IPV6`.
    pub const TCP_IPV6: u32 = 0x0000_1000;
    /// `NDIS_HASH_TCP_IPV6_EX`.
    pub const TCP_IPV6_EX: u32 = 0x0000_2000;
    /// What the C guest asks for.
    pub const GUEST_DEFAULT: u32 = FUNC_TOEPLITZ | IPV4 | TCP_IPV4 | IPV6 | TCP_IPV6;
}

/// RSS parameters as the host receives them; the table and key borrow the
/// caller's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RssParams<'a> {
    /// The object header.
    pub header: ObjectHeader,
    /// [`rss_flag`] bits.
    pub flags: u16,
    /// `base_cpu_number`.
    pub base_cpu: u16,
    /// [`hash`] bits.
    pub hash_info: u32,
    /// The indirection table, 4 bytes (a channel index) per entry.
    pub table: &'a [u8],
    /// The Toeplitz key.
    pub key: &'a [u8],
}

impl<'a> RssParams<'a> {
    /// Parses what a guest set: the RSS parameters type, a fixed part
    /// within `info`, a table of whole entries (at most
    /// [`ITAB_NUM_MAX`]) and a key of at most [`HASH_KEY_SIZE`] bytes, both
    /// past the fixed part and within `info`.
    pub fn parse(info: &'a [u8]) -> Result<RssParams<'a>> {
        let r = Reader::new(info);
        let fixed = size_of::<RssParamsWire>();
        r.slice(0, fixed)?;
        let header = ObjectHeader::read(info)?;
        if header.kind != OBJECT_TYPE_RSS_PARAMETERS {
            return Err(Error::BadField("hdr.type"));
        }
        let tab_size = usize::from(r.u16(offset_of!(RssParamsWire, indirect_tabsize))?);
        if tab_size % 4 != 0 || tab_size / 4 > ITAB_NUM_MAX {
            return Err(Error::BadField("indirect_tabsize"));
        }
        let key_size = usize::from(r.u16(offset_of!(RssParamsWire, hashkey_size))?);
        if key_size > HASH_KEY_SIZE {
            return Err(Error::BadField("hashkey_size"));
        }
        let part = |offset: u32, len: usize, field| -> Result<&'a [u8]> {
            if len == 0 {
                return Ok(&[]);
            }
            let offset = to_usize(offset);
            if offset < fixed {
                return Err(Error::BadField(field));
            }
            super::wire::slice_at(info, offset, len).ok_or(Error::BadField(field))
        };
        Ok(RssParams {
            header,
            flags: r.u16(offset_of!(RssParamsWire, flag))?,
            base_cpu: r.u16(offset_of!(RssParamsWire, base_cpu_number))?,
            hash_info: r.u32(offset_of!(RssParamsWire, hashinfo))?,
            table: part(
                r.u32(offset_of!(RssParamsWire, indirect_taboffset))?,
                tab_size,
                "indirect_taboffset",
            )?,
            key: part(
                r.u32(offset_of!(RssParamsWire, hashkey_offset))?,
                key_size,
                "hashkey_offset",
            )?,
        })
    }

    /// The number of table entries.
    pub fn table_len(&self) -> usize {
        self.table.len() / 4
    }

    /// Table entry `i`.
    pub fn entry(&self, i: usize) -> Option<u32> {
        super::wire::u32_at(self.table, i.checked_mul(4)?)
    }

    /// The table entries in order.
    pub fn entries(&self) -> impl Iterator<Item = u32> + 'a {
        let table = self.table;
        (0..table.len() / 4).filter_map(move |i| super::wire::u32_at(table, i.saturating_mul(4)))
    }
}

/// Writes RSS parameters as the C guest does: header (type, revision 2,
/// size of the fixed part), `flags`, `hash_info`, then the table (4 bytes
/// per entry, at most [`ITAB_NUM_MAX`]) and the key right after the fixed
/// part. Returns the length (the information buffer's).
pub fn write_rss_params(
    buf: &mut [u8],
    flags: u16,
    hash_info: u32,
    table: &[u32],
    key: &[u8; HASH_KEY_SIZE],
) -> Result<usize> {
    if table.len() > ITAB_NUM_MAX {
        return Err(Error::BadField("indirect_tabsize"));
    }
    let fixed = size_of::<RssParamsWire>();
    let tab_bytes = table.len().saturating_mul(4);
    let key_offset = fixed.saturating_add(tab_bytes);
    let mut w = Writer::new(buf, fixed);
    ObjectHeader {
        kind: OBJECT_TYPE_RSS_PARAMETERS,
        revision: RSS_PARAMS_REVISION_2,
        size: fixed as u16,
    }
    .write(&mut w);
    w.u16(offset_of!(RssParamsWire, flag), flags);
    w.u32(offset_of!(RssParamsWire, hashinfo), hash_info);
    w.u16(
        offset_of!(RssParamsWire, indirect_tabsize),
        u16::try_from(tab_bytes).map_err(|_| Error::BadField("indirect_tabsize"))?,
    );
    w.u32(offset_of!(RssParamsWire, indirect_taboffset), fixed as u32);
    w.u16(
        offset_of!(RssParamsWire, hashkey_size),
        HASH_KEY_SIZE as u16,
    );
    w.u32(
        offset_of!(RssParamsWire, hashkey_offset),
        to_u32(key_offset, "hashkey_offset")?,
    );
    let mut at = fixed;
    for e in table {
        w.u32(at, *e);
        at = at.saturating_add(4);
    }
    w.bytes(key_offset, key);
    w.finish()
}

// ---------------------------------------------------------------------------
// Multicast list (RNDIS_OID_802_3_MULTICAST_LIST).

/// A multicast list: whole 6-byte addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacList<'a>(&'a [u8]);

impl<'a> MacList<'a> {
    /// Checks that `info` is whole addresses.
    pub fn parse(info: &'a [u8]) -> Result<MacList<'a>> {
        if info.len() % ETH_ALEN != 0 {
            return Err(Error::BadField("info_buflen"));
        }
        Ok(MacList(info))
    }

    /// The number of addresses.
    pub fn len(&self) -> usize {
        self.0.len() / ETH_ALEN
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The addresses.
    pub fn iter(&self) -> impl Iterator<Item = [u8; ETH_ALEN]> + 'a {
        let b = self.0;
        (0..b.len() / ETH_ALEN)
            .filter_map(move |i| super::wire::bytes_at(b, i.saturating_mul(ETH_ALEN)))
    }
}

/// Writes `macs` as a multicast list; returns its length.
pub fn write_mac_list(buf: &mut [u8], macs: &[[u8; ETH_ALEN]]) -> Result<usize> {
    let len = macs
        .len()
        .checked_mul(ETH_ALEN)
        .ok_or(Error::BadField("info_buflen"))?;
    let mut w = Writer::new(buf, len);
    let mut at = 0usize;
    for m in macs {
        w.bytes(at, m);
        at = at.saturating_add(ETH_ALEN);
    }
    w.finish()
}

/// Copies a MAC into a 6-byte information buffer (the host's answer to the
/// address OIDs); returns 6.
pub fn write_mac(buf: &mut [u8], mac: &[u8; ETH_ALEN]) -> Result<usize> {
    let mut w = Writer::new(buf, ETH_ALEN);
    w.bytes(0, mac);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_offsets_match_the_c_structs() {
        assert_eq!(size_of::<ObjectHeaderWire>(), 4);
        assert_eq!(size_of::<OffloadParamsWire>(), 28);
        assert_eq!(offset_of!(OffloadParamsWire, lso_v2_ipv6), 12);
        assert_eq!(offset_of!(OffloadParamsWire, flags), 16);
        assert_eq!(offset_of!(OffloadParamsWire, ip_sec_v2), 20);
        assert_eq!(offset_of!(OffloadParamsWire, rsc_ip_v4), 22);
        assert_eq!(
            offset_of!(OffloadParamsWire, encapsulated_packet_task_offload),
            24
        );
        assert_eq!(OFFLOAD_SIZE, 156);
        assert_eq!(OFFLOAD_SIZE_6_0, 112);
        assert_eq!(OFFLOAD_SIZE_6_1, 144);
        assert_eq!(offset_of!(OffloadWire, csum), 4);
        assert_eq!(offset_of!(OffloadWire, lsov1), 36);
        assert_eq!(offset_of!(OffloadWire, ipsecv1), 52);
        assert_eq!(offset_of!(OffloadWire, lsov2), 80);
        assert_eq!(offset_of!(OffloadWire, flags), 108);
        assert_eq!(offset_of!(OffloadWire, encap_gre), 148);
        assert_eq!(size_of::<RssCapsWire>(), 18);
        assert_eq!(offset_of!(RssCapsWire, num_recv_que), 12);
        assert_eq!(offset_of!(RssCapsWire, num_indirect_tabent), 16);
        assert_eq!(size_of::<RssParamsWire>(), 40);
        assert_eq!(offset_of!(RssParamsWire, flag), 4);
        assert_eq!(offset_of!(RssParamsWire, hashinfo), 8);
        assert_eq!(offset_of!(RssParamsWire, indirect_tabsize), 12);
        assert_eq!(offset_of!(RssParamsWire, indirect_taboffset), 16);
        assert_eq!(offset_of!(RssParamsWire, hashkey_size), 20);
        assert_eq!(offset_of!(RssParamsWire, hashkey_offset), 24);
        assert_eq!(offset_of!(RssParamsWire, processor_masks_offset), 28);
        assert_eq!(offset_of!(RssParamsWire, processor_masks_entry_size), 36);
    }
}
