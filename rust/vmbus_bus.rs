// SPDX-License-Identifier: GPL-2.0
//! Safe Rust over the `vmbus` bus_type of `rust/vmbus_bus.c`: the bus
//! registration, devices made from offer facts, the [`Driver`] trait drivers
//! implement, and the callbacks C makes into Rust for sysfs and uevents.
//!
//! Every device owns a [`DeviceState`] (the offer's facts and its primary
//! channel's state) in an [`Arc`]; the C device holds one reference, handed
//! over with `into_foreign` and dropped in the device's release callback, so
//! sysfs readers and uevents never see it freed.
#![cfg_attr(
    not(rustic_test_build),
    expect(
        dead_code,
        reason = "until a host backend delivers offers, only test builds create devices and register drivers"
    )
)]

use super::bindings;
use super::channel::{Channel, ChannelHandler, ChannelParams};
use super::connection::Connection;
use super::hv_glue::{msleep, now_ms, Buffer};
use core::sync::atomic::Ordering;
use super::vmbus_core::bus::{
    ChannelState,
    modalias, show_chan_attr, show_dev_attr, store_chan_attr, AttrError, ChanAttr, ChannelView,
    DevAttr, OfferFacts, MODALIAS_LEN,
};
use super::vmbus_core::guid::Guid;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::to_result;
use kernel::ffi::{c_char, c_int, c_void};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex};
use kernel::types::ForeignOwnable;

/// The registered bus_type `vmbus`; unregistered when dropped.
///
/// # Invariants
///
/// The bus is registered while a value of this type exists.
pub(crate) struct BusRegistration(());

impl BusRegistration {
    /// Registers the bus. Only one may exist: the bus_type is a C static.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions; the C side registers a static bus_type.
        to_result(unsafe { bindings::rustic_vmbus_bus_register() })?;
        // INVARIANT: registration succeeded.
        Ok(BusRegistration(()))
    }
}

impl Drop for BusRegistration {
    fn drop(&mut self) {
        // SAFETY: the bus is registered (type invariant) and this is the
        // only unregistration.
        unsafe { bindings::rustic_vmbus_bus_unregister() }
    }
}

/// What a device is: the offer's facts, the connection that offered it
/// (none for devices made through the test control) and its primary
/// channel, once a driver opened it.
#[pin_data]
pub(crate) struct DeviceState {
    offer: OfferFacts,
    link: Option<Arc<Connection>>,
    #[pin]
    channel: Mutex<Option<Arc<Channel>>>,
    /// Relids of subchannels the host offered and no driver opened yet.
    #[pin]
    subchannels: Mutex<[Option<u32>; MAX_SUBCHANNELS]>,
}

/// Most subchannels a device may have offered and not yet opened.
pub(crate) const MAX_SUBCHANNELS: usize = 16;

impl DeviceState {
    /// The facts the host offered.
    pub(crate) fn offer(&self) -> &OfferFacts {
        &self.offer
    }

    /// A snapshot of the primary channel's state.
    pub(crate) fn channel(&self) -> ChannelView {
        let mut view = ChannelView::closed(self.offer.target_cpu);
        if let (Some(conn), Some(id)) = (&self.link, self.offer.monitor_id) {
            view.monitor = conn.monitor_view(id);
        }
        if let Some(channel) = self.channel.lock().as_ref() {
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
}

/// A driver buffer shared with the host through a GPADL (netvsc's send
/// and receive buffers, say); dropping it tears the GPADL down and frees
/// the buffer, or leaks it if the host did not confirm the teardown.
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
                buffer.leak(self.relid);
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
        if count > MAX_SUBCHANNELS {
            return Err(EINVAL);
        }
        let deadline = now_ms().saturating_add(u64::from(timeout_ms));
        let mut relids = KVec::with_capacity(count, GFP_KERNEL)?;
        while relids.len() < count {
            if let Some(relid) = self.state.subchannels.lock().iter_mut().find_map(Option::take) {
                relids.push(relid, GFP_KERNEL)?;
                continue;
            }
            if give_up() {
                return Err(ENODEV);
            }
            if now_ms() > deadline {
                pr_err!(
                    "vmbus: relid {}: {} of {} subchannels offered in {} ms\n",
                    self.state.offer.relid,
                    relids.len(),
                    count,
                    timeout_ms
                );
                return Err(super::connection::ETIMEDOUT());
            }
            msleep(1);
        }
        let mut opened = KVec::with_capacity(count, GFP_KERNEL)?;
        for (i, relid) in relids.into_iter().enumerate() {
            let params = ChannelParams {
                send_ring,
                recv_ring,
                target_cpu: conn.pick_cpu(&self.state.offer.class),
            };
            let channel = conn.open_channel(relid, params, handler(i)?)?;
            opened.push(
                OpenChannel {
                    state: self.state.clone(),
                    channel,
                    primary: false,
                },
                GFP_KERNEL,
            )?;
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
            let mut slots = self.state.subchannels.lock();
            if let Some(slot) = slots.iter_mut().find(|s| s.is_none()) {
                *slot = Some(self.channel.relid);
            }
        }
    }
}

/// A device on the bus, owned by whoever created it from an offer; dropping
/// it unregisters the device (unbinding its driver first).
///
/// # Invariants
///
/// `ptr` is a device added by `rustic_vmbus_device_add` and not yet removed.
pub(crate) struct DeviceRegistration {
    ptr: NonNull<bindings::rustic_vmbus_device>,
    state: Arc<DeviceState>,
}

// SAFETY: the C device may be removed or rescinded from any thread; the
// driver core serialises against its own use with the device lock.
unsafe impl Send for DeviceRegistration {}
// SAFETY: `&DeviceRegistration` only reads the immutable offer or calls
// `rescind`, which takes the device lock in C.
unsafe impl Sync for DeviceRegistration {}

impl DeviceRegistration {
    /// Creates and registers a device from an offer's facts: it appears
    /// under /sys/bus/vmbus/devices named by its instance GUID, and a driver
    /// of its class is bound before this returns.
    pub(crate) fn new(offer: OfferFacts, link: Option<Arc<Connection>>) -> Result<Self> {
        // SAFETY: no preconditions.
        if !unsafe { bindings::rustic_cpu_possible(offer.target_cpu) } {
            return Err(EINVAL);
        }
        let state = Arc::pin_init(
            pin_init!(DeviceState {
                offer,
                link,
                channel <- new_mutex!(None, "vmbus_channel"),
                subchannels <- new_mutex!([None; MAX_SUBCHANNELS], "vmbus_subchannels"),
            }),
            GFP_KERNEL,
        )?;
        let mut name = [0u8; 37];
        let mut text = [0u8; 36];
        offer.instance.format(&mut text);
        name[..36].copy_from_slice(&text);
        let mut ptr = core::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated (its last byte stays 0) and C
        // copies it; the foreign reference passes to C in every outcome
        // (bindings_helper.h).
        let ret = unsafe {
            bindings::rustic_vmbus_device_add(
                state.clone().into_foreign(),
                name.as_ptr().cast(),
                offer.relid,
                &mut ptr,
            )
        };
        to_result(ret)?;
        let ptr = NonNull::new(ptr).ok_or(EINVAL)?;
        // INVARIANT: the device was added and is removed only in `drop`.
        Ok(DeviceRegistration { ptr, state })
    }

    /// The facts the device was offered with.
    pub(crate) fn offer(&self) -> &OfferFacts {
        self.state.offer()
    }

    /// Records a subchannel offer for the driver to open; false if the
    /// device has too many waiting.
    pub(crate) fn subchannel_offered(&self, relid: u32) -> bool {
        let mut slots = self.state.subchannels.lock();
        match slots.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(relid);
                true
            }
            None => false,
        }
    }

    /// Takes back the offer of subchannel `relid` if it waits to be
    /// opened; whether it did.
    pub(crate) fn subchannel_rescinded(&self, relid: u32) -> bool {
        self.state.subchannels.lock().iter_mut().any(|s| s.take_if(|r| *r == relid).is_some())
    }

    /// Tells the bound driver, if any, that the host rescinded the device.
    /// The caller removes the device next.
    pub(crate) fn rescind(&self) {
        // SAFETY: `ptr` is a live device (type invariant).
        unsafe { bindings::rustic_vmbus_device_rescind(self.ptr.as_ptr()) }
    }
}

impl Drop for DeviceRegistration {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a live device (type invariant), removed once here.
        unsafe { bindings::rustic_vmbus_device_remove(self.ptr.as_ptr()) }
    }
}

/// A device as a driver sees it during a callback.
///
/// # Invariants
///
/// `raw` is the live C device whose state `state` borrows, for `'a`.
pub(crate) struct Device<'a> {
    state: ArcBorrow<'a, DeviceState>,
    raw: *mut bindings::rustic_vmbus_device,
}

impl Device<'_> {
    /// The device's `struct device`, to parent other kernel devices on it
    /// (a net_device's /sys/class/net/*/device link). Valid during the
    /// callback; whoever keeps it longer takes a reference (`get_device`).
    pub(crate) fn raw_device(&self) -> *mut bindings::device {
        // SAFETY: `raw` is a live device (type invariant).
        unsafe { bindings::rustic_vmbus_device_dev(self.raw) }
    }

    /// The facts the host offered.
    pub(crate) fn offer(&self) -> &OfferFacts {
        self.state.offer()
    }

    /// A snapshot of the primary channel's state.
    pub(crate) fn channel(&self) -> ChannelView {
        self.state.channel()
    }

    /// What opens the device's primary channel and shares buffers with
    /// the host, in probe or later (netvsc sets its NIC up again for a new
    /// MTU).
    pub(crate) fn handle(&self) -> DeviceHandle {
        DeviceHandle { state: Arc::from(self.state) }
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

/// A registered driver; unregistered (every device unbound) when dropped.
///
/// # Invariants
///
/// `ptr` is a driver registered by `rustic_vmbus_driver_register` with
/// `Adapter::<T>::OPS`, not yet unregistered.
pub(crate) struct DriverRegistration<T: Driver> {
    ptr: NonNull<bindings::rustic_vmbus_driver>,
    _driver: PhantomData<T>,
}

// SAFETY: the registration is only unregistered, from any thread.
unsafe impl<T: Driver> Send for DriverRegistration<T> {}
// SAFETY: `&DriverRegistration` allows nothing.
unsafe impl<T: Driver> Sync for DriverRegistration<T> {}

impl<T: Driver> DriverRegistration<T> {
    /// Registers the driver; it binds every present device of its classes
    /// before this returns.
    pub(crate) fn new() -> Result<Self> {
        let mut ptr = core::ptr::null_mut();
        // SAFETY: the name and the ops table are `'static` (the table is a
        // promoted constant).
        let ret = unsafe {
            bindings::rustic_vmbus_driver_register(
                T::NAME.as_char_ptr(),
                &Adapter::<T>::OPS,
                &mut ptr,
            )
        };
        to_result(ret)?;
        let ptr = NonNull::new(ptr).ok_or(EINVAL)?;
        // INVARIANT: registered with `Adapter::<T>::OPS` just now.
        Ok(DriverRegistration {
            ptr,
            _driver: PhantomData,
        })
    }
}

impl<T: Driver> Drop for DriverRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant), unregistered once here.
        unsafe { bindings::rustic_vmbus_driver_unregister(self.ptr.as_ptr()) }
    }
}

/// The C callbacks of a driver of type `T`.
struct Adapter<T: Driver>(PhantomData<T>);

impl<T: Driver> Adapter<T> {
    const OPS: bindings::rustic_vmbus_driver_ops = bindings::rustic_vmbus_driver_ops {
        match_: Some(Self::match_cb),
        probe: Some(Self::probe_cb),
        remove: Some(Self::remove_cb),
        rescind: Some(Self::rescind_cb),
    };

    /// # Safety
    ///
    /// `dev` must be a live device of the bus.
    unsafe fn device<'a>(dev: *mut bindings::rustic_vmbus_device) -> Device<'a> {
        // SAFETY: a live device's state pointer came from
        // `Arc::into_foreign` and is released only with the device.
        let state = unsafe { Arc::<DeviceState>::borrow(bindings::rustic_vmbus_device_state(dev)) };
        // INVARIANT: the bus passes a live device, for the callback.
        Device { state, raw: dev }
    }

    /// # Safety
    ///
    /// Called by the bus with a live device (bound to `T` for remove and
    /// rescind).
    unsafe extern "C" fn match_cb(dev: *mut bindings::rustic_vmbus_device) -> c_int {
        // SAFETY: the bus calls match with a live device.
        let dev = unsafe { Self::device(dev) };
        c_int::from(T::CLASS_IDS.contains(&dev.offer().class))
    }

    /// # Safety
    ///
    /// Called by the bus with a live device (bound to `T` for remove and
    /// rescind).
    unsafe extern "C" fn probe_cb(raw: *mut bindings::rustic_vmbus_device) -> c_int {
        // SAFETY: the bus calls probe with a live device.
        let dev = unsafe { Self::device(raw) };
        match T::probe(&dev) {
            Ok(data) => {
                // SAFETY: `raw` is live; the pointer is taken back in remove.
                unsafe {
                    bindings::rustic_vmbus_device_set_drvdata(raw, data.into_foreign().cast_mut())
                };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the bus with a live device (bound to `T` for remove and
    /// rescind).
    unsafe extern "C" fn remove_cb(raw: *mut bindings::rustic_vmbus_device) {
        // SAFETY: the bus calls remove with a live device bound to `T`.
        let dev = unsafe { Self::device(raw) };
        // SAFETY: probe succeeded (remove is called only for bound
        // devices) and stored `into_foreign` of `T::Data`; this is its only
        // `from_foreign`, and rescind's borrow ended (device lock).
        let data = unsafe {
            T::Data::from_foreign(bindings::rustic_vmbus_device_drvdata(raw).cast_const())
        };
        // SAFETY: `raw` is live; clear the stale pointer.
        unsafe { bindings::rustic_vmbus_device_set_drvdata(raw, core::ptr::null_mut()) };
        T::remove(&dev, data);
    }

    /// # Safety
    ///
    /// Called by the bus with a live device (bound to `T` for remove and
    /// rescind).
    unsafe extern "C" fn rescind_cb(raw: *mut bindings::rustic_vmbus_device) {
        // SAFETY: C calls rescind with a live device bound to `T`, under
        // the device lock.
        let dev = unsafe { Self::device(raw) };
        // SAFETY: bound, so drvdata is `T::Data::into_foreign`; the device
        // lock keeps remove (the `from_foreign`) out while it is borrowed.
        let data =
            unsafe { T::Data::borrow(bindings::rustic_vmbus_device_drvdata(raw).cast_const()) };
        T::rescind(&dev, data);
    }
}

// --- Callbacks from rust/vmbus_bus.c for sysfs and uevents ---

fn attr_errno(e: AttrError) -> isize {
    let e = match e {
        AttrError::NoRing | AttrError::BadValue => EINVAL,
        AttrError::Unknown | AttrError::NotOpen => EIO,
        AttrError::NoRoom => EFBIG,
    };
    // CAST: errno values are small negative numbers.
    e.to_errno() as isize
}

/// # Safety
///
/// `state` must be the state pointer of a live device.
unsafe fn borrow_state<'a>(state: *const c_void) -> ArcBorrow<'a, DeviceState> {
    // SAFETY: a live device's state came from `Arc::into_foreign` and is
    // released only in its release callback (caller's guarantee).
    unsafe { Arc::<DeviceState>::borrow(state) }
}

/// # Safety
///
/// `name` must be a NUL-terminated string valid for `'a`.
unsafe fn attr_name<'a>(name: *const c_char) -> &'a str {
    // SAFETY: caller's guarantee.
    unsafe { CStr::from_char_ptr(name) }.to_str().unwrap_or("")
}

/// # Safety
///
/// `buf` must be a sysfs show buffer: `PAGE_SIZE` writable bytes.
unsafe fn page_buf<'a>(buf: *mut c_char) -> &'a mut [u8] {
    // SAFETY: caller's guarantee; sysfs hands each show its own page.
    unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) }
}

/// `show` of every device attribute (rust/vmbus_bus.c).
///
/// # Safety
///
/// `state` is a live device's state, `attr` a NUL-terminated name and
/// `buf` a sysfs page.
#[no_mangle]
unsafe extern "C" fn rustic_vmbus_dev_show(
    state: *const c_void,
    attr: *const c_char,
    buf: *mut c_char,
) -> isize {
    // SAFETY: C passes its live device's state, the attribute's static
    // name and the sysfs page.
    let (state, name, out) = unsafe { (borrow_state(state), attr_name(attr), page_buf(buf)) };
    let Some(attr) = DevAttr::from_name(name) else {
        return attr_errno(AttrError::Unknown);
    };
    let offer = state.offer();
    // SAFETY: no preconditions; any CPU number is accepted.
    let node = unsafe { bindings::rustic_cpu_to_node(offer.target_cpu) };
    match show_dev_attr(attr, offer, &state.channel(), node, out) {
        // CAST: at most PAGE_SIZE.
        Ok(n) => n as isize,
        Err(e) => attr_errno(e),
    }
}

/// `show` of every channel attribute.
///
/// # Safety
///
/// As for [`rustic_vmbus_dev_show`].
#[no_mangle]
unsafe extern "C" fn rustic_vmbus_chan_show(
    state: *const c_void,
    attr: *const c_char,
    buf: *mut c_char,
) -> isize {
    // SAFETY: as in `rustic_vmbus_dev_show`; the channel directory holds a
    // reference on its device.
    let (state, name, out) = unsafe { (borrow_state(state), attr_name(attr), page_buf(buf)) };
    let Some(attr) = ChanAttr::from_name(name) else {
        return attr_errno(AttrError::Unknown);
    };
    match show_chan_attr(attr, state.offer(), &state.channel(), out) {
        // CAST: at most PAGE_SIZE.
        Ok(n) => n as isize,
        Err(e) => attr_errno(e),
    }
}

/// `store` of the channel attributes.
///
/// # Safety
///
/// `state` is a live device's state, `attr` a NUL-terminated name and
/// `buf` holds `count` readable bytes.
#[no_mangle]
unsafe extern "C" fn rustic_vmbus_chan_store(
    state: *const c_void,
    attr: *const c_char,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: C passes a live device's state and the attribute's name.
    let (state, name) = unsafe { (borrow_state(state), attr_name(attr)) };
    // SAFETY: sysfs passes `count` readable bytes.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    let Some(attr) = ChanAttr::from_name(name) else {
        return attr_errno(AttrError::Unknown);
    };
    match store_chan_attr(attr, &state.channel(), input) {
        // Only an open channel gets here, and none is open until later work
        // opens channels and sends the host the ModifyChannel that
        // retargeting needs; until then it fails with -EIO, as the C driver
        // does when the host cannot retarget.
        Ok(_cpu) => attr_errno(AttrError::NotOpen),
        Err(e) => attr_errno(e),
    }
}

/// Whether an attribute exists for a device: the monitor attributes only
/// with a monitor id, as in the C driver.
///
/// # Safety
///
/// `state` is a live device's state and `attr` a NUL-terminated name.
#[no_mangle]
unsafe extern "C" fn rustic_vmbus_attr_visible(
    state: *const c_void,
    attr: *const c_char,
    channel: bool,
) -> bool {
    // SAFETY: C passes a live device's state and the attribute's name.
    let (state, name) = unsafe { (borrow_state(state), attr_name(attr)) };
    let needs_monitor = if channel {
        ChanAttr::from_name(name).is_some_and(ChanAttr::needs_monitor)
    } else {
        DevAttr::from_name(name).is_some_and(DevAttr::needs_monitor)
    };
    !needs_monitor || state.offer().monitor_id.is_some()
}

/// The device's modalias as a C string, for its uevents.
///
/// # Safety
///
/// `state` is a live device's state and `buf` holds `len` writable bytes.
#[no_mangle]
unsafe extern "C" fn rustic_vmbus_modalias(
    state: *const c_void,
    buf: *mut c_char,
    len: usize,
) -> c_int {
    // SAFETY: C passes a live device's state.
    let state = unsafe { borrow_state(state) };
    if len < MODALIAS_LEN + 1 {
        return EINVAL.to_errno();
    }
    // SAFETY: C passes `len` writable bytes.
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    let mut text = [0u8; MODALIAS_LEN];
    modalias(&state.offer().class, &mut text);
    out[..MODALIAS_LEN].copy_from_slice(&text);
    out[MODALIAS_LEN] = 0;
    0
}

/// Drops the device's reference on its state, from its release callback.
///
/// # Safety
///
/// Called once per device, after the last use of `state`.
#[no_mangle]
unsafe extern "C" fn rustic_vmbus_state_release(state: *const c_void) {
    // SAFETY: C calls this once per device, with the reference handed over
    // by `DeviceRegistration::new`, after its last use.
    drop(unsafe { Arc::<DeviceState>::from_foreign(state) });
}
