// SPDX-License-Identifier: GPL-2.0
//! The simulated hypervisor's SynIC: HvPostMessage into the VMBus host,
//! and the host's messages delivered through the SINT2 slot of a message
//! page with Hyper-V's rules:
//!
//! - a message is written into the slot only when its type is
//!   `HVMSG_NONE`; payload and header first, the type last (release);
//! - while more messages wait, the slot's `msg_pending` flag is set; when
//!   the slot is full the hypervisor sets `msg_pending` and re-checks the
//!   type (SeqCst), pairing with the guest's clear-type-then-read-flags, so
//!   that either the guest sees the flag and writes EOM or the hypervisor
//!   sees the slot free;
//! - EOM makes the hypervisor try delivery again;
//! - each delivery raises the VMBus interrupt on [`CONNECT_CPU`]
//!   asynchronously (an IPI; `rust/sim_hv.c`).

use super::super::hv::{CONNECT_CPU, VMBUS_MESSAGE_TYPE};
use super::super::hv_glue::{msleep, sim, Page};
use super::super::vmbus_core::control::encode;
use super::super::vmbus_core::msg::{HVMSG_NONE, MAX_MESSAGE_SIZE, SYNIC_MESSAGE_SIZE};
use super::super::vmbus_core::shared::SharedMem;
use super::super::vmbus_core::version::MESSAGE_SINT;
use super::host::{Host, SIGNALS, UNEXPECTED};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Most messages waiting for the slot; more are refused as Hyper-V
/// refuses with HV_STATUS_INSUFFICIENT_BUFFERS.
const QUEUE_LIMIT: usize = 64;
const FLAGS_WORD: usize = 4;
const SENDER: usize = 8;
const PAYLOAD: usize = 16;
const MSG_PENDING_BIT: u32 = 1 << 8;

#[derive(Clone, Copy)]
struct Queued {
    len: usize,
    payload: [u8; MAX_MESSAGE_SIZE],
}

struct Inner {
    queue: KVec<Queued>,
    head: usize,
    host: Host,
}

/// The simulated hypervisor with the VMBus host behind it.
#[pin_data]
pub(crate) struct Hypervisor {
    page: Page,
    stopped: AtomicBool,
    #[pin]
    inner: Mutex<Inner>,
}

impl Hypervisor {
    /// A hypervisor whose host is configured by the module parameters.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let host = Host::new(sim::versions_param().as_bytes(), sim::devices_param().as_bytes())?;
        let page = Page::new()?;
        Arc::pin_init(
            pin_init!(Hypervisor {
                page,
                stopped: AtomicBool::new(false),
                inner <- new_mutex!(Inner { queue: KVec::new(), head: 0, host }, "sim_hypervisor"),
            }),
            GFP_KERNEL,
        )
    }

    /// HvPostMessage: the host receives the message now; its answers queue
    /// for the slot.
    pub(crate) fn post_message(&self, connection_id: u32, message_type: u32, payload: &[u8]) -> Result {
        if message_type != VMBUS_MESSAGE_TYPE || payload.len() > MAX_MESSAGE_SIZE {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
            return Err(EINVAL);
        }
        let mut guard = self.inner.lock();
        let Inner { queue, head, host } = &mut *guard;
        let mut result = Ok(());
        host.receive(connection_id, payload, &mut |m| {
            let (payload, len) = encode(m);
            let pending = queue.len().saturating_sub(*head);
            if pending >= QUEUE_LIMIT {
                result = Err(EAGAIN);
                return;
            }
            if queue.push(Queued { len, payload }, GFP_KERNEL).is_err() {
                result = Err(ENOMEM);
            }
        });
        self.deliver(&mut guard);
        result
    }

    /// HvSignalEvent: counted; no device model listens yet.
    pub(crate) fn signal_event(&self, _connection_id: u32) -> Result {
        SIGNALS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The message page of [`CONNECT_CPU`].
    pub(crate) fn message_page(&self) -> SharedMem<'_> {
        self.page.shared()
    }

    /// The guest wrote the EOM MSR: try delivery again.
    pub(crate) fn end_of_message(&self) {
        let mut guard = self.inner.lock();
        self.deliver(&mut guard);
    }

    /// Stops raising interrupts and waits (up to a second) until none is
    /// in flight.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for _ in 0..1000 {
            if sim::irq_idle() {
                return;
            }
            msleep(1);
        }
        pr_err!("sim: an interrupt is still in flight after 1 s\n");
    }

    /// Moves the next queued message into the slot if the slot is free;
    /// else marks it pending.
    fn deliver(&self, inner: &mut Inner) {
        let page = self.page.shared();
        let Ok(slot) = page.subrange(usize::from(MESSAGE_SINT) * SYNIC_MESSAGE_SIZE, SYNIC_MESSAGE_SIZE)
        else {
            return;
        };
        // Two rounds at most: a full slot the guest frees while we mark it.
        for _ in 0..2 {
            let Some(next) = inner.queue.as_slice().get(inner.head).copied() else {
                return;
            };
            if slot.load_u32(0, Ordering::SeqCst) != Ok(HVMSG_NONE) {
                let flags = slot.load_u32(FLAGS_WORD, Ordering::SeqCst).unwrap_or(0);
                let _ = slot.store_u32(FLAGS_WORD, flags | MSG_PENDING_BIT, Ordering::SeqCst);
                if slot.load_u32(0, Ordering::SeqCst) != Ok(HVMSG_NONE) {
                    return;
                }
                continue;
            }
            let more = inner.head.saturating_add(1) < inner.queue.len();
            let len = next.len.min(MAX_MESSAGE_SIZE);
            let _ = slot.write_bytes(PAYLOAD, next.payload.get(..len).unwrap_or(&[]));
            let _ = slot.write_u64(SENDER, 0);
            // `len` <= 240: the cast keeps it.
            let word = len as u32 | if more { MSG_PENDING_BIT } else { 0 };
            let _ = slot.store_u32(FLAGS_WORD, word, Ordering::SeqCst);
            let _ = slot.store_u32(0, VMBUS_MESSAGE_TYPE, Ordering::SeqCst);
            inner.head = inner.head.saturating_add(1);
            if inner.head >= inner.queue.len() {
                inner.queue = KVec::new();
                inner.head = 0;
            }
            if !self.stopped.load(Ordering::SeqCst) {
                if let Err(e) = sim::raise(CONNECT_CPU) {
                    pr_err!("sim: cannot raise the VMBus interrupt: {:?}\n", e);
                }
            }
            return;
        }
    }
}
