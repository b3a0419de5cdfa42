# timeout: 90
# The uevents the kernel really sends for a vmbus device (read from the
# uevent netlink socket, as udev does) carry SUBSYSTEM=vmbus and the C
# driver's MODALIAS; binding adds DRIVER. A rescind unbinds, then removes.
. /tests/lib.sh
. /tests/vmbus-lib.sh

rustic_load
# listen GUID: start the listener and wait (bounded) until it listens.
listen() {
  rm -f /tmp/uev-ready /tmp/uev-out
  python3 /tests/vmbus-uevents.py "$1" /tmp/uev-ready > /tmp/uev-out &
  listener=$!
  local i=0
  while [ ! -e /tmp/uev-ready ]; do
    [ $i -lt 100 ] || fail "the uevent listener did not start"
    kill -0 $listener 2>/dev/null || fail "the uevent listener died"
    sleep 0.1
    i=$((i + 1))
  done
}

T=eeeeeeee-1111-2222-3333-444444444444
listen $T
vmbus_ctl "add class=$TEST_CLASS instance=$T relid=9"
vmbus_ctl "rescind $T"
wait $listener || { cat /tmp/uev-out; fail "no remove uevent for $T"; }
m=$(modalias_of $TEST_CLASS)
# The kernel strips MODALIAS from every unbind event (zap_modalias_env).
expect_eq "uevents of a bound device" "add vmbus $m -
bind vmbus $m rustic_test
unbind vmbus - -
remove vmbus $m -" "$(cat /tmp/uev-out)"

N=eeeeeeee-1111-2222-3333-555555555555
listen $N
vmbus_ctl "add class=$NET_CLASS instance=$N relid=10"
vmbus_ctl "remove $N"
wait $listener || { cat /tmp/uev-out; fail "no remove uevent for $N"; }
m=$(modalias_of $NET_CLASS)
expect_eq "uevents of an unbound NIC" "add vmbus $m -
remove vmbus $m -" "$(cat /tmp/uev-out)"
rustic_unload
echo "add, bind and remove uevents carry MODALIAS; unbind has it stripped by the kernel"
