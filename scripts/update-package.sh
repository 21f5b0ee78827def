#!/usr/bin/env bash
# update-package.sh BUILD VERSION OUT — pack BUILD/boxd and BUILD/boxctl as
# an update package of release VERSION (a .tar.gz for `boxctl update apply`):
#
#	manifest.json   {"version": VERSION, "buildVersion": ...}
#	bin/boxd, bin/boxctl
#
# The version names a directory under <install_root>/releases: 1-64 of
# [A-Za-z0-9._+-], starting with a letter or digit.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 BUILD VERSION OUT.tar.gz" >&2; exit 2; }
build=$1 version=$2 out=$3
[[ $version =~ ^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$ ]] || { echo "update-package: bad version '$version'" >&2; exit 2; }
for b in boxd boxctl; do
	[[ -x $build/$b ]] || { echo "update-package: $build/$b is missing (make first)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/boxd-update-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
cp "$build/boxd" "$build/boxctl" "$work/bin/"
built=$("$build/boxd" version | cut -d' ' -f2)
printf '{"version": "%s", "buildVersion": "%s"}\n' "$version" "$built" >"$work/manifest.json"
tar -czf "$out" -C "$work" manifest.json bin
echo "$out: release $version (boxd $built)"
