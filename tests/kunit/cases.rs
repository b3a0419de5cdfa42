// SPDX-License-Identifier: GPL-2.0
//! KUnit cases run inside the kernel at module load (suite `rustic_core`,
//! declared in tests/kunit/suite.c). They exercise the kernel-independent
//! core as the kernel compiles it: kernel flags, overflow checks, no std;
//! and (suite `rustic_netdev`) the net_device shim with a loopback driver.

use crate::rust::bindings;
use crate::rust::base::kunit::{kunit_expect, kunit_fail, KunitCase};
use crate::vmbus_core::guid::{class, Guid, GuidParseError};
use crate::vmbus_core::ring;
use crate::vmbus_core::shared::SharedMem;
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// Every known device class survives text formatting and parsing, and the
/// network class has the text form the C driver's sysfs files show.
#[no_mangle]
extern "C" fn rustic_kunit_guid_text_round_trip(test: *mut bindings::kunit) {
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    let classes = [
        class::NETWORK,
        class::SCSI,
        class::IDE,
        class::KEYBOARD,
        class::MOUSE,
        class::HEARTBEAT,
        class::SHUTDOWN,
        class::TIMESYNC,
        class::KVP,
    ];
    for guid in classes {
        let mut text = [0u8; 36];
        guid.format(&mut text);
        let parsed = core::str::from_utf8(&text).map(Guid::parse);
        kunit_expect!(case, matches!(parsed, Ok(Ok(g)) if g == guid));
    }
    let mut text = [0u8; 36];
    class::NETWORK.format(&mut text);
    kunit_expect!(case, &text == b"f8615163-df3e-46c5-913f-f2d2f965ed0e");
}

/// Malformed GUID text is refused with the right reason, never a panic.
#[no_mangle]
extern "C" fn rustic_kunit_guid_rejects_malformed(test: *mut bindings::kunit) {
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    kunit_expect!(case, Guid::parse("") == Err(GuidParseError::Length));
    kunit_expect!(
        case,
        Guid::parse("f8615163_df3e-46c5-913f-f2d2f965ed0e") == Err(GuidParseError::Dash)
    );
    kunit_expect!(
        case,
        Guid::parse("f8615163-df3e-46c5-913f-f2d2f965ed0z") == Err(GuidParseError::Digit)
    );
}

/// Bytes of the ring's data area in the in-kernel ring cases: small enough to
/// wrap around many times in one case.
const KUNIT_RING_DATA: usize = 8192;
/// Largest payload the round-trip case sends: an Ethernet frame.
const KUNIT_MAX_PAYLOAD: usize = 1500;

/// Zeroed, 8-aligned memory for one ring (header page plus data area).
fn kunit_ring_memory() -> Option<KVec<u64>> {
    KVec::from_elem(0u64, (ring::HEADER_SIZE + KUNIT_RING_DATA) / 8, GFP_KERNEL).ok()
}

/// Packets of many sizes go through a ring in kernel memory, wrapping around
/// it dozens of times, and come out with every byte and transaction id intact.
#[no_mangle]
extern "C" fn rustic_kunit_ring_round_trip(test: *mut bindings::kunit) {
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    let (Some(mut words), Ok(mut payload), Ok(mut out)) = (
        kunit_ring_memory(),
        KVec::from_elem(0u8, KUNIT_MAX_PAYLOAD, GFP_KERNEL),
        KVec::from_elem(0u8, KUNIT_MAX_PAYLOAD + 64, GFP_KERNEL),
    ) else {
        kunit_fail!(case, "allocation failed");
        return;
    };
    let mem = SharedMem::from_slice(words.as_mut_slice());
    kunit_expect!(case, ring::init_ring(mem).is_ok());
    let (Ok(mut tx), Ok(mut rx)) = (ring::Producer::new(mem), ring::Consumer::new(mem)) else {
        kunit_fail!(case, "ring setup failed");
        return;
    };
    let mut bytes_moved = 0usize;
    for i in 0..400usize {
        // A constant divisor: no division-by-zero panic path in the case.
        let len = (i * 37) % KUNIT_MAX_PAYLOAD + 1;
        for (j, b) in payload.iter_mut().enumerate().take(len) {
            *b = (i ^ j) as u8;
        }
        let Some(sent_bytes) = payload.get(..len) else {
            kunit_fail!(case, "payload length out of range");
            return;
        };
        let sent = tx.write_inband(i as u64, false, &[sent_bytes]);
        kunit_expect!(case, sent.is_ok());
        match rx.read_packet(out.as_mut_slice()) {
            Ok(info) => {
                let got = info.payload(out.as_slice());
                kunit_expect!(case, info.descriptor.transaction_id == i as u64);
                kunit_expect!(case, got.len() >= len && got.len() < len + 8);
                kunit_expect!(case, got.get(..len) == Some(sent_bytes));
            }
            Err(_) => kunit_fail!(case, "read_packet failed"),
        }
        kunit_expect!(case, rx.commit().is_ok());
        bytes_moved += len;
    }
    // More than a dozen trips round the data area.
    kunit_expect!(case, bytes_moved > 12 * KUNIT_RING_DATA);
    kunit_expect!(case, matches!(rx.read_packet(out.as_mut_slice()), Err(ring::ReadError::Empty)));
}

/// A write index the host corrupted poisons the consumer: a typed error, and
/// the same error on every later read, never a read out of bounds.
#[no_mangle]
extern "C" fn rustic_kunit_ring_corrupt_index_poisons(test: *mut bindings::kunit) {
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    let (Some(mut words), Ok(mut out)) = (kunit_ring_memory(), KVec::from_elem(0u8, 256, GFP_KERNEL)) else {
        kunit_fail!(case, "allocation failed");
        return;
    };
    let mem = SharedMem::from_slice(words.as_mut_slice());
    kunit_expect!(case, ring::init_ring(mem).is_ok());
    let Ok(mut rx) = ring::Consumer::new(mem) else {
        kunit_fail!(case, "ring setup failed");
        return;
    };
    // Beyond the data area, as a hostile host might write it.
    let bad_index = (KUNIT_RING_DATA + 8) as u32;
    kunit_expect!(case, mem.store_u32(ring::WRITE_INDEX_OFFSET, bad_index, Ordering::Release).is_ok());
    let corrupt = |r: Result<ring::PacketInfo, ring::ReadError>| {
        matches!(r, Err(ring::ReadError::Corrupt(ring::Corrupt::Index)))
    };
    kunit_expect!(case, corrupt(rx.read_packet(out.as_mut_slice())));
    // Repairing the index does not unpoison the ring.
    kunit_expect!(case, mem.store_u32(ring::WRITE_INDEX_OFFSET, 0, Ordering::Release).is_ok());
    kunit_expect!(case, corrupt(rx.read_packet(out.as_mut_slice())));
    kunit_expect!(case, rx.poisoned() == Some(ring::Corrupt::Index));
}

/// The bus's formats and control parser as the kernel compiles them
/// (overflow checks on): the C driver's modalias and GUID formats, a
/// closed channel's ring attribute refused, a good and a bad command.
#[no_mangle]
extern "C" fn rustic_kunit_bus_formats(test: *mut bindings::kunit) {
    use crate::vmbus_core::bus::{
        modalias, show_dev_attr, AttrError, ChannelView, Command, DevAttr, OfferFacts,
        MODALIAS_LEN,
    };
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    let mut alias = [0u8; MODALIAS_LEN];
    modalias(&class::NETWORK, &mut alias);
    kunit_expect!(case, &alias == b"vmbus:635161f83edfc546913ff2d2f965ed0e");

    let offer = OfferFacts {
        class: class::NETWORK,
        instance: class::SCSI,
        relid: 2047,
        monitor_id: Some(127),
        target_cpu: 0,
    };
    let chan = ChannelView::closed(0);
    let mut out = [0u8; 64];
    let n = show_dev_attr(DevAttr::ClassId, &offer, &chan, 0, &mut out);
    kunit_expect!(case, n == Ok(39));
    kunit_expect!(case, out.get(..39) == Some(&b"{f8615163-df3e-46c5-913f-f2d2f965ed0e}\n"[..]));
    kunit_expect!(
        case,
        show_dev_attr(DevAttr::InReadIndex, &offer, &chan, 0, &mut out) == Err(AttrError::NoRing)
    );
    kunit_expect!(
        case,
        show_dev_attr(DevAttr::Id, &offer, &chan, 0, &mut out[..2]) == Err(AttrError::NoRoom)
    );

    let add = Command::parse(
        b"add class=f8615163-df3e-46c5-913f-f2d2f965ed0e instance=ba6163d9-04a1-4d29-b605-72e2ffb1dc7f relid=2047 monitor=127\n",
    );
    kunit_expect!(case, add == Ok(Command::Add(offer)));
    kunit_expect!(case, Command::parse(b"add relid=4294967296").is_err());
    kunit_expect!(case, Command::parse(b"\xff").is_err());
}

/// What the loopback driver of the netdev case saw, shared with the case.
#[derive(Default)]
struct NetProbe {
    opened: core::sync::atomic::AtomicBool,
    stopped: core::sync::atomic::AtomicBool,
    dropped: core::sync::atomic::AtomicBool,
    xmits: core::sync::atomic::AtomicU32,
    sent_queue: core::sync::atomic::AtomicU32,
    /// Every check `xmit` made on the skb passed.
    skb_ok: core::sync::atomic::AtomicBool,
    /// Answer the next xmit with Busy (once).
    busy_once: core::sync::atomic::AtomicBool,
    rx_pending: core::sync::atomic::AtomicU32,
    received: core::sync::atomic::AtomicU32,
    polls_done: core::sync::atomic::AtomicU32,
    /// The flags of the last set_rx_mode.
    rx_flags: core::sync::atomic::AtomicU32,
}

/// A driver that counts what it sends and receives the frames the case
/// asks for.
struct LoopNet {
    probe: kernel::sync::Arc<NetProbe>,
}

const KUNIT_MAC: [u8; 6] = [0x02, 0x15, 0x5d, 0x00, 0x00, 0x01];

/// A broadcast frame of an EtherType nothing handles (IEEE local
/// experimental), padded to the Ethernet minimum.
fn kunit_frame() -> [u8; 60] {
    let mut frame = [0u8; 60];
    frame[..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&KUNIT_MAC);
    frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    frame
}

impl crate::rust::net::netdev::NetOps for LoopNet {
    fn open_net(&self, net: &crate::rust::net::netdev::Net) -> Result {
        net.napi_enable(0);
        net.carrier(true);
        self.probe.opened.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn stop_net(&self, net: &crate::rust::net::netdev::Net) {
        net.carrier(false);
        net.napi_disable(0);
        self.probe.stopped.store(true, Ordering::Relaxed);
    }

    fn xmit_net(
        &self,
        net: &crate::rust::net::netdev::Net,
        queue: u16,
        skb: &crate::rust::net::netdev::Skb,
    ) -> crate::rust::net::netdev::Tx {
        use crate::rust::net::netdev::{Gso, Tx};
        self.probe.xmits.fetch_add(1, Ordering::Relaxed);
        if self.probe.busy_once.swap(false, Ordering::Relaxed) {
            return Tx::Busy;
        }
        let info = skb.info();
        let mut head = [0u8; 14];
        let mut ok = skb.len() == 60
            && info.len == 60
            && info.protocol == 0x88b5
            && info.network_offset == Some(14)
            && info.l4_proto == 0
            && !info.csum_partial
            && info.gso == Gso::None
            && info.vlan_tci.is_none()
            && info.queue_mapping == queue;
        ok &= skb.copy_to(0, &mut head).is_ok() && head[..] == kunit_frame()[..14];
        ok &= skb.copy_to(50, &mut head).is_err();
        self.probe.skb_ok.store(ok, Ordering::Relaxed);
        self.probe.sent_queue.store(u32::from(queue), Ordering::Relaxed);
        net.tx_done(queue, 1, u64::from(skb.len()));
        Tx::Sent
    }

    fn poll_net(&self, net: &crate::rust::net::netdev::Net, queue: u16, budget: i32) -> i32 {
        let mut done = 0;
        while done < budget && self.probe.rx_pending.load(Ordering::Relaxed) > 0 {
            self.probe.rx_pending.fetch_sub(1, Ordering::Relaxed);
            let meta = crate::rust::net::netdev::RxMeta {
                csum_ok: true,
                vlan_tci: None,
                hash: Some(0x1234_5678),
            };
            if net.rx(queue, &kunit_frame(), meta).is_ok() {
                self.probe.received.fetch_add(1, Ordering::Relaxed);
            }
            done += 1;
        }
        done
    }

    fn poll_done(&self, _queue: u16) {
        self.probe.polls_done.fetch_add(1, Ordering::Relaxed);
    }

    fn change_mtu(&self, _mtu: u32) -> Result {
        Ok(())
    }

    fn set_channels_net(&self, net: &crate::rust::net::netdev::Net, count: u32) -> Result {
        // Inside an op the core calls under rtnl: set_queues must use it.
        net.set_queues(u16::try_from(count).map_err(|_| EINVAL)?)
    }

    fn set_rx_mode(&self, flags: u32) {
        self.probe.rx_flags.store(flags, Ordering::Relaxed);
    }
}

impl Drop for LoopNet {
    fn drop(&mut self) {
        self.probe.dropped.store(true, Ordering::Relaxed);
    }
}

/// Waits up to a second for `cond`.
fn kunit_wait(cond: impl Fn() -> bool) -> bool {
    for _ in 0..1000 {
        if cond() {
            return true;
        }
        crate::rust::base::time::msleep(1);
    }
    cond()
}

/// A net_device driven by a loopback driver through rust/net/netdev.c: it
/// registers, comes up, sends a frame on the queue the stack picked (once
/// after a Busy that the shim retries), receives one through NAPI, counts
/// both, takes `ethtool -L` (the driver sets the queues under the caller's
/// rtnl), an MTU and promiscuous mode, and on drop goes down, unregisters
/// and releases the driver.
#[no_mangle]
extern "C" fn rustic_kunit_netdev_traffic(test: *mut bindings::kunit) {
    use crate::rust::net::netdev::{Features, NetDevice};
    // SAFETY: KUnit calls this case function with the running case's context.
    let case = unsafe { KunitCase::from_raw(test) };
    let Ok(probe) = kernel::sync::Arc::new(NetProbe::default(), GFP_KERNEL) else {
        kunit_fail!(case, "no memory for the probe");
        return;
    };
    let Ok(driver) = kernel::sync::Arc::new(LoopNet { probe: probe.clone() }, GFP_KERNEL) else {
        kunit_fail!(case, "no memory for the driver");
        return;
    };
    kunit_expect!(case, NetDevice::new(driver.clone(), [1, 0, 0, 0, 0, 1], 2, None).is_err());
    let Ok(ndev) = NetDevice::new(driver, KUNIT_MAC, 2, None) else {
        kunit_fail!(case, "NetDevice::new failed");
        return;
    };
    kunit_expect!(case, ndev.set_features(Features::TX_CSUM | Features::RX_CSUM | Features::SG | Features::RXHASH).is_ok());
    ndev.set_info(kernel::c_str!("kunit"));
    ndev.set_ring(512, 256);
    ndev.set_link_speed(10000);
    kunit_expect!(case, ndev.max_queues() == 2 && ndev.queues() == 1);
    kunit_expect!(case, ndev.set_mac(&[0x01, 0, 0, 0, 0, 2]).is_err());
    kunit_expect!(case, ndev.set_mac(&[0x02, 0x15, 0x5d, 0, 0, 2]).is_ok());
    kunit_expect!(case, ndev.register().is_ok());
    kunit_expect!(case, ndev.register().is_err());
    kunit_expect!(case, ndev.set_features(Features::NONE).is_err());
    kunit_expect!(case, ndev.set_mac(&KUNIT_MAC).is_err());
    kunit_expect!(case, ndev.name().as_str().starts_with("eth"));
    kunit_expect!(case, ndev.set_queues(3).is_err());
    kunit_expect!(case, ndev.set_queues(2).is_ok() && ndev.queues() == 2);

    // SAFETY: a registered device; the helper takes rtnl.
    kunit_expect!(case, unsafe { bindings::rustic_kunit_netdev_open(ndev.as_ptr()) } == 0);
    kunit_expect!(case, probe.opened.load(Ordering::Relaxed));

    probe.busy_once.store(true, Ordering::Relaxed);
    let frame = kunit_frame();
    // SAFETY: a live, open device; C copies the frame.
    let ret = unsafe {
        // CAST: a 60-byte frame.
        bindings::rustic_kunit_netdev_xmit(ndev.as_ptr(), 1, frame.as_ptr(), frame.len() as u32)
    };
    kunit_expect!(case, ret == 0);
    kunit_expect!(case, kunit_wait(|| probe.sent_queue.load(Ordering::Relaxed) == 1));
    kunit_expect!(case, probe.xmits.load(Ordering::Relaxed) == 2);
    kunit_expect!(case, probe.skb_ok.load(Ordering::Relaxed));
    kunit_expect!(case, !ndev.queue_stopped(1));

    probe.rx_pending.store(1, Ordering::Relaxed);
    ndev.napi_schedule(0);
    kunit_expect!(case, kunit_wait(|| probe.polls_done.load(Ordering::Relaxed) >= 1));
    kunit_expect!(case, probe.received.load(Ordering::Relaxed) == 1);

    ndev.count_host_error();
    ndev.count_host_error();
    let mut eth = [0i64; 8];
    // SAFETY: a live device; the helper takes rtnl and writes 8 values.
    unsafe { bindings::rustic_kunit_netdev_ethtool(ndev.as_ptr(), 1, eth.as_mut_ptr()) };
    // 7 totals and 4 per queue in use; host_errors counted twice.
    kunit_expect!(case, eth == [0, 11, 2, 1, 0, 9000, 0, 2]);
    kunit_expect!(case, ndev.queues() == 1);
    kunit_expect!(
        case,
        probe.rx_flags.load(Ordering::Relaxed) & crate::rust::net::netdev::rx_mode::PROMISC != 0
    );

    let mut stats = [0u64; 4];
    // SAFETY: a live device; C writes four counters.
    unsafe { bindings::rustic_kunit_netdev_stats(ndev.as_ptr(), stats.as_mut_ptr()) };
    kunit_expect!(case, stats == [1, 60, 1, 60]);

    drop(ndev);
    kunit_expect!(case, probe.stopped.load(Ordering::Relaxed));
    kunit_expect!(case, probe.dropped.load(Ordering::Relaxed));
}
