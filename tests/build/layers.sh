#!/usr/bin/env bash
# The module's layers depend one way (rustic.rs names them): rust/ <- vmbus/
# <- drivers/ over the kernel-independent crates, and nothing outside the
# simulator and tests uses them. Every reference from one module of
# hv_rustic.ko to another (crate:: and super:: paths, in use items and
# inline) is resolved to the file that holds it; one going up a layer or
# into the simulator is a `not ok` naming file:line and the path. The work
# is done by layers.py (its docstring has the rules); layers-selftest.sh
# shows that it catches planted violations. KTAP on stdout.
#
#   layers.sh [--list] [ROOT]   ROOT: another copy of the tree; --list: every
#                               resolved reference, as KTAP comments
set -u
here=$(cd "$(dirname "$0")" && pwd)
command -v python3 > /dev/null || { echo "KTAP version 1"; echo "1..1"; echo "not ok 1 module-tree # no python3"; exit 1; }
exec python3 "$here/layers.py" "$@"
