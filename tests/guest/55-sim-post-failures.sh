# timeout: 150
# HvPostMessage failing as it does on Hyper-V (vmbus/connection.rs `post`,
# Control::post_failed):
# - a host older than 5.0 has no port at connection id 4: each 5.x
#   INITIATE_CONTACT fails the hypercall and the guest proposes the next
#   version at once, not after a 5 s timeout;
# - a full message port is retried with backoff: refusals injected (fault
#   post-busy=N, sim_post_busy=N) during connect, an echo device's GPADL
#   and a netvsc probe, and the real thing: the simulated port holds 16
#   messages and the host drains it a tick later, so the netvsc receive
#   buffer's GPADL (1 + 146 messages back to back) fills it;
# - past the retry bound (100 tries, about 2 s) the request fails cleanly:
#   the bind fails, the load fails with ENODEV, and the module unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

busy() { sim_counter posts_busy; }

# A 4.0 host: four posts to a port it lacks, then 4.1 rejected, 4.0 taken.
start=$(date +%s)
sim_load sim_versions=4.0 sim_devices=none
took=$(( $(date +%s) - start ))
dmesg | grep -q "vmbus: connected, version 4.0\$" || { dmesg | tail; fail "4.0 host: not connected at 4.0"; }
expect_eq "4.0 host: posts to a missing port" 4 "$(sim_counter posts_no_port)"
expect_eq "4.0 host: proposals received" 2 "$(sim_counter initiate_contact)"
expect_eq "4.0 host: fallbacks logged" 4 "$(dmesg | grep -c 'no port for INITIATE_CONTACT')"
! dmesg | grep -q "did not answer" || fail "4.0 host: a proposal timed out"
[ "$took" -le 3 ] || fail "4.0 host: connecting took $took s"
echo "4.0 host: connected in $took s through 4 failed posts"
rustic_unload

# Connect through a full port: the first 5 posts are refused.
sim_load sim_post_busy=5 sim_devices=echo0
dmesg | grep -q "vmbus: connected, version 5.3\$" || { dmesg | tail; fail "post-busy at connect: not connected"; }
# (At least 5: the echo device's buffers may fill the port for real.)
[ "$(busy)" -ge 5 ] || fail "post-busy at connect: $(busy) posts refused, expected 5 or more"
dmesg | grep -q "HvPostMessage of InitiateContact went through after 6 tries" \
  || { dmesg | tail; fail "post-busy at connect: no retry message"; }
echo_send 0 20 0 4096

drv=/sys/bus/vmbus/drivers/rustic_echo
id0=$(echo_id 0)
unbind() { [ ! -e $VMBUS_DEVICES/$id0/driver ] || echo $id0 > $drv/unbind || fail "unbind echo0"; }
bind() { echo $id0 > $drv/bind 2> /tmp/bind.err; }

# The echo device's ring GPADL through a full port: 20 refusals, then it
# goes through.
unbind
# The retry message is rate-limited (one a second): let the connect's pass.
sleep 1
dmesg -c > /dev/null
before=$(busy)
sim_ctl "fault post-busy=20"
bind || { cat /tmp/bind.err; dmesg | tail; fail "post-busy=20: bind failed"; }
[ $(( $(busy) - before )) -ge 20 ] || fail "post-busy=20: $(( $(busy) - before )) posts refused"
dmesg | grep -q "HvPostMessage of GpadlHeader went through after 21 tries" \
  || { dmesg | tail; fail "post-busy=20: no retry message"; }
echo_send 0 20 0 4096
echo "post-busy=20: echo0 bound after 21 tries"

# Past the bound: the GPADL fails after 100 tries and the bind fails.
unbind
dmesg -c > /dev/null
before=$(busy)
sim_ctl "fault post-busy=1000"
start=$(date +%s)
bind && fail "post-busy=1000: bind succeeded"
took=$(( $(date +%s) - start ))
expect_eq "post-busy=1000: refused posts" 100 $(( $(busy) - before ))
dmesg | grep -q "HvPostMessage of GpadlHeader still refused (Busy) after 100 tries" \
  || { dmesg | tail; fail "post-busy=1000: no give-up message"; }
dmesg | grep -q "GPADL of .* pages failed: PostFailed(Busy)" \
  || { dmesg | tail; fail "post-busy=1000: no failed GPADL"; }
[ "$took" -le 8 ] || fail "post-busy=1000: the bind took $took s"
sim_ctl clear
bind || { cat /tmp/bind.err; fail "bind after clear failed"; }
echo_send 0 20 0 4096
echo "post-busy=1000: the bind failed after $took s; echo0 works again after clear"

# A netvsc probe (hot-added NIC) through a full port: 30 refusals injected,
# more when its receive buffer's GPADL fills the port.
before=$(busy)
sim_ctl "fault post-busy=30"
sim_ctl "offer nic0"
wait_for 30 "nic0's interface" has_nic_ifname 0
refused=$(( $(busy) - before ))
[ "$refused" -gt 30 ] || fail "nic0: $refused posts refused, expected the 30 injected and some from the full port"
echo "nic0 probed as $(nic_ifname 0) through $refused refused posts ($((refused - 30)) at the full port)"
rustic_unload

# Connect past the bound: the load fails cleanly.
dmesg -c > /dev/null
insmod $RUSTIC_KO simulate=1 sim_post_busy=1000 sim_devices=none 2> /tmp/err \
  && fail "load succeeded through 1000 refused posts"
grep -q "No such device" /tmp/err || { cat /tmp/err; fail "post-busy at connect: expected ENODEV"; }
dmesg | grep -q "vmbus: version negotiation failed: PostFailed(Busy)" \
  || { dmesg | tail; fail "post-busy at connect: no PostFailed message"; }
[ ! -d /sys/module/hv_rustic ] || fail "module loaded after post-busy at connect"
[ ! -e /sys/bus/vmbus ] || fail "/sys/bus/vmbus left behind"
echo "post-busy at connect: the load failed cleanly"
