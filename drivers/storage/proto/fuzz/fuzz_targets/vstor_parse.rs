//! Everything the guest parses from the host, over arbitrary bytes: the
//! packet, its sorting by transaction id, and the completion of a command
//! (the first 52 bytes are the SRB the guest sent, the rest the host's
//! packet). Nothing may panic; what parses re-encodes to the same value;
//! a completion never moves more than the guest asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storvsc_core::guest::{self, HostEvent};
use storvsc_core::srb::{complete_io, Followup};
use storvsc_core::vstor::{Packet, Srb, GUEST_VERSIONS, PACKET_SIZE, SENSE_SIZE, SRB_SIZE};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (sent, host) = rest.split_at(rest.len().min(SRB_SIZE));
    let sent = Srb::decode(sent);
    if let Ok(p) = Packet::parse(host, 0) {
        assert_eq!(Packet::parse(&p.to_bytes(), PACKET_SIZE), Ok(p));
        let _ = p.wwn().active_names();
    }
    let ids = [0, guest::INIT_TRANS_ID, guest::RESET_TRANS_ID, 1, 2, u64::from(sel) << 40];
    let id = ids[usize::from(sel) % ids.len()];
    let version = GUEST_VERSIONS.get(usize::from(sel >> 4) % 4).copied();
    match guest::host_packet(host, id, version, 4) {
        Ok(HostEvent::Completion { tag, packet }) => {
            assert!(tag < 4);
            let o = complete_io(&sent, &packet.srb(), sel & 0x80 != 0);
            assert!(o.transferred <= sent.data_transfer_length);
            assert_eq!(o.transferred + o.resid, sent.data_transfer_length);
            assert!(usize::from(o.sense_len) <= SENSE_SIZE);
            if let Followup::Rescan { target, lun } | Followup::Remove { target, lun } = o.followup {
                assert_eq!((target, lun), (sent.target, sent.lun));
            }
        }
        Ok(_) | Err(_) => {}
    }
});
