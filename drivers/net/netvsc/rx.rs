// SPDX-License-Identifier: GPL-2.0
//! Receive (NAPI): the packets of a queue's channel, transfer-page
//! packets naming RNDIS messages in the receive buffer, their parsing into
//! frames, status indications and control answers, and the completions
//! that give the host its receive slots back.

use super::{encode, locked, Awaited, Nic, ETH_HLEN, MAX_RECEIVE, RX_HEAD};
use crate::vmbus::channel::Channel;
use crate::rust::net::netdev::{Net, RxFrame, RxMeta};
use crate::drivers::net::proto::nvsp::{self, Message as Nvsp, Sender, Version};
use crate::drivers::net::proto::ppi::{ChecksumInfo, RxInfo};
use crate::drivers::net::proto::rndis::{self, Message as Rndis, PacketHead, StatusEvent};
use crate::drivers::net::proto::wire::Error as WireError;
use crate::vmbus_core::ring::{
    self, PacketInfo, PACKET_TYPE_COMPLETION, PACKET_TYPE_INBAND, PACKET_TYPE_TRANSFER_PAGES,
};
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// What is wrong with an RNDIS message that did not parse.
fn rndis_error(e: &WireError) -> &'static str {
    match e {
        WireError::TooShort { .. } => "RNDIS message longer than its range",
        WireError::UnknownType(_) => "unknown RNDIS message type",
        WireError::BadField("data_offset" | "data_len") => "RNDIS packet data outside its message",
        _ => "malformed RNDIS message",
    }
}

impl Nic {
    /// One packet from the host on `queue`'s channel.
    pub(super) fn packet(&self, dev: &Net, channel: &Channel, queue: u16, info: &PacketInfo, bytes: &[u8]) {
        match info.descriptor.packet_type {
            PACKET_TYPE_COMPLETION => self.completion(dev, info.descriptor.transaction_id, info.payload(bytes)),
            PACKET_TYPE_TRANSFER_PAGES => self.transfer_pages(dev, channel, queue, info, bytes),
            // The host's own NVSP messages (the send indirection table, VF
            // association) need nothing from a NIC without subchannels.
            PACKET_TYPE_INBAND => {}
            _ => self.host_error("unexpected packet type"),
        }
    }

    /// Received RNDIS messages in the receive buffer.
    fn transfer_pages(&self, dev: &Net, channel: &Channel, queue: u16, info: &PacketInfo, bytes: &[u8]) {
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
                for range in ranges {
                    self.receive_range(dev, queue, range.byte_offset as usize, range.byte_count as usize);
                }
            }
            Err(_) => self.host_error("malformed transfer-page packet"),
        }
        // Completed even when malformed: the host gets its slots back.
        self.complete_receive(channel, queue, tid);
    }

    fn receive_range(&self, dev: &Net, queue: u16, offset: usize, len: usize) {
        // A data packet is read in two steps: its header and PPIs from a
        // copy of the range's first bytes, then the frame copied once,
        // straight from the receive buffer into an skb (under the lock
        // that keeps the buffer; handed up after it, since the stack may
        // transmit from inside).
        if len > MAX_RECEIVE {
            return self.host_error("transfer-page range longer than an RNDIS message");
        }
        let mut head = [0u8; RX_HEAD];
        let peek = len.min(RX_HEAD);
        let copied = locked(&self.buffers, |b| -> Result<Option<(PacketHead<'_>, Result<RxFrame>)>> {
            let b = b.as_ref().ok_or(ENODEV)?;
            let buffer = b.recv.buffer().ok_or(ENODEV)?;
            if offset.checked_add(len).is_none_or(|end| end > buffer.len()) {
                return Err(EINVAL);
            }
            buffer.read(offset, head.get_mut(..peek).ok_or(EINVAL)?)?;
            let Some(packet) = rndis::parse_packet_head(head.get(..peek).unwrap_or(&[]), len) else {
                return Ok(None);
            };
            if packet.data_len < ETH_HLEN {
                return Ok(None);
            }
            let frame = buffer.raw_range(offset + packet.data_offset, packet.data_len)?;
            // SAFETY: `frame` is valid for `data_len` bytes while the
            // buffer lives, which the lock ensures for this call.
            let skb = unsafe { dev.rx_copy(queue, frame, packet.data_len) };
            Ok(Some((packet, skb)))
        });
        match copied {
            Err(_) => self.host_error("transfer-page range outside the receive buffer"),
            Ok(Some((packet, Ok(skb)))) => dev.rx_up(queue, skb, Self::rx_meta(packet.ppis)),
            // No skb: dropped and counted.
            Ok(Some((_, Err(_)))) => {}
            // Not a data packet, or one the whole parse must judge.
            Ok(None) => self.receive_message(dev, queue, offset, len),
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
    fn receive_message(&self, dev: &Net, queue: u16, offset: usize, len: usize) {
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
        match Rndis::parse(message) {
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

    /// Completes a transfer-page packet; if the ring is full, later.
    fn complete_receive(&self, channel: &Channel, queue: u16, tid: u64) {
        if Self::send_receive_completion(channel, tid).is_err() {
            let kept = locked(&self.pending, |p| p.get_mut(usize::from(queue)).is_some_and(|p| p.push(tid)));
            if !kept {
                self.host_error("receive completions piling up");
            }
        }
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
