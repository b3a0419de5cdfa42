# timeout: 120
# Version negotiation against hosts that accept fewer versions: the guest
# proposes newest first and falls back to the newest the host accepts (4.0
# after 5.3, 5.2, 5.1, 5.0, 4.1; 2.4 after all eight; 3.0 from "3.0,2.4").
# The host counts the proposals; none arrives on a wrong connection id.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

# try VERSIONS EXPECTED_TEXT EXPECTED_RAW PROPOSALS
try() {
  sim_load sim_versions=$1
  dmesg | grep -q "vmbus: connected, version $2\$" || { dmesg | tail; fail "sim_versions=$1: no 'connected, version $2'"; }
  expect_eq "sim_versions=$1: accepted version" $(($3)) "$(sim_counter version)"
  expect_eq "sim_versions=$1: proposals" "$4" "$(sim_counter initiate_contact)"
  expect_eq "sim_versions=$1: unexpected messages" 0 "$(sim_counter unexpected)"
  expect_eq "sim_versions=$1: devices" 5 "$(ls $VMBUS_DEVICES | wc -l)"
  rustic_unload
  dmesg | grep -q "sim host: UNLOAD received" || fail "sim_versions=$1: no UNLOAD at the host"
}
try 4.0 4.0 0x40000 6
try 2.4 2.4 0x20004 8
try 3.0,2.4 3.0 0x30000 7
try 5.0 5.0 0x50000 4
echo "fell back to 4.0, 2.4, 3.0 and 5.0"
