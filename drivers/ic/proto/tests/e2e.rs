//! The guest side against the host engines, every service end to end.

mod common;

use common::Guest;
use hv_ic_core::guest::Event;
use hv_ic_core::host::{self, Channel, IpInfo};
use hv_ic_core::icmsg::{self, IcVersion};
use hv_ic_core::negotiate::Agreement;
use hv_ic_core::service::{self, Service};
use hv_ic_core::shutdown::Action;
use hv_ic_core::timesync::{self, Sample};
use hv_ic_core::{kvp, utf16, vss};

fn v(major: u16, minor: u16) -> IcVersion {
    IcVersion::new(major, minor)
}

fn negotiate(ch: &mut Channel, g: &mut Guest) -> Option<Agreement> {
    let mut buf = vec![0u8; 4096];
    let n = ch.negotiate(&mut buf).unwrap();
    let answer = g
        .receive(ch.service(), &buf[..n])
        .expect("negotiate is always answered");
    assert_eq!(answer.len(), n, "answered in place, same length");
    ch.on_negotiate_response(&answer).unwrap()
}

#[test]
fn each_service_agrees_on_the_newest_versions_the_c_driver_offers() {
    let want = [
        (Service::Shutdown, v(3, 2)),
        (Service::TimeSync, v(4, 0)),
        (Service::Heartbeat, v(3, 0)),
        (Service::Kvp, v(4, 0)),
        (Service::Vss, v(5, 0)),
    ];
    let mut g = Guest::new();
    for (s, srv) in want {
        let mut ch = Channel::new(s);
        assert_eq!(
            negotiate(&mut ch, &mut g),
            Some(Agreement {
                framework: v(3, 0),
                service: srv
            }),
            "{s:?}"
        );
    }
}

#[test]
fn an_old_host_gets_its_own_versions() {
    static FW1: [IcVersion; 1] = [service::FW_1_0];
    static SD1: [IcVersion; 1] = [IcVersion::new(1, 0)];
    static SD31: [IcVersion; 2] = [IcVersion::new(3, 1), IcVersion::new(3, 0)];
    static TS3: [IcVersion; 2] = [IcVersion::new(3, 0), IcVersion::new(1, 0)];
    let mut g = Guest::new();
    let mut ch = Channel::new(Service::Shutdown);
    ch.offer(&FW1, &SD1);
    assert_eq!(
        negotiate(&mut ch, &mut g),
        Some(Agreement {
            framework: v(1, 0),
            service: v(1, 0)
        })
    );
    let mut ch = Channel::new(Service::Shutdown);
    ch.offer(&service::FW_VERSIONS, &SD31);
    assert_eq!(negotiate(&mut ch, &mut g).unwrap().service, v(3, 1));
    let mut ch = Channel::new(Service::TimeSync);
    ch.offer(&service::FW_VERSIONS, &TS3);
    assert_eq!(negotiate(&mut ch, &mut g).unwrap().service, v(3, 0));
    // VSS speaks framework 3.0 only: a 1.0-only host gets counts 0, 0.
    let mut ch = Channel::new(Service::Vss);
    ch.offer(&FW1, &service::VSS_VERSIONS);
    assert_eq!(negotiate(&mut ch, &mut g), None);
    assert_eq!(g.events.last(), Some(&Event::Negotiated(None)));
}

#[test]
fn heartbeats_are_answered_with_the_next_sequence_number() {
    let mut g = Guest::new();
    let mut hb = host::Heartbeat::new(u64::MAX - 3);
    negotiate(&mut hb.ch, &mut g).unwrap();
    let mut buf = vec![0u8; 4096];
    for _ in 0..10 {
        let n = hb.beat(&mut buf).unwrap();
        let answer = g.receive(Service::Heartbeat, &buf[..n]).unwrap();
        assert!(hb.on_response(&answer).unwrap());
    }
    assert_eq!((hb.correct, hb.wrong), (10, 0));
    // The counter wraps like the host's.
    assert!(g.events.contains(&Event::Heartbeat(0)));
    // An answer the guest did not change is counted wrong.
    let n = hb.beat(&mut buf).unwrap();
    let mut echo = buf[..n].to_vec();
    echo[25] = icmsg::FLAG_TRANSACTION | icmsg::FLAG_RESPONSE;
    assert!(!hb.on_response(&echo).unwrap());
    assert_eq!(hb.wrong, 1);
}

#[test]
fn shutdown_requests_are_answered_then_acted_on() {
    let mut g = Guest::new();
    let mut sd = host::Shutdown::new();
    negotiate(&mut sd.ch, &mut g).unwrap();
    let mut buf = vec![0u8; 4096];
    for action in [Action::PowerOff, Action::Reboot, Action::Hibernate] {
        let n = sd.request(&mut buf, action).unwrap();
        let answer = g.receive(Service::Shutdown, &buf[..n]).unwrap();
        assert_eq!(sd.on_response(&answer), Ok(icmsg::S_OK));
        assert_eq!(g.events.last(), Some(&Event::Shutdown(Some(action))));
    }
    // Force bits are accepted; Linux always forces.
    let n = sd.request_flags(&mut buf, 3, 0, b"").unwrap();
    assert_eq!(
        sd.on_response(&g.receive(Service::Shutdown, &buf[..n]).unwrap()),
        Ok(icmsg::S_OK)
    );
    assert_eq!(
        g.events.last(),
        Some(&Event::Shutdown(Some(Action::Reboot)))
    );
    // A guest that cannot hibernate says so.
    g.can_hibernate = false;
    let n = sd.request(&mut buf, Action::Hibernate).unwrap();
    assert_eq!(
        sd.on_response(&g.receive(Service::Shutdown, &buf[..n]).unwrap()),
        Ok(icmsg::E_FAIL)
    );
    assert_eq!(g.events.last(), Some(&Event::Shutdown(None)));
    // Unknown flags.
    let n = sd.request_flags(&mut buf, 8, 0, b"").unwrap();
    assert_eq!(
        sd.on_response(&g.receive(Service::Shutdown, &buf[..n]).unwrap()),
        Ok(icmsg::E_FAIL)
    );
    assert_eq!(g.events.last(), Some(&Event::Shutdown(None)));
}

#[test]
fn the_display_message_is_read_up_to_its_nul() {
    let mut g = Guest::new();
    let mut sd = host::Shutdown::new();
    negotiate(&mut sd.ch, &mut g).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = sd.request_flags(&mut buf, 0, 7, b"bye").unwrap();
    let r = hv_ic_core::shutdown::Request::parse(&buf[..n]).unwrap();
    assert_eq!((r.reason_code, r.display_message), (7, &b"bye"[..]));
}

#[test]
fn time_samples_in_both_layouts() {
    static TS3: [IcVersion; 1] = [IcVersion::new(3, 0)];
    let unix_2026 = 1_780_000_000u64 * 1_000_000_000;
    let host_time = timesync::unix_ns_to_host_time(unix_2026).unwrap();
    assert_eq!(timesync::host_time_to_unix_ns(host_time), Some(unix_2026));
    assert_eq!(
        timesync::host_time_to_unix_ns(timesync::WLTIMEDELTA),
        Some(0)
    );
    assert_eq!(
        timesync::host_time_to_unix_ns(timesync::WLTIMEDELTA - 1),
        None
    );
    for layout_ref in [true, false] {
        let mut g = Guest::new();
        let mut ts = host::TimeSync::new();
        let offer: &'static [IcVersion] = if layout_ref {
            &service::TIMESYNC_VERSIONS
        } else {
            &TS3
        };
        ts.ch.offer(&service::FW_VERSIONS, offer);
        negotiate(&mut ts.ch, &mut g).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = ts
            .sample(&mut buf, host_time, 5_000, timesync::FLAG_SYNC)
            .unwrap();
        assert_eq!(
            n,
            icmsg::ICMSG_HDR
                + if layout_ref {
                    timesync::REF_DATA_SIZE
                } else {
                    timesync::DATA_SIZE
                }
        );
        let answer = g.receive(Service::TimeSync, &buf[..n]).unwrap();
        assert_eq!(ts.on_response(&answer), Ok(0));
        let Some(&Event::Time(s)) = g.events.last() else {
            panic!("{:?}", g.events)
        };
        assert_eq!(s.parent_time, host_time);
        assert!(s.is_sync());
        if layout_ref {
            assert_eq!(s.reference_time, Some(5_000));
            // 4.0: the sample is moved on by the reference time since it was taken.
            assert_eq!(s.host_time_at(7_000, 0), host_time + 2_000);
        } else {
            assert_eq!(s.reference_time, None);
            assert_eq!(s.host_time_at(7_000, 6_000), host_time + 1_000);
        }
        let n = ts
            .sample(&mut buf, host_time, 0, timesync::FLAG_SAMPLE)
            .unwrap();
        g.receive(Service::TimeSync, &buf[..n]).unwrap();
        assert!(matches!(
            g.events.last(),
            Some(Event::Time(Sample {
                flags: timesync::FLAG_SAMPLE,
                ..
            }))
        ));
    }
}

fn kvp_round(g: &mut Guest, k: &mut host::Kvp, n: usize, buf: &[u8]) -> (u32, String, String) {
    let answer = g
        .receive(Service::Kvp, &buf[..n])
        .expect("KVP requests are answered");
    let a = k.on_response(&answer).unwrap();
    let text = |b: &[u8]| {
        let mut out = vec![0u8; 4096];
        let n = utf16::to_utf8(b, &mut out).unwrap();
        String::from_utf8(out[..n].to_vec()).unwrap()
    };
    (a.status, text(a.key), text(a.value))
}

#[test]
fn kvp_pool_operations_through_the_daemon() {
    let mut g = Guest::new();
    let mut k = host::Kvp::new();
    negotiate(&mut k.ch, &mut g).unwrap();
    let mut buf = vec![0u8; 8192];
    // Hyper-V pushes its items into pool 3 at connect.
    for (key, value) in [
        ("HostName", "hv-host-1"),
        ("VirtualMachineName", "rustic-vm"),
        ("Größe", "✓ 𝄞"),
    ] {
        let n = k.set(&mut buf, 3, key, value).unwrap();
        assert_eq!(kvp_round(&mut g, &mut k, n, &buf).0, icmsg::S_OK);
    }
    let n = k.set_number(&mut buf, 0, "Answer", 42).unwrap();
    assert_eq!(kvp_round(&mut g, &mut k, n, &buf).0, icmsg::S_OK);
    let n = k.set_number(&mut buf, 0, "Big", u64::MAX).unwrap();
    assert_eq!(kvp_round(&mut g, &mut k, n, &buf).0, icmsg::S_OK);
    let d = g.kvp.as_ref().unwrap();
    assert_eq!(d.pools[3].len(), 3);
    assert_eq!(d.pools[3][2], ("Größe".into(), "✓ 𝄞".into()));
    assert_eq!(
        d.pools[0],
        vec![
            ("Answer".into(), "42".into()),
            ("Big".into(), u64::MAX.to_string())
        ]
    );

    let n = k.get(&mut buf, 3, "VirtualMachineName").unwrap();
    assert_eq!(
        kvp_round(&mut g, &mut k, n, &buf),
        (icmsg::S_OK, String::new(), "rustic-vm".into())
    );
    let mut seen = Vec::new();
    for i in 0.. {
        let n = k.enumerate(&mut buf, 3, i).unwrap();
        let (status, key, value) = kvp_round(&mut g, &mut k, n, &buf);
        if status != icmsg::S_OK {
            assert_eq!(status, icmsg::E_FAIL);
            break;
        }
        seen.push((key, value));
    }
    assert_eq!(seen, g.kvp.as_ref().unwrap().pools[3]);
    let n = k.delete(&mut buf, 3, "HostName").unwrap();
    assert_eq!(kvp_round(&mut g, &mut k, n, &buf).0, icmsg::S_OK);
    let n = k.get(&mut buf, 3, "HostName").unwrap();
    assert_eq!(kvp_round(&mut g, &mut k, n, &buf).0, icmsg::E_FAIL);
    // The daemon gone: every request fails, none hangs.
    g.kvp = None;
    let n = k.get(&mut buf, 3, "VirtualMachineName").unwrap();
    assert_eq!(kvp_round(&mut g, &mut k, n, &buf).0, icmsg::E_FAIL);
}

#[test]
fn kvp_ip_injection_and_query() {
    let mut g = Guest::new();
    let mut k = host::Kvp::new();
    negotiate(&mut k.ch, &mut g).unwrap();
    let mut buf = vec![0u8; 8192];
    let info = IpInfo {
        adapter_id: "00:15:5D:00:01:02",
        addr_family: 1,
        dhcp_enabled: false,
        ip_addr: "192.0.2.10",
        sub_net: "255.255.255.0",
        gate_way: "192.0.2.1",
        dns_addr: "192.0.2.53;192.0.2.54",
    };
    let n = k.set_ip_info(&mut buf, &info).unwrap();
    assert_eq!(n, icmsg::ICMSG_HDR + kvp::IP_MSG_SIZE);
    assert_eq!(kvp_round(&mut g, &mut k, n, &buf).0, icmsg::S_OK);
    let ip = g.kvp.as_ref().unwrap().ip.clone().unwrap();
    assert_eq!(ip.0, info.adapter_id);
    assert_eq!(
        (ip.1.as_str(), ip.4.as_str(), ip.5, ip.6),
        (info.ip_addr, info.dns_addr, 1, 0)
    );
    let n = k.get_ip_info(&mut buf, info.adapter_id, 1).unwrap();
    let answer = g.receive(Service::Kvp, &buf[..n]).unwrap();
    assert_eq!(k.on_response(&answer).unwrap().status, icmsg::S_OK);
    let mut out = [[0u8; kvp::MAX_IP_ADDR]; 5];
    let (lens, family, dhcp) = host::Kvp::ip_answer(&answer, &mut out).unwrap();
    let s = |i: usize| std::str::from_utf8(&out[i][..lens[i]]).unwrap().to_owned();
    assert_eq!(
        (s(0), s(1), s(2), s(3), s(4), family, dhcp),
        (
            info.adapter_id.into(),
            info.ip_addr.into(),
            info.sub_net.into(),
            info.gate_way.into(),
            info.dns_addr.into(),
            1,
            false
        )
    );
}

#[test]
fn vss_backup_freeze_check_thaw() {
    let mut g = Guest::new();
    let mut h = host::Vss::new();
    assert_eq!(negotiate(&mut h.ch, &mut g).unwrap().service, v(5, 0));
    let mut buf = vec![0u8; 4096];
    let mut round = |g: &mut Guest, h: &mut host::Vss, op| {
        let n = h.request(&mut buf, op).unwrap();
        h.on_response(&g.receive(Service::Vss, &buf[..n]).unwrap())
            .unwrap()
    };
    assert_eq!(
        round(&mut g, &mut h, vss::OP_HOT_BACKUP),
        (0, vss::HBU_NO_AUTO_RECOVERY)
    );
    assert_eq!(round(&mut g, &mut h, vss::OP_FREEZE), (0, 0));
    assert_eq!(round(&mut g, &mut h, vss::OP_THAW), (0, 0));
    assert_eq!(round(&mut g, &mut h, vss::OP_GET_DM_INFO), (0, 0));
    assert_eq!(
        g.vss.as_ref().unwrap().log,
        [vss::OP_HOT_BACKUP, vss::OP_FREEZE, vss::OP_THAW]
    );
    g.vss.as_mut().unwrap().status = icmsg::E_FAIL;
    assert_eq!(round(&mut g, &mut h, vss::OP_FREEZE).0, icmsg::E_FAIL);
    g.vss = None;
    assert_eq!(round(&mut g, &mut h, vss::OP_FREEZE).0, icmsg::E_FAIL);
}

#[test]
fn the_negotiate_answer_is_the_c_drivers_byte_for_byte() {
    // Hyper-V's offer to heartbeat: frameworks 1.0, 3.0; services 1.0, 3.0, 3.1.
    let fw = [v(1, 0), v(3, 0)];
    let srv = [v(1, 0), v(3, 0), v(3, 1)];
    let mut buf = vec![0xaau8; 4096];
    let n = hv_ic_core::negotiate::build_request(&mut buf, 9, &fw, &srv).unwrap();
    assert_eq!(n, 28 + 8 + 5 * 4);
    let request = buf[..n].to_vec();
    let mut g = Guest::new();
    let answer = g.receive(Service::Heartbeat, &request).unwrap();
    let mut want = request.clone();
    want[18..20].copy_from_slice(&0x10u16.to_le_bytes()); // icmsgsize
    want[25] = icmsg::FLAG_TRANSACTION | icmsg::FLAG_RESPONSE;
    want[28..32].copy_from_slice(&[1, 0, 1, 0]); // one version of each
    want[36..44].copy_from_slice(&[3, 0, 0, 0, 3, 0, 0, 0]); // 3.0, 3.0
    assert_eq!(answer, want);
}
