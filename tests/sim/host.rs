// SPDX-License-Identifier: GPL-2.0
//! The simulated VMBus host's control plane, from the host's side: it
//! receives the guest's channel messages (as HvPostMessage hands them to
//! the host) and answers as Hyper-V does:
//!
//! - INITIATE_CONTACT: on the connection id the proposed version calls for
//!   (4 from 5.0, else 1), answered with VERSION_RESPONSE,
//!   `version_supported` = 1 for a version in the configured set, else 0;
//!   from 5.0 an accepted response names connection id 4 for all later
//!   messages. The host listens on connection id 1 always and on 4 only
//!   if it speaks 5.0 or newer ([`Host::listens_on`]): HvPostMessage to
//!   any other id fails the hypercall, as Hyper-V fails a post to a port
//!   that is not there (`HV_STATUS_INVALID_CONNECTION_ID`); a message on
//!   a port it has but in the wrong state is counted and dropped.
//! - REQUESTOFFERS: one OFFERCHANNEL per configured device, then
//!   ALLOFFERS_DELIVERED. The devices are those of the registry's models
//!   (`crate::testing::sim::devices`), in its offer order; `sim_devices=`
//!   picks which are offered at connect.
//! - GPADL_HEADER and GPADL_BODY: collects the page list, maps the pages
//!   (as Hyper-V maps guest memory) and answers GPADL_CREATED;
//!   GPADL_TEARDOWN unmaps and answers GPADL_TORNDOWN.
//! - OPENCHANNEL: asks the device's model for the channel's model and
//!   attaches it to the rings in the GPADL (`crate::testing::sim::vsp`),
//!   answers OPENCHANNEL_RESULT; CLOSECHANNEL detaches it (no answer).
//! - Subchannels a device model asks for: offered (up to 3 a device),
//!   served by the same model.
//! - Hot-add and rescind (debugfs): OFFERCHANNEL, or RESCIND_CHANNELOFFER
//!   after detaching the channel and dropping its GPADLs; the relid is
//!   reused only after the guest's RELID_RELEASED. A hot-add may name
//!   another relid for the device (`offer NAME relid=N`, N in
//!   [`HOT_ADD_RELIDS`], not held by another device): as Hyper-V hands out
//!   new relids over a connection's life. The device keeps it until it is
//!   released; `corrupt-ring` and `stall` still name its registry relid.
//! - UNLOAD: forgets the connection and answers UNLOAD_RESPONSE.

use crate::rust::sim::Mapping;
use crate::vmbus_core::bus as monitor;
use crate::vmbus_core::msg::{GpadlHeader, Message, Offer, OpenChannel, VersionResponse, USER_DEFINED_BYTES};
use crate::testing::sim::hypervisor::HostRequests;
use crate::testing::sim::model::{self, Counter, Device, DeviceModel, Models, Opening};
use crate::testing::sim::vsp::{GuestInterrupts, HostChannel};
use crate::rust::base::work::{BhOff, Work};
use kernel::new_spinlock;
use kernel::sync::{Arc, SpinLock};
use crate::vmbus_core::version::{
    Version, MESSAGE_CONNECTION_ID, MESSAGE_CONNECTION_ID_4, MESSAGE_SINT,
};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::prelude::*;

pub(crate) static INITIATE_CONTACT: AtomicU64 = AtomicU64::new(0);
pub(crate) static VERSION: AtomicU64 = AtomicU64::new(0);
pub(crate) static REQUEST_OFFERS: AtomicU64 = AtomicU64::new(0);
pub(crate) static OFFERS_SENT: AtomicU64 = AtomicU64::new(0);
pub(crate) static UNLOAD: AtomicU64 = AtomicU64::new(0);
pub(crate) static UNEXPECTED: AtomicU64 = AtomicU64::new(0);
pub(crate) static SIGNALS: AtomicU64 = AtomicU64::new(0);
pub(crate) static GPADLS_CREATED: AtomicU64 = AtomicU64::new(0);
pub(crate) static GPADLS_TORN_DOWN: AtomicU64 = AtomicU64::new(0);
pub(crate) static OPENS: AtomicU64 = AtomicU64::new(0);
pub(crate) static CLOSES: AtomicU64 = AtomicU64::new(0);
pub(crate) static RESCINDS: AtomicU64 = AtomicU64::new(0);
pub(crate) static RELIDS_RELEASED: AtomicU64 = AtomicU64::new(0);
pub(crate) static MODIFIES: AtomicU64 = AtomicU64::new(0);
/// HvPostMessage calls refused: no port at the connection id, and a full
/// port (`fault post-busy=N`, `sim_post_busy=N`).
pub(crate) static POSTS_NO_PORT: AtomicU64 = AtomicU64::new(0);
pub(crate) static POSTS_BUSY: AtomicU64 = AtomicU64::new(0);
/// Gauges, not counts: the guest's GPADLs the host holds and its channels
/// the host has open now (after UNLOAD, none of either).
pub(crate) static GPADLS_HELD: AtomicU64 = AtomicU64::new(0);
pub(crate) static CHANNELS_OPEN: AtomicU64 = AtomicU64::new(0);

/// The host's own counters, by their debugfs names (the device models'
/// come from the registry).
pub(crate) static COUNTERS: [Counter; 21] = [
    (kernel::c_str!("sim_initiate_contact"), &INITIATE_CONTACT),
    (kernel::c_str!("sim_version"), &VERSION),
    (kernel::c_str!("sim_request_offers"), &REQUEST_OFFERS),
    (kernel::c_str!("sim_offers_sent"), &OFFERS_SENT),
    (kernel::c_str!("sim_unload"), &UNLOAD),
    (kernel::c_str!("sim_unexpected"), &UNEXPECTED),
    (kernel::c_str!("sim_signals"), &SIGNALS),
    (kernel::c_str!("sim_gpadls_created"), &GPADLS_CREATED),
    (kernel::c_str!("sim_gpadls_torn_down"), &GPADLS_TORN_DOWN),
    (kernel::c_str!("sim_opens"), &OPENS),
    (kernel::c_str!("sim_closes"), &CLOSES),
    (kernel::c_str!("sim_rescinds"), &RESCINDS),
    (kernel::c_str!("sim_relids_released"), &RELIDS_RELEASED),
    (kernel::c_str!("sim_modifies"), &MODIFIES),
    (kernel::c_str!("sim_faults_injected"), &crate::testing::sim::hypervisor::FAULTS_INJECTED),
    (kernel::c_str!("sim_packets_served"), &crate::testing::sim::vsp::PACKETS_SERVED),
    (kernel::c_str!("sim_posts_no_port"), &POSTS_NO_PORT),
    (kernel::c_str!("sim_posts_busy"), &POSTS_BUSY),
    (kernel::c_str!("sim_gpadls_held"), &GPADLS_HELD),
    (kernel::c_str!("sim_channels_open"), &CHANNELS_OPEN),
    (kernel::c_str!("sim_freed_while_mapped"), &crate::rust::sim::FREED_WHILE_MAPPED),
];


/// Open host channels by their signal connection id, for HvSignalEvent
/// (which may come from any context, softirq included: hence a spinlock
/// taken with softirqs off).
#[pin_data]
pub(crate) struct SignalTable {
    #[pin]
    slots: SpinLock<KVec<Option<(u32, Arc<HostChannel>, Arc<Work<HostChannel>>)>>>,
}

/// Open channels and mapped GPADLs the simulated host holds at most: a
/// device with 64 channels, two NICs and tens of echo devices fit.
const HOST_SLOTS: usize = 512;

/// `HOST_SLOTS` free slots, allocated once.
fn free_slots<T>() -> Result<KVec<Option<T>>> {
    let mut slots = KVec::with_capacity(HOST_SLOTS, GFP_KERNEL)?;
    for _ in 0..HOST_SLOTS {
        slots.push(None, GFP_KERNEL)?;
    }
    Ok(slots)
}

impl SignalTable {
    pub(crate) fn new() -> Result<Arc<Self>> {
        let slots = free_slots()?;
        Arc::pin_init(pin_init!(SignalTable { slots <- new_spinlock!(slots, "sim_signal_table") }), GFP_KERNEL)
    }

    /// Queues the work of the channel signalled on `connection_id`.
    pub(crate) fn signal(&self, connection_id: u32) -> bool {
        let _bh = BhOff::new();
        let slots = self.slots.lock();
        match slots.iter().flatten().find(|(id, _, _)| *id == connection_id) {
            Some((_, _, work)) => {
                work.queue_on(u32::MAX);
                true
            }
            None => false,
        }
    }

    /// How many channels are open.
    fn count(&self) -> usize {
        let _bh = BhOff::new();
        let slots = self.slots.lock();
        slots.iter().flatten().count()
    }

    /// Queues the work of the open channel of `relid` (the host looks at
    /// it again unasked).
    pub(crate) fn kick(&self, relid: u32) -> bool {
        let _bh = BhOff::new();
        let slots = self.slots.lock();
        match slots.iter().flatten().find(|(_, c, _)| c.relid == relid) {
            Some((_, _, work)) => {
                work.queue_on(u32::MAX);
                true
            }
            None => false,
        }
    }

    /// The open channel of `relid`, if any.
    pub(crate) fn channel(&self, relid: u32) -> Option<Arc<HostChannel>> {
        let _bh = BhOff::new();
        // A named guard: a temporary in the tail would outlive `_bh`.
        let slots = self.slots.lock();
        slots.iter().flatten().find(|(_, c, _)| c.relid == relid).map(|(_, c, _)| c.clone())
    }

    /// Serves `channel` from now on; returns its work.
    fn insert(&self, connection_id: u32, channel: Arc<HostChannel>) -> Result<Arc<Work<HostChannel>>> {
        let work = Arc::new(Work::new(channel.clone())?, GFP_KERNEL)?;
        let _bh = BhOff::new();
        let mut slots = self.slots.lock();
        let slot = slots.iter_mut().find(|s| s.is_none()).ok_or(ENOSPC)?;
        *slot = Some((connection_id, channel, work.clone()));
        Ok(work)
    }

    /// Detaches the channel of `relid`: it stops serving at once. Its work
    /// is cancelled when the caller drops what this returns, which it must
    /// do outside its locks (cancelling waits for a running work).
    fn remove(&self, relid: u32) -> Option<Retired> {
        let taken = {
            let _bh = BhOff::new();
            let mut slots = self.slots.lock();
            slots
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|(_, c, _)| c.relid == relid))
                .and_then(Option::take)
        };
        taken.map(|(_, channel, work)| {
            channel.close();
            Retired { _channel: channel, _work: work }
        })
    }
}

/// The GPADLs the host has mapped, by handle, for the device models that
/// use guest buffers beyond the rings.
/// A torn-down GPADL leaves the table at once; a model holding its mapping
/// keeps the pages mapped only until it lets go.
#[pin_data]
pub(crate) struct GpadlMaps {
    #[pin]
    slots: SpinLock<KVec<Option<(u32, u32, Arc<Mapping>)>>>,
}

impl GpadlMaps {
    fn new() -> Result<Arc<Self>> {
        let slots = free_slots()?;
        Arc::pin_init(pin_init!(GpadlMaps { slots <- new_spinlock!(slots, "sim_gpadl_maps") }), GFP_KERNEL)
    }

    fn insert(&self, handle: u32, relid: u32, mapping: Arc<Mapping>) -> Result {
        let mut slots = self.slots.lock();
        let slot = slots.iter_mut().find(|s| s.is_none()).ok_or(ENOSPC)?;
        *slot = Some((handle, relid, mapping));
        Ok(())
    }

    /// Forgets GPADL `handle`, or with `None` every GPADL of `relid`, or
    /// with both `None`, all.
    fn remove(&self, handle: Option<u32>, relid: Option<u32>) {
        // Room for every slot, allocated before the lock, so that every
        // mapping is dropped after it.
        let Ok(mut gone) = KVec::<Arc<Mapping>>::with_capacity(HOST_SLOTS, GFP_KERNEL) else {
            pr_err!("sim host: out of memory forgetting GPADLs\n");
            return;
        };
        {
            let mut slots = self.slots.lock();
            for slot in slots.iter_mut() {
                if slot.as_ref().is_some_and(|(h, r, _)| handle.map_or(true, |x| x == *h) && relid.map_or(true, |x| x == *r)) {
                    if let Some((_, _, m)) = slot.take() {
                        // Within the capacity (one per slot): no allocation.
                        let _ = gone.push(m, GFP_ATOMIC);
                    }
                }
            }
        }
        // Unmapped here, outside the spinlock (vunmap may sleep).
        drop(gone);
    }

    /// The mapping of GPADL `handle` of channel `relid`.
    pub(crate) fn get(&self, handle: u32, relid: u32) -> Option<Arc<Mapping>> {
        self.slots.lock().iter().flatten().find(|(h, r, _)| *h == handle && *r == relid).map(|(_, _, m)| m.clone())
    }

    /// The size in bytes of GPADL `handle` of channel `relid`.
    pub(crate) fn size(&self, handle: u32, relid: u32) -> Option<u32> {
        self.get(handle, relid).and_then(|m| u32::try_from(m.len()).ok())
    }
}

/// A detached host channel and its work, dropped outside the host's lock.
pub(crate) struct Retired {
    _channel: Arc<HostChannel>,
    _work: Arc<Work<HostChannel>>,
}

/// A device of the registry as the host holds it.
struct HostDevice {
    device: &'static Device,
    /// The relid it is (or was last) offered at: its registry relid, or
    /// the one a hot-add named.
    relid: u32,
    model: Arc<dyn DeviceModel>,
    /// Offered at connect (`sim_devices`).
    at_connect: bool,
    presence: Presence,
}

/// Where a device stands with the guest.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    /// Not offered (or released after a rescind).
    Absent,
    Offered,
    /// Rescinded; its relid is not reused until RELID_RELEASED.
    Rescinded,
}

/// A GPADL as the host holds it.
struct HostGpadl {
    handle: u32,
    relid: u32,
    total: usize,
    pfns: KVec<u64>,
    mapping: Option<Arc<Mapping>>,
}

/// The connection as the host sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Disconnected,
    Connected { message_connection_id: u32 },
}

/// The host's control plane.
pub(crate) struct Host {
    /// Accepted raw versions (the first `version_count`).
    versions: [u32; 8],
    version_count: usize,
    /// Never answers INITIATE_CONTACT.
    silent: bool,
    /// The registry's devices, in offer order.
    devices: KVec<HostDevice>,
    /// The guest's GPADLs, [`HOST_SLOTS`] slots.
    gpadls: KVec<Option<HostGpadl>>,
    state: State,
    pub(crate) signals: Arc<SignalTable>,
    interrupts: Arc<GuestInterrupts>,
    /// Channels detached under the lock, to be dropped after it.
    pub(crate) retired: KVec<Retired>,
    /// The guest's two monitor pages, mapped at INITIATE_CONTACT.
    monitor_pages: Option<[Mapping; 2]>,
    /// Subchannels offered: (parent device index, index, relid, presence).
    subs: KVec<Option<(usize, u16, u32, Presence)>>,
    pub(crate) requests: Arc<HostRequests>,
    /// Mapped GPADLs, shared with the device models.
    maps: Arc<GpadlMaps>,
}

/// The latency (in 100 ns units) the host writes for monitored channels.
pub(crate) const MONITOR_LATENCY: u16 = 100;

/// Subchannels per device the host offers at most: 64 channels, the most
/// Linux's netvsc uses.
const MAX_SUBCHANNELS: u16 = 63;

/// The relid of subchannel `index` (1..=63) of device `parent` (its place
/// in offer order): 101 and up, below 2048 for the registry's devices.
fn sub_relid(parent: usize, index: u16) -> u32 {
    100 + parent as u32 * 64 + u32::from(index)
}

impl Host {
    /// A host of the devices of `models`, configured from the
    /// `sim_versions` and `sim_devices` text.
    pub(crate) fn new(
        versions: &[u8],
        devices: &[u8],
        models: &Models,
        interrupts: Arc<GuestInterrupts>,
        requests: Arc<HostRequests>,
    ) -> Result<Host> {
        let mut host = Host {
            versions: [0; 8],
            version_count: 0,
            silent: false,
            devices: KVec::new(),
            gpadls: free_slots()?,
            state: State::Disconnected,
            signals: SignalTable::new()?,
            interrupts,
            retired: KVec::new(),
            subs: free_slots()?,
            requests,
            monitor_pages: None,
            maps: GpadlMaps::new()?,
        };
        for (model, device) in models.devices() {
            let entry = HostDevice { device, relid: device.relid, model: model.clone(), at_connect: false, presence: Presence::Absent };
            host.devices.push(entry, GFP_KERNEL)?;
        }
        match versions {
            b"all" => {
                for v in crate::vmbus_core::version::SUPPORTED {
                    host.accept(v.raw())?;
                }
            }
            b"none" => {}
            b"silent" => host.silent = true,
            list => {
                for item in list.split(|&b| b == b',') {
                    let v = parse_version(item).ok_or_else(|| {
                        pr_err!("sim: sim_versions: cannot parse a version\n");
                        EINVAL
                    })?;
                    host.accept(v.raw())?;
                }
            }
        }
        match devices {
            b"default" => {
                for d in host.devices.iter_mut() {
                    d.at_connect = d.device.default;
                }
            }
            b"none" => {}
            list => {
                for item in list.split(|&b| b == b',') {
                    let d = host
                        .devices
                        .iter_mut()
                        .find(|d| d.device.name.as_bytes() == item)
                        .ok_or_else(|| {
                            pr_err!("sim: sim_devices: unknown device name\n");
                            EINVAL
                        })?;
                    d.at_connect = true;
                }
            }
        }
        Ok(host)
    }

    fn accept(&mut self, raw: u32) -> Result {
        let slot = self.versions.get_mut(self.version_count).ok_or(EINVAL)?;
        *slot = raw;
        self.version_count += 1;
        Ok(())
    }

    fn accepts(&self, raw: u32) -> bool {
        self.versions
            .get(..self.version_count)
            .is_some_and(|v| v.contains(&raw))
    }

    /// Whether the host has a message port at `connection_id`: 1 always,
    /// 4 if it speaks 5.0 or newer. A host configured with no version
    /// (`none`, `silent`) stands for a current one that refuses them.
    pub(crate) fn listens_on(&self, connection_id: u32) -> bool {
        let versions = self.versions.get(..self.version_count).unwrap_or(&[]);
        connection_id == MESSAGE_CONNECTION_ID
            || (connection_id == MESSAGE_CONNECTION_ID_4
                && (versions.is_empty()
                    || versions
                        .iter()
                        .any(|&raw| Version::new((raw >> 16) as u16, raw as u16).host_assigns_connection_id())))
    }

    /// A guest message posted to `connection_id`; answers go to `send`.
    pub(crate) fn receive(&mut self, connection_id: u32, payload: &[u8], send: &mut impl FnMut(&Message)) {
        let Ok(message) = Message::parse(payload) else {
            UNEXPECTED.fetch_add(1, Relaxed);
            return;
        };
        match (self.state, message) {
            (_, Message::InitiateContact(ic)) => {
                INITIATE_CONTACT.fetch_add(1, Relaxed);
                let proposed = Version::new((ic.version >> 16) as u16, ic.version as u16);
                if connection_id != proposed.initiate_contact_connection_id() {
                    UNEXPECTED.fetch_add(1, Relaxed);
                    return;
                }
                // Hyper-V needs the monitor pages, and the interrupt page
                // before 5.0 or from 5.0 the SINT to post messages to; a
                // proposal without them is counted as a guest error.
                let target_ok = if proposed.host_assigns_connection_id() {
                    ic.interrupt_page & 0xff == u64::from(MESSAGE_SINT)
                } else {
                    ic.interrupt_page != 0
                };
                if !target_ok || ic.monitor_page1 == 0 || ic.monitor_page2 == 0 {
                    UNEXPECTED.fetch_add(1, Relaxed);
                }
                if self.silent {
                    return;
                }
                // Hyper-V writes monitored channels' parameters into the
                // pages the guest named.
                self.monitor_pages = match (
                    Mapping::new(&[ic.monitor_page1 >> 12]),
                    Mapping::new(&[ic.monitor_page2 >> 12]),
                ) {
                    (Ok(server), Ok(client)) => Some([server, client]),
                    _ => None,
                };
                let supported = self.accepts(ic.version);
                let mut msg_conn_id = 0;
                if supported {
                    let message_connection_id = if proposed.host_assigns_connection_id() {
                        msg_conn_id = MESSAGE_CONNECTION_ID_4;
                        MESSAGE_CONNECTION_ID_4
                    } else {
                        MESSAGE_CONNECTION_ID
                    };
                    self.state = State::Connected {
                        message_connection_id,
                    };
                    VERSION.store(u64::from(ic.version), Relaxed);
                }
                send(&Message::VersionResponse(VersionResponse {
                    supported,
                    connection_state: 0,
                    msg_conn_id,
                }));
            }
            (State::Connected { message_connection_id }, message)
                if connection_id == message_connection_id =>
            {
                self.connected(message, send)
            }
            _ => {
                UNEXPECTED.fetch_add(1, Relaxed);
            }
        }
    }

    fn connected(&mut self, message: Message, send: &mut impl FnMut(&Message)) {
        match message {
            Message::RequestOffers => {
                REQUEST_OFFERS.fetch_add(1, Relaxed);
                for i in 0..self.devices.len() {
                    if self.devices.get(i).is_some_and(|d| d.at_connect) {
                        self.offer(i, send);
                    }
                }
                send(&Message::AllOffersDelivered);
            }
            Message::GpadlHeader(h) => self.gpadl_header(h, send),
            Message::GpadlBody(b) => {
                let Some(g) = self.gpadls.iter_mut().flatten().find(|g| g.handle == b.gpadl && g.mapping.is_none()) else {
                    UNEXPECTED.fetch_add(1, Relaxed);
                    return;
                };
                for &pfn in b.pfns.as_slice() {
                    if g.pfns.len() >= g.total || g.pfns.push(pfn, GFP_KERNEL).is_err() {
                        UNEXPECTED.fetch_add(1, Relaxed);
                        return;
                    }
                }
                let handle = g.handle;
                self.try_map(handle, send);
            }
            Message::GpadlTeardown { child_relid, gpadl } => {
                let slot = self
                    .gpadls
                    .iter_mut()
                    .find(|g| g.as_ref().is_some_and(|g| g.handle == gpadl && g.relid == child_relid));
                match slot {
                    Some(slot) => {
                        *slot = None;
                        self.maps.remove(Some(gpadl), Some(child_relid));
                        GPADLS_TORN_DOWN.fetch_add(1, Relaxed);
                        send(&Message::GpadlTorndown { gpadl });
                    }
                    None => {
                        UNEXPECTED.fetch_add(1, Relaxed);
                    }
                }
            }
            Message::OpenChannel(o) => {
                let status = match self.open(&o) {
                    Ok(()) => {
                        OPENS.fetch_add(1, Relaxed);
                        0
                    }
                    Err(e) => {
                        pr_info!("sim host: open of relid {} refused: {:?}\n", o.child_relid, e);
                        // STATUS_UNSUCCESSFUL, as Hyper-V reports a failure.
                        0xc000_0001
                    }
                };
                send(&Message::OpenResult {
                    child_relid: o.child_relid,
                    openid: o.openid,
                    status,
                });
            }
            Message::ModifyChannel { child_relid, target_vp } => {
                let Some(channel) = self.signals.channel(child_relid) else {
                    UNEXPECTED.fetch_add(1, Relaxed);
                    return;
                };
                // The simulator's VP indexes are CPU numbers.
                channel.retarget(target_vp);
                MODIFIES.fetch_add(1, Relaxed);
                if VERSION.load(Relaxed) >= u64::from(Version::WIN10_V5_3.raw()) {
                    send(&Message::ModifyChannelResponse { child_relid, status: 0 });
                }
            }
            Message::CloseChannel { child_relid } => {
                if self.retire(child_relid) {
                    CLOSES.fetch_add(1, Relaxed);
                } else {
                    UNEXPECTED.fetch_add(1, Relaxed);
                }
            }
            Message::RelidReleased { child_relid } => {
                // After a rescind; or an offer the guest gives back unused
                // (never opened), as Linux does when it cannot take one.
                let unused = self.signals.channel(child_relid).is_none();
                let released = |p: Presence| p == Presence::Rescinded || (unused && p == Presence::Offered);
                let sub = self
                    .subs
                    .iter_mut()
                    .find(|s| s.is_some_and(|(_, _, r, p)| r == child_relid && released(p)));
                if let Some(sub) = sub {
                    *sub = None;
                    RELIDS_RELEASED.fetch_add(1, Relaxed);
                    return;
                }
                match self.devices.iter_mut().find(|d| d.relid == child_relid && released(d.presence)) {
                    Some(d) => {
                        d.presence = Presence::Absent;
                        RELIDS_RELEASED.fetch_add(1, Relaxed);
                    }
                    _ => {
                        UNEXPECTED.fetch_add(1, Relaxed);
                    }
                }
            }
            Message::Unload => {
                let n = UNLOAD.fetch_add(1, Relaxed).saturating_add(1);
                self.forget_all();
                self.state = State::Disconnected;
                pr_info!("sim host: UNLOAD received ({} so far), answering UNLOAD_RESPONSE\n", n);
                send(&Message::UnloadResponse);
            }
            _ => {
                UNEXPECTED.fetch_add(1, Relaxed);
            }
        }
    }

    fn offer(&mut self, i: usize, send: &mut impl FnMut(&Message)) {
        let Some((d, relid)) = self.devices.get(i).map(|d| (d.device, d.relid)) else { return };
        if let (Some(pages), Some(id)) = (&self.monitor_pages, d.monitor_id) {
            for page in pages {
                // SAFETY: used only here, while the mapping lives.
                let mem = unsafe { page.shared_static() };
                let _ = monitor::write_monitor(mem, id, MONITOR_LATENCY, signal_id(relid));
            }
        }
        self.set_presence(i, Presence::Offered);
        send_offer(d, 0, relid, d.monitor_id, send);
    }

    /// The device (its index) of an offered channel and the channel's
    /// subchannel index (0 for the primary).
    fn offered_channel(&self, relid: u32) -> Option<(usize, u16)> {
        if let Some((parent, index, ..)) = self.subs.iter().flatten().find(|s| s.2 == relid && s.3 == Presence::Offered) {
            return Some((*parent, *index));
        }
        let i = self.offered_at(relid)?;
        Some((i, 0))
    }

    /// The index of the first device that `f` picks.
    fn index_of(&self, f: impl Fn(&Device) -> bool) -> Option<usize> {
        self.devices.iter().position(|d| f(d.device))
    }

    /// The index of the device offered at `relid`.
    fn offered_at(&self, relid: u32) -> Option<usize> {
        self.devices.iter().position(|d| d.relid == relid && d.presence == Presence::Offered)
    }

    fn presence(&self, i: usize) -> Option<Presence> {
        self.devices.get(i).map(|d| d.presence)
    }

    fn set_presence(&mut self, i: usize, presence: Presence) {
        if let Some(d) = self.devices.get_mut(i) {
            d.presence = presence;
        }
    }

    fn gpadl_header(&mut self, h: GpadlHeader, send: &mut impl FnMut(&Message)) {
        let total = usize::from(h.total_pfns);
        let whole_pages = h.byte_offset == 0 && h.byte_count as usize == total * 4096;
        let known = self.gpadls.iter().flatten().any(|g| g.handle == h.gpadl);
        if self.offered_channel(h.child_relid).is_none() || known || total == 0 || !whole_pages {
            UNEXPECTED.fetch_add(1, Relaxed);
            send(&Message::GpadlCreated {
                child_relid: h.child_relid,
                gpadl: h.gpadl,
                status: 0xc000_0001,
            });
            return;
        }
        let mut pfns = KVec::new();
        for &pfn in h.pfns.as_slice() {
            if pfns.len() >= total || pfns.push(pfn, GFP_KERNEL).is_err() {
                UNEXPECTED.fetch_add(1, Relaxed);
                return;
            }
        }
        let Some(slot) = self.gpadls.iter_mut().find(|g| g.is_none()) else {
            send(&Message::GpadlCreated {
                child_relid: h.child_relid,
                gpadl: h.gpadl,
                status: 0xc000_0001,
            });
            return;
        };
        *slot = Some(HostGpadl {
            handle: h.gpadl,
            relid: h.child_relid,
            total,
            pfns,
            mapping: None,
        });
        self.try_map(h.gpadl, send);
    }

    /// Maps a GPADL once its page list is complete and answers.
    fn try_map(&mut self, handle: u32, send: &mut impl FnMut(&Message)) {
        let Some(slot) = self.gpadls.iter_mut().find(|g| g.as_ref().is_some_and(|g| g.handle == handle)) else {
            return;
        };
        let Some(g) = slot.as_mut() else { return };
        if g.pfns.len() < g.total {
            return;
        }
        let relid = g.relid;
        let mapped = Mapping::new(&g.pfns)
            .and_then(|m| Ok(Arc::new(m, GFP_KERNEL)?))
            .and_then(|m| self.maps.insert(handle, relid, m.clone()).map(|()| m));
        let status = match mapped {
            Ok(m) => {
                g.mapping = Some(m);
                g.pfns = KVec::new();
                GPADLS_CREATED.fetch_add(1, Relaxed);
                0
            }
            Err(_) => {
                *slot = None;
                0xc000_0001
            }
        };
        send(&Message::GpadlCreated {
            child_relid: relid,
            gpadl: handle,
            status,
        });
    }

    fn open(&mut self, o: &OpenChannel) -> Result {
        let (parent, index) = self.offered_channel(o.child_relid).ok_or(ENODEV)?;
        let (device, model) = self.devices.get(parent).map(|d| (d.device, d.model.clone())).ok_or(ENODEV)?;
        if self.signals.channel(o.child_relid).is_some() {
            return Err(EBUSY);
        }
        let rings = self
            .gpadls
            .iter()
            .flatten()
            .find(|g| g.handle == o.ring_gpadl && g.relid == o.child_relid)
            .and_then(|g| g.mapping.clone())
            .ok_or(ENOENT)?;
        let opening = Opening { device, relid: o.child_relid, index, maps: &self.maps, requests: &self.requests };
        let served = model.open(&opening)?;
        let hook = served.hook.clone();
        // The simulator's VP indexes are CPU numbers.
        let channel = HostChannel::new(
            o.child_relid,
            o.target_vp,
            self.interrupts.clone(),
            rings,
            o.downstream_page_offset as usize,
            served,
        );
        let work = channel.and_then(|c| self.signals.insert(signal_id(o.child_relid), c));
        match (work, hook) {
            (Ok(work), Some(hook)) => hook.serving(work),
            (Ok(_), None) => {}
            (Err(e), hook) => {
                if let Some(hook) = hook {
                    hook.closed();
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Detaches every channel and drops every GPADL (unload).
    /// Sets the gauges [`GPADLS_HELD`] and [`CHANNELS_OPEN`] from the
    /// host's tables.
    pub(crate) fn refresh_gauges(&self) {
        GPADLS_HELD.store(self.gpadls.iter().flatten().count() as u64, Relaxed);
        CHANNELS_OPEN.store(self.signals.count() as u64, Relaxed);
    }

    fn forget_all(&mut self) {
        for i in 0..self.devices.len() {
            if let Some(relid) = self.devices.get(i).map(|d| d.relid) {
                self.retire(relid);
            }
        }
        for k in 0..self.subs.len() {
            if let Some(Some((_, _, relid, _))) = self.subs.get_mut(k).map(Option::take) {
                self.retire(relid);
            }
        }
        for g in self.gpadls.iter_mut() {
            *g = None;
        }
        self.maps.remove(None, None);
        for d in self.devices.iter_mut() {
            d.presence = Presence::Absent;
        }
    }

    /// Detaches the channel of `relid`, if open; true if it was.
    fn retire(&mut self, relid: u32) -> bool {
        let Some(retired) = self.signals.remove(relid) else {
            return false;
        };
        // Reserve first: a failed push would drop (cancel) it under the
        // lock. The channel is closed already, so leaking it is harmless.
        if self.retired.reserve(1, GFP_KERNEL).is_err() {
            pr_err!("sim host: out of memory retiring relid {}\n", relid);
            core::mem::forget(retired);
            return true;
        }
        let _ = self.retired.push(retired, GFP_KERNEL);
        true
    }

    /// debugfs: offers device `NAME` now (hot-add); `NAME relid=N` offers
    /// it at relid N (in [`HOT_ADD_RELIDS`]) instead of its registry relid.
    pub(crate) fn hot_add(&mut self, arg: &[u8], send: &mut impl FnMut(&Message)) -> Result {
        let (name, relid) = parse_hot_add(arg).ok_or(EINVAL)?;
        let i = self.index_of(|d| d.name.as_bytes() == name).ok_or(ENOENT)?;
        if !matches!(self.state, State::Connected { .. }) {
            return Err(ENXIO);
        }
        if self.presence(i) != Some(Presence::Absent) {
            return Err(EBUSY);
        }
        let relid = match (relid, self.devices.get(i)) {
            (Some(r), _) => r,
            (None, Some(d)) => d.device.relid,
            (None, None) => return Err(ENOENT),
        };
        // Another device present (offered, or rescinded and not yet
        // released) at that relid, or a subchannel there, holds it.
        let held = self.devices.iter().enumerate().any(|(k, d)| k != i && d.relid == relid && d.presence != Presence::Absent)
            || self.subs.iter().flatten().any(|s| s.2 == relid);
        if held {
            return Err(EEXIST);
        }
        if let Some(d) = self.devices.get_mut(i) {
            d.relid = relid;
        }
        self.offer(i, send);
        Ok(())
    }

    /// debugfs: rescinds device `name`: its channel stops, its GPADLs go.
    pub(crate) fn rescind(&mut self, name: &[u8], send: &mut impl FnMut(&Message)) -> Result {
        let i = self.index_of(|d| d.name.as_bytes() == name).ok_or(ENOENT)?;
        let relid = self.devices.get(i).map(|d| d.relid).ok_or(ENOENT)?;
        if self.presence(i) != Some(Presence::Offered) {
            return Err(ENOENT);
        }
        // Its subchannels go first, as Hyper-V rescinds them.
        for k in 0..self.subs.len() {
            let Some(Some((parent, _, sub, Presence::Offered))) = self.subs.get(k).copied() else {
                continue;
            };
            if parent != i {
                continue;
            }
            self.retire(sub);
            self.drop_gpadls(sub);
            if let Some(Some(entry)) = self.subs.get_mut(k) {
                entry.3 = Presence::Rescinded;
            }
            send(&Message::Rescind { child_relid: sub });
        }
        self.retire(relid);
        self.drop_gpadls(relid);
        self.set_presence(i, Presence::Rescinded);
        RESCINDS.fetch_add(1, Relaxed);
        send(&Message::Rescind { child_relid: relid });
        Ok(())
    }

    fn drop_gpadls(&mut self, relid: u32) {
        for slot in self.gpadls.iter_mut() {
            if slot.as_ref().is_some_and(|g| g.relid == relid) {
                *slot = None;
            }
        }
        self.maps.remove(None, Some(relid));
    }

    /// A device model asked for `count` subchannels of channel `relid`:
    /// offers those not offered yet, up to [`MAX_SUBCHANNELS`].
    pub(crate) fn offer_subchannels(&mut self, relid: u32, count: u16, send: &mut impl FnMut(&Message)) -> Result {
        let parent = self.offered_at(relid).ok_or(ENOENT)?;
        let device = self.devices.get(parent).map(|d| d.device).ok_or(ENOENT)?;
        for index in 1..=count.min(MAX_SUBCHANNELS) {
            if self.subs.iter().flatten().any(|s| s.0 == parent && s.1 == index) {
                continue;
            }
            let sub = sub_relid(parent, index);
            let Some(slot) = self.subs.iter_mut().find(|s| s.is_none()) else {
                return Err(ENOSPC);
            };
            *slot = Some((parent, index, sub, Presence::Offered));
            send_offer(device, index, sub, None, send);
        }
        Ok(())
    }

    /// The relid of device `name`.
    pub(crate) fn relid_of(name: &[u8]) -> Option<u32> {
        model::device(name).map(|d| d.relid)
    }
}

/// Sends the OFFERCHANNEL of channel `relid` of `device` (subchannel
/// `index`, 0 for the primary).
fn send_offer(device: &Device, index: u16, relid: u32, monitor_id: Option<u8>, send: &mut impl FnMut(&Message)) {
    send(&Message::Offer(Offer {
        if_type: device.class,
        if_instance: device.instance,
        chn_flags: 0,
        mmio_megabytes: 0,
        user_def: [0; USER_DEFINED_BYTES],
        sub_channel_index: index,
        child_relid: relid,
        monitor_id,
        dedicated_interrupt: false,
        connection_id: signal_id(relid),
    }));
    OFFERS_SENT.fetch_add(1, Relaxed);
}

/// The relids a hot-add may name: two digits (the echo driver names its
/// controls `echo<relid>` for those), below the subchannels' 100 and up.
pub(crate) const HOT_ADD_RELIDS: core::ops::RangeInclusive<u32> = 10..=99;

/// `NAME` or `NAME relid=N` (N in [`HOT_ADD_RELIDS`]).
fn parse_hot_add(arg: &[u8]) -> Option<(&[u8], Option<u32>)> {
    let text = core::str::from_utf8(arg).ok()?.trim();
    let Some((name, rest)) = text.split_once(' ') else {
        return Some((text.as_bytes(), None));
    };
    let relid: u32 = rest.trim().strip_prefix("relid=")?.parse().ok()?;
    HOT_ADD_RELIDS.contains(&relid).then_some((name.as_bytes(), Some(relid)))
}

/// The connection id a channel's HvSignalEvent uses.
fn signal_id(relid: u32) -> u32 {
    0x1_0000 + relid
}

/// `M.m` with decimal numbers.
fn parse_version(text: &[u8]) -> Option<Version> {
    let text = core::str::from_utf8(text).ok()?;
    let (major, minor) = text.trim().split_once('.')?;
    Some(Version::new(major.parse().ok()?, minor.parse().ok()?))
}
