# timeout: 300
# iperf3 between two simulated NICs in two namespaces: TCP both ways and
# UDP; then nic1 is rescinded while iperf3 runs: its interface goes, the
# other NIC keeps working, nothing leaks.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
sim_load sim_devices=nic0,nic1
nic_pair_wait
nic_pair_netns 10.71.0

ip netns exec b iperf3 -s -D -1 -p 5201 > /dev/null
# iperf3 -c: bits per second of the receiver, from its JSON.
rate() { python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))'; }
udp_rate() { python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print(int(e["bits_per_second"]), e["lost_percent"])'; }
for dir in "" "-R"; do
  wait_for 10 "iperf3 to listen" tcp_listening b 5201
  out=$(ip netns exec a iperf3 -c 10.71.0.2 -p 5201 -t 3 -J $dir) || fail "iperf3 TCP $dir: $out"
  bps=$(echo "$out" | rate)
  [ "$bps" -gt 1000000 ] || fail "iperf3 TCP $dir: only $bps bit/s"
  echo "iperf3 TCP ${dir:-forward}: $((bps / 1000000)) Mbit/s"
  ip netns exec b iperf3 -s -D -1 -p 5201 > /dev/null
done
wait_for 10 "iperf3 to listen" tcp_listening b 5201
out=$(ip netns exec a iperf3 -c 10.71.0.2 -p 5201 -u -b 20M -t 3 -J) || fail "iperf3 UDP: $out"
echo "iperf3 UDP: $(echo "$out" | udp_rate) (bit/s, lost %)"

# Rescind nic1 while TCP runs into it.
ip netns exec b iperf3 -s -D -1 -p 5201 -I /tmp/iperf3-server.pid > /dev/null
wait_for 10 "iperf3 to listen" tcp_listening b 5201
ip netns exec a iperf3 -c 10.71.0.2 -p 5201 -t 30 > /dev/null 2>&1 &
client=$!
sent() { [ "$(ip netns exec a ethtool -S $n0 | awk '$1 == "tx_packets:" { print $2 }')" -gt 2000 ]; }
wait_for 20 "traffic to flow" sent
sim_ctl "rescind nic1"
gone() { [ ! -e $VMBUS_DEVICES/$(nic_id 1) ] && ! ip -n b link show $n1 > /dev/null 2>&1; }
wait_for 20 "nic1 and its interface to go" gone
kill $client 2> /dev/null
wait $client
kill $(cat /tmp/iperf3-server.pid)
ip -n a link show $n0 | grep -q LOWER_UP || fail "nic0 lost its link with nic1"
ip netns del a
ip netns del b
rustic_unload
kmemleak_check
echo "iperf3 TCP both ways and UDP; rescind under TCP traffic"
