# timeout: 300
# Data through the simulated SCSI disk, checked: 32 MiB of random bytes
# written and read back with direct I/O in 512 KiB requests (the largest
# transfer: 129-page GPA ranges) and compared. Then fio: random direct
# writes of 4 KiB to 256 KiB (up to 16 in flight), each block read back and
# checked (crc32c). fio needs System V shared memory (its shmget), which
# the test kernel lacks today (CONFIG_SYSVIPC is not set): without
# /proc/sysvipc the fio part is left out and the summary says so. No error,
# the host saw the blocks, nothing refused or dropped.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh
. /tests/storvsc-lib.sh

kmemleak_reset
sim_load sim_devices=scsi
scsi_wait_disk
written=$(sim_counter scsi_blocks_written)
read=$(sim_counter scsi_blocks_read)
head -c $((32 * 1024 * 1024)) /dev/urandom > /tmp/data
dd if=/tmp/data of=/dev/$disk bs=512k oflag=direct 2> /tmp/dd.log || { cat /tmp/dd.log; fail "direct writes of 512 KiB"; }
dd if=/dev/$disk of=/tmp/back bs=512k count=64 iflag=direct 2> /tmp/dd.log || { cat /tmp/dd.log; fail "direct reads of 512 KiB"; }
cmp /tmp/data /tmp/back || fail "the data read back differs from the data written"
rm -f /tmp/data /tmp/back
blocks=$(( $(sim_counter scsi_blocks_written) - written ))
[ $blocks -ge 65536 ] || fail "the host saw $blocks blocks written, fewer than 32 MiB"
blocks=$(( $(sim_counter scsi_blocks_read) - read ))
[ $blocks -ge 65536 ] || fail "the host saw $blocks blocks read, fewer than 32 MiB"

if [ -d /proc/sysvipc ]; then
  fio --name=verify --filename=/dev/$disk --rw=randwrite --bsrange=4k-256k \
      --size=24M --ioengine=libaio --iodepth=16 --direct=1 --verify=crc32c \
      --verify_fatal=1 --do_verify=1 > /tmp/fio.log 2>&1 \
    || { cat /tmp/fio.log; fail "fio with verify failed"; }
  grep -q 'err= 0' /tmp/fio.log || { cat /tmp/fio.log; fail "fio reports errors"; }
  fio_said="fio randwrite 4k-256k with crc32c verify: $(grep -o 'WRITE: bw=[^ ]*' /tmp/fio.log)"
else
  fio_said="fio left out: the kernel has no System V IPC (CONFIG_SYSVIPC)"
fi
expect_eq "SRBs the host refused" 0 "$(sim_counter scsi_refused)"
dmesg | grep -q 'storvsc.*dropped' && fail "the driver dropped host input: $(dmesg | grep storvsc)"
rustic_unload
kmemleak_check
echo "32 MiB in 512 KiB direct requests written, read back and compared on /dev/$disk; $fio_said"
