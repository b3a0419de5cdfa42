#!/usr/bin/env bash
# layers.sh must pass the module's tree as it is and report each violation
# planted into a copy of it: one `not ok` naming the layer, file:line and
# the path, and a non-zero exit. The clean pass also shows that `super::`
# resolves inside inline modules (vmbus/core/src/bus.rs's tests use
# `super::super::guid`, which would otherwise leave the crate). KTAP on
# stdout.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tree=$tmp/tree
mkdir -p "$tree"
# The module's Rust files (the check reads nothing else).
(cd "$root" && find rustic.rs rust vmbus drivers tests -name '*.rs' -not -path '*/target/*' -print0 |
  tar --null -T - -cf -) | tar -C "$tree" -xf -

n=0 failed=0
echo "KTAP version 1"
echo "1..16"

# plant NAME FILE EXPECT TEXT: appends TEXT (lines) to FILE in the copy, runs
# the check, then restores FILE. EXPECT empty: the check passes; else the
# check fails with exactly one `not ok`, which contains EXPECT, where @0, @1,
# ... stand for the first, second, ... planted line's number.
plant() {
  local name=$1 file=$tree/$2 expect=$3 text=$4
  n=$((n + 1))
  cp "$file" "$tmp/saved"
  [ -z "$(tail -c 1 "$file")" ] || echo >> "$file"
  local at k
  at=$(( $(wc -l < "$file") + 1 ))
  for k in 9 8 7 6 5 4 3 2 1 0; do expect=${expect//@$k/$((at + k))}; done
  printf '%s\n' "$text" >> "$file"
  local out rc bad
  out=$(bash "$root/tests/build/layers.sh" "$tree" 2>&1); rc=$?
  cp "$tmp/saved" "$file"
  bad=$(grep -E '^not ok ' <<<"$out")
  if [ -z "$expect" ]; then
    if [ "$rc" -eq 0 ] && [ -z "$bad" ]; then echo "ok $n $name"; return; fi
  elif [ "$rc" -ne 0 ] && [ "$(grep -c . <<<"$bad")" -eq 1 ] && grep -qF -- "$expect" <<<"$bad"; then
    echo "ok $n $name"; return
  fi
  grep -E '^(not ok|# [a-z]+/)' <<<"$out" | head -n 5 | sed 's/^/# /'
  echo "not ok $n $name # rc $rc, expected ${expect:-a pass}"
  failed=$((failed + 1))
}

# clean NAME: the copy as it is passes.
out=$(bash "$root/tests/build/layers.sh" "$tree" 2>&1); rc=$?
n=$((n + 1))
if [ "$rc" -eq 0 ] && ! grep -q '^not ok' <<<"$out" && grep -q '^ok .* layer-drivers$' <<<"$out"; then
  echo "ok $n clean-tree-passes"
else
  grep -E '^not ok' <<<"$out" | head -n 5 | sed 's/^/# /'
  echo "not ok $n clean-tree-passes # rc $rc"
  failed=$((failed + 1))
fi

# The brief's three: up a layer from rust/ and vmbus/, into the simulator
# from a driver.
plant "rust-uses-vmbus" rust/base/time.rs \
  "layer-kernel # rust/base/time.rs:@0: crate::vmbus::connection::Connection (rust/ may not use vmbus/)" \
  "use crate::vmbus::connection::Connection;"
plant "vmbus-uses-a-driver" vmbus/channel.rs \
  "layer-vmbus # vmbus/channel.rs:@0: crate::drivers::net::netvsc::X (vmbus/ may not use drivers/)" \
  "use crate::drivers::net::netvsc::X;"
plant "driver-uses-the-simulator" drivers/net/netvsc/mod.rs \
  "layer-drivers # drivers/net/netvsc/mod.rs:@0: crate::testing::sim::Y (drivers/ may not use the simulator and tests)" \
  "use crate::testing::sim::Y;"
# Forms of reference: a multi-line brace group (only its bad leaf, on its
# own line), an inline path in code, super:: chains (one leaving a core
# crate), a child module named without a prefix, #[path].
plant "multi-line-use-group" rust/base/work.rs \
  "layer-kernel # rust/base/work.rs:@3: crate::vmbus::channel::Channel (rust/ may not use vmbus/)" \
  "use crate::{
    rust::bindings,
    rust::base::{self, time::{Instant as I, *}},
    vmbus::channel::Channel,
};"
plant "inline-path" vmbus/connection.rs \
  "layer-vmbus # vmbus/connection.rs:@1: crate::rust::sim::enabled (vmbus/ may not use the simulator's kernel side (rust/sim/))" \
  "fn planted() -> bool {
    crate::rust::sim::enabled()
}"
plant "super-chain-into-the-simulator" drivers/net/netvsc/mod.rs \
  "layer-drivers # drivers/net/netvsc/mod.rs:@0: super::sim::NetModel (drivers/ may not use the simulator and tests)" \
  "use super::sim::NetModel;"
plant "super-chain-out-of-a-core-crate" vmbus/core/src/ring.rs \
  "layer-core # vmbus/core/src/ring.rs:@0: super::super::vmbus::channel::Channel (vmbus/core may not use vmbus/)" \
  "use super::super::vmbus::channel::Channel;"
plant "super-in-an-inline-module" rust/base/memory.rs \
  "layer-kernel # rust/base/memory.rs:@2: super::super::super::super::drivers::Drivers (rust/ may not use drivers/)" \
  "mod planted {
    fn f() {}
    use super::super::super::super::drivers::Drivers;
}"
plant "core-crate-uses-another" drivers/net/proto/src/wire.rs \
  "layer-core # drivers/net/proto/src/wire.rs:@0: crate::vmbus_core::ring (drivers/net/proto may not use vmbus/core)" \
  "use crate::vmbus_core::ring;"
plant "child-module-path" drivers/net/mod.rs \
  "layer-drivers # drivers/net/mod.rs:@0: sim::NetModel (drivers/ may not use the simulator and tests)" \
  "use sim::NetModel;"
plant "cross-layer-super" drivers/net/netvsc/mod.rs \
  "layer-drivers # drivers/net/netvsc/mod.rs:@0: super::proto::wire (super:: leaves drivers/ for drivers/net/proto: write crate::)" \
  "use super::proto::wire;"
: > "$tree/tests/sim/planted.rs"
plant "path-attribute" drivers/net/netvsc/mod.rs \
  "layer-drivers # drivers/net/netvsc/mod.rs:@1: #[path = \"../../../tests/sim/planted.rs\"] (drivers/ may not use the simulator and tests)" \
  "#[path = \"../../../tests/sim/planted.rs\"]
mod planted;"
rm -f "$tree/tests/sim/planted.rs"
# What is not a violation.
plant "comments-and-strings-pass" drivers/net/netvsc/mod.rs "" \
  "// use crate::testing::sim::Y;
/* crate::testing::sim::Y /* nested */ crate::testing::sim::Y */
/// [\`crate::testing::sim::Y\`]
const S: &str = \"crate::testing::sim::Y \\\" crate::testing::sim::Y\";
const R: &str = r#\"crate::testing::sim::Y \" crate::testing::sim::Y\"#;
const C: char = '\"';
fn f<'a>(x: &'a str) -> &'a str { x }"
plant "root-may-use-the-simulator" rustic.rs "" \
  "use crate::testing::sim::Y;"
plant "simulator-may-use-anything" tests/sim/vsp.rs "" \
  "use crate::drivers::net::sim::NetModel;
use crate::drivers::net::netvsc::X;"
[ "$failed" -eq 0 ]
