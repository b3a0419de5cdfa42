//! NVSP, the netvsc protocol on the device's VMBus channel: version
//! negotiation, the receive and send buffers, RNDIS packet hand-off,
//! sub-channels and the send indirection table.
//!
//! Each NVSP message is the payload of one VMBus packet: an in-band packet,
//! a completion, or (for RNDIS data the host sends) a transfer-page packet.
//! It starts with a 4-byte message type; the body follows. The C driver
//! sends every control message as a whole `struct nvsp_message`
//! ([`NVSP_MESSAGE_SIZE`], 40 bytes, zero-padded), the receive completion as
//! 8 bytes, and the host appends the send indirection table after the 40
//! bytes. The builders here write the same sizes ([`Message::wire_size`]).
//! The parsers accept any message at least as long as the fields they read
//! (header plus that type's body), as the C driver does, and reject shorter
//! ones with [`Error::TooShort`].
//!
//! The `#[repr(C, packed)]` structs mirror the C layouts in
//! `drivers/net/hyperv/hyperv_net.h`; offsets are taken from them with
//! `offset_of!`, and the tests pin their sizes to the C values.
//!
//! Not covered: the NVSP 2 chimney/VMQ/receive-buffer-allocation messages
//! and the NVSP 5 OID_QUERY_EX, which Linux never uses, and the NVSP 6
//! PacketDirect messages (PD_API, PD_POST_BATCH), which Linux defines but
//! never sends or handles; all of them parse as [`Error::UnknownType`], so a
//! guest can ignore them the way the C driver does.

use core::mem::{offset_of, size_of};

use super::wire::{need, to_usize, Error, Reader, Result, Writer};

/// `sizeof(struct nvsp_message)`: the size of every control message the C
/// driver sends (the header and the largest body, the NVSP 6 PD_API
/// completion).
pub const NVSP_MESSAGE_SIZE: usize = 40;
/// `sizeof(struct nvsp_message_header)`.
pub const NVSP_HEADER_SIZE: usize = size_of::<NvspHeader>();
/// Entries in the send indirection table (`VRSS_SEND_TAB_SIZE`).
pub const SEND_TABLE_SIZE: usize = 16;
/// The largest message built here: the send indirection table after a whole
/// `struct nvsp_message`.
pub const MAX_MESSAGE_SIZE: usize = NVSP_MESSAGE_SIZE + SEND_TABLE_SIZE * 4;
/// Size of the RNDIS-packet completion the C guest sends for received data
/// (header and status only).
pub const RNDIS_PACKET_COMPLETE_SIZE: usize =
    NVSP_HEADER_SIZE + size_of::<RndisPacketCompleteWire>();
/// `send_buf_section_index` meaning "not in the send buffer"
/// (`NETVSC_INVALID_INDEX`).
pub const NO_SECTION: u32 = 0xffff_ffff;
/// The receive buffer's id in SEND_RECV_BUF (`NETVSC_RECEIVE_BUFFER_ID`).
pub const RECEIVE_BUFFER_ID: u16 = 0xcafe;
/// The send buffer's id in SEND_SEND_BUF (`NETVSC_SEND_BUFFER_ID`).
pub const SEND_BUFFER_ID: u16 = 0;
/// Smallest section the guest accepts in either buffer (`ETH_MIN_MTU`).
pub const MIN_SECTION_SIZE: u32 = 68;
/// Ethernet header length the NDIS config MTU includes (`ETH_HLEN`).
pub const ETH_HLEN: u32 = 14;
/// Largest frame with NVSP 2 and later (`NETVSC_MTU`).
pub const NETVSC_MTU: u32 = 65535;
/// Largest MTU before NVSP 2 (`ETH_DATA_LEN`).
pub const ETH_DATA_LEN: u32 = 1500;

/// NVSP status values (`NVSP_STAT_*`).
pub mod status {
    /// `NVSP_STAT_NONE`.
    pub const NONE: u32 = 0;
    /// `NVSP_STAT_SUCCESS`.
    pub const SUCCESS: u32 = 1;
    /// `NVSP_STAT_FAIL`.
    pub const FAIL: u32 = 2;
    /// `NVSP_STAT_PROTOCOL_TOO_NEW`.
    pub const PROTOCOL_TOO_NEW: u32 = 3;
    /// `NVSP_STAT_PROTOCOL_TOO_OLD`.
    pub const PROTOCOL_TOO_OLD: u32 = 4;
    /// `NVSP_STAT_INVALID_RNDIS_PKT`.
    pub const INVALID_RNDIS_PKT: u32 = 5;
    /// `NVSP_STAT_BUSY`.
    pub const BUSY: u32 = 6;
    /// `NVSP_STAT_PROTOCOL_UNSUPPORTED`.
    pub const PROTOCOL_UNSUPPORTED: u32 = 7;
}

// ---------------------------------------------------------------------------
// Versions.

/// An NVSP protocol version (`NVSP_PROTOCOL_VERSION_*`); ordered oldest to
/// newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum Version {
    /// NVSP 1 (Windows Server 2008).
    V1 = 2,
    /// NVSP 2: NDIS config (MTU, capabilities), jumbo frames.
    V2 = 0x30002,
    /// NVSP 4: VF association and data path switching (SR-IOV).
    V4 = 0x40000,
    /// NVSP 5: sub-channels (vRSS), send indirection table, UDP checksum
    /// offload.
    V5 = 0x50000,
    /// NVSP 6.
    V6 = 0x60000,
    /// NVSP 6.1: receive segment coalescing; the send table offset is right.
    V61 = 0x60001,
}

/// The versions the guest proposes, newest first (the C driver's list).
pub const GUEST_VERSIONS: [Version; 6] = [
    Version::V61,
    Version::V6,
    Version::V5,
    Version::V4,
    Version::V2,
    Version::V1,
];

impl Version {
    /// The version for a wire value.
    pub fn from_raw(raw: u32) -> Option<Version> {
        GUEST_VERSIONS.iter().copied().find(|v| *v as u32 == raw)
    }

    /// The wire value.
    pub const fn raw(self) -> u32 {
        self as u32
    }

    /// Whether the guest sends SEND_NDIS_CONFIG after INIT (NVSP 2+).
    pub fn has_ndis_config(self) -> bool {
        self >= Version::V2
    }

    /// The largest MTU the guest may set: 65521 with NVSP 2+ (the NDIS
    /// config carries it), else 1500.
    pub fn max_mtu(self) -> u32 {
        if self.has_ndis_config() {
            NETVSC_MTU - ETH_HLEN
        } else {
            ETH_DATA_LEN
        }
    }

    /// Whether VF association and SWITCH_DATA_PATH exist (NVSP 4+).
    pub fn has_vf(self) -> bool {
        self >= Version::V4
    }

    /// Whether sub-channels (vRSS) and the send indirection table exist
    /// (NVSP 5+); the guest also advertises SR-IOV and teaming then.
    pub fn has_subchannels(self) -> bool {
        self >= Version::V5
    }

    /// Whether the host does UDP checksum offload (NVSP 5+; the C driver
    /// clears the UDP fields of the offload parameters below).
    pub fn has_udp_checksum_offload(self) -> bool {
        self >= Version::V5
    }

    /// Whether receive segment coalescing may be advertised (NVSP 6.1).
    pub fn has_rsc(self) -> bool {
        self >= Version::V61
    }

    /// Whether the host's send indirection table `offset` may be wrong (a
    /// host bug up to NVSP 6; the table then follows the 40-byte message).
    pub fn send_table_offset_quirk(self) -> bool {
        self <= Version::V6
    }

    /// Whether the version is acceptable in an isolated (confidential) VM:
    /// the C driver requires NVSP 6.1 there.
    pub fn isolation_ok(self) -> bool {
        self >= Version::V61
    }

    /// The NDIS version the guest announces: 6.1 up to NVSP 4, else 6.30.
    pub fn ndis_version(self) -> (u32, u32) {
        if self <= Version::V4 {
            (6, 1)
        } else {
            (6, 30)
        }
    }

    /// The largest receive buffer the host takes: 15 MiB up to NVSP 2,
    /// else 31 MiB.
    pub fn max_receive_buffer(self) -> u32 {
        if self <= Version::V2 {
            15 * 1024 * 1024
        } else {
            31 * 1024 * 1024
        }
    }
}

// ---------------------------------------------------------------------------
// Wire layouts.

/// `struct nvsp_message_header`.
#[repr(C, packed)]
pub struct NvspHeader {
    /// `msg_type`.
    pub msg_type: u32,
}

/// `struct nvsp_message_init`.
#[repr(C, packed)]
pub struct InitWire {
    /// `min_protocol_ver`.
    pub min_protocol_ver: u32,
    /// `max_protocol_ver`.
    pub max_protocol_ver: u32,
}

/// `struct nvsp_message_init_complete`.
#[repr(C, packed)]
pub struct InitCompleteWire {
    /// `negotiated_protocol_ver`.
    pub negotiated_protocol_ver: u32,
    /// `max_mdl_chain_len`.
    pub max_mdl_chain_len: u32,
    /// `status`.
    pub status: u32,
}

/// `struct nvsp_1_message_send_ndis_version`.
#[repr(C, packed)]
pub struct SendNdisVersionWire {
    /// `ndis_major_ver`.
    pub ndis_major_ver: u32,
    /// `ndis_minor_ver`.
    pub ndis_minor_ver: u32,
}

/// `struct nvsp_1_message_send_receive_buffer`; the same layout is
/// `struct nvsp_1_message_send_send_buffer`.
#[repr(C, packed)]
pub struct SendBufferWire {
    /// `gpadl_handle`.
    pub gpadl_handle: u32,
    /// `id`.
    pub id: u16,
}

/// `struct nvsp_1_receive_buffer_section`.
#[repr(C, packed)]
pub struct RecvBufSectionWire {
    /// `offset`.
    pub offset: u32,
    /// `sub_alloc_size`.
    pub sub_alloc_size: u32,
    /// `num_sub_allocs`.
    pub num_sub_allocs: u32,
    /// `end_offset`.
    pub end_offset: u32,
}

/// `struct nvsp_1_message_send_receive_buffer_complete`, with its one
/// section.
#[repr(C, packed)]
pub struct RecvBufCompleteWire {
    /// `status`.
    pub status: u32,
    /// `num_sections`.
    pub num_sections: u32,
    /// `sections[0]`.
    pub section: RecvBufSectionWire,
}

/// `struct nvsp_1_message_revoke_receive_buffer`; the same layout is
/// `struct nvsp_1_message_revoke_send_buffer`.
#[repr(C, packed)]
pub struct RevokeBufferWire {
    /// `id`.
    pub id: u16,
}

/// `struct nvsp_1_message_send_send_buffer_complete`.
#[repr(C, packed)]
pub struct SendBufCompleteWire {
    /// `status`.
    pub status: u32,
    /// `section_size`.
    pub section_size: u32,
}

/// `struct nvsp_1_message_send_rndis_packet`.
#[repr(C, packed)]
pub struct RndisPacketWire {
    /// `channel_type`.
    pub channel_type: u32,
    /// `send_buf_section_index`.
    pub send_buf_section_index: u32,
    /// `send_buf_section_size`.
    pub send_buf_section_size: u32,
}

/// `struct nvsp_1_message_send_rndis_packet_complete`.
#[repr(C, packed)]
pub struct RndisPacketCompleteWire {
    /// `status`.
    pub status: u32,
}

/// `struct nvsp_2_send_ndis_config`.
#[repr(C, packed)]
pub struct NdisConfigWire {
    /// `mtu`.
    pub mtu: u32,
    /// `reserved`.
    pub reserved: u32,
    /// `capability`: [`caps`] bits.
    pub capability: u64,
}

/// `struct nvsp_4_send_vf_association`.
#[repr(C, packed)]
pub struct VfAssociationWire {
    /// `allocated`.
    pub allocated: u32,
    /// `serial`.
    pub serial: u32,
}

/// `struct nvsp_4_sw_datapath`.
#[repr(C, packed)]
pub struct SwitchDataPathWire {
    /// `active_datapath`.
    pub active_datapath: u32,
}

/// `struct nvsp_5_subchannel_request`.
#[repr(C, packed)]
pub struct SubchannelRequestWire {
    /// `op`.
    pub op: u32,
    /// `num_subchannels`.
    pub num_subchannels: u32,
}

/// `struct nvsp_5_subchannel_complete`.
#[repr(C, packed)]
pub struct SubchannelCompleteWire {
    /// `status`.
    pub status: u32,
    /// `num_subchannels`.
    pub num_subchannels: u32,
}

/// `struct nvsp_5_send_indirect_table`.
#[repr(C, packed)]
pub struct SendTableWire {
    /// `count`.
    pub count: u32,
    /// `offset`: of the table from the start of the NVSP message.
    pub offset: u32,
}

/// Capability bits of SEND_NDIS_CONFIG (`struct nvsp_2_vsc_capability`).
pub mod caps {
    /// `vmq`.
    pub const VMQ: u64 = 1 << 0;
    /// `chimney`.
    pub const CHIMNEY: u64 = 1 << 1;
    /// `sriov`.
    pub const SRIOV: u64 = 1 << 2;
    /// `ieee8021q`.
    pub const IEEE8021Q: u64 = 1 << 3;
    /// `correlation_id`.
    pub const CORRELATION_ID: u64 = 1 << 4;
    /// `teaming`: needed to receive link speed updates.
    pub const TEAMING: u64 = 1 << 5;
    /// `vsubnetid`.
    pub const VSUBNETID: u64 = 1 << 6;
    /// `rsc`.
    pub const RSC: u64 = 1 << 7;
}

/// `channel_type` of SEND_RNDIS_PKT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RndisChannel {
    /// 0, RMC_DATA: a data packet.
    Data,
    /// 1, RMC_CONTROL: any other RNDIS message.
    Control,
}

/// The data path of SWITCH_DATA_PATH (`enum nvsp_vm_datapath`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPath {
    /// `NVSP_DATAPATH_SYNTHETIC`.
    Synthetic,
    /// `NVSP_DATAPATH_VF`.
    Vf,
}

/// `NVSP_SUBCHANNEL_ALLOCATE`, the only sub-channel operation.
pub const SUBCHANNEL_ALLOCATE: u32 = 1;

// ---------------------------------------------------------------------------
// Message types and parsed messages.

/// The NVSP message types this module parses and builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum MessageType {
    /// `NVSP_MSG_TYPE_INIT` (guest).
    Init = 1,
    /// `NVSP_MSG_TYPE_INIT_COMPLETE` (host).
    InitComplete = 2,
    /// `NVSP_MSG1_TYPE_SEND_NDIS_VER` (guest).
    SendNdisVersion = 100,
    /// `NVSP_MSG1_TYPE_SEND_RECV_BUF` (guest).
    SendReceiveBuffer = 101,
    /// `NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE` (host).
    SendReceiveBufferComplete = 102,
    /// `NVSP_MSG1_TYPE_REVOKE_RECV_BUF` (guest).
    RevokeReceiveBuffer = 103,
    /// `NVSP_MSG1_TYPE_SEND_SEND_BUF` (guest).
    SendSendBuffer = 104,
    /// `NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE` (host).
    SendSendBufferComplete = 105,
    /// `NVSP_MSG1_TYPE_REVOKE_SEND_BUF` (guest).
    RevokeSendBuffer = 106,
    /// `NVSP_MSG1_TYPE_SEND_RNDIS_PKT` (either).
    SendRndisPacket = 107,
    /// `NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE` (either).
    SendRndisPacketComplete = 108,
    /// `NVSP_MSG2_TYPE_SEND_NDIS_CONFIG` (guest).
    SendNdisConfig = 125,
    /// `NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION` (host).
    SendVfAssociation = 128,
    /// `NVSP_MSG4_TYPE_SWITCH_DATA_PATH` (either: the guest asks, the host
    /// may echo it in a completion).
    SwitchDataPath = 129,
    /// `NVSP_MSG5_TYPE_SUBCHANNEL` (guest request, host completion).
    Subchannel = 133,
    /// `NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE` (host).
    SendIndirectionTable = 134,
}

impl MessageType {
    /// Every type this module parses and builds.
    pub const ALL: [MessageType; 16] = [
        MessageType::Init,
        MessageType::InitComplete,
        MessageType::SendNdisVersion,
        MessageType::SendReceiveBuffer,
        MessageType::SendReceiveBufferComplete,
        MessageType::RevokeReceiveBuffer,
        MessageType::SendSendBuffer,
        MessageType::SendSendBufferComplete,
        MessageType::RevokeSendBuffer,
        MessageType::SendRndisPacket,
        MessageType::SendRndisPacketComplete,
        MessageType::SendNdisConfig,
        MessageType::SendVfAssociation,
        MessageType::SwitchDataPath,
        MessageType::Subchannel,
        MessageType::SendIndirectionTable,
    ];

    /// The type for a wire value; `None` for types this module does not
    /// handle (see the module documentation).
    pub fn from_raw(raw: u32) -> Option<MessageType> {
        MessageType::ALL.iter().copied().find(|t| *t as u32 == raw)
    }

    /// Whether `sender` ever sends this type.
    pub fn sent_by(self, sender: Sender) -> bool {
        use MessageType as T;
        match self {
            T::SendRndisPacket | T::SendRndisPacketComplete | T::SwitchDataPath | T::Subchannel => {
                true
            }
            T::InitComplete
            | T::SendReceiveBufferComplete
            | T::SendSendBufferComplete
            | T::SendVfAssociation
            | T::SendIndirectionTable => sender == Sender::Host,
            T::Init
            | T::SendNdisVersion
            | T::SendReceiveBuffer
            | T::RevokeReceiveBuffer
            | T::SendSendBuffer
            | T::RevokeSendBuffer
            | T::SendNdisConfig => sender == Sender::Guest,
        }
    }

    /// Bytes of body (after the 4-byte header) that a message of this type
    /// from `sender` must have.
    pub fn body_size(self, sender: Sender) -> usize {
        use MessageType as T;
        match self {
            T::Init => size_of::<InitWire>(),
            T::InitComplete => size_of::<InitCompleteWire>(),
            T::SendNdisVersion => size_of::<SendNdisVersionWire>(),
            T::SendReceiveBuffer | T::SendSendBuffer => size_of::<SendBufferWire>(),
            T::SendReceiveBufferComplete => size_of::<RecvBufCompleteWire>(),
            T::RevokeReceiveBuffer | T::RevokeSendBuffer => size_of::<RevokeBufferWire>(),
            T::SendSendBufferComplete => size_of::<SendBufCompleteWire>(),
            T::SendRndisPacket => size_of::<RndisPacketWire>(),
            T::SendRndisPacketComplete => size_of::<RndisPacketCompleteWire>(),
            T::SendNdisConfig => size_of::<NdisConfigWire>(),
            T::SendVfAssociation => size_of::<VfAssociationWire>(),
            T::SwitchDataPath => size_of::<SwitchDataPathWire>(),
            T::Subchannel => match sender {
                Sender::Guest => size_of::<SubchannelRequestWire>(),
                Sender::Host => size_of::<SubchannelCompleteWire>(),
            },
            T::SendIndirectionTable => size_of::<SendTableWire>(),
        }
    }

    /// The shortest message of this type that parses (header and body; the
    /// send indirection table also needs its entries).
    pub fn min_size(self, sender: Sender) -> usize {
        NVSP_HEADER_SIZE + self.body_size(sender)
    }
}

/// Who sent the bytes being parsed; it decides the meaning of SUBCHANNEL
/// and which types are acceptable at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// The guest (netvsc); the host parses with this.
    Guest,
    /// The host (netvsp); the guest parses with this.
    Host,
}

/// The host's answer to INIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitComplete {
    /// `negotiated_protocol_ver` (the C guest ignores it).
    pub negotiated_version: u32,
    /// `max_mdl_chain_len`.
    pub max_mdl_chain_len: u32,
    /// An NVSP [`status`].
    pub status: u32,
}

/// One section of the receive buffer (`struct nvsp_1_receive_buffer_section`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecvBufSection {
    /// `offset` in the buffer.
    pub offset: u32,
    /// `sub_alloc_size`: the size of each slot.
    pub sub_alloc_size: u32,
    /// `num_sub_allocs`: the number of slots.
    pub num_sub_allocs: u32,
    /// `end_offset`.
    pub end_offset: u32,
}

/// The host's answer to SEND_RECV_BUF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvBufComplete {
    /// An NVSP [`status`].
    pub status: u32,
    /// `num_sections`.
    pub num_sections: u32,
    /// `sections[0]`.
    pub section: RecvBufSection,
}

impl RecvBufComplete {
    /// The guest's checks (the C driver's): success, exactly one section
    /// starting at offset 0, slots of at least [`MIN_SECTION_SIZE`] bytes
    /// that fit in the `buffer_size`-byte buffer. Returns the slot size
    /// and count.
    pub fn slots(&self, buffer_size: u32) -> Result<(u32, u32)> {
        if self.status != status::SUCCESS {
            return Err(Error::BadField("status"));
        }
        if self.num_sections != 1 || self.section.offset != 0 {
            return Err(Error::BadField("num_sections"));
        }
        let size = self.section.sub_alloc_size;
        let count = self.section.num_sub_allocs;
        if size < MIN_SECTION_SIZE {
            return Err(Error::BadField("sub_alloc_size"));
        }
        if count == 0 || u64::from(size) * u64::from(count) > u64::from(buffer_size) {
            return Err(Error::BadField("num_sub_allocs"));
        }
        Ok((size, count))
    }
}

/// The guest's checks on SEND_SEND_BUF_COMPLETE: success and a section size
/// of at least [`MIN_SECTION_SIZE`] of which at least one fits in the
/// `buffer_size`-byte buffer. Returns the section size and count.
pub fn send_sections(status: u32, section_size: u32, buffer_size: u32) -> Result<(u32, u32)> {
    if status != self::status::SUCCESS {
        return Err(Error::BadField("status"));
    }
    if section_size < MIN_SECTION_SIZE {
        return Err(Error::BadField("section_size"));
    }
    match buffer_size.checked_div(section_size) {
        Some(count) if count > 0 => Ok((section_size, count)),
        _ => Err(Error::BadField("section_size")),
    }
}

/// SEND_RNDIS_PKT: an RNDIS message is in the send buffer or in the
/// packet's page ranges (guest to host), or in the receive buffer's
/// transfer pages (host to guest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RndisPacket {
    /// Data or control.
    pub channel: RndisChannel,
    /// The send buffer section holding the message, or [`NO_SECTION`].
    pub section_index: u32,
    /// Bytes used in that section (0 when none).
    pub section_size: u32,
}

/// SEND_NDIS_CONFIG (NVSP 2+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdisConfig {
    /// `mtu`: the largest frame, Ethernet header included.
    pub mtu: u32,
    /// [`caps`] bits.
    pub capabilities: u64,
}

impl NdisConfig {
    /// What the C guest sends for `version` and an interface MTU of `mtu`:
    /// 802.1Q always; SR-IOV (unless `isolated`) and teaming from NVSP 5;
    /// RSC from NVSP 6.1.
    pub fn for_guest(version: Version, mtu: u32, isolated: bool) -> NdisConfig {
        let mut capabilities = caps::IEEE8021Q;
        if version.has_subchannels() {
            if !isolated {
                capabilities |= caps::SRIOV;
            }
            capabilities |= caps::TEAMING;
        }
        if version.has_rsc() {
            capabilities |= caps::RSC;
        }
        NdisConfig {
            mtu: mtu.saturating_add(ETH_HLEN),
            capabilities,
        }
    }
}

/// SEND_INDIRECTION_TABLE: which sub-channel the guest sends each hash
/// bucket on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendTable {
    /// The channel index of each bucket (not checked against the channel
    /// count, which the parser does not know; the guest must).
    pub table: [u32; SEND_TABLE_SIZE],
}

/// An NVSP message, parsed and validated, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// INIT: the guest proposes a version range (the C guest proposes one
    /// version at a time, `min == max`).
    Init {
        /// `min_protocol_ver`, raw.
        min: u32,
        /// `max_protocol_ver`, raw.
        max: u32,
    },
    /// INIT_COMPLETE.
    InitComplete(InitComplete),
    /// SEND_NDIS_VER.
    SendNdisVersion {
        /// `ndis_major_ver`.
        major: u32,
        /// `ndis_minor_ver`.
        minor: u32,
    },
    /// SEND_RECV_BUF: the receive buffer's GPADL.
    SendReceiveBuffer {
        /// The GPADL handle.
        gpadl: u32,
        /// The buffer id ([`RECEIVE_BUFFER_ID`]).
        id: u16,
    },
    /// SEND_RECV_BUF_COMPLETE.
    SendReceiveBufferComplete(RecvBufComplete),
    /// REVOKE_RECV_BUF.
    RevokeReceiveBuffer {
        /// The buffer id.
        id: u16,
    },
    /// SEND_SEND_BUF: the send buffer's GPADL.
    SendSendBuffer {
        /// The GPADL handle.
        gpadl: u32,
        /// The buffer id ([`SEND_BUFFER_ID`]).
        id: u16,
    },
    /// SEND_SEND_BUF_COMPLETE.
    SendSendBufferComplete {
        /// An NVSP [`status`].
        status: u32,
        /// The section size the host chose.
        section_size: u32,
    },
    /// REVOKE_SEND_BUF.
    RevokeSendBuffer {
        /// The buffer id.
        id: u16,
    },
    /// SEND_RNDIS_PKT.
    SendRndisPacket(RndisPacket),
    /// SEND_RNDIS_PKT_COMPLETE.
    SendRndisPacketComplete {
        /// An NVSP [`status`].
        status: u32,
    },
    /// SEND_NDIS_CONFIG.
    SendNdisConfig(NdisConfig),
    /// SEND_VF_ASSOCIATION: a VF to team with appeared or went.
    VfAssociation {
        /// Whether a VF is allocated (`allocated != 0`).
        allocated: bool,
        /// The VF's serial number.
        serial: u32,
    },
    /// SWITCH_DATA_PATH.
    SwitchDataPath(DataPath),
    /// SUBCHANNEL from the guest: allocate this many sub-channels.
    SubchannelRequest {
        /// Sub-channels wanted (channels minus the primary).
        num_subchannels: u32,
    },
    /// SUBCHANNEL from the host, completing the request.
    SubchannelComplete {
        /// An NVSP [`status`].
        status: u32,
        /// Sub-channels allocated.
        num_subchannels: u32,
    },
    /// SEND_INDIRECTION_TABLE.
    SendIndirectionTable(SendTable),
}

const BODY: usize = NVSP_HEADER_SIZE;

impl Message {
    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        use MessageType as T;
        match self {
            Message::Init { .. } => T::Init,
            Message::InitComplete(_) => T::InitComplete,
            Message::SendNdisVersion { .. } => T::SendNdisVersion,
            Message::SendReceiveBuffer { .. } => T::SendReceiveBuffer,
            Message::SendReceiveBufferComplete(_) => T::SendReceiveBufferComplete,
            Message::RevokeReceiveBuffer { .. } => T::RevokeReceiveBuffer,
            Message::SendSendBuffer { .. } => T::SendSendBuffer,
            Message::SendSendBufferComplete { .. } => T::SendSendBufferComplete,
            Message::RevokeSendBuffer { .. } => T::RevokeSendBuffer,
            Message::SendRndisPacket(_) => T::SendRndisPacket,
            Message::SendRndisPacketComplete { .. } => T::SendRndisPacketComplete,
            Message::SendNdisConfig(_) => T::SendNdisConfig,
            Message::VfAssociation { .. } => T::SendVfAssociation,
            Message::SwitchDataPath(_) => T::SwitchDataPath,
            Message::SubchannelRequest { .. } | Message::SubchannelComplete { .. } => T::Subchannel,
            Message::SendIndirectionTable(_) => T::SendIndirectionTable,
        }
    }

    /// Who sends this message (for the two-way types, either; `Guest` is
    /// returned for those but the host's parse accepts them too).
    pub fn sender(&self) -> Sender {
        match self {
            Message::SubchannelComplete { .. } => Sender::Host,
            m if !m.message_type().sent_by(Sender::Guest) => Sender::Host,
            _ => Sender::Guest,
        }
    }

    /// Parses an NVSP message sent by `sender`: `bytes` is the VMBus
    /// packet's payload, already copied out of the ring. `version` is the
    /// negotiated version, `None` before negotiation; it decides whether the
    /// send table's offset is trusted. Bytes past what the type reads are
    /// ignored.
    pub fn parse(bytes: &[u8], sender: Sender, version: Option<Version>) -> Result<Message> {
        let r = Reader::new(bytes);
        let raw = r.u32(offset_of!(NvspHeader, msg_type))?;
        let ty = MessageType::from_raw(raw).ok_or(Error::UnknownType(raw))?;
        if !ty.sent_by(sender) {
            return Err(Error::WrongSender(raw));
        }
        need(bytes, ty.min_size(sender))?;
        use MessageType as T;
        let m = match ty {
            T::Init => Message::Init {
                min: r.u32(BODY + offset_of!(InitWire, min_protocol_ver))?,
                max: r.u32(BODY + offset_of!(InitWire, max_protocol_ver))?,
            },
            T::InitComplete => Message::InitComplete(InitComplete {
                negotiated_version: r
                    .u32(BODY + offset_of!(InitCompleteWire, negotiated_protocol_ver))?,
                max_mdl_chain_len: r.u32(BODY + offset_of!(InitCompleteWire, max_mdl_chain_len))?,
                status: r.u32(BODY + offset_of!(InitCompleteWire, status))?,
            }),
            T::SendNdisVersion => Message::SendNdisVersion {
                major: r.u32(BODY + offset_of!(SendNdisVersionWire, ndis_major_ver))?,
                minor: r.u32(BODY + offset_of!(SendNdisVersionWire, ndis_minor_ver))?,
            },
            T::SendReceiveBuffer => Message::SendReceiveBuffer {
                gpadl: r.u32(BODY + offset_of!(SendBufferWire, gpadl_handle))?,
                id: r.u16(BODY + offset_of!(SendBufferWire, id))?,
            },
            T::SendSendBuffer => Message::SendSendBuffer {
                gpadl: r.u32(BODY + offset_of!(SendBufferWire, gpadl_handle))?,
                id: r.u16(BODY + offset_of!(SendBufferWire, id))?,
            },
            T::SendReceiveBufferComplete => {
                let s = BODY + offset_of!(RecvBufCompleteWire, section);
                Message::SendReceiveBufferComplete(RecvBufComplete {
                    status: r.u32(BODY + offset_of!(RecvBufCompleteWire, status))?,
                    num_sections: r.u32(BODY + offset_of!(RecvBufCompleteWire, num_sections))?,
                    section: RecvBufSection {
                        offset: r.u32(s + offset_of!(RecvBufSectionWire, offset))?,
                        sub_alloc_size: r
                            .u32(s + offset_of!(RecvBufSectionWire, sub_alloc_size))?,
                        num_sub_allocs: r
                            .u32(s + offset_of!(RecvBufSectionWire, num_sub_allocs))?,
                        end_offset: r.u32(s + offset_of!(RecvBufSectionWire, end_offset))?,
                    },
                })
            }
            T::RevokeReceiveBuffer => Message::RevokeReceiveBuffer {
                id: r.u16(BODY + offset_of!(RevokeBufferWire, id))?,
            },
            T::RevokeSendBuffer => Message::RevokeSendBuffer {
                id: r.u16(BODY + offset_of!(RevokeBufferWire, id))?,
            },
            T::SendSendBufferComplete => Message::SendSendBufferComplete {
                status: r.u32(BODY + offset_of!(SendBufCompleteWire, status))?,
                section_size: r.u32(BODY + offset_of!(SendBufCompleteWire, section_size))?,
            },
            T::SendRndisPacket => {
                let channel = match r.u32(BODY + offset_of!(RndisPacketWire, channel_type))? {
                    0 => RndisChannel::Data,
                    1 => RndisChannel::Control,
                    _ => return Err(Error::BadField("channel_type")),
                };
                Message::SendRndisPacket(RndisPacket {
                    channel,
                    section_index: r
                        .u32(BODY + offset_of!(RndisPacketWire, send_buf_section_index))?,
                    section_size: r
                        .u32(BODY + offset_of!(RndisPacketWire, send_buf_section_size))?,
                })
            }
            T::SendRndisPacketComplete => Message::SendRndisPacketComplete {
                status: r.u32(BODY + offset_of!(RndisPacketCompleteWire, status))?,
            },
            T::SendNdisConfig => Message::SendNdisConfig(NdisConfig {
                mtu: r.u32(BODY + offset_of!(NdisConfigWire, mtu))?,
                capabilities: r.u64(BODY + offset_of!(NdisConfigWire, capability))?,
            }),
            T::SendVfAssociation => Message::VfAssociation {
                allocated: r.u32(BODY + offset_of!(VfAssociationWire, allocated))? != 0,
                serial: r.u32(BODY + offset_of!(VfAssociationWire, serial))?,
            },
            T::SwitchDataPath => {
                match r.u32(BODY + offset_of!(SwitchDataPathWire, active_datapath))? {
                    0 => Message::SwitchDataPath(DataPath::Synthetic),
                    1 => Message::SwitchDataPath(DataPath::Vf),
                    _ => return Err(Error::BadField("active_datapath")),
                }
            }
            T::Subchannel => match sender {
                Sender::Guest => {
                    if r.u32(BODY + offset_of!(SubchannelRequestWire, op))? != SUBCHANNEL_ALLOCATE {
                        return Err(Error::BadField("op"));
                    }
                    Message::SubchannelRequest {
                        num_subchannels: r
                            .u32(BODY + offset_of!(SubchannelRequestWire, num_subchannels))?,
                    }
                }
                Sender::Host => Message::SubchannelComplete {
                    status: r.u32(BODY + offset_of!(SubchannelCompleteWire, status))?,
                    num_subchannels: r
                        .u32(BODY + offset_of!(SubchannelCompleteWire, num_subchannels))?,
                },
            },
            T::SendIndirectionTable => {
                Message::SendIndirectionTable(parse_send_table(bytes, version)?)
            }
        };
        Ok(m)
    }

    /// The number of bytes [`Message::write`] writes: [`NVSP_MESSAGE_SIZE`]
    /// for every message but the RNDIS-packet completion
    /// ([`RNDIS_PACKET_COMPLETE_SIZE`]) and the send indirection table
    /// ([`MAX_MESSAGE_SIZE`]).
    pub fn wire_size(&self) -> usize {
        match self {
            Message::SendRndisPacketComplete { .. } => RNDIS_PACKET_COMPLETE_SIZE,
            Message::SendIndirectionTable(_) => MAX_MESSAGE_SIZE,
            _ => NVSP_MESSAGE_SIZE,
        }
    }

    /// The message written out, ready to send.
    pub fn encode(&self) -> Result<Encoded> {
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        let len = self.write(&mut buf)?;
        Ok(Encoded { buf, len })
    }

    /// Writes the message into `buf`, zero-padded to
    /// [`Message::wire_size`], and returns that size.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.wire_size());
        w.u32(offset_of!(NvspHeader, msg_type), self.message_type() as u32);
        match *self {
            Message::Init { min, max } => {
                w.u32(BODY + offset_of!(InitWire, min_protocol_ver), min);
                w.u32(BODY + offset_of!(InitWire, max_protocol_ver), max);
            }
            Message::InitComplete(c) => {
                w.u32(
                    BODY + offset_of!(InitCompleteWire, negotiated_protocol_ver),
                    c.negotiated_version,
                );
                w.u32(
                    BODY + offset_of!(InitCompleteWire, max_mdl_chain_len),
                    c.max_mdl_chain_len,
                );
                w.u32(BODY + offset_of!(InitCompleteWire, status), c.status);
            }
            Message::SendNdisVersion { major, minor } => {
                w.u32(
                    BODY + offset_of!(SendNdisVersionWire, ndis_major_ver),
                    major,
                );
                w.u32(
                    BODY + offset_of!(SendNdisVersionWire, ndis_minor_ver),
                    minor,
                );
            }
            Message::SendReceiveBuffer { gpadl, id } | Message::SendSendBuffer { gpadl, id } => {
                w.u32(BODY + offset_of!(SendBufferWire, gpadl_handle), gpadl);
                w.u16(BODY + offset_of!(SendBufferWire, id), id);
            }
            Message::SendReceiveBufferComplete(c) => {
                let s = BODY + offset_of!(RecvBufCompleteWire, section);
                w.u32(BODY + offset_of!(RecvBufCompleteWire, status), c.status);
                w.u32(
                    BODY + offset_of!(RecvBufCompleteWire, num_sections),
                    c.num_sections,
                );
                w.u32(s + offset_of!(RecvBufSectionWire, offset), c.section.offset);
                w.u32(
                    s + offset_of!(RecvBufSectionWire, sub_alloc_size),
                    c.section.sub_alloc_size,
                );
                w.u32(
                    s + offset_of!(RecvBufSectionWire, num_sub_allocs),
                    c.section.num_sub_allocs,
                );
                w.u32(
                    s + offset_of!(RecvBufSectionWire, end_offset),
                    c.section.end_offset,
                );
            }
            Message::RevokeReceiveBuffer { id } | Message::RevokeSendBuffer { id } => {
                w.u16(BODY + offset_of!(RevokeBufferWire, id), id);
            }
            Message::SendSendBufferComplete {
                status,
                section_size,
            } => {
                w.u32(BODY + offset_of!(SendBufCompleteWire, status), status);
                w.u32(
                    BODY + offset_of!(SendBufCompleteWire, section_size),
                    section_size,
                );
            }
            Message::SendRndisPacket(p) => {
                let channel = match p.channel {
                    RndisChannel::Data => 0,
                    RndisChannel::Control => 1,
                };
                w.u32(BODY + offset_of!(RndisPacketWire, channel_type), channel);
                w.u32(
                    BODY + offset_of!(RndisPacketWire, send_buf_section_index),
                    p.section_index,
                );
                w.u32(
                    BODY + offset_of!(RndisPacketWire, send_buf_section_size),
                    p.section_size,
                );
            }
            Message::SendRndisPacketComplete { status } => {
                w.u32(BODY + offset_of!(RndisPacketCompleteWire, status), status);
            }
            Message::SendNdisConfig(c) => {
                w.u32(BODY + offset_of!(NdisConfigWire, mtu), c.mtu);
                w.u64(
                    BODY + offset_of!(NdisConfigWire, capability),
                    c.capabilities,
                );
            }
            Message::VfAssociation { allocated, serial } => {
                w.u32(
                    BODY + offset_of!(VfAssociationWire, allocated),
                    u32::from(allocated),
                );
                w.u32(BODY + offset_of!(VfAssociationWire, serial), serial);
            }
            Message::SwitchDataPath(dp) => {
                let v = match dp {
                    DataPath::Synthetic => 0,
                    DataPath::Vf => 1,
                };
                w.u32(BODY + offset_of!(SwitchDataPathWire, active_datapath), v);
            }
            Message::SubchannelRequest { num_subchannels } => {
                w.u32(
                    BODY + offset_of!(SubchannelRequestWire, op),
                    SUBCHANNEL_ALLOCATE,
                );
                w.u32(
                    BODY + offset_of!(SubchannelRequestWire, num_subchannels),
                    num_subchannels,
                );
            }
            Message::SubchannelComplete {
                status,
                num_subchannels,
            } => {
                w.u32(BODY + offset_of!(SubchannelCompleteWire, status), status);
                w.u32(
                    BODY + offset_of!(SubchannelCompleteWire, num_subchannels),
                    num_subchannels,
                );
            }
            Message::SendIndirectionTable(t) => {
                w.u32(
                    BODY + offset_of!(SendTableWire, count),
                    SEND_TABLE_SIZE as u32,
                );
                w.u32(
                    BODY + offset_of!(SendTableWire, offset),
                    NVSP_MESSAGE_SIZE as u32,
                );
                let mut at = NVSP_MESSAGE_SIZE;
                for e in t.table {
                    w.u32(at, e);
                    at = at.saturating_add(4);
                }
            }
        }
        w.finish()
    }
}

/// The send indirection table: exactly [`SEND_TABLE_SIZE`] entries (as the
/// C guest requires) at `offset` from the start of the message, or, with
/// the pre-6.1 host bug, right after the 40-byte message when they fit
/// there.
fn parse_send_table(bytes: &[u8], version: Option<Version>) -> Result<SendTable> {
    let r = Reader::new(bytes);
    let count = r.u32(BODY + offset_of!(SendTableWire, count))?;
    if to_usize(count) != SEND_TABLE_SIZE {
        return Err(Error::BadField("count"));
    }
    let table_bytes = SEND_TABLE_SIZE * 4;
    let mut offset = to_usize(r.u32(BODY + offset_of!(SendTableWire, offset))?);
    if version.is_some_and(Version::send_table_offset_quirk) && bytes.len() >= MAX_MESSAGE_SIZE {
        offset = NVSP_MESSAGE_SIZE;
    }
    // The table may not overlap the header and its own fields.
    if offset < NVSP_HEADER_SIZE + size_of::<SendTableWire>() {
        return Err(Error::BadField("offset"));
    }
    let entries = r.slice(offset, table_bytes)?;
    let mut table = [0u32; SEND_TABLE_SIZE];
    for (i, e) in table.iter_mut().enumerate() {
        *e = super::wire::u32_at(entries, i.saturating_mul(4)).ok_or(Error::BadField("offset"))?;
    }
    Ok(SendTable { table })
}

/// A message as [`Message::encode`] wrote it.
#[derive(Clone, Copy, Debug)]
pub struct Encoded {
    buf: [u8; MAX_MESSAGE_SIZE],
    len: usize,
}

impl Encoded {
    /// The message's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

// ---------------------------------------------------------------------------
// Negotiation.

/// What the guest does next in version negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this INIT and wait for its INIT_COMPLETE.
    Propose(Message),
    /// This version was accepted.
    Done(Version),
    /// The host refused every version.
    Failed,
}

/// The guest's version negotiation, sans I/O: propose each version of
/// [`GUEST_VERSIONS`] in turn, newest first, each as a one-version range
/// (as the C driver does), until the host's INIT_COMPLETE says success.
///
/// The C driver does not look at `negotiated_protocol_ver` in the answer;
/// neither does this.
#[derive(Clone, Debug)]
pub struct Negotiation {
    next: usize,
    proposed: Option<Version>,
    isolated: bool,
}

impl Negotiation {
    /// Starts negotiating; returns the first INIT to send. In an
    /// `isolated` (confidential) VM only versions that pass
    /// [`Version::isolation_ok`] are proposed.
    pub fn start(isolated: bool) -> (Negotiation, Step) {
        let mut n = Negotiation {
            next: 0,
            proposed: None,
            isolated,
        };
        let step = n.propose_next();
        (n, step)
    }

    /// The version of the INIT in flight.
    pub fn proposed(&self) -> Option<Version> {
        self.proposed
    }

    fn propose_next(&mut self) -> Step {
        while let Some(v) = GUEST_VERSIONS.get(self.next).copied() {
            self.next = self.next.saturating_add(1);
            if self.isolated && !v.isolation_ok() {
                continue;
            }
            self.proposed = Some(v);
            return Step::Propose(Message::Init {
                min: v.raw(),
                max: v.raw(),
            });
        }
        self.proposed = None;
        Step::Failed
    }

    /// The host answered the INIT in flight.
    pub fn on_init_complete(&mut self, c: &InitComplete) -> Step {
        match self.proposed {
            None => Step::Failed,
            Some(v) if c.status == status::SUCCESS => {
                self.proposed = None;
                self.next = GUEST_VERSIONS.len();
                Step::Done(v)
            }
            Some(_) => self.propose_next(),
        }
    }
}

/// The host's answer to INIT: the newest of `supported` within
/// `min..=max`, or a failure status saying which way the guest is off.
pub fn host_init_complete(min: u32, max: u32, supported: &[Version]) -> InitComplete {
    let best = supported
        .iter()
        .copied()
        .filter(|v| (min..=max).contains(&v.raw()))
        .max();
    let (negotiated_version, status) = match best {
        Some(v) => (v.raw(), status::SUCCESS),
        None if supported.iter().all(|v| v.raw() < min) => (0, status::PROTOCOL_TOO_NEW),
        None if supported.iter().all(|v| v.raw() > max) => (0, status::PROTOCOL_TOO_OLD),
        None => (0, status::PROTOCOL_UNSUPPORTED),
    };
    InitComplete {
        negotiated_version,
        max_mdl_chain_len: 0,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_gives_what_write_writes() {
        let m = Message::SendRndisPacketComplete { status: status::SUCCESS };
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        let n = m.write(&mut buf).unwrap();
        assert_eq!(m.encode().unwrap().bytes(), &buf[..n]);
    }

    #[test]
    fn sizes_match_the_c_structs() {
        // From hyperv_net.h, measured against the 6.12 headers.
        assert_eq!(NVSP_HEADER_SIZE, 4);
        assert_eq!(size_of::<InitWire>(), 8);
        assert_eq!(size_of::<InitCompleteWire>(), 12);
        assert_eq!(size_of::<SendNdisVersionWire>(), 8);
        assert_eq!(size_of::<SendBufferWire>(), 6);
        assert_eq!(size_of::<RecvBufSectionWire>(), 16);
        assert_eq!(size_of::<RecvBufCompleteWire>(), 24);
        assert_eq!(size_of::<RevokeBufferWire>(), 2);
        assert_eq!(size_of::<SendBufCompleteWire>(), 8);
        assert_eq!(size_of::<RndisPacketWire>(), 12);
        assert_eq!(size_of::<RndisPacketCompleteWire>(), 4);
        assert_eq!(size_of::<NdisConfigWire>(), 16);
        assert_eq!(size_of::<VfAssociationWire>(), 8);
        assert_eq!(size_of::<SwitchDataPathWire>(), 4);
        assert_eq!(size_of::<SubchannelRequestWire>(), 8);
        assert_eq!(size_of::<SubchannelCompleteWire>(), 8);
        assert_eq!(size_of::<SendTableWire>(), 8);
        assert_eq!(RNDIS_PACKET_COMPLETE_SIZE, 8);
        assert_eq!(MAX_MESSAGE_SIZE, 104);
        // Every body fits in struct nvsp_message (its union is 36 bytes,
        // set by the NVSP 6 PD_API completion this crate leaves out).
        for t in MessageType::ALL {
            for s in [Sender::Guest, Sender::Host] {
                assert!(t.min_size(s) <= NVSP_MESSAGE_SIZE, "{t:?}");
            }
        }
    }

    #[test]
    fn type_values_match_the_c_enum() {
        assert_eq!(MessageType::SendRndisPacketComplete as u32, 108);
        assert_eq!(MessageType::SendNdisConfig as u32, 125);
        assert_eq!(MessageType::SendVfAssociation as u32, 128);
        assert_eq!(MessageType::SwitchDataPath as u32, 129);
        assert_eq!(MessageType::Subchannel as u32, 133);
        assert_eq!(MessageType::SendIndirectionTable as u32, 134);
    }

    #[test]
    fn versions_are_ordered_and_gate_features() {
        assert!(GUEST_VERSIONS.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(Version::V1.max_mtu(), 1500);
        assert_eq!(Version::V2.max_mtu(), 65521);
        assert!(!Version::V4.has_subchannels() && Version::V5.has_subchannels());
        assert_eq!(Version::V4.ndis_version(), (6, 1));
        assert_eq!(Version::V5.ndis_version(), (6, 30));
        assert!(Version::V6.send_table_offset_quirk() && !Version::V61.send_table_offset_quirk());
        for v in GUEST_VERSIONS {
            assert_eq!(Version::from_raw(v.raw()), Some(v));
        }
        assert_eq!(Version::from_raw(0x30000), None);
    }
}
