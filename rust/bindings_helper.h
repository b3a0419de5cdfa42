/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of hv_rustic.ko that Rust calls: declarations of the shims in
 * rust/shim.c and tests/kunit/suite.c. The module's Kbuild runs bindgen over
 * this header into rust/bindings_generated.rs (only `rustic_*` names pass).
 */
#ifndef RUSTIC_BINDINGS_HELPER_H
#define RUSTIC_BINDINGS_HELPER_H

#include <linux/types.h>

struct kunit;

/* Version string of this build, from the VERSION file. */
const char *rustic_version(void);

/* Marks the running KUnit case failed, with where and why. */
void rustic_kunit_fail(struct kunit *test, const char *file, int line,
		       const char *what);

/* --- the vmbus bus (rust/vmbus_bus.c) --- */

struct rustic_vmbus_device;
struct rustic_vmbus_driver;

/* What a driver does; C calls these with the device lock held. */
struct rustic_vmbus_driver_ops {
	/* Nonzero when the driver binds devices of this device's class. */
	int (*match)(struct rustic_vmbus_device *dev);
	int (*probe)(struct rustic_vmbus_device *dev);
	void (*remove)(struct rustic_vmbus_device *dev);
	/* The host took the device back; remove follows. */
	void (*rescind)(struct rustic_vmbus_device *dev);
};

/* Registers the bus_type "vmbus" and the devices' parent. */
int rustic_vmbus_bus_register(void);
void rustic_vmbus_bus_unregister(void);

/*
 * Adds a device named @name with the primary channel directory
 * channels/<@relid>. Ownership of the Rust @state reference always passes
 * to the device: it is released (rustic_vmbus_state_release) with the
 * device, also when this fails. On success *@out holds the device until
 * rustic_vmbus_device_remove().
 */
int rustic_vmbus_device_add(const void *state, const char *name, u32 relid,
			    struct rustic_vmbus_device **out);
/* Unregisters a device added by rustic_vmbus_device_add(). */
void rustic_vmbus_device_remove(struct rustic_vmbus_device *dev);
/* Calls the bound driver's rescind, if a driver is bound. */
void rustic_vmbus_device_rescind(struct rustic_vmbus_device *dev);
/* The state pointer the device was added with. */
const void *rustic_vmbus_device_state(const struct rustic_vmbus_device *dev);
void rustic_vmbus_device_set_drvdata(struct rustic_vmbus_device *dev,
				     void *data);
void *rustic_vmbus_device_drvdata(const struct rustic_vmbus_device *dev);

/*
 * Registers a driver on the bus; @name and @ops must outlive it. On success
 * *@out holds it until rustic_vmbus_driver_unregister().
 */
int rustic_vmbus_driver_register(const char *name,
				 const struct rustic_vmbus_driver_ops *ops,
				 struct rustic_vmbus_driver **out);
void rustic_vmbus_driver_unregister(struct rustic_vmbus_driver *drv);

bool rustic_cpu_possible(u32 cpu);
int rustic_cpu_to_node(u32 cpu);

/* --- test builds only: debugfs control (rust/test_ctl.c) --- */

/*
 * Creates the write-only file @name in /sys/kernel/debug/hv_rustic/ (made
 * with the first one); each write (one command, under 256 bytes) is passed
 * to @write with @data, and the write fails with @write's negative errno.
 */
struct rustic_ctl;
int rustic_test_ctl_create(const char *name, const void *data,
			   int (*write)(const void *data, const u8 *buf,
					size_t len),
			   struct rustic_ctl **out);
/* A read-only file @name in that directory showing *@value. */
void rustic_test_ctl_counter(const char *name, u64 *value);
/* Removes the file, waiting for writers in progress (and the directory
 * with its counters after the last file). */
void rustic_test_ctl_remove(struct rustic_ctl *ctl);

/* --- the hypervisor interrupt, all backends (rust/hv.c) --- */

/* Runs @dpc(@data, cpu) in a work item on the CPU of each rustic_hv_isr(). */
void rustic_hv_isr_register(void (*dpc)(const void *data, u32 cpu),
			    const void *data);
/* Call after the interrupt source stopped; waits for the work to finish. */
void rustic_hv_isr_unregister(void);
/* The VMBus interrupt handler: hard-IRQ context, queues the work. */
void rustic_hv_isr(void);
u32 rustic_this_cpu(void);
/* A monotonic clock in milliseconds (jiffies based). */
u64 rustic_now_ms(void);
void rustic_msleep(u32 ms);
/* A zeroed page, or NULL. */
void *rustic_page_alloc(void);
void rustic_page_free(void *page);
/* The guest physical address of a page from rustic_page_alloc(). */
u64 rustic_virt_to_phys(void *page);
/* A work item running @fn(@data); rustic_work_free() cancels it first. */
struct rustic_work;
struct rustic_work *rustic_work_new(void (*fn)(const void *data),
				    const void *data);
/* Queues on @cpu (any CPU if it is offline); no-op if already queued. */
void rustic_work_queue(struct rustic_work *w, u32 cpu);
void rustic_work_queue_delayed(struct rustic_work *w, u32 ms);
void rustic_work_free(struct rustic_work *w);
/* Zeroed, page-aligned memory of @size bytes (vmalloc), or NULL. */
void *rustic_buf_alloc(u64 size);
void rustic_buf_free(void *buf);
/* Gives up @buf for good (the host may still map it), telling kmemleak. */
void rustic_buf_leak(void *buf);
/* The page frame number of the page at @offset in a rustic_buf_alloc(). */
u64 rustic_buf_pfn(const void *buf, u64 offset);
u32 rustic_nr_cpu_ids(void);
/* A scheduling point for long loops in process context. */
void rustic_cond_resched(void);
bool rustic_cpu_online(u32 cpu);

/* --- the real Hyper-V backend (rust/hv_real.c; built, never run here) --- */

/* Hyper-V is up, and this guest is one the backend supports. */
bool rustic_hvr_available(void);
/* Binds the ACPI VMBus device; SynIC pages, SINT2 on every CPU (hotplug
 * state); the VMBus handler. */
int rustic_hvr_start(void);
/* Masks SINT2, removes the handler, waits out a running interrupt. */
void rustic_hvr_stop(void);
/* Frees the pages; after rustic_hvr_stop(). */
void rustic_hvr_free(void);
/* CPU 0's SynIC message page (4 KiB). */
void *rustic_hvr_message_page(void);
/* @cpu's SynIC event flags page (4 KiB), or NULL. */
void *rustic_hvr_event_flags(u32 cpu);
void rustic_hvr_eom(void);
int rustic_hvr_post_message(u32 connection_id, u32 message_type,
			    const u8 *payload, u32 len);
int rustic_hvr_signal_event(u32 connection_id);
u32 rustic_hvr_vp_index(u32 cpu);

/* --- test builds only: the simulated hypervisor (rust/sim_hv.c) --- */

bool rustic_sim_enabled(void);
const char *rustic_sim_versions(void);
const char *rustic_sim_devices(void);
/* Interrupts @cpu asynchronously (coalesced while one is queued there). */
int rustic_sim_raise(u32 cpu);
/* Maps @count guest pages by frame number into one range, or NULL. */
void *rustic_sim_map(const u64 *pfns, u32 count);
void rustic_sim_unmap(void *addr);
/* No simulated interrupt is queued or running. */
bool rustic_sim_irq_idle(void);

#endif
