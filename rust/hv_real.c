// SPDX-License-Identifier: GPL-2.0
/*
 * The real Hyper-V backend's C side, following the hypervisor TLFS and the
 * sequence of drivers/hv/hv.c: SynIC message and event-flag pages through
 * the SIMP/SIEFP MSRs, SINT2 aimed at HYPERVISOR_CALLBACK_VECTOR with
 * hv_setup_vmbus_handler(), SCONTROL, the EOM MSR, and the HvPostMessage
 * and HvSignalEvent hypercalls.
 *
 * Scope, for now: plain (non-isolated) guests without a paravisor and not
 * the root partition, and the SynIC of the one CPU VMBus messages go to
 * (CPU 0, the C driver's VMBUS_CONNECT_CPU); channel interrupts on other
 * CPUs and CPU hotplug come with channels. Anything else is refused in
 * rustic_hvr_available(). This path has only been built, never run: the
 * project's CI has no Hyper-V.
 */
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/irqflags.h>
#include <linux/smp.h>
#include <linux/string.h>
#include "bindings_helper.h"

#if IS_ENABLED(CONFIG_HYPERV) && defined(CONFIG_X86_64)
#include <asm/mshyperv.h>

#define RUSTIC_HVR_CPU 0
#define RUSTIC_HVR_SINT 2
#define RUSTIC_HVR_PAYLOAD 240

/* HvPostMessage's input (TLFS "HV_INPUT_POST_MESSAGE"). */
struct rustic_hvr_post_message {
	u32 connection_id;
	u32 reserved;
	u32 message_type;
	u32 payload_size;
	u64 payload[RUSTIC_HVR_PAYLOAD / 8];
} __packed;

static void *rustic_hvr_msg_page;
static void *rustic_hvr_event_page;

bool rustic_hvr_available(void)
{
	return hv_is_hyperv_initialized() && !hv_is_isolation_supported() &&
	       !ms_hyperv.paravisor_present && !hv_root_partition &&
	       hv_hypercall_pg;
}

static void rustic_hvr_enable(void *unused)
{
	union hv_synic_simp simp;
	union hv_synic_siefp siefp;
	union hv_synic_sint sint;
	union hv_synic_scontrol sctrl;

	simp.as_uint64 = hv_get_msr(HV_MSR_SIMP);
	simp.simp_enabled = 1;
	simp.base_simp_gpa = virt_to_phys(rustic_hvr_msg_page) >> HV_HYP_PAGE_SHIFT;
	hv_set_msr(HV_MSR_SIMP, simp.as_uint64);

	siefp.as_uint64 = hv_get_msr(HV_MSR_SIEFP);
	siefp.siefp_enabled = 1;
	siefp.base_siefp_gpa = virt_to_phys(rustic_hvr_event_page) >> HV_HYP_PAGE_SHIFT;
	hv_set_msr(HV_MSR_SIEFP, siefp.as_uint64);

	sint.as_uint64 = hv_get_msr(HV_MSR_SINT0 + RUSTIC_HVR_SINT);
	sint.vector = HYPERVISOR_CALLBACK_VECTOR;
	sint.masked = false;
	sint.auto_eoi = !(ms_hyperv.hints & HV_DEPRECATING_AEOI_RECOMMENDED);
	hv_set_msr(HV_MSR_SINT0 + RUSTIC_HVR_SINT, sint.as_uint64);

	sctrl.as_uint64 = hv_get_msr(HV_MSR_SCONTROL);
	sctrl.enable = 1;
	hv_set_msr(HV_MSR_SCONTROL, sctrl.as_uint64);
}

static void rustic_hvr_disable(void *unused)
{
	union hv_synic_simp simp;
	union hv_synic_siefp siefp;
	union hv_synic_sint sint;

	sint.as_uint64 = hv_get_msr(HV_MSR_SINT0 + RUSTIC_HVR_SINT);
	sint.masked = 1;
	hv_set_msr(HV_MSR_SINT0 + RUSTIC_HVR_SINT, sint.as_uint64);

	simp.as_uint64 = hv_get_msr(HV_MSR_SIMP);
	simp.simp_enabled = 0;
	simp.base_simp_gpa = 0;
	hv_set_msr(HV_MSR_SIMP, simp.as_uint64);

	siefp.as_uint64 = hv_get_msr(HV_MSR_SIEFP);
	siefp.siefp_enabled = 0;
	siefp.base_siefp_gpa = 0;
	hv_set_msr(HV_MSR_SIEFP, siefp.as_uint64);
	/*
	 * SCONTROL stays enabled: the kernel's own stimer code may share the
	 * SynIC (the C driver clears it only when it owns every user).
	 */
}

static void rustic_hvr_free_pages(void)
{
	free_page((unsigned long)rustic_hvr_msg_page);
	free_page((unsigned long)rustic_hvr_event_page);
	rustic_hvr_msg_page = NULL;
	rustic_hvr_event_page = NULL;
}

int rustic_hvr_start(void)
{
	int ret;

	rustic_hvr_msg_page = (void *)get_zeroed_page(GFP_KERNEL);
	rustic_hvr_event_page = (void *)get_zeroed_page(GFP_KERNEL);
	if (!rustic_hvr_msg_page || !rustic_hvr_event_page) {
		rustic_hvr_free_pages();
		return -ENOMEM;
	}
	hv_setup_vmbus_handler(rustic_hv_isr);
	ret = smp_call_function_single(RUSTIC_HVR_CPU, rustic_hvr_enable, NULL, 1);
	if (ret) {
		hv_remove_vmbus_handler();
		rustic_hvr_free_pages();
	}
	return ret;
}

void rustic_hvr_stop(void)
{
	smp_call_function_single(RUSTIC_HVR_CPU, rustic_hvr_disable, NULL, 1);
	hv_remove_vmbus_handler();
	/* An interrupt taken before the SINT was masked has finished now. */
	synchronize_rcu();
}

void rustic_hvr_free(void)
{
	rustic_hvr_free_pages();
}

void *rustic_hvr_message_page(void)
{
	return rustic_hvr_msg_page;
}

static void rustic_hvr_eom_local(void *unused)
{
	hv_set_msr(HV_MSR_EOM, 0);
}

void *rustic_hvr_event_flags(void)
{
	return rustic_hvr_event_page;
}

void rustic_hvr_eom(void)
{
	/* EOM is per VP: write it on the CPU whose slot was read. */
	smp_call_function_single(RUSTIC_HVR_CPU, rustic_hvr_eom_local, NULL, 1);
}

int rustic_hvr_post_message(u32 connection_id, u32 message_type,
			    const u8 *payload, u32 len)
{
	struct rustic_hvr_post_message *msg;
	unsigned long flags;
	u64 status;

	if (len > RUSTIC_HVR_PAYLOAD)
		return -EMSGSIZE;
	local_irq_save(flags);
	msg = *this_cpu_ptr(hyperv_pcpu_input_arg);
	msg->connection_id = connection_id;
	msg->reserved = 0;
	msg->message_type = message_type;
	msg->payload_size = len;
	memcpy(msg->payload, payload, len);
	status = hv_do_hypercall(HVCALL_POST_MESSAGE, msg, NULL);
	local_irq_restore(flags);
	switch (hv_result(status)) {
	case HV_STATUS_SUCCESS:
		return 0;
	case HV_STATUS_INSUFFICIENT_BUFFERS:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

int rustic_hvr_signal_event(u32 connection_id)
{
	u64 status = hv_do_fast_hypercall8(HVCALL_SIGNAL_EVENT, connection_id);

	return hv_result(status) == HV_STATUS_SUCCESS ? 0 : -EIO;
}

u32 rustic_hvr_vp_index(u32 cpu)
{
	if (!hv_vp_index || cpu >= nr_cpu_ids)
		return cpu;
	return hv_vp_index[cpu];
}

#else /* no Hyper-V support in this kernel */

bool rustic_hvr_available(void) { return false; }
int rustic_hvr_start(void) { return -ENODEV; }
void rustic_hvr_stop(void) { }
void rustic_hvr_free(void) { }
void *rustic_hvr_message_page(void) { return NULL; }
void *rustic_hvr_event_flags(void) { return NULL; }
void rustic_hvr_eom(void) { }
int rustic_hvr_post_message(u32 connection_id, u32 message_type,
			    const u8 *payload, u32 len) { return -ENODEV; }
int rustic_hvr_signal_event(u32 connection_id) { return -ENODEV; }
u32 rustic_hvr_vp_index(u32 cpu) { return cpu; }

#endif
