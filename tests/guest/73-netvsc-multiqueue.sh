# timeout: 300
# Multi-queue: each simulated NIC gets one queue per CPU, up to the host's
# four (the primary channel and three NVSP5 subchannels, set up after
# probe). RSS spreads many TCP flows over the receive queues and the stack
# over the transmit queues, as the per-queue counters of ethtool -S show;
# ethtool -L takes the queues down to one, when receives all arrive on
# queue 0, and back up again; it refuses counts the NIC cannot have.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

[ $NIC_QUEUES -ge 2 ] || fail "one CPU, so one queue: the guest needs two or more"
kmemleak_reset
sim_load sim_devices=nic0,nic1
nic_pair_wait
dmesg | grep -q "netvsc: relid 40: $NIC_QUEUES queues" || fail "no subchannel setup logged: $(dmesg | grep netvsc)"
nic_pair_netns 10.73.0

# flows N PORT: N parallel TCP flows from a to b for 2 s through iperf3.
flows() {
  ip netns exec b iperf3 -s -D -1 -p $2 > /dev/null
  wait_for 10 "iperf3 to listen on $2" tcp_listening b $2
  ip netns exec a iperf3 -c 10.73.0.2 -p $2 -P $1 -t 2 > /dev/null || fail "iperf3 -P $1"
}
# queue_packets NETNS IF tx|rx: each listed queue's packets, on one line.
queue_packets() {
  ip netns exec $1 ethtool -S $2 | awk -v k="^$3_queue_[0-9]+_packets:" '$1 ~ k { printf "%s ", $2 }'
}
# busy_queues COUNTS...: how many of the counts are above 100.
busy_queues() {
  local c n=0
  for c in "$@"; do [ $c -gt 100 ] && n=$((n + 1)); done
  echo $n
}

# 32 flows: RSS (Toeplitz over addresses and ports) gives each receive
# queue some; the stack's flow hash spreads transmits.
flows 32 7301
rx=$(queue_packets b $n1 rx)
tx=$(queue_packets a $n0 tx)
echo "per queue: $n1 rx $rx; $n0 tx $tx"
expect_eq "receive queues with traffic" $NIC_QUEUES "$(busy_queues $rx)"
[ "$(busy_queues $tx)" -ge 2 ] || fail "transmits on one queue only: $tx"
expect_eq "rx_packets not on any queue" 0 "$(nic_unlisted b $n1 rx)"

# Counts ethtool -L refuses.
ethtool -L $n0 combined $((NIC_QUEUES + 1)) 2> /dev/null && fail "ethtool -L took more queues than channels"
ethtool -L $n0 combined 0 2> /dev/null && fail "ethtool -L took 0 queues"
ip netns exec b ethtool -L $n1 rx 2 2> /dev/null && fail "ethtool -L took separate rx queues"

# One queue: the host sends every receive on the primary channel.
ip netns exec b ethtool -L $n1 combined 1 || fail "ethtool -L combined 1"
expect_eq "queues after ethtool -L combined 1" "$NIC_QUEUES 1" "$(nic_channels $n1 b)"
before=$(nic_stat b $n1 rx_packets)
outside=$(nic_unlisted b $n1 rx)
flows 32 7302
grown=$(( $(nic_stat b $n1 rx_packets) - before ))
[ $grown -gt 1000 ] || fail "too little traffic with one queue: $grown packets"
expect_eq "receives outside queue 0 with one queue" $outside "$(nic_unlisted b $n1 rx)"

# Back to all queues: spread again.
ip netns exec b ethtool -L $n1 combined $NIC_QUEUES || fail "ethtool -L combined $NIC_QUEUES"
expect_eq "queues after ethtool -L back" "$NIC_QUEUES $NIC_QUEUES" "$(nic_channels $n1 b)"
before=$(queue_packets b $n1 rx)
flows 32 7303
set -- $before
grown=""
for c in $(queue_packets b $n1 rx); do grown="$grown $((c - $1))"; shift; done
expect_eq "receive queues with traffic after ethtool -L back" $NIC_QUEUES "$(busy_queues $grown)"

ip netns exec a ping -c 2 -W 5 10.73.0.2 > /dev/null || fail "ping after the queue changes"
expect_eq "bad host input on $n0 and $n1" "0 0" "$(nic_stat a $n0 host_errors) $(nic_stat b $n1 host_errors)"
ip netns del a
ip netns del b
rustic_unload
kmemleak_check
echo "$NIC_QUEUES queues per NIC; 32 flows over every receive queue; ethtool -L 1 and back"
