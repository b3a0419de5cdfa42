//! VSTOR, the storvsc protocol on the device's VMBus channels: the packet
//! every message travels in, the protocol versions, and the payloads the
//! packet carries (the SRB, the channel properties, the protocol version,
//! the Fibre Channel names, the sub-channel count).
//!
//! Every VSTOR message is one `struct vstor_packet` ([`PACKET_SIZE`], 64
//! bytes): operation, flags and status, then a 52-byte payload whose meaning
//! depends on the operation and, for a COMPLETE_IO, on the request it
//! completes. [`Packet`] holds the payload as bytes; the typed views
//! ([`Srb`], [`ChannelProperties`], [`FcWwn`], ...) read and write it. Those
//! views are total: every 52-byte payload decodes to some value, and the
//! checks that make a value acceptable (a CDB length, a sense length, a
//! transfer length) are made where the value is used ([`super::srb`],
//! [`super::guest`] and the host side).
//!
//! Layouts follow `drivers/scsi/storvsc_drv.c` in Linux 6.12; offsets are
//! spelled out as constants and the tests pin them.

use super::wire::{Error, Reader, Result, Writer};

/// `sizeof(struct vstor_packet)`: every packet either side sends.
pub const PACKET_SIZE: usize = 64;
/// Offset of the payload (the union after operation, flags, status).
pub const PAYLOAD_OFFSET: usize = 12;
/// Size of the payload union (`buffer[0x34]`).
pub const PAYLOAD_SIZE: usize = PACKET_SIZE - PAYLOAD_OFFSET;
/// `sizeof(struct vmscsi_request)` with the Windows 8 extension, which every
/// version this crate speaks carries.
pub const SRB_SIZE: usize = 52;
/// Size of the Windows 8 extension of the SRB (`reserve` to
/// `queue_sort_key`); hosts older than VSTOR 5.1 took packets this much
/// shorter (the C driver's former `vmscsi_size_delta`).
pub const SRB_WIN8_EXTENSION_SIZE: usize = 12;
/// Longest CDB an SRB carries (`STORVSC_MAX_CMD_LEN`).
pub const MAX_CDB_LEN: usize = 16;
/// Sense bytes an SRB carries from VSTOR 5.1 on (`STORVSC_SENSE_BUFFER_SIZE`).
pub const SENSE_SIZE: usize = 20;
/// `REQUEST_COMPLETION_FLAG`: the guest wants a COMPLETE_IO for this packet.
pub const REQUEST_COMPLETION_FLAG: u32 = 1;
/// `STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL` in the channel properties' flags.
pub const SUPPORTS_MULTI_CHANNEL: u32 = 1;
/// Packet status meaning success.
pub const STATUS_SUCCESS: u32 = 0;

// ---------------------------------------------------------------------------
// Versions.

/// A VSTOR protocol version (major in the high byte, minor in the low);
/// ordered oldest to newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum Version {
    /// 5.1, Windows 8 / Server 2012: multi-channel, the 52-byte SRB.
    Win8 = 0x0501,
    /// 6.0, Windows 8.1 / Server 2012 R2.
    Win8_1 = 0x0600,
    /// 6.2, Windows 10 / Server 2016: WRITE SAME passed through.
    Win10 = 0x0602,
}

/// The versions the guest asks for, newest first (the C driver's list).
pub const GUEST_VERSIONS: [Version; 3] = [Version::Win10, Version::Win8_1, Version::Win8];

impl Version {
    /// The version for a wire value.
    pub fn from_raw(raw: u16) -> Option<Version> {
        GUEST_VERSIONS.iter().copied().find(|v| *v as u16 == raw)
    }

    /// The wire value (`major_minor`).
    pub const fn raw(self) -> u16 {
        self as u16
    }

    /// Bytes by which this version's SRB is shorter than [`SRB_SIZE`]: none
    /// for 5.1 and later (only pre-5.1 hosts, which Linux 6.12 no longer
    /// speaks to, lacked the [`SRB_WIN8_EXTENSION_SIZE`] bytes).
    pub fn srb_size_delta(self) -> usize {
        0
    }

    /// Size of every packet under this version, and the least a completion
    /// must have to be read.
    pub fn packet_size(self) -> usize {
        PACKET_SIZE - self.srb_size_delta()
    }

    /// The SRB's `length` field as the guest sends it.
    pub fn srb_length(self) -> u16 {
        // CAST: SRB_SIZE is 52.
        (SRB_SIZE - self.srb_size_delta()) as u16
    }

    /// Sense bytes the SRB carries under this version.
    pub fn sense_size(self) -> usize {
        SENSE_SIZE
    }

    /// Whether the guest filters commands the host does not implement
    /// (WRITE SAME(10), SET WINDOW) itself: hosts up to 5.1.
    pub fn filters_commands(self) -> bool {
        self <= Version::Win8
    }

    /// Whether a `Msft` LUN is treated as SPC-3 although it claims SPC-2
    /// (5.1 and 6.0, as the C driver does).
    pub fn claims_spc3(self) -> bool {
        matches!(self, Version::Win8 | Version::Win8_1)
    }

    /// Whether WRITE SAME may be sent to a `Msft` LUN (6.2 and later).
    pub fn allows_write_same(self) -> bool {
        self >= Version::Win10
    }
}

// ---------------------------------------------------------------------------
// Operations.

/// `enum vstor_packet_operation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Operation {
    /// The host's answer to any request.
    CompleteIo = 1,
    /// The host removed a device (the guest rescans).
    RemoveDevice = 2,
    /// A SCSI command.
    ExecuteSrb = 3,
    /// Reset one LUN.
    ResetLun = 4,
    /// Reset the adapter.
    ResetAdapter = 5,
    /// Reset the bus (the C driver's host reset).
    ResetBus = 6,
    /// Starts the initialization sequence.
    BeginInitialization = 7,
    /// Ends the initialization sequence.
    EndInitialization = 8,
    /// Proposes one protocol version.
    QueryProtocolVersion = 9,
    /// Asks for the channel properties.
    QueryProperties = 10,
    /// The host's LUNs changed (the guest rescans).
    EnumerateBus = 11,
    /// Fibre Channel port and node names: asked for by the guest, or pushed
    /// by the host.
    FcHbaData = 12,
    /// Asks for sub-channels.
    CreateSubChannels = 13,
}

impl Operation {
    /// Every operation, in wire order.
    pub const ALL: [Operation; 13] = [
        Operation::CompleteIo,
        Operation::RemoveDevice,
        Operation::ExecuteSrb,
        Operation::ResetLun,
        Operation::ResetAdapter,
        Operation::ResetBus,
        Operation::BeginInitialization,
        Operation::EndInitialization,
        Operation::QueryProtocolVersion,
        Operation::QueryProperties,
        Operation::EnumerateBus,
        Operation::FcHbaData,
        Operation::CreateSubChannels,
    ];

    /// The operation for a wire value.
    pub fn from_raw(raw: u32) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|o| *o as u32 == raw)
    }

    /// The wire value.
    pub const fn raw(self) -> u32 {
        self as u32
    }

    /// Whether the guest sends this operation (all but COMPLETE_IO and the
    /// host's notices; FCHBA_DATA goes both ways).
    pub fn sent_by_guest(self) -> bool {
        !matches!(
            self,
            Operation::CompleteIo | Operation::RemoveDevice | Operation::EnumerateBus
        )
    }

    /// Whether the host sends this operation.
    pub fn sent_by_host(self) -> bool {
        matches!(
            self,
            Operation::CompleteIo
                | Operation::RemoveDevice
                | Operation::EnumerateBus
                | Operation::FcHbaData
        )
    }
}

// ---------------------------------------------------------------------------
// The packet.

/// One `struct vstor_packet`, copied out of the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// What the packet asks for or answers.
    pub operation: Operation,
    /// [`REQUEST_COMPLETION_FLAG`] or nothing.
    pub flags: u32,
    /// The host's status for the request (0 is success, anything else an
    /// NTSTATUS failure).
    pub status: u32,
    /// The payload union, as bytes; read it with the typed views.
    pub payload: [u8; PAYLOAD_SIZE],
}

impl Packet {
    /// A packet with an all-zero payload.
    pub const fn new(operation: Operation, flags: u32, status: u32) -> Packet {
        Packet {
            operation,
            flags,
            status,
            payload: [0; PAYLOAD_SIZE],
        }
    }

    /// A guest request for `operation` with no payload, asking for a
    /// completion.
    pub const fn request(operation: Operation) -> Packet {
        Packet::new(operation, REQUEST_COMPLETION_FLAG, 0)
    }

    /// Parses a packet at least `min_len` bytes long (and at least the
    /// 4-byte operation). Payload bytes past the end of a shorter packet
    /// read as zero; bytes past [`PACKET_SIZE`] are ignored. An unknown
    /// operation is [`Error::UnknownType`].
    pub fn parse(bytes: &[u8], min_len: usize) -> Result<Packet> {
        super::wire::need(bytes, min_len.max(4))?;
        let r = Reader::new(bytes);
        let op = r.u32(0)?;
        let operation = Operation::from_raw(op).ok_or(Error::UnknownType(op))?;
        let mut payload = [0u8; PAYLOAD_SIZE];
        if let Some(rest) = bytes.get(PAYLOAD_OFFSET..) {
            super::wire::copy(&mut payload, rest);
        }
        Ok(Packet {
            operation,
            flags: super::wire::u32_at(bytes, 4).unwrap_or(0),
            status: super::wire::u32_at(bytes, 8).unwrap_or(0),
            payload,
        })
    }

    /// Writes the whole packet ([`PACKET_SIZE`] bytes) to `buf`; returns
    /// its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, PACKET_SIZE);
        w.u32(0, self.operation.raw());
        w.u32(4, self.flags);
        w.u32(8, self.status);
        w.bytes(PAYLOAD_OFFSET, &self.payload);
        w.finish()
    }

    /// The packet as an array.
    pub fn to_bytes(&self) -> [u8; PACKET_SIZE] {
        let mut b = [0u8; PACKET_SIZE];
        // Cannot fail: the array is exactly PACKET_SIZE bytes.
        let _ = self.write(&mut b);
        b
    }

    /// The payload as an SRB.
    pub fn srb(&self) -> Srb {
        Srb::decode(&self.payload)
    }

    /// Replaces the payload with `srb`.
    pub fn set_srb(&mut self, srb: &Srb) {
        self.payload = [0; PAYLOAD_SIZE];
        srb.encode(&mut self.payload);
    }

    /// The payload as channel properties.
    pub fn properties(&self) -> ChannelProperties {
        ChannelProperties::decode(&self.payload)
    }

    /// The payload as the protocol version (`major_minor`, `revision`).
    pub fn version(&self) -> (u16, u16) {
        let r = Reader::new(&self.payload);
        (r.u16(0).unwrap_or(0), r.u16(2).unwrap_or(0))
    }

    /// Sets the payload to a protocol version with revision 0.
    pub fn set_version(&mut self, major_minor: u16) {
        self.payload = [0; PAYLOAD_SIZE];
        let mut w = Writer::new(&mut self.payload, 0);
        w.u16(0, major_minor);
    }

    /// The payload as Fibre Channel names.
    pub fn wwn(&self) -> FcWwn {
        FcWwn::decode(&self.payload)
    }

    /// The payload as a sub-channel count.
    pub fn sub_channel_count(&self) -> u16 {
        super::wire::u16_at(&self.payload, 0).unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------
// Payloads.

/// Offsets within `struct vmscsi_request`.
pub mod srb_offset {
    /// `length` (u16).
    pub const LENGTH: usize = 0;
    /// `srb_status` (u8).
    pub const SRB_STATUS: usize = 2;
    /// `scsi_status` (u8).
    pub const SCSI_STATUS: usize = 3;
    /// `port_number` (u8).
    pub const PORT: usize = 4;
    /// `path_id` (u8).
    pub const PATH: usize = 5;
    /// `target_id` (u8).
    pub const TARGET: usize = 6;
    /// `lun` (u8).
    pub const LUN: usize = 7;
    /// `cdb_length` (u8).
    pub const CDB_LENGTH: usize = 8;
    /// `sense_info_length` (u8).
    pub const SENSE_LENGTH: usize = 9;
    /// `data_in` (u8).
    pub const DATA_IN: usize = 10;
    /// `data_transfer_length` (u32).
    pub const DATA_TRANSFER_LENGTH: usize = 12;
    /// The CDB / sense union (20 bytes).
    pub const CDB: usize = 16;
    /// `queue_tag` (u8).
    pub const QUEUE_TAG: usize = 38;
    /// `queue_action` (u8).
    pub const QUEUE_ACTION: usize = 39;
    /// `srb_flags` (u32).
    pub const SRB_FLAGS: usize = 40;
    /// `time_out_value` (u32).
    pub const TIME_OUT: usize = 44;
    /// `queue_sort_ey` (u32).
    pub const QUEUE_SORT_KEY: usize = 48;
}

/// `struct vmscsi_request`: a SCSI command going to the host, or its result
/// coming back. `buffer` holds the CDB in a request and the sense data in a
/// completion (the C union).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Srb {
    /// `length`: the SRB's size as the sender knows it.
    pub length: u16,
    /// `srb_status` (see [`super::srb::status`]); set by the host.
    pub srb_status: u8,
    /// `scsi_status` (the SAM status byte); set by the host.
    pub scsi_status: u8,
    /// `port_number`.
    pub port: u8,
    /// `path_id` (the SCSI channel).
    pub path: u8,
    /// `target_id`.
    pub target: u8,
    /// `lun`.
    pub lun: u8,
    /// `cdb_length`.
    pub cdb_length: u8,
    /// `sense_info_length`: the room for sense in a request, the sense's
    /// length in a completion.
    pub sense_info_length: u8,
    /// `data_in` (see [`super::srb::DataDirection`]).
    pub data_in: u8,
    /// `data_transfer_length`: the buffer's length in a request, the bytes
    /// moved in a completion.
    pub data_transfer_length: u32,
    /// The CDB or the sense data.
    pub buffer: [u8; SENSE_SIZE],
    /// `queue_tag`.
    pub queue_tag: u8,
    /// `queue_action`.
    pub queue_action: u8,
    /// `srb_flags` (see [`super::srb::flags`]).
    pub srb_flags: u32,
    /// `time_out_value`, seconds.
    pub time_out_value: u32,
    /// `queue_sort_ey`.
    pub queue_sort_key: u32,
}

impl Srb {
    /// Reads an SRB from a payload; missing bytes read as zero.
    pub fn decode(b: &[u8]) -> Srb {
        use super::wire::{bytes_at, u16_at, u32_at, u8_at};
        use srb_offset as o;
        let u8f = |at| u8_at(b, at).unwrap_or(0);
        let u32f = |at| u32_at(b, at).unwrap_or(0);
        Srb {
            length: u16_at(b, o::LENGTH).unwrap_or(0),
            srb_status: u8f(o::SRB_STATUS),
            scsi_status: u8f(o::SCSI_STATUS),
            port: u8f(o::PORT),
            path: u8f(o::PATH),
            target: u8f(o::TARGET),
            lun: u8f(o::LUN),
            cdb_length: u8f(o::CDB_LENGTH),
            sense_info_length: u8f(o::SENSE_LENGTH),
            data_in: u8f(o::DATA_IN),
            data_transfer_length: u32f(o::DATA_TRANSFER_LENGTH),
            buffer: bytes_at(b, o::CDB).unwrap_or([0; SENSE_SIZE]),
            queue_tag: u8f(o::QUEUE_TAG),
            queue_action: u8f(o::QUEUE_ACTION),
            srb_flags: u32f(o::SRB_FLAGS),
            time_out_value: u32f(o::TIME_OUT),
            queue_sort_key: u32f(o::QUEUE_SORT_KEY),
        }
    }

    /// Writes the SRB into a payload of at least [`SRB_SIZE`] bytes
    /// (shorter payloads get what fits).
    pub fn encode(&self, b: &mut [u8]) {
        use srb_offset as o;
        let mut w = Writer::new(b, 0);
        w.u16(o::LENGTH, self.length);
        w.u8(o::SRB_STATUS, self.srb_status);
        w.u8(o::SCSI_STATUS, self.scsi_status);
        w.u8(o::PORT, self.port);
        w.u8(o::PATH, self.path);
        w.u8(o::TARGET, self.target);
        w.u8(o::LUN, self.lun);
        w.u8(o::CDB_LENGTH, self.cdb_length);
        w.u8(o::SENSE_LENGTH, self.sense_info_length);
        w.u8(o::DATA_IN, self.data_in);
        w.u32(o::DATA_TRANSFER_LENGTH, self.data_transfer_length);
        w.bytes(o::CDB, &self.buffer);
        w.u8(o::QUEUE_TAG, self.queue_tag);
        w.u8(o::QUEUE_ACTION, self.queue_action);
        w.u32(o::SRB_FLAGS, self.srb_flags);
        w.u32(o::TIME_OUT, self.time_out_value);
        w.u32(o::QUEUE_SORT_KEY, self.queue_sort_key);
    }

    /// The CDB's bytes, or [`Error::BadField`] if `cdb_length` is 0 or over
    /// [`MAX_CDB_LEN`].
    pub fn cdb(&self) -> Result<&[u8]> {
        let n = usize::from(self.cdb_length);
        if n == 0 || n > MAX_CDB_LEN {
            return Err(Error::BadField("cdb_length"));
        }
        self.buffer.get(..n).ok_or(Error::BadField("cdb_length"))
    }
}

/// `struct vmstorage_channel_properties`, the answer to QUERY_PROPERTIES.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChannelProperties {
    /// `max_channel_cnt`: the most sub-channels the host will create.
    pub max_channel_cnt: u16,
    /// `flags` ([`SUPPORTS_MULTI_CHANNEL`]).
    pub flags: u32,
    /// `max_transfer_bytes`: the largest transfer of one SRB.
    pub max_transfer_bytes: u32,
}

impl ChannelProperties {
    /// Size of the C struct.
    pub const SIZE: usize = 24;

    /// Reads the properties from a payload.
    pub fn decode(b: &[u8]) -> ChannelProperties {
        use super::wire::{u16_at, u32_at};
        ChannelProperties {
            max_channel_cnt: u16_at(b, 4).unwrap_or(0),
            flags: u32_at(b, 8).unwrap_or(0),
            max_transfer_bytes: u32_at(b, 12).unwrap_or(0),
        }
    }

    /// Writes the properties into a payload.
    pub fn encode(&self, b: &mut [u8]) {
        let mut w = Writer::new(b, 0);
        w.u16(4, self.max_channel_cnt);
        w.u32(8, self.flags);
        w.u32(12, self.max_transfer_bytes);
    }

    /// Whether the host creates sub-channels.
    pub fn multi_channel(&self) -> bool {
        self.flags & SUPPORTS_MULTI_CHANNEL != 0
    }
}

/// `struct hv_fc_wwn_packet`: a Fibre Channel HBA's two port/node name
/// pairs and which one is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FcWwn {
    /// `primary_active`: non-zero if the primary pair is in use.
    pub primary_active: u8,
    /// `primary_port_wwn`.
    pub primary_port: [u8; 8],
    /// `primary_node_wwn`.
    pub primary_node: [u8; 8],
    /// `secondary_port_wwn`.
    pub secondary_port: [u8; 8],
    /// `secondary_node_wwn`.
    pub secondary_node: [u8; 8],
}

impl FcWwn {
    /// Size of the C struct.
    pub const SIZE: usize = 36;

    /// Reads the names from a payload.
    pub fn decode(b: &[u8]) -> FcWwn {
        use super::wire::{bytes_at, u8_at};
        FcWwn {
            primary_active: u8_at(b, 0).unwrap_or(0),
            primary_port: bytes_at(b, 4).unwrap_or([0; 8]),
            primary_node: bytes_at(b, 12).unwrap_or([0; 8]),
            secondary_port: bytes_at(b, 20).unwrap_or([0; 8]),
            secondary_node: bytes_at(b, 28).unwrap_or([0; 8]),
        }
    }

    /// Writes the names into a payload.
    pub fn encode(&self, b: &mut [u8]) {
        let mut w = Writer::new(b, 0);
        w.u8(0, self.primary_active);
        w.bytes(4, &self.primary_port);
        w.bytes(12, &self.primary_node);
        w.bytes(20, &self.secondary_port);
        w.bytes(28, &self.secondary_node);
    }

    /// The active pair as the FC transport's `(node_name, port_name)`: each
    /// name's 8 bytes read big-endian, as `wwn_to_u64` does.
    pub fn active_names(&self) -> (u64, u64) {
        if self.primary_active != 0 {
            (
                u64::from_be_bytes(self.primary_node),
                u64::from_be_bytes(self.primary_port),
            )
        } else {
            (
                u64::from_be_bytes(self.secondary_node),
                u64::from_be_bytes(self.secondary_port),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_views_round_trip() {
        let mut p = Packet::new(Operation::CompleteIo, 0, 0);
        let props = ChannelProperties {
            max_channel_cnt: 7,
            flags: SUPPORTS_MULTI_CHANNEL,
            max_transfer_bytes: 0x20_0000,
        };
        props.encode(&mut p.payload);
        assert_eq!(p.properties(), props);
        let w = FcWwn {
            primary_active: 1,
            primary_port: [1, 2, 3, 4, 5, 6, 7, 8],
            primary_node: [9; 8],
            secondary_port: [10; 8],
            secondary_node: [11; 8],
        };
        p.payload = [0; PAYLOAD_SIZE];
        w.encode(&mut p.payload);
        assert_eq!(p.wwn(), w);
        assert_eq!(w.active_names(), (0x0909_0909_0909_0909, 0x0102_0304_0506_0708));
    }
}
