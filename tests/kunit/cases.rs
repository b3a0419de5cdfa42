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

/// The bus's formats and control parser as the kernel compiles them
/// (overflow checks on): the C driver's modalias and GUID formats, a
/// closed channel's ring attribute refused, a good and a bad command.
#[no_mangle]
extern "C" fn rustic_kunit_bus_formats(test: *mut bindings::kunit) {
    use super::vmbus_core::bus::{
        modalias, show_dev_attr, AttrError, ChannelView, Command, DevAttr, OfferFacts,
        MODALIAS_LEN,
    };
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    let mut alias = [0u8; MODALIAS_LEN];
    modalias(&class::NETWORK, &mut alias);
    kunit_expect!(case, &alias == b"vmbus:635161f83edfc546913ff2d2f965ed0e");

    let offer = OfferFacts {
        class: class::NETWORK,
        instance: class::SCSI,
        relid: 2047,
        monitor_id: Some(127),
        target_cpu: 0,
    };
    let chan = ChannelView::closed(0);
    let mut out = [0u8; 64];
    let n = show_dev_attr(DevAttr::ClassId, &offer, &chan, 0, &mut out);
    kunit_expect!(case, n == Ok(39));
    kunit_expect!(case, out.get(..39) == Some(&b"{f8615163-df3e-46c5-913f-f2d2f965ed0e}\n"[..]));
    kunit_expect!(
        case,
        show_dev_attr(DevAttr::InReadIndex, &offer, &chan, 0, &mut out) == Err(AttrError::NoRing)
    );
    kunit_expect!(
        case,
        show_dev_attr(DevAttr::Id, &offer, &chan, 0, &mut out[..2]) == Err(AttrError::NoRoom)
    );

    let add = Command::parse(
        b"add class=f8615163-df3e-46c5-913f-f2d2f965ed0e instance=ba6163d9-04a1-4d29-b605-72e2ffb1dc7f relid=2047 monitor=127\n",
    );
    kunit_expect!(case, add == Ok(Command::Add(offer)));
    kunit_expect!(case, Command::parse(b"add relid=4294967296").is_err());
    kunit_expect!(case, Command::parse(b"\xff").is_err());
}
