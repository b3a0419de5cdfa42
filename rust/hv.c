// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's side of the hypervisor interrupt, shared by every backend:
 * the VMBus interrupt (from Hyper-V's vector, or the simulator's IPI) runs
 * rustic_hv_isr() in hard-IRQ context on the CPU that took it, which only
 * queues the message work on that CPU; the work (process context) reads
 * the SynIC message slot through Rust. The C driver uses a tasklet for
 * this step; a work item lets the Rust side take sleeping locks.
 *
 * Also small time helpers the Rust side needs on 6.12.
 */
#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/smp.h>
#include <linux/workqueue.h>
#include "bindings_helper.h"

struct rustic_hv_isr_state {
	struct work_struct work;
	void (*dpc)(const void *data);
	const void *data;
	atomic_t registered;
};

static struct rustic_hv_isr_state rustic_isr;

static void rustic_hv_work(struct work_struct *work)
{
	rustic_isr.dpc(rustic_isr.data);
}

void rustic_hv_isr_register(void (*dpc)(const void *data), const void *data)
{
	INIT_WORK(&rustic_isr.work, rustic_hv_work);
	rustic_isr.dpc = dpc;
	rustic_isr.data = data;
	atomic_set_release(&rustic_isr.registered, 1);
}

void rustic_hv_isr_unregister(void)
{
	atomic_set(&rustic_isr.registered, 0);
	/* The caller has stopped the interrupt source; drain the work. */
	cancel_work_sync(&rustic_isr.work);
}

void rustic_hv_isr(void)
{
	if (atomic_read_acquire(&rustic_isr.registered))
		queue_work_on(smp_processor_id(), system_highpri_wq,
			      &rustic_isr.work);
}

u32 rustic_this_cpu(void)
{
	return raw_smp_processor_id();
}

u64 rustic_now_ms(void)
{
	return jiffies64_to_msecs(get_jiffies_64());
}

void rustic_msleep(u32 ms)
{
	msleep(ms);
}

void *rustic_page_alloc(void)
{
	return (void *)get_zeroed_page(GFP_KERNEL);
}

void rustic_page_free(void *page)
{
	free_page((unsigned long)page);
}

u64 rustic_virt_to_phys(void *page)
{
	return virt_to_phys(page);
}
