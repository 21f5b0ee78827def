#!/usr/bin/env bash
# build-proxy-image.sh [TAG] — the proxy service image, built offline from
# Debian's caddy package: /usr/bin/caddy and the libraries ldd lists, the
# host's CA bundle (for a public ACME CA), a busybox-static shell for the
# entrypoint. Skips the build when TAG already exists with the same inputs.
# Default TAG: localhost/boxd/proxy:latest. Prints the tag.
#
# The container (see the entrypoint below; boxd runs it with the host
# network and binds <state_dir>/proxy at /var/lib/boxd-proxy):
#   - Caddy's admin API listens on the unix socket
#     /var/lib/boxd-proxy/admin.sock only; boxd loads the whole config
#     (listeners, ACME issuer, routes) through it.
#   - certificates and the ACME account in /var/lib/boxd-proxy/data, the
#     last loaded config in /var/lib/boxd-proxy/config: a restart resumes
#     it (caddy run --resume), a first start has the admin socket only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/images/common.sh
source "$here/common.sh"

tag=${1:-localhost/boxd/proxy:latest}
caddy=/usr/bin/caddy
[[ -x $caddy ]] || { echo "build-proxy-image: $caddy missing (apt-get install caddy)" >&2; exit 1; }
bb=$(command -v busybox)
certs=/etc/ssl/certs/ca-certificates.crt

mapfile -t libs < <(loader_libs "$caddy")
inputs=("$0" "$here/common.sh" "$bb" "$caddy" ${libs[@]+"${libs[@]}"})
[[ -f $certs ]] && inputs+=("$certs")
hash=$(input_hash "${inputs[@]}")

begin_rootfs "$tag" "$hash" proxy
install -D -m 0755 "$caddy" "$root/usr/bin/caddy"
copy_libs "$root" ${libs[@]+"${libs[@]}"}
mkdir -p "$root"/{dev,proc,sys,run,root,etc/boxd-proxy,etc/ssl/certs,var/lib/boxd-proxy}
install -d -m 1777 "$root/tmp"
[[ -f $certs ]] && cp "$certs" "$root/etc/ssl/certs/ca-certificates.crt"
base_users "$root"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"

# The first start's config: the admin API on the unix socket, nothing else.
cat > "$root/etc/boxd-proxy/boot.json" <<'JSON'
{"admin": {"listen": "unix//var/lib/boxd-proxy/admin.sock", "enforce_origin": false}}
JSON

cat > "$root/entrypoint.sh" <<'ENTRY'
#!/bin/sh
# boxd proxy entrypoint: Caddy in the foreground (logs: the container log).
set -eu
d=/var/lib/boxd-proxy
mkdir -p "$d/data" "$d/config"
export HOME=$d XDG_DATA_HOME=$d/data XDG_CONFIG_HOME=$d/config
# A socket left by the last run would make the listen fail.
rm -f "$d/admin.sock"
exec /usr/bin/caddy run --resume --config /etc/boxd-proxy/boot.json
ENTRY
chmod 0755 "$root/entrypoint.sh"

import_rootfs "$root" "$tag" "$hash" \
	'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
	'WORKDIR /' \
	'ENTRYPOINT ["/entrypoint.sh"]'
echo "$tag"
