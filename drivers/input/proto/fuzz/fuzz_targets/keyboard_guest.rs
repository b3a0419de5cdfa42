//! Everything the keyboard guest parses from the host, over arbitrary
//! bytes, in each protocol state (chosen by the first byte). Nothing may
//! panic; what parses re-encodes to the same message; scancodes are one
//! prefix at most and the make code with the release bit on a break.
#![no_main]

use hv_input_core::keyboard::{self, Event, Message, Sender, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, host)) = data.split_first() else {
        return;
    };
    if let Ok(m) = Message::parse(host, Sender::Host) {
        let mut b = [0u8; 16];
        let n = m.encode(&mut b).unwrap();
        assert_eq!(Message::parse(&b[..n], Sender::Host), Ok(m));
    }
    let mut g = keyboard::Guest::new();
    if sel & 1 != 0 {
        let mut b = [0u8; 8];
        Message::ProtocolResponse { status: 1 }.encode(&mut b).unwrap();
        assert_eq!(g.on_packet(&b), Ok(Event::Connected));
    }
    let before = g.state();
    match g.on_packet(host) {
        Ok(Event::Keys { scancodes, wake }) => {
            assert_eq!(before, State::Ready);
            let s = scancodes.as_slice();
            assert!(matches!(s.len(), 1 | 2));
            if let [p, _] = s {
                assert!(*p == 0xe0 || *p == 0xe1);
            }
            assert_eq!(wake, s.last().is_some_and(|c| c & 0x80 == 0));
        }
        Ok(_) => {}
        Err(_) => assert!(g.state() == before || g.state() == State::Refused),
    }
});
