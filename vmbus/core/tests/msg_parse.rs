//! Channel message parsers and builders: round trips, malformed input,
//! GPADL splitting around the 240-byte boundary.

use vmbus_core::guid::Guid;
use vmbus_core::msg::*;

fn sample_messages() -> Vec<Message> {
    let mut user = [0u8; USER_DEFINED_BYTES];
    for (i, b) in user.iter_mut().enumerate() {
        *b = i as u8 ^ 0x5a;
    }
    let g1 = Guid::parse("f8615163-df3e-46c5-913f-f2d2f965ed0e").unwrap();
    let g2 = Guid::parse("12345678-9abc-def0-1122-334455667788").unwrap();
    vec![
        Message::Offer(Offer {
            if_type: g1,
            if_instance: g2,
            chn_flags: 0x10,
            mmio_megabytes: 3,
            user_def: user,
            sub_channel_index: 2,
            child_relid: 14,
            monitor_id: Some(127),
            dedicated_interrupt: true,
            connection_id: 0x00ab_cdef,
        }),
        Message::Offer(Offer {
            if_type: g2,
            if_instance: g1,
            chn_flags: 0,
            mmio_megabytes: 0,
            user_def: [0; USER_DEFINED_BYTES],
            sub_channel_index: 0,
            child_relid: 2047,
            monitor_id: None,
            dedicated_interrupt: false,
            connection_id: 0,
        }),
        Message::Rescind { child_relid: 1 },
        Message::RequestOffers,
        Message::AllOffersDelivered,
        Message::OpenChannel(OpenChannel {
            child_relid: 7,
            openid: 7,
            ring_gpadl: 0xe1e10,
            target_vp: 3,
            downstream_page_offset: 256,
            user_data: user,
        }),
        Message::OpenResult {
            child_relid: 7,
            openid: 9,
            status: 0xc000_0001,
        },
        Message::CloseChannel { child_relid: 8 },
        Message::GpadlCreated {
            child_relid: 9,
            gpadl: 10,
            status: 0,
        },
        Message::GpadlTeardown {
            child_relid: 9,
            gpadl: 10,
        },
        Message::GpadlTorndown { gpadl: 0xffff_ffff },
        Message::RelidReleased { child_relid: 5 },
        Message::InitiateContact(InitiateContact {
            version: 0x0005_0003,
            target_vcpu: 0,
            interrupt_page: InitiateContact::sint_vtl(2, 0),
            monitor_page1: 0x1000,
            monitor_page2: 0x2000,
        }),
        Message::VersionResponse(VersionResponse {
            supported: true,
            connection_state: 0,
            msg_conn_id: 0x800074,
        }),
        Message::Unload,
        Message::UnloadResponse,
        Message::TlConnectRequest {
            guest_endpoint_id: g1,
            host_service_id: g2,
        },
        Message::ModifyChannel {
            child_relid: 3,
            target_vp: 17,
        },
        Message::ModifyChannelResponse {
            child_relid: 3,
            status: 1,
        },
    ]
}

fn encode(m: &Message) -> Vec<u8> {
    let mut buf = [0xffu8; MAX_MESSAGE_SIZE];
    let n = m.write(&mut buf);
    buf[..n].to_vec()
}

#[test]
fn every_message_type_round_trips() {
    let msgs = sample_messages();
    let mut seen = std::collections::BTreeSet::new();
    for m in &msgs {
        let bytes = encode(m);
        assert_eq!(bytes.len(), m.message_type().min_size(), "{m:?}");
        assert_eq!(Message::parse(&bytes), Ok(*m));
        seen.insert(m.message_type());
    }
    // The GPADL pair is covered by the split tests below.
    assert_eq!(seen.len() + 2, MessageType::ALL.len());
}

#[test]
fn exact_wire_bytes_of_a_version_response_and_open_result() {
    let bytes = encode(&Message::VersionResponse(VersionResponse {
        supported: true,
        connection_state: 2,
        msg_conn_id: 0x0102_0304 & 0x00ff_ffff,
    }));
    assert_eq!(
        bytes,
        [15, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0x04, 0x03, 0x02, 0]
    );
    let bytes = encode(&Message::OpenResult {
        child_relid: 1,
        openid: 2,
        status: 3,
    });
    assert_eq!(
        bytes,
        [6, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]
    );
}

#[test]
fn truncated_messages_are_too_short() {
    for m in sample_messages() {
        let bytes = encode(&m);
        for cut in 0..bytes.len() {
            let err = Message::parse(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, ParseError::TooShort { .. }),
                "{m:?} cut at {cut}: {err:?}"
            );
        }
    }
}

#[test]
fn trailing_bytes_are_ignored_up_to_the_payload_limit() {
    for m in sample_messages() {
        let mut bytes = encode(&m);
        bytes.resize(MAX_MESSAGE_SIZE, 0xcc);
        assert_eq!(Message::parse(&bytes), Ok(m));
        bytes.push(0);
        assert_eq!(
            Message::parse(&bytes),
            Err(ParseError::TooLong {
                len: MAX_MESSAGE_SIZE + 1
            })
        );
    }
}

#[test]
fn unknown_types_are_rejected() {
    for raw in [0u32, 18, 19, 20, 23, 25, 0x8000_0001] {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(&raw.to_le_bytes());
        assert_eq!(Message::parse(&bytes), Err(ParseError::UnknownType(raw)));
    }
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn bad_relids_are_rejected_in_every_message_that_carries_one() {
    for m in sample_messages() {
        let at = match m.message_type() {
            MessageType::OfferChannel => 8 + 176,
            MessageType::RescindChannelOffer
            | MessageType::CloseChannel
            | MessageType::RelidReleased
            | MessageType::OpenChannel
            | MessageType::OpenChannelResult
            | MessageType::GpadlCreated
            | MessageType::GpadlTeardown
            | MessageType::ModifyChannel
            | MessageType::ModifyChannelResponse => 8,
            _ => continue,
        };
        for relid in [0, MAX_CHANNEL_RELIDS, u32::MAX] {
            let mut bytes = encode(&m);
            set_u32(&mut bytes, at, relid);
            assert_eq!(
                Message::parse(&bytes),
                Err(ParseError::BadField {
                    msgtype: m.message_type(),
                    field: "child_relid"
                }),
                "{m:?} relid {relid}"
            );
        }
    }
}

#[test]
fn offer_field_checks() {
    let offer = sample_messages()[0];
    let base = encode(&offer);
    let bad = |field| {
        Err(ParseError::BadField {
            msgtype: MessageType::OfferChannel,
            field,
        })
    };

    let mut b = base.clone();
    b[8 + 176 + 4] = 128; // monitorid past the 4x32 trigger bits
    assert_eq!(Message::parse(&b), bad("monitorid"));
    // ... but an unallocated monitor id is not looked at.
    b[8 + 176 + 5] = 0;
    assert!(matches!(
        Message::parse(&b),
        Ok(Message::Offer(Offer {
            monitor_id: None,
            ..
        }))
    ));

    let mut b = base.clone();
    set_u32(&mut b, 192, 0x0100_0000);
    assert_eq!(Message::parse(&b), bad("connection_id"));
}

#[test]
fn version_response_supported_must_be_boolean() {
    let mut b = encode(&sample_messages()[13]);
    b[8] = 2;
    assert_eq!(
        Message::parse(&b),
        Err(ParseError::BadField {
            msgtype: MessageType::VersionResponse,
            field: "version_supported"
        })
    );
}

#[test]
fn synic_message_payload_size_is_checked() {
    let mut slot = [0u8; SYNIC_MESSAGE_SIZE];
    slot[0] = 1;
    slot[4] = 12;
    slot[5] = 1;
    slot[16] = 2;
    slot[16 + 12] = 0xee; // past the declared payload: not visible
    let m = SynicMessage::parse(&slot).unwrap();
    assert_eq!(m.message_type, 1);
    assert!(m.msg_pending());
    assert_eq!(m.payload().len(), 12);
    assert_eq!(m.payload()[0], 2);
    slot[4] = 240;
    assert_eq!(SynicMessage::parse(&slot).unwrap().payload().len(), 240);
    slot[4] = 241;
    assert_eq!(
        SynicMessage::parse(&slot),
        Err(ParseError::TooLong { len: 241 })
    );
}

/// Sends a GPADL through the splitter and the parser; returns each
/// message's length and checks the PFNs come back in order.
fn split_and_reassemble(pages: usize) -> Vec<usize> {
    let pfns: Vec<u64> = (0..pages as u64).map(|i| 0x10_0000 + i * 3).collect();
    let mut split = GpadlSplit::new(5, 0xe1e10, 0, (pages * 4096) as u32, &pfns).unwrap();
    let count = split.message_count();
    assert_eq!(count, gpadl_message_count(pages));
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let mut got = Vec::new();
    let mut lens = Vec::new();
    while let Some(n) = split.write_next(&mut buf) {
        assert!(n <= MAX_MESSAGE_SIZE);
        lens.push(n);
        match Message::parse(&buf[..n]).unwrap() {
            Message::GpadlHeader(h) => {
                assert!(got.is_empty(), "header must come first");
                assert_eq!(
                    (h.child_relid, h.gpadl, h.total_pfns as usize),
                    (5, 0xe1e10, pages)
                );
                assert_eq!((h.byte_offset, h.byte_count as usize), (0, pages * 4096));
                got.extend_from_slice(h.pfns.as_slice());
            }
            Message::GpadlBody(b) => {
                assert!(!got.is_empty(), "body before header");
                assert_eq!(b.gpadl, 0xe1e10);
                got.extend_from_slice(b.pfns.as_slice());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(lens.len(), count);
    assert_eq!(got, pfns);
    lens
}

#[test]
fn gpadl_split_around_the_payload_boundaries() {
    // 26 PFNs fill the header exactly (28 + 26 * 8 = 236 bytes; a 27th would
    // need 244), each body holds 28 (16 + 28 * 8 = 240).
    assert_eq!(split_and_reassemble(1), [36]);
    assert_eq!(split_and_reassemble(25), [228]);
    assert_eq!(split_and_reassemble(26), [236]);
    assert_eq!(split_and_reassemble(27), [236, 24]);
    assert_eq!(split_and_reassemble(26 + 27), [236, 232]);
    assert_eq!(split_and_reassemble(26 + 28), [236, 240]);
    assert_eq!(split_and_reassemble(26 + 29), [236, 240, 24]);
    assert_eq!(
        split_and_reassemble(26 + 28 * 5),
        [236, 240, 240, 240, 240, 240]
    );
    let big = split_and_reassemble(GPADL_MAX_PFNS);
    assert_eq!(big.len(), 1 + (GPADL_MAX_PFNS - 26).div_ceil(28));
}

#[test]
fn gpadl_split_rejects_bad_ranges() {
    let pfns = [1u64; 4];
    assert_eq!(
        GpadlSplit::new(1, 1, 0, 1, &[]).unwrap_err(),
        GpadlError::PageCount
    );
    let too_many = vec![0u64; GPADL_MAX_PFNS + 1];
    assert_eq!(
        GpadlSplit::new(1, 1, 0, 4096, &too_many).unwrap_err(),
        GpadlError::PageCount
    );
    assert_eq!(
        GpadlSplit::new(1, 1, 0, 3 * 4096, &pfns).unwrap_err(),
        GpadlError::Range
    );
    assert_eq!(
        GpadlSplit::new(1, 1, 0, 4 * 4096 + 1, &pfns).unwrap_err(),
        GpadlError::Range
    );
    assert_eq!(
        GpadlSplit::new(1, 1, 4096, 4096, &pfns[..1]).unwrap_err(),
        GpadlError::Range
    );
    assert_eq!(
        GpadlSplit::new(1, 1, 0, 0, &pfns[..1]).unwrap_err(),
        GpadlError::Range
    );
    // An unaligned buffer spanning 4 pages is fine.
    assert!(GpadlSplit::new(1, 1, 100, 3 * 4096, &pfns).is_ok());
}

#[test]
fn gpadl_header_field_checks() {
    let pfns = [7u64; 30];
    let mut split = GpadlSplit::new(1, 2, 0, 30 * 4096, &pfns).unwrap();
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let n = split.write_next(&mut buf).unwrap();
    let good = buf[..n].to_vec();
    assert!(Message::parse(&good).is_ok());
    let bad = |field| {
        Err(ParseError::BadField {
            msgtype: MessageType::GpadlHeader,
            field,
        })
    };

    let mut b = good.clone();
    b[18] = 2; // rangecount
    assert_eq!(Message::parse(&b), bad("rangecount"));
    let mut b = good.clone();
    b[16..18].copy_from_slice(&13u16.to_le_bytes()); // not 8 + 8k
    assert_eq!(Message::parse(&b), bad("range_buflen"));
    let mut b = good.clone();
    b[16..18].copy_from_slice(&8u16.to_le_bytes()); // no pages
    assert_eq!(Message::parse(&b), bad("range_buflen"));
    // A header that stops short of the PFNs it should carry.
    assert_eq!(Message::parse(&good[..n - 8]), bad("pfn_array"));
    assert_eq!(Message::parse(&good[..n - 3]), bad("pfn_array"));
    let mut b = good.clone();
    set_u32(&mut b, 20, 31 * 4096); // byte_count past the pages
    assert_eq!(Message::parse(&b), bad("byte_count"));

    // A body whose length is not a whole number of PFNs.
    let n = split.write_next(&mut buf).unwrap();
    assert_eq!(n, 16 + 4 * 8);
    assert_eq!(
        Message::parse(&buf[..n - 1]),
        Err(ParseError::BadField {
            msgtype: MessageType::GpadlBody,
            field: "pfn"
        })
    );
    assert_eq!(
        Message::parse(&buf[..16]),
        Err(ParseError::TooShort {
            msgtype: 9,
            len: 16
        })
    );
    assert!(split.write_next(&mut buf).is_none());
}

#[test]
fn random_bytes_never_panic_and_valid_parses_reencode_stably() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut ok = 0;
    for _ in 0..20_000 {
        let len = (next() % 250) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if len >= 4 {
            // Bias towards known types so the field checks get exercised.
            let t = MessageType::ALL[(next() % 20) as usize] as u32;
            bytes[..4].copy_from_slice(&t.to_le_bytes());
        }
        if let Ok(m) = Message::parse(&bytes) {
            ok += 1;
            let again = encode(&m);
            assert_eq!(Message::parse(&again), Ok(m));
        }
    }
    assert!(ok > 100, "only {ok} random messages parsed");
}
