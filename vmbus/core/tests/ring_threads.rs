//! A producer and a consumer on two threads over one ring, through the real
//! barrier code. Each side sleeps on an event until the other signals it, so
//! a lost wakeup (a missing signal) shows up as a timeout, and every payload
//! byte is checked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;
use vmbus_core::ring::*;
use vmbus_core::shared::SharedMem;

/// Much longer than any legitimate wait; reached only if a signal is lost.
const LOST_WAKEUP: Duration = Duration::from_secs(10);
const PACKETS: u64 = 20_000;
const DATA_SIZE: usize = 16 * 1024;

/// A counting event, standing in for the VMBus interrupt.
#[derive(Default)]
struct Event {
    count: Mutex<u64>,
    cond: Condvar,
    signals: AtomicU64,
}

impl Event {
    fn snapshot(&self) -> u64 {
        *self.count.lock().unwrap()
    }
    fn signal(&self) {
        self.signals.fetch_add(1, Ordering::Relaxed);
        *self.count.lock().unwrap() += 1;
        self.cond.notify_all();
    }
    /// Waits for a signal after `seen`; false on timeout.
    fn wait_past(&self, seen: u64) -> bool {
        let guard = self.count.lock().unwrap();
        let (guard, timeout) = self
            .cond
            .wait_timeout_while(guard, LOST_WAKEUP, |c| *c == seen)
            .unwrap();
        drop(guard);
        !timeout.timed_out()
    }
}

fn payload_len(seq: u64) -> usize {
    // 0..=2999 bytes, varied so packets straddle the ring's end at many offsets.
    (seq.wrapping_mul(2_654_435_761) % 3000) as usize
}

fn byte(seq: u64, i: usize) -> u8 {
    (seq as u8).wrapping_mul(31).wrapping_add(i as u8)
}

#[test]
fn two_threads_every_byte_no_lost_wakeups() {
    let mut buf = vec![0u64; (HEADER_SIZE + DATA_SIZE) / 8];
    let mem = SharedMem::from_slice(&mut buf);
    init_ring(mem).unwrap();
    let to_reader = Event::default();
    let to_writer = Event::default();
    let mut full_events = 0u64;

    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut c = Consumer::new(mem).unwrap();
            let mut out = vec![0u8; DATA_SIZE];
            let mut next = 0u64;
            let mut sleeps = 0u64;
            while next < PACKETS {
                let seen = to_reader.snapshot();
                // NAPI-style batch: mask signals, drain, unmask and re-check.
                c.begin_poll().unwrap();
                loop {
                    match c.read_packet(&mut out) {
                        Ok(info) => {
                            assert_eq!(info.descriptor.transaction_id, next);
                            let len = payload_len(next);
                            let payload = info.payload(&out);
                            for (i, &b) in payload[..len].iter().enumerate() {
                                assert_eq!(b, byte(next, i), "packet {next} byte {i}");
                            }
                            next += 1;
                            // Commit every few packets so the writer is not
                            // starved, as a real reader's budget would.
                            if next % 8 == 0 && c.commit().unwrap() == Signal::Yes {
                                to_writer.signal();
                            }
                        }
                        Err(ReadError::Empty) => break,
                        Err(e) => panic!("reader: {e:?}"),
                    }
                }
                let end = c.end_poll().unwrap();
                if end.signal_writer == Signal::Yes {
                    to_writer.signal();
                }
                if !end.more && next < PACKETS {
                    sleeps += 1;
                    assert!(
                        to_reader.wait_past(seen),
                        "reader lost a wakeup at packet {next}"
                    );
                }
            }
            sleeps
        });

        let mut p = Producer::new(mem).unwrap();
        let mut data = vec![0u8; 3000];
        for seq in 0..PACKETS {
            let len = payload_len(seq);
            for (i, b) in data[..len].iter_mut().enumerate() {
                *b = byte(seq, i);
            }
            // Two segments, to exercise the gather path.
            let (a, b) = data[..len].split_at(len / 3);
            let mut requested = false;
            loop {
                let seen = to_writer.snapshot();
                match p.write_inband(seq, false, &[a, b]) {
                    Ok(signal) => {
                        if signal == Signal::Yes {
                            to_reader.signal();
                        }
                        if requested {
                            p.clear_space_request().unwrap();
                        }
                        break;
                    }
                    Err(WriteError::Full { needed }) => {
                        full_events += 1;
                        requested = true;
                        if !p.request_space(needed).unwrap() {
                            assert!(
                                to_writer.wait_past(seen),
                                "writer lost a wakeup at packet {seq}"
                            );
                        }
                    }
                    Err(e) => panic!("writer: {e:?}"),
                }
            }
        }
        let sleeps = reader.join().unwrap();
        let reader_signals = to_reader.signals.load(Ordering::Relaxed);
        let writer_signals = to_writer.signals.load(Ordering::Relaxed);
        eprintln!(
            "packets {PACKETS}, reader slept {sleeps}, signals to reader {reader_signals}, \
             ring full {full_events}, signals to writer {writer_signals}"
        );
        // At least the first packet signals; the mask and the empty-to-
        // non-empty rule keep signals far below one per packet.
        assert!(reader_signals >= 1 && reader_signals < PACKETS / 2);
        // The reader signals the writer only after it asked for space, and
        // at most once per request.
        assert!(writer_signals <= full_events);
    });
}
