#!/usr/bin/env bash
# build-deb.sh OUT — `make deb`: the Debian package of this tree, built by
# debhelper (dh + meson, debian/) from a copy of the tree in OUT/src, then
# checked with lintian. Leaves OUT/boxd_<version>_amd64.deb (and the
# .buildinfo, .changes and -dbgsym package beside it) and OUT/lintian.txt.
set -euo pipefail
out=$(mkdir -p "$1" && cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n "s/^ *version *: *'\([^']*\)',.*/\1/p" "$root/meson.build" | head -1)
deb_version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
if [[ $version != "$deb_version" ]]; then
	echo "make deb: meson.build says $version, debian/changelog $deb_version: make them agree" >&2
	exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

# The source: the files git knows (tracked, and new ones not ignored), or
# the whole tree but build output when there is no git.
src=$out/src/boxd-$version
rm -rf "$out/src"
mkdir -p "$src"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$root" ls-files -z --cached --others --exclude-standard |
		(cd "$root" && xargs -0 stat --printf '%n\0' 2>/dev/null) |
		tar -C "$root" --null -T - -cf - | tar -C "$src" -xf -
else
	tar -C "$root" --exclude='./build*' --exclude=./var -cf - . | tar -C "$src" -xf -
fi

echo "make deb: building boxd $version in $src" >&2
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || {
	tail -40 "$out/build.log" >&2
	echo "make deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
	exit 1
}
for f in "$out/src/"*.deb "$out/src/"*.buildinfo "$out/src/"*.changes; do
	mv -f "$f" "$out/"
done
deb=$out/boxd_${version}_${arch}.deb
[[ -f $deb ]] || { echo "make deb: $deb was not made" >&2; exit 1; }

# lintian: errors and warnings fail the build; each tag that stays is
# justified in debian/source/lintian-overrides or debian/boxd.lintian-overrides.
lintian --fail-on error,warning --display-info "$out/boxd_${version}_${arch}.changes" >"$out/lintian.txt" 2>&1 || {
	cat "$out/lintian.txt" >&2
	echo "make deb: lintian is not clean" >&2
	exit 1
}
echo "$deb"
