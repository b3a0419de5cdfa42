#!/usr/bin/env bash
# compare.sh C_FILE RUST_FILE: both hold "struct member value" lines (member
# "size" for sizeof). Prints KTAP, one test per struct in the C file's order
# (then any struct only Rust has), and exits non-zero on any mismatch or any
# member present on one side only.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: compare.sh C_FILE RUST_FILE" >&2; exit 2; }

awk '
  FNR == 1 { side++ }
  NF != 3 { printf "# malformed line %s:%d: %s\n", FILENAME, FNR, $0; bad = 1; next }
  {
    s = $1; key = s SUBSEP $2
    if (!(s in seen)) { seen[s] = 1; order[++n] = s }
    if (!((s, $2) in members)) { members[s, $2] = 1; list[s] = list[s] " " $2 }
    if (side == 1) c[key] = $3; else r[key] = $3
  }
  END {
    print "KTAP version 1"
    print "1.." n
    for (i = 1; i <= n; i++) {
      s = order[i]; detail = ""
      m = split(list[s], names, " ")
      for (j = 1; j <= m; j++) {
        key = s SUBSEP names[j]
        if (!(key in c)) detail = detail sprintf(" %s: only in Rust (%s);", names[j], r[key])
        else if (!(key in r)) detail = detail sprintf(" %s: only in C (%s);", names[j], c[key])
        else if (c[key] != r[key]) detail = detail sprintf(" %s: C %s, Rust %s;", names[j], c[key], r[key])
      }
      if (detail == "") printf "ok %d %s\n", i, s
      else { printf "not ok %d %s #%s\n", i, s, detail; failed++ }
    }
    if (n == 0) { print "# no structs found"; exit 1 }
    if (failed || bad) exit 1
  }
' "$1" "$2"
