# timeout: 300
# Fault injection at the simulated host (debugfs `sim`): each fault hits
# the device being bound (probe opens its channel) while a second echo
# device carries traffic. No oops; the faulted device fails or goes away
# with a clear message, or works after a harmless fault; the other device
# keeps working; the module unloads cleanly, even from a silent host, in
# bounded time.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
# Channel requests time out after 5 s here (the module's own deadline is
# longer): the faults below that withhold an answer wait it out.
sim_load sim_devices=echo0,echo1 sim_channel_timeout_ms=5000
drv=/sys/bus/vmbus/drivers/rustic_echo
id0=$(echo_id 0)
unbind() { [ ! -e $VMBUS_DEVICES/$id0/driver ] || echo $id0 > $drv/unbind || fail "unbind echo0"; }
bind() { echo $id0 > $drv/bind 2> /tmp/bind.err; }
healthy() { echo_send 1 200 0 8192; }

# fault NAME EXPECT MESSAGE: unbind echo0, arm the fault, bind again; EXPECT
# is "ok" or "fail"; MESSAGE must appear in the kernel log.
fault() {
  unbind
  dmesg -c > /dev/null
  sim_ctl "fault $1"
  if bind; then
    [ "$2" = ok ] || fail "fault $1: bind succeeded"
    echo_send 0 20 0 4096
  else
    [ "$2" = fail ] || { cat /tmp/bind.err; fail "fault $1: bind failed"; }
  fi
  dmesg | grep -q "$3" || { dmesg | tail -n 5; fail "fault $1: no '$3' in the log"; }
  healthy
  echo "fault $1: echo0 $2, as expected"
}

healthy
fault drop fail "GPADL of 130 pages failed: Timeout"
fault duplicate ok "host message rejected"
fault delay=2000 ok "injecting Delay(2000)"
fault delay=7000 fail "GPADL of 130 pages failed: Timeout"
fault bad-type fail "host message rejected: Parse"
fault bad-size fail "host message rejected: Parse"
fault bad-field fail "host message rejected"
# Reorder the next two host messages: two hot-added offers arrive swapped.
sim_ctl "fault reorder"
sim_ctl "offer echo2"
sim_ctl "offer echo3"
wait_for 10 "echo2 and echo3" [ -e $SIM_DEBUGFS/echo32 -a -e $SIM_DEBUGFS/echo33 ]
echo_send 2 20 0 4096
echo_send 3 20 0 4096
echo "fault reorder: both offers taken"
expect_eq "faults injected" 8 "$(sim_counter faults_injected)"

# A host that corrupts a ring index: that channel is disabled, loudly.
dmesg -c > /dev/null
sim_ctl "corrupt-ring echo2"
# The host signals after scribbling; the guest must notice before any
# traffic, since the host's next write to that ring would mend the index.
corrupt_noticed() { dmesg | grep -q "relid 32: the host corrupted the inbound ring; channel disabled"; }
wait_for 10 "the message for the corrupt ring" corrupt_noticed
echo "send 10 0 64" > $SIM_DEBUGFS/echo32 2> /dev/null && fail "traffic on a corrupt ring succeeded"
healthy
# A host that stops serving one channel: senders time out, bounded.
sim_ctl "stall echo3"
start=$(date +%s)
echo "send 100000 0 4096" > $SIM_DEBUGFS/echo33 2> /dev/null && fail "traffic on a stalled channel succeeded"
took=$(( $(date +%s) - start ))
[ $took -le 30 ] || fail "a stalled channel took $took s to fail"
healthy
# A host that stops answering: binding times out. The unload waits for the
# first unanswered request (a GPADL teardown, 5 s), then stops waiting for
# the host: buffers it may still map are kept, not freed.
unbind
dmesg -c > /dev/null
sim_ctl silent
bind && fail "bind succeeded on a silent host"
grep -q "timed out" /tmp/bind.err || { cat /tmp/bind.err; fail "silent host: expected ETIMEDOUT"; }
start=$(date +%s)
rustic_unload
took=$(( $(date +%s) - start ))
[ $took -le 12 ] || fail "unload from a silent host took $took s"
expect_eq "teardowns waited for" 1 "$(dmesg | grep -c 'GPADL teardown failed: Timeout')"
dmesg | grep -q "the host stopped answering during unload" || fail "no message for the silent host"
dmesg | grep -q "unloading without UNLOAD: the host stopped answering" || fail "no message for the skipped UNLOAD"
dmesg | grep -q "leaking .* bytes the host may still map" || fail "buffers the host may map were freed"
kmemleak_check
echo "every fault: no oops, the other device kept working, unload in $took s"
