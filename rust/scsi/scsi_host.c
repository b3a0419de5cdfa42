// SPDX-License-Identifier: GPL-2.0
/*
 * SCSI hosts for hv_rustic.ko drivers: what Rust on 6.12 cannot declare (it
 * has no SCSI abstractions).
 *
 * C owns the kernel objects: the Scsi_Host and its one host template. What
 * the host does with a command is the driver's rustic_scsi_ops (rust/scsi/
 * scsi_host.rs implements them over a Rust trait), called with the driver's
 * opaque owner pointer, which the host's private data holds. A command is
 * known to Rust by its block-layer tag and as an opaque scsi_cmnd pointer
 * that it hands back to rustic_scsi_cmd_done() exactly once.
 *
 * Hyper-V takes a command's data as one GPA range: every page but the first
 * starts at offset 0 and every page but the last is whole. virt_boundary_mask
 * makes the block layer build only such scatterlists, so no bounce copy is
 * needed; rustic_scsi_cmd_pages() still checks each one.
 */
#include <linux/blkdev.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/async.h>
#include <scsi/scsi.h>
#include <scsi/scsi_cmnd.h>
#include <scsi/scsi_device.h>
#include <scsi/scsi_devinfo.h>
#include <scsi/scsi_eh.h>
#include <scsi/scsi_host.h>
#include "../bindings_helper.h"

static_assert(RUSTIC_SCSI_SENSE_MAX == SCSI_SENSE_BUFFERSIZE);
static_assert(RUSTIC_SCSI_MLQUEUE_BUSY == SCSI_MLQUEUE_DEVICE_BUSY);

/* The host's private data. */
struct rustic_scsi_priv {
	struct Scsi_Host *shost;
	void *owner;
	const struct rustic_scsi_ops *ops;
	/* Request timeout of every device, seconds. */
	unsigned int timeout_s;
	bool write_same;
};

/*
 * A host is scanned after it was added: the scan sends commands and waits
 * for them, which must not hold up the caller (a VMBus driver's probe runs
 * where the host's offers are handled). It runs as async work in this
 * domain, which the module loader waits for before insmod returns (as the
 * C storvsc's synchronous scan would be), so that the disks are there once
 * the module is loaded: async_synchronize_full() waits for every domain
 * but exclusive ones, so this one is not exclusive. The scan holds a
 * reference on its host.
 */
static ASYNC_DOMAIN(rustic_scsi_scans);

static struct rustic_scsi_priv *to_priv(struct Scsi_Host *shost)
{
	return shost_priv(shost);
}

static void rustic_scsi_scan(void *data, async_cookie_t cookie)
{
	struct Scsi_Host *shost = data;

	/* Does nothing once scsi_remove_host() has begun. */
	scsi_scan_host(shost);
	scsi_host_put(shost);
}

static int rustic_scsi_queuecommand(struct Scsi_Host *shost,
				    struct scsi_cmnd *cmd)
{
	struct rustic_scsi_priv *priv = to_priv(shost);

	return priv->ops->queuecommand(priv->owner, cmd);
}

/* The host always answers, late maybe: give the command more time (as the
 * C storvsc does) rather than aborting what the host still owns. */
static enum scsi_timeout_action rustic_scsi_eh_timed_out(struct scsi_cmnd *cmd)
{
	return SCSI_EH_RESET_TIMER;
}

static int rustic_scsi_host_reset(struct scsi_cmnd *cmd)
{
	struct rustic_scsi_priv *priv = to_priv(cmd->device->host);

	if (!priv->ops->host_reset)
		return FAILED;
	return priv->ops->host_reset(priv->owner) ? FAILED : SUCCESS;
}

static int rustic_scsi_slave_alloc(struct scsi_device *sdev)
{
	/* REPORT LUNS on SCSI-2 devices too; ask for VPD pages. */
	sdev->sdev_bflags = BLIST_REPORTLUN2 | BLIST_TRY_VPD_PAGES;
	return 0;
}

static int rustic_scsi_slave_configure(struct scsi_device *sdev)
{
	struct rustic_scsi_priv *priv = to_priv(sdev->host);

	blk_queue_rq_timeout(sdev->request_queue, priv->timeout_s * HZ);
	/* Hyper-V answers no REPORT SUPPORTED OPERATION CODES. */
	sdev->no_report_opcodes = 1;
	sdev->no_write_same = !priv->write_same;
	return 0;
}

static int rustic_scsi_change_queue_depth(struct scsi_device *sdev, int depth)
{
	return scsi_change_queue_depth(sdev, min(depth, sdev->host->can_queue));
}

static const struct scsi_host_template rustic_scsi_template = {
	.module = THIS_MODULE,
	.name = "storvsc_host_t",
	.proc_name = "storvsc_host",
	.cmd_size = 0,
	.queuecommand = rustic_scsi_queuecommand,
	.eh_timed_out = rustic_scsi_eh_timed_out,
	.eh_host_reset_handler = rustic_scsi_host_reset,
	.slave_alloc = rustic_scsi_slave_alloc,
	.slave_configure = rustic_scsi_slave_configure,
	.change_queue_depth = rustic_scsi_change_queue_depth,
	.this_id = -1,
	/* One Hyper-V page per scatterlist segment, no gaps (see above). */
	.virt_boundary_mask = 4096 - 1,
	.track_queue_depth = 1,
};

struct rustic_scsi_host *rustic_scsi_host_new(void *owner,
					      const struct rustic_scsi_ops *ops,
					      const struct rustic_scsi_limits *lim)
{
	struct Scsi_Host *shost;
	struct rustic_scsi_priv *priv;

	if (!lim->can_queue || !lim->sg_tablesize || !lim->max_sectors)
		return NULL;
	shost = scsi_host_alloc(&rustic_scsi_template, sizeof(*priv));
	if (!shost)
		return NULL;
	priv = to_priv(shost);
	priv->shost = shost;
	priv->owner = owner;
	priv->ops = ops;
	priv->timeout_s = lim->timeout_s;
	priv->write_same = lim->write_same;
	shost->max_lun = lim->max_lun;
	shost->max_id = lim->max_id;
	shost->max_channel = lim->max_channel;
	shost->max_cmd_len = lim->max_cmd_len;
	shost->max_sectors = lim->max_sectors;
	shost->sg_tablesize = lim->sg_tablesize;
	shost->can_queue = lim->can_queue;
	shost->cmd_per_lun = min(lim->cmd_per_lun, lim->can_queue);
	shost->nr_hw_queues = 1;
	return (struct rustic_scsi_host *)shost;
}

int rustic_scsi_host_add(struct rustic_scsi_host *host, struct device *parent)
{
	struct Scsi_Host *shost = (struct Scsi_Host *)host;
	int ret = scsi_add_host(shost, parent);

	if (ret)
		return ret;
	if (!scsi_host_get(shost)) {
		scsi_remove_host(shost);
		return -ENODEV;
	}
	async_schedule_domain(rustic_scsi_scan, shost, &rustic_scsi_scans);
	return 0;
}

void rustic_scsi_host_remove(struct rustic_scsi_host *host)
{
	struct Scsi_Host *shost = (struct Scsi_Host *)host;

	/*
	 * scsi_remove_host() takes the host's scan mutex, so a scan under way
	 * ends first (its commands bounded by their timeouts and the error
	 * handler); a scan not yet started finds the host going and returns
	 * at once. So the wait for the domain, which keeps this module's
	 * code until every scan has returned, ends as soon as those do.
	 */
	scsi_remove_host(shost);
	async_synchronize_full_domain(&rustic_scsi_scans);
}

void rustic_scsi_host_put(struct rustic_scsi_host *host)
{
	scsi_host_put((struct Scsi_Host *)host);
}

unsigned int rustic_scsi_host_no(struct rustic_scsi_host *host)
{
	return ((struct Scsi_Host *)host)->host_no;
}

void rustic_scsi_cmd_info(struct scsi_cmnd *cmd, struct rustic_scsi_cmd_info *out)
{
	out->tag = scsi_cmd_to_rq(cmd)->tag;
	out->cdb = cmd->cmnd;
	out->cdb_len = cmd->cmd_len;
	out->channel = cmd->device->channel;
	out->id = cmd->device->id;
	out->lun = cmd->device->lun;
	out->len = scsi_bufflen(cmd);
	out->tagged = cmd->device->tagged_supported;
	switch (cmd->sc_data_direction) {
	case DMA_TO_DEVICE:
		out->dir = RUSTIC_SCSI_DIR_WRITE;
		break;
	case DMA_FROM_DEVICE:
		out->dir = RUSTIC_SCSI_DIR_READ;
		break;
	case DMA_NONE:
		out->dir = RUSTIC_SCSI_DIR_NONE;
		break;
	default:
		out->dir = RUSTIC_SCSI_DIR_OTHER;
		break;
	}
}

int rustic_scsi_cmd_pages(struct scsi_cmnd *cmd, u64 *pfns, unsigned int max,
			  u32 *offset)
{
	struct scatterlist *sg;
	unsigned int n = 0, count = scsi_sg_count(cmd);
	unsigned int i;

	*offset = 0;
	scsi_for_each_sg(cmd, sg, count, i) {
		unsigned int off = sg->offset, len = sg->length;
		unsigned long pfn = page_to_pfn(sg_page(sg)) + (off >> PAGE_SHIFT);
		unsigned int first = off & ~PAGE_MASK;

		if (!len)
			return -EINVAL;
		/* A gap: only the first segment may start inside a page, only
		 * the last end inside one. */
		if ((i > 0 && first) ||
		    (i + 1 < count && ((first + len) & ~PAGE_MASK)))
			return -EINVAL;
		if (i == 0)
			*offset = first;
		for (len += first; len; len -= min_t(unsigned int, len, PAGE_SIZE)) {
			if (n >= max)
				return -E2BIG;
			pfns[n++] = pfn++;
		}
	}
	return n;
}

void rustic_scsi_cmd_done(struct scsi_cmnd *cmd, u32 result, const u8 *sense,
			  unsigned int sense_len, u32 resid)
{
	cmd->result = result;
	if (sense_len && cmd->sense_buffer)
		memcpy(cmd->sense_buffer, sense,
		       min_t(unsigned int, sense_len, SCSI_SENSE_BUFFERSIZE));
	scsi_set_resid(cmd, resid);
	scsi_done(cmd);
}
