/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Just enough of the kernel's environment to compile the ring algorithm of
 * drivers/hv/ring_buffer.c in userspace for the benchmark. run.sh extracts
 * the functions from linux-source-6.12 at bench time; nothing of the kernel
 * is kept in this repository. Barriers are x86's: virt_mb is a full fence,
 * virt_rmb a compiler barrier (smp_rmb on x86), as in the kernel.
 */
#ifndef RUSTIC_KSHIM_H
#define RUSTIC_KSHIM_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define barrier() __asm__ __volatile__("" ::: "memory")
#define virt_mb() __asm__ __volatile__("lock; addl $0,-4(%%rsp)" ::: "memory", "cc")
#define virt_rmb() barrier()
#define virt_wmb() barrier()
#define virt_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define min(a, b) ((a) < (b) ? (a) : (b))
#define pr_err_ratelimited(...) do { } while (0)
#define EXPORT_SYMBOL_GPL(x)
#define hv_debug_delay_test(c, t) do { } while (0)

/* An uncontended kernel spinlock is one atomic RMW to take, a store to drop. */
typedef struct { int v; } spinlock_t;
#define spin_lock_irqsave(l, f) do { (void)(f); \
	while (__atomic_exchange_n(&(l)->v, 1, __ATOMIC_ACQUIRE)) \
		__builtin_ia32_pause(); } while (0)
#define spin_unlock_irqrestore(l, f) __atomic_store_n(&(l)->v, 0, __ATOMIC_RELEASE)

#define VMBUS_NO_RQSTOR U64_MAX
#define VMBUS_RQST_ERROR (U64_MAX - 1)
#define U64_MAX UINT64_MAX
#define VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED 1

struct kvec { void *iov_base; size_t iov_len; };

/* Header page layout of a Hyper-V ring (see the Rust RingHeader). */
struct hv_ring_buffer {
	u32 write_index;
	u32 read_index;
	u32 interrupt_mask;
	u32 pending_send_sz;
	u32 reserved1[12];
	union { struct { u32 feat_pending_send_sz:1; }; u32 value; } feature_bits;
	u8 reserved2[4096 - 68];
	u8 buffer[];
} __attribute__((packed));

struct vmpacket_descriptor {
	u16 type;
	u16 offset8;
	u16 len8;
	u16 flags;
	u64 trans_id;
} __attribute__((packed));

struct hv_ring_buffer_info {
	struct hv_ring_buffer *ring_buffer;
	u32 ring_size;
	u32 ring_datasize;
	spinlock_t ring_lock;
	u32 priv_read_index;
	void *pkt_buffer;
	u32 pkt_buffer_size;
};

struct vmbus_channel {
	struct hv_ring_buffer_info outbound;
	struct hv_ring_buffer_info inbound;
	bool rescind;
	bool out_full_flag;
	u64 out_full_total, out_full_first, intr_out_empty, intr_in_full;
	u64 (*next_request_id_callback)(struct vmbus_channel *, u64);
	void (*request_addr_callback)(struct vmbus_channel *, u64);
	struct { u32 child_relid; } offermsg;
	u64 signals;
};

#define VMBUS_PKT_TRAILER 8

static inline void *hv_get_ring_buffer(const struct hv_ring_buffer_info *rbi)
{
	return rbi->ring_buffer->buffer;
}

static inline void vmbus_setevent(struct vmbus_channel *c) { c->signals++; }

/* Free bytes for the writer, from the shared indices. */
static inline u32 hv_get_bytes_to_write(const struct hv_ring_buffer_info *rbi)
{
	u32 r = READ_ONCE(rbi->ring_buffer->read_index);
	u32 w = rbi->ring_buffer->write_index;

	return w >= r ? rbi->ring_datasize - (w - r) : r - w;
}

#endif
