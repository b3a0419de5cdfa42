// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite of hv_rustic.ko. The cases are Rust functions (tests/kunit/
 * cases.rs) that run kernel-independent code inside the kernel, with the
 * kernel's compiler flags, overflow checks and allocator, and drive the
 * net_device shim as the stack would; they report failures through
 * rustic_kunit_fail().
 */
#include <kunit/test.h>
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/addrconf.h>
#include "../../rust/bindings_helper.h"

void rustic_kunit_fail(struct kunit *test, const char *file, int line,
		       const char *what)
{
	KUNIT_FAIL(test, "%s:%d: check failed: %s", file, line, what);
}

/* A rustic_netdev is its net_device (rust/net/netdev.c). */
int rustic_kunit_netdev_open(struct rustic_netdev *rdev)
{
	struct net_device *dev = (struct net_device *)rdev;
	int ret;

	rtnl_lock();
#if IS_ENABLED(CONFIG_IPV6)
	/*
	 * No IPv6 on the test device: once up, addrconf would send its own
	 * frames (DAD, router solicitations, MLD) through the loopback
	 * driver, and the case counts exactly the frames it sends.
	 */
	{
		struct inet6_dev *idev = __in6_dev_get(dev);

		if (idev)
			WRITE_ONCE(idev->cnf.disable_ipv6, 1);
	}
#endif
	ret = dev_open(dev, NULL);
	rtnl_unlock();
	return ret;
}

int rustic_kunit_netdev_xmit(struct rustic_netdev *rdev, u16 queue,
			     const u8 *frame, unsigned int len)
{
	struct net_device *dev = (struct net_device *)rdev;
	struct sk_buff *skb;

	if (len < ETH_HLEN)
		return -EINVAL;
	skb = alloc_skb(len, GFP_KERNEL);
	if (!skb)
		return -ENOMEM;
	skb_put_data(skb, frame, len);
	skb->dev = dev;
	skb_reset_mac_header(skb);
	skb_set_network_header(skb, ETH_HLEN);
	skb->protocol = eth_hdr(skb)->h_proto;
	/* With no XPS map, the stack's hash picks a recorded RX queue. */
	skb_record_rx_queue(skb, queue);
	return dev_queue_xmit(skb);
}

void rustic_kunit_netdev_stats(struct rustic_netdev *rdev, u64 *out)
{
	struct rtnl_link_stats64 s;

	dev_get_stats((struct net_device *)rdev, &s);
	out[0] = s.tx_packets;
	out[1] = s.tx_bytes;
	out[2] = s.rx_packets;
	out[3] = s.rx_bytes;
}

void rustic_kunit_netdev_ethtool(struct rustic_netdev *rdev, unsigned int count,
				 s64 *out)
{
	struct net_device *dev = (struct net_device *)rdev;
	const struct ethtool_ops *ops = dev->ethtool_ops;
	struct ethtool_channels ch = { .combined_count = count };

	rtnl_lock();
	out[0] = ops->set_channels(dev, &ch);
	out[1] = ops->get_sset_count(dev, ETH_SS_STATS);
	memset(&ch, 0, sizeof(ch));
	ops->get_channels(dev, &ch);
	out[2] = ch.max_combined;
	out[3] = ch.combined_count;
	out[4] = dev_set_mtu(dev, 9000);
	out[5] = dev->mtu;
	out[6] = dev_set_promiscuity(dev, 1);
	out[7] = -1;
	if (out[1] > 6) {
		u64 *stats = kcalloc(out[1], sizeof(*stats), GFP_KERNEL);
		u8 *names = kcalloc(out[1], ETH_GSTRING_LEN, GFP_KERNEL);

		if (stats && names) {
			ops->get_strings(dev, ETH_SS_STATS, names);
			ops->get_ethtool_stats(dev, NULL, stats);
			if (!strcmp((const char *)names + 6 * ETH_GSTRING_LEN,
				    "host_errors"))
				out[7] = stats[6];
		}
		kfree(stats);
		kfree(names);
	}
	rtnl_unlock();
}

/* Implemented in Rust. */
void rustic_kunit_guid_text_round_trip(struct kunit *test);
void rustic_kunit_guid_rejects_malformed(struct kunit *test);
void rustic_kunit_ring_round_trip(struct kunit *test);
void rustic_kunit_ring_corrupt_index_poisons(struct kunit *test);
void rustic_kunit_bus_formats(struct kunit *test);
void rustic_kunit_netdev_traffic(struct kunit *test);

static struct kunit_case rustic_core_cases[] = {
	KUNIT_CASE(rustic_kunit_guid_text_round_trip),
	KUNIT_CASE(rustic_kunit_guid_rejects_malformed),
	KUNIT_CASE(rustic_kunit_ring_round_trip),
	KUNIT_CASE(rustic_kunit_ring_corrupt_index_poisons),
	KUNIT_CASE(rustic_kunit_bus_formats),
	{}
};

static struct kunit_suite rustic_core_suite = {
	.name = "rustic_core",
	.test_cases = rustic_core_cases,
};

/* The net_device shim (rust/net/netdev.c/.rs) with a loopback driver. */
static struct kunit_case rustic_netdev_cases[] = {
	KUNIT_CASE(rustic_kunit_netdev_traffic),
	{}
};

static struct kunit_suite rustic_netdev_suite = {
	.name = "rustic_netdev",
	.test_cases = rustic_netdev_cases,
};
kunit_test_suites(&rustic_core_suite, &rustic_netdev_suite);
