# timeout: 60
# The Debian tools later scenarios rely on run in the guest (their shared
# libraries came along), and the kernel's lsvmbus compiles under python3.
. /tests/lib.sh

ip -V | grep -q iproute2 || fail "ip does not run"
ethtool --version | grep -q ethtool || fail "ethtool does not run"
iperf3 --version | grep -q iperf || fail "iperf3 does not run"
fio --version | grep -q fio || fail "fio does not run"
mkfs.ext4 -V 2>&1 | grep -q mke2fs || fail "mkfs.ext4 does not run"
e2fsck -V 2>&1 | grep -q e2fsck || fail "e2fsck does not run"
evtest --help 2>&1 | grep -qi usage || fail "evtest does not run"
nc -h 2>&1 | grep -qi usage || fail "nc does not run"
expect_eq "python3" "4" "$(python3 -c 'print(2 + 2)')"
python3 -c 'import py_compile, sys; py_compile.compile("/usr/sbin/lsvmbus", doraise=True, cfile="/tmp/lsvmbus.pyc")' \
  || fail "lsvmbus does not compile under python3"
echo "tools ok: $(iperf3 --version | head -n 1)"
