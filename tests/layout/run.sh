#!/usr/bin/env bash
# run.sh [KDIR]: compare the sizes and member offsets of every structure
# shared with the host between the kernel's C headers (layout.c, compiled to
# assembly with Kbuild against KDIR) and RustIC's Rust definitions
# (layout.rs). Prints KTAP; exits non-zero on any difference. Everything is
# built in a temporary directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
kdir=${1:-$(bash "$root/scripts/kernel.sh" kdir)}

die() { echo "layout: $*" >&2; exit 1; }
[ -f "$kdir/Makefile" ] && [ -f "$kdir/include/generated/autoconf.h" ] \
  || die "$kdir is not a configured, built kernel tree (make kernel)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cp "$here/layout.c" "$here/Kbuild" "$tmp/"
make -s -C "$kdir" M="$tmp" layout.s >"$tmp/kbuild.log" 2>&1 \
  || { cat "$tmp/kbuild.log" >&2; die "compiling layout.c against $kdir failed"; }
# Markers look like:  .ascii "->struct member value"
sed -n 's/^[[:space:]]*\.ascii[[:space:]]*"->\([^"]*\)".*/\1/p' "$tmp/layout.s" >"$tmp/c.txt"

rustc --edition 2021 --cfg rustic_embedded --crate-name layout -o "$tmp/layout-rs" "$here/layout.rs" 2>"$tmp/rustc.log" \
  || { cat "$tmp/rustc.log" >&2; die "compiling layout.rs failed"; }
"$tmp/layout-rs" >"$tmp/rust.txt"

bash "$here/compare.sh" "$tmp/c.txt" "$tmp/rust.txt"
