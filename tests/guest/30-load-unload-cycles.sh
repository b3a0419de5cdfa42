# timeout: 400
# 20 load/unload cycles leave no leaked memory behind.
. /tests/lib.sh

kmemleak_reset
i=0
while [ $i -lt 20 ]; do
  rustic_load
  rustic_unload
  i=$((i + 1))
done
echo "$i load/unload cycles done"
kmemleak_check
