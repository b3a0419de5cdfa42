// SPDX-License-Identifier: GPL-2.0
/*
 * Test builds only (RUSTIC_TEST_BUILD=1): the debugfs directory
 * /sys/kernel/debug/hv_rustic/ with a write-only control file whose
 * commands Rust parses and carries out, and read-only u64 counters.
 */
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/uaccess.h>
#include "bindings_helper.h"

/* Longest command accepted, newline included. */
#define RUSTIC_CTL_MAX 256

struct rustic_ctl {
	const void *data;
	int (*write)(const void *data, const u8 *buf, size_t len);
};

static struct dentry *rustic_debugfs_dir;
static struct rustic_ctl rustic_ctl;

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
					size_t len))
{
	struct dentry *file;

	rustic_debugfs_dir = debugfs_create_dir("hv_rustic", NULL);
	if (IS_ERR(rustic_debugfs_dir)) {
		int ret = PTR_ERR(rustic_debugfs_dir);

		rustic_debugfs_dir = NULL;
		return ret;
	}
	rustic_ctl.data = data;
	rustic_ctl.write = write;
	file = debugfs_create_file(name, 0200, rustic_debugfs_dir, &rustic_ctl,
				   &rustic_ctl_fops);
	if (IS_ERR(file)) {
		debugfs_remove_recursive(rustic_debugfs_dir);
		rustic_debugfs_dir = NULL;
		return PTR_ERR(file);
	}
	return 0;
}

void rustic_test_ctl_counter(const char *name, u64 *value)
{
	debugfs_create_u64(name, 0444, rustic_debugfs_dir, value);
}

void rustic_test_ctl_remove(void)
{
	/* Waits for writers in progress to leave. */
	debugfs_remove_recursive(rustic_debugfs_dir);
	rustic_debugfs_dir = NULL;
}
