//! The time sync service's samples: `struct ictimesync_data` (versions 1.0
//! and 3.0) and `struct ictimesync_ref_data` (4.0, which adds the VM's
//! reference time when the host took the sample), and the conversion of
//! the host's time to Unix time.

use super::icmsg::{IcVersion, ICMSG_HDR};
use super::wire::{self, Reader, Result, Writer};

/// `ICTIMESYNCFLAG_PROBE`.
pub const FLAG_PROBE: u8 = 0;
/// `ICTIMESYNCFLAG_SYNC`: set the clock (after boot, resume, restore).
pub const FLAG_SYNC: u8 = 1;
/// `ICTIMESYNCFLAG_SAMPLE`: a hint the guest may track.
pub const FLAG_SAMPLE: u8 = 2;

/// 100 ns units from 1601-01-01 (the host's epoch) to 1970-01-01
/// (`WLTIMEDELTA`).
pub const WLTIMEDELTA: u64 = 116_444_736_000_000_000;

/// Bytes of `ictimesync_data`: parent, child, round-trip times, flags.
pub const DATA_SIZE: usize = 25;
/// Bytes of `ictimesync_ref_data`: parent and reference times, flags,
/// leap flags, stratum, 3 reserved.
pub const REF_DATA_SIZE: usize = 22;

/// The first version whose samples are `ictimesync_ref_data`.
pub const REF_DATA_VERSION: IcVersion = IcVersion::new(4, 0);

/// One time sample from the host, in either layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// `parenttime`: the host's time, 100 ns units since 1601.
    pub parent_time: u64,
    /// `vmreferencetime` (4.0): the VM's reference counter when the host
    /// took the sample; `None` in the older layout, where the guest uses
    /// its own reference counter at receipt.
    pub reference_time: Option<u64>,
    /// `flags`: [`FLAG_SYNC`], [`FLAG_SAMPLE`].
    pub flags: u8,
}

impl Sample {
    /// Reads the sample from a packet, in the layout of the negotiated
    /// version (the C driver: `ts_srv_version > TS_VERSION_3`).
    pub fn parse(pkt: &[u8], version: IcVersion) -> Result<Sample> {
        let r = Reader::new(pkt);
        if version >= REF_DATA_VERSION {
            wire::need(pkt, ICMSG_HDR + REF_DATA_SIZE)?;
            Ok(Sample {
                parent_time: r.u64(ICMSG_HDR)?,
                reference_time: Some(r.u64(ICMSG_HDR + 8)?),
                flags: r.u8(ICMSG_HDR + 16)?,
            })
        } else {
            wire::need(pkt, ICMSG_HDR + DATA_SIZE)?;
            Ok(Sample {
                parent_time: r.u64(ICMSG_HDR)?,
                reference_time: None,
                flags: r.u8(ICMSG_HDR + 24)?,
            })
        }
    }

    /// Whether the host asks the guest to set its clock.
    pub fn is_sync(&self) -> bool {
        self.flags & FLAG_SYNC != 0
    }

    /// Writes the body at [`ICMSG_HDR`] in the layout `version` has;
    /// returns the body's length.
    pub fn write_body(&self, w: &mut Writer<'_>, version: IcVersion) -> usize {
        w.u64(ICMSG_HDR, self.parent_time);
        if version >= REF_DATA_VERSION {
            w.u64(ICMSG_HDR + 8, self.reference_time.unwrap_or(0));
            w.u8(ICMSG_HDR + 16, self.flags);
            REF_DATA_SIZE
        } else {
            w.u8(ICMSG_HDR + 24, self.flags);
            DATA_SIZE
        }
    }

    /// The host's time at `now_ref` (the VM reference counter, 100 ns
    /// units), moved on from the sample by the time since it was taken; a
    /// reference counter behind the sample's moves it back (wrapping, as
    /// the C driver's unsigned arithmetic does).
    pub fn host_time_at(&self, now_ref: u64, received_ref: u64) -> u64 {
        let taken = self.reference_time.unwrap_or(received_ref);
        self.parent_time.wrapping_add(now_ref.wrapping_sub(taken))
    }
}

/// The host's time (100 ns since 1601) as nanoseconds since the Unix
/// epoch; `None` before 1970 or past what `u64` holds.
pub fn host_time_to_unix_ns(host_time: u64) -> Option<u64> {
    host_time.checked_sub(WLTIMEDELTA)?.checked_mul(100)
}

/// Nanoseconds since the Unix epoch as the host's time, rounded down to
/// 100 ns; `None` past what `u64` holds.
pub fn unix_ns_to_host_time(unix_ns: u64) -> Option<u64> {
    (unix_ns / 100).checked_add(WLTIMEDELTA)
}
