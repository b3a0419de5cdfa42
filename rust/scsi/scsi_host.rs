// SPDX-License-Identifier: GPL-2.0
//! Safe Rust over `rust/scsi/scsi_host.c`: a `Scsi_Host` that a Rust
//! driver registers and drives (6.12 has no Rust SCSI abstractions).
//!
//! A driver implements [`ScsiOps`] on its state `T` and creates a
//! [`ScsiHost<T>`]; C calls [`ScsiOps::queuecommand`] for every command
//! (never sleeping) and [`ScsiOps::host_reset`] from the error handler.
//! Each command arrives as a [`Command`], which the driver must finish
//! exactly once ([`Command::done`]) or hand back as busy.
//!
//! Ownership: the [`ScsiHost`] holds the driver's `Arc<T>`; C holds it as
//! the ops' opaque owner pointer, given back only once the host is removed
//! and put, so no callback outlives `T`. Teardown ([`ScsiHost::remove`] or
//! the drop) is process context and waits for the host's devices to go;
//! commands still outstanding then must be finished by the driver first
//! (a host that will not answer any more: fail them).

use crate::rust::base::DeviceRef;
use crate::rust::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, Ordering};
use kernel::error::to_result;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::ForeignOwnable;

/// Bytes of a command's sense buffer.
pub(crate) const SENSE_MAX: usize = bindings::RUSTIC_SCSI_SENSE_MAX as usize;

/// What a SCSI host does; `T` of [`ScsiHost<T>`].
pub(crate) trait ScsiOps: Send + Sync + 'static {
    /// Takes a command (any context, never sleeps): send it and finish it
    /// later, or finish it now ([`Command::done`]); `Err(cmd)` hands it
    /// back untouched for the midlayer to retry (no room now).
    fn queuecommand(&self, cmd: Command) -> core::result::Result<(), Command>;

    /// The error handler's host reset (process context): `Ok` once the
    /// host was reset and no command is outstanding.
    fn host_reset(&self) -> Result {
        Err(EIO)
    }
}

/// A host's limits, fixed when it is made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_lun: u32,
    pub(crate) max_id: u32,
    pub(crate) max_channel: u32,
    pub(crate) max_cmd_len: u32,
    pub(crate) max_sectors: u32,
    pub(crate) sg_tablesize: u16,
    pub(crate) can_queue: u32,
    pub(crate) cmd_per_lun: u32,
    /// Request timeout of every device, seconds.
    pub(crate) timeout_s: u32,
    /// Whether WRITE SAME may be sent.
    pub(crate) write_same: bool,
}

/// A command's data direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// To the device.
    Write,
    /// From the device.
    Read,
    /// No data.
    None,
    /// Bidirectional (Hyper-V has no such command).
    Other,
}

/// What a driver needs of a command.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CommandInfo {
    /// The block-layer tag, below the host's `can_queue`.
    pub(crate) tag: u32,
    /// The CDB (`cdb_len` bytes of it).
    pub(crate) cdb: [u8; 32],
    pub(crate) cdb_len: usize,
    pub(crate) channel: u32,
    pub(crate) id: u32,
    pub(crate) lun: u64,
    /// Bytes of data.
    pub(crate) len: u32,
    pub(crate) direction: Direction,
    /// Whether the device queues tagged commands.
    pub(crate) tagged: bool,
}

/// A command the midlayer handed over, until it is finished.
///
/// # Invariants
///
/// `ptr` is a command given to `queuecommand`, not yet finished nor handed
/// back; whoever holds this owns finishing it.
pub(crate) struct Command {
    ptr: NonNull<bindings::scsi_cmnd>,
}

// SAFETY: a command may be finished from any context and CPU.
unsafe impl Send for Command {}
// SAFETY: `&Command` only reads the command's fixed fields.
unsafe impl Sync for Command {}

impl Command {
    /// The command's tag, CDB, address, length and direction.
    pub(crate) fn info(&self) -> CommandInfo {
        let mut raw = bindings::rustic_scsi_cmd_info::default();
        // SAFETY: a live command (type invariant); C fills `raw`.
        unsafe { bindings::rustic_scsi_cmd_info(self.ptr.as_ptr(), &mut raw) };
        let mut cdb = [0u8; 32];
        let cdb_len = (raw.cdb_len as usize).min(cdb.len());
        if !raw.cdb.is_null() {
            // SAFETY: `cmd->cmnd` holds `cmd_len` bytes (at most 32, the
            // kernel's MAX_COMMAND_SIZE) while the command lives.
            let src = unsafe { core::slice::from_raw_parts(raw.cdb, cdb_len) };
            if let Some(dst) = cdb.get_mut(..cdb_len) {
                dst.copy_from_slice(src);
            }
        }
        let direction = match u32::from(raw.dir) {
            bindings::RUSTIC_SCSI_DIR_WRITE => Direction::Write,
            bindings::RUSTIC_SCSI_DIR_READ => Direction::Read,
            bindings::RUSTIC_SCSI_DIR_NONE => Direction::None,
            _ => Direction::Other,
        };
        CommandInfo {
            tag: raw.tag,
            cdb,
            cdb_len,
            channel: raw.channel,
            id: raw.id,
            lun: raw.lun,
            len: raw.len,
            direction,
            tagged: raw.tagged,
        }
    }

    /// The data's pages as one GPA range into `pfns`: how many, and the
    /// offset in the first. `E2BIG` if more than `pfns` holds, `EINVAL` for
    /// a scatterlist with a gap.
    pub(crate) fn pages(&self, pfns: &mut [u64]) -> Result<(usize, u32)> {
        let max = u32::try_from(pfns.len()).unwrap_or(u32::MAX);
        let mut offset = 0u32;
        // SAFETY: a live command (type invariant); C writes at most `max`
        // entries of `pfns` and the offset.
        let n = unsafe { bindings::rustic_scsi_cmd_pages(self.ptr.as_ptr(), pfns.as_mut_ptr(), max, &mut offset) };
        to_result(n)?;
        Ok((usize::try_from(n).map_err(|_| EINVAL)?, offset))
    }

    /// Finishes the command: `scmnd->result`, sense bytes, residual.
    pub(crate) fn done(self, result: u32, sense: &[u8], resid: u32) {
        let sense = sense.get(..sense.len().min(SENSE_MAX)).unwrap_or(&[]);
        // CAST: at most SENSE_MAX (96).
        let len = sense.len() as u32;
        // SAFETY: a live command, finished once: `self` is consumed
        // (type invariant); C copies `len` bytes of `sense`.
        unsafe { bindings::rustic_scsi_cmd_done(self.ptr.as_ptr(), result, sense.as_ptr(), len, resid) };
    }
}

const NEW: u8 = 0;
const ADDED: u8 = 1;
const REMOVED: u8 = 2;

/// A SCSI host driven by `T`.
///
/// # Invariants
///
/// `ptr` is a host from `rustic_scsi_host_new` with `Adapter::<T>::OPS`
/// and owner `owner` (an `Arc<T>` made foreign), put only in `drop`.
pub(crate) struct ScsiHost<T: ScsiOps> {
    ptr: NonNull<bindings::rustic_scsi_host>,
    owner: *const c_void,
    state: AtomicU8,
    _owner: PhantomData<Arc<T>>,
}

// SAFETY: the host's C functions may be called from any thread; `T` is
// `Send + Sync`.
unsafe impl<T: ScsiOps> Send for ScsiHost<T> {}
// SAFETY: as for `Send`; the state is atomic.
unsafe impl<T: ScsiOps> Sync for ScsiHost<T> {}

impl<T: ScsiOps> ScsiHost<T> {
    /// Allocates a host with `limits`, driven by `owner` (process context).
    pub(crate) fn new(owner: Arc<T>, limits: &Limits) -> Result<Self> {
        let raw = bindings::rustic_scsi_limits {
            max_lun: limits.max_lun,
            max_id: limits.max_id,
            max_channel: limits.max_channel,
            max_cmd_len: limits.max_cmd_len,
            max_sectors: limits.max_sectors,
            sg_tablesize: limits.sg_tablesize,
            can_queue: c_int::try_from(limits.can_queue).unwrap_or(c_int::MAX),
            cmd_per_lun: i16::try_from(limits.cmd_per_lun).unwrap_or(i16::MAX),
            timeout_s: limits.timeout_s,
            write_same: limits.write_same,
        };
        let data = owner.into_foreign();
        // SAFETY: the ops table is `'static` (a promoted constant); C reads
        // `raw` during the call; `data` stays valid until `drop`.
        let ptr = unsafe { bindings::rustic_scsi_host_new(data.cast_mut(), &Adapter::<T>::OPS, &raw) };
        let Some(ptr) = NonNull::new(ptr) else {
            // SAFETY: from `into_foreign` above; C did not keep it.
            drop(unsafe { Arc::<T>::from_foreign(data) });
            return Err(ENOMEM);
        };
        // INVARIANT: a fresh host owning `data`.
        Ok(ScsiHost { ptr, owner: data, state: AtomicU8::new(NEW), _owner: PhantomData })
    }

    /// The host's number (`hostN`).
    pub(crate) fn host_no(&self) -> u32 {
        // SAFETY: a live host (type invariant).
        unsafe { bindings::rustic_scsi_host_no(self.ptr.as_ptr()) }
    }

    /// Adds the host under `parent` (process context) and starts a scan of
    /// it as async work, so the caller does not wait for its devices (the
    /// module loader does, before insmod returns); from now on C calls the
    /// [`ScsiOps`]. Once only (`EBUSY` after).
    pub(crate) fn add(&self, parent: DeviceRef<'_>) -> Result {
        if self.state.compare_exchange(NEW, ADDED, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(EBUSY);
        }
        // SAFETY: a live host, never added; `parent` is a live device,
        // which the SCSI core holds from here on.
        let ret = to_result(unsafe { bindings::rustic_scsi_host_add(self.ptr.as_ptr(), parent.as_raw()) });
        if ret.is_err() {
            self.state.store(REMOVED, Ordering::Release);
        }
        ret
    }

    /// Removes the host if it was added (process context): the scan is
    /// waited for (the driver must have its commands end: a host that will
    /// not answer fails them), its devices go; no [`ScsiOps`] callback runs
    /// after this returns.
    pub(crate) fn remove(&self) {
        if self.state.compare_exchange(ADDED, REMOVED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // SAFETY: an added host, removed once (the exchange).
            unsafe { bindings::rustic_scsi_host_remove(self.ptr.as_ptr()) }
        }
    }
}

impl<T: ScsiOps> Drop for ScsiHost<T> {
    fn drop(&mut self) {
        self.remove();
        // SAFETY: a live host (type invariant), removed if it was added:
        // no callback runs any more. Put once, here.
        unsafe { bindings::rustic_scsi_host_put(self.ptr.as_ptr()) };
        // SAFETY: from `into_foreign` in `new`; the host's callbacks are
        // over and `owner()` borrows ended with `&mut self`.
        drop(unsafe { Arc::<T>::from_foreign(self.owner) });
    }
}

/// The C callbacks of a host driven by `T`.
struct Adapter<T: ScsiOps>(PhantomData<T>);

impl<T: ScsiOps> Adapter<T> {
    const OPS: bindings::rustic_scsi_ops = bindings::rustic_scsi_ops {
        queuecommand: Some(Self::queuecommand_cb),
        host_reset: Some(Self::host_reset_cb),
    };

    /// # Safety
    ///
    /// Called by C as queuecommand of a host made with these ops, with its
    /// owner and a command not yet finished.
    unsafe extern "C" fn queuecommand_cb(owner: *mut c_void, cmd: *mut bindings::scsi_cmnd) -> c_int {
        // SAFETY: the owner is `Arc::<T>::into_foreign`, released only after
        // the host is removed, when no callback runs.
        let this = unsafe { Arc::<T>::borrow(owner.cast_const()) };
        let Some(ptr) = NonNull::new(cmd) else {
            return bindings::RUSTIC_SCSI_MLQUEUE_BUSY as c_int;
        };
        // INVARIANT: a command handed over just now.
        match this.queuecommand(Command { ptr }) {
            Ok(()) => 0,
            // The command goes back to the midlayer: nothing finishes it.
            Err(_cmd) => bindings::RUSTIC_SCSI_MLQUEUE_BUSY as c_int,
        }
    }

    /// # Safety
    ///
    /// Called by C as the host reset handler of a host made with these ops.
    unsafe extern "C" fn host_reset_cb(owner: *mut c_void) -> c_int {
        // SAFETY: as in `queuecommand_cb`.
        let this = unsafe { Arc::<T>::borrow(owner.cast_const()) };
        match this.host_reset() {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}
