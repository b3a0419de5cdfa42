#!/usr/bin/env bash
# waits.sh must pass the module's tree as it is and report each unbounded
# wait planted into a copy of it: one `not ok` naming the folder, file:line
# and the call, and a non-zero exit; what is bounded, or not kernel code,
# passes. KTAP on stdout.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tree=$tmp/tree
mkdir -p "$tree"
# The files the check reads, and the simulator's (which it must not read).
(cd "$root" && find rust vmbus drivers tests/sim \( -name '*.rs' -o -name '*.c' -o -name '*.h' \) -not -path '*/target/*' -print0 |
  tar --null -T - -cf -) | tar -C "$tree" -xf -

n=0 failed=0
echo "KTAP version 1"
echo "1..13"

# plant NAME FILE EXPECT TEXT: appends TEXT (lines) to FILE in the copy, runs
# the check, then restores FILE. EXPECT empty: the check passes; else it
# fails with exactly one `not ok`, which contains EXPECT, where @0, @1, ...
# stand for the first, second, ... planted line's number.
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
  out=$(bash "$root/tests/build/waits.sh" "$tree" 2>&1); rc=$?
  cp "$tmp/saved" "$file"
  bad=$(grep -E '^not ok ' <<<"$out")
  if [ -z "$expect" ]; then
    if [ "$rc" -eq 0 ] && [ -z "$bad" ]; then echo "ok $n $name"; return; fi
  elif [ "$rc" -ne 0 ] && [ "$(grep -c . <<<"$bad")" -eq 1 ] && grep -qF -- "$expect" <<<"$bad"; then
    echo "ok $n $name"; return
  fi
  grep -E '^not ok' <<<"$out" | head -n 5 | sed 's/^/# /'
  echo "not ok $n $name # rc $rc, expected ${expect:-a pass}"
  failed=$((failed + 1))
}

out=$(bash "$root/tests/build/waits.sh" "$tree" 2>&1); rc=$?
n=$((n + 1))
if [ "$rc" -eq 0 ] && ! grep -q '^not ok' <<<"$out" && grep -q '^ok .* waits-drivers$' <<<"$out"; then
  echo "ok $n clean-tree-passes"
else
  grep -E '^not ok' <<<"$out" | head -n 5 | sed 's/^/# /'
  echo "not ok $n clean-tree-passes # rc $rc"
  failed=$((failed + 1))
fi

# Unbounded waits, in C and in Rust, in each folder.
plant "c-wait-for-completion" rust/base/base.c \
  "waits-rust # rust/base/base.c:@1: wait_for_completion() (a wait with no timeout)" \
  "static void planted(struct completion *c)
{	wait_for_completion(c);
}"
plant "c-wait-event-interruptible" rust/net/netdev.c \
  "waits-rust # rust/net/netdev.c:@0: wait_event_interruptible() (a wait with no timeout)" \
  "static int planted(void) { return wait_event_interruptible(wq, done); }"
plant "c-schedule" rust/vmbus/hyperv.c \
  "waits-rust # rust/vmbus/hyperv.c:@2: schedule() (a wait with no timeout)" \
  "static void planted(void)
{
	schedule();
}"
plant "rust-condvar-wait" vmbus/channel.rs \
  "waits-vmbus # vmbus/channel.rs:@1: .wait(&mut ...) (a CondVar wait with no timeout" \
  "fn planted(cv: &CondVar, m: &Mutex<bool>) {
    let mut g = m.lock(); cv.wait(&mut g);
}"
plant "rust-binding-wait" drivers/net/netvsc/setup.rs \
  "waits-drivers # drivers/net/netvsc/setup.rs:@0: wait_for_completion_killable() (a wait with no timeout)" \
  "fn planted(c: *mut bindings::completion) { unsafe { bindings::wait_for_completion_killable(c) }; }"
plant "rust-loop-without-deadline" drivers/net/netvsc/setup.rs \
  "waits-drivers # drivers/net/netvsc/setup.rs:@1: loop (sleeps or spins with no deadline or limit in sight)" \
  "fn planted(ready: &AtomicBool) {
    loop {
        if ready.load(Ordering::Acquire) { break; }
        msleep(1);
    }
}"
plant "c-spin-without-deadline" rust/base/shim.c \
  "waits-rust # rust/base/shim.c:@0: while loop (sleeps or spins with no deadline or limit in sight)" \
  "static void planted(int *p) { while (!READ_ONCE(*p)) cpu_relax(); }"
# What passes: bounded waits, loops with a deadline, counted loops, the
# words in comments and strings, the simulator (the host's side).
plant "bounded-waits-pass" rust/base/base.c "" \
  "static long planted(struct completion *c)
{
	int i;
	for (i = 0; i < 10; i++)
		msleep(1);
	wait_event_interruptible_timeout(wq, done, HZ);
	return wait_for_completion_timeout(c, HZ) + schedule_timeout(1);
}"
plant "loop-with-deadline-passes" vmbus/device.rs "" \
  "fn planted(ready: &AtomicBool, cv: &CondVar, g: &mut Guard) {
    let deadline = now_ms() + 100;
    loop {
        if ready.load(Ordering::Acquire) || now_ms() > deadline { break; }
        cv.wait_interruptible_timeout(g, 1);
    }
    for _ in 0..10 { msleep(1); }
}"
plant "comments-and-strings-pass" vmbus/connection.rs "" \
  "// wait_for_completion(c); schedule();
/* cv.wait(&mut g); /* nested */ loop { msleep(1); } */
const S: &str = \"wait_event(wq, x) \\\" schedule()\";
const R: &str = r#\"cv.wait(&mut g)\"#;"
plant "simulator-not-checked" tests/sim/vsp.rs "" \
  "fn planted(cv: &CondVar, m: &Mutex<bool>) { let mut g = m.lock(); cv.wait(&mut g); }"
mkdir -p "$tree/drivers/net/sim"
plant "driver-simulator-not-checked" drivers/net/sim/netfault.rs "" \
  "fn planted() { loop { msleep(1); } }"
[ "$failed" -eq 0 ]
