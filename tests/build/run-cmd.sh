#!/usr/bin/env bash
# `make run CMD=...` boots the guest with hv_rustic loaded, runs the command
# (unexpanded by make) and reports its status; `qemu/boot.sh cmd` exits with
# that status exactly. KTAP on stdout.
set -u
cd "$(dirname "$0")/../.."
echo "KTAP version 1"
echo "1..3"
out=$(make --no-print-directory run CMD='grep -q "^hv_rustic " /proc/modules || exit 1; echo "guest-says: $(uname -r)"; exit 7' 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && printf '%s\n' "$out" | grep -q '^boot: guest command exited with status 7$'; then
  echo "ok 1 make-run-cmd-reports-status"
else
  printf '%s\n' "$out" | tail -n 10 | sed 's/^/# /'
  echo "not ok 1 make-run-cmd-reports-status # make exited $rc"
fi
if printf '%s\n' "$out" | grep -q '^guest-says: 6\.12\.'; then
  echo "ok 2 make-run-cmd-output"
else
  echo "not ok 2 make-run-cmd-output # the command's output did not come back"
fi
bash qemu/boot.sh cmd 'exit 5' > /dev/null 2>&1
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "ok 3 boot-cmd-exit-status"
else
  echo "not ok 3 boot-cmd-exit-status # expected 5, got $rc"
fi
