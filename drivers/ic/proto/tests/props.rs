//! Property tests: arbitrary host packets, daemon messages and strings
//! only ever give typed results, and what the guest agrees to or passes on
//! keeps the protocol's invariants.

use hv_ic_core::guest::{self, Event};
use hv_ic_core::host;
use hv_ic_core::icmsg::{self, IcVersion, ICMSG_HDR};
use hv_ic_core::kvp::{self, off, DaemonVersion};
use hv_ic_core::negotiate;
use hv_ic_core::service::{Service, RECV_BUFFER_SIZE};
use hv_ic_core::{utf16, vss};
use proptest::prelude::*;

fn service() -> impl Strategy<Value = Service> {
    prop::sample::select(Service::ALL.to_vec())
}

fn version() -> impl Strategy<Value = IcVersion> {
    (0u16..6, 0u16..3).prop_map(|(a, b)| IcVersion::new(a, b))
}

/// A header of a plausible type followed by arbitrary bytes.
fn packet() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(any::<u8>(), 0..8000), 0u16..8).prop_map(|(mut p, t)| {
        if p.len() >= 14 {
            p[12..14].copy_from_slice(&t.to_le_bytes());
        }
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_packet_on_any_service(s in service(), v in prop::option::of(version()), pkt in packet(), hib: bool) {
        let mut buf = vec![0u8; RECV_BUFFER_SIZE];
        buf[..pkt.len()].copy_from_slice(&pkt);
        if let Ok(h) = guest::on_packet(s, v, hib, &mut buf, pkt.len()) {
            let hdr = icmsg::IcHeader::parse(&buf[..pkt.len()]).unwrap();
            if h.respond {
                prop_assert_eq!(hdr.flags, icmsg::FLAG_TRANSACTION | icmsg::FLAG_RESPONSE);
            }
            match h.event {
                Event::Kvp(r) => {
                    prop_assert!(r.pool < kvp::POOL_COUNT);
                    let mut m = vec![0u8; kvp::MSG_SIZE];
                    let _ = kvp::to_daemon(&buf[..pkt.len()], &mut m);
                    let mut reply = pkt.clone();
                    reply.resize(kvp::MSG_SIZE, 0);
                    let st = kvp::answer_host(&mut buf[..pkt.len()], Some((&reply, 0))).unwrap();
                    prop_assert!(st == 0 || st == icmsg::E_FAIL);
                }
                Event::Vss(m) => {
                    prop_assert!(m.operation <= vss::OP_AUTO_RECOVER);
                    vss::answer_host(&mut buf[..pkt.len()], 0).unwrap();
                }
                Event::Negotiated(Some(a)) => {
                    prop_assert!(s.framework_versions().contains(&a.framework));
                    prop_assert!(s.service_versions().contains(&a.service));
                }
                _ => {}
            }
        }
    }

    #[test]
    fn the_guest_picks_its_newest_offered_version(
        s in service(),
        fw in prop::collection::vec(version(), 0..6),
        srv in prop::collection::vec(version(), 0..6),
    ) {
        let mut buf = vec![0u8; 4096];
        let n = negotiate::build_request(&mut buf, 1, &fw, &srv).unwrap();
        let got = negotiate::respond(&mut buf, n, s.framework_versions(), s.service_versions()).unwrap();
        let want_fw = s.framework_versions().iter().find(|v| fw.contains(v));
        let want_srv = s.service_versions().iter().find(|v| srv.contains(v));
        let want = want_fw.zip(want_srv).map(|(f, v)| negotiate::Agreement { framework: *f, service: *v });
        prop_assert_eq!(got, want);
        icmsg::mark_response(&mut buf).unwrap();
        prop_assert_eq!(negotiate::parse_response(&buf[..n.max(negotiate::RESPONSE_LEN)]), Ok(got));
    }

    #[test]
    fn kvp_requests_reach_the_daemon_as_valid_c_strings(
        key in "\\PC{0,120}",
        value in "\\PC{0,300}",
        pool in 0u8..5,
    ) {
        let mut k = host::Kvp::new();
        let mut buf = vec![0u8; 4096];
        let n = k.ch.negotiate(&mut buf).unwrap();
        negotiate::respond(&mut buf, n, &hv_ic_core::service::FW_VERSIONS, &hv_ic_core::service::KVP_VERSIONS).unwrap();
        icmsg::mark_response(&mut buf).unwrap();
        k.ch.on_negotiate_response(&buf[..n]).unwrap();
        let mut buf = vec![0u8; 8192];
        let n = k.set(&mut buf, pool, &key, &value).unwrap();
        let mut m = vec![0u8; kvp::MSG_SIZE];
        kvp::to_daemon(&buf[..n], &mut m).unwrap();
        let key_c = &m[off::KEY..off::KEY + kvp::MAX_KEY_SIZE];
        let end = key_c.iter().position(|&b| b == 0).unwrap();
        let ksize = u32::from_le_bytes(m[off::KEY_SIZE..off::KEY_SIZE + 4].try_into().unwrap()) as usize;
        prop_assert_eq!(ksize, end + 1);
        let nul = key.find('\0').unwrap_or(key.len());
        prop_assert_eq!(std::str::from_utf8(&key_c[..end]).unwrap(), &key[..nul]);
        prop_assert_eq!(m[off::POOL], pool);
    }

    #[test]
    fn utf16_round_trips(s in "\\PC{0,200}") {
        let s: String = s.chars().filter(|&c| c != '\0').collect();
        let mut u = vec![0u8; 2 * 2 * 200];
        let n = utf16::from_utf8(s.as_bytes(), &mut u).unwrap();
        prop_assert_eq!(n, 2 * s.encode_utf16().count());
        let mut back = vec![0u8; 4 * 200];
        let m = utf16::to_utf8(&u[..n], &mut back).unwrap();
        prop_assert_eq!(&back[..m], s.as_bytes());
    }

    #[test]
    fn utf16_of_any_bytes_is_valid_utf8_or_an_error(b in prop::collection::vec(any::<u8>(), 0..300), room in 0usize..700) {
        let mut out = vec![0u8; room];
        if let Ok(n) = utf16::to_utf8(&b, &mut out) {
            prop_assert!(std::str::from_utf8(&out[..n]).is_ok());
        }
        let mut out = vec![0u8; room];
        if let Ok(n) = utf16::from_utf8(&b, &mut out) {
            prop_assert!(n % 2 == 0 && n <= room);
        }
    }

    #[test]
    fn any_daemon_write(b in prop::collection::vec(any::<u8>(), 0..8000), reg in 0u8..3) {
        let reg = [None, Some(DaemonVersion::Register), Some(DaemonVersion::Register1)][reg as usize];
        let _ = kvp::parse_daemon(&b, reg);
        let _ = vss::parse_daemon(&b);
    }

    #[test]
    fn host_engines_take_any_answer(pkt in packet()) {
        let mut hb = host::Heartbeat::new(0);
        let _ = hb.on_response(&pkt);
        let mut k = host::Kvp::new();
        let _ = k.on_response(&pkt);
        let mut out = [[0u8; kvp::MAX_IP_ADDR]; 5];
        let _ = host::Kvp::ip_answer(&pkt, &mut out);
        let _ = host::Vss::new().on_response(&pkt);
        let _ = host::Channel::new(Service::Kvp).on_negotiate_response(&pkt);
        let _ = ICMSG_HDR;
    }
}
