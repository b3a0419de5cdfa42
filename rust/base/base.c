// SPDX-License-Identifier: GPL-2.0
/*
 * The general kernel services behind rust/base/: work items, page-aligned
 * shared buffers and pages, CPUs, softirq control, time.
 */
#include <linux/atomic.h>
#include <linux/cpu.h>
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

void rustic_cpus_read_lock(void)
{
	cpus_read_lock();
}

void rustic_cpus_read_unlock(void)
{
	cpus_read_unlock();
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
