//! The VMBus channel ring buffer, in Hyper-V's layout, for either end.
//!
//! A ring is a 4 KiB header page followed by a data area. The writer owns
//! `write_index` and `pending_send_sz`; the reader owns `read_index` and
//! `interrupt_mask`. Packets are 8-byte aligned: a 16-byte descriptor, the
//! type's own header, the payload, padding, then an 8-byte trailer that holds
//! the writer's previous write index in its upper half. A writer never fills
//! the ring completely, so `read == write` always means empty.
//!
//! [`Producer`] writes packets, [`Consumer`] reads them. The same two types
//! serve the guest (producer on the outbound ring, consumer on the inbound)
//! and a simulated host (the other way round). Every index, length, offset
//! and descriptor the peer wrote is copied, validated, and used once; a bad
//! one yields [`Corrupt`] and poisons the endpoint for good.
//!
//! Memory-ordering pairs, named at each site below:
//! - (A) producer's Release store of `write_index` / consumer's Acquire load:
//!   packet bytes are visible before the index that covers them.
//! - (B) consumer's Release store of `read_index` / producer's Acquire load:
//!   the consumer has finished copying bytes before the producer reuses them.
//! - (C) producer: publish `write_index`, then load `interrupt_mask` and
//!   `read_index`; consumer: store `interrupt_mask = 0`, then load
//!   `write_index`. All four are SeqCst, so one side always sees the other's
//!   store and no wakeup is lost (the C drivers' `virt_mb()` pairs).
//! - (D) producer: store `pending_send_sz`, then load `read_index`;
//!   consumer: store `read_index`, then load `pending_send_sz`; SeqCst, as (C).
//!
//! A SeqCst store is one locked `xchg` on x86: it is the full barrier these
//! pairs need and cheaper than a separate `fence(SeqCst)` (`mfence`).

use super::shared::{OutOfBounds, SharedMem};
use core::sync::atomic::Ordering;

/// Size of the ring header page that precedes the data area.
pub const HEADER_SIZE: usize = 4096;
/// Byte offset of `write_index` in the header.
pub const WRITE_INDEX_OFFSET: usize = 0;
/// Byte offset of `read_index` in the header.
pub const READ_INDEX_OFFSET: usize = 4;
/// Byte offset of `interrupt_mask` in the header.
pub const INTERRUPT_MASK_OFFSET: usize = 8;
/// Byte offset of `pending_send_sz` in the header.
pub const PENDING_SEND_SIZE_OFFSET: usize = 12;
/// Byte offset of `feature_bits` in the header.
pub const FEATURE_BITS_OFFSET: usize = 64;
/// Feature bit: the writer sets `pending_send_sz` when it waits for space.
pub const FEATURE_PENDING_SEND_SIZE: u32 = 1;

/// Size of a packet descriptor.
pub const DESCRIPTOR_SIZE: usize = 16;
/// Size of the trailer after each packet (the previous write index).
pub const TRAILER_SIZE: usize = 8;
/// Smallest data area accepted: room for one minimal packet and a gap.
pub const MIN_DATA_SIZE: usize = 64;
/// Largest data area accepted; keeps all index arithmetic inside `u32`.
pub const MAX_DATA_SIZE: usize = 1 << 30;

/// Descriptor type: data carried in the ring (`VM_PKT_DATA_INBAND`).
pub const PACKET_TYPE_INBAND: u16 = 6;
/// Descriptor type: data in the receive buffer's transfer pages
/// (`VM_PKT_DATA_USING_XFER_PAGES`).
pub const PACKET_TYPE_TRANSFER_PAGES: u16 = 7;
/// Descriptor type: data in guest pages named by PFN
/// (`VM_PKT_DATA_USING_GPA_DIRECT`).
pub const PACKET_TYPE_GPA_DIRECT: u16 = 9;
/// Descriptor type: completion of an earlier request (`VM_PKT_COMP`).
pub const PACKET_TYPE_COMPLETION: u16 = 11;
/// Descriptor flag: the receiver must send a completion
/// (`VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED`).
pub const FLAG_COMPLETION_REQUESTED: u16 = 1;

/// Page size that GPA-direct ranges are counted in.
pub const GPA_PAGE_SIZE: u32 = 4096;

/// The ring header page; mirrors C `struct hv_ring_buffer` up to `buffer[]`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RingHeader {
    /// Next byte the writer will fill, relative to the data area.
    pub write_index: u32,
    /// Next byte the reader will consume, relative to the data area.
    pub read_index: u32,
    /// Set by the reader while it polls: the writer need not signal.
    pub interrupt_mask: u32,
    /// Free space the blocked writer waits for, or 0.
    pub pending_send_sz: u32,
    /// Reserved.
    pub reserved1: [u32; 12],
    /// Bit 0: [`FEATURE_PENDING_SEND_SIZE`].
    pub feature_bits: u32,
    /// Pads the header to one 4 KiB page.
    pub reserved2: [u8; 4028],
}

/// Packet descriptor at the start of every packet; mirrors C
/// `struct vmpacket_descriptor`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketDescriptor {
    /// One of the `PACKET_TYPE_*` values.
    pub packet_type: u16,
    /// Offset of the payload from the descriptor, in units of 8 bytes.
    pub offset8: u16,
    /// Length of the packet without its trailer, in units of 8 bytes.
    pub len8: u16,
    /// `FLAG_*` bits.
    pub flags: u16,
    /// Transaction id, echoed by the completion.
    pub transaction_id: u64,
}

impl PacketDescriptor {
    /// The descriptor as two little-endian words, as it sits in the ring.
    pub fn to_words(&self) -> [u64; 2] {
        let w0 = u64::from(self.packet_type)
            | u64::from(self.offset8) << 16
            | u64::from(self.len8) << 32
            | u64::from(self.flags) << 48;
        [w0, self.transaction_id]
    }

    /// Decodes the two words of [`PacketDescriptor::to_words`].
    pub fn from_words(w: [u64; 2]) -> Self {
        // CAST: each field is the 16 bits selected by its shift.
        PacketDescriptor {
            packet_type: w[0] as u16,
            offset8: (w[0] >> 16) as u16,
            len8: (w[0] >> 32) as u16,
            flags: (w[0] >> 48) as u16,
            transaction_id: w[1],
        }
    }

    /// Decodes the 16 wire bytes (little-endian).
    pub fn from_bytes(b: &[u8; DESCRIPTOR_SIZE]) -> Self {
        let [t0, t1, o0, o1, l0, l1, f0, f1, x0, x1, x2, x3, x4, x5, x6, x7] = *b;
        PacketDescriptor {
            packet_type: u16::from_le_bytes([t0, t1]),
            offset8: u16::from_le_bytes([o0, o1]),
            len8: u16::from_le_bytes([l0, l1]),
            flags: u16::from_le_bytes([f0, f1]),
            transaction_id: u64::from_le_bytes([x0, x1, x2, x3, x4, x5, x6, x7]),
        }
    }

    /// Encodes the 16 wire bytes (little-endian).
    pub fn to_bytes(&self) -> [u8; DESCRIPTOR_SIZE] {
        let [t0, t1] = self.packet_type.to_le_bytes();
        let [o0, o1] = self.offset8.to_le_bytes();
        let [l0, l1] = self.len8.to_le_bytes();
        let [f0, f1] = self.flags.to_le_bytes();
        let [x0, x1, x2, x3, x4, x5, x6, x7] = self.transaction_id.to_le_bytes();
        [
            t0, t1, o0, o1, l0, l1, f0, f1, x0, x1, x2, x3, x4, x5, x6, x7,
        ]
    }
}

/// Header of a GPA-direct packet, followed by [`GpaRange`]s; mirrors C
/// `struct vmbus_packet_mpb_array` / `struct vmbus_channel_packet_page_buffer`
/// up to their range arrays.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpaDirectHeader {
    /// The packet descriptor.
    pub descriptor: PacketDescriptor,
    /// Reserved, zero.
    pub reserved: u32,
    /// Number of ranges that follow.
    pub range_count: u32,
}

/// One GPA range, followed on the wire by its page numbers (`u64` each);
/// mirrors C `struct hv_mpb_array` without `pfn_array[]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpaRange {
    /// Bytes in the range.
    pub byte_count: u32,
    /// Offset of the first byte within the first page.
    pub byte_offset: u32,
}

/// Header of a transfer-page packet, followed by [`TransferPageRange`]s;
/// mirrors C `struct vmtransfer_page_packet_header`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferPageHeader {
    /// The packet descriptor.
    pub descriptor: PacketDescriptor,
    /// Id of the transfer page set (the receive buffer's GPADL tag).
    pub transfer_page_set_id: u16,
    /// Whether the sender owns the set.
    pub sender_owns_set: u8,
    /// Reserved, zero.
    pub reserved: u8,
    /// Number of ranges that follow.
    pub range_count: u32,
}

/// One range of a transfer page set; mirrors C `struct vmtransfer_page_range`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferPageRange {
    /// Bytes in the range.
    pub byte_count: u32,
    /// Offset of the range in the transfer page set.
    pub byte_offset: u32,
}

/// What the peer got wrong. Any of these poisons the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corrupt {
    /// The peer's index is out of range or not 8-aligned.
    Index,
    /// A descriptor's length is shorter than the descriptor or longer than
    /// the bytes the writer published.
    Length,
    /// A descriptor's payload offset lies outside the packet.
    Offset,
    /// Unknown packet type or flags.
    Descriptor,
    /// A type-specific header (ranges, counts) is inconsistent.
    Header,
}

/// The ring memory itself does not have a usable shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// Data area not a multiple of 8, or outside
    /// [`MIN_DATA_SIZE`]..=[`MAX_DATA_SIZE`], or no room for the header.
    Size,
}

/// Why a packet could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// No complete packet is available: wait for a signal.
    Empty,
    /// The caller's buffer is smaller than the packet (the packet stays).
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
    },
    /// The ring is corrupt; the consumer is poisoned.
    Corrupt(Corrupt),
}

/// Why a packet could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// Not enough free space now; `needed` bytes (packet and trailer) must be
    /// free. See [`Producer::request_space`].
    Full {
        /// Bytes the packet needs, trailer included.
        needed: u32,
    },
    /// The packet can never fit this ring, or its arguments are invalid
    /// (payload offset or length over the 16-bit descriptor fields).
    TooLarge,
    /// The ring is corrupt; the producer is poisoned.
    Corrupt(Corrupt),
}

impl From<Corrupt> for ReadError {
    fn from(c: Corrupt) -> Self {
        ReadError::Corrupt(c)
    }
}

impl From<Corrupt> for WriteError {
    fn from(c: Corrupt) -> Self {
        WriteError::Corrupt(c)
    }
}

/// Whether to interrupt the peer (the caller performs the signal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Signal {
    /// Signal the peer.
    Yes,
    /// No signal needed.
    No,
}

/// A ring: header and data area, with the data size validated once.
///
/// # Invariants
///
/// `data.len() == size`, `size` is a multiple of 8 within
/// [`MIN_DATA_SIZE`]..=[`MAX_DATA_SIZE`].
#[derive(Clone, Copy)]
struct Ring<'a> {
    header: SharedMem<'a>,
    data: SharedMem<'a>,
    size: u32,
}

/// Shared-memory accesses that the invariants prove in bounds still return
/// `Result`; this folds the impossible case into a corrupt ring, never a
/// panic.
fn oob(_: OutOfBounds) -> Corrupt {
    Corrupt::Index
}

impl<'a> Ring<'a> {
    fn new(mem: SharedMem<'a>) -> Result<Self, LayoutError> {
        let data_len = mem
            .len()
            .checked_sub(HEADER_SIZE)
            .ok_or(LayoutError::Size)?;
        if data_len % 8 != 0 || !(MIN_DATA_SIZE..=MAX_DATA_SIZE).contains(&data_len) {
            return Err(LayoutError::Size);
        }
        let header = mem
            .subrange(0, HEADER_SIZE)
            .map_err(|_| LayoutError::Size)?;
        let data = mem
            .subrange(HEADER_SIZE, data_len)
            .map_err(|_| LayoutError::Size)?;
        let size = u32::try_from(data_len).map_err(|_| LayoutError::Size)?;
        Ok(Ring { header, data, size })
    }

    #[inline]
    fn load(&self, offset: usize, order: Ordering) -> Result<u32, Corrupt> {
        self.header.load_u32(offset, order).map_err(oob)
    }

    #[inline]
    fn store(&self, offset: usize, value: u32, order: Ordering) -> Result<(), Corrupt> {
        self.header.store_u32(offset, value, order).map_err(oob)
    }

    /// Loads an index the peer owns and checks it.
    #[inline]
    fn load_index(&self, offset: usize, order: Ordering) -> Result<u32, Corrupt> {
        let index = self.load(offset, order)?;
        if index >= self.size || index % 8 != 0 {
            return Err(Corrupt::Index);
        }
        Ok(index)
    }

    /// `index + n` modulo the ring size; `index < size` and `n <= size`.
    #[inline]
    fn advance(&self, index: u32, n: u32) -> u32 {
        // Both are below 2^30, so the sum cannot overflow.
        let sum = index.wrapping_add(n);
        if sum >= self.size {
            sum.wrapping_sub(self.size)
        } else {
            sum
        }
    }

    /// Bytes from `from` to `to` going forward around the ring.
    #[inline]
    fn distance(&self, from: u32, to: u32) -> u32 {
        if to >= from {
            to.wrapping_sub(from)
        } else {
            self.size.wrapping_sub(from).wrapping_add(to)
        }
    }

    /// Copies ring bytes starting at `pos`, wrapping at the end.
    #[inline]
    fn copy_out(&self, pos: u32, dst: &mut [u8]) -> Result<(), Corrupt> {
        let first = (self.size.wrapping_sub(pos) as usize).min(dst.len());
        let (a, b) = dst.split_at_mut(first);
        self.data.read_bytes(pos as usize, a).map_err(oob)?;
        if !b.is_empty() {
            self.data.read_bytes(0, b).map_err(oob)?;
        }
        Ok(())
    }

    /// Loads the 8-byte word at `pos`. Positions are 8-aligned and the
    /// size is a multiple of 8, so a word never wraps; one volatile 8-byte
    /// load, where a `memcpy` call would cost more than the data.
    #[inline(always)]
    fn get_u64(&self, pos: u32) -> Result<u64, Corrupt> {
        self.data.read_u64(pos as usize).map_err(oob)
    }

    /// Stores the 8-byte word at `pos` (8-aligned); returns the next position.
    #[inline(always)]
    fn put_u64(&self, pos: u32, value: u64) -> Result<u32, Corrupt> {
        self.data.write_u64(pos as usize, value).map_err(oob)?;
        Ok(self.advance(pos, 8))
    }

    /// Copies `src` into the ring at `pos`, wrapping; returns the next position.
    #[inline]
    fn copy_in(&self, pos: u32, src: &[u8]) -> Result<u32, Corrupt> {
        let first = (self.size.wrapping_sub(pos) as usize).min(src.len());
        let (a, b) = src.split_at(first);
        self.data.write_bytes(pos as usize, a).map_err(oob)?;
        if !b.is_empty() {
            self.data.write_bytes(0, b).map_err(oob)?;
        }
        // `src` is no longer than the free space, itself below `size`.
        Ok(self.advance(pos, src.len() as u32))
    }
}

/// Resets a ring header to empty and announces pending-send-size support,
/// as the side that allocates the ring (the guest) does before offering it.
pub fn init_ring(mem: SharedMem<'_>) -> Result<(), LayoutError> {
    let ring = Ring::new(mem)?;
    ring.header
        .zero(0, HEADER_SIZE)
        .map_err(|_| LayoutError::Size)?;
    ring.store(
        FEATURE_BITS_OFFSET,
        FEATURE_PENDING_SEND_SIZE,
        Ordering::Relaxed,
    )
    .map_err(|_| LayoutError::Size)?;
    Ok(())
}

/// One segment of a GPA-direct packet: a byte range over guest pages.
#[derive(Clone, Copy, Debug)]
pub struct GpaBuffer<'b> {
    /// Offset of the first byte within the first page.
    pub byte_offset: u32,
    /// Bytes in the range.
    pub byte_count: u32,
    /// Guest page numbers, one per page the range touches.
    pub pfns: &'b [u64],
}

/// A `{byte_count, byte_offset}` pair as the little-endian word it is on
/// the wire.
fn range_word(byte_count: u32, byte_offset: u32) -> u64 {
    u64::from(byte_count) | u64::from(byte_offset) << 32
}

/// Pages a range of `count` bytes starting at `offset` into a page touches.
fn pages_spanned(offset: u32, count: u32) -> Option<u32> {
    let end = (offset % GPA_PAGE_SIZE).checked_add(count)?;
    Some(end.div_ceil(GPA_PAGE_SIZE))
}

/// The writing end of a ring.
pub struct Producer<'a> {
    ring: Ring<'a>,
    /// Our write index: we own it, so it is never re-read from shared memory.
    write: u32,
    /// The last read index seen; free space only grows until it is reloaded.
    read_cache: u32,
    poisoned: Option<Corrupt>,
}

/// Bytes of type-specific header and payload that make up one packet.
struct Parts<'p> {
    descriptor: PacketDescriptor,
    /// The type-specific header word (GPA-direct, transfer pages).
    header: Option<u64>,
    /// GPA page numbers, written after `header` (GPA-direct only).
    gpa: &'p [GpaBuffer<'p>],
    /// Transfer-page ranges, written after `header` (transfer pages only).
    transfer: &'p [TransferPageRange],
    payload: &'p [&'p [u8]],
}

impl<'a> Producer<'a> {
    /// Attaches to the ring in `mem` (header page, then data) as its writer.
    pub fn new(mem: SharedMem<'a>) -> Result<Self, LayoutError> {
        let ring = Ring::new(mem)?;
        let mut p = Producer {
            ring,
            write: 0,
            read_cache: 0,
            poisoned: None,
        };
        // The write index is ours, but the memory may have been handed to us
        // by the peer: validate it once and remember the copy.
        match ring.load_index(WRITE_INDEX_OFFSET, Ordering::Relaxed) {
            Ok(w) => {
                p.write = w;
                p.read_cache = w;
            }
            Err(c) => p.poisoned = Some(c),
        }
        Ok(p)
    }

    /// Size of the data area in bytes.
    pub fn data_size(&self) -> u32 {
        self.ring.size
    }

    fn poison(&mut self, c: Corrupt) -> WriteError {
        self.poisoned = Some(c);
        WriteError::Corrupt(c)
    }

    /// Free bytes per the cached read index; the ring is never filled
    /// completely, so one byte less than the distance is usable.
    fn free(&self, read: u32) -> u32 {
        let used = self.ring.distance(read, self.write);
        self.ring.size.wrapping_sub(used)
    }

    /// Writes an in-band packet whose payload is the concatenation of
    /// `payload`.
    #[inline]
    pub fn write_inband(
        &mut self,
        transaction_id: u64,
        completion_requested: bool,
        payload: &[&[u8]],
    ) -> Result<Signal, WriteError> {
        let flags = if completion_requested {
            FLAG_COMPLETION_REQUESTED
        } else {
            0
        };
        self.write(Parts {
            descriptor: Self::descriptor(PACKET_TYPE_INBAND, flags, transaction_id),
            header: None,
            gpa: &[],
            transfer: &[],
            payload,
        })
    }

    /// Writes a completion for `transaction_id`.
    pub fn write_completion(
        &mut self,
        transaction_id: u64,
        payload: &[&[u8]],
    ) -> Result<Signal, WriteError> {
        self.write(Parts {
            descriptor: Self::descriptor(PACKET_TYPE_COMPLETION, 0, transaction_id),
            header: None,
            gpa: &[],
            transfer: &[],
            payload,
        })
    }

    /// Writes a GPA-direct packet: `ranges` describe guest pages, `payload`
    /// follows them in the ring. At least one range: a GPA-direct packet
    /// without any is refused ([`WriteError::TooLarge`]), as the host's
    /// reader ([`parse_gpa_direct`]) takes one for corruption.
    pub fn write_gpa_direct(
        &mut self,
        transaction_id: u64,
        completion_requested: bool,
        ranges: &[GpaBuffer<'_>],
        payload: &[&[u8]],
    ) -> Result<Signal, WriteError> {
        if ranges.is_empty() {
            return Err(WriteError::TooLarge);
        }
        let count = u32::try_from(ranges.len()).map_err(|_| WriteError::TooLarge)?;
        for r in ranges {
            if r.byte_count == 0
                || pages_spanned(r.byte_offset, r.byte_count) != Some(r.pfns.len() as u32)
            {
                return Err(WriteError::TooLarge);
            }
        }
        // reserved: u32 = 0, range_count: u32
        let head = u64::from(count) << 32;
        let flags = if completion_requested {
            FLAG_COMPLETION_REQUESTED
        } else {
            0
        };
        self.write(Parts {
            descriptor: Self::descriptor(PACKET_TYPE_GPA_DIRECT, flags, transaction_id),
            header: Some(head),
            gpa: ranges,
            transfer: &[],
            payload,
        })
    }

    /// Writes a transfer-page packet naming `ranges` of transfer page set
    /// `set_id` (the host's receive path), with COMPLETION_REQUESTED set as
    /// Hyper-V and OpenVMM write them: the ranges stay the guest's until it
    /// completes the transaction.
    pub fn write_transfer_pages(
        &mut self,
        transaction_id: u64,
        set_id: u16,
        ranges: &[TransferPageRange],
        payload: &[&[u8]],
    ) -> Result<Signal, WriteError> {
        let count = u32::try_from(ranges.len()).map_err(|_| WriteError::TooLarge)?;
        // transfer_page_set_id: u16, sender_owns_set: u8 = 0, reserved: u8,
        // range_count: u32
        let head = u64::from(set_id) | u64::from(count) << 32;
        self.write(Parts {
            descriptor: Self::descriptor(
                PACKET_TYPE_TRANSFER_PAGES,
                FLAG_COMPLETION_REQUESTED,
                transaction_id,
            ),
            header: Some(head),
            gpa: &[],
            transfer: ranges,
            payload,
        })
    }

    fn descriptor(packet_type: u16, flags: u16, transaction_id: u64) -> PacketDescriptor {
        PacketDescriptor {
            packet_type,
            offset8: 0,
            len8: 0,
            flags,
            transaction_id,
        }
    }

    /// Gathers the packet straight into the ring, publishes it, and decides
    /// whether the reader needs a signal.
    #[inline]
    fn write(&mut self, mut parts: Parts<'_>) -> Result<Signal, WriteError> {
        if let Some(c) = self.poisoned {
            return Err(WriteError::Corrupt(c));
        }
        let mut header_len: usize = if parts.header.is_some() { 8 } else { 0 };
        for g in parts.gpa {
            let pfn_bytes = g.pfns.len().checked_mul(8).ok_or(WriteError::TooLarge)?;
            header_len = header_len
                .checked_add(8)
                .and_then(|n| n.checked_add(pfn_bytes))
                .ok_or(WriteError::TooLarge)?;
        }
        let transfer_bytes = parts
            .transfer
            .len()
            .checked_mul(8)
            .ok_or(WriteError::TooLarge)?;
        header_len = header_len
            .checked_add(transfer_bytes)
            .ok_or(WriteError::TooLarge)?;
        let mut payload_len: usize = 0;
        for p in parts.payload {
            payload_len = payload_len
                .checked_add(p.len())
                .ok_or(WriteError::TooLarge)?;
        }
        let offset = DESCRIPTOR_SIZE
            .checked_add(header_len)
            .ok_or(WriteError::TooLarge)?;
        let len = offset
            .checked_add(payload_len)
            .ok_or(WriteError::TooLarge)?;
        let padded = len
            .checked_next_multiple_of(8)
            .ok_or(WriteError::TooLarge)?;
        let offset8 = u16::try_from(offset / 8).map_err(|_| WriteError::TooLarge)?;
        let len8 = u16::try_from(padded / 8).map_err(|_| WriteError::TooLarge)?;
        // `padded` fits in 16 bits of 8-byte units (checked just above), so
        // plain arithmetic on it below cannot overflow or underflow.
        let total = padded + TRAILER_SIZE;
        // A packet must fit with at least 8 bytes to spare (never full).
        if offset % 8 != 0 || total >= self.ring.size as usize {
            return Err(WriteError::TooLarge);
        }
        let total = total as u32;

        if self.free(self.read_cache) <= total {
            // (B) Acquire pairs with the consumer's Release store of
            // read_index: its copies out of the space we reclaim are done.
            match self.ring.load_index(READ_INDEX_OFFSET, Ordering::Acquire) {
                Ok(r) => self.read_cache = r,
                Err(c) => return Err(self.poison(c)),
            }
            if self.free(self.read_cache) <= total {
                return Err(WriteError::Full { needed: total });
            }
        }

        let old_write = self.write;
        parts.descriptor.offset8 = offset8;
        parts.descriptor.len8 = len8;
        let ring = self.ring;
        let [w0, w1] = parts.descriptor.to_words();
        let mut pos = ring.put_u64(old_write, w0)?;
        pos = ring.put_u64(pos, w1)?;
        let pad = padded - len;
        if pad != 0 {
            // Zero the packet's last word first; the payload then overwrites
            // its head and the padding is left zero, without a third copy.
            let last = ring.advance(old_write, (padded - 8) as u32);
            ring.put_u64(last, 0)?;
        }
        if let Some(h) = parts.header {
            pos = ring.put_u64(pos, h)?;
        }
        for g in parts.gpa {
            pos = ring.put_u64(pos, range_word(g.byte_count, g.byte_offset))?;
            for &pfn in g.pfns {
                pos = ring.put_u64(pos, pfn)?;
            }
        }
        for t in parts.transfer {
            pos = ring.put_u64(pos, range_word(t.byte_count, t.byte_offset))?;
        }
        for p in parts.payload {
            pos = ring.copy_in(pos, p)?;
        }
        pos = ring.advance(pos, pad as u32);

        // The trailer names where this packet started, as Hyper-V expects.
        pos = ring.put_u64(pos, u64::from(old_write) << 32)?;
        self.write = pos;

        // (A) The packet bytes above are visible before the index (SeqCst
        // includes Release). (C) SeqCst store here and SeqCst loads below:
        // the mask and read index are read after write_index is visible;
        // pairs with the mask store and write_index load in
        // `Consumer::end_poll`.
        ring.store(WRITE_INDEX_OFFSET, pos, Ordering::SeqCst)?;
        if ring.load(INTERRUPT_MASK_OFFSET, Ordering::SeqCst)? != 0 {
            return Ok(Signal::No);
        }
        // Signal only on the empty-to-non-empty transition: the reader had
        // consumed (and committed) everything before our packet.
        let read = match ring.load_index(READ_INDEX_OFFSET, Ordering::SeqCst) {
            Ok(r) => r,
            Err(c) => return Err(self.poison(c)),
        };
        self.read_cache = read;
        Ok(if read == old_write {
            Signal::Yes
        } else {
            Signal::No
        })
    }

    /// After [`WriteError::Full`]: asks the reader to signal once `needed`
    /// bytes are free. Returns `true` if they already are (retry now, no
    /// signal will come); otherwise wait for the signal, then retry.
    pub fn request_space(&mut self, needed: u32) -> Result<bool, WriteError> {
        if let Some(c) = self.poisoned {
            return Err(WriteError::Corrupt(c));
        }
        self.ring
            .store(PENDING_SEND_SIZE_OFFSET, needed, Ordering::SeqCst)?;
        // (D) SeqCst store above, SeqCst load here: pending_send_sz is
        // visible before we look at read_index again; pairs with the
        // read_index store and pending_send_sz load in `Consumer::commit`.
        let read = match self.ring.load_index(READ_INDEX_OFFSET, Ordering::SeqCst) {
            Ok(r) => r,
            Err(c) => return Err(self.poison(c)),
        };
        self.read_cache = read;
        if self.free(read) > needed {
            self.ring
                .store(PENDING_SEND_SIZE_OFFSET, 0, Ordering::Relaxed)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Withdraws a [`Producer::request_space`] once the write succeeded.
    pub fn clear_space_request(&mut self) -> Result<(), WriteError> {
        self.ring
            .store(PENDING_SEND_SIZE_OFFSET, 0, Ordering::Relaxed)?;
        Ok(())
    }
}

/// A packet found by [`Consumer::read_packet`]: its validated descriptor and
/// where its parts lie in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// The descriptor as copied and validated.
    pub descriptor: PacketDescriptor,
    /// Offset of the payload (after type-specific headers) in the packet.
    pub data_offset: usize,
    /// Length of the packet without trailer (a multiple of 8).
    pub len: usize,
}

impl PacketInfo {
    /// The type-specific header (between descriptor and payload) within
    /// `buf`, the buffer the packet was read into.
    pub fn header<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        buf.get(DESCRIPTOR_SIZE..self.data_offset).unwrap_or(&[])
    }

    /// The payload within `buf` (it includes the writer's padding).
    pub fn payload<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        buf.get(self.data_offset..self.len).unwrap_or(&[])
    }
}

/// The reading end of a ring.
///
/// A batch, interrupt-driven or polled (NAPI), is: [`Consumer::begin_poll`];
/// [`Consumer::read_packet`] until [`ReadError::Empty`] (or the budget runs
/// out), with [`Consumer::commit`] now and then to give the writer room;
/// [`Consumer::end_poll`]; and another batch at once if it says `more`. The
/// writer signals only when it finds the committed read index equal to where
/// its packet starts, so a reader that skipped `end_poll`'s re-check could
/// sleep on a non-empty ring.
pub struct Consumer<'a> {
    ring: Ring<'a>,
    /// Next packet to read; ahead of the shared read_index until `commit`.
    read: u32,
    /// The read index last published.
    committed: u32,
    /// The last valid write index seen; reloaded when it is used up.
    write_cache: u32,
    poisoned: Option<Corrupt>,
}

impl<'a> Consumer<'a> {
    /// Attaches to the ring in `mem` (header page, then data) as its reader.
    pub fn new(mem: SharedMem<'a>) -> Result<Self, LayoutError> {
        let ring = Ring::new(mem)?;
        let mut c = Consumer {
            ring,
            read: 0,
            committed: 0,
            write_cache: 0,
            poisoned: None,
        };
        match ring.load_index(READ_INDEX_OFFSET, Ordering::Relaxed) {
            Ok(r) => {
                c.read = r;
                c.committed = r;
                c.write_cache = r;
            }
            Err(e) => c.poisoned = Some(e),
        }
        Ok(c)
    }

    /// Size of the data area in bytes.
    pub fn data_size(&self) -> u32 {
        self.ring.size
    }

    /// Whether the consumer has been poisoned, and why.
    pub fn poisoned(&self) -> Option<Corrupt> {
        self.poisoned
    }

    fn poison(&mut self, c: Corrupt) -> ReadError {
        self.poisoned = Some(c);
        ReadError::Corrupt(c)
    }

    /// Bytes published and not yet read, reloading the write index if the
    /// cached one is used up.
    #[inline]
    fn available(&mut self) -> Result<u32, Corrupt> {
        if self.write_cache == self.read {
            // (A) Acquire pairs with the producer's Release store: the
            // packet bytes are visible once the index is.
            self.write_cache = self
                .ring
                .load_index(WRITE_INDEX_OFFSET, Ordering::Acquire)?;
        }
        Ok(self.ring.distance(self.read, self.write_cache))
    }

    /// Copies the next packet (descriptor, headers, payload; no trailer) into
    /// `buf` and moves past it. The read index is published by
    /// [`Consumer::commit`] or [`Consumer::end_poll`], so the writer does not
    /// see the space until then.
    #[inline]
    pub fn read_packet(&mut self, buf: &mut [u8]) -> Result<PacketInfo, ReadError> {
        if let Some(c) = self.poisoned {
            return Err(ReadError::Corrupt(c));
        }
        let avail = match self.available() {
            Ok(a) => a,
            Err(c) => return Err(self.poison(c)),
        };
        if avail == 0 {
            return Err(ReadError::Empty);
        }
        // Anything published is whole packets; less than a minimal packet
        // means the writer's index is wrong.
        if (avail as usize) < DESCRIPTOR_SIZE + TRAILER_SIZE {
            return Err(self.poison(Corrupt::Length));
        }
        let second = self.ring.advance(self.read, 8);
        let words = match (self.ring.get_u64(self.read), self.ring.get_u64(second)) {
            (Ok(w0), Ok(w1)) => [w0, w1],
            (Err(c), _) | (_, Err(c)) => return Err(self.poison(c)),
        };
        let desc = PacketDescriptor::from_words(words);
        // From 16-bit fields: at most 2^19, no overflow in what follows.
        let len = usize::from(desc.len8) * 8;
        let data_offset = usize::from(desc.offset8) * 8;
        if len < DESCRIPTOR_SIZE || len + TRAILER_SIZE > avail as usize {
            return Err(self.poison(Corrupt::Length));
        }
        if data_offset < DESCRIPTOR_SIZE || data_offset > len {
            return Err(self.poison(Corrupt::Offset));
        }
        match desc.packet_type {
            PACKET_TYPE_INBAND
            | PACKET_TYPE_TRANSFER_PAGES
            | PACKET_TYPE_GPA_DIRECT
            | PACKET_TYPE_COMPLETION => {}
            _ => return Err(self.poison(Corrupt::Descriptor)),
        }
        if desc.flags & !FLAG_COMPLETION_REQUESTED != 0 {
            return Err(self.poison(Corrupt::Descriptor));
        }
        let Some((head, rest)) = buf
            .get_mut(..len)
            .and_then(|b| b.split_first_chunk_mut::<DESCRIPTOR_SIZE>())
        else {
            return Err(ReadError::BufferTooSmall { needed: len });
        };
        // The descriptor bytes we validated, not a second read of them.
        let (h0, h1) = head.split_at_mut(8);
        h0.copy_from_slice(&words[0].to_le_bytes());
        h1.copy_from_slice(&words[1].to_le_bytes());
        // `len < 2^19` and `read < size`, so this cannot overflow.
        let body = self.ring.advance(self.read, DESCRIPTOR_SIZE as u32);
        if let Err(c) = self.ring.copy_out(body, rest) {
            return Err(self.poison(c));
        }
        self.read = self.ring.advance(self.read, (len + TRAILER_SIZE) as u32);
        Ok(PacketInfo {
            descriptor: desc,
            data_offset,
            len,
        })
    }

    /// Publishes the read index for everything read so far. Returns
    /// [`Signal::Yes`] when this frees the space a blocked writer asked for
    /// with `pending_send_sz`.
    pub fn commit(&mut self) -> Result<Signal, ReadError> {
        if let Some(c) = self.poisoned {
            return Err(ReadError::Corrupt(c));
        }
        if self.read == self.committed {
            return Ok(Signal::No);
        }
        let bytes_read = self.ring.distance(self.committed, self.read);
        self.committed = self.read;
        // (B) Our copies out of the freed bytes are done before the writer
        // can see the space (SeqCst includes Release). (D) SeqCst, with the
        // pending_send_sz load below; pairs with `Producer::request_space`.
        // One store per batch, so the full barrier's cost is amortised.
        if let Err(c) = self
            .ring
            .store(READ_INDEX_OFFSET, self.read, Ordering::SeqCst)
        {
            return Err(self.poison(c));
        }
        let ring = self.ring;
        let features = ring
            .load(FEATURE_BITS_OFFSET, Ordering::Relaxed)
            .map_err(|c| self.poison(c))?;
        if features & FEATURE_PENDING_SEND_SIZE == 0 {
            return Ok(Signal::No);
        }
        let pending = ring
            .load(PENDING_SEND_SIZE_OFFSET, Ordering::SeqCst)
            .map_err(|c| self.poison(c))?;
        if pending == 0 {
            return Ok(Signal::No);
        }
        let write = match ring.load_index(WRITE_INDEX_OFFSET, Ordering::Acquire) {
            Ok(w) => w,
            Err(c) => return Err(self.poison(c)),
        };
        let free_now = ring.size.wrapping_sub(ring.distance(self.read, write));
        // Signal only when this commit crossed the threshold; if the writer
        // moved its index meanwhile the subtraction may not hold, and a
        // spare signal is harmless where a missing one is not.
        let crossed = match free_now.checked_sub(bytes_read) {
            Some(free_before) => free_before <= pending && free_now > pending,
            None => free_now > pending,
        };
        Ok(if crossed { Signal::Yes } else { Signal::No })
    }

    /// Masks the writer's signals while the reader polls (NAPI).
    pub fn begin_poll(&mut self) -> Result<(), ReadError> {
        if let Some(c) = self.poisoned {
            return Err(ReadError::Corrupt(c));
        }
        self.ring
            // SeqCst: the mask is visible before the reads that follow, as
            // the C reader's barrier after setting it ensures.
            .store(INTERRUPT_MASK_OFFSET, 1, Ordering::SeqCst)
            .map_err(|c| self.poison(c))?;
        Ok(())
    }

    /// Ends a batch: commits, unmasks signals, and reports whether data
    /// arrived meanwhile (`more == true`: poll again, no signal will come).
    pub fn end_poll(&mut self) -> Result<EndPoll, ReadError> {
        let signal_writer = self.commit()?;
        self.ring
            // (C) SeqCst store, then SeqCst load of write_index: pairs with
            // the producer's write_index store and mask load.
            .store(INTERRUPT_MASK_OFFSET, 0, Ordering::SeqCst)
            .map_err(|c| self.poison(c))?;
        let write = match self.ring.load_index(WRITE_INDEX_OFFSET, Ordering::SeqCst) {
            Ok(w) => w,
            Err(c) => return Err(self.poison(c)),
        };
        self.write_cache = write;
        Ok(EndPoll {
            more: write != self.read,
            signal_writer,
        })
    }
}

/// Outcome of [`Consumer::end_poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndPoll {
    /// Packets arrived after the last read: poll again.
    pub more: bool,
    /// The commit freed space a blocked writer waits for: signal it.
    pub signal_writer: Signal,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let chunk = b.get(at..at.checked_add(4)?)?;
    let mut w = [0u8; 4];
    w.copy_from_slice(chunk);
    Some(u32::from_le_bytes(w))
}

/// Checks a transfer-page packet's header (from [`PacketInfo::header`]) and
/// returns its id and ranges, read from the local copy.
pub fn parse_transfer_pages(header: &[u8]) -> Result<(u16, TransferPageRanges<'_>), Corrupt> {
    let id = header
        .first_chunk::<2>()
        .map(|b| u16::from_le_bytes(*b))
        .ok_or(Corrupt::Header)?;
    let count = u32_at(header, 4).ok_or(Corrupt::Header)? as usize;
    let ranges = header.get(8..).ok_or(Corrupt::Header)?;
    if count.checked_mul(8) != Some(ranges.len()) {
        return Err(Corrupt::Header);
    }
    Ok((id, TransferPageRanges { rest: ranges }))
}

/// Ranges of a transfer-page packet, decoded from the caller's copy.
#[derive(Clone, Debug)]
pub struct TransferPageRanges<'b> {
    rest: &'b [u8],
}

impl Iterator for TransferPageRanges<'_> {
    type Item = TransferPageRange;

    fn next(&mut self) -> Option<TransferPageRange> {
        let r = TransferPageRange {
            byte_count: u32_at(self.rest, 0)?,
            byte_offset: u32_at(self.rest, 4)?,
        };
        self.rest = self.rest.get(8..)?;
        Some(r)
    }
}

/// Checks a GPA-direct packet's header (from [`PacketInfo::header`]): at
/// least one range, every range names exactly the pages it spans, and the
/// ranges fill the header.
pub fn parse_gpa_direct(header: &[u8]) -> Result<GpaRanges<'_>, Corrupt> {
    let count = u32_at(header, 4).ok_or(Corrupt::Header)?;
    // A GPA-direct packet describes guest memory: one with no range is
    // not a packet any writer sends (ours refuses to).
    if count == 0 {
        return Err(Corrupt::Header);
    }
    let ranges = header.get(8..).ok_or(Corrupt::Header)?;
    // One pass to validate, bounded by `count` and by the header length.
    let mut rest = ranges;
    for _ in 0..count {
        let byte_count = u32_at(rest, 0).ok_or(Corrupt::Header)?;
        let byte_offset = u32_at(rest, 4).ok_or(Corrupt::Header)?;
        let pages = pages_spanned(byte_offset, byte_count).ok_or(Corrupt::Header)? as usize;
        if byte_count == 0 {
            return Err(Corrupt::Header);
        }
        let skip = pages
            .checked_mul(8)
            .and_then(|n| n.checked_add(8))
            .ok_or(Corrupt::Header)?;
        rest = rest.get(skip..).ok_or(Corrupt::Header)?;
    }
    if !rest.is_empty() {
        return Err(Corrupt::Header);
    }
    Ok(GpaRanges { rest: ranges })
}

/// Ranges of a validated GPA-direct packet: each range with its page-number
/// bytes (8 bytes per page, little-endian).
#[derive(Clone, Debug)]
pub struct GpaRanges<'b> {
    rest: &'b [u8],
}

impl<'b> Iterator for GpaRanges<'b> {
    type Item = (GpaRange, &'b [u8]);

    fn next(&mut self) -> Option<(GpaRange, &'b [u8])> {
        let range = GpaRange {
            byte_count: u32_at(self.rest, 0)?,
            byte_offset: u32_at(self.rest, 4)?,
        };
        let pages = pages_spanned(range.byte_offset, range.byte_count)? as usize;
        let end = pages.checked_mul(8)?.checked_add(8)?;
        let pfns = self.rest.get(8..end)?;
        self.rest = self.rest.get(end..)?;
        Some((range, pfns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: usize = 256;
    const WORDS: usize = (HEADER_SIZE + DATA) / 8;

    fn ring(buf: &mut [u64]) -> SharedMem<'_> {
        let mem = SharedMem::from_slice(buf);
        init_ring(mem).unwrap();
        mem
    }

    #[test]
    fn layout_matches_hyperv() {
        assert_eq!(core::mem::size_of::<RingHeader>(), HEADER_SIZE);
        assert_eq!(
            core::mem::offset_of!(RingHeader, pending_send_sz),
            PENDING_SEND_SIZE_OFFSET
        );
        assert_eq!(
            core::mem::offset_of!(RingHeader, feature_bits),
            FEATURE_BITS_OFFSET
        );
        assert_eq!(core::mem::size_of::<PacketDescriptor>(), 16);
        assert_eq!(core::mem::size_of::<GpaDirectHeader>(), 24);
        assert_eq!(core::mem::size_of::<TransferPageHeader>(), 24);
        assert_eq!(core::mem::offset_of!(TransferPageHeader, range_count), 20);
        assert_eq!(core::mem::size_of::<GpaRange>(), 8);
        assert_eq!(core::mem::size_of::<TransferPageRange>(), 8);
    }

    #[test]
    fn inband_round_trip_with_trailer_and_signal() {
        let mut buf = [0u64; WORDS];
        let mem = ring(&mut buf);
        let mut p = Producer::new(mem).unwrap();
        let mut c = Consumer::new(mem).unwrap();
        assert_eq!(p.write_inband(7, true, &[b"abc", b"de"]), Ok(Signal::Yes));
        // Not empty before the second packet: no signal.
        assert_eq!(p.write_inband(8, false, &[b"x"]), Ok(Signal::No));
        // 16 + 5 -> 24 bytes, then the trailer with the previous write index 0.
        let mut trailer = [0u8; 8];
        mem.subrange(HEADER_SIZE, DATA)
            .unwrap()
            .read_bytes(24, &mut trailer)
            .unwrap();
        assert_eq!(u64::from_le_bytes(trailer), 0);
        mem.subrange(HEADER_SIZE, DATA)
            .unwrap()
            .read_bytes(56, &mut trailer)
            .unwrap();
        assert_eq!(u64::from_le_bytes(trailer), 32 << 32);

        let mut out = [0u8; 64];
        let info = c.read_packet(&mut out).unwrap();
        assert_eq!(info.descriptor.packet_type, PACKET_TYPE_INBAND);
        assert_eq!(info.descriptor.flags, FLAG_COMPLETION_REQUESTED);
        assert_eq!(info.descriptor.transaction_id, 7);
        assert_eq!(&info.payload(&out)[..5], b"abcde");
        let info = c.read_packet(&mut out).unwrap();
        assert_eq!(&info.payload(&out)[..1], b"x");
        assert_eq!(c.read_packet(&mut out), Err(ReadError::Empty));
        // Nothing committed yet: the writer still sees the old read index.
        assert_eq!(mem.load_u32(READ_INDEX_OFFSET, Ordering::Relaxed), Ok(0));
        assert_eq!(
            c.end_poll(),
            Ok(EndPoll {
                more: false,
                signal_writer: Signal::No
            })
        );
        assert_eq!(mem.load_u32(READ_INDEX_OFFSET, Ordering::Relaxed), Ok(64));
        // Empty again: the next packet signals.
        assert_eq!(p.write_completion(7, &[b"ok"]), Ok(Signal::Yes));
    }

    #[test]
    fn masked_reader_gets_no_signal_but_sees_more() {
        let mut buf = [0u64; WORDS];
        let mem = ring(&mut buf);
        let mut p = Producer::new(mem).unwrap();
        let mut c = Consumer::new(mem).unwrap();
        c.begin_poll().unwrap();
        assert_eq!(p.write_inband(1, false, &[&[1; 8]]), Ok(Signal::No));
        assert!(c.end_poll().unwrap().more);
        let mut out = [0u8; 64];
        c.read_packet(&mut out).unwrap();
        assert!(!c.end_poll().unwrap().more);
    }

    #[test]
    fn never_fills_completely_and_pending_send_size_signals_once() {
        let mut buf = [0u64; WORDS];
        let mem = ring(&mut buf);
        let mut p = Producer::new(mem).unwrap();
        let mut c = Consumer::new(mem).unwrap();
        // Each packet: 16 + 40 + 8 = 64 bytes; four would fill 256 exactly.
        for i in 0..3 {
            assert!(p.write_inband(i, false, &[&[i as u8; 40]]).is_ok());
        }
        assert_eq!(
            p.write_inband(3, false, &[&[3; 40]]),
            Err(WriteError::Full { needed: 64 })
        );
        assert_eq!(p.request_space(64), Ok(false));
        let mut out = [0u8; 64];
        c.read_packet(&mut out).unwrap();
        // 128 free after this commit: crosses 64.
        assert_eq!(c.commit(), Ok(Signal::Yes));
        c.read_packet(&mut out).unwrap();
        assert_eq!(c.commit(), Ok(Signal::No), "already past the threshold");
        assert!(p.write_inband(3, false, &[&[3; 40]]).is_ok());
        p.clear_space_request().unwrap();
        assert_eq!(
            mem.load_u32(PENDING_SEND_SIZE_OFFSET, Ordering::Relaxed),
            Ok(0)
        );
    }

    #[test]
    fn too_large_and_small_buffers_are_not_corruption() {
        let mut buf = [0u64; WORDS];
        let mem = ring(&mut buf);
        let mut p = Producer::new(mem).unwrap();
        let mut c = Consumer::new(mem).unwrap();
        assert_eq!(
            p.write_inband(0, false, &[&[0; 240]]),
            Err(WriteError::TooLarge)
        );
        assert!(p.write_inband(0, false, &[&[0; 40]]).is_ok());
        let mut small = [0u8; 32];
        assert_eq!(
            c.read_packet(&mut small),
            Err(ReadError::BufferTooSmall { needed: 56 })
        );
        let mut out = [0u8; 64];
        assert!(c.read_packet(&mut out).is_ok());
    }

    #[test]
    fn gpa_direct_and_transfer_pages_round_trip() {
        let mut buf = [0u64; WORDS];
        let mem = ring(&mut buf);
        let mut p = Producer::new(mem).unwrap();
        let mut c = Consumer::new(mem).unwrap();
        let pfns = [0x1234, 0x5678];
        let gpa = [GpaBuffer {
            byte_offset: 4000,
            byte_count: 200,
            pfns: &pfns,
        }];
        assert!(p.write_gpa_direct(9, true, &gpa, &[b"req"]).is_ok());
        let bad = [GpaBuffer {
            byte_offset: 0,
            byte_count: 200,
            pfns: &pfns,
        }];
        assert_eq!(
            p.write_gpa_direct(9, true, &bad, &[]),
            Err(WriteError::TooLarge)
        );
        let mut out = [0u8; 128];
        let info = c.read_packet(&mut out).unwrap();
        assert_eq!(info.descriptor.packet_type, PACKET_TYPE_GPA_DIRECT);
        assert_eq!(info.data_offset, 16 + 8 + 8 + 16);
        let mut ranges = parse_gpa_direct(info.header(&out)).unwrap();
        let (range, pfn_bytes) = ranges.next().unwrap();
        assert_eq!(
            range,
            GpaRange {
                byte_count: 200,
                byte_offset: 4000
            }
        );
        assert_eq!(&pfn_bytes[8..16], &0x5678u64.to_le_bytes());
        assert!(ranges.next().is_none());
        assert_eq!(&info.payload(&out)[..3], b"req");

        let xfer = [
            TransferPageRange {
                byte_count: 10,
                byte_offset: 20,
            },
            TransferPageRange {
                byte_count: 30,
                byte_offset: 40,
            },
        ];
        assert!(p.write_transfer_pages(5, 0xcafe, &xfer, &[]).is_ok());
        let info = c.read_packet(&mut out).unwrap();
        // As Hyper-V writes them: the guest must complete the ranges.
        assert_eq!(info.descriptor.flags, FLAG_COMPLETION_REQUESTED);
        let (id, ranges) = parse_transfer_pages(info.header(&out)).unwrap();
        assert_eq!(id, 0xcafe);
        assert!(ranges.eq(xfer.iter().copied()));
    }

    #[test]
    fn corrupt_headers_are_typed_errors() {
        assert_eq!(
            parse_transfer_pages(&[0; 8 + 7]).err(),
            Some(Corrupt::Header)
        );
        let mut h = [0u8; 16];
        h[4] = 2; // two ranges claimed, room for less than one
        assert_eq!(parse_transfer_pages(&h).err(), Some(Corrupt::Header));
        assert_eq!(parse_gpa_direct(&h).err(), Some(Corrupt::Header));
        h[4] = 1;
        h[8] = 1; // one byte at offset 0: one page, but no pfn follows
        assert_eq!(parse_gpa_direct(&h).err(), Some(Corrupt::Header));
        let mut z = [0u8; 24];
        z[4] = 1; // zero-length range
        assert_eq!(parse_gpa_direct(&z).err(), Some(Corrupt::Header));
        // No range at all: an 8-byte header that claims none.
        assert_eq!(parse_gpa_direct(&[0u8; 8]).err(), Some(Corrupt::Header));
    }

    #[test]
    fn gpa_direct_without_ranges_is_refused() {
        let mut buf = [0u64; WORDS];
        let mem = ring(&mut buf);
        let mut p = Producer::new(mem).unwrap();
        let mut c = Consumer::new(mem).unwrap();
        assert_eq!(
            p.write_gpa_direct(1, true, &[], &[b"payload"]),
            Err(WriteError::TooLarge)
        );
        // Nothing was written, and the producer is not poisoned.
        let mut out = [0u8; 64];
        assert_eq!(c.read_packet(&mut out).err(), Some(ReadError::Empty));
        assert!(p.write_inband(2, false, &[b"next"]).is_ok());
    }

    fn corrupt_with(edit: impl Fn(SharedMem<'_>)) -> ReadError {
        let mut buf = [0u64; WORDS];
        let mem = ring(&mut buf);
        let mut p = Producer::new(mem).unwrap();
        let mut c = Consumer::new(mem).unwrap();
        assert!(p.write_inband(1, false, &[&[0xaa; 24]]).is_ok());
        edit(mem);
        let mut out = [0u8; 256];
        let first = c.read_packet(&mut out).unwrap_err();
        // Poisoned: the same error again, without touching the ring.
        assert_eq!(c.read_packet(&mut out).unwrap_err(), first);
        first
    }

    fn set_desc(mem: SharedMem<'_>, at: usize, value: u16) {
        mem.write_bytes(HEADER_SIZE + at, &value.to_le_bytes())
            .unwrap();
    }

    #[test]
    fn malformed_rings_poison_the_consumer() {
        use Corrupt::*;
        let e = |c| ReadError::Corrupt(c);
        assert_eq!(
            corrupt_with(|m| m.store_u32(0, DATA as u32, Ordering::Relaxed).unwrap()),
            e(Index)
        );
        assert_eq!(
            corrupt_with(|m| m.store_u32(0, 4, Ordering::Relaxed).unwrap()),
            e(Index)
        );
        assert_eq!(
            corrupt_with(|m| m.store_u32(0, 8, Ordering::Relaxed).unwrap()),
            e(Length)
        );
        assert_eq!(
            corrupt_with(|m| set_desc(m, 4, 1)),
            e(Length),
            "len8 below the descriptor"
        );
        assert_eq!(
            corrupt_with(|m| set_desc(m, 4, 6)),
            e(Length),
            "len8 past the write index"
        );
        assert_eq!(corrupt_with(|m| set_desc(m, 4, 0xffff)), e(Length));
        assert_eq!(
            corrupt_with(|m| set_desc(m, 2, 1)),
            e(Offset),
            "offset8 inside the descriptor"
        );
        assert_eq!(
            corrupt_with(|m| set_desc(m, 2, 6)),
            e(Offset),
            "offset8 past the packet"
        );
        assert_eq!(corrupt_with(|m| set_desc(m, 0, 3)), e(Descriptor));
        assert_eq!(corrupt_with(|m| set_desc(m, 6, 2)), e(Descriptor));
    }

    #[test]
    fn corrupt_read_index_poisons_the_producer() {
        let mut buf = [0u64; WORDS];
        let mem = ring(&mut buf);
        let mut p = Producer::new(mem).unwrap();
        mem.store_u32(READ_INDEX_OFFSET, 12, Ordering::Relaxed)
            .unwrap();
        assert_eq!(
            p.write_inband(0, false, &[]),
            Err(WriteError::Corrupt(Corrupt::Index))
        );
        mem.store_u32(READ_INDEX_OFFSET, 0, Ordering::Relaxed)
            .unwrap();
        assert_eq!(
            p.write_inband(0, false, &[]),
            Err(WriteError::Corrupt(Corrupt::Index))
        );
    }

    #[test]
    fn bad_ring_sizes_are_refused() {
        let mut small = [0u64; (HEADER_SIZE + 32) / 8];
        assert_eq!(
            Producer::new(SharedMem::from_slice(&mut small)).err(),
            Some(LayoutError::Size)
        );
        let mut tiny = [0u64; 8];
        assert_eq!(
            Consumer::new(SharedMem::from_slice(&mut tiny)).err(),
            Some(LayoutError::Size)
        );
    }
}
