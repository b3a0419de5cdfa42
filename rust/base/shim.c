// SPDX-License-Identifier: GPL-2.0
/*
 * C pieces of hv_rustic.ko that Rust on 6.12 cannot express: module
 * metadata beyond what `module!` writes, and small wrappers.
 */
#include <linux/module.h>
#include "../bindings_helper.h"

MODULE_VERSION(RUSTIC_VERSION);

const char *rustic_version(void)
{
	return RUSTIC_VERSION;
}
