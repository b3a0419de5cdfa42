// SPDX-License-Identifier: GPL-2.0
//! The hypervisor interface: everything the VMBus connection needs from the
//! hypervisor, behind one trait ([`Hypervisor`]) with one implementation
//! per backend.
//!
//! - post a message (HvPostMessage: connection id, message type, payload of
//!   at most 240 bytes);
//! - signal an event (HvSignalEvent);
//! - the SynIC message slot of [`MESSAGE_SINT`] on the CPU that takes VMBus
//!   messages, as [`SharedMem`], and end-of-message;
//! - the SynIC event flags page of a CPU;
//! - the VP index of a CPU.
//!
//! The interrupt itself is registered with
//! [`crate::rust::vmbus::interrupt::IsrRegistration`]
//! (`rust/vmbus/interrupt.c`): every backend raises the same
//! `rustic_hv_isr()`.
//!
//! Backends; the module root chooses one, and no file of this layer names
//! the simulator:
//! - the simulator (`tests/sim/`, test builds, `simulate=1`);
//! - real Hyper-V ([`super::hyperv`] over `rust/vmbus/hyperv.c`), chosen
//!   when `hv_is_hyperv_initialized()`
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

use crate::vmbus_core::msg::{
    MessageType, SynicMessage, HVMSG_CHANNEL, HVMSG_NONE, MAX_MESSAGE_SIZE, SYNIC_MESSAGE_SIZE,
};
use crate::vmbus_core::shared::SharedMem;
use crate::vmbus_core::version::MESSAGE_SINT;
use core::sync::atomic::Ordering;
use kernel::prelude::*;
use kernel::sync::Arc;

/// The message type of VMBus channel messages in HvPostMessage (the C
/// driver's `hv_post_message(..., 1, ...)`) and in the SynIC slot.
pub(crate) const VMBUS_MESSAGE_TYPE: u32 = HVMSG_CHANNEL;

/// The CPU whose SynIC receives VMBus channel messages (the C driver's
/// `VMBUS_CONNECT_CPU`).
pub(crate) const CONNECT_CPU: u32 = 0;

/// Offset of the `message_flags` word (`payload_size`, `message_flags`,
/// `reserved`) in a slot; `msg_pending` is bit 8 of it.
const FLAGS_WORD: usize = 4;
const MSG_PENDING_BIT: u32 = 1 << 8;
/// Offset of the payload in a slot (after type, flags word and sender).
const PAYLOAD: usize = 16;

/// The hypervisor, as the VMBus connection uses it. Implemented by real
/// Hyper-V ([`super::hyperv`]) and, in test builds, by the simulator; the
/// module root picks one ([`Backend`]).
pub(crate) trait Hypervisor: Send + Sync + 'static {
    /// HvPostMessage: `payload` (at most 240 bytes, checked by
    /// [`Backend::post_message`]) to `connection_id`. Errors: `ENXIO`
    /// when the host has no port at `connection_id`
    /// (`HV_STATUS_INVALID_CONNECTION_ID`), `EAGAIN` when its port is full
    /// for now (`HV_STATUS_INSUFFICIENT_BUFFERS`,
    /// `HV_STATUS_INSUFFICIENT_MEMORY`: worth retrying), anything else
    /// for any other failure.
    fn post_message(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result;
    /// HvSignalEvent on `connection_id`.
    fn signal_event(&self, connection_id: u32) -> Result;
    /// The SynIC message page of [`CONNECT_CPU`].
    fn message_page(&self) -> SharedMem<'_>;
    /// The SynIC event flags page of `cpu`, if that CPU's SynIC is set up.
    fn event_page(&self, cpu: u32) -> Option<SharedMem<'_>>;
    /// Whether every CPU can take channel interrupts (else only
    /// [`CONNECT_CPU`]).
    fn all_cpus(&self) -> bool;
    /// An open channel now targets `cpu` (`targeted`), or no longer does,
    /// so that a backend that needs to can keep that CPU online meanwhile.
    /// A new target is counted with CPU hotplug held off and the CPU
    /// online. Called under a spinlock: must not sleep.
    fn channel_cpu(&self, _cpu: u32, _targeted: bool) {}
    /// Tells the hypervisor the message slot is free (the EOM MSR write).
    fn end_of_message(&self);
    /// The hypervisor's VP index of `cpu`.
    fn vp_index(&self, cpu: u32) -> u32;
    /// Stops the backend's interrupts and waits (bounded) until none is in
    /// flight; after this the interrupt work can be drained.
    fn stop(&self);

    // The crash path (kexec, kdump, panic): interrupts off, other CPUs
    // perhaps stopped. These may not sleep, take sleeping locks or wait
    // on another CPU.

    /// HvPostMessage with interrupts off: no retry, no sleep.
    fn post_message_atomic(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result;
    /// The SynIC message page of `cpu`, where it has one: the host may
    /// answer UNLOAD on another CPU than [`CONNECT_CPU`], so the crash path
    /// looks at every CPU's.
    fn message_page_of(&self, cpu: u32) -> Option<SharedMem<'_>>;
    /// The EOM MSR written on this CPU (no IPI), with interrupts off.
    fn end_of_message_local(&self);
    /// Whether this is the hypervisor the kernel's own Hyper-V code drives,
    /// whose kexec and crash handlers then call the crash path.
    fn is_hyperv(&self) -> bool;
}

/// The hypervisor the connection runs on.
pub(crate) struct Backend(Arc<dyn Hypervisor>);

impl Backend {
    /// Wraps a hypervisor implementation.
    pub(crate) fn new(hv: Arc<dyn Hypervisor>) -> Self {
        Backend(hv)
    }

    /// HvPostMessage: `payload` (at most 240 bytes) to `connection_id`.
    pub(crate) fn post_message(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result {
        if payload.len() > MAX_MESSAGE_SIZE {
            return Err(EINVAL);
        }
        self.0.post_message(connection_id, message_type, payload)
    }
}

impl core::ops::Deref for Backend {
    type Target = dyn Hypervisor;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// The SINT2 slot of the message page.
fn message_slot(page: SharedMem<'_>) -> Option<SharedMem<'_>> {
    page.subrange(usize::from(MESSAGE_SINT) * SYNIC_MESSAGE_SIZE, SYNIC_MESSAGE_SIZE).ok()
}

/// Whether a message waits in the SINT2 slot (any context: one read).
pub(crate) fn message_waiting(backend: &dyn Hypervisor) -> bool {
    message_slot(backend.message_page()).is_some_and(|slot| slot.load_u32(0, Ordering::Relaxed).is_ok_and(|ty| ty != HVMSG_NONE))
}

/// What the crash path found in one CPU's SINT2 slot.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discarded {
    /// The slot was empty.
    Nothing,
    /// CHANNELMSG_UNLOAD_RESPONSE.
    UnloadResponse,
    /// Any other message.
    Other,
}

/// The crash path's look at a message page: frees its SINT2 slot (and
/// writes EOM on this CPU if the hypervisor has more), telling whether it
/// held the UNLOAD_RESPONSE. Nothing else is handled any more; any
/// context.
pub(crate) fn discard_message(backend: &dyn Hypervisor, page: SharedMem<'_>) -> Discarded {
    let Some(slot) = message_slot(page) else {
        return Discarded::Nothing;
    };
    let ty = slot.load_u32(0, Ordering::Acquire).unwrap_or(HVMSG_NONE);
    if ty == HVMSG_NONE {
        return Discarded::Nothing;
    }
    // The channel message type is the payload's first word.
    let unload_response = ty == HVMSG_CHANNEL
        && slot.load_u32(PAYLOAD, Ordering::Relaxed).ok() == Some(MessageType::UnloadResponse as u32);
    let _ = slot.store_u32(0, HVMSG_NONE, Ordering::SeqCst);
    if slot
        .load_u32(FLAGS_WORD, Ordering::SeqCst)
        .is_ok_and(|w| w & MSG_PENDING_BIT != 0)
    {
        backend.end_of_message_local();
    }
    if unload_response {
        Discarded::UnloadResponse
    } else {
        Discarded::Other
    }
}

/// Empties `page`'s SINT2 slot without looking at it (the crash path's
/// last step, so that the next kernel starts with an empty slot).
pub(crate) fn clear_slot(page: SharedMem<'_>) {
    if let Some(slot) = message_slot(page) {
        let _ = slot.store_u32(0, HVMSG_NONE, Ordering::SeqCst);
    }
}

/// Takes the message waiting in the SINT2 slot, if any: copies the 256
/// bytes out, then ends the message (clears the type, and if the
/// hypervisor marked more pending, tells it). Shared by all backends.
pub(crate) fn take_message(backend: &dyn Hypervisor) -> Option<Result<SynicMessage, ()>> {
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
