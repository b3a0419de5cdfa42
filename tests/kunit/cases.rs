// SPDX-License-Identifier: GPL-2.0
//! KUnit cases run inside the kernel at module load (suite `rustic_core`,
//! declared in tests/kunit/suite.c). They exercise the kernel-independent
//! core as the kernel compiles it: kernel flags, overflow checks, no std.

use super::bindings;
use super::kernel_glue::{kunit_expect, kunit_fail, KunitCase};
use super::vmbus_core::guid::{class, Guid, GuidParseError};
use super::vmbus_core::ring;
use super::vmbus_core::shared::SharedMem;
use core::sync::atomic::Ordering;
use kernel::prelude::*;

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

/// Bytes of the ring's data area in the in-kernel ring cases: small enough to
/// wrap around many times in one case.
const KUNIT_RING_DATA: usize = 8192;
/// Largest payload the round-trip case sends: an Ethernet frame.
const KUNIT_MAX_PAYLOAD: usize = 1500;

/// Zeroed, 8-aligned memory for one ring (header page plus data area).
fn kunit_ring_memory() -> Option<KVec<u64>> {
    KVec::from_elem(0u64, (ring::HEADER_SIZE + KUNIT_RING_DATA) / 8, GFP_KERNEL).ok()
}

/// Packets of many sizes go through a ring in kernel memory, wrapping around
/// it dozens of times, and come out with every byte and transaction id intact.
#[no_mangle]
extern "C" fn rustic_kunit_ring_round_trip(test: *mut bindings::kunit) {
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    let (Some(mut words), Ok(mut payload), Ok(mut out)) = (
        kunit_ring_memory(),
        KVec::from_elem(0u8, KUNIT_MAX_PAYLOAD, GFP_KERNEL),
        KVec::from_elem(0u8, KUNIT_MAX_PAYLOAD + 64, GFP_KERNEL),
    ) else {
        kunit_fail!(case, "allocation failed");
        return;
    };
    let mem = SharedMem::from_slice(words.as_mut_slice());
    kunit_expect!(case, ring::init_ring(mem).is_ok());
    let (Ok(mut tx), Ok(mut rx)) = (ring::Producer::new(mem), ring::Consumer::new(mem)) else {
        kunit_fail!(case, "ring setup failed");
        return;
    };
    let mut bytes_moved = 0usize;
    for i in 0..400usize {
        // A constant divisor: no division-by-zero panic path in the case.
        let len = (i * 37) % KUNIT_MAX_PAYLOAD + 1;
        for (j, b) in payload.iter_mut().enumerate().take(len) {
            *b = (i ^ j) as u8;
        }
        let Some(sent_bytes) = payload.get(..len) else {
            kunit_fail!(case, "payload length out of range");
            return;
        };
        let sent = tx.write_inband(i as u64, false, &[sent_bytes]);
        kunit_expect!(case, sent.is_ok());
        match rx.read_packet(out.as_mut_slice()) {
            Ok(info) => {
                let got = info.payload(out.as_slice());
                kunit_expect!(case, info.descriptor.transaction_id == i as u64);
                kunit_expect!(case, got.len() >= len && got.len() < len + 8);
                kunit_expect!(case, got.get(..len) == Some(sent_bytes));
            }
            Err(_) => kunit_fail!(case, "read_packet failed"),
        }
        kunit_expect!(case, rx.commit().is_ok());
        bytes_moved += len;
    }
    // More than a dozen trips round the data area.
    kunit_expect!(case, bytes_moved > 12 * KUNIT_RING_DATA);
    kunit_expect!(case, matches!(rx.read_packet(out.as_mut_slice()), Err(ring::ReadError::Empty)));
}

/// A write index the host corrupted poisons the consumer: a typed error, and
/// the same error on every later read, never a read out of bounds.
#[no_mangle]
extern "C" fn rustic_kunit_ring_corrupt_index_poisons(test: *mut bindings::kunit) {
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    let (Some(mut words), Ok(mut out)) = (kunit_ring_memory(), KVec::from_elem(0u8, 256, GFP_KERNEL)) else {
        kunit_fail!(case, "allocation failed");
        return;
    };
    let mem = SharedMem::from_slice(words.as_mut_slice());
    kunit_expect!(case, ring::init_ring(mem).is_ok());
    let Ok(mut rx) = ring::Consumer::new(mem) else {
        kunit_fail!(case, "ring setup failed");
        return;
    };
    // Beyond the data area, as a hostile host might write it.
    let bad_index = (KUNIT_RING_DATA + 8) as u32;
    kunit_expect!(case, mem.store_u32(ring::WRITE_INDEX_OFFSET, bad_index, Ordering::Release).is_ok());
    let corrupt = |r: Result<ring::PacketInfo, ring::ReadError>| {
        matches!(r, Err(ring::ReadError::Corrupt(ring::Corrupt::Index)))
    };
    kunit_expect!(case, corrupt(rx.read_packet(out.as_mut_slice())));
    // Repairing the index does not unpoison the ring.
    kunit_expect!(case, mem.store_u32(ring::WRITE_INDEX_OFFSET, 0, Ordering::Release).is_ok());
    kunit_expect!(case, corrupt(rx.read_packet(out.as_mut_slice())));
    kunit_expect!(case, rx.poisoned() == Some(ring::Corrupt::Index));
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
