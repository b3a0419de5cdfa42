// SPDX-License-Identifier: GPL-2.0-only
/*
 * Sizes and member offsets of every structure RustIC shares with the host,
 * taken from the kernel's own headers. Compiled to assembly only, the
 * asm-offsets way: each value is an immediate operand that ends up in a
 * "->struct member value" marker, which run.sh extracts.
 */
#include <linux/stddef.h>
#include <linux/hyperv.h>
#include <asm/hyperv-tlfs.h>
#include "hyperv_vmbus.h"

#define EMIT(name, val) asm volatile("\n.ascii \"->" name " %c0\"" : : "i" (val))
#define SIZE(s) EMIT(#s " size", sizeof(struct s))
#define OFF(s, m) EMIT(#s " " #m, offsetof(struct s, m))
#define USIZE(u) EMIT(#u " size", sizeof(union u))
#define UOFF(u, m) EMIT(#u " " #m, offsetof(union u, m))
#define CONST(c) EMIT("constants " #c, c)
#define CONST_OFF(s, m) EMIT("constants " #s "." #m, offsetof(struct s, m))

void rustic_layout(void);
void rustic_layout(void)
{
	/* Ring buffer (vmbus-core ring.rs). */
	SIZE(hv_ring_buffer);
	OFF(hv_ring_buffer, write_index);
	OFF(hv_ring_buffer, read_index);
	OFF(hv_ring_buffer, interrupt_mask);
	OFF(hv_ring_buffer, pending_send_sz);
	OFF(hv_ring_buffer, reserved1);
	OFF(hv_ring_buffer, feature_bits);
	OFF(hv_ring_buffer, reserved2);
	OFF(hv_ring_buffer, buffer);

	SIZE(vmpacket_descriptor);
	OFF(vmpacket_descriptor, type);
	OFF(vmpacket_descriptor, offset8);
	OFF(vmpacket_descriptor, len8);
	OFF(vmpacket_descriptor, flags);
	OFF(vmpacket_descriptor, trans_id);

	/* GPA-direct packet: header up to its first range. */
	OFF(vmbus_packet_mpb_array, type);
	OFF(vmbus_packet_mpb_array, dataoffset8);
	OFF(vmbus_packet_mpb_array, length8);
	OFF(vmbus_packet_mpb_array, flags);
	OFF(vmbus_packet_mpb_array, transactionid);
	OFF(vmbus_packet_mpb_array, reserved);
	OFF(vmbus_packet_mpb_array, rangecount);
	OFF(vmbus_packet_mpb_array, range);

	SIZE(hv_mpb_array);
	OFF(hv_mpb_array, len);
	OFF(hv_mpb_array, offset);
	OFF(hv_mpb_array, pfn_array);

	SIZE(vmtransfer_page_packet_header);
	OFF(vmtransfer_page_packet_header, d);
	OFF(vmtransfer_page_packet_header, xfer_pageset_id);
	OFF(vmtransfer_page_packet_header, sender_owns_set);
	OFF(vmtransfer_page_packet_header, reserved);
	OFF(vmtransfer_page_packet_header, range_cnt);
	OFF(vmtransfer_page_packet_header, ranges);

	SIZE(vmtransfer_page_range);
	OFF(vmtransfer_page_range, byte_count);
	OFF(vmtransfer_page_range, byte_offset);

	/* SynIC message and monitor page (vmbus-core msg.rs). */
	SIZE(hv_message_header);
	OFF(hv_message_header, message_type);
	OFF(hv_message_header, payload_size);
	OFF(hv_message_header, message_flags);
	OFF(hv_message_header, reserved);
	OFF(hv_message_header, sender);
	OFF(hv_message_header, port);

	SIZE(hv_message);
	OFF(hv_message, header);
	OFF(hv_message, u.payload);

	USIZE(hv_monitor_trigger_group);
	UOFF(hv_monitor_trigger_group, pending);
	UOFF(hv_monitor_trigger_group, armed);

	SIZE(hv_monitor_parameter);
	OFF(hv_monitor_parameter, connectionid);
	OFF(hv_monitor_parameter, flagnumber);
	OFF(hv_monitor_parameter, rsvdz);

	SIZE(hv_monitor_page);
	OFF(hv_monitor_page, trigger_state);
	OFF(hv_monitor_page, rsvdz1);
	OFF(hv_monitor_page, trigger_group);
	OFF(hv_monitor_page, rsvdz2);
	OFF(hv_monitor_page, next_checktime);
	OFF(hv_monitor_page, latency);
	OFF(hv_monitor_page, rsvdz3);
	OFF(hv_monitor_page, parameter);
	OFF(hv_monitor_page, rsvdz4);

	/* Channel messages (vmbus-core msg.rs). */
	SIZE(vmbus_channel_message_header);
	OFF(vmbus_channel_message_header, msgtype);
	OFF(vmbus_channel_message_header, padding);

	SIZE(vmbus_channel_offer);
	OFF(vmbus_channel_offer, if_type);
	OFF(vmbus_channel_offer, if_instance);
	OFF(vmbus_channel_offer, reserved1);
	OFF(vmbus_channel_offer, reserved2);
	OFF(vmbus_channel_offer, chn_flags);
	OFF(vmbus_channel_offer, mmio_megabytes);
	OFF(vmbus_channel_offer, u.std.user_def);
	OFF(vmbus_channel_offer, u.pipe.pipe_mode);
	OFF(vmbus_channel_offer, sub_channel_index);
	OFF(vmbus_channel_offer, reserved3);

	/* monitor_allocated and is_dedicated_interrupt are bit-fields. */
	SIZE(vmbus_channel_offer_channel);
	OFF(vmbus_channel_offer_channel, header);
	OFF(vmbus_channel_offer_channel, offer);
	OFF(vmbus_channel_offer_channel, child_relid);
	OFF(vmbus_channel_offer_channel, monitorid);
	OFF(vmbus_channel_offer_channel, connection_id);

	SIZE(vmbus_channel_rescind_offer);
	OFF(vmbus_channel_rescind_offer, header);
	OFF(vmbus_channel_rescind_offer, child_relid);

	SIZE(vmbus_channel_open_channel);
	OFF(vmbus_channel_open_channel, header);
	OFF(vmbus_channel_open_channel, child_relid);
	OFF(vmbus_channel_open_channel, openid);
	OFF(vmbus_channel_open_channel, ringbuffer_gpadlhandle);
	OFF(vmbus_channel_open_channel, target_vp);
	OFF(vmbus_channel_open_channel, downstream_ringbuffer_pageoffset);
	OFF(vmbus_channel_open_channel, userdata);

	SIZE(vmbus_channel_open_result);
	OFF(vmbus_channel_open_result, header);
	OFF(vmbus_channel_open_result, child_relid);
	OFF(vmbus_channel_open_result, openid);
	OFF(vmbus_channel_open_result, status);

	SIZE(vmbus_channel_modifychannel_response);
	OFF(vmbus_channel_modifychannel_response, header);
	OFF(vmbus_channel_modifychannel_response, child_relid);
	OFF(vmbus_channel_modifychannel_response, status);

	SIZE(vmbus_channel_close_channel);
	OFF(vmbus_channel_close_channel, header);
	OFF(vmbus_channel_close_channel, child_relid);

	SIZE(vmbus_channel_gpadl_header);
	OFF(vmbus_channel_gpadl_header, header);
	OFF(vmbus_channel_gpadl_header, child_relid);
	OFF(vmbus_channel_gpadl_header, gpadl);
	OFF(vmbus_channel_gpadl_header, range_buflen);
	OFF(vmbus_channel_gpadl_header, rangecount);
	OFF(vmbus_channel_gpadl_header, range);

	SIZE(gpa_range);
	OFF(gpa_range, byte_count);
	OFF(gpa_range, byte_offset);
	OFF(gpa_range, pfn_array);

	SIZE(vmbus_channel_gpadl_body);
	OFF(vmbus_channel_gpadl_body, header);
	OFF(vmbus_channel_gpadl_body, msgnumber);
	OFF(vmbus_channel_gpadl_body, gpadl);
	OFF(vmbus_channel_gpadl_body, pfn);

	SIZE(vmbus_channel_gpadl_created);
	OFF(vmbus_channel_gpadl_created, header);
	OFF(vmbus_channel_gpadl_created, child_relid);
	OFF(vmbus_channel_gpadl_created, gpadl);
	OFF(vmbus_channel_gpadl_created, creation_status);

	SIZE(vmbus_channel_gpadl_teardown);
	OFF(vmbus_channel_gpadl_teardown, header);
	OFF(vmbus_channel_gpadl_teardown, child_relid);
	OFF(vmbus_channel_gpadl_teardown, gpadl);

	SIZE(vmbus_channel_gpadl_torndown);
	OFF(vmbus_channel_gpadl_torndown, header);
	OFF(vmbus_channel_gpadl_torndown, gpadl);

	SIZE(vmbus_channel_relid_released);
	OFF(vmbus_channel_relid_released, header);
	OFF(vmbus_channel_relid_released, child_relid);

	SIZE(vmbus_channel_initiate_contact);
	OFF(vmbus_channel_initiate_contact, header);
	OFF(vmbus_channel_initiate_contact, vmbus_version_requested);
	OFF(vmbus_channel_initiate_contact, target_vcpu);
	OFF(vmbus_channel_initiate_contact, interrupt_page);
	OFF(vmbus_channel_initiate_contact, msg_sint);
	OFF(vmbus_channel_initiate_contact, msg_vtl);
	OFF(vmbus_channel_initiate_contact, monitor_page1);
	OFF(vmbus_channel_initiate_contact, monitor_page2);

	SIZE(vmbus_channel_version_response);
	OFF(vmbus_channel_version_response, header);
	OFF(vmbus_channel_version_response, version_supported);
	OFF(vmbus_channel_version_response, connection_state);
	OFF(vmbus_channel_version_response, padding);
	OFF(vmbus_channel_version_response, msg_conn_id);

	SIZE(vmbus_channel_tl_connect_request);
	OFF(vmbus_channel_tl_connect_request, header);
	OFF(vmbus_channel_tl_connect_request, guest_endpoint_id);
	OFF(vmbus_channel_tl_connect_request, host_service_id);

	/* Protocol constants (msg.rs, version.rs, ring.rs). */
	CONST(CHANNELMSG_OFFERCHANNEL);
	CONST(CHANNELMSG_RESCIND_CHANNELOFFER);
	CONST(CHANNELMSG_REQUESTOFFERS);
	CONST(CHANNELMSG_ALLOFFERS_DELIVERED);
	CONST(CHANNELMSG_OPENCHANNEL);
	CONST(CHANNELMSG_OPENCHANNEL_RESULT);
	CONST(CHANNELMSG_CLOSECHANNEL);
	CONST(CHANNELMSG_GPADL_HEADER);
	CONST(CHANNELMSG_GPADL_BODY);
	CONST(CHANNELMSG_GPADL_CREATED);
	CONST(CHANNELMSG_GPADL_TEARDOWN);
	CONST(CHANNELMSG_GPADL_TORNDOWN);
	CONST(CHANNELMSG_RELID_RELEASED);
	CONST(CHANNELMSG_INITIATE_CONTACT);
	CONST(CHANNELMSG_VERSION_RESPONSE);
	CONST(CHANNELMSG_UNLOAD);
	CONST(CHANNELMSG_UNLOAD_RESPONSE);
	CONST(CHANNELMSG_TL_CONNECT_REQUEST);
	CONST(CHANNELMSG_MODIFYCHANNEL);
	CONST(CHANNELMSG_MODIFYCHANNEL_RESPONSE);
	CONST(VERSION_WIN8);
	CONST(VERSION_WIN8_1);
	CONST(VERSION_WIN10);
	CONST(VERSION_WIN10_V4_1);
	CONST(VERSION_WIN10_V5);
	CONST(VERSION_WIN10_V5_1);
	CONST(VERSION_WIN10_V5_2);
	CONST(VERSION_WIN10_V5_3);
	CONST(VMBUS_MESSAGE_CONNECTION_ID);
	CONST(VMBUS_MESSAGE_CONNECTION_ID_4);
	CONST(VMBUS_EVENT_CONNECTION_ID);
	CONST(VMBUS_MONITOR_CONNECTION_ID);
	CONST(VMBUS_MESSAGE_SINT);
	CONST(HV_MESSAGE_SIZE);
	CONST(HV_MESSAGE_PAYLOAD_BYTE_COUNT);
	CONST(HVMSG_NONE);
	CONST(HVMSG_TIMER_EXPIRED);
	CONST(MAX_USER_DEFINED_BYTES);
	CONST(MAX_CHANNEL_RELIDS);
	CONST(VMBUS_CHANNEL_NAMED_PIPE_MODE);
	CONST(HV_HYP_PAGE_SIZE);
	CONST(VM_PKT_DATA_INBAND);
	CONST(VM_PKT_DATA_USING_XFER_PAGES);
	CONST(VM_PKT_DATA_USING_GPA_DIRECT);
	CONST(VM_PKT_COMP);
	CONST(VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED);
	CONST_OFF(hv_ring_buffer, write_index);
	CONST_OFF(hv_ring_buffer, read_index);
	CONST_OFF(hv_ring_buffer, interrupt_mask);
	CONST_OFF(hv_ring_buffer, pending_send_sz);
	CONST_OFF(hv_ring_buffer, feature_bits);
	CONST_OFF(hv_ring_buffer, buffer);
	EMIT("constants sizeof(vmpacket_descriptor)", sizeof(struct vmpacket_descriptor));

	SIZE(vmbus_channel_modifychannel);
	OFF(vmbus_channel_modifychannel, header);
	OFF(vmbus_channel_modifychannel, child_relid);
	OFF(vmbus_channel_modifychannel, target_vp);
}
