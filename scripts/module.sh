#!/usr/bin/env bash
# Build hv_rustic.ko out of tree against KDIR (default: the cached test kernel).
#   module.sh build [KDIR]    build; print the .ko path last
#   module.sh clean [KDIR]
#   module.sh check KDIR      only check that KDIR can build RustIC
# RUSTIC_TEST_BUILD=1 in the environment builds the test build (debugfs
# control, test driver; qemu/boot.sh asks for it); otherwise production.
# A bad KDIR gets one line saying what is wrong, not a wall of Kbuild output.
set -euo pipefail
. "$(dirname "$0")/env.sh"

die() { echo "module: $*" >&2; exit 1; }

action=${1:-build}
kdir=${2:-}
if [ -z "$kdir" ]; then
  kdir=$(bash "$RUSTIC_ROOT/scripts/kernel.sh" build)
fi

[ -d "$kdir" ] || die "KDIR=$kdir does not exist"
[ -f "$kdir/Makefile" ] && [ -f "$kdir/.config" ] || die "KDIR=$kdir is not a configured kernel tree (no Makefile or .config)"
grep -q '^CONFIG_RUST=y' "$kdir/.config" || die "KDIR=$kdir is configured without CONFIG_RUST=y; RustIC needs a Rust-enabled kernel"
grep -q '^CONFIG_MODULES=y' "$kdir/.config" || die "KDIR=$kdir is configured without CONFIG_MODULES=y"
[ -f "$kdir/rust/libkernel.rmeta" ] || die "KDIR=$kdir has not been built (no rust/libkernel.rmeta): build the kernel there first"
kver=$(make -s -C "$kdir" kernelversion 2>/dev/null || true)
case "$kver" in 6.12.*) ;; *) die "KDIR=$kdir is Linux ${kver:-of unknown version}; RustIC targets 6.12" ;; esac

case "$action" in
  check) ;;
  build)
    log=$(mktemp)
    if ! make -C "$kdir" M="$RUSTIC_ROOT" -j"$(( $(nproc) + 1 ))" modules >"$log" 2>&1; then
      # The compiler's own messages, without Kbuild's recursion noise.
      grep -vE '^make(\[[0-9]+\])?: |^  (CC|RUSTC|LD|BINDGEN|MODPOST|AR)' "$log" | head -n 80 >&2
      rm -f "$log"
      die "build of hv_rustic.ko against $kdir failed"
    fi
    # rustc and the C compiler already fail on warnings; objtool and modpost
    # only warn, and a warning there is a bug here too.
    if grep -q 'warning:' "$log"; then
      grep 'warning:' "$log" >&2
      rm -f "$log" "$RUSTIC_ROOT/hv_rustic.ko"
      die "the build of hv_rustic.ko warned (objtool/modpost); warnings are errors"
    fi
    rm -f "$log"
    echo "$RUSTIC_ROOT/hv_rustic.ko"
    ;;
  clean)
    make -s -C "$kdir" M="$RUSTIC_ROOT" clean >/dev/null 2>&1 || true
    rm -f "$RUSTIC_ROOT/rust/bindings_generated.rs"
    ;;
  *) die "usage: module.sh build|clean [KDIR]" ;;
esac
