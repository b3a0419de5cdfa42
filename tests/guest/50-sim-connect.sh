# timeout: 90
# With the simulator the guest connects at the newest version (5.3, said in
# the kernel log), the host sees one INITIATE_CONTACT and one REQUESTOFFERS,
# and the five default offers appear under /sys/bus/vmbus/devices with the
# class_id, device_id, id and monitor_id the host offered (then the NIC's
# subchannels, one per queue past the first).
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

sim_load
dmesg | grep -q "vmbus: connected, version 5.3" || { dmesg | tail; fail "no 'connected, version 5.3' in the log"; }
expect_eq "accepted version (raw)" $((0x50003)) "$(sim_counter version)"
expect_eq "INITIATE_CONTACTs" 1 "$(sim_counter initiate_contact)"
expect_eq "REQUESTOFFERS" 1 "$(sim_counter request_offers)"
# The five, and the subchannels the NIC's driver asked for after probe.
net_if() { ls $VMBUS_DEVICES/$SIM_NET_ID/net 2> /dev/null; }
wait_for 20 "the NIC's interface" net_if
wait_for 20 "the NIC's $NIC_QUEUES queues" has_nic_queues $(net_if) $NIC_QUEUES
expect_eq "offers sent" $((5 + NIC_QUEUES - 1)) "$(sim_counter offers_sent)"
expect_eq "unexpected messages at the host" 0 "$(sim_counter unexpected)"
expect_eq "devices" "$(printf '%s\n' $SIM_NET_ID $SIM_SCSI_ID $SIM_KBD_ID $SIM_HB_ID $SIM_TEST_ID | sort)" "$(ls $VMBUS_DEVICES | sort)"

# check_dev ID CLASS RELID MONITOR ("" for none) [STATE]
check_dev() {
  local d=$VMBUS_DEVICES/$1
  expect_eq "$1 class_id" "{$2}" "$(cat $d/class_id)"
  expect_eq "$1 device_id" "{$1}" "$(cat $d/device_id)"
  expect_eq "$1 id" "$3" "$(cat $d/id)"
  expect_eq "$1 modalias" "$(modalias_of $2)" "$(cat $d/modalias)"
  expect_eq "$1 state" "${5:-0}" "$(cat $d/state)"
  [ -d "$d/channels/$3" ] || fail "$1: no channels/$3"
  if [ -n "$4" ]; then
    expect_eq "$1 monitor_id" "$4" "$(cat $d/monitor_id)"
    # The host filled both monitor pages for the channel: latency 100
    # (x 100 ns) and the connection id it signals on (0x10000 + relid).
    for side in server client; do
      expect_eq "$1 ${side}_monitor_latency" 100 "$(cat $d/${side}_monitor_latency)"
      expect_eq "$1 ${side}_monitor_conn_id" $((65536 + $3)) "$(cat $d/${side}_monitor_conn_id)"
      expect_eq "$1 ${side}_monitor_pending" 0 "$(cat $d/${side}_monitor_pending)"
    done
  else
    [ ! -e "$d/monitor_id" ] || fail "$1 has a monitor_id without a monitor"
  fi
}
# The netvsc driver bound the NIC and opened its channel (state 3, open).
check_dev $SIM_NET_ID $NET_CLASS 14 0 3
expect_eq "the NIC's driver" hv_netvsc "$(basename "$(readlink $VMBUS_DEVICES/$SIM_NET_ID/driver)")"
# So did the storvsc driver the SCSI controller.
check_dev $SIM_SCSI_ID $SCSI_CLASS 15 1 3
expect_eq "the SCSI controller's driver" hv_storvsc "$(basename "$(readlink $VMBUS_DEVICES/$SIM_SCSI_ID/driver)")"
check_dev $SIM_KBD_ID $KBD_CLASS 3 ""
check_dev $SIM_HB_ID $HEARTBEAT_CLASS 7 ""
check_dev $SIM_TEST_ID $TEST_CLASS 200 2
# The test driver bound its offer.
expect_eq "test driver probes" 1 "$(test_counter probes)"
[ -e $VMBUS_DEVICES/$SIM_TEST_ID/driver ] || fail "test device not bound"
rustic_unload
echo "connected at 5.3, 5 offers with their attributes"
