// SPDX-License-Identifier: GPL-2.0
//! KUnit cases run inside the kernel at module load (suite `rustic_core`,
//! declared in tests/kunit/suite.c). They exercise the kernel-independent
//! core as the kernel compiles it: kernel flags, overflow checks, no std.

use super::bindings;
use super::kernel_glue::{kunit_expect, KunitCase};
use super::vmbus_core::guid::{class, Guid, GuidParseError};

/// Every known device class survives text formatting and parsing, and the
/// network class has the text form the C driver's sysfs files show.
#[no_mangle]
extern "C" fn rustic_kunit_guid_text_round_trip(test: *mut bindings::kunit) {
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    let classes = [
        class::NETWORK,
        class::SCSI,
        class::IDE,
        class::KEYBOARD,
        class::MOUSE,
        class::HEARTBEAT,
        class::SHUTDOWN,
        class::TIMESYNC,
        class::KVP,
    ];
    for guid in classes {
        let mut text = [0u8; 36];
        guid.format(&mut text);
        let parsed = core::str::from_utf8(&text).map(Guid::parse);
        kunit_expect!(case, matches!(parsed, Ok(Ok(g)) if g == guid));
    }
    let mut text = [0u8; 36];
    class::NETWORK.format(&mut text);
    kunit_expect!(case, &text == b"f8615163-df3e-46c5-913f-f2d2f965ed0e");
}

/// Malformed GUID text is refused with the right reason, never a panic.
#[no_mangle]
extern "C" fn rustic_kunit_guid_rejects_malformed(test: *mut bindings::kunit) {
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    kunit_expect!(case, Guid::parse("") == Err(GuidParseError::Length));
    kunit_expect!(
        case,
        Guid::parse("f8615163_df3e-46c5-913f-f2d2f965ed0e") == Err(GuidParseError::Dash)
    );
    kunit_expect!(
        case,
        Guid::parse("f8615163-df3e-46c5-913f-f2d2f965ed0z") == Err(GuidParseError::Digit)
    );
}
