//! The synthetic HID mouse end to end: the guest side against the
//! simulated host, device info and report descriptor, every pointer move,
//! button and wheel step, every lie in the device info and every fault.

mod common;

use common::Mouse;
use hv_input_core::host::{
    DeviceInfoKind, MouseFault, MouseState, PointerReport, ABS_MAX, REPORT_DESCRIPTOR,
};
use hv_input_core::mouse::{self, Event, Message, Sender, State};
use hv_input_core::wire::Error;

#[test]
fn wire_layout_matches_the_c_structs() {
    let g = mouse::Guest::new();
    let mut b = [0u8; 32];
    // pipe (DATA, sizeof(synthhid_protocol_request) = 12), HID header
    // (PROTOCOL_REQUEST, sizeof(unsigned int)), version 2.0
    assert_eq!(g.request(&mut b), Ok(20));
    assert_eq!(
        b[..20],
        [1, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 2, 0]
    );
    // The ack: pipe size sizeof(synthhid_device_info_ack) = 9, HID size 1.
    assert_eq!(mouse::encode_ack(&mut b), Ok(17));
    assert_eq!(b[..17], [1, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0]);
    // synthhid_device_info: header, hv_input_dev_info, hid_descriptor
    assert_eq!(mouse::DEVICE_INFO_SIZE, 49);
}

#[test]
fn connects_and_takes_the_device_info() {
    let mut m = Mouse::new(true, DeviceInfoKind::Good);
    m.connect();
    assert!(m.approved);
    assert!(m.dropped.is_empty());
    assert_eq!(m.guest.state(), State::Ready);
    assert_eq!(
        m.host.state(),
        MouseState::Ready,
        "the guest's ack reached the host"
    );
    let (info, hid) = m.info.unwrap();
    assert_eq!((info.vendor, info.product), (0x045e, 0x0621));
    assert_eq!(usize::from(hid.length), mouse::HID_DESCRIPTOR_SIZE);
    assert_eq!((hid.descriptor_type, hid.report_type), (0x21, 0x22));
    assert_eq!(m.report_descriptor.as_deref(), Some(&REPORT_DESCRIPTOR[..]));
    assert!(!m.patched);
}

#[test]
fn hyper_vs_byte_14_bug_is_patched() {
    let mut m = Mouse::new(true, DeviceInfoKind::Sa167);
    m.connect();
    assert!(m.patched);
    assert_eq!(m.report_descriptor.as_deref(), Some(&REPORT_DESCRIPTOR[..]));
    let mut short = [0x25u8; 14];
    assert!(
        !mouse::fix_report_descriptor(&mut short),
        "no byte 14: nothing to patch"
    );
}

#[test]
fn a_refused_version_fails_the_probe() {
    let mut m = Mouse::new(false, DeviceInfoKind::Good);
    m.connect();
    assert_eq!(m.guest.state(), State::Refused);
    assert_eq!(m.host.state(), MouseState::Refused);
    assert_eq!(m.dropped, [Error::BadField("approved")]);
    assert!(m.report_descriptor.is_none());
    assert!(m.host.move_to(1, 1).is_err());
}

fn report(m: &Mouse, i: usize) -> PointerReport {
    PointerReport::from_bytes(&m.reports[i]).unwrap()
}

#[test]
fn absolute_moves_arrive_in_order() {
    let mut m = Mouse::ready();
    let points = [
        (0, 0),
        (ABS_MAX, ABS_MAX),
        (0x4000, 0x1234),
        (1, ABS_MAX - 1),
        (0xffff, 7),
    ];
    for (x, y) in points {
        m.host.move_to(x, y).unwrap();
    }
    m.pump();
    assert_eq!(m.reports.len(), points.len());
    for (i, (x, y)) in points.into_iter().enumerate() {
        let r = report(&m, i);
        assert_eq!((r.x, r.y), (x.min(ABS_MAX), y.min(ABS_MAX)), "move {i}");
        assert_eq!((r.buttons, r.wheel), (0, 0));
    }
    assert!(m.dropped.is_empty());
}

#[test]
fn every_button_presses_and_releases_where_the_pointer_is() {
    let mut m = Mouse::ready();
    m.host.move_to(100, 200).unwrap();
    for n in 1..=5u8 {
        m.host.button(n, true).unwrap();
        m.host.button(n, false).unwrap();
    }
    m.host.button(1, true).unwrap();
    m.host.button(3, true).unwrap();
    m.pump();
    assert_eq!(m.reports.len(), 13);
    for n in 0..5 {
        assert_eq!(report(&m, 1 + 2 * n).buttons, 1 << n);
        assert_eq!(report(&m, 2 + 2 * n).buttons, 0);
        assert_eq!(
            (report(&m, 1 + 2 * n).x, report(&m, 1 + 2 * n).y),
            (100, 200)
        );
    }
    assert_eq!(report(&m, 12).buttons, 0b101);
    assert_eq!(m.host.button(0, true), Err(Error::BadField("button")));
    assert_eq!(m.host.button(6, true), Err(Error::BadField("button")));
}

#[test]
fn wheel_steps_are_relative_and_do_not_stick() {
    let mut m = Mouse::ready();
    m.host.wheel(1).unwrap();
    m.host.wheel(-3).unwrap();
    m.host.wheel(127).unwrap();
    m.host.move_to(5, 5).unwrap();
    m.pump();
    let wheels: Vec<i8> = (0..4).map(|i| report(&m, i).wheel).collect();
    assert_eq!(wheels, [1, -3, 127, 0]);
    assert_eq!(m.host.wheel(-128), Err(Error::BadField("wheel")));
}

#[test]
fn the_host_sends_no_reports_before_the_ack() {
    let mut m = Mouse::new(true, DeviceInfoKind::Good);
    assert_eq!(
        m.host.move_to(1, 1),
        Err(Error::Unexpected(mouse::MSG_INPUT_REPORT))
    );
    // A failed move does not move the pointer the next report shows.
    m.connect();
    m.host.wheel(1).unwrap();
    m.pump();
    assert_eq!((report(&m, 0).x, report(&m, 0).y), (0, 0));
}

/// A device info that lies is refused; the guest keeps waiting (its probe
/// times out) and sends no ack.
#[test]
fn every_lying_device_info_is_refused() {
    let cases = [
        (DeviceInfoKind::HidLengthLies, Error::BadField("bLength")),
        (DeviceInfoKind::HidLengthShort, Error::BadField("bLength")),
        (
            DeviceInfoKind::ReportLengthLies,
            Error::BadField("wDescriptorLength"),
        ),
        (
            DeviceInfoKind::ReportLengthZero,
            Error::BadField("wDescriptorLength"),
        ),
        (
            DeviceInfoKind::ReportTooBig,
            Error::TooLong {
                max: 4096,
                len: 4097,
            },
        ),
    ];
    for (kind, err) in cases {
        let mut m = Mouse::new(true, kind);
        m.connect();
        assert!(m.approved);
        assert_eq!(m.dropped, [err], "{kind:?}");
        assert_eq!(m.guest.state(), State::AwaitingDeviceInfo, "{kind:?}");
        assert_eq!(
            m.host.state(),
            MouseState::AwaitingAck,
            "{kind:?}: no ack was sent"
        );
        assert!(m.report_descriptor.is_none());
    }
}

#[test]
fn no_device_info_leaves_the_guest_waiting() {
    let mut m = Mouse::new(true, DeviceInfoKind::Never);
    m.connect();
    assert_eq!(m.guest.state(), State::AwaitingDeviceInfo);
    m.host.fault(MouseFault::EarlyReport).unwrap();
    m.pump();
    assert_eq!(m.dropped, [Error::Unexpected(mouse::MSG_INPUT_REPORT)]);
    assert!(m.reports.is_empty());
}

#[test]
fn a_report_before_anything_is_refused() {
    let mut m = Mouse::new(true, DeviceInfoKind::Good);
    m.host.fault(MouseFault::EarlyReport).unwrap();
    m.pump();
    assert_eq!(m.dropped, [Error::Unexpected(mouse::MSG_INPUT_REPORT)]);
    m.connect();
    assert_eq!(m.guest.state(), State::Ready);
}

/// Each fault once the mouse is ready: dropped with the error it
/// deserves, and the pointer still works after it.
#[test]
fn every_fault_is_dropped_and_the_mouse_keeps_working() {
    let cases = [
        (MouseFault::Short, Error::TooShort { need: 8, len: 6 }),
        (
            MouseFault::Oversized,
            Error::TooLong {
                max: 16384,
                len: 16385,
            },
        ),
        (MouseFault::BadPipeType, Error::BadField("pipe type")),
        (
            MouseFault::PipeSizeLies,
            Error::TooShort {
                need: 0x1008,
                len: 22,
            },
        ),
        (
            MouseFault::ReportSizeLies,
            Error::TooShort {
                need: 0x4008,
                len: 14,
            },
        ),
        (MouseFault::EmptyReport, Error::BadField("report size")),
        (MouseFault::UnknownType, Error::UnknownType(9)),
        (
            MouseFault::DeviceInfoAgain,
            Error::Unexpected(mouse::MSG_DEVICE_INFO),
        ),
        (
            MouseFault::GuestOnlyType,
            Error::WrongSender(mouse::MSG_DEVICE_INFO_ACK),
        ),
        (
            MouseFault::OversizedResponse,
            Error::TooLong { max: 16, len: 72 },
        ),
    ];
    for (fault, err) in cases {
        let mut m = Mouse::ready();
        m.host.fault(fault).unwrap();
        m.pump();
        assert_eq!(m.dropped, [err], "{fault:?}");
        assert!(m.reports.is_empty(), "{fault:?}");
        assert_eq!(m.guest.state(), State::Ready);
        m.host.move_to(10, 20).unwrap();
        m.pump();
        assert_eq!(m.reports.len(), 1, "{fault:?}");
        assert_eq!((report(&m, 0).x, report(&m, 0).y), (10, 20));
    }
}

#[test]
fn a_report_is_bounded_by_its_hid_size_not_the_packet() {
    let mut m = Mouse::ready();
    m.host.move_to(3, 4).unwrap();
    let mut b = vec![0u8; 64];
    let n = m.host.pop(&mut b).unwrap().unwrap();
    // VMBus padding after the message is not part of the report.
    match m.guest.on_packet(&b[..n + 7]) {
        Ok(Event::Report(r)) => assert_eq!(r.len(), 6),
        other => panic!("{other:?}"),
    }
    // One byte short of what the HID header claims.
    assert_eq!(
        m.guest.on_packet(&b[..n - 1]),
        Err(Error::TooShort { need: 22, len: 21 })
    );
}

#[test]
fn the_guest_refuses_guest_messages_and_the_host_host_messages() {
    let mut b = [0u8; 32];
    let n = mouse::encode_request(&mut b, mouse::VERSION).unwrap();
    assert_eq!(
        Message::parse(&b[..n], Sender::Host),
        Err(Error::WrongSender(0))
    );
    let mut m = Mouse::ready();
    m.host.move_to(1, 1).unwrap();
    let n = m.host.pop(&mut b).unwrap().unwrap();
    assert_eq!(
        m.host.on_guest_packet(&b[..n]),
        Err(Error::WrongSender(mouse::MSG_INPUT_REPORT))
    );
    // A second request or ack once ready.
    let n = mouse::encode_ack(&mut b).unwrap();
    assert_eq!(
        m.host.on_guest_packet(&b[..n]),
        Err(Error::Unexpected(mouse::MSG_DEVICE_INFO_ACK))
    );
    assert_eq!(m.host.counters().bad, 2);
}

/// The C driver measures a protocol response and a device info by the
/// pipe size and never reads their HID size; a host that leaves it 0 must
/// still connect. (An input report's HID size is what bounds the report.)
#[test]
fn response_and_device_info_go_by_the_pipe_size() {
    let mut h = hv_input_core::host::MouseHost::new(true, DeviceInfoKind::Good);
    let mut b = [0u8; 32];
    let n = mouse::encode_request(&mut b, mouse::VERSION).unwrap();
    h.on_guest_packet(&b[..n]).unwrap();
    let mut g = mouse::Guest::new();
    let mut buf = vec![0u8; 256];
    for want in [State::AwaitingDeviceInfo, State::Ready] {
        let n = h.pop(&mut buf).unwrap().unwrap();
        buf[12..16].copy_from_slice(&0u32.to_le_bytes());
        assert!(g.on_packet(&buf[..n]).is_ok());
        assert_eq!(g.state(), want);
    }
    // A zero HID size on a report is an empty report, refused.
    let n = mouse::encode_ack(&mut b).unwrap();
    h.on_guest_packet(&b[..n]).unwrap();
    h.move_to(1, 2).unwrap();
    let n = h.pop(&mut buf).unwrap().unwrap();
    buf[12..16].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(g.on_packet(&buf[..n]), Err(Error::BadField("report size")));
}
