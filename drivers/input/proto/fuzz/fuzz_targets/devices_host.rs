//! The simulated keyboard and mouse over arbitrary guest packets and
//! injected input: the first byte picks the device, then each chunk is a
//! guest packet or an input operation. Nothing may panic, and every
//! message they queue is written whole into a large enough buffer.
#![no_main]

use hv_input_core::host::{DeviceInfoKind, Key, KeyboardFault, KeyboardHost, MouseFault, MouseHost};
use libfuzzer_sys::fuzz_target;

const KFAULTS: [KeyboardFault; 9] = [
    KeyboardFault::Short,
    KeyboardFault::Oversized,
    KeyboardFault::UnknownType,
    KeyboardFault::WideMakeCode,
    KeyboardFault::ReleaseBitMakeCode,
    KeyboardFault::BothPrefixes,
    KeyboardFault::ResponseAgain,
    KeyboardFault::GuestOnlyType,
    KeyboardFault::KeyBeforeResponse,
];
const MFAULTS: [MouseFault; 11] = [
    MouseFault::Short,
    MouseFault::Oversized,
    MouseFault::BadPipeType,
    MouseFault::PipeSizeLies,
    MouseFault::ReportSizeLies,
    MouseFault::EmptyReport,
    MouseFault::UnknownType,
    MouseFault::DeviceInfoAgain,
    MouseFault::GuestOnlyType,
    MouseFault::OversizedResponse,
    MouseFault::EarlyReport,
];
const KINDS: [DeviceInfoKind; 8] = [
    DeviceInfoKind::Good,
    DeviceInfoKind::Sa167,
    DeviceInfoKind::HidLengthLies,
    DeviceInfoKind::HidLengthShort,
    DeviceInfoKind::ReportLengthLies,
    DeviceInfoKind::ReportLengthZero,
    DeviceInfoKind::ReportTooBig,
    DeviceInfoKind::Never,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut buf = vec![0u8; 20 * 1024];
    let mut kbd = KeyboardHost::new(sel & 1 != 0);
    let mut mouse = MouseHost::new(sel & 2 != 0, KINDS[usize::from(sel >> 2) % KINDS.len()]);
    for chunk in rest.split(|&b| b == 0xff) {
        let Some((&op, arg)) = chunk.split_first() else {
            continue;
        };
        let a = arg.first().copied().unwrap_or(0);
        let b = u16::from_le_bytes([a, arg.get(1).copied().unwrap_or(0)]);
        let _ = match op % 12 {
            0 => kbd.on_guest_packet(arg),
            1 => mouse.on_guest_packet(arg),
            2 => kbd.tap(Key::plain(a)),
            3 => kbd.press(Key::extended(a)),
            4 => kbd.pause(),
            5 => kbd.unicode(b),
            6 => kbd.fault(KFAULTS[usize::from(a) % KFAULTS.len()]),
            7 => mouse.move_to(b, b.rotate_left(3)),
            8 => mouse.button(a, op & 0x80 != 0),
            9 => mouse.wheel(a as i8),
            10 => mouse.fault(MFAULTS[usize::from(a) % MFAULTS.len()]),
            _ => {
                while let Some(r) = kbd.pop(&mut buf) {
                    r.unwrap();
                }
                while let Some(r) = mouse.pop(&mut buf) {
                    r.unwrap();
                }
                Ok(())
            }
        };
    }
});
