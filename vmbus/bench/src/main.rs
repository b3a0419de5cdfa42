//! Ring throughput: vmbus-core's [`Producer`]/[`Consumer`] against the C
//! rings of linux-source-6.12 and memcpy, in one run, with ratios.
//!
//! Every implementation moves the same in-band packets through a 1 MiB data
//! area and copies each payload in and out once. Single-threaded: fill the
//! ring, drain it, repeat. Two threads: a spinning writer and a reader that
//! publishes its read index when it runs dry or every 64 packets. Each figure
//! is the best of three runs. Run through `run.sh`, which builds the C side.

use std::hint::black_box;
use std::time::Instant;
use vmbus_core::ring::{init_ring, Consumer, Producer, ReadError, WriteError, HEADER_SIZE};
use vmbus_core::shared::SharedMem;

const DATA: usize = 1 << 20;
const SIZES: [usize; 3] = [64, 1500, 65536];
const BATCH: u64 = 64;

#[cfg(c_rings)]
extern "C" {
    fn kring_single(size: u32, packets: u64, data: usize, bytes: *mut u64) -> u64;
    fn kring_threads(size: u32, packets: u64, data: usize, bytes: *mut u64) -> u64;
    fn bufring_single(size: u32, packets: u64, data: usize, bytes: *mut u64) -> u64;
    fn bufring_threads(size: u32, packets: u64, data: usize, bytes: *mut u64) -> u64;
}

/// Ring memory, page-aligned like real ring pages (and like the C rings'
/// memory here): a large `Vec` from malloc starts 16 bytes into a page,
/// which would put descriptors across cache lines.
struct RingMemory(Vec<u64>);

impl RingMemory {
    fn new() -> Self {
        RingMemory(vec![0u64; (HEADER_SIZE + DATA + 4096) / 8])
    }

    fn slice(&mut self) -> &mut [u64] {
        let skip = (4096 - self.0.as_ptr() as usize % 4096) % 4096 / 8;
        &mut self.0[skip..skip + (HEADER_SIZE + DATA) / 8]
    }
}

/// Seconds for `packets` packets of `size` bytes, single-threaded.
fn rust_single(size: usize, packets: u64) -> f64 {
    let mut buf = RingMemory::new();
    let mem = SharedMem::from_slice(buf.slice());
    init_ring(mem).expect("ring");
    let mut p = Producer::new(mem).expect("producer");
    let mut c = Consumer::new(mem).expect("consumer");
    let src = vec![0u8; size];
    let mut dst = vec![0u8; size + 64];
    let (mut sent, mut got, mut bytes) = (0u64, 0u64, 0usize);
    let t = Instant::now();
    while got < packets {
        while sent < packets {
            match p.write_inband(sent, false, &[&src]) {
                Ok(_) => sent += 1,
                Err(WriteError::Full { .. }) => break,
                Err(e) => panic!("write: {e:?}"),
            }
        }
        loop {
            match c.read_packet(&mut dst) {
                Ok(info) => {
                    bytes += info.len;
                    got += 1;
                }
                Err(ReadError::Empty) => break,
                Err(e) => panic!("read: {e:?}"),
            }
        }
        let _ = c.commit().expect("commit");
    }
    let s = t.elapsed().as_secs_f64();
    // Every packet really went through: descriptor plus padded payload.
    assert_eq!(
        bytes as u64,
        packets * (16 + size.next_multiple_of(8)) as u64
    );
    black_box(&dst);
    s
}

fn rust_threads(size: usize, packets: u64) -> f64 {
    let mut buf = RingMemory::new();
    let mem = SharedMem::from_slice(buf.slice());
    init_ring(mem).expect("ring");
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut p = Producer::new(mem).expect("producer");
            let src = vec![0u8; size];
            for i in 0..packets {
                loop {
                    match p.write_inband(i, false, &[&src]) {
                        Ok(_) => break,
                        Err(WriteError::Full { .. }) => std::hint::spin_loop(),
                        Err(e) => panic!("write: {e:?}"),
                    }
                }
            }
        });
        let mut c = Consumer::new(mem).expect("consumer");
        let mut dst = vec![0u8; size + 64];
        let (mut got, mut batch) = (0u64, 0u64);
        while got < packets {
            match c.read_packet(&mut dst) {
                Ok(_) => {
                    got += 1;
                    batch += 1;
                    if batch == BATCH {
                        let _ = c.commit().expect("commit");
                        batch = 0;
                    }
                }
                Err(ReadError::Empty) => {
                    let _ = c.commit().expect("commit");
                    batch = 0;
                    std::hint::spin_loop();
                }
                Err(e) => panic!("read: {e:?}"),
            }
        }
        black_box(&dst);
    });
    t.elapsed().as_secs_f64()
}

/// The floor: copy each payload into a ring-sized buffer and out again.
fn memcpy_single(size: usize, packets: u64) -> f64 {
    let src = vec![0u8; size];
    let mut ring = vec![0u8; DATA];
    let mut dst = vec![0u8; size];
    let mut pos = 0;
    let t = Instant::now();
    for _ in 0..packets {
        if pos + size > DATA {
            pos = 0;
        }
        ring[pos..pos + size].copy_from_slice(black_box(&src));
        dst.copy_from_slice(black_box(&ring[pos..pos + size]));
        black_box(&dst);
        pos += (size + 24).next_multiple_of(8);
    }
    t.elapsed().as_secs_f64()
}

#[cfg(c_rings)]
fn c_run(
    f: unsafe extern "C" fn(u32, u64, usize, *mut u64) -> u64,
    size: usize,
    packets: u64,
) -> f64 {
    let mut bytes = 0u64;
    // SAFETY: the C drivers allocate and free their own rings and only write
    // through the valid `bytes` pointer.
    let ns = unsafe { f(size as u32, packets, DATA, &mut bytes) };
    black_box(bytes);
    ns as f64 / 1e9
}

const ROUNDS: usize = 5;

struct Row {
    name: &'static str,
    secs: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--size=N` and `--single`/`--threads` narrow the run (for profiling).
    let only_size: Option<usize> = args
        .iter()
        .find_map(|a| a.strip_prefix("--size=")?.parse().ok());
    let single_only = args.iter().any(|a| a == "--single");
    let threads_only = args.iter().any(|a| a == "--threads");
    let volume: u64 = if quick { 64 << 20 } else { 512 << 20 };
    println!("ring benchmark: 1 MiB data area, in-band packets, best of 5 round-robin; payload GB/s = 1e9 B/s");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cpus} CPUs, load average {}; two-thread figures need two idle CPUs",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    #[cfg(c_rings)]
    println!(
        "C ring_buffer.c: the kernel's write/iterate/close functions, verbatim, with a userspace \
         shim (double-mapped data, spinlock, x86 barriers); C vmbus_bufring.c sends lengths \
         rounded up to 8 (its ALIGN rounds down)"
    );
    #[cfg(not(c_rings))]
    println!("note: C rings not built (run vmbus/bench/run.sh); Rust and memcpy only");
    for threads in [false, true] {
        if (threads && single_only) || (!threads && threads_only) {
            continue;
        }
        let mode = if threads {
            "two threads"
        } else {
            "single thread"
        };
        for size in SIZES {
            if only_size.is_some_and(|o| o != size) {
                continue;
            }
            let packets = (volume / size as u64).max(20_000);
            // Round-robin, best of ROUNDS: on a shared machine, background
            // load then hits every implementation alike.
            type Run = Box<dyn Fn() -> f64>;
            let mut runs: Vec<(&'static str, Run)> = vec![];
            if threads {
                runs.push(("rustic", Box::new(move || rust_threads(size, packets))));
            } else {
                runs.push(("rustic", Box::new(move || rust_single(size, packets))));
            }
            #[cfg(c_rings)]
            {
                type CFn = unsafe extern "C" fn(u32, u64, usize, *mut u64) -> u64;
                let (k, b): (CFn, CFn) = if threads {
                    (kring_threads, bufring_threads)
                } else {
                    (kring_single, bufring_single)
                };
                runs.push(("C ring_buffer.c", Box::new(move || c_run(k, size, packets))));
                runs.push((
                    "C vmbus_bufring.c",
                    Box::new(move || c_run(b, size, packets)),
                ));
            }
            runs.push((
                "memcpy (1 thread)",
                Box::new(move || memcpy_single(size, packets)),
            ));
            let mut best = vec![f64::INFINITY; runs.len()];
            for _ in 0..ROUNDS {
                for (b, (_, run)) in best.iter_mut().zip(&runs) {
                    *b = b.min(run());
                }
            }
            let rows: Vec<Row> = runs
                .iter()
                .zip(&best)
                .map(|((name, _), &secs)| Row { name, secs })
                .collect();
            let rust = best[0];
            println!("\n{mode}, {size} B payload, {packets} packets");
            println!(
                "  {:<20} {:>10} {:>9} {:>14}",
                "", "Mpkt/s", "GB/s", "rustic/this"
            );
            for r in &rows {
                let pps = packets as f64 / r.secs;
                let gbs = pps * size as f64 / 1e9;
                println!(
                    "  {:<20} {:>10.2} {:>9.2} {:>13.2}x",
                    r.name,
                    pps / 1e6,
                    gbs,
                    r.secs / rust
                );
            }
        }
    }
}
