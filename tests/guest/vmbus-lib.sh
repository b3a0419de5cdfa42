# Helpers for the vmbus bus scenarios (40-49), sourced after lib.sh. Devices
# are made through the test build's debugfs control (vmbus/bus.rs documents
# its syntax).

VMBUS_CTL=/sys/kernel/debug/hv_rustic/bus
VMBUS_DEVICES=/sys/bus/vmbus/devices
TEST_CLASS=c0ffee00-7e57-4b1d-9a3b-525553544943
NET_CLASS=f8615163-df3e-46c5-913f-f2d2f965ed0e
HEARTBEAT_CLASS=57164f39-9115-4e78-ab55-382f3bd5422d
SCSI_CLASS=ba6163d9-04a1-4d29-b605-72e2ffb1dc7f
KBD_CLASS=f912ad6d-2b17-48ea-bd65-f927a61c7684

# vmbus_ctl COMMAND...: one write to the control file; fails the test if
# the write is refused.
vmbus_ctl() {
  echo "$*" > "$VMBUS_CTL" || fail "control refused: $*"
}

# vmbus_ctl_err COMMAND: the write's error message ("" when it succeeded).
vmbus_ctl_err() {
  local err
  err=$( { printf '%s' "$1" > "$VMBUS_CTL"; } 2>&1 )
  echo "${err##*: }"
}

# modalias_of GUID: vmbus: and the GUID's 16 bytes in wire order, in hex
# (the first three fields are little-endian on the wire).
modalias_of() {
  local g=${1//-/}
  echo "vmbus:${g:6:2}${g:4:2}${g:2:2}${g:0:2}${g:10:2}${g:8:2}${g:14:2}${g:12:2}${g:16:16}"
}

# test_counter NAME: a test driver counter (probes, removes, rescinds, mismatches).
test_counter() {
  cat "/sys/kernel/debug/hv_rustic/test_$1"
}

# read_err FILE: the error message of reading FILE ("" when it reads).
read_err() {
  local err
  err=$( { cat "$1" > /dev/null; } 2>&1 )
  echo "${err##*: }"
}

# A scenario that fails half-way leaves no module loaded for the next one.
trap '[ -d /sys/module/hv_rustic ] && rmmod hv_rustic' EXIT
