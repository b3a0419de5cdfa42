#!/bin/bash
# In the guest: run every scenario /tests/NN-*.sh as one top-level KTAP test.
# A scenario passes when it exits 0, is skipped when it exits 77, and may
# print nested KTAP (lines indented by four spaces), e.g. KUnit results.
# Before each test the runner on the host is told its timeout, from the
# scenario's `# timeout: SECONDS` line.
cd /tests || exit 1
set -- [0-9]*.sh
echo "KTAP version 1"
echo "1..$#"
n=0
for script in "$@"; do
  n=$((n + 1))
  name=${script%.sh}
  timeout=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$script" | head -n 1)
  # A chaos scenario runs longer by what `make chaos SECONDS=N` asks for
  # (tests/guest/chaos-lib.sh).
  case "$name" in
    *-chaos-*)
      chaos=$(sed -n 's/.*rustic\.chaos_seconds=\([0-9]*\).*/\1/p' /proc/cmdline)
      [ -n "$chaos" ] && timeout=$(( ${timeout:-120} + chaos ))
      ;;
  esac
  echo "# rustic-test-start $name timeout=${timeout:-120}"
  { bash "$script" 2>&1; echo "rustic-exit-status $?"; } | while IFS= read -r line; do
    case "$line" in
      "rustic-exit-status "*) echo "${line#rustic-exit-status }" > /tmp/status ;;
      "    "*) echo "$line" ;;
      *) echo "# $line" ;;
    esac
  done
  status=$(cat /tmp/status)
  case "$status" in
    0) echo "ok $n $name" ;;
    77) echo "ok $n $name # SKIP" ;;
    *)
      echo "not ok $n $name # exit status $status"
      # Leave no module behind for the next scenario to trip over.
      # (A killed writer may take a moment to leave the module.)
      for try in 1 2 3 4 5 6 7 8 9 10; do
        [ -d /sys/module/hv_rustic ] || break
        rmmod hv_rustic 2>&1 | sed 's/^/# cleanup: /'
        sleep 0.5
      done
      ;;
  esac
done
