#!/usr/bin/env bash
# `make deb`: the Debian source package hv-rustic and its binary package
# hv-rustic-dkms, built the Debian way (dpkg-buildpackage, dh with dh-dkms)
# from a copy of what the package ships, then checked by lintian.
#   deb.sh [OUTDIR]     default OUTDIR: build/deb; prints the .deb path last
set -euo pipefail
. "$(dirname "$0")/env.sh"

die() { echo "deb: $*" >&2; exit 1; }
for tool in dpkg-buildpackage dh dh_dkms lintian; do
  command -v "$tool" > /dev/null || die "$tool missing: run 'make deps'"
done

out=${1:-$RUSTIC_ROOT/build/deb}
version=$(cat "$RUSTIC_ROOT/VERSION")
grep -q "^hv-rustic ($version)" "$RUSTIC_ROOT/debian/changelog" ||
  die "debian/changelog's top entry is not version $version (VERSION)"
rm -rf "$out"
src=$out/hv-rustic-$version
mkdir -p "$src"
# The source package: the module's sources, what packs them, and debian/.
bash "$RUSTIC_ROOT/scripts/install.sh" source "$src"
(cd "$RUSTIC_ROOT" && cp -r --parents debian packaging scripts/install.sh scripts/env.sh "$src")
(cd "$src" && dpkg-buildpackage -us -uc --build=source,all > "$out/build.log" 2>&1) ||
  { tail -n 30 "$out/build.log" >&2; die "dpkg-buildpackage failed (log: $out/build.log)"; }
changes=$out/hv-rustic_${version}_amd64.changes
[ -f "$changes" ] || changes=$(ls "$out"/hv-rustic_"$version"_*.changes | head -n 1)
lintian --fail-on error,warning "$changes" > "$out/lintian.log" 2>&1 ||
  { cat "$out/lintian.log" >&2; die "lintian has complaints (log: $out/lintian.log)"; }
echo "$out/hv-rustic-dkms_${version}_all.deb"
