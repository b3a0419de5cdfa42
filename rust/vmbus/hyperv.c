// SPDX-License-Identifier: GPL-2.0
/*
 * The real Hyper-V backend's C side, following the hypervisor TLFS and the
 * sequence of drivers/hv/hv.c: SynIC message and event-flag pages through
 * the SIMP/SIEFP MSRs, SINT2 aimed at HYPERVISOR_CALLBACK_VECTOR with
 * hv_setup_vmbus_handler(), SCONTROL, the EOM MSR, and the HvPostMessage
 * and HvSignalEvent hypercalls.
 *
 * - Each CPU's SynIC is set up through a CPU hotplug state (online: pages,
 *   SINT2, SCONTROL; offline: masked and unmapped), as hv_synic_init() and
 *   hv_synic_cleanup() do. CPU 0 takes the VMBus messages and may not go
 *   offline while the connection is up (the C driver's VMBUS_CONNECT_CPU);
 *   nor may a CPU that open channels target (counted per CPU by
 *   rustic_hvr_cpu_channels()), which the C driver refuses the same way.
 * - The module binds the ACPI VMBus device ("VMBUS"/"VMBus") with an
 *   acpi_driver (on the acpi bus; hv_vmbus binds the platform device made
 *   from it instead, so the binding itself does not keep the two apart:
 *   the bus name "vmbus", which both register, does) and records the MMIO
 *   windows of its _CRS and, as vmbus_acpi_add() does, those of its
 *   ancestors up to the first that has any (Hyper-V puts them on the VMOD
 *   device above), ignoring windows that end below 1 MiB. Nothing uses
 *   them yet: they are for devices that map MMIO (the framebuffer, PCI
 *   pass-through), which this module does not drive.
 * - A machine without the ACPI device has no VMBus: rustic_hvr_start()
 *   says so with -ENODEV, and the module loads with an empty bus.
 *
 * Scope: plain (non-isolated) guests without a paravisor and not the root
 * partition; anything else is refused in rustic_hvr_available(). This path
 * has only been built, never run: the project's CI has no Hyper-V.
 */
#include <linux/acpi.h>
#include <linux/cpuhotplug.h>
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/percpu.h>
#include <linux/irqflags.h>
#include <linux/smp.h>
#include <linux/string.h>
#include "../bindings_helper.h"

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

/* Each CPU's SynIC message and event flags pages. */
struct rustic_hvr_cpu {
	void *msg_page;
	void *event_page;
	/* Open channels whose interrupts the host sends to this CPU. */
	atomic_t channels;
};

static DEFINE_PER_CPU(struct rustic_hvr_cpu, rustic_hvr_cpus);
static int rustic_hvr_cpuhp_state = -1;
/* Set while the backend stops: CPU 0 may then go offline too. */
static bool rustic_hvr_stopping;

/* The ACPI VMBus device and the MMIO ranges of its _CRS. */
#define RUSTIC_HVR_MAX_MMIO 8
static struct acpi_device *rustic_hvr_acpi_dev;
static struct {
	u64 start;
	u64 len;
} rustic_hvr_mmio[RUSTIC_HVR_MAX_MMIO];
static unsigned int rustic_hvr_mmio_count;

bool rustic_hvr_available(void)
{
	return hv_is_hyperv_initialized() && !hv_is_isolation_supported() &&
	       !ms_hyperv.paravisor_present && !hv_root_partition &&
	       hv_hypercall_pg;
}

/* Runs on @cpu (a CPUHP_AP_ONLINE_DYN state). */
static int rustic_hvr_cpu_online(unsigned int cpu)
{
	struct rustic_hvr_cpu *pages = per_cpu_ptr(&rustic_hvr_cpus, cpu);
	union hv_synic_simp simp;
	union hv_synic_siefp siefp;
	union hv_synic_sint sint;
	union hv_synic_scontrol sctrl;

	simp.as_uint64 = hv_get_msr(HV_MSR_SIMP);
	simp.simp_enabled = 1;
	simp.base_simp_gpa = virt_to_phys(pages->msg_page) >> HV_HYP_PAGE_SHIFT;
	hv_set_msr(HV_MSR_SIMP, simp.as_uint64);

	siefp.as_uint64 = hv_get_msr(HV_MSR_SIEFP);
	siefp.siefp_enabled = 1;
	siefp.base_siefp_gpa = virt_to_phys(pages->event_page) >> HV_HYP_PAGE_SHIFT;
	hv_set_msr(HV_MSR_SIEFP, siefp.as_uint64);

	sint.as_uint64 = hv_get_msr(HV_MSR_SINT0 + RUSTIC_HVR_SINT);
	sint.vector = HYPERVISOR_CALLBACK_VECTOR;
	sint.masked = false;
	sint.auto_eoi = !(ms_hyperv.hints & HV_DEPRECATING_AEOI_RECOMMENDED);
	hv_set_msr(HV_MSR_SINT0 + RUSTIC_HVR_SINT, sint.as_uint64);

	sctrl.as_uint64 = hv_get_msr(HV_MSR_SCONTROL);
	sctrl.enable = 1;
	hv_set_msr(HV_MSR_SCONTROL, sctrl.as_uint64);
	return 0;
}

/* Runs on @cpu as it goes offline, and on every CPU when the backend stops. */
static int rustic_hvr_cpu_offline(unsigned int cpu)
{
	union hv_synic_simp simp;
	union hv_synic_siefp siefp;
	union hv_synic_sint sint;

	if (cpu == RUSTIC_HVR_CPU && !READ_ONCE(rustic_hvr_stopping))
		return -EBUSY;
	/* Its channels' interrupts would be lost (hv_synic_cleanup()). */
	if (atomic_read(&per_cpu_ptr(&rustic_hvr_cpus, cpu)->channels) > 0 &&
	    !READ_ONCE(rustic_hvr_stopping))
		return -EBUSY;

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
	return 0;
}

static void rustic_hvr_free_pages(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct rustic_hvr_cpu *pages = per_cpu_ptr(&rustic_hvr_cpus, cpu);

		free_page((unsigned long)pages->msg_page);
		free_page((unsigned long)pages->event_page);
		pages->msg_page = NULL;
		pages->event_page = NULL;
	}
}

/* Windows ending below this are legacy ranges of no use to VMBus devices. */
#define RUSTIC_HVR_MMIO_MIN 0x100000ULL

static acpi_status rustic_hvr_walk_crs(struct acpi_resource *res, void *ctx)
{
	struct acpi_resource_address64 addr;

	/* Address descriptors are bus windows; memory descriptors are not. */
	if (res->type != ACPI_RESOURCE_TYPE_ADDRESS32 &&
	    res->type != ACPI_RESOURCE_TYPE_ADDRESS64)
		return AE_OK;
	if (ACPI_FAILURE(acpi_resource_to_address64(res, &addr)) ||
	    addr.resource_type != ACPI_MEMORY_RANGE ||
	    !addr.address.address_length ||
	    addr.address.maximum < RUSTIC_HVR_MMIO_MIN)
		return AE_OK;
	if (rustic_hvr_mmio_count == RUSTIC_HVR_MAX_MMIO) {
		pr_warn("hv_rustic: more than %d VMBus MMIO ranges; the rest ignored\n",
			RUSTIC_HVR_MAX_MMIO);
		return AE_OK;
	}
	rustic_hvr_mmio[rustic_hvr_mmio_count].start = addr.address.minimum;
	rustic_hvr_mmio[rustic_hvr_mmio_count].len = addr.address.address_length;
	rustic_hvr_mmio_count++;
	return AE_OK;
}

static int rustic_hvr_acpi_add(struct acpi_device *device)
{
	struct acpi_device *ancestor;
	acpi_status status;
	unsigned int i;

	rustic_hvr_mmio_count = 0;
	status = acpi_walk_resources(device->handle, METHOD_NAME__CRS,
				     rustic_hvr_walk_crs, NULL);
	if (ACPI_FAILURE(status) && status != AE_NOT_FOUND)
		return -ENODEV;
	/* Generation 1 and 2 firmware put the windows on an ancestor. */
	for (ancestor = acpi_dev_parent(device);
	     ancestor && ancestor->handle != ACPI_ROOT_OBJECT &&
	     !rustic_hvr_mmio_count;
	     ancestor = acpi_dev_parent(ancestor))
		acpi_walk_resources(ancestor->handle, METHOD_NAME__CRS,
				    rustic_hvr_walk_crs, NULL);
	for (i = 0; i < rustic_hvr_mmio_count; i++)
		pr_info("hv_rustic: VMBus MMIO range %pa+%#llx\n",
			&rustic_hvr_mmio[i].start, rustic_hvr_mmio[i].len);
	rustic_hvr_acpi_dev = device;
	return 0;
}

static void rustic_hvr_acpi_remove(struct acpi_device *device)
{
	rustic_hvr_acpi_dev = NULL;
}

static const struct acpi_device_id rustic_hvr_acpi_ids[] = {
	{ "VMBUS", 0 },
	{ "VMBus", 0 },
	{ "", 0 },
};

/*
 * The same ACPI ids as hv_vmbus, so that udev loads hv_rustic on Hyper-V; the
 * installed modprobe.d file (packaging/) blacklists hv_vmbus, or both would
 * be loaded and the second to come would find the bus taken.
 */
MODULE_DEVICE_TABLE(acpi, rustic_hvr_acpi_ids);

static struct acpi_driver rustic_hvr_acpi_driver = {
	.name = "hv_rustic",
	.ids = rustic_hvr_acpi_ids,
	.ops = {
		.add = rustic_hvr_acpi_add,
		.remove = rustic_hvr_acpi_remove,
	},
};

bool rustic_hvr_acpi_present(void)
{
	return acpi_dev_present("VMBUS", NULL, -1) ||
	       acpi_dev_present("VMBus", NULL, -1);
}

/* -ENODEV: no ACPI VMBus device was bound (the caller says so, once). */
int rustic_hvr_start(void)
{
	unsigned int cpu;
	int ret;

	ret = acpi_bus_register_driver(&rustic_hvr_acpi_driver);
	if (ret)
		return ret;
	if (!rustic_hvr_acpi_dev) {
		acpi_bus_unregister_driver(&rustic_hvr_acpi_driver);
		return -ENODEV;
	}
	for_each_possible_cpu(cpu) {
		struct rustic_hvr_cpu *pages = per_cpu_ptr(&rustic_hvr_cpus, cpu);

		pages->msg_page = (void *)get_zeroed_page(GFP_KERNEL);
		pages->event_page = (void *)get_zeroed_page(GFP_KERNEL);
		if (!pages->msg_page || !pages->event_page) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	WRITE_ONCE(rustic_hvr_stopping, false);
	hv_setup_vmbus_handler(rustic_hv_isr);
	ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "rustic/hv:online",
				rustic_hvr_cpu_online, rustic_hvr_cpu_offline);
	if (ret < 0) {
		hv_remove_vmbus_handler();
		goto fail;
	}
	rustic_hvr_cpuhp_state = ret;
	return 0;
fail:
	rustic_hvr_free_pages();
	acpi_bus_unregister_driver(&rustic_hvr_acpi_driver);
	return ret;
}

void rustic_hvr_stop(void)
{
	WRITE_ONCE(rustic_hvr_stopping, true);
	/* Runs the offline step (SINT masked, pages unmapped) on every CPU. */
	if (rustic_hvr_cpuhp_state >= 0)
		cpuhp_remove_state(rustic_hvr_cpuhp_state);
	rustic_hvr_cpuhp_state = -1;
	hv_remove_vmbus_handler();
	/* An interrupt taken before the SINT was masked has finished now. */
	synchronize_rcu();
}

/* This CPU's SynIC off (the kdump path: interrupts off, no IPI, no sleep). */
void rustic_hvr_disable_this_cpu(void)
{
	WRITE_ONCE(rustic_hvr_stopping, true);
	rustic_hvr_cpu_offline(smp_processor_id());
}

void rustic_hvr_free(void)
{
	rustic_hvr_free_pages();
	acpi_bus_unregister_driver(&rustic_hvr_acpi_driver);
}

void *rustic_hvr_message_page(void)
{
	return per_cpu_ptr(&rustic_hvr_cpus, RUSTIC_HVR_CPU)->msg_page;
}

static void rustic_hvr_eom_local(void *unused)
{
	hv_set_msr(HV_MSR_EOM, 0);
}

void *rustic_hvr_event_flags(u32 cpu)
{
	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return NULL;
	return per_cpu_ptr(&rustic_hvr_cpus, cpu)->event_page;
}

/*
 * @cpu's SynIC message page, for the crash path's look at every CPU (the
 * pages are allocated for every possible CPU while the backend runs).
 */
void *rustic_hvr_message_page_of(u32 cpu)
{
	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return NULL;
	return per_cpu_ptr(&rustic_hvr_cpus, cpu)->msg_page;
}

/* EOM on this CPU, with interrupts off (the crash path: no IPI). */
void rustic_hvr_eom_here(void)
{
	hv_set_msr(HV_MSR_EOM, 0);
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
	/*
	 * The caller tells these apart: no port at that connection id (a host
	 * older than VMBus 5.0 has none at 4), and a port that is full for
	 * now (retried with backoff); anything else is a plain failure.
	 */
	switch (hv_result(status)) {
	case HV_STATUS_SUCCESS:
		return 0;
	case HV_STATUS_INVALID_CONNECTION_ID:
		return -ENXIO;
	case HV_STATUS_INSUFFICIENT_BUFFERS:
	case HV_STATUS_INSUFFICIENT_MEMORY:
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

void rustic_hvr_cpu_channels(u32 cpu, int delta)
{
	if (cpu < nr_cpu_ids && cpu_possible(cpu))
		atomic_add(delta, &per_cpu_ptr(&rustic_hvr_cpus, cpu)->channels);
}

#else /* no Hyper-V support in this kernel */

bool rustic_hvr_available(void) { return false; }
bool rustic_hvr_acpi_present(void)
{
	return IS_ENABLED(CONFIG_ACPI) && (acpi_dev_present("VMBUS", NULL, -1) ||
					   acpi_dev_present("VMBus", NULL, -1));
}
int rustic_hvr_start(void) { return -ENODEV; }
void rustic_hvr_stop(void) { }
void rustic_hvr_free(void) { }
void rustic_hvr_disable_this_cpu(void) { }
void *rustic_hvr_message_page(void) { return NULL; }
void *rustic_hvr_event_flags(u32 cpu) { return NULL; }
void rustic_hvr_eom(void) { }
void *rustic_hvr_message_page_of(u32 cpu) { return NULL; }
void rustic_hvr_eom_here(void) { }
int rustic_hvr_post_message(u32 connection_id, u32 message_type,
			    const u8 *payload, u32 len) { return -ENODEV; }
int rustic_hvr_signal_event(u32 connection_id) { return -ENODEV; }
u32 rustic_hvr_vp_index(u32 cpu) { return cpu; }
void rustic_hvr_cpu_channels(u32 cpu, int delta) { }

#endif
