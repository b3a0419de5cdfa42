//! GUIDs as VMBus carries them: 16 bytes in the mixed-endian layout Windows
//! uses (the first three fields little-endian), written out the way Linux's
//! `%pUl` and the C hv_vmbus sysfs files show them.

use core::fmt;

/// A VMBus GUID, kept in its wire byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid {
    /// The 16 bytes exactly as they appear on the wire.
    pub bytes: [u8; 16],
}

/// Why a GUID string could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuidParseError {
    /// The string is not 36 characters long.
    Length,
    /// A dash is missing at one of the four fixed positions.
    Dash,
    /// A character that should be a hex digit is not one.
    Digit,
}

/// Byte positions, in wire order, of the 16 bytes as they appear in the text
/// form: the first three groups are stored little-endian.
const TEXT_ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
/// Offsets in the text form where dashes stand.
const DASHES: [usize; 4] = [8, 13, 18, 23];

impl Guid {
    /// The all-zero GUID.
    pub const ZERO: Guid = Guid { bytes: [0; 16] };

    /// Builds a GUID from its wire bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Guid {
        Guid { bytes }
    }

    /// Builds a GUID from its fields, as the text form writes them
    /// (`{d1}-{d2}-{d3}-{d4[0..2]}-{d4[2..8]}`).
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid {
            bytes: [
                a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
                d4[5], d4[6], d4[7],
            ],
        }
    }

    /// Parses the 36-character text form, upper or lower case.
    pub fn parse(text: &str) -> Result<Guid, GuidParseError> {
        let text = text.as_bytes();
        if text.len() != 36 {
            return Err(GuidParseError::Length);
        }
        if DASHES.iter().any(|&at| text.get(at) != Some(&b'-')) {
            return Err(GuidParseError::Dash);
        }
        let mut digits = text.iter().enumerate().filter(|(at, _)| !DASHES.contains(at));
        let mut bytes = [0u8; 16];
        for &wire_pos in TEXT_ORDER.iter() {
            let (hi, lo) = match (digits.next(), digits.next()) {
                (Some((_, &hi)), Some((_, &lo))) => (hex_value(hi)?, hex_value(lo)?),
                _ => return Err(GuidParseError::Length),
            };
            // PANIC: `wire_pos` comes from TEXT_ORDER, whose entries are < 16.
            bytes[wire_pos] = (hi << 4) | lo;
        }
        Ok(Guid { bytes })
    }

    /// Writes the lower-case text form (36 ASCII bytes) into `out`.
    pub fn format(&self, out: &mut [u8; 36]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // PANIC: the indices below depend only on constants: 16 bytes of two
        // digits each plus 4 dashes is exactly 36, and TEXT_ORDER's entries
        // are < 16; no input changes them.
        let mut pos = 0;
        for (i, &wire_pos) in TEXT_ORDER.iter().enumerate() {
            if i == 4 || i == 6 || i == 8 || i == 10 {
                out[pos] = b'-';
                pos += 1;
            }
            let byte = self.bytes[wire_pos];
            out[pos] = HEX[usize::from(byte >> 4)];
            out[pos + 1] = HEX[usize::from(byte & 0xf)];
            pos += 2;
        }
    }
}

fn hex_value(c: u8) -> Result<u8, GuidParseError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(GuidParseError::Digit),
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; 36];
        self.format(&mut text);
        // `format` writes only ASCII hex digits and dashes.
        match core::str::from_utf8(&text) {
            Ok(s) => f.write_str(s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Device classes offered by Hyper-V that RustIC drives or lists.
pub mod class {
    use super::Guid;

    /// Synthetic network adapter (netvsc).
    pub const NETWORK: Guid =
        Guid::from_fields(0xf8615163, 0xdf3e, 0x46c5, [0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e]);
    /// Synthetic SCSI controller (storvsc).
    pub const SCSI: Guid =
        Guid::from_fields(0xba6163d9, 0x04a1, 0x4d29, [0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f]);
    /// Synthetic IDE controller, also served by storvsc.
    pub const IDE: Guid =
        Guid::from_fields(0x32412632, 0x86cb, 0x44a2, [0x9b, 0x5c, 0x50, 0xd1, 0x41, 0x73, 0x54, 0xf5]);
    /// Synthetic keyboard.
    pub const KEYBOARD: Guid =
        Guid::from_fields(0xf912ad6d, 0x2b17, 0x48ea, [0xbd, 0x65, 0xf9, 0x27, 0xa6, 0x1c, 0x76, 0x84]);
    /// Synthetic mouse (HID).
    pub const MOUSE: Guid =
        Guid::from_fields(0xcfa8b69e, 0x5b4a, 0x4cc0, [0xb9, 0x8b, 0x8b, 0xa1, 0xa1, 0xf3, 0xf9, 0x5a]);
    /// Heartbeat integration service.
    pub const HEARTBEAT: Guid =
        Guid::from_fields(0x57164f39, 0x9115, 0x4e78, [0xab, 0x55, 0x38, 0x2f, 0x3b, 0xd5, 0x42, 0x2d]);
    /// Shutdown integration service.
    pub const SHUTDOWN: Guid =
        Guid::from_fields(0x0e0b6031, 0x5213, 0x4934, [0x81, 0x8b, 0x38, 0xd9, 0x0c, 0xed, 0x39, 0xdb]);
    /// Time synchronisation integration service.
    pub const TIMESYNC: Guid =
        Guid::from_fields(0x9527e630, 0xd0ae, 0x497b, [0xad, 0xce, 0xe8, 0x0a, 0xb0, 0x17, 0x5c, 0xaf]);
    /// Key-value pair exchange integration service.
    pub const KVP: Guid =
        Guid::from_fields(0xa9a0f4e7, 0x5a45, 0x4d96, [0xb8, 0x27, 0x8a, 0x84, 0x1e, 0x8c, 0x03, 0xe6]);
    /// Synthetic Fibre Channel adapter, also served by storvsc.
    pub const FIBRE_CHANNEL: Guid =
        Guid::from_fields(0x2f9bcc4a, 0x0069, 0x4af3, [0xb7, 0x6b, 0x6f, 0xd0, 0xbe, 0x52, 0x8c, 0xda]);
    /// Network Direct (RDMA).
    pub const NETWORK_DIRECT: Guid =
        Guid::from_fields(0x8c2eaf3d, 0x32a7, 0x4b09, [0xab, 0x99, 0xbd, 0x1f, 0x1c, 0x86, 0xb5, 0x01]);
    /// PCI Express pass-through.
    pub const PCI_PASSTHROUGH: Guid =
        Guid::from_fields(0x44c4f61d, 0x4444, 0x4400, [0x9d, 0x52, 0x80, 0x2e, 0x27, 0xed, 0xe1, 0x9f]);
    /// Synthetic video.
    pub const VIDEO: Guid =
        Guid::from_fields(0xda0a7802, 0xe377, 0x4aac, [0x8e, 0x77, 0x05, 0x58, 0xeb, 0x10, 0x73, 0xf8]);
    /// File copy (guest services) integration service.
    pub const FILE_COPY: Guid =
        Guid::from_fields(0x34d14be3, 0xdee4, 0x41c8, [0x9a, 0xe7, 0x6b, 0x17, 0x49, 0x77, 0xc1, 0x92]);
    /// Backup (VSS) integration service.
    pub const VSS: Guid =
        Guid::from_fields(0x35fa2e29, 0xea23, 0x4236, [0x96, 0xae, 0x3a, 0x6e, 0xba, 0xcb, 0xa4, 0x40]);
    /// Dynamic memory.
    pub const DYNAMIC_MEMORY: Guid =
        Guid::from_fields(0x525074dc, 0x8985, 0x46e2, [0x80, 0x57, 0xa3, 0x07, 0xdc, 0x18, 0xa5, 0x02]);

    /// RustIC's test class, bound by the test builds' test driver:
    /// `{c0ffee00-7e57-4b1d-9a3b-525553544943}` ("RUSTIC" in its last
    /// bytes); no Hyper-V device has it.
    pub const RUSTIC_TEST: Guid =
        Guid::from_fields(0xc0ffee00, 0x7e57, 0x4b1d, [0x9a, 0x3b, 0x52, 0x55, 0x53, 0x54, 0x49, 0x43]);
    /// The class of the simulated host's echo device (test builds):
    /// `{ec40ec40-7e57-4b1d-9a3b-525553544943}`; no Hyper-V device has it.
    pub const RUSTIC_ECHO: Guid =
        Guid::from_fields(0xec40ec40, 0x7e57, 0x4b1d, [0x9a, 0x3b, 0x52, 0x55, 0x53, 0x54, 0x49, 0x43]);

    /// Whether channels of `class` carry bulk I/O, so that their interrupts
    /// are spread over CPUs; the others stay on the CPU that takes VMBus
    /// messages (the C driver's `hv_is_perf_channel`, for the classes
    /// RustIC knows; and the echo test device, whose traffic tests that
    /// spreading).
    pub fn is_performance(class: &Guid) -> bool {
        [NETWORK, SCSI, IDE, RUSTIC_ECHO].contains(class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_storage_and_network_are_performance_classes() {
        assert!(class::is_performance(&class::NETWORK));
        assert!(class::is_performance(&class::SCSI));
        assert!(class::is_performance(&class::IDE));
        assert!(!class::is_performance(&class::KEYBOARD));
        assert!(!class::is_performance(&class::HEARTBEAT));
        assert!(class::is_performance(&class::RUSTIC_ECHO));
        assert!(!class::is_performance(&class::RUSTIC_TEST));
        assert!(!class::is_performance(&Guid::ZERO));
    }

    #[test]
    fn network_class_round_trips_through_text() {
        let text = "f8615163-df3e-46c5-913f-f2d2f965ed0e";
        let guid = Guid::parse(text).unwrap();
        assert_eq!(guid, class::NETWORK);
        let mut out = [0u8; 36];
        guid.format(&mut out);
        assert_eq!(&out, text.as_bytes());
    }

    #[test]
    fn wire_order_is_mixed_endian() {
        assert_eq!(
            class::NETWORK.bytes,
            [0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e]
        );
    }

    #[test]
    fn upper_case_parses() {
        assert_eq!(Guid::parse("F8615163-DF3E-46C5-913F-F2D2F965ED0E"), Ok(class::NETWORK));
    }

    #[test]
    fn malformed_text_is_rejected() {
        assert_eq!(Guid::parse(""), Err(GuidParseError::Length));
        assert_eq!(Guid::parse("f8615163-df3e-46c5-913f-f2d2f965ed0"), Err(GuidParseError::Length));
        assert_eq!(Guid::parse("f8615163xdf3e-46c5-913f-f2d2f965ed0e"), Err(GuidParseError::Dash));
        assert_eq!(Guid::parse("g8615163-df3e-46c5-913f-f2d2f965ed0e"), Err(GuidParseError::Digit));
    }
}
