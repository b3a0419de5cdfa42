//! The guest's send-buffer sections: which are in flight, and the
//! transaction id each went out with, so that the host's completion frees
//! exactly the section it names, once.
//!
//! A transmitted section's transaction id carries its index and a
//! generation ([`TID_TX`] `| generation << 32 | index`); the generation
//! moves on each time the section is freed. A completion must name a
//! section in flight with the generation it was sent with: one naming a
//! section out of range, one not in flight, and a stale one (a duplicate,
//! or one that arrives after the section was freed and taken again) are
//! refused and free nothing. Only a host that completes a packet it has
//! not yet been sent could still free a section early, and then only the
//! guest's own outgoing bytes in the shared buffer suffer.
//!
//! Lock-free: sections are taken with a compare-and-swap on a bitmap (first
//! fit) and freed by a compare-and-swap of their generation, so a
//! completion and a transmit on different CPUs need no lock. The storage is
//! the caller's (the kernel's vectors, host tests' `Vec`s).

use core::ops::Deref;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The bit that marks a transmitted section's transaction id.
pub const TID_TX: u64 = 1 << 63;
const GENERATION_MASK: u32 = 0x7fff_ffff;

/// Why a completion freed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a transmitted section's transaction id.
    NotTx,
    /// The index names no section.
    OutOfRange,
    /// The section is not in flight with that generation.
    NotInFlight,
}

/// The sections of one send buffer. `U` holds one bit per section (in
/// use), `G` one generation per section.
pub struct SendSections<U, G> {
    used: U,
    generations: G,
    count: u32,
}

/// The 64-bit words a bitmap of `count` sections needs.
pub const fn words(count: u32) -> usize {
    count.div_ceil(64) as usize
}

/// The transaction id of section `index` sent in generation `generation`.
pub const fn tid(index: u32, generation: u32) -> u64 {
    TID_TX | ((generation & GENERATION_MASK) as u64) << 32 | index as u64
}

/// The section index and generation a transaction id names, if it is a
/// transmitted section's.
pub const fn parse_tid(tid: u64) -> Option<(u32, u32)> {
    if tid & TID_TX == 0 {
        return None;
    }
    // CAST: both halves fit 32 bits.
    Some((tid as u32, (tid >> 32) as u32 & GENERATION_MASK))
}

impl<U, G> SendSections<U, G>
where
    U: Deref<Target = [AtomicU64]>,
    G: Deref<Target = [AtomicU32]>,
{
    /// `count` sections, all free, over `used` (at least [`words`]`(count)`
    /// words, all zero) and `generations` (at least `count`); `None` if
    /// they are too small or a word is not zero.
    pub fn new(used: U, generations: G, count: u32) -> Option<Self> {
        if used.len() < words(count)
            || generations.len() < count as usize
            || used.iter().any(|w| w.load(Ordering::Relaxed) != 0)
        {
            return None;
        }
        Some(SendSections { used, generations, count })
    }

    /// How many sections there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Takes a free section (the lowest); `None` when all are in use.
    pub fn alloc(&self) -> Option<u32> {
        for (w, word) in self.used.iter().enumerate() {
            let mut v = word.load(Ordering::Relaxed);
            loop {
                let free = !v;
                if free == 0 {
                    break;
                }
                let bit = free.trailing_zeros();
                let index = u32::try_from(w).ok()?.checked_mul(64)?.checked_add(bit)?;
                if index >= self.count {
                    return None;
                }
                match word.compare_exchange(v, v | (1u64 << bit), Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => return Some(index),
                    Err(now) => v = now,
                }
            }
        }
        None
    }

    /// The transaction id to send section `index` with (taken by
    /// [`SendSections::alloc`] and not freed since).
    pub fn tid(&self, index: u32) -> u64 {
        let generation = self.generations.get(index as usize).map_or(0, |g| g.load(Ordering::Acquire));
        tid(index, generation)
    }

    /// The host completed transaction `tid`: frees the section it names if
    /// that section is in flight with that generation; its index.
    pub fn complete(&self, tid: u64) -> Result<u32, Refused> {
        self.complete_then(tid, |_| {})
    }

    /// [`SendSections::complete`], running `done` on the section's index
    /// once the completion is claimed and before the section is free
    /// again: the place to let go of what the send held, with no new send
    /// able to take the section meanwhile.
    pub fn complete_then(&self, tid: u64, done: impl FnOnce(u32)) -> Result<u32, Refused> {
        let (index, generation) = parse_tid(tid).ok_or(Refused::NotTx)?;
        if index >= self.count {
            return Err(Refused::OutOfRange);
        }
        let (Some(word), Some(g)) = (self.used.get(index as usize / 64), self.generations.get(index as usize))
        else {
            return Err(Refused::OutOfRange);
        };
        let bit = 1u64 << (index % 64);
        if word.load(Ordering::Acquire) & bit == 0 {
            return Err(Refused::NotInFlight);
        }
        // Claims the completion: a second one with the same generation
        // finds the next one there.
        let next = generation.wrapping_add(1) & GENERATION_MASK;
        if g.compare_exchange(generation, next, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(Refused::NotInFlight);
        }
        done(index);
        word.fetch_and(!bit, Ordering::Release);
        Ok(index)
    }

    /// Frees section `index` that its owner took and will not send (or
    /// whose send failed); false if it was not in use.
    pub fn free(&self, index: u32) -> bool {
        let (Some(word), Some(g)) = (self.used.get(index as usize / 64), self.generations.get(index as usize))
        else {
            return false;
        };
        if index >= self.count {
            return false;
        }
        let bit = 1u64 << (index % 64);
        if word.load(Ordering::Acquire) & bit == 0 {
            return false;
        }
        // Any completion of the old generation is stale from here on.
        let _ = g.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.wrapping_add(1) & GENERATION_MASK));
        word.fetch_and(!bit, Ordering::Release) & bit != 0
    }

    /// Sections in use.
    pub fn in_use(&self) -> u32 {
        self.used.iter().map(|w| w.load(Ordering::Relaxed).count_ones()).sum()
    }
}
