//! Placeholder target so the fuzz crate builds; replaced by the real one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmbus_core::guid::Guid;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = Guid::parse(text);
    }
});
