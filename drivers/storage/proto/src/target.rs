//! The simulated host's SCSI target: RAM-backed LUNs answering the commands
//! Linux sends at probe and for I/O, as a Hyper-V virtual disk does
//! (vendor `Msft`, product `Virtual Disk`), with fixed-format sense data
//! for everything it refuses.
//!
//! Commands: INQUIRY (standard data; VPD pages 00, 80, 83, B0, B1, B2),
//! TEST UNIT READY, REQUEST SENSE, READ CAPACITY(10) and (16), READ and
//! WRITE (6), (10), (16), MODE SENSE(6) and (10) (the caching page and
//! "all pages"), REPORT LUNS, SYNCHRONIZE CACHE(10) and (16), UNMAP and
//! WRITE SAME(16). Anything else is ILLEGAL REQUEST / invalid command
//! operation code. A LUN that does not exist answers INQUIRY with
//! peripheral qualifier 3 ("no device here", so a scan skips it) and REPORT
//! LUNS with its target's list; every other command to it fails with
//! `SRB_STATUS_INVALID_LUN`.
//!
//! The guest is not trusted: every LBA range is checked against the LUN's
//! size, every transfer against the buffer the guest described and the
//! direction it claimed. The target never reads or writes outside the LUN's
//! medium or the data buffer.

use super::srb::{sam, status, DataDirection};
use super::vstor::SENSE_SIZE;

/// A LUN as the target needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LunInfo {
    /// Logical block size: 512 or 4096.
    pub sector_size: u32,
    /// A number unique on the host: the serial number (VPD 80) and the
    /// NAA identifier (VPD 83) are made from it.
    pub id: u32,
    /// Whether the LUN is thin (UNMAP and WRITE SAME with UNMAP deallocate;
    /// READ CAPACITY(16) and VPD B2 say so).
    pub thin: bool,
}

/// One LUN: what it is and the memory behind it; the LUN has
/// `medium.len() / sector_size` blocks.
#[derive(Debug)]
pub struct Lun<'a> {
    /// Its description.
    pub info: LunInfo,
    /// Its blocks.
    pub medium: &'a mut [u8],
}

impl Lun<'_> {
    fn blocks(&self) -> u64 {
        let size = u64::from(self.info.sector_size.max(1));
        u64::try_from(self.medium.len()).unwrap_or(0) / size
    }
}

/// The LUNs behind a controller.
pub trait Luns {
    /// The LUN at this address, if there is one.
    fn lun(&mut self, path: u8, target: u8, lun: u8) -> Option<Lun<'_>>;
    /// Calls `f` with each LUN number on `(path, target)`, ascending.
    fn each_lun(&self, path: u8, target: u8, f: &mut dyn FnMut(u8));
}

/// The guest's data buffer for one command (its GPA ranges on the simulated
/// host; a slice in tests). `at` counts from the start of the transfer.
pub trait DataBuffer {
    /// Copies bytes of the guest's buffer into `dst`; false if they are not
    /// all there.
    fn read(&self, at: usize, dst: &mut [u8]) -> bool;
    /// Copies `src` into the guest's buffer; false if it does not fit.
    fn write(&mut self, at: usize, src: &[u8]) -> bool;
}

/// A data buffer in one slice of memory.
#[derive(Debug)]
pub struct Bytes<'a>(pub &'a mut [u8]);

impl DataBuffer for Bytes<'_> {
    fn read(&self, at: usize, dst: &mut [u8]) -> bool {
        match super::wire::slice_at(self.0, at, dst.len()) {
            Some(s) => {
                super::wire::copy(dst, s);
                true
            }
            None => false,
        }
    }

    fn write(&mut self, at: usize, src: &[u8]) -> bool {
        let Some(end) = at.checked_add(src.len()) else {
            return false;
        };
        match self.0.get_mut(at..end) {
            Some(d) => {
                super::wire::copy(d, src);
                true
            }
            None => false,
        }
    }
}

/// A command for the target: the SRB's CDB, address and transfer.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The CDB (1 to 16 bytes).
    pub cdb: &'a [u8],
    /// `path_id`.
    pub path: u8,
    /// `target_id`.
    pub target: u8,
    /// `lun`.
    pub lun: u8,
    /// The direction the guest claimed.
    pub direction: DataDirection,
    /// Bytes in the guest's buffer (`data_transfer_length`).
    pub len: u32,
}

/// How the target ended a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The SRB status, with [`status::AUTOSENSE_VALID`] when there is sense.
    pub srb_status: u8,
    /// The SAM status.
    pub scsi_status: u8,
    /// Fixed-format sense data, `sense_len` bytes of it.
    pub sense: [u8; SENSE_SIZE],
    /// Bytes of sense.
    pub sense_len: u8,
    /// Bytes moved.
    pub transferred: u32,
}

/// Length of the fixed-format sense data the target builds.
pub const FIXED_SENSE_LEN: u8 = 18;

/// Sense keys.
pub mod key {
    /// NO SENSE.
    pub const NO_SENSE: u8 = 0x0;
    /// MEDIUM ERROR.
    pub const MEDIUM_ERROR: u8 = 0x3;
    /// ILLEGAL REQUEST.
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    /// UNIT ATTENTION.
    pub const UNIT_ATTENTION: u8 = 0x6;
    /// ABORTED COMMAND.
    pub const ABORTED_COMMAND: u8 = 0xb;
}

/// Additional sense codes (ASC, ASCQ) the target uses.
pub mod asc {
    /// Invalid command operation code.
    pub const INVALID_OPCODE: (u8, u8) = (0x20, 0x00);
    /// Logical block address out of range.
    pub const LBA_OUT_OF_RANGE: (u8, u8) = (0x21, 0x00);
    /// Invalid field in CDB.
    pub const INVALID_FIELD_IN_CDB: (u8, u8) = (0x24, 0x00);
    /// Invalid field in parameter list.
    pub const INVALID_FIELD_IN_PARAM: (u8, u8) = (0x26, 0x00);
    /// Capacity data has changed.
    pub const CAPACITY_CHANGED: (u8, u8) = (0x2a, 0x09);
    /// Unrecovered read error.
    pub const UNRECOVERED_READ: (u8, u8) = (0x11, 0x00);
}

impl Reply {
    /// GOOD with `transferred` bytes moved.
    pub fn good(transferred: u32) -> Reply {
        Reply {
            srb_status: status::SUCCESS,
            scsi_status: sam::GOOD,
            sense: [0; SENSE_SIZE],
            sense_len: 0,
            transferred,
        }
    }

    /// CHECK CONDITION with fixed-format sense (`SRB_STATUS_ERROR` with
    /// autosense), nothing moved.
    pub fn check(sense_key: u8, (asc, ascq): (u8, u8)) -> Reply {
        let mut sense = [0u8; SENSE_SIZE];
        let mut w = super::wire::Writer::new(&mut sense, 0);
        w.u8(0, 0x70);
        w.u8(2, sense_key & 0x0f);
        w.u8(7, FIXED_SENSE_LEN - 8);
        w.u8(12, asc);
        w.u8(13, ascq);
        Reply {
            srb_status: status::ERROR | status::AUTOSENSE_VALID,
            scsi_status: sam::CHECK_CONDITION,
            sense,
            sense_len: FIXED_SENSE_LEN,
            transferred: 0,
        }
    }

    /// An SRB status with no SCSI status or sense.
    pub fn srb(srb_status: u8) -> Reply {
        Reply {
            srb_status,
            scsi_status: sam::GOOD,
            sense: [0; SENSE_SIZE],
            sense_len: 0,
            transferred: 0,
        }
    }

    fn illegal(asc: (u8, u8)) -> Reply {
        Reply::check(key::ILLEGAL_REQUEST, asc)
    }
}

/// What a command did, for the host's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Effect {
    /// Blocks read.
    pub blocks_read: u64,
    /// Blocks written.
    pub blocks_written: u64,
    /// Blocks unmapped (UNMAP, WRITE SAME with UNMAP).
    pub blocks_unmapped: u64,
    /// A SYNCHRONIZE CACHE.
    pub flushed: bool,
}

/// Vendor identification in INQUIRY (8 bytes).
pub const VENDOR: &[u8; 8] = b"Msft    ";
/// Product identification in INQUIRY (16 bytes).
pub const PRODUCT: &[u8; 16] = b"Virtual Disk    ";
/// Product revision in INQUIRY (4 bytes).
pub const REVISION: &[u8; 4] = b"1.0 ";
/// Largest UNMAP or WRITE SAME the target takes, in blocks (VPD B0).
pub const MAX_UNMAP_BLOCKS: u32 = 0x0040_0000;
/// Largest number of UNMAP block descriptors (VPD B0).
pub const MAX_UNMAP_DESCRIPTORS: u32 = 256;

fn be16(b: &[u8], at: usize) -> u16 {
    super::wire::bytes_at(b, at).map_or(0, u16::from_be_bytes)
}

fn be32(b: &[u8], at: usize) -> u32 {
    super::wire::bytes_at(b, at).map_or(0, u32::from_be_bytes)
}

fn be64(b: &[u8], at: usize) -> u64 {
    super::wire::bytes_at(b, at).map_or(0, u64::from_be_bytes)
}

fn byte(b: &[u8], at: usize) -> u8 {
    super::wire::u8_at(b, at).unwrap_or(0)
}

/// Sends `data` (a response the target built) to the guest, cut to the
/// CDB's allocation length and to the guest's buffer.
fn data_in(req: &Request<'_>, data: &[u8], alloc: usize, buf: &mut dyn DataBuffer) -> Reply {
    if req.direction != DataDirection::Read && alloc != 0 {
        return Reply::srb(status::INVALID_REQUEST);
    }
    let n = data
        .len()
        .min(alloc)
        .min(super::wire::to_usize(req.len));
    let Some(part) = data.get(..n) else {
        return Reply::srb(status::INVALID_REQUEST);
    };
    if !buf.write(0, part) {
        return Reply::srb(status::INVALID_REQUEST);
    }
    // CAST: n is at most req.len, a u32.
    Reply::good(n as u32)
}

/// Executes one command against `luns`, moving data through `buf`; what it
/// did to the medium is added to `effect`.
pub fn execute(
    req: &Request<'_>,
    luns: &mut dyn Luns,
    buf: &mut dyn DataBuffer,
    effect: &mut Effect,
) -> Reply {
    let op = byte(req.cdb, 0);
    // Commands that work without a LUN.
    match op {
        0x12 if luns.lun(req.path, req.target, req.lun).is_none() => {
            return inquiry_no_lun(req, buf);
        }
        0xa0 => return report_luns(req, luns, buf),
        _ => {}
    }
    let Some(mut lun) = luns.lun(req.path, req.target, req.lun) else {
        return Reply::srb(status::INVALID_LUN);
    };
    if !matches!(lun.info.sector_size, 512 | 4096) {
        return Reply::srb(status::INTERNAL_ERROR);
    }
    match op {
        0x00 => Reply::good(0),
        0x03 => request_sense(req, buf),
        0x12 => inquiry(req, &lun, buf),
        0x25 => read_capacity_10(req, &lun, buf),
        0x9e if byte(req.cdb, 1) & 0x1f == 0x10 => read_capacity_16(req, &lun, buf),
        0x08 | 0x0a => {
            let lba = u64::from(be32(req.cdb, 0) & 0x001f_ffff);
            let count = match byte(req.cdb, 4) {
                0 => 256,
                n => u32::from(n),
            };
            rw(req, &mut lun, buf, lba, count, op == 0x0a, effect)
        }
        0x28 | 0x2a => {
            let lba = u64::from(be32(req.cdb, 2));
            let count = u32::from(be16(req.cdb, 7));
            rw(req, &mut lun, buf, lba, count, op == 0x2a, effect)
        }
        0x88 | 0x8a => {
            let lba = be64(req.cdb, 2);
            let count = be32(req.cdb, 10);
            rw(req, &mut lun, buf, lba, count, op == 0x8a, effect)
        }
        0x1a => mode_sense(req, &lun, buf, false),
        0x5a => mode_sense(req, &lun, buf, true),
        0x35 | 0x91 => {
            effect.flushed = true;
            Reply::good(0)
        }
        0x42 if lun.info.thin => unmap(req, &mut lun, buf, effect),
        0x93 if lun.info.thin || byte(req.cdb, 1) & 0x08 == 0 => {
            write_same_16(req, &mut lun, buf, effect)
        }
        _ => Reply::illegal(asc::INVALID_OPCODE),
    }
}

fn request_sense(req: &Request<'_>, buf: &mut dyn DataBuffer) -> Reply {
    // No deferred sense is kept: "no sense".
    let mut s = [0u8; FIXED_SENSE_LEN as usize];
    let mut w = super::wire::Writer::new(&mut s, 0);
    w.u8(0, 0x70);
    w.u8(2, key::NO_SENSE);
    w.u8(7, FIXED_SENSE_LEN - 8);
    data_in(req, &s, usize::from(byte(req.cdb, 4)), buf)
}

fn inquiry_no_lun(req: &Request<'_>, buf: &mut dyn DataBuffer) -> Reply {
    // Peripheral qualifier 3, device type 0x1f: no LUN here.
    let mut d = [0u8; 36];
    let mut w = super::wire::Writer::new(&mut d, 0);
    w.u8(0, 0x7f);
    w.u8(2, 0x05);
    w.u8(3, 0x02);
    w.u8(4, 31);
    w.bytes(8, VENDOR);
    w.bytes(16, PRODUCT);
    w.bytes(32, REVISION);
    data_in(req, &d, usize::from(be16(req.cdb, 3)), buf)
}

/// The VPD pages the target has, in the order VPD 00 lists them.
pub const VPD_PAGES: [u8; 6] = [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2];

fn hex_digit(n: u32) -> u8 {
    match n & 0xf {
        d @ 0..=9 => b'0' + d as u8,
        d => b'a' + (d as u8 - 10),
    }
}

/// The serial number of the LUN with this id (VPD 80): ASCII, 16 bytes.
pub fn serial(id: u32) -> [u8; 16] {
    let mut s = *b"RUSTIC00________";
    for (i, b) in s.iter_mut().skip(8).enumerate() {
        // CAST: i < 8.
        *b = hex_digit(id >> (28 - 4 * i as u32));
    }
    s
}

fn inquiry(req: &Request<'_>, lun: &Lun<'_>, buf: &mut dyn DataBuffer) -> Reply {
    let evpd = byte(req.cdb, 1) & 1 != 0;
    let page = byte(req.cdb, 2);
    let alloc = usize::from(be16(req.cdb, 3));
    if !evpd {
        if page != 0 {
            return Reply::illegal(asc::INVALID_FIELD_IN_CDB);
        }
        let mut d = [0u8; 36];
        let mut w = super::wire::Writer::new(&mut d, 0);
        w.u8(0, 0x00); // direct-access block device, connected
        w.u8(2, 0x05); // SPC-3
        w.u8(3, 0x02); // response data format 2
        w.u8(4, 31);
        w.u8(7, 0x02); // CMDQUE: tagged queueing
        w.bytes(8, VENDOR);
        w.bytes(16, PRODUCT);
        w.bytes(32, REVISION);
        return data_in(req, &d, alloc, buf);
    }
    let mut d = [0u8; 64];
    let mut w = super::wire::Writer::new(&mut d, 0);
    w.u8(1, page);
    let len: u16 = match page {
        0x00 => {
            w.bytes(4, &VPD_PAGES);
            // CAST: six pages.
            VPD_PAGES.len() as u16
        }
        0x80 => {
            w.bytes(4, &serial(lun.info.id));
            16
        }
        0x83 => {
            // One NAA designator: binary, LUN association, type NAA,
            // 16 bytes of IEEE registered extended format.
            w.bytes(4, &[0x01, 0x03, 0x00, 0x10]);
            w.bytes(8, &[0x60, 0x02, 0x24, 0x80, 0x52, 0x55, 0x53, 0x54]);
            w.u32(16, 0);
            w.bytes(20, &lun.info.id.to_be_bytes());
            20
        }
        0xb0 => {
            w.u8(4, 1); // WSNZ: WRITE SAME with 0 blocks is refused
            let max_blocks = u32::try_from(
                u64::from(u32::MAX) / u64::from(lun.info.sector_size.max(1)),
            )
            .unwrap_or(u32::MAX);
            w.bytes(8, &max_blocks.to_be_bytes());
            if lun.info.thin {
                w.bytes(20, &MAX_UNMAP_BLOCKS.to_be_bytes());
                w.bytes(24, &MAX_UNMAP_DESCRIPTORS.to_be_bytes());
                w.bytes(28, &1u32.to_be_bytes());
                w.bytes(36, &u64::from(MAX_UNMAP_BLOCKS).to_be_bytes());
            }
            0x3c
        }
        0xb1 => {
            // Medium rotation rate 1: not rotating.
            w.bytes(4, &1u16.to_be_bytes());
            0x3c
        }
        0xb2 => {
            if lun.info.thin {
                w.u8(5, 0x80 | 0x40 | 0x04); // LBPU, LBPWS, LBPRZ
                w.u8(6, 0x02); // thin provisioned
            }
            4
        }
        _ => return Reply::illegal(asc::INVALID_FIELD_IN_CDB),
    };
    w.bytes(2, &len.to_be_bytes());
    let total = 4 + usize::from(len);
    match d.get(..total) {
        Some(page) => data_in(req, page, alloc, buf),
        None => Reply::srb(status::INTERNAL_ERROR),
    }
}

fn read_capacity_10(req: &Request<'_>, lun: &Lun<'_>, buf: &mut dyn DataBuffer) -> Reply {
    let last = lun.blocks().saturating_sub(1);
    let mut d = [0u8; 8];
    let mut w = super::wire::Writer::new(&mut d, 0);
    w.bytes(0, &u32::try_from(last).unwrap_or(u32::MAX).to_be_bytes());
    w.bytes(4, &lun.info.sector_size.to_be_bytes());
    data_in(req, &d, d.len(), buf)
}

fn read_capacity_16(req: &Request<'_>, lun: &Lun<'_>, buf: &mut dyn DataBuffer) -> Reply {
    let last = lun.blocks().saturating_sub(1);
    let mut d = [0u8; 32];
    let mut w = super::wire::Writer::new(&mut d, 0);
    w.bytes(0, &last.to_be_bytes());
    w.bytes(8, &lun.info.sector_size.to_be_bytes());
    if lun.info.thin {
        w.u8(14, 0x80 | 0x40); // LBPME, LBPRZ
    }
    let alloc = super::wire::to_usize(be32(req.cdb, 10));
    data_in(req, &d, alloc, buf)
}

/// The byte range of `count` blocks at `lba`, if it is inside the LUN.
fn block_range(lun: &Lun<'_>, lba: u64, count: u64) -> Option<(usize, usize)> {
    let end = lba.checked_add(count)?;
    if end > lun.blocks() {
        return None;
    }
    let size = u64::from(lun.info.sector_size);
    let start = usize::try_from(lba.checked_mul(size)?).ok()?;
    let len = usize::try_from(count.checked_mul(size)?).ok()?;
    Some((start, len))
}

fn rw(
    req: &Request<'_>,
    lun: &mut Lun<'_>,
    buf: &mut dyn DataBuffer,
    lba: u64,
    count: u32,
    write: bool,
    effect: &mut Effect,
) -> Reply {
    let Some((start, len)) = block_range(lun, lba, u64::from(count)) else {
        return Reply::illegal(asc::LBA_OUT_OF_RANGE);
    };
    let want = if write {
        DataDirection::Write
    } else {
        DataDirection::Read
    };
    if count == 0 {
        return Reply::good(0);
    }
    // The guest's buffer must hold the whole transfer, in the direction the
    // command moves data.
    if req.direction != want || super::wire::to_usize(req.len) < len {
        return Reply::illegal(asc::INVALID_FIELD_IN_CDB);
    }
    let Some(end) = start.checked_add(len) else {
        return Reply::illegal(asc::LBA_OUT_OF_RANGE);
    };
    let Some(blocks) = lun.medium.get_mut(start..end) else {
        return Reply::illegal(asc::LBA_OUT_OF_RANGE);
    };
    let ok = if write {
        buf.read(0, blocks)
    } else {
        buf.write(0, blocks)
    };
    if !ok {
        return Reply::srb(status::INVALID_REQUEST);
    }
    if write {
        effect.blocks_written = effect.blocks_written.saturating_add(u64::from(count));
    } else {
        effect.blocks_read = effect.blocks_read.saturating_add(u64::from(count));
    }
    // CAST: len <= req.len, a u32.
    Reply::good(len as u32)
}

fn mode_sense(req: &Request<'_>, lun: &Lun<'_>, buf: &mut dyn DataBuffer, ten: bool) -> Reply {
    let dbd = byte(req.cdb, 1) & 0x08 != 0;
    let pc = byte(req.cdb, 2) >> 6;
    let page = byte(req.cdb, 2) & 0x3f;
    let alloc = if ten {
        usize::from(be16(req.cdb, 7))
    } else {
        usize::from(byte(req.cdb, 4))
    };
    if pc == 3 {
        // Saved values are not supported.
        return Reply::illegal((0x39, 0x00));
    }
    if page != 0x08 && page != 0x3f {
        return Reply::illegal(asc::INVALID_FIELD_IN_CDB);
    }
    let header = if ten { 8 } else { 4 };
    let bd = if dbd { 0 } else { 8 };
    let mut d = [0u8; 8 + 8 + 20];
    let mut w = super::wire::Writer::new(&mut d, 0);
    if bd != 0 {
        let blocks = u32::try_from(lun.blocks()).unwrap_or(u32::MAX).min(0x00ff_ffff);
        w.bytes(header, &blocks.to_be_bytes());
        w.bytes(header + 4, &lun.info.sector_size.to_be_bytes());
        // The first byte of each half is density code / reserved.
        w.u8(header, 0);
        w.u8(header + 4, 0);
    }
    // The caching page: write cache on (changeable values: none).
    let p = header + bd;
    w.u8(p, 0x08);
    w.u8(p + 1, 0x12);
    if pc != 1 {
        w.u8(p + 2, 0x04); // WCE
    }
    let total = p + 20;
    if ten {
        // CAST: total < 64.
        w.bytes(0, &((total - 2) as u16).to_be_bytes());
        w.bytes(6, &(bd as u16).to_be_bytes());
    } else {
        w.u8(0, (total - 1) as u8);
        w.u8(3, bd as u8);
    }
    match d.get(..total) {
        Some(data) => data_in(req, data, alloc, buf),
        None => Reply::srb(status::INTERNAL_ERROR),
    }
}

fn report_luns(req: &Request<'_>, luns: &mut dyn Luns, buf: &mut dyn DataBuffer) -> Reply {
    let alloc = super::wire::to_usize(be32(req.cdb, 6));
    if alloc < 16 {
        return Reply::illegal(asc::INVALID_FIELD_IN_CDB);
    }
    if req.direction != DataDirection::Read {
        return Reply::srb(status::INVALID_REQUEST);
    }
    // Entries go straight to the guest's buffer (no list on the stack),
    // cut to the allocation length and the buffer; the header counts them
    // all.
    let room = alloc.min(super::wire::to_usize(req.len));
    let mut end = 8usize;
    let mut ok = true;
    luns.each_lun(req.path, req.target, &mut |l| {
        // A single-level LUN: peripheral addressing, bus 0.
        let entry = [0u8, l, 0, 0, 0, 0, 0, 0];
        let n = room.saturating_sub(end).min(entry.len());
        if let Some(part) = entry.get(..n).filter(|p| !p.is_empty()) {
            ok &= buf.write(end, part);
        }
        end = end.saturating_add(entry.len());
    });
    let list = u32::try_from(end.saturating_sub(8)).unwrap_or(u32::MAX);
    let mut header = [0u8; 8];
    super::wire::copy(&mut header, &list.to_be_bytes());
    if let Some(part) = header.get(..room.min(header.len())) {
        ok &= buf.write(0, part);
    }
    if !ok {
        return Reply::srb(status::INVALID_REQUEST);
    }
    // CAST: room <= req.len, a u32.
    Reply::good(end.min(room) as u32)
}

fn zero(lun: &mut Lun<'_>, lba: u64, count: u64) -> bool {
    let Some((start, len)) = block_range(lun, lba, count) else {
        return false;
    };
    match start.checked_add(len).and_then(|end| lun.medium.get_mut(start..end)) {
        Some(blocks) => {
            blocks.fill(0);
            true
        }
        None => false,
    }
}

fn unmap(req: &Request<'_>, lun: &mut Lun<'_>, buf: &mut dyn DataBuffer, effect: &mut Effect) -> Reply {
    let list_len = usize::from(be16(req.cdb, 7));
    if list_len == 0 {
        return Reply::good(0);
    }
    if req.direction != DataDirection::Write || super::wire::to_usize(req.len) < list_len {
        return Reply::illegal(asc::INVALID_FIELD_IN_CDB);
    }
    let mut header = [0u8; 8];
    if list_len < 8 || !buf.read(0, &mut header) {
        return Reply::illegal(asc::INVALID_FIELD_IN_PARAM);
    }
    let descs = usize::from(be16(&header, 2));
    if descs % 16 != 0 || descs > list_len.saturating_sub(8) || descs / 16 > MAX_UNMAP_DESCRIPTORS as usize {
        return Reply::illegal(asc::INVALID_FIELD_IN_PARAM);
    }
    // Check every descriptor before changing anything.
    for pass in 0..2 {
        for at in (8..descs.saturating_add(8)).step_by(16) {
            let mut desc = [0u8; 16];
            if !buf.read(at, &mut desc) {
                return Reply::illegal(asc::INVALID_FIELD_IN_PARAM);
            }
            let (lba, count) = (be64(&desc, 0), be32(&desc, 8));
            if count > MAX_UNMAP_BLOCKS || block_range(lun, lba, u64::from(count)).is_none() {
                return Reply::illegal(asc::LBA_OUT_OF_RANGE);
            }
            if pass == 1 {
                zero(lun, lba, u64::from(count));
                effect.blocks_unmapped = effect.blocks_unmapped.saturating_add(u64::from(count));
            }
        }
    }
    // CAST: list_len <= u16::MAX.
    Reply::good(list_len as u32)
}

fn write_same_16(
    req: &Request<'_>,
    lun: &mut Lun<'_>,
    buf: &mut dyn DataBuffer,
    effect: &mut Effect,
) -> Reply {
    let unmap_bit = byte(req.cdb, 1) & 0x08 != 0;
    let lba = be64(req.cdb, 2);
    let count = be32(req.cdb, 10);
    if count == 0 || count > MAX_UNMAP_BLOCKS {
        return Reply::illegal(asc::INVALID_FIELD_IN_CDB);
    }
    let size = super::wire::to_usize(lun.info.sector_size);
    if req.direction != DataDirection::Write || super::wire::to_usize(req.len) < size {
        return Reply::illegal(asc::INVALID_FIELD_IN_CDB);
    }
    let Some((start, len)) = block_range(lun, lba, u64::from(count)) else {
        return Reply::illegal(asc::LBA_OUT_OF_RANGE);
    };
    let Some(blocks) = start.checked_add(len).and_then(|end| lun.medium.get_mut(start..end)) else {
        return Reply::illegal(asc::LBA_OUT_OF_RANGE);
    };
    // The block to repeat goes to the first block, then is copied on.
    let mut chunks = blocks.chunks_mut(size.max(1));
    let Some(first) = chunks.next() else {
        return Reply::illegal(asc::LBA_OUT_OF_RANGE);
    };
    if !buf.read(0, first) {
        return Reply::srb(status::INVALID_REQUEST);
    }
    let pattern_zero = first.iter().all(|b| *b == 0);
    for block in chunks {
        super::wire::copy(block, first);
    }
    if unmap_bit && pattern_zero {
        effect.blocks_unmapped = effect.blocks_unmapped.saturating_add(u64::from(count));
    } else {
        effect.blocks_written = effect.blocks_written.saturating_add(u64::from(count));
    }
    // CAST: size <= req.len.
    Reply::good(size as u32)
}
