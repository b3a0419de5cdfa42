//! NVSP parsers and builders: round trips of every message, truncation,
//! direction, the send table quirk, and version negotiation in both roles.

use netvsc_core::nvsp::*;
use netvsc_core::wire::Error;

pub fn sample_messages() -> Vec<Message> {
    let mut table = [0u32; SEND_TABLE_SIZE];
    for (i, e) in table.iter_mut().enumerate() {
        *e = (i % 3) as u32;
    }
    vec![
        Message::Init {
            min: Version::V61.raw(),
            max: Version::V61.raw(),
        },
        Message::InitComplete(InitComplete {
            negotiated_version: Version::V5.raw(),
            max_mdl_chain_len: 34,
            status: status::SUCCESS,
        }),
        Message::SendNdisVersion {
            major: 6,
            minor: 30,
        },
        Message::SendReceiveBuffer {
            gpadl: 0xe1e10,
            id: RECEIVE_BUFFER_ID,
        },
        Message::SendReceiveBufferComplete(RecvBufComplete {
            status: status::SUCCESS,
            num_sections: 1,
            section: RecvBufSection {
                offset: 0,
                sub_alloc_size: 1728,
                num_sub_allocs: 9709,
                end_offset: 1728 * 9709,
            },
        }),
        Message::RevokeReceiveBuffer {
            id: RECEIVE_BUFFER_ID,
        },
        Message::SendSendBuffer {
            gpadl: 0xe1e11,
            id: SEND_BUFFER_ID,
        },
        Message::SendSendBufferComplete {
            status: status::SUCCESS,
            section_size: 6144,
        },
        Message::RevokeSendBuffer { id: 7 },
        Message::SendRndisPacket(RndisPacket {
            channel: RndisChannel::Data,
            section_index: 12,
            section_size: 1514 + 44,
        }),
        Message::SendRndisPacket(RndisPacket {
            channel: RndisChannel::Control,
            section_index: NO_SECTION,
            section_size: 0,
        }),
        Message::SendRndisPacketComplete {
            status: status::SUCCESS,
        },
        Message::SendNdisConfig(NdisConfig::for_guest(Version::V61, 9000, false)),
        Message::VfAssociation {
            allocated: true,
            serial: 0x1234,
        },
        Message::SwitchDataPath(DataPath::Vf),
        Message::SwitchDataPath(DataPath::Synthetic),
        Message::SubchannelRequest { num_subchannels: 7 },
        Message::SubchannelComplete {
            status: status::SUCCESS,
            num_subchannels: 3,
        },
        Message::SendIndirectionTable(SendTable { table }),
    ]
}

fn encode(m: &Message) -> Vec<u8> {
    let mut buf = [0xa5u8; MAX_MESSAGE_SIZE];
    let n = m.write(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn every_message_type_round_trips_at_the_c_size() {
    let mut seen = std::collections::BTreeSet::new();
    for m in sample_messages() {
        let bytes = encode(&m);
        assert_eq!(bytes.len(), m.wire_size(), "{m:?}");
        for v in [
            None,
            Some(Version::V1),
            Some(Version::V6),
            Some(Version::V61),
        ] {
            assert_eq!(Message::parse(&bytes, m.sender(), v), Ok(m), "{m:?} {v:?}");
        }
        seen.insert(m.message_type());
    }
    assert_eq!(seen.len(), MessageType::ALL.len());
}

#[test]
fn control_messages_are_the_size_of_struct_nvsp_message() {
    assert_eq!(NVSP_MESSAGE_SIZE, 40);
    let init = encode(&Message::Init {
        min: 2,
        max: 0x60001,
    });
    assert_eq!(
        init,
        [
            1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    // The receive completion the C guest sends is header and status only.
    assert_eq!(
        encode(&Message::SendRndisPacketComplete { status: 1 }),
        [108, 0, 0, 0, 1, 0, 0, 0]
    );
}

#[test]
fn truncated_messages_are_rejected_and_longer_ones_accepted() {
    for m in sample_messages() {
        let bytes = encode(&m);
        let s = m.sender();
        let min = if m.message_type() == MessageType::SendIndirectionTable {
            MAX_MESSAGE_SIZE
        } else {
            m.message_type().min_size(s)
        };
        for cut in 0..bytes.len() {
            let got = Message::parse(&bytes[..cut], s, Some(Version::V61));
            if cut < min {
                assert!(
                    matches!(got, Err(Error::TooShort { .. })),
                    "{m:?} cut at {cut}: {got:?}"
                );
            } else {
                assert_eq!(got, Ok(m), "{m:?} cut at {cut}");
            }
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0xee; 24]);
        assert_eq!(Message::parse(&longer, s, Some(Version::V61)), Ok(m));
    }
}

#[test]
fn senders_are_checked() {
    let init = encode(&Message::Init { min: 2, max: 2 });
    assert_eq!(
        Message::parse(&init, Sender::Host, None),
        Err(Error::WrongSender(1))
    );
    let table = encode(&sample_messages().pop().unwrap());
    assert_eq!(
        Message::parse(&table, Sender::Guest, None),
        Err(Error::WrongSender(134))
    );
    // SUBCHANNEL means a request from the guest and a completion from the
    // host.
    let req = encode(&Message::SubchannelRequest { num_subchannels: 4 });
    assert_eq!(
        Message::parse(&req, Sender::Host, None),
        Ok(Message::SubchannelComplete {
            status: SUBCHANNEL_ALLOCATE,
            num_subchannels: 4
        })
    );
    let mut bad_op = req.clone();
    bad_op[4] = 2;
    assert_eq!(
        Message::parse(&bad_op, Sender::Guest, None),
        Err(Error::BadField("op"))
    );
}

#[test]
fn unknown_and_unhandled_types_are_reported() {
    for raw in [
        0u32,
        3,
        99,
        109,
        124,
        126,
        130,
        131,
        132,
        135,
        136,
        u32::MAX,
    ] {
        let mut b = [0u8; 40];
        b[..4].copy_from_slice(&raw.to_le_bytes());
        for s in [Sender::Guest, Sender::Host] {
            assert_eq!(Message::parse(&b, s, None), Err(Error::UnknownType(raw)));
        }
    }
}

#[test]
fn bad_enumerations_are_rejected() {
    let mut b = encode(&Message::SwitchDataPath(DataPath::Vf));
    b[4] = 2;
    assert_eq!(
        Message::parse(&b, Sender::Guest, None),
        Err(Error::BadField("active_datapath"))
    );
    let mut b = encode(&Message::SendRndisPacket(RndisPacket {
        channel: RndisChannel::Data,
        section_index: NO_SECTION,
        section_size: 0,
    }));
    b[4] = 9;
    assert_eq!(
        Message::parse(&b, Sender::Host, None),
        Err(Error::BadField("channel_type"))
    );
}

fn table_message(offset: u32, count: u32) -> Vec<u8> {
    let mut b = vec![0u8; MAX_MESSAGE_SIZE];
    b[..4].copy_from_slice(&134u32.to_le_bytes());
    b[4..8].copy_from_slice(&count.to_le_bytes());
    b[8..12].copy_from_slice(&offset.to_le_bytes());
    for i in 0..SEND_TABLE_SIZE {
        let at = NVSP_MESSAGE_SIZE + 4 * i;
        b[at..at + 4].copy_from_slice(&(i as u32 + 100).to_le_bytes());
    }
    b
}

#[test]
fn send_table_offset_quirk_applies_up_to_nvsp_6() {
    let expected: [u32; SEND_TABLE_SIZE] = std::array::from_fn(|i| i as u32 + 100);
    // An old host's wrong offset: fixed up for NVSP <= 6 ...
    let b = table_message(12, 16);
    for v in [Version::V5, Version::V6] {
        assert_eq!(
            Message::parse(&b, Sender::Host, Some(v)),
            Ok(Message::SendIndirectionTable(SendTable { table: expected }))
        );
    }
    // ... and taken as it is from NVSP 6.1.
    let Ok(Message::SendIndirectionTable(t)) = Message::parse(&b, Sender::Host, Some(Version::V61))
    else {
        panic!()
    };
    assert_ne!(t.table, expected);
    // Offsets into the header, past the end, and wrong counts fail.
    for off in [0, 4, 11, 41, 1 << 31, u32::MAX] {
        assert!(Message::parse(&table_message(off, 16), Sender::Host, Some(Version::V61)).is_err());
    }
    for count in [0, 1, 15, 17, u32::MAX] {
        assert_eq!(
            Message::parse(&table_message(40, count), Sender::Host, Some(Version::V61)),
            Err(Error::BadField("count"))
        );
    }
}

/// A host that accepts exactly the versions in `accepts`, answering one
/// INIT the way `host_init_complete` does.
fn negotiate(accepts: &[Version], isolated: bool) -> (Vec<Version>, Option<Version>) {
    let (mut n, mut step) = Negotiation::start(isolated);
    let mut proposed = Vec::new();
    for _ in 0..10 {
        match step {
            Step::Propose(Message::Init { min, max }) => {
                assert_eq!(min, max);
                proposed.push(Version::from_raw(min).unwrap());
                // The host side: parse the guest's bytes, answer.
                let bytes = encode(&Message::Init { min, max });
                let Ok(Message::Init { min, max }) = Message::parse(&bytes, Sender::Guest, None)
                else {
                    panic!()
                };
                let answer = encode(&Message::InitComplete(host_init_complete(
                    min, max, accepts,
                )));
                let Ok(Message::InitComplete(c)) = Message::parse(&answer, Sender::Host, None)
                else {
                    panic!()
                };
                step = n.on_init_complete(&c);
            }
            Step::Done(v) => return (proposed, Some(v)),
            Step::Failed => return (proposed, None),
            Step::Propose(other) => panic!("{other:?}"),
        }
    }
    panic!("negotiation did not end");
}

#[test]
fn negotiation_tries_newest_first() {
    assert_eq!(
        negotiate(&GUEST_VERSIONS, false),
        (vec![Version::V61], Some(Version::V61))
    );
    assert_eq!(
        negotiate(&[Version::V4, Version::V5], false),
        (
            vec![Version::V61, Version::V6, Version::V5],
            Some(Version::V5)
        )
    );
    assert_eq!(
        negotiate(&[Version::V1], false),
        (GUEST_VERSIONS.to_vec(), Some(Version::V1))
    );
    assert_eq!(negotiate(&[], false), (GUEST_VERSIONS.to_vec(), None));
    // Isolated guests only propose 6.1.
    assert_eq!(negotiate(&[Version::V6], true), (vec![Version::V61], None));
}

#[test]
fn host_answers_say_which_way_the_guest_is_off() {
    let c = host_init_complete(0x70000, 0x70000, &[Version::V5, Version::V6]);
    assert_eq!(c.status, status::PROTOCOL_TOO_NEW);
    let c = host_init_complete(1, 1, &[Version::V5]);
    assert_eq!(c.status, status::PROTOCOL_TOO_OLD);
    let c = host_init_complete(2, 0x60001, &[Version::V4, Version::V6]);
    assert_eq!((c.status, c.negotiated_version), (status::SUCCESS, 0x60000));
}

#[test]
fn buffer_completions_are_checked_like_the_c_guest() {
    let ok = RecvBufComplete {
        status: status::SUCCESS,
        num_sections: 1,
        section: RecvBufSection {
            offset: 0,
            sub_alloc_size: 1728,
            num_sub_allocs: 100,
            end_offset: 0,
        },
    };
    assert_eq!(ok.slots(172_800), Ok((1728, 100)));
    assert!(ok.slots(172_799).is_err());
    let mut bad = ok;
    bad.num_sections = 2;
    assert!(bad.slots(1 << 24).is_err());
    let mut bad = ok;
    bad.section.sub_alloc_size = 67;
    assert!(bad.slots(1 << 24).is_err());
    let mut bad = ok;
    bad.section.num_sub_allocs = u32::MAX;
    bad.section.sub_alloc_size = u32::MAX;
    assert!(bad.slots(u32::MAX).is_err());
    assert_eq!(
        send_sections(status::SUCCESS, 6144, 1 << 20),
        Ok((6144, 170))
    );
    assert!(send_sections(status::SUCCESS, 0, 1 << 20).is_err());
    assert!(send_sections(status::SUCCESS, 6144, 6143).is_err());
    assert!(send_sections(status::FAIL, 6144, 1 << 20).is_err());
}

#[test]
fn ndis_config_follows_the_version() {
    let c = NdisConfig::for_guest(Version::V2, 1500, false);
    assert_eq!((c.mtu, c.capabilities), (1514, caps::IEEE8021Q));
    let c = NdisConfig::for_guest(Version::V5, 1500, false);
    assert_eq!(
        c.capabilities,
        caps::IEEE8021Q | caps::SRIOV | caps::TEAMING
    );
    let c = NdisConfig::for_guest(Version::V61, 1500, true);
    assert_eq!(c.capabilities, caps::IEEE8021Q | caps::TEAMING | caps::RSC);
}
