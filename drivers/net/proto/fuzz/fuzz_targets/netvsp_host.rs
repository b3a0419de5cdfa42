//! The host's NVSP state machine, and the RNDIS device behind it, driven by
//! arbitrary guest message sequences. Input: records of
//! `[channel, flags, len, bytes...]`; flags bit 0 gives the packet GPA-direct
//! page ranges, bit 1 first takes a receive range (completed later by a
//! record whose transaction id names it), bit 2 sends the bytes to the RNDIS
//! device instead. Whatever the guest sends: no panic, a refused message
//! changes nothing, every send-buffer range handed out lies within the
//! buffer, and receive ranges stay within the receive buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netvsc_core::netvsp::{Action, GuestPacket, HostConfig, Netvsp, RndisSource};
use netvsc_core::rndis_dev::{DeviceConfig, RndisDevice};

fn gpadls(h: u32) -> Option<u32> {
    match h {
        0x100 => Some(2 * 1024 * 1024),
        0x101 => Some(128 * 1024),
        _ => h.checked_mul(4096),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut host = Netvsp::new(HostConfig::default());
    let mut dev = RndisDevice::new(DeviceConfig::new([0, 0x15, 0x5d, 0, 0, 1]));
    let mut out = vec![0u8; 8192];
    let mut ranges: Vec<u64> = Vec::new();
    let mut rest = data;
    let mut steps = 0;
    while let [channel, flags, len, tail @ ..] = rest {
        steps += 1;
        if steps > 256 {
            break;
        }
        let len = usize::from(*len).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        if flags & 4 != 0 {
            let before = format!("{dev:?}");
            if dev.on_message(bytes, &mut out).is_err() {
                assert_eq!(before, format!("{dev:?}"));
            }
            continue;
        }
        if flags & 2 != 0 {
            if let Some(r) = host.alloc_receive((len as u32) * 97) {
                let size = host.receive_buffer().unwrap().size;
                assert!(u64::from(r.offset) + u64::from(r.len) <= u64::from(size));
                ranges.push(r.transaction_id);
            }
        }
        let tid = ranges.pop().unwrap_or(u64::from(*flags));
        let p = GuestPacket {
            channel: u16::from(*channel & 3),
            bytes,
            transaction_id: tid,
            page_ranges_len: (flags & 1 != 0).then_some(len as u32),
        };
        let before = format!("{host:?}");
        match host.on_packet(&p, &gpadls) {
            Ok(actions) => {
                for a in actions.iter() {
                    if let Action::Rndis {
                        source: RndisSource::SendBuffer { offset, len, .. },
                        ..
                    } = a
                    {
                        let s = host.send_buffer().unwrap();
                        assert!(u64::from(*offset) + u64::from(*len) <= u64::from(s.size));
                    }
                }
            }
            Err(_) => assert_eq!(before, format!("{host:?}")),
        }
    }
    host.close();
});
