#!/usr/bin/env bash
# selftest.sh: compare.sh must pass equal inputs and fail, naming the
# struct and member, on each kind of difference. Needs no kernel tree.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
check() { # name expect-rc expect-grep c-text rust-text
  n=$((n + 1))
  printf '%s' "$4" >"$tmp/c"; printf '%s' "$5" >"$tmp/r"
  out=$(bash "$here/compare.sh" "$tmp/c" "$tmp/r"); rc=$?
  if { [ "$2" = 0 ] && [ $rc -eq 0 ]; } || { [ "$2" != 0 ] && [ $rc -ne 0 ]; }; then
    if grep -qF -- "$3" <<<"$out"; then echo "ok $n $1"; return; fi
  fi
  echo "not ok $n $1 # rc $rc, output: $(tr '\n' '|' <<<"$out")"; failed=$((failed + 1))
}
base=$'a size 8\na x 0\na y 4\nb size 16\n'
echo "KTAP version 1"
echo "1..6"
check "equal inputs pass" 0 "ok 2 b" "$base" "$base"
check "a wrong offset fails" 1 "not ok 1 a # y: C 4, Rust 6;" "$base" $'a size 8\na x 0\na y 6\nb size 16\n'
check "a member only in C fails" 1 "not ok 1 a # y: only in C (4);" "$base" $'a size 8\na x 0\nb size 16\n'
check "a member only in Rust fails" 1 "not ok 2 b # z: only in Rust (3);" "$base" "$base"$'b z 3\n'
check "a struct only in Rust fails" 1 "not ok 3 c # size: only in Rust (1);" "$base" "$base"$'c size 1\n'
check "empty inputs fail" 1 "no structs found" "" ""
[ $failed -eq 0 ]
