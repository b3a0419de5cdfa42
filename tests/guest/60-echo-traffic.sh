# timeout: 300
# Channels end to end against the simulated host's echo device: four
# channels on different CPUs at once; one sweeps every data size from 0 to
# 64 KiB, three carry a million small packets between them. Every echo is
# checked (type, transaction id, order, length, each byte); 256 KiB rings
# wrap thousands of times and fill (back-pressure through pending_send_sz
# both ways: the guest waits for the host, the host for the guest). Then
# GPA-direct packets of every size from a buffer shared through a GPADL,
# and host packets that ask for completions, which the guest sends.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
sim_load sim_devices=echo0,echo1,echo2,echo3
for n in 0 1 2 3; do
  dev=$VMBUS_DEVICES/$(echo_id $n)
  [ -e $dev/driver ] || fail "echo$n is not bound"
  expect_eq "echo$n driver" rustic_echo "$(basename "$(readlink $dev/driver)")"
  expect_eq "echo$n channel state" 3 "$(cat $dev/state)"
done
cpus=$(cat $VMBUS_DEVICES/5151ec0*/channel_vp_mapping | cut -d: -f2 | sort -u | wc -l)
[ "$cpus" -ge 2 ] || [ "$(nproc)" -lt 2 ] || fail "all echo channels on one CPU"

small=${RUSTIC_ECHO_SMALL:-340000}
start=$(date +%s)
echo_send 0 65537 0 65536 &
sweep=$!
pids=""
for n in 1 2 3; do
  echo_send $n $small 0 256 &
  pids="$pids $!"
done
wait $sweep || fail "the size sweep failed"
for p in $pids; do wait $p || fail "small-packet traffic failed"; done
took=$(( $(date +%s) - start ))

total=$((65537 + 3 * small))
echo "took $took s"; for f in $VMBUS_DEVICES/5151ec0*/channels/*/out_full_*; do echo "$f $(cat $f)"; done
expect_eq "echo errors" 0 "$(echo_counter errors)"
expect_eq "echoes sent" $total "$(echo_counter sent)"
expect_eq "echoes received" $total "$(echo_counter received)"
[ "$(sim_counter echoed)" -ge $total ] || fail "the host echoed $(sim_counter echoed) of $total"
full=0
for n in 0 1 2 3; do
  ch=$VMBUS_DEVICES/$(echo_id $n)/channels/$((30 + n))
  full=$((full + $(cat $ch/out_full_first) + $(cat $ch/out_full_total)))
  [ "$(cat $ch/interrupts)" -gt 0 ] || fail "echo$n took no interrupts"
done
[ "$full" -gt 0 ] || fail "the rings never filled: back-pressure untested"

# Each probe shared two GPADLs (rings, buffer).
expect_eq "GPADLs created" 8 "$(sim_counter gpadls_created)"
sent=$(echo_counter sent)
echo_cmd 1 "gpa 65537 0 65536" &
gpa=$!
echo_cmd 2 "complete 10000" &
complete=$!
wait $gpa || fail "GPA-direct sweep failed"
wait $complete || fail "completions failed"
expect_eq "echo errors" 0 "$(echo_counter errors)"
expect_eq "echoes received" $((sent + 65537 + 10000)) "$(echo_counter received)"
expect_eq "completions the host got" 10000 "$(sim_counter completions)"

mib=$(( $(echo_counter bytes) / 1048576 ))
# Unbinding closes the channels and tears both GPADLs of each down.
for n in 0 1 2 3; do
  echo $(echo_id $n) > /sys/bus/vmbus/drivers/rustic_echo/unbind || fail "unbind echo$n"
done
expect_eq "GPADLs torn down" 8 "$(sim_counter gpadls_torn_down)"
expect_eq "channels closed" 4 "$(sim_counter closes)"
rustic_unload
kmemleak_check
echo "$total packets ($mib MiB of data) on 4 channels in $took s; outbound ring full $full times"
