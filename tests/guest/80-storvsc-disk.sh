# timeout: 300
# The simulated SCSI controller is bound by the storvsc driver (lsvmbus
# names it, sysfs shows hv_storvsc); its LUN appears as /dev/sdX of the
# LUN's size, vendor Msft, model Virtual Disk, a 180 s request timeout.
# An ext4 file system made on it holds a tree of files across an unmount:
# e2fsck -n finds it clean and the checksums match after the remount.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh
. /tests/storvsc-lib.sh

kmemleak_reset
sim_load sim_devices=scsi
lsvmbus -vv | grep -q "VMBUS ID 15: Class_ID = {$SCSI_CLASS} - Synthetic SCSI Controller" \
  || fail "lsvmbus: $(lsvmbus -vv)"
expect_eq "driver of the SCSI controller" hv_storvsc \
  "$(basename "$(readlink $VMBUS_DEVICES/$SIM_SCSI_ID/driver)")"
scsi_wait_disk
dev=/sys/block/$disk/device
expect_eq "vendor" Msft "$(cat $dev/vendor | tr -d ' ')"
expect_eq "model" "Virtual Disk" "$(cat $dev/model | sed 's/ *$//')"
expect_eq "size in 512-byte sectors" $((SCSI_DISK_BYTES / 512)) "$(cat /sys/block/$disk/size)"
expect_eq "logical block size" 512 "$(cat /sys/block/$disk/queue/logical_block_size)"
expect_eq "request timeout" 180 "$(cat $dev/timeout)"

written=$(sim_counter scsi_blocks_written)
mkfs.ext4 -q -F /dev/$disk || fail "mkfs.ext4 /dev/$disk"
sim_counter_above scsi_blocks_written $written || fail "mkfs wrote nothing to the host's disk"
mkdir -p /mnt/scsi
mount -t ext4 /dev/$disk /mnt/scsi || fail "mount /dev/$disk"
for d in a b c d; do
  mkdir -p /mnt/scsi/$d/deeper
  for i in 1 2 3 4 5 6; do
    head -c $((i * 37000)) /dev/urandom > /mnt/scsi/$d/f$i
    head -c $((i * 513)) /dev/urandom > /mnt/scsi/$d/deeper/g$i
  done
done
head -c $((3 * 1024 * 1024)) /dev/urandom > /mnt/scsi/big
(cd /mnt/scsi && find . -type f | sort | xargs sha256sum) > /tmp/scsi.sums
umount /mnt/scsi || fail "umount"
# Nothing cached: the remount reads the host's disk.
echo 3 > /proc/sys/vm/drop_caches
e2fsck -n -f /dev/$disk > /tmp/fsck.log 2>&1 || { cat /tmp/fsck.log; fail "e2fsck -n found the file system unclean"; }
read_before=$(sim_counter scsi_blocks_read)
mount -t ext4 /dev/$disk /mnt/scsi || fail "remount /dev/$disk"
(cd /mnt/scsi && sha256sum -c /tmp/scsi.sums > /tmp/scsi.check 2>&1) || { cat /tmp/scsi.check; fail "checksums differ after the remount"; }
sim_counter_above scsi_blocks_read $read_before || fail "the remount read nothing from the host's disk"
umount /mnt/scsi || fail "umount after the check"
expect_eq "SRBs the host refused" 0 "$(sim_counter scsi_refused)"
dmesg | grep -q 'storvsc.*dropped' && fail "the driver dropped host input: $(dmesg | grep storvsc)"
rustic_unload
kmemleak_check
echo "/dev/$disk: $(( SCSI_DISK_BYTES >> 20 )) MiB Msft Virtual Disk; ext4 with $(wc -l < /tmp/scsi.sums) files survives unmount, fsck -n, remount"
