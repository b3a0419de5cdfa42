#!/usr/bin/env bash
# Run every libFuzzer target of the kernel-independent crates for SECONDS
# seconds each and report KTAP. Usage: scripts/fuzz.sh SECONDS
#
# Targets are the [[bin]] entries of each fuzz directory's Cargo.toml, in
# file order: vmbus/core/fuzz (results named fuzz_<target>, as before) and
# drivers/net/proto/fuzz (named fuzz_netvsc_<target>) and
# drivers/storage/proto/fuzz (named fuzz_storvsc_<target>) and
# drivers/ic/proto/fuzz (named fuzz_ic_<target>) and
# drivers/input/proto/fuzz (named fuzz_input_<target>). cargo-fuzz needs nightly flags
# (-Zsanitizer); RUSTC_BOOTSTRAP lets the stable toolchain accept them.
# Targets run side by side, one per core (RUSTIC_FUZZ_JOBS overrides).
# Builds of every directory share target/fuzz (libFuzzer and the common
# dependencies are compiled once), corpora go to <dir>/corpus/<target>,
# crashes to <dir>/artifacts (all git-ignored). Logs of failed targets are printed as
# KTAP diagnostics.
set -uo pipefail

secs=${1:-}
if ! [[ $secs =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 SECONDS" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
# Fuzz directories and the prefix of their result names.
fuzz_dirs=(vmbus/core/fuzz drivers/net/proto/fuzz drivers/storage/proto/fuzz)
declare -A prefix=([vmbus/core/fuzz]=fuzz_ [drivers/net/proto/fuzz]=fuzz_netvsc_
  [drivers/storage/proto/fuzz]=fuzz_storvsc_)
fuzz_dirs+=(drivers/ic/proto/fuzz); prefix[drivers/ic/proto/fuzz]=fuzz_ic_
fuzz_dirs+=(drivers/input/proto/fuzz); prefix[drivers/input/proto/fuzz]=fuzz_input_
export RUSTC_BOOTSTRAP=1
export PATH=$HOME/.cargo/bin:$PATH

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz not found (cargo install cargo-fuzz)" >&2
  exit 2
fi

# "dir target" pairs: the [[bin]] names of each directory, in file order.
cases=()
for d in "${fuzz_dirs[@]}"; do
  mapfile -t targets < <(awk '
    /^\[\[bin\]\]/ { inbin = 1; next }
    /^\[/ { inbin = 0 }
    inbin && /^name *=/ { gsub(/.*= *"|".*/, ""); print }
  ' "$root/$d/Cargo.toml")
  if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: no [[bin]] targets in $d/Cargo.toml" >&2
    exit 2
  fi
  for t in "${targets[@]}"; do
    cases+=("$d $t")
  done
done

log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

# Build every directory's targets first, so that the time budget is spent
# fuzzing and a build failure is reported as such.
declare -A built=()
for d in "${fuzz_dirs[@]}"; do
  if (cd "$root/$d" && cargo fuzz build --target-dir "$root/target/fuzz") >"$log_dir/build-${d//\//_}.log" 2>&1; then
    built[$d]=1
  fi
done

# One fuzzer per core at a time (libFuzzer runs one thread): each target
# still gets SECONDS, the layer takes about SECONDS x targets / cores.
jobs=${RUSTIC_FUZZ_JOBS:-$(nproc)}
run_case() { # DIR TARGET LOG: exit 0 when the target ran clean
  local d=$1 t=$2 log=$3
  if [ -z "${built[$d]:-}" ]; then
    cat "$log_dir/build-${d//\//_}.log" > "$log"
    return 1
  fi
  mkdir -p "$root/$d/corpus/$t"
  (cd "$root/$d" && timeout $((secs * 2 + 120)) \
     cargo fuzz run --target-dir "$root/target/fuzz" "$t" -- -max_total_time="$secs" -rss_limit_mb=2048) >"$log" 2>&1
}
k=0
for c in "${cases[@]}"; do
  k=$((k + 1))
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  d=${c% *}
  t=${c#* }
  ( run_case "$d" "$t" "$log_dir/$k.log"; echo $? > "$log_dir/$k.status" ) &
done
wait

echo "KTAP version 1"
echo "1..${#cases[@]}"
failed=0
k=0
for c in "${cases[@]}"; do
  k=$((k + 1))
  d=${c% *}
  t=${c#* }
  name=${prefix[$d]}$t
  log=$log_dir/$k.log
  if [ "$(cat "$log_dir/$k.status" 2>/dev/null)" = 0 ]; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1)
    echo "ok $k $name # ${runs:-no run count}"
  else
    failed=$((failed + 1))
    echo "# $name failed; last lines of its log:"
    tail -n 30 "$log" | sed 's/^/# /'
    echo "not ok $k $name"
  fi
done
[ "$failed" -eq 0 ]
