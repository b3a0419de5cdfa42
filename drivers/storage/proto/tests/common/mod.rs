//! A controller for the tests: the host engine with RAM LUNs, and a guest
//! driving it through the crate's guest side.
#![allow(dead_code)]

use storvsc_core::guest::{self, Class, HostEvent, Init, InitStep, Negotiated, INIT_TRANS_ID};
use storvsc_core::srb::{self, Command, DataDirection, IoOutcome};
use storvsc_core::storvsp::{Action, GuestPacket, HostConfig, HostError, Storvsp};
use storvsc_core::target::{Bytes, Lun, LunInfo, Luns};
use storvsc_core::vstor::{Packet, Version};

/// A LUN's address (path, target, LUN), description and blocks.
pub type RamLun = ((u8, u8, u8), LunInfo, Vec<u8>);

/// LUNs in vectors.
#[derive(Default)]
pub struct RamLuns {
    pub luns: Vec<RamLun>,
}

impl RamLuns {
    pub fn add(&mut self, path: u8, target: u8, lun: u8, sector_size: u32, blocks: usize, thin: bool) {
        let id = self.luns.len() as u32 + 0x100;
        self.luns.push((
            (path, target, lun),
            LunInfo {
                sector_size,
                id,
                thin,
            },
            vec![0u8; sector_size as usize * blocks],
        ));
        self.luns.sort_by_key(|l| l.0);
    }

    pub fn remove(&mut self, path: u8, target: u8, lun: u8) {
        self.luns.retain(|l| l.0 != (path, target, lun));
    }

    pub fn medium(&self, path: u8, target: u8, lun: u8) -> &[u8] {
        &self.luns.iter().find(|l| l.0 == (path, target, lun)).unwrap().2
    }
}

impl Luns for RamLuns {
    fn lun(&mut self, path: u8, target: u8, lun: u8) -> Option<Lun<'_>> {
        self.luns
            .iter_mut()
            .find(|l| l.0 == (path, target, lun))
            .map(|l| Lun {
                info: l.1,
                medium: &mut l.2,
            })
    }

    fn each_lun(&self, path: u8, target: u8, f: &mut dyn FnMut(u8)) {
        for l in &self.luns {
            if (l.0 .0, l.0 .1) == (path, target) {
                f(l.0 .2);
            }
        }
    }
}

/// What the host sent back for one packet.
#[derive(Debug, Default)]
pub struct Sent {
    /// Packets sent, with their ids.
    pub packets: Vec<(u64, Vec<u8>)>,
    /// Packets held back.
    pub held: Vec<(u64, Vec<u8>)>,
    pub released: bool,
    pub offered: Option<u16>,
}

pub struct Controller {
    pub host: Storvsp,
    pub luns: RamLuns,
    pub class: Class,
    pub version: Option<Version>,
    /// Completions the host holds back (Fault::Hold).
    pub held: Vec<(u64, Vec<u8>)>,
}

impl Controller {
    pub fn new(config: HostConfig) -> Controller {
        Controller {
            class: config.class,
            host: Storvsp::new(config),
            luns: RamLuns::default(),
            version: None,
            held: Vec::new(),
        }
    }

    /// Sends one packet to the host; returns what it did.
    pub fn send(
        &mut self,
        channel: u16,
        trans_id: u64,
        bytes: &[u8],
        data: &mut [u8],
    ) -> Result<Sent, HostError> {
        let p = GuestPacket {
            channel,
            trans_id,
            bytes,
            data_len: data.len() as u32,
        };
        let actions = self.host.on_packet(&p, &mut self.luns, &mut Bytes(data))?;
        let mut sent = Sent::default();
        for a in actions.iter() {
            match *a {
                Action::Send {
                    trans_id,
                    bytes,
                    len,
                } => sent.packets.push((trans_id, bytes[..len].to_vec())),
                Action::Hold { trans_id, bytes } => {
                    sent.held.push((trans_id, bytes.to_vec()));
                    self.held.push((trans_id, bytes.to_vec()));
                }
                Action::ReleaseHeld => {
                    sent.released = true;
                    sent.packets.append(&mut self.held);
                }
                Action::OfferSubChannels(n) => sent.offered = Some(n),
            }
        }
        Ok(sent)
    }

    /// Runs the guest's initialization against the host; returns its end
    /// and the number of packets the guest sent.
    pub fn init(&mut self) -> (InitStep, usize) {
        let (mut init, first) = Init::start(self.class);
        let mut packet = first;
        let mut sent = 0;
        loop {
            sent += 1;
            let out = self
                .send(0, INIT_TRANS_ID, &packet.to_bytes(), &mut [])
                .expect("host refused an init packet");
            assert_eq!(out.packets.len(), 1);
            let (id, bytes) = &out.packets[0];
            assert_eq!(*id, INIT_TRANS_ID);
            match guest::host_packet(bytes, *id, None, 16).unwrap() {
                HostEvent::Init(_) => {}
                other => panic!("not an init answer: {other:?}"),
            }
            match init.on_reply(bytes) {
                InitStep::Send(p) => packet = p,
                end => {
                    if let InitStep::Done(n) = end {
                        self.version = Some(n.version);
                    }
                    return (end, sent);
                }
            }
        }
    }

    pub fn init_ok(&mut self) -> Negotiated {
        match self.init().0 {
            InitStep::Done(n) => n,
            other => panic!("init failed: {other:?}"),
        }
    }

    /// Runs one SCSI command with tag 0 on `channel`; returns the outcome
    /// the guest computes.
    pub fn command_on(
        &mut self,
        channel: u16,
        addr: (u8, u8, u8),
        cdb: &[u8],
        direction: DataDirection,
        data: &mut [u8],
    ) -> IoOutcome {
        let version = self.version.expect("not initialized");
        let cmd = Command {
            port: 0,
            path: addr.0,
            target: addr.1,
            lun: addr.2,
            cdb,
            direction,
            data_len: data.len() as u32,
            tagged: true,
        };
        let packet = srb::execute_srb(&cmd, version).unwrap();
        let sent = packet.srb();
        let id = guest::command_trans_id(0);
        let out = self.send(channel, id, &packet.to_bytes(), data).unwrap();
        assert_eq!(out.packets.len(), 1, "{out:?}");
        let (rid, bytes) = &out.packets[0];
        match guest::host_packet(bytes, *rid, Some(version), 1).unwrap() {
            HostEvent::Completion { tag: 0, packet } => {
                srb::complete_io(&sent, &packet.srb(), self.class == Class::Fc)
            }
            other => panic!("not a completion: {other:?}"),
        }
    }

    pub fn command(
        &mut self,
        addr: (u8, u8, u8),
        cdb: &[u8],
        direction: DataDirection,
        data: &mut [u8],
    ) -> IoOutcome {
        self.command_on(0, addr, cdb, direction, data)
    }
}

/// A guest packet as the guest builds it, for the host alone.
pub fn packet_bytes(p: &Packet) -> Vec<u8> {
    p.to_bytes().to_vec()
}
