//! The guest's version negotiation driven by arbitrary host answers: the
//! input is a sequence of NVSP messages (length-prefixed). Whatever the host
//! says, the guest proposes each version at most once, newest first, and
//! ends within as many answers as it has versions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netvsc_core::nvsp::*;

fuzz_target!(|data: &[u8]| {
    let isolated = data.first().is_some_and(|b| b & 1 != 0);
    let mut rest = data.get(1..).unwrap_or(&[]);
    let (mut n, mut step) = Negotiation::start(isolated);
    let mut proposed: Vec<Version> = Vec::new();
    let mut answers = 0;
    loop {
        match step {
            Step::Propose(Message::Init { min, max }) => {
                assert_eq!(min, max);
                let v = Version::from_raw(min).unwrap();
                assert!(proposed.last().map_or(true, |p| *p > v));
                assert!(!isolated || v.isolation_ok());
                proposed.push(v);
            }
            Step::Propose(other) => panic!("proposed {other:?}"),
            Step::Done(v) => {
                assert_eq!(proposed.last(), Some(&v));
                return;
            }
            Step::Failed => return,
        }
        // The host's next message; only INIT_COMPLETE answers the INIT.
        let Some((&len, tail)) = rest.split_first() else {
            return;
        };
        let len = usize::from(len).min(tail.len());
        let (msg, tail) = tail.split_at(len);
        rest = tail;
        answers += 1;
        assert!(answers <= GUEST_VERSIONS.len());
        match Message::parse(msg, Sender::Host, None) {
            Ok(Message::InitComplete(c)) => step = n.on_init_complete(&c),
            _ => {
                // A guest waiting for INIT_COMPLETE ignores anything else;
                // treat it as a failed answer so the sequence stays bounded.
                step = n.on_init_complete(&InitComplete {
                    negotiated_version: 0,
                    max_mdl_chain_len: 0,
                    status: status::FAIL,
                });
            }
        }
    }
});
