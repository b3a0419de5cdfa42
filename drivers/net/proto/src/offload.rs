//! The host's side of transmit offloads, as Hyper-V's virtual switch does
//! them for a guest's frames: fill in the IPv4 header checksum and the
//! TCP/UDP checksum a checksum-offload PPI asks for, and cut an LSOv2 frame
//! into MSS-sized TCP segments.
//!
//! The frames are the guest's: every header offset is checked
//! ([`super::frame::parse`]), the PPI's transport header offset must agree
//! with the headers, and a frame that does not fit what it asks for is an
//! error, not a panic.

use super::frame::{
    self, be16, be32, pseudo_header, put_be16, put_be32, Addrs, Csum, Headers, IPV4_CSUM,
    IPV6_HLEN, PROTO_TCP, PROTO_UDP, TCP_CSUM, TCP_HLEN, UDP_CSUM, UDP_HLEN,
};
use super::ppi::{ChecksumInfo, LsoInfo};
use super::wire::{Error, Result};

fn bad(field: &'static str) -> Error {
    Error::BadField(field)
}

/// Computes and stores the IPv4 header checksum of the header at
/// `h.l3..h.l4`.
fn fill_ipv4_header(frame: &mut [u8], h: &Headers) -> Result<()> {
    let at = h.l3.checked_add(IPV4_CSUM).ok_or(bad("ihl"))?;
    if !put_be16(frame, at, 0) {
        return Err(bad("ihl"));
    }
    let sum = Csum::default()
        .add(frame.get(h.l3..h.l4).ok_or(bad("ihl"))?)
        .finish();
    put_be16(frame, at, sum);
    Ok(())
}

/// Computes and stores the transport checksum of the TCP or UDP segment at
/// `h.l4..h.end`.
fn fill_l4(frame: &mut [u8], h: &Headers) -> Result<()> {
    let (min, field) = match h.proto {
        PROTO_TCP => (TCP_HLEN, TCP_CSUM),
        PROTO_UDP => (UDP_HLEN, UDP_CSUM),
        _ => return Err(bad("protocol")),
    };
    if h.fragment || h.l4_len() < min {
        return Err(bad("transport header"));
    }
    let at = h.l4.checked_add(field).ok_or(bad("transport header"))?;
    if !put_be16(frame, at, 0) {
        return Err(bad("transport header"));
    }
    let seg = frame.get(h.l4..h.end).ok_or(bad("transport header"))?;
    let mut sum = pseudo_header(&h.addrs, h.proto, seg.len())
        .add(seg)
        .finish();
    if h.proto == PROTO_UDP && sum == 0 {
        // 0 means "no checksum" in UDP.
        sum = 0xffff;
    }
    put_be16(frame, at, sum);
    Ok(())
}

/// Fills the checksums a checksum-offload PPI asks for: the IPv4 header
/// checksum for `TX_IP_HEADER`, the TCP or UDP checksum (with the IPv4 or
/// IPv6 pseudo-header) for `TX_TCP`/`TX_UDP`. The PPI's IP version must
/// match the frame's, its transport protocol the header's, and its
/// transport header offset (when not 0) the parsed one.
pub fn fill_checksums(frame: &mut [u8], csum: ChecksumInfo) -> Result<()> {
    let h = frame::parse(frame)?;
    let v4 = matches!(h.addrs, Addrs::V4(..));
    if csum.has(ChecksumInfo::TX_IPV4) && !v4 || csum.has(ChecksumInfo::TX_IPV6) && v4 {
        return Err(bad("checksum ip version"));
    }
    let off = csum.tx_tcp_header_offset();
    if off != 0 && super::wire::to_usize(off) != h.l4 {
        return Err(bad("tcp_header_offset"));
    }
    if csum.has(ChecksumInfo::TX_IP_HEADER) {
        if !v4 {
            return Err(bad("checksum ip version"));
        }
        fill_ipv4_header(frame, &h)?;
    }
    match (
        csum.has(ChecksumInfo::TX_TCP),
        csum.has(ChecksumInfo::TX_UDP),
    ) {
        (true, true) => Err(bad("checksum protocol")),
        (true, false) if h.proto != PROTO_TCP => Err(bad("checksum protocol")),
        (false, true) if h.proto != PROTO_UDP => Err(bad("checksum protocol")),
        (false, false) => Ok(()),
        _ => fill_l4(frame, &h),
    }
}

// TCP flag bits (byte 13 of the header).
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;
const TCP_FLAGS: usize = 13;

/// Cuts an LSOv2 frame into TCP segments of at most `mss` payload bytes,
/// writing one segment at a time into a buffer of the caller's.
///
/// Each segment has the frame's headers with, for IPv4, its total length,
/// an identification one more than the previous segment's and the header
/// checksum; for IPv6 its payload length; the TCP sequence number advanced
/// by the payload before it, FIN and PSH only on the last segment, CWR only
/// on the first (as Linux's own segmentation does), and the TCP checksum.
/// The guest's lengths and checksums in the frame are ignored (a Linux
/// guest zeroes them); the payload runs to the end of the IP packet.
#[derive(Clone, Debug)]
pub struct Segmenter<'a> {
    frame: &'a [u8],
    h: Headers,
    /// Ethernet, IP and TCP headers: copied into each segment.
    hdr_len: usize,
    mss: usize,
    /// Offset of the next segment's payload in `frame`.
    next: usize,
    /// Segments written.
    index: u32,
    seq: u32,
    ip_id: u16,
    done: bool,
}

impl<'a> Segmenter<'a> {
    /// Checks an LSOv2 frame: a TCP packet of the PPI's IP version, the
    /// PPI's transport offset (when not 0) matching the headers, an MSS of
    /// at least 1 and segments whose IP lengths fit in 16 bits.
    pub fn new(frame: &'a [u8], lso: LsoInfo) -> Result<Segmenter<'a>> {
        if !lso.is_v2() {
            return Err(bad("lso type"));
        }
        // The IP lengths are recomputed below, so a guest's zeroed total
        // length is fine; parse() treats it as "to the frame's end".
        let h = frame::parse(frame)?;
        let v6 = matches!(h.addrs, Addrs::V6(..));
        if v6 != lso.is_ipv6() {
            return Err(bad("lso ip version"));
        }
        if h.proto != PROTO_TCP || h.fragment {
            return Err(bad("protocol"));
        }
        let off = lso.tcp_header_offset();
        if off != 0 && super::wire::to_usize(off) != h.l4 {
            return Err(bad("tcp_header_offset"));
        }
        let doff = frame
            .get(h.l4.saturating_add(12))
            .map(|b| usize::from(b >> 4).saturating_mul(4))
            .ok_or(bad("tcp header"))?;
        if doff < TCP_HLEN {
            return Err(bad("tcp data offset"));
        }
        let hdr_len = h.l4.checked_add(doff).ok_or(bad("tcp data offset"))?;
        if hdr_len > h.end {
            return Err(bad("tcp data offset"));
        }
        let mss = super::wire::to_usize(lso.mss());
        if mss == 0 {
            return Err(bad("mss"));
        }
        // The largest segment's IP length must fit the 16-bit fields.
        let ip_len = hdr_len.saturating_sub(h.l3).saturating_add(mss);
        if ip_len > usize::from(u16::MAX) {
            return Err(bad("mss"));
        }
        let seq = be32(frame, h.l4.saturating_add(4)).ok_or(bad("tcp header"))?;
        let ip_id = if v6 {
            0
        } else {
            be16(frame, h.l3.saturating_add(4)).ok_or(bad("ip header"))?
        };
        Ok(Segmenter {
            frame,
            h,
            hdr_len,
            mss,
            next: hdr_len,
            index: 0,
            seq,
            ip_id,
            done: false,
        })
    }

    /// The frame as one segment carrying its whole payload, with the
    /// lengths and checksums a segment gets: what a receiver that
    /// coalesces segments (RSC) takes instead of the segments. The checks
    /// are [`Segmenter::new`]'s.
    pub fn whole(frame: &'a [u8], lso: LsoInfo) -> Result<Segmenter<'a>> {
        let mut s = Segmenter::new(frame, lso)?;
        let payload = s.h.end.saturating_sub(s.hdr_len);
        if s.hdr_len.saturating_sub(s.h.l3).saturating_add(payload) > usize::from(u16::MAX) {
            return Err(bad("ip length"));
        }
        s.mss = payload.max(1);
        Ok(s)
    }

    /// The number of segments (1 for an empty payload).
    pub fn count(&self) -> usize {
        let payload = self.h.end.saturating_sub(self.hdr_len);
        let n = payload.checked_div(self.mss).unwrap_or(0);
        if payload.checked_rem(self.mss).unwrap_or(0) != 0 {
            n.saturating_add(1)
        } else {
            n.max(1)
        }
    }

    /// The largest segment: headers and one MSS.
    pub fn max_segment_len(&self) -> usize {
        self.hdr_len.saturating_add(self.mss)
    }

    /// Writes the next segment into `out` and returns its length; `None`
    /// after the last. A buffer too small for the segment is an error, and
    /// the same segment is written by the next call.
    pub fn next_segment(&mut self, out: &mut [u8]) -> Option<Result<usize>> {
        if self.done {
            return None;
        }
        Some(self.write_segment(out))
    }

    fn write_segment(&mut self, out: &mut [u8]) -> Result<usize> {
        let h = self.h;
        let remaining = h.end.saturating_sub(self.next);
        let chunk = remaining.min(self.mss);
        let last = remaining <= self.mss;
        let first = self.index == 0;
        let len = self.hdr_len.saturating_add(chunk);
        let out_len = out.len();
        let seg = out.get_mut(..len).ok_or(Error::BufferTooSmall {
            need: len,
            len: out_len,
        })?;
        let headers = self.frame.get(..self.hdr_len).ok_or(bad("tcp header"))?;
        let payload_end = self.next.saturating_add(chunk);
        let payload = self
            .frame
            .get(self.next..payload_end)
            .ok_or(bad("payload"))?;
        let (seg_hdr, seg_payload) = seg.split_at_mut(self.hdr_len.min(len));
        super::wire::copy(seg_hdr, headers);
        super::wire::copy(seg_payload, payload);
        self.fix_segment(seg, last, first)?;
        self.next = payload_end;
        self.index = self.index.wrapping_add(1);
        self.done = last;
        Ok(len)
    }

    /// Sets the lengths, IPv4 id, sequence number, flags and checksums of
    /// the segment in `seg` (headers and payload already in place): the
    /// one that starts at payload offset `self.next`.
    fn fix_segment(&self, seg: &mut [u8], last: bool, first: bool) -> Result<()> {
        let h = self.h;
        let len = seg.len();
        // IP lengths fit in 16 bits: checked in new().
        let ip_len = len.saturating_sub(h.l3);
        match h.addrs {
            Addrs::V4(..) => {
                put_be16(seg, h.l3.saturating_add(2), ip_len as u16);
                let id = self.ip_id.wrapping_add(self.index as u16);
                put_be16(seg, h.l3.saturating_add(4), id);
                fill_ipv4_header(seg, &Headers { end: len, ..h })?;
            }
            Addrs::V6(..) => {
                put_be16(
                    seg,
                    h.l3.saturating_add(4),
                    ip_len.saturating_sub(IPV6_HLEN) as u16,
                );
            }
        }
        // The sequence number advances by the payload sent so far; it wraps
        // modulo 2^32 as TCP's does.
        let sent = self.next.saturating_sub(self.hdr_len) as u32;
        put_be32(seg, h.l4.saturating_add(4), self.seq.wrapping_add(sent));
        if let Some(flags) = seg.get_mut(h.l4.saturating_add(TCP_FLAGS)) {
            if !last {
                *flags &= !(TCP_FIN | TCP_PSH);
            }
            if !first {
                *flags &= !TCP_CWR;
            }
        }
        fill_l4(seg, &Headers { end: len, ..h })
    }
}

/// Does to an LSOv2 frame in place what [`Segmenter::whole`] writes out
/// (the same checks, lengths and checksums), for a host that hands the
/// frame on in the buffer it arrived in. Returns the length of the
/// result: the frame up to the end its IP header gives.
pub fn coalesce_in_place(frame: &mut [u8], lso: LsoInfo) -> Result<usize> {
    let whole = Segmenter::whole(frame, lso)?;
    let segmenter = Segmenter { frame: &[], ..whole };
    let len = segmenter.h.end;
    segmenter.fix_segment(frame.get_mut(..len).ok_or(bad("payload"))?, true, true)?;
    Ok(len)
}

/// [`prepare_lso`] on the start of a frame (a driver's copy of it, the rest
/// sent from where it lies): `prefix` runs at least to the TCP checksum
/// field. Its IP length field is zeroed first (as [`prepare_lso`] would),
/// so that the prefix parses as a packet that ends where it does.
pub fn prepare_lso_prefix(prefix: &mut [u8]) -> Result<()> {
    let (mut l3, mut ethertype) = (frame::ETH_HLEN, be16(prefix, 12));
    if ethertype == Some(frame::ETHERTYPE_VLAN) {
        (l3, ethertype) = (frame::ETH_HLEN + frame::VLAN_HLEN, be16(prefix, 16));
    }
    let length_field = match ethertype {
        Some(frame::ETHERTYPE_IPV4) => l3 + 2,
        Some(frame::ETHERTYPE_IPV6) => l3 + 4,
        _ => return Err(bad("ethertype")),
    };
    if !put_be16(prefix, length_field, 0) {
        return Err(bad("ip header"));
    }
    prepare_lso(prefix)
}

/// Prepares an LSOv2 send the way Hyper-V expects it from a guest (and
/// Linux's netvsc does it): the IP length fields zeroed, the IPv4 header
/// checksum too, and the TCP checksum field holding the pseudo-header sum
/// over a zero length. The host fills them in per segment.
pub fn prepare_lso(frame: &mut [u8]) -> Result<()> {
    let h = frame::parse(frame)?;
    if h.proto != PROTO_TCP || h.fragment {
        return Err(bad("protocol"));
    }
    let lengths_cleared = match h.addrs {
        Addrs::V4(..) => {
            put_be16(frame, h.l3.saturating_add(2), 0) && put_be16(frame, h.l3.saturating_add(IPV4_CSUM), 0)
        }
        Addrs::V6(..) => put_be16(frame, h.l3.saturating_add(4), 0),
    };
    let pseudo = pseudo_header(&h.addrs, PROTO_TCP, 0).fold();
    if !lengths_cleared || !put_be16(frame, h.l4.saturating_add(TCP_CSUM), pseudo) {
        return Err(bad("transport header"));
    }
    Ok(())
}
