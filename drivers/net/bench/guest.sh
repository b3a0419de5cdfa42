# `make bench-net`, run in the guest (qemu/boot.sh cmd): iperf3 TCP
# throughput and 64-byte UDP packets per second between two netvsc NICs
# through the simulated switch, then the same over a veth pair, in one
# boot; prints each round's figures and ratios, then the median ratios.
# BENCH_SECONDS per measurement (5), BENCH_ROUNDS rounds (3).
set -u
rmmod hv_rustic 2> /dev/null
insmod /lib/modules/rustic/hv_rustic.ko simulate=1 sim_devices=nic0,nic1 || exit 1
secs=${BENCH_SECONDS:-5}
ifname() { ls /sys/bus/vmbus/devices/$(printf '5151ae%02x-00ae-4e7e-8a11-00155d00ae%02x' $1 $1)/net 2> /dev/null; }
for i in $(seq 100); do [ -n "$(ifname 0)" ] && [ -n "$(ifname 1)" ] && break; sleep 0.1; done

# pair NAME A_IF B_IF: puts A_IF in namespace NAME-a (10.9.0.1), B_IF in
# NAME-b (10.9.0.2), both up.
pair() {
  ip netns add $1-a; ip netns add $1-b
  ip link set $2 netns $1-a; ip link set $3 netns $1-b
  ip -n $1-a addr add 10.9.0.1/24 dev $2; ip -n $1-b addr add 10.9.0.2/24 dev $3
  ip -n $1-a link set $2 up; ip -n $1-b link set $3 up
  for i in $(seq 100); do ip -n $1-b -o link show $3 | grep -q LOWER_UP && break; sleep 0.1; done
}
# measure NAME: "TCP_BPS UDP_PPS" from namespace NAME-a to NAME-b.
# server NAME: a one-test iperf3 server in NAME-b, once it listens.
server() {
  ip netns exec $1-b iperf3 -s -D -1 -p 5201 > /dev/null
  for i in $(seq 100); do ip netns exec $1-b cat /proc/net/tcp /proc/net/tcp6 | grep -q ':1451 [0:]*:0000 0A' && break; sleep 0.1; done
}
measure() {
  server $1
  tcp=$(ip netns exec $1-a iperf3 -c 10.9.0.2 -p 5201 -t $secs -J |
        python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))')
  server $1
  udp=$(ip netns exec $1-a iperf3 -c 10.9.0.2 -p 5201 -u -l 64 -b 0 -t $secs -J |
        python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print(int(e["packets"] * (100 - e["lost_percent"]) / 100 / e["seconds"]))')
  echo "$tcp $udp"
}
pair netvsc "$(ifname 0)" "$(ifname 1)"
ip link add vetha type veth peer name vethb
pair veth vetha vethb
# Rounds alternate the two, so that a slow spell of the machine (or a flow
# that lands on busy CPUs) weighs on both; the median ratio is the figure.
rounds=${BENCH_ROUNDS:-3}
tcp_ratios= udp_ratios=
ratio() { python3 -c "print(f'{$1 / $2:.3f}' if $2 else 'n/a')"; }
for round in $(seq $rounds); do
  set -- $(measure netvsc)
  nv_tcp=$1 nv_udp=$2
  set -- $(measure veth)
  ve_tcp=$1 ve_udp=$2
  tcp_ratio=$(ratio $nv_tcp $ve_tcp) udp_ratio=$(ratio $nv_udp $ve_udp)
  echo "bench-net: round $round: TCP netvsc $((nv_tcp / 1000000)) Mbit/s, veth $((ve_tcp / 1000000)) Mbit/s, ratio $tcp_ratio;" \
       "UDP 64 B netvsc $nv_udp pkt/s, veth $ve_udp pkt/s, ratio $udp_ratio"
  tcp_ratios="$tcp_ratios $tcp_ratio" udp_ratios="$udp_ratios $udp_ratio"
done
median() { python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:] if x != 'n/a']; print(f'{statistics.median(r):.3f}' if r else 'n/a')" $*; }
echo "bench-net: TCP ratio median $(median $tcp_ratios) of$tcp_ratios"
echo "bench-net: UDP 64 B ratio median $(median $udp_ratios) of$udp_ratios"
