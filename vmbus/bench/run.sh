#!/usr/bin/env bash
# Ring throughput benchmark (make bench): vmbus-core's ring against
#  (a) tools/hv/vmbus_bufring.c and (b) the ring algorithm of
#  drivers/hv/ring_buffer.c, both from linux-source-6.12, compiled here in
#  userspace (extracted at bench time; no kernel code is kept in the repo),
#  and (c) memcpy of the same bytes. Prints a table and ratios.
# Usage: vmbus/bench/run.sh [--quick]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
build=$root/target/bench-c
src=$build/src
mkdir -p "$src"

if [ ! -f "$src/.extracted" ] || [ "$tarball" -nt "$src/.extracted" ]; then
  [ -f "$tarball" ] || { echo "bench: $tarball not found (apt-get install linux-source-6.12)" >&2; exit 2; }
  tmp=$build/tar
  rm -rf "$tmp" && mkdir -p "$tmp"
  tar -xJf "$tarball" -C "$tmp" --wildcards \
    '*/tools/hv/vmbus_bufring.c' '*/tools/hv/vmbus_bufring.h' '*/drivers/hv/ring_buffer.c'
  cp "$tmp"/*/tools/hv/vmbus_bufring.[ch] "$src/"
  # The write/iterate/close algorithm, function by function, verbatim: a
  # definition starts at column 0 (with its return type on the line before
  # when the name starts the line) and ends at the first "}" in column 0.
  awk '
    BEGIN {
      n = split("hv_signal_on_write hv_set_next_write_location hv_get_ring_buffersize hv_get_ring_bufferindices " \
                "hv_copyto_ringbuffer hv_ringbuffer_write hv_pkt_iter_avail hv_pkt_iter_first " \
                "__hv_pkt_iter_next hv_pkt_iter_bytes_read hv_pkt_iter_close", names, " ")
      for (i = 1; i <= n; i++) want[names[i]] = 1
    }
    copying { print; if ($0 ~ /^}/) { copying = 0; print "" } prev = $0; next }
    /^[A-Za-z_]/ && $0 !~ /;[ \t]*$/ {
      line = $0; sub(/\(.*/, "", line); k = split(line, w, /[ \t*]+/); name = w[k]
      if (name in want) {
        if ($0 ~ ("^" name)) print prev
        print; copying = 1; found[name] = 1
      }
    }
    { prev = $0 }
    END { for (f in want) if (!(f in found)) { print "missing " f > "/dev/stderr"; exit 1 } }
  ' "$tmp"/*/drivers/hv/ring_buffer.c > "$src/kernel_ring_fns.c"
  rm -rf "$tmp"
  touch "$src/.extracted"
fi

cd "$root"
VMBUS_BENCH_CSRC=$src cargo run --quiet --release -p vmbus-bench -- "$@"
