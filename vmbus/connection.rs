// SPDX-License-Identifier: GPL-2.0
//! The guest's VMBus connection in the kernel: the sans-I/O control plane
//! (`vmbus_core::control::Control`) driven by a hypervisor backend.
//!
//! - Load: connect, newest version first (the core falls back on each
//!   rejection); the host's messages come from the SynIC slot in the
//!   interrupt's work item ([`Dpc::run`]); offers of primary channels
//!   become devices on the bus. Load waits, bounded, for the version and
//!   then for ALLOFFERS_DELIVERED; a failed or timed-out negotiation fails
//!   the load (as the C driver's `vmbus_bus_init` does).
//! - Unload: remove the devices, send UNLOAD and wait for the response,
//!   bounded; then stop the backend's interrupt and drain the work.
//!
//! Time: the core's deadlines are in milliseconds of [`now_ms`]. The waits
//! here poll every 2 ms and call `advance` on each round, which fails
//! overdue requests. Requests made outside these waits (channel open,
//! GPADLs: not used yet) will need a delayed work calling `advance`.

use super::bus::Devices;
use super::hv::{take_message, Backend, CONNECT_CPU, VMBUS_MESSAGE_TYPE};
use super::hv_glue::{msleep, now_ms, Dpc, IsrRegistration, Page};
use super::vmbus_core::bus::OfferFacts;
use super::vmbus_core::control::{encode, Action, Config, ConnectionState, Control, Error, RequestId};
use super::vmbus_core::msg::Offer;
use super::vmbus_core::version::Version;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Channels and GPADLs the connection tracks.
const CHANNELS: usize = 32;
const GPADLS: usize = 32;

/// How long the host gets to answer any one request.
const REQUEST_TIMEOUT_MS: u64 = 5000;
/// How long load waits for every offer after the version is agreed.
const OFFERS_TIMEOUT_MS: u64 = 10000;

/// `-ETIMEDOUT`, which 6.12's `kernel::error::code` does not name.
#[expect(non_snake_case, reason = "named like the error codes it stands beside")]
fn ETIMEDOUT() -> kernel::error::Error {
    // CAST: ETIMEDOUT (110) fits an i32.
    kernel::error::Error::from_errno(-(kernel::bindings::ETIMEDOUT as i32))
}

const CONNECT: RequestId = RequestId(1);
const UNLOAD: RequestId = RequestId(2);

/// What the waits look at.
#[derive(Default)]
struct Status {
    connect: Option<core::result::Result<(), Error>>,
    unload: Option<core::result::Result<(), Error>>,
    all_offers: bool,
    closing: bool,
}

struct Inner {
    control: KBox<Control<CHANNELS, GPADLS>>,
    status: Status,
}

/// Offers and rescinds, carried out after the lock is dropped (adding a
/// device probes its driver, which may call back into the connection).
enum Deferred {
    Offer(Offer),
    Rescind(u32),
}

/// The connection.
#[pin_data]
pub(crate) struct Connection {
    backend: Backend,
    devices: Arc<Devices>,
    #[pin]
    inner: Mutex<Inner>,
}

impl Connection {
    /// Performs one action under the lock; device changes are deferred.
    fn perform(backend: &Backend, status: &mut Status, deferred: &mut KVec<Deferred>, action: Action) {
        match action {
            Action::Send {
                connection_id,
                message,
            } => {
                let (buf, len) = encode(&message);
                if let Err(e) = backend.post_message(connection_id, VMBUS_MESSAGE_TYPE, buf.get(..len).unwrap_or(&[])) {
                    pr_err!("vmbus: HvPostMessage of {:?} failed: {:?}\n", message.message_type(), e);
                }
            }
            Action::SendGpadl { .. } => pr_err!("vmbus: GPADLs are not supported yet\n"),
            Action::Offer(offer) => {
                if deferred.push(Deferred::Offer(offer), GFP_KERNEL).is_err() {
                    pr_err!("vmbus: out of memory, offer of relid {} dropped\n", offer.child_relid);
                }
            }
            Action::Rescind { child_relid } => {
                if deferred.push(Deferred::Rescind(child_relid), GFP_KERNEL).is_err() {
                    pr_err!("vmbus: out of memory, rescind of relid {} dropped\n", child_relid);
                }
            }
            Action::AllOffersDelivered => status.all_offers = true,
            Action::Complete { request, result } => {
                if request == CONNECT {
                    status.connect = Some(result);
                } else if request == UNLOAD {
                    status.unload = Some(result);
                }
            }
        }
    }

    /// Runs `f` on the control plane under the lock, performs its actions,
    /// then the deferred device changes.
    fn with_control<R>(&self, f: impl FnOnce(&mut Control<CHANNELS, GPADLS>, &mut dyn FnMut(Action)) -> R) -> R {
        let mut deferred = KVec::new();
        let r = {
            let mut guard = self.inner.lock();
            let Inner { control, status } = &mut *guard;
            let backend = &self.backend;
            let mut sink = |a: Action| Self::perform(backend, status, &mut deferred, a);
            f(control, &mut sink)
        };
        for d in deferred {
            self.apply(d);
        }
        r
    }

    fn apply(&self, d: Deferred) {
        match d {
            Deferred::Offer(offer) => {
                if offer.sub_channel_index != 0 {
                    return;
                }
                if self.inner.lock().status.closing {
                    return;
                }
                let facts = OfferFacts {
                    class: offer.if_type,
                    instance: offer.if_instance,
                    relid: offer.child_relid,
                    monitor_id: offer.monitor_id,
                    target_cpu: CONNECT_CPU,
                };
                if let Err(e) = self.devices.add(facts) {
                    pr_err!("vmbus: cannot add the device of relid {}: {:?}\n", offer.child_relid, e);
                }
            }
            Deferred::Rescind(relid) => {
                let _ = self.devices.remove_relid(relid);
                self.with_control(|c, sink| {
                    if let Err(e) = c.release_relid(now_ms(), relid, &mut |a| sink(a)) {
                        pr_err!("vmbus: cannot release relid {}: {:?}\n", relid, e);
                    }
                });
            }
        }
    }

    /// Polls every 2 ms until `done` holds, calling `advance` each round;
    /// false after `limit_ms`.
    fn wait(&self, limit_ms: u64, done: impl Fn(&Status) -> bool) -> bool {
        let deadline = now_ms().saturating_add(limit_ms);
        loop {
            let finished = self.with_control(|c, sink| {
                c.advance(now_ms(), &mut |a| sink(a));
                true
            }) && done(&self.inner.lock().status);
            if finished {
                return true;
            }
            if now_ms() > deadline {
                return false;
            }
            msleep(2);
        }
    }
}

impl Dpc for Connection {
    fn run(&self) {
        // Bounded: the slot holds one message and the host can queue only
        // so many; a host that never stops is cut off here and picked up
        // on the next interrupt.
        for _ in 0..256 {
            let Some(message) = take_message(&self.backend) else {
                return;
            };
            let Ok(message) = message else {
                pr_err!("vmbus: malformed SynIC message dropped\n");
                continue;
            };
            self.with_control(|c, sink| {
                if let Err(e) = c.handle_message(message.payload(), &mut |a| sink(a)) {
                    pr_err!("vmbus: host message rejected: {:?}\n", e);
                }
            });
        }
    }
}

/// The running connection; dropping it unloads.
pub(crate) struct Vmbus {
    conn: Arc<Connection>,
    isr: Option<IsrRegistration<Connection>>,
    // The interrupt page (used before 5.0) and the two monitor pages, whose
    // addresses INITIATE_CONTACT gives the host, as the C driver does; freed
    // after the unload (fields drop after `Drop::drop`).
    _pages: [Page; 3],
}

impl Vmbus {
    /// Connects when a backend is available; `Ok(None)` when there is none.
    pub(crate) fn start(devices: Arc<Devices>) -> Result<Option<Vmbus>> {
        let Some(backend) = Backend::probe()? else {
            pr_info!("vmbus: no hypervisor backend (not Hyper-V, no simulator): the bus stays empty\n");
            return Ok(None);
        };
        let pages = [Page::new()?, Page::new()?, Page::new()?];
        let config = Config {
            max_version: Version::WIN10_V5_3,
            target_vcpu: backend.vp_index(CONNECT_CPU),
            interrupt_page: pages[0].phys(),
            monitor_pages: [pages[1].phys(), pages[2].phys()],
            vtl: 0,
            timeout: REQUEST_TIMEOUT_MS,
        };
        let control = KBox::<Control<CHANNELS, GPADLS>>::new_uninit(GFP_KERNEL)?.write(Control::new(config));
        let conn = Arc::pin_init(
            pin_init!(Connection {
                backend,
                devices,
                inner <- new_mutex!(Inner { control, status: Status::default() }, "vmbus_connection"),
            }),
            GFP_KERNEL,
        )?;
        let vmbus = Vmbus {
            isr: Some(IsrRegistration::new(conn.clone())),
            conn,
            _pages: pages,
        };
        let conn = vmbus.conn.clone();
        conn.with_control(|c, sink| c.connect(now_ms(), CONNECT, &mut |a| sink(a)))
            .map_err(|e| {
                pr_err!("vmbus: cannot start connecting: {:?}\n", e);
                EINVAL
            })?;
        // Each proposal gets REQUEST_TIMEOUT_MS; there are at most 8.
        let limit = REQUEST_TIMEOUT_MS.saturating_mul(9);
        if !conn.wait(limit, |s| s.connect.is_some()) {
            pr_err!("vmbus: no answer to version negotiation\n");
            return Err(ETIMEDOUT());
        }
        match conn.inner.lock().status.connect {
            Some(Ok(())) => {}
            Some(Err(Error::Timeout)) => {
                pr_err!("vmbus: the host did not answer INITIATE_CONTACT within {} ms\n", REQUEST_TIMEOUT_MS);
                return Err(ETIMEDOUT());
            }
            Some(Err(e)) => {
                pr_err!("vmbus: version negotiation failed: {:?}\n", e);
                return Err(ENODEV);
            }
            None => return Err(ETIMEDOUT()),
        }
        let version = conn.inner.lock().control.version();
        if let Some(v) = version {
            pr_info!("vmbus: connected, version {}\n", v);
        }
        if !conn.wait(OFFERS_TIMEOUT_MS, |s| s.all_offers) {
            pr_err!("vmbus: the host did not deliver all offers within {} ms\n", OFFERS_TIMEOUT_MS);
        }
        Ok(Some(vmbus))
    }
}

impl Drop for Vmbus {
    fn drop(&mut self) {
        let conn = &self.conn;
        conn.inner.lock().status.closing = true;
        conn.devices.clear();
        let connected = conn.inner.lock().control.state() == ConnectionState::Connected;
        if connected {
            let started = conn.with_control(|c, sink| c.unload(now_ms(), UNLOAD, &mut |a| sink(a)));
            if started.is_ok() && conn.wait(REQUEST_TIMEOUT_MS.saturating_add(1000), |s| s.unload.is_some()) {
                match conn.inner.lock().status.unload {
                    Some(Ok(())) => pr_info!("vmbus: unloaded, the host acknowledged\n"),
                    Some(Err(e)) => pr_err!("vmbus: unload failed: {:?}\n", e),
                    None => {}
                }
            } else {
                pr_err!("vmbus: no UNLOAD_RESPONSE; giving up\n");
            }
        }
        conn.backend.stop();
        drop(self.isr.take());
    }
}
