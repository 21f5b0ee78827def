#!/usr/bin/env bash
# t0216-lazy-libraries — the libraries a process does not use are not in
# it (issue 18, daemon RSS; src/common/dlib.h). libarchive, libcurl, libpq,
# the MariaDB client, libssh and libsystemd are loaded when first used:
#  - an idle daemon, not under systemd, maps none of them but its store's
#    client library (none on SQLite; BOXD_TEST_STORE=mysql|postgres run it
#    on the servers);
#  - neither does the worker of a hold task;
#  - under systemd's notify protocol (NOTIFY_SOCKET, tests/tools/dgram-sink
#    standing in for systemd) the daemon loads libsystemd, sends READY=1
#    through it, and still maps none of the others.
# The tasks that use the others load them in their workers; their own
# tests (backups, the engine, the stores, t0870) run through that path.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
: "${DGRAM_SINK:?}"

plan 7

LAZY='libarchive\.so|libcurl\.so|libpq\.so|libmariadb\.so|libssh\.so|libsystemd\.so'
case $TEST_STORE in
mysql) OWN='libmariadb\.so' ;;
postgres) OWN='libpq\.so' ;;
*) OWN='libsqlite3\.so' ;;
esac
# mapped PID: the lazily loaded libraries PID maps but its store's, one per
# line ("" if none).
mapped() { grep -oE "/[^ ]*($LAZY)[^ ]*" "/proc/$1/maps" | grep -vE "$OWN" | sort -u; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

daemon_start
# The daemon's first seconds (start-up work, the first status) are done
# when the API answers; the libraries would have been loaded by then.
equal "an idle daemon on $TEST_STORE maps none of the lazily loaded libraries but its store's" \
	"$(mapped "$DAEMON_PID")" ""
check "it maps its store's ($OWN)" grep -qE "$OWN" "/proc/$DAEMON_PID/maps"
diag "the idle daemon's RSS: $(rss_kb "$DAEMON_PID") kB"

id=$(hold_task 60 app:lazy) || bail "cannot create a hold task"
wait_for 30 state_is "$id" running || bail "task $id did not start"
wpid=$(task "$id" .pid)
check "the hold task's worker runs (pid $wpid)" test -d "/proc/$wpid"
equal "the worker of a hold task maps none of them" "$(mapped "$wpid")" ""
diag "the worker's RSS: $(rss_kb "$wpid") kB"
req POST "/tasks/$id/stop"
wait_for 30 is_final "$id" || bail "task $id did not end"
daemon_kill9

# Under systemd: libsystemd is loaded when the daemon first notifies.
NSOCK=$E2E_TMP/notify.sock
NOUT=$E2E_TMP/notify.out
"$DGRAM_SINK" "$NSOCK" >"$NOUT" 2>&1 &
SINK=$!
on_exit "kill $SINK"
wait_for 10 grep -q '^@@ listening' "$NOUT" || bail "dgram-sink did not start"
NOTIFY_SOCKET=$NSOCK daemon_start
check "READY=1 reaches the notify socket" wait_for 15 grep -qx READY=1 "$NOUT"
equal "the daemon then maps libsystemd" "$(mapped "$DAEMON_PID" | grep -c libsystemd)" 1
equal "and none of the others" "$(mapped "$DAEMON_PID" | grep -vc libsystemd)" 0
