//! Receive segment coalescing (RSC) as the guest sees it: a host that
//! coalesces a flow's segments into one large frame hands it over in
//! fragments, each an RNDIS data packet in its own receive-buffer range of
//! one transfer-page packet, marked by the internal `RNDIS_PKTINFO_ID` PPI
//! ([`PktInfoId`]): `SUBALLOC` on every fragment, `1ST_FRAG` on the first,
//! `LAST_FRAG` on the last. The guest joins them into one frame, which
//! takes its checksum, VLAN and hash information from the first.
//!
//! [`Rsc`] keeps the state of one channel's frame being joined and judges
//! each data packet with the C driver's rules (`rndis_filter_receive_data`):
//! a frame's fragments end within their transfer-page packet; a fragment
//! that continues no frame, a frame not ended in its packet and one of more
//! than [`RSC_MAX`] fragments are dropped. It only decides; the caller
//! copies the data.

use super::ppi::PktInfoId;

/// `NVSP_RSC_MAX`: the most fragments of one coalesced frame (and the most
/// ranges of a transfer-page packet the C driver expects).
pub const RSC_MAX: u32 = 562;

/// What to do with one received data packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A frame of its own: hand it up (any frame being joined is
    /// abandoned).
    Alone,
    /// A fragment: its data goes after the frame's so far (`first`: a new
    /// frame starts with it; its metadata is the frame's); `last`: the
    /// frame is whole, hand it up.
    Fragment {
        /// The frame's first fragment.
        first: bool,
        /// The frame's last fragment.
        last: bool,
    },
    /// Bad fragment marks: drop it, and the frame being joined with it.
    Drop(&'static str),
}

/// One channel's coalesced frame being joined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rsc {
    /// Fragments of the frame so far (0: none being joined).
    count: u32,
}

impl Rsc {
    /// A new channel's state: nothing being joined.
    pub const fn new() -> Rsc {
        Rsc { count: 0 }
    }

    /// Judges a data packet with PPI `id`, in the last range of its
    /// transfer-page packet if `last_range`.
    pub fn on_packet(&mut self, id: Option<PktInfoId>, last_range: bool) -> Step {
        let Some(id) = id.filter(|id| id.flags & PktInfoId::SUBALLOC != 0) else {
            self.count = 0;
            return Step::Alone;
        };
        let first = id.flags & PktInfoId::FIRST_FRAG != 0;
        let last = id.flags & PktInfoId::LAST_FRAG != 0;
        if !first && self.count == 0 {
            return Step::Drop("RSC fragment continuing no frame");
        }
        if !last && last_range {
            self.count = 0;
            return Step::Drop("RSC frame not ended in its transfer-page packet");
        }
        let count = if first { 1 } else { self.count.saturating_add(1) };
        if count > RSC_MAX {
            self.count = 0;
            return Step::Drop("RSC frame of too many fragments");
        }
        self.count = if last { 0 } else { count };
        Step::Fragment { first, last }
    }

    /// Forgets a frame being joined (a range was dropped, or a new
    /// transfer-page packet begins).
    pub fn reset(&mut self) {
        self.count = 0;
    }

    /// Whether a frame is being joined.
    pub fn joining(&self) -> bool {
        self.count != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(flags: u8) -> Option<PktInfoId> {
        Some(PktInfoId { version: 1, flags: PktInfoId::SUBALLOC | flags, packet_id: 0 })
    }

    #[test]
    fn a_frame_in_three_fragments_is_joined() {
        let mut r = Rsc::new();
        assert_eq!(r.on_packet(frag(PktInfoId::FIRST_FRAG), false), Step::Fragment { first: true, last: false });
        assert!(r.joining());
        assert_eq!(r.on_packet(frag(0), false), Step::Fragment { first: false, last: false });
        assert_eq!(r.on_packet(frag(PktInfoId::LAST_FRAG), true), Step::Fragment { first: false, last: true });
        assert!(!r.joining());
    }

    #[test]
    fn a_packet_without_marks_stands_alone_and_abandons_a_frame() {
        let mut r = Rsc::new();
        assert_eq!(r.on_packet(None, false), Step::Alone);
        r.on_packet(frag(PktInfoId::FIRST_FRAG), false);
        assert_eq!(r.on_packet(None, true), Step::Alone);
        assert!(!r.joining());
        // Marks without SUBALLOC are no fragment.
        let id = Some(PktInfoId { version: 1, flags: PktInfoId::FIRST_FRAG, packet_id: 0 });
        assert_eq!(r.on_packet(id, true), Step::Alone);
    }

    #[test]
    fn a_single_fragment_frame_is_first_and_last() {
        let mut r = Rsc::new();
        let both = PktInfoId::FIRST_FRAG | PktInfoId::LAST_FRAG;
        assert_eq!(r.on_packet(frag(both), true), Step::Fragment { first: true, last: true });
    }

    #[test]
    fn bad_marks_are_dropped() {
        let mut r = Rsc::new();
        assert!(matches!(r.on_packet(frag(0), false), Step::Drop(_)));
        assert!(matches!(r.on_packet(frag(PktInfoId::LAST_FRAG), false), Step::Drop(_)));
        // Not ended in its packet: dropped, and its next fragment too.
        r.on_packet(frag(PktInfoId::FIRST_FRAG), false);
        assert!(matches!(r.on_packet(frag(0), true), Step::Drop(_)));
        assert!(matches!(r.on_packet(frag(PktInfoId::LAST_FRAG), false), Step::Drop(_)));
    }

    #[test]
    fn more_than_rsc_max_fragments_are_dropped() {
        let mut r = Rsc::new();
        r.on_packet(frag(PktInfoId::FIRST_FRAG), false);
        for _ in 1..RSC_MAX {
            assert_eq!(r.on_packet(frag(0), false), Step::Fragment { first: false, last: false });
        }
        assert!(matches!(r.on_packet(frag(PktInfoId::LAST_FRAG), true), Step::Drop(_)));
        assert!(!r.joining());
    }
}
