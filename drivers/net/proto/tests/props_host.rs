//! Property tests of the simulated host's side: whatever a guest sends,
//! the host's state machines never panic, and a refused message leaves
//! them exactly as they were; offloads and the switch over arbitrary
//! frames only ever return errors; segments that are produced verify.

use netvsc_core::frame;
use netvsc_core::ndis::filter;
use netvsc_core::netvsp::{GuestPacket, HostConfig, Netvsp};
use netvsc_core::nvsp::{self, Message};
use netvsc_core::offload::{coalesce_in_place, fill_checksums, Segmenter};
use netvsc_core::ppi::{ChecksumInfo, LsoInfo};
use netvsc_core::rndis_dev::{DeviceConfig, RndisDevice, GUEST_REQUESTS};
use netvsc_core::vswitch::{Port, Switch};
use proptest::prelude::*;

/// A guest packet: mostly well-formed NVSP messages with arbitrary fields,
/// sometimes raw bytes.
fn guest_packet() -> impl Strategy<Value = (u16, Vec<u8>, u64, Option<u32>)> {
    let types: Vec<u32> = nvsp::MessageType::ALL.iter().map(|t| *t as u32).collect();
    (
        prop::sample::select(types),
        prop::collection::vec(any::<u8>(), 0..60),
        0u16..4,
        any::<u64>(),
        prop::option::of(0u32..4096),
        any::<bool>(),
        // A plausible field value: small numbers, versions, gpadls.
        prop::sample::select(vec![
            0u32,
            1,
            2,
            7,
            0x30002,
            0x60001,
            0x100,
            0x101,
            0xffff_ffff,
        ]),
    )
        .prop_map(|(t, mut rest, ch, tid, ranges, raw, field)| {
            let mut b = if raw {
                Vec::new()
            } else {
                t.to_le_bytes().to_vec()
            };
            if !raw && rest.len() >= 8 {
                rest[..4].copy_from_slice(&field.to_le_bytes());
            }
            b.append(&mut rest);
            (if ch == 3 { ch } else { 0 }, b, tid, ranges)
        })
}

fn gpadls(h: u32) -> Option<u32> {
    match h {
        0x100 => Some(4 * 1024 * 1024),
        0x101 => Some(256 * 1024),
        2 => Some(100),
        _ => None,
    }
}

/// A C-guest-like start so that later messages meet a set-up host.
fn prelude() -> Vec<Vec<u8>> {
    let msgs = [
        Message::Init {
            min: 0x60001,
            max: 0x60001,
        },
        Message::SendReceiveBuffer {
            gpadl: 0x100,
            id: 1,
        },
        Message::SendSendBuffer {
            gpadl: 0x101,
            id: 0,
        },
    ];
    msgs.iter()
        .map(|m| {
            let mut b = vec![0u8; 64];
            let n = m.write(&mut b).unwrap();
            b.truncate(n);
            b
        })
        .collect()
}

proptest! {
    #[test]
    fn netvsp_survives_any_guest(
        set_up in any::<bool>(),
        packets in prop::collection::vec(guest_packet(), 0..40),
        allocs in prop::collection::vec(0u32..70000, 0..8),
    ) {
        let mut host = Netvsp::new(HostConfig::default());
        if set_up {
            for b in prelude() {
                let p = GuestPacket { channel: 0, bytes: &b, transaction_id: 1, page_ranges_len: None };
                host.on_packet(&p, &gpadls).unwrap();
            }
        }
        let mut tids = Vec::new();
        for len in allocs {
            if let Some(r) = host.alloc_receive(len) {
                prop_assert!(r.offset.checked_add(r.len).unwrap() <= host.receive_buffer().unwrap().size);
                prop_assert!(r.len >= len);
                tids.push(r.transaction_id);
            }
        }
        for (i, (channel, bytes, tid, ranges)) in packets.iter().enumerate() {
            // Sometimes complete a real receive range instead.
            let tid = if i % 3 == 0 { tids.get(i / 3).copied().unwrap_or(*tid) } else { *tid };
            let before = format!("{host:?}");
            let p = GuestPacket { channel: *channel, bytes, transaction_id: tid, page_ranges_len: *ranges };
            match host.on_packet(&p, &gpadls) {
                Ok(actions) => {
                    for a in actions.iter() {
                        if let netvsc_core::netvsp::Action::Rndis {
                            source: netvsc_core::netvsp::RndisSource::SendBuffer { offset, len, .. }, ..
                        } = a {
                            let s = host.send_buffer().unwrap();
                            prop_assert!(offset.checked_add(*len).unwrap() <= s.size);
                        }
                    }
                }
                Err(_) => prop_assert_eq!(before, format!("{host:?}")),
            }
        }
        host.close();
        prop_assert_eq!(host.version(), None);
    }

    #[test]
    fn rndis_device_survives_any_guest(
        msgs in prop::collection::vec(
            (prop::sample::select(GUEST_REQUESTS.to_vec()), 0u32..200, prop::collection::vec(any::<u8>(), 0..200), any::<bool>()),
            0..30),
    ) {
        let mut dev = RndisDevice::new(DeviceConfig::new([0, 0x15, 0x5d, 1, 2, 3]));
        let mut out = vec![0u8; 4096];
        // INITIALIZE first, so that the rest reaches the handlers.
        let mut init = vec![0u8; 64];
        let n = netvsc_core::rndis::Message::Initialize(netvsc_core::rndis::InitRequest {
            req_id: 1, major: 1, minor: 0, max_xfer_size: 0x4000,
        }).write(&mut init).unwrap();
        dev.on_message(&init[..n], &mut out).unwrap();
        for (ty, len, rest, raw) in msgs {
            let mut b = if raw { Vec::new() } else {
                let mut h = ty.to_le_bytes().to_vec();
                h.extend_from_slice(&len.to_le_bytes());
                h
            };
            b.extend_from_slice(&rest);
            let before = format!("{dev:?}");
            if dev.on_message(&b, &mut out).is_err() {
                prop_assert_eq!(before, format!("{dev:?}"));
            }
        }
    }

    #[test]
    fn offloads_and_switch_take_any_frame(
        mut f in prop::collection::vec(any::<u8>(), 0..400),
        ipv6 in any::<bool>(),
        csum in any::<u32>(),
        mss in 0u32..3000,
        off in 0u32..80,
    ) {
        // Often make it look like IP.
        if f.len() > 24 && csum & 1 == 0 {
            let (et, v) = if ipv6 { (0x86ddu16, 0x60u8) } else { (0x0800, 0x45) };
            f[12..14].copy_from_slice(&et.to_be_bytes());
            f[14] = v;
            if csum & 2 == 0 { f[14 + if ipv6 { 6 } else { 9 }] = 6; }
            if csum & 4 == 0 { f[16] = 0; f[17] = 0; if ipv6 { f[18] = 0; f[19] = 0; } }
        }
        let mut g = f.clone();
        let _ = fill_checksums(&mut g, ChecksumInfo(csum));
        if let Ok(mut s) = Segmenter::new(&f, LsoInfo::v2(mss, off, ipv6).unwrap_or(LsoInfo(0))) {
            let mut buf = vec![0u8; s.max_segment_len()];
            let mut n = 0;
            while let Some(r) = s.next_segment(&mut buf) {
                let len = r.unwrap();
                let seg = &buf[..len];
                let h = frame::parse(seg).unwrap();
                prop_assert!(frame::verify(seg, &h));
                n += 1;
                prop_assert!(n <= s.count());
            }
            prop_assert_eq!(n, s.count());
        }
        // Coalescing in place gives what the whole segment writes out, and
        // refuses the same frames.
        let lso = LsoInfo::v2(mss, off, ipv6).unwrap_or(LsoInfo(0));
        let mut in_place = f.clone();
        match (Segmenter::whole(&f, lso), coalesce_in_place(&mut in_place, lso)) {
            (Ok(mut s), Ok(len)) => {
                let mut out = vec![0u8; s.max_segment_len()];
                let whole_len = s.next_segment(&mut out).unwrap().unwrap();
                prop_assert_eq!(&in_place[..len], &out[..whole_len]);
            }
            (Err(_), Err(_)) => prop_assert_eq!(&in_place, &f),
            (whole, in_place) => prop_assert!(false, "whole {:?}, in place {:?}", whole.map(|_| ()), in_place),
        }
        let mut sw = Switch::new();
        let a = sw.add_port(Port::new(None, filter::PROMISCUOUS)).unwrap();
        let b = sw.add_port(Port::new(Some([2, 0, 0, 0, 0, 1]), filter::OPEN)).unwrap();
        if let Ok(set) = sw.forward(a, &f) {
            prop_assert!(!set.contains(a));
            prop_assert!(set.iter().all(|p| p == b));
        }
        let dev = RndisDevice::new(DeviceConfig::new([0, 1, 2, 3, 4, 5]));
        let mut out = vec![0u8; 1024];
        let _ = dev.build_rx(&f, None, &mut out);
    }
}

proptest! {
    /// The word-at-a-time sum agrees with a plain sum of 16-bit words,
    /// whatever the length and however the data is split into pieces of
    /// even length.
    #[test]
    fn checksum_matches_a_sum_of_16_bit_words(
        data in prop::collection::vec(any::<u8>(), 0..3000),
        cut in 0usize..1500,
    ) {
        let mut s: u64 = 0;
        for c in data.chunks(2) {
            s += u64::from(c[0]) << 8 | u64::from(c.get(1).copied().unwrap_or(0));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        prop_assert_eq!(frame::Csum::default().add(&data).fold(), s as u16);
        let cut = (cut * 2).min(data.len() & !1);
        let (a, b) = data.split_at(cut);
        prop_assert_eq!(frame::Csum::default().add(a).add(b).fold(), s as u16);
    }
}
