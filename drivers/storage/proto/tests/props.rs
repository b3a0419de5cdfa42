//! Property tests: every parser and state machine over arbitrary input
//! only ever returns typed results (no panic, no out-of-bounds), and the
//! invariants the kernel driver relies on hold whatever the host says.

mod common;

use common::Controller;
use proptest::prelude::*;
use storvsc_core::guest::{self, Class, HostEvent, Init, InitStep};
use storvsc_core::srb::{self, complete_io, Followup};
use storvsc_core::storvsp::{Action, Fault, GuestPacket, HostConfig, VersionSet};
use storvsc_core::target::Bytes;
use storvsc_core::vstor::{Operation, Packet, Srb, Version, GUEST_VERSIONS, PACKET_SIZE, SENSE_SIZE};

/// Bytes that often start with a known operation.
fn packet_bytes() -> impl Strategy<Value = Vec<u8>> {
    (1u32..=14, prop::collection::vec(any::<u8>(), 0..80), any::<bool>()).prop_map(|(op, mut rest, keep)| {
        if keep {
            rest
        } else {
            let mut b = op.to_le_bytes().to_vec();
            b.append(&mut rest);
            b
        }
    })
}

/// SCSI opcodes the target knows, and a few it does not.
const OPCODES: [u8; 24] = [
    0x00, 0x03, 0x12, 0x25, 0x9e, 0x08, 0x0a, 0x28, 0x2a, 0x88, 0x8a, 0x1a, 0x5a, 0xa0, 0x35, 0x91,
    0x42, 0x93, 0x41, 0x24, 0x85, 0xa1, 0xa3, 0xff,
];

/// A CDB that usually starts with an opcode the target knows.
fn cdb() -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(OPCODES.to_vec()), prop::collection::vec(any::<u8>(), 1..=16)).prop_map(|(op, mut c)| {
        c[0] = op;
        c
    })
}

/// A guest packet: raw bytes, or a well-formed EXECUTE_SRB with arbitrary
/// address, CDB, direction and length.
fn guest_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        packet_bytes(),
        (cdb(), 0u8..4, 0u8..2, 0u8..3, 0u32..9000, any::<bool>()).prop_map(|(cdb, dir, target, lun, len, tagged)| {
            let direction = srb::DataDirection::from_raw(dir).unwrap_or(srb::DataDirection::Read);
            let len = if direction == srb::DataDirection::None { 0 } else { len };
            let cmd = srb::Command { port: 0, path: 0, target, lun, cdb: &cdb, direction, data_len: len, tagged };
            srb::execute_srb(&cmd, Version::Win10).unwrap().to_bytes().to_vec()
        }),
    ]
}

fn version() -> impl Strategy<Value = Option<Version>> {
    prop::option::of(prop::sample::select(GUEST_VERSIONS.to_vec()))
}

fn srb() -> impl Strategy<Value = Srb> {
    prop::collection::vec(any::<u8>(), 52).prop_map(|b| Srb::decode(&b))
}

proptest! {
    #[test]
    fn packets_parse_totally_and_round_trip(b in packet_bytes(), min in 0usize..80) {
        if let Ok(p) = Packet::parse(&b, min) {
            prop_assert!(b.len() >= min.max(4));
            let again = Packet::parse(&p.to_bytes(), PACKET_SIZE).unwrap();
            prop_assert_eq!(again, p);
            // Every payload view decodes, and an SRB re-encodes to itself.
            let s = p.srb();
            let mut q = p;
            q.set_srb(&s);
            prop_assert_eq!(q.srb(), s);
            let _ = (p.properties(), p.wwn().active_names(), p.version(), p.sub_channel_count());
        }
    }

    #[test]
    fn host_packets_sort_totally(b in packet_bytes(), id in prop_oneof![Just(0u64), Just(guest::INIT_TRANS_ID), Just(guest::RESET_TRANS_ID), any::<u64>(), 0u64..20], tags in 0u32..16, v in version()) {
        match guest::host_packet(&b, id, v, tags) {
            Ok(HostEvent::Completion { tag, packet }) => {
                prop_assert!(tag < tags);
                prop_assert_eq!(guest::command_trans_id(tag), id);
                prop_assert_eq!(packet.operation, Operation::CompleteIo);
                prop_assert!(b.len() >= PACKET_SIZE);
            }
            Ok(HostEvent::Init(_)) => prop_assert_eq!(id, guest::INIT_TRANS_ID),
            Ok(HostEvent::Reset(_)) => prop_assert_eq!(id, guest::RESET_TRANS_ID),
            Ok(HostEvent::FcNames(_)) => prop_assert!(id != 0),
            Ok(HostEvent::Rescan) | Err(_) => {}
        }
    }

    #[test]
    fn completions_stay_within_the_request(sent in srb(), reply in srb(), fc in any::<bool>()) {
        let o = complete_io(&sent, &reply, fc);
        prop_assert!(o.transferred <= sent.data_transfer_length);
        prop_assert_eq!(o.transferred + o.resid, sent.data_transfer_length);
        prop_assert!(usize::from(o.sense_len) <= SENSE_SIZE);
        prop_assert!(o.sense[usize::from(o.sense_len)..].iter().all(|b| *b == 0));
        match o.followup {
            Followup::None => {}
            Followup::Rescan { target, lun } | Followup::Remove { target, lun } => {
                prop_assert_eq!((target, lun), (sent.target, sent.lun));
            }
        }
    }

    #[test]
    fn initialization_ends_within_its_steps(answers in prop::collection::vec(packet_bytes(), 0..10), class in prop::sample::select(vec![Class::Scsi, Class::Ide, Class::Fc])) {
        let (mut init, first) = Init::start(class);
        let mut proposed: Vec<u16> = Vec::new();
        let mut step = InitStep::Send(first);
        let mut replies = 0;
        for a in &answers {
            let InitStep::Send(p) = step else { break };
            if p.operation == Operation::QueryProtocolVersion {
                let v = p.version().0;
                prop_assert!(proposed.last().is_none_or(|last| *last > v), "newest first, once each");
                proposed.push(v);
            }
            step = init.on_reply(a);
            replies += 1;
        }
        // BEGIN, three versions, PROPERTIES, FCHBA_DATA, END.
        prop_assert!(replies <= 7);
        if let InitStep::Done(n) = step {
            prop_assert!(n.properties.max_transfer_bytes >= 4096);
            prop_assert_eq!(n.fc_names.is_some(), class == Class::Fc);
            prop_assert_eq!(proposed.last().copied(), Some(n.version.raw()));
        }
    }

    #[test]
    fn the_host_survives_any_guest(
        packets in prop::collection::vec((0u16..3, any::<u64>(), guest_bytes(), 0usize..9000), 0..24),
        fault in prop::option::of((prop::sample::select(Fault::ALL.to_vec()), 1u32..4)),
        sub in 0u16..4,
        versions in prop::sample::select(vec![VersionSet::ALL, VersionSet::up_to(Version::Win8), VersionSet::NONE]),
    ) {
        let mut c = Controller::new(HostConfig { max_sub_channels: sub, versions, ..HostConfig::default() });
        c.luns.add(0, 0, 0, 512, 64, true);
        c.luns.add(0, 0, 1, 4096, 8, false);
        // Half the runs start from an initialized controller.
        if versions == VersionSet::ALL && sub % 2 == 0 {
            c.init_ok();
        }
        if let Some((f, n)) = fault {
            c.host.arm(f, n);
        }
        for (channel, id, bytes, len) in packets {
            let mut data = vec![0u8; len];
            let p = GuestPacket { channel, trans_id: id, bytes: &bytes, data_len: len as u32 };
            if let Ok(actions) = c.host.on_packet(&p, &mut c.luns, &mut Bytes(&mut data)) {
                prop_assert!(!actions.is_empty());
                for a in actions.iter() {
                    if let Action::Send { len, bytes, .. } = a {
                        prop_assert!(*len <= PACKET_SIZE);
                        // What the host sends parses as a host packet (or is
                        // a deliberately short one).
                        let _ = guest::host_packet(&bytes[..*len], id, None, 16);
                    }
                    if let Action::OfferSubChannels(n) = a {
                        prop_assert!(*n >= 1 && *n <= sub);
                    }
                }
            }
        }
        prop_assert!(c.host.sub_channels() <= sub);
    }

    #[test]
    fn the_target_survives_any_cdb(cdb in cdb(), dir in 0u8..3, len in 0usize..9000, lun in 0u8..3) {
        let mut c = Controller::new(HostConfig::default());
        c.luns.add(0, 0, 0, 512, 64, true);
        c.luns.add(0, 0, 1, 4096, 8, false);
        c.init_ok();
        let direction = srb::DataDirection::from_raw(dir).unwrap();
        let len = if direction == srb::DataDirection::None { 0 } else { len };
        let mut data = vec![0u8; len];
        let o = c.command((0, 0, lun), &cdb, direction, &mut data);
        prop_assert!(o.transferred as usize <= len);
    }
}
