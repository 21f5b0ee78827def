#!/usr/bin/env bash
# t0408-app-state.sh — GET /api/v1/apps/:id shows what the engine says of
# the app's container (issue 13): state, start and finish times, exit
# code, restart count, and the health of an image with a healthcheck
# (null without one); "missing" when the container is gone; "unknown"
# with the reason when the engine cannot be reached — the app record is
# still answered.
#
# Podman runs healthchecks from systemd timers, which the test env does
# not have: the test runs each check itself (`podman healthcheck run`).
# On dockerd (BOXD_TEST_ENGINE=docker) the image is built by podman and
# loaded into dockerd (as test-env.sh loads its images); dockerd runs
# healthchecks on its own timer (1 h here) and has no command to run one
# now, so the two checks that need one are skipped there, saying so.
#
# TAP. Needs the test env (BOXD_TEST_ENGINE_SOCKET, BOXD_TEST_APP_IMAGE).
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF

A=$APP_PREFIX-hc
B=$APP_PREFIX-plain
IMG=localhost/boxd-test/health-$$:1
# Images are built by Podman (on dockerd too: its socket is then
# BOXD_TEST_PODMAN_SOCKET).
pm() { podman --url "unix://${BOXD_TEST_PODMAN_SOCKET:-$BOXD_TEST_ENGINE_SOCKET}" "$@"; }
plan 17
apps_setup
on_exit pm rmi -f "$IMG"
mkdir -p "$E2E_TMP/img"
printf 'FROM %s\nHEALTHCHECK --interval=1h --retries=1 CMD test -e /tmp/ok\n' "$BOXD_TEST_APP_IMAGE" >"$E2E_TMP/img/Containerfile"
pm build -q --format docker -t "$IMG" "$E2E_TMP/img" >/dev/null || bail "cannot build the image with a healthcheck"
if [ "${BOXD_TEST_ENGINE:-}" = docker ]; then
	on_exit engine_cli rmi -f "$IMG"
	pm save --format docker-archive "$IMG" | engine_cli load -q >/dev/null || bail "cannot load the image into dockerd"
fi
daemon_start --config "$APPS_CONF"

ta=$(install_app "$A" "$IMG") || ta=
tb=$(install_app "$B" "$BOXD_TEST_APP_IMAGE") || tb=
check "install (healthcheck)" wait_task "$ta" 60
check "install (none)" wait_task "$tb" 60

c() { app "$1" ".container.$2"; }
equal "running: state" "$(c "$A" state)" running
equal "running: running" "$(c "$A" running)" true
check "running: startedAt is a time" grep -q '^20[0-9-]*T[0-9:.]*Z$' <<<"$(c "$A" startedAt)"
equal "running: restartCount" "$(c "$A" restartCount)" 0
equal "running: the container's id" "$(c "$A" id)" "$(container_inspect "app-$A" .Id)"
equal "healthcheck not run yet: starting" "$(c "$A" health)" starting
equal "no healthcheck: health null" "$(c "$B" health)" null

if [ "${BOXD_TEST_ENGINE:-}" = docker ]; then
	skip "a check passed: healthy" "dockerd runs healthchecks on its own timer; no command runs one now"
	skip "a check failed (retries 1): unhealthy" "dockerd runs healthchecks on its own timer; no command runs one now"
else
	in_container "app-$A" touch /tmp/ok
	pm healthcheck run "app-$A" >/dev/null
	equal "a check passed: healthy" "$(c "$A" health)" healthy
	in_container "app-$A" rm /tmp/ok
	pm healthcheck run "app-$A" >/dev/null 2>&1
	equal "a check failed (retries 1): unhealthy" "$(c "$A" health)" unhealthy
fi

engine POST "/containers/app-$B/stop?t=1"
equal "stopped: state exited" "$(c "$B" state)" exited
check "stopped: finishedAt is a time" grep -q '^20[0-9-]*T[0-9:.]*Z$' <<<"$(c "$B" finishedAt)"
engine DELETE "/containers/app-$B?force=1"
equal "removed: state missing" "$(c "$B" state)" missing

# No engine: the record, with the reason.
kill -TERM "$DAEMON_PID"
wait_for 15 gone "$DAEMON_PID" || bail "boxd does not stop"
sed -i "s|^socket = .*|socket = $E2E_TMP/no-engine.sock|" "$APPS_CONF"
daemon_start --config "$APPS_CONF"
req GET "/apps/$A"
equal "no engine: 200" "$STATUS" 200
equal "no engine: the app record" "$(jq -r '[.id, .image] | join(" ")' <<<"$BODY")" "$A $IMG"
equal "no engine: state unknown, with the reason" "$(jq -r '.container.state == "unknown" and (.container.error | test("no-engine.sock"))' <<<"$BODY")" true

done_testing
