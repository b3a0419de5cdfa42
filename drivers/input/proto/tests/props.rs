//! Property tests: every parser and state machine over arbitrary input
//! only ever returns typed results, and what the kernel drivers rely on
//! holds whatever the host says.

mod common;

use common::{Kbd, Mouse};
use hv_input_core::host::{DeviceInfoKind, Key, KeyboardHost, MouseHost, PointerReport, ABS_MAX};
use hv_input_core::keyboard::{self, scancodes, Keystroke, Message, Sender};
use hv_input_core::mouse;
use proptest::prelude::*;

/// Bytes that often start with a known keyboard message type.
fn kbd_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        0u32..=5,
        prop::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    )
        .prop_map(|(ty, mut rest, raw)| {
            if raw {
                rest
            } else {
                let mut b = ty.to_le_bytes().to_vec();
                b.append(&mut rest);
                b
            }
        })
}

/// Bytes that often carry a well-formed pipe and HID header whose sizes
/// may or may not tell the truth.
fn mouse_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        0u32..=5,
        prop::collection::vec(any::<u8>(), 0..200),
        0u8..4,
        any::<u16>(),
    )
        .prop_map(|(ty, body, mode, lie)| {
            let honest = body.len() as u32;
            let (pipe, hid) = match mode {
                0 => (honest + 8, honest),
                1 => (honest + 8, u32::from(lie)),
                2 => (u32::from(lie), honest),
                _ => return body,
            };
            let mut b = Vec::new();
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&pipe.to_le_bytes());
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&hid.to_le_bytes());
            b.extend_from_slice(&body);
            b
        })
}

proptest! {
    #[test]
    fn keyboard_parsing_never_panics_and_round_trips(b in kbd_bytes()) {
        for from in [Sender::Host, Sender::Guest] {
            if let Ok(m) = Message::parse(&b, from) {
                let mut out = [0u8; 16];
                let n = m.encode(&mut out).unwrap();
                let led = matches!(m, Message::LedIndicators { .. });
                prop_assert!(n <= b.len() || led);
                prop_assert_eq!(Message::parse(&out[..n], from), Ok(m));
            }
        }
    }

    #[test]
    fn keyboard_guest_in_any_state_never_panics(pre in 0u8..3, b in kbd_bytes()) {
        let mut g = keyboard::Guest::new();
        let mut r = [0u8; 8];
        if pre >= 1 {
            Message::ProtocolResponse { status: u32::from(pre == 1) }.encode(&mut r).unwrap();
            let _ = g.on_packet(&r);
        }
        let before = g.state();
        match g.on_packet(&b) {
            Ok(keyboard::Event::Keys { scancodes, .. }) => {
                prop_assert_eq!(before, keyboard::State::Ready);
                prop_assert!(!scancodes.as_slice().is_empty());
            }
            Ok(_) => {}
            Err(_) => prop_assert!(g.state() == before || g.state() == keyboard::State::Refused),
        }
    }

    #[test]
    fn scancodes_are_prefix_then_code_with_the_release_bit_on_breaks(make_code in any::<u16>(), info in any::<u32>()) {
        let k = Keystroke { make_code, info };
        if let Ok(s) = scancodes(&k) {
            let s = s.as_slice();
            let (&last, prefix) = s.split_last().unwrap();
            prop_assert_eq!(u16::from(last & 0x7f), make_code);
            prop_assert_eq!(last & 0x80 != 0, info & keyboard::IS_BREAK != 0);
            match prefix {
                [] => prop_assert_eq!(info & (keyboard::IS_E0 | keyboard::IS_E1), 0),
                [0xe0] => prop_assert_eq!(info & (keyboard::IS_E0 | keyboard::IS_E1), keyboard::IS_E0),
                [0xe1] => prop_assert_eq!(info & (keyboard::IS_E0 | keyboard::IS_E1), keyboard::IS_E1),
                _ => prop_assert!(false, "prefix {:?}", prefix),
            }
        } else {
            prop_assert!(make_code > 0x7f || info & keyboard::IS_UNICODE != 0
                || info & (keyboard::IS_E0 | keyboard::IS_E1) == keyboard::IS_E0 | keyboard::IS_E1);
        }
    }

    #[test]
    fn mouse_parsing_stays_inside_the_packet(b in mouse_bytes()) {
        for from in [Sender::Host, Sender::Guest] {
            match mouse::Message::parse(&b, from) {
                Ok(mouse::Message::InputReport(r)) => {
                    prop_assert!(!r.is_empty() && r.len() <= mouse::MAX_REPORT);
                    prop_assert!(r.len() + 16 <= b.len());
                }
                Ok(mouse::Message::DeviceInfo(d)) => {
                    let r = d.report_descriptor;
                    prop_assert!(!r.is_empty() && r.len() <= mouse::MAX_REPORT_DESCRIPTOR);
                    prop_assert_eq!(r.len(), usize::from(d.hid.report_length));
                    prop_assert!(usize::from(d.hid.length) >= mouse::HID_DESCRIPTOR_SIZE);
                    prop_assert!(16 + 32 + usize::from(d.hid.length) + r.len() <= b.len());
                }
                _ => {}
            }
        }
    }

    #[test]
    fn mouse_guest_in_any_state_never_panics(pre in 0u8..4, b in mouse_bytes()) {
        let mut m = Mouse::new(pre != 1, DeviceInfoKind::Good);
        if pre >= 1 {
            m.connect();
        }
        if pre == 3 {
            // Back to waiting for the device info.
            m = Mouse::new(true, DeviceInfoKind::Never);
            m.connect();
        }
        let before = m.guest.state();
        match m.guest.on_packet(&b) {
            Ok(mouse::Event::Report(_)) => prop_assert_eq!(before, mouse::State::Ready),
            Ok(mouse::Event::DeviceInfo(_)) => prop_assert_eq!(before, mouse::State::AwaitingDeviceInfo),
            Ok(mouse::Event::Approved) => prop_assert_eq!(before, mouse::State::AwaitingResponse),
            Err(_) => prop_assert!(m.guest.state() == before || m.guest.state() == mouse::State::Refused),
        }
    }

    #[test]
    fn host_devices_take_any_guest_bytes(k in kbd_bytes(), m in mouse_bytes()) {
        let mut kh = KeyboardHost::new(true);
        let _ = kh.on_guest_packet(&k);
        let mut mh = MouseHost::new(true, DeviceInfoKind::Good);
        let _ = mh.on_guest_packet(&m);
        let mut buf = vec![0u8; common::BUF];
        while let Some(r) = kh.pop(&mut buf) { r.unwrap(); }
        while let Some(r) = mh.pop(&mut buf) { r.unwrap(); }
    }

    #[test]
    fn typed_keys_arrive_as_their_scancodes_in_order(keys in prop::collection::vec((1u8..0x80, 0u8..3, any::<bool>()), 0..30)) {
        let mut k = Kbd::connected();
        let mut want = Vec::new();
        for (code, kind, tap) in keys {
            match kind {
                0 => { k.host.tap(Key::plain(code)).unwrap(); want.extend([code, code | 0x80]); }
                1 if tap => { k.host.tap(Key::extended(code)).unwrap(); want.extend([0xe0, code, 0xe0, code | 0x80]); }
                1 => { k.host.press(Key::extended(code)).unwrap(); want.extend([0xe0, code]); }
                _ => { k.host.pause().unwrap(); want.extend([0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]); }
            }
            k.pump();
        }
        prop_assert_eq!(k.take_serio(), want);
        prop_assert!(k.dropped.is_empty());
    }

    #[test]
    fn pointer_input_arrives_as_the_reports_a_model_predicts(ops in prop::collection::vec((0u8..3, any::<u16>(), any::<u16>()), 0..40)) {
        let mut m = Mouse::ready();
        let mut model = PointerReport::default();
        let mut want = Vec::new();
        for (op, a, b) in ops {
            match op {
                0 => { m.host.move_to(a, b).unwrap(); model.x = a.min(ABS_MAX); model.y = b.min(ABS_MAX); model.wheel = 0; }
                1 => {
                    let n = (a % 5) as u8 + 1;
                    m.host.button(n, b & 1 == 1).unwrap();
                    if b & 1 == 1 { model.buttons |= 1 << (n - 1) } else { model.buttons &= !(1 << (n - 1)) }
                    model.wheel = 0;
                }
                _ => { let s = (a as i8).max(-127); m.host.wheel(s).unwrap(); model.wheel = s; }
            }
            want.push(model);
            m.pump();
        }
        let got: Vec<PointerReport> = m.reports.iter().map(|r| PointerReport::from_bytes(r).unwrap()).collect();
        prop_assert_eq!(got, want);
        prop_assert!(m.dropped.is_empty());
    }
}
