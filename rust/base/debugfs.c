// SPDX-License-Identifier: GPL-2.0
/*
 * Test builds only (RUSTIC_TEST_BUILD=1): the debugfs directory
 * /sys/kernel/debug/hv_rustic/ with a write-only control file whose
 * commands Rust parses and carries out, and read-only u64 counters.
 */
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "../bindings_helper.h"

/* Longest command accepted, newline included. */
#define RUSTIC_CTL_MAX 256

struct rustic_ctl {
	const void *data;
	int (*write)(const void *data, const u8 *buf, size_t len);
	struct dentry *file;
};

/* The directory, and how many control files are in it. */
static struct dentry *rustic_debugfs_dir;
static unsigned int rustic_debugfs_users;
static DEFINE_MUTEX(rustic_debugfs_lock);

static ssize_t rustic_ctl_write(struct file *file, const char __user *ubuf,
				size_t len, loff_t *ppos)
{
	const struct rustic_ctl *ctl = file->private_data;
	char buf[RUSTIC_CTL_MAX];
	int ret;

	if (*ppos != 0 || len == 0 || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	ret = ctl->write(ctl->data, buf, len);
	if (ret)
		return ret;
	return len;
}

static const struct file_operations rustic_ctl_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = rustic_ctl_write,
};

int rustic_test_ctl_create(const char *name, const void *data,
			   int (*write)(const void *data, const u8 *buf,
					size_t len),
			   struct rustic_ctl **out)
{
	struct rustic_ctl *ctl;
	int ret = 0;

	ctl = kzalloc(sizeof(*ctl), GFP_KERNEL);
	if (!ctl)
		return -ENOMEM;
	ctl->data = data;
	ctl->write = write;
	mutex_lock(&rustic_debugfs_lock);
	if (!rustic_debugfs_dir) {
		struct dentry *dir = debugfs_create_dir("hv_rustic", NULL);

		if (IS_ERR(dir)) {
			ret = PTR_ERR(dir);
			goto out;
		}
		rustic_debugfs_dir = dir;
	}
	ctl->file = debugfs_create_file(name, 0200, rustic_debugfs_dir, ctl,
					&rustic_ctl_fops);
	if (IS_ERR(ctl->file)) {
		ret = PTR_ERR(ctl->file);
		if (!rustic_debugfs_users) {
			debugfs_remove_recursive(rustic_debugfs_dir);
			rustic_debugfs_dir = NULL;
		}
		goto out;
	}
	rustic_debugfs_users++;
	*out = ctl;
out:
	mutex_unlock(&rustic_debugfs_lock);
	if (ret)
		kfree(ctl);
	return ret;
}

void rustic_test_ctl_counter(const char *name, u64 *value)
{
	mutex_lock(&rustic_debugfs_lock);
	if (rustic_debugfs_dir)
		debugfs_create_u64(name, 0444, rustic_debugfs_dir, value);
	mutex_unlock(&rustic_debugfs_lock);
}

void rustic_test_ctl_remove(struct rustic_ctl *ctl)
{
	mutex_lock(&rustic_debugfs_lock);
	/* Waits for writers in progress to leave. */
	debugfs_remove(ctl->file);
	if (--rustic_debugfs_users == 0) {
		debugfs_remove_recursive(rustic_debugfs_dir);
		rustic_debugfs_dir = NULL;
	}
	mutex_unlock(&rustic_debugfs_lock);
	kfree(ctl);
}
