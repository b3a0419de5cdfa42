//! SynIC event flags: how the host tells the guest which channels have
//! something for it (and, in a simulator, how the host sets them).
//!
//! The event-flags page holds one 256-byte slot per SINT; in the VMBus
//! slot, bit `relid` (little-endian 32-bit words) means "channel `relid`
//! was signalled". From VMBus 4.2 (Windows 8) the host sets that bit
//! directly; the guest clears words with an atomic swap, so a bit the host
//! sets while the guest scans is seen on this scan or the next interrupt,
//! never lost.

use super::shared::{OutOfBounds, SharedMem};
use super::version::MESSAGE_SINT;
use core::sync::atomic::Ordering;

/// Bytes of event flags per SINT.
pub const SLOT_SIZE: usize = 256;
/// Relids the flags can name (one bit each; the C driver's
/// `HV_EVENT_FLAGS_COUNT`).
pub const MAX_RELID: u32 = (SLOT_SIZE * 8) as u32;

/// The VMBus SINT's slot of an event-flags page.
pub fn vmbus_slot(page: SharedMem<'_>) -> Result<SharedMem<'_>, OutOfBounds> {
    page.subrange(usize::from(MESSAGE_SINT) * SLOT_SIZE, SLOT_SIZE)
}

/// Host side: sets the flag of `relid`. Returns whether it was clear (the
/// guest must be interrupted to see it; a set flag already has one
/// coming).
pub fn set(slot: SharedMem<'_>, relid: u32) -> Result<bool, OutOfBounds> {
    if relid >= MAX_RELID {
        return Err(OutOfBounds);
    }
    let word = (relid / 32) as usize * 4;
    let bit = 1u32 << (relid % 32);
    // SeqCst: the ring index the host published before is visible to the
    // guest that sees this bit.
    let old = slot.fetch_or_u32(word, bit, Ordering::SeqCst)?;
    Ok(old & bit == 0)
}

/// Guest side: clears every set flag and calls `signalled` with its relid,
/// in ascending order. Words that are zero cost one load.
pub fn take_all(slot: SharedMem<'_>, mut signalled: impl FnMut(u32)) -> Result<(), OutOfBounds> {
    for word in 0..(SLOT_SIZE / 4) {
        let offset = word * 4;
        if slot.load_u32(offset, Ordering::Relaxed)? == 0 {
            continue;
        }
        let mut bits = slot.swap_u32(offset, 0, Ordering::SeqCst)?;
        while bits != 0 {
            let bit = bits.trailing_zeros();
            bits &= bits - 1;
            // `word` < 64 and `bit` < 32: fits.
            signalled(word as u32 * 32 + bit);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn flags_set_by_the_host_are_taken_once_in_order() {
        let mut page = [0u64; 512];
        let page = SharedMem::from_slice(&mut page);
        let slot = vmbus_slot(page).unwrap();
        assert_eq!(set(slot, 200), Ok(true));
        assert_eq!(set(slot, 200), Ok(false), "already pending");
        assert_eq!(set(slot, 3), Ok(true));
        assert_eq!(set(slot, MAX_RELID - 1), Ok(true));
        assert_eq!(set(slot, MAX_RELID), Err(OutOfBounds));
        let mut seen = Vec::new();
        take_all(slot, |r| seen.push(r)).unwrap();
        assert_eq!(seen, [3, 200, MAX_RELID - 1]);
        seen.clear();
        take_all(slot, |r| seen.push(r)).unwrap();
        assert!(seen.is_empty(), "taken flags are cleared");
    }

    #[test]
    fn only_the_vmbus_slot_is_touched() {
        let mut page = [0u64; 512];
        let page = SharedMem::from_slice(&mut page);
        set(vmbus_slot(page).unwrap(), 0).unwrap();
        assert_eq!(page.load_u32(2 * SLOT_SIZE, Ordering::Relaxed), Ok(1));
        assert_eq!(page.load_u32(0, Ordering::Relaxed), Ok(0));
        assert_eq!(page.load_u32(SLOT_SIZE, Ordering::Relaxed), Ok(0));
    }
}
