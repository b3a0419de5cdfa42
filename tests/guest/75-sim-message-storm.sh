# timeout: 180
# Issue 17, defect 6: a host that sends a storm of malformed control
# messages (debugfs `sim`: `fault storm=N`, N messages of a type no version
# defines, back to back) gets each dropped and counted, with at most one
# line a second in the kernel log, where every message used to print one.
# The bus goes on carrying an echo device's traffic; the module unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

uptime_s() { cut -d. -f1 /proc/uptime; }
rejected_lines() { dmesg | grep -c "vmbus: host message rejected\|vmbus: malformed SynIC message dropped"; }

sim_load sim_devices=echo0
echo_send 0 10 0 2048
dmesg -c > /dev/null
start=$(uptime_s)
rounds=12
for i in $(seq $rounds); do
  # The host's queue holds 64 messages: wait for room between rounds.
  tries=0
  until echo "fault storm=50" > $SIM_DEBUGFS/sim 2> /dev/null; do
    tries=$((tries + 1))
    [ $tries -lt 200 ] || fail "the host's message queue never drained (round $i)"
    sleep 0.05
  done
  echo "round $i: $tries retries"
done
# One more after the limiter's second, to print the total.
sleep 1.2
echo "one more, to print the total"
sim_ctl "fault storm=1"
total=$((rounds * 50 + 1))
has_total() { dmesg | grep -q "($total rejected in all)"; }
wait_for 20 "the guest to count $total rejected messages" has_total
took=$(( $(uptime_s) - start + 1 ))
lines=$(rejected_lines)
echo "$total malformed messages in about $took s: $lines log lines"
# One a second, and the first of the storm: a line a message before.
[ $lines -le $((took + 2)) ] || { dmesg | tail -n 20; fail "$lines log lines for $total rejected messages in $took s"; }
echo_send 0 20 0 4096
rustic_unload
echo "a storm of $total bad control messages: $lines log lines, the bus works"
