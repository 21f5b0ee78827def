#!/usr/bin/env bash
# t0409-app-start-stop.sh — an app stopped and started by the operator
# (issue 13, "App life"): POST /apps/:id/stop and /start are app tasks
# (202 + task id), and a stopped app stays stopped until started.
#
# A web app with a published port answers; stop: the task succeeds, the
# container is not running, the app shows stopped (flag and runState), the
# port no longer answers; restart of a stopped app is 409 with nothing
# queued. boxd restarted (its platformstart): still stopped, listed as such
# in platformstart's result. configure of a stopped app makes its new
# container without starting it. start: running, answering, flag cleared.
# A start after the container was removed makes a new one. 404 for an
# unknown app, 400 for a body field, 409 while an uninstall is queued (held
# back by a hold on app:<id>), each with nothing changed. boxctl app
# stop|start --wait, and its message and exit code for an unknown app.
#
# TAP. Needs the test env and its web image.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_WEB_IMAGE

A=$APP_PREFIX-web
C=app-$A
T=60
plan 49

P=$(free_port)
APPS_SFTP_PORT=$(free_port)
while [ "$APPS_SFTP_PORT" = "$P" ]; do APPS_SFTP_PORT=$(free_port); done
apps_setup
daemon_start --config "$APPS_CONF"

ctl() { "$BOXCTL" --socket "$SOCK" "$@"; }
# boxctl --wait prints the task's progress: as TAP comments.
ctl_wait() { ctl "$@" | sed "s/^/# /"; return "${PIPESTATUS[0]}"; }
answers() { [ "$(curl -s --max-time 2 "http://127.0.0.1:$P/" 2>/dev/null)" = "$TOKEN" ]; }
not_running() { [ "$(container_state "$C")" != running ]; }
refused() {
	[ "$STATUS" = "$1" ] && grep -qF -- "$2" <<<"$BODY" && return 0
	diag "got $STATUS $BODY"
	return 1
}
n_tasks() { all_tasks | jq --arg a "$A" '[.[] | select(.appId == $a)] | length'; }
ps_task() { api GET '/tasks?type=platformstart&per_page=1' | jq -r '.tasks[0].id'; }

req POST /apps "$(jq -nc --arg id "$A" --arg img "$BOXD_TEST_WEB_IMAGE" --argjson p "$P" \
	'{id: $id, image: $img, env: {HTTP_PORT: "8080"}, ports: [{container: 8080, host: $p}]}')"
tid=$(jq -r .taskId <<<"$BODY")
check "install: the task succeeds" wait_task "$tid" $T
TOKEN="page of $A $RANDOM"
printf '%s\n' "$TOKEN" >"$STATE/appsdata/$A/index.html"
check "the app answers on its port" wait_for 20 answers
equal "not stopped after the install" "$(app "$A" '[.stopped, .runState] | join(" ")')" "false running"

# ---- stop -----------------------------------------------------------------------------

req POST "/apps/$A/stop"
equal "stop: 202" "$STATUS" 202
tid=$(jq -r .taskId <<<"$BODY")
equal "... with the app id and a task id" "$(jq -r '[.id, (.taskId | type)] | join(" ")' <<<"$BODY")" "$A number"
check "stop: the task succeeds" wait_task "$tid" $T
equal "... its type is stop, its result says it was running" "$(task "$tid" '[.type, .appId, .result.wasRunning] | join(" ")')" \
	"stop $A true"
check "... the container is not running" not_running
equal "... the app shows stopped (flag, runState)" "$(app "$A" '[.stopped, .runState, .container.running] | join(" ")')" \
	"true stopped false"
check "... the port no longer answers" eval '! answers'

n=$(n_tasks)
req POST "/apps/$A/restart"
check "restart of a stopped app: 409 saying it is stopped" refused 409 "is stopped"
equal "... no task queued" "$(n_tasks)" "$n"

# ---- boxd restarted: platformstart leaves it stopped ---------------------------------

P1=$(ps_task)
kill -TERM "$DAEMON_PID"
wait_for 15 gone "$DAEMON_PID" || bail "boxd does not stop"
daemon_start --config "$APPS_CONF"
P2=$(ps_task)
check "a new platformstart task ran" test "$P2" -gt "$P1"
check "... and succeeds" wait_task "$P2" 120
equal "... listing the app as stopped, not started" \
	"$(task "$P2" '.result.apps | [(.stopped | join(",")), (.started | join(",")), (.running | join(","))] | join(" / ")')" \
	"$A /  / "
check "after the restart of boxd the container still does not run" not_running
equal "... and the app is still stopped" "$(app "$A" '[.stopped, .runState] | join(" ")')" "true stopped"
check "... its port does not answer" eval '! answers'

# ---- configure of a stopped app keeps it stopped --------------------------------------

old=$(container_inspect "$C" .Id)
tid=$(app_task "$A" configure '{"env":{"HTTP_PORT":"8080","X":"1"}}') || tid=
check "configure of a stopped app: the task succeeds" wait_task "$tid" $T
check "... it made a new container" test "$(container_inspect "$C" .Id)" != "$old"
check "... which does not run" not_running
equal "... the app stays stopped" "$(app "$A" '[.stopped, .runState] | join(" ")')" "true stopped"

# ---- start -------------------------------------------------------------------------

req POST "/apps/$A/start" '{}'
equal "start: 202" "$STATUS" 202
tid=$(jq -r .taskId <<<"$BODY")
check "start: the task succeeds" wait_task "$tid" $T
equal "... its type is start, it was stopped" "$(task "$tid" '[.type, .result.wasStopped] | join(" ")')" "start true"
equal "... the container runs" "$(container_state "$C")" running
check "... and the app answers again" wait_for 20 answers
equal "... not stopped any more" "$(app "$A" '[.stopped, .runState] | join(" ")')" "false running"
equal "... with the configured env" "$(in_container "$C" sh -c 'echo "$X"' 2>&1)" 1

# ---- refusals, nothing changed ------------------------------------------------------

n=$(n_tasks)
req POST /apps/nosuch-app/start
check "start of an unknown app: 404" refused 404 '"not_found"'
req POST /apps/nosuch-app/stop
check "stop of an unknown app: 404" refused 404 "no app nosuch-app"
req POST "/apps/$A/stop" '{"force":true}'
check "stop with an unknown body field: 400" refused 400 force
equal "... no task queued" "$(n_tasks)" "$n"

hold=$(hold_task 60 "app:$A") || hold=
check "a hold on app:$A runs" wait_for 10 state_is "$hold" running
un=$(app_task "$A" uninstall '{"noBackup":true}') || un=
check "an uninstall waits behind it" wait_for 10 state_is "$un" waiting
n=$(n_tasks)
req POST "/apps/$A/stop"
check "stop of an app being uninstalled: 409 naming pending_uninstall" refused 409 "is pending_uninstall"
req POST "/apps/$A/start"
check "start of an app being uninstalled: 409" refused 409 "is pending_uninstall"
equal "... no task queued" "$(n_tasks)" "$n"
req POST "/tasks/$un/stop"
check "the uninstall is cancelled" wait_for 30 state_is "$un" cancelled
req POST "/tasks/$hold/stop"
wait_for 30 is_final "$hold" >/dev/null
equal "... the app is as it was: installed, running, not stopped" \
	"$(app "$A" '[.installationState, .stopped] | join(" ")') $(container_state "$C")" "installed false running"

# ---- boxctl -------------------------------------------------------------------------

check "boxctl app stop --wait" ctl_wait app stop "$A" --wait
check "... the container is not running" not_running
equal "... app show says stopped" "$(ctl app show "$A" | grep -c 'stopped: *by the operator')" 1
# A container removed while the app is stopped: start makes a new one.
engine DELETE "/containers/$C?force=1"
equal "the stopped app's container removed" "$(container_state "$C")" absent
check "boxctl app start --wait" ctl_wait app start "$A" --wait
equal "... a new container runs" "$(container_state "$C")" running
check "... and answers" wait_for 20 answers
out=$(ctl app start nosuch-app 2>&1)
rc=$?
check "boxctl app start of an unknown app: non-zero exit" test "$rc" -ne 0
check "... saying there is no such app" grep -q "no app nosuch-app" <<<"$out"

done_testing
