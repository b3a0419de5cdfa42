//! The simulated host's virtual switch: one port per simulated NIC (or
//! other endpoint), a bounded MAC learning table, unicast forwarding to the
//! learned port, flooding of broadcast, multicast and unknown unicast to
//! every other port, and each port's RNDIS packet filter and multicast list
//! deciding what it takes.
//!
//! Pure functions over frame bytes and fixed-size tables: [`Switch::forward`]
//! learns the source and returns the set of ports to deliver to; the caller
//! copies the frame.

use super::frame::{dst_mac, is_group, src_mac, BROADCAST};
use super::ndis::{filter, ETH_ALEN};
use super::wire::{Error, Result};

/// Ports of a switch.
pub const MAX_PORTS: usize = 16;
/// Entries of the MAC learning table.
pub const MAC_TABLE_SIZE: usize = 64;
/// Multicast addresses a port holds (a longer list is refused).
pub const MULTICAST_MAX: usize = 32;

/// An Ethernet address.
pub type Mac = [u8; ETH_ALEN];

/// A set of ports, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortSet(pub u32);

impl PortSet {
    /// Whether `port` is in the set.
    pub fn contains(self, port: usize) -> bool {
        self.0 & bit(port) != 0
    }

    fn insert(&mut self, port: usize) {
        self.0 |= bit(port);
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The ports in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_PORTS).filter(move |p| self.contains(*p))
    }
}

/// The bit of `port` in a [`PortSet`]; 0 for a port past [`MAX_PORTS`].
fn bit(port: usize) -> u32 {
    match u32::try_from(port) {
        Ok(p) if port < MAX_PORTS => 1u32.checked_shl(p).unwrap_or(0),
        _ => 0,
    }
}

/// What a port receives: the port's own address (for directed frames; an
/// uplink without one takes every unicast frame it is sent), its RNDIS
/// packet filter ([`filter`] bits) and its multicast list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    /// The port's address, or `None` for an uplink.
    pub mac: Option<Mac>,
    /// [`filter`] bits; 0 (the RNDIS default before the guest sets one)
    /// receives nothing.
    pub filter: u32,
    multicast: [Mac; MULTICAST_MAX],
    multicast_len: usize,
}

impl Port {
    /// A port with address `mac` and filter `filter`, no multicast list.
    pub fn new(mac: Option<Mac>, filter: u32) -> Port {
        Port {
            mac,
            filter,
            multicast: [[0; ETH_ALEN]; MULTICAST_MAX],
            multicast_len: 0,
        }
    }

    /// Replaces the multicast list; more than [`MULTICAST_MAX`] addresses
    /// is an error and leaves the list as it was.
    pub fn set_multicast(&mut self, macs: &[Mac]) -> Result<()> {
        let mut list = [[0; ETH_ALEN]; MULTICAST_MAX];
        let mut len = 0usize;
        for m in macs.iter().copied() {
            let slot = list.get_mut(len).ok_or(Error::BadField("multicast list"))?;
            *slot = m;
            len = len.saturating_add(1);
        }
        self.multicast = list;
        self.multicast_len = len;
        Ok(())
    }

    /// The multicast list.
    pub fn multicast(&self) -> &[Mac] {
        self.multicast.get(..self.multicast_len).unwrap_or(&[])
    }

    /// Whether the port's filter takes a frame to `dst`.
    pub fn accepts(&self, dst: &Mac) -> bool {
        let f = self.filter;
        if f & filter::PROMISCUOUS != 0 {
            return true;
        }
        if *dst == BROADCAST {
            return f & filter::BROADCAST != 0;
        }
        if is_group(dst) {
            return f & filter::ALL_MULTICAST != 0
                || f & filter::MULTICAST != 0 && self.multicast().contains(dst);
        }
        f & filter::DIRECTED != 0 && self.mac.map_or(true, |m| m == *dst)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    mac: Mac,
    port: usize,
    /// When last seen (the switch's frame counter): the oldest goes first
    /// when the table is full.
    seen: u64,
}

/// The switch.
#[derive(Clone, Debug)]
pub struct Switch {
    ports: [Option<Port>; MAX_PORTS],
    table: [Option<Entry>; MAC_TABLE_SIZE],
    clock: u64,
}

impl Switch {
    /// A switch with no ports.
    pub const fn new() -> Switch {
        Switch {
            ports: [None; MAX_PORTS],
            table: [None; MAC_TABLE_SIZE],
            clock: 0,
        }
    }

    /// Adds a port; returns its number, or `None` when all are taken.
    pub fn add_port(&mut self, port: Port) -> Option<usize> {
        // Index loops here and below: `enumerate` leaves an add-overflow
        // panic path in kernel builds.
        let n = (0..MAX_PORTS).find(|n| matches!(self.ports.get(*n), Some(None)))?;
        *self.ports.get_mut(n)? = Some(port);
        Some(n)
    }

    /// Removes a port and forgets what was learned on it.
    pub fn remove_port(&mut self, port: usize) {
        if let Some(p) = self.ports.get_mut(port) {
            *p = None;
        }
        for e in self.table.iter_mut() {
            if e.is_some_and(|e| e.port == port) {
                *e = None;
            }
        }
    }

    /// A port's settings, to change its filter, address or multicast list.
    pub fn port_mut(&mut self, port: usize) -> Option<&mut Port> {
        self.ports.get_mut(port)?.as_mut()
    }

    /// A port's settings.
    pub fn port(&self, port: usize) -> Option<&Port> {
        self.ports.get(port)?.as_ref()
    }

    /// The port `mac` was learned on.
    pub fn lookup(&self, mac: &Mac) -> Option<usize> {
        self.table
            .iter()
            .flatten()
            .find(|e| e.mac == *mac)
            .map(|e| e.port)
    }

    /// Learns that `mac` is behind `port`: updates its entry, or takes a
    /// free one, or replaces the least recently seen.
    fn learn(&mut self, mac: Mac, port: usize) {
        self.clock = self.clock.wrapping_add(1);
        let now = self.clock;
        if let Some(e) = self.table.iter_mut().flatten().find(|e| e.mac == mac) {
            e.port = port;
            e.seen = now;
            return;
        }
        let mut victim: Option<(usize, u64)> = None;
        for i in 0..MAC_TABLE_SIZE {
            match self.table.get(i).copied().flatten() {
                None => {
                    victim = Some((i, 0));
                    break;
                }
                Some(e) if victim.map_or(true, |(_, s)| e.seen < s) => victim = Some((i, e.seen)),
                Some(_) => {}
            }
        }
        if let Some(slot) = victim.and_then(|(i, _)| self.table.get_mut(i)) {
            *slot = Some(Entry {
                mac,
                port,
                seen: now,
            });
        }
    }

    /// Switches a frame that arrived on `in_port`: learns its source (a
    /// unicast source only), then returns the ports to deliver it to. A
    /// unicast frame to a learned address goes to that port (and to
    /// promiscuous ports); broadcast, multicast and unknown unicast flood
    /// to every other port; either way only ports whose filter takes the
    /// frame are in the set, and never `in_port`. A frame shorter than an
    /// Ethernet header, or from a port that does not exist, is an error.
    pub fn forward(&mut self, in_port: usize, frame: &[u8]) -> Result<PortSet> {
        if self.port(in_port).is_none() {
            return Err(Error::BadField("port"));
        }
        let (Some(dst), Some(src), true) = (
            dst_mac(frame),
            src_mac(frame),
            frame.len() >= super::frame::ETH_HLEN,
        ) else {
            return Err(Error::TooShort {
                need: super::frame::ETH_HLEN,
                len: frame.len(),
            });
        };
        if !is_group(&src) {
            self.learn(src, in_port);
        }
        let learned = if is_group(&dst) {
            None
        } else {
            self.lookup(&dst)
        };
        let mut out = PortSet::default();
        for n in 0..MAX_PORTS {
            let Some(Some(p)) = self.ports.get(n) else {
                continue;
            };
            if n == in_port || !p.accepts(&dst) {
                continue;
            }
            let promiscuous = p.filter & filter::PROMISCUOUS != 0;
            match learned {
                Some(to) if to != n && !promiscuous => {}
                _ => out.insert(n),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_sets_ignore_ports_past_the_end() {
        let mut s = PortSet::default();
        s.insert(3);
        s.insert(MAX_PORTS);
        s.insert(usize::MAX);
        assert_eq!(s.iter().count(), 1);
        assert!(s.contains(3) && !s.contains(MAX_PORTS));
    }

    #[test]
    fn ports_run_out() {
        let mut sw = Switch::new();
        for n in 0..MAX_PORTS {
            assert_eq!(sw.add_port(Port::new(None, 0)), Some(n));
        }
        assert_eq!(sw.add_port(Port::new(None, 0)), None);
        sw.remove_port(5);
        assert_eq!(sw.add_port(Port::new(None, 0)), Some(5));
        assert!(sw.forward(MAX_PORTS, &[0; 60]).is_err());
    }
}
