// SPDX-License-Identifier: GPL-2.0
/*
 * Network devices for hv_rustic.ko drivers: what Rust on 6.12 cannot
 * declare (it has no net_device abstractions).
 *
 * C owns the kernel objects: the net_device, one NAPI context and one set of
 * counters per queue, the net_device_ops and ethtool_ops. Everything the
 * device does is decided by the driver's rustic_netdev_ops (rust/net/netdev.rs
 * implements them over a Rust trait), which get the driver's opaque owner
 * pointer. Queue q is TX queue q, RX queue q and NAPI context q at once: a
 * Hyper-V NIC has one channel per queue pair.
 *
 * Locking. The core calls open, stop, change_mtu and set_channels with rtnl
 * held; while one of them runs, rtnl_owner names the task, so that the
 * shim's own functions that need rtnl (rustic_netdev_set_queues and the
 * setters) use it as held there and take it everywhere else. NAPI enable and
 * disable are serialised by napi_lock, so both are idempotent. Receive
 * counters are written only by the queue's NAPI poll (NAPI polls a context
 * on one CPU at a time), transmit counters under the queue's tx_lock (the
 * driver may report completions from any context).
 */
#include <linux/bitops.h>
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/if_vlan.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/overflow.h>
#include <linux/rtnetlink.h>
#include <linux/sched.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/u64_stats_sync.h>
#include "../bindings_helper.h"

static_assert(RUSTIC_IFF_BROADCAST == IFF_BROADCAST);
static_assert(RUSTIC_IFF_PROMISC == IFF_PROMISC);
static_assert(RUSTIC_IFF_ALLMULTI == IFF_ALLMULTI);
static_assert(RUSTIC_IFF_MULTICAST == IFF_MULTICAST);

#define RUSTIC_NETDEV_MIN_MTU 68
/* The largest frame VMBus NICs carry (64 KiB less the Ethernet header). */
#define RUSTIC_NETDEV_MAX_MTU 65521

struct rustic_netdev_priv;

struct rustic_netdev_queue {
	struct napi_struct napi;
	struct rustic_netdev_priv *priv;
	u16 index;
	/*
	 * The CPU running this queue's poll (with a nonzero budget), else -1:
	 * rustic_netdev_rx_skb feeds the queue's GRO state, which only its poll
	 * may touch.
	 */
	int poll_cpu;

	/* Written only by this queue's NAPI poll. */
	struct u64_stats_sync rx_syncp;
	u64_stats_t rx_packets;
	u64_stats_t rx_bytes;
	u64_stats_t rx_dropped;

	/* Writers hold tx_lock: completions may be reported from anywhere. */
	spinlock_t tx_lock;
	struct u64_stats_sync tx_syncp;
	u64_stats_t tx_packets;
	u64_stats_t tx_bytes;
	u64_stats_t tx_dropped;
};

struct rustic_netdev_priv {
	struct net_device *dev;
	void *owner;
	const struct rustic_netdev_ops *ops;
	/* The parent given to rustic_netdev_new, held until free. */
	struct device *parent;
	/* The task running one of the ops that the core calls under rtnl. */
	struct task_struct *rtnl_owner;
	/* Serialises NAPI enable/disable; bit q set: NAPI q is enabled. */
	struct mutex napi_lock;
	DECLARE_BITMAP(napi_enabled, RUSTIC_NETDEV_MAX_QUEUES);
	/* What ethtool shows. */
	u32 speed;
	u32 rx_pending;
	u32 tx_pending;
	char bus_info[ETHTOOL_BUSINFO_LEN];
	/* Bad input from the host the driver dropped (any context). */
	atomic64_t host_errors;
	u16 max_queues;
	/* What ethtool -l shows and -L takes: 1..max_queues. */
	u16 channels_max;
	struct rustic_netdev_queue queues[] __counted_by(max_queues);
};

/* struct rustic_netdev is never defined: it is the net_device itself. */
static struct net_device *to_ndev(struct rustic_netdev *rdev)
{
	return (struct net_device *)rdev;
}

#define RDEV(dev) ((struct rustic_netdev *)(dev))

static struct rustic_netdev_priv *to_priv(struct rustic_netdev *rdev)
{
	return netdev_priv(to_ndev(rdev));
}

static struct rustic_netdev_queue *rustic_queue(struct rustic_netdev_priv *priv,
						u16 q)
{
	return q < priv->max_queues ? &priv->queues[q] : NULL;
}

/*
 * Takes rtnl unless the caller runs inside one of the ops the core called
 * with it held (then rtnl_owner is this task: only this task writes its own
 * pointer there, so the unlocked read cannot match by accident). Process
 * context. Returns whether it took the lock, for rustic_rtnl_end().
 */
static bool rustic_rtnl_begin(struct rustic_netdev_priv *priv)
{
	if (READ_ONCE(priv->rtnl_owner) == current)
		return false;
	rtnl_lock();
	return true;
}

static void rustic_rtnl_end(bool taken)
{
	if (taken)
		rtnl_unlock();
}

/* Around an op that the core calls with rtnl held. */
static void rustic_op_begin(struct rustic_netdev_priv *priv)
{
	ASSERT_RTNL();
	WRITE_ONCE(priv->rtnl_owner, current);
}

static void rustic_op_end(struct rustic_netdev_priv *priv)
{
	WRITE_ONCE(priv->rtnl_owner, NULL);
}

/* --- statistics --- */

struct rustic_queue_stats {
	u64 tx_packets, tx_bytes, tx_dropped;
	u64 rx_packets, rx_bytes, rx_dropped;
};

static void rustic_queue_read(struct rustic_netdev_queue *rq,
			      struct rustic_queue_stats *s)
{
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&rq->rx_syncp);
		s->rx_packets = u64_stats_read(&rq->rx_packets);
		s->rx_bytes = u64_stats_read(&rq->rx_bytes);
		s->rx_dropped = u64_stats_read(&rq->rx_dropped);
	} while (u64_stats_fetch_retry(&rq->rx_syncp, start));
	do {
		start = u64_stats_fetch_begin(&rq->tx_syncp);
		s->tx_packets = u64_stats_read(&rq->tx_packets);
		s->tx_bytes = u64_stats_read(&rq->tx_bytes);
		s->tx_dropped = u64_stats_read(&rq->tx_dropped);
	} while (u64_stats_fetch_retry(&rq->tx_syncp, start));
}

/* Every queue's counters, also those of queues no longer in use. */
static void rustic_totals(struct rustic_netdev_priv *priv,
			  struct rustic_queue_stats *sum)
{
	struct rustic_queue_stats s;
	unsigned int q;

	memset(sum, 0, sizeof(*sum));
	for (q = 0; q < priv->max_queues; q++) {
		rustic_queue_read(&priv->queues[q], &s);
		sum->tx_packets += s.tx_packets;
		sum->tx_bytes += s.tx_bytes;
		sum->tx_dropped += s.tx_dropped;
		sum->rx_packets += s.rx_packets;
		sum->rx_bytes += s.rx_bytes;
		sum->rx_dropped += s.rx_dropped;
	}
}

static void rustic_tx_count(struct rustic_netdev_queue *rq, u64 packets,
			    u64 bytes, u64 dropped)
{
	unsigned long flags;

	spin_lock_irqsave(&rq->tx_lock, flags);
	u64_stats_update_begin(&rq->tx_syncp);
	u64_stats_add(&rq->tx_packets, packets);
	u64_stats_add(&rq->tx_bytes, bytes);
	u64_stats_add(&rq->tx_dropped, dropped);
	u64_stats_update_end(&rq->tx_syncp);
	spin_unlock_irqrestore(&rq->tx_lock, flags);
}

/* --- net_device_ops --- */

static int rustic_ndo_open(struct net_device *dev)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);
	int ret;

	netif_tx_start_all_queues(dev);
	rustic_op_begin(priv);
	ret = priv->ops->open(priv->owner, RDEV(dev));
	rustic_op_end(priv);
	if (ret)
		netif_tx_disable(dev);
	return ret;
}

static int rustic_ndo_stop(struct net_device *dev)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);

	netif_tx_disable(dev);
	rustic_op_begin(priv);
	priv->ops->stop(priv->owner, RDEV(dev));
	rustic_op_end(priv);
	return 0;
}

static netdev_tx_t rustic_ndo_start_xmit(struct sk_buff *skb,
					 struct net_device *dev)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);
	u16 q = skb_get_queue_mapping(skb);
	struct rustic_netdev_queue *rq = rustic_queue(priv, q);
	struct netdev_queue *txq;
	int ret;

	/* The core picks a queue below real_num_tx_queues <= max_queues. */
	if (unlikely(!rq)) {
		dev_core_stats_tx_dropped_inc(dev);
		dev_kfree_skb_any(skb);
		return NETDEV_TX_OK;
	}
	txq = netdev_get_tx_queue(dev, q);
	/*
	 * Every frame costs a trip through the host, whatever its size: TCP
	 * may size its TSO frames to 4 ms of its pacing rate rather than 1 ms
	 * (as brcmfmac and rmnet let it), so that a flow whose round trip
	 * grows does not settle into small frames.
	 */
	sk_pacing_shift_update(skb->sk, 8);
	ret = priv->ops->xmit(priv->owner, RDEV(dev), q, skb);
	if (ret == RUSTIC_TX_BUSY) {
		netif_tx_stop_queue(txq);
		/*
		 * Pairs with the barrier in rustic_netdev_wake_queue(): either
		 * the completion that frees ring space sees the queue stopped
		 * and wakes it, or this second try finds the space.
		 */
		smp_mb__after_atomic();
		ret = priv->ops->xmit(priv->owner, RDEV(dev), q, skb);
		if (ret == RUSTIC_TX_BUSY)
			return NETDEV_TX_BUSY;
		netif_tx_start_queue(txq);
	}
	if (ret == 0) {
		dev_consume_skb_any(skb);
		return NETDEV_TX_OK;
	}
	rustic_tx_count(rq, 0, 0, 1);
	dev_kfree_skb_any(skb);
	return NETDEV_TX_OK;
}

static int rustic_ndo_change_mtu(struct net_device *dev, int new_mtu)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);
	int ret;

	/* The core checked new_mtu against min_mtu and max_mtu. */
	rustic_op_begin(priv);
	ret = priv->ops->change_mtu(priv->owner, RDEV(dev), new_mtu);
	rustic_op_end(priv);
	if (!ret)
		WRITE_ONCE(dev->mtu, new_mtu);
	return ret;
}

static void rustic_ndo_set_rx_mode(struct net_device *dev)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);

	if (priv->ops->set_rx_mode)
		priv->ops->set_rx_mode(priv->owner, RDEV(dev), dev->flags);
}

static int rustic_ndo_set_features(struct net_device *dev,
				   netdev_features_t features)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);

	if (!((dev->features ^ features) & NETIF_F_LRO) || !priv->ops->set_lro)
		return 0;
	return priv->ops->set_lro(priv->owner, RDEV(dev),
				  !!(features & NETIF_F_LRO));
}

static void rustic_ndo_get_stats64(struct net_device *dev,
				   struct rtnl_link_stats64 *stats)
{
	struct rustic_queue_stats sum;

	rustic_totals(netdev_priv(dev), &sum);
	stats->tx_packets = sum.tx_packets;
	stats->tx_bytes = sum.tx_bytes;
	stats->tx_dropped = sum.tx_dropped;
	stats->rx_packets = sum.rx_packets;
	stats->rx_bytes = sum.rx_bytes;
	stats->rx_dropped = sum.rx_dropped;
}

static const struct net_device_ops rustic_netdev_ndo = {
	.ndo_open = rustic_ndo_open,
	.ndo_stop = rustic_ndo_stop,
	.ndo_start_xmit = rustic_ndo_start_xmit,
	.ndo_change_mtu = rustic_ndo_change_mtu,
	.ndo_set_rx_mode = rustic_ndo_set_rx_mode,
	.ndo_set_features = rustic_ndo_set_features,
	.ndo_get_stats64 = rustic_ndo_get_stats64,
	.ndo_validate_addr = eth_validate_addr,
};

/* --- NAPI --- */

static int rustic_napi_poll(struct napi_struct *napi, int budget)
{
	struct rustic_netdev_queue *rq =
		container_of(napi, struct rustic_netdev_queue, napi);
	struct rustic_netdev_priv *priv = rq->priv;
	int done;

	/* Budget 0 (netpoll) must not receive: no GRO there. */
	if (budget > 0)
		WRITE_ONCE(rq->poll_cpu, smp_processor_id());
	done = priv->ops->poll(priv->owner, RDEV(priv->dev), rq->index,
			       budget);
	WRITE_ONCE(rq->poll_cpu, -1);
	done = clamp(done, 0, budget);
	/* napi_complete_done is false when NAPI must poll again anyway. */
	if (done < budget && napi_complete_done(napi, done) &&
	    priv->ops->poll_done)
		priv->ops->poll_done(priv->owner, RDEV(priv->dev), rq->index);
	return done;
}

void rustic_netdev_napi_enable(struct rustic_netdev *rdev, u16 q)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);
	struct rustic_netdev_queue *rq = rustic_queue(priv, q);

	if (!rq)
		return;
	mutex_lock(&priv->napi_lock);
	if (!test_bit(q, priv->napi_enabled)) {
		napi_enable(&rq->napi);
		set_bit(q, priv->napi_enabled);
	}
	mutex_unlock(&priv->napi_lock);
}

void rustic_netdev_napi_disable(struct rustic_netdev *rdev, u16 q)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);
	struct rustic_netdev_queue *rq = rustic_queue(priv, q);

	if (!rq)
		return;
	mutex_lock(&priv->napi_lock);
	if (test_bit(q, priv->napi_enabled)) {
		/* Waits for a running poll. */
		napi_disable(&rq->napi);
		clear_bit(q, priv->napi_enabled);
	}
	mutex_unlock(&priv->napi_lock);
}

void rustic_netdev_napi_schedule(struct rustic_netdev *rdev, u16 q)
{
	struct rustic_netdev_queue *rq = rustic_queue(to_priv(rdev), q);

	if (!rq)
		return;
	if (in_interrupt() || irqs_disabled()) {
		/* The softirq runs on the way out of this context. */
		napi_schedule(&rq->napi);
		return;
	}
	/* Process context: run the raised softirq now, not at the next tick. */
	local_bh_disable();
	napi_schedule(&rq->napi);
	local_bh_enable();
}

/* --- receive and transmit --- */

/* The queue whose poll runs here, or NULL (warned once): only the poll of
 * q may feed its GRO state. The poll runs with BH disabled, so nothing
 * else runs on its CPU but interrupts; a caller elsewhere must not touch
 * rq's counters either. */
static struct rustic_netdev_queue *rustic_rx_queue(struct rustic_netdev *rdev,
						   u16 q)
{
	struct rustic_netdev_queue *rq = rustic_queue(to_priv(rdev), q);

	if (!rq || in_hardirq() || in_nmi() || !in_softirq() ||
	    READ_ONCE(rq->poll_cpu) != raw_smp_processor_id()) {
		WARN_ONCE(1, "%s: rx on queue %u outside its NAPI poll\n",
			  netdev_name(to_ndev(rdev)), q);
		dev_core_stats_rx_dropped_inc(to_ndev(rdev));
		return NULL;
	}
	return rq;
}

static void rustic_rx_dropped(struct rustic_netdev_queue *rq)
{
	u64_stats_update_begin(&rq->rx_syncp);
	u64_stats_inc(&rq->rx_dropped);
	u64_stats_update_end(&rq->rx_syncp);
}

int rustic_netdev_rx_copy(struct rustic_netdev *rdev, u16 q,
			  const void *data, unsigned int len,
			  struct sk_buff **skbp)
{
	struct rustic_netdev_queue *rq = rustic_rx_queue(rdev, q);
	struct sk_buff *skb;

	*skbp = NULL;
	if (!rq)
		return -EINVAL;
	if (len < ETH_HLEN) {
		rustic_rx_dropped(rq);
		return -EINVAL;
	}
	skb = napi_alloc_skb(&rq->napi, len);
	if (!skb) {
		rustic_rx_dropped(rq);
		return -ENOMEM;
	}
	skb_put_data(skb, data, len);
	*skbp = skb;
	return 0;
}

void rustic_netdev_rx_skb(struct rustic_netdev *rdev, u16 q,
			  struct sk_buff *skb, u32 flags, u16 vlan_tci,
			  u32 hash)
{
	struct net_device *dev = to_ndev(rdev);
	struct rustic_netdev_queue *rq = rustic_rx_queue(rdev, q);
	unsigned int len = skb->len;

	if (!rq) {
		kfree_skb(skb);
		return;
	}
	skb->protocol = eth_type_trans(skb, dev);
	if ((flags & RUSTIC_RX_CSUM_OK) && (dev->features & NETIF_F_RXCSUM))
		skb->ip_summed = CHECKSUM_UNNECESSARY;
	if (flags & RUSTIC_RX_VLAN)
		__vlan_hwaccel_put_tag(skb, htons(ETH_P_8021Q), vlan_tci);
	if ((flags & RUSTIC_RX_HASH) && (dev->features & NETIF_F_RXHASH))
		skb_set_hash(skb, hash, PKT_HASH_TYPE_L4);
	/* A frame still in flight on a queue that ethtool -L just took away
	 * is counted there but handed up as queue 0's. */
	skb_record_rx_queue(skb, q < dev->real_num_rx_queues ? q : 0);

	u64_stats_update_begin(&rq->rx_syncp);
	u64_stats_inc(&rq->rx_packets);
	u64_stats_add(&rq->rx_bytes, len);
	u64_stats_update_end(&rq->rx_syncp);
	napi_gro_receive(&rq->napi, skb);
}

void rustic_netdev_rx_free(struct sk_buff *skb)
{
	kfree_skb(skb);
}

void rustic_netdev_tx_done(struct rustic_netdev *rdev, u16 q, u32 packets,
			   u64 bytes)
{
	struct rustic_netdev_queue *rq = rustic_queue(to_priv(rdev), q);

	if (rq)
		rustic_tx_count(rq, packets, bytes, 0);
}

unsigned int rustic_skb_len(const struct sk_buff *skb)
{
	return skb->len;
}

int rustic_skb_copy(const struct sk_buff *skb, unsigned int offset, void *dst,
		    unsigned int len)
{
	if (offset > INT_MAX || len > INT_MAX)
		return -EFAULT;
	return skb_copy_bits(skb, offset, dst, len);
}

int rustic_skb_pieces(const struct sk_buff *skb, unsigned int offset,
		      struct rustic_skb_piece *out, unsigned int max)
{
	const struct skb_shared_info *shinfo = skb_shinfo(skb);
	unsigned int head = skb_headlen(skb), n = 0, i;

	if (offset > skb->len)
		return -EFAULT;
	if (skb_has_frag_list(skb))
		return -E2BIG;
	if (offset < head) {
		if (n == max)
			return -E2BIG;
		/* The linear part comes from kmalloc or a page frag: one run. */
		out[n].phys = virt_to_phys(skb->data + offset);
		out[n++].len = head - offset;
		offset = 0;
	} else {
		offset -= head;
	}
	for (i = 0; i < shinfo->nr_frags; i++) {
		const skb_frag_t *frag = &shinfo->frags[i];
		unsigned int size = skb_frag_size(frag);

		if (offset >= size) {
			offset -= size;
			continue;
		}
		if (n == max)
			return -E2BIG;
		/* A fragment lies in one (compound) page. */
		out[n].phys = page_to_phys(skb_frag_page(frag)) +
			      skb_frag_off(frag) + offset;
		out[n++].len = size - offset;
		offset = 0;
	}
	return n;
}

struct sk_buff *rustic_skb_hold(struct sk_buff *skb)
{
	/*
	 * Orphaned first, as virtio_net does when its completions come late:
	 * the socket gets its send budget (TCP small queues) back now, not
	 * when the host completes the send, so that a flow keeps more than
	 * two TSO frames in flight; the driver's send slots bound what it
	 * holds.
	 */
	skb_orphan(skb);
	nf_reset_ct(skb);
	return skb_get(skb);
}

void rustic_skb_consume(struct sk_buff *skb)
{
	dev_consume_skb_any(skb);
}

/*
 * The L4 protocol byte of an IPv4 or IPv6 header, copied out (headers may
 * sit in fragments); 0 if there is none.
 */
static u8 rustic_skb_l4_proto(const struct sk_buff *skb)
{
	__be16 proto = vlan_get_protocol(skb);
	int off = skb_network_offset(skb);
	u8 l4 = 0;

	if (off < 0)
		return 0;
	if (proto == htons(ETH_P_IP))
		off += offsetof(struct iphdr, protocol);
	else if (proto == htons(ETH_P_IPV6))
		off += offsetof(struct ipv6hdr, nexthdr);
	else
		return 0;
	if (skb_copy_bits(skb, off, &l4, 1))
		return 0;
	return l4;
}

void rustic_skb_info(const struct sk_buff *skb, struct rustic_skb_info *out)
{
	const struct skb_shared_info *shinfo = skb_shinfo(skb);

	memset(out, 0, sizeof(*out));
	out->len = skb->len;
	if (skb->ip_summed == CHECKSUM_PARTIAL &&
	    skb_checksum_start_offset(skb) >= 0) {
		out->csum_partial = true;
		out->csum_start = skb_checksum_start_offset(skb);
		out->csum_offset = skb->csum_offset;
	}
	if (skb_is_gso(skb)) {
		out->gso_size = shinfo->gso_size;
		out->gso_segs = shinfo->gso_segs;
		if (shinfo->gso_type & SKB_GSO_TCPV4)
			out->gso_type |= RUSTIC_GSO_TCPV4;
		if (shinfo->gso_type & SKB_GSO_TCPV6)
			out->gso_type |= RUSTIC_GSO_TCPV6;
	}
	if (skb_vlan_tag_present(skb)) {
		out->vlan_present = true;
		out->vlan_tci = skb_vlan_tag_get(skb);
	}
	out->protocol = ntohs(skb->protocol);
	out->network_offset = skb_network_offset(skb);
	out->transport_offset = skb_transport_header_was_set(skb) ?
		skb_transport_offset(skb) : -1;
	out->l4_proto = rustic_skb_l4_proto(skb);
	out->hash = skb->hash;
	out->queue_mapping = skb_get_queue_mapping(skb);
}

/* --- queues and carrier --- */

void rustic_netdev_carrier(struct rustic_netdev *rdev, bool on)
{
	if (on)
		netif_carrier_on(to_ndev(rdev));
	else
		netif_carrier_off(to_ndev(rdev));
}

int rustic_netdev_set_queues(struct rustic_netdev *rdev, unsigned int n)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);
	bool taken;
	int ret;

	if (!n || n > priv->max_queues)
		return -EINVAL;
	taken = rustic_rtnl_begin(priv);
	ret = netif_set_real_num_queues(to_ndev(rdev), n, n);
	rustic_rtnl_end(taken);
	return ret;
}

unsigned int rustic_netdev_queues(struct rustic_netdev *rdev)
{
	return READ_ONCE(to_ndev(rdev)->real_num_tx_queues);
}

u16 rustic_netdev_max_queues(struct rustic_netdev *rdev)
{
	return to_priv(rdev)->max_queues;
}

void rustic_netdev_set_max_channels(struct rustic_netdev *rdev, u16 n)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);

	WRITE_ONCE(priv->channels_max, clamp_t(u16, n, 1, priv->max_queues));
}

void rustic_netdev_stop_queue(struct rustic_netdev *rdev, u16 q)
{
	struct net_device *dev = to_ndev(rdev);

	if (q < dev->num_tx_queues)
		netif_tx_stop_queue(netdev_get_tx_queue(dev, q));
}

void rustic_netdev_wake_queue(struct rustic_netdev *rdev, u16 q)
{
	struct net_device *dev = to_ndev(rdev);
	struct netdev_queue *txq;

	if (q >= dev->num_tx_queues)
		return;
	txq = netdev_get_tx_queue(dev, q);
	/*
	 * Orders the caller's freeing of ring space before the check; pairs
	 * with the barrier in rustic_ndo_start_xmit().
	 */
	smp_mb();
	if (netif_tx_queue_stopped(txq) && netif_running(dev) &&
	    netif_device_present(dev))
		netif_tx_wake_queue(txq);
}

void rustic_netdev_detach(struct rustic_netdev *rdev)
{
	struct net_device *dev = to_ndev(rdev);

	netif_device_detach(dev);
	/* Takes each queue's lock: no transmit is still running after it. */
	netif_tx_disable(dev);
}

void rustic_netdev_attach(struct rustic_netdev *rdev)
{
	netif_device_attach(to_ndev(rdev));
}

bool rustic_netdev_running(struct rustic_netdev *rdev)
{
	return netif_running(to_ndev(rdev));
}

u32 rustic_netdev_mtu(struct rustic_netdev *rdev)
{
	return READ_ONCE(to_ndev(rdev)->mtu);
}

bool rustic_netdev_queue_stopped(struct rustic_netdev *rdev, u16 q)
{
	struct net_device *dev = to_ndev(rdev);

	return q < dev->num_tx_queues &&
	       netif_tx_queue_stopped(netdev_get_tx_queue(dev, q));
}

/* --- configuration --- */

void rustic_netdev_set_features(struct rustic_netdev *rdev, u64 features)
{
	struct net_device *dev = to_ndev(rdev);
	netdev_features_t hw = 0;

	/* Afterwards it would need rtnl and netdev_update_features(). */
	if (WARN_ON_ONCE(dev->reg_state != NETREG_UNINITIALIZED))
		return;
	if (features & RUSTIC_NETDEV_F_TX_CSUM)
		hw |= NETIF_F_IP_CSUM | NETIF_F_IPV6_CSUM;
	if (features & RUSTIC_NETDEV_F_RX_CSUM)
		hw |= NETIF_F_RXCSUM;
	if (features & RUSTIC_NETDEV_F_TSO)
		hw |= NETIF_F_TSO | NETIF_F_TSO6;
	if (features & RUSTIC_NETDEV_F_SG)
		hw |= NETIF_F_SG;
	if (features & RUSTIC_NETDEV_F_VLAN_TX)
		hw |= NETIF_F_HW_VLAN_CTAG_TX;
	if (features & RUSTIC_NETDEV_F_VLAN_RX)
		hw |= NETIF_F_HW_VLAN_CTAG_RX;
	if (features & RUSTIC_NETDEV_F_RXHASH)
		hw |= NETIF_F_RXHASH;
	if (features & RUSTIC_NETDEV_F_LRO)
		hw |= NETIF_F_LRO;
	dev->hw_features = hw;
	dev->features = hw | NETIF_F_HIGHDMA;
	/* What VLAN devices on top may use: all but the tag offloads. */
	dev->vlan_features = dev->features &
		~(NETIF_F_HW_VLAN_CTAG_TX | NETIF_F_HW_VLAN_CTAG_RX);
}

int rustic_netdev_set_mac(struct rustic_netdev *rdev, const u8 *mac)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);
	struct net_device *dev = to_ndev(rdev);
	int ret = -EINVAL;
	bool taken;

	if (!is_valid_ether_addr(mac))
		return -EINVAL;
	/* register_netdev changes reg_state under rtnl. */
	taken = rustic_rtnl_begin(priv);
	if (dev->reg_state == NETREG_UNINITIALIZED) {
		eth_hw_addr_set(dev, mac);
		ret = 0;
	}
	rustic_rtnl_end(taken);
	return ret;
}

void rustic_netdev_set_max_mtu(struct rustic_netdev *rdev, unsigned int mtu)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);
	struct net_device *dev = to_ndev(rdev);
	bool taken;

	if (mtu < RUSTIC_NETDEV_MIN_MTU || mtu > RUSTIC_NETDEV_MAX_MTU)
		return;
	taken = rustic_rtnl_begin(priv);
	WRITE_ONCE(dev->max_mtu, mtu);
	rustic_rtnl_end(taken);
}

void rustic_netdev_set_tso_max(struct rustic_netdev *rdev, unsigned int size,
			       unsigned int segs)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);
	bool taken;

	taken = rustic_rtnl_begin(priv);
	netif_set_tso_max_size(to_ndev(rdev), size);
	netif_set_tso_max_segs(to_ndev(rdev), segs);
	rustic_rtnl_end(taken);
}

void rustic_netdev_set_link_speed(struct rustic_netdev *rdev, u32 mbps)
{
	WRITE_ONCE(to_priv(rdev)->speed, mbps);
}

void rustic_netdev_set_ring(struct rustic_netdev *rdev, u32 rx_pending,
			    u32 tx_pending)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);

	WRITE_ONCE(priv->rx_pending, rx_pending);
	WRITE_ONCE(priv->tx_pending, tx_pending);
}

void rustic_netdev_count_host_error(struct rustic_netdev *rdev)
{
	atomic64_inc(&to_priv(rdev)->host_errors);
}

void rustic_netdev_set_info(struct rustic_netdev *rdev, const char *bus_info)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);
	bool taken;

	/* ethtool reads it under rtnl. */
	taken = rustic_rtnl_begin(priv);
	strscpy(priv->bus_info, bus_info, sizeof(priv->bus_info));
	rustic_rtnl_end(taken);
}

const char *rustic_netdev_name(struct rustic_netdev *rdev)
{
	return to_ndev(rdev)->name;
}

void rustic_netdev_name_copy(struct rustic_netdev *rdev, char *buf)
{
	strscpy(buf, to_ndev(rdev)->name, IFNAMSIZ);
}

/* --- ethtool --- */

static void rustic_get_drvinfo(struct net_device *dev,
			       struct ethtool_drvinfo *info)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);

	strscpy(info->driver, "hv_rustic", sizeof(info->driver));
	strscpy(info->version, RUSTIC_VERSION, sizeof(info->version));
	strscpy(info->bus_info, priv->bus_info, sizeof(info->bus_info));
}

static int rustic_get_link_ksettings(struct net_device *dev,
				     struct ethtool_link_ksettings *cmd)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);
	u32 speed = READ_ONCE(priv->speed);

	cmd->base.speed = speed ? speed : SPEED_UNKNOWN;
	cmd->base.duplex = DUPLEX_FULL;
	cmd->base.port = PORT_OTHER;
	cmd->base.autoneg = AUTONEG_DISABLE;
	return 0;
}

static const char rustic_stat_totals[][ETH_GSTRING_LEN] = {
	"tx_packets", "tx_bytes", "rx_packets", "rx_bytes",
	"tx_dropped", "rx_dropped", "host_errors",
};
#define RUSTIC_STATS_PER_QUEUE 4

/* Called with rtnl held, as set_queues changes the queue count. */
static int rustic_get_sset_count(struct net_device *dev, int sset)
{
	if (sset != ETH_SS_STATS)
		return -EOPNOTSUPP;
	return ARRAY_SIZE(rustic_stat_totals) +
	       RUSTIC_STATS_PER_QUEUE * dev->real_num_tx_queues;
}

static void rustic_get_strings(struct net_device *dev, u32 sset, u8 *data)
{
	unsigned int i, q;

	if (sset != ETH_SS_STATS)
		return;
	for (i = 0; i < ARRAY_SIZE(rustic_stat_totals); i++)
		ethtool_puts(&data, rustic_stat_totals[i]);
	for (q = 0; q < dev->real_num_tx_queues; q++) {
		ethtool_sprintf(&data, "tx_queue_%u_packets", q);
		ethtool_sprintf(&data, "tx_queue_%u_bytes", q);
		ethtool_sprintf(&data, "rx_queue_%u_packets", q);
		ethtool_sprintf(&data, "rx_queue_%u_bytes", q);
	}
}

static void rustic_get_ethtool_stats(struct net_device *dev,
				     struct ethtool_stats *stats, u64 *data)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);
	struct rustic_queue_stats s;
	unsigned int q;

	rustic_totals(priv, &s);
	*data++ = s.tx_packets;
	*data++ = s.tx_bytes;
	*data++ = s.rx_packets;
	*data++ = s.rx_bytes;
	*data++ = s.tx_dropped;
	*data++ = s.rx_dropped;
	*data++ = atomic64_read(&priv->host_errors);
	for (q = 0; q < dev->real_num_tx_queues && q < priv->max_queues; q++) {
		rustic_queue_read(&priv->queues[q], &s);
		*data++ = s.tx_packets;
		*data++ = s.tx_bytes;
		*data++ = s.rx_packets;
		*data++ = s.rx_bytes;
	}
}

static void rustic_get_channels(struct net_device *dev,
				struct ethtool_channels *ch)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);

	ch->max_combined = READ_ONCE(priv->channels_max);
	ch->combined_count = dev->real_num_tx_queues;
}

static int rustic_set_channels(struct net_device *dev,
			       struct ethtool_channels *ch)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);
	int ret;

	if (ch->rx_count || ch->tx_count || ch->other_count)
		return -EINVAL;
	if (!ch->combined_count ||
	    ch->combined_count > READ_ONCE(priv->channels_max))
		return -EINVAL;
	if (!priv->ops->set_channels)
		return -EOPNOTSUPP;
	rustic_op_begin(priv);
	ret = priv->ops->set_channels(priv->owner, RDEV(dev),
				      ch->combined_count);
	rustic_op_end(priv);
	return ret;
}

static void rustic_get_ringparam(struct net_device *dev,
				 struct ethtool_ringparam *ring,
				 struct kernel_ethtool_ringparam *kring,
				 struct netlink_ext_ack *extack)
{
	struct rustic_netdev_priv *priv = netdev_priv(dev);

	ring->rx_pending = READ_ONCE(priv->rx_pending);
	ring->rx_max_pending = ring->rx_pending;
	ring->tx_pending = READ_ONCE(priv->tx_pending);
	ring->tx_max_pending = ring->tx_pending;
}

static const struct ethtool_ops rustic_ethtool_ops = {
	.get_drvinfo = rustic_get_drvinfo,
	.get_link = ethtool_op_get_link,
	.get_link_ksettings = rustic_get_link_ksettings,
	.get_sset_count = rustic_get_sset_count,
	.get_strings = rustic_get_strings,
	.get_ethtool_stats = rustic_get_ethtool_stats,
	.get_channels = rustic_get_channels,
	.set_channels = rustic_set_channels,
	.get_ringparam = rustic_get_ringparam,
};

/* --- life cycle --- */

struct rustic_netdev *rustic_netdev_new(void *owner,
					const struct rustic_netdev_ops *ops,
					const u8 *mac, unsigned int max_queues,
					struct device *parent)
{
	struct rustic_netdev_priv *priv;
	struct net_device *dev;
	unsigned int q;

	if (!ops || !ops->open || !ops->stop || !ops->xmit || !ops->poll ||
	    !ops->change_mtu || !max_queues)
		return NULL;
	max_queues = min(max_queues, RUSTIC_NETDEV_MAX_QUEUES);
	dev = alloc_etherdev_mqs(struct_size(priv, queues, max_queues),
				 max_queues, max_queues);
	if (!dev)
		return NULL;
	priv = netdev_priv(dev);
	priv->max_queues = max_queues;
	priv->channels_max = max_queues;
	priv->dev = dev;
	priv->owner = owner;
	priv->ops = ops;
	mutex_init(&priv->napi_lock);

	dev->netdev_ops = &rustic_netdev_ndo;
	dev->ethtool_ops = &rustic_ethtool_ops;
	dev->min_mtu = RUSTIC_NETDEV_MIN_MTU;
	dev->max_mtu = RUSTIC_NETDEV_MAX_MTU;
	dev->features = NETIF_F_HIGHDMA;
	eth_hw_addr_set(dev, mac);
	if (parent) {
		priv->parent = get_device(parent);
		SET_NETDEV_DEV(dev, parent);
	}
	/* Not registered: no rtnl needed, and it cannot fail for 1 <= max. */
	if (netif_set_real_num_queues(dev, 1, 1))
		goto free;

	for (q = 0; q < max_queues; q++) {
		struct rustic_netdev_queue *rq = &priv->queues[q];

		rq->priv = priv;
		rq->index = q;
		rq->poll_cpu = -1;
		u64_stats_init(&rq->rx_syncp);
		u64_stats_init(&rq->tx_syncp);
		spin_lock_init(&rq->tx_lock);
		/* Disabled until rustic_netdev_napi_enable(). */
		netif_napi_add(dev, &rq->napi, rustic_napi_poll);
	}
	/* Until the driver hears from the host that the link is up. */
	netif_carrier_off(dev);
	return RDEV(dev);

free:
	put_device(priv->parent);
	free_netdev(dev);
	return NULL;
}

int rustic_netdev_register(struct rustic_netdev *rdev)
{
	return register_netdev(to_ndev(rdev));
}

void rustic_netdev_unregister(struct rustic_netdev *rdev)
{
	unregister_netdev(to_ndev(rdev));
}

void rustic_netdev_free(struct rustic_netdev *rdev)
{
	struct rustic_netdev_priv *priv = to_priv(rdev);
	struct device *parent = priv->parent;
	unsigned int q;

	might_sleep();
	for (q = 0; q < priv->max_queues; q++)
		rustic_netdev_napi_disable(rdev, q);
	/* One RCU grace period for all, not one per netif_napi_del(). */
	for (q = 0; q < priv->max_queues; q++)
		__netif_napi_del(&priv->queues[q].napi);
	synchronize_net();
	mutex_destroy(&priv->napi_lock);
	free_netdev(to_ndev(rdev));
	put_device(parent);
}
