// SPDX-License-Identifier: GPL-2.0
/*
 * Test builds only: the C pieces of the simulated hypervisor. Module
 * parameters that select and configure it, the page that stands for the
 * SynIC message page, and its interrupt: an asynchronous IPI
 * (smp_call_function_single_async) that runs rustic_hv_isr() in hard-IRQ
 * context on the target CPU, as Hyper-V's VMBus vector would. (irq_work
 * cannot be aimed at another CPU from a module: irq_work_queue_on is not
 * exported in 6.12.)
 */
#include <linux/atomic.h>
#include <linux/gfp.h>
#include <linux/moduleparam.h>
#include <linux/smp.h>
#include "bindings_helper.h"

static bool simulate;
module_param(simulate, bool, 0444);
MODULE_PARM_DESC(simulate, "test builds: connect to the simulated Hyper-V host (default 0)");

static char *sim_versions = "all";
module_param(sim_versions, charp, 0444);
MODULE_PARM_DESC(sim_versions,
		 "simulated host's VMBus versions: all, none, silent, or a list like 4.0,2.4");

static char *sim_devices = "default";
module_param(sim_devices, charp, 0444);
MODULE_PARM_DESC(sim_devices,
		 "simulated host's offers: default, none, or a list of net,scsi,kbd,heartbeat,test");

bool rustic_sim_enabled(void)
{
	return simulate;
}

const char *rustic_sim_versions(void)
{
	return sim_versions ? sim_versions : "";
}

const char *rustic_sim_devices(void)
{
	return sim_devices ? sim_devices : "";
}

static call_single_data_t rustic_sim_csd;
/* An interrupt is queued and has not started yet (coalesces raises). */
static atomic_t rustic_sim_pending;
/* Interrupts queued or running; the module's text must outlive them. */
static atomic_t rustic_sim_inflight;

static void rustic_sim_irq(void *info)
{
	/* A raise from now on queues a new IPI (the csd is already free). */
	atomic_set(&rustic_sim_pending, 0);
	smp_mb__after_atomic();
	rustic_hv_isr();
	atomic_dec_return_release(&rustic_sim_inflight);
}

int rustic_sim_raise(u32 cpu)
{
	int ret;

	if (cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -EINVAL;
	if (atomic_xchg(&rustic_sim_pending, 1))
		return 0;
	atomic_inc(&rustic_sim_inflight);
	INIT_CSD(&rustic_sim_csd, rustic_sim_irq, NULL);
	ret = smp_call_function_single_async(cpu, &rustic_sim_csd);
	if (ret) {
		atomic_set(&rustic_sim_pending, 0);
		atomic_dec(&rustic_sim_inflight);
	}
	return ret;
}

bool rustic_sim_irq_idle(void)
{
	return atomic_read_acquire(&rustic_sim_inflight) == 0;
}
