// SPDX-License-Identifier: GPL-2.0
/*
 * The crash-path unload's hooks into the kernel, as drivers/hv/vmbus_drv.c
 * registers them: a panic notifier (any backend), and, on Hyper-V, the
 * kexec and crash handlers of arch/x86's Hyper-V code
 * (hv_setup_kexec_handler(), hv_setup_crash_handler(): one pointer each,
 * which the kernel calls from machine_shutdown() on kexec and from
 * machine_crash_shutdown() before kdump). All three run one callback, the
 * connection's crash-path unload, which must work with interrupts off.
 *
 * Ownership of the Hyper-V hooks: each is a single pointer, overwritten by
 * whoever sets it last, and the kernel offers no way to read it. The only
 * other user in Linux is hv_vmbus, which cannot run beside this module:
 * whichever of the two comes second fails to register the bus "vmbus"
 * before it touches the SynIC or the hooks. So the hooks are set only with
 * the Hyper-V backend (a test build's simulator leaves them alone: it is
 * not the hypervisor the kernel's Hyper-V code knows), and cleared only by
 * the registration that set them.
 */
#include <linux/delay.h>
#include <linux/irqflags.h>
#include <linux/notifier.h>
#include <linux/panic_notifier.h>
#include "../bindings_helper.h"

#if IS_ENABLED(CONFIG_HYPERV) && defined(CONFIG_X86_64)
#include <asm/mshyperv.h>
#define RUSTIC_HAVE_HV_HOOKS 1
#endif

static void (*rustic_crash_fn)(void);
static bool rustic_crash_hv_hooks;

static int rustic_crash_panic(struct notifier_block *nb, unsigned long val,
			      void *args)
{
	void (*fn)(void) = READ_ONCE(rustic_crash_fn);

	if (fn)
		fn();
	return NOTIFY_DONE;
}

/*
 * Nearly last, as the C driver's: other panic notifiers (a Hyper-V
 * framebuffer's) may still need the connection.
 */
static struct notifier_block rustic_crash_panic_block = {
	.notifier_call = rustic_crash_panic,
	.priority = INT_MIN + 1,
};

#ifdef RUSTIC_HAVE_HV_HOOKS
/*
 * kexec: process context, other CPUs still up. After the unload the SynIC
 * goes on every CPU (message and event pages unmapped, SINT2 masked), as
 * the C driver's hv_kexec_handler() does, so the next kernel finds it off.
 */
static void rustic_crash_kexec(void)
{
	void (*fn)(void) = READ_ONCE(rustic_crash_fn);

	if (fn)
		fn();
	rustic_hvr_stop();
}

/*
 * kdump: interrupts off, other CPUs about to be stopped. Only this CPU's
 * SynIC can be turned off from here (hv_crash_handler() does the same).
 */
static void rustic_crash_crash(struct pt_regs *regs)
{
	void (*fn)(void) = READ_ONCE(rustic_crash_fn);

	if (fn)
		fn();
	rustic_hvr_disable_this_cpu();
}
#endif

void rustic_crash_register(void (*fn)(void), bool hyperv_hooks)
{
	WRITE_ONCE(rustic_crash_fn, fn);
	atomic_notifier_chain_register(&panic_notifier_list,
				       &rustic_crash_panic_block);
#ifdef RUSTIC_HAVE_HV_HOOKS
	if (hyperv_hooks) {
		hv_setup_kexec_handler(rustic_crash_kexec);
		hv_setup_crash_handler(rustic_crash_crash);
		rustic_crash_hv_hooks = true;
	}
#endif
}

void rustic_crash_unregister(void)
{
#ifdef RUSTIC_HAVE_HV_HOOKS
	if (rustic_crash_hv_hooks) {
		hv_remove_kexec_handler();
		hv_remove_crash_handler();
		rustic_crash_hv_hooks = false;
	}
#endif
	atomic_notifier_chain_unregister(&panic_notifier_list,
					 &rustic_crash_panic_block);
	/* A notifier call in progress has finished (the chain's RCU). */
	WRITE_ONCE(rustic_crash_fn, NULL);
}

void rustic_mdelay(u32 ms)
{
	mdelay(ms);
}

unsigned long rustic_local_irq_save(void)
{
	unsigned long flags;

	local_irq_save(flags);
	return flags;
}

void rustic_local_irq_restore(unsigned long flags)
{
	local_irq_restore(flags);
}
