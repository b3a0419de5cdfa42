//! The guest side on its own: the wire layout pinned to the C structs, the
//! SRB the guest builds, the SRB status mapping case by case (every case the
//! C driver treats specially), the sorting of host packets by id, and the
//! limits per controller class.

use storvsc_core::guest::{
    self, can_queue, host_limits, planned_sub_channels, requests_per_channel, Class, HostEvent,
    INIT_TRANS_ID, RESET_TRANS_ID,
};
use storvsc_core::srb::{
    self, command_allowed, complete_io, flags, opcode, sam, sense_codes, status, Command,
    DataDirection, Followup, HostByte,
};
use storvsc_core::vstor::{
    srb_offset, ChannelProperties, FcWwn, Operation, Packet, Srb, Version, PACKET_SIZE,
    PAYLOAD_OFFSET, SRB_SIZE, SRB_WIN8_EXTENSION_SIZE,
};
use storvsc_core::wire::Error;

#[test]
fn layout_matches_the_c_structs() {
    // struct vstor_packet: 3 u32 and a 0x34-byte union.
    assert_eq!(PACKET_SIZE, 64);
    assert_eq!(PAYLOAD_OFFSET, 12);
    // struct vmscsi_request (packed).
    assert_eq!(SRB_SIZE, 0x34);
    assert_eq!(SRB_WIN8_EXTENSION_SIZE, 12);
    assert_eq!(srb_offset::DATA_TRANSFER_LENGTH, 12);
    assert_eq!(srb_offset::CDB, 16);
    assert_eq!(srb_offset::SRB_FLAGS, 40);
    assert_eq!(srb_offset::QUEUE_SORT_KEY + 4, SRB_SIZE);
    assert_eq!(ChannelProperties::SIZE, 24);
    assert_eq!(FcWwn::SIZE, 36);
    // A packet's bytes land where the C layout has them.
    let mut p = Packet::new(Operation::ExecuteSrb, 1, 0x1122_3344);
    p.set_srb(&Srb {
        srb_status: 0xaa,
        lun: 0xbb,
        data_transfer_length: 0x0102_0304,
        srb_flags: 0x0506_0708,
        queue_sort_key: 0x0a0b_0c0d,
        ..Srb::default()
    });
    let b = p.to_bytes();
    assert_eq!(&b[0..12], &[3, 0, 0, 0, 1, 0, 0, 0, 0x44, 0x33, 0x22, 0x11]);
    assert_eq!(b[12 + 2], 0xaa);
    assert_eq!(b[12 + 7], 0xbb);
    assert_eq!(&b[24..28], &[4, 3, 2, 1]);
    assert_eq!(&b[52..56], &[8, 7, 6, 5]);
    assert_eq!(&b[60..64], &[0x0d, 0x0c, 0x0b, 0x0a]);
    assert_eq!(Packet::parse(&b, PACKET_SIZE), Ok(p));
}

#[test]
fn versions_are_proposed_newest_first_with_their_wire_values() {
    let raw: Vec<u16> = storvsc_core::vstor::GUEST_VERSIONS.iter().map(|v| v.raw()).collect();
    assert_eq!(raw, [0x0602, 0x0600, 0x0501]);
    assert_eq!(Version::from_raw(0x0402), None, "Windows 7 is not spoken");
    // Every version Linux 6.12 speaks has the full SRB and 20 sense bytes.
    for v in storvsc_core::vstor::GUEST_VERSIONS {
        assert_eq!((v.srb_size_delta(), v.sense_size()), (0, 20));
    }
    assert!(Version::Win8.filters_commands() && !Version::Win8_1.filters_commands());
    assert!(Version::Win8_1.claims_spc3() && !Version::Win10.claims_spc3());
    assert!(Version::Win10.allows_write_same() && !Version::Win8_1.allows_write_same());
}

fn cmd(cdb: &[u8], direction: DataDirection, data_len: u32, tagged: bool) -> Command<'_> {
    Command {
        port: 2,
        path: 1,
        target: 1,
        lun: 7,
        cdb,
        direction,
        data_len,
        tagged,
    }
}

#[test]
fn the_srb_is_built_as_the_c_driver_builds_it() {
    let p = srb::execute_srb(&cmd(&[0x28, 0, 0, 0, 0, 9, 0, 0, 8, 0], DataDirection::Read, 4096, true), Version::Win10)
        .unwrap();
    assert_eq!(p.operation, Operation::ExecuteSrb);
    assert_eq!(p.flags, 1);
    let s = p.srb();
    assert_eq!((s.length, s.port, s.path, s.target, s.lun), (52, 2, 1, 1, 7));
    assert_eq!((s.cdb_length, s.sense_info_length, s.data_in), (10, 20, 1));
    assert_eq!(s.data_transfer_length, 4096);
    assert_eq!(s.time_out_value, 60);
    assert_eq!(
        s.srb_flags,
        flags::DISABLE_SYNCH_TRANSFER | flags::DATA_IN | flags::QUEUE_ACTION_ENABLE | flags::NO_QUEUE_FREEZE
    );
    assert_eq!((s.queue_tag, s.queue_action), (0xff, 0x20));
    assert_eq!(s.cdb().unwrap(), &[0x28, 0, 0, 0, 0, 9, 0, 0, 8, 0]);
    let w = srb::execute_srb(&cmd(&[0x2a; 16], DataDirection::Write, 512, false), Version::Win8).unwrap().srb();
    assert_eq!((w.data_in, w.srb_flags, w.queue_tag), (0, flags::DISABLE_SYNCH_TRANSFER | flags::DATA_OUT, 0));
    let n = srb::execute_srb(&cmd(&[0; 6], DataDirection::None, 0, false), Version::Win8).unwrap().srb();
    assert_eq!((n.data_in, n.srb_flags), (2, flags::DISABLE_SYNCH_TRANSFER));
    // Bad commands are refused.
    assert!(srb::execute_srb(&cmd(&[], DataDirection::None, 0, false), Version::Win8).is_err());
    assert!(srb::execute_srb(&cmd(&[0; 17], DataDirection::None, 0, false), Version::Win8).is_err());
    assert!(srb::execute_srb(&cmd(&[0x00; 6], DataDirection::None, 512, false), Version::Win8).is_err());
    // A direction with nothing to move is allowed (the host moves nothing).
    let z = srb::execute_srb(&cmd(&[0x28; 10], DataDirection::Read, 0, false), Version::Win8).unwrap().srb();
    assert_eq!((z.data_in, z.data_transfer_length), (1, 0));
}

#[test]
fn old_hosts_get_no_write_same_or_set_window() {
    for op in [opcode::WRITE_SAME, opcode::SET_WINDOW] {
        assert!(!command_allowed(Version::Win8, op));
        assert!(command_allowed(Version::Win8_1, op));
        assert!(command_allowed(Version::Win10, op));
    }
    assert!(command_allowed(Version::Win8, 0x28));
    assert_eq!(srb::filtered_result().raw(), 0x07_0000);
}

// ---------------------------------------------------------------------------
// The status mapping.

fn sent(op: u8, len: u32) -> Srb {
    let mut s = srb::execute_srb(
        &cmd(&[op, 0, 0, 0, 0, 0], if len == 0 { DataDirection::None } else { DataDirection::Read }, len, true),
        Version::Win10,
    )
    .unwrap()
    .srb();
    s.target = 1;
    s.lun = 7;
    s
}

fn fixed_sense(key: u8, asc: u8, ascq: u8) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[0] = 0x70;
    b[2] = key;
    b[7] = 10;
    b[12] = asc;
    b[13] = ascq;
    b
}

fn reply(srb_status: u8, scsi_status: u8, sense: Option<[u8; 20]>, dtl: u32) -> Srb {
    Srb {
        srb_status,
        scsi_status,
        sense_info_length: if sense.is_some() { 18 } else { 0 },
        buffer: sense.unwrap_or([0; 20]),
        data_transfer_length: dtl,
        // The host echoes the guest's address; the guest must not use it.
        target: 0xee,
        lun: 0xee,
        ..Srb::default()
    }
}

const READ10: u8 = 0x28;

#[test]
fn success_moves_the_hosts_length_cut_to_the_request() {
    let o = complete_io(&sent(READ10, 4096), &reply(status::SUCCESS, 0, None, 1024), false);
    assert_eq!((o.result.raw(), o.transferred, o.resid, o.followup), (0, 1024, 3072, Followup::None));
    let o = complete_io(&sent(READ10, 4096), &reply(status::SUCCESS, 0, None, u32::MAX), false);
    assert_eq!((o.transferred, o.resid), (4096, 0));
}

#[test]
fn errors_with_valid_sense_go_up_with_the_sense() {
    let sense = fixed_sense(3, 0x11, 0);
    for code in [
        status::ERROR,
        status::ABORTED,
        status::INVALID_REQUEST,
        status::INTERNAL_ERROR,
        status::TIMEOUT,
        status::SELECTION_TIMEOUT,
        status::BUS_RESET,
        status::DATA_OVERRUN,
    ] {
        let o = complete_io(
            &sent(READ10, 512),
            &reply(code | status::AUTOSENSE_VALID, sam::CHECK_CONDITION, Some(sense), 512),
            false,
        );
        assert_eq!(o.result.host, HostByte::Ok, "{code:x}");
        assert_eq!(o.result.status, sam::CHECK_CONDITION);
        assert_eq!(o.sense_len, 18);
        assert_eq!(&o.sense[..18], &sense[..18]);
        assert_eq!(o.transferred, 0, "{code:x}: only a bare DATA_OVERRUN keeps the length");
        assert_eq!(o.followup, Followup::None);
    }
}

#[test]
fn errors_without_sense_are_did_error_except_tur_and_ata_pass_through() {
    for code in [
        status::ERROR,
        status::ABORTED,
        status::INVALID_REQUEST,
        status::INTERNAL_ERROR,
        status::TIMEOUT,
        status::SELECTION_TIMEOUT,
        status::BUS_RESET,
    ] {
        let o = complete_io(&sent(READ10, 512), &reply(code, 0, None, 512), false);
        assert_eq!(o.result.host, HostByte::Error, "{code:x}");
        assert_eq!((o.transferred, o.resid), (0, 512));
        let o = complete_io(&sent(opcode::TEST_UNIT_READY, 0), &reply(code, 0, None, 0), false);
        assert_eq!(o.result.host, HostByte::Ok, "{code:x}");
        for ata in [opcode::ATA_12, opcode::ATA_16] {
            let o = complete_io(&sent(ata, 512), &reply(code, 0, None, 512), false);
            assert_eq!(o.result.host, HostByte::Passthrough, "{code:x}");
        }
    }
    // CHECK CONDITION without autosense: no sense is copied, DID_ERROR.
    let o = complete_io(
        &sent(READ10, 512),
        &reply(status::ERROR, sam::CHECK_CONDITION, Some(fixed_sense(3, 0x11, 0)), 0),
        false,
    );
    assert_eq!((o.result.host, o.sense_len), (HostByte::Error, 0));
}

#[test]
fn a_bare_data_overrun_keeps_the_hosts_length() {
    let o = complete_io(&sent(READ10, 4096), &reply(status::DATA_OVERRUN, 0, None, 1000), false);
    assert_eq!(o.result.host, HostByte::Error);
    assert_eq!((o.transferred, o.resid), (1000, 3096));
    let o = complete_io(&sent(READ10, 4096), &reply(status::DATA_OVERRUN, 0, None, 9999), false);
    assert_eq!((o.transferred, o.resid), (4096, 0));
    // With a flag bit it is no longer the bare status.
    let o = complete_io(&sent(READ10, 4096), &reply(status::DATA_OVERRUN | status::QUEUE_FROZEN, 0, None, 1000), false);
    assert_eq!(o.transferred, 0);
}

#[test]
fn invalid_lun_removes_the_guests_lun() {
    for srb_status in [status::INVALID_LUN, status::INVALID_LUN | status::AUTOSENSE_VALID] {
        let o = complete_io(&sent(READ10, 512), &reply(srb_status, 0, None, 512), false);
        assert_eq!(o.result.host, HostByte::NoConnect);
        assert_eq!(o.result.raw(), 0x01_0000);
        assert_eq!(o.followup, Followup::Remove { target: 1, lun: 7 });
        assert_eq!(o.transferred, 0);
    }
}

#[test]
fn capacity_and_parameter_changes_requeue_and_rescan() {
    let s = sent(READ10, 512);
    let changed = |asc, ascq| {
        complete_io(
            &s,
            &reply(status::ERROR | status::AUTOSENSE_VALID, sam::CHECK_CONDITION, Some(fixed_sense(6, asc, ascq)), 0),
            false,
        )
    };
    for (asc, ascq, rescan) in [
        (0x2a, 0x09, true),
        (0x3f, 0x00, true),
        (0x3f, 0x01, true),
        (0x3f, 0x03, false),
        (0x3f, 0x0e, false),
        (0x2a, 0x01, false),
        (0x29, 0x00, false),
    ] {
        let o = changed(asc, ascq);
        if rescan {
            assert_eq!(o.result.host, HostByte::Requeue, "{asc:x}/{ascq:x}");
            assert_eq!(o.followup, Followup::Rescan { target: 1, lun: 7 });
        } else {
            assert_eq!((o.result.host, o.followup), (HostByte::Ok, Followup::None), "{asc:x}/{ascq:x}");
        }
    }
    // Descriptor-format sense counts too.
    let mut d = [0u8; 20];
    d[0] = 0x72;
    d[1] = 6;
    d[2] = 0x2a;
    d[3] = 0x09;
    let o = complete_io(
        &s,
        &reply(status::ABORTED | status::AUTOSENSE_VALID, sam::CHECK_CONDITION, Some(d), 0),
        false,
    );
    assert_eq!(o.followup, Followup::Rescan { target: 1, lun: 7 });
    // Sense that is not sense data matches nothing.
    let o = complete_io(
        &s,
        &reply(status::ERROR | status::AUTOSENSE_VALID, sam::CHECK_CONDITION, Some([0x2a; 20]), 0),
        false,
    );
    assert_eq!(o.followup, Followup::None);
}

#[test]
fn inquiry_and_mode_sense_always_succeed_maintenance_in_only_on_fc() {
    let bad = reply(status::ERROR | status::AUTOSENSE_VALID, sam::CHECK_CONDITION, Some(fixed_sense(5, 0x24, 0)), 36);
    for op in [opcode::INQUIRY, opcode::MODE_SENSE, opcode::MODE_SENSE_10] {
        for fc in [false, true] {
            let o = complete_io(&sent(op, 96), &bad, fc);
            assert_eq!((o.result.raw(), o.sense_len, o.transferred), (0, 0, 36), "{op:x}");
        }
    }
    let o = complete_io(&sent(opcode::MAINTENANCE_IN, 96), &bad, true);
    assert_eq!(o.result.raw(), 0);
    let o = complete_io(&sent(opcode::MAINTENANCE_IN, 96), &bad, false);
    assert_eq!(o.result.status, sam::CHECK_CONDITION);
    assert_eq!(o.sense_len, 18);
}

#[test]
fn sense_length_is_cut_to_the_srb_and_unknown_codes_pass() {
    let mut r = reply(status::ERROR | status::AUTOSENSE_VALID, sam::CHECK_CONDITION, Some(fixed_sense(3, 0x11, 0)), 0);
    r.sense_info_length = 0xff;
    let o = complete_io(&sent(READ10, 512), &r, false);
    assert_eq!(o.sense_len, 20);
    // An SRB status the C driver has no case for: no host byte, no length.
    let o = complete_io(&sent(READ10, 512), &reply(0x3e, 0, None, 512), false);
    assert_eq!((o.result.raw(), o.transferred, o.resid), (0, 0, 512));
    // The status byte is the host's, whatever it is.
    let o = complete_io(&sent(READ10, 512), &reply(status::SUCCESS, 0x18, None, 512), false);
    assert_eq!(o.result.raw(), 0x18);
    assert_eq!(sense_codes(&[0x70, 0, 3]), Some((3, 0, 0)));
    assert_eq!(sense_codes(&[0x00; 18]), None);
    assert_eq!(sense_codes(&[]), None);
}

// ---------------------------------------------------------------------------
// Host packets by id.

#[test]
fn host_packets_are_sorted_by_id_and_checked() {
    let v = Some(Version::Win10);
    let complete = Packet::new(Operation::CompleteIo, 0, 0).to_bytes();
    assert!(matches!(guest::host_packet(&complete, INIT_TRANS_ID, None, 4), Ok(HostEvent::Init(_))));
    assert!(matches!(guest::host_packet(&complete, RESET_TRANS_ID, v, 4), Ok(HostEvent::Reset(_))));
    assert!(matches!(
        guest::host_packet(&complete, guest::command_trans_id(3), v, 4),
        Ok(HostEvent::Completion { tag: 3, .. })
    ));
    assert_eq!(guest::host_packet(&complete, guest::command_trans_id(4), v, 4), Err(Error::BadField("trans_id")));
    assert_eq!(guest::host_packet(&complete, 1 << 40, v, u32::MAX), Err(Error::BadField("trans_id")));
    // Answers must be whole packets.
    for id in [INIT_TRANS_ID, RESET_TRANS_ID, 1] {
        assert_eq!(
            guest::host_packet(&complete[..63], id, v, 4),
            Err(Error::TooShort { need: 64, len: 63 })
        );
    }
    // Unsolicited: only the notices, and they need only their operation.
    assert_eq!(guest::host_packet(&complete, 0, v, 4), Err(Error::BadField("trans_id")));
    let fc = Packet::new(Operation::FcHbaData, 0, 0).to_bytes();
    assert_eq!(guest::host_packet(&fc, 0, v, 4), Err(Error::BadField("trans_id")));
    let bus = Packet::new(Operation::EnumerateBus, 0, 0).to_bytes();
    assert_eq!(guest::host_packet(&bus[..4], 0, v, 4), Ok(HostEvent::Rescan));
    assert!(matches!(guest::host_packet(&bus[..3], 0, v, 4), Err(Error::TooShort { .. })));
    // Operations only the guest sends, and unknown ones.
    let srb = Packet::new(Operation::ExecuteSrb, 0, 0).to_bytes();
    assert_eq!(guest::host_packet(&srb, 1, v, 4), Err(Error::WrongSender(3)));
    let mut unknown = complete;
    unknown[0] = 14;
    assert_eq!(guest::host_packet(&unknown, 1, v, 4), Err(Error::UnknownType(14)));
    // A notice or new FC names with a command's id do not complete it.
    assert_eq!(guest::host_packet(&bus, 1, v, 4), Ok(HostEvent::Rescan));
    assert!(matches!(guest::host_packet(&fc, 1, v, 4), Ok(HostEvent::FcNames(_))));
}

// ---------------------------------------------------------------------------
// Limits.

#[test]
fn limits_per_class_are_the_c_drivers() {
    let scsi = host_limits(Class::Scsi, 2 * 1024 * 1024).unwrap();
    assert_eq!((scsi.max_lun, scsi.max_id, scsi.max_channel, scsi.max_cmd_len), (255, 2, 7, 16));
    assert_eq!((scsi.max_sectors, scsi.sg_tablesize), (4096, 513));
    let ide = host_limits(Class::Ide, 2 * 1024 * 1024).unwrap();
    assert_eq!((ide.max_lun, ide.max_id, ide.max_channel), (64, 1, 0));
    let fc = host_limits(Class::Fc, 2 * 1024 * 1024).unwrap();
    assert_eq!((fc.max_lun, fc.max_id, fc.max_channel), (255, 128, 7));
    assert_eq!((fc.max_sectors, fc.sg_tablesize), (1024, 129), "FC caps at 512 KiB");
    // Rounded down to pages; too small fails; too large is capped.
    assert_eq!(host_limits(Class::Scsi, 0x2_0fff).unwrap().max_sectors, 0x2_0000 >> 9);
    assert!(host_limits(Class::Scsi, 4095).is_err());
    assert!(host_limits(Class::Scsi, 0).is_err());
    assert_eq!(host_limits(Class::Scsi, u32::MAX).unwrap().sg_tablesize, u16::MAX);
}

#[test]
fn channels_and_queue_depth_are_sized_as_the_c_driver_sizes_them() {
    assert_eq!(planned_sub_channels(Class::Scsi, 1), 0);
    assert_eq!(planned_sub_channels(Class::Scsi, 4), 0);
    assert_eq!(planned_sub_channels(Class::Scsi, 5), 1);
    assert_eq!(planned_sub_channels(Class::Fc, 16), 3);
    assert_eq!(planned_sub_channels(Class::Ide, 16), 0);
    assert_eq!(planned_sub_channels(Class::Scsi, 0), 0);
    // A 128 KiB ring: (131072 - 4096) / 360 requests; 90 % of them queue.
    assert_eq!(guest::RING_BYTES_PER_REQUEST, 360);
    let per = requests_per_channel(128 * 1024);
    assert_eq!(per, 352);
    assert_eq!(can_queue(per, 0), 316);
    assert_eq!(can_queue(per, 3), 1267);
    assert_eq!(requests_per_channel(0), 0);
    assert_eq!(can_queue(u32::MAX, u32::MAX), u32::MAX);
    let props = ChannelProperties {
        max_channel_cnt: 64,
        flags: 1,
        max_transfer_bytes: 1 << 21,
    };
    assert_eq!(guest::sub_channels_to_request(Class::Scsi, 4, &props), 3);
    assert_eq!(guest::sub_channels_to_request(Class::Scsi, 0, &props), 0);
    assert_eq!(guest::sub_channels_to_request(Class::Scsi, u32::MAX, &props), 64);
}
