// SPDX-License-Identifier: GPL-2.0
//! Safe Rust over `rust/net/netdev.c`: a `net_device` that a Rust driver
//! registers and drives (6.12 has no Rust net abstractions).
//!
//! A driver implements [`NetOps`] on its state `T` and creates a
//! [`NetDevice<T>`]; C calls the trait's methods for `ndo_open`,
//! `ndo_stop`, `ndo_start_xmit`, the NAPI polls, MTU changes, `ethtool -L`
//! and receive-mode changes. Queue `q` is TX queue `q`, RX queue `q` and NAPI
//! context `q` at once (one per channel).
//!
//! Ownership: the [`NetDevice`] holds the driver's `Arc<T>`; C holds it as
//! the ops' opaque owner pointer, given back only after the device is
//! freed, so no callback outlives `T`. Inside a callback the device is at
//! hand as a [`Net`] (the `*_net` forms of the trait's methods), so `T`
//! needs no reference back to its own `NetDevice` for receiving, completing
//! sends or changing queues. Code outside the callbacks (a channel's
//! interrupt handler scheduling NAPI) reaches the device through the
//! `NetDevice` itself, which derefs to [`Net`].
//!
//! Contexts (each method says its own):
//! - process context, rtnl held: `open`, `stop`, `change_mtu`,
//!   `set_channels`. [`Net::set_queues`] and the rtnl-taking setters use the
//!   held rtnl there; elsewhere they take it (so never hold it yourself).
//! - BH disabled, no sleeping: `xmit` (the queue's TX lock held), `poll`
//!   and `poll_done` (one per queue at a time). `set_rx_mode` is atomic.
//! - any context: [`Net::napi_schedule`], `carrier`, `tx_done`,
//!   `stop_queue`/`wake_queue`, `set_link_speed`, `set_ring`.
//! - [`Net::rx`]: only inside the poll of its queue (checked).
//!
//! Teardown: [`NetDevice::unregister`] (or the drop) takes rtnl and waits
//! for the callbacks, so never from a callback of the same device, and the
//! last reference to a shared `NetDevice` must go in process context. A
//! driver whose channel handlers hold an `Arc<NetDevice<T>>` (to schedule
//! NAPI) while `T` holds the channels has a cycle to break in `remove`:
//! `unregister()`, then close the channels (dropping the handlers'
//! references), then drop its own reference, which frees the device and
//! releases `T`.
#![allow(dead_code, reason = "the offload, VLAN and multi-queue parts wait for the netvsc driver to use them")]

use crate::rust::base::errno::EOPNOTSUPP;
use crate::rust::bindings;
use crate::rust::base::DeviceRef;
use core::marker::PhantomData;
use core::ops::{BitOr, Deref};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};
use kernel::error::to_result;
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};
use kernel::types::{ForeignOwnable, Opaque};

/// Most queues a device may have; [`NetDevice::new`] caps at it.
pub(crate) const MAX_QUEUES: u16 = 64;
// CAST: both are 64.
const _: () = assert!(MAX_QUEUES as u32 == bindings::RUSTIC_NETDEV_MAX_QUEUES);

/// The `dev->flags` bits that [`NetOps::set_rx_mode`] gets (the kernel's
/// `IFF_*` values; `rust/net/netdev.c` checks them at build time).
pub(crate) mod rx_mode {
    use crate::rust::bindings;

    /// `IFF_BROADCAST`.
    pub(crate) const BROADCAST: u32 = bindings::RUSTIC_IFF_BROADCAST;
    /// `IFF_PROMISC`: receive every frame.
    pub(crate) const PROMISC: u32 = bindings::RUSTIC_IFF_PROMISC;
    /// `IFF_ALLMULTI`: receive every multicast frame.
    pub(crate) const ALLMULTI: u32 = bindings::RUSTIC_IFF_ALLMULTI;
    /// `IFF_MULTICAST`.
    pub(crate) const MULTICAST: u32 = bindings::RUSTIC_IFF_MULTICAST;
}

/// What became of a frame handed to [`NetOps::xmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tx {
    /// The driver copied the frame; the skb is freed as consumed.
    Sent,
    /// No room: the driver did nothing with the frame. The queue is stopped
    /// and `xmit` called once more with the same skb (room may have come back
    /// meanwhile); if it is busy again the stack keeps the skb for when the
    /// driver wakes the queue ([`Net::wake_queue`]). So answer it only while
    /// sends are outstanding whose completions will wake the queue: the
    /// shim has no transmit watchdog.
    Busy,
    /// The frame was dropped (counted in `tx_dropped`).
    Dropped,
}

/// The offloads a device has ([`NetDevice::set_features`]); the user may
/// switch each off with `ethtool -K`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Features(u64);

impl Features {
    // CAST (each below): the C bits are u32 values that fit a u64, and
    // `u64::from` is not const.

    /// None.
    pub(crate) const NONE: Features = Features(0);
    /// IPv4 and IPv6 TCP/UDP transmit checksums (`CHECKSUM_PARTIAL` skbs).
    pub(crate) const TX_CSUM: Features = Features(bindings::RUSTIC_NETDEV_F_TX_CSUM as u64);
    /// Receive checksums checked by the host ([`RxMeta::csum_ok`]).
    pub(crate) const RX_CSUM: Features = Features(bindings::RUSTIC_NETDEV_F_RX_CSUM as u64);
    /// TCP segmentation offload for IPv4 and IPv6 (needs [`Features::SG`]
    /// and [`Features::TX_CSUM`], or the kernel turns it off).
    pub(crate) const TSO: Features = Features(bindings::RUSTIC_NETDEV_F_TSO as u64);
    /// Fragmented (non-linear) skbs.
    pub(crate) const SG: Features = Features(bindings::RUSTIC_NETDEV_F_SG as u64);
    /// 802.1Q tags passed out of band on transmit ([`SkbInfo::vlan_tci`]).
    pub(crate) const VLAN_TX: Features = Features(bindings::RUSTIC_NETDEV_F_VLAN_TX as u64);
    /// 802.1Q tags stripped on receive ([`RxMeta::vlan_tci`]).
    pub(crate) const VLAN_RX: Features = Features(bindings::RUSTIC_NETDEV_F_VLAN_RX as u64);
    /// The host's receive hash ([`RxMeta::hash`]).
    pub(crate) const RXHASH: Features = Features(bindings::RUSTIC_NETDEV_F_RXHASH as u64);
    /// Large receives: the host coalesces a flow's segments
    /// ([`NetOps::set_lro`] turns it on and off).
    pub(crate) const LRO: Features = Features(bindings::RUSTIC_NETDEV_F_LRO as u64);

    /// The `RUSTIC_NETDEV_F_*` bits.
    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    /// Whether every feature of `other` is in `self`.
    pub(crate) fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Features {
    type Output = Features;

    fn bitor(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }
}

/// What the host said about a received frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RxMeta {
    /// The host checked the IP and TCP/UDP checksums and they were good
    /// (used only while the RX checksum feature is on).
    pub(crate) csum_ok: bool,
    /// The 802.1Q tag (PCP, DEI, VID) the host stripped.
    pub(crate) vlan_tci: Option<u16>,
    /// The host's L4 RSS hash (used only while the RXHASH feature is on).
    pub(crate) hash: Option<u32>,
}

impl RxMeta {
    /// The `RUSTIC_RX_*` flags of C.
    fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.csum_ok {
            flags |= bindings::RUSTIC_RX_CSUM_OK;
        }
        if self.vlan_tci.is_some() {
            flags |= bindings::RUSTIC_RX_VLAN;
        }
        if self.hash.is_some() {
            flags |= bindings::RUSTIC_RX_HASH;
        }
        flags
    }
}

/// A received frame copied into an skb and not yet handed up
/// ([`Net::rx_copy`], [`Net::rx_up`]); dropping it frees it. It stays in
/// the poll that made it (neither `Send` nor `Sync`).
///
/// # Invariants
///
/// `skb` came from `rustic_netdev_rx_copy` and is owned by this value.
pub(crate) struct RxFrame {
    skb: NonNull<bindings::sk_buff>,
}

impl Drop for RxFrame {
    fn drop(&mut self) {
        // SAFETY: ours (invariant), freed once.
        unsafe { bindings::rustic_netdev_rx_free(self.skb.as_ptr()) }
    }
}

/// Segmentation a transmitted skb asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gso {
    /// One frame.
    None,
    /// TCP over IPv4, in segments of [`SkbInfo::gso_size`] payload bytes.
    TcpV4,
    /// TCP over IPv6.
    TcpV6,
    /// A kind the device does not offer (the stack segments those itself,
    /// so this should not come; drop it).
    Other,
}

/// What a driver needs of an skb to build a send, copied out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SkbInfo {
    /// Bytes in the frame, from the Ethernet header on.
    pub(crate) len: u32,
    /// `CHECKSUM_PARTIAL`: the checksum over `csum_start..` goes at
    /// `csum_start + csum_offset` (offsets from the frame's start).
    pub(crate) csum_partial: bool,
    pub(crate) csum_start: u32,
    pub(crate) csum_offset: u32,
    /// Segmentation: its kind, the payload bytes per segment and the
    /// number of segments (`gso_size` and `gso_segs` are 0 for `None`).
    pub(crate) gso: Gso,
    pub(crate) gso_size: u32,
    pub(crate) gso_segs: u32,
    /// The 802.1Q tag (PCP, DEI, VID) to insert.
    pub(crate) vlan_tci: Option<u16>,
    /// The EtherType (`skb->protocol`, host order; with `vlan_tci` the
    /// encapsulated one).
    pub(crate) protocol: u16,
    /// Where the network and transport headers start, if known.
    pub(crate) network_offset: Option<u32>,
    pub(crate) transport_offset: Option<u32>,
    /// `IPPROTO_*` of the IPv4 protocol or IPv6 next-header field; 0 when
    /// the frame is not IP.
    pub(crate) l4_proto: u8,
    /// `skb->hash` (0 when the stack computed none).
    pub(crate) hash: u32,
    /// The queue the stack picked (the queue `xmit` was called for).
    pub(crate) queue_mapping: u16,
}

/// A physically contiguous piece of a frame ([`Skb::pieces`]): its first
/// byte's physical address (`phys`) and its length (`len`).
pub(crate) type SkbPiece = bindings::rustic_skb_piece;

/// Transmitted skbs a driver keeps while the host reads their pages, one
/// per slot (the driver's numbering of its sends in flight).
///
/// # Invariants
///
/// Each non-null slot holds a reference to a live skb that this value
/// owns (taken with `rustic_skb_get`).
pub(crate) struct HeldSkbs {
    slots: KVec<AtomicPtr<bindings::sk_buff>>,
}

impl HeldSkbs {
    /// `count` empty slots.
    pub(crate) fn new(count: usize) -> Result<Self> {
        let mut slots = KVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            slots.push(AtomicPtr::new(core::ptr::null_mut()), GFP_KERNEL)?;
        }
        Ok(HeldSkbs { slots })
    }

    /// Keeps a reference to `skb` in `slot` (letting go of one left
    /// there), the skb detached from its socket; `EINVAL` for a slot past
    /// the end.
    pub(crate) fn hold(&self, slot: usize, skb: &Skb) -> Result {
        let held = self.slots.get(slot).ok_or(EINVAL)?;
        // SAFETY: a live skb (`Skb`'s invariant) that the stack frees
        // (no longer reads) once xmit returns: detaching it from its
        // socket and taking a reference change nothing the stack relies on.
        let reference = unsafe { bindings::rustic_skb_hold(skb.as_ptr().cast_mut()) };
        // INVARIANT: the reference just taken is the slot's.
        let old = held.swap(reference, Ordering::AcqRel);
        Self::consume(old);
        Ok(())
    }

    /// Lets go of the skb in `slot`, if there is one: its send is done or
    /// will not be.
    pub(crate) fn release(&self, slot: usize) {
        if let Some(held) = self.slots.get(slot) {
            Self::consume(held.swap(core::ptr::null_mut(), Ordering::AcqRel));
        }
    }

    fn consume(skb: *mut bindings::sk_buff) {
        if !skb.is_null() {
            // SAFETY: a reference this value owned (invariant), taken out
            // of its slot, so dropped once.
            unsafe { bindings::rustic_skb_consume(skb) };
        }
    }
}

impl Drop for HeldSkbs {
    fn drop(&mut self) {
        for slot in 0..self.slots.len() {
            self.release(slot);
        }
    }
}

/// An skb being transmitted: borrowed from the stack for one
/// [`NetOps::xmit`] call, read-only.
///
/// # Invariants
///
/// A `&Skb` points at a live `struct sk_buff` that no one changes while the
/// reference lives (the stack hands it to `ndo_start_xmit` and waits).
#[repr(transparent)]
pub(crate) struct Skb(Opaque<bindings::sk_buff>);

impl Skb {
    /// # Safety
    ///
    /// `skb` must be a live skb, unchanged for `'a`.
    unsafe fn from_raw<'a>(skb: *mut bindings::sk_buff) -> &'a Skb {
        // SAFETY: `Skb` is a transparent wrapper of the (opaque) sk_buff;
        // the caller guarantees it stays valid for `'a`.
        unsafe { &*skb.cast::<Skb>() }
    }

    fn as_ptr(&self) -> *const bindings::sk_buff {
        Opaque::raw_get(&self.0).cast_const()
    }

    /// Bytes in the frame, from the Ethernet header on.
    pub(crate) fn len(&self) -> u32 {
        // SAFETY: a live skb (type invariant).
        unsafe { bindings::rustic_skb_len(self.as_ptr()) }
    }

    /// Whether the frame is empty (it never is on transmit).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `dst.len()` bytes of the frame from `offset` (linear part and
    /// fragments alike); `EFAULT` if they are not all in the frame.
    pub(crate) fn copy_to(&self, offset: u32, dst: &mut [u8]) -> Result {
        let len = u32::try_from(dst.len()).map_err(|_| EFAULT)?;
        // SAFETY: a live skb (type invariant); `dst` holds `len` writable
        // bytes and C writes no more.
        to_result(unsafe {
            bindings::rustic_skb_copy(self.as_ptr(), offset, dst.as_mut_ptr().cast(), len)
        })
    }

    /// Bytes `offset..` of the frame as physically contiguous pieces (the
    /// rest of the linear part, then each fragment), written to the start
    /// of `out`: how many. `E2BIG` when `out` is too short for them,
    /// `EFAULT` for an `offset` past the end.
    pub(crate) fn pieces(&self, offset: u32, out: &mut [SkbPiece]) -> Result<usize> {
        let max = u32::try_from(out.len()).map_err(|_| EINVAL)?;
        // SAFETY: a live skb (type invariant); C writes at most `max`
        // entries of `out`.
        let n = unsafe { bindings::rustic_skb_pieces(self.as_ptr(), offset, out.as_mut_ptr(), max) };
        to_result(n)?;
        usize::try_from(n).map_err(|_| EINVAL)
    }

    /// The skb's offload requests and header positions.
    pub(crate) fn info(&self) -> SkbInfo {
        let mut raw = bindings::rustic_skb_info::default();
        // SAFETY: a live skb (type invariant); C fills `raw`.
        unsafe { bindings::rustic_skb_info(self.as_ptr(), &mut raw) };
        let gso = if raw.gso_size == 0 {
            Gso::None
        } else if raw.gso_type & bindings::RUSTIC_GSO_TCPV4 != 0 {
            Gso::TcpV4
        } else if raw.gso_type & bindings::RUSTIC_GSO_TCPV6 != 0 {
            Gso::TcpV6
        } else {
            Gso::Other
        };
        SkbInfo {
            len: raw.len,
            csum_partial: raw.csum_partial,
            csum_start: raw.csum_start,
            csum_offset: raw.csum_offset,
            gso,
            gso_size: raw.gso_size,
            gso_segs: raw.gso_segs,
            vlan_tci: raw.vlan_present.then_some(raw.vlan_tci),
            protocol: raw.protocol,
            network_offset: u32::try_from(raw.network_offset).ok(),
            transport_offset: u32::try_from(raw.transport_offset).ok(),
            l4_proto: raw.l4_proto,
            hash: raw.hash,
            queue_mapping: raw.queue_mapping,
        }
    }
}

/// An interface name (`IFNAMSIZ` bytes, NUL-terminated), copied.
#[derive(Clone, Copy)]
pub(crate) struct IfName([u8; IfName::SIZE]);

impl IfName {
    /// `IFNAMSIZ`.
    pub(crate) const SIZE: usize = 16;

    /// The name's bytes, without the NUL.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(Self::SIZE);
        self.0.get(..end).unwrap_or(&[])
    }

    /// The name as text ("" if the kernel ever named it in non-UTF-8).
    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl core::fmt::Display for IfName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `mac` can be a device's own address: not all-zero, not
/// multicast (`is_valid_ether_addr`).
pub(crate) fn valid_mac(mac: &[u8; 6]) -> bool {
    mac.iter().any(|&b| b != 0) && mac[0] & 1 == 0
}

/// A network device's operations, valid wherever the device is reachable:
/// through a [`NetDevice`] (it derefs to `Net`) or, inside a callback, the
/// `&Net` it is given.
///
/// Methods taking a queue ignore one at or beyond the device's maximum.
///
/// # Invariants
///
/// A `&Net` points at a live device made by `rustic_netdev_new` and not yet
/// freed.
#[repr(transparent)]
pub(crate) struct Net(Opaque<bindings::rustic_netdev>);

// SAFETY: every method calls C that is safe from any thread (each says in
// which context); the device itself is shared kernel state that C
// synchronises.
unsafe impl Sync for Net {}

impl Net {
    /// # Safety
    ///
    /// `dev` must be a live device that stays so for `'a`.
    unsafe fn from_raw<'a>(dev: *mut bindings::rustic_netdev) -> &'a Net {
        // SAFETY: `Net` is a transparent wrapper of the opaque device; the
        // caller guarantees it outlives `'a`.
        unsafe { &*dev.cast::<Net>() }
    }

    /// The C device, for C helpers (the KUnit cases drive it as the stack).
    pub(crate) fn as_ptr(&self) -> *mut bindings::rustic_netdev {
        Opaque::raw_get(&self.0)
    }

    /// Hands a received frame (from its Ethernet header on) to the stack
    /// through GRO, counting it on `queue`. Only from the NAPI poll of
    /// `queue` ([`NetOps::poll`] with a nonzero budget): C checks, warns once
    /// and fails with `EINVAL` elsewhere. `EINVAL` too for a frame shorter
    /// than an Ethernet header; `ENOMEM` when no skb could be had. Every
    /// failure counts as a receive drop.
    pub(crate) fn rx(&self, queue: u16, frame: &[u8], meta: RxMeta) -> Result {
        // SAFETY: `frame` is a slice, valid for its length.
        let skb = unsafe { self.rx_copy(queue, frame.as_ptr(), frame.len()) }?;
        self.rx_up(queue, skb, meta);
        Ok(())
    }

    /// The first half of [`Net::rx`]: copies the `len`-byte frame at
    /// `frame` into a new skb, for [`Net::rx_up`] to hand up once the
    /// caller has let go of what kept `frame` alive. Same context rule
    /// and failures as [`Net::rx`] (`EINVAL` also for `len` over 4 GiB).
    ///
    /// # Safety
    ///
    /// `frame` must be valid for reads of `len` bytes for the call. Memory
    /// the host may write is fine: C copies it once, with no reference.
    pub(crate) unsafe fn rx_copy(&self, queue: u16, frame: *const u8, len: usize) -> Result<RxFrame> {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        let mut skb = core::ptr::null_mut();
        // SAFETY: a live device (type invariant); `frame` is valid for
        // `len` bytes (the caller's promise); C writes `skb` only.
        to_result(unsafe { bindings::rustic_netdev_rx_copy(self.as_ptr(), queue, frame.cast(), len, &mut skb) })?;
        // INVARIANT: on success a fresh skb of ours.
        NonNull::new(skb).map(|skb| RxFrame { skb }).ok_or(ENOMEM)
    }

    /// The second half of [`Net::rx`]: hands `frame` up on `queue`, from
    /// the queue's poll.
    pub(crate) fn rx_up(&self, queue: u16, frame: RxFrame, meta: RxMeta) {
        let skb = frame.skb.as_ptr();
        core::mem::forget(frame);
        // SAFETY: a live device (type invariant); `skb` is ours (the
        // `RxFrame` invariant) and C consumes it.
        unsafe {
            bindings::rustic_netdev_rx_skb(
                self.as_ptr(),
                queue,
                skb,
                meta.flags(),
                meta.vlan_tci.unwrap_or(0),
                meta.hash.unwrap_or(0),
            )
        }
    }

    /// Counts `packets` frames of `bytes` bytes sent on `queue` (any
    /// context). A driver that copies in `xmit` may count there.
    pub(crate) fn tx_done(&self, queue: u16, packets: u32, bytes: u64) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_tx_done(self.as_ptr(), queue, packets, bytes) }
    }

    /// Lets NAPI poll `queue`: the device's NAPI contexts start disabled
    /// (process context; does nothing if already enabled).
    pub(crate) fn napi_enable(&self, queue: u16) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_napi_enable(self.as_ptr(), queue) }
    }

    /// Stops NAPI polling `queue`, waiting for a running poll (process
    /// context, sleeps; never from that queue's own poll). Does nothing if
    /// already disabled.
    pub(crate) fn napi_disable(&self, queue: u16) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_napi_disable(self.as_ptr(), queue) }
    }

    /// Schedules the NAPI poll of `queue` (any context; from process
    /// context the poll runs before this returns, on this CPU). Nothing
    /// runs while the queue's NAPI is disabled; a schedule then makes the
    /// first poll after enabling run twice.
    pub(crate) fn napi_schedule(&self, queue: u16) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_napi_schedule(self.as_ptr(), queue) }
    }

    /// Link up or down (any context). A new device's link is down.
    pub(crate) fn carrier(&self, on: bool) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_carrier(self.as_ptr(), on) }
    }

    /// Uses `n` queues (1 up to the maximum): the stack sends on and
    /// expects receives from queues below `n` only. Process context; takes
    /// rtnl, except inside the callbacks the core makes with rtnl held
    /// (open, stop, MTU change, set_channels), which it uses as held. So
    /// never call it while holding rtnl some other way.
    pub(crate) fn set_queues(&self, n: u16) -> Result {
        // SAFETY: a live device (type invariant).
        to_result(unsafe { bindings::rustic_netdev_set_queues(self.as_ptr(), c_uint::from(n)) })
    }

    /// The queues in use.
    pub(crate) fn queues(&self) -> u16 {
        // SAFETY: a live device (type invariant).
        let n = unsafe { bindings::rustic_netdev_queues(self.as_ptr()) };
        u16::try_from(n).unwrap_or(MAX_QUEUES)
    }

    /// The most queues the device may use ([`NetDevice::new`]'s, capped).
    pub(crate) fn max_queues(&self) -> u16 {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_max_queues(self.as_ptr()) }
    }

    /// The most channels `ethtool -l` shows and `-L` takes (1 up to
    /// [`Net::max_queues`]; clamped): a driver that opened fewer channels
    /// than it made queues says so. Any context.
    pub(crate) fn set_max_channels(&self, n: u16) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_set_max_channels(self.as_ptr(), n) }
    }

    /// Stops the stack sending on `queue` (any context), e.g. from `xmit`
    /// when the ring is nearly full. Then check for room again and
    /// [`Net::wake_queue`] if there is some: a completion may have freed it
    /// before the stop.
    pub(crate) fn stop_queue(&self, queue: u16) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_stop_queue(self.as_ptr(), queue) }
    }

    /// Lets the stack send on `queue` again if it was stopped (any context;
    /// call it after freeing ring space, which it orders before its check).
    /// Does nothing while the device is down.
    pub(crate) fn wake_queue(&self, queue: u16) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_wake_queue(self.as_ptr(), queue) }
    }

    /// Takes the device off the stack (process context, rtnl held, as
    /// in the MTU change callback): no transmit runs once this returns,
    /// and none starts until [`Net::attach`]; wakes do nothing meanwhile.
    pub(crate) fn detach(&self) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_detach(self.as_ptr()) }
    }

    /// Puts the device back after [`Net::detach`], its queues woken if it
    /// is up.
    pub(crate) fn attach(&self) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_attach(self.as_ptr()) }
    }

    /// Whether the interface is up (stable with rtnl held).
    pub(crate) fn is_running(&self) -> bool {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_running(self.as_ptr()) }
    }

    /// The interface's MTU.
    pub(crate) fn mtu(&self) -> u32 {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_mtu(self.as_ptr()) }
    }

    /// Whether `queue` is stopped.
    pub(crate) fn queue_stopped(&self, queue: u16) -> bool {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_queue_stopped(self.as_ptr(), queue) }
    }

    /// The largest MTU the user may set (68..=65521, the default; others
    /// are ignored). Process context; rtnl as for [`Net::set_queues`].
    pub(crate) fn set_max_mtu(&self, mtu: u32) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_set_max_mtu(self.as_ptr(), mtu) }
    }

    /// The largest TSO frame (bytes) and segment count the host takes.
    /// Process context; rtnl as for [`Net::set_queues`].
    pub(crate) fn set_tso_max(&self, size: u32, segs: u32) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_set_tso_max(self.as_ptr(), size, segs) }
    }

    /// The link speed `ethtool` shows, in Mbit/s (0: unknown). Any context.
    pub(crate) fn set_link_speed(&self, mbps: u32) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_set_link_speed(self.as_ptr(), mbps) }
    }

    /// The ring sizes `ethtool -g` shows (as current and maximum). Any
    /// context.
    pub(crate) fn set_ring(&self, rx_pending: u32, tx_pending: u32) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_set_ring(self.as_ptr(), rx_pending, tx_pending) }
    }

    /// Counts one piece of bad input from the host that the driver dropped
    /// (`ethtool -S` `host_errors`). Any context.
    pub(crate) fn count_host_error(&self) {
        // SAFETY: a live device (type invariant).
        unsafe { bindings::rustic_netdev_count_host_error(self.as_ptr()) }
    }

    /// The `bus-info` `ethtool -i` shows (at most 31 bytes kept). Process
    /// context; rtnl as for [`Net::set_queues`].
    pub(crate) fn set_info(&self, bus_info: &CStr) {
        // SAFETY: a live device (type invariant); C copies the string.
        unsafe { bindings::rustic_netdev_set_info(self.as_ptr(), bus_info.as_char_ptr()) }
    }

    /// The hardware address, before the device is registered: `EINVAL`
    /// after, or for an address that is not a valid unicast one. Process
    /// context; rtnl as for [`Net::set_queues`].
    pub(crate) fn set_mac(&self, mac: &[u8; 6]) -> Result {
        // SAFETY: a live device (type invariant); C copies the 6 bytes.
        to_result(unsafe { bindings::rustic_netdev_set_mac(self.as_ptr(), mac.as_ptr()) })
    }

    /// The interface name, copied (`eth%d` until registered; a rename
    /// changes it).
    pub(crate) fn name(&self) -> IfName {
        let mut buf = [0u8; IfName::SIZE];
        // SAFETY: a live device (type invariant); C writes at most
        // IFNAMSIZ bytes, NUL-terminated.
        unsafe { bindings::rustic_netdev_name_copy(self.as_ptr(), buf.as_mut_ptr().cast::<c_char>()) };
        IfName(buf)
    }
}

/// What a network driver does. C calls these on the driver's `T` (the
/// owner given to [`NetDevice::new`]) while the device is registered; the
/// NAPI poll also while a queue's NAPI is enabled.
///
/// Each callback comes in two forms: the plain one and a `*_net` one that
/// also gets the device. C calls the `*_net` form, which by default calls the
/// plain one; implement whichever suits (the plain forms' defaults refuse:
/// open fails, xmit drops, poll does no work).
pub(crate) trait NetOps: Send + Sync + 'static {
    /// The interface is brought up (process context, rtnl held), after the
    /// TX queues were started. Typically: enable NAPI, turn the link on as
    /// the host reports it. An error fails the `ip link set up`.
    fn open(&self) -> Result {
        Err(EOPNOTSUPP())
    }

    /// As [`NetOps::open`], with the device.
    fn open_net(&self, net: &Net) -> Result {
        let _ = net;
        self.open()
    }

    /// The interface goes down (process context, rtnl held), after the TX
    /// queues were disabled. Typically: disable NAPI. Also runs from
    /// [`NetDevice::unregister`] (and drop) if the device is up.
    fn stop(&self) {}

    /// As [`NetOps::stop`], with the device.
    fn stop_net(&self, net: &Net) {
        let _ = net;
        self.stop()
    }

    /// Sends `skb` on `queue` (BH disabled, the queue's TX lock held: one
    /// call per queue at a time; atomic, so no sleeping). Copy what is
    /// needed; the skb is gone after this returns. [`Tx::Busy`] must leave
    /// nothing done: the same skb may come again at once.
    fn xmit(&self, queue: u16, skb: &Skb) -> Tx {
        let _ = (queue, skb);
        Tx::Dropped
    }

    /// As [`NetOps::xmit`], with the device (for [`Net::tx_done`] and
    /// [`Net::stop_queue`]).
    fn xmit_net(&self, net: &Net, queue: u16, skb: &Skb) -> Tx {
        let _ = net;
        self.xmit(queue, skb)
    }

    /// The NAPI poll of `queue` (softirq or a NAPI thread; BH disabled, so
    /// no sleeping; one poll per queue at a time): receive at most `budget`
    /// frames through [`Net::rx`] and return how many. Send completions do
    /// not count against the budget. `budget` 0 (netpoll) allows no
    /// receives. Returning less than `budget` ends polling until the next
    /// [`Net::napi_schedule`], after which [`NetOps::poll_done`] runs.
    fn poll(&self, queue: u16, budget: i32) -> i32 {
        let _ = (queue, budget);
        0
    }

    /// As [`NetOps::poll`], with the device (for [`Net::rx`]).
    fn poll_net(&self, net: &Net, queue: u16, budget: i32) -> i32 {
        let _ = net;
        self.poll(queue, budget)
    }

    /// Polling of `queue` ended (same context as the poll): re-enable the
    /// channel's interrupt, then look for work once more and
    /// [`Net::napi_schedule`] if some arrived meanwhile. Not called when NAPI
    /// goes on polling anyway.
    fn poll_done(&self, queue: u16) {
        let _ = queue;
    }

    /// As [`NetOps::poll_done`], with the device.
    fn poll_done_net(&self, net: &Net, queue: u16) {
        let _ = net;
        self.poll_done(queue)
    }

    /// The user sets the MTU to `mtu` (within 68 and the maximum; process
    /// context, rtnl held). `Ok` makes it the device's MTU.
    fn change_mtu(&self, mtu: u32) -> Result {
        let _ = mtu;
        Err(EOPNOTSUPP())
    }

    /// As [`NetOps::change_mtu`], with the device.
    fn change_mtu_net(&self, net: &Net, mtu: u32) -> Result {
        let _ = net;
        self.change_mtu(mtu)
    }

    /// `ethtool -L combined count` (1 up to the maximum; process context,
    /// rtnl held): set up the channels, then [`Net::set_queues`].
    fn set_channels(&self, count: u32) -> Result {
        let _ = count;
        Err(EOPNOTSUPP())
    }

    /// As [`NetOps::set_channels`], with the device.
    fn set_channels_net(&self, net: &Net, count: u32) -> Result {
        let _ = net;
        self.set_channels(count)
    }

    /// The receive filter changed: `flags` are the device's flags (see
    /// [`rx_mode`]). Atomic context (the address list lock is held): queue
    /// work to tell the host, do not sleep.
    fn set_rx_mode(&self, flags: u32) {
        let _ = flags;
    }

    /// [`Features::LRO`] goes on or off (`ethtool -K`, or the stack when
    /// the device starts forwarding; process context, rtnl held): tell the
    /// host. An error keeps the old setting.
    fn set_lro_net(&self, net: &Net, on: bool) -> Result {
        let _ = (net, on);
        Ok(())
    }
}

// Registration states of a [`NetDevice`].
/// Never registered.
const NEW: u8 = 0;
/// Registered.
const REGISTERED: u8 = 1;
/// Unregistered, or registration failed: the kernel may have left the
/// device half-dismantled, so it is never registered again.
const UNREGISTERED: u8 = 2;
/// A `register` call is under way.
const REGISTERING: u8 = 3;

/// A network device driven by `T`; dropping it unregisters (if registered)
/// and frees the device, then releases `T`.
///
/// Derefs to [`Net`] for everything else the driver does with the device.
///
/// Drop it in process context, without rtnl, and never from a callback of
/// its own (unregistering waits for them): the last `Arc` of a shared
/// `NetDevice` too.
///
/// # Invariants
///
/// `ptr` is a device from `rustic_netdev_new` with `Adapter::<T>::OPS`
/// and owner `owner`, freed only in `drop`. `owner` is
/// `Arc::<T>::into_foreign` of the driver's state, taken back only in
/// `drop` after the device is freed. `state` is `REGISTERED` exactly while
/// the device is registered (`NEW` before any try, `REGISTERING` during
/// one, `UNREGISTERED` after unregistering or a failed try).
pub(crate) struct NetDevice<T: NetOps> {
    ptr: NonNull<bindings::rustic_netdev>,
    owner: *const c_void,
    state: AtomicU8,
    _owner: PhantomData<Arc<T>>,
}

// SAFETY: the device is kernel state that C synchronises (each method of
// `Net` is safe from any thread, in the context it names); `owner` stands
// for an `Arc<T>` with `T: Send + Sync`, released once, in `drop`.
unsafe impl<T: NetOps> Send for NetDevice<T> {}
// SAFETY: `&NetDevice` gives `&Net` (which is `Sync`), `ArcBorrow<T>` (`T:
// Sync`), and `unregister`, which an atomic swap makes happen once.
unsafe impl<T: NetOps> Sync for NetDevice<T> {}

impl<T: NetOps> NetDevice<T> {
    /// Allocates an unregistered Ethernet device with address `mac`,
    /// `max_queues` queues (1 and up; more than [`MAX_QUEUES`] are capped)
    /// of which 1 is in use, NAPI disabled on each, link down, no offloads,
    /// MTU 1500 of at most 65521. With a `parent`, the device is its child
    /// in sysfs (`/sys/class/net/<name>/device`; the parent is held until
    /// the device is freed). Process context.
    pub(crate) fn new(
        owner: Arc<T>,
        mac: [u8; 6],
        max_queues: u16,
        parent: Option<DeviceRef<'_>>,
    ) -> Result<Self> {
        if !valid_mac(&mac) || max_queues == 0 {
            return Err(EINVAL);
        }
        let parent = parent.map_or(core::ptr::null_mut(), |p| p.as_raw());
        let data = owner.into_foreign();
        // SAFETY: the ops table is `'static` (a promoted constant); C copies
        // the 6 bytes of `mac`; `parent` is null or a live device, which C
        // holds from here on; `data` stays valid until `drop` frees the
        // device.
        let ptr = unsafe {
            bindings::rustic_netdev_new(
                data.cast_mut(),
                &Adapter::<T>::OPS,
                mac.as_ptr(),
                c_uint::from(max_queues.min(MAX_QUEUES)),
                parent,
            )
        };
        let Some(ptr) = NonNull::new(ptr) else {
            // SAFETY: from `into_foreign` above; C did not keep it.
            drop(unsafe { Arc::<T>::from_foreign(data) });
            return Err(ENOMEM);
        };
        // INVARIANT: a fresh, unregistered device owning `data`.
        Ok(NetDevice {
            ptr,
            owner: data,
            state: AtomicU8::new(NEW),
            _owner: PhantomData,
        })
    }

    /// The driver's state the device was made with.
    pub(crate) fn owner(&self) -> ArcBorrow<'_, T> {
        // SAFETY: `owner` came from `Arc::into_foreign` and is taken back
        // only in `drop` (type invariant), after every borrow.
        unsafe { Arc::<T>::borrow(self.owner) }
    }

    /// The offloads the device has, all switched on. Before
    /// [`NetDevice::register`]: `EBUSY` during or after it (the device is
    /// held as in a registration meanwhile, so the two never overlap).
    pub(crate) fn set_features(&self, features: Features) -> Result {
        if self
            .state
            .compare_exchange(NEW, REGISTERING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(EBUSY);
        }
        // SAFETY: a live device (type invariant), unregistered, and the
        // exchange keeps `register` and other callers out until the store.
        unsafe { bindings::rustic_netdev_set_features(self.ptr.as_ptr(), features.bits()) };
        self.state.store(NEW, Ordering::Release);
        Ok(())
    }

    /// Registers the device (`ethN` appears; process context, rtnl not
    /// held). From now on C calls the [`NetOps`]. One try only: `EBUSY` for
    /// any later call, also after a failed one (the kernel's unwinding of a
    /// failed registration may leave the device unfit for another).
    /// Takes `&self` so that a device already shared can be registered; an
    /// [`NetDevice::unregister`] racing with it does nothing, and the drop
    /// unregisters.
    pub(crate) fn register(&self) -> Result {
        if self
            .state
            .compare_exchange(NEW, REGISTERING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(EBUSY);
        }
        // SAFETY: a live device (type invariant), never registered; the
        // exchange lets exactly one caller here.
        let ret = to_result(unsafe { bindings::rustic_netdev_register(self.ptr.as_ptr()) });
        // INVARIANT: `REGISTERED` only if the registration succeeded.
        let state = if ret.is_ok() { REGISTERED } else { UNREGISTERED };
        self.state.store(state, Ordering::Release);
        ret
    }

    /// Unregisters the device if it is registered: stops it first
    /// ([`NetOps::stop`]) if it is up; no [`NetOps`] callback runs after this
    /// returns but NAPI polls of queues still enabled. Process context,
    /// rtnl not held, not from a callback of this device. Lets a driver
    /// take the device down before closing its channels while others still
    /// hold the `NetDevice`; [`Drop`] does it otherwise. A second call
    /// returns at once, even while the first is still unregistering.
    pub(crate) fn unregister(&self) {
        if self
            .state
            .compare_exchange(REGISTERED, UNREGISTERED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // SAFETY: the device was registered, and the exchange lets
            // exactly one caller here.
            unsafe { bindings::rustic_netdev_unregister(self.ptr.as_ptr()) }
        }
    }
}

impl<T: NetOps> Deref for NetDevice<T> {
    type Target = Net;

    fn deref(&self) -> &Net {
        // SAFETY: `ptr` is a live device until `drop` (type invariant), so
        // for as long as `self` is borrowed.
        unsafe { Net::from_raw(self.ptr.as_ptr()) }
    }
}

impl<T: NetOps> Drop for NetDevice<T> {
    fn drop(&mut self) {
        self.unregister();
        // SAFETY: a live device (type invariant), unregistered if it ever
        // was; C disables the enabled NAPI contexts, so no callback is left
        // running, and frees it. Freed once, here.
        unsafe { bindings::rustic_netdev_free(self.ptr.as_ptr()) };
        // SAFETY: from `into_foreign` in `new`; the device that used it is
        // gone, and `owner()` borrows ended with `&mut self`.
        drop(unsafe { Arc::<T>::from_foreign(self.owner) });
    }
}

/// The C callbacks of a device driven by `T`.
struct Adapter<T: NetOps>(PhantomData<T>);

impl<T: NetOps> Adapter<T> {
    const OPS: bindings::rustic_netdev_ops = bindings::rustic_netdev_ops {
        open: Some(Self::open_cb),
        stop: Some(Self::stop_cb),
        xmit: Some(Self::xmit_cb),
        poll: Some(Self::poll_cb),
        poll_done: Some(Self::poll_done_cb),
        change_mtu: Some(Self::change_mtu_cb),
        set_channels: Some(Self::set_channels_cb),
        set_rx_mode: Some(Self::set_rx_mode_cb),
        set_lro: Some(Self::set_lro_cb),
    };

    /// The driver's state and the device of a callback.
    ///
    /// # Safety
    ///
    /// `owner` and `dev` must be what C passes to an op of a device made by
    /// [`NetDevice::new`] with these ops: its owner and itself, both alive
    /// until the op returns.
    unsafe fn parts<'a>(
        owner: *mut c_void,
        dev: *mut bindings::rustic_netdev,
    ) -> (ArcBorrow<'a, T>, &'a Net) {
        // SAFETY: the owner is `Arc::<T>::into_foreign`, released only after
        // the device is freed, when no op runs any more; the device is
        // alive during its own op (caller's guarantee).
        unsafe { (Arc::<T>::borrow(owner.cast_const()), Net::from_raw(dev)) }
    }

    /// # Safety
    ///
    /// Called by C as `ndo_open` of a device made with these ops.
    unsafe extern "C" fn open_cb(owner: *mut c_void, dev: *mut bindings::rustic_netdev) -> c_int {
        // SAFETY: C passes its device and owner (see `parts`).
        let (this, net) = unsafe { Self::parts(owner, dev) };
        match this.open_net(net) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by C as `ndo_stop` of a device made with these ops.
    unsafe extern "C" fn stop_cb(owner: *mut c_void, dev: *mut bindings::rustic_netdev) {
        // SAFETY: C passes its device and owner (see `parts`).
        let (this, net) = unsafe { Self::parts(owner, dev) };
        this.stop_net(net);
    }

    /// # Safety
    ///
    /// Called by C from `ndo_start_xmit` of a device made with these ops,
    /// with the skb being sent.
    unsafe extern "C" fn xmit_cb(
        owner: *mut c_void,
        dev: *mut bindings::rustic_netdev,
        queue: u16,
        skb: *mut bindings::sk_buff,
    ) -> c_int {
        // SAFETY: C passes its device and owner (see `parts`).
        let (this, net) = unsafe { Self::parts(owner, dev) };
        // SAFETY: C passes an skb it keeps, unchanged, until this returns.
        let skb = unsafe { Skb::from_raw(skb) };
        match this.xmit_net(net, queue, skb) {
            Tx::Sent => 0,
            // CAST: RUSTIC_TX_BUSY is 1.
            Tx::Busy => bindings::RUSTIC_TX_BUSY as c_int,
            Tx::Dropped => EIO.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by C as the NAPI poll of `queue` of a device made with these
    /// ops.
    unsafe extern "C" fn poll_cb(
        owner: *mut c_void,
        dev: *mut bindings::rustic_netdev,
        queue: u16,
        budget: c_int,
    ) -> c_int {
        // SAFETY: C passes its device and owner (see `parts`).
        let (this, net) = unsafe { Self::parts(owner, dev) };
        // C clamps the result to 0..=budget.
        this.poll_net(net, queue, budget)
    }

    /// # Safety
    ///
    /// Called by C after completing the NAPI poll of `queue`.
    unsafe extern "C" fn poll_done_cb(
        owner: *mut c_void,
        dev: *mut bindings::rustic_netdev,
        queue: u16,
    ) {
        // SAFETY: C passes its device and owner (see `parts`).
        let (this, net) = unsafe { Self::parts(owner, dev) };
        this.poll_done_net(net, queue);
    }

    /// # Safety
    ///
    /// Called by C as `ndo_change_mtu` of a device made with these ops.
    unsafe extern "C" fn change_mtu_cb(
        owner: *mut c_void,
        dev: *mut bindings::rustic_netdev,
        mtu: c_uint,
    ) -> c_int {
        // SAFETY: C passes its device and owner (see `parts`).
        let (this, net) = unsafe { Self::parts(owner, dev) };
        match this.change_mtu_net(net, mtu) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by C as ethtool's `set_channels` of a device made with these
    /// ops.
    unsafe extern "C" fn set_channels_cb(
        owner: *mut c_void,
        dev: *mut bindings::rustic_netdev,
        count: c_uint,
    ) -> c_int {
        // SAFETY: C passes its device and owner (see `parts`).
        let (this, net) = unsafe { Self::parts(owner, dev) };
        match this.set_channels_net(net, count) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by C as `ndo_set_rx_mode` of a device made with these ops.
    unsafe extern "C" fn set_rx_mode_cb(
        owner: *mut c_void,
        dev: *mut bindings::rustic_netdev,
        flags: c_uint,
    ) {
        // SAFETY: C passes its device and owner (see `parts`).
        let (this, _net) = unsafe { Self::parts(owner, dev) };
        this.set_rx_mode(flags);
    }

    /// # Safety
    ///
    /// Called by C as the LRO part of `ndo_set_features` of a device made
    /// with these ops.
    unsafe extern "C" fn set_lro_cb(owner: *mut c_void, dev: *mut bindings::rustic_netdev, on: bool) -> c_int {
        // SAFETY: C passes its device and owner (see `parts`).
        let (this, net) = unsafe { Self::parts(owner, dev) };
        match this.set_lro_net(net, on) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}
