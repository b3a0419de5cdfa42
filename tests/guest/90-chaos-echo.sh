# timeout: 300
# Chaos on an echo device (issue 17): `chaos echo0 SECONDS [SEED]` draws
# faults at random from every fault the simulator registers (the control
# plane's, the rings', the echo model's) while in-band, GPA-direct and
# completion traffic runs on echo0 (a probe a fault failed is tried again),
# and echo1 carries traffic beside it.
# 30 s of chaos here (`make chaos SECONDS=N SEED=S` runs longer: the kernel
# command line says). No oops, BUG, WARN or lockdep report (the runner
# fails on them) and no leak. Afterwards echo0 works, or it is unbound (a
# fault failed its probe) or gone; then the host resets it (rescind and a
# fresh offer) and it works again; echo1 never failed; the module unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh
. /tests/chaos-lib.sh

chaos_args 30
kmemleak_reset
sim_load sim_devices=echo0,echo1
victim=$VMBUS_DEVICES/$(echo_id 0)
bound() { [ -e $victim/driver ] && [ -e $SIM_DEBUGFS/echo30 ]; }
absent() { [ ! -e $victim ]; }
wait_for 10 "echo0 and echo1" [ -e $SIM_DEBUGFS/echo30 -a -e $SIM_DEBUGFS/echo31 ]
echo_send 0 20 0 4096

# Traffic on echo0 while it lasts; it fails whenever a fault hits it, and
# the control file goes with the device while the host has rescinded it. A
# probe that a fault failed is tried again, so that the faults meet probes
# (opens, GPADLs) as well as traffic.
rm -f /tmp/chaos-stop /tmp/echo1-failed
(
  while [ ! -e /tmp/chaos-stop ]; do
    [ -e $victim ] && [ ! -e $victim/driver ] && { echo $(echo_id 0) > /sys/bus/vmbus/drivers/rustic_echo/bind; } 2> /dev/null
    ok=0
    (echo "send 100 0 8192" > $SIM_DEBUGFS/echo30) 2> /dev/null && ok=1
    (echo "gpa 20 0 20000" > $SIM_DEBUGFS/echo30) 2> /dev/null
    (echo "complete 20" > $SIM_DEBUGFS/echo30) 2> /dev/null
    [ $ok = 1 ] || sleep 0.1
  done
) &
victim_traffic=$!
# echo1 is not chaos's device: only the control plane's faults reach it,
# and its open channel needs none of that, so every send must succeed.
(
  while [ ! -e /tmp/chaos-stop ]; do
    (echo "send 50 0 4096" > $SIM_DEBUGFS/echo31) 2> /dev/null || { echo "echo1: send failed" >> /tmp/echo1-failed; sleep 0.2; }
  done
) &
steady_traffic=$!

chaos_run echo0
touch /tmp/chaos-stop
wait $victim_traffic
wait $steady_traffic
[ ! -e /tmp/echo1-failed ] || fail "echo1's traffic failed $(wc -l < /tmp/echo1-failed) times under chaos on echo0"

# echo0 after chaos: working, or left unbound by a failed probe, or gone.
if bound; then
  echo_send 0 50 0 8192
  echo "after chaos: echo0 works"
elif [ -e $victim ]; then
  echo "after chaos: echo0 is offered and unbound (a fault failed its probe)"
else
  echo "after chaos: echo0 is gone"
fi

# The host resets echo0: it goes, comes back and works.
chaos_reset echo0 $(echo_id 0)
wait_for 20 "echo0 to come back" bound
echo_send 0 100 0 65536
echo "gpa 50 0 20000" > $SIM_DEBUGFS/echo30 || fail "GPA-direct echo after the reset"
echo "after a reset: echo0 works"
echo_send 1 100 0 8192
faults=$(sim_counter chaos_faults)
rustic_unload
kmemleak_check
echo "chaos on echo0: $faults faults injected; no oops, echo1 worked throughout, unloaded"
