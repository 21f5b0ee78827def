#!/usr/bin/env bash
# t0922-placement-apps.sh — an app lives on one host (issue 16, apps.host):
# two boxd hosts, a and b (BOXD_HOST_ID host-a, host-b; own state dirs), on
# one fresh database (BOXD_TEST_STORE=mysql by default, or postgres).
# Only b has a container engine: a task of b's app that ran on a would fail.
#
#  1. An install naming a host no daemon ever announced: 404 unknown_host,
#     no app, no task.
#  2. An install sent to a's API with "host": "host-b" is placed on b
#     (reply, app and task say so) and runs there: its container runs.
#     An install without "host" is placed on the host that received it.
#  3. b stopped: a restart of the app queued through a waits, with
#     waitingFor naming host-b (reason host_gone), and a never claims it;
#     b started again: the task runs on b and succeeds. No task of the app
#     ever ran on a.
#  4. Per-host lock names (docs/ARCHITECTURE.md "Lock names and their
#     scope"): while platform:host-a is held exclusive (as a's platformstart
#     or update would), a restart of b's app runs at once; while
#     platform:host-b is, it waits naming that lock, and runs once freed.
#
# Needs the test env (engine, app image, the store's server).
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
export BOXD_TEST_STORE=${BOXD_TEST_STORE:-mysql}
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF
[ "$TEST_STORE" != sqlite ] || skip_all "two hosts need a server database (BOXD_TEST_STORE=mysql|postgres)"

plan 19

DB=$(store_db_create) || bail "cannot create a $TEST_STORE database"
on_exit store_db_drop "$DB"
DSN=$(store_dsn "$DB")
apps_setup # $APPS_CONF: the test env's engine and sftp image (host b's)
X=$APP_PREFIX-x # placed on b through a
Y=$APP_PREFIX-y # placed on a (no "host")

declare -A HPID # host -> daemon pid

# host_start NAME: start host NAME (host id host-NAME, state dir
# $E2E_TMP/NAME) and wait until its API answers. Host b gets the engine;
# host a an engine socket that does not exist.
host_start() {
	local name=$1 dir=$E2E_TMP/$1
	mkdir -p "$dir"
	{
		printf '[store]\nbackend = %s\ndsn = %s\nlease = 3s\n' "$TEST_STORE" "$DSN"
		if [ "$name" = b ]; then
			cat "$APPS_CONF"
		else
			printf '[engine]\nsocket = %s\n' "$E2E_TMP/no-engine.sock"
		fi
	} >"$dir.conf"
	echo "=== host $name" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" BOXD_HOST_ID="host-$name" \
		"$BOXD" --config "$dir.conf" serve --state-dir "$dir" --stop-grace 2s >>"$DAEMON_LOG" 2>&1 &
	HPID[$name]=$!
	on "$name"
	wait_for 15 daemon_answers || bail "host $name does not answer"
}

host_stop() {
	kill -TERM "${HPID[$1]}"
	wait "${HPID[$1]}" 2>/dev/null
}

# on NAME: the API calls that follow go to host NAME.
on() { SOCK=$E2E_TMP/$1/boxd.sock; }

host_alive() { [ "$(api GET /hosts | jq -r --arg id "$1" '.hosts[] | select(.id == $id) | .alive')" = "$2" ]; }
# refused STATUS CODE: the last answer had that status and error code.
refused() {
	[ "$STATUS" = "$1" ] && [ "$(jq -r .error.code <<<"$BODY")" = "$2" ] && return 0
	diag "got $STATUS $BODY"
	return 1
}
waits_for_b() { [ "$(task "$1" '.waitingFor | "\(.host)/\(.reason)"')" = host-b/host_gone ]; }

host_start a
host_start b
on a

# ---- 1. an unknown host ------------------------------------------------------

req POST /apps "$(jq -nc --arg id "$X" --arg img "$BOXD_TEST_APP_IMAGE" '{id: $id, image: $img, host: "host-nope"}')"
check "install on a host never seen: 404 unknown_host" refused 404 unknown_host
check "... and nothing was created (no app, no task)" \
	eval '[ "$(app_state "$X")" = absent ] && [ "$(all_tasks | jq "[.[] | select(.appId != null)] | length")" = 0 ]'

# ---- 2. placed on b through a --------------------------------------------------

req POST /apps "$(jq -nc --arg id "$X" --arg img "$BOXD_TEST_APP_IMAGE" '{id: $id, image: $img, host: "host-b"}')"
equal "install with host b through a: 202 naming host-b" "$STATUS $(jq -r .host <<<"$BODY")" "202 host-b"
t=$(jq -r .taskId <<<"$BODY")
check "the install runs and succeeds (on b: a has no engine)" wait_task "$t" 60
equal "the task ran on host-b" "$(task "$t" .host)" host-b
equal "the app lives on host-b" "$(app "$X" .host)" host-b
check "its container runs" wait_for 10 eval '[ "$(container_state "app-$X")" = running ]'

req POST /apps "$(jq -nc --arg id "$Y" --arg img "$BOXD_TEST_APP_IMAGE" '{id: $id, image: $img}')"
equal "install without host: placed on the receiving host" "$STATUS $(jq -r .host <<<"$BODY") $(app "$Y" .host)" \
	"202 host-a host-a"
ty=$(jq -r .taskId <<<"$BODY")
check "... and its task runs there (and fails: a has no engine)" \
	eval 'wait_for 30 is_final "$ty" && [ "$(task "$ty" .host)" = host-a ]'

# ---- 3. b gone: the app's task waits for b ---------------------------------------

host_stop b
on a
check "b stopped: a sees it gone" wait_for 20 host_alive host-b false
r=$(app_task "$X" restart) || bail "restart refused"
check "a restart queued through a waits, naming host-b (host_gone)" wait_for 10 waits_for_b "$r"
equal "... still queued, not claimed by a" "$(task "$r" '"\(.state) \(.pid) \(.host)"')" "queued null host-b"
host_start b
on a
check "b again: the restart runs and succeeds" wait_task "$r" 60
equal "... on host-b" "$(task "$r" .host)" host-b
equal "no task of the app ever ran on a" \
	"$(all_tasks | jq -r --arg x "$X" '[.[] | select(.appId == $x) | .host] | unique | join(" ")')" host-b

# ---- 4. each host's platform lock is its own -------------------------------------

on b
ha=$(hold_task 120 platform:host-a) || bail "cannot create a hold task"
wait_for 15 state_is "$ha" running || bail "hold $ha does not run"
r2=$(app_task "$X" restart) || bail "restart refused"
check "while platform:host-a is held, a restart of b's app succeeds" wait_task "$r2" 60
check "... without waiting for it (the hold still runs, the log shows no wait)" \
	eval 'state_is "$ha" running && ! grep -q "Waiting for" "$E2E_TMP/b/logs/tasks/$r2.log"'
hb=$(hold_task 120 platform:host-b) || bail "cannot create a hold task"
wait_for 15 state_is "$hb" running || bail "hold $hb does not run"
r3=$(app_task "$X" restart) || bail "restart refused"
waits_for_own() { [ "$(task "$r3" '"\(.state) \(.waitingFor.lock) \(.waitingFor.heldBy)"')" = "waiting platform:host-b $hb" ]; }
check "while platform:host-b is held, the restart waits naming platform:host-b" wait_for 30 waits_for_own
req POST "/tasks/$hb/stop"
check "... and runs once it is freed" wait_task "$r3" 60
req POST "/tasks/$ha/stop"

done_testing
