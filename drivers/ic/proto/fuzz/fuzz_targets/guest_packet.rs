//! Everything the guest receives from the host, over arbitrary bytes: the
//! first byte picks the service, the negotiated version and whether the
//! guest can hibernate; the rest is the packet. Nothing may panic; an
//! answer is marked as one and keeps the packet's length; a KVP request
//! converts for the daemon or fails, and its answer is a status the host
//! knows; what the guest agrees to is in its tables.
#![no_main]

use hv_ic_core::guest::{self, Event};
use hv_ic_core::icmsg::{self, IcHeader, IcVersion};
use hv_ic_core::service::{Service, RECV_BUFFER_SIZE};
use hv_ic_core::{kvp, vss};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    if pkt.len() > RECV_BUFFER_SIZE {
        return;
    }
    let service = Service::ALL[usize::from(sel) % 5];
    let versions = [
        None,
        Some(IcVersion::new(4, 0)),
        Some(IcVersion::new(3, 0)),
        Some(IcVersion::new(1, 0)),
    ];
    let version = versions[usize::from(sel >> 3) % 4];
    let mut buf = vec![0u8; RECV_BUFFER_SIZE];
    buf[..pkt.len()].copy_from_slice(pkt);
    let Ok(h) = guest::on_packet(service, version, sel & 0x80 != 0, &mut buf, pkt.len()) else {
        return;
    };
    let hdr = IcHeader::parse(&buf[..pkt.len()]).expect("a handled packet has its headers");
    if h.respond {
        assert_eq!(hdr.flags, icmsg::FLAG_TRANSACTION | icmsg::FLAG_RESPONSE);
    }
    match h.event {
        Event::Negotiated(Some(a)) => {
            assert!(service.framework_versions().contains(&a.framework));
            assert!(service.service_versions().contains(&a.service));
        }
        Event::Kvp(r) => {
            assert!(r.pool < kvp::POOL_COUNT);
            let mut m = vec![0u8; kvp::MSG_SIZE];
            let forwarded = kvp::to_daemon(&buf[..pkt.len()], &mut m);
            // Echo the daemon's own message back as its reply.
            let reply = forwarded.ok().map(|_| (&m[..], 0));
            let st = kvp::answer_host(&mut buf[..pkt.len()], reply)
                .expect("a parsed request can be answered");
            assert!(st == icmsg::S_OK || st == icmsg::E_FAIL);
        }
        Event::Vss(m) => {
            assert!(m.operation <= vss::OP_AUTO_RECOVER);
            vss::answer_host(&mut buf[..pkt.len()], 0).expect("a parsed request can be answered");
        }
        _ => {}
    }
});
