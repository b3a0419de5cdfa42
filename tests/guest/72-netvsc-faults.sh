# timeout: 400
# A lying host at the NVSP/RNDIS layer (debugfs `sim`: `netfault NIC KIND
# [COUNT]`, drivers/net/sim/netfault.rs) under two NICs in two network namespaces
# with traffic between them. For every kind of bad completion and bad
# transfer-page packet the driver counts exactly one bad input per faulted
# packet on that interface (ethtool -S host_errors), says what was wrong in
# a rate-limited message, and the NIC goes on carrying pings both ways;
# hundreds of bad completions during a transfer leave it intact. A garbled
# answer during probe fails the bind cleanly and the next bind works. The
# host gets every receive-buffer slot back; no oops; unload leaves nothing.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
sim_load sim_devices=nic0,nic1
nic_pair_wait
nic_pair_netns 10.72.0
ip netns exec a ping -c 2 -W 5 10.72.0.2 > /dev/null || fail "ping from a to b"
ip netns exec b ping -c 2 -W 5 10.72.0.1 > /dev/null || fail "ping from b to a"

# host_errors NETNS IF: the bad host input the driver counted on IF.
host_errors() { ip netns exec $1 ethtool -S $2 | awk '$1 == "host_errors:" { print $2 }'; }
# pinged_and_counted NETNS IF N (for wait_for): one ping from a to b, then
# whether IF has counted at least N.
pinged_and_counted() {
  ip netns exec a ping -c 1 -W 1 10.72.0.2 > /dev/null 2>&1
  [ "$(host_errors $1 $2)" -ge $3 ]
}
expect_eq "host errors before any fault" "0 0" "$(host_errors a $n0) $(host_errors b $n1)"

# inject NIC KIND COUNT MESSAGE: arms KIND for NIC's next COUNT packets and
# pings from a to b until the driver counted COUNT bad inputs; then exactly
# COUNT faults went in and COUNT bad inputs were counted, the driver said
# MESSAGE, and pings go through both ways.
inject() {
  local nic=$1 kind=$2 count=$3 msg=$4 ns ifc before faults
  case $nic in
    nic0) ns=a ifc=$n0 ;;
    *) ns=b ifc=$n1 ;;
  esac
  before=$(host_errors $ns $ifc)
  faults=$(sim_counter net_faults)
  # Clear of the driver's message limiter (200 ms) from the last kind.
  sleep 0.3
  dmesg -c > /dev/null
  sim_ctl "netfault $nic $kind $count"
  wait_for 30 "$kind: $count bad inputs counted on $ifc" pinged_and_counted $ns $ifc $((before + count))
  expect_eq "$kind: faults injected" $((faults + count)) "$(sim_counter net_faults)"
  expect_eq "$kind: bad inputs counted on $ifc" $((before + count)) "$(host_errors $ns $ifc)"
  dmesg | grep -q "netvsc: relid [0-9]*: $msg; dropped" || { dmesg | tail -n 5; fail "$kind: no '$msg' in the log"; }
  ip netns exec a ping -c 2 -W 5 10.72.0.2 > /dev/null || fail "$kind: ping from a to b after the fault"
  ip netns exec b ping -c 2 -W 5 10.72.0.1 > /dev/null || fail "$kind: ping from b to a after the fault"
  echo "$kind x$count on $nic: $count bad inputs counted, '$msg', pings both ways"
}

# Completions of a's transmitted frames (nic0).
inject nic0 bad-completion 3 "completion of no packet in flight"
inject nic0 stale-completion 3 "completion of no packet in flight"
inject nic0 malformed-completion 3 "malformed completion"
inject nic0 garbage-completion 3 "malformed completion"
# Transfer-page packets of the frames b receives (nic1).
inject nic1 bad-range 3 "transfer-page range outside the receive buffer"
inject nic1 wrap-range 3 "transfer-page range outside the receive buffer"
inject nic1 oversize 3 "transfer-page range longer than an RNDIS message"
inject nic1 oversize-rndis 3 "RNDIS message longer than its range"
inject nic1 oversize-data 3 "RNDIS packet data outside its message"
inject nic1 bad-set 3 "transfer-page packet names no receive buffer"
inject nic1 bad-nvsp 3 "transfer-page packet without SEND_RNDIS_PKT"
inject nic1 malformed-rndis 3 "unknown RNDIS message type"
inject nic1 runt 3 "received frame shorter than an Ethernet header"

# Bad commands are refused; `off` disarms.
echo "netfault nic7 bad-range" > $SIM_DEBUGFS/sim 2> /dev/null && fail "netfault on no NIC accepted"
echo "netfault echo0 bad-range" > $SIM_DEBUGFS/sim 2> /dev/null && fail "netfault on an echo device accepted"
echo "netfault nic1 nonsense" > $SIM_DEBUGFS/sim 2> /dev/null && fail "an unknown netfault accepted"
echo "netfault nic1 bad-range 0" > $SIM_DEBUGFS/sim 2> /dev/null && fail "netfault count 0 accepted"
faults=$(sim_counter net_faults)
sim_ctl "netfault nic1 bad-range 5"
sim_ctl "netfault nic1 off"
ip netns exec a ping -c 3 -W 5 10.72.0.2 > /dev/null || fail "ping after netfault off"
expect_eq "faults after netfault off" $faults "$(sim_counter net_faults)"

# Hundreds of bad and repeated completions during a transfer: each counted,
# none frees a section in use (the data arrives intact), the queue goes on.
# Without TSO every frame is a packet of its own, completed on its own.
ip netns exec a ethtool -K $n0 tso off
for kind in stale-completion bad-completion; do
  before=$(host_errors a $n0)
  faults=$(sim_counter net_faults)
  sim_ctl "netfault nic0 $kind 400"
  nc_transfer 2 7272 10.72.0.2
  wait_for 20 "$kind: 400 faults used" pinged_and_counted a $n0 $((before + 400))
  expect_eq "$kind x400: faults injected" $((faults + 400)) "$(sim_counter net_faults)"
  expect_eq "$kind x400: bad inputs counted" $((before + 400)) "$(host_errors a $n0)"
  echo "$kind x400 during 2 MiB through nc: all counted, data intact"
done
ip netns exec a ethtool -K $n0 tso on

# A garbled answer to the first control request fails the probe cleanly;
# the next bind works. A stray completion during probe is counted on the
# new interface, and the probe goes on.
drv=/sys/bus/vmbus/drivers/hv_netvsc
id1=$(nic_id 1)
echo $id1 > $drv/unbind || fail "unbind nic1"
sleep 0.3
dmesg -c > /dev/null
sim_ctl "netfault nic1 malformed-completion"
echo $id1 > $drv/bind 2> /dev/null && fail "nic1 bound with a malformed NVSP completion"
dmesg | grep -q "netvsc: relid 41: malformed NVSP completion; dropped" || { dmesg | tail -n 5; fail "no message for the malformed completion at probe"; }
[ -z "$(nic_ifname 1)" ] || fail "nic1 has an interface after its probe failed"
sleep 0.3
sim_ctl "netfault nic1 bad-completion"
echo $id1 > $drv/bind || fail "bind nic1 after the failed probe"
wait_for 20 "nic1's interface" has_nic_ifname 1
n1=$(nic_ifname 1)
expect_eq "bad input counted during nic1's probe" 1 "$(ethtool -S $n1 | awk '$1 == "host_errors:" { print $2 }')"
ip link set $n1 netns b
ip -n b addr add 10.72.0.2/24 dev $n1
ip -n b link set $n1 up
wait_for 10 "carrier on $n1" nic_carrier b $n1
ip netns exec a ping -c 2 -W 5 10.72.0.2 > /dev/null || fail "ping from a to the rebound nic1"
ip netns exec b ping -c 2 -W 5 10.72.0.1 > /dev/null || fail "ping from the rebound nic1 to a"
echo "malformed completion at probe: bind failed cleanly; rebound nic1 works"

# Every faulted transfer-page packet was completed: the host holds no
# receive slot for the guests once traffic stops; the host saw nothing bad
# from the guest.
wait_for 10 "the host's receive slots back" sim_counter_is net_rx_slots 0
expect_eq "netvsp guest errors" 0 "$(sim_counter net_errors)"
ip netns del a
ip netns del b
rustic_unload
kmemleak_check
echo "13 fault kinds, 800 bad completions under a transfer, a failed probe: counted, no oops, no leak"
