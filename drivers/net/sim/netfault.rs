// SPDX-License-Identifier: GPL-2.0
//! Fault injection at the simulated NICs' NVSP/RNDIS layer (the NIC
//! model's debugfs `sim` commands `netfault NIC KIND [COUNT]` and
//! `netfault NIC off`; `clear` disarms every NIC's): the NIC's next COUNT
//! completions or received frames go to the guest faulted, as
//! `netvsc_core::netfault` describes each kind.
//!
//! A NIC's armed fault lives in the switch, by relid, so it survives the
//! channel: one armed while the driver is unbound hits the next probe.
//! Each fault injected counts in `sim_net_faults`. A faulted transfer-page
//! packet keeps its transaction id, so the guest's completion frees the
//! receive-buffer slots; `sim_net_rx_slots` counts the slots the guests
//! hold (0 once every packet is completed).

use crate::rust::base::time::RateLimit;
pub(crate) use crate::drivers::net::proto::netfault::Target;
use crate::drivers::net::proto::netfault::{Fault, TransferPages};
use crate::drivers::net::sim::{relid_of, NetSwitch};
use crate::testing::sim::chaos::ChaosFault;
use crate::testing::sim::vsp::{OutKind, Outbox};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::Arc;

/// Faults injected, every NIC's.
pub(crate) static NET_FAULTS: AtomicU64 = AtomicU64::new(0);
/// Receive-buffer slots the guests hold (filled by the host, not yet
/// completed), every NIC's.
pub(crate) static NET_RX_SLOTS: AtomicU64 = AtomicU64::new(0);

/// The most NICs with a fault table entry (the simulator has five).
const NICS: usize = 8;

/// The fault armed for one NIC: its kind ([`Fault::raw`]) in the high
/// word, the packets left in the low word; 0 when none.
pub(crate) struct Armed {
    state: AtomicU64,
}

impl Armed {
    fn new() -> Self {
        Armed { state: AtomicU64::new(0) }
    }

    /// Arms `fault` for the next `count` packets it targets.
    pub(crate) fn arm(&self, fault: Fault, count: u32) {
        let state = if count == 0 { 0 } else { u64::from(fault.raw()) << 32 | u64::from(count) };
        self.state.store(state, Ordering::SeqCst);
    }

    pub(crate) fn disarm(&self) {
        self.state.store(0, Ordering::SeqCst);
    }

    /// Whether a fault that targets `target` is armed.
    pub(crate) fn armed_for(&self, target: Target) -> bool {
        let v = self.state.load(Ordering::Relaxed);
        // CAST: the high word.
        v != 0 && Fault::from_raw((v >> 32) as u32).is_some_and(|f| f.target() == target)
    }

    /// Whether [`Fault::RscSplit`] is armed.
    pub(crate) fn rsc_split_armed(&self) -> bool {
        let v = self.state.load(Ordering::Relaxed);
        // CAST: the high word.
        v != 0 && Fault::from_raw((v >> 32) as u32) == Some(Fault::RscSplit)
    }

    /// Takes one use of [`Fault::RscSplit`] if that is what is armed.
    pub(crate) fn take_rsc_split(&self, relid: u32) -> bool {
        let v = self.state.load(Ordering::Relaxed);
        // CAST: the high word.
        if v == 0 || Fault::from_raw((v >> 32) as u32) != Some(Fault::RscSplit) {
            return false;
        }
        let taken = self.take(Target::Frame) == Some(Fault::RscSplit);
        if taken {
            injected(relid, Fault::RscSplit);
        }
        taken
    }

    /// The armed fault if it targets `target`, counted as used.
    fn take(&self, target: Target) -> Option<Fault> {
        let mut v = self.state.load(Ordering::Relaxed);
        loop {
            if v == 0 {
                return None;
            }
            // CAST: the high and low words.
            let fault = Fault::from_raw((v >> 32) as u32)?;
            if fault.target() != target {
                return None;
            }
            let left = v as u32;
            let next = if left <= 1 { 0 } else { v - 1 };
            match self.state.compare_exchange(v, next, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return Some(fault),
                Err(now) => v = now,
            }
        }
    }
}

/// The armed faults of the NICs on one switch, by relid.
pub(crate) struct FaultTable {
    nics: [Option<(u32, Arc<Armed>)>; NICS],
}

impl FaultTable {
    pub(crate) const fn new() -> Self {
        FaultTable { nics: [const { None }; NICS] }
    }

    /// NIC `relid`'s entry, made if it has none.
    pub(crate) fn of(&mut self, relid: u32) -> Result<Arc<Armed>> {
        if let Some((_, a)) = self.nics.iter().flatten().find(|(r, _)| *r == relid) {
            return Ok(a.clone());
        }
        let slot = self.nics.iter_mut().find(|n| n.is_none()).ok_or(ENOSPC)?;
        let armed = Arc::new(Armed::new(), GFP_KERNEL)?;
        *slot = Some((relid, armed.clone()));
        Ok(armed)
    }

    /// Disarms every NIC's fault.
    pub(crate) fn clear(&self) {
        for (_, a) in self.nics.iter().flatten() {
            a.disarm();
        }
    }
}

/// The NIC model's faults, for chaos (`crate::testing::sim::chaos`):
/// every NVSP/RNDIS fault kind ([`Fault::ALL`]) for the NIC's next few
/// packets, and the link going down for a while.
pub(crate) static CHAOS_FAULTS: [ChaosFault; 16] = [
    ChaosFault::once("netfault {dev} bad-completion {n}"),
    ChaosFault::once("netfault {dev} stale-completion {n}"),
    ChaosFault::once("netfault {dev} malformed-completion {n}"),
    ChaosFault::once("netfault {dev} garbage-completion {n}"),
    ChaosFault::once("netfault {dev} bad-range {n}"),
    ChaosFault::once("netfault {dev} wrap-range {n}"),
    ChaosFault::once("netfault {dev} oversize {n}"),
    ChaosFault::once("netfault {dev} oversize-rndis {n}"),
    ChaosFault::once("netfault {dev} oversize-data {n}"),
    ChaosFault::once("netfault {dev} bad-set {n}"),
    ChaosFault::once("netfault {dev} bad-nvsp {n}"),
    ChaosFault::once("netfault {dev} malformed-rndis {n}"),
    ChaosFault::once("netfault {dev} runt {n}"),
    ChaosFault::once("netfault {dev} long-range {n}"),
    ChaosFault::once("netfault {dev} rsc-split {n}"),
    ChaosFault::until("link {dev} down", "link {dev} up"),
];
// A fault kind added to `Fault::ALL` is added above too.
const _: () = assert!(CHAOS_FAULTS.len() == Fault::ALL.len() + 1);

fn injected(relid: u32, fault: Fault) {
    NET_FAULTS.fetch_add(1, Ordering::Relaxed);
    static LIMIT: RateLimit = RateLimit::new(200);
    if LIMIT.allow() {
        pr_info!("sim: nic relid {}: injecting {}\n", relid, fault.name());
    }
}

/// A received frame's transfer-page packet, faulted if a frame fault is
/// armed and `message` (the RNDIS message, rewritten in place) carries a
/// frame.
pub(crate) fn frame(
    armed: &Armed,
    relid: u32,
    message: &mut [u8],
    packet: TransferPages,
    buffer_size: u32,
    section_size: u32,
) -> TransferPages {
    if !crate::drivers::net::proto::netfault::is_frame(message) {
        return packet;
    }
    let Some(fault) = armed.take(Target::Frame) else {
        return packet;
    };
    injected(relid, fault);
    fault.frame(message, packet, buffer_size, section_size)
}

/// Queues the completion of transaction `tid` with the NVSP message
/// `message`, faulted if a completion fault is armed.
pub(crate) fn complete(armed: &Armed, relid: u32, tid: u64, message: &[u8], out: &mut Outbox) {
    let Some(fault) = armed.take(Target::Completion) else {
        let _ = out.push(OutKind::Completion, tid, message);
        return;
    };
    injected(relid, fault);
    for (t, body) in fault.completion(tid, message).iter() {
        let _ = out.push(OutKind::Completion, t, body);
    }
}

/// debugfs: `netfault NIC KIND [COUNT]` (`args` are the words after
/// `netfault`) arms KIND for NIC's next COUNT packets (default 1, at most
/// a million); `netfault NIC off` disarms it.
pub(super) fn command(switch: &NetSwitch, args: &[&str]) -> Result {
    let mut words = args.iter().copied();
    let (Some(name), Some(kind)) = (words.next(), words.next()) else {
        return Err(EINVAL);
    };
    let count = match words.next() {
        Some(c) => c.parse::<u32>().map_err(|_| EINVAL)?,
        None => 1,
    };
    if words.next().is_some() || count == 0 || count > 1_000_000 {
        return Err(EINVAL);
    }
    let relid = relid_of(name).ok_or(ENOENT)?;
    let fault = match kind {
        "off" => None,
        k => Some(Fault::from_name(k).ok_or(EINVAL)?),
    };
    let armed = switch.faults_of(relid)?;
    match fault {
        Some(f) => armed.arm(f, count),
        None => armed.disarm(),
    }
    Ok(())
}
