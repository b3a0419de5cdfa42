//! Property tests: random packet sequences through rings of random sizes,
//! starting at random indices so that packets wrap, checked against a model;
//! and arbitrary ring memory, which must only ever yield typed errors.

use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use vmbus_core::ring::*;
use vmbus_core::shared::SharedMem;

#[derive(Clone, Debug)]
enum Op {
    /// Write a packet of this kind with these payload segments.
    Write {
        kind: u8,
        segments: Vec<Vec<u8>>,
        txid: u64,
    },
    /// Read up to this many packets.
    Read(u8),
    /// Publish the read index.
    Commit,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, prop::collection::vec(prop::collection::vec(any::<u8>(), 0..90), 0..4), any::<u64>())
            .prop_map(|(kind, segments, txid)| Op::Write { kind, segments, txid }),
        3 => (1u8..5).prop_map(Op::Read),
        1 => Just(Op::Commit),
    ]
}

/// What the model expects the consumer to return for one packet.
struct Expected {
    packet_type: u16,
    txid: u64,
    header: Vec<u8>,
    payload: Vec<u8>,
    /// Ring bytes the packet occupies, trailer included.
    total: u32,
}

const PFNS: [u64; 2] = [0x1111, 0x2222];
const XFER: [TransferPageRange; 1] = [TransferPageRange {
    byte_count: 64,
    byte_offset: 128,
}];

fn write(
    p: &mut Producer<'_>,
    kind: u8,
    segs: &[&[u8]],
    txid: u64,
) -> (Result<Signal, WriteError>, Expected) {
    let payload: Vec<u8> = segs.concat();
    let (result, packet_type, header) = match kind {
        0 => (p.write_inband(txid, true, segs), PACKET_TYPE_INBAND, vec![]),
        1 => (
            p.write_completion(txid, segs),
            PACKET_TYPE_COMPLETION,
            vec![],
        ),
        2 => {
            let gpa = [GpaBuffer {
                byte_offset: 4090,
                byte_count: 10,
                pfns: &PFNS,
            }];
            let mut h = vec![0, 0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 0xfa, 0x0f, 0, 0];
            h.extend(PFNS.iter().flat_map(|p| p.to_le_bytes()));
            (
                p.write_gpa_direct(txid, false, &gpa, segs),
                PACKET_TYPE_GPA_DIRECT,
                h,
            )
        }
        _ => {
            let h = vec![0x34, 0x12, 0, 0, 1, 0, 0, 0, 64, 0, 0, 0, 128, 0, 0, 0];
            (
                p.write_transfer_pages(txid, 0x1234, &XFER, segs),
                PACKET_TYPE_TRANSFER_PAGES,
                h,
            )
        }
    };
    let len = 16 + header.len() + payload.len();
    let total = (len.next_multiple_of(8) + 8) as u32;
    (
        result,
        Expected {
            packet_type,
            txid,
            header,
            payload,
            total,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_match_the_model(
        pages in 1usize..4,
        extra8 in 0usize..64,
        start8 in 0usize..4096,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let size = pages * 128 + extra8 * 8 + 64;
        let start = ((start8 * 8) % size) as u32;
        let mut buf = vec![0u64; (4096 + size) / 8];
        let mem = SharedMem::from_slice(&mut buf);
        init_ring(mem).unwrap();
        mem.store_u32(WRITE_INDEX_OFFSET, start, Ordering::Relaxed).unwrap();
        mem.store_u32(READ_INDEX_OFFSET, start, Ordering::Relaxed).unwrap();
        let mut p = Producer::new(mem).unwrap();
        let mut c = Consumer::new(mem).unwrap();

        let mut queue: VecDeque<Expected> = VecDeque::new();
        let mut in_ring = 0u32; // bytes written and not yet committed
        let mut uncommitted = 0u32; // bytes read and not yet committed
        let mut pending = 0u32;
        let mut out = vec![0u8; size];
        for op in ops {
            match op {
                Op::Write { kind, segments, txid } => {
                    let segs: Vec<&[u8]> = segments.iter().map(|s| s.as_slice()).collect();
                    let (result, expected) = write(&mut p, kind, &segs, txid);
                    let free = size as u32 - in_ring;
                    if expected.total as usize >= size {
                        prop_assert_eq!(result, Err(WriteError::TooLarge));
                    } else if free <= expected.total {
                        prop_assert_eq!(result, Err(WriteError::Full { needed: expected.total }));
                        prop_assert_eq!(p.request_space(expected.total), Ok(false));
                        pending = expected.total;
                    } else {
                        // Empty to non-empty, as the writer sees it: everything
                        // before was read and committed.
                        let signal = if in_ring == 0 { Signal::Yes } else { Signal::No };
                        prop_assert_eq!(result, Ok(signal));
                        in_ring += expected.total;
                        queue.push_back(expected);
                        if pending != 0 {
                            p.clear_space_request().unwrap();
                            pending = 0;
                        }
                    }
                }
                Op::Read(n) => {
                    for _ in 0..n {
                        match c.read_packet(&mut out) {
                            Ok(info) => {
                                let e = queue.pop_front().expect("model has a packet");
                                prop_assert_eq!(info.descriptor.packet_type, e.packet_type);
                                prop_assert_eq!(info.descriptor.transaction_id, e.txid);
                                prop_assert_eq!(info.header(&out), &e.header[..]);
                                let payload = info.payload(&out);
                                prop_assert_eq!(&payload[..e.payload.len()], &e.payload[..]);
                                prop_assert!(payload[e.payload.len()..].iter().all(|&b| b == 0));
                                uncommitted += e.total;
                            }
                            Err(e) => {
                                prop_assert_eq!(e, ReadError::Empty);
                                prop_assert!(queue.is_empty());
                                break;
                            }
                        }
                    }
                }
                Op::Commit => {
                    let free_before = size as u32 - in_ring;
                    in_ring -= uncommitted;
                    let free_after = size as u32 - in_ring;
                    let crossed = uncommitted != 0 && pending != 0 && free_before <= pending && free_after > pending;
                    uncommitted = 0;
                    prop_assert_eq!(c.commit(), Ok(if crossed { Signal::Yes } else { Signal::No }));
                }
            }
        }
        // Drain: everything written comes out, in order, nothing more.
        while let Some(e) = queue.pop_front() {
            let info = c.read_packet(&mut out).unwrap();
            prop_assert_eq!(info.descriptor.transaction_id, e.txid);
        }
        prop_assert_eq!(c.read_packet(&mut out), Err(ReadError::Empty));
        let end = c.end_poll().unwrap();
        prop_assert!(!end.more);
        prop_assert_eq!(mem.load_u32(READ_INDEX_OFFSET, Ordering::Relaxed), mem.load_u32(WRITE_INDEX_OFFSET, Ordering::Relaxed));
    }

    #[test]
    fn arbitrary_ring_memory_gives_typed_errors(
        data in prop::collection::vec(any::<u8>(), 64..1024),
        write_index in any::<u32>(),
        read_index in any::<u32>(),
    ) {
        let size = data.len() / 8 * 8;
        let mut buf = vec![0u64; (4096 + size) / 8];
        let mem = SharedMem::from_slice(&mut buf);
        mem.write_bytes(4096, &data[..size]).unwrap();
        mem.store_u32(WRITE_INDEX_OFFSET, write_index % (size as u32 + 16), Ordering::Relaxed).unwrap();
        mem.store_u32(READ_INDEX_OFFSET, read_index % (size as u32 + 16), Ordering::Relaxed).unwrap();
        let mut c = Consumer::new(mem).unwrap();
        let mut out = vec![0u8; size];
        // Each good packet consumes at least 24 bytes, so this bounds the loop.
        let mut ok = 0;
        for _ in 0..size / 24 + 2 {
            match c.read_packet(&mut out) {
                Ok(info) => {
                    prop_assert!(info.len >= 16 && info.data_offset <= info.len && info.len <= size);
                    ok += 1;
                }
                Err(ReadError::Empty) => break,
                Err(ReadError::Corrupt(reason)) => {
                    prop_assert_eq!(c.poisoned(), Some(reason));
                    break;
                }
                Err(e) => prop_assert!(false, "unexpected {:?}", e),
            }
        }
        prop_assert!(ok <= size / 24);
        let _ = c.end_poll();
    }
}
