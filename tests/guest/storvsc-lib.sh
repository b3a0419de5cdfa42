# Helpers for the storvsc scenarios (80-89), sourced after lib.sh,
# vmbus-lib.sh and sim-lib.sh. The simulated controller `scsi` (relid 15,
# drivers/storage/sim) has one 64 MiB LUN of 512-byte sectors at 0:0:0.
SCSI_DISK_BYTES=$((64 * 1024 * 1024))

# scsi_disk: the name (sdX) of the simulated controller's disk, or nothing.
scsi_disk() {
  local b
  for b in $VMBUS_DEVICES/$SIM_SCSI_ID/host*/target*/*/block/*; do
    [ -e "$b" ] && { echo "${b##*/}"; return; }
  done
}
scsi_disk_present() { [ -n "$(scsi_disk)" ] && [ -b "/dev/$(scsi_disk)" ]; }
scsi_disk_absent() { [ -z "$(scsi_disk)" ]; }

# scsi_wait_disk: waits for the disk and sets $disk to its name.
scsi_wait_disk() {
  wait_for 30 "the SCSI disk" scsi_disk_present
  disk=$(scsi_disk)
}
