# Helpers for guest scenarios (sourced). Each scenario is one KTAP test: it
# exits non-zero on the first failed check, saying why.

RUSTIC_KO=/lib/modules/rustic/hv_rustic.ko

fail() {
  echo "FAIL: $*"
  exit 1
}

# A scenario that ends, however it ends, leaves no background job behind: a
# writer still in a debugfs file holds the module and fails the next
# scenario's insmod.
trap 'kill -KILL $(jobs -p) 2> /dev/null; wait' EXIT

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

rustic_load() {
  insmod "$RUSTIC_KO" "$@" || fail "insmod hv_rustic.ko failed"
  [ -d /sys/module/hv_rustic ] || fail "hv_rustic not in /sys/module after insmod"
}

rustic_unload() {
  rmmod hv_rustic || fail "rmmod hv_rustic failed"
  [ ! -d /sys/module/hv_rustic ] || fail "hv_rustic still in /sys/module after rmmod"
}

# kmemleak_reset: forget what kmemleak has seen so far, so a later
# kmemleak_check reports only objects allocated after this point.
kmemleak_reset() {
  [ -w /sys/kernel/debug/kmemleak ] || fail "kmemleak is not available"
  echo scan > /sys/kernel/debug/kmemleak
  echo clear > /sys/kernel/debug/kmemleak
}

# kmemleak_check: scan and fail on any unreferenced object. kmemleak does not
# report objects younger than 5 seconds (MSECS_MIN_AGE in mm/kmemleak.c), so
# the scan waits out that age first; it is the detector's documented
# threshold, not a guess at timing.
#
# A scan reports only objects it finds unreferenced *and* unchanged since
# the scan before (update_checksum() in mm/kmemleak.c); a first scan after
# an object's allocation only records its checksum. So it scans twice.
kmemleak_check() {
  sleep 6
  echo scan > /sys/kernel/debug/kmemleak
  echo scan > /sys/kernel/debug/kmemleak
  leaks=$(cat /sys/kernel/debug/kmemleak)
  if [ -n "$leaks" ]; then
    echo "$leaks" | head -n 60
    fail "kmemleak reports unreferenced objects"
  fi
}
