// SPDX-License-Identifier: GPL-2.0
//! Safe Rust over the `vmbus` bus_type of `rust/vmbus/bus_type.c`: the bus
//! registration, devices, drivers, and the callbacks C makes into Rust for
//! sysfs and uevents. What a device *is* (its offer, its channels) belongs
//! to the VMBus layer above: here a device is any [`BusDevice`], and a
//! driver any [`BusDriver`] of such devices.
//!
//! Every device owns its state in an [`Arc`]; the C device holds one
//! reference, handed over with `into_foreign` and dropped in the device's
//! release callback, so sysfs readers and uevents never see it freed.

use crate::rust::base::DeviceRef;
use crate::rust::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::to_result;
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};
use kernel::types::ForeignOwnable;

/// What the bus asks of a device's state, for sysfs and uevents. Each
/// method gets the attribute's name; an error becomes the read's or
/// write's errno.
pub(crate) trait BusDevice: Send + Sync + 'static {
    /// Formats device attribute `name` into `out` (a page); its length.
    fn show_attr(&self, name: &str, out: &mut [u8]) -> Result<usize>;
    /// Formats attribute `name` of the directory of channel `relid`.
    fn show_channel_attr(&self, relid: u32, name: &str, out: &mut [u8]) -> Result<usize>;
    /// Stores `input` into attribute `name` of channel `relid`.
    fn store_channel_attr(&self, relid: u32, name: &str, input: &[u8]) -> Result;
    /// Whether attribute `name` exists for this device (of the directory
    /// of its channel `relid` when `channel`).
    fn attr_visible(&self, name: &str, channel: bool, relid: u32) -> bool;
    /// Writes the modalias into `out`, without a NUL; its length.
    fn modalias(&self, out: &mut [u8]) -> Result<usize>;
}

/// The registered bus_type `vmbus` with devices of state `D`; unregistered
/// when dropped.
///
/// # Invariants
///
/// The bus is registered with `BusOps::<D>::OPS` while a value exists.
pub(crate) struct BusRegistration<D: BusDevice>(PhantomData<D>);

impl<D: BusDevice> BusRegistration<D> {
    /// Registers the bus. Only one may exist: the bus_type is a C static.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: the ops table is a promoted constant (`'static`).
        to_result(unsafe { bindings::rustic_vmbus_bus_register(&BusOps::<D>::OPS) })?;
        // INVARIANT: registration succeeded.
        Ok(BusRegistration(PhantomData))
    }
}

impl<D: BusDevice> Drop for BusRegistration<D> {
    fn drop(&mut self) {
        // SAFETY: the bus is registered (type invariant) and this is the
        // only unregistration.
        unsafe { bindings::rustic_vmbus_bus_unregister() }
    }
}

/// A device on the bus; dropping it unregisters the device (unbinding its
/// driver first).
///
/// # Invariants
///
/// `ptr` is a device added by `rustic_vmbus_device_add` with an
/// `Arc<D>` state, not yet removed.
pub(crate) struct DeviceRegistration<D: BusDevice> {
    ptr: NonNull<bindings::rustic_vmbus_device>,
    _state: PhantomData<D>,
}

// SAFETY: the C device may be removed or rescinded from any thread; the
// driver core serialises against its own use with the device lock.
unsafe impl<D: BusDevice> Send for DeviceRegistration<D> {}
// SAFETY: `&DeviceRegistration` only calls `rescind`, which takes the
// device lock in C.
unsafe impl<D: BusDevice> Sync for DeviceRegistration<D> {}

impl<D: BusDevice> DeviceRegistration<D> {
    /// Creates and registers a device named `name` (36 bytes of text, an
    /// instance GUID), with the primary channel directory
    /// `channels/<relid>`: it appears under /sys/bus/vmbus/devices, and a
    /// matching driver is bound before this returns.
    pub(crate) fn new(state: Arc<D>, name: &[u8; 36], relid: u32) -> Result<Self> {
        let mut cname = [0u8; 37];
        cname[..36].copy_from_slice(name);
        let mut ptr = core::ptr::null_mut();
        // SAFETY: `cname` is NUL-terminated (its last byte stays 0) and C
        // copies it; the foreign reference passes to C in every outcome
        // (bindings_helper.h), released through `BusOps::<D>`, which the
        // bus was registered with (only `D` devices are added to it).
        let ret = unsafe {
            bindings::rustic_vmbus_device_add(state.into_foreign(), cname.as_ptr().cast(), relid, &mut ptr)
        };
        to_result(ret)?;
        let ptr = NonNull::new(ptr).ok_or(EINVAL)?;
        // INVARIANT: the device was added and is removed only in `drop`.
        Ok(DeviceRegistration { ptr, _state: PhantomData })
    }

    /// Adds the directory `channels/<relid>` of a subchannel. The caller
    /// does not race it with [`Self::remove_channel`] of the same relid.
    pub(crate) fn add_channel(&self, relid: u32) -> Result {
        // SAFETY: `ptr` is a live device (type invariant); its removal
        // (drop) needs `&mut self`, so it cannot run meanwhile.
        to_result(unsafe { bindings::rustic_vmbus_device_add_channel(self.ptr.as_ptr(), relid) })
    }

    /// Removes the directory of subchannel `relid`, if there is one.
    pub(crate) fn remove_channel(&self, relid: u32) {
        // SAFETY: as in `add_channel`.
        unsafe { bindings::rustic_vmbus_device_remove_channel(self.ptr.as_ptr(), relid) }
    }

    /// Calls the bound driver's rescind, if a driver is bound. The caller
    /// removes the device next.
    pub(crate) fn rescind(&self) {
        // SAFETY: `ptr` is a live device (type invariant).
        unsafe { bindings::rustic_vmbus_device_rescind(self.ptr.as_ptr()) }
    }
}

impl<D: BusDevice> Drop for DeviceRegistration<D> {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a live device (type invariant), removed once here.
        unsafe { bindings::rustic_vmbus_device_remove(self.ptr.as_ptr()) }
    }
}

/// A device as a driver's callback sees it.
///
/// # Invariants
///
/// `raw` is the live C device whose state `state` borrows, for `'a`.
pub(crate) struct RawDevice<'a, D: BusDevice> {
    state: ArcBorrow<'a, D>,
    raw: *mut bindings::rustic_vmbus_device,
}

impl<'a, D: BusDevice> RawDevice<'a, D> {
    /// The device's state.
    pub(crate) fn state(&self) -> ArcBorrow<'a, D> {
        self.state
    }

    /// The device's state, borrowed from `self`.
    pub(crate) fn data(&self) -> &D {
        &self.state
    }

    /// The device's `struct device`, to parent other kernel devices on it
    /// (a net_device's /sys/class/net/*/device link).
    pub(crate) fn device(&self) -> DeviceRef<'a> {
        // SAFETY: `raw` is a live device for `'a` (type invariant).
        let dev = unsafe { bindings::rustic_vmbus_device_dev(self.raw) };
        // SAFETY: the struct device of a device live for `'a`.
        unsafe { DeviceRef::from_raw(dev) }
    }
}

/// A driver of the bus's devices.
pub(crate) trait BusDriver: 'static {
    /// The devices' state.
    type Device: BusDevice;
    /// What the driver keeps per bound device, from probe to remove.
    type Data: ForeignOwnable + Send + Sync;
    /// The driver's name under /sys/bus/vmbus/drivers.
    const NAME: &'static CStr;
    /// Whether the driver binds this device.
    fn matches(dev: &Self::Device) -> bool;
    /// Binds a device; an error leaves it unbound.
    fn probe(dev: &RawDevice<'_, Self::Device>) -> Result<Self::Data>;
    /// Unbinds a device.
    fn remove(dev: &RawDevice<'_, Self::Device>, data: Self::Data);
    /// The device is being taken away; `remove` follows.
    fn rescind(dev: &RawDevice<'_, Self::Device>, data: <Self::Data as ForeignOwnable>::Borrowed<'_>);
}

/// A registered driver; unregistered (every device unbound) when dropped.
///
/// # Invariants
///
/// `ptr` is a driver registered by `rustic_vmbus_driver_register` with
/// `DriverOps::<T>::OPS`, not yet unregistered.
pub(crate) struct DriverRegistration<T: BusDriver> {
    ptr: NonNull<bindings::rustic_vmbus_driver>,
    _driver: PhantomData<T>,
}

// SAFETY: the registration is only unregistered, from any thread.
unsafe impl<T: BusDriver> Send for DriverRegistration<T> {}
// SAFETY: `&DriverRegistration` allows nothing.
unsafe impl<T: BusDriver> Sync for DriverRegistration<T> {}

impl<T: BusDriver> DriverRegistration<T> {
    /// Registers the driver; it binds every present matching device before
    /// this returns.
    pub(crate) fn new() -> Result<Self> {
        let mut ptr = core::ptr::null_mut();
        // SAFETY: the name and the ops table are `'static` (the table is a
        // promoted constant).
        let ret = unsafe {
            bindings::rustic_vmbus_driver_register(T::NAME.as_char_ptr(), &DriverOps::<T>::OPS, &mut ptr)
        };
        to_result(ret)?;
        let ptr = NonNull::new(ptr).ok_or(EINVAL)?;
        // INVARIANT: registered with `DriverOps::<T>::OPS` just now.
        Ok(DriverRegistration { ptr, _driver: PhantomData })
    }
}

impl<T: BusDriver> Drop for DriverRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant), unregistered once here.
        unsafe { bindings::rustic_vmbus_driver_unregister(self.ptr.as_ptr()) }
    }
}

/// The C callbacks of a driver of type `T`.
struct DriverOps<T: BusDriver>(PhantomData<T>);

impl<T: BusDriver> DriverOps<T> {
    const OPS: bindings::rustic_vmbus_driver_ops = bindings::rustic_vmbus_driver_ops {
        match_: Some(Self::match_cb),
        probe: Some(Self::probe_cb),
        remove: Some(Self::remove_cb),
        rescind: Some(Self::rescind_cb),
    };

    /// # Safety
    ///
    /// `dev` must be a live device of the bus, for `'a`.
    unsafe fn device<'a>(dev: *mut bindings::rustic_vmbus_device) -> RawDevice<'a, T::Device> {
        // SAFETY: a live device's state pointer came from
        // `Arc::into_foreign` of a `T::Device` (only such devices are on a
        // bus whose drivers have this device type) and is released only
        // with the device.
        let state = unsafe { Arc::<T::Device>::borrow(bindings::rustic_vmbus_device_state(dev)) };
        // INVARIANT: the bus passes a live device, for the callback.
        RawDevice { state, raw: dev }
    }

    /// # Safety
    ///
    /// Called by the bus with a live device.
    unsafe extern "C" fn match_cb(dev: *mut bindings::rustic_vmbus_device) -> c_int {
        // SAFETY: the bus calls match with a live device.
        let dev = unsafe { Self::device(dev) };
        c_int::from(T::matches(&dev.state))
    }

    /// # Safety
    ///
    /// Called by the bus with a live device.
    unsafe extern "C" fn probe_cb(raw: *mut bindings::rustic_vmbus_device) -> c_int {
        // SAFETY: the bus calls probe with a live device.
        let dev = unsafe { Self::device(raw) };
        match T::probe(&dev) {
            Ok(data) => {
                // SAFETY: `raw` is live; the pointer is taken back in remove.
                unsafe { bindings::rustic_vmbus_device_set_drvdata(raw, data.into_foreign().cast_mut()) };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the bus with a live device bound to `T`.
    unsafe extern "C" fn remove_cb(raw: *mut bindings::rustic_vmbus_device) {
        // SAFETY: the bus calls remove with a live device bound to `T`.
        let dev = unsafe { Self::device(raw) };
        // SAFETY: probe succeeded (remove is called only for bound
        // devices) and stored `into_foreign` of `T::Data`; this is its only
        // `from_foreign`, and rescind's borrow ended (device lock).
        let data = unsafe { T::Data::from_foreign(bindings::rustic_vmbus_device_drvdata(raw).cast_const()) };
        // SAFETY: `raw` is live; clear the stale pointer.
        unsafe { bindings::rustic_vmbus_device_set_drvdata(raw, core::ptr::null_mut()) };
        T::remove(&dev, data);
    }

    /// # Safety
    ///
    /// Called by the bus with a live device bound to `T`.
    unsafe extern "C" fn rescind_cb(raw: *mut bindings::rustic_vmbus_device) {
        // SAFETY: C calls rescind with a live device bound to `T`, under
        // the device lock.
        let dev = unsafe { Self::device(raw) };
        // SAFETY: bound, so drvdata is `T::Data::into_foreign`; the device
        // lock keeps remove (the `from_foreign`) out while it is borrowed.
        let data = unsafe { T::Data::borrow(bindings::rustic_vmbus_device_drvdata(raw).cast_const()) };
        T::rescind(&dev, data);
    }
}

/// The C callbacks of the bus's devices, of state `D`.
struct BusOps<D: BusDevice>(PhantomData<D>);

impl<D: BusDevice> BusOps<D> {
    const OPS: bindings::rustic_vmbus_bus_ops = bindings::rustic_vmbus_bus_ops {
        dev_show: Some(Self::dev_show),
        chan_show: Some(Self::chan_show),
        chan_store: Some(Self::chan_store),
        attr_visible: Some(Self::attr_visible),
        modalias: Some(Self::modalias),
        state_release: Some(Self::state_release),
    };

    /// # Safety
    ///
    /// `state` must be the state pointer of a live device.
    unsafe fn state<'a>(state: *const c_void) -> ArcBorrow<'a, D> {
        // SAFETY: a live device's state came from `Arc::<D>::into_foreign`
        // (`DeviceRegistration::<D>::new`) and is released only in its
        // release callback (caller's guarantee).
        unsafe { Arc::<D>::borrow(state) }
    }

    /// # Safety
    ///
    /// `name` must be a NUL-terminated string valid for `'a`.
    unsafe fn name<'a>(name: *const c_char) -> &'a str {
        // SAFETY: caller's guarantee.
        unsafe { CStr::from_char_ptr(name) }.to_str().unwrap_or("")
    }

    /// # Safety
    ///
    /// `buf` must be a sysfs show buffer: `PAGE_SIZE` writable bytes.
    unsafe fn page<'a>(buf: *mut c_char) -> &'a mut [u8] {
        // SAFETY: caller's guarantee; sysfs hands each show its own page.
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) }
    }

    fn show_result(shown: Result<usize>) -> isize {
        match shown {
            // CAST: at most PAGE_SIZE.
            Ok(n) => n.min(kernel::page::PAGE_SIZE) as isize,
            // CAST: errno values are small negative numbers.
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// `state` is a live device's state, `attr` a NUL-terminated name and
    /// `buf` a sysfs page.
    unsafe extern "C" fn dev_show(state: *const c_void, attr: *const c_char, buf: *mut c_char) -> isize {
        // SAFETY: C passes its live device's state, the attribute's static
        // name and the sysfs page.
        let (state, name, out) = unsafe { (Self::state(state), Self::name(attr), Self::page(buf)) };
        Self::show_result(state.show_attr(name, out))
    }

    /// # Safety
    ///
    /// As for [`Self::dev_show`]; the channel directory holds a reference
    /// on its device.
    unsafe extern "C" fn chan_show(state: *const c_void, relid: u32, attr: *const c_char, buf: *mut c_char) -> isize {
        // SAFETY: as in `dev_show`.
        let (state, name, out) = unsafe { (Self::state(state), Self::name(attr), Self::page(buf)) };
        Self::show_result(state.show_channel_attr(relid, name, out))
    }

    /// # Safety
    ///
    /// `state` is a live device's state, `attr` a NUL-terminated name and
    /// `buf` holds `count` readable bytes.
    unsafe extern "C" fn chan_store(
        state: *const c_void,
        relid: u32,
        attr: *const c_char,
        buf: *const c_char,
        count: usize,
    ) -> isize {
        // SAFETY: C passes a live device's state and the attribute's name.
        let (state, name) = unsafe { (Self::state(state), Self::name(attr)) };
        // SAFETY: sysfs passes `count` readable bytes.
        let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
        match state.store_channel_attr(relid, name, input) {
            // CAST: a sysfs store is at most a page.
            Ok(()) => count as isize,
            // CAST: errno values are small negative numbers.
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// `state` is a live device's state and `attr` a NUL-terminated name.
    unsafe extern "C" fn attr_visible(state: *const c_void, attr: *const c_char, channel: bool, relid: u32) -> bool {
        // SAFETY: C passes a live device's state and the attribute's name.
        let (state, name) = unsafe { (Self::state(state), Self::name(attr)) };
        state.attr_visible(name, channel, relid)
    }

    /// # Safety
    ///
    /// `state` is a live device's state and `buf` holds `len` writable
    /// bytes.
    unsafe extern "C" fn modalias(state: *const c_void, buf: *mut c_char, len: usize) -> c_int {
        // SAFETY: C passes a live device's state.
        let state = unsafe { Self::state(state) };
        if len == 0 {
            return EINVAL.to_errno();
        }
        // SAFETY: C passes `len` writable bytes.
        let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        // Room for the NUL stays.
        let Some(text) = out.get_mut(..len - 1) else {
            return EINVAL.to_errno();
        };
        match state.modalias(text) {
            Ok(n) => match out.get_mut(n) {
                Some(end) => {
                    *end = 0;
                    0
                }
                None => EINVAL.to_errno(),
            },
            Err(e) => e.to_errno(),
        }
    }

    /// Drops the device's reference on its state, from its release
    /// callback.
    ///
    /// # Safety
    ///
    /// Called once per device, after the last use of `state`.
    unsafe extern "C" fn state_release(state: *const c_void) {
        // SAFETY: C calls this once per device, with the reference handed
        // over by `DeviceRegistration::new`, after its last use.
        drop(unsafe { Arc::<D>::from_foreign(state) });
    }
}
