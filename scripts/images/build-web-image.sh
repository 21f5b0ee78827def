#!/usr/bin/env bash
# build-web-image.sh [TAG] — a web app image for the tests of published
# ports and domains, built offline from the host's busybox-static like the
# app image (build-app-image.sh), of which it is a separate image so that
# building it never touches the containers of that one.
# Its default command starts busybox httpd on port ${HTTP_PORT:-80},
# serving the app's data dir (/app/data: the test writes index.html
# there), then waits like the app image and exits at once on SIGTERM.
# Skips the build when TAG already exists with the same inputs.
# Default TAG: localhost/boxd-test/web:latest. Prints the tag.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/images/common.sh
source "$here/common.sh"

tag=${1:-localhost/boxd-test/web:latest}
bb=$(command -v busybox)
hash=$(input_hash "$0" "$here/common.sh" "$bb")

begin_rootfs "$tag" "$hash" web
mkdir -p "$root"/{dev,proc,sys,etc,root,data,run,var/log,app/data}
install -d -m 1777 "$root/tmp"
base_users "$root"

# httpd daemonizes (no -f): the shell below stays PID 1 and ends the
# container on SIGTERM; httpd goes with the container's PID namespace.
import_rootfs "$root" "$tag" "$hash" \
	'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
	'WORKDIR /' \
	'CMD ["/bin/sh", "-c", "trap \"exit 0\" TERM INT; httpd -p \"${HTTP_PORT:-80}\" -h /app/data; while :; do sleep 1 & wait; done"]'
echo "$tag"
