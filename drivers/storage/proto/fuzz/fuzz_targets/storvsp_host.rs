//! The host engine and its SCSI target driven by arbitrary guest packets:
//! each record is a kind byte (channel; with its top bit, the bytes are a
//! CDB the guest's own SRB builder wraps, so that the SCSI target is
//! reached), a data length and length-prefixed bytes; the first byte picks
//! the configuration, an armed fault and whether the controller starts
//! initialized. Nothing may panic, the LUNs' memory is
//! the only thing written, and every packet sent back fits a VSTOR packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storvsc_core::guest::{self, Class, Init, InitStep, INIT_TRANS_ID};
use storvsc_core::srb::{self, Command, DataDirection};
use storvsc_core::storvsp::{Action, Fault, GuestPacket, HostConfig, Storvsp, VersionSet};
use storvsc_core::target::{Bytes, Lun, LunInfo, Luns};
use storvsc_core::vstor::{Version, PACKET_SIZE};

struct TwoLuns {
    a: Vec<u8>,
    b: Vec<u8>,
}

impl Luns for TwoLuns {
    fn lun(&mut self, path: u8, target: u8, lun: u8) -> Option<Lun<'_>> {
        match (path, target, lun) {
            (0, 0, 0) => Some(Lun { info: LunInfo { sector_size: 512, id: 1, thin: true }, medium: &mut self.a }),
            (0, 0, 1) => Some(Lun { info: LunInfo { sector_size: 4096, id: 2, thin: false }, medium: &mut self.b }),
            _ => None,
        }
    }

    fn each_lun(&self, path: u8, target: u8, f: &mut dyn FnMut(u8)) {
        if (path, target) == (0, 0) {
            f(0);
            f(1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let class = [Class::Scsi, Class::Ide, Class::Fc][usize::from(sel) % 3];
    let versions = [VersionSet::ALL, VersionSet::up_to(Version::Win8)][usize::from(sel >> 2) & 1];
    let mut host = Storvsp::new(HostConfig {
        class,
        versions,
        max_sub_channels: u16::from(sel >> 3) & 3,
        ..HostConfig::default()
    });
    let mut luns = TwoLuns { a: vec![0; 512 * 32], b: vec![0; 4096 * 4] };
    if sel & 0x20 != 0 {
        // Start from a controller the guest initialized.
        let (mut init, mut p) = Init::start(class);
        loop {
            let g = GuestPacket { channel: 0, trans_id: INIT_TRANS_ID, bytes: &p.to_bytes(), data_len: 0 };
            let actions = host.on_packet(&g, &mut luns, &mut Bytes(&mut [])).unwrap();
            let Some(Action::Send { bytes, len, .. }) = actions.iter().next().copied() else {
                panic!("init packet not answered");
            };
            match init.on_reply(&bytes[..len]) {
                InitStep::Send(next) => p = next,
                InitStep::Done(_) => break,
                InitStep::Failed(e) => panic!("init failed: {e:?}"),
            }
        }
    }
    if sel & 0x40 != 0 {
        host.arm(Fault::ALL[usize::from(sel) % Fault::ALL.len()], 2);
    }
    while rest.len() >= 4 {
        let kind = rest[0];
        let channel = u16::from(kind & 3);
        let data_len = usize::from(u16::from_le_bytes([rest[1], rest[2]]));
        let len = usize::from(rest[3]).min(rest.len() - 4);
        let mut bytes = rest[4..4 + len].to_vec();
        rest = &rest[4 + len..];
        if kind & 0x80 != 0 {
            let direction = DataDirection::from_raw((kind >> 2) & 3).unwrap_or(DataDirection::Read);
            let cmd = Command {
                port: 0,
                path: 0,
                target: (kind >> 4) & 1,
                lun: (kind >> 5) & 3,
                cdb: &bytes[..bytes.len().min(16)],
                direction,
                data_len: if direction == DataDirection::None { 0 } else { data_len as u32 },
                tagged: true,
            };
            match srb::execute_srb(&cmd, Version::Win10) {
                Ok(p) => bytes = p.to_bytes().to_vec(),
                Err(_) => continue,
            }
        }
        let mut buf = vec![0u8; data_len];
        let g = GuestPacket { channel, trans_id: 7, bytes: &bytes, data_len: data_len as u32 };
        if let Ok(actions) = host.on_packet(&g, &mut luns, &mut Bytes(&mut buf)) {
            for a in actions.iter() {
                match a {
                    Action::Send { len, bytes, trans_id } => {
                        assert!(*len <= PACKET_SIZE);
                        let _ = guest::host_packet(&bytes[..*len], *trans_id, None, 16);
                    }
                    Action::OfferSubChannels(n) => assert!(*n >= 1 && *n <= 3),
                    Action::Hold { .. } | Action::ReleaseHeld => {}
                }
            }
        }
    }
});
