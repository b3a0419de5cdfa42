# timeout: 90
# The kernel's own lsvmbus (tools/hv/lsvmbus, unmodified) lists exactly the
# simulated offers; sim_devices picks which are offered.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

sim_load
# Bulk I/O classes (net, scsi) are spread round robin over the CPUs in
# offer order; the others stay on CPU 0. The NIC's subchannels, offered
# after its probe, are listed too, each on a CPU of its own (as the C
# driver spreads them).
second_cpu=$(( $(nproc) > 1 ? 1 : 0 ))
net_if() { ls $VMBUS_DEVICES/$SIM_NET_ID/net 2> /dev/null; }
wait_for 20 "the NIC's interface" net_if
wait_for 20 "the NIC's $NIC_QUEUES queues" has_nic_queues $(net_if) $NIC_QUEUES
subs=$(ls $VMBUS_DEVICES/$SIM_NET_ID/channels | grep -vx 14 | sort -n)
expect_eq "the NIC's subchannels" $((NIC_QUEUES - 1)) "$(echo "$subs" | grep -c .)"
nic_cpus=0 nic_subs=""
for r in $subs; do
  cpu=$(cat $VMBUS_DEVICES/$SIM_NET_ID/channels/$r/cpu)
  nic_cpus="$nic_cpus $cpu"
  nic_subs="$nic_subs
	Rel_ID=$r, target_cpu=$cpu"
done
expect_eq "distinct CPUs of the NIC's channels ($nic_cpus)" $NIC_QUEUES "$(echo $nic_cpus | tr ' ' '\n' | sort -u | wc -l)"
out=$(lsvmbus -vv) || fail "lsvmbus -vv failed"
expected="VMBUS ID  3: Class_ID = {$KBD_CLASS} - Synthetic keyboard
	Device_ID = {$SIM_KBD_ID}
	Sysfs path: /sys/bus/vmbus/devices/$SIM_KBD_ID
	Rel_ID=3, target_cpu=0

VMBUS ID  7: Class_ID = {$HEARTBEAT_CLASS} - [Heartbeat]
	Device_ID = {$SIM_HB_ID}
	Sysfs path: /sys/bus/vmbus/devices/$SIM_HB_ID
	Rel_ID=7, target_cpu=0

VMBUS ID 14: Class_ID = {$NET_CLASS} - Synthetic network adapter
	Device_ID = {$SIM_NET_ID}
	Sysfs path: /sys/bus/vmbus/devices/$SIM_NET_ID
	Rel_ID=14, target_cpu=0$nic_subs

VMBUS ID 15: Class_ID = {$SCSI_CLASS} - Synthetic SCSI Controller
	Device_ID = {$SIM_SCSI_ID}
	Sysfs path: /sys/bus/vmbus/devices/$SIM_SCSI_ID
	Rel_ID=15, target_cpu=$second_cpu

VMBUS ID 200: Class_ID = {$TEST_CLASS} - Unknown
	Device_ID = {$SIM_TEST_ID}
	Sysfs path: /sys/bus/vmbus/devices/$SIM_TEST_ID
	Rel_ID=200, target_cpu=0"
if [ "$out" != "$expected" ]; then
  echo "lsvmbus -vv printed:"; echo "$out"
  echo "expected:"; echo "$expected"
  fail "lsvmbus -vv output differs"
fi
rustic_unload

sim_load sim_devices=kbd,test
expect_eq "lsvmbus with sim_devices=kbd,test" "VMBUS ID  3: Synthetic keyboard
VMBUS ID 200: Unknown" "$(lsvmbus)"
expect_eq "offers sent" 2 "$(sim_counter offers_sent)"
rustic_unload

sim_load sim_devices=none
expect_eq "devices with sim_devices=none" "" "$(ls $VMBUS_DEVICES)"
expect_eq "lsvmbus with no offers" "" "$(lsvmbus)"
rustic_unload

insmod $RUSTIC_KO simulate=1 sim_devices=bogus 2> /dev/null && fail "sim_devices=bogus was accepted"
[ ! -d /sys/module/hv_rustic ] || fail "hv_rustic loaded with sim_devices=bogus"
echo "lsvmbus lists exactly the offers, for three device sets"
