/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of hv_rustic.ko that Rust calls: declarations of the shims in
 * rust/shim.c and tests/kunit/suite.c. The module's Kbuild runs bindgen over
 * this header into rust/bindings_generated.rs (only `rustic_*` names pass).
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

#endif
