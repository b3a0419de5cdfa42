// SPDX-License-Identifier: GPL-2.0
//! Receive (NAPI): the packets of a queue's channel, transfer-page
//! packets naming RNDIS messages in the receive buffer, their parsing into
//! frames, status indications and control answers, and the completions
//! that give the host its receive slots back.

use super::{encode, locked, Awaited, Nic, RscFrame, ETH_HLEN, MAX_RECEIVE, RX_HEAD};
use crate::rust::base::work::BhOff;
use crate::vmbus::channel::Channel;
use crate::rust::net::netdev::{Net, RxFrame, RxMeta};
use crate::drivers::net::proto::nvsp::{self, Message as Nvsp, Sender, Version};
use crate::drivers::net::proto::ppi::{ChecksumInfo, PktInfoId, RxInfo};
use crate::drivers::net::proto::rsc::Step;
use crate::drivers::net::proto::rndis::{self, Message as Rndis, PacketHead, StatusEvent};
use crate::drivers::net::proto::wire::Error as WireError;
use crate::vmbus_core::ring::{
    self, PacketInfo, PACKET_TYPE_COMPLETION, PACKET_TYPE_INBAND, PACKET_TYPE_TRANSFER_PAGES,
};
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// What the first look at a range found.
enum Copied<'a> {
    /// A frame, copied into an skb.
    Frame(PacketHead<'a>, Result<RxFrame>),
    /// A fragment of a coalesced frame, added to it: whether the frame is
    /// whole, or why the fragment was dropped.
    Fragment(core::result::Result<bool, &'static str>),
    /// For the whole parse ([`Nic::receive_message`]).
    Parse,
}

/// What is wrong with an RNDIS message that did not parse.
fn rndis_error(e: &WireError) -> &'static str {
    match e {
        WireError::TooShort { .. } => "RNDIS message longer than its range",
        WireError::UnknownType(_) => "unknown RNDIS message type",
        WireError::BadField("data_offset" | "data_len") => "RNDIS packet data outside its message",
        _ => "malformed RNDIS message",
    }
}

/// What handling one packet from the host cost and left behind.
pub(super) struct Handled {
    /// The work it was, against the NAPI budget: a transfer-page packet
    /// counts each of its ranges (each an RNDIS message copied), as the C
    /// driver does; any other packet counts one.
    pub(super) work: usize,
    /// Its receive completion could not be sent (the outbound ring is
    /// full): it waits with the others until the host makes room.
    pub(super) deferred: bool,
}

impl Nic {
    /// One packet from the host on `queue`'s channel.
    pub(super) fn packet(&self, dev: &Net, channel: &Channel, queue: u16, info: &PacketInfo, bytes: &[u8]) -> Handled {
        let one = Handled { work: 1, deferred: false };
        match info.descriptor.packet_type {
            PACKET_TYPE_COMPLETION => self.completion(dev, info.descriptor.transaction_id, info.payload(bytes)),
            PACKET_TYPE_TRANSFER_PAGES => return self.transfer_pages(dev, channel, queue, info, bytes),
            // The host's own NVSP messages (the send indirection table, VF
            // association) need nothing from a NIC without subchannels.
            PACKET_TYPE_INBAND => {}
            _ => self.host_error("unexpected packet type"),
        }
        one
    }

    /// Received RNDIS messages in the receive buffer.
    fn transfer_pages(&self, dev: &Net, channel: &Channel, queue: u16, info: &PacketInfo, bytes: &[u8]) -> Handled {
        let mut work = 1;
        let tid = info.descriptor.transaction_id;
        let version = Version::from_raw(self.version.load(Ordering::Relaxed));
        let is_rndis = matches!(
            Nvsp::parse(info.payload(bytes), Sender::Host, version),
            Ok(Nvsp::SendRndisPacket(_))
        );
        match ring::parse_transfer_pages(info.header(bytes)) {
            _ if !is_rndis => self.host_error("transfer-page packet without SEND_RNDIS_PKT"),
            Ok((set_id, _)) if set_id != nvsp::RECEIVE_BUFFER_ID => {
                self.host_error("transfer-page packet names no receive buffer")
            }
            Ok((_, ranges)) => {
                let total = ranges.clone().count();
                work = total.max(1);
                let section = self.rx_section.load(Ordering::Relaxed) as usize;
                // The queue's NAPI is its only user: never contended.
                if let Some(lock) = self.rsc.get(usize::from(queue)) {
                    let _bh = BhOff::new();
                    let mut rsc = lock.lock();
                    // A coalesced frame ends in its packet.
                    rsc.state.reset();
                    for (i, range) in ranges.enumerate() {
                        let (offset, len) = (range.byte_offset as usize, range.byte_count as usize);
                        self.receive_range(dev, queue, offset, len, section, i + 1 == total, &mut rsc);
                    }
                }
            }
            Err(_) => self.host_error("malformed transfer-page packet"),
        }
        // Completed even when malformed: the host gets its slots back.
        let deferred = !self.complete_receive(channel, queue, tid);
        Handled { work, deferred }
    }

    /// One range: an RNDIS message in the receive buffer, the last of its
    /// packet if `last_range`. `rsc` is the queue's coalesced frame.
    fn receive_range(
        &self,
        dev: &Net,
        queue: u16,
        offset: usize,
        len: usize,
        section: usize,
        last_range: bool,
        rsc: &mut RscFrame,
    ) {
        // A data packet is read in two steps: its header and PPIs from a
        // copy of the range's first bytes, then the frame copied once,
        // straight from the receive buffer into an skb (under the lock
        // that keeps the buffer; handed up after it, since the stack may
        // transmit from inside). A fragment of a coalesced frame is copied
        // after the frame's other fragments instead.
        if len > MAX_RECEIVE {
            rsc.state.reset();
            return self.host_error("transfer-page range longer than an RNDIS message");
        }
        if section != 0 && len > section {
            // The C driver's check: the host announced sections of this
            // size, and no range is longer (a larger frame comes in RSC
            // fragments).
            rsc.state.reset();
            return self.host_error("transfer-page range longer than a receive section");
        }
        let mut head = [0u8; RX_HEAD];
        let peek = len.min(RX_HEAD);
        let copied = locked(&self.buffers, |b| -> Result<Copied<'_>> {
            let b = b.as_ref().ok_or(ENODEV)?;
            let buffer = b.recv.buffer().ok_or(ENODEV)?;
            if offset.checked_add(len).is_none_or(|end| end > buffer.len()) {
                return Err(EINVAL);
            }
            buffer.read(offset, head.get_mut(..peek).ok_or(EINVAL)?)?;
            let Some(packet) = rndis::parse_packet_head(head.get(..peek).unwrap_or(&[]), len) else {
                return Ok(Copied::Parse);
            };
            let info = RxInfo::collect(packet.ppis).ok();
            let id = info.and_then(|i| i.pktinfo_id);
            if id.is_some_and(|id| id.flags & PktInfoId::SUBALLOC != 0) {
                let at = offset + packet.data_offset;
                let joined = Self::rsc_add(rsc, id, last_range, packet.ppis, packet.data_len, |to| buffer.read(at, to));
                return Ok(Copied::Fragment(joined));
            }
            rsc.state.on_packet(None, last_range);
            if packet.data_len < ETH_HLEN {
                return Ok(Copied::Parse);
            }
            let frame = buffer.raw_range(offset + packet.data_offset, packet.data_len)?;
            // SAFETY: `frame` is valid for `data_len` bytes while the
            // buffer lives, which the lock ensures for this call.
            let skb = unsafe { dev.rx_copy(queue, frame, packet.data_len) };
            Ok(Copied::Frame(packet, skb))
        });
        match copied {
            Err(_) => {
                rsc.state.reset();
                self.host_error("transfer-page range outside the receive buffer")
            }
            Ok(Copied::Frame(packet, Ok(skb))) => dev.rx_up(queue, skb, Self::rx_meta(packet.ppis)),
            // No skb: dropped and counted.
            Ok(Copied::Frame(_, Err(_))) => {}
            Ok(Copied::Fragment(joined)) => self.rsc_done(dev, queue, joined, rsc),
            // Not a data packet, or one the whole parse must judge.
            Ok(Copied::Parse) => self.receive_message(dev, queue, offset, len, last_range, rsc),
        }
    }

    /// Adds a fragment of a coalesced frame (PPI `id`, `ppis`, `data_len`
    /// bytes that `copy` copies) to the queue's frame. `Ok(true)` when the
    /// frame is whole, `Err` naming what was wrong when dropped.
    fn rsc_add(
        rsc: &mut RscFrame,
        id: Option<PktInfoId>,
        last_range: bool,
        ppis: &[u8],
        data_len: usize,
        copy: impl FnOnce(&mut [u8]) -> Result,
    ) -> core::result::Result<bool, &'static str> {
        let (first, last) = match rsc.state.on_packet(id, last_range) {
            Step::Fragment { first, last } => (first, last),
            Step::Drop(why) => return Err(why),
            Step::Alone => return Err("RSC fragment without its marks"),
        };
        if first {
            rsc.len = 0;
            rsc.meta = Self::rx_meta(ppis);
        }
        let end = rsc.len.checked_add(data_len).filter(|&end| end <= rsc.data.len());
        let copied = end.and_then(|end| rsc.data.get_mut(rsc.len..end)).map(copy);
        match (end, copied) {
            (Some(end), Some(Ok(()))) => rsc.len = end,
            (None, _) => {
                rsc.state.reset();
                return Err("RSC frame longer than an RNDIS message");
            }
            _ => {
                rsc.state.reset();
                return Err("RSC fragment outside the receive buffer");
            }
        }
        Ok(last)
    }

    /// Hands a whole coalesced frame up, or reports a dropped fragment.
    fn rsc_done(&self, dev: &Net, queue: u16, joined: core::result::Result<bool, &'static str>, rsc: &mut RscFrame) {
        match joined {
            Ok(false) => {}
            Ok(true) if rsc.len < ETH_HLEN => self.host_error("received frame shorter than an Ethernet header"),
            Ok(true) => {
                let _ = dev.rx(queue, rsc.data.get(..rsc.len).unwrap_or(&[]), rsc.meta);
            }
            Err(why) => self.host_error(why),
        }
    }

    /// What a received packet's PPIs say about its frame.
    fn rx_meta(ppis: &[u8]) -> RxMeta {
        let mut meta = RxMeta::default();
        if let Ok(info) = RxInfo::collect(ppis) {
            meta.csum_ok = info.checksum.is_some_and(|c| {
                let good = ChecksumInfo::RX_TCP_SUCCEEDED | ChecksumInfo::RX_UDP_SUCCEEDED;
                let bad = ChecksumInfo::RX_TCP_FAILED | ChecksumInfo::RX_UDP_FAILED | ChecksumInfo::RX_IP_FAILED;
                c.0 & good != 0 && c.0 & bad == 0
            });
            meta.vlan_tci = info.vlan.map(|v| v.tci());
            meta.hash = info.hash_value;
        }
        meta
    }

    /// A received RNDIS message, copied whole and parsed: control answers,
    /// status indications, and data packets the fast path left alone.
    fn receive_message(&self, dev: &Net, queue: u16, offset: usize, len: usize, last_range: bool, rsc: &mut RscFrame) {
        let mut scratch = self.rx_scratch.lock();
        let copied = locked(&self.buffers, |b| -> Result {
            let b = b.as_ref().ok_or(ENODEV)?;
            let buffer = b.recv.buffer().ok_or(ENODEV)?;
            buffer.read(offset, scratch.get_mut(..len).ok_or(EINVAL)?)
        });
        if copied.is_err() {
            return self.host_error("transfer-page range outside the receive buffer");
        }
        let message = scratch.get(..len).unwrap_or(&[]);
        let parsed = Rndis::parse(message);
        if let Ok(Rndis::Packet(p)) = &parsed {
            let id = RxInfo::collect(p.ppis).ok().and_then(|i| i.pktinfo_id);
            if id.is_some_and(|id| id.flags & PktInfoId::SUBALLOC != 0) {
                let joined = Self::rsc_add(rsc, id, last_range, p.ppis, p.data.len(), |to| {
                    to.copy_from_slice(p.data.get(..to.len()).ok_or(EINVAL)?);
                    Ok(())
                });
                return self.rsc_done(dev, queue, joined, rsc);
            }
        }
        rsc.state.on_packet(None, last_range);
        match parsed {
            Ok(Rndis::Packet(p)) if p.data.len() < ETH_HLEN => {
                self.host_error("received frame shorter than an Ethernet header")
            }
            Ok(Rndis::Packet(p)) => {
                let _ = dev.rx(queue, p.data, Self::rx_meta(p.ppis));
            }
            Ok(Rndis::IndicateStatus(ind)) => match ind.event() {
                Ok(StatusEvent::MediaConnect) => {
                    self.link_up.store(true, Ordering::Relaxed);
                    dev.carrier(true);
                }
                Ok(StatusEvent::MediaDisconnect) => {
                    self.link_up.store(false, Ordering::Relaxed);
                    dev.carrier(false);
                }
                Ok(StatusEvent::LinkSpeed(speed)) => dev.set_link_speed(speed / 10_000),
                Ok(_) => {}
                Err(_) => self.host_error("malformed status indication"),
            },
            Ok(m @ (Rndis::InitializeComplete(_) | Rndis::QueryComplete(_) | Rndis::SetComplete { .. })) => {
                let awaited = m.req_id().map_or(Awaited::None, Awaited::Rndis);
                if !self.answer(awaited, message) {
                    self.host_error("RNDIS answer to no request");
                }
            }
            Ok(_) => self.host_error("unexpected RNDIS message"),
            Err(e) => self.host_error(rndis_error(&e)),
        }
    }

    /// Completes a transfer-page packet; if the ring is full, later (then
    /// returns false: the host was asked to signal once it makes room).
    fn complete_receive(&self, channel: &Channel, queue: u16, tid: u64) -> bool {
        if Self::send_receive_completion(channel, tid).is_ok() {
            return true;
        }
        let kept = locked(&self.pending, |p| p.get_mut(usize::from(queue)).is_some_and(|p| p.push(tid)));
        if !kept {
            self.host_error("receive completions piling up");
        }
        false
    }

    fn send_receive_completion(channel: &Channel, tid: u64) -> Result {
        let message = encode(&Nvsp::SendRndisPacketComplete { status: nvsp::status::SUCCESS })?;
        channel.send_completion(tid, &[message.bytes()], 0)
    }

    /// Sends the completions that waited for room; false if some still
    /// wait.
    pub(super) fn flush_pending(&self, channel: &Channel, queue: u16) -> bool {
        locked(&self.pending, |p| {
            p.get_mut(usize::from(queue))
                .is_none_or(|p| p.flush(|tid| Self::send_receive_completion(channel, tid).is_ok()))
        })
    }
}
