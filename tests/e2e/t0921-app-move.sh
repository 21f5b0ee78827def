#!/usr/bin/env bash
# t0921-app-move.sh — moving an app to another host (issue 16): two boxd
# hosts a and b (BOXD_HOST_ID host-a, host-b; own state dirs, sockets and
# data roots) on one fresh MariaDB database of the test env, one shared
# backups dir (what a move assumes: backups/app_move.h) and the test env's
# Podman (shared: a container name is one container for both hosts, so
# "where it runs" is told by the data dir its container binds).
#
#  1. Bad input changes nothing: an unknown host (404 unknown_host), the
#     app's own host (409 same_host), an unknown app (404), no host (400),
#     the app busy with a task (409 app_busy); no move task exists after.
#  2. boxctl app move APP --to host-b --wait: the move ran on a, the
#     restore on b (their workers' logs are in a's and b's state dirs); the
#     data tree hash on b is the one on a before; b's container runs it
#     (binding b's data dir, the app's data readable inside); a has no data
#     dir left; the app is placed on b; the backup stays.
#  3. A failure midway: moving it back to a while a's data dir holds
#     something fails (target_exists on a) and leaves the app running on b,
#     placed on b, its data unchanged; once that is cleared, it moves back.
#  4. The target gone midway: b frozen (SIGSTOP) when the move to it is
#     asked, so its restore never starts; once b's heartbeat is 10 s old
#     the move is called off (host_gone), a runs the app again with its
#     data, placed on a, and b, woken, cancels the restore (nothing there).
#  5. Full backups per host (docs/ARCHITECTURE.md "One full backup at a
#     time, per host"): asked of a and of b at once, both are accepted and
#     run, each on its own host; a's takes the app (placed on a), b's none.
#     With `keep = 1`, a's next full backup deletes a's older one, not b's.
#  6. Each host its own sftp container on the shared engine ([engine]
#     shared): boxd-sftp-host-a and boxd-sftp-host-b both run, each
#     binding its own host's apps data root.
#  7. The source's move worker dies after the target's commit (frozen
#     while b restores, killed once b runs the app): a's move task ends
#     failed, and its move.cleanup, queued before the hand-over, removes
#     the old container and data dir on a; the app runs on b, its data
#     unchanged.
#
# Needs BOXD_TEST_MYSQL_DSN and the app engine of the test env.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
if [ -z "${BOXD_TEST_MYSQL_DSN:-}" ]; then
	echo "1..0 # SKIP BOXD_TEST_MYSQL_DSN is not set (test env not started; run make check)"
	exit 0
fi
export BOXD_TEST_STORE=mysql
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF
: "${BOXCTL:?BOXCTL must point at the boxctl binary}"

plan 50

DB=$(store_db_create) || bail "cannot create a MariaDB database"
on_exit store_db_drop "$DB"
DSN=$(store_dsn "$DB")
E2E_DB=$DB # for db_sql
on_exit _apps_cleanup
APP=$APP_PREFIX-wiki
PORT=$((20000 + RANDOM % 20000))
mkdir -p "$E2E_TMP/backups"

declare -A HPID # host -> daemon pid
declare -A HPORT=([a]=$PORT [b]=$((PORT + 1))) # each host's sftp port: host network

# host_start NAME: start host NAME (host id host-NAME, state dir
# $E2E_TMP/NAME) and wait until its API answers.
host_start() {
	local name=$1 dir=$E2E_TMP/$1
	mkdir -p "$dir"
	cat >"$dir.conf" <<-CONF
		[store]
		backend = mysql
		dsn = $DSN
		lease = 3s
		[engine]
		socket = $BOXD_TEST_ENGINE_SOCKET
		shared = yes
		[sched]
		sftp_quiet = 1s
		[sftp]
		image = ${BOXD_TEST_SFTP_IMAGE:-localhost/boxd/sftp:latest}
		port = ${HPORT[$name]}
		[paths]
		backups = $E2E_TMP/backups
		[backups]
		keep = 1
	CONF
	echo "=== host $name" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" BOXD_HOST_ID="host-$name" \
		"$BOXD" --config "$dir.conf" serve --state-dir "$dir" --stop-grace 2s >>"$DAEMON_LOG" 2>&1 &
	HPID[$name]=$!
	on "$name"
	wait_for 15 daemon_answers || bail "host $name does not answer"
}

# on NAME: the API calls that follow go to host NAME.
on() { SOCK=$E2E_TMP/$1/boxd.sock; }
data_of() { echo "$E2E_TMP/$1/appsdata/$APP"; }
placed_on() { db_sql "SELECT COALESCE(host, '-') FROM apps WHERE id = '$APP'"; }
moves() { db_sql "SELECT COUNT(*) FROM tasks WHERE type LIKE 'move%'"; }
bound_dir() { container_inspect "app-$APP" '.Mounts[] | select(.Destination == "/app/data") | .Source'; }
ran_on() { [ -s "$E2E_TMP/$2/logs/tasks/$1.log" ]; }
both_alive() { [ "$(api GET /hosts | jq '[.hosts[] | select(.alive)] | length')" = 2 ]; }

host_start a
host_start b
check "both hosts are alive" wait_for 15 both_alive

# The install runs on a: b is paused (SIGSTOP, well under its lease) until
# a's worker has it. (Once only the app's host claims its tasks, this is
# where the install was asked.)
on a
kill -STOP "${HPID[b]}"
tid=$(install_app "$APP" "$BOXD_TEST_APP_IMAGE")
has_pid() { [ "$(task "$tid" .pid)" != null ] && [ "$(task "$tid" .pid)" != 0 ]; }
wait_for 15 has_pid
kill -CONT "${HPID[b]}"
check "install on a" wait_task "$tid" 60
A_DIR=$(data_of a)
B_DIR=$(data_of b)
in_container "app-$APP" sh -c 'echo written-by-the-app >/app/data/app.txt'
mkdir -p "$A_DIR/sub/deeper"
head -c 300000 /dev/urandom >"$A_DIR/blob.bin"
printf 'hello\n' >"$A_DIR/sub/hello.txt"
chmod 0600 "$A_DIR/sub/hello.txt"
ln -s sub/hello.txt "$A_DIR/link"
touch -d '2001-02-03 04:05:06.789' "$A_DIR/sub/hello.txt"
H=$(tree_hash "$A_DIR")
equal "the app's container binds a's data dir" "$(bound_dir)" "$A_DIR"

# ---- 1. bad input ----------------------------------------------------------

move_refused() { # STATUS CODE BODY [APP]
	req POST "/apps/${4:-$APP}/move" "$3"
	[ "$STATUS" = "$1" ] && [ "$(jq -r .error.code <<<"$BODY")" = "$2" ] && return 0
	diag "got $STATUS $BODY"
	return 1
}
check "unknown host: 404 unknown_host" move_refused 404 unknown_host '{"host":"host-nowhere"}'
check "its own host: 409 same_host" move_refused 409 same_host '{"host":"host-a"}'
check "unknown app: 404 not_found" move_refused 404 not_found '{"host":"host-b"}' "$APP_PREFIX-nosuch"
check "no host: 400 bad_request" move_refused 400 bad_request '{}'
check "a bad host id: 400 bad_request" move_refused 400 bad_request '{"host":"../b"}'
# b paused again while the restart exists: it is a's to run.
kill -STOP "${HPID[b]}"
hold=$(hold_task 30 "app:$APP")
held() { [ "$(holder_of "app:$APP")" = "$hold" ]; }
wait_for 10 held
rtid=$(app_task "$APP" restart)
check "app busy (restart $rtid queued): 409 app_busy" move_refused 409 app_busy '{"host":"host-b"}'
req POST "/tasks/$hold/stop"
wait_task "$rtid" 30 >/dev/null
kill -CONT "${HPID[b]}"
equal "nothing was moved: no move task" "$(moves)" 0
out=$("$BOXCTL" --socket "$SOCK" app move "$APP" --to host-nowhere 2>&1)
rc=$?
check "boxctl app move to an unknown host: exit $rc, says why" \
	eval '[ "$rc" != 0 ] && grep -q "no host host-nowhere" <<<"$out"'
equal "the app still runs on a" "$(container_state "app-$APP"):$(bound_dir)" "running:$A_DIR"

# ---- 2. the move -------------------------------------------------------------

t0=$(now_ms)
out=$("$BOXCTL" --socket "$SOCK" app move "$APP" --to host-b --wait 2>&1)
rc=$?
diag "$out"
diag "the move took $(($(now_ms) - t0)) ms"
equal "boxctl app move --to host-b --wait: exit 0" "$rc" 0
MT=$(db_sql "SELECT id FROM tasks WHERE type = 'move'")
RT=$(db_sql "SELECT id FROM tasks WHERE type = 'move.restore'")
equal "the move succeeded" "$(task "$MT" .state)" succeeded
check "the move ran on a, the restore on b" eval 'ran_on "$MT" a && ran_on "$RT" b && ! ran_on "$RT" a'
equal "the data tree hash on b is a's before the move" "$(tree_hash "$B_DIR")" "$H"
equal "b's container runs it, binding b's data dir" "$(container_state "app-$APP"):$(bound_dir)" "running:$B_DIR"
equal "the app's own data is there" "$(in_container "app-$APP" cat /app/data/app.txt)" written-by-the-app
check "a has no data dir left" test ! -e "$A_DIR"
equal "the app is installed, placed on b" "$(app "$APP" .installationState):$(placed_on)" installed:host-b
BK=$(task "$MT" .result.backupId)
check "the backup of the move stays" test -s "$(api GET "/backups" | jq -r --argjson id "$BK" '.backups[] | select(.id == $id) | .path')"

# ---- 3. a failure midway, then back ----------------------------------------------

mkdir -p "$A_DIR"
echo "in the way" >"$A_DIR/stray"
on b
req POST "/apps/$APP/move" '{"host":"host-a"}'
equal "move back to a: 202" "$STATUS" 202
MT2=$(jq -r .taskId <<<"$BODY")
wait_for 60 is_final "$MT2"
equal "it fails (move_failed)" "$(task "$MT2" .state):$(task "$MT2" .error.code)" failed:move_failed
check "its message names the restore's reason" grep -q "exists on host-a and is not empty" <<<"$(task "$MT2" .error.message)"
equal "the app runs on b again, placed on b" "$(container_state "app-$APP"):$(bound_dir):$(placed_on)" \
	"running:$B_DIR:host-b"
equal "its data on b is unchanged" "$(tree_hash "$B_DIR")" "$H"
equal "a's stray file is left alone" "$(cat "$A_DIR/stray")" "in the way"
rm -rf "$A_DIR"
out=$("$BOXCTL" --socket "$SOCK" app move "$APP" --to host-a --wait 2>&1)
rc=$?
equal "then back to a: exit 0" "$rc" 0
equal "a runs it with the same data, b has none left" \
	"$(container_state "app-$APP"):$(bound_dir):$(tree_hash "$A_DIR"):$(test -e "$B_DIR" && echo left || echo gone)" \
	"running:$A_DIR:$H:gone"

# ---- 4. the target gone midway -------------------------------------------------

on a
kill -STOP "${HPID[b]}"
req POST "/apps/$APP/move" '{"host":"host-b"}'
equal "move to b (frozen): 202" "$STATUS" 202
MT3=$(jq -r .taskId <<<"$BODY")
wait_for 40 is_final "$MT3"
equal "called off once b's heartbeat is gone (host_gone)" "$(task "$MT3" .state):$(task "$MT3" .error.code)" \
	failed:host_gone
equal "a runs the app again, placed on a, data unchanged" \
	"$(container_state "app-$APP"):$(bound_dir):$(placed_on):$(tree_hash "$A_DIR")" "running:$A_DIR:host-a:$H"
kill -CONT "${HPID[b]}"
RT3=$(db_sql "SELECT MAX(id) FROM tasks WHERE type = 'move.restore'")
check "b, woken, cancels its restore" wait_for 15 state_is "$RT3" cancelled
check "b has no data dir of the app" test ! -e "$B_DIR"

# ---- 5. full backups per host ------------------------------------------------------

full_create() { req POST /backups/create && [ "$STATUS" = 202 ] && jq -r .taskId <<<"$BODY"; }
full_apps() { api GET /backups | jq -r --argjson t "$1" '[.backups[] | select(.kind == "app" and .taskId == $t) | .appId] | join(",")'; }
full_ids() { api GET /backups | jq -r '[.backups[] | select(.kind == "full") | .taskId] | sort | map(tostring) | join(",")'; }
on a
FA1=$(full_create) || FA1=
on b
FB1=$(full_create) || FB1=
check "a full backup asked of a and one of b at once: both accepted" test -n "$FA1" -a -n "$FB1"
check "... both succeed" eval 'wait_task "$FA1" 120 && wait_task "$FB1" 120'
equal "... each ran on the host that was asked" "$(task "$FA1" .host) $(task "$FB1" .host)" "host-a host-b"
equal "a's full backup took the app placed on a" "$(full_apps "$FA1")" "$APP"
equal "b's took no app (none is placed on b)" "$(full_apps "$FB1")" ""
on a
FA2=$(full_create) || FA2=
check "a's next full backup succeeds" wait_task "$FA2" 120
equal "keep = 1 deleted a's older full backup, not b's" "$(full_ids)" \
	"$(printf '%s\n' "$FB1" "$FA2" | sort | paste -sd,)"

# ---- 6. each host its own sftp container -----------------------------------------

binds_of() { container_inspect "$1" '.Mounts[].Source' 2>/dev/null; }
check "each host runs its own sftp container (boxd-sftp-host-a, boxd-sftp-host-b)" \
	wait_for 60 eval '[ "$(container_state boxd-sftp-host-a):$(container_state boxd-sftp-host-b)" = running:running ]'
check "a's binds a's apps data root" wait_for 30 eval 'binds_of boxd-sftp-host-a | grep -qxF "$(dirname "$A_DIR")"'
check "b's binds b's, not a's" \
	eval 'binds_of boxd-sftp-host-b | grep -qxF "$(dirname "$B_DIR")" && ! binds_of boxd-sftp-host-b | grep -qxF "$(dirname "$A_DIR")"'

# ---- 7. the source dies after the commit --------------------------------------------

on a
OLD_CID=$(container_inspect "app-$APP" .Id) || bail "no container of the app on a"
RT_BEFORE=$(db_sql "SELECT MAX(id) FROM tasks WHERE type = 'move.restore'")
req POST "/apps/$APP/move" '{"host":"host-b"}'
equal "move to b: 202" "$STATUS" 202
MT4=$(jq -r .taskId <<<"$BODY")
RT4=
restore_running() {
	RT4=$(db_sql "SELECT MAX(id) FROM tasks WHERE type = 'move.restore'")
	[ "$RT4" != "$RT_BEFORE" ] && state_is "$RT4" running succeeded
}
wait_for 60 restore_running || bail "b's restore does not run"
mpid=$(task "$MT4" .pid)
kill -STOP "$mpid"
check "b commits and runs the app while a's move worker is frozen" \
	wait_for 60 eval '[ "$(placed_on)" = host-b ] && state_is "$RT4" succeeded'
kill -KILL "$mpid"
check "a's move task ends failed (its worker died)" wait_for 30 state_is "$MT4" failed
CL=$(db_sql "SELECT MAX(id) FROM tasks WHERE type = 'move.cleanup'")
check "a's move.cleanup (task $CL) removes what the move left on a" wait_for 60 state_is "$CL" succeeded
diag "move.cleanup: $(task "$CL" .result | jq -c .)"
engine GET "/containers/$OLD_CID/json"
equal "a's data dir and old container are gone" "$(test -e "$A_DIR" && echo left || echo gone):$ESTATUS" "gone:404"
equal "the app runs on b with its data" "$(container_state "app-$APP"):$(bound_dir):$(tree_hash "$B_DIR")" \
	"running:$B_DIR:$H"

done_testing
