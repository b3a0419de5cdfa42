#!/usr/bin/env bash
# The kernel module compiles vmbus-core by listing its modules again
# (rustic.rs); the two lists must name the same modules. KTAP on stdout.
cd "$(dirname "$0")/../.."
cargo_list=$(sed -n 's/^pub mod \([a-z_0-9]*\);/\1/p' vmbus/core/src/lib.rs | sort)
kernel_list=$(sed -n '/^pub mod vmbus_core {/,/^}/s/^ *pub mod \([a-z_0-9]*\);/\1/p' rustic.rs | sort)
echo "KTAP version 1"
echo "1..1"
if [ -n "$cargo_list" ] && [ "$cargo_list" = "$kernel_list" ]; then
  echo "ok 1 vmbus-core-module-lists-match"
else
  diff <(echo "$cargo_list") <(echo "$kernel_list") | sed 's/^/# /'
  echo "not ok 1 vmbus-core-module-lists-match # vmbus/core/src/lib.rs and rustic.rs differ"
fi
