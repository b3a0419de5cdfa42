// SPDX-License-Identifier: GPL-2.0
/*
 * The `vmbus` bus_type of hv_rustic.ko: what Rust on 6.12 cannot declare.
 *
 * C holds the kernel objects (the bus_type, each device's struct device, its
 * channels/<relid> kobject, each driver's struct device_driver) and their
 * attribute tables. Every value shown, every match and every driver callback
 * is decided in Rust: attributes are dispatched by name through the bus ops
 * the Rust side registered the bus with (rust/vmbus/bus_type.rs), which
 * format from the device's Rust state (vmbus/device.rs; vmbus/core/src/bus.rs
 * holds the formats).
 *
 * Each device carries an opaque pointer to its Rust state; the reference it
 * stands for is dropped (ops->state_release) in the device's release
 * callback, so the state outlives every sysfs reader and uevent.
 */
#include <linux/device.h>
#include <linux/module.h>
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/topology.h>
#include <linux/cpumask.h>
#include "../bindings_helper.h"

/* The Rust side's device callbacks, set while the bus is registered. */
static const struct rustic_vmbus_bus_ops *rustic_bus_ops;

struct rustic_vmbus_device {
	struct device dev;
	/* The Rust state; one reference, dropped in release. */
	const void *state;
	/* channels/, which holds channels/<relid>/ of each channel. */
	struct kset *channels;
};

struct rustic_vmbus_driver {
	struct device_driver drv;
	const struct rustic_vmbus_driver_ops *ops;
};

/* A channel directory; holds a reference on its device. */
struct rustic_vmbus_chan {
	struct kobject kobj;
	struct rustic_vmbus_device *rdev;
	u32 relid;
};

#define to_rdev(d) container_of(d, struct rustic_vmbus_device, dev)
#define to_rdrv(d) container_of(d, struct rustic_vmbus_driver, drv)

static struct device *rustic_vmbus_root;

/* --- device attributes --- */

static ssize_t rustic_dev_attr_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	return rustic_bus_ops->dev_show(to_rdev(dev)->state, attr->attr.name, buf);
}

#define RUSTIC_DEV_ATTR(_name) \
	static struct device_attribute dev_attr_##_name = \
		__ATTR(_name, 0444, rustic_dev_attr_show, NULL)

RUSTIC_DEV_ATTR(id);
RUSTIC_DEV_ATTR(state);
RUSTIC_DEV_ATTR(monitor_id);
RUSTIC_DEV_ATTR(class_id);
RUSTIC_DEV_ATTR(device_id);
RUSTIC_DEV_ATTR(modalias);
#ifdef CONFIG_NUMA
RUSTIC_DEV_ATTR(numa_node);
#endif
RUSTIC_DEV_ATTR(server_monitor_pending);
RUSTIC_DEV_ATTR(client_monitor_pending);
RUSTIC_DEV_ATTR(server_monitor_latency);
RUSTIC_DEV_ATTR(client_monitor_latency);
RUSTIC_DEV_ATTR(server_monitor_conn_id);
RUSTIC_DEV_ATTR(client_monitor_conn_id);
RUSTIC_DEV_ATTR(out_intr_mask);
RUSTIC_DEV_ATTR(out_read_index);
RUSTIC_DEV_ATTR(out_write_index);
RUSTIC_DEV_ATTR(out_read_bytes_avail);
RUSTIC_DEV_ATTR(out_write_bytes_avail);
RUSTIC_DEV_ATTR(in_intr_mask);
RUSTIC_DEV_ATTR(in_read_index);
RUSTIC_DEV_ATTR(in_write_index);
RUSTIC_DEV_ATTR(in_read_bytes_avail);
RUSTIC_DEV_ATTR(in_write_bytes_avail);
RUSTIC_DEV_ATTR(channel_vp_mapping);
RUSTIC_DEV_ATTR(vendor);
RUSTIC_DEV_ATTR(device);

static struct attribute *rustic_vmbus_dev_attrs[] = {
	&dev_attr_id.attr,
	&dev_attr_state.attr,
	&dev_attr_monitor_id.attr,
	&dev_attr_class_id.attr,
	&dev_attr_device_id.attr,
	&dev_attr_modalias.attr,
#ifdef CONFIG_NUMA
	&dev_attr_numa_node.attr,
#endif
	&dev_attr_server_monitor_pending.attr,
	&dev_attr_client_monitor_pending.attr,
	&dev_attr_server_monitor_latency.attr,
	&dev_attr_client_monitor_latency.attr,
	&dev_attr_server_monitor_conn_id.attr,
	&dev_attr_client_monitor_conn_id.attr,
	&dev_attr_out_intr_mask.attr,
	&dev_attr_out_read_index.attr,
	&dev_attr_out_write_index.attr,
	&dev_attr_out_read_bytes_avail.attr,
	&dev_attr_out_write_bytes_avail.attr,
	&dev_attr_in_intr_mask.attr,
	&dev_attr_in_read_index.attr,
	&dev_attr_in_write_index.attr,
	&dev_attr_in_read_bytes_avail.attr,
	&dev_attr_in_write_bytes_avail.attr,
	&dev_attr_channel_vp_mapping.attr,
	&dev_attr_vendor.attr,
	&dev_attr_device.attr,
	NULL,
};

static umode_t rustic_vmbus_dev_visible(struct kobject *kobj,
					struct attribute *attr, int idx)
{
	struct device *dev = kobj_to_dev(kobj);

	return rustic_bus_ops->attr_visible(to_rdev(dev)->state, attr->name, false,
					    0) ? attr->mode : 0;
}

static const struct attribute_group rustic_vmbus_dev_group = {
	.attrs = rustic_vmbus_dev_attrs,
	.is_visible = rustic_vmbus_dev_visible,
};
__ATTRIBUTE_GROUPS(rustic_vmbus_dev);

/* --- channel directories --- */

#define to_rchan(k) container_of(k, struct rustic_vmbus_chan, kobj)

static ssize_t rustic_chan_show(struct kobject *kobj, struct attribute *attr,
				char *buf)
{
	struct rustic_vmbus_chan *chan = to_rchan(kobj);

	return rustic_bus_ops->chan_show(chan->rdev->state, chan->relid,
					 attr->name, buf);
}

static ssize_t rustic_chan_store(struct kobject *kobj, struct attribute *attr,
				 const char *buf, size_t count)
{
	struct rustic_vmbus_chan *chan = to_rchan(kobj);

	return rustic_bus_ops->chan_store(chan->rdev->state, chan->relid,
					  attr->name, buf, count);
}

static const struct sysfs_ops rustic_chan_sysfs_ops = {
	.show = rustic_chan_show,
	.store = rustic_chan_store,
};

#define RUSTIC_CHAN_ATTR(_name, _mode) \
	static struct attribute chan_attr_##_name = { \
		.name = __stringify(_name), .mode = _mode }

RUSTIC_CHAN_ATTR(out_mask, 0444);
RUSTIC_CHAN_ATTR(in_mask, 0444);
RUSTIC_CHAN_ATTR(read_avail, 0444);
RUSTIC_CHAN_ATTR(write_avail, 0444);
RUSTIC_CHAN_ATTR(cpu, 0644);
RUSTIC_CHAN_ATTR(pending, 0444);
RUSTIC_CHAN_ATTR(latency, 0444);
RUSTIC_CHAN_ATTR(interrupts, 0444);
RUSTIC_CHAN_ATTR(events, 0444);
RUSTIC_CHAN_ATTR(intr_in_full, 0444);
RUSTIC_CHAN_ATTR(intr_out_empty, 0444);
RUSTIC_CHAN_ATTR(out_full_first, 0444);
RUSTIC_CHAN_ATTR(out_full_total, 0444);
RUSTIC_CHAN_ATTR(monitor_id, 0444);
RUSTIC_CHAN_ATTR(subchannel_id, 0444);

static struct attribute *rustic_chan_attrs[] = {
	&chan_attr_out_mask,
	&chan_attr_in_mask,
	&chan_attr_read_avail,
	&chan_attr_write_avail,
	&chan_attr_cpu,
	&chan_attr_pending,
	&chan_attr_latency,
	&chan_attr_interrupts,
	&chan_attr_events,
	&chan_attr_intr_in_full,
	&chan_attr_intr_out_empty,
	&chan_attr_out_full_first,
	&chan_attr_out_full_total,
	&chan_attr_monitor_id,
	&chan_attr_subchannel_id,
	NULL,
};

static umode_t rustic_chan_visible(struct kobject *kobj,
				   struct attribute *attr, int idx)
{
	struct rustic_vmbus_chan *chan = to_rchan(kobj);

	return rustic_bus_ops->attr_visible(chan->rdev->state, attr->name, true,
					    chan->relid) ? attr->mode : 0;
}

static const struct attribute_group rustic_chan_group = {
	.attrs = rustic_chan_attrs,
	.is_visible = rustic_chan_visible,
};
__ATTRIBUTE_GROUPS(rustic_chan);

static void rustic_chan_release(struct kobject *kobj)
{
	struct rustic_vmbus_chan *chan = to_rchan(kobj);

	put_device(&chan->rdev->dev);
	kfree(chan);
}

static const struct kobj_type rustic_chan_ktype = {
	.sysfs_ops = &rustic_chan_sysfs_ops,
	.release = rustic_chan_release,
	.default_groups = rustic_chan_groups,
};

/* --- the bus --- */

static int rustic_vmbus_match(struct device *dev,
			      const struct device_driver *drv)
{
	const struct rustic_vmbus_driver *rdrv = to_rdrv(drv);
	int ret = device_match_driver_override(dev, drv);

	/* An override names the one driver the device may bind. */
	if (ret >= 0)
		return ret;
	return rdrv->ops->match(to_rdev(dev));
}

static int rustic_vmbus_probe(struct device *dev)
{
	const struct rustic_vmbus_driver *rdrv = to_rdrv(dev->driver);

	return rdrv->ops->probe(to_rdev(dev));
}

static void rustic_vmbus_remove(struct device *dev)
{
	const struct rustic_vmbus_driver *rdrv = to_rdrv(dev->driver);

	rdrv->ops->remove(to_rdev(dev));
}

static int rustic_vmbus_uevent(const struct device *dev,
			       struct kobj_uevent_env *env)
{
	char alias[64];
	int ret;

	ret = rustic_bus_ops->modalias(to_rdev(dev)->state, alias, sizeof(alias));
	if (ret)
		return ret;
	return add_uevent_var(env, "MODALIAS=%s", alias);
}

/*
 * /sys/bus/vmbus/hibernation, as the C driver has it. RustIC does not save
 * and restore channels across hibernation, so it says 0.
 */
static ssize_t hibernation_show(const struct bus_type *bus, char *buf)
{
	return sysfs_emit(buf, "0\n");
}
static BUS_ATTR_RO(hibernation);

static struct attribute *rustic_vmbus_bus_attrs[] = {
	&bus_attr_hibernation.attr,
	NULL,
};
ATTRIBUTE_GROUPS(rustic_vmbus_bus);

static const struct bus_type rustic_vmbus_bus = {
	.name = "vmbus",
	.driver_override = true,
	.match = rustic_vmbus_match,
	.probe = rustic_vmbus_probe,
	.remove = rustic_vmbus_remove,
	.uevent = rustic_vmbus_uevent,
	.dev_groups = rustic_vmbus_dev_groups,
	.bus_groups = rustic_vmbus_bus_groups,
};

int rustic_vmbus_bus_register(const struct rustic_vmbus_bus_ops *ops)
{
	int ret;

	rustic_bus_ops = ops;
	ret = bus_register(&rustic_vmbus_bus);
	if (ret)
		return ret;
	/*
	 * The parent of every device. On Hyper-V the C driver uses the ACPI
	 * VMBus device; the backends that find it will pass it here later.
	 */
	rustic_vmbus_root = root_device_register("rustic_vmbus");
	if (IS_ERR(rustic_vmbus_root)) {
		ret = PTR_ERR(rustic_vmbus_root);
		rustic_vmbus_root = NULL;
		bus_unregister(&rustic_vmbus_bus);
		return ret;
	}
	return 0;
}

void rustic_vmbus_bus_unregister(void)
{
	root_device_unregister(rustic_vmbus_root);
	rustic_vmbus_root = NULL;
	bus_unregister(&rustic_vmbus_bus);
}

/* --- devices --- */

static void rustic_vmbus_device_release(struct device *dev)
{
	struct rustic_vmbus_device *rdev = to_rdev(dev);

	rustic_bus_ops->state_release(rdev->state);
	kfree(rdev);
}

/*
 * channels/<relid>: its one reference is the kset's membership, dropped
 * when it is taken out of the kset (rustic_vmbus_del_channel).
 */
int rustic_vmbus_device_add_channel(struct rustic_vmbus_device *rdev, u32 relid)
{
	struct rustic_vmbus_chan *chan;
	int ret;

	chan = kzalloc(sizeof(*chan), GFP_KERNEL);
	if (!chan)
		return -ENOMEM;
	get_device(&rdev->dev);
	chan->rdev = rdev;
	chan->relid = relid;
	chan->kobj.kset = rdev->channels;
	ret = kobject_init_and_add(&chan->kobj, &rustic_chan_ktype, NULL, "%u",
				   relid);
	if (ret) {
		/* Releases chan and its device reference. */
		kobject_put(&chan->kobj);
		return ret;
	}
	kobject_uevent(&chan->kobj, KOBJ_ADD);
	return 0;
}

/* Takes a channel directory found with a reference out and drops both. */
static void rustic_vmbus_del_channel(struct kobject *kobj)
{
	kobject_del(kobj);
	kobject_put(kobj);
	kobject_put(kobj);
}

void rustic_vmbus_device_remove_channel(struct rustic_vmbus_device *rdev,
					u32 relid)
{
	struct kobject *kobj;
	char name[12];

	snprintf(name, sizeof(name), "%u", relid);
	kobj = kset_find_obj(rdev->channels, name);
	if (kobj)
		rustic_vmbus_del_channel(kobj);
}

/* Every channel directory, then channels/ itself. */
static void rustic_vmbus_remove_channels(struct rustic_vmbus_device *rdev)
{
	struct kset *kset = rdev->channels;
	struct kobject *kobj;

	for (;;) {
		spin_lock(&kset->list_lock);
		kobj = list_first_entry_or_null(&kset->list, struct kobject,
						entry);
		if (kobj)
			kobject_get(kobj);
		spin_unlock(&kset->list_lock);
		if (!kobj)
			break;
		rustic_vmbus_del_channel(kobj);
	}
	kset_unregister(kset);
}

int rustic_vmbus_device_add(const void *state, const char *name, u32 relid,
			    struct rustic_vmbus_device **out)
{
	struct rustic_vmbus_device *rdev;
	int ret;

	*out = NULL;
	rdev = kzalloc(sizeof(*rdev), GFP_KERNEL);
	if (!rdev) {
		rustic_bus_ops->state_release(state);
		return -ENOMEM;
	}
	rdev->state = state;
	device_initialize(&rdev->dev);
	/* From here on, the release callback frees rdev and the state. */
	rdev->dev.bus = &rustic_vmbus_bus;
	rdev->dev.parent = rustic_vmbus_root;
	rdev->dev.release = rustic_vmbus_device_release;
	ret = dev_set_name(&rdev->dev, "%s", name);
	if (ret)
		goto put;
	/* Binds a matching driver before it returns. */
	ret = device_add(&rdev->dev);
	if (ret)
		goto put;

	rdev->channels = kset_create_and_add("channels", NULL, &rdev->dev.kobj);
	if (!rdev->channels) {
		ret = -ENOMEM;
		goto del;
	}
	ret = rustic_vmbus_device_add_channel(rdev, relid);
	if (ret)
		goto unregister_kset;
	*out = rdev;
	return 0;

unregister_kset:
	kset_unregister(rdev->channels);
del:
	device_del(&rdev->dev);
put:
	put_device(&rdev->dev);
	return ret;
}

void rustic_vmbus_device_remove(struct rustic_vmbus_device *rdev)
{
	rustic_vmbus_remove_channels(rdev);
	/* Unbinds the driver (its remove callback runs) and drops our reference. */
	device_unregister(&rdev->dev);
}

void rustic_vmbus_device_rescind(struct rustic_vmbus_device *rdev)
{
	const struct rustic_vmbus_driver *rdrv;

	device_lock(&rdev->dev);
	if (rdev->dev.driver) {
		rdrv = to_rdrv(rdev->dev.driver);
		rdrv->ops->rescind(rdev);
	}
	device_unlock(&rdev->dev);
}

const void *rustic_vmbus_device_state(const struct rustic_vmbus_device *rdev)
{
	return rdev->state;
}

void rustic_vmbus_device_set_drvdata(struct rustic_vmbus_device *rdev,
				     void *data)
{
	dev_set_drvdata(&rdev->dev, data);
}

void *rustic_vmbus_device_drvdata(const struct rustic_vmbus_device *rdev)
{
	return dev_get_drvdata(&rdev->dev);
}

struct device *rustic_vmbus_device_dev(struct rustic_vmbus_device *rdev)
{
	return &rdev->dev;
}

/* --- drivers --- */

int rustic_vmbus_driver_register(const char *name,
				 const struct rustic_vmbus_driver_ops *ops,
				 struct rustic_vmbus_driver **out)
{
	struct rustic_vmbus_driver *rdrv;
	int ret;

	*out = NULL;
	rdrv = kzalloc(sizeof(*rdrv), GFP_KERNEL);
	if (!rdrv)
		return -ENOMEM;
	rdrv->ops = ops;
	rdrv->drv.name = name;
	rdrv->drv.bus = &rustic_vmbus_bus;
	rdrv->drv.owner = THIS_MODULE;
	/* Binds every present matching device before it returns. */
	ret = driver_register(&rdrv->drv);
	if (ret) {
		kfree(rdrv);
		return ret;
	}
	*out = rdrv;
	return 0;
}

void rustic_vmbus_driver_unregister(struct rustic_vmbus_driver *rdrv)
{
	/* Unbinds every bound device first. */
	driver_unregister(&rdrv->drv);
	kfree(rdrv);
}

/* --- CPUs --- */

bool rustic_cpu_possible(u32 cpu)
{
	return cpu < nr_cpu_ids && cpu_possible(cpu);
}

int rustic_cpu_to_node(u32 cpu)
{
	return cpu_to_node(cpu);
}
