// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's side of the hypervisor interrupt, shared by every backend:
 * the VMBus interrupt (from Hyper-V's vector, or the simulator's IPI) runs
 * rustic_hv_isr() in hard-IRQ context on the CPU that took it, which only
 * queues that CPU's softirq work; that reads the CPU's event flags through
 * Rust and hands what may sleep (the SynIC message slot, handlers that are
 * not softirq-safe) to a process-context work item.
 *
 * Also small time helpers the Rust side needs on 6.12.
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
#include "bindings_helper.h"

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

void rustic_hv_isr(void)
{
	if (atomic_read_acquire(&rustic_isr_registered))
		queue_work_on(smp_processor_id(), system_bh_highpri_wq,
			      &this_cpu_ptr(&rustic_isr_work)->softirq);
}

/*
 * Work items that run Rust callbacks: plain, on a chosen CPU, or delayed.
 * The Rust owner cancels (synchronously) before freeing.
 */
struct rustic_work {
	struct delayed_work dwork;
	void (*fn)(const void *data);
	const void *data;
};

static void rustic_work_fn(struct work_struct *work)
{
	struct rustic_work *w =
		container_of(to_delayed_work(work), struct rustic_work, dwork);

	w->fn(w->data);
}

struct rustic_work *rustic_work_new(void (*fn)(const void *data),
				    const void *data)
{
	struct rustic_work *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	INIT_DELAYED_WORK(&w->dwork, rustic_work_fn);
	w->fn = fn;
	w->data = data;
	return w;
}

struct rustic_work *rustic_work_new_in_class(void (*fn)(const void *data),
					     const void *data, void *key,
					     const char *name)
{
	struct rustic_work *w = rustic_work_new(fn, data);

#ifdef CONFIG_LOCKDEP
	if (w)
		lockdep_init_map(&w->dwork.work.lockdep_map, name, key, 0);
#endif
	return w;
}

/*
 * Work for "any CPU" goes to the unbound workqueue: it is not concurrency
 * managed per CPU, so a long-running item (the simulated host serving a
 * busy channel) cannot hold up the per-CPU interrupt work or the device
 * changes queued behind it on the same CPU.
 */
void rustic_work_queue(struct rustic_work *w, u32 cpu)
{
	if (cpu < nr_cpu_ids && cpu_online(cpu))
		queue_delayed_work_on(cpu, system_highpri_wq, &w->dwork, 0);
	else
		queue_delayed_work(system_unbound_wq, &w->dwork, 0);
}

void rustic_work_queue_delayed(struct rustic_work *w, u32 ms)
{
	queue_delayed_work(system_unbound_wq, &w->dwork, msecs_to_jiffies(ms));
}

void rustic_work_free(struct rustic_work *w)
{
	cancel_delayed_work_sync(&w->dwork);
	kfree(w);
}

/* Buffers shared with the host: zeroed, page-aligned, any size. */
void *rustic_buf_alloc(u64 size)
{
	if (!size || size > (1ULL << 30))
		return NULL;
	return vzalloc(size);
}

void rustic_buf_free(void *buf)
{
	vfree(buf);
}

void rustic_buf_leak(void *buf)
{
	/* Kept on purpose: the host may still map it. Not a leak to report. */
	kmemleak_not_leak(buf);
}

u64 rustic_buf_pfn(const void *buf, u64 offset)
{
	return vmalloc_to_pfn((const u8 *)buf + offset);
}

void rustic_cond_resched(void)
{
	cond_resched();
}

u32 rustic_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

void rustic_local_bh_disable(void)
{
	local_bh_disable();
}

void rustic_local_bh_enable(void)
{
	local_bh_enable();
}

bool rustic_in_task(void)
{
	return in_task();
}

bool rustic_cpu_online(u32 cpu)
{
	return cpu < nr_cpu_ids && cpu_online(cpu);
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
