#!/usr/bin/env bash
# t0400-apps.sh — app tasks end to end through Podman (issue 6).
#
# One daemon (SQLite) on the test env's engine. An app from the offline
# busybox image: install → container app-<id> running, its data dir bound at
# /app/data (a file written on the host is seen inside, and the other way
# round), env applied; restart (the container restarts); configure env (the
# container is recreated with the new env, the data stays); update (same
# image; recreated, data kept); update to a missing image fails without
# harming the app; uninstall removes the container, the data dir and the row.
# A custom data dir may not overlap another app's data dir or a volume
# (409): uninstalling one app would delete the other's data.
# State rules: install of an existing app, anything but uninstall while an
# uninstall is queued → 409 naming the state; unknown app → 404; a failed
# install leaves the app in error, where restart is refused (409 "error")
# and uninstall works. Bad input → 400/422 and no row or task created.
#
# TAP. Needs the test env (scripts/test-env.sh): BOXD_TEST_ENGINE_SOCKET,
# BOXD_TEST_APP_IMAGE, podman. The trap kills the daemon and its workers,
# removes our app-* containers and the temp dir, also on failure.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF

IMG=$BOXD_TEST_APP_IMAGE
A=$APP_PREFIX-web   # the app that goes through every task
E=$APP_PREFIX-bad   # an install that fails (missing image)
C=app-$A
T=30                # seconds for each task

plan 68
apps_setup
outside_dir /srv || bail "cannot make a temp dir under /srv"
OUT=$OUTSIDE
daemon_start --config "$APPS_CONF"
ROOT=$STATE/appsdata
DIR=$ROOT/$A

# env_has CONTAINER VAR=VALUE...: the container's Config.Env has them all.
env_has() {
	local env kv
	env=$(container_inspect "$1" ".Config.Env | tojson") || return 1
	shift
	for kv in "$@"; do
		jq -e --arg kv "$kv" 'index($kv) != null' <<<"$env" >/dev/null || return 1
	done
}
# refused WANT_STATUS TEXT: the last answer had that status and TEXT in it.
refused() {
	[ "$STATUS" = "$1" ] && grep -qF -- "$2" <<<"$BODY" && return 0
	diag "got $STATUS $BODY"
	return 1
}
# task_and_dirs TASK [DIR|!DIR]...: the task succeeds, then each DIR
# exists (!DIR: does not).
task_and_dirs() {
	local d
	[ -n "$1" ] && wait_task "$1" $T || return 1
	shift
	for d in "$@"; do
		case $d in
		!*) [ ! -e "${d#!}" ] || { diag "$d exists"; return 1; } ;;
		*) [ -d "$d" ] || { diag "$d is missing"; return 1; } ;;
		esac
	done
}
# gone_after_uninstall TASK APP DIR
gone_after_uninstall() {
	wait_task "$1" 30 && [ "$(app_state "$2")" = absent ] && [ ! -e "$3" ] &&
		[ "$(container_state "app-$2")" = absent ]
}

# ---- install -------------------------------------------------------------

tid=$(install_app "$A" "$IMG" '{"GREETING":"hello world","MODE":"one"}') || tid=
check "install: 202 with a task id" test -n "$tid"
check "install: the task succeeds" wait_task "$tid" $T
equal "install: app is installed" "$(app_state "$A")" installed
equal "install: app runState running" "$(app "$A" .runState)" running
equal "install: default data dir under the appsdata root" "$(app "$A" .dataDir)" "$DIR"
equal "install: container $C running (engine)" "$(container_state "$C")" running
equal "install: /app/data is bound to the data dir" \
	"$(container_inspect "$C" '.Mounts[] | select(.Destination == "/app/data") | .Source')" "$DIR"
check "install: the env is in the container's config" \
	env_has "$C" "GREETING=hello world" "MODE=one"
equal "install: the env is seen inside" "$(in_container "$C" sh -c 'echo "$GREETING/$MODE"' 2>&1)" "hello world/one"
printf 'from the host %s\n' "$$" >"$DIR/host.txt"
equal "install: a file written on the host is seen inside" \
	"$(in_container "$C" cat /app/data/host.txt 2>&1)" "from the host $$"
in_container "$C" sh -c 'echo from inside >/app/data/inside.txt' >/dev/null 2>&1
equal "install: a file written inside is seen on the host" "$(cat "$DIR/inside.txt" 2>&1)" "from inside"

# ---- state rules while installed ----------------------------------------------

req POST /apps "$(jq -nc --arg id "$A" --arg i "$IMG" '{id: $id, image: $i}')"
check "install of an existing app: 409 naming its state" refused 409 "already exists (state installed)"
req POST "/apps/$APP_PREFIX-nope/update" "{\"image\":\"$IMG\"}"
equal "update of an unknown app: 404" "$STATUS" 404
req POST "/apps/$APP_PREFIX-nope/restart"
equal "restart of an unknown app: 404" "$STATUS" 404
req POST "/apps/$APP_PREFIX-nope/uninstall"
equal "uninstall of an unknown app: 404" "$STATUS" 404

# ---- restart -------------------------------------------------------------

started0=$(container_inspect "$C" .State.StartedAt)
id0=$(container_inspect "$C" .Id)
tid=$(app_task "$A" restart) || tid=
check "restart: the task succeeds" wait_task "$tid" $T
check "restart: the container was restarted (new StartedAt, same id)" \
	test "$(container_inspect "$C" .State.StartedAt)" != "$started0" -a "$(container_inspect "$C" .Id)" = "$id0"
equal "restart: running again" "$(container_state "$C")" running

# ---- configure env ---------------------------------------------------------

tid=$(app_task "$A" configure '{"env":{"GREETING":"bonjour","EXTRA_1":"x=y z"}}') || tid=
check "configure env: the task succeeds" wait_task "$tid" $T
equal "configure env: the row has the new env" "$(app "$A" '.env | tojson')" '{"EXTRA_1":"x=y z","GREETING":"bonjour"}'
equal "configure env: the new env is seen inside (MODE gone)" \
	"$(in_container "$C" sh -c 'echo "$GREETING|$EXTRA_1|${MODE-unset}"' 2>&1)" "bonjour|x=y z|unset"
equal "configure env: the data is still there" "$(in_container "$C" cat /app/data/host.txt 2>&1)" "from the host $$"
equal "configure env: app is installed" "$(app_state "$A")" installed

# ---- update ---------------------------------------------------------------

id1=$(container_inspect "$C" .Id)
tid=$(app_task "$A" update "{\"image\":\"$IMG\"}") || tid=
check "update (same image): the task succeeds" wait_task "$tid" $T
check "update: the container was recreated (new id) and runs" \
	test "$(container_inspect "$C" .Id)" != "$id1" -a "$(container_state "$C")" = running
equal "update: data kept" "$(in_container "$C" cat /app/data/inside.txt 2>&1)" "from inside"
equal "update: env kept" "$(in_container "$C" sh -c 'echo "$GREETING"' 2>&1)" "bonjour"

id2=$(container_inspect "$C" .Id)
tid=$(app_task "$A" update '{"image":"localhost/boxd-test/missing:1"}') || tid=
wait_task "$tid" $T >/dev/null 2>&1
equal "update to a missing image: the task fails with image_not_found" "$(task "$tid" .error.code)" image_not_found
check "update to a missing image: the app stays installed on its image, same container" \
	test "$(app_state "$A")" = installed -a "$(app "$A" .image)" = "$IMG" -a "$(container_inspect "$C" .Id)" = "$id2"

# ---- custom data dirs must not overlap ------------------------------------
# Uninstalling one app deletes its data dir: no other app's data dir, nor a
# volume, may be that dir, inside it or around it.

X=$APP_PREFIX-own
Y=$APP_PREFIX-other
tid=$(install_app "$X" "$IMG" '{}' "$OUT/own") || tid=
check "install with a custom data dir under /srv: succeeds, dir made" task_and_dirs "$tid" "$OUT/own"
for d in "$OUT/own:= app $X's dir" "$OUT/own/sub:inside app $X's dir" "$OUT:= the parent of app $X's dir"; do
	req POST /apps "$(jq -nc --arg id "$Y" --arg i "$IMG" --arg d "${d%%:*}" '{id: $id, image: $i, dataDir: $d}')"
	check "install with dataDir ${d#*:}: 409" refused 409 "overlaps the data dir of app $X"
done
req POST "/apps/$A/configure" "$(jq -nc --arg d "$OUT/own/x" '{dataDir: $d}')"
check "configure moving into app $X's dir: 409" refused 409 "overlaps the data dir of app $X"
req POST /volumes "$(jq -nc --arg d "$OUT/own/v" --arg id "$APP_PREFIX-v1" '{id: $id, hostPath: $d}')"
check "a volume inside app $X's dir: 409" refused 409 "overlaps the data dir of app $X"
req POST /volumes "$(jq -nc --arg d "$OUT/vol" --arg id "$APP_PREFIX-v2" '{id: $id, hostPath: $d}')"
equal "a volume beside it: 201" "$STATUS" 201
req POST /apps "$(jq -nc --arg id "$Y" --arg i "$IMG" --arg d "$OUT/vol/data" '{id: $id, image: $i, dataDir: $d}')"
check "install with dataDir inside a volume: 409" refused 409 "overlaps volume $APP_PREFIX-v2"
equal "no row for the refused app, no refused volume" \
	"$(app_state "$Y") $(api GET /volumes | jq -c '[.volumes[].id]')" "absent [\"$APP_PREFIX-v2\"]"
req DELETE "/volumes/$APP_PREFIX-v2"
tid=$(app_task "$X" uninstall) || tid=
check "uninstall of $X: its dir goes, the volume's data stays" task_and_dirs "$tid" "!$OUT/own" "$OUT/vol"

# ---- state rules while an uninstall is queued ----------------------------------------
# A hold on app:A keeps the uninstall from running, so its state is stable.

hold=$(hold_task 60 "app:$A") || hold=
check "a hold on app:$A runs" wait_for 10 state_is "$hold" running
tid=$(app_task "$A" uninstall) || tid=
check "uninstall: accepted while the hold runs" test -n "$tid"
check "uninstall: waits for the hold" wait_for 10 state_is "$tid" waiting
for action in restart configure update; do
	body=
	[ $action = configure ] && body='{"env":{}}'
	[ $action = update ] && body="{\"image\":\"$IMG\"}"
	req POST "/apps/$A/$action" ${body:+"$body"}
	check "$action of an app being uninstalled: 409 naming pending_uninstall" refused 409 "is pending_uninstall"
done
req POST /apps "$(jq -nc --arg id "$A" --arg i "$IMG" '{id: $id, image: $i}')"
check "install of an app being uninstalled: 409 naming pending_uninstall" refused 409 "(state pending_uninstall)"

# ---- uninstall ---------------------------------------------------------------

req POST "/tasks/$hold/stop"
check "uninstall: the task succeeds once the hold stops" wait_task "$tid" $T
equal "uninstall: the container is gone" "$(container_state "$C")" absent
check "uninstall: the data dir is gone" test ! -e "$DIR"
equal "uninstall: the row is gone (404)" "$(app_state "$A")" absent
equal "uninstall: GET /apps lists no app" "$(api GET /apps | jq -c '[.apps[].id]')" '[]'

# ---- a failed install --------------------------------------------------------

tid=$(install_app "$E" localhost/boxd-test/missing:1) || tid=
wait_task "$tid" $T >/dev/null 2>&1
check "install of a missing image: the task fails, the app is in error" \
	test "$(task_state "$tid")" = failed -a "$(app_state "$E")" = error
req POST "/apps/$E/restart"
check "restart of an app in error: 409 naming the state" refused 409 "is error"
tid=$(app_task "$E" uninstall) || tid=
check "uninstall from error: succeeds, row and data dir gone" gone_after_uninstall "$tid" "$E" "$ROOT/$E"

# ---- bad input: 400/422, nothing created -------------------------------------

# App tasks only: the daemon's own tasks (an sftp rebuild after the
# uninstalls above, no app) may be created meanwhile.
app_tasks_n() { all_tasks | jq '[.[] | select(.appId != null)] | length'; }
ntasks=$(app_tasks_n)
B=$APP_PREFIX-b
bad() { # WANT_STATUS DESC JSON
	req POST /apps "$3"
	equal "bad input ($2): $1" "$STATUS" "$1"
}
bad 400 "id with uppercase and _" "{\"id\":\"Bad_Id\",\"image\":\"$IMG\"}"
bad 400 "id starting with -" "{\"id\":\"-$B\",\"image\":\"$IMG\"}"
bad 400 "id of 64 characters" "{\"id\":\"$(printf 'a%.0s' {1..64})\",\"image\":\"$IMG\"}"
bad 400 "image with a space" "{\"id\":\"$B\",\"image\":\"bad image\"}"
bad 400 "env not an object" "{\"id\":\"$B\",\"image\":\"$IMG\",\"env\":[\"A=1\"]}"
bad 400 "env key invalid" "{\"id\":\"$B\",\"image\":\"$IMG\",\"env\":{\"1-A\":\"x\"}}"
bad 422 "dataDir relative" "{\"id\":\"$B\",\"image\":\"$IMG\",\"dataDir\":\"srv/$B\"}"
bad 422 "dataDir with .." "{\"id\":\"$B\",\"image\":\"$IMG\",\"dataDir\":\"/srv/x/../$B\"}"
bad 422 "dataDir with //" "{\"id\":\"$B\",\"image\":\"$IMG\",\"dataDir\":\"/srv//$B\"}"
bad 422 "dataDir a system dir" "{\"id\":\"$B\",\"image\":\"$IMG\",\"dataDir\":\"/etc/$B\"}"
bad 422 "dataDir inside the appsdata root" "{\"id\":\"$B\",\"image\":\"$IMG\",\"dataDir\":\"$ROOT/elsewhere\"}"
equal "bad input: no app row created" "$(api GET /apps | jq -c '[.apps[].id]')" '[]'
equal "bad input: no task created" "$(app_tasks_n)" "$ntasks"
check "bad input: no container created" test "$(container_state "app-$B")" = absent

done_testing
