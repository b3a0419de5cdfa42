//! SCSI commands as SRBs: building the EXECUTE_SRB the guest sends for a
//! SCSI command, and turning the host's COMPLETE_IO into what the SCSI
//! midlayer wants back: the result (host byte and status byte), the sense
//! data, the residual count, and any follow-up work (rescan or remove the
//! LUN), with the special cases of the C driver's `storvsc_on_io_completion`
//! and `storvsc_handle_error`.
//!
//! Everything the host sends back is checked or bounded here: the sense
//! length is cut to [`SENSE_SIZE`], the transfer length to what the guest
//! asked for, and the LUN a follow-up names is the guest's own (from the
//! request it sent), never the host's.

use super::vstor::{
    Operation, Packet, Srb, Version, MAX_CDB_LEN, REQUEST_COMPLETION_FLAG, SENSE_SIZE,
};
use super::wire::{Error, Result};

/// SRB status values (the low 6 bits of `srb_status`) and its two flag bits.
pub mod status {
    /// `SRB_STATUS_SUCCESS`.
    pub const SUCCESS: u8 = 0x01;
    /// `SRB_STATUS_ABORTED`.
    pub const ABORTED: u8 = 0x02;
    /// `SRB_STATUS_ERROR`.
    pub const ERROR: u8 = 0x04;
    /// `SRB_STATUS_INVALID_REQUEST`.
    pub const INVALID_REQUEST: u8 = 0x06;
    /// `SRB_STATUS_TIMEOUT`.
    pub const TIMEOUT: u8 = 0x09;
    /// `SRB_STATUS_SELECTION_TIMEOUT`.
    pub const SELECTION_TIMEOUT: u8 = 0x0a;
    /// `SRB_STATUS_BUS_RESET`.
    pub const BUS_RESET: u8 = 0x0e;
    /// `SRB_STATUS_DATA_OVERRUN` (Windows uses it for underruns too).
    pub const DATA_OVERRUN: u8 = 0x12;
    /// `SRB_STATUS_INVALID_LUN`: the LUN is gone.
    pub const INVALID_LUN: u8 = 0x20;
    /// `SRB_STATUS_INTERNAL_ERROR`.
    pub const INTERNAL_ERROR: u8 = 0x30;
    /// `SRB_STATUS_QUEUE_FROZEN` flag.
    pub const QUEUE_FROZEN: u8 = 0x40;
    /// `SRB_STATUS_AUTOSENSE_VALID` flag: the SRB carries sense data.
    pub const AUTOSENSE_VALID: u8 = 0x80;

    /// The status code without the two flag bits (`SRB_STATUS()`).
    pub const fn code(srb_status: u8) -> u8 {
        srb_status & !(AUTOSENSE_VALID | QUEUE_FROZEN)
    }
}

/// SRB flag bits the guest sets (`SRB_FLAGS_*`).
pub mod flags {
    /// `SRB_FLAGS_QUEUE_ACTION_ENABLE`.
    pub const QUEUE_ACTION_ENABLE: u32 = 0x02;
    /// `SRB_FLAGS_DISABLE_SYNCH_TRANSFER`.
    pub const DISABLE_SYNCH_TRANSFER: u32 = 0x08;
    /// `SRB_FLAGS_DATA_IN`.
    pub const DATA_IN: u32 = 0x40;
    /// `SRB_FLAGS_DATA_OUT`.
    pub const DATA_OUT: u32 = 0x80;
    /// `SRB_FLAGS_NO_QUEUE_FREEZE`.
    pub const NO_QUEUE_FREEZE: u32 = 0x100;
}

/// `queue_tag` of a tagged request (`SP_UNTAGGED`).
pub const SP_UNTAGGED: u8 = 0xff;
/// `queue_action` of a tagged request (`SRB_SIMPLE_TAG_REQUEST`).
pub const SIMPLE_TAG_REQUEST: u8 = 0x20;
/// `time_out_value` the guest puts in every SRB, seconds.
pub const SRB_TIMEOUT_SECS: u32 = 60;

/// SAM status bytes this module looks at.
pub mod sam {
    /// GOOD.
    pub const GOOD: u8 = 0x00;
    /// CHECK CONDITION: sense data describes the error.
    pub const CHECK_CONDITION: u8 = 0x02;
}

/// SCSI opcodes the completion path treats specially.
pub mod opcode {
    /// TEST UNIT READY.
    pub const TEST_UNIT_READY: u8 = 0x00;
    /// INQUIRY.
    pub const INQUIRY: u8 = 0x12;
    /// MODE SENSE(6).
    pub const MODE_SENSE: u8 = 0x1a;
    /// SET WINDOW (smartd sends it; old hosts do not handle it).
    pub const SET_WINDOW: u8 = 0x24;
    /// WRITE SAME(10) (old hosts do not handle it).
    pub const WRITE_SAME: u8 = 0x41;
    /// MODE SENSE(10).
    pub const MODE_SENSE_10: u8 = 0x5a;
    /// ATA PASS-THROUGH(16).
    pub const ATA_16: u8 = 0x85;
    /// MAINTENANCE IN (not handled by Hyper-V's FC pass-through).
    pub const MAINTENANCE_IN: u8 = 0xa3;
    /// ATA PASS-THROUGH(12).
    pub const ATA_12: u8 = 0xa1;
}

/// Linux host bytes (`DID_*`) the mapping produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HostByte {
    /// `DID_OK`.
    Ok = 0x00,
    /// `DID_NO_CONNECT`: the LUN is gone.
    NoConnect = 0x01,
    /// `DID_BAD_TARGET`.
    BadTarget = 0x04,
    /// `DID_ERROR`.
    Error = 0x07,
    /// `DID_PASSTHROUGH`: hand an ATA pass-through error up as is.
    Passthrough = 0x0a,
    /// `DID_REQUEUE`: retry later (after the rescan).
    Requeue = 0x0d,
}

/// A SCSI command's result as the midlayer reads `scmnd->result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScsiResult {
    /// The host byte.
    pub host: HostByte,
    /// The SAM status byte.
    pub status: u8,
}

impl ScsiResult {
    /// `host << 16 | status`, the value of `scmnd->result`.
    pub fn raw(self) -> u32 {
        (u32::from(self.host as u8) << 16) | u32::from(self.status)
    }
}

/// `data_in`: the direction of a command's data (`enum storvsc_request_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DataDirection {
    /// Guest to host (`WRITE_TYPE`).
    Write = 0,
    /// Host to guest (`READ_TYPE`).
    Read = 1,
    /// No data (`UNKNOWN_TYPE`).
    None = 2,
}

impl DataDirection {
    /// The direction for a wire value.
    pub fn from_raw(raw: u8) -> Option<DataDirection> {
        match raw {
            0 => Some(DataDirection::Write),
            1 => Some(DataDirection::Read),
            2 => Some(DataDirection::None),
            _ => None,
        }
    }

    fn srb_flag(self) -> u32 {
        match self {
            DataDirection::Write => flags::DATA_OUT,
            DataDirection::Read => flags::DATA_IN,
            DataDirection::None => 0,
        }
    }
}

/// A SCSI command the guest sends.
#[derive(Clone, Copy, Debug)]
pub struct Command<'a> {
    /// The port (the C driver puts the SCSI host number here).
    pub port: u8,
    /// The SCSI channel (`path_id`).
    pub path: u8,
    /// The target.
    pub target: u8,
    /// The LUN.
    pub lun: u8,
    /// The CDB, 1 to [`MAX_CDB_LEN`] bytes.
    pub cdb: &'a [u8],
    /// Data direction.
    pub direction: DataDirection,
    /// Bytes of data (the GPA range's length); 0 with no data.
    pub data_len: u32,
    /// Whether the device does tagged queueing.
    pub tagged: bool,
}

/// Builds the EXECUTE_SRB packet for `cmd` as the C driver fills it: the
/// SRB's length for `version`, room for [`SENSE_SIZE`] sense bytes, a
/// 60-second SRB timeout, synchronous transfer off, simple tags when the
/// device queues. Fails with [`Error::BadField`] for an empty or too long
/// CDB, or data with no direction.
pub fn execute_srb(cmd: &Command<'_>, version: Version) -> Result<Packet> {
    if cmd.cdb.is_empty() || cmd.cdb.len() > MAX_CDB_LEN {
        return Err(Error::BadField("cdb_length"));
    }
    // A direction with no data moves nothing; data with no direction
    // would leave the host guessing.
    if cmd.direction == DataDirection::None && cmd.data_len != 0 {
        return Err(Error::BadField("data_in"));
    }
    let mut srb = Srb {
        length: version.srb_length(),
        port: cmd.port,
        path: cmd.path,
        target: cmd.target,
        lun: cmd.lun,
        // CAST: checked above to be at most 16.
        cdb_length: cmd.cdb.len() as u8,
        // CAST: SENSE_SIZE is 20.
        sense_info_length: version.sense_size() as u8,
        data_in: cmd.direction as u8,
        data_transfer_length: cmd.data_len,
        time_out_value: SRB_TIMEOUT_SECS,
        srb_flags: flags::DISABLE_SYNCH_TRANSFER | cmd.direction.srb_flag(),
        ..Srb::default()
    };
    super::wire::copy(&mut srb.buffer, cmd.cdb);
    if cmd.tagged {
        srb.srb_flags |= flags::QUEUE_ACTION_ENABLE | flags::NO_QUEUE_FREEZE;
        srb.queue_tag = SP_UNTAGGED;
        srb.queue_action = SIMPLE_TAG_REQUEST;
    }
    let mut p = Packet::new(Operation::ExecuteSrb, REQUEST_COMPLETION_FLAG, 0);
    p.set_srb(&srb);
    Ok(p)
}

/// Whether the guest may send a command with this opcode under `version`:
/// hosts up to 5.1 do not handle WRITE SAME(10) or SET WINDOW, so the C
/// driver fails those itself with `DID_ERROR` ([`filtered_result`]).
pub fn command_allowed(version: Version, opcode: u8) -> bool {
    !(version.filters_commands()
        && matches!(opcode, opcode::WRITE_SAME | opcode::SET_WINDOW))
}

/// The result of a command [`command_allowed`] refused.
pub const fn filtered_result() -> ScsiResult {
    ScsiResult {
        host: HostByte::Error,
        status: sam::GOOD,
    }
}

/// A reset request (RESET_BUS, RESET_ADAPTER or RESET_LUN) for the given
/// address; the C driver sends RESET_BUS with the device's `path_id` from
/// its host reset handler.
pub fn reset(operation: Operation, path: u8, target: u8, lun: u8) -> Result<Packet> {
    if !matches!(
        operation,
        Operation::ResetBus | Operation::ResetAdapter | Operation::ResetLun
    ) {
        return Err(Error::BadField("operation"));
    }
    let mut p = Packet::request(operation);
    p.set_srb(&Srb {
        path,
        target,
        lun,
        ..Srb::default()
    });
    Ok(p)
}

/// Work the driver must do after completing a command, on a work queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Followup {
    /// Nothing.
    None,
    /// Rescan this LUN (its capacity or parameters changed); the command
    /// was requeued.
    Rescan {
        /// Target of the command.
        target: u8,
        /// LUN of the command.
        lun: u8,
    },
    /// Remove this LUN: the host says it is gone.
    Remove {
        /// Target of the command.
        target: u8,
        /// LUN of the command.
        lun: u8,
    },
}

/// How a command ended, for the midlayer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoOutcome {
    /// `scmnd->result`.
    pub result: ScsiResult,
    /// Sense data for `scmnd->sense_buffer`, `sense_len` bytes of it.
    pub sense: [u8; SENSE_SIZE],
    /// Bytes of `sense` that are valid (0 when none were copied).
    pub sense_len: u8,
    /// Bytes moved, at most what the guest asked for.
    pub transferred: u32,
    /// `data_len - transferred`, for `scsi_set_resid`.
    pub resid: u32,
    /// Work to queue.
    pub followup: Followup,
}

/// Sense key, ASC and ASCQ of fixed (0x70/0x71) or descriptor (0x72/0x73)
/// sense data, as `scsi_normalize_sense` finds them; `None` if the bytes
/// are not sense data.
pub fn sense_codes(sense: &[u8]) -> Option<(u8, u8, u8)> {
    use super::wire::u8_at;
    let code = u8_at(sense, 0)? & 0x7f;
    match code {
        0x70 | 0x71 => Some((
            u8_at(sense, 2)? & 0x0f,
            u8_at(sense, 12).unwrap_or(0),
            u8_at(sense, 13).unwrap_or(0),
        )),
        0x72 | 0x73 => Some((
            u8_at(sense, 1)? & 0x0f,
            u8_at(sense, 2).unwrap_or(0),
            u8_at(sense, 3).unwrap_or(0),
        )),
        _ => None,
    }
}

/// Maps the host's completion of a command to its outcome. `sent` is the
/// SRB the guest sent (its CDB, length and address are trusted), `reply`
/// the SRB in the host's COMPLETE_IO; `is_fc` whether the controller is
/// Fibre Channel.
///
/// The cases, as the C driver handles them:
/// - INQUIRY, MODE SENSE(6/10) and, on FC, MAINTENANCE IN always succeed:
///   Hyper-V fails some of their pages, which must not be fatal.
/// - The status byte is the host's; sense is copied (at most
///   [`SENSE_SIZE`] bytes) only for CHECK CONDITION with autosense valid.
/// - Any SRB status but SUCCESS, by its code: ERROR, ABORTED,
///   INVALID_REQUEST, INTERNAL_ERROR, TIMEOUT, SELECTION_TIMEOUT, BUS_RESET
///   and DATA_OVERRUN with autosense: "capacity data changed" (2a/09) and
///   "operating parameters changed" (3f/xx but 3f/03, 3f/0e) requeue the
///   command and rescan the LUN; other sense goes up as it is. Without
///   sense: ATA pass-through gets `DID_PASSTHROUGH`, TEST UNIT READY is
///   left to the sense-less status, everything else is `DID_ERROR`.
///   INVALID_LUN is `DID_NO_CONNECT` and removes the LUN.
/// - The transfer length counts only on SUCCESS and on a bare
///   DATA_OVERRUN (no flag bits, as the C driver compares); it is cut to
///   the request's length.
pub fn complete_io(sent: &Srb, reply: &Srb, is_fc: bool) -> IoOutcome {
    let op = sent.buffer.first().copied().unwrap_or(0);
    let (mut scsi_status, mut srb_status) = (reply.scsi_status, reply.srb_status);
    let forced = matches!(op, opcode::INQUIRY | opcode::MODE_SENSE | opcode::MODE_SENSE_10)
        || (is_fc && op == opcode::MAINTENANCE_IN);
    if forced {
        scsi_status = sam::GOOD;
        srb_status = status::SUCCESS;
    }

    let mut sense = [0u8; SENSE_SIZE];
    let mut sense_len = 0u8;
    if scsi_status == sam::CHECK_CONDITION && srb_status & status::AUTOSENSE_VALID != 0 {
        // CAST: SENSE_SIZE is 20.
        sense_len = reply.sense_info_length.min(SENSE_SIZE as u8);
        let n = usize::from(sense_len);
        super::wire::copy(&mut sense, reply.buffer.get(..n).unwrap_or(&[]));
    }

    let mut host = HostByte::Ok;
    let mut followup = Followup::None;
    let mut transferred = reply.data_transfer_length;
    if srb_status != status::SUCCESS {
        let codes = if scsi_status != sam::GOOD {
            sense_codes(sense.get(..usize::from(sense_len)).unwrap_or(&[]))
        } else {
            None
        };
        match status::code(srb_status) {
            status::ERROR
            | status::ABORTED
            | status::INVALID_REQUEST
            | status::INTERNAL_ERROR
            | status::TIMEOUT
            | status::SELECTION_TIMEOUT
            | status::BUS_RESET
            | status::DATA_OVERRUN => {
                if srb_status & status::AUTOSENSE_VALID != 0 {
                    let rescan = match codes {
                        Some((_, 0x2a, 0x09)) => true,
                        Some((_, 0x3f, ascq)) => ascq != 0x03 && ascq != 0x0e,
                        _ => false,
                    };
                    if rescan {
                        host = HostByte::Requeue;
                        followup = Followup::Rescan {
                            target: sent.target,
                            lun: sent.lun,
                        };
                    }
                } else {
                    match op {
                        opcode::ATA_16 | opcode::ATA_12 => host = HostByte::Passthrough,
                        opcode::TEST_UNIT_READY => {}
                        _ => host = HostByte::Error,
                    }
                }
            }
            status::INVALID_LUN => {
                host = HostByte::NoConnect;
                followup = Followup::Remove {
                    target: sent.target,
                    lun: sent.lun,
                };
            }
            _ => {}
        }
        if srb_status != status::DATA_OVERRUN {
            transferred = 0;
        }
    }
    transferred = transferred.min(sent.data_transfer_length);
    IoOutcome {
        result: ScsiResult {
            host,
            status: scsi_status,
        },
        sense,
        sense_len,
        transferred,
        resid: sent.data_transfer_length.saturating_sub(transferred),
        followup,
    }
}
