# timeout: 300
# The host rescinds the idle SCSI controller: its disk and SCSI host go,
# the device leaves the bus, the relid is released; offered again, the
# controller comes back with its disk and the data written before. Then
# the rescind of a controller with a mounted file system: the file system
# reports I/O errors, nothing hangs, and unmount and unload work. No leak.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh
. /tests/storvsc-lib.sh

scsi_host_gone() { ! ls -d $VMBUS_DEVICES/$SIM_SCSI_ID 2> /dev/null && ! ls /sys/class/scsi_host/ | grep -q host; }

kmemleak_reset
sim_load sim_devices=scsi
scsi_wait_disk
head -c 1048576 /dev/urandom > /tmp/pattern
dd if=/tmp/pattern of=/dev/$disk bs=64k oflag=direct 2> /dev/null || fail "writing the pattern"
released=$(sim_counter relids_released)
sim_ctl "rescind scsi"
wait_for 30 "the controller and its SCSI host to go" scsi_host_gone
wait_for 10 "RELID_RELEASED" sim_counter_above relids_released "$released"
[ -b /dev/$disk ] && fail "/dev/$disk is still there after the rescind"

sim_ctl "offer scsi"
scsi_wait_disk
cmp -n 1048576 /tmp/pattern /dev/$disk || fail "the data differs after the controller came back"

mkfs.ext4 -q -F /dev/$disk || fail "mkfs.ext4"
mkdir -p /mnt/scsi
mount -t ext4 /dev/$disk /mnt/scsi || fail "mount"
echo hello > /mnt/scsi/file
sync
sim_ctl "rescind scsi"
wait_for 30 "the controller to go with a mounted file system" scsi_host_gone
# The file system's device is gone: a write reaching it fails; nothing hangs.
timeout 30 sh -c 'head -c 65536 /dev/urandom > /mnt/scsi/more; sync' 2> /dev/null
[ $? -eq 124 ] && fail "a write to the file system of a rescinded disk hung"
timeout 30 umount /mnt/scsi || fail "umount after the rescind"
rustic_unload
kmemleak_check
echo "idle rescind removes /dev/$disk; offered again it comes back with its data; a rescind under a mounted ext4 ends in errors, umount and unload"
