//! Faults the simulated host injects at the NVSP/RNDIS layer, written from
//! the host's side, sans I/O: what a lying host sends instead of a
//! completion or of a received frame. The simulated NIC arms them from
//! debugfs and applies them to its next packets; the guest must take each
//! without an oops, drop the bad packet with a message and go on.
//!
//! Two kinds of packet are faulted:
//! - the host's completion of a guest packet ([`Fault::completion`]): an
//!   extra completion naming no packet in flight (all-ones transaction
//!   id: a send section out of any range), the completion sent twice, its
//!   NVSP message left out or of a type no version defines;
//! - a transfer-page packet naming a received frame's RNDIS message
//!   ([`Fault::frame`]): a range past the end of the receive buffer or
//!   whose offset wraps 32 bits, a range longer than any RNDIS message, a
//!   page set that is not the receive buffer, an NVSP message that is not
//!   SEND_RNDIS_PKT, an RNDIS message longer than its range, packet data
//!   outside its message, an unknown RNDIS type, a frame shorter than an
//!   Ethernet header, a range longer than the receive section the host
//!   announced; and, truthfully, a frame sent as RSC fragments.
//!
//! A faulted transfer-page packet keeps its transaction id, so the guest's
//! completion still frees the receive-buffer slots the host took for it;
//! the frame itself is lost.

use super::rndis::{self, HEADER_SIZE};

/// One fault kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An extra completion, after the real one, whose transaction id is
    /// all ones: no packet the guest sent.
    BadCompletion,
    /// The real completion sent twice.
    StaleCompletion,
    /// The completion without its NVSP message (an empty payload). A
    /// VMBus packet's payload is whole 8-byte words, so a message cut
    /// anywhere short of that would come back padded with zeros, which for
    /// SEND_RNDIS_PKT_COMPLETE reads as a whole message.
    MalformedCompletion,
    /// The completion's NVSP message of a type no version defines.
    GarbageCompletion,
    /// The range ends past the receive buffer (it starts 4 bytes before
    /// the end).
    BadRange,
    /// The range's offset is near `u32::MAX`: offset plus length wraps 32
    /// bits.
    WrapRange,
    /// The range is longer than the largest RNDIS message
    /// ([`OVERSIZE_LEN`]), though inside the buffer.
    Oversize,
    /// The RNDIS message's `msg_len` is larger than its range.
    OversizeRndis,
    /// The RNDIS packet's `data_len` runs past the end of its message.
    OversizeData,
    /// The transfer-page set id is not the receive buffer's.
    BadSet,
    /// The packet's NVSP message is not SEND_RNDIS_PKT.
    BadNvsp,
    /// The RNDIS message type is one no version defines.
    MalformedRndis,
    /// The RNDIS packet carries 4 bytes of frame: shorter than an
    /// Ethernet header.
    Runt,
    /// The range is longer than the receive-buffer section the host
    /// announced (by 64 bytes), though inside the buffer and shorter than
    /// any RNDIS message limit.
    LongRange,
    /// Not a lie: the frame goes as [`RSC_SPLIT`] RSC fragments (in ranges
    /// of one transfer-page packet) though it fits one range, as a host
    /// that coalesces sends a large frame.
    RscSplit,
}

/// The fragments [`Fault::RscSplit`] cuts a frame into.
pub const RSC_SPLIT: usize = 3;

/// Which packets a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The host's completions of guest packets (control requests at
    /// probe, RNDIS packets after).
    Completion,
    /// Transfer-page packets that carry a received frame (an RNDIS data
    /// packet); control answers and indications are left alone.
    Frame,
}

/// A range longer than any RNDIS message a guest takes (a 64 KiB frame
/// and 512 bytes of headers), with room to spare.
pub const OVERSIZE_LEN: u32 = 65536 + 512 + 4096;
/// The transaction id of [`Fault::BadCompletion`]'s extra completion.
pub const BAD_TRANSACTION_ID: u64 = u64::MAX;
/// The NVSP message of [`Fault::BadNvsp`] and [`Fault::GarbageCompletion`]:
/// a type no version defines, and four bytes of zeros.
pub const GARBAGE_NVSP: [u8; 8] = [0x77, 0x77, 0x00, 0x7f, 0, 0, 0, 0];
/// The RNDIS type [`Fault::MalformedRndis`] writes.
pub const GARBAGE_RNDIS_TYPE: u32 = 0x7f77_7777;

impl Fault {
    /// Every fault, in the order of [`Fault::raw`].
    pub const ALL: [Fault; 15] = [
        Fault::BadCompletion,
        Fault::StaleCompletion,
        Fault::MalformedCompletion,
        Fault::GarbageCompletion,
        Fault::BadRange,
        Fault::WrapRange,
        Fault::Oversize,
        Fault::OversizeRndis,
        Fault::OversizeData,
        Fault::BadSet,
        Fault::BadNvsp,
        Fault::MalformedRndis,
        Fault::Runt,
        Fault::LongRange,
        Fault::RscSplit,
    ];

    /// The name debugfs takes.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::BadCompletion => "bad-completion",
            Fault::StaleCompletion => "stale-completion",
            Fault::MalformedCompletion => "malformed-completion",
            Fault::GarbageCompletion => "garbage-completion",
            Fault::BadRange => "bad-range",
            Fault::WrapRange => "wrap-range",
            Fault::Oversize => "oversize",
            Fault::OversizeRndis => "oversize-rndis",
            Fault::OversizeData => "oversize-data",
            Fault::BadSet => "bad-set",
            Fault::BadNvsp => "bad-nvsp",
            Fault::MalformedRndis => "malformed-rndis",
            Fault::Runt => "runt",
            Fault::LongRange => "long-range",
            Fault::RscSplit => "rsc-split",
        }
    }

    /// The fault named `name`.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// A number for the fault, 1..=15 (0 is none), to keep in an atomic.
    pub fn raw(self) -> u32 {
        let i = Fault::ALL.iter().position(|&f| f == self).unwrap_or(0);
        // CAST: fewer than 16 faults.
        i as u32 + 1
    }

    /// The fault of [`Fault::raw`] `raw`.
    pub fn from_raw(raw: u32) -> Option<Fault> {
        let i = raw.checked_sub(1)?;
        Fault::ALL.get(usize::try_from(i).ok()?).copied()
    }

    /// Which packets the fault hits.
    pub fn target(self) -> Target {
        match self {
            Fault::BadCompletion
            | Fault::StaleCompletion
            | Fault::MalformedCompletion
            | Fault::GarbageCompletion => Target::Completion,
            _ => Target::Frame,
        }
    }

    /// What goes to the guest instead of the completion of transaction
    /// `transaction_id`, whose NVSP message is `message`: one or two
    /// completions. The fault must target completions; any other gives the
    /// completion unchanged.
    pub fn completion<'a>(self, transaction_id: u64, message: &'a [u8]) -> Completions<'a> {
        let real = (transaction_id, message);
        let mut out = Completions { packets: [real, real], len: 1 };
        match self {
            Fault::BadCompletion => {
                out.packets[1] = (BAD_TRANSACTION_ID, message);
                out.len = 2;
            }
            Fault::StaleCompletion => out.len = 2,
            Fault::MalformedCompletion => out.packets[0].1 = &[],
            Fault::GarbageCompletion => out.packets[0].1 = &GARBAGE_NVSP,
            _ => {}
        }
        out
    }

    /// Rewrites a received frame's transfer-page packet: `message` is the
    /// RNDIS message the host is about to write into the receive buffer
    /// (changed in place), `packet` the packet naming it, `buffer_size` the
    /// receive buffer's size, `section_size` its sections'. Returns the packet to send. The fault must
    /// target frames and `message` be an RNDIS data packet; otherwise
    /// nothing changes.
    pub fn frame(self, message: &mut [u8], packet: TransferPages, buffer_size: u32, section_size: u32) -> TransferPages {
        let mut p = packet;
        match self {
            Fault::LongRange => {
                p.len = section_size.saturating_add(64);
                if p.offset.checked_add(p.len).is_none_or(|end| end > buffer_size) {
                    p.offset = 0;
                }
            }
            // The sender splits the frame itself.
            Fault::RscSplit => {}
            Fault::BadRange => p.offset = buffer_size.saturating_sub(4),
            Fault::WrapRange => p.offset = u32::MAX - 3,
            Fault::Oversize => {
                p.len = OVERSIZE_LEN;
                if p.offset.checked_add(OVERSIZE_LEN).is_none_or(|end| end > buffer_size) {
                    p.offset = 0;
                }
            }
            Fault::OversizeRndis => {
                let claimed = p.len.saturating_add(4096);
                put_u32(message, 4, claimed);
            }
            Fault::OversizeData => {
                // data_len (the packet body's second word) as long as the
                // whole message: it cannot fit behind data_offset.
                let msg_len = u32::try_from(message.len()).unwrap_or(u32::MAX);
                put_u32(message, HEADER_SIZE + 4, msg_len);
            }
            Fault::BadSet => p.set_id = p.set_id.wrapping_add(1),
            Fault::BadNvsp => p.nvsp_rndis = false,
            Fault::MalformedRndis => put_u32(message, 0, GARBAGE_RNDIS_TYPE),
            Fault::Runt => put_u32(message, HEADER_SIZE + 4, 4),
            Fault::BadCompletion
            | Fault::StaleCompletion
            | Fault::MalformedCompletion
            | Fault::GarbageCompletion => {}
        }
        p
    }
}

/// Whether `message` (an RNDIS message for the guest) carries a frame: the
/// messages [`Target::Frame`] faults hit.
pub fn is_frame(message: &[u8]) -> bool {
    message.first_chunk::<4>().map(|b| u32::from_le_bytes(*b)) == Some(rndis::msg::PACKET)
        && message.len() >= rndis::PACKET_HEADER_SIZE
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    if let Some(w) = bytes.get_mut(at..).and_then(|b| b.first_chunk_mut::<4>()) {
        *w = value.to_le_bytes();
    }
}

/// The host's completions that stand for one (see [`Fault::completion`]).
#[derive(Clone, Copy, Debug)]
pub struct Completions<'a> {
    packets: [(u64, &'a [u8]); 2],
    len: usize,
}

impl<'a> Completions<'a> {
    /// The completions to send, in order: transaction id and NVSP message.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &'a [u8])> + '_ {
        self.packets.iter().take(self.len).copied()
    }
}

/// A transfer-page packet naming one range of a transfer-page set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferPages {
    /// The transfer-page set (the receive buffer's id).
    pub set_id: u16,
    /// The range's byte offset in the set.
    pub offset: u32,
    /// The range's length.
    pub len: u32,
    /// Whether the packet's NVSP message is SEND_RNDIS_PKT (else
    /// [`GARBAGE_NVSP`]).
    pub nvsp_rndis: bool,
}
