//! Everything the simulated host reads from the guest, over arbitrary
//! bytes: answers to NEGOTIATE, heartbeats, shutdown, time sync, KVP
//! (including the IP information) and VSS requests. Nothing may panic; a
//! heartbeat answer counts once, right or wrong.
#![no_main]

use hv_ic_core::host::{self, Channel};
use hv_ic_core::kvp;
use hv_ic_core::service::Service;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for s in Service::ALL {
        let _ = Channel::new(s).on_negotiate_response(data);
    }
    let mut hb = host::Heartbeat::new(0);
    if hb.on_response(data).is_ok() {
        assert_eq!(hb.correct + hb.wrong, 1);
    }
    let _ = host::Shutdown::new().on_response(data);
    let _ = host::TimeSync::new().on_response(data);
    let _ = host::Kvp::new().on_response(data);
    let mut out = [[0u8; kvp::MAX_IP_ADDR]; 5];
    if let Ok((lens, _, _)) = host::Kvp::ip_answer(data, &mut out) {
        assert!(lens.iter().all(|&l| l <= kvp::MAX_IP_ADDR));
    }
    let _ = host::Vss::new().on_response(data);
});
