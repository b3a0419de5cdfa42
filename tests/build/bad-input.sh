#!/usr/bin/env bash
# Bad input to the build gets a one-line error, not a wall of Kbuild output.
# KTAP on stdout.
set -u
cd "$(dirname "$0")/../.."

fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
# A configured-looking tree whose config lacks CONFIG_RUST.
printf 'all:\n\t@true\n' > "$fake/Makefile"
printf 'CONFIG_MODULES=y\n# CONFIG_RUST is not set\n' > "$fake/.config"

n=0
echo "KTAP version 1"
echo "1..5"

# expect_one_line NAME PATTERN COMMAND...: the command fails, printing exactly
# one line, which matches PATTERN.
expect_one_line() {
  local name=$1 pattern=$2; shift 2
  n=$((n + 1))
  local out rc lines
  out=$("$@" 2>&1); rc=$?
  lines=$(printf '%s\n' "$out" | grep -c .)
  if [ "$rc" -ne 0 ] && [ "$lines" -eq 1 ] && printf '%s' "$out" | grep -q -- "$pattern"; then
    echo "ok $n $name"
  else
    printf '%s\n' "$out" | head -n 5 | sed 's/^/# /'
    echo "not ok $n $name # rc=$rc, $lines lines"
  fi
}

expect_one_line "make-kdir-nonexistent" "KDIR=/nonexistent does not exist" make --no-print-directory KDIR=/nonexistent
expect_one_line "make-kdir-without-rust" "without CONFIG_RUST=y" make --no-print-directory KDIR="$fake"
expect_one_line "make-run-kdir-without-rust" "without CONFIG_RUST=y" make --no-print-directory run KDIR="$fake" CMD=true
expect_one_line "kernel-source-too-old" "linux-source-6.12 is 6.12.116; RustIC needs 6.12.117 or newer" \
  env RUSTIC_SOURCE_VERSION=6.12.116 bash scripts/kernel.sh build

# A second `make kernel` finds the cached tree and does nothing to it.
n=$((n + 1))
kdir=$(bash scripts/kernel.sh kdir)
stamp="$(dirname "$kdir")/.built"
if [ -f "$stamp" ]; then
  before=$(stat -c %Y "$stamp" "$kdir/arch/x86/boot/bzImage")
  out=$(make --no-print-directory kernel 2>&1); rc=$?
  after=$(stat -c %Y "$stamp" "$kdir/arch/x86/boot/bzImage")
  if [ "$rc" -eq 0 ] && [ "$before" = "$after" ] && [ "$out" = "deps: ok" ]; then
    echo "ok $n make-kernel-cached-is-a-no-op"
  else
    printf '%s\n' "$out" | head -n 5 | sed 's/^/# /'
    echo "not ok $n make-kernel-cached-is-a-no-op # rc=$rc"
  fi
else
  echo "not ok $n make-kernel-cached-is-a-no-op # no cached kernel at $kdir"
fi
