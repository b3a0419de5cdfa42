# timeout: 120
# Version negotiation against hosts that accept fewer versions: the guest
# proposes newest first and falls back to the newest the host accepts (4.0
# after 5.3, 5.2, 5.1, 5.0, 4.1; 2.4 after all eight; 3.0 from "3.0,2.4").
# A host older than 5.0 has no port at connection id 4: the four 5.x
# proposals fail the hypercall there (counted as sim_posts_no_port) and
# never reach it; the host counts the proposals it received; none arrives
# on a wrong connection id.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

# try VERSIONS EXPECTED_TEXT EXPECTED_RAW PROPOSALS NO_PORT
try() {
  sim_load sim_versions=$1
  dmesg | grep -q "vmbus: connected, version $2\$" || { dmesg | tail; fail "sim_versions=$1: no 'connected, version $2'"; }
  expect_eq "sim_versions=$1: accepted version" $(($3)) "$(sim_counter version)"
  expect_eq "sim_versions=$1: proposals" "$4" "$(sim_counter initiate_contact)"
  expect_eq "sim_versions=$1: posts to a missing port" "$5" "$(sim_counter posts_no_port)"
  expect_eq "sim_versions=$1: unexpected messages" 0 "$(sim_counter unexpected)"
  expect_eq "sim_versions=$1: devices" 5 "$(ls $VMBUS_DEVICES | wc -l)"
  rustic_unload
  # As the C driver: a host older than 3.0 gets no UNLOAD (58 checks the
  # line that says so).
  if [ $(($3)) -ge $((0x30000)) ]; then
    dmesg | grep -q "sim host: UNLOAD received" || fail "sim_versions=$1: no UNLOAD at the host"
  else
    ! dmesg | grep -q "sim host: UNLOAD received" || fail "sim_versions=$1: UNLOAD sent to a host older than 3.0"
  fi
}
try 4.0 4.0 0x40000 2 4
try 2.4 2.4 0x20004 4 4
try 3.0,2.4 3.0 0x30000 3 4
try 5.0 5.0 0x50000 4 0
echo "fell back to 4.0, 2.4, 3.0 and 5.0"
