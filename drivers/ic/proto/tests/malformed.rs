//! Malformed input of every kind, from the host and from the daemons: each
//! is an error or a failure answer, never a panic, and leaves the next
//! good message working.

mod common;

use common::{negotiate_packet, Guest};
use hv_ic_core::guest::{self, Event};
use hv_ic_core::host::{self, Fault, KvpFaults};
use hv_ic_core::icmsg::{self, IcVersion, ICMSG_HDR};
use hv_ic_core::kvp::{self, off, DaemonMsg, DaemonVersion};
use hv_ic_core::negotiate;
use hv_ic_core::service::{self, Service};
use hv_ic_core::wire::Error;
use hv_ic_core::{heartbeat, shutdown, timesync, utf16, vss};

fn negotiated(g: &mut Guest, ch: &mut host::Channel) {
    let mut buf = vec![0u8; 4096];
    let n = ch.negotiate(&mut buf).unwrap();
    let a = g.receive(ch.service(), &buf[..n]).unwrap();
    ch.on_negotiate_response(&a).unwrap().unwrap();
}

#[test]
fn packets_shorter_than_the_headers_are_dropped_on_every_service() {
    for s in Service::ALL {
        for len in [0, 1, 8, ICMSG_HDR - 1] {
            let mut buf = vec![0u8; 64];
            assert!(matches!(
                guest::on_packet(s, None, true, &mut buf, len),
                Err(Error::TooShort {
                    need: ICMSG_HDR,
                    ..
                })
            ));
        }
        // A length past the buffer is refused, not read.
        let mut buf = vec![0u8; 64];
        assert!(guest::on_packet(s, None, true, &mut buf, 65).is_err());
    }
}

#[test]
fn negotiate_offers_the_guest_cannot_read_get_counts_zero() {
    let fw = [service::FW_3_0];
    let srv = [IcVersion::new(3, 0)];
    let good = negotiate_packet(&fw, &srv);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // 101 framework versions claimed.
        (
            {
                let mut p = good.clone();
                p[ICMSG_HDR..ICMSG_HDR + 2].copy_from_slice(&101u16.to_le_bytes());
                p
            },
            "fw count",
        ),
        (
            {
                let mut p = good.clone();
                p[ICMSG_HDR + 2..ICMSG_HDR + 4].copy_from_slice(&101u16.to_le_bytes());
                p
            },
            "srv count",
        ),
        // Counts that run past the packet.
        (
            {
                let mut p = good.clone();
                p[ICMSG_HDR + 2] = 2;
                p
            },
            "past the end",
        ),
        // Only versions the guest does not speak.
        (
            negotiate_packet(&[IcVersion::new(9, 9)], &srv),
            "unknown fw",
        ),
        (
            negotiate_packet(&fw, &[IcVersion::new(2, 0)]),
            "unknown srv",
        ),
        (negotiate_packet(&[], &[]), "no versions"),
        // 101 framework versions, all there and one of them good: the C
        // driver reads at most 100 and refuses the offer.
        (
            negotiate_packet(&[service::FW_3_0; 101], &srv),
            "101 versions present",
        ),
    ];
    for (pkt, why) in cases {
        let mut buf = vec![0u8; 4096];
        buf[..pkt.len()].copy_from_slice(&pkt);
        let h = guest::on_packet(Service::Heartbeat, None, true, &mut buf, pkt.len()).unwrap();
        assert_eq!(h.event, Event::Negotiated(None), "{why}");
        assert!(h.respond);
        assert_eq!(&buf[ICMSG_HDR..ICMSG_HDR + 4], &[0, 0, 0, 0], "{why}");
        assert_eq!(buf[25], icmsg::FLAG_TRANSACTION | icmsg::FLAG_RESPONSE);
    }
    // 100 is still read.
    let pkt = negotiate_packet(&[service::FW_3_0; 100], &srv);
    let mut buf = vec![0u8; 4096];
    buf[..pkt.len()].copy_from_slice(&pkt);
    let h = guest::on_packet(Service::Heartbeat, None, true, &mut buf, pkt.len()).unwrap();
    assert!(matches!(h.event, Event::Negotiated(Some(_))));
    // Too short for the two counts: dropped.
    let mut buf = vec![0u8; 4096];
    buf[..good.len()].copy_from_slice(&good);
    assert!(guest::on_packet(Service::Heartbeat, None, true, &mut buf, ICMSG_HDR + 3).is_err());
    // A receive buffer too small for the answer.
    let mut small = good[..40].to_vec();
    assert!(negotiate::respond(&mut small, 40, &fw, &srv).is_err());
}

#[test]
fn wrong_message_types_fail_on_util_services_and_are_dropped_on_kvp_and_vss() {
    let mut g = Guest::new();
    for s in Service::ALL {
        let mut ch = host::Channel::new(s);
        negotiated(&mut g, &mut ch);
    }
    let mut hb = host::Heartbeat::new(1);
    negotiated(&mut g, &mut hb.ch);
    let mut buf = vec![0u8; 4096];
    hb.ch.inject(Fault::MsgType(icmsg::MSG_VSS));
    let n = hb.beat(&mut buf).unwrap();
    let a = g.receive(Service::Heartbeat, &buf[..n]).unwrap();
    assert_eq!(icmsg::IcHeader::parse(&a).unwrap().status, icmsg::E_FAIL);
    assert_eq!(g.events.last(), Some(&Event::Unknown(icmsg::MSG_VSS)));
    // The next heartbeat is answered as usual.
    let n = hb.beat(&mut buf).unwrap();
    assert!(hb
        .on_response(&g.receive(Service::Heartbeat, &buf[..n]).unwrap())
        .unwrap());

    let mut v = host::Vss::new();
    negotiated(&mut g, &mut v.ch);
    v.ch.inject(Fault::MsgType(77));
    let n = v.request(&mut buf, vss::OP_FREEZE).unwrap();
    assert_eq!(g.receive(Service::Vss, &buf[..n]), None);
    assert_eq!(g.events.last(), Some(&Event::Unknown(77)));
    let mut k = host::Kvp::new();
    negotiated(&mut g, &mut k.ch);
    k.ch.inject(Fault::MsgType(icmsg::MSG_HEARTBEAT));
    let n = k.get(&mut buf, 0, "x").unwrap();
    assert_eq!(g.receive(Service::Kvp, &buf[..n]), None);
}

#[test]
fn bodies_too_short_for_the_message_are_dropped() {
    let mut g = Guest::new();
    let mut sd = host::Shutdown::new();
    negotiated(&mut g, &mut sd.ch);
    let mut buf = vec![0u8; 4096];
    sd.ch.inject(Fault::Truncate(shutdown::MIN_PACKET - 1));
    let n = sd.request(&mut buf, shutdown::Action::PowerOff).unwrap();
    assert_eq!(g.receive(Service::Shutdown, &buf[..n]), None);

    let mut ts = host::TimeSync::new();
    negotiated(&mut g, &mut ts.ch);
    ts.ch
        .inject(Fault::Truncate(ICMSG_HDR + timesync::REF_DATA_SIZE - 1));
    let n = ts
        .sample(&mut buf, timesync::WLTIMEDELTA, 0, timesync::FLAG_SYNC)
        .unwrap();
    assert_eq!(g.receive(Service::TimeSync, &buf[..n]), None);
    // The 3.0 layout is longer: a 4.0-sized sample is short for a 3.0 guest.
    let pkt = buf[..ICMSG_HDR + timesync::REF_DATA_SIZE].to_vec();
    assert!(timesync::Sample::parse(&pkt, IcVersion::new(3, 0)).is_err());
    assert!(timesync::Sample::parse(&pkt, IcVersion::new(4, 0)).is_ok());

    let mut hb = host::Heartbeat::new(5);
    negotiated(&mut g, &mut hb.ch);
    // Only the sequence number is required, not the reserved bytes.
    hb.ch.inject(Fault::Truncate(heartbeat::MIN_PACKET));
    let n = hb.beat(&mut buf).unwrap();
    assert!(hb
        .on_response(&g.receive(Service::Heartbeat, &buf[..n]).unwrap())
        .unwrap());
    hb.ch.inject(Fault::Truncate(heartbeat::MIN_PACKET - 1));
    let n = hb.beat(&mut buf).unwrap();
    assert_eq!(g.receive(Service::Heartbeat, &buf[..n]), None);

    let mut v = host::Vss::new();
    negotiated(&mut g, &mut v.ch);
    v.ch.inject(Fault::Truncate(vss::MIN_PACKET - 1));
    let n = v.request(&mut buf, vss::OP_FREEZE).unwrap();
    assert_eq!(g.receive(Service::Vss, &buf[..n]), None);

    let mut k = host::Kvp::new();
    negotiated(&mut g, &mut k.ch);
    for op_len in [
        kvp::OP_GET,
        kvp::OP_SET,
        kvp::OP_DELETE,
        kvp::OP_ENUMERATE,
        kvp::OP_GET_IP_INFO,
    ] {
        let need = kvp::packet_len_for(op_len).unwrap();
        let mut pkt = vec![0u8; need - 1];
        let mut hdr = vec![0u8; 4096];
        let n = k.enumerate(&mut hdr, 0, 0).unwrap();
        pkt[..ICMSG_HDR].copy_from_slice(&hdr[..ICMSG_HDR]);
        let _ = n;
        pkt[ICMSG_HDR] = op_len;
        assert!(
            matches!(kvp::Request::parse(&pkt), Err(Error::TooShort { .. })),
            "op {op_len}"
        );
        pkt.push(0);
        assert!(kvp::Request::parse(&pkt).is_ok(), "op {op_len}");
    }
}

#[test]
fn kvp_host_faults_are_answered_with_a_failure() {
    let mut g = Guest::new();
    let mut k = host::Kvp::new();
    negotiated(&mut g, &mut k.ch);
    let mut buf = vec![0u8; 8192];
    let faults = [
        KvpFaults {
            key_size: Some(514),
            ..KvpFaults::default()
        },
        KvpFaults {
            key_size: Some(7),
            ..KvpFaults::default()
        },
        KvpFaults {
            key_size: Some(u32::MAX),
            ..KvpFaults::default()
        },
        KvpFaults {
            value_size: Some(2050),
            ..KvpFaults::default()
        },
        KvpFaults {
            lone_surrogate: true,
            ..KvpFaults::default()
        },
    ];
    for f in faults {
        k.faults = f;
        let n = k.set(&mut buf, 0, "key", "value").unwrap();
        let mut msg = vec![0u8; kvp::MSG_SIZE];
        assert!(kvp::to_daemon(&buf[..n], &mut msg).is_err(), "{f:?}");
        let a = g.receive(Service::Kvp, &buf[..n]).unwrap();
        assert_eq!(k.on_response(&a).unwrap().status, icmsg::E_FAIL, "{f:?}");
    }
    assert!(
        g.kvp.as_ref().unwrap().pools[0].is_empty(),
        "nothing reached the daemon"
    );
    // A bad pool or an unknown operation is not a KVP request at all:
    // dropped (the kernel driver logs it); the host times out.
    for f in [
        KvpFaults {
            pool: Some(5),
            ..KvpFaults::default()
        },
        KvpFaults {
            operation: Some(6),
            ..KvpFaults::default()
        },
    ] {
        k.faults = f;
        let n = k.get(&mut buf, 0, "key").unwrap();
        assert_eq!(g.receive(Service::Kvp, &buf[..n]), None, "{f:?}");
    }
    // An unknown value type.
    let n = k.set_number(&mut buf, 0, "n", 1).unwrap();
    buf[ICMSG_HDR + off::VALUE_TYPE] = 3;
    let mut msg = vec![0u8; kvp::MSG_SIZE];
    assert_eq!(
        kvp::to_daemon(&buf[..n], &mut msg),
        Err(Error::BadField("value_type"))
    );
    // A daemon buffer too small.
    let n = k.get(&mut buf, 0, "key").unwrap();
    assert!(kvp::to_daemon(&buf[..n], &mut msg[..100]).is_err());
    // And the good request after all that still works.
    let n = k.set(&mut buf, 0, "key", "value").unwrap();
    let a = g.receive(Service::Kvp, &buf[..n]).unwrap();
    assert_eq!(k.on_response(&a).unwrap().status, icmsg::S_OK);
}

#[test]
fn bad_daemon_messages_are_refused() {
    // Short writes.
    assert!(kvp::parse_daemon(&[0u8; kvp::MSG_SIZE - 1], None).is_err());
    assert!(kvp::parse_daemon(&[0u8; kvp::MSG_SIZE - 1], Some(DaemonVersion::Register1)).is_err());
    // Before registration only REGISTER and REGISTER1.
    let mut m = vec![0u8; kvp::MSG_SIZE];
    m[0] = kvp::OP_GET;
    assert_eq!(kvp::parse_daemon(&m, None), Err(Error::UnknownType(0)));
    m[0] = kvp::OP_REGISTER;
    assert_eq!(
        kvp::parse_daemon(&m, None),
        Ok(DaemonMsg::Register(DaemonVersion::Register))
    );
    // Old daemons: an empty key is "no more items".
    m[0] = 0;
    assert_eq!(
        kvp::parse_daemon(&m, Some(DaemonVersion::Register)),
        Ok(DaemonMsg::Reply {
            status: icmsg::S_CONT
        })
    );
    m[off::ENUM_SHIFT + off::KEY] = b'k';
    assert_eq!(
        kvp::parse_daemon(&m, Some(DaemonVersion::Register)),
        Ok(DaemonMsg::Reply { status: 0 })
    );
    // VSS: exactly 12 bytes.
    assert!(vss::parse_daemon(&[0u8; 11]).is_err());
    assert!(vss::parse_daemon(&[0u8; 13]).is_err());
    assert_eq!(
        vss::parse_daemon(&[129, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Ok(vss::DaemonMsg::Register { answer: true })
    );
    assert_eq!(vss::registration_reply(), [129, 0, 0, 0]);
}

#[test]
fn daemon_replies_that_do_not_convert_fail_the_answer() {
    let mut k = host::Kvp::new();
    let mut g = Guest::new();
    negotiated(&mut g, &mut k.ch);
    let mut buf = vec![0u8; 8192];
    let cases: [(&[u8], &str); 3] = [
        (&[0xff, 0xfe, 0], "invalid UTF-8"),
        (&[b'a'; 2047], "longer than the host's 1022 units"),
        (&[0xe2, 0x82], "cut UTF-8 sequence"),
    ];
    for (value, why) in cases {
        let n = k.get(&mut buf, 0, "key").unwrap();
        let mut pkt = buf[..n].to_vec();
        let mut reply = vec![0u8; kvp::MSG_SIZE];
        reply[off::VALUE..off::VALUE + value.len()].copy_from_slice(value);
        assert_eq!(
            kvp::answer_host(&mut pkt, Some((&reply, 0))),
            Ok(icmsg::E_FAIL),
            "{why}"
        );
        assert_eq!(k.on_response(&pkt).unwrap().status, icmsg::E_FAIL);
    }
    // 1022 units is the most that fits.
    let n = k.get(&mut buf, 0, "key").unwrap();
    let mut pkt = buf[..n].to_vec();
    let mut reply = vec![0u8; kvp::MSG_SIZE];
    reply[off::VALUE..off::VALUE + 1022].fill(b'a');
    assert_eq!(kvp::answer_host(&mut pkt, Some((&reply, 0))), Ok(0));
    assert_eq!(k.on_response(&pkt).unwrap().value.len(), 2044);
    // A reply shorter than the message.
    let n = k.get(&mut buf, 0, "key").unwrap();
    let mut pkt = buf[..n].to_vec();
    assert_eq!(
        kvp::answer_host(&mut pkt, Some((&reply[..100], 0))),
        Ok(icmsg::E_FAIL)
    );
}

#[test]
fn vss_unknown_operations_are_refused() {
    let mut g = Guest::new();
    let mut v = host::Vss::new();
    negotiated(&mut g, &mut v.ch);
    let mut buf = vec![0u8; 4096];
    for op in [8u8, 100, vss::OP_REGISTER, 255] {
        let n = v.request(&mut buf, op).unwrap();
        assert_eq!(
            vss::Msg::parse_host(&buf[..n]),
            Err(Error::UnknownType(u32::from(op)))
        );
        assert_eq!(g.receive(Service::Vss, &buf[..n]), None);
    }
    assert!(g.vss.as_ref().unwrap().log.is_empty());
}

#[test]
fn the_host_engines_check_the_guests_answers() {
    let mut g = Guest::new();
    let mut hb = host::Heartbeat::new(1);
    negotiated(&mut g, &mut hb.ch);
    let mut buf = vec![0u8; 4096];
    let n = hb.beat(&mut buf).unwrap();
    let mut a = g.receive(Service::Heartbeat, &buf[..n]).unwrap();
    a[24] ^= 1; // another transaction
    assert!(!hb.on_response(&a).unwrap());
    let n = hb.beat(&mut buf).unwrap();
    // The request itself sent back (no response flag).
    assert!(!hb.on_response(&buf[..n]).unwrap());
    assert_eq!((hb.correct, hb.wrong), (0, 2));
    // A negotiate answer picking what the host did not offer.
    static FW1: [IcVersion; 1] = [service::FW_1_0];
    let mut ch = host::Channel::new(Service::Shutdown);
    ch.offer(&FW1, &service::SHUTDOWN_VERSIONS);
    let n = ch.negotiate(&mut buf).unwrap();
    let mut a = buf[..n].to_vec();
    negotiate::respond(
        &mut a,
        n,
        &service::FW_VERSIONS,
        &service::SHUTDOWN_VERSIONS,
    )
    .unwrap();
    a[ICMSG_HDR + 8] = 3; // framework 3.0, not offered
    icmsg::mark_response(&mut a).unwrap();
    assert_eq!(
        ch.on_negotiate_response(&a),
        Err(Error::BadField("icversion_data"))
    );
    // Requests before negotiation are refused by the engines.
    let mut sd = host::Shutdown::new();
    assert!(sd.request(&mut buf, shutdown::Action::PowerOff).is_err());
}

#[test]
fn utf16_conversion_checks_everything() {
    let mut out = [0u8; 8];
    assert_eq!(
        utf16::to_utf8(&[b'a', 0, b'b'], &mut out),
        Err(Error::BadField("utf16 length"))
    );
    assert_eq!(
        utf16::to_utf8(&[0x00, 0xdc], &mut out),
        Err(Error::BadField("utf16"))
    );
    assert_eq!(
        utf16::to_utf8(&[0x00, 0xd8, b'a', 0], &mut out),
        Err(Error::BadField("utf16"))
    );
    assert_eq!(
        utf16::to_utf8(&[0x00, 0xd8], &mut out),
        Err(Error::BadField("utf16"))
    );
    // Stops at NUL; the rest is not read.
    assert_eq!(
        utf16::to_utf8(&[b'h', 0, b'i', 0, 0, 0, 0x00, 0xdc], &mut out),
        Ok(2)
    );
    assert_eq!(&out[..2], b"hi");
    // A surrogate pair: U+1D11E.
    assert_eq!(utf16::to_utf8(&[0x34, 0xd8, 0x1e, 0xdd], &mut out), Ok(4));
    assert_eq!(&out[..4], "𝄞".as_bytes());
    assert!(matches!(
        utf16::to_utf8(&[0x34, 0xd8, 0x1e, 0xdd], &mut out[..3]),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(matches!(
        utf16::from_utf8(b"abc", &mut out[..5]),
        Err(Error::BufferTooSmall { need: 6, len: 5 })
    ));
    assert_eq!(
        utf16::from_utf8(b"\xc3", &mut out),
        Err(Error::BadField("utf8"))
    );
    assert_eq!(utf16::from_utf8(b"ab\0\xff", &mut out), Ok(4));
}
