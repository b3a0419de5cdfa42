// SPDX-License-Identifier: BSD-3-Clause
/*
 * Benchmark driver for tools/hv/vmbus_bufring.c (the userspace ring used by
 * the hv_fcopy_uio daemon), compiled from linux-source-6.12 by run.sh.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include "vmbus_bufring.h"

/*
 * vmbus_bufring.c's ALIGN() rounds down, so rte_vmbus_chan_send() computes a
 * negative pad (a ~4 GiB memcpy) for any length that is not a multiple of 8.
 * Its one user sends aligned lengths only; we do the same and send the
 * payload rounded up to 8 bytes (1504 instead of 1500).
 */
static uint32_t sendable(uint32_t size)
{
	return (size + 7) & ~7u;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

struct pair { struct vmbus_br tx, rx; void *mem; };

static void setup(struct pair *p, size_t data)
{
	p->mem = aligned_alloc(4096, 4096 + data);
	memset(p->mem, 0, 4096);
	vmbus_br_setup(&p->tx, p->mem, 4096 + data);
	vmbus_br_setup(&p->rx, p->mem, 4096 + data);
}

static uint64_t drain(struct pair *p, uint8_t *dst, uint64_t budget, uint64_t *bytes)
{
	uint64_t n = 0;

	while (n < budget) {
		uint32_t len = 65536 + 4096;

		if (rte_vmbus_chan_recv_raw(&p->rx, dst, &len) <= 0)
			break;
		*bytes += len - 16;
		n++;
	}
	return n;
}

uint64_t bufring_single(uint32_t size, uint64_t packets, size_t data, uint64_t *bytes)
{
	struct pair p;
	uint8_t *src = calloc(1, sendable(size)), *dst = malloc(65536 + 4096);
	uint64_t sent = 0, got = 0, t;

	setup(&p, data);
	t = now_ns();
	while (got < packets) {
		while (sent < packets && rte_vmbus_chan_send(&p.tx, 6, src, sendable(size), 0) == 0)
			sent++;
		got += drain(&p, dst, UINT64_MAX, bytes);
	}
	t = now_ns() - t;
	free(p.mem);
	free(src);
	free(dst);
	return t;
}

struct barg { struct pair *p; uint32_t size; uint64_t packets; };

static void *bwriter(void *v)
{
	struct barg *a = v;
	uint8_t *src = calloc(1, sendable(a->size));

	for (uint64_t i = 0; i < a->packets; i++)
		while (rte_vmbus_chan_send(&a->p->tx, 6, src, sendable(a->size), 0))
			__builtin_ia32_pause();
	free(src);
	return NULL;
}

uint64_t bufring_threads(uint32_t size, uint64_t packets, size_t data, uint64_t *bytes)
{
	struct pair p;
	struct barg a = { &p, size, packets };
	uint8_t *dst = malloc(65536 + 4096);
	pthread_t w;
	uint64_t got = 0, t;

	setup(&p, data);
	t = now_ns();
	pthread_create(&w, NULL, bwriter, &a);
	while (got < packets) {
		uint64_t n = drain(&p, dst, 64, bytes);

		if (!n)
			__builtin_ia32_pause();
		got += n;
	}
	pthread_join(w, NULL);
	t = now_ns() - t;
	free(p.mem);
	free(dst);
	return t;
}
