// SPDX-License-Identifier: GPL-2.0
//! The hypervisor interface: everything the VMBus connection needs from the
//! hypervisor, behind one type with one implementation per backend.
//!
//! - post a message (HvPostMessage: connection id, message type, payload of
//!   at most 240 bytes);
//! - signal an event (HvSignalEvent);
//! - the SynIC message slot of [`MESSAGE_SINT`] on the CPU that takes VMBus
//!   messages, as [`SharedMem`], and end-of-message;
//! - the SynIC event flags page of a CPU;
//! - the VP index of a CPU.
//!
//! The interrupt itself is registered with [`super::hv_glue::IsrRegistration`]
//! (`rust/hv.c`): every backend raises the same `rustic_hv_isr()`.
//!
//! Backends:
//! - the simulator ([`super::sim`], test builds, `simulate=1`);
//! - real Hyper-V (`rust/hv_real.c`), chosen when `hv_is_hyperv_initialized()`
//!   on a non-isolated guest without a paravisor: the ACPI VMBus device and
//!   its MMIO ranges, the SynIC set-up of `drivers/hv/hv.c` on every CPU
//!   through a CPU hotplug state, `hv_setup_vmbus_handler()`, the EOM MSR
//!   and the hypercalls. It is built but has never run (no Hyper-V here).
//!   The C `hv_vmbus` cannot be loaded beside it: whichever comes second
//!   fails to register the bus `vmbus`, before touching the SynIC.
//!
//! With neither, the module loads, says so in one line and the bus stays
//! empty.
//!
//! Everything above the backend — reading the slot, EOM, the connection —
//! is shared: [`take_message`] is the code path both backends use.

use super::vmbus_core::msg::{SynicMessage, HVMSG_NONE, MAX_MESSAGE_SIZE, SYNIC_MESSAGE_SIZE};
use super::vmbus_core::shared::SharedMem;
use super::vmbus_core::version::MESSAGE_SINT;
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// The message type of VMBus channel messages in HvPostMessage (the C
/// driver's `hv_post_message(..., 1, ...)`) and in the SynIC slot.
pub(crate) const VMBUS_MESSAGE_TYPE: u32 = 1;

/// The CPU whose SynIC receives VMBus channel messages (the C driver's
/// `VMBUS_CONNECT_CPU`).
pub(crate) const CONNECT_CPU: u32 = 0;

/// Offset of the `message_flags` word (`payload_size`, `message_flags`,
/// `reserved`) in a slot; `msg_pending` is bit 8 of it.
const FLAGS_WORD: usize = 4;
const MSG_PENDING_BIT: u32 = 1 << 8;

/// The hypervisor backends.
pub(crate) enum Backend {
    /// The simulated hypervisor and VMBus host (test builds).
    #[cfg(rustic_test_build)]
    Sim(Arc<super::sim::Hypervisor>),
    /// Hyper-V.
    Real(real::Synic),
}

use super::hv_glue::real;

#[cfg(rustic_test_build)]
use kernel::sync::Arc;

impl Backend {
    /// The backend this machine has: the simulator when a test build is
    /// loaded with `simulate=1`, else Hyper-V when it is there, else none.
    pub(crate) fn probe() -> Result<Option<Backend>> {
        #[cfg(rustic_test_build)]
        if super::hv_glue::sim::enabled() {
            pr_info!("vmbus: using the simulated hypervisor\n");
            return Ok(Some(Backend::Sim(super::sim::Hypervisor::new()?)));
        }
        if real::available() {
            pr_info!("vmbus: using Hyper-V\n");
            return Ok(Some(Backend::Real(real::Synic::start()?)));
        }
        Ok(None)
    }

    /// HvPostMessage: `payload` (at most 240 bytes) to `connection_id`.
    pub(crate) fn post_message(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result {
        if payload.len() > MAX_MESSAGE_SIZE {
            return Err(EINVAL);
        }
        match *self {
            #[cfg(rustic_test_build)]
            Backend::Sim(ref hv) => hv.post_message(connection_id, message_type, payload),
            Backend::Real(ref hv) => hv.post_message(connection_id, message_type, payload),
        }
    }

    /// HvSignalEvent on `connection_id`.
    pub(crate) fn signal_event(&self, connection_id: u32) -> Result {
        match *self {
            #[cfg(rustic_test_build)]
            Backend::Sim(ref hv) => hv.signal_event(connection_id),
            Backend::Real(ref hv) => hv.signal_event(connection_id),
        }
    }

    /// The SynIC message page of [`CONNECT_CPU`].
    fn message_page(&self) -> SharedMem<'_> {
        match *self {
            #[cfg(rustic_test_build)]
            Backend::Sim(ref hv) => hv.message_page(),
            Backend::Real(ref hv) => hv.message_page(),
        }
    }

    /// The SynIC event flags page of `cpu`, if that CPU's SynIC is set up.
    pub(crate) fn event_page(&self, cpu: u32) -> Option<SharedMem<'_>> {
        match *self {
            #[cfg(rustic_test_build)]
            Backend::Sim(ref hv) => hv.event_page(cpu),
            Backend::Real(ref hv) => hv.event_page(cpu),
        }
    }

    /// Whether every CPU can take channel interrupts (else only
    /// [`CONNECT_CPU`]).
    pub(crate) fn all_cpus(&self) -> bool {
        match *self {
            #[cfg(rustic_test_build)]
            Backend::Sim(_) => true,
            Backend::Real(_) => false,
        }
    }

    /// Tells the hypervisor the slot is free (the EOM MSR write).
    fn end_of_message(&self) {
        match *self {
            #[cfg(rustic_test_build)]
            Backend::Sim(ref hv) => hv.end_of_message(),
            Backend::Real(ref hv) => hv.eom(),
        }
    }

    /// The hypervisor's VP index of `cpu`.
    pub(crate) fn vp_index(&self, cpu: u32) -> u32 {
        match *self {
            #[cfg(rustic_test_build)]
            Backend::Sim(_) => cpu,
            Backend::Real(ref hv) => hv.vp_index(cpu),
        }
    }

    /// Stops the backend's interrupts and waits (bounded) until none is in
    /// flight; after this the interrupt work can be drained.
    pub(crate) fn stop(&self) {
        match *self {
            #[cfg(rustic_test_build)]
            Backend::Sim(ref hv) => hv.stop(),
            Backend::Real(ref hv) => hv.stop(),
        }
    }
}

/// The SINT2 slot of the message page.
fn message_slot(page: SharedMem<'_>) -> Option<SharedMem<'_>> {
    page.subrange(usize::from(MESSAGE_SINT) * SYNIC_MESSAGE_SIZE, SYNIC_MESSAGE_SIZE).ok()
}

/// Whether a message waits in the SINT2 slot (any context: one read).
pub(crate) fn message_waiting(backend: &Backend) -> bool {
    message_slot(backend.message_page()).is_some_and(|slot| slot.load_u32(0, Ordering::Relaxed).is_ok_and(|ty| ty != HVMSG_NONE))
}

/// Takes the message waiting in the SINT2 slot, if any: copies the 256
/// bytes out, then ends the message (clears the type, and if the
/// hypervisor marked more pending, tells it). Shared by all backends.
pub(crate) fn take_message(backend: &Backend) -> Option<Result<SynicMessage, ()>> {
    let slot = message_slot(backend.message_page())?;
    // Acquire: the payload the hypervisor wrote before the type is visible.
    let ty = slot.load_u32(0, Ordering::Acquire).ok()?;
    if ty == HVMSG_NONE {
        return None;
    }
    let mut copy = [0u8; SYNIC_MESSAGE_SIZE];
    let copied = slot.read_bytes(0, &mut copy);
    // End of message: free the slot, then (SeqCst on both, pairing with the
    // hypervisor's set-pending-then-recheck) look whether it has more.
    let _ = slot.store_u32(0, HVMSG_NONE, Ordering::SeqCst);
    if slot
        .load_u32(FLAGS_WORD, Ordering::SeqCst)
        .is_ok_and(|w| w & MSG_PENDING_BIT != 0)
    {
        backend.end_of_message();
    }
    Some(copied.map_err(|_| ()).and_then(|()| SynicMessage::parse(&copy).map_err(|_| ())))
}
