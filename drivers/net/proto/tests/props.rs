//! Property tests: every parser over arbitrary bytes only ever returns typed
//! errors, and whatever parses re-encodes to something that parses back the
//! same; valid messages built from arbitrary fields round-trip.

use netvsc_core::ndis::{MacList, OffloadCaps, OffloadParams, RssCaps, RssParams};
use netvsc_core::nvsp::{self, Sender, Version};
use netvsc_core::ppi::{self, ChecksumInfo, LsoInfo, PktInfoId, Ppi, PpiIter, RxInfo, VlanInfo};
use netvsc_core::rndis;
use netvsc_core::toeplitz;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = Option<Version>> {
    prop::option::of(prop::sample::select(nvsp::GUEST_VERSIONS.to_vec()))
}

fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![Just(Sender::Guest), Just(Sender::Host)]
}

/// Bytes that often start with a known NVSP type.
fn nvsp_bytes() -> impl Strategy<Value = Vec<u8>> {
    let types: Vec<u32> = nvsp::MessageType::ALL.iter().map(|t| *t as u32).collect();
    (
        prop::sample::select(types),
        prop::collection::vec(any::<u8>(), 0..140),
        any::<bool>(),
    )
        .prop_map(|(t, mut rest, keep)| {
            if !keep {
                let mut b = t.to_le_bytes().to_vec();
                b.append(&mut rest);
                b
            } else {
                rest
            }
        })
}

/// Bytes that often start with a plausible RNDIS header.
fn rndis_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(rndis::ALL_TYPES.to_vec()),
        prop::collection::vec(any::<u8>(), 0..300),
        0u32..320,
        any::<bool>(),
    )
        .prop_map(|(t, rest, len, raw)| {
            if raw {
                return rest;
            }
            let mut b = t.to_le_bytes().to_vec();
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&rest);
            b
        })
}

fn ppi() -> impl Strategy<Value = Ppi> {
    prop_oneof![
        any::<u32>().prop_map(|v| Ppi::Checksum(ChecksumInfo(v))),
        any::<u32>().prop_map(|v| Ppi::Lso(LsoInfo(v))),
        any::<u32>().prop_map(|v| Ppi::Vlan(VlanInfo(v))),
        any::<u32>().prop_map(Ppi::HashValue),
        any::<u32>().prop_map(Ppi::HashInfo),
        (any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(version, flags, packet_id)| {
            Ppi::PktInfoId(PktInfoId {
                version,
                flags,
                packet_id,
            })
        }),
    ]
}

fn nvsp_message() -> impl Strategy<Value = nvsp::Message> {
    use nvsp::*;
    let u = any::<u32>;
    prop_oneof![
        (u(), u()).prop_map(|(min, max)| Message::Init { min, max }),
        (u(), u(), u()).prop_map(|(a, b, c)| Message::InitComplete(InitComplete {
            negotiated_version: a,
            max_mdl_chain_len: b,
            status: c
        })),
        (u(), u()).prop_map(|(major, minor)| Message::SendNdisVersion { major, minor }),
        (u(), any::<u16>()).prop_map(|(gpadl, id)| Message::SendReceiveBuffer { gpadl, id }),
        (u(), u(), u(), u(), u(), u()).prop_map(|(a, b, c, d, e, f)| {
            Message::SendReceiveBufferComplete(RecvBufComplete {
                status: a,
                num_sections: b,
                section: RecvBufSection {
                    offset: c,
                    sub_alloc_size: d,
                    num_sub_allocs: e,
                    end_offset: f,
                },
            })
        }),
        any::<u16>().prop_map(|id| Message::RevokeReceiveBuffer { id }),
        (u(), any::<u16>()).prop_map(|(gpadl, id)| Message::SendSendBuffer { gpadl, id }),
        (u(), u()).prop_map(|(status, section_size)| Message::SendSendBufferComplete {
            status,
            section_size
        }),
        any::<u16>().prop_map(|id| Message::RevokeSendBuffer { id }),
        (any::<bool>(), u(), u()).prop_map(|(d, section_index, section_size)| {
            Message::SendRndisPacket(RndisPacket {
                channel: if d {
                    RndisChannel::Data
                } else {
                    RndisChannel::Control
                },
                section_index,
                section_size,
            })
        }),
        u().prop_map(|status| Message::SendRndisPacketComplete { status }),
        (u(), any::<u64>()).prop_map(|(mtu, capabilities)| {
            Message::SendNdisConfig(NdisConfig { mtu, capabilities })
        }),
        (any::<bool>(), u())
            .prop_map(|(allocated, serial)| Message::VfAssociation { allocated, serial }),
        any::<bool>().prop_map(|vf| Message::SwitchDataPath(if vf {
            DataPath::Vf
        } else {
            DataPath::Synthetic
        })),
        u().prop_map(|num_subchannels| Message::SubchannelRequest { num_subchannels }),
        (u(), u()).prop_map(|(status, num_subchannels)| Message::SubchannelComplete {
            status,
            num_subchannels
        }),
        prop::array::uniform16(u())
            .prop_map(|table| Message::SendIndirectionTable(SendTable { table })),
    ]
}

/// What `parse_packet_head` makes of the first `peek` bytes of message
/// `b`, if anything, is what the whole parse finds: a packet with the same
/// data and PPIs.
fn head_agrees_with_the_whole_parse(b: &[u8], peek: usize) -> Result<(), TestCaseError> {
    if let Some(h) = rndis::parse_packet_head(&b[..peek.min(b.len())], b.len()) {
        let Ok(rndis::Message::Packet(p)) = rndis::Message::parse(b) else {
            panic!("the head said packet, the whole parse did not");
        };
        prop_assert_eq!(p.data, &b[h.data_offset..h.data_offset + h.data_len]);
        prop_assert_eq!(p.ppis, h.ppis);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn nvsp_parse_of_anything_is_total(b in nvsp_bytes(), s in sender(), v in version()) {
        if let Ok(m) = nvsp::Message::parse(&b, s, v) {
            let mut buf = [0u8; nvsp::MAX_MESSAGE_SIZE];
            let n = m.write(&mut buf).unwrap();
            prop_assert_eq!(n, m.wire_size());
            prop_assert_eq!(nvsp::Message::parse(&buf[..n], s, v), Ok(m));
        }
    }

    #[test]
    fn nvsp_valid_messages_round_trip(m in nvsp_message(), v in version()) {
        let mut buf = [0u8; nvsp::MAX_MESSAGE_SIZE];
        let n = m.write(&mut buf).unwrap();
        prop_assert_eq!(nvsp::Message::parse(&buf[..n], m.sender(), v), Ok(m));
        prop_assert!(m.write(&mut buf[..n - 1]).is_err());
    }

    #[test]
    fn rndis_parse_of_anything_is_total(b in rndis_bytes()) {
        if let Ok(m) = rndis::Message::parse(&b) {
            let mut buf = vec![0u8; 1024];
            let n = m.write(&mut buf).unwrap();
            prop_assert_eq!(rndis::Message::parse(&buf[..n]), Ok(m));
            match m {
                rndis::Message::Packet(p) => {
                    let _ = p.info();
                    let mut count = 0;
                    for r in PpiIter::new(p.ppis) {
                        count += 1;
                        if let Ok(r) = r { let _ = Ppi::decode(&r); }
                    }
                    prop_assert!(count <= p.ppis.len() / ppi::PPI_HEADER_SIZE + 1);
                }
                rndis::Message::QueryComplete(c) => {
                    let _ = OffloadCaps::parse(c.info);
                    let _ = RssCaps::parse(c.info);
                }
                rndis::Message::Set(r) => {
                    let _ = OffloadParams::parse(r.info);
                    let _ = RssParams::parse(r.info).map(|p| p.entries().count());
                    let _ = MacList::parse(r.info).map(|l| l.iter().count());
                }
                rndis::Message::IndicateStatus(i) => { let _ = i.event(); }
                _ => {}
            }
        }
    }

    #[test]
    fn object_parsers_are_total(b in prop::collection::vec(any::<u8>(), 0..700)) {
        let _ = OffloadCaps::parse(&b);
        let _ = OffloadParams::parse(&b);
        let _ = RssCaps::parse(&b);
        if let Ok(p) = RssParams::parse(&b) {
            prop_assert_eq!(p.entries().count(), p.table_len());
            prop_assert!(p.key.len() <= 40);
        }
        let _ = RxInfo::collect(&b);
    }

    #[test]
    fn packets_with_ppis_round_trip(
        ppis in prop::collection::vec(ppi(), 0..8),
        data in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut buf = vec![0u8; 512];
        let head = rndis::write_packet_header(&mut buf, &ppis, data.len()).unwrap();
        buf[head..head + data.len()].copy_from_slice(&data);
        let Ok(rndis::Message::Packet(p)) = rndis::Message::parse(&buf[..head + data.len()]) else {
            panic!("packet did not parse");
        };
        prop_assert_eq!(p.data, &data[..]);
        let got: Vec<Ppi> = PpiIter::new(p.ppis)
            .map(|r| Ppi::decode(&r.unwrap()).unwrap().unwrap())
            .collect();
        prop_assert_eq!(got, ppis);
    }

    #[test]
    fn packet_head_agrees_with_the_whole_parse(b in rndis_bytes(), peek in 0usize..320) {
        head_agrees_with_the_whole_parse(&b, peek)?;
    }

    #[test]
    fn packet_head_agrees_on_damaged_packets(
        ppis in prop::collection::vec(ppi(), 0..5),
        data in prop::collection::vec(any::<u8>(), 0..300),
        at in 0usize..120,
        value in any::<u8>(),
        peek in 0usize..512,
    ) {
        let mut buf = vec![0u8; 512];
        let head = rndis::write_packet_header(&mut buf, &ppis, data.len()).unwrap();
        let len = head + data.len();
        buf[head..len].copy_from_slice(&data);
        buf[at % len] = value;
        head_agrees_with_the_whole_parse(&buf[..len], peek)?;
    }

    #[test]
    fn packet_head_finds_packets_whose_ppis_it_holds(
        ppis in prop::collection::vec(ppi(), 0..5),
        data in prop::collection::vec(any::<u8>(), 14..300),
        slack in 0usize..64,
    ) {
        let mut buf = vec![0u8; 512];
        let head = rndis::write_packet_header(&mut buf, &ppis, data.len()).unwrap();
        let len = head + data.len();
        buf[head..len].copy_from_slice(&data);
        let h = rndis::parse_packet_head(&buf[..(head + slack).min(len)], len).unwrap();
        prop_assert_eq!((h.data_offset, h.data_len), (head, data.len()));
        prop_assert!(rndis::parse_packet_head(&buf[..head - 1], len).is_none() || ppis.is_empty());
    }

    #[test]
    fn toeplitz_is_linear(a in prop::collection::vec(any::<u8>(), 0..36), b in prop::collection::vec(any::<u8>(), 0..36)) {
        let n = a.len().min(b.len());
        let x: Vec<u8> = a[..n].iter().zip(&b[..n]).map(|(p, q)| p ^ q).collect();
        let k = &toeplitz::DEFAULT_KEY;
        prop_assert_eq!(toeplitz::hash(k, &x), toeplitz::hash(k, &a[..n]) ^ toeplitz::hash(k, &b[..n]));
    }
}

proptest! {
    /// A tag's control information survives the trip into the PPI and back.
    #[test]
    fn vlan_info_from_tci_round_trips(tci in any::<u16>()) {
        let v = VlanInfo::from_tci(tci);
        prop_assert_eq!(v.tci(), tci);
        prop_assert_eq!(Some(v), VlanInfo::new((tci >> 13) as u8, tci & 0x1000 != 0, tci & 0xfff));
    }
}
