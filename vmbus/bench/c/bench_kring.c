// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark driver for the kernel's ring algorithm (drivers/hv/ring_buffer.c,
 * extracted by run.sh into kernel_ring_fns.c). The data area is mapped twice
 * back to back, as the kernel does, because the kernel's copies rely on it.
 */
#define _GNU_SOURCE
#include "kshim.h"
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kernel_ring_fns.c"

static u64 now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (u64)t.tv_sec * 1000000000u + t.tv_nsec;
}

static struct hv_ring_buffer *map_ring(size_t data)
{
	int fd = memfd_create("kring", 0);
	u8 *base;

	if (fd < 0 || ftruncate(fd, 4096 + data))
		abort();
	base = mmap(NULL, 4096 + 2 * data, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED ||
	    mmap(base, 4096 + data, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
	    mmap(base + 4096 + data, data, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 4096) == MAP_FAILED)
		abort();
	close(fd);
	memset(base, 0, 4096);
	((struct hv_ring_buffer *)base)->feature_bits.value = 1;
	return (struct hv_ring_buffer *)base;
}

static void setup(struct vmbus_channel *ch, size_t data)
{
	struct hv_ring_buffer *rb = map_ring(data);

	memset(ch, 0, sizeof(*ch));
	ch->outbound.ring_buffer = ch->inbound.ring_buffer = rb;
	ch->outbound.ring_datasize = ch->inbound.ring_datasize = data;
	ch->outbound.ring_size = ch->inbound.ring_size = data + 4096;
	ch->inbound.pkt_buffer_size = 65536 + 4096;
	ch->inbound.pkt_buffer = malloc(ch->inbound.pkt_buffer_size);
}

static void teardown(struct vmbus_channel *ch, size_t data)
{
	munmap(ch->outbound.ring_buffer, 4096 + 2 * data);
	free(ch->inbound.pkt_buffer);
}

/* Sends one in-band packet the way vmbus_sendpacket() builds it. */
static int send(struct vmbus_channel *ch, const void *buf, u32 len, u64 id)
{
	static const u64 zero;
	struct vmpacket_descriptor d;
	u32 packetlen = sizeof(d) + len, aligned = (packetlen + 7) & ~7u;
	struct kvec kv[3] = {
		{ &d, sizeof(d) }, { (void *)buf, len }, { (void *)&zero, aligned - packetlen },
	};

	d.type = 6;
	d.flags = 0;
	d.offset8 = sizeof(d) >> 3;
	d.len8 = aligned >> 3;
	d.trans_id = 0;
	return hv_ringbuffer_write(ch, kv, 3, id, NULL);
}

/* Reads up to `budget` packets, then publishes the read index. */
static u64 drain(struct vmbus_channel *ch, u64 budget, u64 *bytes)
{
	struct vmpacket_descriptor *d = hv_pkt_iter_first(ch);
	u64 n = 0;

	while (d && n < budget) {
		*bytes += (d->len8 << 3) - (d->offset8 << 3);
		n++;
		d = __hv_pkt_iter_next(ch, d);
	}
	hv_pkt_iter_close(ch);
	return n;
}

u64 kring_single(u32 size, u64 packets, size_t data, u64 *bytes)
{
	struct vmbus_channel ch;
	u8 *src = calloc(1, size);
	u64 sent = 0, got = 0, t;

	setup(&ch, data);
	t = now_ns();
	while (got < packets) {
		while (sent < packets && send(&ch, src, size, sent) == 0)
			sent++;
		got += drain(&ch, UINT64_MAX, bytes);
	}
	t = now_ns() - t;
	teardown(&ch, data);
	free(src);
	return t;
}

struct kthread_arg { struct vmbus_channel *ch; u32 size; u64 packets; };

static void *kwriter(void *p)
{
	struct kthread_arg *a = p;
	u8 *src = calloc(1, a->size);

	for (u64 i = 0; i < a->packets; i++)
		while (send(a->ch, src, a->size, i))
			__builtin_ia32_pause();
	free(src);
	return NULL;
}

u64 kring_threads(u32 size, u64 packets, size_t data, u64 *bytes)
{
	struct vmbus_channel ch;
	struct kthread_arg a = { &ch, size, packets };
	pthread_t w;
	u64 got = 0, t;

	setup(&ch, data);
	t = now_ns();
	pthread_create(&w, NULL, kwriter, &a);
	while (got < packets) {
		u64 n = drain(&ch, 64, bytes);

		if (!n)
			__builtin_ia32_pause();
		got += n;
	}
	pthread_join(w, NULL);
	t = now_ns() - t;
	teardown(&ch, data);
	return t;
}
