# timeout: 90
# Devices made from offer facts appear under /sys/bus/vmbus/devices, named
# by instance GUID, with exactly the C hv_vmbus attribute set and formats,
# values equal to what was offered, channels/<relid>/ of a closed channel,
# and a uevent carrying the modalias the C drivers' aliases use.
. /tests/lib.sh
. /tests/vmbus-lib.sh

rustic_load
[ -d /sys/bus/vmbus ] || fail "no /sys/bus/vmbus after loading"
expect_eq "devices at load" "" "$(ls $VMBUS_DEVICES)"
expect_eq "bus hibernation" 0 "$(cat /sys/bus/vmbus/hibernation)"

NET_ID=0d1e2f30-4152-6374-8596-a7b8c9dae0f1
HB_ID=9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0
vmbus_ctl "add class={$NET_CLASS} instance=$NET_ID relid=14 monitor=3 cpu=1"
vmbus_ctl "add class=$HEARTBEAT_CLASS instance={${HB_ID^^}} relid=0x2"
expect_eq "devices" "$(printf '%s\n' $NET_ID $HB_ID | sort)" "$(ls $VMBUS_DEVICES | sort)"

net=$VMBUS_DEVICES/$NET_ID
hb=$VMBUS_DEVICES/$HB_ID

# The attribute set: the C driver's list (numa_node only with CONFIG_NUMA,
# monitor attributes only with a monitor id) plus the driver core's.
monitor_attrs="client_monitor_conn_id client_monitor_latency client_monitor_pending monitor_id server_monitor_conn_id server_monitor_latency server_monitor_pending"
base_attrs="channel_vp_mapping channels class_id device device_id driver_override id in_intr_mask in_read_bytes_avail in_read_index in_write_bytes_avail in_write_index modalias out_intr_mask out_read_bytes_avail out_read_index out_write_bytes_avail out_write_index state subsystem uevent vendor"
numa=""
[ -d /sys/devices/system/node ] && numa=numa_node
expect_eq "net attributes" "$(echo $base_attrs $monitor_attrs $numa | tr ' ' '\n' | sort | xargs)" "$(ls $net | sort | xargs)"
expect_eq "heartbeat attributes" "$(echo $base_attrs $numa | tr ' ' '\n' | sort | xargs)" "$(ls $hb | sort | xargs)"

expect_eq "net id" 14 "$(cat $net/id)"
expect_eq "net state (offered, not opened)" 0 "$(cat $net/state)"
expect_eq "net class_id" "{$NET_CLASS}" "$(cat $net/class_id)"
expect_eq "net device_id" "{$NET_ID}" "$(cat $net/device_id)"
expect_eq "net modalias" "$(modalias_of $NET_CLASS)" "$(cat $net/modalias)"
expect_eq "net modalias literal" "vmbus:635161f83edfc546913ff2d2f965ed0e" "$(cat $net/modalias)"
expect_eq "net vendor" 0x1414 "$(cat $net/vendor)"
expect_eq "net device (HV_NIC)" 0x3 "$(cat $net/device)"
expect_eq "net monitor_id" 3 "$(cat $net/monitor_id)"
expect_eq "net channel_vp_mapping" "14:1" "$(cat $net/channel_vp_mapping)"
for a in server_monitor_pending client_monitor_pending server_monitor_latency client_monitor_latency server_monitor_conn_id client_monitor_conn_id; do
  expect_eq "net $a (no monitor pages yet)" 0 "$(cat $net/$a)"
done
[ -n "$numa" ] && expect_eq "net numa_node" 0 "$(cat $net/numa_node)"
expect_eq "heartbeat id" 2 "$(cat $hb/id)"
expect_eq "heartbeat device_id (upper case offered)" "{$HB_ID}" "$(cat $hb/device_id)"
expect_eq "heartbeat device (HV_HB)" 0xb "$(cat $hb/device)"
expect_eq "heartbeat channel_vp_mapping" "2:0" "$(cat $hb/channel_vp_mapping)"

# A closed channel has no rings: the C driver answers -EINVAL.
for dir in out in; do
  for a in intr_mask read_index write_index read_bytes_avail write_bytes_avail; do
    expect_eq "$dir"_"$a of a closed channel" "Invalid argument" "$(read_err $net/${dir}_$a)"
  done
done

# The uevent: MODALIAS in the C driver's format; no driver binds a NIC here.
expect_eq "net uevent" "MODALIAS=$(modalias_of $NET_CLASS)" "$(cat $net/uevent)"
expect_eq "heartbeat uevent" "MODALIAS=$(modalias_of $HEARTBEAT_CLASS)" "$(cat $hb/uevent)"
[ ! -e $net/driver ] || fail "a NIC device is bound to $(readlink $net/driver)"
# The C drivers of the test kernel carry the aliases udev matches against.
for ko in $(find /lib/modules -name hv_netvsc.ko -o -name hv_utils.ko); do
  grep -aq "alias=$(cat $net/modalias)" "$ko" && netvsc_alias=yes
  grep -aq "alias=$(cat $hb/modalias)" "$ko" && hb_alias=yes
done
expect_eq "hv_netvsc.ko has our NIC modalias" yes "${netvsc_alias:-no}"
expect_eq "hv_utils.ko has our heartbeat modalias" yes "${hb_alias:-no}"

# channels/<relid>/ of a closed primary channel.
ch=$net/channels/14
[ -d "$ch" ] || fail "no $ch"
expect_eq "channel dirs" 14 "$(ls $net/channels)"
expect_eq "net channel attributes" "cpu events in_mask interrupts intr_in_full intr_out_empty latency monitor_id out_full_first out_full_total out_mask pending read_avail subchannel_id write_avail" "$(ls $ch | sort | xargs)"
expect_eq "heartbeat channel attributes (no monitor)" "cpu events in_mask interrupts intr_in_full intr_out_empty out_full_first out_full_total out_mask read_avail subchannel_id write_avail" "$(ls $hb/channels/2 | sort | xargs)"
expect_eq "channel cpu" 1 "$(cat $ch/cpu)"
expect_eq "channel monitor_id" 3 "$(cat $ch/monitor_id)"
for a in events interrupts intr_in_full intr_out_empty out_full_first out_full_total subchannel_id pending latency; do
  expect_eq "channel $a" 0 "$(cat $ch/$a)"
done
for a in in_mask out_mask read_avail write_avail; do
  expect_eq "channel $a of a closed channel" "Invalid argument" "$(read_err $ch/$a)"
done
expect_eq "cpu mode" "-rw-r--r--" "$(ls -l $ch/cpu | cut -c1-10)"
err=$( { echo 0 > $ch/cpu; } 2>&1 )
expect_eq "retargeting a closed channel" "Input/output error" "${err##*: }"
expect_eq "cpu unchanged" 1 "$(cat $ch/cpu)"

# The device hangs off the bus's root device and is in the bus's list.
expect_eq "subsystem" vmbus "$(basename $(readlink $net/subsystem))"
expect_eq "parent" rustic_vmbus "$(basename $(dirname $(readlink -f $net)))"

vmbus_ctl "remove $NET_ID"
[ ! -e "$net" ] || fail "$net still there after remove"
expect_eq "devices after remove" "$HB_ID" "$(ls $VMBUS_DEVICES)"
rustic_unload
[ ! -d /sys/bus/vmbus ] || fail "/sys/bus/vmbus still there after unload"
echo "attribute sets, values and uevents of 2 devices match the C driver's"
