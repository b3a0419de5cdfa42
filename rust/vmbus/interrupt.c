// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's side of the hypervisor interrupt, shared by every backend:
 * the VMBus interrupt (from Hyper-V's vector, or the simulator's IPI) runs
 * rustic_hv_isr() in hard-IRQ context on the CPU that took it, which only
 * queues that CPU's softirq work; that reads the CPU's event flags through
 * Rust and hands what may sleep (the SynIC message slot, handlers that are
 * not softirq-safe) to a process-context work item.
 */
#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/kmemleak.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include "../bindings_helper.h"

/*
 * Two work items per CPU. An interrupt on CPU n queues n's softirq item,
 * which runs events(data, n) in softirq context there, as the C driver's
 * tasklet does: channels whose handlers only schedule softirq work (NAPI)
 * are served at once, with no switch to a worker thread. When it returns
 * true (the SynIC message slot is on this CPU, or some channel's handler
 * may sleep), it queues the CPU's process-context item, which runs
 * task(data, n).
 */
struct rustic_hv_isr_work {
	struct work_struct softirq;
	struct work_struct task;
	u32 cpu;
};

static DEFINE_PER_CPU(struct rustic_hv_isr_work, rustic_isr_work);
static bool (*rustic_isr_events)(const void *data, u32 cpu);
static void (*rustic_isr_task)(const void *data, u32 cpu);
static const void *rustic_isr_data;
static atomic_t rustic_isr_registered;

static void rustic_hv_softirq_work(struct work_struct *work)
{
	struct rustic_hv_isr_work *w =
		container_of(work, struct rustic_hv_isr_work, softirq);

	if (rustic_isr_events(rustic_isr_data, w->cpu))
		queue_work_on(w->cpu, system_highpri_wq, &w->task);
}

static void rustic_hv_task_work(struct work_struct *work)
{
	struct rustic_hv_isr_work *w =
		container_of(work, struct rustic_hv_isr_work, task);

	rustic_isr_task(rustic_isr_data, w->cpu);
}

void rustic_hv_isr_register(bool (*events)(const void *data, u32 cpu),
			    void (*task)(const void *data, u32 cpu),
			    const void *data)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct rustic_hv_isr_work *w = per_cpu_ptr(&rustic_isr_work, cpu);

		INIT_WORK(&w->softirq, rustic_hv_softirq_work);
		INIT_WORK(&w->task, rustic_hv_task_work);
		w->cpu = cpu;
	}
	rustic_isr_events = events;
	rustic_isr_task = task;
	rustic_isr_data = data;
	atomic_set_release(&rustic_isr_registered, 1);
}

void rustic_hv_isr_unregister(void)
{
	unsigned int cpu;

	atomic_set(&rustic_isr_registered, 0);
	/*
	 * The caller has stopped the interrupt source; drain the work, the
	 * softirq item first (it queues the other).
	 */
	for_each_possible_cpu(cpu) {
		struct rustic_hv_isr_work *w = per_cpu_ptr(&rustic_isr_work, cpu);

		cancel_work_sync(&w->softirq);
		cancel_work_sync(&w->task);
	}
}

void rustic_hv_isr_poll(u32 cpu)
{
	if (cpu < nr_cpu_ids && cpu_online(cpu) &&
	    atomic_read_acquire(&rustic_isr_registered))
		queue_work_on(cpu, system_bh_highpri_wq,
			      &per_cpu_ptr(&rustic_isr_work, cpu)->softirq);
}

void rustic_hv_isr(void)
{
	if (atomic_read_acquire(&rustic_isr_registered))
		queue_work_on(smp_processor_id(), system_bh_highpri_wq,
			      &this_cpu_ptr(&rustic_isr_work)->softirq);
}
