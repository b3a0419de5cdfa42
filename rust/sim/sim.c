// SPDX-License-Identifier: GPL-2.0
/*
 * Test builds only: the C pieces of the simulated hypervisor. Module
 * parameters that select and configure it, the page that stands for the
 * SynIC message page, and its interrupt: an asynchronous IPI
 * (smp_call_function_single_async) that runs rustic_hv_isr() in hard-IRQ
 * context on the target CPU, as Hyper-V's VMBus vector would; and the
 * host's mapping of guest pages named by a GPADL. (irq_work
 * cannot be aimed at another CPU from a module: irq_work_queue_on is not
 * exported in 6.12.)
 */
#include <linux/atomic.h>
#include <linux/gfp.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/highmem.h>
#include <linux/vmalloc.h>
#include "../bindings_helper.h"

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

static unsigned int sim_post_busy;
module_param(sim_post_busy, uint, 0444);
MODULE_PARM_DESC(sim_post_busy,
		 "simulated hypervisor: refuse the first N HvPostMessage calls as a full port would (default 0)");

static bool sim_stale_message;
module_param(sim_stale_message, bool, 0444);
MODULE_PARM_DESC(sim_stale_message,
		 "simulated hypervisor: a timer message waits in the SINT2 slot, its interrupt lost, when the guest starts (default 0)");

bool rustic_sim_stale_message(void)
{
	return sim_stale_message;
}

static unsigned int sim_channel_timeout_ms;
module_param(sim_channel_timeout_ms, uint, 0444);
MODULE_PARM_DESC(sim_channel_timeout_ms,
		 "test builds: the guest's deadline for channel requests (GPADL, open), for scenarios that wait one out (default 0: the module's own)");

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

unsigned int rustic_sim_channel_timeout_ms(void)
{
	return sim_channel_timeout_ms;
}

unsigned int rustic_sim_post_busy(void)
{
	return sim_post_busy;
}

/*
 * Per CPU: the IPI's csd and whether an interrupt is queued there and has
 * not started yet (coalesces raises, as a pending vector does).
 */
struct rustic_sim_irq {
	call_single_data_t csd;
	atomic_t pending;
};

static DEFINE_PER_CPU(struct rustic_sim_irq, rustic_sim_irqs);
/* Interrupts queued or running; the module's text must outlive them. */
static atomic_t rustic_sim_inflight;

static void rustic_sim_irq(void *info)
{
	struct rustic_sim_irq *irq = info;

	/* A raise from now on queues a new IPI (the csd is already free). */
	atomic_set(&irq->pending, 0);
	smp_mb__after_atomic();
	rustic_hv_isr();
	atomic_dec_return_release(&rustic_sim_inflight);
}

int rustic_sim_raise(u32 cpu)
{
	struct rustic_sim_irq *irq;
	int ret;

	if (cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -EINVAL;
	irq = per_cpu_ptr(&rustic_sim_irqs, cpu);
	if (atomic_xchg(&irq->pending, 1))
		return 0;
	atomic_inc(&rustic_sim_inflight);
	INIT_CSD(&irq->csd, rustic_sim_irq, irq);
	ret = smp_call_function_single_async(cpu, &irq->csd);
	if (ret) {
		atomic_set(&irq->pending, 0);
		atomic_dec(&rustic_sim_inflight);
	}
	return ret;
}

bool rustic_sim_irq_idle(void)
{
	return atomic_read_acquire(&rustic_sim_inflight) == 0;
}

/*
 * The host's view of a GPADL: the guest's pages, found by frame number as
 * Hyper-V finds them, mapped into one virtual range.
 */
/*
 * Maps guest pages for the host. Each page gets a reference of the host's
 * own, as a hypervisor pins what a GPADL names: a guest that frees a page
 * the host still maps does not hand it back to the allocator, and the
 * unmap sees it (rustic_sim_unmap).
 */
void *rustic_sim_map(const u64 *pfns, u32 count)
{
	struct page **pages;
	void *addr;
	u32 i;

	if (!count || count > (1U << 18))
		return NULL;
	pages = kvmalloc_array(count, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return NULL;
	for (i = 0; i < count; i++) {
		if (!pfn_valid(pfns[i])) {
			kvfree(pages);
			return NULL;
		}
		pages[i] = pfn_to_page(pfns[i]);
	}
	addr = vmap(pages, count, VM_MAP, PAGE_KERNEL);
	if (addr)
		for (i = 0; i < count; i++)
			get_page(pages[i]);
	kvfree(pages);
	return addr;
}

/*
 * Unmaps count pages from rustic_sim_map() and drops the host's references;
 * returns how many pages the guest had freed while they were mapped (the
 * host's reference was the last), which a guest must never do.
 */
u32 rustic_sim_unmap(void *addr, u32 count)
{
	struct page **pages;
	u32 i, freed = 0;

	pages = kvmalloc_array(count, sizeof(*pages), GFP_KERNEL);
	for (i = 0; pages && i < count; i++)
		pages[i] = vmalloc_to_page((u8 *)addr + (size_t)i * PAGE_SIZE);
	vunmap(addr);
	if (!pages) {
		/* Cannot find them again: keep them rather than guess. */
		pr_err("hv_rustic: sim: out of memory; %u mapped pages kept\n", count);
		return 0;
	}
	for (i = 0; i < count; i++) {
		if (!pages[i])
			continue;
		if (page_ref_count(pages[i]) == 1)
			freed++;
		put_page(pages[i]);
	}
	kvfree(pages);
	return freed;
}

/*
 * Copies len bytes at offset of the guest pages pfns (in order) into dst,
 * a page at a time through the direct map: what the host does with a
 * GPA-direct packet's pages, without a vmap per packet.
 */
int rustic_sim_read_pages(const u64 *pfns, u32 count, u64 offset, void *dst, u32 len)
{
	while (len) {
		u64 index = offset >> PAGE_SHIFT;
		u32 in_page = offset & ~PAGE_MASK;
		u32 n = min_t(u32, len, PAGE_SIZE - in_page);

		if (index >= count || !pfn_valid(pfns[index]))
			return -EINVAL;
		memcpy_from_page(dst, pfn_to_page(pfns[index]), in_page, n);
		dst += n;
		offset += n;
		len -= n;
	}
	return 0;
}
