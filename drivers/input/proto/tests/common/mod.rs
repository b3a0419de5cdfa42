//! Guests driving the simulated devices through the crate's guest sides,
//! with what the kernel driver would do with each event recorded.
#![allow(dead_code)]

use hv_input_core::host::{DeviceInfoKind, KeyboardHost, MouseHost};
use hv_input_core::keyboard::{self, Event as KeyEvent};
use hv_input_core::mouse::{self, Event as MouseEvent};
use hv_input_core::wire::Error;

/// Room for any message, the oversized report included.
pub const BUF: usize = 20 * 1024;

/// A keyboard guest and its host: the serio bytes the guest would hand to
/// atkbd, the wakeups it would signal, the packets it would drop.
pub struct Kbd {
    pub host: KeyboardHost,
    pub guest: keyboard::Guest,
    pub serio: Vec<u8>,
    pub wakeups: usize,
    pub unicode: Vec<u16>,
    pub dropped: Vec<Error>,
    pub connected: bool,
}

impl Kbd {
    pub fn new(accept: bool) -> Kbd {
        Kbd {
            host: KeyboardHost::new(accept),
            guest: keyboard::Guest::new(),
            serio: Vec::new(),
            wakeups: 0,
            unicode: Vec::new(),
            dropped: Vec::new(),
            connected: false,
        }
    }

    /// A connected keyboard.
    pub fn connected() -> Kbd {
        let mut k = Kbd::new(true);
        k.connect();
        assert!(k.connected);
        k
    }

    pub fn connect(&mut self) {
        let mut buf = [0u8; 64];
        let n = self.guest.request(&mut buf).unwrap();
        self.host.on_guest_packet(&buf[..n]).unwrap();
        self.pump();
    }

    /// Delivers every queued host message to the guest.
    pub fn pump(&mut self) {
        let mut buf = vec![0u8; BUF];
        while let Some(r) = self.host.pop(&mut buf) {
            let n = r.unwrap();
            match self.guest.on_packet(&buf[..n]) {
                Ok(KeyEvent::Connected) => self.connected = true,
                Ok(KeyEvent::Keys { scancodes, wake }) => {
                    self.serio.extend_from_slice(scancodes.as_slice());
                    self.wakeups += usize::from(wake);
                }
                Ok(KeyEvent::Unicode(u)) => self.unicode.push(u),
                Err(e) => self.dropped.push(e),
            }
        }
    }

    pub fn take_serio(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.serio)
    }
}

/// A mouse guest and its host: the report descriptor the guest would give
/// the HID core, the reports it would pass on, the packets it would drop.
pub struct Mouse {
    pub host: MouseHost,
    pub guest: mouse::Guest,
    pub approved: bool,
    pub info: Option<(mouse::DevInfo, mouse::HidDescriptor)>,
    pub report_descriptor: Option<Vec<u8>>,
    pub patched: bool,
    pub reports: Vec<Vec<u8>>,
    pub dropped: Vec<Error>,
}

impl Mouse {
    pub fn new(approve: bool, info: DeviceInfoKind) -> Mouse {
        Mouse {
            host: MouseHost::new(approve, info),
            guest: mouse::Guest::new(),
            approved: false,
            info: None,
            report_descriptor: None,
            patched: false,
            reports: Vec::new(),
            dropped: Vec::new(),
        }
    }

    /// A mouse through its device info.
    pub fn ready() -> Mouse {
        let mut m = Mouse::new(true, DeviceInfoKind::Good);
        m.connect();
        assert!(m.report_descriptor.is_some());
        m
    }

    pub fn connect(&mut self) {
        let mut buf = [0u8; 64];
        let n = self.guest.request(&mut buf).unwrap();
        self.host.on_guest_packet(&buf[..n]).unwrap();
        self.pump();
    }

    /// Delivers every queued host message to the guest; the guest's acks
    /// go back to the host.
    pub fn pump(&mut self) {
        let mut buf = vec![0u8; BUF];
        while let Some(r) = self.host.pop(&mut buf) {
            let n = r.unwrap();
            let mut ack = None;
            match self.guest.on_packet(&buf[..n]) {
                Ok(MouseEvent::Approved) => self.approved = true,
                Ok(MouseEvent::DeviceInfo(d)) => {
                    let mut desc = d.report_descriptor.to_vec();
                    self.patched = mouse::fix_report_descriptor(&mut desc);
                    self.report_descriptor = Some(desc);
                    self.info = Some((d.info, d.hid));
                    let mut a = [0u8; 32];
                    let n = mouse::encode_ack(&mut a).unwrap();
                    ack = Some(a[..n].to_vec());
                }
                Ok(MouseEvent::Report(r)) => self.reports.push(r.to_vec()),
                Err(e) => self.dropped.push(e),
            }
            if let Some(a) = ack {
                self.host.on_guest_packet(&a).unwrap();
            }
        }
    }
}
