#!/usr/bin/env bash
# t0601-platformstart.sh — the platformstart task at every daemon start
# (Podman from the test env):
#  1. the first start: platformstart creates the sftp service and makes the
#     appsdata and volumes roots shared mounts;
#  2. apps a, b and c are installed; the daemon stops; while it is down the
#     container of a is removed (its data stays) and b's is stopped; the
#     sftp port changes in the config. At the next start platformstart
#     rebuilds sftp (spec changed), recreates a's container over its data
#     and starts b's; a restart of b submitted as soon as the API answers
#     waits for `platform` (state waiting, message naming platform and the
#     platformstart task) and runs once platformstart is done;
#  3. a container removed together with its data dir is not recreated
#     (platformstart fails naming the dir, and does not create it); the
#     other apps run on;
#  4. without a container engine platformstart fails with
#     engine_unavailable, and the rest of boxd works (status, a hold task).
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE BOXD_TEST_SFTP_IMAGE CONTAINERS_CONF

plan 28
APPS_SFTP_PORT=$(free_port) || bail "no free port"
# shellcheck disable=SC2119 # no extra ini
apps_setup
IMG=$BOXD_TEST_APP_IMAGE
A=$APP_PREFIX-a B=$APP_PREFIX-b C=$APP_PREFIX-c

daemon_stop() {
	kill -TERM "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}
# ps_task: the newest platformstart task.
ps_task() { api GET '/tasks?type=platformstart&per_page=1' | jq -r '.tasks[0].id'; }
shared_mount() { awk -v m="$1" '$5 == m && / shared:/ { f = 1 } END { exit !f }' /proc/self/mountinfo; }

# ---- 1. the first start ----------------------------------------------------

daemon_start --config "$APPS_CONF" --stop-grace 2s
P1=$(ps_task)
check "platformstart runs at the first start and succeeds" wait_task "$P1" 90
# (Another run's boxd-sftp may be there: the name is the engine's singleton.)
check "it created (or rebuilt) the sftp service" \
	grep -qxE "true (created|spec changed)" <<<"$(task "$P1" '.result.sftp | [.rebuilt, .reason] | join(" ")')"
equal "the sftp container runs, binding our appsdata root" \
	"$(container_state boxd-sftp) $(container_inspect boxd-sftp '.Mounts[] | select(.Destination == "/mnt/appsdata") | .Source')" \
	"running $STATE/appsdata"
check "the appsdata root is a shared mount" shared_mount "$STATE/appsdata"
check "the volumes root is a shared mount" shared_mount "$STATE/volumes"

# ---- 2. a removed container, a stopped one, a changed sftp spec -------------

for id in "$A" "$B" "$C"; do
	T=$(install_app "$id" "$IMG") || bail "cannot install $id"
	wait_task "$T" 90 || bail "install of $id failed"
done
echo "kept across the recreate" >"$STATE/appsdata/$A/keep.txt"
OLD_A=$(container_inspect "app-$A" .Id)
OLD_SFTP=$(container_inspect boxd-sftp .Id)
daemon_stop
engine DELETE "/containers/app-$A?force=1"
equal "while boxd is down: app-$A is removed" "$(container_state "app-$A")" absent
engine POST "/containers/app-$B/stop?t=0"
equal "while boxd is down: app-$B is stopped" "$(container_state "app-$B")" exited
NEW_PORT=$((APPS_SFTP_PORT + 1))
sed -i "s/^port = .*/port = $NEW_PORT/" "$APPS_CONF"

# Start the daemon and submit the restart as soon as the socket takes it
# (not after GET /status answers: that asks the engine, which is busy with
# platformstart's work and may answer only seconds later).
echo "=== boxd serve --config $APPS_CONF (restart submitted at once)" >>"$DAEMON_LOG"
env BOXD_E2E_TAG="$E2E_TAG" "$BOXD" serve --state-dir "$STATE" --config "$APPS_CONF" --stop-grace 2s \
	>>"$DAEMON_LOG" 2>&1 &
DAEMON_PID=$!
submit_restart() { req POST "/apps/$B/restart"; [ "$STATUS" != 000 ]; }
wait_for 15 submit_restart || bail "boxd did not answer"
R=$(jq -r .taskId <<<"$BODY")
equal "a restart of $B submitted as soon as the API answers: 202" "$STATUS" 202
P2=$(ps_task)
check "the next start queued a new platformstart task" test "$P2" -gt "$P1"
PLATFORM=$(here platform) || bail "cannot read this host's id"
waits_for_platform() {
	[ "$(task "$R" '[.state, .waitingFor.lock, (.waitingFor.heldBy | tostring)] | join(" ")')" = "waiting $PLATFORM $P2" ]
}
check "the restart waits for platform, held by platformstart" wait_for 30 waits_for_platform
msg=$(task "$R" .message)
diag "message: $msg"
equal "its message names platform and the platformstart task" "$msg" \
	"Waiting for $PLATFORM (held by task $P2, platformstart)"
check "platformstart succeeds" wait_task "$P2" 120
diag "result: $(task "$P2" .result | jq -c .)"
equal "it recreated $A's container and started $B's" \
	"$(task "$P2" '.result.apps | [(.recreated | join(",")), (.started | join(",")), (.running | join(","))] | join(" / ")')" \
	"$A / $B / $C"
equal "it rebuilt sftp because its spec changed" "$(task "$P2" '.result.sftp | [.rebuilt, .reason] | join(" ")')" \
	"true spec changed"
check "the sftp container is a new one" test "$(container_inspect boxd-sftp .Id)" != "$OLD_SFTP"
equal "app-$A runs again" "$(container_state "app-$A")" running
new_container() {
	local id
	id=$(app "$A" .containerId)
	[ "$id" = "$(container_inspect "app-$A" .Id)" ] && [ "$id" != "$OLD_A" ]
}
check "... as a new container, recorded on the app" new_container
equal "... over its data" "$(in_container "app-$A" cat /app/data/keep.txt 2>&1)" "kept across the recreate"
check "the restart of $B ran after platformstart and succeeded" wait_task "$R" 60
started_after() { [ "$(ms_of "$(task "$R" .startedAt)")" -ge "$(ms_of "$(task "$P2" .startedAt)")" ]; }
check "... it started running only after platformstart had started" started_after
check "... and its log shows the wait" grep -q "Waiting for $PLATFORM (held by task $P2, platformstart)" \
	"$STATE/logs/tasks/$R.log"
equal "app-$B runs" "$(container_state "app-$B")" running

# ---- 3. a container removed with its data dir --------------------------------

daemon_stop
engine DELETE "/containers/app-$C?force=1"
# The data dir is a mount point (boxd binds it onto itself): gone with a
# reboot, unmounted here.
umount_below "$STATE/appsdata/$C"
rm -rf "$STATE/appsdata/$C"
daemon_start --config "$APPS_CONF" --stop-grace 2s
P3=$(ps_task)
wait_for 120 is_final "$P3" || diag "platformstart $P3 did not end"
equal "without its data dir $C is not recreated: platformstart fails with app_start_failed" \
	"$(task "$P3" .error.code)" app_start_failed
diag "error.message: $(task "$P3" .error.message)"
check "... naming the missing dir" grep -qF "$STATE/appsdata/$C" <<<"$(task "$P3" .error.message)"
check "... which it did not create" test ! -e "$STATE/appsdata/$C"
equal "the other apps run on" "$(container_state "app-$A") $(container_state "app-$B")" "running running"

# ---- 4. no engine -----------------------------------------------------------------

daemon_stop
NOENG=$E2E_TMP/no-engine.conf
sed "s|^socket = .*|socket = $E2E_TMP/no-engine.sock|" "$APPS_CONF" >"$NOENG"
daemon_start --config "$NOENG" --stop-grace 2s
P4=$(ps_task)
wait_for 30 is_final "$P4" || diag "platformstart $P4 did not end"
equal "without an engine platformstart fails with engine_unavailable" "$(task "$P4" .error.code)" engine_unavailable
diag "error.message: $(task "$P4" .error.message)"
H=$(hold_task 0 "$(here platform)") || H=
rest_works() { daemon_answers && [ -n "$H" ] && wait_task "$H" 30; }
check "... and the rest of boxd works: status answers, a task takes platform" rest_works

done_testing
