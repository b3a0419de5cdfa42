//! Ethernet frames as the simulated host sees them: the MAC addresses, the
//! IPv4/IPv6 and TCP/UDP headers that checksum offload, segmentation and
//! RSS hashing need, and the Internet checksum.
//!
//! Frames come from the guest, so every offset is checked against the
//! frame; a frame that does not hold what its headers claim is an
//! [`Error`], never a panic.

use super::wire::{bytes_at, u8_at, Error, Result};

/// Ethernet header length.
pub const ETH_HLEN: usize = 14;
/// 802.1Q tag length.
pub const VLAN_HLEN: usize = 4;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IPv6 fragment header.
const PROTO_FRAGMENT: u8 = 44;
/// IPv6 header length.
pub const IPV6_HLEN: usize = 40;
/// Smallest TCP header.
pub const TCP_HLEN: usize = 20;
/// UDP header length.
pub const UDP_HLEN: usize = 8;
/// Offset of the checksum in a TCP header.
pub const TCP_CSUM: usize = 16;
/// Offset of the checksum in a UDP header.
pub const UDP_CSUM: usize = 6;
/// Offset of the checksum in an IPv4 header.
pub const IPV4_CSUM: usize = 10;
/// IPv6 extension headers walked before giving up.
const MAX_EXT_HEADERS: usize = 8;

/// The broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// The destination address of `frame`.
pub fn dst_mac(frame: &[u8]) -> Option<[u8; 6]> {
    bytes_at(frame, 0)
}

/// The source address of `frame`.
pub fn src_mac(frame: &[u8]) -> Option<[u8; 6]> {
    bytes_at(frame, 6)
}

/// Whether `mac` is a group (multicast or broadcast) address.
pub fn is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// The IP addresses of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addrs {
    /// IPv4 source and destination.
    V4([u8; 4], [u8; 4]),
    /// IPv6 source and destination.
    V6([u8; 16], [u8; 16]),
}

/// Where the headers of an IP frame lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers {
    /// Offset of the IP header (after the Ethernet header and any 802.1Q
    /// tag).
    pub l3: usize,
    /// Offset of the transport header (after IPv4 options or the IPv6
    /// extension headers).
    pub l4: usize,
    /// End of the IP packet: from the IPv4 total length or the IPv6 payload
    /// length, or the frame's end when that length is 0 (as a guest leaves
    /// it in a large send).
    pub end: usize,
    /// The transport protocol.
    pub proto: u8,
    /// The addresses.
    pub addrs: Addrs,
    /// Whether the packet is a fragment (no transport header to use).
    pub fragment: bool,
}

fn bad(field: &'static str) -> Error {
    Error::BadField(field)
}

/// Parses the Ethernet, optional 802.1Q and IP headers of `frame`.
pub fn parse(frame: &[u8]) -> Result<Headers> {
    let short = || Error::TooShort {
        need: ETH_HLEN,
        len: frame.len(),
    };
    let mut l3 = ETH_HLEN;
    let mut ethertype = be16(frame, 12).ok_or_else(short)?;
    if ethertype == ETHERTYPE_VLAN {
        ethertype = be16(frame, 16).ok_or_else(short)?;
        l3 = ETH_HLEN + VLAN_HLEN;
    }
    match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(frame, l3),
        ETHERTYPE_IPV6 => parse_ipv6(frame, l3),
        _ => Err(bad("ethertype")),
    }
}

/// The big-endian `u16` at `at`.
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_be_bytes)
}

/// The big-endian `u32` at `at`.
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_be_bytes)
}

/// Writes a big-endian `u16` at `at`; false if it does not fit.
pub fn put_be16(b: &mut [u8], at: usize, v: u16) -> bool {
    put(b, at, &v.to_be_bytes())
}

/// Writes a big-endian `u32` at `at`; false if it does not fit.
pub fn put_be32(b: &mut [u8], at: usize, v: u32) -> bool {
    put(b, at, &v.to_be_bytes())
}

fn put(b: &mut [u8], at: usize, v: &[u8]) -> bool {
    let Some(end) = at.checked_add(v.len()) else {
        return false;
    };
    match b.get_mut(at..end) {
        Some(dst) => {
            super::wire::copy(dst, v);
            true
        }
        None => false,
    }
}

fn parse_ipv4(frame: &[u8], l3: usize) -> Result<Headers> {
    let vihl = u8_at(frame, l3).ok_or(bad("ip header"))?;
    if vihl >> 4 != 4 {
        return Err(bad("ip version"));
    }
    let ihl = usize::from(vihl & 0xf).saturating_mul(4);
    if ihl < 20 {
        return Err(bad("ihl"));
    }
    let l4 = l3.checked_add(ihl).ok_or(bad("ihl"))?;
    if l4 > frame.len() {
        return Err(bad("ihl"));
    }
    let total = usize::from(be16(frame, l3.saturating_add(2)).ok_or(bad("tot_len"))?);
    let end = if total == 0 {
        frame.len()
    } else {
        let end = l3.checked_add(total).ok_or(bad("tot_len"))?;
        if total < ihl || end > frame.len() {
            return Err(bad("tot_len"));
        }
        end
    };
    let frag = be16(frame, l3.saturating_add(6)).ok_or(bad("frag_off"))?;
    let proto = u8_at(frame, l3.saturating_add(9)).ok_or(bad("protocol"))?;
    let src = bytes_at(frame, l3.saturating_add(12)).ok_or(bad("saddr"))?;
    let dst = bytes_at(frame, l3.saturating_add(16)).ok_or(bad("daddr"))?;
    Ok(Headers {
        l3,
        l4,
        end,
        proto,
        addrs: Addrs::V4(src, dst),
        // More fragments, or a fragment offset.
        fragment: frag & 0x3fff != 0,
    })
}

fn parse_ipv6(frame: &[u8], l3: usize) -> Result<Headers> {
    let v = u8_at(frame, l3).ok_or(bad("ip header"))?;
    if v >> 4 != 6 {
        return Err(bad("ip version"));
    }
    let fixed_end = l3.checked_add(IPV6_HLEN).ok_or(bad("ip header"))?;
    if fixed_end > frame.len() {
        return Err(bad("ip header"));
    }
    let payload = usize::from(be16(frame, l3.saturating_add(4)).ok_or(bad("payload_len"))?);
    let end = if payload == 0 {
        frame.len()
    } else {
        let end = fixed_end.checked_add(payload).ok_or(bad("payload_len"))?;
        if end > frame.len() {
            return Err(bad("payload_len"));
        }
        end
    };
    let src = bytes_at(frame, l3.saturating_add(8)).ok_or(bad("saddr"))?;
    let dst = bytes_at(frame, l3.saturating_add(24)).ok_or(bad("daddr"))?;
    let mut proto = u8_at(frame, l3.saturating_add(6)).ok_or(bad("nexthdr"))?;
    let mut l4 = fixed_end;
    let mut fragment = false;
    for _ in 0..MAX_EXT_HEADERS {
        match proto {
            // Hop-by-hop, routing, destination options: (len + 1) * 8 bytes.
            0 | 43 | 60 => {
                let next = u8_at(frame, l4).ok_or(bad("ext header"))?;
                let len = u8_at(frame, l4.saturating_add(1)).ok_or(bad("ext header"))?;
                let size = usize::from(len).saturating_add(1).saturating_mul(8);
                l4 = l4.checked_add(size).ok_or(bad("ext header"))?;
                if l4 > end {
                    return Err(bad("ext header"));
                }
                proto = next;
            }
            PROTO_FRAGMENT => {
                let next = u8_at(frame, l4).ok_or(bad("ext header"))?;
                l4 = l4.checked_add(8).ok_or(bad("ext header"))?;
                if l4 > end {
                    return Err(bad("ext header"));
                }
                proto = next;
                fragment = true;
                break;
            }
            _ => break,
        }
    }
    if matches!(proto, 0 | 43 | 60) {
        return Err(bad("ext header"));
    }
    Ok(Headers {
        l3,
        l4,
        end,
        proto,
        addrs: Addrs::V6(src, dst),
        fragment,
    })
}

impl Headers {
    /// The transport ports (TCP or UDP, not a fragment), if the header is
    /// in the packet.
    pub fn ports(&self, frame: &[u8]) -> Option<(u16, u16)> {
        if self.fragment || !(self.proto == PROTO_TCP || self.proto == PROTO_UDP) {
            return None;
        }
        let p = frame.get(..self.end)?;
        Some((be16(p, self.l4)?, be16(p, self.l4.checked_add(2)?)?))
    }

    /// The length of the transport header and payload.
    pub fn l4_len(&self) -> usize {
        self.end.saturating_sub(self.l4)
    }
}

/// A ones'-complement sum in progress (RFC 1071), kept over little-endian
/// words: the sum of byte-swapped words is the byte-swapped sum (RFC 1071,
/// 2.B), so no word is swapped on the way, only the folded result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Csum(u64);

impl Csum {
    /// Adds `data` as big-endian 16-bit words, an odd last byte padded with
    /// zero. Only the last piece added may have an odd length.
    pub fn add(mut self, data: &[u8]) -> Csum {
        // Eight bytes a step, with the carry out added back in: 2^64 is 1
        // modulo 0xffff, as 2^16 is. This is the loop the host runs over
        // every byte of an offloaded frame: one add and one carry a word,
        // four words a round.
        let mut blocks = data.chunks_exact(32);
        for block in &mut blocks {
            if let Some(b) = block.first_chunk::<32>() {
                self = self.add_word(&b[..8]).add_word(&b[8..16]).add_word(&b[16..24]).add_word(&b[24..]);
            }
        }
        let mut words = blocks.remainder().chunks_exact(8);
        for w in &mut words {
            self = self.add_word(w);
        }
        let mut rest = 0u64;
        let mut chunks = words.remainder().chunks_exact(2);
        for c in &mut chunks {
            if let [a, b] = *c {
                // At most three words and a byte: no overflow.
                rest = rest.wrapping_add(u64::from(u16::from_le_bytes([a, b])));
            }
        }
        if let [last] = chunks.remainder() {
            rest = rest.wrapping_add(u64::from(*last));
        }
        let (sum, carry) = self.0.overflowing_add(rest);
        Csum(sum.wrapping_add(u64::from(carry)))
    }

    /// Adds the eight bytes of `w` as one little-endian word.
    #[inline(always)]
    fn add_word(self, w: &[u8]) -> Csum {
        // A plain load (`copy_from_slice` stayed a call per word).
        let Some(&bytes) = w.first_chunk::<8>() else { return self };
        let (sum, carry) = self.0.overflowing_add(u64::from_le_bytes(bytes));
        Csum(sum.wrapping_add(u64::from(carry)))
    }

    /// Adds one 16-bit value.
    pub fn add_u16(self, v: u16) -> Csum {
        self.add(&v.to_be_bytes())
    }

    /// The folded 16-bit sum (not complemented).
    pub fn fold(self) -> u16 {
        let mut s = self.0;
        while s > 0xffff {
            s = (s & 0xffff).wrapping_add(s >> 16);
        }
        // Back from the little-endian words.
        (s as u16).swap_bytes()
    }

    /// The checksum to store: the complement of the folded sum.
    pub fn finish(self) -> u16 {
        !self.fold()
    }
}

/// The pseudo-header sum of a transport segment of `len` bytes.
pub fn pseudo_header(addrs: &Addrs, proto: u8, len: usize) -> Csum {
    match addrs {
        Addrs::V4(s, d) => Csum::default()
            .add(s)
            .add(d)
            .add_u16(u16::from(proto))
            // The 16-bit length as a 32-bit word: the same sum.
            .add(&(len as u32).to_be_bytes()),
        Addrs::V6(s, d) => Csum::default()
            .add(s)
            .add(d)
            .add(&(len as u32).to_be_bytes())
            .add_u16(u16::from(proto)),
    }
}

/// Whether the IPv4 header of `h` and its transport checksum (TCP or UDP;
/// a UDP checksum of 0 means none) verify. For tests and the receive
/// path's "checksum verified" claims.
pub fn verify(frame: &[u8], h: &Headers) -> bool {
    let Some(packet) = frame.get(..h.end) else {
        return false;
    };
    if let Addrs::V4(..) = h.addrs {
        match packet.get(h.l3..h.l4) {
            Some(ip) if Csum::default().add(ip).fold() == 0xffff => {}
            _ => return false,
        }
    }
    let Some(seg) = packet.get(h.l4..) else {
        return false;
    };
    match h.proto {
        PROTO_UDP if be16(seg, UDP_CSUM) == Some(0) && matches!(h.addrs, Addrs::V4(..)) => true,
        PROTO_TCP | PROTO_UDP => {
            pseudo_header(&h.addrs, h.proto, seg.len()).add(seg).fold() == 0xffff
        }
        _ => true,
    }
}

/// The 802.1Q tag control information (priority, DEI, VLAN id) of a
/// tagged frame.
pub fn vlan_tci(frame: &[u8]) -> Option<u16> {
    if be16(frame, 12)? != ETHERTYPE_VLAN {
        return None;
    }
    be16(frame, 14)
}

/// Moves the bytes `from..from + 12` of `frame` to `to..to + 12` (the two
/// addresses), without a panic path.
fn move_addresses(frame: &mut [u8], from: usize, to: usize) -> bool {
    let Some(addrs) = bytes_at::<12>(frame, from) else {
        return false;
    };
    let Some(dst) = to.checked_add(12).and_then(|end| frame.get_mut(to..end)) else {
        return false;
    };
    super::wire::copy(dst, &addrs);
    true
}

/// Takes the 802.1Q tag out of a tagged frame in place, as a switch port
/// does before handing a frame to a guest that takes tags out of band: the
/// addresses move up by [`VLAN_HLEN`], so the untagged frame is
/// `frame[VLAN_HLEN..]`. Returns the tag; `None` (and `frame` unchanged)
/// if it is not tagged.
pub fn untag(frame: &mut [u8]) -> Option<u16> {
    let tci = vlan_tci(frame)?;
    move_addresses(frame, 0, VLAN_HLEN).then_some(tci)
}

/// Tags the untagged frame at `frame[VLAN_HLEN..]` with `tci`, in place:
/// afterwards the whole of `frame` is the tagged frame. Undoes [`untag`];
/// a sender that tags writes its frame [`VLAN_HLEN`] bytes in.
pub fn retag(frame: &mut [u8], tci: u16) -> bool {
    frame.len() >= ETH_HLEN + VLAN_HLEN
        && move_addresses(frame, VLAN_HLEN, 0)
        && put_be16(frame, 12, ETHERTYPE_VLAN)
        && put_be16(frame, 14, tci)
}

/// Completes a checksum the sender left partial (Linux's
/// `CHECKSUM_PARTIAL`, done in software as `skb_checksum_help` does): the
/// field at `start + offset` already holds the pseudo-header sum; the
/// checksum of `frame[start..]` goes there (0 written as `0xffff`).
pub fn fill_partial_checksum(frame: &mut [u8], start: usize, offset: usize) -> Result<()> {
    let at = start.checked_add(offset).ok_or(bad("csum_offset"))?;
    if at.checked_add(2).is_none_or(|end| end > frame.len()) {
        return Err(bad("csum_offset"));
    }
    let sum = Csum::default().add(frame.get(start..).ok_or(bad("csum_start"))?).finish();
    put_be16(frame, at, if sum == 0 { 0xffff } else { sum });
    Ok(())
}
