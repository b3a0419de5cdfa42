//! The synthetic keyboard end to end: the guest side against the simulated
//! host, every key's serio bytes, the LED message, every fault refused.

mod common;

use common::Kbd;
use hv_input_core::host::{Key, KeyboardFault, Prefix};
use hv_input_core::keyboard::{self, scancodes, Event, Keystroke, Message, Sender, State};
use hv_input_core::wire::Error;

#[test]
fn wire_layout_matches_the_c_structs() {
    let g = keyboard::Guest::new();
    let mut b = [0xaau8; 16];
    assert_eq!(g.request(&mut b), Ok(8));
    // SYNTH_KBD_PROTOCOL_REQUEST, version 1.0 (major in the high half)
    assert_eq!(b[..8], [1, 0, 0, 0, 0, 0, 1, 0]);
    let k = Message::Event(Keystroke {
        make_code: 0x1e,
        info: keyboard::IS_BREAK | keyboard::IS_E0,
    });
    assert_eq!(k.encode(&mut b), Ok(12));
    assert_eq!(b[..12], [3, 0, 0, 0, 0x1e, 0, 0, 0, 6, 0, 0, 0]);
    assert_eq!(g.leds(0xffff, &mut b), Ok(8));
    assert_eq!(b[..8], [4, 0, 0, 0, 7, 0, 0, 0]);
    assert_eq!(
        g.request(&mut [0u8; 7]),
        Err(Error::BufferTooSmall { need: 8, len: 7 })
    );
}

#[test]
fn connects_when_the_host_accepts_version_1_0() {
    let mut k = Kbd::new(true);
    assert_eq!(k.guest.state(), State::AwaitingResponse);
    k.connect();
    assert!(k.connected && k.host.connected());
    assert_eq!(k.guest.state(), State::Ready);
    assert!(k.dropped.is_empty());
}

#[test]
fn a_refused_version_fails_the_probe() {
    let mut k = Kbd::new(false);
    k.connect();
    assert!(!k.connected);
    assert_eq!(k.guest.state(), State::Refused);
    assert_eq!(k.dropped, [Error::BadField("proto_status")]);
    // And the host types nothing to a guest it refused.
    assert_eq!(
        k.host.tap(Key::plain(0x1e)),
        Err(Error::Unexpected(keyboard::MSG_EVENT))
    );
}

#[test]
fn the_host_refuses_other_versions() {
    let mut k = Kbd::new(true);
    let mut b = [0u8; 8];
    Message::ProtocolRequest { version: 2 << 16 }
        .encode(&mut b)
        .unwrap();
    k.host.on_guest_packet(&b).unwrap();
    k.pump();
    assert_eq!(k.guest.state(), State::Refused);
}

#[test]
fn every_plain_key_makes_and_breaks() {
    let mut k = Kbd::connected();
    for code in 1u8..0x80 {
        k.host.tap(Key::plain(code)).unwrap();
        k.pump();
        assert_eq!(k.take_serio(), [code, code | 0x80], "key {code:#x}");
    }
    assert_eq!(k.wakeups, 0x7f, "one wakeup per press, none per release");
    assert!(k.dropped.is_empty());
}

#[test]
fn every_extended_key_has_its_e0_prefix_on_make_and_break() {
    let mut k = Kbd::connected();
    for code in 1u8..0x80 {
        k.host.press(Key::extended(code)).unwrap();
        k.host.release(Key::extended(code)).unwrap();
        k.pump();
        assert_eq!(
            k.take_serio(),
            [0xe0, code, 0xe0, code | 0x80],
            "key {code:#x}"
        );
    }
}

#[test]
fn pause_is_e1_1d_45_e1_9d_c5() {
    let mut k = Kbd::connected();
    k.host.pause().unwrap();
    k.pump();
    assert_eq!(k.take_serio(), [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
    assert_eq!(k.wakeups, 2);
}

#[test]
fn a_typed_sequence_arrives_in_order() {
    let mut k = Kbd::connected();
    // Shift-h, i, Right Ctrl + Up arrow, Pause, keypad Enter.
    let shift = Key::plain(0x2a);
    k.host.press(shift).unwrap();
    k.host.tap(Key::plain(0x23)).unwrap();
    k.host.release(shift).unwrap();
    k.host.tap(Key::plain(0x17)).unwrap();
    k.host.press(Key::extended(0x1d)).unwrap();
    k.host.tap(Key::extended(0x48)).unwrap();
    k.host.release(Key::extended(0x1d)).unwrap();
    k.host.pause().unwrap();
    k.host.tap(Key::extended(0x1c)).unwrap();
    k.pump();
    assert_eq!(
        k.take_serio(),
        [
            0x2a, 0x23, 0xa3, 0xaa, 0x17, 0x97, 0xe0, 0x1d, 0xe0, 0x48, 0xe0, 0xc8, 0xe0, 0x9d,
            0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5, 0xe0, 0x1c, 0xe0, 0x9c
        ]
    );
    assert!(k.dropped.is_empty());
}

#[test]
fn unicode_keystrokes_are_not_scancodes() {
    let mut k = Kbd::connected();
    k.host.unicode(0x20ac).unwrap();
    k.host.unicode(0x41).unwrap();
    k.pump();
    assert_eq!(k.unicode, [0x20ac, 0x41]);
    assert!(k.serio.is_empty());
    assert_eq!(
        scancodes(&Keystroke {
            make_code: 0x41,
            info: keyboard::IS_UNICODE
        }),
        Err(Error::BadField("info"))
    );
}

#[test]
fn led_state_reaches_the_host() {
    let mut k = Kbd::connected();
    let mut b = [0u8; 8];
    let n = k
        .guest
        .leds(keyboard::LED_CAPS_LOCK | keyboard::LED_NUM_LOCK, &mut b)
        .unwrap();
    k.host.on_guest_packet(&b[..n]).unwrap();
    assert_eq!(k.host.leds(), 6);
    // A 6-byte LED message (no padding) is whole too.
    k.host.on_guest_packet(&[4, 0, 0, 0, 1, 0]).unwrap();
    assert_eq!(k.host.leds(), keyboard::LED_SCROLL_LOCK);
}

#[test]
fn vmbus_padding_is_accepted_up_to_the_maximum_message() {
    let mut g = keyboard::Guest::new();
    let mut b = [0u8; 300];
    Message::ProtocolResponse { status: 1 }
        .encode(&mut b)
        .unwrap();
    assert_eq!(g.on_packet(&b[..16]), Ok(Event::Connected));
    Message::Event(Keystroke {
        make_code: 0x10,
        info: 0,
    })
    .encode(&mut b)
    .unwrap();
    assert!(matches!(g.on_packet(&b[..256]), Ok(Event::Keys { .. })));
    assert_eq!(
        g.on_packet(&b[..257]),
        Err(Error::TooLong { max: 256, len: 257 })
    );
}

#[test]
fn scancode_translation_refuses_what_is_not_a_set_1_code() {
    let k = |make_code, info| scancodes(&Keystroke { make_code, info });
    assert_eq!(k(0x1e, 0).unwrap().as_slice(), [0x1e]);
    assert_eq!(k(0x1e, keyboard::IS_BREAK).unwrap().as_slice(), [0x9e]);
    assert_eq!(k(0x1d, keyboard::IS_E1).unwrap().as_slice(), [0xe1, 0x1d]);
    // Reserved info bits are ignored.
    assert_eq!(k(0x1e, 0xf0).unwrap().as_slice(), [0x1e]);
    assert_eq!(k(0x9e, 0), Err(Error::BadField("make_code")));
    assert_eq!(k(0x100, 0), Err(Error::BadField("make_code")));
    assert_eq!(
        k(0x1d, keyboard::IS_E0 | keyboard::IS_E1),
        Err(Error::BadField("info"))
    );
}

#[test]
fn the_guest_refuses_guest_messages_and_the_host_host_messages() {
    let mut b = [0u8; 12];
    Message::LedIndicators { flags: 1 }.encode(&mut b).unwrap();
    assert_eq!(
        Message::parse(&b[..8], Sender::Host),
        Err(Error::WrongSender(4))
    );
    Message::Event(Keystroke {
        make_code: 1,
        info: 0,
    })
    .encode(&mut b)
    .unwrap();
    assert_eq!(
        Message::parse(&b, Sender::Guest),
        Err(Error::WrongSender(3))
    );
    let mut k = Kbd::connected();
    assert_eq!(k.host.on_guest_packet(&b), Err(Error::WrongSender(3)));
    assert_eq!(
        k.host.on_guest_packet(&[1, 0, 0]),
        Err(Error::TooShort { need: 4, len: 3 })
    );
    assert_eq!(k.host.counters().bad, 2);
}

/// Each fault is dropped with the error it deserves, and typing still
/// works after it.
#[test]
fn every_fault_is_dropped_and_the_keyboard_keeps_working() {
    let cases = [
        (KeyboardFault::Short, Error::TooShort { need: 12, len: 6 }),
        (
            KeyboardFault::Oversized,
            Error::TooLong { max: 256, len: 264 },
        ),
        (KeyboardFault::UnknownType, Error::UnknownType(0x55)),
        (KeyboardFault::WideMakeCode, Error::BadField("make_code")),
        (
            KeyboardFault::ReleaseBitMakeCode,
            Error::BadField("make_code"),
        ),
        (KeyboardFault::BothPrefixes, Error::BadField("info")),
        (
            KeyboardFault::ResponseAgain,
            Error::Unexpected(keyboard::MSG_PROTOCOL_RESPONSE),
        ),
        (
            KeyboardFault::GuestOnlyType,
            Error::WrongSender(keyboard::MSG_LED_INDICATORS),
        ),
    ];
    for (fault, err) in cases {
        let mut k = Kbd::connected();
        k.host.fault(fault).unwrap();
        k.pump();
        assert_eq!(k.dropped, [err], "{fault:?}");
        assert!(k.serio.is_empty(), "{fault:?}");
        assert_eq!(k.guest.state(), State::Ready);
        k.host.tap(Key::plain(0x1e)).unwrap();
        k.pump();
        assert_eq!(k.take_serio(), [0x1e, 0x9e], "{fault:?}");
    }
}

#[test]
fn a_keystroke_before_the_response_is_dropped() {
    let mut k = Kbd::new(true);
    k.host.fault(KeyboardFault::KeyBeforeResponse).unwrap();
    k.pump();
    assert_eq!(k.dropped, [Error::Unexpected(keyboard::MSG_EVENT)]);
    k.connect();
    assert!(k.connected);
    assert!(k.serio.is_empty());
}

#[test]
fn the_host_queue_is_bounded_and_all_or_nothing() {
    let mut k = Kbd::connected();
    let mut typed = 0;
    while k.host.tap(Key::plain(0x1e)).is_ok() {
        typed += 1;
    }
    assert_eq!(typed, hv_input_core::host::QUEUE_LEN / 2);
    // Pause needs 4 slots; none are left, so nothing of it is queued.
    assert!(k.host.pause().is_err());
    k.pump();
    assert_eq!(k.serio.len(), typed * 2);
    // A code with the release bit is no key.
    let bad = Key {
        code: 0x9d,
        prefix: Prefix::E1,
    };
    assert_eq!(k.host.press(bad), Err(Error::BadField("code")));
}

#[test]
fn a_small_buffer_keeps_the_message_queued() {
    let mut k = Kbd::connected();
    k.host.tap(Key::plain(2)).unwrap();
    let mut small = [0u8; 4];
    assert!(matches!(
        k.host.pop(&mut small),
        Some(Err(Error::BufferTooSmall { .. }))
    ));
    k.pump();
    assert_eq!(k.take_serio(), [2, 0x82]);
}
