//! VMBus channel messages (the control plane's wire format), the SynIC
//! message that carries them and the monitor page.
//!
//! The `#[repr(C, packed)]` structs mirror the C layouts byte for byte; the
//! layout test (`tests/layout/`) compares them with the kernel's. Parsing and
//! building go through byte offsets taken from those structs, so the two
//! cannot drift apart. Parsed messages are owned values: every field is read
//! once from the caller's copy of the SynIC payload.

use core::mem::{offset_of, size_of};

use super::guid::Guid;

/// Bytes of payload in one SynIC message (`HV_MESSAGE_PAYLOAD_BYTE_COUNT`);
/// the largest channel message.
pub const MAX_MESSAGE_SIZE: usize = 240;
/// Size of a SynIC message slot (`HV_MESSAGE_SIZE`).
pub const SYNIC_MESSAGE_SIZE: usize = 256;
/// `message_type` of an empty SynIC message slot (`HVMSG_NONE`).
pub const HVMSG_NONE: u32 = 0;
/// `message_type` of a VMBus channel message in a SynIC slot (the type
/// HvPostMessage gives it).
pub const HVMSG_CHANNEL: u32 = 1;
/// `message_type` of a synthetic timer's expiration (`HVMSG_TIMER_EXPIRED`):
/// no channel message, though it may arrive in the same slot.
pub const HVMSG_TIMER_EXPIRED: u32 = 0x8000_0010;
/// Relids the guest accepts are below this (`MAX_CHANNEL_RELIDS` in C).
pub const MAX_CHANNEL_RELIDS: u32 = 2048;
/// Bytes of driver-defined data in an offer and in an open request
/// (`MAX_USER_DEFINED_BYTES`).
pub const USER_DEFINED_BYTES: usize = 120;
/// Monitor ids index 4 trigger groups of 32 bits each.
pub const MAX_MONITOR_ID: u8 = 127;
/// Page size of GPADL page frame numbers (`HV_HYP_PAGE_SIZE`).
pub const GPADL_PAGE_SIZE: u32 = 4096;
/// Size of one `struct gpa_range` header (byte_count, byte_offset).
pub const GPA_RANGE_SIZE: usize = 8;
/// PFNs that fit in CHANNELMSG_GPADL_HEADER after its one range header.
pub const GPADL_HEADER_MAX_PFNS: usize =
    (MAX_MESSAGE_SIZE - size_of::<GpadlHeaderWire>() - GPA_RANGE_SIZE) / 8;
/// PFNs that fit in one CHANNELMSG_GPADL_BODY.
pub const GPADL_BODY_MAX_PFNS: usize = (MAX_MESSAGE_SIZE - size_of::<GpadlBodyWire>()) / 8;
/// Largest page count one GPADL range can describe (`range_buflen` is u16).
pub const GPADL_MAX_PFNS: usize = (u16::MAX as usize - GPA_RANGE_SIZE) / 8;
/// Offer flag: named-pipe mode; the first 4 user bytes are the pipe mode.
pub const OFFER_FLAG_NAMED_PIPE_MODE: u16 = 0x10;

// ---------------------------------------------------------------------------
// SynIC message and monitor page.

/// `struct hv_message_header`: the 16-byte head of a SynIC message slot.
#[repr(C, packed)]
pub struct HvMessageHeader {
    /// `message_type`; [`HVMSG_NONE`] marks an empty slot.
    pub message_type: u32,
    /// `payload_size`, in bytes, at most [`MAX_MESSAGE_SIZE`].
    pub payload_size: u8,
    /// `message_flags`; bit 0 is `msg_pending`.
    pub message_flags: u8,
    /// `reserved`.
    pub reserved: [u8; 2],
    /// `sender` (union with `port`).
    pub sender: u64,
}

/// `struct hv_message`: one 256-byte SynIC message slot.
#[repr(C, packed)]
pub struct HvMessage {
    /// `header`.
    pub header: HvMessageHeader,
    /// `u.payload`.
    pub payload: [u64; MAX_MESSAGE_SIZE / 8],
}

/// `union hv_monitor_trigger_group`.
#[repr(C, align(8))]
pub struct HvMonitorTriggerGroup {
    /// `pending`.
    pub pending: u32,
    /// `armed`.
    pub armed: u32,
}

/// `struct hv_monitor_parameter`.
#[repr(C)]
pub struct HvMonitorParameter {
    /// `connectionid` (24 bits used).
    pub connectionid: u32,
    /// `flagnumber`.
    pub flagnumber: u16,
    /// `rsvdz`.
    pub rsvdz: u16,
}

/// `struct hv_monitor_page`: the page the guest shares with the host for
/// monitored (latency-batched) notifications.
#[repr(C)]
pub struct HvMonitorPage {
    /// `trigger_state`; bits 0..4 enable the trigger groups.
    pub trigger_state: u32,
    /// `rsvdz1`.
    pub rsvdz1: u32,
    /// `trigger_group`.
    pub trigger_group: [HvMonitorTriggerGroup; 4],
    /// `rsvdz2`.
    pub rsvdz2: [u64; 3],
    /// `next_checktime`.
    pub next_checktime: [[i32; 32]; 4],
    /// `latency`.
    pub latency: [[u16; 32]; 4],
    /// `rsvdz3`.
    pub rsvdz3: [u64; 32],
    /// `parameter`.
    pub parameter: [[HvMonitorParameter; 32]; 4],
    /// `rsvdz4`.
    pub rsvdz4: [u8; 1984],
}

/// A SynIC message copied out of its slot, header fields decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynicMessage {
    /// `message_type`.
    pub message_type: u32,
    /// `message_flags`.
    pub message_flags: u8,
    /// `sender`.
    pub sender: u64,
    len: u8,
    payload: [u8; MAX_MESSAGE_SIZE],
}

impl SynicMessage {
    /// Decodes a copy of a 256-byte SynIC slot; fails if the host claims a
    /// payload longer than the slot holds.
    pub fn parse(slot: &[u8; SYNIC_MESSAGE_SIZE]) -> Result<SynicMessage, ParseError> {
        let size = slot
            .get(offset_of!(HvMessageHeader, payload_size))
            .copied()
            .ok_or(ParseError::TooShort { msgtype: 0, len: 0 })?;
        if usize::from(size) > MAX_MESSAGE_SIZE {
            return Err(ParseError::TooLong {
                len: usize::from(size),
            });
        }
        let mut payload = [0u8; MAX_MESSAGE_SIZE];
        let head = size_of::<HvMessageHeader>();
        copy(&mut payload, slot.get(head..).unwrap_or(&[]));
        Ok(SynicMessage {
            message_type: u32_at(slot, offset_of!(HvMessageHeader, message_type)).unwrap_or(0),
            message_flags: slot
                .get(offset_of!(HvMessageHeader, message_flags))
                .copied()
                .unwrap_or(0),
            sender: u64_at(slot, offset_of!(HvMessageHeader, sender)).unwrap_or(0),
            len: size,
            payload,
        })
    }

    /// The payload bytes the header declares.
    pub fn payload(&self) -> &[u8] {
        self.payload.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Whether `msg_pending` is set: the host has more messages queued and
    /// wants an end-of-message write.
    pub fn msg_pending(&self) -> bool {
        self.message_flags & 1 != 0
    }
}

// ---------------------------------------------------------------------------
// Channel message layouts.

/// `enum vmbus_channel_message_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum MessageType {
    /// CHANNELMSG_OFFERCHANNEL (host to guest).
    OfferChannel = 1,
    /// CHANNELMSG_RESCIND_CHANNELOFFER (host to guest).
    RescindChannelOffer = 2,
    /// CHANNELMSG_REQUESTOFFERS (guest to host).
    RequestOffers = 3,
    /// CHANNELMSG_ALLOFFERS_DELIVERED (host to guest).
    AllOffersDelivered = 4,
    /// CHANNELMSG_OPENCHANNEL (guest to host).
    OpenChannel = 5,
    /// CHANNELMSG_OPENCHANNEL_RESULT (host to guest).
    OpenChannelResult = 6,
    /// CHANNELMSG_CLOSECHANNEL (guest to host).
    CloseChannel = 7,
    /// CHANNELMSG_GPADL_HEADER (guest to host).
    GpadlHeader = 8,
    /// CHANNELMSG_GPADL_BODY (guest to host).
    GpadlBody = 9,
    /// CHANNELMSG_GPADL_CREATED (host to guest).
    GpadlCreated = 10,
    /// CHANNELMSG_GPADL_TEARDOWN (guest to host).
    GpadlTeardown = 11,
    /// CHANNELMSG_GPADL_TORNDOWN (host to guest).
    GpadlTorndown = 12,
    /// CHANNELMSG_RELID_RELEASED (guest to host).
    RelidReleased = 13,
    /// CHANNELMSG_INITIATE_CONTACT (guest to host).
    InitiateContact = 14,
    /// CHANNELMSG_VERSION_RESPONSE (host to guest).
    VersionResponse = 15,
    /// CHANNELMSG_UNLOAD (guest to host).
    Unload = 16,
    /// CHANNELMSG_UNLOAD_RESPONSE (host to guest).
    UnloadResponse = 17,
    /// CHANNELMSG_TL_CONNECT_REQUEST (guest to host).
    TlConnectRequest = 21,
    /// CHANNELMSG_MODIFYCHANNEL (guest to host).
    ModifyChannel = 22,
    /// CHANNELMSG_MODIFYCHANNEL_RESPONSE (host to guest).
    ModifyChannelResponse = 24,
}

impl MessageType {
    /// Every type this module parses and builds.
    pub const ALL: [MessageType; 20] = [
        MessageType::OfferChannel,
        MessageType::RescindChannelOffer,
        MessageType::RequestOffers,
        MessageType::AllOffersDelivered,
        MessageType::OpenChannel,
        MessageType::OpenChannelResult,
        MessageType::CloseChannel,
        MessageType::GpadlHeader,
        MessageType::GpadlBody,
        MessageType::GpadlCreated,
        MessageType::GpadlTeardown,
        MessageType::GpadlTorndown,
        MessageType::RelidReleased,
        MessageType::InitiateContact,
        MessageType::VersionResponse,
        MessageType::Unload,
        MessageType::UnloadResponse,
        MessageType::TlConnectRequest,
        MessageType::ModifyChannel,
        MessageType::ModifyChannelResponse,
    ];

    /// The type for a wire value; `None` for 0, 18..=20, 23 (which Linux
    /// never handles) and anything past the end of the enum.
    pub fn from_raw(raw: u32) -> Option<MessageType> {
        MessageType::ALL.iter().copied().find(|t| *t as u32 == raw)
    }

    /// Whether the host sends this type (otherwise the guest does).
    pub fn from_host(self) -> bool {
        matches!(
            self,
            MessageType::OfferChannel
                | MessageType::RescindChannelOffer
                | MessageType::AllOffersDelivered
                | MessageType::OpenChannelResult
                | MessageType::GpadlCreated
                | MessageType::GpadlTorndown
                | MessageType::VersionResponse
                | MessageType::UnloadResponse
                | MessageType::ModifyChannelResponse
        )
    }

    /// Smallest valid message of this type, header included.
    pub fn min_size(self) -> usize {
        match self {
            MessageType::OfferChannel => size_of::<OfferChannelWire>(),
            MessageType::RescindChannelOffer
            | MessageType::CloseChannel
            | MessageType::RelidReleased => size_of::<RelidWire>(),
            MessageType::RequestOffers
            | MessageType::AllOffersDelivered
            | MessageType::Unload
            | MessageType::UnloadResponse => size_of::<ChannelMessageHeader>(),
            MessageType::OpenChannel => size_of::<OpenChannelWire>(),
            MessageType::OpenChannelResult => size_of::<OpenResultWire>(),
            MessageType::GpadlHeader => size_of::<GpadlHeaderWire>() + GPA_RANGE_SIZE + 8,
            MessageType::GpadlBody => size_of::<GpadlBodyWire>() + 8,
            MessageType::GpadlCreated => size_of::<GpadlCreatedWire>(),
            MessageType::GpadlTeardown => size_of::<GpadlTeardownWire>(),
            MessageType::GpadlTorndown => size_of::<GpadlTorndownWire>(),
            MessageType::InitiateContact => size_of::<InitiateContactWire>(),
            MessageType::VersionResponse => size_of::<VersionResponseWire>(),
            MessageType::TlConnectRequest => size_of::<TlConnectRequestWire>(),
            MessageType::ModifyChannel => size_of::<ModifyChannelWire>(),
            MessageType::ModifyChannelResponse => size_of::<ModifyChannelResponseWire>(),
        }
    }
}

/// `struct vmbus_channel_message_header`.
#[repr(C, packed)]
pub struct ChannelMessageHeader {
    /// `msgtype`.
    pub msgtype: u32,
    /// `padding`.
    pub padding: u32,
}

/// `struct vmbus_channel_offer`: the device description inside an offer.
#[repr(C, packed)]
pub struct ChannelOfferWire {
    /// `if_type`: the device class GUID.
    pub if_type: [u8; 16],
    /// `if_instance`: this device's GUID.
    pub if_instance: [u8; 16],
    /// `reserved1`.
    pub reserved1: u64,
    /// `reserved2`.
    pub reserved2: u64,
    /// `chn_flags`.
    pub chn_flags: u16,
    /// `mmio_megabytes`.
    pub mmio_megabytes: u16,
    /// `u.std.user_def` (or `u.pipe`).
    pub user_def: [u8; USER_DEFINED_BYTES],
    /// `sub_channel_index`: 0 for a primary channel.
    pub sub_channel_index: u16,
    /// `reserved3`.
    pub reserved3: u16,
}

/// `struct vmbus_channel_offer_channel`.
#[repr(C, packed)]
pub struct OfferChannelWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `offer`.
    pub offer: ChannelOfferWire,
    /// `child_relid`.
    pub child_relid: u32,
    /// `monitorid`.
    pub monitorid: u8,
    /// `monitor_allocated:1` and 7 reserved bits.
    pub monitor_allocated: u8,
    /// `is_dedicated_interrupt:1` and 15 reserved bits.
    pub is_dedicated_interrupt: u16,
    /// `connection_id`: where the guest signals this channel.
    pub connection_id: u32,
}

/// `struct vmbus_channel_rescind_offer`; the same layout serves
/// `struct vmbus_channel_close_channel` and `struct vmbus_channel_relid_released`.
#[repr(C, packed)]
pub struct RelidWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `child_relid`.
    pub child_relid: u32,
}

/// `struct vmbus_channel_open_channel`.
#[repr(C, packed)]
pub struct OpenChannelWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `child_relid`.
    pub child_relid: u32,
    /// `openid`.
    pub openid: u32,
    /// `ringbuffer_gpadlhandle`.
    pub ringbuffer_gpadlhandle: u32,
    /// `target_vp`.
    pub target_vp: u32,
    /// `downstream_ringbuffer_pageoffset`.
    pub downstream_ringbuffer_pageoffset: u32,
    /// `userdata`.
    pub userdata: [u8; USER_DEFINED_BYTES],
}

/// `struct vmbus_channel_open_result`.
#[repr(C, packed)]
pub struct OpenResultWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `child_relid`.
    pub child_relid: u32,
    /// `openid`.
    pub openid: u32,
    /// `status`: 0 on success.
    pub status: u32,
}

/// `struct vmbus_channel_gpadl_header`, without its trailing ranges.
#[repr(C, packed)]
pub struct GpadlHeaderWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `child_relid`.
    pub child_relid: u32,
    /// `gpadl`.
    pub gpadl: u32,
    /// `range_buflen`: bytes of all ranges with all their PFNs.
    pub range_buflen: u16,
    /// `rangecount`.
    pub rangecount: u16,
}

/// `struct vmbus_channel_gpadl_body`, without its trailing PFNs.
#[repr(C, packed)]
pub struct GpadlBodyWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `msgnumber`.
    pub msgnumber: u32,
    /// `gpadl`.
    pub gpadl: u32,
}

/// `struct vmbus_channel_gpadl_created`.
#[repr(C, packed)]
pub struct GpadlCreatedWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `child_relid`.
    pub child_relid: u32,
    /// `gpadl`.
    pub gpadl: u32,
    /// `creation_status`: 0 on success.
    pub creation_status: u32,
}

/// `struct vmbus_channel_gpadl_teardown`.
#[repr(C, packed)]
pub struct GpadlTeardownWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `child_relid`.
    pub child_relid: u32,
    /// `gpadl`.
    pub gpadl: u32,
}

/// `struct vmbus_channel_gpadl_torndown`.
#[repr(C, packed)]
pub struct GpadlTorndownWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `gpadl`.
    pub gpadl: u32,
}

/// `struct vmbus_channel_initiate_contact`.
#[repr(C, packed)]
pub struct InitiateContactWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `vmbus_version_requested`.
    pub vmbus_version_requested: u32,
    /// `target_vcpu`: the VP the host should answer on.
    pub target_vcpu: u32,
    /// `interrupt_page` before 5.0; from 5.0 `msg_sint`, `msg_vtl` and
    /// 6 reserved bytes share these 8 bytes.
    pub interrupt_page: u64,
    /// `monitor_page1`.
    pub monitor_page1: u64,
    /// `monitor_page2`.
    pub monitor_page2: u64,
}

/// `struct vmbus_channel_version_response`.
#[repr(C, packed)]
pub struct VersionResponseWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `version_supported`: 1 if the host accepted the version.
    pub version_supported: u8,
    /// `connection_state`.
    pub connection_state: u8,
    /// `padding`.
    pub padding: u16,
    /// `msg_conn_id`: from 5.0, the connection id for later messages.
    pub msg_conn_id: u32,
}

/// `struct vmbus_channel_tl_connect_request`.
#[repr(C, packed)]
pub struct TlConnectRequestWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `guest_endpoint_id`.
    pub guest_endpoint_id: [u8; 16],
    /// `host_service_id`.
    pub host_service_id: [u8; 16],
}

/// `struct vmbus_channel_modifychannel`.
#[repr(C, packed)]
pub struct ModifyChannelWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `child_relid`.
    pub child_relid: u32,
    /// `target_vp`.
    pub target_vp: u32,
}

/// `struct vmbus_channel_modifychannel_response`.
#[repr(C, packed)]
pub struct ModifyChannelResponseWire {
    /// `header`.
    pub header: ChannelMessageHeader,
    /// `child_relid`.
    pub child_relid: u32,
    /// `status`: 0 on success.
    pub status: u32,
}

// ---------------------------------------------------------------------------
// Parsed messages.

/// Why bytes are not a valid channel message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the header or than its type requires.
    TooShort {
        /// The raw message type (0 if the header itself is cut short).
        msgtype: u32,
        /// The length received.
        len: usize,
    },
    /// Longer than a SynIC payload can be.
    TooLong {
        /// The length received.
        len: usize,
    },
    /// A message type this guest does not know.
    UnknownType(u32),
    /// A field holds a value the protocol does not allow.
    BadField {
        /// The message type.
        msgtype: MessageType,
        /// The C name of the field.
        field: &'static str,
    },
}

/// An offer of a channel (CHANNELMSG_OFFERCHANNEL), validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Device class.
    pub if_type: Guid,
    /// Device instance.
    pub if_instance: Guid,
    /// `chn_flags`.
    pub chn_flags: u16,
    /// MMIO space the device wants, in MiB.
    pub mmio_megabytes: u16,
    /// Driver-defined offer data.
    pub user_def: [u8; USER_DEFINED_BYTES],
    /// 0 for a primary channel, else the sub-channel's index.
    pub sub_channel_index: u16,
    /// Relid, in `1..MAX_CHANNEL_RELIDS`.
    pub child_relid: u32,
    /// The monitor id if the host allocated one (at most [`MAX_MONITOR_ID`]).
    pub monitor_id: Option<u8>,
    /// Whether signalling must not set the channel's bit in the event page.
    pub dedicated_interrupt: bool,
    /// Connection id for signalling this channel (24 bits).
    pub connection_id: u32,
}

/// A request to open a channel (CHANNELMSG_OPENCHANNEL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenChannel {
    /// The channel.
    pub child_relid: u32,
    /// Echoed in the result; Linux uses the relid.
    pub openid: u32,
    /// GPADL holding both rings.
    pub ring_gpadl: u32,
    /// VP to interrupt for host-to-guest signals.
    pub target_vp: u32,
    /// Page offset of the host-to-guest ring within the GPADL.
    pub downstream_page_offset: u32,
    /// Driver-defined data for the host endpoint.
    pub user_data: [u8; USER_DEFINED_BYTES],
}

/// A proposal of a protocol version (CHANNELMSG_INITIATE_CONTACT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitiateContact {
    /// Raw version proposed.
    pub version: u32,
    /// VP the host answers on.
    pub target_vcpu: u32,
    /// Before 5.0 the interrupt page GPA; from 5.0 `msg_sint` in byte 0 and
    /// `msg_vtl` in byte 1 (see [`InitiateContact::sint_vtl`]).
    pub interrupt_page: u64,
    /// First monitor page GPA.
    pub monitor_page1: u64,
    /// Second monitor page GPA.
    pub monitor_page2: u64,
}

impl InitiateContact {
    /// Packs the 5.0+ `msg_sint`/`msg_vtl` pair into the shared field.
    pub const fn sint_vtl(sint: u8, vtl: u8) -> u64 {
        (sint as u64) | ((vtl as u64) << 8)
    }
}

/// The host's answer to a version proposal (CHANNELMSG_VERSION_RESPONSE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionResponse {
    /// Whether the proposed version was accepted.
    pub supported: bool,
    /// `connection_state`, informational.
    pub connection_state: u8,
    /// From 5.0, the connection id for all later guest messages.
    pub msg_conn_id: u32,
}

/// Up to [`GPADL_BODY_MAX_PFNS`] page frame numbers from one GPADL message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pfns {
    buf: [u64; GPADL_BODY_MAX_PFNS],
    len: u8,
}

impl Pfns {
    /// Copies `pfns`; `None` if there are more than fit in a message.
    pub fn new(pfns: &[u64]) -> Option<Pfns> {
        if pfns.len() > GPADL_BODY_MAX_PFNS {
            return None;
        }
        let mut buf = [0u64; GPADL_BODY_MAX_PFNS];
        copy(&mut buf, pfns);
        Some(Pfns {
            buf,
            len: u8::try_from(pfns.len()).ok()?,
        })
    }

    /// The PFNs.
    pub fn as_slice(&self) -> &[u64] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// The first message of a GPADL (CHANNELMSG_GPADL_HEADER), one range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpadlHeader {
    /// The channel.
    pub child_relid: u32,
    /// The guest-chosen handle.
    pub gpadl: u32,
    /// Total PFNs of the range, including those in body messages.
    pub total_pfns: u16,
    /// Bytes of the buffer.
    pub byte_count: u32,
    /// Offset of the buffer in its first page.
    pub byte_offset: u32,
    /// PFNs carried in this message.
    pub pfns: Pfns,
}

/// A continuation of a GPADL's PFN list (CHANNELMSG_GPADL_BODY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpadlBody {
    /// `msgnumber` (Linux sends 0).
    pub msgnumber: u32,
    /// The handle from the header.
    pub gpadl: u32,
    /// PFNs carried in this message.
    pub pfns: Pfns,
}

/// A channel message, parsed and validated, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// CHANNELMSG_OFFERCHANNEL.
    Offer(Offer),
    /// CHANNELMSG_RESCIND_CHANNELOFFER.
    Rescind {
        /// The channel withdrawn.
        child_relid: u32,
    },
    /// CHANNELMSG_REQUESTOFFERS.
    RequestOffers,
    /// CHANNELMSG_ALLOFFERS_DELIVERED.
    AllOffersDelivered,
    /// CHANNELMSG_OPENCHANNEL.
    OpenChannel(OpenChannel),
    /// CHANNELMSG_OPENCHANNEL_RESULT.
    OpenResult {
        /// The channel.
        child_relid: u32,
        /// The open request's id.
        openid: u32,
        /// 0 on success.
        status: u32,
    },
    /// CHANNELMSG_CLOSECHANNEL.
    CloseChannel {
        /// The channel.
        child_relid: u32,
    },
    /// CHANNELMSG_GPADL_HEADER.
    GpadlHeader(GpadlHeader),
    /// CHANNELMSG_GPADL_BODY.
    GpadlBody(GpadlBody),
    /// CHANNELMSG_GPADL_CREATED.
    GpadlCreated {
        /// The channel.
        child_relid: u32,
        /// The handle.
        gpadl: u32,
        /// 0 on success.
        status: u32,
    },
    /// CHANNELMSG_GPADL_TEARDOWN.
    GpadlTeardown {
        /// The channel.
        child_relid: u32,
        /// The handle.
        gpadl: u32,
    },
    /// CHANNELMSG_GPADL_TORNDOWN.
    GpadlTorndown {
        /// The handle.
        gpadl: u32,
    },
    /// CHANNELMSG_RELID_RELEASED.
    RelidReleased {
        /// The channel.
        child_relid: u32,
    },
    /// CHANNELMSG_INITIATE_CONTACT.
    InitiateContact(InitiateContact),
    /// CHANNELMSG_VERSION_RESPONSE.
    VersionResponse(VersionResponse),
    /// CHANNELMSG_UNLOAD.
    Unload,
    /// CHANNELMSG_UNLOAD_RESPONSE.
    UnloadResponse,
    /// CHANNELMSG_TL_CONNECT_REQUEST.
    TlConnectRequest {
        /// The guest's endpoint.
        guest_endpoint_id: Guid,
        /// The host service connected to.
        host_service_id: Guid,
    },
    /// CHANNELMSG_MODIFYCHANNEL.
    ModifyChannel {
        /// The channel.
        child_relid: u32,
        /// The new target VP.
        target_vp: u32,
    },
    /// CHANNELMSG_MODIFYCHANNEL_RESPONSE.
    ModifyChannelResponse {
        /// The channel.
        child_relid: u32,
        /// 0 on success.
        status: u32,
    },
}

/// Copies the common prefix of `src` into `dst`. Unlike `copy_from_slice`
/// it has no length-mismatch panic path, which objtool on 6.12 does not know
/// to be `noreturn` and warns about.
fn copy<T: Copy>(dst: &mut [T], src: &[T]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?)?
        .try_into()
        .ok()
        .map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at.checked_add(8)?)?
        .try_into()
        .ok()
        .map(u64::from_le_bytes)
}

fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn read_pfns(b: &[u8], at: usize, count: usize) -> Option<Pfns> {
    if count > GPADL_BODY_MAX_PFNS {
        return None;
    }
    let mut buf = [0u64; GPADL_BODY_MAX_PFNS];
    for (i, slot) in buf.iter_mut().take(count).enumerate() {
        *slot = u64_at(b, at.checked_add(i.checked_mul(8)?)?)?;
    }
    Some(Pfns {
        buf,
        len: u8::try_from(count).ok()?,
    })
}

/// A valid relid: 0 is never used and C caps them at [`MAX_CHANNEL_RELIDS`].
pub fn relid_valid(relid: u32) -> bool {
    relid != 0 && relid < MAX_CHANNEL_RELIDS
}

impl Message {
    /// Parses a channel message: `bytes` is the SynIC payload, already
    /// copied out of shared memory. Trailing bytes past the type's size are
    /// allowed (as in C) except for the GPADL messages, whose length gives
    /// their PFN count.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let len = bytes.len();
        if len > MAX_MESSAGE_SIZE {
            return Err(ParseError::TooLong { len });
        }
        let raw = u32_at(bytes, offset_of!(ChannelMessageHeader, msgtype))
            .filter(|_| len >= size_of::<ChannelMessageHeader>())
            .ok_or(ParseError::TooShort { msgtype: 0, len })?;
        let ty = MessageType::from_raw(raw).ok_or(ParseError::UnknownType(raw))?;
        if len < ty.min_size() {
            return Err(ParseError::TooShort { msgtype: raw, len });
        }
        let bad = |field| ParseError::BadField { msgtype: ty, field };
        // Every read below is inside min_size, so `None` cannot happen; it
        // still maps to an error rather than a panic.
        let short = ParseError::TooShort { msgtype: raw, len };
        let b = bytes;
        let msg = match ty {
            MessageType::OfferChannel => {
                let o = offset_of!(OfferChannelWire, offer);
                let child_relid =
                    u32_at(b, offset_of!(OfferChannelWire, child_relid)).ok_or(short)?;
                if !relid_valid(child_relid) {
                    return Err(bad("child_relid"));
                }
                let monitorid = *b
                    .get(offset_of!(OfferChannelWire, monitorid))
                    .ok_or(short)?;
                let allocated = *b
                    .get(offset_of!(OfferChannelWire, monitor_allocated))
                    .ok_or(short)?;
                let monitor_id = if allocated & 1 != 0 {
                    if monitorid > MAX_MONITOR_ID {
                        return Err(bad("monitorid"));
                    }
                    Some(monitorid)
                } else {
                    None
                };
                let dedicated =
                    u16_at(b, offset_of!(OfferChannelWire, is_dedicated_interrupt)).ok_or(short)?;
                let connection_id =
                    u32_at(b, offset_of!(OfferChannelWire, connection_id)).ok_or(short)?;
                if connection_id & !super::version::CONNECTION_ID_MASK != 0 {
                    return Err(bad("connection_id"));
                }
                Message::Offer(Offer {
                    if_type: Guid::from_bytes(
                        bytes_at(b, o + offset_of!(ChannelOfferWire, if_type)).ok_or(short)?,
                    ),
                    if_instance: Guid::from_bytes(
                        bytes_at(b, o + offset_of!(ChannelOfferWire, if_instance)).ok_or(short)?,
                    ),
                    chn_flags: u16_at(b, o + offset_of!(ChannelOfferWire, chn_flags))
                        .ok_or(short)?,
                    mmio_megabytes: u16_at(b, o + offset_of!(ChannelOfferWire, mmio_megabytes))
                        .ok_or(short)?,
                    user_def: bytes_at(b, o + offset_of!(ChannelOfferWire, user_def))
                        .ok_or(short)?,
                    sub_channel_index: u16_at(
                        b,
                        o + offset_of!(ChannelOfferWire, sub_channel_index),
                    )
                    .ok_or(short)?,
                    child_relid,
                    monitor_id,
                    dedicated_interrupt: dedicated & 1 != 0,
                    connection_id,
                })
            }
            MessageType::RescindChannelOffer
            | MessageType::CloseChannel
            | MessageType::RelidReleased => {
                let child_relid = u32_at(b, offset_of!(RelidWire, child_relid)).ok_or(short)?;
                if !relid_valid(child_relid) {
                    return Err(bad("child_relid"));
                }
                match ty {
                    MessageType::RescindChannelOffer => Message::Rescind { child_relid },
                    MessageType::CloseChannel => Message::CloseChannel { child_relid },
                    _ => Message::RelidReleased { child_relid },
                }
            }
            MessageType::RequestOffers => Message::RequestOffers,
            MessageType::AllOffersDelivered => Message::AllOffersDelivered,
            MessageType::Unload => Message::Unload,
            MessageType::UnloadResponse => Message::UnloadResponse,
            MessageType::OpenChannel => {
                let child_relid =
                    u32_at(b, offset_of!(OpenChannelWire, child_relid)).ok_or(short)?;
                if !relid_valid(child_relid) {
                    return Err(bad("child_relid"));
                }
                Message::OpenChannel(OpenChannel {
                    child_relid,
                    openid: u32_at(b, offset_of!(OpenChannelWire, openid)).ok_or(short)?,
                    ring_gpadl: u32_at(b, offset_of!(OpenChannelWire, ringbuffer_gpadlhandle))
                        .ok_or(short)?,
                    target_vp: u32_at(b, offset_of!(OpenChannelWire, target_vp)).ok_or(short)?,
                    downstream_page_offset: u32_at(
                        b,
                        offset_of!(OpenChannelWire, downstream_ringbuffer_pageoffset),
                    )
                    .ok_or(short)?,
                    user_data: bytes_at(b, offset_of!(OpenChannelWire, userdata)).ok_or(short)?,
                })
            }
            MessageType::OpenChannelResult => {
                let child_relid =
                    u32_at(b, offset_of!(OpenResultWire, child_relid)).ok_or(short)?;
                if !relid_valid(child_relid) {
                    return Err(bad("child_relid"));
                }
                Message::OpenResult {
                    child_relid,
                    openid: u32_at(b, offset_of!(OpenResultWire, openid)).ok_or(short)?,
                    status: u32_at(b, offset_of!(OpenResultWire, status)).ok_or(short)?,
                }
            }
            MessageType::GpadlHeader => Message::GpadlHeader(parse_gpadl_header(b, ty)?),
            MessageType::GpadlBody => {
                let head = size_of::<GpadlBodyWire>();
                let tail = len.checked_sub(head).ok_or(short)?;
                if tail % 8 != 0 {
                    return Err(bad("pfn"));
                }
                Message::GpadlBody(GpadlBody {
                    msgnumber: u32_at(b, offset_of!(GpadlBodyWire, msgnumber)).ok_or(short)?,
                    gpadl: u32_at(b, offset_of!(GpadlBodyWire, gpadl)).ok_or(short)?,
                    pfns: read_pfns(b, head, tail / 8).ok_or(short)?,
                })
            }
            MessageType::GpadlCreated => {
                let child_relid =
                    u32_at(b, offset_of!(GpadlCreatedWire, child_relid)).ok_or(short)?;
                if !relid_valid(child_relid) {
                    return Err(bad("child_relid"));
                }
                Message::GpadlCreated {
                    child_relid,
                    gpadl: u32_at(b, offset_of!(GpadlCreatedWire, gpadl)).ok_or(short)?,
                    status: u32_at(b, offset_of!(GpadlCreatedWire, creation_status))
                        .ok_or(short)?,
                }
            }
            MessageType::GpadlTeardown => {
                let child_relid =
                    u32_at(b, offset_of!(GpadlTeardownWire, child_relid)).ok_or(short)?;
                if !relid_valid(child_relid) {
                    return Err(bad("child_relid"));
                }
                Message::GpadlTeardown {
                    child_relid,
                    gpadl: u32_at(b, offset_of!(GpadlTeardownWire, gpadl)).ok_or(short)?,
                }
            }
            MessageType::GpadlTorndown => Message::GpadlTorndown {
                gpadl: u32_at(b, offset_of!(GpadlTorndownWire, gpadl)).ok_or(short)?,
            },
            MessageType::InitiateContact => Message::InitiateContact(InitiateContact {
                version: u32_at(b, offset_of!(InitiateContactWire, vmbus_version_requested))
                    .ok_or(short)?,
                target_vcpu: u32_at(b, offset_of!(InitiateContactWire, target_vcpu))
                    .ok_or(short)?,
                interrupt_page: u64_at(b, offset_of!(InitiateContactWire, interrupt_page))
                    .ok_or(short)?,
                monitor_page1: u64_at(b, offset_of!(InitiateContactWire, monitor_page1))
                    .ok_or(short)?,
                monitor_page2: u64_at(b, offset_of!(InitiateContactWire, monitor_page2))
                    .ok_or(short)?,
            }),
            MessageType::VersionResponse => {
                let supported = *b
                    .get(offset_of!(VersionResponseWire, version_supported))
                    .ok_or(short)?;
                if supported > 1 {
                    return Err(bad("version_supported"));
                }
                Message::VersionResponse(VersionResponse {
                    supported: supported == 1,
                    connection_state: *b
                        .get(offset_of!(VersionResponseWire, connection_state))
                        .ok_or(short)?,
                    msg_conn_id: u32_at(b, offset_of!(VersionResponseWire, msg_conn_id))
                        .ok_or(short)?,
                })
            }
            MessageType::TlConnectRequest => Message::TlConnectRequest {
                guest_endpoint_id: Guid::from_bytes(
                    bytes_at(b, offset_of!(TlConnectRequestWire, guest_endpoint_id))
                        .ok_or(short)?,
                ),
                host_service_id: Guid::from_bytes(
                    bytes_at(b, offset_of!(TlConnectRequestWire, host_service_id)).ok_or(short)?,
                ),
            },
            MessageType::ModifyChannel => {
                let child_relid =
                    u32_at(b, offset_of!(ModifyChannelWire, child_relid)).ok_or(short)?;
                if !relid_valid(child_relid) {
                    return Err(bad("child_relid"));
                }
                Message::ModifyChannel {
                    child_relid,
                    target_vp: u32_at(b, offset_of!(ModifyChannelWire, target_vp)).ok_or(short)?,
                }
            }
            MessageType::ModifyChannelResponse => {
                let child_relid =
                    u32_at(b, offset_of!(ModifyChannelResponseWire, child_relid)).ok_or(short)?;
                if !relid_valid(child_relid) {
                    return Err(bad("child_relid"));
                }
                Message::ModifyChannelResponse {
                    child_relid,
                    status: u32_at(b, offset_of!(ModifyChannelResponseWire, status))
                        .ok_or(short)?,
                }
            }
        };
        Ok(msg)
    }

    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Offer(_) => MessageType::OfferChannel,
            Message::Rescind { .. } => MessageType::RescindChannelOffer,
            Message::RequestOffers => MessageType::RequestOffers,
            Message::AllOffersDelivered => MessageType::AllOffersDelivered,
            Message::OpenChannel(_) => MessageType::OpenChannel,
            Message::OpenResult { .. } => MessageType::OpenChannelResult,
            Message::CloseChannel { .. } => MessageType::CloseChannel,
            Message::GpadlHeader(_) => MessageType::GpadlHeader,
            Message::GpadlBody(_) => MessageType::GpadlBody,
            Message::GpadlCreated { .. } => MessageType::GpadlCreated,
            Message::GpadlTeardown { .. } => MessageType::GpadlTeardown,
            Message::GpadlTorndown { .. } => MessageType::GpadlTorndown,
            Message::RelidReleased { .. } => MessageType::RelidReleased,
            Message::InitiateContact(_) => MessageType::InitiateContact,
            Message::VersionResponse(_) => MessageType::VersionResponse,
            Message::Unload => MessageType::Unload,
            Message::UnloadResponse => MessageType::UnloadResponse,
            Message::TlConnectRequest { .. } => MessageType::TlConnectRequest,
            Message::ModifyChannel { .. } => MessageType::ModifyChannel,
            Message::ModifyChannelResponse { .. } => MessageType::ModifyChannelResponse,
        }
    }

    /// Writes the message into `buf` and returns its length. The bytes past
    /// the length are zeroed, as are padding and reserved fields.
    pub fn write(&self, buf: &mut [u8; MAX_MESSAGE_SIZE]) -> usize {
        buf.fill(0);
        let mut w = Writer {
            buf,
            len: size_of::<ChannelMessageHeader>(),
        };
        w.u32(
            offset_of!(ChannelMessageHeader, msgtype),
            self.message_type() as u32,
        );
        match *self {
            Message::Offer(ref o) => {
                let base = offset_of!(OfferChannelWire, offer);
                w.bytes(
                    base + offset_of!(ChannelOfferWire, if_type),
                    &o.if_type.bytes,
                );
                w.bytes(
                    base + offset_of!(ChannelOfferWire, if_instance),
                    &o.if_instance.bytes,
                );
                w.u16(base + offset_of!(ChannelOfferWire, chn_flags), o.chn_flags);
                w.u16(
                    base + offset_of!(ChannelOfferWire, mmio_megabytes),
                    o.mmio_megabytes,
                );
                w.bytes(base + offset_of!(ChannelOfferWire, user_def), &o.user_def);
                w.u16(
                    base + offset_of!(ChannelOfferWire, sub_channel_index),
                    o.sub_channel_index,
                );
                w.u32(offset_of!(OfferChannelWire, child_relid), o.child_relid);
                w.u8(
                    offset_of!(OfferChannelWire, monitorid),
                    o.monitor_id.unwrap_or(0),
                );
                w.u8(
                    offset_of!(OfferChannelWire, monitor_allocated),
                    u8::from(o.monitor_id.is_some()),
                );
                w.u16(
                    offset_of!(OfferChannelWire, is_dedicated_interrupt),
                    u16::from(o.dedicated_interrupt),
                );
                w.u32(offset_of!(OfferChannelWire, connection_id), o.connection_id);
                w.len = size_of::<OfferChannelWire>();
            }
            Message::Rescind { child_relid }
            | Message::CloseChannel { child_relid }
            | Message::RelidReleased { child_relid } => {
                w.u32(offset_of!(RelidWire, child_relid), child_relid);
                w.len = size_of::<RelidWire>();
            }
            Message::RequestOffers
            | Message::AllOffersDelivered
            | Message::Unload
            | Message::UnloadResponse => {}
            Message::OpenChannel(ref o) => {
                w.u32(offset_of!(OpenChannelWire, child_relid), o.child_relid);
                w.u32(offset_of!(OpenChannelWire, openid), o.openid);
                w.u32(
                    offset_of!(OpenChannelWire, ringbuffer_gpadlhandle),
                    o.ring_gpadl,
                );
                w.u32(offset_of!(OpenChannelWire, target_vp), o.target_vp);
                w.u32(
                    offset_of!(OpenChannelWire, downstream_ringbuffer_pageoffset),
                    o.downstream_page_offset,
                );
                w.bytes(offset_of!(OpenChannelWire, userdata), &o.user_data);
                w.len = size_of::<OpenChannelWire>();
            }
            Message::OpenResult {
                child_relid,
                openid,
                status,
            } => {
                w.u32(offset_of!(OpenResultWire, child_relid), child_relid);
                w.u32(offset_of!(OpenResultWire, openid), openid);
                w.u32(offset_of!(OpenResultWire, status), status);
                w.len = size_of::<OpenResultWire>();
            }
            Message::GpadlHeader(ref h) => {
                w.u32(offset_of!(GpadlHeaderWire, child_relid), h.child_relid);
                w.u32(offset_of!(GpadlHeaderWire, gpadl), h.gpadl);
                let buflen = usize::from(h.total_pfns) * 8 + GPA_RANGE_SIZE;
                w.u16(offset_of!(GpadlHeaderWire, range_buflen), buflen as u16);
                w.u16(offset_of!(GpadlHeaderWire, rangecount), 1);
                let range = size_of::<GpadlHeaderWire>();
                w.u32(range, h.byte_count);
                w.u32(range + 4, h.byte_offset);
                w.len = range + GPA_RANGE_SIZE;
                w.pfns(h.pfns.as_slice());
            }
            Message::GpadlBody(ref body) => {
                w.u32(offset_of!(GpadlBodyWire, msgnumber), body.msgnumber);
                w.u32(offset_of!(GpadlBodyWire, gpadl), body.gpadl);
                w.len = size_of::<GpadlBodyWire>();
                w.pfns(body.pfns.as_slice());
            }
            Message::GpadlCreated {
                child_relid,
                gpadl,
                status,
            } => {
                w.u32(offset_of!(GpadlCreatedWire, child_relid), child_relid);
                w.u32(offset_of!(GpadlCreatedWire, gpadl), gpadl);
                w.u32(offset_of!(GpadlCreatedWire, creation_status), status);
                w.len = size_of::<GpadlCreatedWire>();
            }
            Message::GpadlTeardown { child_relid, gpadl } => {
                w.u32(offset_of!(GpadlTeardownWire, child_relid), child_relid);
                w.u32(offset_of!(GpadlTeardownWire, gpadl), gpadl);
                w.len = size_of::<GpadlTeardownWire>();
            }
            Message::GpadlTorndown { gpadl } => {
                w.u32(offset_of!(GpadlTorndownWire, gpadl), gpadl);
                w.len = size_of::<GpadlTorndownWire>();
            }
            Message::InitiateContact(ref c) => {
                w.u32(
                    offset_of!(InitiateContactWire, vmbus_version_requested),
                    c.version,
                );
                w.u32(offset_of!(InitiateContactWire, target_vcpu), c.target_vcpu);
                w.u64(
                    offset_of!(InitiateContactWire, interrupt_page),
                    c.interrupt_page,
                );
                w.u64(
                    offset_of!(InitiateContactWire, monitor_page1),
                    c.monitor_page1,
                );
                w.u64(
                    offset_of!(InitiateContactWire, monitor_page2),
                    c.monitor_page2,
                );
                w.len = size_of::<InitiateContactWire>();
            }
            Message::VersionResponse(ref r) => {
                w.u8(
                    offset_of!(VersionResponseWire, version_supported),
                    u8::from(r.supported),
                );
                w.u8(
                    offset_of!(VersionResponseWire, connection_state),
                    r.connection_state,
                );
                w.u32(offset_of!(VersionResponseWire, msg_conn_id), r.msg_conn_id);
                w.len = size_of::<VersionResponseWire>();
            }
            Message::TlConnectRequest {
                guest_endpoint_id,
                host_service_id,
            } => {
                w.bytes(
                    offset_of!(TlConnectRequestWire, guest_endpoint_id),
                    &guest_endpoint_id.bytes,
                );
                w.bytes(
                    offset_of!(TlConnectRequestWire, host_service_id),
                    &host_service_id.bytes,
                );
                w.len = size_of::<TlConnectRequestWire>();
            }
            Message::ModifyChannel {
                child_relid,
                target_vp,
            } => {
                w.u32(offset_of!(ModifyChannelWire, child_relid), child_relid);
                w.u32(offset_of!(ModifyChannelWire, target_vp), target_vp);
                w.len = size_of::<ModifyChannelWire>();
            }
            Message::ModifyChannelResponse {
                child_relid,
                status,
            } => {
                w.u32(
                    offset_of!(ModifyChannelResponseWire, child_relid),
                    child_relid,
                );
                w.u32(offset_of!(ModifyChannelResponseWire, status), status);
                w.len = size_of::<ModifyChannelResponseWire>();
            }
        }
        w.len
    }
}

fn parse_gpadl_header(b: &[u8], ty: MessageType) -> Result<GpadlHeader, ParseError> {
    let len = b.len();
    let short = ParseError::TooShort {
        msgtype: ty as u32,
        len,
    };
    let bad = |field| ParseError::BadField { msgtype: ty, field };
    let child_relid = u32_at(b, offset_of!(GpadlHeaderWire, child_relid)).ok_or(short)?;
    if !relid_valid(child_relid) {
        return Err(bad("child_relid"));
    }
    // Linux describes every GPADL as one range; so does this guest.
    if u16_at(b, offset_of!(GpadlHeaderWire, rangecount)).ok_or(short)? != 1 {
        return Err(bad("rangecount"));
    }
    let buflen = usize::from(u16_at(b, offset_of!(GpadlHeaderWire, range_buflen)).ok_or(short)?);
    let total = buflen
        .checked_sub(GPA_RANGE_SIZE)
        .ok_or(bad("range_buflen"))?;
    if total % 8 != 0 || total == 0 {
        return Err(bad("range_buflen"));
    }
    let total_pfns = total / 8;
    let range = size_of::<GpadlHeaderWire>();
    let first = range + GPA_RANGE_SIZE;
    let tail = len.checked_sub(first).ok_or(short)?;
    // This message carries as many PFNs as fit, never more than the range has.
    if tail % 8 != 0 || tail / 8 != total_pfns.min(GPADL_HEADER_MAX_PFNS) {
        return Err(bad("pfn_array"));
    }
    let byte_count = u32_at(b, range).ok_or(short)?;
    let byte_offset = u32_at(b, range + 4).ok_or(short)?;
    if !range_spans(byte_offset, byte_count, total_pfns) {
        return Err(bad("byte_count"));
    }
    Ok(GpadlHeader {
        child_relid,
        gpadl: u32_at(b, offset_of!(GpadlHeaderWire, gpadl)).ok_or(short)?,
        total_pfns: u16::try_from(total_pfns).map_err(|_| bad("range_buflen"))?,
        byte_count,
        byte_offset,
        pfns: read_pfns(b, first, tail / 8).ok_or(short)?,
    })
}

/// Whether a range of `byte_count` bytes at `byte_offset` into its first
/// page covers exactly `pages` pages.
fn range_spans(byte_offset: u32, byte_count: u32, pages: usize) -> bool {
    if byte_offset >= GPADL_PAGE_SIZE || byte_count == 0 {
        return false;
    }
    let end = u64::from(byte_offset) + u64::from(byte_count);
    let needed = end.div_ceil(u64::from(GPADL_PAGE_SIZE));
    u64::try_from(pages) == Ok(needed)
}

struct Writer<'a> {
    buf: &'a mut [u8; MAX_MESSAGE_SIZE],
    len: usize,
}

impl Writer<'_> {
    // Offsets are compile-time layout offsets below MAX_MESSAGE_SIZE; a
    // write that would not fit is dropped rather than panicking.
    fn bytes(&mut self, at: usize, v: &[u8]) {
        if let Some(dst) = at
            .checked_add(v.len())
            .and_then(|end| self.buf.get_mut(at..end))
        {
            copy(dst, v);
        }
    }
    fn u8(&mut self, at: usize, v: u8) {
        self.bytes(at, &[v]);
    }
    fn u16(&mut self, at: usize, v: u16) {
        self.bytes(at, &v.to_le_bytes());
    }
    fn u32(&mut self, at: usize, v: u32) {
        self.bytes(at, &v.to_le_bytes());
    }
    fn u64(&mut self, at: usize, v: u64) {
        self.bytes(at, &v.to_le_bytes());
    }
    fn pfns(&mut self, pfns: &[u64]) {
        for &pfn in pfns {
            if self.len.saturating_add(8) > MAX_MESSAGE_SIZE {
                return;
            }
            self.u64(self.len, pfn);
            self.len += 8;
        }
    }
}

// ---------------------------------------------------------------------------
// GPADL split.

/// Why a page list cannot be described as a GPADL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpadlError {
    /// No pages, or more than one range can describe.
    PageCount,
    /// `byte_offset`/`byte_count` do not cover exactly the pages given.
    Range,
}

/// Number of messages (one header, then bodies) a GPADL of `pfns` pages needs.
pub const fn gpadl_message_count(pfns: usize) -> usize {
    if pfns <= GPADL_HEADER_MAX_PFNS {
        1
    } else {
        1 + (pfns - GPADL_HEADER_MAX_PFNS).div_ceil(GPADL_BODY_MAX_PFNS)
    }
}

/// Splits one buffer's page list into CHANNELMSG_GPADL_HEADER followed by
/// as many CHANNELMSG_GPADL_BODY messages as needed, each within the
/// 240-byte payload limit. Writes one message per call; no allocation.
#[derive(Clone, Debug)]
pub struct GpadlSplit<'a> {
    child_relid: u32,
    gpadl: u32,
    byte_offset: u32,
    byte_count: u32,
    pfns: &'a [u64],
    sent: usize,
    header_sent: bool,
}

impl<'a> GpadlSplit<'a> {
    /// Prepares the messages for GPADL `gpadl` on channel `child_relid`
    /// describing `byte_count` bytes starting `byte_offset` into `pfns[0]`.
    pub fn new(
        child_relid: u32,
        gpadl: u32,
        byte_offset: u32,
        byte_count: u32,
        pfns: &'a [u64],
    ) -> Result<GpadlSplit<'a>, GpadlError> {
        if pfns.is_empty() || pfns.len() > GPADL_MAX_PFNS {
            return Err(GpadlError::PageCount);
        }
        if !range_spans(byte_offset, byte_count, pfns.len()) {
            return Err(GpadlError::Range);
        }
        Ok(GpadlSplit {
            child_relid,
            gpadl,
            byte_offset,
            byte_count,
            pfns,
            sent: 0,
            header_sent: false,
        })
    }

    /// Total messages this GPADL takes.
    pub fn message_count(&self) -> usize {
        gpadl_message_count(self.pfns.len())
    }

    /// The next message, or `None` when all were written.
    pub fn next_message(&mut self) -> Option<Message> {
        let rest = self.pfns.get(self.sent..)?;
        if self.header_sent && rest.is_empty() {
            return None;
        }
        let limit = if self.header_sent {
            GPADL_BODY_MAX_PFNS
        } else {
            GPADL_HEADER_MAX_PFNS
        };
        let chunk = rest.get(..rest.len().min(limit))?;
        let pfns = Pfns::new(chunk)?;
        self.sent = self.sent.checked_add(chunk.len())?;
        if !self.header_sent {
            self.header_sent = true;
            Some(Message::GpadlHeader(GpadlHeader {
                child_relid: self.child_relid,
                gpadl: self.gpadl,
                // new() bounded the count by GPADL_MAX_PFNS.
                total_pfns: u16::try_from(self.pfns.len()).ok()?,
                byte_count: self.byte_count,
                byte_offset: self.byte_offset,
                pfns,
            }))
        } else {
            // Linux leaves msgnumber zero; hosts do not check it.
            Some(Message::GpadlBody(GpadlBody {
                msgnumber: 0,
                gpadl: self.gpadl,
                pfns,
            }))
        }
    }

    /// Writes the next message into `buf` and returns its length, or `None`
    /// when all were written.
    pub fn write_next(&mut self, buf: &mut [u8; MAX_MESSAGE_SIZE]) -> Option<usize> {
        self.next_message().map(|m| m.write(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_c_structs() {
        assert_eq!(size_of::<HvMessage>(), SYNIC_MESSAGE_SIZE);
        assert_eq!(size_of::<HvMonitorPage>(), 4096);
        assert_eq!(size_of::<OfferChannelWire>(), 196);
        assert_eq!(size_of::<OpenChannelWire>(), 148);
        assert_eq!(size_of::<InitiateContactWire>(), 40);
        assert_eq!(GPADL_HEADER_MAX_PFNS, 26);
        assert_eq!(GPADL_BODY_MAX_PFNS, 28);
    }

    #[test]
    fn all_types_round_trip_through_from_raw() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_raw(t as u32), Some(t));
        }
        for raw in [0, 18, 19, 20, 23, 25, u32::MAX] {
            assert_eq!(MessageType::from_raw(raw), None);
        }
    }
}
