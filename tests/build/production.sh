#!/usr/bin/env bash
# The production module (plain `make`, built by the build layer just before
# this runs) carries none of what Kbuild compiles only with
# RUSTIC_TEST_BUILD=1: the debugfs control, the simulator and its
# parameters, the host side of the device protocols, the test and echo
# drivers, the KUnit suite. Each is looked for by its C symbols and by the
# module path in its mangled Rust symbols (v0 and legacy mangling both spell
# `testing::sim` as `7testing3sim`). KTAP on stdout.
#
#   production.sh [KO]   KO: another module file (default ./hv_rustic.ko); the
#                        test build (RUSTIC_TEST_BUILD=1) fails cases 1, 3, 5-7
set -u
cd "$(dirname "$0")/../.."
ko=${1:-hv_rustic.ko}
cases=(production-module-has-no-test-control production-module-has-the-bus
       production-module-has-no-simulator production-module-stack-frames
       production-module-has-no-host-protocol production-module-has-no-test-drivers
       production-module-has-no-kunit)
echo "KTAP version 1"
echo "1..${#cases[@]}"
if [ ! -f "$ko" ]; then
  for i in "${!cases[@]}"; do echo "not ok $((i + 1)) ${cases[$i]} # no $ko"; done
  exit 0
fi
syms=$(nm "$ko" 2>/dev/null)
names=$(awk '{ print $NF }' <<<"$syms")

# absent N WHAT FOUND: case N passes when FOUND (one match a line) is empty.
absent() {
  local n=$1 what=$2 found
  # Shortest first: C names and parameters before mangled Rust paths.
  found=$(awk 'NF { print length($0), $0 }' <<<"$3" | sort -n -s -k1,1 | cut -d' ' -f2-)
  if [ -z "$found" ]; then
    echo "ok $n ${cases[$((n - 1))]}"
  else
    printf '%s\n' "$found" | head -n 3 | cut -c1-200 | sed 's/^/# /'
    echo "not ok $n ${cases[$((n - 1))]} # $what in $ko: $(grep -c . <<<"$found"), e.g. $(head -n 1 <<<"$found" | cut -c1-120)"
  fi
}
# The checks by module path need the crate's Rust symbols to be there.
if ! grep -q '6rustic' <<<"$names"; then
  rust_missing="no mangled Rust symbol of the crate (6rustic) in $ko"
fi
by_path() { # by_path WHAT REGEX: Rust symbols whose path matches
  if [ -n "${rust_missing:-}" ]; then echo "($rust_missing)"; else grep -E -- "$2" <<<"$names"; fi
}

# 1. The debugfs control (rust/base/debugfs.*): its C functions, its Rust
#    module, and any use of debugfs.
absent 1 "debugfs control" "$(grep -E 'rustic_test_ctl|debugfs' <<<"$names"; by_path debugfs '4base7debugfs')"

if grep -q ' T rustic_vmbus_bus_register$' <<<"$syms"; then
  echo "ok 2 ${cases[1]}"
else
  echo "not ok 2 ${cases[1]} # no rustic_vmbus_bus_register in $ko"
fi

# 3. The simulator: its kernel side (rust/sim: rustic_sim_* and the
#    simulate, sim_versions, sim_devices parameters), the simulated host
#    (tests/sim) and the device models (drivers/<class>/sim).
absent 3 "simulator code or its parameters" "$(
  grep -E '^rustic_sim_' <<<"$names"
  modinfo -F parm "$ko" 2>/dev/null | grep -E '^(simulate|sim_[a-z_]*):' | sed 's/^/parameter /'
  by_path simulator '4rust3sim|7testing3sim|7drivers[0-9]+[a-z0-9_]+3sim')"

# Kernel stacks are 16 KiB and Rust builds big values in place only
# sometimes: no function of the module may take more than 4 KiB of stack
# (the C build warns at 2 KiB; Rust has no such check). One that did made
# the module's init overflow the stack.
limit=4096
big=$(objdump -d --no-show-raw-insn "$ko" | awk -v limit=$limit '
  /^[0-9a-f]+ <.*>:$/ { fn = $2 }
  /sub +\$0x[0-9a-f]+,%rsp/ {
    match($0, /\$0x[0-9a-f]+/); n = 0; hex = substr($0, RSTART + 3, RLENGTH - 3)
    for (i = 1; i <= length(hex); i++) n = n * 16 + index("0123456789abcdef", substr(hex, i, 1)) - 1
    if (n > limit) print n, fn
  }')
if [ -n "$big" ]; then
  echo "not ok 4 ${cases[3]} # over $limit bytes: $(echo "$big" | head -n 3 | tr '\n' ' ')"
else
  echo "ok 4 ${cases[3]}"
fi

# 5. The host side of each device protocol: the modules a proto crate
#    compiles only with its `host` feature (read from its lib.rs), and the
#    simulated VMBus host (testing::sim).
host_mods=$(for lib in drivers/*/proto/src/lib.rs; do
  awk '/^#\[cfg\(feature = "host"\)\]$/ { host = 1; next }
       host && match($0, /^pub(\([a-z]+\))? mod [a-z0-9_]+;/) { sub(/;.*/, ""); print $NF }
       { host = 0 }' "$lib"
done)
if [ -z "$host_mods" ]; then
  echo "not ok 5 ${cases[4]} # found no host-side module (#[cfg(feature = \"host\")] pub mod) in drivers/*/proto/src/lib.rs"
else
  pattern="7testing3sim"
  for m in $host_mods; do pattern="$pattern|5proto${#m}$m"; done
  absent 5 "host-side protocol code ($(echo $host_mods | tr ' ' ,), testing::sim)" "$(by_path host "$pattern")"
fi

# 6. The test and echo drivers (tests/drivers; their driver names), and
#    anything else of crate::testing.
absent 6 "test-build drivers" "$(
  grep -aoE 'rustic_(test|echo)[a-z_]*' "$ko" | sort -u
  by_path testing '7testing')"

# 7. The KUnit suite (tests/kunit, rust/base/kunit.rs) and KUnit itself.
absent 7 "KUnit" "$(
  grep -i kunit <<<"$names"
  objdump -h "$ko" | awk '$2 ~ /kunit/ { print "section " $2 }')"
