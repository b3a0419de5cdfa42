// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite of hv_rustic.ko. The cases are Rust functions (tests/kunit/
 * cases.rs) that run kernel-independent code inside the kernel, with the
 * kernel's compiler flags, overflow checks and allocator; they report
 * failures through rustic_kunit_fail().
 */
#include <kunit/test.h>
#include "../../rust/bindings_helper.h"

void rustic_kunit_fail(struct kunit *test, const char *file, int line,
		       const char *what)
{
	KUNIT_FAIL(test, "%s:%d: check failed: %s", file, line, what);
}

/* Implemented in Rust. */
void rustic_kunit_guid_text_round_trip(struct kunit *test);
void rustic_kunit_guid_rejects_malformed(struct kunit *test);
void rustic_kunit_ring_round_trip(struct kunit *test);
void rustic_kunit_ring_corrupt_index_poisons(struct kunit *test);
void rustic_kunit_bus_formats(struct kunit *test);

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
kunit_test_suite(rustic_core_suite);
