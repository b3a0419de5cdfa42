//! The guest's send sections: a completion frees exactly the section it
//! names, once, whatever the host sends; a repeated, stale or made-up one
//! frees nothing, even with transmits and completions on several threads.

use netvsc_core::sections::{self, Refused, SendSections};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;


fn table(count: u32) -> SendSections<Vec<AtomicU64>, Vec<AtomicU32>> {
    let used = (0..sections::words(count)).map(|_| AtomicU64::new(0)).collect();
    let gens = (0..count).map(|_| AtomicU32::new(0)).collect();
    SendSections::new(used, gens, count).unwrap()
}

#[test]
fn sections_are_taken_lowest_first_until_none_is_left() {
    let s = table(70);
    for i in 0..70 {
        assert_eq!(s.alloc(), Some(i));
    }
    assert_eq!(s.alloc(), None);
    assert_eq!(s.in_use(), 70);
    assert!(s.free(3));
    assert_eq!(s.alloc(), Some(3));
}

#[test]
fn storage_too_small_or_dirty_is_refused() {
    let gens = || (0..100).map(|_| AtomicU32::new(0)).collect::<Vec<_>>();
    assert!(SendSections::new(vec![AtomicU64::new(0)], gens(), 100).is_none());
    assert!(SendSections::new(vec![AtomicU64::new(0), AtomicU64::new(1)], gens(), 100).is_none());
    let few = (0..10).map(|_| AtomicU32::new(0)).collect::<Vec<_>>();
    assert!(SendSections::new(vec![AtomicU64::new(0), AtomicU64::new(0)], few, 100).is_none());
}

#[test]
fn a_completion_frees_its_section_once() {
    let s = table(8);
    let a = s.alloc().unwrap();
    let tid = s.tid(a);
    assert_eq!(sections::parse_tid(tid), Some((a, 0)));
    assert_eq!(s.complete(tid), Ok(a));
    assert_eq!(s.in_use(), 0);
    // The duplicate finds nothing in flight.
    assert_eq!(s.complete(tid), Err(Refused::NotInFlight));
    // Nor does it free the section once it is taken again.
    assert_eq!(s.alloc(), Some(a));
    let again = s.tid(a);
    assert_ne!(again, tid);
    assert_eq!(s.complete(tid), Err(Refused::NotInFlight));
    assert_eq!(s.in_use(), 1);
    assert_eq!(s.complete(again), Ok(a));
}

#[test]
fn what_a_send_held_is_let_go_before_its_section_can_be_taken_again() {
    let s = table(1);
    let a = s.alloc().unwrap();
    let tid = s.tid(a);
    let mut seen = Vec::new();
    // A made-up or repeated completion runs nothing.
    assert_eq!(s.complete_then(sections::tid(a, 5), |i| seen.push(i)), Err(Refused::NotInFlight));
    assert!(seen.is_empty());
    let done = s.complete_then(tid, |i| {
        // Still taken: no send can have it yet.
        assert_eq!(s.alloc(), None);
        seen.push(i);
    });
    assert_eq!(done, Ok(a));
    assert_eq!(seen, [a]);
    assert_eq!(s.complete_then(tid, |i| seen.push(i)), Err(Refused::NotInFlight));
    assert_eq!(seen, [a]);
    assert_eq!(s.alloc(), Some(a));
}

#[test]
fn completions_naming_nothing_free_nothing() {
    let s = table(8);
    let a = s.alloc().unwrap();
    assert_eq!(s.complete(u64::MAX), Err(Refused::OutOfRange));
    assert_eq!(s.complete(sections::tid(8, 0)), Err(Refused::OutOfRange));
    assert_eq!(s.complete(0), Err(Refused::NotTx));
    assert_eq!(s.complete(2), Err(Refused::NotTx));
    assert_eq!(s.complete(1 << 32), Err(Refused::NotTx));
    // In range, not in flight.
    assert_eq!(s.complete(sections::tid(a + 1, 0)), Err(Refused::NotInFlight));
    // In flight, another generation.
    assert_eq!(s.complete(sections::tid(a, 1)), Err(Refused::NotInFlight));
    assert_eq!(s.in_use(), 1);
    assert_eq!(s.complete(s.tid(a)), Ok(a));
}

#[test]
fn an_owners_free_makes_the_old_id_stale() {
    let s = table(4);
    let a = s.alloc().unwrap();
    let tid = s.tid(a);
    assert!(s.free(a));
    assert!(!s.free(a));
    assert_eq!(s.complete(tid), Err(Refused::NotInFlight));
    assert_eq!(s.alloc(), Some(a));
    assert_eq!(s.complete(tid), Err(Refused::NotInFlight));
    assert!(!s.free(4));
}

#[test]
fn generations_wrap_within_their_bits() {
    let t = sections::tid(7, u32::MAX);
    assert_eq!(sections::parse_tid(t), Some((7, 0x7fff_ffff)));
    assert_eq!(sections::parse_tid(t & !sections::TID_TX), None);
}

/// Transmits and completions on several threads, with a host that repeats
/// every completion: each section is freed exactly once per send, and no
/// repeat frees a section someone else took meanwhile.
#[test]
fn duplicates_never_free_a_section_in_use_under_concurrency() {
    let s = Arc::new(table(16));
    let owned: Arc<Vec<AtomicBool>> = Arc::new((0..16).map(|_| AtomicBool::new(false)).collect());
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let senders: Vec<_> = (0..3)
        .map(|_| {
            let (s, owned, tx) = (s.clone(), owned.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut sent = 0;
                while sent < 20_000 {
                    let Some(i) = s.alloc() else {
                        std::thread::yield_now();
                        continue;
                    };
                    assert!(!owned[i as usize].swap(true, Ordering::SeqCst), "section {i} taken twice");
                    let tid = s.tid(i);
                    tx.send(tid).unwrap();
                    sent += 1;
                }
            })
        })
        .collect();
    drop(tx);
    let mut freed = 0u64;
    let mut refused = 0u64;
    for tid in rx {
        let (i, _) = sections::parse_tid(tid).unwrap();
        // The guest's completion handler releases ownership just before it
        // frees, as the send path's bookkeeping would.
        owned[i as usize].store(false, Ordering::SeqCst);
        match s.complete(tid) {
            Ok(j) => {
                assert_eq!(i, j);
                freed += 1;
            }
            Err(e) => panic!("a real completion was refused: {e:?}"),
        }
        // The repeat: must never free a section, whoever holds it now.
        let held_before = owned[i as usize].load(Ordering::SeqCst);
        assert!(s.complete(tid).is_err());
        if held_before {
            assert!(s.in_use() >= 1);
        }
        refused += 1;
    }
    for t in senders {
        t.join().unwrap();
    }
    assert_eq!(freed, 60_000);
    assert_eq!(refused, 60_000);
    assert_eq!(s.in_use(), 0);
}

// ---------------------------------------------------------------------------
// Any sequence of transmits, real, repeated and made-up completions and
// owner frees, against a model: a completion frees a section only when it
// names that section with the id it is in flight with.

use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Alloc,
    /// Completes the n-th section in flight (modulo their number).
    Complete(usize),
    /// A completion with an id the host made up.
    Made(u64),
    /// Repeats the n-th id the host has completed before.
    Repeat(usize),
    /// The owner frees the n-th section in flight.
    Free(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Alloc),
        2 => any::<usize>().prop_map(Op::Complete),
        1 => any::<u64>().prop_map(Op::Made),
        // Ids near the real ones: the right bit, small indexes and generations.
        1 => (0u32..12, 0u32..4).prop_map(|(i, g)| Op::Made(sections::tid(i, g))),
        1 => any::<usize>().prop_map(Op::Repeat),
        1 => any::<usize>().prop_map(Op::Free),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn only_the_id_in_flight_frees_its_section(ops in proptest::collection::vec(op(), 1..200)) {
        let s = table(10);
        let mut in_flight: BTreeMap<u32, u64> = BTreeMap::new();
        let mut done: Vec<u64> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc => match s.alloc() {
                    Some(i) => {
                        prop_assert!(i < 10);
                        prop_assert!(in_flight.insert(i, s.tid(i)).is_none());
                    }
                    None => prop_assert_eq!(in_flight.len(), 10),
                },
                Op::Complete(n) if !in_flight.is_empty() => {
                    let (&i, &tid) = in_flight.iter().nth(n % in_flight.len()).unwrap();
                    prop_assert_eq!(s.complete(tid), Ok(i));
                    in_flight.remove(&i);
                    done.push(tid);
                }
                Op::Complete(_) => {}
                Op::Made(tid) => {
                    let named = sections::parse_tid(tid).and_then(|(i, _)| in_flight.get(&i).map(|&t| (i, t)));
                    match named {
                        Some((i, t)) if t == tid => {
                            prop_assert_eq!(s.complete(tid), Ok(i));
                            in_flight.remove(&i);
                            done.push(tid);
                        }
                        _ => prop_assert!(s.complete(tid).is_err()),
                    }
                }
                Op::Repeat(n) if !done.is_empty() => {
                    let tid = done[n % done.len()];
                    prop_assert!(s.complete(tid).is_err());
                }
                Op::Repeat(_) => {}
                Op::Free(n) if !in_flight.is_empty() => {
                    let (&i, &tid) = in_flight.iter().nth(n % in_flight.len()).unwrap();
                    prop_assert!(s.free(i));
                    in_flight.remove(&i);
                    done.push(tid);
                }
                Op::Free(_) => {}
            }
            prop_assert_eq!(s.in_use() as usize, in_flight.len());
        }
    }
}
