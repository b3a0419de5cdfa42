# timeout: 400
# Issue 17, defects 9 (RSC) and 2 (ranges): a host that coalesces hands a
# frame over in RSC fragments, each an RNDIS packet in a receive section of
# its own marked by the packet-info PPI (first, middle, last), all in one
# transfer-page packet; the guest joins them into one frame. The simulated
# host sends each frame larger than a section that way (TSO frames to a
# guest with LRO on), and splits ordinary frames on request (`netfault NIC
# rsc-split COUNT`): pings whose every request arrives in 3 fragments are
# answered, and a transfer through coalesced frames arrives intact. A range
# longer than the section size the host announced is dropped and counted
# (`netfault NIC long-range`), as the C driver does. No oops; every
# receive slot back; the module unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

sim_load sim_devices=nic0,nic1
nic_pair_wait
nic_pair_netns 10.79.0
ip netns exec a ping -c 2 -W 5 10.79.0.2 > /dev/null || fail "ping from a to b"
ip netns exec b ping -c 2 -W 5 10.79.0.1 > /dev/null || fail "ping from b to a"
host_errors() { nic_stat $1 $2 host_errors; }
expect_eq "host errors at start" "0 0" "$(host_errors a $n0) $(host_errors b $n1)"

# Each of 4 echo requests to b in 3 fragments: b joins them and answers.
frags=$(sim_counter net_rsc_fragments)
sim_ctl "netfault nic1 rsc-split 4"
ip netns exec a ping -c 4 -i 0.3 -W 5 -s 1000 10.79.0.2 > /tmp/ping.out
# Every one answered: a fragment handed up as a frame of its own is no
# echo request (the first is cut short, the others have no headers).
grep -q " 4 packets received" /tmp/ping.out || { cat /tmp/ping.out; dmesg | tail; fail "pings whose requests came in RSC fragments"; }
expect_eq "RSC fragments sent" $((frags + 12)) "$(sim_counter net_rsc_fragments)"
expect_eq "host errors on b after fragmented frames" 0 "$(host_errors b $n1)"
echo "4 pings in 3 RSC fragments each: answered"

# TSO frames from a go to b (LRO on) whole, as coalesced frames: in RSC
# fragments, the 1728-byte sections being far shorter.
ip netns exec b ethtool -k $n1 | grep -q "large-receive-offload: on" || fail "LRO is off on $n1"
frags=$(sim_counter net_rsc_fragments)
nc_transfer 16 7979 10.79.0.2
sim_counter_above net_rsc_fragments $((frags + 40)) || fail "no coalesced frame went to b in fragments"
echo "16 MiB through coalesced frames: $(( $(sim_counter net_rsc_fragments) - frags )) fragments, data intact"

# Ranges longer than a section: each dropped and counted.
pinged_and_counted() {
  ip netns exec a ping -c 1 -W 1 10.79.0.2 > /dev/null 2>&1
  [ "$(host_errors b $n1)" -ge $1 ]
}
before=$(host_errors b $n1)
sleep 0.3
dmesg -c > /dev/null
sim_ctl "netfault nic1 long-range 3"
wait_for 30 "3 long ranges counted on $n1" pinged_and_counted $((before + 3))
expect_eq "long ranges counted" $((before + 3)) "$(host_errors b $n1)"
dmesg | grep -q "netvsc: relid 41: transfer-page range longer than a receive section; dropped" || { dmesg | tail -n 5; fail "no message for a long range"; }
ip netns exec a ping -c 2 -W 5 10.79.0.2 > /dev/null || fail "ping from a to b after the long ranges"

wait_for 10 "the host's receive slots back" sim_counter_is net_rx_slots 0
expect_eq "netvsp guest errors" 0 "$(sim_counter net_errors)"
ip netns del a
ip netns del b
rustic_unload
echo "RSC fragments joined, long ranges refused"
