# timeout: 60
# The module's KUnit suites run at load; their KTAP results (kept by KUnit in
# debugfs) are reported here as subtests, case by case.
. /tests/lib.sh

rustic_load
found=0
for suite in /sys/kernel/debug/kunit/rustic_*; do
  [ -f "$suite/results" ] || continue
  found=1
  # Nested one level under this scenario.
  sed 's/^/    /' "$suite/results"
  grep -q "^ *not ok" "$suite/results" && failed=1
done
rustic_unload
[ "$found" = 1 ] || fail "no rustic_* KUnit suite ran at load"
[ -z "${failed:-}" ] || fail "a KUnit case failed"
