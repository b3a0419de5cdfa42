//! A guest for the tests: the crate's guest side on each channel, with a
//! fake `hv_kvp_daemon` (pools in vectors, speaking the uapi layout) and a
//! fake `hv_vss_daemon` behind KVP and VSS.
#![allow(dead_code)]

use hv_ic_core::guest::{self, Event, Handled};
use hv_ic_core::icmsg::{self, IcVersion};
use hv_ic_core::kvp::{self, off, DaemonMsg, DaemonVersion};
use hv_ic_core::service::{Service, RECV_BUFFER_SIZE};
use hv_ic_core::{negotiate, vss};

/// The KVP daemon: five pools of (key, value), and IP settings.
#[derive(Default)]
pub struct KvpDaemon {
    pub pools: [Vec<(String, String)>; 5],
    pub ip: Option<(String, String, String, String, String, u8, u8)>,
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8(b[..end].to_vec()).expect("daemon got invalid UTF-8")
}

fn put(dst: &mut [u8], s: &str) {
    dst[..s.len()].copy_from_slice(s.as_bytes());
    dst[s.len()] = 0;
}

impl KvpDaemon {
    /// Answers one kernel message as hv_kvp_daemon does (REGISTER1
    /// protocol: the error in the first 4 bytes).
    pub fn handle(&mut self, msg: &[u8]) -> Vec<u8> {
        assert_eq!(msg.len(), kvp::MSG_SIZE);
        let mut out = msg.to_vec();
        let op = msg[off::OPERATION];
        let pool = usize::from(msg[off::POOL]);
        let error = |out: &mut Vec<u8>, e: u32| out[..4].copy_from_slice(&e.to_le_bytes());
        match op {
            kvp::OP_SET => {
                let key = c_str(&msg[off::KEY..off::KEY + kvp::MAX_KEY_SIZE]);
                let value = c_str(&msg[off::VALUE..off::VALUE + kvp::MAX_VALUE_SIZE]);
                let ksize =
                    u32::from_le_bytes(msg[off::KEY_SIZE..off::KEY_SIZE + 4].try_into().unwrap());
                assert_eq!(ksize as usize, key.len() + 1, "key_size counts the NUL");
                let p = &mut self.pools[pool];
                match p.iter_mut().find(|(k, _)| *k == key) {
                    Some(e) => e.1 = value,
                    None => p.push((key, value)),
                }
                error(&mut out, 0);
            }
            kvp::OP_GET => {
                let key = c_str(&msg[off::KEY..off::KEY + kvp::MAX_KEY_SIZE]);
                match self.pools[pool].iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => {
                        put(&mut out[off::VALUE..], v);
                        error(&mut out, 0);
                    }
                    None => error(&mut out, icmsg::E_FAIL),
                }
            }
            kvp::OP_DELETE => {
                let key = c_str(&msg[off::DELETE_KEY..off::DELETE_KEY + kvp::MAX_KEY_SIZE]);
                let p = &mut self.pools[pool];
                let before = p.len();
                p.retain(|(k, _)| *k != key);
                error(&mut out, if p.len() < before { 0 } else { icmsg::E_FAIL });
            }
            kvp::OP_ENUMERATE => {
                let index = u32::from_le_bytes(
                    msg[off::ENUM_INDEX..off::ENUM_INDEX + 4]
                        .try_into()
                        .unwrap(),
                );
                match self.pools[pool].get(index as usize) {
                    Some((k, v)) => {
                        put(&mut out[off::ENUM_SHIFT + off::KEY..], k);
                        put(&mut out[off::ENUM_SHIFT + off::VALUE..], v);
                        error(&mut out, 0);
                    }
                    None => error(&mut out, icmsg::E_FAIL),
                }
            }
            kvp::OP_SET_IP_INFO => {
                let ip = |o: usize, n: usize| c_str(&msg[off::IP_VAL + o..off::IP_VAL + o + n]);
                self.ip = Some((
                    ip(off::IP_ADAPTER_ID, 256),
                    ip(off::IP_ADDR, 2048),
                    ip(off::IP_SUBNET, 2048),
                    ip(off::IP_GATEWAY, 1024),
                    ip(off::IP_DNS, 2048),
                    msg[off::IP_VAL + off::IP_ADDR_FAMILY],
                    msg[off::IP_VAL + off::IP_DHCP],
                ));
                error(&mut out, 0);
            }
            kvp::OP_GET_IP_INFO => {
                let adapter = c_str(&msg[off::IP_VAL..off::IP_VAL + 256]);
                match &self.ip {
                    Some((a, addr, sub, gw, dns, fam, dhcp)) if *a == adapter => {
                        let v = off::IP_VAL;
                        put(&mut out[v + off::IP_ADDR..], addr);
                        put(&mut out[v + off::IP_SUBNET..], sub);
                        put(&mut out[v + off::IP_GATEWAY..], gw);
                        put(&mut out[v + off::IP_DNS..], dns);
                        out[v + off::IP_ADDR_FAMILY] = *fam;
                        out[v + off::IP_DHCP] = *dhcp;
                        error(&mut out, 0);
                    }
                    _ => error(&mut out, icmsg::E_FAIL),
                }
            }
            _ => panic!("daemon got op {op}"),
        }
        out
    }
}

/// The VSS daemon's answers: the status of each operation.
pub struct VssDaemon {
    pub log: Vec<u8>,
    pub status: u32,
}

/// The guest: one receive buffer per call, negotiated versions, daemons.
pub struct Guest {
    pub versions: [Option<IcVersion>; 5],
    pub can_hibernate: bool,
    pub kvp: Option<KvpDaemon>,
    pub kvp_registered: Option<DaemonVersion>,
    pub vss: Option<VssDaemon>,
    pub events: Vec<Event>,
}

fn index(s: Service) -> usize {
    Service::ALL.iter().position(|&x| x == s).unwrap()
}

impl Guest {
    pub fn new() -> Guest {
        let mut g = Guest {
            versions: [None; 5],
            can_hibernate: true,
            kvp: Some(KvpDaemon::default()),
            kvp_registered: None,
            vss: Some(VssDaemon {
                log: Vec::new(),
                status: 0,
            }),
            events: Vec::new(),
        };
        g.register_kvp();
        g
    }

    /// The daemon's REGISTER1 and the kernel's reply.
    pub fn register_kvp(&mut self) {
        let mut reg = vec![0u8; kvp::MSG_SIZE];
        reg[0] = kvp::OP_REGISTER1;
        let DaemonMsg::Register(v) = kvp::parse_daemon(&reg, None).unwrap() else {
            panic!()
        };
        let mut reply = vec![0u8; kvp::MSG_SIZE];
        assert_eq!(kvp::registration_reply(v, &mut reply), Ok(kvp::MSG_SIZE));
        assert_eq!(reply[0], kvp::OP_REGISTER1);
        assert_eq!(&reply[4..8], b"3.1\0");
        self.kvp_registered = Some(v);
    }

    /// Receives `pkt` on `service`'s channel; returns the answer sent (if
    /// any), as the kernel driver would.
    pub fn receive(&mut self, service: Service, pkt: &[u8]) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; RECV_BUFFER_SIZE];
        buf[..pkt.len()].copy_from_slice(pkt);
        let i = index(service);
        let Ok(Handled { event, respond }) = guest::on_packet(
            service,
            self.versions[i],
            self.can_hibernate,
            &mut buf,
            pkt.len(),
        ) else {
            return None;
        };
        self.events.push(event);
        if let Event::Negotiated(Some(a)) = event {
            self.versions[i] = Some(a.service);
        }
        if respond {
            return Some(buf[..pkt.len()].to_vec());
        }
        match event {
            Event::Kvp(_) => {
                let daemon_reply = self.kvp.as_mut().and_then(|d| {
                    let mut msg = vec![0u8; kvp::MSG_SIZE];
                    kvp::to_daemon(&buf[..pkt.len()], &mut msg)
                        .ok()
                        .map(|_| d.handle(&msg))
                });
                let status = daemon_reply.as_ref().map(|r| {
                    let DaemonMsg::Reply { status } =
                        kvp::parse_daemon(r, self.kvp_registered).unwrap()
                    else {
                        panic!()
                    };
                    status
                });
                let reply = daemon_reply.as_deref().zip(status);
                kvp::answer_host(&mut buf[..pkt.len()], reply).unwrap();
                Some(buf[..pkt.len()].to_vec())
            }
            Event::Vss(m) => {
                let status = match m.route() {
                    vss::Route::Kernel => 0,
                    vss::Route::Daemon => match &mut self.vss {
                        None => icmsg::E_FAIL,
                        Some(d) => {
                            let mut msg = [0u8; vss::MSG_SIZE];
                            vss::to_daemon(m.operation, &mut msg).unwrap();
                            d.log.push(msg[0]);
                            let mut reply = msg;
                            reply[..4].copy_from_slice(&d.status.to_le_bytes());
                            match vss::parse_daemon(&reply).unwrap() {
                                vss::DaemonMsg::Result(s) => s,
                                other => panic!("{other:?}"),
                            }
                        }
                    },
                };
                vss::answer_host(&mut buf[..pkt.len()], status).unwrap();
                Some(buf[..pkt.len()].to_vec())
            }
            _ => None,
        }
    }
}

/// A NEGOTIATE offering `fw` and `srv`, built by hand.
pub fn negotiate_packet(fw: &[IcVersion], srv: &[IcVersion]) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = negotiate::build_request(&mut buf, 7, fw, srv).unwrap();
    buf.truncate(n);
    buf
}
