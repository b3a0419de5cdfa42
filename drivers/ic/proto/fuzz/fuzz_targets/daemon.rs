//! Everything the kernel reads from the daemons, over arbitrary bytes:
//! their writes to /dev/vmbus/hv_kvp and /dev/vmbus/hv_vss, and a KVP
//! reply turned into the host's answer (the packet is a fixed GET or
//! ENUMERATE or GET_IP_INFO request). Nothing may panic; an answer's
//! strings are within the host's sizes.
#![no_main]

use hv_ic_core::host::Kvp;
use hv_ic_core::icmsg::{self, IcVersion};
use hv_ic_core::kvp::{self, DaemonMsg, DaemonVersion};
use hv_ic_core::negotiate;
use hv_ic_core::service::{FW_VERSIONS, KVP_VERSIONS};
use hv_ic_core::vss;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, reply)) = data.split_first() else {
        return;
    };
    let registered = [
        None,
        Some(DaemonVersion::Register),
        Some(DaemonVersion::Register1),
    ][usize::from(sel) % 3];
    let _ = vss::parse_daemon(reply);
    let status = match kvp::parse_daemon(reply, registered) {
        Ok(DaemonMsg::Reply { status }) => status,
        _ => 0,
    };
    let mut host = Kvp::new();
    let mut buf = vec![0u8; 8192];
    let n = host.ch.negotiate(&mut buf).unwrap();
    negotiate::respond(&mut buf, n, &FW_VERSIONS, &KVP_VERSIONS).unwrap();
    icmsg::mark_response(&mut buf).unwrap();
    host.ch.on_negotiate_response(&buf[..n]).unwrap();
    let _ = IcVersion::new(0, 0);
    let n = match (sel >> 2) % 3 {
        0 => host.get(&mut buf, 0, "key").unwrap(),
        1 => host.enumerate(&mut buf, 1, 0).unwrap(),
        _ => host.get_ip_info(&mut buf, "00:15:5D:00:00:01", 1).unwrap(),
    };
    let pkt = &mut buf[..n];
    let st = kvp::answer_host(pkt, Some((reply, status))).unwrap();
    assert!(st == status || st == icmsg::E_FAIL);
    if let Ok(a) = host.on_response(pkt) {
        assert!(a.key.len() <= kvp::MAX_KEY_SIZE - 2);
        assert!(a.value.len() <= kvp::MAX_VALUE_SIZE - 2);
    }
});
