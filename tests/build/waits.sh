#!/usr/bin/env bash
# Every wait on the host in the guest's kernel code (rust/, vmbus/,
# drivers/; not the simulator) is one of the bounded primitives, and every
# loop that sleeps or spins names its deadline: a grep-level rule, done by
# waits.py (its docstring has the rules); waits-selftest.sh shows that it
# catches planted violations. KTAP on stdout.
#
#   waits.sh [ROOT]   ROOT: another copy of the tree
set -u
here=$(cd "$(dirname "$0")" && pwd)
command -v python3 > /dev/null || { echo "KTAP version 1"; echo "1..1"; echo "not ok 1 waits # no python3"; exit 1; }
exec python3 "$here/waits.py" "$@"
