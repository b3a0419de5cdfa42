#!/usr/bin/env bash
# Run every libFuzzer target of vmbus-core for SECONDS seconds each and report
# KTAP. Usage: scripts/fuzz.sh SECONDS
#
# Targets are the [[bin]] entries of vmbus/core/fuzz/Cargo.toml. cargo-fuzz
# needs nightly flags (-Zsanitizer); RUSTC_BOOTSTRAP lets the stable
# toolchain accept them. Builds go to vmbus/core/fuzz/target, corpora to
# vmbus/core/fuzz/corpus/<target>, crashes to vmbus/core/fuzz/artifacts (all
# git-ignored). Logs of failed targets are printed as KTAP diagnostics.
set -uo pipefail

secs=${1:-}
if ! [[ $secs =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 SECONDS" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir=$root/vmbus/core/fuzz
export RUSTC_BOOTSTRAP=1
export PATH=$HOME/.cargo/bin:$PATH

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz not found (cargo install cargo-fuzz)" >&2
  exit 2
fi

# The [[bin]] names, in file order.
mapfile -t targets < <(awk '
  /^\[\[bin\]\]/ { inbin = 1; next }
  /^\[/ { inbin = 0 }
  inbin && /^name *=/ { gsub(/.*= *"|".*/, ""); print }
' "$fuzz_dir/Cargo.toml")
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no [[bin]] targets in $fuzz_dir/Cargo.toml" >&2
  exit 2
fi

log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

echo "KTAP version 1"
echo "1..${#targets[@]}"
failed=0
k=0
for t in "${targets[@]}"; do
  k=$((k + 1))
  log=$log_dir/$t.log
  mkdir -p "$fuzz_dir/corpus/$t"
  # Build first so that the time budget is spent fuzzing, and so that a
  # build failure is reported as such.
  if (cd "$fuzz_dir" && cargo fuzz build "$t") >"$log" 2>&1 &&
     (cd "$fuzz_dir" && timeout $((secs * 2 + 120)) \
        cargo fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048) >>"$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1)
    echo "ok $k fuzz_$t # ${runs:-no run count}"
  else
    failed=$((failed + 1))
    echo "# fuzz_$t failed; last lines of its log:"
    tail -n 30 "$log" | sed 's/^/# /'
    echo "not ok $k fuzz_$t"
  fi
done
[ "$failed" -eq 0 ]
