//! Prints the size and member offsets of every shared structure as RustIC
//! defines it, in the same "struct member value" form that layout.c yields
//! from the kernel headers; run.sh compares the two. Each line names the C
//! struct and member; the Rust item it is checked against follows it.
//!
//! Built by run.sh with plain rustc, including vmbus-core's lib.rs as a
//! module the way the kernel module does (`--cfg rustic_embedded`), so no
//! Cargo build is needed.

#[path = "../../vmbus/core/src/lib.rs"]
#[allow(dead_code, unused_imports, unreachable_pub)]
mod vmbus_core;

use core::mem::{offset_of, size_of};
use vmbus_core::msg::*;
use vmbus_core::ring::*;
use vmbus_core::version::{self, Version};

macro_rules! size {
    ($c:literal, $value:expr) => {
        println!("{} size {}", $c, $value)
    };
}
macro_rules! off {
    ($c:literal, $member:literal, $value:expr) => {
        println!("{} {} {}", $c, $member, $value)
    };
}

fn main() {
    // Ring buffer (ring.rs). RingHeader stops where `buffer[]` begins.
    size!("hv_ring_buffer", size_of::<RingHeader>());
    off!(
        "hv_ring_buffer",
        "write_index",
        offset_of!(RingHeader, write_index)
    );
    off!(
        "hv_ring_buffer",
        "read_index",
        offset_of!(RingHeader, read_index)
    );
    off!(
        "hv_ring_buffer",
        "interrupt_mask",
        offset_of!(RingHeader, interrupt_mask)
    );
    off!(
        "hv_ring_buffer",
        "pending_send_sz",
        offset_of!(RingHeader, pending_send_sz)
    );
    off!(
        "hv_ring_buffer",
        "reserved1",
        offset_of!(RingHeader, reserved1)
    );
    off!(
        "hv_ring_buffer",
        "feature_bits",
        offset_of!(RingHeader, feature_bits)
    );
    off!(
        "hv_ring_buffer",
        "reserved2",
        offset_of!(RingHeader, reserved2)
    );
    off!("hv_ring_buffer", "buffer", size_of::<RingHeader>());

    size!("vmpacket_descriptor", size_of::<PacketDescriptor>());
    off!(
        "vmpacket_descriptor",
        "type",
        offset_of!(PacketDescriptor, packet_type)
    );
    off!(
        "vmpacket_descriptor",
        "offset8",
        offset_of!(PacketDescriptor, offset8)
    );
    off!(
        "vmpacket_descriptor",
        "len8",
        offset_of!(PacketDescriptor, len8)
    );
    off!(
        "vmpacket_descriptor",
        "flags",
        offset_of!(PacketDescriptor, flags)
    );
    off!(
        "vmpacket_descriptor",
        "trans_id",
        offset_of!(PacketDescriptor, transaction_id)
    );

    // GpaDirectHeader is vmbus_packet_mpb_array up to its first range.
    let d = offset_of!(GpaDirectHeader, descriptor);
    off!(
        "vmbus_packet_mpb_array",
        "type",
        d + offset_of!(PacketDescriptor, packet_type)
    );
    off!(
        "vmbus_packet_mpb_array",
        "dataoffset8",
        d + offset_of!(PacketDescriptor, offset8)
    );
    off!(
        "vmbus_packet_mpb_array",
        "length8",
        d + offset_of!(PacketDescriptor, len8)
    );
    off!(
        "vmbus_packet_mpb_array",
        "flags",
        d + offset_of!(PacketDescriptor, flags)
    );
    off!(
        "vmbus_packet_mpb_array",
        "transactionid",
        d + offset_of!(PacketDescriptor, transaction_id)
    );
    off!(
        "vmbus_packet_mpb_array",
        "reserved",
        offset_of!(GpaDirectHeader, reserved)
    );
    off!(
        "vmbus_packet_mpb_array",
        "rangecount",
        offset_of!(GpaDirectHeader, range_count)
    );
    off!(
        "vmbus_packet_mpb_array",
        "range",
        size_of::<GpaDirectHeader>()
    );

    size!("hv_mpb_array", size_of::<GpaRange>());
    off!("hv_mpb_array", "len", offset_of!(GpaRange, byte_count));
    off!("hv_mpb_array", "offset", offset_of!(GpaRange, byte_offset));
    off!("hv_mpb_array", "pfn_array", size_of::<GpaRange>());

    size!(
        "vmtransfer_page_packet_header",
        size_of::<TransferPageHeader>()
    );
    off!(
        "vmtransfer_page_packet_header",
        "d",
        offset_of!(TransferPageHeader, descriptor)
    );
    off!(
        "vmtransfer_page_packet_header",
        "xfer_pageset_id",
        offset_of!(TransferPageHeader, transfer_page_set_id)
    );
    off!(
        "vmtransfer_page_packet_header",
        "sender_owns_set",
        offset_of!(TransferPageHeader, sender_owns_set)
    );
    off!(
        "vmtransfer_page_packet_header",
        "reserved",
        offset_of!(TransferPageHeader, reserved)
    );
    off!(
        "vmtransfer_page_packet_header",
        "range_cnt",
        offset_of!(TransferPageHeader, range_count)
    );
    off!(
        "vmtransfer_page_packet_header",
        "ranges",
        size_of::<TransferPageHeader>()
    );

    size!("vmtransfer_page_range", size_of::<TransferPageRange>());
    off!(
        "vmtransfer_page_range",
        "byte_count",
        offset_of!(TransferPageRange, byte_count)
    );
    off!(
        "vmtransfer_page_range",
        "byte_offset",
        offset_of!(TransferPageRange, byte_offset)
    );

    // SynIC message and monitor page (msg.rs).
    size!("hv_message_header", size_of::<HvMessageHeader>());
    off!(
        "hv_message_header",
        "message_type",
        offset_of!(HvMessageHeader, message_type)
    );
    off!(
        "hv_message_header",
        "payload_size",
        offset_of!(HvMessageHeader, payload_size)
    );
    off!(
        "hv_message_header",
        "message_flags",
        offset_of!(HvMessageHeader, message_flags)
    );
    off!(
        "hv_message_header",
        "reserved",
        offset_of!(HvMessageHeader, reserved)
    );
    off!(
        "hv_message_header",
        "sender",
        offset_of!(HvMessageHeader, sender)
    );
    off!(
        "hv_message_header",
        "port",
        offset_of!(HvMessageHeader, sender)
    );

    size!("hv_message", size_of::<HvMessage>());
    off!("hv_message", "header", offset_of!(HvMessage, header));
    off!("hv_message", "u.payload", offset_of!(HvMessage, payload));

    size!(
        "hv_monitor_trigger_group",
        size_of::<HvMonitorTriggerGroup>()
    );
    off!(
        "hv_monitor_trigger_group",
        "pending",
        offset_of!(HvMonitorTriggerGroup, pending)
    );
    off!(
        "hv_monitor_trigger_group",
        "armed",
        offset_of!(HvMonitorTriggerGroup, armed)
    );

    size!("hv_monitor_parameter", size_of::<HvMonitorParameter>());
    off!(
        "hv_monitor_parameter",
        "connectionid",
        offset_of!(HvMonitorParameter, connectionid)
    );
    off!(
        "hv_monitor_parameter",
        "flagnumber",
        offset_of!(HvMonitorParameter, flagnumber)
    );
    off!(
        "hv_monitor_parameter",
        "rsvdz",
        offset_of!(HvMonitorParameter, rsvdz)
    );

    size!("hv_monitor_page", size_of::<HvMonitorPage>());
    off!(
        "hv_monitor_page",
        "trigger_state",
        offset_of!(HvMonitorPage, trigger_state)
    );
    off!(
        "hv_monitor_page",
        "rsvdz1",
        offset_of!(HvMonitorPage, rsvdz1)
    );
    off!(
        "hv_monitor_page",
        "trigger_group",
        offset_of!(HvMonitorPage, trigger_group)
    );
    off!(
        "hv_monitor_page",
        "rsvdz2",
        offset_of!(HvMonitorPage, rsvdz2)
    );
    off!(
        "hv_monitor_page",
        "next_checktime",
        offset_of!(HvMonitorPage, next_checktime)
    );
    off!(
        "hv_monitor_page",
        "latency",
        offset_of!(HvMonitorPage, latency)
    );
    off!(
        "hv_monitor_page",
        "rsvdz3",
        offset_of!(HvMonitorPage, rsvdz3)
    );
    off!(
        "hv_monitor_page",
        "parameter",
        offset_of!(HvMonitorPage, parameter)
    );
    off!(
        "hv_monitor_page",
        "rsvdz4",
        offset_of!(HvMonitorPage, rsvdz4)
    );

    // Channel messages (msg.rs).
    size!(
        "vmbus_channel_message_header",
        size_of::<ChannelMessageHeader>()
    );
    off!(
        "vmbus_channel_message_header",
        "msgtype",
        offset_of!(ChannelMessageHeader, msgtype)
    );
    off!(
        "vmbus_channel_message_header",
        "padding",
        offset_of!(ChannelMessageHeader, padding)
    );

    size!("vmbus_channel_offer", size_of::<ChannelOfferWire>());
    off!(
        "vmbus_channel_offer",
        "if_type",
        offset_of!(ChannelOfferWire, if_type)
    );
    off!(
        "vmbus_channel_offer",
        "if_instance",
        offset_of!(ChannelOfferWire, if_instance)
    );
    off!(
        "vmbus_channel_offer",
        "reserved1",
        offset_of!(ChannelOfferWire, reserved1)
    );
    off!(
        "vmbus_channel_offer",
        "reserved2",
        offset_of!(ChannelOfferWire, reserved2)
    );
    off!(
        "vmbus_channel_offer",
        "chn_flags",
        offset_of!(ChannelOfferWire, chn_flags)
    );
    off!(
        "vmbus_channel_offer",
        "mmio_megabytes",
        offset_of!(ChannelOfferWire, mmio_megabytes)
    );
    off!(
        "vmbus_channel_offer",
        "u.std.user_def",
        offset_of!(ChannelOfferWire, user_def)
    );
    off!(
        "vmbus_channel_offer",
        "u.pipe.pipe_mode",
        offset_of!(ChannelOfferWire, user_def)
    );
    off!(
        "vmbus_channel_offer",
        "sub_channel_index",
        offset_of!(ChannelOfferWire, sub_channel_index)
    );
    off!(
        "vmbus_channel_offer",
        "reserved3",
        offset_of!(ChannelOfferWire, reserved3)
    );

    size!("vmbus_channel_offer_channel", size_of::<OfferChannelWire>());
    off!(
        "vmbus_channel_offer_channel",
        "header",
        offset_of!(OfferChannelWire, header)
    );
    off!(
        "vmbus_channel_offer_channel",
        "offer",
        offset_of!(OfferChannelWire, offer)
    );
    off!(
        "vmbus_channel_offer_channel",
        "child_relid",
        offset_of!(OfferChannelWire, child_relid)
    );
    off!(
        "vmbus_channel_offer_channel",
        "monitorid",
        offset_of!(OfferChannelWire, monitorid)
    );
    off!(
        "vmbus_channel_offer_channel",
        "connection_id",
        offset_of!(OfferChannelWire, connection_id)
    );

    // Rescind, close and relid-released share one layout in Rust.
    for c in [
        "vmbus_channel_rescind_offer",
        "vmbus_channel_close_channel",
        "vmbus_channel_relid_released",
    ] {
        println!("{c} size {}", size_of::<RelidWire>());
        println!("{c} header {}", offset_of!(RelidWire, header));
        println!("{c} child_relid {}", offset_of!(RelidWire, child_relid));
    }

    size!("vmbus_channel_open_channel", size_of::<OpenChannelWire>());
    off!(
        "vmbus_channel_open_channel",
        "header",
        offset_of!(OpenChannelWire, header)
    );
    off!(
        "vmbus_channel_open_channel",
        "child_relid",
        offset_of!(OpenChannelWire, child_relid)
    );
    off!(
        "vmbus_channel_open_channel",
        "openid",
        offset_of!(OpenChannelWire, openid)
    );
    off!(
        "vmbus_channel_open_channel",
        "ringbuffer_gpadlhandle",
        offset_of!(OpenChannelWire, ringbuffer_gpadlhandle)
    );
    off!(
        "vmbus_channel_open_channel",
        "target_vp",
        offset_of!(OpenChannelWire, target_vp)
    );
    off!(
        "vmbus_channel_open_channel",
        "downstream_ringbuffer_pageoffset",
        offset_of!(OpenChannelWire, downstream_ringbuffer_pageoffset)
    );
    off!(
        "vmbus_channel_open_channel",
        "userdata",
        offset_of!(OpenChannelWire, userdata)
    );

    size!("vmbus_channel_open_result", size_of::<OpenResultWire>());
    off!(
        "vmbus_channel_open_result",
        "header",
        offset_of!(OpenResultWire, header)
    );
    off!(
        "vmbus_channel_open_result",
        "child_relid",
        offset_of!(OpenResultWire, child_relid)
    );
    off!(
        "vmbus_channel_open_result",
        "openid",
        offset_of!(OpenResultWire, openid)
    );
    off!(
        "vmbus_channel_open_result",
        "status",
        offset_of!(OpenResultWire, status)
    );

    size!(
        "vmbus_channel_modifychannel_response",
        size_of::<ModifyChannelResponseWire>()
    );
    off!(
        "vmbus_channel_modifychannel_response",
        "header",
        offset_of!(ModifyChannelResponseWire, header)
    );
    off!(
        "vmbus_channel_modifychannel_response",
        "child_relid",
        offset_of!(ModifyChannelResponseWire, child_relid)
    );
    off!(
        "vmbus_channel_modifychannel_response",
        "status",
        offset_of!(ModifyChannelResponseWire, status)
    );

    size!("vmbus_channel_gpadl_header", size_of::<GpadlHeaderWire>());
    off!(
        "vmbus_channel_gpadl_header",
        "header",
        offset_of!(GpadlHeaderWire, header)
    );
    off!(
        "vmbus_channel_gpadl_header",
        "child_relid",
        offset_of!(GpadlHeaderWire, child_relid)
    );
    off!(
        "vmbus_channel_gpadl_header",
        "gpadl",
        offset_of!(GpadlHeaderWire, gpadl)
    );
    off!(
        "vmbus_channel_gpadl_header",
        "range_buflen",
        offset_of!(GpadlHeaderWire, range_buflen)
    );
    off!(
        "vmbus_channel_gpadl_header",
        "rangecount",
        offset_of!(GpadlHeaderWire, rangecount)
    );
    off!(
        "vmbus_channel_gpadl_header",
        "range",
        size_of::<GpadlHeaderWire>()
    );

    // msg.rs writes GPADL ranges by GPA_RANGE_SIZE; ring.rs's GpaRange is
    // the same layout.
    size!("gpa_range", GPA_RANGE_SIZE);
    off!("gpa_range", "byte_count", offset_of!(GpaRange, byte_count));
    off!(
        "gpa_range",
        "byte_offset",
        offset_of!(GpaRange, byte_offset)
    );
    off!("gpa_range", "pfn_array", size_of::<GpaRange>());

    size!("vmbus_channel_gpadl_body", size_of::<GpadlBodyWire>());
    off!(
        "vmbus_channel_gpadl_body",
        "header",
        offset_of!(GpadlBodyWire, header)
    );
    off!(
        "vmbus_channel_gpadl_body",
        "msgnumber",
        offset_of!(GpadlBodyWire, msgnumber)
    );
    off!(
        "vmbus_channel_gpadl_body",
        "gpadl",
        offset_of!(GpadlBodyWire, gpadl)
    );
    off!(
        "vmbus_channel_gpadl_body",
        "pfn",
        size_of::<GpadlBodyWire>()
    );

    size!("vmbus_channel_gpadl_created", size_of::<GpadlCreatedWire>());
    off!(
        "vmbus_channel_gpadl_created",
        "header",
        offset_of!(GpadlCreatedWire, header)
    );
    off!(
        "vmbus_channel_gpadl_created",
        "child_relid",
        offset_of!(GpadlCreatedWire, child_relid)
    );
    off!(
        "vmbus_channel_gpadl_created",
        "gpadl",
        offset_of!(GpadlCreatedWire, gpadl)
    );
    off!(
        "vmbus_channel_gpadl_created",
        "creation_status",
        offset_of!(GpadlCreatedWire, creation_status)
    );

    size!(
        "vmbus_channel_gpadl_teardown",
        size_of::<GpadlTeardownWire>()
    );
    off!(
        "vmbus_channel_gpadl_teardown",
        "header",
        offset_of!(GpadlTeardownWire, header)
    );
    off!(
        "vmbus_channel_gpadl_teardown",
        "child_relid",
        offset_of!(GpadlTeardownWire, child_relid)
    );
    off!(
        "vmbus_channel_gpadl_teardown",
        "gpadl",
        offset_of!(GpadlTeardownWire, gpadl)
    );

    size!(
        "vmbus_channel_gpadl_torndown",
        size_of::<GpadlTorndownWire>()
    );
    off!(
        "vmbus_channel_gpadl_torndown",
        "header",
        offset_of!(GpadlTorndownWire, header)
    );
    off!(
        "vmbus_channel_gpadl_torndown",
        "gpadl",
        offset_of!(GpadlTorndownWire, gpadl)
    );

    // msg_sint and msg_vtl share interrupt_page's 8 bytes from 5.0 on
    // (InitiateContact::sint_vtl packs them).
    size!(
        "vmbus_channel_initiate_contact",
        size_of::<InitiateContactWire>()
    );
    off!(
        "vmbus_channel_initiate_contact",
        "header",
        offset_of!(InitiateContactWire, header)
    );
    off!(
        "vmbus_channel_initiate_contact",
        "vmbus_version_requested",
        offset_of!(InitiateContactWire, vmbus_version_requested)
    );
    off!(
        "vmbus_channel_initiate_contact",
        "target_vcpu",
        offset_of!(InitiateContactWire, target_vcpu)
    );
    off!(
        "vmbus_channel_initiate_contact",
        "interrupt_page",
        offset_of!(InitiateContactWire, interrupt_page)
    );
    off!(
        "vmbus_channel_initiate_contact",
        "msg_sint",
        offset_of!(InitiateContactWire, interrupt_page)
    );
    off!(
        "vmbus_channel_initiate_contact",
        "msg_vtl",
        offset_of!(InitiateContactWire, interrupt_page) + 1
    );
    off!(
        "vmbus_channel_initiate_contact",
        "monitor_page1",
        offset_of!(InitiateContactWire, monitor_page1)
    );
    off!(
        "vmbus_channel_initiate_contact",
        "monitor_page2",
        offset_of!(InitiateContactWire, monitor_page2)
    );

    size!(
        "vmbus_channel_version_response",
        size_of::<VersionResponseWire>()
    );
    off!(
        "vmbus_channel_version_response",
        "header",
        offset_of!(VersionResponseWire, header)
    );
    off!(
        "vmbus_channel_version_response",
        "version_supported",
        offset_of!(VersionResponseWire, version_supported)
    );
    off!(
        "vmbus_channel_version_response",
        "connection_state",
        offset_of!(VersionResponseWire, connection_state)
    );
    off!(
        "vmbus_channel_version_response",
        "padding",
        offset_of!(VersionResponseWire, padding)
    );
    off!(
        "vmbus_channel_version_response",
        "msg_conn_id",
        offset_of!(VersionResponseWire, msg_conn_id)
    );

    size!(
        "vmbus_channel_tl_connect_request",
        size_of::<TlConnectRequestWire>()
    );
    off!(
        "vmbus_channel_tl_connect_request",
        "header",
        offset_of!(TlConnectRequestWire, header)
    );
    off!(
        "vmbus_channel_tl_connect_request",
        "guest_endpoint_id",
        offset_of!(TlConnectRequestWire, guest_endpoint_id)
    );
    off!(
        "vmbus_channel_tl_connect_request",
        "host_service_id",
        offset_of!(TlConnectRequestWire, host_service_id)
    );

    // Protocol constants, named as in C.
    let c = |name: &str, value: u64| println!("constants {name} {value}");
    for (name, t) in [
        ("CHANNELMSG_OFFERCHANNEL", MessageType::OfferChannel),
        (
            "CHANNELMSG_RESCIND_CHANNELOFFER",
            MessageType::RescindChannelOffer,
        ),
        ("CHANNELMSG_REQUESTOFFERS", MessageType::RequestOffers),
        (
            "CHANNELMSG_ALLOFFERS_DELIVERED",
            MessageType::AllOffersDelivered,
        ),
        ("CHANNELMSG_OPENCHANNEL", MessageType::OpenChannel),
        (
            "CHANNELMSG_OPENCHANNEL_RESULT",
            MessageType::OpenChannelResult,
        ),
        ("CHANNELMSG_CLOSECHANNEL", MessageType::CloseChannel),
        ("CHANNELMSG_GPADL_HEADER", MessageType::GpadlHeader),
        ("CHANNELMSG_GPADL_BODY", MessageType::GpadlBody),
        ("CHANNELMSG_GPADL_CREATED", MessageType::GpadlCreated),
        ("CHANNELMSG_GPADL_TEARDOWN", MessageType::GpadlTeardown),
        ("CHANNELMSG_GPADL_TORNDOWN", MessageType::GpadlTorndown),
        ("CHANNELMSG_RELID_RELEASED", MessageType::RelidReleased),
        ("CHANNELMSG_INITIATE_CONTACT", MessageType::InitiateContact),
        ("CHANNELMSG_VERSION_RESPONSE", MessageType::VersionResponse),
        ("CHANNELMSG_UNLOAD", MessageType::Unload),
        ("CHANNELMSG_UNLOAD_RESPONSE", MessageType::UnloadResponse),
        (
            "CHANNELMSG_TL_CONNECT_REQUEST",
            MessageType::TlConnectRequest,
        ),
        ("CHANNELMSG_MODIFYCHANNEL", MessageType::ModifyChannel),
        (
            "CHANNELMSG_MODIFYCHANNEL_RESPONSE",
            MessageType::ModifyChannelResponse,
        ),
    ] {
        c(name, t as u64);
    }
    for (name, v) in [
        ("VERSION_WIN8", Version::WIN8),
        ("VERSION_WIN8_1", Version::WIN8_1),
        ("VERSION_WIN10", Version::WIN10),
        ("VERSION_WIN10_V4_1", Version::WIN10_V4_1),
        ("VERSION_WIN10_V5", Version::WIN10_V5),
        ("VERSION_WIN10_V5_1", Version::WIN10_V5_1),
        ("VERSION_WIN10_V5_2", Version::WIN10_V5_2),
        ("VERSION_WIN10_V5_3", Version::WIN10_V5_3),
    ] {
        c(name, v.raw().into());
    }
    c(
        "VMBUS_MESSAGE_CONNECTION_ID",
        version::MESSAGE_CONNECTION_ID.into(),
    );
    c(
        "VMBUS_MESSAGE_CONNECTION_ID_4",
        version::MESSAGE_CONNECTION_ID_4.into(),
    );
    c(
        "VMBUS_EVENT_CONNECTION_ID",
        version::EVENT_CONNECTION_ID.into(),
    );
    c(
        "VMBUS_MONITOR_CONNECTION_ID",
        version::MONITOR_CONNECTION_ID.into(),
    );
    c("VMBUS_MESSAGE_SINT", version::MESSAGE_SINT.into());
    c("HV_MESSAGE_SIZE", SYNIC_MESSAGE_SIZE as u64);
    c("HV_MESSAGE_PAYLOAD_BYTE_COUNT", MAX_MESSAGE_SIZE as u64);
    c("HVMSG_NONE", HVMSG_NONE.into());
    // C's enum hv_message_type is an int, so its value above INT_MAX
    // comes out negative: compare the same 32 bits.
    println!("constants HVMSG_TIMER_EXPIRED {}", HVMSG_TIMER_EXPIRED as i32);
    c("MAX_USER_DEFINED_BYTES", USER_DEFINED_BYTES as u64);
    c("MAX_CHANNEL_RELIDS", MAX_CHANNEL_RELIDS.into());
    c(
        "VMBUS_CHANNEL_NAMED_PIPE_MODE",
        OFFER_FLAG_NAMED_PIPE_MODE.into(),
    );
    c("HV_HYP_PAGE_SIZE", GPADL_PAGE_SIZE.into());
    c("VM_PKT_DATA_INBAND", PACKET_TYPE_INBAND.into());
    c(
        "VM_PKT_DATA_USING_XFER_PAGES",
        PACKET_TYPE_TRANSFER_PAGES.into(),
    );
    c(
        "VM_PKT_DATA_USING_GPA_DIRECT",
        PACKET_TYPE_GPA_DIRECT.into(),
    );
    c("VM_PKT_COMP", PACKET_TYPE_COMPLETION.into());
    c(
        "VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED",
        FLAG_COMPLETION_REQUESTED.into(),
    );
    // ring.rs addresses the shared header by these byte offsets.
    c("hv_ring_buffer.write_index", WRITE_INDEX_OFFSET as u64);
    c("hv_ring_buffer.read_index", READ_INDEX_OFFSET as u64);
    c(
        "hv_ring_buffer.interrupt_mask",
        INTERRUPT_MASK_OFFSET as u64,
    );
    c(
        "hv_ring_buffer.pending_send_sz",
        PENDING_SEND_SIZE_OFFSET as u64,
    );
    c("hv_ring_buffer.feature_bits", FEATURE_BITS_OFFSET as u64);
    c("hv_ring_buffer.buffer", HEADER_SIZE as u64);
    c("sizeof(vmpacket_descriptor)", DESCRIPTOR_SIZE as u64);

    size!(
        "vmbus_channel_modifychannel",
        size_of::<ModifyChannelWire>()
    );
    off!(
        "vmbus_channel_modifychannel",
        "header",
        offset_of!(ModifyChannelWire, header)
    );
    off!(
        "vmbus_channel_modifychannel",
        "child_relid",
        offset_of!(ModifyChannelWire, child_relid)
    );
    off!(
        "vmbus_channel_modifychannel",
        "target_vp",
        offset_of!(ModifyChannelWire, target_vp)
    );
}
