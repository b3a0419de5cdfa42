#!/usr/bin/env bash
# The kernel module compiles each kernel-independent core crate by listing
# its modules again (rustic.rs); the two lists must name the same modules.
# One KTAP case per crate, on stdout.
cd "$(dirname "$0")/../.."

# check N NAME LIB_RS BLOCK: compare the `pub mod x;` lines of LIB_RS with
# those inside `pub mod BLOCK { ... }` in rustic.rs.
check() {
  local n=$1 name=$2 lib=$3 block=$4 cargo_list kernel_list
  cargo_list=$(sed -n 's/^pub mod \([a-z_0-9]*\);/\1/p' "$lib" | sort)
  kernel_list=$(sed -n "/^pub mod $block {/,/^}/s/^ *pub mod \([a-z_0-9]*\);/\1/p" rustic.rs | sort)
  if [ -n "$cargo_list" ] && [ "$cargo_list" = "$kernel_list" ]; then
    echo "ok $n $name-module-lists-match"
  else
    diff <(echo "$cargo_list") <(echo "$kernel_list") | sed 's/^/# /'
    echo "not ok $n $name-module-lists-match # $lib and rustic.rs differ"
  fi
}

echo "KTAP version 1"
echo "1..2"
check 1 vmbus-core vmbus/core/src/lib.rs vmbus_core
check 2 netvsc-core net/core/src/lib.rs netvsc_core
