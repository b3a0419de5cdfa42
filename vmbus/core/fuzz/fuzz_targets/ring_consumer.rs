//! The ring consumer (and the producer's view of the reader's index) over
//! arbitrary ring memory and indices, with a host that keeps scribbling on
//! the ring between operations. Any panic, out-of-bounds access or hang is a
//! bug; every failure must be a typed error that poisons the endpoint.
#![no_main]

use core::sync::atomic::Ordering;
use libfuzzer_sys::fuzz_target;
use vmbus_core::ring::*;
use vmbus_core::shared::SharedMem;

/// Operations are bounded by the input length; this caps a single run.
const MAX_OPS: usize = 256;

fuzz_target!(|input: &[u8]| {
    let Some((&shape, rest)) = input.split_first() else {
        return;
    };
    // Data areas from 64 bytes to 4 KiB, 8-aligned, so packets wrap often.
    let size = 64 + usize::from(shape % 64) * 64;
    let (ring_bytes, ops) = rest.split_at(rest.len().min(128 + size));
    let mut buf = vec![0u64; (HEADER_SIZE + size) / 8];
    let mem = SharedMem::from_slice(&mut buf);
    // The first 128 bytes cover every header field; the rest is ring data.
    let (head, data) = ring_bytes.split_at(ring_bytes.len().min(128));
    mem.write_bytes(0, head).unwrap();
    mem.write_bytes(HEADER_SIZE, data).unwrap();

    let Ok(mut consumer) = Consumer::new(mem) else {
        return;
    };
    let Ok(mut producer) = Producer::new(mem) else {
        return;
    };
    let mut out = vec![0u8; size];
    let mut ops = ops.chunks_exact(4);
    for _ in 0..MAX_OPS {
        let Some(&[op, a, b, c]) = ops.next() else {
            break;
        };
        let word = u32::from_le_bytes([a, b, c, 0]);
        match op % 8 {
            0 | 1 => match consumer.read_packet(&mut out) {
                Ok(info) => {
                    assert!(
                        info.len >= DESCRIPTOR_SIZE
                            && info.data_offset <= info.len
                            && info.len < size
                    );
                    let header = info.header(&out);
                    match info.descriptor.packet_type {
                        PACKET_TYPE_GPA_DIRECT => {
                            if let Ok(ranges) = parse_gpa_direct(header) {
                                assert!(ranges.count() <= header.len() / 16);
                            }
                        }
                        PACKET_TYPE_TRANSFER_PAGES => {
                            if let Ok((_, ranges)) = parse_transfer_pages(header) {
                                assert!(ranges.count() <= header.len() / 8);
                            }
                        }
                        _ => {}
                    }
                }
                Err(ReadError::Corrupt(why)) => assert_eq!(consumer.poisoned(), Some(why)),
                Err(_) => {}
            },
            2 => {
                let _ = consumer.commit();
            }
            3 => {
                let _ = consumer.begin_poll();
            }
            4 => {
                let _ = consumer.end_poll();
            }
            // The host moves an index, or sets a field, behind our back.
            5 => {
                let field = [
                    WRITE_INDEX_OFFSET,
                    READ_INDEX_OFFSET,
                    PENDING_SEND_SIZE_OFFSET,
                    FEATURE_BITS_OFFSET,
                ];
                let at = field[usize::from(a % 4)];
                mem.store_u32(
                    at,
                    u32::from_le_bytes([b, c, a, 0]) >> (a % 16),
                    Ordering::Relaxed,
                )
                .unwrap();
            }
            6 => {
                let pos = usize::from(a) * 8 % size;
                mem.write_bytes(HEADER_SIZE + pos, &[b, c, b, c]).unwrap();
            }
            _ => {
                let payload = [c; 256];
                let len = (word as usize >> 8) % payload.len();
                match producer.write_inband(u64::from(word), a & 1 != 0, &[&payload[..len]]) {
                    Err(WriteError::Full { needed }) => {
                        let _ = producer.request_space(needed);
                    }
                    _ => {}
                }
            }
        }
    }
});
