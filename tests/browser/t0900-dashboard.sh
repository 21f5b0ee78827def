#!/usr/bin/env bash
# t0900-dashboard — the web dashboard in a real browser (Debian's chromium,
# headless, driven by playwright-core: tests/browser/dashboard.mjs prints
# the TAP). boxd runs with a TCP listener and, with the test env, its
# engine and sftp image. Screenshots of the overview, tasks and locks views
# go to $BUILD_DIR/browser-artifacts/.
#
# Needs: chromium, node and npm (scripts/deps.sh --test); the npm packages
# are installed by tests/browser/npm-deps.sh (npm ci into a cache).
set -u
. "$(dirname "$0")/../e2e/lib.sh"
: "${BUILD_DIR:?BUILD_DIR must point at the build dir}"

CHROMIUM=${BOXD_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || bail "no chromium at $CHROMIUM (scripts/deps.sh --test installs Debian's chromium)"
command -v node >/dev/null && command -v npm >/dev/null || bail "node and npm are needed (scripts/deps.sh --test)"
NODE_MODULES=$("$(dirname "$0")/npm-deps.sh") || bail "npm ci of tests/browser failed"

ARTIFACTS="$BUILD_DIR/browser-artifacts"
mkdir -p "$ARTIFACTS" "$STATE"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token=$("$BOXD" --state-dir "$STATE" token create browser 2>/dev/null) || bail "cannot create a token"

ENGINE=0
HOSTILE_DIR=
if [ -n "${BOXD_TEST_ENGINE_SOCKET:-}" ] && [ -n "${BOXD_TEST_APP_IMAGE:-}" ] && [ "$(id -u)" = 0 ]; then
	ENGINE=1
	apps_setup "[api]
listen = 127.0.0.1:$port"
	# A directory whose name is markup, with something in the way of a
	# configure's move: that task fails with the name in its error and log.
	outside_dir /srv || bail "cannot create a temp dir under /srv"
	HOSTILE_DIR="$OUTSIDE/<img src=x onerror=window.__xss=3>"
	mkdir -p "$HOSTILE_DIR/data"
	echo x >"$HOSTILE_DIR/data/in-the-way"
	daemon_start --config "$APPS_CONF" --stop-grace 2s
else
	printf '[api]\nlisten = 127.0.0.1:%s\n' "$port" >"$E2E_TMP/boxd.conf"
	daemon_start --config "$E2E_TMP/boxd.conf" --stop-grace 2s
fi

BASE_URL="http://127.0.0.1:$port" TOKEN="$token" SOCK="$SOCK" ARTIFACTS="$ARTIFACTS" CHROMIUM="$CHROMIUM" \
	NODE_MODULES="$NODE_MODULES" ENGINE="$ENGINE" APP_IMAGE="${BOXD_TEST_APP_IMAGE:-}" HOSTILE_DIR="$HOSTILE_DIR" \
	APP_PREFIX="$APP_PREFIX" BOXD_E2E_TAG="$E2E_TAG" node "$(dirname "$0")/dashboard.mjs"
rc=$?
echo "# screenshots: $(ls "$ARTIFACTS"/*.png 2>/dev/null | tr '\n' ' ')"
exit "$rc"
