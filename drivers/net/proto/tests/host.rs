//! The simulated host's side: checksums against known packets, LSOv2
//! segmentation checked segment by segment, the virtual switch's learning,
//! flooding and filters, and the host's NVSP and RNDIS state machines
//! driven end to end by the crate's guest-side builders and parsers.

use netvsc_core::frame::{self, Addrs};
use netvsc_core::ndis::{self, filter, hash, oid, OffloadCaps, RssCaps};
use netvsc_core::netvsp::{
    Action, GuestPacket, HostConfig, HostError, Netvsp, RndisSource, VersionSet, RECV_SECTION_SIZE,
    SEND_SECTION_SIZE,
};
use netvsc_core::nvsp::{self, Message, Negotiation, Sender, Step, Version};
use netvsc_core::offload::{coalesce_in_place, fill_checksums, prepare_lso, prepare_lso_prefix, Segmenter};
use netvsc_core::ppi::{ChecksumInfo, LsoInfo, Ppi, VlanInfo};
use netvsc_core::rndis::{self, InitRequest, Request};
use netvsc_core::rndis_dev::{DeviceConfig, Outcome, RndisDevice, RxChecksums};
use netvsc_core::toeplitz;
use netvsc_core::vswitch::{Port, PortSet, Switch, MAC_TABLE_SIZE};

// ---------------------------------------------------------------------------
// Frames.

const MAC_A: [u8; 6] = [0x00, 0x15, 0x5d, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x00, 0x15, 0x5d, 0, 0, 0x0b];
const V4_SRC: [u8; 4] = [10, 0, 0, 1];
const V4_DST: [u8; 4] = [10, 0, 0, 2];
const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const PAYLOAD: &[u8] = b"hello world!";

/// A naive RFC 1071 checksum, independent of the crate's.
fn naive_csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        s += u32::from(w);
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn tcp_header(sport: u16, dport: u16, seq: u32, flags: u8, options: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&2u32.to_be_bytes());
    t.push((((20 + options.len()) / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(options);
    t
}

fn udp_header(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u
}

fn ipv4(proto: u8, id: u16, l4: &[u8], tot_len: Option<u16>) -> Vec<u8> {
    let mut ip = vec![0x45, 0];
    let len = tot_len.unwrap_or((20 + l4.len()) as u16);
    ip.extend_from_slice(&len.to_be_bytes());
    ip.extend_from_slice(&id.to_be_bytes());
    ip.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    ip.extend_from_slice(&V4_SRC);
    ip.extend_from_slice(&V4_DST);
    ip.extend_from_slice(l4);
    ip
}

fn ipv6(proto: u8, l4: &[u8], payload_len: Option<u16>) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    let len = payload_len.unwrap_or(l4.len() as u16);
    ip.extend_from_slice(&len.to_be_bytes());
    ip.extend_from_slice(&[proto, 64]);
    ip.extend_from_slice(&V6_SRC);
    ip.extend_from_slice(&V6_DST);
    ip.extend_from_slice(l4);
    ip
}

fn v4_frame(proto: u8) -> Vec<u8> {
    let mut l4 = match proto {
        frame::PROTO_TCP => tcp_header(40000, 80, 1, 0x18, &[]),
        _ => udp_header(1234, 5678, PAYLOAD.len()),
    };
    l4.extend_from_slice(PAYLOAD);
    let mut f = eth(MAC_B, MAC_A, frame::ETHERTYPE_IPV4);
    f.extend(ipv4(proto, 0, &l4, None));
    f
}

fn v6_frame(proto: u8) -> Vec<u8> {
    let mut l4 = match proto {
        frame::PROTO_TCP => tcp_header(40000, 80, 1, 0x18, &[]),
        _ => udp_header(1234, 5678, PAYLOAD.len()),
    };
    l4.extend_from_slice(PAYLOAD);
    let mut f = eth(MAC_B, MAC_A, frame::ETHERTYPE_IPV6);
    f.extend(ipv6(proto, &l4, None));
    f
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

// ---------------------------------------------------------------------------
// Checksum offload.

#[test]
fn ipv4_header_checksum_of_a_known_header() {
    let hdr = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    let mut f = eth(MAC_B, MAC_A, frame::ETHERTYPE_IPV4);
    f.extend_from_slice(&hdr);
    f.resize(14 + 0x73, 0);
    let c = ChecksumInfo::tx(ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_IP_HEADER, 0).unwrap();
    fill_checksums(&mut f, c).unwrap();
    assert_eq!(be16(&f, 14 + 10), 0xb861);
}

/// Known checksums (computed independently, with Python's struct module)
/// of the test packets: UDP and TCP over IPv4 and IPv6.
#[test]
fn transport_checksums_of_known_packets() {
    let cases: [(Vec<u8>, u32, usize, u16); 4] = [
        (
            v4_frame(frame::PROTO_UDP),
            ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_IP_HEADER | ChecksumInfo::TX_UDP,
            34 + 6,
            0x3ed4,
        ),
        (
            v4_frame(frame::PROTO_TCP),
            ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_IP_HEADER | ChecksumInfo::TX_TCP,
            34 + 16,
            0x6d3b,
        ),
        (
            v6_frame(frame::PROTO_UDP),
            ChecksumInfo::TX_IPV6 | ChecksumInfo::TX_UDP,
            54 + 6,
            0xf761,
        ),
        (
            v6_frame(frame::PROTO_TCP),
            ChecksumInfo::TX_IPV6 | ChecksumInfo::TX_TCP,
            54 + 16,
            0x25c9,
        ),
    ];
    for (mut f, flags, at, want) in cases {
        let l4 = if flags & ChecksumInfo::TX_IPV4 != 0 {
            34
        } else {
            54
        };
        // Garbage where the checksum goes: the host must ignore it.
        f[at] = 0xde;
        f[at + 1] = 0xad;
        fill_checksums(&mut f, ChecksumInfo::tx(flags, l4).unwrap()).unwrap();
        assert_eq!(be16(&f, at), want, "flags {flags:#x}");
        let h = frame::parse(&f).unwrap();
        assert!(frame::verify(&f, &h));
    }
}

#[test]
fn checksum_requests_that_do_not_match_the_frame_are_refused() {
    let f4 = v4_frame(frame::PROTO_TCP);
    let f6 = v6_frame(frame::PROTO_UDP);
    let bad = [
        (&f4, ChecksumInfo::TX_IPV6 | ChecksumInfo::TX_TCP, 0),
        (&f4, ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_UDP, 0),
        (&f4, ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_TCP, 30),
        (&f4, ChecksumInfo::TX_TCP | ChecksumInfo::TX_UDP, 0),
        (&f6, ChecksumInfo::TX_IPV6 | ChecksumInfo::TX_IP_HEADER, 0),
        (&f6, ChecksumInfo::TX_IPV6 | ChecksumInfo::TX_TCP, 0),
    ];
    for (f, flags, off) in bad {
        let mut g = f.clone();
        assert!(fill_checksums(&mut g, ChecksumInfo::tx(flags, off).unwrap()).is_err());
        assert_eq!(&g, f, "a refused frame is left alone");
    }
    // Truncated frames.
    for n in 0..f4.len() - PAYLOAD.len() {
        let mut g = f4[..n].to_vec();
        let c = ChecksumInfo::tx(ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_TCP, 34).unwrap();
        assert!(fill_checksums(&mut g, c).is_err(), "{n} bytes");
    }
}

#[test]
fn checksums_of_a_vlan_tagged_frame_and_ipv6_extension_headers() {
    // 802.1Q tag, then IPv4/UDP.
    let plain = v4_frame(frame::PROTO_UDP);
    let mut tagged = plain[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    tagged.extend_from_slice(&plain[12..]);
    let c = ChecksumInfo::tx(ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_UDP, 38).unwrap();
    fill_checksums(&mut tagged, c).unwrap();
    assert_eq!(be16(&tagged, 38 + 6), 0x3ed4);

    // IPv6 with a hop-by-hop header (8 bytes) before TCP.
    let mut l4 = vec![frame::PROTO_TCP, 0, 1, 4, 0, 0, 0, 0];
    let mut tcp = tcp_header(40000, 80, 1, 0x18, &[]);
    tcp.extend_from_slice(PAYLOAD);
    l4.extend_from_slice(&tcp);
    let mut f = eth(MAC_B, MAC_A, frame::ETHERTYPE_IPV6);
    f.extend(ipv6(0, &l4, None));
    let c = ChecksumInfo::tx(ChecksumInfo::TX_IPV6 | ChecksumInfo::TX_TCP, 62).unwrap();
    fill_checksums(&mut f, c).unwrap();
    // The pseudo-header length is the TCP segment's, not the payload's.
    assert_eq!(be16(&f, 62 + 16), 0x25c9);
}

// ---------------------------------------------------------------------------
// LSOv2.

fn lso_frame(v6: bool, payload: usize) -> Vec<u8> {
    // TCP with 12 bytes of options (NOP, NOP, timestamps), ACK|PSH|FIN|CWR.
    let opts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    let mut l4 = tcp_header(40000, 5201, 0xffff_f000, 0x10 | 0x08 | 0x01 | 0x80, &opts);
    l4.extend((0..payload).map(|i| (i * 7 + i / 251) as u8));
    if v6 {
        let mut f = eth(MAC_B, MAC_A, frame::ETHERTYPE_IPV6);
        // As a Linux guest sends it: payload length 0.
        f.extend(ipv6(frame::PROTO_TCP, &l4, Some(0)));
        f
    } else {
        let mut f = eth(MAC_B, MAC_A, frame::ETHERTYPE_IPV4);
        // Total length 0, as a Linux guest sends it.
        f.extend(ipv4(frame::PROTO_TCP, 0xfffe, &l4, Some(0)));
        f
    }
}

fn check_segmentation(v6: bool, mss: usize) {
    let payload = 65536;
    let f = lso_frame(v6, payload);
    let l3 = 14;
    let l4 = if v6 { 54 } else { 34 };
    let hdr = l4 + 32;
    let lso = LsoInfo::v2(mss as u32, l4 as u32, v6).unwrap();
    let mut s = Segmenter::new(&f, lso).unwrap();
    let want = payload.div_ceil(mss);
    assert_eq!(s.count(), want);
    assert_eq!(s.max_segment_len(), hdr + mss);
    let mut buf = vec![0u8; hdr + mss];
    let mut sent = 0usize;
    let mut i = 0usize;
    while let Some(r) = s.next_segment(&mut buf) {
        let len = r.unwrap();
        let seg = &buf[..len];
        let chunk = (payload - sent).min(mss);
        let last = i == want - 1;
        assert_eq!(len, hdr + chunk, "segment {i}");
        // Headers other than the rewritten fields are the frame's.
        assert_eq!(seg[..12], f[..12]);
        if v6 {
            assert_eq!(be16(seg, l3 + 4) as usize, 32 + chunk);
        } else {
            assert_eq!(be16(seg, l3 + 2) as usize, 20 + 32 + chunk);
            assert_eq!(be16(seg, l3 + 4), 0xfffeu16.wrapping_add(i as u16));
            assert_eq!(naive_csum(&seg[l3..l4]), 0, "IP checksum of segment {i}");
        }
        assert_eq!(be32(seg, l4 + 4), 0xffff_f000u32.wrapping_add(sent as u32));
        let flags = seg[l4 + 13];
        assert_eq!(flags & 0x10, 0x10, "ACK stays");
        assert_eq!(flags & 0x09 != 0, last, "FIN/PSH only on the last");
        assert_eq!(flags & 0x09 == 0x09, last);
        assert_eq!(flags & 0x80 != 0, i == 0, "CWR only on the first");
        assert_eq!(seg[l4 + 14..l4 + 16], f[l4 + 14..l4 + 16], "window kept");
        assert_eq!(seg[l4 + 18..hdr], f[l4 + 18..hdr], "options kept");
        // TCP checksum, with the pseudo-header, by the naive sum.
        let mut pseudo = Vec::new();
        if v6 {
            pseudo.extend_from_slice(&V6_SRC);
            pseudo.extend_from_slice(&V6_DST);
            pseudo.extend_from_slice(&((len - l4) as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 6]);
        } else {
            pseudo.extend_from_slice(&V4_SRC);
            pseudo.extend_from_slice(&V4_DST);
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&((len - l4) as u16).to_be_bytes());
        }
        pseudo.extend_from_slice(&seg[l4..]);
        assert_eq!(naive_csum(&pseudo), 0, "TCP checksum of segment {i}");
        assert_eq!(
            seg[hdr..],
            f[hdr + sent..hdr + sent + chunk],
            "payload of segment {i}"
        );
        sent += chunk;
        i += 1;
    }
    assert_eq!(i, want);
    assert_eq!(sent, payload);
    assert!(s.next_segment(&mut buf).is_none());
}

#[test]
fn lso_64k_ipv4_mss_1448() {
    check_segmentation(false, 1448);
}

#[test]
fn lso_64k_ipv4_mss_8960() {
    check_segmentation(false, 8960);
}

#[test]
fn lso_64k_ipv6_mss_1448() {
    check_segmentation(true, 1448);
}

#[test]
fn lso_64k_ipv6_mss_8960() {
    check_segmentation(true, 8960);
}

#[test]
fn lso_refusals_and_a_short_buffer() {
    let f = lso_frame(false, 3000);
    assert!(Segmenter::new(&f, LsoInfo(1448)).is_err(), "not LSOv2");
    assert!(Segmenter::new(&f, LsoInfo::v2(1448, 34, true).unwrap()).is_err());
    assert!(Segmenter::new(&f, LsoInfo::v2(1448, 30, false).unwrap()).is_err());
    assert!(Segmenter::new(&f, LsoInfo::v2(0, 34, false).unwrap()).is_err());
    assert!(Segmenter::new(&f, LsoInfo::v2(65535, 34, false).unwrap()).is_err());
    let udp = v4_frame(frame::PROTO_UDP);
    assert!(Segmenter::new(&udp, LsoInfo::v2(1448, 34, false).unwrap()).is_err());
    // A buffer too small: an error, then the same segment again.
    let mut s = Segmenter::new(&f, LsoInfo::v2(1448, 34, false).unwrap()).unwrap();
    let mut small = [0u8; 100];
    assert!(s.next_segment(&mut small).unwrap().is_err());
    let mut big = [0u8; 2000];
    assert_eq!(s.next_segment(&mut big).unwrap().unwrap(), 66 + 1448);
    assert_eq!(be32(&big, 34 + 4), 0xffff_f000);
    // An empty payload: one segment of headers.
    let f = lso_frame(false, 0);
    let mut s = Segmenter::new(&f, LsoInfo::v2(1448, 34, false).unwrap()).unwrap();
    assert_eq!(s.count(), 1);
    assert_eq!(s.next_segment(&mut big).unwrap().unwrap(), 66);
    assert!(s.next_segment(&mut big).is_none());
}

// ---------------------------------------------------------------------------
// The virtual switch.

fn frame_to(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = eth(dst, src, 0x88b5);
    f.resize(60, 0);
    f
}

const MC: [u8; 6] = [0x01, 0x00, 0x5e, 0, 0, 1];
const MC_OTHER: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// Which destination kinds each filter takes: directed to the port,
/// directed to another, broadcast, multicast in the list, multicast not in
/// it.
#[test]
fn port_filter_truth_table() {
    let dsts = [MAC_B, MAC_A, frame::BROADCAST, MC, MC_OTHER];
    let table: [(u32, [bool; 5]); 7] = [
        (0, [false, false, false, false, false]),
        (filter::DIRECTED, [true, false, false, false, false]),
        (filter::BROADCAST, [false, false, true, false, false]),
        (filter::MULTICAST, [false, false, false, true, false]),
        (filter::ALL_MULTICAST, [false, false, false, true, true]),
        (filter::PROMISCUOUS, [true, true, true, true, true]),
        (filter::OPEN, [true, false, true, true, true]),
    ];
    for (f, want) in table {
        let mut p = Port::new(Some(MAC_B), f);
        p.set_multicast(&[MC]).unwrap();
        for (dst, w) in dsts.iter().zip(want) {
            assert_eq!(p.accepts(dst), w, "filter {f:#x} dst {dst:02x?}");
        }
    }
}

#[test]
fn switch_learns_floods_and_forwards() {
    let mac_c = [0x00, 0x15, 0x5d, 0, 0, 0x0c];
    let mut sw = Switch::new();
    let a = sw.add_port(Port::new(Some(MAC_A), filter::OPEN)).unwrap();
    let b = sw.add_port(Port::new(Some(MAC_B), filter::OPEN)).unwrap();
    let c = sw.add_port(Port::new(Some(mac_c), filter::OPEN)).unwrap();
    let up = sw.add_port(Port::new(None, filter::OPEN)).unwrap();
    let set = |ports: &[usize]| PortSet(ports.iter().map(|p| 1u32 << p).sum());

    // Broadcast floods to every other port.
    assert_eq!(
        sw.forward(a, &frame_to(frame::BROADCAST, MAC_A)).unwrap(),
        set(&[b, c, up])
    );
    assert_eq!(sw.lookup(&MAC_A), Some(a));
    // Unknown unicast floods, but only the addressed port and the uplink
    // take it.
    assert_eq!(
        sw.forward(a, &frame_to(MAC_B, MAC_A)).unwrap(),
        set(&[b, up])
    );
    // Once B has spoken, frames to B go to B alone.
    sw.forward(b, &frame_to(MAC_A, MAC_B)).unwrap();
    assert_eq!(sw.forward(a, &frame_to(MAC_B, MAC_A)).unwrap(), set(&[b]));
    // A station behind the uplink is learned there.
    let far = [0x02, 0, 0, 0, 0, 9];
    sw.forward(up, &frame_to(MAC_A, far)).unwrap();
    assert_eq!(sw.forward(c, &frame_to(far, mac_c)).unwrap(), set(&[up]));
    // Never back out of the port it came in on.
    assert_eq!(
        sw.forward(up, &frame_to(far, [0x02, 0, 0, 0, 0, 8]))
            .unwrap(),
        set(&[])
    );
    // Multicast goes by the filters and lists.
    sw.port_mut(b).unwrap().filter = filter::DIRECTED | filter::MULTICAST;
    sw.port_mut(b).unwrap().set_multicast(&[MC]).unwrap();
    sw.port_mut(c).unwrap().filter = filter::DIRECTED;
    assert_eq!(sw.forward(a, &frame_to(MC, MAC_A)).unwrap(), set(&[b, up]));
    assert_eq!(
        sw.forward(a, &frame_to(MC_OTHER, MAC_A)).unwrap(),
        set(&[up])
    );
    // A promiscuous port sees unicast between others too.
    sw.port_mut(c).unwrap().filter = filter::PROMISCUOUS;
    assert_eq!(
        sw.forward(a, &frame_to(MAC_B, MAC_A)).unwrap(),
        set(&[b, c])
    );
    // A moved station is relearned.
    sw.forward(c, &frame_to(frame::BROADCAST, MAC_A)).unwrap();
    assert_eq!(sw.lookup(&MAC_A), Some(c));
    // Removing a port forgets its stations.
    sw.remove_port(up);
    assert_eq!(sw.lookup(&far), None);
    assert!(sw.forward(up, &frame_to(MAC_A, far)).is_err());
    assert!(sw.forward(a, &[0u8; 13]).is_err());
    // A group source address is not learned.
    sw.forward(a, &frame_to(MAC_B, MC)).unwrap();
    assert_eq!(sw.lookup(&MC), None);
}

#[test]
fn learning_table_is_bounded_and_evicts_the_oldest() {
    let mut sw = Switch::new();
    let a = sw.add_port(Port::new(None, filter::OPEN)).unwrap();
    let _b = sw.add_port(Port::new(None, filter::OPEN)).unwrap();
    let mac = |i: usize| [0x02, 0, 0, 0, (i >> 8) as u8, i as u8];
    for i in 0..MAC_TABLE_SIZE {
        sw.forward(a, &frame_to(frame::BROADCAST, mac(i))).unwrap();
    }
    // Refresh station 0, then add one more: station 1 is the oldest.
    sw.forward(a, &frame_to(frame::BROADCAST, mac(0))).unwrap();
    sw.forward(a, &frame_to(frame::BROADCAST, mac(1000)))
        .unwrap();
    assert_eq!(sw.lookup(&mac(0)), Some(a));
    assert_eq!(sw.lookup(&mac(1)), None);
    assert_eq!(sw.lookup(&mac(1000)), Some(a));
    assert_eq!(sw.lookup(&mac(2)), Some(a));
    assert!(Port::new(None, 0).set_multicast(&[MC; 33]).is_err());
}

// ---------------------------------------------------------------------------
// NVSP, host side.

const RECV_GPADL: u32 = 0x100;
const SEND_GPADL: u32 = 0x101;
const RECV_SIZE: u32 = 16 * 1024 * 1024;
const SEND_SIZE: u32 = 1024 * 1024;

fn gpadls(h: u32) -> Option<u32> {
    match h {
        RECV_GPADL => Some(RECV_SIZE),
        SEND_GPADL => Some(SEND_SIZE),
        _ => None,
    }
}

fn bytes(m: &Message) -> Vec<u8> {
    let mut b = vec![0u8; nvsp::MAX_MESSAGE_SIZE];
    let n = m.write(&mut b).unwrap();
    b.truncate(n);
    b
}

fn send(host: &mut Netvsp, m: &Message, tid: u64) -> Result<Vec<Action>, HostError> {
    let b = bytes(m);
    let p = GuestPacket {
        channel: 0,
        bytes: &b,
        transaction_id: tid,
        page_ranges_len: None,
    };
    host.on_packet(&p, &gpadls)
        .map(|a| a.iter().copied().collect())
}

/// The host's completion of `tid`, parsed as the guest parses it.
fn completion(actions: &[Action], tid: u64) -> Message {
    let m = actions
        .iter()
        .find_map(|a| match a {
            Action::Complete {
                transaction_id,
                message,
            } if *transaction_id == tid => Some(*message),
            _ => None,
        })
        .expect("a completion");
    Message::parse(&bytes(&m), Sender::Host, None).unwrap()
}

/// Runs the guest's negotiation against `host`; the version agreed.
fn negotiate(host: &mut Netvsp, isolated: bool) -> Option<Version> {
    let (mut n, mut step) = Negotiation::start(isolated);
    for tid in 1.. {
        match step {
            Step::Propose(m) => {
                let a = send(host, &m, tid).unwrap();
                let Message::InitComplete(c) = completion(&a, tid) else {
                    panic!("not INIT_COMPLETE");
                };
                step = n.on_init_complete(&c);
            }
            Step::Done(v) => return Some(v),
            Step::Failed => return None,
        }
    }
    None
}

/// Negotiation and both buffers, as a C guest does it.
fn set_up(host: &mut Netvsp) -> Version {
    let v = negotiate(host, false).unwrap();
    let (major, minor) = v.ndis_version();
    assert!(send(host, &Message::SendNdisVersion { major, minor }, 10)
        .unwrap()
        .is_empty());
    let cfg = Message::SendNdisConfig(nvsp::NdisConfig::for_guest(v, 1500, false));
    assert!(send(host, &cfg, 11).unwrap().is_empty());
    let a = send(
        host,
        &Message::SendReceiveBuffer {
            gpadl: RECV_GPADL,
            id: nvsp::RECEIVE_BUFFER_ID,
        },
        12,
    )
    .unwrap();
    let Message::SendReceiveBufferComplete(c) = completion(&a, 12) else {
        panic!()
    };
    // The guest's own checks pass.
    let (size, count) = c.slots(RECV_SIZE).unwrap();
    assert_eq!(size, RECV_SECTION_SIZE);
    assert_eq!(count, RECV_SIZE / RECV_SECTION_SIZE);
    assert!(matches!(
        a[0],
        Action::MapReceiveBuffer {
            gpadl: RECV_GPADL,
            size: RECV_SIZE,
            ..
        }
    ));
    let a = send(
        host,
        &Message::SendSendBuffer {
            gpadl: SEND_GPADL,
            id: nvsp::SEND_BUFFER_ID,
        },
        13,
    )
    .unwrap();
    let Message::SendSendBufferComplete {
        status,
        section_size,
    } = completion(&a, 13)
    else {
        panic!()
    };
    assert_eq!(
        nvsp::send_sections(status, section_size, SEND_SIZE).unwrap(),
        (SEND_SECTION_SIZE, SEND_SIZE / SEND_SECTION_SIZE)
    );
    v
}

#[test]
fn negotiation_against_the_guest() {
    let mut host = Netvsp::new(HostConfig::default());
    assert_eq!(negotiate(&mut host, false), Some(Version::V61));
    assert_eq!(host.version(), Some(Version::V61));

    // A host of NVSP 5 and 2 only: the guest falls back to 5.
    let versions = VersionSet::NONE.with(Version::V5).with(Version::V2);
    let mut host = Netvsp::new(HostConfig {
        versions,
        ..HostConfig::default()
    });
    assert_eq!(negotiate(&mut host, false), Some(Version::V5));
    // An isolated guest needs 6.1: none agreed.
    let mut host = Netvsp::new(HostConfig {
        versions,
        ..HostConfig::default()
    });
    assert_eq!(negotiate(&mut host, true), None);
    assert_eq!(host.version(), None);
    // A host with no versions refuses all.
    let mut host = Netvsp::new(HostConfig {
        versions: VersionSet::NONE,
        ..HostConfig::default()
    });
    assert_eq!(negotiate(&mut host, false), None);
}

#[test]
fn buffers_subchannels_and_revocation() {
    let mut host = Netvsp::new(HostConfig::default());
    let v = set_up(&mut host);
    assert_eq!(host.ndis_version(), Some((6, 30)));
    assert_eq!(host.ndis_config().unwrap().mtu, 1514);

    // Sub-channels: at most the configured 7.
    let a = send(
        &mut host,
        &Message::SubchannelRequest {
            num_subchannels: 15,
        },
        20,
    )
    .unwrap();
    assert_eq!(
        completion(&a, 20),
        Message::SubchannelComplete {
            status: nvsp::status::SUCCESS,
            num_subchannels: 7
        }
    );
    assert!(a.contains(&Action::OfferSubchannels { count: 7 }));
    assert_eq!(host.subchannels(), 7);
    // Only once.
    assert!(send(
        &mut host,
        &Message::SubchannelRequest { num_subchannels: 1 },
        21
    )
    .is_err());
    // The send table spreads over the eight channels, and the guest takes it.
    let t = host.send_indirection_table().unwrap();
    let Message::SendIndirectionTable(parsed) =
        Message::parse(&bytes(&t), Sender::Host, Some(v)).unwrap()
    else {
        panic!()
    };
    assert_eq!(parsed.table[9], 1);

    // Revoking with the wrong id is refused; with the right one unmaps.
    assert_eq!(
        send(&mut host, &Message::RevokeReceiveBuffer { id: 1 }, 30),
        Err(HostError::Invalid("id"))
    );
    assert_eq!(
        send(
            &mut host,
            &Message::RevokeReceiveBuffer {
                id: nvsp::RECEIVE_BUFFER_ID
            },
            31
        )
        .unwrap(),
        vec![Action::UnmapReceiveBuffer { gpadl: RECV_GPADL }]
    );
    assert!(host.receive_buffer().is_none());
    assert_eq!(
        host.close().iter().copied().collect::<Vec<_>>(),
        vec![Action::UnmapSendBuffer { gpadl: SEND_GPADL }]
    );
    assert_eq!(host.version(), None);
}

#[test]
fn rndis_packets_in_sections_and_page_ranges() {
    let mut host = Netvsp::new(HostConfig::default());
    set_up(&mut host);
    let pkt = |channel, section_index, section_size| {
        bytes(&Message::SendRndisPacket(nvsp::RndisPacket {
            channel,
            section_index,
            section_size,
        }))
    };
    let on = |host: &mut Netvsp, ch: u16, b: &[u8], ranges: Option<u32>| {
        host.on_packet(
            &GuestPacket {
                channel: ch,
                bytes: b,
                transaction_id: 77,
                page_ranges_len: ranges,
            },
            &gpadls,
        )
        .map(|a| a.iter().copied().collect::<Vec<_>>())
    };
    let a = on(
        &mut host,
        0,
        &pkt(nvsp::RndisChannel::Control, 3, 100),
        None,
    )
    .unwrap();
    assert_eq!(
        a,
        vec![Action::Rndis {
            channel: 0,
            kind: nvsp::RndisChannel::Control,
            source: RndisSource::SendBuffer {
                section: 3,
                offset: 3 * SEND_SECTION_SIZE,
                len: 100
            },
            transaction_id: 77
        }]
    );
    let a = on(
        &mut host,
        0,
        &pkt(nvsp::RndisChannel::Data, nvsp::NO_SECTION, 0),
        Some(1514),
    )
    .unwrap();
    assert!(matches!(
        a[0],
        Action::Rndis {
            source: RndisSource::PageRanges { len: 1514 },
            ..
        }
    ));
    // Lies: a section past the buffer, a length past the section, an empty
    // one, no ranges for a ranges packet, a sub-channel never allocated.
    let sections = SEND_SIZE / SEND_SECTION_SIZE;
    for (b, ch, ranges) in [
        (pkt(nvsp::RndisChannel::Data, sections, 10), 0, None),
        (
            pkt(nvsp::RndisChannel::Data, 0, SEND_SECTION_SIZE + 1),
            0,
            None,
        ),
        (pkt(nvsp::RndisChannel::Data, 0, 0), 0, None),
        (pkt(nvsp::RndisChannel::Data, nvsp::NO_SECTION, 0), 0, None),
        (
            pkt(nvsp::RndisChannel::Data, nvsp::NO_SECTION, 0),
            0,
            Some(0),
        ),
        (pkt(nvsp::RndisChannel::Data, 0, 10), 0, Some(10)),
        (pkt(nvsp::RndisChannel::Data, 0, 10), 1, None),
    ] {
        assert!(on(&mut host, ch, &b, ranges).is_err());
    }
    // A sub-channel carries data only.
    send(
        &mut host,
        &Message::SubchannelRequest { num_subchannels: 2 },
        5,
    )
    .unwrap();
    assert!(on(&mut host, 2, &pkt(nvsp::RndisChannel::Data, 0, 10), None).is_ok());
    assert!(on(&mut host, 3, &pkt(nvsp::RndisChannel::Data, 0, 10), None).is_err());
    assert_eq!(
        on(
            &mut host,
            1,
            &bytes(&Message::RevokeSendBuffer { id: 0 }),
            None
        ),
        Err(HostError::OutOfOrder(
            nvsp::MessageType::RevokeSendBuffer as u32
        ))
    );
}

#[test]
fn out_of_order_and_unknown_gpadls() {
    let mut host = Netvsp::new(HostConfig::default());
    let recv = Message::SendReceiveBuffer {
        gpadl: RECV_GPADL,
        id: 1,
    };
    assert!(matches!(
        send(&mut host, &recv, 1),
        Err(HostError::OutOfOrder(_))
    ));
    assert!(send(
        &mut host,
        &Message::SendNdisVersion {
            major: 6,
            minor: 30
        },
        1
    )
    .is_err());
    negotiate(&mut host, false).unwrap();
    // A second INIT after success.
    assert!(send(&mut host, &Message::Init { min: 2, max: 2 }, 1).is_err());
    assert!(send(
        &mut host,
        &Message::SendNdisVersion { major: 5, minor: 0 },
        1
    )
    .is_err());
    let unknown = Message::SendReceiveBuffer { gpadl: 9, id: 1 };
    assert_eq!(
        send(&mut host, &unknown, 1),
        Err(HostError::Invalid("gpadl_handle"))
    );
    // Sub-channels need the receive buffer first.
    assert!(send(
        &mut host,
        &Message::SubchannelRequest { num_subchannels: 1 },
        1
    )
    .is_err());
    send(&mut host, &recv, 1).unwrap();
    assert!(send(&mut host, &recv, 1).is_err(), "mapped twice");
    // Host-only messages from the guest do not parse.
    let ic = Message::InitComplete(nvsp::InitComplete {
        negotiated_version: 0,
        max_mdl_chain_len: 0,
        status: 1,
    });
    assert!(matches!(
        send(&mut host, &ic, 1),
        Err(HostError::Malformed(_))
    ));
}

#[test]
fn receive_ranges_are_allocated_and_completed_once() {
    let mut host = Netvsp::new(HostConfig::default());
    set_up(&mut host);
    let r1 = host.alloc_receive(100).unwrap();
    assert_eq!((r1.offset, r1.len), (0, RECV_SECTION_SIZE));
    let r2 = host.alloc_receive(65536).unwrap();
    assert_eq!(r2.offset, RECV_SECTION_SIZE);
    assert_eq!(r2.len, 38 * RECV_SECTION_SIZE);
    assert_eq!(host.receive_slots_in_use(), 39);
    let complete = |host: &mut Netvsp, tid| {
        let b = bytes(&Message::SendRndisPacketComplete { status: 1 });
        host.on_packet(
            &GuestPacket {
                channel: 0,
                bytes: &b,
                transaction_id: tid,
                page_ranges_len: None,
            },
            &gpadls,
        )
    };
    // A made-up id, a partial run, a longer run: refused.
    assert!(complete(&mut host, 12345).is_err());
    assert!(complete(&mut host, r2.transaction_id - 1).is_err());
    assert!(complete(&mut host, r1.transaction_id + 1).is_err());
    assert!(complete(&mut host, r1.transaction_id).is_ok());
    assert!(complete(&mut host, r1.transaction_id).is_err(), "twice");
    assert_eq!(host.receive_slots_in_use(), 38);
    // The freed slot is reused.
    assert_eq!(host.alloc_receive(1).unwrap().offset, 0);
    assert!(host.alloc_receive(0).is_none());
    assert!(host.alloc_receive(RECV_SIZE).is_none());
}

// ---------------------------------------------------------------------------
// RNDIS, host side, driven by the guest's builders.

struct Rig {
    dev: RndisDevice,
    out: Vec<u8>,
    req: u32,
}

impl Rig {
    fn new() -> Rig {
        let mut r = Rig {
            dev: RndisDevice::new(DeviceConfig::new(MAC_A)),
            out: vec![0u8; 4096],
            req: 0,
        };
        let init = rndis::Message::Initialize(InitRequest {
            req_id: 1,
            major: rndis::MAJOR_VERSION,
            minor: rndis::MINOR_VERSION,
            max_xfer_size: rndis::GUEST_MAX_XFER_SIZE,
        });
        let rndis::Message::InitializeComplete(c) = r.call(&init) else {
            panic!()
        };
        assert_eq!(c.status, rndis::status::SUCCESS);
        assert_eq!(c.packet_alignment().unwrap(), 8);
        r
    }

    /// Sends a guest message, returns the device's reply parsed as the
    /// guest parses it.
    fn call(&mut self, m: &rndis::Message<'_>) -> rndis::Message<'_> {
        let mut b = vec![0u8; 2048];
        let n = m.write(&mut b).unwrap();
        match self.dev.on_message(&b[..n], &mut self.out).unwrap() {
            Outcome::Reply(len) => rndis::Message::parse(&self.out[..len]).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn query(&mut self, oid: u32, info: &[u8]) -> (u32, Vec<u8>) {
        self.req += 1;
        let req_id = self.req;
        match self.call(&rndis::Message::Query(Request { req_id, oid, info })) {
            rndis::Message::QueryComplete(c) => {
                assert_eq!(c.req_id, req_id);
                (c.status, c.info.to_vec())
            }
            other => panic!("{other:?}"),
        }
    }

    fn set(&mut self, oid: u32, info: &[u8]) -> u32 {
        self.req += 1;
        let req_id = self.req;
        match self.call(&rndis::Message::Set(Request { req_id, oid, info })) {
            rndis::Message::SetComplete { req_id: r, status } => {
                assert_eq!(r, req_id);
                status
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn rndis_queries_answer_what_the_guest_asks() {
    let mut r = Rig::new();
    let ok = rndis::status::SUCCESS;
    let (s, info) = r.query(oid::P802_3_PERMANENT_ADDRESS, &[]);
    assert_eq!((s, ndis::info_mac(&info).unwrap()), (ok, MAC_A));
    let (s, info) = r.query(oid::GEN_MAXIMUM_FRAME_SIZE, &[]);
    assert_eq!((s, ndis::info_u32(&info).unwrap()), (ok, 1500));
    let (_, info) = r.query(oid::GEN_LINK_SPEED, &[]);
    assert_eq!(ndis::info_u32(&info).unwrap(), 100_000_000);
    let (_, info) = r.query(oid::GEN_MEDIA_CONNECT_STATUS, &[]);
    assert_eq!(ndis::info_u32(&info).unwrap(), ndis::MEDIA_STATE_CONNECTED);

    // Offload capabilities, for each version's query: the guest's checks
    // pass and find checksum and LSOv2 for both IP versions.
    for v in nvsp::GUEST_VERSIONS {
        let mut q = [0u8; ndis::OFFLOAD_SIZE];
        let n = OffloadCaps::write_query(&mut q, v).unwrap();
        let (s, info) = r.query(oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, &q[..n]);
        assert_eq!(s, ok);
        let caps = OffloadCaps::parse(&info).unwrap();
        assert_eq!(caps.header, OffloadCaps::query_header(v));
        assert!(caps.tx_tcp4() && caps.tx_udp4() && caps.tx_tcp6() && caps.tx_udp6());
        assert_eq!(caps.lso4(), Some(62780));
        assert_eq!(caps.lso6(), Some(62780));
    }
    let mut q = [0u8; 64];
    let n = RssCaps {
        header: RssCaps::QUERY_HEADER,
        ..RssCaps::default()
    }
    .write(&mut q)
    .unwrap();
    let (_, info) = r.query(oid::GEN_RECEIVE_SCALE_CAPABILITIES, &q[..n]);
    let caps = RssCaps::parse(&info).unwrap();
    assert_eq!(caps.num_recv_que, 8);
    assert_eq!(caps.table_size(), ndis::ITAB_NUM);
    let (s, _) = r.query(0x1234_5678, &[]);
    assert_eq!(s, rndis::status::NOT_SUPPORTED);
}

#[test]
fn rndis_sets_round_trip() {
    let mut r = Rig::new();
    let ok = rndis::status::SUCCESS;
    assert_eq!(
        r.set(oid::GEN_CURRENT_PACKET_FILTER, &filter::OPEN.to_le_bytes()),
        ok
    );
    assert_eq!(r.dev.packet_filter(), filter::OPEN);
    let (_, info) = r.query(oid::GEN_CURRENT_PACKET_FILTER, &[]);
    assert_eq!(ndis::info_u32(&info).unwrap(), filter::OPEN);
    assert_eq!(
        r.set(oid::GEN_CURRENT_PACKET_FILTER, &[1, 2]),
        rndis::status::INVALID_DATA
    );

    // A new address, then the address query says so.
    let mut b = [0u8; 6];
    ndis::write_mac(&mut b, &MAC_B).unwrap();
    assert_eq!(r.set(oid::P802_3_CURRENT_ADDRESS, &b), ok);
    let (_, info) = r.query(oid::P802_3_CURRENT_ADDRESS, &[]);
    assert_eq!(ndis::info_mac(&info).unwrap(), MAC_B);
    assert_eq!(
        r.set(oid::P802_3_CURRENT_ADDRESS, &MC),
        rndis::status::INVALID_DATA
    );

    // Multicast list.
    let mut b = [0u8; 12];
    ndis::write_mac_list(&mut b, &[MC, MC_OTHER]).unwrap();
    assert_eq!(r.set(oid::P802_3_MULTICAST_LIST, &b), ok);
    assert_eq!(r.dev.multicast(), &[MC, MC_OTHER]);
    assert_eq!(
        r.set(oid::P802_3_MULTICAST_LIST, &vec![1u8; 6 * 33]),
        rndis::status::INVALID_DATA
    );

    // Offload parameters as the guest sends them for each version.
    let p = ndis::OffloadParams {
        ip_v4_csum: ndis::offload::TX_RX_ENABLED,
        tcp_ip_v4_csum: ndis::offload::TX_RX_ENABLED,
        udp_ip_v6_csum: ndis::offload::TX_RX_ENABLED,
        lso_v2_ipv4: ndis::offload::ENABLED,
        ..Default::default()
    };
    let mut b = [0u8; 64];
    let n = p.write(&mut b, Version::V61).unwrap();
    assert_eq!(r.set(oid::TCP_OFFLOAD_PARAMETERS, &b[..n]), ok);
    let got = r.dev.offload();
    assert_eq!(got.tcp_ip_v4_csum, ndis::offload::TX_RX_ENABLED);
    assert_eq!(got.udp_ip_v6_csum, ndis::offload::TX_RX_ENABLED);
    assert_eq!(got.lso_v2_ipv4, ndis::offload::ENABLED);
    // A later change of one field leaves the others.
    let p2 = ndis::OffloadParams {
        lso_v2_ipv4: ndis::offload::DISABLED,
        ..Default::default()
    };
    let n = p2.write(&mut b, Version::V4).unwrap();
    assert_eq!(r.set(oid::TCP_OFFLOAD_PARAMETERS, &b[..n]), ok);
    assert_eq!(r.dev.offload().lso_v2_ipv4, ndis::offload::DISABLED);
    assert_eq!(r.dev.offload().tcp_ip_v4_csum, ndis::offload::TX_RX_ENABLED);
    // Coalescing takes both IP versions.
    assert!(!r.dev.coalesces());
    for (v4, v6, on) in [(ndis::offload::ENABLED, 0, false), (0, ndis::offload::ENABLED, true), (ndis::offload::DISABLED, 0, false)] {
        let p = ndis::OffloadParams { rsc_ip_v4: v4, rsc_ip_v6: v6, ..Default::default() };
        let n = p.write(&mut b, Version::V61).unwrap();
        assert_eq!(r.set(oid::TCP_OFFLOAD_PARAMETERS, &b[..n]), ok);
        assert_eq!(r.dev.coalesces(), on);
    }

    // RSS: key and table kept; a table entry past the queues refused.
    let table: Vec<u32> = (0..128).map(|i| i % 8).collect();
    let mut b = vec![0u8; 1024];
    let n = ndis::write_rss_params(
        &mut b,
        0,
        hash::GUEST_DEFAULT,
        &table,
        &toeplitz::DEFAULT_KEY,
    )
    .unwrap();
    assert_eq!(r.set(oid::GEN_RECEIVE_SCALE_PARAMETERS, &b[..n]), ok);
    let rss = r.dev.rss().unwrap();
    assert_eq!(rss.key(), &toeplitz::DEFAULT_KEY);
    assert_eq!(rss.table().len(), 128);
    assert_eq!(rss.table()[13], 5);
    let bad: Vec<u32> = (0..128).map(|i| i % 9).collect();
    let n = ndis::write_rss_params(&mut b, 0, hash::GUEST_DEFAULT, &bad, &toeplitz::DEFAULT_KEY)
        .unwrap();
    assert_eq!(
        r.set(oid::GEN_RECEIVE_SCALE_PARAMETERS, &b[..n]),
        rndis::status::INVALID_DATA
    );
    assert_eq!(r.dev.rss().unwrap().table()[13], 5, "unchanged");
    assert_eq!(r.set(0x0102_0304, &[]), rndis::status::NOT_SUPPORTED);
    let n = ndis::write_rss_params(
        &mut b,
        ndis::rss_flag::DISABLE_RSS,
        0,
        &[],
        &toeplitz::DEFAULT_KEY,
    )
    .unwrap();
    assert_eq!(r.set(oid::GEN_RECEIVE_SCALE_PARAMETERS, &b[..n]), ok);
    assert!(r.dev.rss().is_none());
}

#[test]
fn rndis_keepalive_reset_halt_and_order() {
    let mut dev = RndisDevice::new(DeviceConfig::new(MAC_A));
    let mut out = [0u8; 512];
    let mut b = [0u8; 256];
    let q = rndis::Message::Query(Request {
        req_id: 1,
        oid: oid::GEN_LINK_SPEED,
        info: &[],
    });
    let n = q.write(&mut b).unwrap();
    assert!(matches!(
        dev.on_message(&b[..n], &mut out),
        Err(HostError::OutOfOrder(_))
    ));
    let mut r = Rig::new();
    match r.call(&rndis::Message::KeepAlive { req_id: 9 }) {
        rndis::Message::KeepAliveComplete { req_id: 9, status } => {
            assert_eq!(status, rndis::status::SUCCESS)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        r.call(&rndis::Message::Reset),
        rndis::Message::ResetComplete { .. }
    ));
    let n = rndis::Message::Halt { req_id: 3 }.write(&mut b).unwrap();
    assert_eq!(r.dev.on_message(&b[..n], &mut out), Ok(Outcome::Nothing));
    let n = rndis::Message::KeepAlive { req_id: 4 }
        .write(&mut b)
        .unwrap();
    assert!(r.dev.on_message(&b[..n], &mut out).is_err(), "halted");
}

#[test]
fn link_indications_parse_as_the_guest_expects() {
    let mut r = Rig::new();
    let mut out = [0u8; 64];
    let n = r.dev.link_change(false, &mut out).unwrap();
    let rndis::Message::IndicateStatus(i) = rndis::Message::parse(&out[..n]).unwrap() else {
        panic!()
    };
    assert_eq!(i.event().unwrap(), rndis::StatusEvent::MediaDisconnect);
    let (_, info) = r.query(oid::GEN_MEDIA_CONNECT_STATUS, &[]);
    assert_eq!(
        ndis::info_u32(&info).unwrap(),
        ndis::MEDIA_STATE_DISCONNECTED
    );
    let n = r.dev.link_change(true, &mut out).unwrap();
    let rndis::Message::IndicateStatus(i) = rndis::Message::parse(&out[..n]).unwrap() else {
        panic!()
    };
    assert_eq!(i.event().unwrap(), rndis::StatusEvent::MediaConnect);
    let n = r.dev.link_speed_change(400_000_000, &mut out).unwrap();
    let rndis::Message::IndicateStatus(i) = rndis::Message::parse(&out[..n]).unwrap() else {
        panic!()
    };
    assert_eq!(
        i.event().unwrap(),
        rndis::StatusEvent::LinkSpeed(400_000_000)
    );
}

#[test]
fn guest_packets_become_tx_frames() {
    let mut r = Rig::new();
    let f = v4_frame(frame::PROTO_TCP);
    let ppis = [
        Ppi::Checksum(ChecksumInfo::tx(ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_TCP, 34).unwrap()),
        Ppi::Lso(LsoInfo::v2(1448, 34, false).unwrap()),
        Ppi::Vlan(VlanInfo::new(0, false, 100).unwrap()),
    ];
    let mut b = vec![0u8; 1024];
    let head = rndis::write_packet_header(&mut b, &ppis, f.len()).unwrap();
    b[head..head + f.len()].copy_from_slice(&f);
    let msg = &b[..head + f.len()];
    let mut out = [0u8; 64];
    let Outcome::Frame(t) = r.dev.on_message(msg, &mut out).unwrap() else {
        panic!()
    };
    assert_eq!(t.data, &f[..]);
    assert_eq!(t.offset, head);
    assert_eq!(&msg[t.offset..t.offset + t.data.len()], &f[..]);
    assert_eq!(
        t.checksum,
        Some(ChecksumInfo::tx(ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_TCP, 34).unwrap())
    );
    assert_eq!(t.lso.unwrap().mss(), 1448);
    assert_eq!(t.vlan.unwrap().vlan_id(), 100);
}

#[test]
fn received_packets_carry_checksum_vlan_and_rss_hash() {
    let mut r = Rig::new();
    // Microsoft's RSS verification flow: 66.9.149.187:2794 to
    // 161.142.100.80:1766 hashes to 0x51ccc178 under the default key.
    let mut tcp = tcp_header(2794, 1766, 1, 0x10, &[]);
    tcp.extend_from_slice(PAYLOAD);
    let mut ip = ipv4(frame::PROTO_TCP, 1, &tcp, None);
    ip[12..16].copy_from_slice(&[66, 9, 149, 187]);
    ip[16..20].copy_from_slice(&[161, 142, 100, 80]);
    let mut f = eth(MAC_A, MAC_B, frame::ETHERTYPE_IPV4);
    f.extend(ip);
    let c = ChecksumInfo::tx(
        ChecksumInfo::TX_IPV4 | ChecksumInfo::TX_IP_HEADER | ChecksumInfo::TX_TCP,
        34,
    );
    fill_checksums(&mut f, c.unwrap()).unwrap();

    // Without RSS: checksums verified, no hash, queue 0.
    let mut out = vec![0u8; 2048];
    let vlan = VlanInfo::new(5, false, 42);
    let (n, q) = r.dev.build_rx(&f, vlan, &mut out).unwrap();
    assert_eq!(q, 0);
    let rndis::Message::Packet(p) = rndis::Message::parse(&out[..n]).unwrap() else {
        panic!()
    };
    assert_eq!(p.data, &f[..]);
    let info = p.info().unwrap();
    let cs = info.checksum.unwrap();
    assert!(cs.has(ChecksumInfo::RX_IP_SUCCEEDED | ChecksumInfo::RX_TCP_SUCCEEDED));
    assert_eq!(info.vlan, vlan);
    assert_eq!(info.hash_value, None);

    // With RSS: the hash and the table's queue.
    let table: Vec<u32> = (0..128).map(|i| (i * 3) % 8).collect();
    let mut b = vec![0u8; 1024];
    let k = ndis::write_rss_params(
        &mut b,
        0,
        hash::GUEST_DEFAULT,
        &table,
        &toeplitz::DEFAULT_KEY,
    )
    .unwrap();
    assert_eq!(
        r.set(oid::GEN_RECEIVE_SCALE_PARAMETERS, &b[..k]),
        rndis::status::SUCCESS
    );
    let (n, q) = r.dev.build_rx(&f, None, &mut out).unwrap();
    let rndis::Message::Packet(p) = rndis::Message::parse(&out[..n]).unwrap() else {
        panic!()
    };
    let info = p.info().unwrap();
    assert_eq!(info.hash_value, Some(0x51cc_c178));
    assert_eq!(info.hash_info, Some(hash::FUNC_TOEPLITZ | hash::TCP_IPV4));
    assert_eq!(u32::from(q), table[(0x51cc_c178u32 % 128) as usize]);

    // A corrupted checksum is not claimed verified.
    let mut g = f.clone();
    *g.last_mut().unwrap() ^= 1;
    let (n, _) = r.dev.build_rx(&g, None, &mut out).unwrap();
    let rndis::Message::Packet(p) = rndis::Message::parse(&out[..n]).unwrap() else {
        panic!()
    };
    assert_eq!(p.info().unwrap().checksum, None);
    // Unless the host filled them in itself: then they are claimed unread.
    // The header alone, with the frame after it, is the whole message.
    let mut head = vec![0u8; 256];
    let (h, _) = r
        .dev
        .build_rx_header(&g, None, RxChecksums::Filled, &mut head)
        .unwrap();
    let mut whole = head[..h].to_vec();
    whole.extend_from_slice(&g);
    let rndis::Message::Packet(p) = rndis::Message::parse(&whole).unwrap() else {
        panic!()
    };
    assert_eq!(p.data, &g[..]);
    let cs = p.info().unwrap().checksum.unwrap();
    assert!(cs.has(ChecksumInfo::RX_IP_SUCCEEDED | ChecksumInfo::RX_TCP_SUCCEEDED));
    let (h, _) = r
        .dev
        .build_rx_header(&g, None, RxChecksums::Unverified, &mut head)
        .unwrap();
    assert_eq!(&head[..h], &out[..n - g.len()]);
    // UDP hashes on addresses only.
    let u = v4_frame(frame::PROTO_UDP);
    let (value, kind) = r.dev.rss_hash(&u).unwrap();
    assert_eq!(kind, hash::FUNC_TOEPLITZ | hash::IPV4);
    let Addrs::V4(s, d) = frame::parse(&u).unwrap().addrs else {
        panic!()
    };
    assert_eq!(
        value,
        toeplitz::hash_ipv4(&toeplitz::DEFAULT_KEY, s, d, None)
    );
}

// ---------------------------------------------------------------------------
// The guest's side of offloads: LSO preparation, tags, software checksums.

#[test]
fn a_prepared_lso_frame_carries_zero_lengths_and_segments_the_same() {
    for v6 in [false, true] {
        let l4 = if v6 { 54 } else { 34 };
        let mut f = lso_frame(v6, 3000);
        // As the stack builds it: real lengths, a stale checksum.
        let ip_len = (f.len() - 14) as u16;
        if v6 {
            f[18..20].copy_from_slice(&(ip_len - 40).to_be_bytes());
        } else {
            f[16..18].copy_from_slice(&ip_len.to_be_bytes());
            f[24..26].copy_from_slice(&[0x12, 0x34]);
        }
        f[l4 + 16..l4 + 18].copy_from_slice(&[0xab, 0xcd]);
        let mut prepared = f.clone();
        prepare_lso(&mut prepared).unwrap();
        let addrs = frame::parse(&prepared).unwrap().addrs;
        assert_eq!(be16(&prepared, l4 + 16), pseudo_sum(&addrs, frame::PROTO_TCP, 0), "v6={v6}");
        if v6 {
            assert_eq!(be16(&prepared, 18), 0);
        } else {
            assert_eq!((be16(&prepared, 16), be16(&prepared, 24)), (0, 0));
        }
        // The host's segments do not depend on the fields prepared.
        let lso = LsoInfo::v2(1000, l4 as u32, v6).unwrap();
        let (mut a, mut b) = (Segmenter::new(&f, lso).unwrap(), Segmenter::new(&prepared, lso).unwrap());
        let (mut x, mut y) = (vec![0u8; 2000], vec![0u8; 2000]);
        let mut n = 0;
        while let Some(r) = a.next_segment(&mut x) {
            let len = r.unwrap();
            assert_eq!(b.next_segment(&mut y).unwrap().unwrap(), len);
            assert_eq!(x[..len], y[..len]);
            n += 1;
        }
        assert_eq!(n, 3);
    }
    let mut udp = v4_frame(frame::PROTO_UDP);
    assert!(prepare_lso(&mut udp).is_err(), "LSO of UDP");
    assert!(prepare_lso_prefix(&mut udp).is_err(), "LSO of UDP, prefix");
}

#[test]
fn a_prepared_prefix_is_the_start_of_the_prepared_frame() {
    for v6 in [false, true] {
        let l4 = if v6 { 54 } else { 34 };
        let f = lso_frame(v6, 3000);
        let mut whole = f.clone();
        prepare_lso(&mut whole).unwrap();
        for len in [l4 + 18, l4 + 20, l4 + 200, f.len()] {
            let mut prefix = f[..len].to_vec();
            prepare_lso_prefix(&mut prefix).unwrap();
            assert_eq!(prefix, whole[..len], "v6={v6}, {len} bytes");
        }
        // One that stops before the TCP checksum cannot be prepared.
        assert!(prepare_lso_prefix(&mut f[..l4 + 16].to_vec()).is_err(), "v6={v6}");
    }
}

/// The pseudo-header sum (folded, not complemented), computed naively.
fn pseudo_sum(addrs: &Addrs, proto: u8, len: u32) -> u16 {
    let mut p = Vec::new();
    match addrs {
        Addrs::V4(s, d) => {
            p.extend_from_slice(s);
            p.extend_from_slice(d);
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        Addrs::V6(s, d) => {
            p.extend_from_slice(s);
            p.extend_from_slice(d);
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
    }
    !naive_csum(&p)
}

#[test]
fn untag_and_retag_move_the_addresses_around_the_tag() {
    let plain = v4_frame(frame::PROTO_TCP);
    let mut tagged = plain[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0xa0, 0x2a]);
    tagged.extend_from_slice(&plain[12..]);
    assert_eq!(frame::vlan_tci(&tagged), Some(0xa02a));
    assert_eq!(frame::vlan_tci(&plain), None);

    let mut f = tagged.clone();
    assert_eq!(frame::untag(&mut f), Some(0xa02a));
    assert_eq!(f[4..], plain[..]);
    assert!(frame::retag(&mut f, 0xa02a));
    assert_eq!(f, tagged);

    let mut untagged = plain.clone();
    assert_eq!(frame::untag(&mut untagged), None);
    assert_eq!(untagged, plain, "an untagged frame is left alone");
    assert!(!frame::retag(&mut [0u8; 17], 1), "too short to hold a tagged header");
    assert_eq!(frame::untag(&mut [0x81, 0x00]), None);
}

#[test]
fn a_partial_checksum_is_completed_in_software() {
    for (f, l4, field) in [
        (v4_frame(frame::PROTO_UDP), 34, 6),
        (v4_frame(frame::PROTO_TCP), 34, 16),
        (v6_frame(frame::PROTO_TCP), 54, 16),
    ] {
        let h = frame::parse(&f).unwrap();
        let mut g = f.clone();
        if l4 == 34 {
            // The stack fills the IPv4 header checksum itself.
            let ip = naive_csum(&g[14..34]);
            g[24..26].copy_from_slice(&ip.to_be_bytes());
        }
        // CHECKSUM_PARTIAL: the field holds the pseudo-header sum.
        let pseudo = pseudo_sum(&h.addrs, h.proto, (h.end - h.l4) as u32);
        g[l4 + field..l4 + field + 2].copy_from_slice(&pseudo.to_be_bytes());
        frame::fill_partial_checksum(&mut g, l4, field).unwrap();
        assert!(frame::verify(&g, &h), "checksum of {:?}", h.proto);
        let past_end = g.len() - l4 - 1;
        assert!(frame::fill_partial_checksum(&mut g, l4, past_end).is_err());
        assert!(frame::fill_partial_checksum(&mut g, usize::MAX, 2).is_err());
    }
}

#[test]
fn a_whole_segment_carries_all_the_payload_with_valid_lengths_and_checksums() {
    for v6 in [false, true] {
        let l4 = if v6 { 54 } else { 34 };
        let f = lso_frame(v6, 30000);
        let lso = LsoInfo::v2(1448, l4 as u32, v6).unwrap();
        let mut s = Segmenter::whole(&f, lso).unwrap();
        assert_eq!(s.count(), 1);
        let mut out = vec![0u8; f.len()];
        let len = s.next_segment(&mut out).unwrap().unwrap();
        assert_eq!(len, f.len());
        assert!(s.next_segment(&mut out).is_none(), "one segment only");
        let h = frame::parse(&out).unwrap();
        assert_eq!(h.end, len, "IP length set");
        assert!(frame::verify(&out, &h), "checksums filled, v6={v6}");
        assert_eq!(out[l4 + 32..], f[l4 + 32..], "payload");
        assert_eq!(out[l4 + 13], f[l4 + 13], "flags of the first and last segment");
        let mut in_place = f.clone();
        assert_eq!(coalesce_in_place(&mut in_place, lso), Ok(len));
        assert_eq!(in_place, out, "coalesced in place, v6={v6}");
    }
    // An IPv4 packet over 64 KiB cannot be one.
    let lso = LsoInfo::v2(1448, 34, false).unwrap();
    assert!(Segmenter::whole(&lso_frame(false, 65536), lso).is_err());
}
