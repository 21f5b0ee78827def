#!/usr/bin/env bash
# build-app-image.sh [TAG] — the app image for the tests, built offline from
# the host's busybox-static: /bin/sh and every other applet, nothing else.
# Its default command runs forever (apps need a long-running process) and
# exits at once on SIGTERM (as PID 1 a plain shell loop would ignore it).
# Skips the build when TAG already exists with the same inputs.
# Default TAG: localhost/boxd-test/busybox:latest. Prints the tag.
# BOXD_APP_IMAGE_LABEL=KEY=VALUE adds a label: the same files as another
# image, but an image of its own (its own id), as the registry's copy needs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/images/common.sh
source "$here/common.sh"

tag=${1:-localhost/boxd-test/busybox:latest}
bb=$(command -v busybox)
# The script itself is an input: changing the layout below rebuilds.
label=${BOXD_APP_IMAGE_LABEL:-}
hash=$(input_hash "$0" "$here/common.sh" "$bb")
[[ -z "$label" ]] || hash=$hash-$(printf '%s' "$label" | sha256sum | cut -c1-8)

begin_rootfs "$tag" "$hash" app
mkdir -p "$root"/{dev,proc,sys,etc,root,data,run,var/log}
install -d -m 1777 "$root/tmp"
base_users "$root"

import_rootfs "$root" "$tag" "$hash" \
	'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
	'WORKDIR /' \
	${label:+"LABEL $label"} \
	'CMD ["/bin/sh", "-c", "trap \"exit 0\" TERM INT; while :; do sleep 1 & wait; done"]'
echo "$tag"
