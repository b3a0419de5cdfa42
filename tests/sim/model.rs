// SPDX-License-Identifier: GPL-2.0
//! The one interface between the simulated host and its device models,
//! and the machinery of their registry (`devices.rs`, one line per model):
//!
//! - [`Device`]: a device the host can offer: its name (for
//!   `sim_devices=` and the `offer`/`rescind` commands), its class, the
//!   facts of its OFFERCHANNEL and whether it is in the `default` set;
//! - [`DeviceModel`]: what a simulated device class implements: its
//!   devices, its debugfs counters and commands, the state its channels
//!   share, and the model of each channel the guest opens
//!   ([`ChannelModel`], with a [`ChannelHook`] where something outside the
//!   channel kicks it), and the faults it can inject, as `sim` commands
//!   chaos draws from (`crate::testing::sim::chaos`);
//! - [`Registration`]: a line of the registry; [`Models`]: the registry's
//!   models started for one simulated host, and the order the host offers
//!   their devices in: the `default` set first, then the others, each in
//!   registry order.
//!
//! The host itself knows no device class: it offers what the registry
//! lists and hands each opened channel to the model of its device.

use crate::rust::base::work::Work;
use crate::testing::sim::chaos::ChaosFault;
use crate::testing::sim::devices::MODELS;
use crate::testing::sim::host::GpadlMaps;
use crate::testing::sim::hypervisor::HostRequests;
use crate::testing::sim::vsp::{HostChannel, Outbox};
use crate::vmbus_core::guid::Guid;
use crate::vmbus_core::ring::PacketInfo;
use core::pin::Pin;
use core::sync::atomic::AtomicU64;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, UniqueArc};

/// A device the host can offer.
#[derive(Clone, Copy)]
pub(crate) struct Device {
    /// Its name in `sim_devices=` and the `offer`/`rescind` commands.
    pub(crate) name: &'static str,
    /// Its class (from `crate::vmbus_core::guid::class`).
    pub(crate) class: Guid,
    pub(crate) instance: Guid,
    pub(crate) relid: u32,
    pub(crate) monitor_id: Option<u8>,
    /// Offered by `sim_devices=default`.
    pub(crate) default: bool,
}

impl Device {
    /// Device `n` of a numbered series of simulated devices that are not
    /// in the `default` set, tagged `tag`: named `name`, relid `relid`,
    /// instance GUID `5151TTNN-00TT-4e7e-8a11-00155d00TTNN` (`TT` the tag,
    /// `NN` the number).
    pub(crate) const fn numbered(name: &'static str, class: Guid, tag: u8, relid: u32, n: u8) -> Device {
        let instance = Guid::from_fields(
            0x5151_0000 | ((tag as u32) << 8) | n as u32,
            tag as u16,
            0x4e7e,
            [0x8a, 0x11, 0x00, 0x15, 0x5d, 0x00, tag, n],
        );
        Device { name, class, instance, relid, monitor_id: None, default: false }
    }
}

/// A counter under /sys/kernel/debug/hv_rustic/, by its name.
pub(crate) type Counter = (&'static CStr, &'static AtomicU64);

/// A channel the guest opened, as its model is told of it.
pub(crate) struct Opening<'a> {
    /// The device (a subchannel's is its primary's).
    pub(crate) device: &'static Device,
    /// The channel's relid.
    pub(crate) relid: u32,
    /// 0 for the primary channel, else the subchannel's index.
    pub(crate) index: u16,
    /// The GPADLs the host has mapped, for buffers beyond the rings.
    pub(crate) maps: &'a Arc<GpadlMaps>,
    /// What the model may ask of the host's control plane (subchannels).
    pub(crate) requests: &'a Arc<HostRequests>,
}

/// The device model behind one open channel. The host's work for the
/// channel calls it, one call at a time, under the channel's lock.
///
/// (`Sync` and `Unpin` because the host keeps it in a reference-counted
/// allocation it alone holds: see [`Served::new`].)
pub(crate) trait ChannelModel: Send + Sync + Unpin {
    /// Takes one guest packet (`bytes` is the whole packet); what the host
    /// answers goes to `out`.
    fn packet(&mut self, info: &PacketInfo, bytes: &[u8], out: &mut Outbox);

    /// Packets the device has for the guest unasked (received frames,
    /// indications), put in `out` as room allows; returns whether more
    /// are waiting.
    fn pending(&mut self, _out: &mut Outbox) -> bool {
        false
    }
}

/// What sends an open channel work from outside it (a NIC's switch port
/// kicks the channel when a frame arrives for it). The host calls it
/// without the channel's lock.
pub(crate) trait ChannelHook: Send + Sync {
    /// The channel is served from now on by `work` (queue it when the
    /// model has something for the guest unasked).
    fn serving(&self, work: Arc<Work<HostChannel>>);

    /// The channel closed, or its opening failed after the model made it:
    /// stop kicking it.
    fn closed(&self);
}

/// How a model serves an opened channel.
pub(crate) struct Served {
    pub(crate) model: Pin<UniqueArc<dyn ChannelModel>>,
    pub(crate) hook: Option<Arc<dyn ChannelHook>>,
}

impl Served {
    /// The channel is served by `model` (and told to `hook`).
    pub(crate) fn new(model: impl ChannelModel + 'static, hook: Option<Arc<dyn ChannelHook>>) -> Result<Self> {
        // The kernel's `Arc`, unlike its `Box`, coerces to a trait object;
        // a new one is its only reference, so it comes back unique.
        let shared: Arc<dyn ChannelModel> = Arc::new(model, GFP_KERNEL)?;
        let model = shared.into_unique_or_drop().ok_or(ENOMEM)?;
        Ok(Served { model, hook })
    }
}

/// A simulated device class (or family of classes, like the integration
/// services): what the registry lists.
pub(crate) trait DeviceModel: Send + Sync {
    /// The devices the host can offer, in the order it offers them.
    fn devices() -> &'static [Device]
    where
        Self: Sized;

    /// Its counters, by their debugfs names (`sim_*`), registered at load.
    fn counters() -> &'static [Counter]
    where
        Self: Sized,
    {
        &[]
    }

    /// The faults it can inject into one of its devices, as `sim`
    /// commands: chaos draws from them (with the control plane's and the
    /// rings') while it runs on one of the model's devices.
    fn faults() -> &'static [ChaosFault]
    where
        Self: Sized,
    {
        &[]
    }

    /// The model for one simulated host, made when the simulator starts;
    /// it owns what its channels share.
    fn new() -> Result<Self>
    where
        Self: Sized;

    /// A debugfs `sim` command, as its words: `None` if it is not this
    /// model's, else its result.
    fn command(&self, _words: &[&str]) -> Option<Result> {
        None
    }

    /// The debugfs `clear` command: disarms the model's faults.
    fn clear(&self) {}

    /// Serves a channel the guest opened on one of this model's devices.
    fn open(&self, channel: &Opening<'_>) -> Result<Served>;
}

/// A line of the registry: a model and its static facts.
pub(crate) struct Registration {
    devices: fn() -> &'static [Device],
    counters: fn() -> &'static [Counter],
    faults: fn() -> &'static [ChaosFault],
    start: fn() -> Result<Arc<dyn DeviceModel>>,
}

impl Registration {
    /// The registration of model `M`.
    pub(crate) const fn of<M: DeviceModel + 'static>() -> Self {
        Registration { devices: M::devices, counters: M::counters, faults: M::faults, start: start::<M> }
    }
}

fn start<M: DeviceModel + 'static>() -> Result<Arc<dyn DeviceModel>> {
    Ok(Arc::new(M::new()?, GFP_KERNEL)?)
}

/// Every device of `registry` in offer order (the `default` set first,
/// then the others, each in registry order), with its model's position.
fn in_offer_order(registry: &'static [Registration]) -> impl Iterator<Item = (usize, &'static Device)> {
    let of = move |default: bool| {
        registry
            .iter()
            .enumerate()
            .flat_map(move |(m, r)| (r.devices)().iter().filter(move |d| d.default == default).map(move |d| (m, d)))
    };
    Iterator::chain(of(true), of(false))
}

/// Every registered model's counters.
pub(crate) fn counters() -> impl Iterator<Item = &'static Counter> {
    MODELS.iter().flat_map(|r| (r.counters)().iter())
}

/// The faults of the model of the device named `name` (none for a name
/// no model has).
pub(crate) fn faults_of(name: &[u8]) -> &'static [ChaosFault] {
    MODELS
        .iter()
        .find(|r| (r.devices)().iter().any(|d| d.name.as_bytes() == name))
        .map_or(&[], |r| (r.faults)())
}

/// The registered device named `name`.
pub(crate) fn device(name: &[u8]) -> Option<&'static Device> {
    in_offer_order(&MODELS).map(|(_, d)| d).find(|d| d.name.as_bytes() == name)
}

/// The registry's models, started for one simulated host.
pub(crate) struct Models {
    registry: &'static [Registration],
    /// `registry`'s models, in its order.
    started: KVec<Arc<dyn DeviceModel>>,
}

impl Models {
    /// Starts every model of `registry`; fails if two devices share a
    /// name or a relid.
    pub(crate) fn start(registry: &'static [Registration]) -> Result<Self> {
        let mut started = KVec::with_capacity(registry.len(), GFP_KERNEL)?;
        for r in registry {
            started.push((r.start)()?, GFP_KERNEL)?;
        }
        for (i, (_, a)) in in_offer_order(registry).enumerate() {
            if in_offer_order(registry).take(i).any(|(_, b)| a.name == b.name || a.relid == b.relid) {
                pr_err!("sim: two simulated devices share the name {} or the relid {}\n", a.name, a.relid);
                return Err(EINVAL);
            }
        }
        Ok(Models { registry, started })
    }

    /// Every device with its model, in offer order.
    pub(crate) fn devices(&self) -> impl Iterator<Item = (&Arc<dyn DeviceModel>, &'static Device)> + '_ {
        in_offer_order(self.registry).filter_map(|(m, d)| Some((self.started.get(m)?, d)))
    }

    /// A debugfs `sim` command (its words) for the first model that takes
    /// it; `EINVAL` if none does.
    pub(crate) fn command(&self, words: &[&str]) -> Result {
        self.started.iter().find_map(|m| m.command(words)).unwrap_or(Err(EINVAL))
    }

    /// debugfs `clear`: every model disarms its faults.
    pub(crate) fn clear(&self) {
        for m in self.started.iter() {
            m.clear();
        }
    }
}
