# timeout: 300
# Two simulated NICs (nic0, nic1) on the simulated switch, bound by the
# netvsc driver, each in a network namespace of its own: the interfaces
# carry the host's addresses; IPv4 and IPv6 ping across the switch; the
# link follows the host's indications; ethtool names the driver; a
# transfer through nc arrives intact, with 9000-byte frames too; ethtool
# reports the driver, features, channels, rings and counters; unload
# leaves nothing behind.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
sim_load sim_devices=nic0,nic1
nic_pair_wait
expect_eq "nic0 address" 00:15:5d:00:4e:28 "$(cat /sys/class/net/$n0/address)"
expect_eq "nic1 address" 00:15:5d:00:4e:29 "$(cat /sys/class/net/$n1/address)"
ethtool -i $n0 | grep -q '^driver: hv_rustic' || fail "ethtool -i: $(ethtool -i $n0)"
ethtool -i $n0 | grep -q '^bus-info: vmbus' || fail "ethtool -i bus-info: $(ethtool -i $n0)"
ethtool -l $n0 | grep -A4 'Current hardware' | grep -q 'Combined:[[:space:]]*1$' || fail "ethtool -l: $(ethtool -l $n0)"
ethtool -g $n0 | grep -A4 'Current hardware' | grep -q 'RX:[[:space:]]*64$' || fail "ethtool -g: $(ethtool -g $n0)"
ethtool -k $n0 | grep -q '^rx-checksumming: off' || fail "ethtool -k: $(ethtool -k $n0)"

nic_pair_netns 10.70.0
ip -n a addr add fd70::1/64 dev $n0 nodad
ip -n b addr add fd70::2/64 dev $n1 nodad

ip netns exec a ping -c 3 -W 5 10.70.0.2 || fail "IPv4 ping from a to b"
ip netns exec b ping -c 3 -W 5 10.70.0.1 || fail "IPv4 ping from b to a"
ip netns exec a ping -c 3 -W 5 fd70::2 || fail "IPv6 ping from a to b"

# The host takes the link down and up again.
sim_ctl "link nic1 down"
wait_for 10 "no carrier on $n1" nic_no_carrier b $n1
ip netns exec a ping -c 1 -W 2 10.70.0.2 > /dev/null && fail "ping went through a link that is down"
sim_ctl "link nic1 up"
wait_for 10 "carrier back on $n1" nic_carrier b $n1
ip netns exec a ping -c 2 -W 5 10.70.0.2 || fail "ping after the link came back"

# Counters: the pings went out of a and came into b.
stat() { ip netns exec $1 ethtool -S $2 | awk -v k="$3:" '$1 == k { print $2 }'; }
[ "$(stat a $n0 tx_packets)" -ge 8 ] || fail "ethtool -S tx_packets: $(ip netns exec a ethtool -S $n0)"
[ "$(stat b $n1 rx_packets)" -ge 8 ] || fail "ethtool -S rx_packets: $(ip netns exec b ethtool -S $n1)"
expect_eq "per-queue and total tx_packets" "$(stat a $n0 tx_packets)" "$(stat a $n0 tx_queue_0_packets)"

# Jumbo frames: MTU 9000 both ends, a ping that fills one frame.
ip -n a link set $n0 mtu 9000
ip -n b link set $n1 mtu 9000
ip netns exec a ping -c 2 -W 5 -s 8972 10.70.0.2 || fail "ping with 9000-byte frames"
ip -n a link set $n0 mtu 65522 2> /dev/null && fail "an MTU above 65521 was accepted"

# A transfer through nc, checked at both ends.
head -c 4194304 /dev/urandom > /tmp/send.bin
want=$(sha256sum < /tmp/send.bin)
ip netns exec b sh -c 'nc -l -p 7070 > /tmp/recv.bin' &
listener=$!
wait_for 10 "nc to listen" tcp_listening b 7070
ip netns exec a nc -N 10.70.0.2 7070 < /tmp/send.bin || fail "nc send"
wait $listener
expect_eq "sha256 of 4 MiB through nc" "$want" "$(sha256sum < /tmp/recv.bin)"

expect_eq "netvsc errors" 0 "$(cat $SIM_DEBUGFS/sim_net_errors)"
expect_eq "bad host input on $n0 and $n1" "0 0" "$(stat a $n0 host_errors) $(stat b $n1 host_errors)"
ip netns del a
ip netns del b
rustic_unload
kmemleak_check
echo "ping v4/v6 both ways, link down/up, 4 MiB through nc between $n0 and $n1"
