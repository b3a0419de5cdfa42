#!/usr/bin/env bash
# Whether this machine's KVM can give a guest Hyper-V's SynIC, which QEMU's
# VMBus (`-device vmbus-bridge`) needs. Exits 0 if so; else 1, printing one
# line saying why. Asks /dev/kvm directly (KVM_CHECK_EXTENSION), so it
# answers at once, without booting anything.
kvm=/dev/kvm
if [ ! -e $kvm ]; then echo "no $kvm"; exit 1; fi
if [ ! -r $kvm ] || [ ! -w $kvm ]; then echo "$kvm is not readable and writable by $(id -un)"; exit 1; fi
command -v qemu-system-x86_64 > /dev/null || { echo "no qemu-system-x86_64"; exit 1; }
python3 - "$kvm" <<'PY'
import fcntl, os, sys
KVM_CHECK_EXTENSION = 0xAE03      # _IO(KVMIO, 0x03)
KVM_CAP_HYPERV = 44
KVM_CAP_HYPERV_SYNIC = 123
try:
    fd = os.open(sys.argv[1], os.O_RDWR)
    hyperv = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV)
    synic = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_SYNIC)
except OSError as e:
    print(f"{sys.argv[1]}: {e.strerror}")
    sys.exit(1)
if not hyperv or not synic:
    print(f"this KVM has no Hyper-V SynIC (KVM_CAP_HYPERV={hyperv}, KVM_CAP_HYPERV_SYNIC={synic})")
    sys.exit(1)
PY
