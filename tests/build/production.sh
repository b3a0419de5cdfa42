#!/usr/bin/env bash
# The production module (plain `make`, built by the build layer just before
# this runs) carries neither the test builds' debugfs control nor their test
# driver; both are compiled only with RUSTIC_TEST_BUILD=1. KTAP on stdout.
set -u
cd "$(dirname "$0")/../.."
ko=hv_rustic.ko
echo "KTAP version 1"
echo "1..4"
if [ ! -f "$ko" ]; then
  echo "not ok 1 production-module-has-no-test-control # no $ko"
  echo "not ok 2 production-module-has-the-bus # no $ko"
  echo "not ok 3 production-module-has-no-simulator # no $ko"
  echo "not ok 4 production-module-stack-frames # no $ko"
  exit 0
fi
syms=$(nm "$ko" 2>/dev/null)
if printf '%s\n' "$syms" | grep -q 'rustic_test_ctl' || grep -aq 'rustic_test' "$ko"; then
  echo "not ok 1 production-module-has-no-test-control # test-build code in $ko"
else
  echo "ok 1 production-module-has-no-test-control"
fi
if printf '%s\n' "$syms" | grep -q ' T rustic_vmbus_bus_register'; then
  echo "ok 2 production-module-has-the-bus"
else
  echo "not ok 2 production-module-has-the-bus # no rustic_vmbus_bus_register in $ko"
fi
if printf '%s\n' "$syms" | grep -q 'rustic_sim_' || modinfo -F parm "$ko" 2>/dev/null | grep -q '^simulate:'; then
  echo "not ok 3 production-module-has-no-simulator # simulator code or its parameters in $ko"
else
  echo "ok 3 production-module-has-no-simulator"
fi
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
  echo "not ok 4 production-module-stack-frames # over $limit bytes: $(echo "$big" | head -n 3 | tr '\n' ' ')"
else
  echo "ok 4 production-module-stack-frames"
fi
