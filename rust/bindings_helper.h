/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of hv_rustic.ko that Rust calls: declarations of the shims in
 * the C files under rust/ (one folder per subsystem) and tests/kunit/suite.c.
 * The module's Kbuild runs bindgen over this header into rust/bindings_generated.rs (only `rustic_*` names pass).
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

/* --- the vmbus bus (rust/vmbus/bus_type.c) --- */

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

/*
 * What the bus asks of a device's Rust state (@state: the pointer the device
 * was added with). Show callbacks write at most a page and return its
 * length or a negative errno.
 */
struct rustic_vmbus_bus_ops {
	ssize_t (*dev_show)(const void *state, const char *attr, char *buf);
	/* Channel attributes: of the device's channel @relid. */
	ssize_t (*chan_show)(const void *state, u32 relid, const char *attr,
			     char *buf);
	ssize_t (*chan_store)(const void *state, u32 relid, const char *attr,
			      const char *buf, size_t count);
	/* @relid: the channel's, for a channel attribute (@channel). */
	bool (*attr_visible)(const void *state, const char *attr, bool channel,
			     u32 relid);
	/* The modalias, NUL-terminated, into @len bytes; 0 or -errno. */
	int (*modalias)(const void *state, char *buf, size_t len);
	/* Drops the device's reference on @state (its release callback). */
	void (*state_release)(const void *state);
};

/* Registers the bus_type "vmbus" and the devices' parent; @ops must
 * outlive the registration. */
int rustic_vmbus_bus_register(const struct rustic_vmbus_bus_ops *ops);
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
/* Unregisters a device added by rustic_vmbus_device_add(), with every
 * channel directory. */
void rustic_vmbus_device_remove(struct rustic_vmbus_device *dev);
/*
 * Adds channels/<@relid> for a subchannel of the device; removed by
 * rustic_vmbus_device_remove_channel() or with the device. The caller
 * serialises both with device removal.
 */
int rustic_vmbus_device_add_channel(struct rustic_vmbus_device *dev, u32 relid);
void rustic_vmbus_device_remove_channel(struct rustic_vmbus_device *dev,
					u32 relid);
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

/* (rust/vmbus/bus_type.c) */
bool rustic_cpu_possible(u32 cpu);
int rustic_cpu_to_node(u32 cpu);

/*
 * The struct device of a vmbus device (to parent other devices on it, such
 * as a net_device); valid while the device is.
 */
struct device;
struct device *rustic_vmbus_device_dev(struct rustic_vmbus_device *dev);

/* --- network devices (rust/net/netdev.c) --- */

/*
 * A net_device driven from Rust: the shim owns the kernel objects (the
 * net_device, one NAPI context and the statistics per queue, the ethtool
 * ops) and calls the driver's ops with its opaque @owner pointer. Queue q
 * is TX queue q, RX queue q and NAPI context q at once: one per channel.
 */
struct rustic_netdev;
struct sk_buff;

/* Most queues a device may have (rustic_netdev_new caps @max_queues). */
#define RUSTIC_NETDEV_MAX_QUEUES 64

/* xmit's answers besides 0 (sent: the skb was copied) and -errno (dropped). */
#define RUSTIC_TX_BUSY 1

/* Features for rustic_netdev_set_features (user-switchable offloads). */
#define RUSTIC_NETDEV_F_TX_CSUM (1U << 0)	/* IPv4 and IPv6 TX checksum */
#define RUSTIC_NETDEV_F_RX_CSUM (1U << 1)
#define RUSTIC_NETDEV_F_TSO (1U << 2)		/* TSO for IPv4 and IPv6 */
#define RUSTIC_NETDEV_F_SG (1U << 3)
#define RUSTIC_NETDEV_F_VLAN_TX (1U << 4)
#define RUSTIC_NETDEV_F_VLAN_RX (1U << 5)
#define RUSTIC_NETDEV_F_RXHASH (1U << 6)
#define RUSTIC_NETDEV_F_LRO (1U << 7)		/* the host coalesces received segments */

/* rustic_netdev_rx_skb flags. */
#define RUSTIC_RX_CSUM_OK (1U << 0)	/* the host checked the L3/L4 checksums */
#define RUSTIC_RX_VLAN (1U << 1)	/* @vlan_tci holds the stripped 802.1Q tag */
#define RUSTIC_RX_HASH (1U << 2)	/* @hash is the host's L4 RSS hash */

/* dev->flags bits that set_rx_mode passes on (the kernel's IFF_* values,
 * checked in rust/net/netdev.c). */
#define RUSTIC_IFF_BROADCAST (1U << 1)
#define RUSTIC_IFF_PROMISC (1U << 8)
#define RUSTIC_IFF_ALLMULTI (1U << 9)
#define RUSTIC_IFF_MULTICAST (1U << 12)

/* rustic_skb_info.gso_type bits. */
#define RUSTIC_GSO_TCPV4 (1U << 0)
#define RUSTIC_GSO_TCPV6 (1U << 1)

/*
 * What the driver does. Every op gets the @owner given to rustic_netdev_new
 * and the device. The ops run from register until rustic_netdev_unregister
 * returns; poll (and poll_done) while the queue's NAPI is enabled.
 */
struct rustic_netdev_ops {
	/* ndo_open (process context, rtnl held), after the shim started the
	 * TX queues; an error fails the open (the shim stops them again). */
	int (*open)(void *owner, struct rustic_netdev *dev);
	/* ndo_stop (process context, rtnl held), after netif_tx_disable. */
	void (*stop)(void *owner, struct rustic_netdev *dev);
	/*
	 * ndo_start_xmit of @queue (BH disabled, the queue's TX lock held).
	 * 0: the driver copied @skb, the shim consumes it. RUSTIC_TX_BUSY: the
	 * driver did nothing; the shim stops the queue, calls xmit once more
	 * (space may have come back meanwhile) and, if it is busy again,
	 * returns NETDEV_TX_BUSY keeping @skb. -errno: dropped, the shim
	 * frees @skb and counts tx_dropped.
	 */
	int (*xmit)(void *owner, struct rustic_netdev *dev, u16 queue,
		    struct sk_buff *skb);
	/* NAPI poll of @queue (softirq or NAPI thread, BH disabled): at most
	 * @budget packets through rustic_netdev_rx_skb; returns how many. @budget
	 * may be 0 (netpoll): then no receive at all. */
	int (*poll)(void *owner, struct rustic_netdev *dev, u16 queue,
		    int budget);
	/* After the poll completed NAPI (it used less than its budget and
	 * NAPI was not rescheduled meanwhile): re-enable the queue's
	 * interrupt, then re-check for work and rustic_netdev_napi_schedule()
	 * if some came in. May be NULL. */
	void (*poll_done)(void *owner, struct rustic_netdev *dev, u16 queue);
	/* ndo_change_mtu (process context, rtnl held); @mtu is within
	 * min_mtu..max_mtu. 0: the shim sets dev->mtu; -errno refuses. */
	int (*change_mtu)(void *owner, struct rustic_netdev *dev,
			  unsigned int mtu);
	/* ethtool -L combined @count, 1..max_queues (process context, rtnl
	 * held). May be NULL (-EOPNOTSUPP). */
	int (*set_channels)(void *owner, struct rustic_netdev *dev,
			    unsigned int count);
	/* ndo_set_rx_mode (atomic: the address list lock is held) with
	 * dev->flags (IFF_PROMISC, IFF_ALLMULTI, IFF_BROADCAST, IFF_MULTICAST
	 * among them): schedule work to tell the host. May be NULL. */
	void (*set_rx_mode)(void *owner, struct rustic_netdev *dev,
			    unsigned int flags);
	/* ndo_set_features turned LRO @on or off (process context, rtnl
	 * held; ethtool -K, or the stack when the device starts forwarding).
	 * An error keeps the old setting. May be NULL. */
	int (*set_lro)(void *owner, struct rustic_netdev *dev, bool on);
};

/*
 * Allocates an Ethernet device with @max_queues queues (1..64) and NAPI
 * contexts (disabled), 1 queue in use, MAC @mac (6 bytes), carrier off, MTU
 * range 68..65521, parented (SET_NETDEV_DEV, holding a reference) on
 * @parent if not NULL. @ops must outlive the device. NULL on failure.
 */
struct rustic_netdev *rustic_netdev_new(void *owner,
					const struct rustic_netdev_ops *ops,
					const u8 *mac, unsigned int max_queues,
					struct device *parent);
/* register_netdev (process context, rtnl not held); at most once. */
int rustic_netdev_register(struct rustic_netdev *dev);
/* unregister_netdev (process context, rtnl not held): stops the device
 * (ops->stop) if it is up; afterwards only the polls of queues whose NAPI
 * is still enabled run. */
void rustic_netdev_unregister(struct rustic_netdev *dev);
/* Disables every enabled NAPI context and frees the device (process
 * context); after rustic_netdev_unregister if it was registered. */
void rustic_netdev_free(struct rustic_netdev *dev);
/* dev->name (ethN once registered); it may change (rename) under rtnl. */
const char *rustic_netdev_name(struct rustic_netdev *dev);
/* Copies dev->name into @buf (IFNAMSIZ = 16 bytes, NUL-terminated). */
void rustic_netdev_name_copy(struct rustic_netdev *dev, char *buf);
u16 rustic_netdev_max_queues(struct rustic_netdev *dev);
/* The channels ethtool -l shows as the maximum and -L takes, 1..max_queues
 * (clamped); max_queues until set. Any context. */
void rustic_netdev_set_max_channels(struct rustic_netdev *dev, u16 n);

/* NAPI of queue @q. enable and disable: process context (disable sleeps
 * until a running poll ends), both idempotent. schedule: any context.
 * An out-of-range @q is ignored. */
void rustic_netdev_napi_enable(struct rustic_netdev *dev, u16 q);
void rustic_netdev_napi_disable(struct rustic_netdev *dev, u16 q);
void rustic_netdev_napi_schedule(struct rustic_netdev *dev, u16 q);

void rustic_netdev_carrier(struct rustic_netdev *dev, bool on);
/*
 * Queues in use, 1..max_queues. Process context. It and the setters below
 * that say "rtnl" take rtnl, except when called from inside open, stop,
 * change_mtu or set_channels, which the core calls with rtnl held: there
 * they use it as held. So the caller must not hold rtnl otherwise.
 */
int rustic_netdev_set_queues(struct rustic_netdev *dev, unsigned int n);
/* The queues in use. */
unsigned int rustic_netdev_queues(struct rustic_netdev *dev);
/* TX queue state, any context. wake does nothing while the device is
 * down or the queue is not stopped, and orders the caller's earlier
 * writes (freed ring space) before its check (pairs with the xmit retry). */
void rustic_netdev_stop_queue(struct rustic_netdev *dev, u16 q);
void rustic_netdev_wake_queue(struct rustic_netdev *dev, u16 q);
bool rustic_netdev_queue_stopped(struct rustic_netdev *dev, u16 q);
/* Process context, rtnl held: the device is taken off the stack (no
 * transmit runs after detach returns, the queues stay stopped) and put
 * back (queues woken if it is up). */
void rustic_netdev_detach(struct rustic_netdev *dev);
void rustic_netdev_attach(struct rustic_netdev *dev);
/* Whether it is up (rtnl held for a stable answer). */
bool rustic_netdev_running(struct rustic_netdev *dev);
u32 rustic_netdev_mtu(struct rustic_netdev *dev);

/* Before register (process context): the offloads the device has (all on);
 * ignored, with a warning, after. */
void rustic_netdev_set_features(struct rustic_netdev *dev, u64 features);
/* The address, before registration (-EINVAL after, or for one that is not
 * a valid unicast address). Process context, rtnl. */
int rustic_netdev_set_mac(struct rustic_netdev *dev, const u8 *mac);
/* 68..65521, else ignored. Process context, rtnl. */
void rustic_netdev_set_max_mtu(struct rustic_netdev *dev, unsigned int mtu);
/* Largest TSO packet (bytes) and segment count the host takes. Process
 * context, rtnl. */
void rustic_netdev_set_tso_max(struct rustic_netdev *dev, unsigned int size,
			       unsigned int segs);
/* What ethtool shows: link speed (0: unknown) and ring sizes (any
 * context), bus_info (process context, rtnl). */
void rustic_netdev_set_link_speed(struct rustic_netdev *dev, u32 mbps);
void rustic_netdev_set_ring(struct rustic_netdev *dev, u32 rx_pending,
			    u32 tx_pending);
void rustic_netdev_set_info(struct rustic_netdev *dev, const char *bus_info);
/* Counts one piece of bad input from the host, which the driver dropped
 * (ethtool -S host_errors). Any context. */
void rustic_netdev_count_host_error(struct rustic_netdev *dev);

/*
 * A received frame (@len bytes from the Ethernet header on) to the stack,
 * in two halves, so that a driver can copy the frame under a lock and hand
 * it up once the lock is gone (the stack may transmit from inside). Only
 * from the NAPI poll of @q. _copy makes an skb of the @len bytes at @data
 * into *@skb: 0, -EINVAL (not in that poll, or shorter than an Ethernet
 * header) or -ENOMEM, failures counted as rx_dropped. _skb hands it up
 * with RUSTIC_RX_* @flags and always consumes it; _free drops one not
 * handed up.
 */
int rustic_netdev_rx_copy(struct rustic_netdev *dev, u16 q,
			  const void *data, unsigned int len,
			  struct sk_buff **skb);
void rustic_netdev_rx_skb(struct rustic_netdev *dev, u16 q,
			  struct sk_buff *skb, u32 flags, u16 vlan_tci,
			  u32 hash);
void rustic_netdev_rx_free(struct sk_buff *skb);
/* Counts @packets / @bytes sent on TX queue @q (any context). */
void rustic_netdev_tx_done(struct rustic_netdev *dev, u16 q, u32 packets,
			   u64 bytes);

/* An skb handed to xmit, as the driver needs it to build a send. */
struct rustic_skb_info {
	u32 len;
	/* CHECKSUM_PARTIAL: fill the checksum at csum_start + csum_offset. */
	bool csum_partial;
	/* From skb->data: where checksumming starts; where it goes. */
	u32 csum_start;
	u32 csum_offset;
	/* Nonzero for a GSO skb: segment payload size, segments, RUSTIC_GSO_*
	 * (0 for a type the driver cannot offload). */
	u32 gso_size;
	u32 gso_segs;
	u32 gso_type;
	bool vlan_present;
	/* The 802.1Q TCI (PCP, DEI, VID) to insert. */
	u16 vlan_tci;
	/* skb->protocol in host order (the inner one if vlan_present). */
	u16 protocol;
	/* Header offsets from skb->data; -1 when not set. */
	int network_offset;
	int transport_offset;
	/* IPPROTO_* of the IPv4 protocol / IPv6 next header; 0 if not IP. */
	u8 l4_proto;
	u32 hash;
	u16 queue_mapping;
};
unsigned int rustic_skb_len(const struct sk_buff *skb);
/* skb_copy_bits: 0 or -EFAULT when [@offset, @offset + @len) is not in it. */
int rustic_skb_copy(const struct sk_buff *skb, unsigned int offset, void *dst,
		    unsigned int len);
void rustic_skb_info(const struct sk_buff *skb, struct rustic_skb_info *out);
/* A physically contiguous piece of an skb's bytes. */
struct rustic_skb_piece {
	u64 phys;
	u32 len;
};
/*
 * Bytes [@offset, len) of @skb as physically contiguous pieces, in order
 * (the rest of the linear part, then each fragment): how many, or -E2BIG
 * when there are more than @max (or a frag list) and -EFAULT when @offset
 * is past the end.
 */
int rustic_skb_pieces(const struct sk_buff *skb, unsigned int offset,
		      struct rustic_skb_piece *out, unsigned int max);
/* A reference of the caller's (skb_get), for rustic_skb_consume, to an
 * skb detached from its socket (skb_orphan). */
struct sk_buff *rustic_skb_hold(struct sk_buff *skb);
/* Drops a reference from rustic_skb_get, its send done (any context). */
void rustic_skb_consume(struct sk_buff *skb);

/* KUnit builds only (tests/kunit/suite.c): drive a rustic_netdev as the
 * stack would. */
/* dev_open under rtnl. */
int rustic_kunit_netdev_open(struct rustic_netdev *dev);
/* dev_queue_xmit of a copy of @frame, steered to TX queue @queue. */
int rustic_kunit_netdev_xmit(struct rustic_netdev *dev, u16 queue,
			     const u8 *frame, unsigned int len);
/* dev_get_stats: tx packets, tx bytes, rx packets, rx bytes, in @out. */
void rustic_kunit_netdev_stats(struct rustic_netdev *dev, u64 *out);
/* Under rtnl, into @out: ethtool set_channels(@count)'s result, then the
 * ETH_SS_STATS count, max_combined and combined_count; dev_set_mtu(9000)'s
 * result and the MTU; dev_set_promiscuity(1)'s result; the host_errors
 * statistic (-1 if it cannot be read). */
void rustic_kunit_netdev_ethtool(struct rustic_netdev *dev, unsigned int count,
				 s64 *out);

/* --- SCSI hosts (rust/scsi/scsi_host.c) --- */

/*
 * A Scsi_Host driven from Rust: the shim owns the host and its template and
 * calls the driver's ops with its opaque @owner pointer. Commands are known
 * by their block-layer tag (0..can_queue - 1) and handed back, once, to
 * rustic_scsi_cmd_done().
 */
struct rustic_scsi_host;
struct scsi_cmnd;

/* Bytes of a command's sense buffer (SCSI_SENSE_BUFFERSIZE). */
#define RUSTIC_SCSI_SENSE_MAX 96
/* queuecommand's answer for "no room now, retry" (SCSI_MLQUEUE_DEVICE_BUSY). */
#define RUSTIC_SCSI_MLQUEUE_BUSY 0x1056

struct rustic_scsi_ops {
	/* queuecommand (may not sleep): 0 (queued, or finished with
	 * rustic_scsi_cmd_done) or RUSTIC_SCSI_MLQUEUE_BUSY. */
	int (*queuecommand)(void *owner, struct scsi_cmnd *cmd);
	/* eh_host_reset_handler (process context): 0 when the host was reset
	 * and no command is outstanding. May be NULL (FAILED). */
	int (*host_reset)(void *owner);
};

/* The host's limits, fixed at creation. */
struct rustic_scsi_limits {
	u32 max_lun;
	u32 max_id;
	u32 max_channel;
	u32 max_cmd_len;
	u32 max_sectors;
	u16 sg_tablesize;
	int can_queue;
	short cmd_per_lun;
	/* Request timeout of every device, seconds. */
	u32 timeout_s;
	/* Whether WRITE SAME is sent. */
	bool write_same;
};

/* A command's data direction. */
#define RUSTIC_SCSI_DIR_WRITE 0
#define RUSTIC_SCSI_DIR_READ 1
#define RUSTIC_SCSI_DIR_NONE 2
#define RUSTIC_SCSI_DIR_OTHER 3

/* What the driver needs of a command. @cdb is valid until it is done. */
struct rustic_scsi_cmd_info {
	u32 tag;
	const u8 *cdb;
	u32 cdb_len;
	u32 channel;
	u32 id;
	u64 lun;
	/* Bytes of data. */
	u32 len;
	u8 dir;
	bool tagged;
};

/* scsi_host_alloc with @lim (process context); NULL on failure. @ops must
 * outlive the host. */
struct rustic_scsi_host *rustic_scsi_host_new(void *owner,
					      const struct rustic_scsi_ops *ops,
					      const struct rustic_scsi_limits *lim);
/* scsi_add_host under @parent (process context), then scsi_scan_host as
 * async work (which a module's loading waits for): the devices appear
 * shortly after. */
int rustic_scsi_host_add(struct rustic_scsi_host *host, struct device *parent);
/* Waits out the scan, then scsi_remove_host: the devices go; no
 * queuecommand runs afterwards. The scan's commands must end (a host that
 * will not answer fails them). */
void rustic_scsi_host_remove(struct rustic_scsi_host *host);
/* Drops the creation's reference (frees the host once unused). */
void rustic_scsi_host_put(struct rustic_scsi_host *host);
unsigned int rustic_scsi_host_no(struct rustic_scsi_host *host);
void rustic_scsi_cmd_info(struct scsi_cmnd *cmd, struct rustic_scsi_cmd_info *out);
/*
 * The command's data as one GPA range: its pages into @pfns (at most @max),
 * the offset in the first into *@offset. How many pages, -E2BIG past @max,
 * -EINVAL for a scatterlist with a gap (which virt_boundary_mask rules out).
 */
int rustic_scsi_cmd_pages(struct scsi_cmnd *cmd, u64 *pfns, unsigned int max,
			  u32 *offset);
/* Finishes a command (any context): result, sense (at most
 * RUSTIC_SCSI_SENSE_MAX bytes), residual, scsi_done. */
void rustic_scsi_cmd_done(struct scsi_cmnd *cmd, u32 result, const u8 *sense,
			  unsigned int sense_len, u32 resid);

/* --- test builds only: debugfs control (rust/base/debugfs.c) --- */

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

/* --- the hypervisor interrupt, all backends (rust/vmbus/interrupt.c, rust/base/base.c) --- */

/*
 * Each rustic_hv_isr() runs @events(@data, cpu) in softirq context on its
 * CPU; when that returns true, @task(@data, cpu) follows in a process
 * context work item on the same CPU.
 */
void rustic_hv_isr_register(bool (*events)(const void *data, u32 cpu),
			    void (*task)(const void *data, u32 cpu),
			    const void *data);
/* Call after the interrupt source stopped; waits for the work to finish. */
void rustic_hv_isr_unregister(void);
/* The VMBus interrupt handler: hard-IRQ context, queues the softirq work. */
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
/* The same in lockdep class @key (a static struct lock_class_key) named
 * @name: for work flushed under a lock that other work items take. */
struct rustic_work *rustic_work_new_in_class(void (*fn)(const void *data),
					     const void *data, void *key,
					     const char *name);
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
/* cpus_read_lock()/cpus_read_unlock(): no CPU comes or goes meanwhile. */
void rustic_cpus_read_lock(void);
void rustic_cpus_read_unlock(void);
/* Softirqs off and on again on this CPU (nests), for locks that softirq
 * code (NAPI, transmit) takes too. */
void rustic_local_bh_disable(void);
void rustic_local_bh_enable(void);
/* Whether this is task context, where sleeping is allowed in principle. */
bool rustic_in_task(void);

/* --- the crash-path unload's kernel hooks (rust/vmbus/crash.c) --- */

/*
 * @fn runs from the panic notifier and, if @hyperv_hooks, from the kernel's
 * Hyper-V kexec and crash handlers; with interrupts off, any CPU.
 */
void rustic_crash_register(void (*fn)(void), bool hyperv_hooks);
/* Removes them; a panic notifier call in progress has finished after it. */
void rustic_crash_unregister(void);
/* Busy-waits @ms milliseconds (any context). */
void rustic_mdelay(u32 ms);
unsigned long rustic_local_irq_save(void);
void rustic_local_irq_restore(unsigned long flags);
/* Queues @cpu's softirq work of the VMBus interrupt once, as an interrupt
 * would (for a message that arrived before the handler was registered). */
void rustic_hv_isr_poll(u32 cpu);

/* --- the real Hyper-V backend (rust/vmbus/hyperv.c; built, never run here) --- */

/* Hyper-V is up, and this guest is one the backend supports. */
bool rustic_hvr_available(void);
/* The firmware describes an ACPI VMBus device ("VMBUS"/"VMBus"). */
bool rustic_hvr_acpi_present(void);
/* Binds the ACPI VMBus device; SynIC pages, SINT2 on every CPU (hotplug
 * state); the VMBus handler. */
int rustic_hvr_start(void);
/* Masks SINT2, removes the handler, waits out a running interrupt. */
void rustic_hvr_stop(void);
/* This CPU's SynIC off, with interrupts off (the kdump path). */
void rustic_hvr_disable_this_cpu(void);
/* Frees the pages; after rustic_hvr_stop(). */
void rustic_hvr_free(void);
/* CPU 0's SynIC message page (4 KiB). */
void *rustic_hvr_message_page(void);
/* @cpu's SynIC event flags page (4 KiB), or NULL. */
void *rustic_hvr_event_flags(u32 cpu);
void rustic_hvr_eom(void);
/* @cpu's SynIC message page (4 KiB), or NULL. */
void *rustic_hvr_message_page_of(u32 cpu);
/* The EOM MSR written on this CPU; usable with interrupts off. */
void rustic_hvr_eom_here(void);
int rustic_hvr_post_message(u32 connection_id, u32 message_type,
			    const u8 *payload, u32 len);
int rustic_hvr_signal_event(u32 connection_id);
u32 rustic_hvr_vp_index(u32 cpu);
/*
 * One more (@delta 1) or one fewer (-1) open channel targets @cpu; a CPU
 * that any targets refuses to go offline.
 */
void rustic_hvr_cpu_channels(u32 cpu, int delta);

/* --- test builds only: the simulated hypervisor (rust/sim/sim.c) --- */

bool rustic_sim_enabled(void);
const char *rustic_sim_versions(void);
unsigned int rustic_sim_post_busy(void);
bool rustic_sim_stale_message(void);
unsigned int rustic_sim_channel_timeout_ms(void);
const char *rustic_sim_devices(void);
/* Interrupts @cpu asynchronously (coalesced while one is queued there). */
int rustic_sim_raise(u32 cpu);
/* Maps @count guest pages by frame number into one range, or NULL. */
void *rustic_sim_map(const u64 *pfns, u32 count);
u32 rustic_sim_unmap(void *addr, u32 count);
int rustic_sim_read_pages(const u64 *pfns, u32 count, u64 offset, void *dst, u32 len);
/* No simulated interrupt is queued or running. */
bool rustic_sim_irq_idle(void);

#endif
