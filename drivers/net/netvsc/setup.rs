// SPDX-License-Identifier: GPL-2.0
//! Attaching a NIC to the host: control requests (NVSP requests, RNDIS
//! queries and sets, each waiting for its answer), NVSP negotiation, the
//! shared receive and send buffers, RNDIS INITIALIZE, offloads, RSS, the
//! subchannels' set-up, and taking it all apart and again for an MTU
//! change.

use super::{
    encode, locked, new_sections, Attached, Awaited, Buffers, Link, Nic, QueueHandler, Sections, BOUNCES, CONTROL_TIMEOUT_MS,
    queue_limit, MAX_CHANNELS, RECV_BUFFER, RING, RNDIS_MAX_XFER, RNDIS_VERSION, SEND_BUFFER, SUBCHANNEL_TIMEOUT_MS, TID_CONTROL,
    TSO_MAX_SIZE,
};
use crate::vmbus::channel::{Channel, ChannelHandler};
use crate::rust::base::errno::ETIMEDOUT;
use crate::rust::base::cpu::{cpu_online, nr_cpu_ids};
use crate::rust::base::time::{msleep, now_ms};
use crate::rust::base::work::{Work, WorkFn};
use crate::rust::net::netdev::{Features, Net, NetOps};
use crate::drivers::net::proto::ndis::{
    self, oid, write_rss_params, OffloadCaps, OffloadParams, RssCaps, ITAB_NUM, MEDIA_STATE_CONNECTED,
};
use crate::drivers::net::proto::toeplitz;
use crate::drivers::net::proto::nvsp::{
    self, send_sections, Message as Nvsp, Negotiation, NdisConfig, RndisChannel, Sender, Step, Version,
};
use crate::drivers::net::proto::rndis::{self, status as rndis_status, Message as Rndis};
use crate::vmbus::device::{DeviceHandle, OpenChannel, SharedBuffer, SubchannelOpener};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, CondVarTimeoutResult, Mutex};
use kernel::{c_str, new_mutex};

impl Nic {
    /// Sends `message` (with `send`) and waits for the answer `awaited`;
    /// returns its bytes' length in `out`. A pending signal ends the wait
    /// with EINTR (not ERESTARTSYS: an rtnetlink request's error goes back
    /// in its answer, not as the syscall's), except while an MTU change
    /// puts the NIC back ([`Nic::restoring`]). The host may still answer
    /// an abandoned request: nothing awaits it then, so it is dropped.
    fn request(&self, awaited: Awaited, send: impl FnOnce(&Channel) -> Result, out: &mut [u8; 256]) -> Result<usize> {
        let _one = self.control_lock.lock();
        if self.host_silent.load(Ordering::Relaxed) {
            return Err(ETIMEDOUT());
        }
        let channel = self.channel().ok_or(ENODEV)?;
        locked(&self.control, |c| {
            c.awaited = awaited;
            c.done = false;
            c.len = 0;
        });
        if let Err(e) = send(&channel) {
            locked(&self.control, |c| c.awaited = Awaited::None);
            return Err(e);
        }
        let deadline = now_ms().saturating_add(CONTROL_TIMEOUT_MS);
        let mut interrupted = false;
        loop {
            let answer = locked(&self.control, |c| {
                if c.done {
                    c.awaited = Awaited::None;
                    out.copy_from_slice(&c.answer);
                    Some(Ok(c.len))
                } else if interrupted {
                    c.awaited = Awaited::None;
                    Some(Err(EINTR))
                } else {
                    None
                }
            });
            if let Some(result) = answer {
                return result;
            }
            if now_ms() > deadline {
                locked(&self.control, |c| c.awaited = Awaited::None);
                pr_err!("netvsc: relid {}: the host did not answer a control request in {} ms\n", self.relid, CONTROL_TIMEOUT_MS);
                if self.changing_mtu.load(Ordering::Relaxed) {
                    self.host_silent.store(true, Ordering::Relaxed);
                }
                return Err(ETIMEDOUT());
            }
            // Woken by the answer; the timeout only bounds a missed wake-up.
            let mut guard = self.control_sleep.lock();
            if !locked(&self.control, |c| c.done) {
                let waited = self.control_wake.wait_interruptible_timeout(&mut guard, kernel::time::msecs_to_jiffies(20));
                if matches!(waited, CondVarTimeoutResult::Signal { .. }) {
                    if self.restoring.load(Ordering::Relaxed) {
                        // The wait returns at once: pace the loop instead.
                        drop(guard);
                        msleep(2);
                    } else {
                        interrupted = true;
                    }
                }
            }
        }
    }

    /// Hands a control answer to the waiting request, if it is the one
    /// awaited.
    pub(super) fn answer(&self, kind: Awaited, bytes: &[u8]) -> bool {
        let taken = locked(&self.control, |c| {
            if c.awaited != kind || c.done {
                return false;
            }
            let n = bytes.len().min(c.answer.len());
            if let (Some(dst), Some(src)) = (c.answer.get_mut(..n), bytes.get(..n)) {
                dst.copy_from_slice(src);
            }
            c.len = n;
            c.done = true;
            true
        });
        if taken {
            self.control_wake.notify_all();
        }
        taken
    }
}

impl Nic {
    /// Sends an NVSP message that needs no answer.
    fn send_nvsp(&self, message: &Nvsp) -> Result {
        let message = encode(message)?;
        let channel = self.channel().ok_or(ENODEV)?;
        channel.send_inband(0, false, &[message.bytes()], CONTROL_TIMEOUT_MS as u32)
    }

    /// Sends an NVSP request and returns the host's completion, parsed.
    fn nvsp_request(&self, message: &Nvsp) -> Result<Nvsp> {
        let message = encode(message)?;
        let mut answer = [0u8; 256];
        let len = self.request(
            Awaited::Nvsp,
            |c| c.send_inband(TID_CONTROL, true, &[message.bytes()], CONTROL_TIMEOUT_MS as u32),
            &mut answer,
        )?;
        let version = Version::from_raw(self.version.load(Ordering::Relaxed));
        Nvsp::parse(answer.get(..len).unwrap_or(&[]), Sender::Host, version).map_err(|_| {
            self.host_error("malformed NVSP completion");
            EIO
        })
    }

    /// Sends an RNDIS control message (built by `build` with the request
    /// id) through a send-buffer section; returns the answer's bytes.
    fn rndis_request(&self, build: impl FnOnce(u32, &mut [u8]) -> Result<usize>, answer: &mut [u8; 256]) -> Result<usize> {
        let req_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        // Big enough for the largest, RSS parameters with their table.
        let mut message = KVec::from_elem(0u8, 1024, GFP_KERNEL)?;
        let len = build(req_id, &mut message)?;
        let (section, tid) = self.stage(message.get(..len).unwrap_or(&[]))?;
        // The section is the host's once announced; until then it is ours
        // to free, also when the request fails before it sends (no
        // channel).
        let mut announced = false;
        let sent = self.request(
            Awaited::Rndis(req_id),
            |c| {
                let r = Self::announce(c, RndisChannel::Control, section, len, tid, CONTROL_TIMEOUT_MS as u32);
                announced = r.is_ok();
                r
            },
            answer,
        );
        if !announced {
            self.free_section(section);
        }
        sent
    }

    /// RNDIS QUERY of `oid`; copies the answer's information into `info`
    /// and returns its length.
    fn query(&self, oid: u32, info: &mut [u8]) -> Result<usize> {
        self.query_with(oid, &[], info)
    }

    /// RNDIS QUERY of `oid` with `request` as the query's information
    /// buffer; as [`Self::query`]. `EIO` if the host says no.
    fn query_with(&self, oid: u32, request: &[u8], info: &mut [u8]) -> Result<usize> {
        let mut answer = [0u8; 256];
        let len = self.rndis_request(
            |req_id, out| {
                Rndis::Query(rndis::Request { req_id, oid, info: request }).write(out).map_err(|_| EINVAL)
            },
            &mut answer,
        )?;
        match Rndis::parse(answer.get(..len).unwrap_or(&[])) {
            Ok(Rndis::QueryComplete(q)) if q.status == rndis_status::SUCCESS => {
                let n = q.info.len().min(info.len());
                info.get_mut(..n).ok_or(EINVAL)?.copy_from_slice(q.info.get(..n).unwrap_or(&[]));
                Ok(n)
            }
            Ok(Rndis::QueryComplete(_)) => Err(EIO),
            _ => {
                self.host_error("bad answer to an RNDIS query");
                Err(EIO)
            }
        }
    }

    /// RNDIS SET of `oid` to `info`.
    fn set(&self, oid: u32, info: &[u8]) -> Result {
        let mut answer = [0u8; 256];
        let len = self.rndis_request(
            |req_id, out| Rndis::Set(rndis::Request { req_id, oid, info }).write(out).map_err(|_| EINVAL),
            &mut answer,
        )?;
        match Rndis::parse(answer.get(..len).unwrap_or(&[])) {
            Ok(Rndis::SetComplete { status, .. }) if status == rndis_status::SUCCESS => Ok(()),
            Ok(Rndis::SetComplete { .. }) => Err(EIO),
            _ => {
                self.host_error("bad answer to an RNDIS set");
                Err(EIO)
            }
        }
    }

    pub(super) fn set_filter(&self, bits: u32) -> Result {
        self.set(oid::GEN_CURRENT_PACKET_FILTER, &bits.to_le_bytes())
    }
}

impl Nic {
    /// RNDIS QUERY of the host's offloads, then SET of the ones this
    /// driver uses; the device features they give, and the largest TSO
    /// frame. A host that offers none gets plain frames.
    fn offloads(&self, version: Version) -> Result<(Features, u32)> {
        let base = Features::RX_CSUM | Features::SG | Features::VLAN_TX | Features::VLAN_RX | Features::RXHASH;
        let mut query = [0u8; ndis::OFFLOAD_SIZE];
        let n = OffloadCaps::write_query(&mut query, version).map_err(|_| EINVAL)?;
        let mut info = [0u8; ndis::OFFLOAD_SIZE];
        let caps = match self.query_with(oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, query.get(..n).unwrap_or(&[]), &mut info) {
            Ok(len) => OffloadCaps::parse(info.get(..len).unwrap_or(&[])).map_err(|_| {
                self.host_error("malformed offload capabilities");
                EIO
            })?,
            Err(e) if e == EIO => return Ok((base, 0)),
            Err(e) => return Err(e),
        };
        let mut params = OffloadParams::default();
        let mut features = base;
        if caps.tx_tcp4() && caps.tx_tcp6() {
            params.tcp_ip_v4_csum = ndis::offload::TX_RX_ENABLED;
            params.tcp_ip_v6_csum = ndis::offload::TX_RX_ENABLED;
            features = features | Features::TX_CSUM;
            if caps.tx_udp4() && caps.tx_udp6() && version.has_udp_checksum_offload() {
                params.udp_ip_v4_csum = ndis::offload::TX_RX_ENABLED;
                params.udp_ip_v6_csum = ndis::offload::TX_RX_ENABLED;
                self.udp_csum.store(true, Ordering::Relaxed);
            }
        }
        if caps.rsc() && version.has_rsc() {
            params.rsc_ip_v4 = ndis::offload::ENABLED;
            params.rsc_ip_v6 = ndis::offload::ENABLED;
            features = features | Features::LRO;
        }
        let mut tso_max = 0;
        if let (Some(max4), Some(max6), true) = (caps.lso4(), caps.lso6(), features.contains(Features::TX_CSUM)) {
            params.lso_v2_ipv4 = ndis::offload::ENABLED;
            params.lso_v2_ipv6 = ndis::offload::ENABLED;
            features = features | Features::TSO;
            tso_max = max4.min(max6).min(TSO_MAX_SIZE);
        }
        self.set_offloads(&params, version)?;
        Ok((features, tso_max))
    }

    /// RNDIS SET of the offload parameters (fields left 0 stay as they
    /// are at the host).
    pub(super) fn set_offloads(&self, params: &OffloadParams, version: Version) -> Result {
        let mut set = [0u8; 64];
        let n = params.write(&mut set, version).map_err(|_| EINVAL)?;
        self.set(oid::TCP_OFFLOAD_PARAMETERS, set.get(..n).unwrap_or(&[]))
    }

    /// Asks the host for subchannels (NVSP 5 and newer, RSS offered), one
    /// per online CPU up to the host's receive queues, and opens those it
    /// allocates as queues 1 and up. Returns the subchannels; none is not
    /// an error.
    fn open_subchannels(
        self: &Arc<Self>,
        opener: &SubchannelOpener,
        version: Version,
        give_up: &dyn Fn() -> bool,
    ) -> Result<KVec<OpenChannel>> {
        let none = KVec::new();
        if !version.has_subchannels() {
            return Ok(none);
        }
        let mut query = [0u8; 64];
        let n = RssCaps { header: RssCaps::QUERY_HEADER, ..Default::default() }.write(&mut query).map_err(|_| EINVAL)?;
        let mut info = [0u8; 64];
        let caps = match self.query_with(oid::GEN_RECEIVE_SCALE_CAPABILITIES, query.get(..n).unwrap_or(&[]), &mut info) {
            Ok(len) => RssCaps::parse(info.get(..len).unwrap_or(&[])).map_err(|_| {
                self.host_error("malformed RSS capabilities");
                EIO
            })?,
            // No RSS: one channel.
            Err(e) if e == EIO => return Ok(none),
            Err(e) => return Err(e),
        };
        let cpus = (0..nr_cpu_ids()).filter(|&c| cpu_online(c)).count() as u32;
        let want = caps.num_recv_que.min(cpus).min(queue_limit() as u32);
        if want < 2 {
            return Ok(none);
        }
        let answer = self.nvsp_request(&Nvsp::SubchannelRequest { num_subchannels: want - 1 })?;
        let allocated = match answer {
            Nvsp::SubchannelComplete { status, num_subchannels } if status == nvsp::status::SUCCESS => {
                num_subchannels.min(want - 1)
            }
            _ => {
                pr_err!("netvsc: relid {}: the host allocated no subchannels; one queue\n", self.relid);
                return Ok(none);
            }
        };
        if allocated == 0 {
            return Ok(none);
        }
        let handler = |i: usize| -> Result<Arc<dyn ChannelHandler>> {
            let queue = u16::try_from(i + 1).map_err(|_| EINVAL)?;
            Ok(Arc::new(QueueHandler { nic: self.clone(), queue }, GFP_KERNEL)?)
        };
        let subs = opener.open(allocated as usize, RING, RING, &handler, SUBCHANNEL_TIMEOUT_MS, give_up)?;
        locked(&self.channels, |c| {
            for (slot, sub) in c.iter_mut().skip(1).zip(subs.iter()) {
                *slot = Some(sub.channel().clone());
            }
        });
        self.opened.store((subs.len() + 1).min(MAX_CHANNELS) as u32, Ordering::Relaxed);
        Ok(subs)
    }

    /// RSS over the first `queues` channels: the default Toeplitz key, the
    /// indirection table round-robin.
    pub(super) fn set_rss(&self, queues: u16) -> Result {
        let mut table = [0u32; ITAB_NUM];
        for (i, entry) in table.iter_mut().enumerate() {
            *entry = (i as u32).checked_rem(u32::from(queues)).ok_or(EINVAL)?;
        }
        let mut params = KVec::from_elem(0u8, 1024, GFP_KERNEL)?;
        let n = write_rss_params(&mut params, 0, ndis::hash::GUEST_DEFAULT, &table, &toeplitz::DEFAULT_KEY)
            .map_err(|_| EINVAL)?;
        self.set(oid::GEN_RECEIVE_SCALE_PARAMETERS, params.get(..n).unwrap_or(&[]))
    }

    /// NVSP version negotiation, newest first.
    fn negotiate(&self) -> Result<Version> {
        let (mut negotiation, mut step) = Negotiation::start(false);
        loop {
            match step {
                Step::Propose(message) => {
                    if let Some(v) = negotiation.proposed() {
                        self.version.store(v.raw(), Ordering::Relaxed);
                    }
                    let answer = self.nvsp_request(&message)?;
                    let Nvsp::InitComplete(c) = answer else {
                        self.host_error("answer to INIT is not INIT_COMPLETE");
                        return Err(EIO);
                    };
                    step = negotiation.on_init_complete(&c);
                }
                Step::Done(v) => {
                    self.version.store(v.raw(), Ordering::Relaxed);
                    return Ok(v);
                }
                Step::Failed => {
                    pr_err!("netvsc: relid {}: the host accepts no NVSP version this driver speaks\n", self.relid);
                    return Err(ENODEV);
                }
            }
        }
    }

    /// Shares the receive and send buffers and tells the host.
    fn share_buffers(&self, device: &DeviceHandle) -> Result {
        let recv = device.share_buffer(RECV_BUFFER)?;
        let answer = self.nvsp_request(&Nvsp::SendReceiveBuffer { gpadl: recv.handle(), id: nvsp::RECEIVE_BUFFER_ID })?;
        match answer {
            Nvsp::SendReceiveBufferComplete(c) if c.status == nvsp::status::SUCCESS => {
                let (section, _) = c.slots(RECV_BUFFER as u32).map_err(|_| {
                    self.host_error("receive buffer sections outside the buffer");
                    EIO
                })?;
                self.rx_section.store(section, Ordering::Relaxed);
            }
            _ => {
                pr_err!("netvsc: relid {}: the host refused the receive buffer\n", self.relid);
                return Err(EIO);
            }
        }
        // From here the host uses the receive buffer: revoked if the rest
        // fails, before it goes.
        let shared = self.share_send_buffer(device);
        let (send, section_size, sections) = shared.inspect_err(|_| self.revoke(true, false))?;
        locked(&self.buffers, |b| *b = Some(Buffers { recv, send }));
        self.section_size.store(section_size, Ordering::Relaxed);
        locked(&self.sections, |s| *s = Some(sections));
        Ok(())
    }

    /// Shares the send buffer and tells the host; the buffer, the host's
    /// section size and the sections' bookkeeping.
    fn share_send_buffer(&self, device: &DeviceHandle) -> Result<(SharedBuffer, u32, Arc<Sections>)> {
        let send = device.share_buffer(SEND_BUFFER)?;
        let answer = self.nvsp_request(&Nvsp::SendSendBuffer { gpadl: send.handle(), id: nvsp::SEND_BUFFER_ID })?;
        let (section_size, count) = match answer {
            Nvsp::SendSendBufferComplete { status, section_size } => {
                send_sections(status, section_size, SEND_BUFFER as u32).map_err(|_| {
                    pr_err!("netvsc: relid {}: the host refused the send buffer\n", self.relid);
                    EIO
                })?
            }
            _ => {
                self.host_error("answer to SEND_SEND_BUF is not its completion");
                return Err(EIO);
            }
        };
        let sections = Arc::new(new_sections(count)?, GFP_KERNEL)?;
        Ok((send, section_size, sections))
    }

    /// RNDIS INITIALIZE.
    fn rndis_init(&self) -> Result {
        let mut answer = [0u8; 256];
        let len = self.rndis_request(
            |req_id, out| {
                Rndis::Initialize(rndis::InitRequest {
                    req_id,
                    major: RNDIS_VERSION.0,
                    minor: RNDIS_VERSION.1,
                    max_xfer_size: RNDIS_MAX_XFER,
                })
                .write(out)
                .map_err(|_| EINVAL)
            },
            &mut answer,
        )?;
        match Rndis::parse(answer.get(..len).unwrap_or(&[])) {
            Ok(Rndis::InitializeComplete(c)) if c.status == rndis_status::SUCCESS => Ok(()),
            _ => {
                pr_err!("netvsc: relid {}: RNDIS INITIALIZE failed\n", self.relid);
                Err(EIO)
            }
        }
    }

    fn query_u32(&self, oid: u32) -> Result<u32> {
        let mut info = [0u8; 4];
        match self.query(oid, &mut info)? {
            4 => Ok(u32::from_le_bytes(info)),
            _ => Err(EIO),
        }
    }
}

/// Sets a NIC's subchannels up once probe has returned, since the host's
/// offers come through the context that runs probe (as the C driver's
/// subchannel work does): asks for them, opens them, then uses them as
/// queues and spreads receives over them with RSS.
#[pin_data]
pub(super) struct SubchannelSetup {
    nic: Arc<Nic>,
    opener: SubchannelOpener,
    /// Set when the channels go: the setup stops waiting for offers.
    pub(super) cancelled: AtomicBool,
    /// Set when a run has finished (it takes rtnl until then).
    pub(super) done: AtomicBool,
    /// The subchannels opened, closed before the primary.
    #[pin]
    opened: Mutex<KVec<OpenChannel>>,
}

impl SubchannelSetup {
    fn run(&self) -> Result<u16> {
        let give_up = || self.cancelled.load(Ordering::Relaxed);
        let version = Version::from_raw(self.nic.version.load(Ordering::Relaxed)).ok_or(ENODEV)?;
        let subs = self.nic.open_subchannels(&self.opener, version, &give_up)?;
        if subs.is_empty() {
            return Ok(1);
        }
        *self.opened.lock() = subs;
        let channels = self.nic.opened.load(Ordering::Relaxed) as u16;
        let net = locked(&self.nic.dev, |d| d.clone()).ok_or(ENODEV)?;
        net.set_max_channels(channels);
        // Queues before RSS, so that nothing arrives on a queue the stack
        // does not use yet.
        net.set_queues(channels)?;
        self.nic.set_rss(channels)?;
        Ok(channels)
    }
}

impl WorkFn for SubchannelSetup {
    fn work(this: ArcBorrow<'_, Self>) {
        let result = this.run();
        this.done.store(true, Ordering::Release);
        match result {
            Ok(1) => {}
            Ok(n) => pr_info!("netvsc: relid {}: {} queues\n", this.nic.relid, n),
            Err(e) if this.cancelled.load(Ordering::Relaxed) => {
                pr_info!("netvsc: relid {}: subchannel setup stopped: {:?}\n", this.nic.relid, e)
            }
            Err(e) => pr_err!("netvsc: relid {}: subchannel setup failed ({:?}); one queue\n", this.nic.relid, e),
        }
    }
}

impl Nic {
    /// Opens the primary channel on `device` and brings the NIC up on it
    /// for an interface MTU of `mtu`: NVSP version, NDIS config and
    /// version, the buffers, RNDIS INITIALIZE, the address, link state,
    /// speed and offloads. On failure [`Nic::release`] undoes what was
    /// done.
    pub(super) fn attach(self: &Arc<Self>, device: &DeviceHandle, link: &mut Link, mtu: u32) -> Result<Attached> {
        let open = device.open_channel(RING, RING, Arc::new(QueueHandler { nic: self.clone(), queue: 0 }, GFP_KERNEL)?)?;
        locked(&self.channels, |c| {
            if let Some(slot) = c.get_mut(0) {
                *slot = Some(open.channel().clone());
            }
        });
        self.opened.store(1, Ordering::Relaxed);
        link.open = Some(open);

        let version = self.negotiate()?;
        if version.has_ndis_config() {
            self.send_nvsp(&Nvsp::SendNdisConfig(NdisConfig::for_guest(version, mtu, false)))?;
        }
        let (major, minor) = version.ndis_version();
        self.send_nvsp(&Nvsp::SendNdisVersion { major, minor })?;
        self.share_buffers(device)?;
        self.rndis_init()?;
        let mut mac = [0u8; 6];
        if self.query(oid::P802_3_PERMANENT_ADDRESS, &mut mac)? != 6 {
            pr_err!("netvsc: relid {}: the host gave no permanent address\n", self.relid);
            return Err(EIO);
        }
        let media = self.query_u32(oid::GEN_MEDIA_CONNECT_STATUS).unwrap_or(MEDIA_STATE_CONNECTED);
        self.link_up.store(media == MEDIA_STATE_CONNECTED, Ordering::Relaxed);
        let speed = self.query_u32(oid::GEN_LINK_SPEED).unwrap_or(0);
        let (features, tso_max) = self.offloads(version)?;
        Ok(Attached { version, mac, speed, features, tso_max })
    }

    /// Closes the channels, the subchannels' setup and the subchannels
    /// first, and takes the buffers back after them: what
    /// [`Nic::attach`] and the setup made. What was in flight goes with
    /// the channel.
    /// The subchannel setup must not be running (remove cancelled it; an
    /// MTU change waits for it to be done).
    pub(super) fn release(&self, link: &mut Link) {
        if locked(&self.buffers, |b| b.is_some()) {
            self.revoke(true, true);
        }
        locked(&self.channels, |c| c.iter_mut().for_each(|s| *s = None));
        self.opened.store(0, Ordering::Relaxed);
        if let Some(setup) = link.setup.as_ref() {
            setup.cancelled.store(true, Ordering::Relaxed);
            let subchannels = core::mem::take(&mut *setup.opened.lock());
            drop(subchannels);
        }
        drop(link.open.take());
        self.section_size.store(0, Ordering::Relaxed);
        self.rx_section.store(0, Ordering::Relaxed);
        locked(&self.sections, |s| *s = None);
        let buffers = locked(&self.buffers, |b| b.take());
        drop(buffers);
        for slot in 0..BOUNCES {
            self.tx_held.release(slot as usize);
            self.bounces_used.free(slot);
        }
        locked(&self.pending, |p| p.iter_mut().for_each(|p| p.len = 0));
    }

    /// Tells the host to stop using the receive and (if `send`) the send
    /// buffer: NVSP REVOKE_RECV_BUF and REVOKE_SEND_BUF, on the primary
    /// channel while it is open, before the buffers' GPADLs are torn down,
    /// as the C driver does. They have no answer; a full ring or a closed
    /// (rescinded) channel is not waited for: the teardown follows anyway.
    fn revoke(&self, recv: bool, send: bool) {
        let Some(channel) = self.channel() else { return };
        let messages = [
            (recv, Nvsp::RevokeReceiveBuffer { id: nvsp::RECEIVE_BUFFER_ID }),
            (send, Nvsp::RevokeSendBuffer { id: nvsp::SEND_BUFFER_ID }),
        ];
        for (_, message) in messages.iter().filter(|(wanted, _)| *wanted) {
            let sent = encode(message).and_then(|m| channel.send_inband(0, false, &[m.bytes()], 0));
            if let Err(e) = sent {
                pr_err!("netvsc: relid {}: revoking a buffer failed ({:?}); tearing it down anyway\n", self.relid, e);
            }
        }
    }

    /// Sets the subchannels up after probe or a re-initialisation, in a
    /// work item (NVSP 5 and newer).
    pub(super) fn start_subchannels(self: &Arc<Self>, link: &mut Link, version: Version) -> Result {
        if !version.has_subchannels() {
            return Ok(());
        }
        if link.setup_work.is_none() {
            let opener = link.open.as_ref().ok_or(ENODEV)?.subchannel_opener();
            let setup = Arc::pin_init(
                pin_init!(SubchannelSetup {
                    nic: self.clone(),
                    opener,
                    cancelled: AtomicBool::new(false),
                    done: AtomicBool::new(false),
                    opened <- new_mutex!(KVec::new(), "netvsc_subchannels"),
                }),
                GFP_KERNEL,
            )?;
            // Its own lockdep class: remove cancels it under the bus's
            // device lock, which the bus's offer work takes.
            let work = Work::new_in_class(setup.clone(), kernel::static_lock_class!(), c_str!("netvsc_subchannel_setup"))?;
            link.setup = Some(setup);
            link.setup_work = Some(work);
        }
        // The opener stays valid: it opens the subchannels of the device,
        // whichever time its primary channel was opened.
        if let (Some(setup), Some(work)) = (link.setup.as_ref(), link.setup_work.as_ref()) {
            setup.cancelled.store(false, Ordering::Relaxed);
            setup.done.store(false, Ordering::Relaxed);
            work.queue_on(u32::MAX);
        }
        Ok(())
    }

    /// Takes the NIC apart and sets it up again for an interface MTU of
    /// `mtu` (rtnl held): the interface is detached meanwhile, its NAPI
    /// stopped; its features and address stay as they are, and it keeps
    /// one queue until the subchannels are back.
    pub(super) fn reinit(self: &Arc<Self>, net: &Net, device: &DeviceHandle, link: &mut Link, mtu: u32) -> Result {
        net.detach();
        let running = net.is_running();
        if running {
            match self.set_filter(0) {
                // A host that does not answer would not answer the many
                // requests of setting the NIC up again either, each waited
                // for under rtnl: the change ends here, nothing taken
                // apart yet.
                Err(e) if self.host_silent.load(Ordering::Relaxed) => {
                    net.attach();
                    return Err(e);
                }
                // Going on regardless (a pending signal, say).
                _ => {}
            }
        }
        for queue in 0..MAX_CHANNELS as u16 {
            net.napi_disable(queue);
        }
        self.release(link);
        net.set_max_channels(1);
        net.set_queues(1)?;
        for queue in 0..MAX_CHANNELS as u16 {
            net.napi_enable(queue);
        }
        let attached = self.attach(device, link, mtu).inspect_err(|_| self.release(link))?;
        if !self.lro_wanted.load(Ordering::Relaxed) && attached.features.contains(Features::LRO) {
            self.set_lro_net(net, false)?;
        }
        if running {
            self.open_net(net)?;
        }
        net.attach();
        self.start_subchannels(link, attached.version)?;
        pr_info!("netvsc: relid {}: set up again for MTU {}\n", self.relid, mtu);
        Ok(())
    }
}
