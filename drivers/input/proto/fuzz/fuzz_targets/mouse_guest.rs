//! Everything the mouse guest parses from the host, over arbitrary bytes,
//! in each protocol state (chosen by the first byte). Nothing may panic;
//! a report and a report descriptor lie inside the packet and within the
//! HID core's bounds; the byte-14 patch never reaches past the descriptor.
#![no_main]

use hv_input_core::mouse::{self, Event, State};
use libfuzzer_sys::fuzz_target;

fn approve(g: &mut mouse::Guest) {
    let mut b = [0u8; 32];
    let n = mouse::encode_raw(&mut b, mouse::MSG_PROTOCOL_RESPONSE, &[0, 0, 2, 0, 1]).unwrap();
    assert_eq!(g.on_packet(&b[..n]), Ok(Event::Approved));
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, host)) = data.split_first() else {
        return;
    };
    let mut g = mouse::Guest::new();
    if sel % 3 >= 1 {
        approve(&mut g);
    }
    if sel % 3 == 2 {
        // Ready: take whatever device info the input holds, or stay put.
        let _ = g.on_packet(host);
    }
    let before = g.state();
    match g.on_packet(host) {
        Ok(Event::Report(r)) => {
            assert_eq!(before, State::Ready);
            assert!(!r.is_empty() && r.len() <= mouse::MAX_REPORT && r.len() + 16 <= host.len());
        }
        Ok(Event::DeviceInfo(d)) => {
            assert_eq!(before, State::AwaitingDeviceInfo);
            let r = d.report_descriptor;
            assert!(!r.is_empty() && r.len() <= mouse::MAX_REPORT_DESCRIPTOR);
            assert!(16 + 32 + usize::from(d.hid.length) + r.len() <= host.len());
            let mut copy = r.to_vec();
            mouse::fix_report_descriptor(&mut copy);
            assert_eq!(copy.len(), r.len());
        }
        Ok(Event::Approved) => assert_eq!(before, State::AwaitingResponse),
        Err(_) => assert!(g.state() == before || g.state() == State::Refused),
    }
});
