// SPDX-License-Identifier: GPL-2.0
//! Real Hyper-V as the connection's hypervisor ([`Hypervisor`]), over the
//! kernel layer's SynIC set-up and hypercalls (`rust/vmbus/hyperv.rs`).
//! Built always; never run by the project's tests (no Hyper-V here).

use super::hv::{Backend, Hypervisor};
use crate::rust::vmbus::hyperv::{self, Synic};
use crate::vmbus_core::shared::SharedMem;
use kernel::prelude::*;
use kernel::sync::Arc;

/// Hyper-V, when this is a guest of it the backend supports. Otherwise
/// `None`, having said why in one line: the module then loads with an
/// empty bus, as on any machine without VMBus.
pub(crate) fn probe() -> Result<Option<Backend>> {
    // The firmware's word first: no ACPI VMBus device, no VMBus (QEMU
    // without `-device vmbus-bridge`, any machine that is not Hyper-V).
    if !hyperv::acpi_present() {
        pr_info!("vmbus: no ACPI VMBus device on this machine: the bus stays empty\n");
        return Ok(None);
    }
    if !hyperv::available() {
        pr_info!(
            "vmbus: an ACPI VMBus device, but not a Hyper-V guest this backend supports (hypercalls set up; not isolated, no paravisor, not the root partition): the bus stays empty\n"
        );
        return Ok(None);
    }
    let synic = match Synic::start() {
        Ok(synic) => synic,
        Err(e) if e == ENODEV => {
            pr_info!("vmbus: the ACPI VMBus device could not be bound: the bus stays empty\n");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    pr_info!("vmbus: using Hyper-V\n");
    Ok(Some(Backend::new(Arc::new(synic, GFP_KERNEL)?)))
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

    /// The hypercall masks interrupts around its per-CPU input page itself.
    fn post_message_atomic(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result {
        Synic::post_message(self, connection_id, message_type, payload)
    }

    fn message_page_of(&self, cpu: u32) -> Option<SharedMem<'_>> {
        Synic::message_page_of(self, cpu)
    }

    fn end_of_message_local(&self) {
        self.eom_local()
    }

    fn is_hyperv(&self) -> bool {
        true
    }
}
