# timeout: 60
# hv_rustic loads, logs its version, shows it in sysfs, and unloads cleanly.
. /tests/lib.sh

version=$(cat /tests/VERSION)
dmesg -c > /dev/null
rustic_load
dmesg | grep -q "hv_rustic: RustIC $version loaded" || fail "no 'RustIC $version loaded' line in dmesg"
expect_eq "sysfs version" "$version" "$(cat /sys/module/hv_rustic/version)"
expect_eq "refcount" 0 "$(cat /sys/module/hv_rustic/refcnt)"
rustic_unload
dmesg | grep -q "hv_rustic: RustIC $version unloaded" || fail "no 'RustIC $version unloaded' line in dmesg"
echo "loaded and unloaded RustIC $version"
