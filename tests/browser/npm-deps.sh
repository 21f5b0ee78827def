#!/usr/bin/env bash
# npm-deps.sh — install the browser tests' npm packages (package.json,
# pinned by package-lock.json) with `npm ci` into a cache directory named
# after the lock file's hash, once; print the node_modules path.
#
# The cache is $BOXD_TEST_CACHE/node (default /var/tmp/boxd-test/node), so
# a fresh clone (CI) installs once and later runs reuse it. No browser is
# downloaded: playwright-core drives Debian's /usr/bin/chromium.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${BOXD_TEST_CACHE:-/var/tmp/boxd-test}/node
hash=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)
dir="$cache/$hash"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ ! -f "$dir/.done" ]]; then
	rm -rf "$dir"
	mkdir -p "$dir"
	cp "$here/package.json" "$here/package-lock.json" "$dir/"
	(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
	touch "$dir/.done"
fi
echo "$dir/node_modules"
