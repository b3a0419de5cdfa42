# timeout: 60
# Bad control input is refused with a clear error and changes nothing.
. /tests/lib.sh
. /tests/vmbus-lib.sh

rustic_load
G=bbbbbbbb-0000-0000-0000-000000000001
C="class=$TEST_CLASS"
vmbus_ctl "add $C instance=$G relid=7"

# A fresh instance GUID, so that only the fault under test refuses a command.
F=bbbbbbbb-0000-0000-0000-0000000000ff
check() { # EXPECTED-ERROR INPUT
  expect_eq "writing '$2'" "$1" "$(vmbus_ctl_err "$2")"
}
check "Invalid argument" " "
check "Invalid argument" "frobnicate"
check "Invalid argument" "add"
check "Invalid argument" "add $C relid=8"
check "Invalid argument" "add $C instance=$F"
check "Invalid argument" "add $C instance=not-a-guid relid=8"
check "Invalid argument" "add class=f8615163-df3e-46c5-913f-f2d2f965ed0 instance=$F relid=8"
check "Invalid argument" "add $C instance=$F relid=2048"
check "Invalid argument" "add $C instance=$F relid=-1"
check "Invalid argument" "add $C instance=$F relid=4294967296"
check "Invalid argument" "add $C instance=$F relid=8 monitor=128"
check "Invalid argument" "add $C instance=$F relid=8 cpu=4096"
check "Invalid argument" "add $C instance=$F relid=8 cpu=$(nproc)"
check "Invalid argument" "add $C instance=$F relid=8 relid=9"
check "Invalid argument" "add $C instance=$F relid=8 colour=blue"
check "Invalid argument" "remove"
check "Invalid argument" "remove $G extra"
check "Invalid argument" "$(printf 'add \377\376 relid=8')"
check "Invalid argument" "$(head -c 300 /dev/zero | tr '\0' a)"
check "File exists" "add $C instance=$G relid=9"
check "File exists" "add $C instance=bbbbbbbb-0000-0000-0000-000000000002 relid=7"
check "No such file or directory" "remove bbbbbbbb-0000-0000-0000-000000000003"
check "No such file or directory" "rescind bbbbbbbb-0000-0000-0000-000000000003"
expect_eq "devices after bad input" "$G" "$(ls $VMBUS_DEVICES)"
expect_eq "probes after bad input" 1 "$(test_counter probes)"
# Binary noise.
i=0
while [ $i -lt 20 ]; do
  noise=$(head -c 200 /dev/urandom | tr -d '\0')
  expect_eq "writing random bytes" "Invalid argument" "$(vmbus_ctl_err "$noise")"
  i=$((i + 1))
done
expect_eq "devices after noise" "$G" "$(ls $VMBUS_DEVICES)"
vmbus_ctl "remove $G"
rustic_unload
echo "23 bad commands and 20 random writes refused"
