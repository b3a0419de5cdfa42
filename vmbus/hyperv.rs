// SPDX-License-Identifier: GPL-2.0
//! Real Hyper-V as the connection's hypervisor ([`Hypervisor`]), over the
//! kernel layer's SynIC set-up and hypercalls (`rust/vmbus/hyperv.rs`).
//! Built always; never run by the project's tests (no Hyper-V here).

use super::hv::{Backend, Hypervisor};
use crate::rust::vmbus::hyperv::{self, Synic};
use crate::vmbus_core::shared::SharedMem;
use kernel::prelude::*;
use kernel::sync::Arc;

/// Hyper-V, when this is a guest of it the backend supports.
pub(crate) fn probe() -> Result<Option<Backend>> {
    if !hyperv::available() {
        return Ok(None);
    }
    pr_info!("vmbus: using Hyper-V\n");
    let synic = Arc::new(Synic::start()?, GFP_KERNEL)?;
    Ok(Some(Backend::new(synic)))
}

impl Hypervisor for Synic {
    fn post_message(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result {
        Synic::post_message(self, connection_id, message_type, payload)
    }

    fn signal_event(&self, connection_id: u32) -> Result {
        Synic::signal_event(self, connection_id)
    }

    fn message_page(&self) -> SharedMem<'_> {
        Synic::message_page(self)
    }

    fn event_page(&self, cpu: u32) -> Option<SharedMem<'_>> {
        Synic::event_page(self, cpu)
    }

    /// Every CPU's SynIC is set up (a hotplug state), and a CPU that open
    /// channels target refuses to go offline ([`Hypervisor::channel_cpu`]).
    fn all_cpus(&self) -> bool {
        true
    }

    fn channel_cpu(&self, cpu: u32, targeted: bool) {
        self.count_channel(cpu, targeted)
    }

    fn end_of_message(&self) {
        self.eom()
    }

    fn vp_index(&self, cpu: u32) -> u32 {
        Synic::vp_index(self, cpu)
    }

    fn stop(&self) {
        Synic::stop(self)
    }
}
