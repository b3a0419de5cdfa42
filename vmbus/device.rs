// SPDX-License-Identifier: GPL-2.0
//! VMBus devices and drivers: a device made from the host's offer (its
//! facts, its primary channel, the subchannels offered for it), what a
//! driver does with it (open channels, share buffers), the [`Driver`] trait
//! drivers implement and [`driver_list!`], which registers a list of them.
//!
//! The kernel objects are the kernel layer's (`rust/vmbus/bus_type.rs`):
//! a [`DeviceState`] is its [`BusDevice`], formatting the sysfs files of
//! the C driver from the offer and the channel.

use crate::rust::base::cpu::{cpu_possible, cpu_to_node};
use crate::rust::base::memory::Buffer;
use crate::rust::base::time::{msleep, now_ms};
use crate::rust::base::DeviceRef;
use crate::rust::vmbus::bus_type::{self, BusDevice, BusDriver, RawDevice};
use crate::vmbus::channel::{Channel, ChannelHandler, ChannelParams};
use crate::vmbus::connection::Connection;
use crate::vmbus_core::bus::{
    modalias, show_chan_attr, show_dev_attr, show_vp_mapping, store_chan_attr, AttrError, ChanAttr, ChannelState, ChannelView,
    DevAttr, OfferFacts, MODALIAS_LEN,
};
use crate::vmbus_core::guid::Guid;
use core::marker::PhantomData;
use core::sync::atomic::Ordering;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};
use kernel::types::ForeignOwnable;

/// The registered bus_type `vmbus`, whose devices are [`DeviceState`]s.
pub(crate) type BusRegistration = bus_type::BusRegistration<DeviceState>;

/// What a device is: the offer's facts, the connection that offered it
/// (none for devices made through the test control) and its primary
/// channel, once a driver opened it.
#[pin_data]
pub(crate) struct DeviceState {
    offer: OfferFacts,
    link: Option<Arc<Connection>>,
    #[pin]
    channel: Mutex<Option<Arc<Channel>>>,
    /// The subchannels the host offered for the device, from each offer
    /// to its rescind (free slots are reused; grown as needed).
    #[pin]
    subchannels: Mutex<KVec<Option<Subchannel>>>,
}

/// A subchannel the host offered for a device.
#[derive(Clone, Copy)]
struct Subchannel {
    relid: u32,
    /// Its subchannel index (1 and up).
    index: u16,
    monitor_id: Option<u8>,
    /// The CPU chosen for it at its offer, as the C driver chooses
    /// (`init_vp_index`): the host interrupts that CPU once it is open.
    cpu: u32,
    /// Offered and not opened by a driver (again, once closed).
    waiting: bool,
}

impl DeviceState {
    /// Records a subchannel offer, waiting to be opened, with a CPU of its
    /// own: as the C driver does, one its siblings (and the primary) do
    /// not use while there are CPUs to spare. Its CPU; `None` if out of
    /// memory.
    fn subchannel_waits(&self, relid: u32, index: u16, monitor_id: Option<u8>) -> Option<u32> {
        let mut slots = self.subchannels.lock();
        let mut used = KVec::with_capacity(slots.len().saturating_add(1), GFP_KERNEL).ok()?;
        used.push(self.channel().target_cpu, GFP_KERNEL).ok()?;
        for sub in slots.iter().flatten() {
            used.push(sub.cpu, GFP_KERNEL).ok()?;
        }
        let cpu = match &self.link {
            Some(conn) => conn.pick_cpu(&self.offer.class, &used),
            None => self.offer.target_cpu,
        };
        let sub = Subchannel { relid, index, monitor_id, cpu, waiting: true };
        match slots.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(sub),
            None => slots.push(Some(sub), GFP_KERNEL).ok()?,
        }
        Some(cpu)
    }

    /// Takes a waiting subchannel for a driver to open.
    fn take_waiting_subchannel(&self) -> Option<Subchannel> {
        let mut slots = self.subchannels.lock();
        let sub = slots.iter_mut().flatten().find(|s| s.waiting)?;
        sub.waiting = false;
        Some(*sub)
    }

    /// Subchannel `relid`, closed but still offered, waits to be opened
    /// again.
    fn subchannel_closed(&self, relid: u32) {
        if let Some(sub) = self.subchannels.lock().iter_mut().flatten().find(|s| s.relid == relid) {
            sub.waiting = true;
        }
    }

    /// Forgets subchannel `relid` (rescinded); what it was, if known.
    fn forget_subchannel(&self, relid: u32) -> Option<Subchannel> {
        self.subchannels.lock().iter_mut().find_map(|s| s.take_if(|s| s.relid == relid))
    }

    /// A snapshot of channel `relid` of the device (the primary or a
    /// subchannel) and its offer's facts; `None` if it has no such channel.
    fn channel_at(&self, relid: u32) -> Option<(OfferFacts, ChannelView)> {
        if relid == self.offer.relid {
            return Some((self.offer, self.channel()));
        }
        let sub = self.subchannels.lock().iter().flatten().find(|s| s.relid == relid).copied()?;
        let facts = OfferFacts { relid, monitor_id: sub.monitor_id, target_cpu: sub.cpu, ..self.offer };
        let open = self.link.as_ref().and_then(|conn| conn.open_channel_at(relid));
        let mut view = self.view(open.as_deref(), sub.cpu, sub.monitor_id);
        view.subchannel_index = sub.index;
        Some((facts, view))
    }

    /// `relid:cpu` of every channel, the primary first, then the
    /// subchannels by relid.
    fn vp_mapping(&self) -> Result<KVec<(u32, u32)>> {
        let mut subs = KVec::new();
        for sub in self.subchannels.lock().iter().flatten() {
            subs.push(sub.relid, GFP_KERNEL)?;
        }
        subs.sort_unstable();
        let mut mapping = KVec::with_capacity(subs.len().saturating_add(1), GFP_KERNEL)?;
        mapping.push((self.offer.relid, self.channel().target_cpu), GFP_KERNEL)?;
        for relid in subs.iter() {
            if let Some((_, view)) = self.channel_at(*relid) {
                mapping.push((*relid, view.target_cpu), GFP_KERNEL)?;
            }
        }
        Ok(mapping)
    }

    /// A channel's view: open (`channel`) or not, aimed at `cpu` until it is.
    fn view(&self, channel: Option<&Channel>, cpu: u32, monitor_id: Option<u8>) -> ChannelView {
        let mut view = ChannelView::closed(cpu);
        if let (Some(conn), Some(id)) = (&self.link, monitor_id) {
            view.monitor = conn.monitor_view(id);
        }
        if let Some(channel) = channel {
            let (inbound, outbound) = channel.ring_views();
            view.target_cpu = channel.target_cpu();
            view.state = ChannelState::Opened;
            view.inbound = Some(inbound);
            view.outbound = Some(outbound);
            view.interrupts = channel.stats.interrupts.load(Ordering::Relaxed);
            view.events = channel.stats.events.load(Ordering::Relaxed);
            view.out_full_first = channel.stats.out_full_first.load(Ordering::Relaxed);
            view.out_full_total = channel.stats.out_full_total.load(Ordering::Relaxed);
        }
        view
    }

    /// The facts the host offered.
    pub(crate) fn offer(&self) -> &OfferFacts {
        &self.offer
    }

    /// A snapshot of the primary channel's state.
    pub(crate) fn channel(&self) -> ChannelView {
        let open = self.channel.lock().clone();
        self.view(open.as_deref(), self.offer.target_cpu, self.offer.monitor_id)
    }
}

/// A driver buffer shared with the host through a GPADL (netvsc's send
/// and receive buffers, say); dropping it tears the GPADL down and frees
/// the buffer, or, if the host did not confirm the teardown, leaves it to
/// the connection until the host lets go.
pub(crate) struct SharedBuffer {
    conn: Arc<Connection>,
    relid: u32,
    handle: u32,
    buffer: Option<Buffer>,
}

impl SharedBuffer {
    /// The GPADL handle the host knows the buffer by.
    pub(crate) fn handle(&self) -> u32 {
        self.handle
    }

    /// The buffer.
    pub(crate) fn buffer(&self) -> Option<&Buffer> {
        self.buffer.as_ref()
    }
}

impl Drop for SharedBuffer {
    fn drop(&mut self) {
        if self.conn.teardown_gpadl(self.relid, self.handle).is_err() {
            if let Some(buffer) = self.buffer.take() {
                self.conn.hold_buffer(self.relid, self.handle, buffer);
            }
        }
    }
}

/// A driver's open primary channel; dropping it closes the channel.
pub(crate) struct OpenChannel {
    state: Arc<DeviceState>,
    channel: Arc<Channel>,
    /// The device's primary channel (else a subchannel).
    primary: bool,
}

impl OpenChannel {
    /// The channel.
    pub(crate) fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    /// Aims the channel's interrupts at `cpu`.
    #[cfg_attr(not(rustic_test_build), expect(dead_code, reason = "only the echo test driver retargets channels so far"))]
    pub(crate) fn set_target_cpu(&self, cpu: u32) -> Result {
        self.state.link.as_ref().ok_or(ENODEV)?.retarget(&self.channel, cpu)
    }

    /// What opens this channel's subchannels ([`SubchannelOpener::open`]);
    /// a driver that does so from probe's context waits in vain, since the
    /// host's offers arrive through that context (netvsc uses a work item).
    pub(crate) fn subchannel_opener(&self) -> SubchannelOpener {
        SubchannelOpener { state: self.state.clone() }
    }
}

/// Opens the subchannels of a device's primary channel.
pub(crate) struct SubchannelOpener {
    state: Arc<DeviceState>,
}

impl SubchannelOpener {
    /// Opens `count` subchannels once the host has offered them, waiting up
    /// to `timeout_ms` for the offers, or until `give_up` says so (the
    /// device is going). The driver asks for them in its own protocol
    /// first (netvsc: NVSP5 SUBCHANNEL; storvsc: CREATE_SUB_CHANNELS). Each
    /// gets `handler` and a target CPU of its own.
    pub(crate) fn open(
        &self,
        count: usize,
        send_ring: usize,
        recv_ring: usize,
        handler: &dyn Fn(usize) -> Result<Arc<dyn ChannelHandler>>,
        timeout_ms: u32,
        give_up: &dyn Fn() -> bool,
    ) -> Result<KVec<OpenChannel>> {
        let conn = self.state.link.as_ref().ok_or(ENODEV)?;
        let deadline = now_ms().saturating_add(u64::from(timeout_ms));
        let mut subs = KVec::with_capacity(count, GFP_KERNEL)?;
        let mut opened = KVec::with_capacity(count, GFP_KERNEL)?;
        // Taken subchannels not opened go back to waiting on any error.
        let put_back = |subs: &KVec<Subchannel>, from: usize| {
            for sub in subs.iter().skip(from) {
                self.state.subchannel_closed(sub.relid);
            }
        };
        while subs.len() < count {
            if let Some(sub) = self.state.take_waiting_subchannel() {
                if let Err(e) = subs.push(sub, GFP_KERNEL) {
                    self.state.subchannel_closed(sub.relid);
                    put_back(&subs, 0);
                    return Err(e.into());
                }
                continue;
            }
            if give_up() {
                put_back(&subs, 0);
                return Err(ENODEV);
            }
            if now_ms() > deadline {
                pr_err!(
                    "vmbus: relid {}: {} of {} subchannels offered in {} ms\n",
                    self.state.offer.relid,
                    subs.len(),
                    count,
                    timeout_ms
                );
                put_back(&subs, 0);
                return Err(crate::rust::base::errno::ETIMEDOUT());
            }
            msleep(1);
        }
        for (i, sub) in subs.iter().enumerate() {
            // Each on the CPU chosen at its offer.
            let params = ChannelParams { send_ring, recv_ring, target_cpu: sub.cpu };
            let channel = match handler(i).and_then(|h| conn.open_channel(sub.relid, params, h)) {
                Ok(channel) => channel,
                Err(e) => {
                    put_back(&subs, i);
                    return Err(e);
                }
            };
            // Within the capacity: cannot fail.
            let _ = opened.push(OpenChannel { state: self.state.clone(), channel, primary: false }, GFP_KERNEL);
        }
        Ok(opened)
    }
}

impl Drop for OpenChannel {
    fn drop(&mut self) {
        if self.primary {
            *self.state.channel.lock() = None;
        }
        let Some(conn) = &self.state.link else { return };
        // A subchannel closed but still offered may be opened again (the
        // driver sets its queues up anew); a rescinded one may not.
        if conn.close_channel(&self.channel) && !self.primary {
            self.state.subchannel_closed(self.channel.relid);
        }
    }
}

/// A device on the bus, owned by whoever created it from an offer; dropping
/// it unregisters the device (unbinding its driver first).
pub(crate) struct DeviceRegistration {
    device: bus_type::DeviceRegistration<DeviceState>,
    state: Arc<DeviceState>,
}

impl DeviceRegistration {
    /// Creates and registers a device from an offer's facts: it appears
    /// under /sys/bus/vmbus/devices named by its instance GUID, and a driver
    /// of its class is bound before this returns.
    pub(crate) fn new(offer: OfferFacts, link: Option<Arc<Connection>>) -> Result<Self> {
        if !cpu_possible(offer.target_cpu) {
            return Err(EINVAL);
        }
        let state = Arc::pin_init(
            pin_init!(DeviceState {
                offer,
                link,
                channel <- new_mutex!(None, "vmbus_channel"),
                subchannels <- new_mutex!(KVec::new(), "vmbus_subchannels"),
            }),
            GFP_KERNEL,
        )?;
        let mut name = [0u8; 36];
        offer.instance.format(&mut name);
        let device = bus_type::DeviceRegistration::new(state.clone(), &name, offer.relid)?;
        Ok(DeviceRegistration { device, state })
    }

    /// The facts the device was offered with.
    pub(crate) fn offer(&self) -> &OfferFacts {
        self.state.offer()
    }

    /// Records a subchannel offer for the driver to open and adds its
    /// directory `channels/<relid>`; false if out of memory.
    pub(crate) fn subchannel_offered(&self, relid: u32, index: u16, monitor_id: Option<u8>) -> bool {
        if self.state.subchannel_waits(relid, index, monitor_id).is_none() {
            return false;
        }
        if let Err(e) = self.device.add_channel(relid) {
            pr_err!("vmbus: subchannel relid {}: no sysfs directory: {:?}\n", relid, e);
            self.state.forget_subchannel(relid);
            return false;
        }
        true
    }

    /// Forgets subchannel `relid` (rescinded) and removes its directory.
    /// `Some(true)` if it was waiting to be opened, `Some(false)` if a
    /// driver has it open, `None` if the device does not have it.
    pub(crate) fn subchannel_rescinded(&self, relid: u32) -> Option<bool> {
        let sub = self.state.forget_subchannel(relid)?;
        self.device.remove_channel(relid);
        Some(sub.waiting)
    }

    /// Tells the bound driver, if any, that the host rescinded the device.
    /// The caller removes the device next.
    pub(crate) fn rescind(&self) {
        self.device.rescind()
    }
}

/// A device as a driver sees it during a callback.
pub(crate) struct Device<'a> {
    raw: &'a RawDevice<'a, DeviceState>,
}

impl<'a> Device<'a> {
    /// The device's `struct device`, to parent other kernel devices on it
    /// (a net_device's /sys/class/net/*/device link).
    pub(crate) fn device(&self) -> DeviceRef<'a> {
        self.raw.device()
    }

    /// The facts the host offered.
    pub(crate) fn offer(&self) -> &OfferFacts {
        &self.raw.data().offer
    }

    /// A snapshot of the primary channel's state.
    #[cfg_attr(not(rustic_test_build), expect(dead_code, reason = "only the test driver reads its channel's state so far"))]
    pub(crate) fn channel(&self) -> ChannelView {
        self.raw.data().channel()
    }

    /// What opens the device's primary channel and shares buffers with
    /// the host, in probe or later (netvsc sets its NIC up again for a new
    /// MTU).
    pub(crate) fn handle(&self) -> DeviceHandle {
        DeviceHandle { state: Arc::from(self.raw.state()) }
    }
}

/// What opens a bound device's primary channel and shares its buffers. It
/// keeps the device's state, not the device: the driver drops it at
/// remove.
pub(crate) struct DeviceHandle {
    state: Arc<DeviceState>,
}

impl DeviceHandle {
    /// Shares `len` bytes (a multiple of 4 KiB) with the host through a
    /// GPADL of the device's primary channel.
    pub(crate) fn share_buffer(&self, len: usize) -> Result<SharedBuffer> {
        let conn = self.state.link.as_ref().ok_or(ENODEV)?;
        let buffer = Buffer::new(len)?;
        let relid = self.state.offer.relid;
        let (handle, buffer) = conn.share(relid, buffer)?;
        Ok(SharedBuffer {
            conn: conn.clone(),
            relid,
            handle,
            buffer: Some(buffer),
        })
    }

    /// Opens the primary channel with rings of the given sizes (bytes, a
    /// multiple of 4 KiB each), aimed at the device's target CPU; `handler`
    /// runs on the host's signals until the returned handle is dropped.
    /// `EBUSY` while it is open.
    pub(crate) fn open_channel(
        &self,
        send_ring: usize,
        recv_ring: usize,
        handler: Arc<dyn ChannelHandler>,
    ) -> Result<OpenChannel> {
        let conn = self.state.link.as_ref().ok_or(ENODEV)?;
        let mut slot = self.state.channel.lock();
        if slot.is_some() {
            return Err(EBUSY);
        }
        let params = ChannelParams {
            send_ring,
            recv_ring,
            target_cpu: self.state.offer.target_cpu,
        };
        let channel = conn.open_channel(self.state.offer.relid, params, handler)?;
        *slot = Some(channel.clone());
        Ok(OpenChannel {
            state: self.state.clone(),
            channel,
            primary: true,
        })
    }
}

/// A driver of VMBus devices. The bus binds it to every device whose class
/// GUID is in [`Driver::CLASS_IDS`] (or whose `driver_override` names it).
pub(crate) trait Driver: 'static {
    /// What the driver keeps per bound device, from probe to remove.
    type Data: ForeignOwnable + Send + Sync;
    /// The driver's name under /sys/bus/vmbus/drivers.
    const NAME: &'static CStr;
    /// The device classes it binds.
    const CLASS_IDS: &'static [Guid];
    /// Binds a device; an error leaves it unbound.
    fn probe(dev: &Device<'_>) -> Result<Self::Data>;
    /// Unbinds a device: unbind through sysfs, device removal, driver
    /// unregistration.
    fn remove(dev: &Device<'_>, data: Self::Data);
    /// The host took the device back; `remove` follows. Stop using the
    /// channel: the host will not answer on it any more.
    fn rescind(dev: &Device<'_>, data: <Self::Data as ForeignOwnable>::Borrowed<'_>);
}

/// The kernel layer's view of a [`Driver`].
pub(crate) struct DriverAdapter<T: Driver>(PhantomData<T>);

impl<T: Driver> BusDriver for DriverAdapter<T> {
    type Device = DeviceState;
    type Data = T::Data;
    const NAME: &'static CStr = T::NAME;

    fn matches(dev: &DeviceState) -> bool {
        T::CLASS_IDS.contains(&dev.offer.class)
    }

    fn probe(dev: &RawDevice<'_, DeviceState>) -> Result<T::Data> {
        T::probe(&Device { raw: dev })
    }

    fn remove(dev: &RawDevice<'_, DeviceState>, data: T::Data) {
        T::remove(&Device { raw: dev }, data)
    }

    fn rescind(dev: &RawDevice<'_, DeviceState>, data: <T::Data as ForeignOwnable>::Borrowed<'_>) {
        T::rescind(&Device { raw: dev }, data)
    }
}

/// A registered driver; unregistered (every device unbound) when dropped.
pub(crate) type DriverRegistration<T> = bus_type::DriverRegistration<DriverAdapter<T>>;

/// `driver_list! { pub(crate) Name: path::to::DriverA, path::to::DriverB }`
/// declares `Name`, which registers those drivers in order
/// (`Name::register()`) and unregisters them when dropped: adding a driver
/// to the module is one line in such a list (`drivers/mod.rs`).
macro_rules! driver_list {
    ($(#[$meta:meta])* $vis:vis $name:ident: $($driver:ty),+ $(,)?) => {
        $(#[$meta])*
        $vis struct $name {
            _registrations: ($($crate::vmbus::device::DriverRegistration<$driver>,)+),
        }

        impl $name {
            /// Registers the drivers; each binds the devices present.
            $vis fn register() -> ::kernel::prelude::Result<Self> {
                Ok($name {
                    _registrations: ($($crate::vmbus::device::DriverRegistration::<$driver>::new()?,)+),
                })
            }
        }
    };
}
pub(crate) use driver_list;

// --- sysfs and uevents: what the bus shows of a device ---

fn attr_errno(e: AttrError) -> kernel::error::Error {
    match e {
        AttrError::NoRing | AttrError::BadValue => EINVAL,
        AttrError::Unknown | AttrError::NotOpen => EIO,
        AttrError::NoRoom => EFBIG,
    }
}

impl BusDevice for DeviceState {
    fn show_attr(&self, name: &str, out: &mut [u8]) -> Result<usize> {
        let attr = DevAttr::from_name(name).ok_or(attr_errno(AttrError::Unknown))?;
        if attr == DevAttr::ChannelVpMapping {
            return show_vp_mapping(&self.vp_mapping()?, out).map_err(attr_errno);
        }
        let node = cpu_to_node(self.offer.target_cpu);
        show_dev_attr(attr, &self.offer, &self.channel(), node, out).map_err(attr_errno)
    }

    fn show_channel_attr(&self, relid: u32, name: &str, out: &mut [u8]) -> Result<usize> {
        let attr = ChanAttr::from_name(name).ok_or(attr_errno(AttrError::Unknown))?;
        // A directory outliving its rescinded subchannel for a moment.
        let (facts, view) = self.channel_at(relid).ok_or(ENODEV)?;
        show_chan_attr(attr, &facts, &view, out).map_err(attr_errno)
    }

    fn store_channel_attr(&self, relid: u32, name: &str, input: &[u8]) -> Result {
        let attr = ChanAttr::from_name(name).ok_or(attr_errno(AttrError::Unknown))?;
        let (_, view) = self.channel_at(relid).ok_or(ENODEV)?;
        // Writing `cpu` moves an open channel (MODIFYCHANNEL), as in the
        // C driver: EIO when it is not open, EINVAL for a CPU not online.
        let cpu = store_chan_attr(attr, &view, input).map_err(attr_errno)?;
        let conn = self.link.as_ref().ok_or(attr_errno(AttrError::NotOpen))?;
        let channel = if relid == self.offer.relid {
            self.channel.lock().clone()
        } else {
            conn.open_channel_at(relid)
        };
        let channel = channel.ok_or(attr_errno(AttrError::NotOpen))?;
        if channel.target_cpu() == cpu {
            return Ok(());
        }
        conn.retarget(&channel, cpu)
    }

    /// The monitor attributes exist only with a monitor id, as in the C
    /// driver.
    fn attr_visible(&self, name: &str, channel: bool, relid: u32) -> bool {
        if channel {
            let needs_monitor = ChanAttr::from_name(name).is_some_and(ChanAttr::needs_monitor);
            !needs_monitor || self.channel_at(relid).is_some_and(|(facts, _)| facts.monitor_id.is_some())
        } else {
            let needs_monitor = DevAttr::from_name(name).is_some_and(DevAttr::needs_monitor);
            !needs_monitor || self.offer.monitor_id.is_some()
        }
    }

    fn modalias(&self, out: &mut [u8]) -> Result<usize> {
        modalias(&self.offer.class, out.first_chunk_mut().ok_or(EINVAL)?);
        Ok(MODALIAS_LEN)
    }
}
