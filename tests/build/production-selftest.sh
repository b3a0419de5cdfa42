#!/usr/bin/env bash
# production.sh must catch what it looks for: run on the test build
# (RUSTIC_TEST_BUILD=1, which `make test`'s guest layers have just built, so
# this builds nothing then), every case but the bus and the stack frames
# fails. KTAP on stdout: one case per case of production.sh.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "KTAP version 1"
if ! ko=$(RUSTIC_TEST_BUILD=1 bash scripts/module.sh build 2> "$tmp/err" | tail -n 1) || [ ! -f "$ko" ]; then
  echo "1..1"
  sed 's/^/# /' "$tmp/err" | tail -n 5
  echo "not ok 1 test-build # the test build failed"
  exit 0
fi
cp "$ko" "$tmp/test.ko"
out=$(bash tests/build/production.sh "$tmp/test.ko")
echo "1..$(grep -cE '^(not )?ok ' <<<"$out")"
n=0
while read -r verdict; do
  n=$((n + 1))
  name=$(sed -E 's/^(not )?ok [0-9]+ ([^ ]+).*/\2/' <<<"$verdict")
  case "$name" in
    production-module-has-the-bus|production-module-stack-frames) want="ok" ;;
    *) want="not ok" ;;
  esac
  case_name="test-build-$([ "$want" = ok ] && echo passes || echo fails)-${name#production-module-}"
  if [[ "$verdict" == "$want "* ]]; then
    echo "ok $n $case_name"
  else
    echo "not ok $n $case_name # production.sh said: $verdict"
  fi
done < <(grep -E '^(not )?ok ' <<<"$out")
