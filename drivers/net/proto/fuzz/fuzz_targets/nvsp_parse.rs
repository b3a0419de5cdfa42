//! The NVSP parser over arbitrary bytes, as either sender and under every
//! negotiated version. Nothing may panic; whatever parses must re-encode at
//! its C size and parse back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netvsc_core::nvsp::*;

fuzz_target!(|data: &[u8]| {
    let versions = [None]
        .into_iter()
        .chain(GUEST_VERSIONS.iter().copied().map(Some));
    for v in versions {
        for s in [Sender::Host, Sender::Guest] {
            if let Ok(m) = Message::parse(data, s, v) {
                assert!(data.len() >= m.message_type().min_size(s));
                let mut buf = [0u8; MAX_MESSAGE_SIZE];
                let n = m.write(&mut buf).unwrap();
                assert_eq!(n, m.wire_size());
                assert_eq!(Message::parse(&buf[..n], s, v), Ok(m));
                if let Message::SendReceiveBufferComplete(c) = m {
                    let _ = c.slots(u32::MAX);
                }
                if let Message::SendSendBufferComplete {
                    status,
                    section_size,
                } = m
                {
                    let _ = send_sections(status, section_size, 1 << 20);
                }
            }
        }
    }
});
