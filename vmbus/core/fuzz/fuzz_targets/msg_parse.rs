//! The channel message parser over arbitrary bytes, plus the SynIC slot
//! decoder and the GPADL splitter. Nothing may panic; whatever parses must
//! re-encode within the payload limit and parse back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmbus_core::msg::*;

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Ok(m) => {
            assert!(data.len() <= MAX_MESSAGE_SIZE);
            let mut buf = [0u8; MAX_MESSAGE_SIZE];
            let n = m.write(&mut buf);
            assert!(n >= m.message_type().min_size() && n <= data.len());
            assert_eq!(Message::parse(&buf[..n]), Ok(m));
        }
        Err(ParseError::TooLong { len }) => assert!(len > MAX_MESSAGE_SIZE),
        Err(_) => {}
    }

    // The same bytes as a SynIC slot: the payload never exceeds 240 bytes.
    let mut slot = [0u8; SYNIC_MESSAGE_SIZE];
    let n = data.len().min(SYNIC_MESSAGE_SIZE);
    slot[..n].copy_from_slice(&data[..n]);
    if let Ok(s) = SynicMessage::parse(&slot) {
        assert!(s.payload().len() <= MAX_MESSAGE_SIZE);
        let _ = Message::parse(s.payload());
    }

    // The bytes as a page list: split, parse, reassemble.
    if let Some((&offset, rest)) = data.split_first() {
        let pfns: Vec<u64> = rest
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let count = (pfns.len() as u32).saturating_mul(4096);
        let byte_offset = u32::from(offset) * 16;
        let Ok(mut split) =
            GpadlSplit::new(3, 7, byte_offset, count.saturating_sub(byte_offset), &pfns)
        else {
            return;
        };
        let expected = split.message_count();
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        let mut got = Vec::new();
        let mut messages = 0;
        while let Some(n) = split.write_next(&mut buf) {
            messages += 1;
            match Message::parse(&buf[..n]) {
                Ok(Message::GpadlHeader(h)) => got.extend_from_slice(h.pfns.as_slice()),
                Ok(Message::GpadlBody(b)) => got.extend_from_slice(b.pfns.as_slice()),
                other => panic!("split produced {other:?}"),
            }
        }
        assert_eq!(messages, expected);
        assert_eq!(got, pfns);
    }
});
