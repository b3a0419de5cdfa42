# timeout: 300
# Multi-queue: each simulated NIC gets one queue per CPU, up to the host's
# four (the primary channel and three NVSP5 subchannels, set up after
# probe). RSS spreads many TCP connections over the receive queues and the
# stack over the transmit queues, as the per-queue counters of ethtool -S
# show;
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
# queue_counts NETNS IF tx|rx packets|bytes: each listed queue's count, on
# one line.
queue_counts() {
  ip netns exec $1 ethtool -S $2 | awk -v k="^$3_queue_[0-9]+_$4:" '$1 ~ k { printf "%s ", $2 }'
}
# SPREAD_CONNECTIONS TCP connections from a to b, one after another, each
# from a new source port (which the hashes take) and each delivering
# SPREAD_BYTES in full. Connections, not iperf3's parallel flows: a flow
# that loses the race for the link can carry almost nothing, so a queue's
# share of iperf3's packets says little; a connection's bytes all arrive.
# A queue gets none of 64 connections once in 2^26 runs.
SPREAD_CONNECTIONS=64 SPREAD_BYTES=131072
spread() {
  ip netns exec b python3 -c "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('', $1)); s.listen(8); s.settimeout(60)
for _ in range($SPREAD_CONNECTIONS):
    c, _ = s.accept(); c.settimeout(60); got = 0
    while chunk := c.recv(65536): got += len(chunk)
    c.close()
    if got != $SPREAD_BYTES: sys.exit(f'a connection delivered {got} bytes')
" &
  local server=$!
  wait_for 10 "the connection server to listen on $1" tcp_listening b $1
  ip netns exec a python3 -c "
import socket
for _ in range($SPREAD_CONNECTIONS):
    with socket.create_connection(('10.73.0.2', $1), timeout=60) as c: c.sendall(bytes($SPREAD_BYTES))
" || fail "connections to port $1"
  wait $server || fail "connection server on port $1"
}
# queues_with_bytes COUNTS...: how many of the byte counts hold at least
# one connection's payload.
queues_with_bytes() {
  local c n=0
  for c in "$@"; do [ $c -ge $SPREAD_BYTES ] && n=$((n + 1)); done
  echo $n
}

# RSS (Toeplitz over addresses and ports) gives every receive queue some
# connections; the stack's flow hash spreads transmits.
spread 7301
rx=$(queue_counts b $n1 rx bytes)
tx=$(queue_counts a $n0 tx bytes)
echo "bytes per queue: $n1 rx $rx; $n0 tx $tx"
expect_eq "receive queues with a connection's bytes" $NIC_QUEUES "$(queues_with_bytes $rx)"
[ "$(queues_with_bytes $tx)" -ge 2 ] || fail "transmits on one queue only: $tx"
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
before=$(queue_counts b $n1 rx bytes)
spread 7303
set -- $before
grown=""
for c in $(queue_counts b $n1 rx bytes); do grown="$grown $((c - $1))"; shift; done
expect_eq "receive queues with a connection's bytes after ethtool -L back" $NIC_QUEUES "$(queues_with_bytes $grown)"

ip netns exec a ping -c 2 -W 5 10.73.0.2 > /dev/null || fail "ping after the queue changes"
expect_eq "bad host input on $n0 and $n1" "0 0" "$(nic_stat a $n0 host_errors) $(nic_stat b $n1 host_errors)"
ip netns del a
ip netns del b
rustic_unload
kmemleak_check
echo "$NIC_QUEUES queues per NIC; $SPREAD_CONNECTIONS connections over every receive queue; ethtool -L 1 and back"
