#!/usr/bin/env bash
# deps.sh — install the Debian packages boxd needs, only those missing.
#   scripts/deps.sh          build + run (make, make run)
#   scripts/deps.sh --deb    also what `make deb` needs (debhelper, lintian)
#   scripts/deps.sh --test   also what the tests need (make check; it builds
#                            and checks the package too; Debian's chromium
#                            and node for the dashboard's browser tests)
# Does nothing (and needs no network) when everything is present.
set -euo pipefail

build_pkgs=(
	build-essential meson ninja-build pkg-config
	libuv1-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev libmariadb-dev libpq-dev
	libcurl4-openssl-dev libarchive-dev libssl-dev libinih-dev libssh-dev
	scdoc libsystemd-dev
)
deb_pkgs=(
	debhelper dpkg-dev lintian
)
test_pkgs=(
	libcmocka-dev sqlite3 jq curl procps util-linux psmisc iproute2 e2fsprogs
	mariadb-server mariadb-client postgresql postgresql-client
	galera-4 mariadb-backup socat
	podman runc openssh-server openssh-client busybox-static
	faketime openssl zsh systemd man-db stress-ng
	chromium nodejs
	docker-registry apache2-utils
	caddy pebble
	docker.io
)

want=("${build_pkgs[@]}")
case "${1:-}" in
--deb) want+=("${deb_pkgs[@]}") ;;
--test) want+=("${deb_pkgs[@]}" "${test_pkgs[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
# npm (the browser tests' packages): part of NodeSource's nodejs package,
# a package of its own next to Debian's nodejs.
if [[ ${1:-} == --test ]] && ! command -v npm >/dev/null; then
	missing+=(npm)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Services in these packages must not start at install time: tests start
# their own servers in temp dirs.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy"
	chmod +x "$policy"
	made_policy=1
fi
trap '[[ $made_policy -eq 1 ]] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
