// SPDX-License-Identifier: GPL-2.0
//! The interface's operations (`NetOps`): open, stop, transmit, the NAPI
//! poll, and the ethtool settings (channels, LRO) and MTU change.

use super::{locked, Nic, TX_HEAD};
use crate::rust::net::netdev::{Net, NetOps, Skb, Tx};
use crate::drivers::net::proto::ndis::{self, filter, OffloadParams};
use crate::drivers::net::proto::nvsp::Version;
use crate::drivers::net::proto::rndis;
use core::sync::atomic::Ordering;
use kernel::prelude::*;
use kernel::sync::Arc;

impl NetOps for Nic {
    fn open_net(&self, net: &Net) -> Result {
        self.set_filter(filter::DIRECTED | filter::BROADCAST | filter::ALL_MULTICAST)?;
        net.carrier(self.link_up.load(Ordering::Relaxed));
        Ok(())
    }

    fn stop_net(&self, net: &Net) {
        net.carrier(false);
        // A rescinded NIC cannot answer; going down goes on regardless.
        let _ = self.set_filter(0);
    }

    fn xmit_net(&self, net: &Net, queue: u16, skb: &Skb) -> Tx {
        let Some(channel) = self.channel_of(queue) else { return Tx::Dropped };
        let info = skb.info();
        let Some(plan) = self.tx_plan(&info) else { return Tx::Dropped };
        let len = info.len as usize;
        let mut head = [0u8; TX_HEAD];
        let Ok(header) = rndis::write_packet_header(&mut head, plan.ppis(), len) else {
            return Tx::Dropped;
        };
        let sent = if header + len > self.section_size.load(Ordering::Relaxed) as usize {
            // From the skb's pages; through a bounce buffer where that
            // cannot be (a checksum done here, too many pieces).
            let from_pages = if plan.software_csum {
                Err(E2BIG)
            } else {
                self.send_pages(&channel, skb, &info, &plan, &mut head, header)
            };
            match from_pages {
                Err(e) if e == E2BIG => {
                    self.send_copy(skb, &info, &plan, &head[..header], |message| self.send_bounced(&channel, message))
                }
                sent => sent,
            }
        } else {
            self.send_copy(skb, &info, &plan, &head[..header], |message| self.send_staged(&channel, message))
        };
        match sent {
            Ok(()) => {
                net.tx_done(queue, 1, len as u64);
                Tx::Sent
            }
            // No free section or slot, or a full ring: completions will
            // wake the queue.
            Err(e) if e == EBUSY || e == EAGAIN => Tx::Busy,
            Err(_) => Tx::Dropped,
        }
    }

    fn poll_net(&self, net: &Net, queue: u16, budget: i32) -> i32 {
        let Some(channel) = self.channel_of(queue) else { return 0 };
        if !self.flush_pending(&channel, queue) {
            // The outbound ring is still full of completions: the host was
            // asked (pending_send_sz) to signal once it makes room, and
            // that signal polls again. Spinning here would burn the CPU
            // for as long as the host does not drain the ring.
            return 0;
        }
        let budget = budget.max(0) as usize;
        let mut done = 0usize;
        let mut blocked = false;
        while done < budget && !blocked {
            // Each transfer-page range is charged (one packet may carry
            // thousands); the packet that crosses the budget is the last.
            let polled = channel.poll_while(budget - done, |info, bytes| {
                let handled = self.packet(net, &channel, queue, info, bytes);
                done = done.saturating_add(handled.work);
                // A completion that had to wait: read no more until the
                // host makes room (it signals then), or their completions
                // would pile up behind it.
                blocked = handled.deferred;
                done < budget && !blocked
            });
            match polled {
                Ok(true) => continue,
                Ok(false) => break,
                Err(_) => break,
            }
        }
        if blocked {
            // Less than the budget: NAPI stops until the host's signal.
            return done.min(budget.saturating_sub(1)) as i32;
        }
        done.min(budget) as i32
    }

    fn set_channels_net(&self, net: &Net, count: u32) -> Result {
        let count = u16::try_from(count).map_err(|_| EINVAL)?;
        if count == 0 || u32::from(count) > self.opened.load(Ordering::Relaxed) {
            return Err(EINVAL);
        }
        if self.opened.load(Ordering::Relaxed) < 2 {
            return net.set_queues(count);
        }
        // The stack sends on a queue only once the host may answer on it,
        // and stops only after the host has moved receives off it.
        let current = net.queues();
        if count > current {
            net.set_queues(count)?;
            self.set_rss(count).inspect_err(|_| {
                let _ = net.set_queues(current);
            })
        } else {
            self.set_rss(count)?;
            net.set_queues(count)
        }
    }

    fn set_lro_net(&self, _net: &Net, on: bool) -> Result {
        self.lro_wanted.store(on, Ordering::Relaxed);
        let version = Version::from_raw(self.version.load(Ordering::Relaxed)).ok_or(ENODEV)?;
        let state = if on { ndis::offload::ENABLED } else { ndis::offload::DISABLED };
        self.set_offloads(&OffloadParams { rsc_ip_v4: state, rsc_ip_v6: state, ..Default::default() }, version)
    }

    fn change_mtu_net(&self, net: &Net, mtu: u32) -> Result {
        if mtu > self.max_mtu() {
            return Err(EINVAL);
        }
        // The host learns the MTU only from the NDIS config, sent before
        // the buffers: the NIC is set up again (as the C driver's
        // netvsc_change_mtu does), back at the old MTU if that fails.
        let old = net.mtu();
        if mtu == old {
            return Ok(());
        }
        let mut link = self.link.lock();
        if link.setup.as_ref().is_some_and(|setup| !setup.done.load(Ordering::Acquire)) {
            // Its last steps take rtnl, which the caller holds.
            return Err(EBUSY);
        }
        // The channels' handlers and the subchannel setup hold the NIC.
        let this: Arc<Nic> = locked(&self.dev, |d| d.as_ref().map(|d| Arc::from(d.owner()))).ok_or(ENODEV)?;
        let device = link.device.take().ok_or(ENODEV)?;
        this.host_silent.store(false, Ordering::Relaxed);
        this.changing_mtu.store(true, Ordering::Relaxed);
        let result = this.reinit(net, &device, &mut link, mtu).or_else(|e| {
            if this.host_silent.load(Ordering::Relaxed) {
                // The host stopped answering: setting the NIC up again at
                // the old MTU would wait for it all over again.
                if link.open.is_some() {
                    pr_err!("netvsc: relid {}: the host does not answer; MTU {} kept\n", self.relid, old);
                } else {
                    pr_err!("netvsc: relid {}: the host does not answer; the NIC stays down\n", self.relid);
                }
                return Err(e);
            }
            pr_err!("netvsc: relid {}: setting the NIC up for MTU {} failed ({:?}); back to {}\n", self.relid, mtu, e, old);
            // The change may have ended on a signal, which stays pending.
            this.restoring.store(true, Ordering::Relaxed);
            let back = this.reinit(net, &device, &mut link, old);
            this.restoring.store(false, Ordering::Relaxed);
            back.inspect_err(|e| {
                pr_err!("netvsc: relid {}: the NIC did not come back ({:?}); it stays down\n", self.relid, e);
            })?;
            Err(e)
        });
        this.changing_mtu.store(false, Ordering::Relaxed);
        this.host_silent.store(false, Ordering::Relaxed);
        link.device = Some(device);
        result
    }
}
