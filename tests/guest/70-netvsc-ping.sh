# timeout: 480
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
expect_eq "ethtool -l: most and current queues" "$NIC_QUEUES $NIC_QUEUES" "$(nic_channels $n0)"
ethtool -g $n0 | grep -A4 'Current hardware' | grep -q 'RX:[[:space:]]*64$' || fail "ethtool -g: $(ethtool -g $n0)"
# The simulated host offers checksums, LSOv2 and out-of-band VLAN tags.
for feature in rx-checksumming tx-checksumming tcp-segmentation-offload \
    rx-vlan-offload tx-vlan-offload scatter-gather receive-hashing \
    large-receive-offload; do
  ethtool -k $n0 | grep -q "^$feature: on" || fail "ethtool -k: $feature not on: $(ethtool -k $n0)"
done

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
[ "$(nic_stat a $n0 tx_packets)" -ge 8 ] || fail "ethtool -S tx_packets: $(ip netns exec a ethtool -S $n0)"
[ "$(nic_stat b $n1 rx_packets)" -ge 8 ] || fail "ethtool -S rx_packets: $(ip netns exec b ethtool -S $n1)"
expect_eq "tx_packets not on any queue" 0 "$(nic_unlisted a $n0 tx)"
expect_eq "rx_packets not on any queue" 0 "$(nic_unlisted b $n1 rx)"

# Jumbo frames: MTU 9000 both ends, a ping that fills one frame. The host
# learns a NIC's MTU only from the NDIS config it gets at set-up, and drops
# bigger frames (sim_net_oversize): an MTU change sets the NIC up again,
# subchannels included.
oversize=$(sim_counter net_oversize)
ip -n a link set $n0 mtu 9000 || fail "MTU 9000 on $n0"
ip -n b link set $n1 mtu 9000 || fail "MTU 9000 on $n1"
expect_eq "NICs set up again for MTU 9000" 2 "$(dmesg | grep -c 'set up again for MTU 9000')"
wait_for 10 "carrier on $n0 after the MTU change" nic_carrier a $n0
wait_for 10 "carrier on $n1 after the MTU change" nic_carrier b $n1
ip netns exec a ping -c 2 -W 5 -s 8972 10.70.0.2 || fail "ping with 9000-byte frames"
wait_for 20 "$NIC_QUEUES queues on $n0 after the MTU change" has_nic_queues $n0 $NIC_QUEUES a
wait_for 20 "$NIC_QUEUES queues on $n1 after the MTU change" has_nic_queues $n1 $NIC_QUEUES b
ip netns exec a ping -c 2 -W 5 -s 8972 10.70.0.2 || fail "ping with 9000-byte frames on $NIC_QUEUES queues"
expect_eq "frames the host dropped as bigger than the NIC's MTU" $oversize "$(sim_counter net_oversize)"
ip -n a link set $n0 mtu 65522 2> /dev/null && fail "an MTU above 65521 was accepted"

# Transfers through nc, checked at both ends. TSO frames go to the host
# whole (from the skbs' own pages); b coalesces (LRO), so it gets them
# whole too, switched in the buffer they came in.
coalesced=$(sim_counter net_coalesced)
handed_on=$(sim_counter net_handed_on)
nc_transfer 256 7070
sim_counter_above net_coalesced $coalesced || fail "no TSO frame went to b whole"
sim_counter_above net_handed_on $handed_on || fail "no TSO frame switched in place"

# Without LRO on b, the host cuts them into segments.
ip netns exec b ethtool -K $n1 lro off
segments=$(sim_counter net_segmented)
coalesced=$(sim_counter net_coalesced)
nc_transfer 1 7071
sim_counter_above net_segmented $segments || fail "no TSO frame cut into segments with LRO off"
expect_eq "frames coalesced with LRO off" $coalesced "$(sim_counter net_coalesced)"

# With TSO off too, the host segments nothing and fills in checksums.
ip netns exec a ethtool -K $n0 tso off
segments=$(sim_counter net_segmented)
checksummed=$(sim_counter net_checksummed)
nc_transfer 1 7072
expect_eq "segments cut with TSO off" $segments "$(sim_counter net_segmented)"
sim_counter_above net_checksummed $checksummed || fail "no checksum offloaded with TSO off"
ip netns exec a ethtool -K $n0 tso on
ip netns exec b ethtool -K $n1 lro on

# 802.1Q: VLAN 42 on both NICs; the tag goes out of band both ways.
tagged=$(sim_counter net_tagged)
ip -n a link add link $n0 name vlan42 type vlan id 42
ip -n b link add link $n1 name vlan42 type vlan id 42
ip -n a addr add 10.70.42.1/24 dev vlan42
ip -n b addr add 10.70.42.2/24 dev vlan42
ip -n a link set vlan42 up
ip -n b link set vlan42 up
ip netns exec a ping -c 3 -W 5 10.70.42.2 || fail "ping over VLAN 42"
sim_counter_above net_tagged $((tagged + 5)) || fail "VLAN tags not sent out of band: $(sim_counter net_tagged)"
# Large tagged frames are tagged in place by the host.
handed_on=$(sim_counter net_handed_on)
ip netns exec a ping -c 2 -W 5 -s 6000 10.70.42.2 || fail "6000-byte pings over VLAN 42"
sim_counter_above net_handed_on $handed_on || fail "no large tagged frame switched in place"
ip -n b link set vlan42 down
ip -n b link add link $n1 name vlan43 type vlan id 43
ip -n b addr add 10.70.42.2/24 dev vlan43
ip -n b link set vlan43 up
ip netns exec a ping -c 1 -W 2 10.70.42.2 > /dev/null && fail "a frame of VLAN 42 reached VLAN 43"

expect_eq "netvsc errors" 0 "$(cat $SIM_DEBUGFS/sim_net_errors)"
expect_eq "bad host input on $n0 and $n1" "0 0" "$(nic_stat a $n0 host_errors) $(nic_stat b $n1 host_errors)"
ip netns del a
ip netns del b
rustic_unload
kmemleak_check
echo "ping v4/v6 both ways, link down/up, MTU 9000, TSO, LRO and checksum offload, VLAN tags, nc between $n0 and $n1"
