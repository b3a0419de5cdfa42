# Helpers for the simulator scenarios (50-59), sourced after lib.sh and
# vmbus-lib.sh. The simulated host (tests/sim/, test builds) is chosen with
# `simulate=1`; its offers by default (the registry, tests/sim/devices.rs):
SIM_NET_ID=5151a001-0001-4e7e-8a11-00155d000001    # relid 14, monitor 0
SIM_SCSI_ID=5151a002-0002-4e7e-8a11-00155d000002   # relid 15, monitor 1
SIM_KBD_ID=d34b2567-b9b6-42b9-8778-0a4ec0b955bf    # relid 3
SIM_HB_ID=fd149e91-82e0-4a7d-afa6-2a4ba1499ae9     # relid 7
SIM_TEST_ID=5151a005-0005-4e7e-8a11-00155d000005   # relid 200, monitor 2

# sim_counter NAME: a simulated host counter (initiate_contact, version,
# request_offers, offers_sent, unload, unexpected, signals).
sim_counter() {
  cat "/sys/kernel/debug/hv_rustic/sim_$1"
}

# sim_counter_above NAME VALUE, sim_counter_is NAME VALUE: for wait_for.
sim_counter_above() { [ "$(sim_counter $1)" -gt "$2" ]; }
sim_counter_is() { [ "$(sim_counter $1)" -eq "$2" ]; }

# sim_load [PARAM=VALUE...]: insmod with the simulator and the given
# parameters, after clearing the kernel log.
sim_load() {
  dmesg -c > /dev/null
  rustic_load simulate=1 "$@"
}

# The simulator's echo devices (sim_devices=echo0..echo3): relids 30..33,
# debugfs controls echo30..echo33 (tests/drivers/echo.rs).
SIM_DEBUGFS=/sys/kernel/debug/hv_rustic
echo_id() { printf '5151ec%02x-00ec-4e7e-8a11-00155d00ec%02x' "$1" "$1"; }

# sim_ctl COMMAND: a command to the simulated host (tests/sim/hypervisor.rs).
sim_ctl() {
  echo "$1" > $SIM_DEBUGFS/sim || fail "sim command '$1' refused"
}

# echo_cmd N COMMAND: a command to echo device N's driver (send, gpa,
# complete, subchannels, retarget: tests/drivers/echo.rs); fails the
# scenario if it fails. The write runs in a subshell, which has no children:
# in the scenario's own shell, a background job ending meanwhile sends it
# SIGCHLD, and the driver stops a long send on a pending signal (EINTR).
echo_cmd() {
  (echo "$2" > $SIM_DEBUGFS/echo$((30 + $1))) || fail "echo$((30 + $1)): '$2' failed"
}

# echo_send N COUNT FIRST LAST: COUNT echo round trips on echo device N,
# data sizes FIRST..LAST.
echo_send() {
  echo_cmd $1 "send $2 $3 $4"
}

echo_counter() { cat $SIM_DEBUGFS/echo_$1; }

# stuck_tasks: what the module's and the kernel's worker threads are doing,
# for the log of a scenario that timed out.
stuck_tasks() {
  local p
  for p in $SIM_DEBUGFS/sim_*; do
    [ -f $p ] && echo "${p##*/} $(cat $p)"
  done
  for p in /proc/[0-9]*; do
    case "$(cat $p/comm 2> /dev/null)" in
      kworker*|bash|sh) ;;
      *) continue ;;
    esac
    echo "task ${p#/proc/} $(cat $p/comm) $(cut -d' ' -f3 $p/stat) wchan=$(cat $p/wchan 2> /dev/null)"
    sed 's/^/    /' $p/stack 2> /dev/null | head -n 12
  done
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s until it
# succeeds; fails the scenario after SECONDS. COMMAND's arguments are
# expanded once, at the call: a value that changes must be read inside
# COMMAND (sim_counter_above, say), not passed as "$(...)".
wait_for() {
  local limit=$(( $1 * 10 )) what=$2 n=0
  shift 2
  until "$@"; do
    n=$((n + 1))
    if [ $n -ge $limit ]; then
      stuck_tasks
      dmesg | tail -n 30
      fail "timed out waiting for $what"
    fi
    sleep 0.1
  done
}

# The simulator's synthetic NICs nic0..nic3 (relids 40..43; the netvsc
# driver makes each an interface). nic_ifname N: nic N's interface.
nic_id() { printf '5151ae%02x-00ae-4e7e-8a11-00155d00ae%02x' "$1" "$1"; }
nic_ifname() { ls $VMBUS_DEVICES/$(nic_id $1)/net 2> /dev/null; }
has_nic_ifname() { [ -n "$(nic_ifname $1)" ]; }
# nic_carrier NETNS IF, nic_no_carrier NETNS IF: for wait_for.
nic_carrier() { ip -n $1 -o link show $2 | grep -q 'LOWER_UP'; }
nic_no_carrier() { ip -n $1 -o link show $2 | grep -q 'NO-CARRIER'; }

# The queues a simulated NIC ends up with: one per CPU, up to the host's
# eight receive queues (the primary channel and seven subchannels).
NIC_QUEUES=$(( $(nproc) < 8 ? $(nproc) : 8 ))
# nic_channels IF [NETNS]: "MAX CURRENT", the combined channels (queues)
# ethtool -l shows.
nic_channels() {
  ${2:+ip netns exec $2} ethtool -l $1 | awk '/Combined:/ { printf "%s%s", sep, $2; sep = " " }'
}
# has_nic_queues IF N [NETNS]: IF has N queues, all it may have.
has_nic_queues() { [ "$(nic_channels $1 $3)" = "$2 $2" ]; }

# nic_stat NETNS IF NAME: counter NAME of ethtool -S.
nic_stat() { ip netns exec $1 ethtool -S $2 | awk -v k="$3:" '$1 == k { print $2 }'; }
# nic_unlisted NETNS IF tx|rx: the packets counted in all and not on the
# queues ethtool -S lists (those of queues ethtool -L took away), from one
# reading.
nic_unlisted() {
  ip netns exec $1 ethtool -S $2 |
    awk -v q="^$3_queue_[0-9]+_packets:" -v t="$3_packets:" '$1 ~ q { n += $2 } $1 == t { all = $2 } END { print all - n }'
}

# nic_pair_wait: waits for nic0's and nic1's interfaces and their
# subchannels (set up after probe); names them $n0, $n1.
nic_pair_wait() {
  wait_for 20 "nic0's interface" has_nic_ifname 0
  wait_for 20 "nic1's interface" has_nic_ifname 1
  n0=$(nic_ifname 0)
  n1=$(nic_ifname 1)
  wait_for 20 "$NIC_QUEUES queues on $n0" has_nic_queues $n0 $NIC_QUEUES
  wait_for 20 "$NIC_QUEUES queues on $n1" has_nic_queues $n1 $NIC_QUEUES
}

# nic_pair_netns PREFIX: moves $n0 into namespace a as PREFIX.1/24 and $n1
# into b as PREFIX.2/24, brings both up and waits for their carrier.
nic_pair_netns() {
  ip netns add a
  ip netns add b
  ip link set $n0 netns a
  ip link set $n1 netns b
  ip -n a addr add $1.1/24 dev $n0
  ip -n b addr add $1.2/24 dev $n1
  ip -n a link set $n0 up
  ip -n b link set $n1 up
  wait_for 10 "carrier on $n0" nic_carrier a $n0
  wait_for 10 "carrier on $n1" nic_carrier b $n1
}

# tcp_listening NETNS PORT: a socket listens on PORT in NETNS (IPv4 or v6).
tcp_listening() {
  ip netns exec $1 cat /proc/net/tcp /proc/net/tcp6 | grep -q ":$(printf '%04X' $2) [0:]*:0000 0A"
}

# nc_transfer MIB PORT [ADDRESS]: MIB MiB of random bytes from namespace a
# to b's ADDRESS (10.70.0.2) through nc; the sha256 must match at both ends
# (the receiver hashes the stream as it comes).
nc_transfer() {
  head -c $(($1 * 1048576)) /dev/urandom > /tmp/nc-send.bin
  ip netns exec b sh -c "nc -l -p $2 | sha256sum > /tmp/nc-received" &
  local listener=$!
  wait_for 10 "nc to listen on $2" tcp_listening b $2
  ip netns exec a nc -N ${3:-10.70.0.2} $2 < /tmp/nc-send.bin || fail "nc send"
  wait $listener
  expect_eq "sha256 of $1 MiB through nc" "$(sha256sum < /tmp/nc-send.bin)" "$(cat /tmp/nc-received)"
  rm -f /tmp/nc-send.bin
}
