# timeout: 120
# Issue 16 item 10: channels as users and validation tools see them. A
# simulated NIC gets one queue per CPU (NIC_QUEUES); each of its channels,
# subchannels included, has its directory channels/<relid>/ with the C
# driver's files, and lsvmbus -vv lists every one with its target CPU.
# The channels are spread as the C driver spreads a performance class's:
# each on a CPU of its own. Writing a subchannel's cpu file moves it
# (MODIFYCHANNEL), as in the C driver. Before: channels/ and lsvmbus -vv
# showed the primary channel only.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

[ $NIC_QUEUES -ge 2 ] || fail "one CPU, so one queue: the guest needs two or more"
kmemleak_reset
sim_load sim_devices=nic0
wait_for 20 "nic0's interface" has_nic_ifname 0
n0=$(nic_ifname 0)
wait_for 20 "$NIC_QUEUES queues on $n0" has_nic_queues $n0 $NIC_QUEUES
dev=$VMBUS_DEVICES/$(nic_id 0)
primary=$(cat $dev/id)
relids=$(ls $dev/channels | sort -n)
echo "channels of $n0: $(echo $relids)"
expect_eq "channel directories" $NIC_QUEUES "$(echo "$relids" | wc -l)"

# Every directory has the C driver's files; the monitor ones only where
# the offer has a monitor id (the primary's if the device has one, no
# subchannel's).
files="cpu in_mask out_mask read_avail write_avail interrupts events intr_in_full intr_out_empty out_full_first out_full_total subchannel_id"
ids="" cpus="" mapping=""
for r in $relids; do
  d=$dev/channels/$r
  for f in $files; do
    [ -r $d/$f ] || fail "channels/$r has no $f"
  done
  v=$(cat $d/read_avail) || fail "channels/$r/read_avail unreadable"
  [ "$v" -ge 0 ] 2> /dev/null || fail "channels/$r/read_avail: '$v'"
  v=$(cat $d/write_avail) || fail "channels/$r/write_avail unreadable"
  [ "$v" -gt 0 ] 2> /dev/null || fail "channels/$r/write_avail: '$v' (not open?)"
  if [ $r = $primary ] && [ -e $dev/monitor_id ]; then
    expect_eq "the primary channel's monitor_id" "$(cat $dev/monitor_id)" "$(cat $d/monitor_id)"
  else
    [ -e $d/monitor_id ] && fail "channel $r shows monitor_id without a monitor"
  fi
  ids="$ids $(cat $d/subchannel_id)"
  cpus="$cpus $(cat $d/cpu)"
  mapping="$mapping$r:$(cat $d/cpu) "
done
expect_eq "subchannel ids" "$(seq 0 $((NIC_QUEUES - 1)) | tr '\n' ' ')" "$(echo $ids | tr ' ' '\n' | sort -n | tr '\n' ' ')"
distinct=$(echo $cpus | tr ' ' '\n' | sort -u | wc -l)
expect_eq "distinct CPUs of the $NIC_QUEUES channels (CPUs:$cpus)" $NIC_QUEUES $distinct

# channel_vp_mapping and lsvmbus -vv: every channel, with its CPU.
expect_eq "channel_vp_mapping" "$mapping" "$(sort -n -t: -k1 $dev/channel_vp_mapping | tr '\n' ' ')"
listed=$(lsvmbus -vv | sed -n "/^VMBUS ID *$primary:/,/^\$/p" | grep 'Rel_ID=')
want=""
for r in $relids; do
  want="$want	Rel_ID=$r, target_cpu=$(cat $dev/channels/$r/cpu)
"
done
expect_eq "lsvmbus -vv channels of nic0" "$want" "$listed
"

# A subchannel moves when its cpu file is written; a CPU that is not
# there is refused and changes nothing.
sub=$(echo "$relids" | tail -n 1)
from=$(cat $dev/channels/$sub/cpu)
to=$(( (from + 1) % $(nproc) ))
modifies=$(sim_counter modifies)
echo $to > $dev/channels/$sub/cpu || fail "writing $to to channels/$sub/cpu"
expect_eq "subchannel $sub's CPU after the write" $to "$(cat $dev/channels/$sub/cpu)"
expect_eq "MODIFYCHANNEL messages" $((modifies + 1)) "$(sim_counter modifies)"
grep -qx "$sub:$to" $dev/channel_vp_mapping || fail "channel_vp_mapping does not show $sub:$to"
(echo 4096 > $dev/channels/$sub/cpu) 2> /dev/null && fail "moving to CPU 4096 succeeded"
expect_eq "subchannel $sub's CPU after a refused write" $to "$(cat $dev/channels/$sub/cpu)"

# The rescind takes every channel directory with the device.
sim_ctl "rescind nic0"
wait_for 10 "nic0 to go" [ ! -e $dev ]
rustic_unload
kmemleak_check
echo "$NIC_QUEUES channels of nic0 in sysfs and lsvmbus -vv on CPUs$cpus"
