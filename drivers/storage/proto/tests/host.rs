//! The guest's side driven end to end against the host engine: the
//! initialization sequence under every version and class, sub-channels,
//! the SCSI commands Linux sends at probe and for I/O against RAM LUNs, and
//! every host fault as the guest sees it.

mod common;

use common::Controller;
use storvsc_core::guest::{
    self, sub_channels_to_request, Class, HostEvent, InitError, InitStep, INIT_TRANS_ID,
    RESET_TRANS_ID,
};
use storvsc_core::srb::{self, sam, sense_codes, status, DataDirection, Followup, HostByte};
use storvsc_core::storvsp::{
    self, Fault, HostConfig, HostError, VersionSet, STATUS_INVALID_DEVICE_STATE,
};
use storvsc_core::target::{PRODUCT, VENDOR};
use storvsc_core::vstor::{FcWwn, Operation, Packet, Version, GUEST_VERSIONS, PACKET_SIZE};

const NONE: DataDirection = DataDirection::None;
const READ: DataDirection = DataDirection::Read;
const WRITE: DataDirection = DataDirection::Write;

fn ready(config: HostConfig) -> Controller {
    let mut c = Controller::new(config);
    c.luns.add(0, 0, 0, 512, 2048, true);
    c.luns.add(0, 0, 1, 4096, 256, false);
    c.init_ok();
    c
}

fn scsi() -> Controller {
    ready(HostConfig::default())
}

// ---------------------------------------------------------------------------
// Initialization.

#[test]
fn every_version_is_negotiated_newest_first() {
    for (i, v) in GUEST_VERSIONS.iter().enumerate() {
        let mut c = Controller::new(HostConfig {
            versions: VersionSet::up_to(*v),
            ..HostConfig::default()
        });
        let (end, sent) = c.init();
        let InitStep::Done(n) = end else {
            panic!("{v:?}: {end:?}");
        };
        assert_eq!(n.version, *v);
        // BEGIN, one query per version tried, PROPERTIES, END.
        assert_eq!(sent, 1 + (i + 1) + 2, "{v:?}");
        assert_eq!(c.host.version(), Some(*v));
        assert_eq!(n.properties, c.host.properties());
        assert_eq!(n.fc_names, None);
        assert_eq!(v.packet_size(), PACKET_SIZE);
        assert_eq!(v.srb_length(), 52);
    }
}

#[test]
fn a_host_without_a_common_version_fails_initialization() {
    let mut c = Controller::new(HostConfig {
        versions: VersionSet::NONE,
        ..HostConfig::default()
    });
    let (end, sent) = c.init();
    assert_eq!(end, InitStep::Failed(InitError::NoCommonVersion));
    assert_eq!(sent, 1 + GUEST_VERSIONS.len());
    assert_eq!(c.host.version(), None);
}

#[test]
fn fibre_channel_initialization_reads_the_active_names() {
    let wwn = FcWwn {
        primary_active: 0,
        primary_port: [1; 8],
        primary_node: [2; 8],
        secondary_port: [0x50, 0, 0, 0, 0, 0, 0, 3],
        secondary_node: [0x20, 0, 0, 0, 0, 0, 0, 4],
    };
    let mut c = Controller::new(HostConfig {
        class: Class::Fc,
        wwn,
        ..HostConfig::default()
    });
    let (end, sent) = c.init();
    let InitStep::Done(n) = end else { panic!("{end:?}") };
    assert_eq!(sent, 5);
    assert_eq!(n.fc_names, Some((0x2000_0000_0000_0004, 0x5000_0000_0000_0003)));
    let mut c = Controller::new(HostConfig {
        class: Class::Fc,
        wwn: FcWwn {
            primary_active: 1,
            ..wwn
        },
        ..HostConfig::default()
    });
    assert_eq!(c.init_ok().fc_names, Some((0x0202_0202_0202_0202, 0x0101_0101_0101_0101)));
}

#[test]
fn fchba_data_on_a_scsi_controller_is_refused() {
    let mut c = scsi();
    let out = c
        .send(0, INIT_TRANS_ID, &Packet::request(Operation::FcHbaData).to_bytes(), &mut [])
        .unwrap();
    let p = Packet::parse(&out.packets[0].1, PACKET_SIZE).unwrap();
    assert_eq!(p.status, storvsp::STATUS_INVALID_DEVICE_REQUEST);
}

/// Feeds the guest's initialization a bad answer at each of its steps.
fn init_with_bad_answer_at(step: usize, bad: impl Fn(&[u8]) -> Vec<u8>, class: Class) -> InitStep {
    let mut c = Controller::new(HostConfig {
        class,
        ..HostConfig::default()
    });
    let (mut init, mut packet) = guest::Init::start(class);
    for i in 0.. {
        let out = c
            .send(0, INIT_TRANS_ID, &packet.to_bytes(), &mut [])
            .unwrap();
        let mut bytes = out.packets[0].1.clone();
        if i == step {
            bytes = bad(&bytes);
        }
        match init.on_reply(&bytes) {
            InitStep::Send(p) => packet = p,
            end => return end,
        }
    }
    unreachable!()
}

#[test]
fn malformed_initialization_answers_fail_it_at_every_step() {
    // BEGIN, QUERY_PROTOCOL_VERSION, QUERY_PROPERTIES, FCHBA_DATA, END.
    for step in 0..5 {
        let short = init_with_bad_answer_at(step, |b| b[..PACKET_SIZE - 1].to_vec(), Class::Fc);
        assert!(
            matches!(short, InitStep::Failed(InitError::Malformed(_))),
            "step {step}: {short:?}"
        );
        let wrong_op = init_with_bad_answer_at(
            step,
            |b| {
                let mut b = b.to_vec();
                b[0] = Operation::EnumerateBus as u8;
                b
            },
            Class::Fc,
        );
        assert_eq!(
            wrong_op,
            InitStep::Failed(InitError::NotCompletion(Operation::EnumerateBus)),
            "step {step}"
        );
        let unknown_op = init_with_bad_answer_at(
            step,
            |b| {
                let mut b = b.to_vec();
                b[0] = 99;
                b
            },
            Class::Fc,
        );
        assert!(matches!(unknown_op, InitStep::Failed(InitError::Malformed(_))), "step {step}");
        let failed = init_with_bad_answer_at(
            step,
            |b| {
                let mut b = b.to_vec();
                b[8..12].copy_from_slice(&0xc000_0001u32.to_le_bytes());
                b
            },
            Class::Fc,
        );
        if step == 1 {
            // A refused version makes the guest try the next one.
            assert!(matches!(failed, InitStep::Done(n) if n.version == Version::Win8_1));
        } else {
            assert!(
                matches!(failed, InitStep::Failed(InitError::Status { status: 0xc000_0001, .. })),
                "step {step}: {failed:?}"
            );
        }
    }
}

#[test]
fn properties_without_a_usable_transfer_size_fail_initialization() {
    let mut c = Controller::new(HostConfig {
        max_transfer_bytes: 4095,
        ..HostConfig::default()
    });
    assert!(matches!(c.init().0, InitStep::Failed(InitError::Malformed(_))));
}

#[test]
fn answers_after_initialization_are_unexpected() {
    let mut c = Controller::new(HostConfig::default());
    let (mut init, mut packet) = guest::Init::start(Class::Scsi);
    let last = loop {
        let out = c.send(0, INIT_TRANS_ID, &packet.to_bytes(), &mut []).unwrap();
        match init.on_reply(&out.packets[0].1) {
            InitStep::Send(p) => packet = p,
            _ => break out.packets[0].1.clone(),
        }
    };
    assert_eq!(init.in_flight(), None);
    assert_eq!(init.on_reply(&last), InitStep::Failed(InitError::Unexpected));
}

#[test]
fn requests_out_of_order_are_answered_with_a_state_error() {
    let mut c = Controller::new(HostConfig::default());
    c.luns.add(0, 0, 0, 512, 16, false);
    // An SRB, properties and END before any version.
    for op in [
        Operation::ExecuteSrb,
        Operation::QueryProperties,
        Operation::EndInitialization,
        Operation::QueryProtocolVersion,
        Operation::CreateSubChannels,
    ] {
        let out = c.send(0, 5, &Packet::request(op).to_bytes(), &mut []).unwrap();
        let p = Packet::parse(&out.packets[0].1, PACKET_SIZE).unwrap();
        assert_eq!(p.status, STATUS_INVALID_DEVICE_STATE, "{op:?}");
    }
    assert_eq!(c.host.counters().out_of_order, 5);
    assert_eq!(c.host.counters().srbs_per_channel[0], 0);
    c.init_ok();
    // BEGIN again once ready.
    let out = c
        .send(0, 5, &Packet::request(Operation::BeginInitialization).to_bytes(), &mut [])
        .unwrap();
    assert_eq!(
        Packet::parse(&out.packets[0].1, PACKET_SIZE).unwrap().status,
        STATUS_INVALID_DEVICE_STATE
    );
}

#[test]
fn the_host_refuses_what_it_cannot_parse_or_never_receives() {
    let mut c = scsi();
    let begin = Packet::request(Operation::BeginInitialization).to_bytes();
    assert!(matches!(
        c.send(0, 1, &begin[..PACKET_SIZE - 1], &mut []),
        Err(HostError::Malformed(_))
    ));
    for op in [Operation::CompleteIo, Operation::EnumerateBus, Operation::RemoveDevice] {
        assert_eq!(
            c.send(0, 1, &Packet::new(op, 0, 0).to_bytes(), &mut []).unwrap_err(),
            HostError::WrongSender(op)
        );
    }
    let mut unknown = begin;
    unknown[0] = 0;
    assert!(matches!(c.send(0, 1, &unknown, &mut []), Err(HostError::Malformed(_))));
    assert_eq!(c.send(1, 1, &begin, &mut []).unwrap_err(), HostError::NoSuchChannel(1));
}

// ---------------------------------------------------------------------------
// Sub-channels.

#[test]
fn sub_channels_are_requested_from_the_host_maximum_and_cpus() {
    let mut c = ready(HostConfig {
        max_sub_channels: 3,
        ..HostConfig::default()
    });
    let props = c.host.properties();
    assert!(props.multi_channel());
    // 8 CPUs: 7 beyond the primary, but the host offers 3.
    let n = sub_channels_to_request(Class::Scsi, 8, &props);
    assert_eq!(n, 3);
    assert_eq!(sub_channels_to_request(Class::Scsi, 3, &props), 2);
    assert_eq!(sub_channels_to_request(Class::Scsi, 1, &props), 0);
    assert_eq!(sub_channels_to_request(Class::Ide, 8, &props), 0);
    let out = c
        .send(0, INIT_TRANS_ID, &guest::create_sub_channels(n).to_bytes(), &mut [])
        .unwrap();
    assert_eq!(out.offered, Some(3));
    let v = c.version.unwrap();
    assert_eq!(guest::check_completion(&out.packets[0].1, Operation::CreateSubChannels, v), Ok(()));
    // Only once.
    let again = c
        .send(0, INIT_TRANS_ID, &guest::create_sub_channels(1).to_bytes(), &mut [])
        .unwrap();
    assert_eq!(again.offered, None);
    assert!(matches!(
        guest::check_completion(&again.packets[0].1, Operation::CreateSubChannels, v),
        Err(InitError::Status { .. })
    ));
    // I/O on every channel offered, counted per channel.
    for ch in 0..=3 {
        let o = c.command_on(ch, (0, 0, 0), &[0, 0, 0, 0, 0, 0], NONE, &mut []);
        assert_eq!(o.result.raw(), 0);
    }
    assert_eq!(&c.host.counters().srbs_per_channel[..5], &[1, 1, 1, 1, 0]);
    let tur = srb::execute_srb(
        &srb::Command {
            port: 0,
            path: 0,
            target: 0,
            lun: 0,
            cdb: &[0; 6],
            direction: NONE,
            data_len: 0,
            tagged: false,
        },
        v,
    )
    .unwrap();
    assert_eq!(c.send(4, 1, &tur.to_bytes(), &mut []).unwrap_err(), HostError::NoSuchChannel(4));
}

#[test]
fn sub_channel_requests_beyond_the_maximum_or_without_multi_channel_fail() {
    for config in [
        HostConfig {
            max_sub_channels: 2,
            ..HostConfig::default()
        },
        HostConfig {
            max_sub_channels: 4,
            multi_channel: false,
            ..HostConfig::default()
        },
        HostConfig {
            class: Class::Ide,
            max_sub_channels: 4,
            ..HostConfig::default()
        },
    ] {
        let mut c = ready(config);
        let out = c
            .send(0, INIT_TRANS_ID, &guest::create_sub_channels(3).to_bytes(), &mut [])
            .unwrap();
        assert_eq!(out.offered, None, "{config:?}");
        assert_eq!(c.host.sub_channels(), 0);
    }
    assert!(!ready(HostConfig {
        class: Class::Ide,
        ..HostConfig::default()
    })
    .host
    .properties()
    .multi_channel());
}

// ---------------------------------------------------------------------------
// SCSI commands.

fn inquiry(evpd: bool, page: u8, alloc: u16) -> [u8; 6] {
    let a = alloc.to_be_bytes();
    [0x12, evpd as u8, page, a[0], a[1], 0]
}

#[test]
fn standard_inquiry_says_msft_virtual_disk() {
    let mut c = scsi();
    let mut d = [0u8; 96];
    let o = c.command((0, 0, 0), &inquiry(false, 0, 96), READ, &mut d);
    assert_eq!(o.result.raw(), 0);
    assert_eq!(o.transferred, 36);
    assert_eq!(o.resid, 60);
    assert_eq!(d[0], 0x00);
    assert_eq!(&d[8..16], VENDOR);
    assert_eq!(&d[16..32], PRODUCT);
    assert_eq!(d[7] & 0x02, 0x02, "tagged queueing");
    // A LUN that is not there: peripheral qualifier 3.
    let o = c.command((0, 1, 0), &inquiry(false, 0, 96), READ, &mut d);
    assert_eq!(o.result.raw(), 0);
    assert_eq!(d[0], 0x7f);
}

#[test]
fn vpd_pages_are_answered() {
    let mut c = scsi();
    let mut d = [0u8; 255];
    let o = c.command((0, 0, 0), &inquiry(true, 0x00, 255), READ, &mut d);
    assert_eq!(o.transferred, 10);
    assert_eq!(&d[4..10], &[0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
    for page in [0x80u8, 0x83, 0xb0, 0xb1, 0xb2] {
        let mut d = [0u8; 255];
        let o = c.command((0, 0, 0), &inquiry(true, page, 255), READ, &mut d);
        assert_eq!(o.result.raw(), 0, "page {page:x}");
        assert_eq!(d[1], page);
        let len = u16::from_be_bytes([d[2], d[3]]) as u32;
        assert_eq!(o.transferred, 4 + len, "page {page:x}");
    }
    let mut d = [0u8; 255];
    c.command((0, 0, 0), &inquiry(true, 0x80, 255), READ, &mut d);
    assert_eq!(&d[4..10], b"RUSTIC");
    let mut d2 = [0u8; 255];
    c.command((0, 0, 1), &inquiry(true, 0x80, 255), READ, &mut d2);
    assert_ne!(&d[4..20], &d2[4..20], "serials differ per LUN");
    // Thin provisioning on LUN 0 only.
    c.command((0, 0, 0), &inquiry(true, 0xb2, 255), READ, &mut d);
    assert_eq!(d[5] & 0xc0, 0xc0);
    c.command((0, 0, 1), &inquiry(true, 0xb2, 255), READ, &mut d);
    assert_eq!(d[5], 0);
    // An unknown page: CHECK CONDITION, but INQUIRY always "succeeds" for
    // the guest (the C driver's special case), with nothing moved.
    let o = c.command((0, 0, 0), &inquiry(true, 0x99, 255), READ, &mut d);
    assert_eq!(o.result.raw(), 0);
    assert_eq!(o.transferred, 0);
    assert_eq!(o.sense_len, 0);
}

#[test]
fn read_capacity_reports_size_and_sector_size() {
    let mut c = scsi();
    let mut d = [0u8; 8];
    c.command((0, 0, 0), &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], READ, &mut d);
    assert_eq!(u32::from_be_bytes(d[0..4].try_into().unwrap()), 2047);
    assert_eq!(u32::from_be_bytes(d[4..8].try_into().unwrap()), 512);
    let mut d = [0u8; 32];
    let o = c.command(
        (0, 0, 1),
        &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
        READ,
        &mut d,
    );
    assert_eq!(o.transferred, 32);
    assert_eq!(u64::from_be_bytes(d[0..8].try_into().unwrap()), 255);
    assert_eq!(u32::from_be_bytes(d[8..12].try_into().unwrap()), 4096);
    assert_eq!(d[14] & 0x80, 0, "not thin");
    c.command(
        (0, 0, 0),
        &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
        READ,
        &mut d,
    );
    assert_eq!(d[14] & 0x80, 0x80, "thin");
}

fn rw10(write: bool, lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let b = blocks.to_be_bytes();
    [if write { 0x2a } else { 0x28 }, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
}

#[test]
fn writes_read_back_with_every_cdb_size_and_sector_size() {
    let mut c = scsi();
    for (lun, size) in [(0u8, 512usize), (1, 4096)] {
        let pattern: Vec<u8> = (0..size * 3).map(|i| (i * 7 + lun as usize) as u8).collect();
        // WRITE(10) at block 5, READ(16), READ(6).
        let mut w = pattern.clone();
        let o = c.command((0, 0, lun), &rw10(true, 5, 3), WRITE, &mut w);
        assert_eq!((o.result.raw(), o.transferred, o.resid), (0, (size * 3) as u32, 0));
        assert_eq!(&c.luns.medium(0, 0, lun)[size * 5..size * 8], &pattern[..]);
        let mut r = vec![0u8; size * 3];
        let o = c.command(
            (0, 0, lun),
            &[0x88, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0],
            READ,
            &mut r,
        );
        assert_eq!(o.transferred, (size * 3) as u32);
        assert_eq!(r, pattern);
        let mut r = vec![0u8; size];
        c.command((0, 0, lun), &[0x08, 0, 0, 6, 1, 0], READ, &mut r);
        assert_eq!(&r[..], &pattern[size..size * 2]);
        // WRITE(16) and WRITE(6).
        let mut w = vec![0xa5u8; size];
        c.command(
            (0, 0, lun),
            &[0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0],
            WRITE,
            &mut w,
        );
        let mut w2 = vec![0x5au8; size];
        c.command((0, 0, lun), &[0x0a, 0, 0, 10, 1, 0], WRITE, &mut w2);
        let m = c.luns.medium(0, 0, lun);
        assert!(m[size * 9..size * 10].iter().all(|b| *b == 0xa5));
        assert!(m[size * 10..size * 11].iter().all(|b| *b == 0x5a));
    }
    let e = c.host.counters().effect;
    assert_eq!((e.blocks_written, e.blocks_read), (2 * 5, 2 * 4));
}

#[test]
fn out_of_range_and_mismatched_transfers_are_refused_with_sense() {
    let mut c = scsi();
    let mut d = vec![0u8; 512 * 2];
    let o = c.command((0, 0, 0), &rw10(false, 2047, 2), READ, &mut d);
    assert_eq!(o.result.status, sam::CHECK_CONDITION);
    assert_eq!(o.result.host, HostByte::Ok);
    assert_eq!(sense_codes(&o.sense[..o.sense_len as usize]), Some((5, 0x21, 0)));
    assert_eq!(o.transferred, 0);
    assert_eq!(o.resid, 1024);
    // A buffer smaller than the blocks asked for.
    let o = c.command((0, 0, 0), &rw10(false, 0, 3), READ, &mut d);
    assert_eq!(sense_codes(&o.sense[..o.sense_len as usize]), Some((5, 0x24, 0)));
    // The wrong direction.
    let o = c.command((0, 0, 0), &rw10(true, 0, 2), READ, &mut d);
    assert_eq!(sense_codes(&o.sense[..o.sense_len as usize]), Some((5, 0x24, 0)));
    // More than the host's transfer limit: refused before running.
    let mut c = ready(HostConfig {
        max_transfer_bytes: 4096,
        ..HostConfig::default()
    });
    let mut big = vec![0u8; 8192];
    let o = c.command((0, 0, 0), &rw10(false, 0, 16), READ, &mut big);
    assert_eq!(o.result.host, HostByte::Error);
    assert_eq!(c.host.counters().srbs_refused, 1);
}

#[test]
fn unknown_commands_get_illegal_request_sense() {
    let mut c = scsi();
    let o = c.command((0, 0, 0), &[0xc0, 0, 0, 0, 0, 0], NONE, &mut []);
    assert_eq!(o.result.raw(), u32::from(sam::CHECK_CONDITION));
    assert_eq!(o.sense_len, 18);
    assert_eq!(sense_codes(&o.sense[..18]), Some((5, 0x20, 0)));
}

#[test]
fn probe_commands_succeed() {
    let mut c = scsi();
    assert_eq!(c.command((0, 0, 0), &[0; 6], NONE, &mut []).result.raw(), 0);
    assert_eq!(
        c.command((0, 0, 0), &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], NONE, &mut []).result.raw(),
        0
    );
    assert!(c.host.counters().effect.flushed);
    let mut s = [0u8; 18];
    let o = c.command((0, 0, 0), &[0x03, 0, 0, 0, 18, 0], READ, &mut s);
    assert_eq!((o.transferred, s[0], s[2]), (18, 0x70, 0));
    // MODE SENSE(6), (10): write cache enabled, caching page.
    let mut m = [0u8; 64];
    let o = c.command((0, 0, 0), &[0x1a, 0, 0x08, 0, 64, 0], READ, &mut m);
    assert_eq!(o.transferred as usize, m[0] as usize + 1);
    assert_eq!(m[3], 8);
    assert_eq!(&m[12..14], &[0x08, 0x12]);
    assert_eq!(m[14] & 0x04, 0x04);
    let o = c.command((0, 0, 1), &[0x5a, 0x08, 0x3f, 0, 0, 0, 0, 0, 64, 0], READ, &mut m);
    assert_eq!(o.transferred as usize, u16::from_be_bytes([m[0], m[1]]) as usize + 2);
    assert_eq!(&m[8..10], &[0x08, 0x12]);
    // REPORT LUNS on target 0 and on an empty target.
    let mut r = [0u8; 64];
    let o = c.command((0, 0, 0), &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0], READ, &mut r);
    assert_eq!(o.transferred, 24);
    assert_eq!(&r[..4], &16u32.to_be_bytes());
    assert_eq!((r[9], r[17]), (0, 1));
    let o = c.command((0, 1, 5), &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0], READ, &mut r);
    assert_eq!((o.result.raw(), o.transferred), (0, 8));
    assert_eq!(&r[..4], &[0; 4]);
    // Cut to the allocation length, and to a buffer shorter than that; the
    // header still counts every LUN.
    c.luns.add(0, 0, 9, 512, 1, false);
    let mut r = [0xffu8; 64];
    let o = c.command((0, 0, 0), &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0], READ, &mut r);
    assert_eq!(o.transferred, 20);
    assert_eq!(&r[..4], &24u32.to_be_bytes());
    assert_eq!(&r[16..20], &[0, 1, 0, 0]);
    assert_eq!(r[20], 0xff, "nothing past the allocation length");
    let mut r = [0u8; 6];
    let o = c.command((0, 0, 0), &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0], READ, &mut r);
    assert_eq!((o.result.raw(), o.transferred), (0, 6));
    assert_eq!(&r[..4], &24u32.to_be_bytes());
    // An allocation length under 16 is refused.
    let o = c.command((0, 0, 0), &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0], READ, &mut r);
    assert_eq!(sense_codes(&o.sense[..o.sense_len as usize]), Some((5, 0x24, 0)));
}

#[test]
fn unmap_and_write_same_reach_the_medium() {
    let mut c = scsi();
    let mut w = vec![0xeeu8; 512 * 8];
    c.command((0, 0, 0), &rw10(true, 0, 8), WRITE, &mut w);
    // UNMAP blocks 2..4.
    let mut list = vec![0u8; 24];
    list[0..2].copy_from_slice(&22u16.to_be_bytes());
    list[2..4].copy_from_slice(&16u16.to_be_bytes());
    list[8..16].copy_from_slice(&2u64.to_be_bytes());
    list[16..20].copy_from_slice(&2u32.to_be_bytes());
    let o = c.command((0, 0, 0), &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], WRITE, &mut list);
    assert_eq!(o.result.raw(), 0);
    let m = c.luns.medium(0, 0, 0);
    assert!(m[512 * 2..512 * 4].iter().all(|b| *b == 0));
    assert!(m[512 * 4..512 * 5].iter().all(|b| *b == 0xee));
    assert_eq!(c.host.counters().effect.blocks_unmapped, 2);
    // WRITE SAME(16) of a pattern over blocks 5..8.
    let mut block = vec![0x11u8; 512];
    let o = c.command(
        (0, 0, 0),
        &[0x93, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0],
        WRITE,
        &mut block,
    );
    assert_eq!(o.result.raw(), 0);
    assert!(c.luns.medium(0, 0, 0)[512 * 5..512 * 8].iter().all(|b| *b == 0x11));
    // UNMAP out of range changes nothing.
    list[8..16].copy_from_slice(&2047u64.to_be_bytes());
    list[24 - 8..24 - 4].copy_from_slice(&2u32.to_be_bytes());
    let o = c.command((0, 0, 0), &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], WRITE, &mut list);
    assert_eq!(o.result.status, sam::CHECK_CONDITION);
    // UNMAP on a LUN that is not thin is an unknown command.
    let o = c.command((0, 0, 1), &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], WRITE, &mut list);
    assert_eq!(sense_codes(&o.sense[..o.sense_len as usize]), Some((5, 0x20, 0)));
}

#[test]
fn a_removed_lun_answers_invalid_lun_and_the_guest_removes_it() {
    let mut c = scsi();
    c.luns.remove(0, 0, 1);
    let mut d = vec![0u8; 4096];
    let o = c.command((0, 0, 1), &rw10(false, 0, 1), READ, &mut d);
    assert_eq!(o.result.host, HostByte::NoConnect);
    assert_eq!(o.followup, Followup::Remove { target: 0, lun: 1 });
    assert_eq!(o.transferred, 0);
    // The host tells the guest to rescan with an unsolicited notice.
    let n = storvsp::notice(Operation::RemoveDevice).unwrap();
    assert_eq!(guest::host_packet(&n, 0, c.version, 1), Ok(HostEvent::Rescan));
    let n = storvsp::notice(Operation::EnumerateBus).unwrap();
    assert_eq!(guest::host_packet(&n[..4], 0, c.version, 1), Ok(HostEvent::Rescan));
    assert_eq!(storvsp::notice(Operation::CompleteIo), None);
}

// ---------------------------------------------------------------------------
// Faults, as the guest sees them.

fn faulted(fault: Fault) -> (Controller, common::Sent, Vec<u8>) {
    let mut c = scsi();
    let mut w = vec![0x77u8; 1024];
    c.command((0, 0, 0), &rw10(true, 0, 2), WRITE, &mut w);
    c.host.arm(fault, 1);
    let v = c.version.unwrap();
    let p = srb::execute_srb(
        &srb::Command {
            port: 0,
            path: 0,
            target: 0,
            lun: 0,
            cdb: &rw10(false, 0, 2),
            direction: READ,
            data_len: 1024,
            tagged: true,
        },
        v,
    )
    .unwrap();
    let mut r = vec![0u8; 1024];
    let out = c.send(0, guest::command_trans_id(3), &p.to_bytes(), &mut r).unwrap();
    assert_eq!(c.host.armed(), None, "one-shot");
    (c, out, r)
}

fn outcome(c: &Controller, bytes: &[u8], id: u64) -> srb::IoOutcome {
    let sent = srb::execute_srb(
        &srb::Command {
            port: 0,
            path: 0,
            target: 0,
            lun: 0,
            cdb: &rw10(false, 0, 2),
            direction: READ,
            data_len: 1024,
            tagged: true,
        },
        c.version.unwrap(),
    )
    .unwrap()
    .srb();
    match guest::host_packet(bytes, id, c.version, 8).unwrap() {
        HostEvent::Completion { tag: 3, packet } => srb::complete_io(&sent, &packet.srb(), false),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_fault_reaches_the_guest_as_the_c_driver_would_see_it() {
    let id = guest::command_trans_id(3);
    for fault in Fault::ALL {
        let (c, out, data) = faulted(fault);
        let first = out.packets.first().map(|p| p.1.clone());
        match fault {
            Fault::ErrorWithSense => {
                let o = outcome(&c, &first.unwrap(), id);
                assert_eq!(o.result.raw(), u32::from(sam::CHECK_CONDITION));
                assert_eq!(sense_codes(&o.sense[..o.sense_len as usize]), Some((3, 0x11, 0)));
                assert_eq!((o.transferred, o.resid), (0, 1024));
                assert!(data.iter().all(|b| *b == 0), "not run");
            }
            Fault::ErrorWithoutSense => {
                let o = outcome(&c, &first.unwrap(), id);
                assert_eq!(o.result.host, HostByte::Error);
                assert_eq!(o.sense_len, 0);
            }
            Fault::InvalidLun => {
                let o = outcome(&c, &first.unwrap(), id);
                assert_eq!(o.result.host, HostByte::NoConnect);
                assert_eq!(o.followup, Followup::Remove { target: 0, lun: 0 });
            }
            Fault::CapacityChanged => {
                let o = outcome(&c, &first.unwrap(), id);
                assert_eq!(o.result.host, HostByte::Requeue);
                assert_eq!(o.followup, Followup::Rescan { target: 0, lun: 0 });
            }
            Fault::DataOverrun => {
                let o = outcome(&c, &first.unwrap(), id);
                assert_eq!(o.result.host, HostByte::Error);
                assert_eq!((o.transferred, o.resid), (512, 512));
                assert!(data.iter().all(|b| *b == 0x77), "run");
            }
            Fault::BadDataLength => {
                let o = outcome(&c, &first.unwrap(), id);
                assert_eq!((o.result.raw(), o.transferred, o.resid), (0, 1024, 0));
            }
            Fault::BadSenseLength => {
                let o = outcome(&c, &first.unwrap(), id);
                assert_eq!(o.sense_len, 20, "cut to the SRB's sense");
                assert_eq!(o.result.status, sam::CHECK_CONDITION);
            }
            Fault::WrongStatus => {
                // SRB status 0 is no status the C driver knows: no host
                // byte, but nothing counts as moved.
                let o = outcome(&c, &first.unwrap(), id);
                assert_eq!((o.result.raw(), o.transferred, o.resid), (0, 0, 1024));
            }
            Fault::ShortCompletion => {
                let e = guest::host_packet(&first.unwrap(), id, c.version, 8).unwrap_err();
                assert!(matches!(e, storvsc_core::wire::Error::TooShort { .. }));
            }
            Fault::Duplicate => {
                assert_eq!(out.packets.len(), 2);
                assert_eq!(out.packets[0], out.packets[1]);
                // Both parse as the tag's completion: the driver must drop
                // the one for a tag no longer in flight.
                outcome(&c, &out.packets[1].1, id);
            }
            Fault::UnknownId => {
                let (rid, bytes) = &out.packets[0];
                assert_ne!(*rid, id);
                assert_eq!(
                    guest::host_packet(bytes, *rid, c.version, 1 << 16),
                    Err(storvsc_core::wire::Error::BadField("trans_id"))
                );
            }
            Fault::WrongOperation => {
                assert!(matches!(
                    guest::host_packet(&first.unwrap(), id, c.version, 8),
                    Ok(HostEvent::FcNames(_))
                ));
            }
            Fault::Hold => {
                assert!(out.packets.is_empty());
                assert_eq!(out.held.len(), 1);
            }
        }
    }
}

#[test]
fn a_reset_releases_held_completions_before_its_own() {
    let (mut c, out, _) = faulted(Fault::Hold);
    assert!(out.packets.is_empty());
    let v = c.version.unwrap();
    let reset = srb::reset(Operation::ResetBus, 0, 0, 0).unwrap();
    let out = c.send(0, RESET_TRANS_ID, &reset.to_bytes(), &mut []).unwrap();
    assert!(out.released);
    assert_eq!(out.packets.len(), 2);
    assert_eq!(out.packets[0].0, guest::command_trans_id(3));
    outcome(&c, &out.packets[0].1, out.packets[0].0);
    let (rid, bytes) = &out.packets[1];
    assert_eq!(*rid, RESET_TRANS_ID);
    assert!(matches!(guest::host_packet(bytes, *rid, Some(v), 8), Ok(HostEvent::Reset(_))));
    assert_eq!(guest::check_completion(bytes, Operation::ResetBus, v), Ok(()));
    assert_eq!(c.host.counters().resets, 1);
    assert!(srb::reset(Operation::ExecuteSrb, 0, 0, 0).is_err());
}

#[test]
fn a_fault_armed_for_n_completions_hits_n() {
    let mut c = scsi();
    c.host.arm(Fault::ErrorWithoutSense, 2);
    let mut d = vec![0u8; 512];
    for expect in [HostByte::Error, HostByte::Error, HostByte::Ok] {
        let o = c.command((0, 0, 0), &rw10(false, 0, 1), READ, &mut d);
        assert_eq!(o.result.host, expect);
    }
    assert_eq!(c.host.counters().faults, 2);
    c.host.arm(Fault::ErrorWithoutSense, 0);
    assert_eq!(c.host.armed(), None);
    let _ = status::SUCCESS;
}

#[test]
fn a_windows_8_host_runs_io_and_the_guest_filters_what_it_lacks() {
    let mut c = ready(HostConfig {
        versions: VersionSet::up_to(Version::Win8),
        ..HostConfig::default()
    });
    assert_eq!(c.version, Some(Version::Win8));
    let mut w = vec![0x3cu8; 512];
    assert_eq!(c.command((0, 0, 0), &rw10(true, 1, 1), WRITE, &mut w).result.raw(), 0);
    let mut r = vec![0u8; 512];
    assert_eq!(c.command((0, 0, 0), &rw10(false, 1, 1), READ, &mut r).transferred, 512);
    assert_eq!(r, w);
    assert!(!srb::command_allowed(Version::Win8, srb::opcode::WRITE_SAME));
    assert!(!Version::Win8.allows_write_same());
}
