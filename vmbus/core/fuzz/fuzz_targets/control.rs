//! The control-plane state machine over arbitrary host messages, driver
//! requests and time steps. The harness and its invariants (a refused
//! message changes nothing and pushes nothing; every request completes
//! exactly once; sent messages round-trip) live in
//! vmbus/core/tests/control_random.rs, shared with `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/control_random.rs"]
#[allow(dead_code)]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::run_ops(data);
});
