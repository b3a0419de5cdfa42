//! RNDIS messages, per-packet information and the NDIS objects of the
//! OIDs: round trips, truncation, and malformed offsets and lengths.

use netvsc_core::ndis::{self, *};
use netvsc_core::nvsp::Version;
use netvsc_core::ppi::{self, *};
use netvsc_core::rndis::{self, *};
use netvsc_core::toeplitz;
use netvsc_core::wire::Error;

const FRAME: [u8; 60] = {
    let mut f = [0u8; 60];
    let mut i = 0;
    while i < 60 {
        f[i] = i as u8 ^ 0x3c;
        i += 1;
    }
    f
};

fn all_ppis() -> Vec<Ppi> {
    vec![
        Ppi::Checksum(ChecksumInfo::tx(ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_TCP, 34).unwrap()),
        Ppi::Lso(LsoInfo::v2(1448, 34, false).unwrap()),
        Ppi::Vlan(VlanInfo::new(3, false, 100).unwrap()),
        Ppi::HashValue(0x51cc_c178),
        Ppi::HashInfo(ndis::hash::FUNC_TOEPLITZ | ndis::hash::TCP_IPV4),
        Ppi::PktInfoId(PktInfoId {
            version: 1,
            flags: PktInfoId::SUBALLOC | PktInfoId::FIRST_FRAG,
            packet_id: 0x1234,
        }),
    ]
}

fn ppi_list(ppis: &[Ppi]) -> Vec<u8> {
    let mut b = vec![0u8; ppis.len() * PPI_SIZE];
    let n = ppi::write_list(&mut b, ppis).unwrap();
    b.truncate(n);
    b
}

fn samples(ppis: &[u8], info: &[u8]) -> Vec<Message<'static>> {
    let ppis: &'static [u8] = ppis.to_vec().leak();
    let info: &'static [u8] = info.to_vec().leak();
    vec![
        Message::Packet(Packet { data: &FRAME, ppis }),
        Message::Packet(Packet {
            data: &[],
            ppis: &[],
        }),
        Message::Initialize(InitRequest {
            req_id: 1,
            major: MAJOR_VERSION,
            minor: MINOR_VERSION,
            max_xfer_size: GUEST_MAX_XFER_SIZE,
        }),
        Message::InitializeComplete(InitComplete {
            req_id: 1,
            status: status::SUCCESS,
            major: 1,
            minor: 0,
            dev_flags: DF_CONNECTIONLESS,
            medium: MEDIUM_802_3,
            max_pkt_per_msg: 8,
            max_xfer_size: 0x4000,
            pkt_alignment_factor: 3,
            af_list_offset: 0,
            af_list_size: 0,
        }),
        Message::Halt { req_id: 9 },
        Message::Query(Request {
            req_id: 2,
            oid: oid::GEN_MEDIA_CONNECT_STATUS,
            info: &[],
        }),
        Message::Query(Request {
            req_id: 3,
            oid: oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES,
            info,
        }),
        Message::QueryComplete(QueryComplete {
            req_id: 2,
            status: status::SUCCESS,
            info,
        }),
        Message::QueryComplete(QueryComplete {
            req_id: 2,
            status: status::NOT_SUPPORTED,
            info: &[],
        }),
        Message::Set(Request {
            req_id: 4,
            oid: oid::GEN_CURRENT_PACKET_FILTER,
            info: &[0x0d, 0, 0, 0],
        }),
        Message::SetComplete {
            req_id: 4,
            status: status::SUCCESS,
        },
        Message::Reset,
        Message::ResetComplete {
            status: 0,
            addressing_reset: 1,
        },
        Message::IndicateStatus(Indication {
            status: status::LINK_SPEED_CHANGE,
            buf: &[0x80, 0x96, 0x98, 0x00],
        }),
        Message::IndicateStatus(Indication {
            status: status::MEDIA_CONNECT,
            buf: &[],
        }),
        Message::KeepAlive { req_id: 5 },
        Message::KeepAliveComplete {
            req_id: 5,
            status: status::SUCCESS,
        },
    ]
}

fn encode(m: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0xa5u8; 4096];
    let n = m.write(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn every_message_type_round_trips() {
    let ppis = ppi_list(&all_ppis());
    let mut seen = std::collections::BTreeSet::new();
    for m in samples(&ppis, &[7; 20]) {
        let bytes = encode(&m);
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
            bytes.len()
        );
        assert_eq!(Message::parse(&bytes), Ok(m), "{m:?}");
        // Padding after msg_len (a transfer-page range is often longer).
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 13]);
        assert_eq!(Message::parse(&padded), Ok(m));
        seen.insert(m.msg_type());
    }
    assert_eq!(seen.len(), rndis::ALL_TYPES.len());
}

#[test]
fn every_truncated_prefix_is_rejected() {
    let ppis = ppi_list(&all_ppis());
    for m in samples(&ppis, &[7; 20]) {
        let bytes = encode(&m);
        for cut in 0..bytes.len() {
            let got = Message::parse(&bytes[..cut]);
            assert!(
                matches!(got, Err(Error::TooShort { .. })),
                "{m:?} cut {cut}: {got:?}"
            );
        }
    }
}

#[test]
fn msg_len_shorter_than_the_body_is_rejected() {
    for m in samples(&[], &[]) {
        let mut bytes = encode(&m);
        let body = rndis::body_size(m.msg_type()).unwrap();
        for len in 0..(HEADER_SIZE + body) as u32 {
            bytes[4..8].copy_from_slice(&len.to_le_bytes());
            assert!(Message::parse(&bytes).is_err(), "{m:?} msg_len {len}");
        }
    }
}

#[test]
fn packet_layout_matches_the_c_driver() {
    let ppis = all_ppis();
    let mut buf = [0u8; 256];
    let head = write_packet_header(&mut buf, &ppis, FRAME.len()).unwrap();
    assert_eq!(head, PACKET_HEADER_SIZE + ppis.len() * 16);
    let u = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().unwrap());
    assert_eq!(u(0), rndis::msg::PACKET);
    assert_eq!(u(4) as usize, head + FRAME.len());
    assert_eq!(u(8) as usize, 36 + ppis.len() * 16); // data_offset
    assert_eq!(u(12) as usize, FRAME.len());
    assert_eq!(u(28), 36); // per_pkt_info_offset
    assert_eq!(u(32) as usize, ppis.len() * 16);
    // First PPI: size 16, type checksum, offset 12.
    assert_eq!((u(44), u(48), u(52)), (16, 0, 12));
    buf[head..head + FRAME.len()].copy_from_slice(&FRAME);
    let Ok(Message::Packet(p)) = Message::parse(&buf) else {
        panic!()
    };
    assert_eq!(p.data, &FRAME);
    let info = p.info().unwrap();
    assert_eq!(info.checksum.unwrap().tx_tcp_header_offset(), 34);
    assert_eq!(info.lso.unwrap().mss(), 1448);
    assert_eq!(info.vlan.unwrap().vlan_id(), 100);
    assert_eq!(info.hash_value, Some(0x51cc_c178));
    assert!(info.hash_info.is_some() && info.pktinfo_id.is_some());
    let raw: Vec<_> = PpiIter::new(p.ppis).collect::<Result<_, _>>().unwrap();
    assert_eq!(raw.len(), ppis.len());
    for (r, p) in raw.iter().zip(&ppis) {
        assert_eq!(Ppi::decode(r), Ok(Some(*p)));
    }
}

fn packet_with(data_offset: u32, data_len: u32, ppi_offset: u32, ppi_len: u32) -> Vec<u8> {
    let mut b = vec![0u8; 128];
    let f = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    f(&mut b, 0, 1);
    f(&mut b, 4, 128);
    f(&mut b, 8, data_offset);
    f(&mut b, 12, data_len);
    f(&mut b, 28, ppi_offset);
    f(&mut b, 32, ppi_len);
    b
}

#[test]
fn packet_offsets_are_checked() {
    // Body is 120 bytes; the packet header 36 of them.
    assert!(Message::parse(&packet_with(36, 84, 0, 0)).is_ok());
    assert!(Message::parse(&packet_with(120, 0, 0, 0)).is_ok());
    for (doff, dlen, poff, plen) in [
        (0, 10, 0, 0),
        (35, 10, 0, 0),
        (36, 85, 0, 0),
        (121, 0, 0, 0),
        (u32::MAX, 2, 0, 0),
        (36, u32::MAX, 0, 0),
        (36, 0, 12, 16),
        (36, 0, 36, 85),
        (36, 0, u32::MAX, 16),
        (36, 0, 36, u32::MAX),
    ] {
        assert!(
            Message::parse(&packet_with(doff, dlen, poff, plen)).is_err(),
            "{doff} {dlen} {poff} {plen}"
        );
    }
}

#[test]
fn malformed_ppis_end_the_walk() {
    let mut list = ppi_list(&all_ppis()[..2]);
    // Sizes below a header, past the list; offsets below a header, past the
    // record.
    for (field, value, what) in [
        (0, 11u32, "size"),
        (0, 33, "size"),
        (0, u32::MAX, "size"),
        (8, 11, "ppi_offset"),
        (8, 17, "ppi_offset"),
    ] {
        let mut l = list.clone();
        l[field..field + 4].copy_from_slice(&value.to_le_bytes());
        let items: Vec<_> = PpiIter::new(&l).collect();
        assert_eq!(items, vec![Err(Error::BadField(what))]);
        assert!(RxInfo::collect(&l).is_err());
    }
    // A known kind too short for its value.
    list[8..12].copy_from_slice(&14u32.to_le_bytes());
    assert!(RxInfo::collect(&list).is_err());
    // A trailing partial header.
    let mut l = ppi_list(&all_ppis()[..1]);
    l.extend_from_slice(&[16, 0, 0]);
    assert_eq!(PpiIter::new(&l).count(), 2);
    assert!(RxInfo::collect(&l).is_err());
    // Unknown kinds are skipped; the first of a kind wins.
    let mut l = ppi_list(&[Ppi::HashValue(1), Ppi::HashValue(2)]);
    l[4..8].copy_from_slice(&(kind::SG_LIST).to_le_bytes());
    assert_eq!(RxInfo::collect(&l).unwrap().hash_value, Some(2));
    let l = ppi_list(&[Ppi::HashValue(1), Ppi::HashValue(2)]);
    assert_eq!(RxInfo::collect(&l).unwrap().hash_value, Some(1));
}

#[test]
fn info_buffers_may_not_overlap_the_fixed_part() {
    let bytes = encode(&Message::QueryComplete(QueryComplete {
        req_id: 1,
        status: 0,
        info: &[1, 2, 3, 4],
    }));
    for off in [0u32, 15, 17, 1000, u32::MAX] {
        let mut b = bytes.clone();
        b[20..24].copy_from_slice(&off.to_le_bytes());
        assert!(Message::parse(&b).is_err(), "offset {off}");
    }
}

#[test]
fn status_indications() {
    let ev = |status, buf: &'static [u8]| Indication { status, buf }.event();
    assert_eq!(
        ev(status::MEDIA_CONNECT, &[]),
        Ok(StatusEvent::MediaConnect)
    );
    assert_eq!(
        ev(status::MEDIA_DISCONNECT, &[]),
        Ok(StatusEvent::MediaDisconnect)
    );
    assert_eq!(
        ev(status::NETWORK_CHANGE, &[]),
        Ok(StatusEvent::NetworkChange)
    );
    assert_eq!(
        ev(status::LINK_SPEED_CHANGE, &[0x00, 0xe4, 0x0b, 0x54]),
        Ok(StatusEvent::LinkSpeed(0x540b_e400))
    );
    assert!(ev(status::LINK_SPEED_CHANGE, &[1, 2]).is_err());
    assert_eq!(ev(0x4001_0012, &[]), Ok(StatusEvent::Other(0x4001_0012)));
    // Older switches leave the status buffer out of msg_len.
    let mut b = encode(&Message::IndicateStatus(Indication {
        status: status::LINK_SPEED_CHANGE,
        buf: &[1, 0, 0, 0],
    }));
    b[4..8].copy_from_slice(&20u32.to_le_bytes());
    let Ok(Message::IndicateStatus(i)) = Message::parse(&b) else {
        panic!()
    };
    assert_eq!(i.event(), Ok(StatusEvent::LinkSpeed(1)));
}

#[test]
fn offload_parameters_by_version() {
    let p = OffloadParams {
        ip_v4_csum: offload::TX_RX_DISABLED,
        tcp_ip_v4_csum: offload::TX_RX_ENABLED,
        udp_ip_v4_csum: offload::TX_RX_ENABLED,
        tcp_ip_v6_csum: offload::TX_RX_ENABLED,
        udp_ip_v6_csum: offload::TX_RX_ENABLED,
        lso_v2_ipv4: offload::ENABLED,
        lso_v2_ipv6: offload::ENABLED,
        rsc_ip_v4: offload::ENABLED,
        rsc_ip_v6: offload::ENABLED,
        flags: 0,
        ..Default::default()
    };
    let mut buf = [0xffu8; 64];
    assert_eq!(p.write(&mut buf, Version::V61), Ok(28));
    assert_eq!(&buf[..4], &[0x80, 3, 28, 0]);
    assert_eq!(OffloadParams::parse(&buf[..28]).unwrap().1, p);
    assert_eq!(p.write(&mut buf, Version::V4), Ok(22));
    let (h, q) = OffloadParams::parse(&buf[..22]).unwrap();
    assert_eq!(h.size, 22);
    assert_eq!((q.udp_ip_v4_csum, q.udp_ip_v6_csum, q.rsc_ip_v4), (0, 0, 0));
    assert_eq!(q.lso_v2_ipv6, offload::ENABLED);
    assert!(OffloadParams::parse(&buf[..21]).is_err());
    buf[0] = 0x81;
    assert!(OffloadParams::parse(&buf[..22]).is_err());
}

fn host_caps(size: usize) -> OffloadCaps {
    OffloadCaps {
        header: ObjectHeader {
            kind: OBJECT_TYPE_OFFLOAD,
            revision: 3,
            size: size as u16,
        },
        csum: CsumCaps {
            ip4_txenc: cap::ENCAP_8023,
            ip4_txcsum: cap::ALL_TCP4 | cap::UDP | cap::IP4,
            ip4_rxenc: cap::ENCAP_8023,
            ip4_rxcsum: cap::ALL_TCP4 | cap::UDP | cap::IP4,
            ip6_txenc: cap::ENCAP_8023,
            ip6_txcsum: cap::ALL_TCP6 | cap::UDP,
            ip6_rxenc: cap::ENCAP_8023,
            ip6_rxcsum: cap::ALL_TCP6 | cap::UDP,
        },
        lsov2: LsoV2Caps {
            ip4_encap: cap::ENCAP_8023,
            ip4_maxsz: 62780,
            ip4_minsg: 2,
            ip6_encap: cap::ENCAP_8023,
            ip6_maxsz: 62780,
            ip6_minsg: 2,
            ip6_opts: cap::LSOV2_IP6,
        },
        flags: 0,
        rsc_ip4: u8::from(size > OFFLOAD_SIZE_6_1),
        rsc_ip6: u8::from(size > OFFLOAD_SIZE_6_1),
    }
}

#[test]
fn offload_capabilities_by_size() {
    for size in [OFFLOAD_SIZE_6_0, OFFLOAD_SIZE_6_1, OFFLOAD_SIZE] {
        let caps = host_caps(size);
        let mut buf = [0u8; 200];
        assert_eq!(caps.write(&mut buf), Ok(size));
        let got = OffloadCaps::parse(&buf[..size]).unwrap();
        assert_eq!(got, caps);
        assert!(got.tx_tcp4() && got.tx_udp4() && got.tx_tcp6() && got.tx_udp6());
        assert_eq!((got.lso4(), got.lso6()), (Some(62780), Some(62780)));
        assert_eq!(got.rsc(), size == OFFLOAD_SIZE);
        assert!(OffloadCaps::parse(&buf[..size - 1]).is_err());
    }
    let mut small = host_caps(OFFLOAD_SIZE_6_0 - 1);
    let mut buf = [0u8; 200];
    small.write(&mut buf).unwrap();
    assert!(OffloadCaps::parse(&buf).is_err());
    // Larger than struct ndis_offload: the C guest refuses it too.
    let mut big = [0u8; 200];
    host_caps(OFFLOAD_SIZE).write(&mut big).unwrap();
    big[2..4].copy_from_slice(&157u16.to_le_bytes());
    assert!(OffloadCaps::parse(&big).is_err());
    small.header.size = 156;
    small.header.kind = 0x80;
    small.write(&mut buf).unwrap();
    assert!(OffloadCaps::parse(&buf).is_err());
    // The guest's query buffer per version.
    for (v, size) in [(Version::V2, 112), (Version::V4, 144), (Version::V5, 156)] {
        let n = OffloadCaps::write_query(&mut buf, v).unwrap();
        assert_eq!(n, size);
        assert_eq!(buf[0], OBJECT_TYPE_OFFLOAD);
        assert_eq!(u16::from_le_bytes([buf[2], buf[3]]) as usize, size);
    }
}

#[test]
fn rss_capabilities() {
    let caps = RssCaps {
        header: RssCaps::QUERY_HEADER,
        cap_flag: 0x0100,
        num_int_msg: 8,
        num_recv_que: 8,
        num_indirect_tabent: 0,
    };
    let mut buf = [0u8; 18];
    assert_eq!(caps.write(&mut buf), Ok(18));
    assert_eq!(&buf[..4], &[0x88, 2, 18, 0]);
    let got = RssCaps::parse(&buf).unwrap();
    assert_eq!(got, caps);
    assert_eq!(got.table_size(), ITAB_NUM);
    assert_eq!(
        RssCaps {
            num_indirect_tabent: 64,
            ..caps
        }
        .table_size(),
        64
    );
    assert_eq!(
        RssCaps {
            num_indirect_tabent: 257,
            ..caps
        }
        .table_size(),
        ITAB_NUM
    );
    assert!(RssCaps::parse(&buf[..17]).is_err());
}

#[test]
fn rss_parameters_from_guest_to_host() {
    let table: Vec<u32> = (0..128).map(|i| i % 4).collect();
    let mut buf = [0u8; 1024];
    let n = write_rss_params(
        &mut buf,
        0,
        ndis::hash::GUEST_DEFAULT,
        &table,
        &toeplitz::DEFAULT_KEY,
    )
    .unwrap();
    assert_eq!(n, 40 + 4 * 128 + 40);
    // Inside a SET message, as the C guest sends it.
    let set = encode(&Message::Set(Request {
        req_id: 8,
        oid: oid::GEN_RECEIVE_SCALE_PARAMETERS,
        info: &buf[..n],
    }));
    let Ok(Message::Set(req)) = Message::parse(&set) else {
        panic!()
    };
    let p = RssParams::parse(req.info).unwrap();
    assert_eq!(p.header.kind, OBJECT_TYPE_RSS_PARAMETERS);
    assert_eq!(p.hash_info, ndis::hash::GUEST_DEFAULT);
    assert_eq!(p.key, &toeplitz::DEFAULT_KEY);
    assert_eq!(p.entries().collect::<Vec<_>>(), table);
    assert_eq!(p.entry(127), Some(3));
    assert_eq!(p.entry(128), None);
    // Bad sizes and offsets.
    let u16_at = |b: &mut [u8], at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let u32_at = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let mut b = buf;
    u16_at(&mut b, 12, 6);
    assert!(RssParams::parse(&b[..n]).is_err());
    let mut b = buf;
    u16_at(&mut b, 20, 41);
    assert!(RssParams::parse(&b[..n]).is_err());
    let mut b = buf;
    u32_at(&mut b, 16, 39);
    assert!(RssParams::parse(&b[..n]).is_err());
    let mut b = buf;
    u32_at(&mut b, 24, n as u32 - 39);
    assert!(RssParams::parse(&b[..n]).is_err());
    assert!(RssParams::parse(&buf[..n - 1]).is_err());
    assert!(RssParams::parse(&buf[..39]).is_err());
    assert!(write_rss_params(&mut buf, 0, 0, &[0; 257], &toeplitz::DEFAULT_KEY).is_err());
}

#[test]
fn multicast_list_and_scalars() {
    let macs = [[1, 0, 0x5e, 0, 0, 1], [0x33, 0x33, 0, 0, 0, 1]];
    let mut buf = [0u8; 12];
    assert_eq!(write_mac_list(&mut buf, &macs), Ok(12));
    let l = MacList::parse(&buf).unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l.iter().collect::<Vec<_>>(), macs);
    assert!(MacList::parse(&buf[..11]).is_err());
    assert_eq!(info_u32(&[0x0d, 0, 0, 0, 9]), Ok(filter::OPEN));
    assert!(info_u32(&[1, 2, 3]).is_err());
    let mut m = [0u8; 6];
    write_mac(&mut m, &[0, 0x15, 0x5d, 1, 2, 3]).unwrap();
    assert_eq!(info_mac(&m), Ok([0, 0x15, 0x5d, 1, 2, 3]));
}
