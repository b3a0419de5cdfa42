// SPDX-License-Identifier: GPL-2.0
//! Test builds only: a driver bound to [`class::RUSTIC_TEST`] that does nothing but
//! count its callbacks and check what it is given, so guest tests can see
//! binding, unbinding and rescinds. Its counters are debugfs files in
//! /sys/kernel/debug/hv_rustic/: `test_probes`, `test_removes`,
//! `test_rescinds`, `test_mismatches` (a callback got another device's data),
//! `test_probe_failures`. It refuses (`-ENXIO`) devices whose instance GUID
//! begins with [`REFUSED_PREFIX`], so tests can see a failed probe.

use crate::vmbus::device::{Device, Driver};
use crate::vmbus_core::guid::{class, Guid};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::c_str;
use kernel::prelude::*;

/// The first bytes (text order) of the instance GUIDs the driver refuses:
/// `bad0bad0-...`.
pub(crate) const REFUSED_PREFIX: u32 = 0xbad0bad0;

static PROBE_FAILURES: AtomicU64 = AtomicU64::new(0);
static PROBES: AtomicU64 = AtomicU64::new(0);
static REMOVES: AtomicU64 = AtomicU64::new(0);
static RESCINDS: AtomicU64 = AtomicU64::new(0);
static MISMATCHES: AtomicU64 = AtomicU64::new(0);

/// Adds the counter files to the debugfs directory.
pub(crate) fn add_counters(control: &crate::vmbus::bus::Bus) {
    control.counter(c_str!("test_probes"), &PROBES);
    control.counter(c_str!("test_removes"), &REMOVES);
    control.counter(c_str!("test_rescinds"), &RESCINDS);
    control.counter(c_str!("test_mismatches"), &MISMATCHES);
    control.counter(c_str!("test_probe_failures"), &PROBE_FAILURES);
}

/// What the test driver keeps per device: whose it is.
pub(crate) struct TestData {
    instance: Guid,
}

/// The test driver.
pub(crate) struct TestDriver;

impl Driver for TestDriver {
    type Data = KBox<TestData>;
    const NAME: &'static CStr = c_str!("rustic_test");
    const CLASS_IDS: &'static [Guid] = &[class::RUSTIC_TEST];

    fn probe(dev: &Device<'_>) -> Result<Self::Data> {
        let instance = dev.offer().instance;
        let b = instance.bytes;
        if u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == REFUSED_PREFIX {
            PROBE_FAILURES.fetch_add(1, Ordering::Relaxed);
            return Err(ENXIO);
        }
        let data = KBox::new(TestData { instance }, GFP_KERNEL)?;
        PROBES.fetch_add(1, Ordering::Relaxed);
        pr_info!(
            "test driver: probe {} relid {}\n",
            instance,
            dev.offer().relid
        );
        Ok(data)
    }

    fn remove(dev: &Device<'_>, data: Self::Data) {
        if data.instance != dev.offer().instance {
            MISMATCHES.fetch_add(1, Ordering::Relaxed);
        }
        REMOVES.fetch_add(1, Ordering::Relaxed);
        pr_info!("test driver: remove {}\n", data.instance);
    }

    fn rescind(dev: &Device<'_>, data: &TestData) {
        if data.instance != dev.offer().instance {
            MISMATCHES.fetch_add(1, Ordering::Relaxed);
        }
        RESCINDS.fetch_add(1, Ordering::Relaxed);
        pr_info!(
            "test driver: rescind {} (channel state {})\n",
            data.instance,
            dev.channel().state as u32
        );
    }
}
