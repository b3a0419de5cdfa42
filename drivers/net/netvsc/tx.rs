// SPDX-License-Identifier: GPL-2.0
//! Transmit: frames copied behind their RNDIS header into a send-buffer
//! section, or sent GPA-direct from the skb's pages or a bounce buffer;
//! the host's send completions, which free them. Control messages go
//! through the same send sections.

use super::{encode, locked, Awaited, Nic, BOUNCE, BOUNCE_TID, TID_CONTROL, TX_HEAD, TX_PAGES, TX_PIECES};
use crate::vmbus::channel::Channel;
use crate::rust::net::netdev::{Gso, Net, Skb, SkbInfo, SkbPiece};
use crate::drivers::net::proto::frame::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_TCP, PROTO_UDP};
use crate::drivers::net::proto::offload::{prepare_lso, prepare_lso_prefix};
use crate::drivers::net::proto::nvsp::{self, Message as Nvsp, RndisChannel, RndisPacket, Sender, Version};
use crate::drivers::net::proto::ppi::{ChecksumInfo, LsoInfo, Ppi, VlanInfo};
use crate::vmbus_core::ring::GpaBuffer;
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// What a transmitted frame asks of the host ([`Nic::tx_plan`]).
pub(super) struct TxPlan {
    ppis: [Ppi; 2],
    count: usize,
    /// An LSOv2 frame: its headers are prepared as Hyper-V wants them.
    lso: bool,
    /// A partial checksum the host does not do: completed here.
    pub(super) software_csum: bool,
}

impl TxPlan {
    fn push(&mut self, ppi: Ppi) {
        if let Some(slot) = self.ppis.get_mut(self.count) {
            *slot = ppi;
            self.count += 1;
        }
    }

    pub(super) fn ppis(&self) -> &[Ppi] {
        self.ppis.get(..self.count).unwrap_or(&[])
    }

    /// Prepares the driver's copy of the frame.
    fn finish(&self, frame: &mut [u8], info: &SkbInfo) -> Result {
        if self.lso {
            prepare_lso(frame).map_err(|_| EINVAL)?;
        } else if self.software_csum {
            frame::fill_partial_checksum(frame, info.csum_start as usize, info.csum_offset as usize)
                .map_err(|_| EINVAL)?;
        }
        Ok(())
    }
}

impl Nic {
    /// Copies a message into a free send-buffer section.
    pub(super) fn stage(&self, message: &[u8]) -> Result<(u32, u64)> {
        let sections = locked(&self.sections, |s| s.clone()).ok_or(ENODEV)?;
        let section = sections.alloc().ok_or(EBUSY)?;
        let section_size = self.section_size.load(Ordering::Relaxed) as usize;
        let written = locked(&self.buffers, |b| -> Result {
            if message.len() > section_size {
                return Err(E2BIG);
            }
            let buffer = b.as_ref().and_then(|b| b.send.buffer()).ok_or(ENODEV)?;
            buffer.write(section as usize * section_size, message)
        });
        if let Err(e) = written {
            sections.free(section);
            return Err(e);
        }
        Ok((section, sections.tid(section)))
    }

    pub(super) fn free_section(&self, section: u32) -> bool {
        locked(&self.sections, |s| s.as_ref().map(|s| s.free(section))).unwrap_or(false)
    }

    /// NVSP SEND_RNDIS_PKT naming `section`.
    pub(super) fn announce(channel: &Channel, kind: RndisChannel, section: u32, len: usize, tid: u64, timeout_ms: u32) -> Result {
        let message = Nvsp::SendRndisPacket(RndisPacket {
            channel: kind,
            section_index: section,
            section_size: len as u32,
        });
        channel.send_inband(tid, true, &[encode(&message)?.bytes()], timeout_ms)
    }

    /// The host completed transaction `tid` with the NVSP message `body`.
    ///
    /// A transmitted frame's completion frees the section (or the bounce
    /// buffer) it names, if that is in flight with that id; any other id
    /// frees nothing. Its message must be SEND_RNDIS_PKT_COMPLETE; one that
    /// is not is reported, but the packet it names is freed all the same:
    /// the id is what the guest relies on, and keeping the section would
    /// let a host that garbles completions stop the queue for good.
    pub(super) fn completion(&self, dev: &Net, tid: u64, body: &[u8]) {
        if tid == TID_CONTROL {
            if !self.answer(Awaited::Nvsp, body) {
                self.host_error("unexpected NVSP completion");
            }
            return;
        }
        let freed = if tid & BOUNCE_TID != 0 {
            // The skb a send held goes before its slot can be taken again.
            self.bounces_used.complete_then(tid & !BOUNCE_TID, |slot| self.tx_held.release(slot as usize)).is_ok()
        } else {
            locked(&self.sections, |s| s.as_ref().map(|s| s.complete(tid).is_ok())).unwrap_or(false)
        };
        if !freed {
            return self.host_error("completion of no packet in flight");
        }
        let version = Version::from_raw(self.version.load(Ordering::Relaxed));
        if !matches!(Nvsp::parse(body, Sender::Host, version), Ok(Nvsp::SendRndisPacketComplete { .. })) {
            self.host_error("malformed completion");
        }
        // A control message's section is freed the same way; the answer
        // comes separately. Sections are shared by all queues, so any
        // queue that stopped for want of one may go on.
        for queue in 0..dev.queues() {
            if dev.queue_stopped(queue) {
                dev.wake_queue(queue);
            }
        }
    }
}

impl Nic {
    /// Sends a frame too big for a send section from the skb's own pages,
    /// as the C driver does: a GPA-direct packet whose first range is the
    /// slot's RNDIS header and a prepared copy of the frame's start, the
    /// others the rest of the frame where it lies. The skb is held until
    /// the host completes the send. `head` holds the RNDIS header, of
    /// `header` bytes. `E2BIG` for an skb in too many pieces or with
    /// headers too long for the copy (nothing is sent); `EBUSY` while
    /// every slot is in flight.
    pub(super) fn send_pages(
        &self,
        channel: &Channel,
        skb: &Skb,
        info: &SkbInfo,
        plan: &TxPlan,
        head: &mut [u8; TX_HEAD],
        header: usize,
    ) -> Result {
        let len = info.len as usize;
        let copied = len.min(TX_HEAD.saturating_sub(header));
        let start = head.get_mut(header..header + copied).ok_or(EINVAL)?;
        skb.copy_to(0, start)?;
        if plan.lso {
            // Headers longer than the copy: the bounce buffer's whole copy
            // is prepared instead (or refused).
            prepare_lso_prefix(start).map_err(|_| E2BIG)?;
        }
        let head = head.get(..header + copied).ok_or(EINVAL)?;
        // The rest, as ranges over page numbers; page 0 is the head's.
        let mut pieces = [SkbPiece::default(); TX_PIECES];
        let count = skb.pieces(copied as u32, &mut pieces)?;
        let mut pfns = [0u64; TX_PAGES];
        let mut spans = [(0u32, 0u32, 0usize, 0usize); TX_PIECES];
        let mut used = 1;
        for (piece, span) in pieces.iter().take(count).zip(spans.iter_mut()) {
            let first = piece.phys >> 12;
            let pages = ((piece.phys + u64::from(piece.len)).div_ceil(4096) - first) as usize;
            let to = pfns.get_mut(used..used + pages).ok_or(E2BIG)?;
            for (i, pfn) in to.iter_mut().enumerate() {
                *pfn = first + i as u64;
            }
            *span = ((piece.phys % 4096) as u32, piece.len, used, pages);
            used += pages;
        }
        let slot = self.bounces_used.alloc().ok_or(EBUSY)?;
        let sent = (|| {
            let at = slot as usize * TX_HEAD;
            self.tx_heads.write(at, head)?;
            pfns[0] = self.tx_heads.pfn(at / 4096).ok_or(EINVAL)?;
            let empty = GpaBuffer { byte_offset: 0, byte_count: 0, pfns: &[] };
            let mut ranges = [empty; TX_PIECES + 1];
            ranges[0] = GpaBuffer { byte_offset: (at % 4096) as u32, byte_count: head.len() as u32, pfns: pfns.get(..1).ok_or(EINVAL)? };
            for (range, &(byte_offset, byte_count, from, pages)) in ranges.iter_mut().skip(1).zip(spans.iter().take(count)) {
                *range = GpaBuffer { byte_offset, byte_count, pfns: pfns.get(from..from + pages).ok_or(EINVAL)? };
            }
            let header = encode(&Nvsp::SendRndisPacket(RndisPacket {
                channel: RndisChannel::Data,
                section_index: nvsp::NO_SECTION,
                section_size: 0,
            }))?;
            // Held before the send: its completion may come at once.
            self.tx_held.hold(slot as usize, skb)?;
            let tid = self.bounces_used.tid(slot) | BOUNCE_TID;
            channel.send_gpa_direct(tid, true, ranges.get(..count + 1).ok_or(EINVAL)?, &[header.bytes()], 0)
        })();
        if sent.is_err() {
            self.tx_held.release(slot as usize);
            self.bounces_used.free(slot);
        }
        sent
    }

    /// Copies the frame after its RNDIS `header` into the scratch buffer,
    /// prepared for the host, and hands the message to `send`.
    pub(super) fn send_copy(&self, skb: &Skb, info: &SkbInfo, plan: &TxPlan, header: &[u8], send: impl FnOnce(&[u8]) -> Result) -> Result {
        let total = header.len() + info.len as usize;
        let mut scratch = self.tx_scratch.lock();
        let message = scratch.get_mut(..total).ok_or(E2BIG)?;
        let (head, frame) = message.split_at_mut(header.len());
        head.copy_from_slice(header);
        skb.copy_to(0, frame)?;
        plan.finish(frame, info)?;
        send(message)
    }

    /// Sends an RNDIS message through a free section of the send buffer.
    pub(super) fn send_staged(&self, channel: &Channel, message: &[u8]) -> Result {
        let (section, tid) = self.stage(message)?;
        Self::announce(channel, RndisChannel::Data, section, message.len(), tid, 0).inspect_err(|_| {
            self.free_section(section);
        })
    }

    /// Sends a frame too big for a send section (with its RNDIS header,
    /// `message`) as a GPA-direct packet naming a bounce buffer's pages.
    /// `EBUSY` while every bounce buffer waits for its completion.
    pub(super) fn send_bounced(&self, channel: &Channel, message: &[u8]) -> Result {
        let slot = self.bounces_used.alloc().ok_or(EBUSY)?;
        let sent = (|| {
            let bounce = self.bounces.get(slot as usize).ok_or(EINVAL)?;
            bounce.write(0, message)?;
            let mut pfns = [0u64; BOUNCE / 4096];
            let pages = message.len().div_ceil(4096);
            for (i, pfn) in pfns.iter_mut().enumerate().take(pages) {
                *pfn = bounce.pfn(i).ok_or(EINVAL)?;
            }
            let range = GpaBuffer { byte_offset: 0, byte_count: message.len() as u32, pfns: pfns.get(..pages).ok_or(EINVAL)? };
            let header = encode(&Nvsp::SendRndisPacket(RndisPacket {
                channel: RndisChannel::Data,
                section_index: nvsp::NO_SECTION,
                section_size: 0,
            }))?;
            let tid = self.bounces_used.tid(slot) | BOUNCE_TID;
            channel.send_gpa_direct(tid, true, &[range], &[header.bytes()], 0)
        })();
        if sent.is_err() {
            self.bounces_used.free(slot);
        }
        sent
    }

    /// What a frame asks of the host, as PPIs, and what this driver must
    /// do to its copy first; `None` for a frame that cannot be sent.
    pub(super) fn tx_plan(&self, info: &SkbInfo) -> Option<TxPlan> {
        let mut plan = TxPlan { ppis: [Ppi::HashValue(0); 2], count: 0, lso: false, software_csum: false };
        let v6 = match info.protocol {
            ETHERTYPE_IPV4 => Some(false),
            ETHERTYPE_IPV6 => Some(true),
            _ => None,
        };
        match info.gso {
            Gso::TcpV4 | Gso::TcpV6 => {
                let ipv6 = info.gso == Gso::TcpV6;
                plan.push(Ppi::Lso(LsoInfo::v2(info.gso_size, info.transport_offset?, ipv6)?));
                plan.lso = true;
            }
            // Only TCP segmentation is offered; the stack does the rest.
            Gso::Other => return None,
            Gso::None if info.csum_partial => {
                let udp = self.udp_csum.load(Ordering::Relaxed);
                let kind = match info.l4_proto {
                    PROTO_TCP => Some(ChecksumInfo::TX_TCP),
                    PROTO_UDP if udp => Some(ChecksumInfo::TX_UDP),
                    _ => None,
                };
                let request = match (v6, kind, info.transport_offset) {
                    (Some(v6), Some(kind), Some(at)) => {
                        let ip = if v6 { ChecksumInfo::TX_IPV6 } else { ChecksumInfo::TX_IPV4 };
                        ChecksumInfo::tx(ip | kind, at)
                    }
                    _ => None,
                };
                match request {
                    Some(c) => plan.push(Ppi::Checksum(c)),
                    // A checksum the host does not do: done here.
                    None => plan.software_csum = true,
                }
            }
            Gso::None => {}
        }
        if let Some(tci) = info.vlan_tci {
            plan.push(Ppi::Vlan(VlanInfo::from_tci(tci)));
        }
        Some(plan)
    }
}
