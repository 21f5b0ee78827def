#!/usr/bin/env bash
# t0211-state-perms — the state dir keeps local users out (issue 10, finding
# 8): the database (app env secrets), its WAL, the task logs and the tokens
# file are 0600 even when the state dir already existed world-readable, an
# existing state dir is tightened, a database file left 0644 by an older
# version is fixed, and a state dir owned by another user is refused. The
# attacker is `nobody`, through setpriv.
set -u
. "$(dirname "$0")/lib.sh"

plan 14

command -v setpriv >/dev/null || bail "setpriv (util-linux) is needed"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
nobody_can_read() { as_nobody cat "$1" >/dev/null 2>&1; }
not() { ! "$@"; }
mode() { stat -c %a "$1"; }
tight() { [ $((0$(mode "$1") & 027)) = 0 ]; }

# Everything above the state dir is world-traversable, as /var/lib is: only
# the state dir's own mode may keep nobody out.
chmod 755 "$E2E_TMP"
mkdir -m 755 "$STATE"
daemon_start
id=$(hold_task 0 app:perm) || bail "cannot create a task"
wait_for 30 is_final "$id" || bail "task $id did not end"
# The state dir may stay group-traversable (for the socket), never more.
check "an existing 0755 state dir is tightened (no bits for others, no group write)" tight "$STATE"
equal "boxd.db is 0600" "$(mode "$STATE/boxd.db")" 600
equal "its WAL is 0600" "$(mode "$STATE/boxd.db-wal")" 600
equal "a task log is 0600" "$(mode "$STATE/logs/tasks/$id.log")" 600
equal "the log dirs are 0700" "$(mode "$STATE/logs") $(mode "$STATE/logs/tasks")" "700 700"
echo public >"$E2E_TMP/public"
chmod 644 "$E2E_TMP/public"
check "nobody reads a world-readable file beside the state dir (the control)" nobody_can_read "$E2E_TMP/public"
check "nobody cannot read the database" not nobody_can_read "$STATE/boxd.db"
check "nobody cannot read a task log" not nobody_can_read "$STATE/logs/tasks/$id.log"

# A database and a log left wide open by an older version, in a wide-open
# state dir: fixed at the next start.
daemon_kill9
chmod 755 "$STATE"
chmod 644 "$STATE/boxd.db" "$STATE/logs/tasks/$id.log"
chmod 755 "$STATE/logs" "$STATE/logs/tasks"
daemon_start
equal "a 0644 database is made 0600 at start" "$(mode "$STATE/boxd.db")" 600
equal "old task logs are made 0600" "$(mode "$STATE/logs/tasks/$id.log")" 600
check "and the state dir is tightened again" tight "$STATE"
daemon_kill9

# A state dir another user owns: that user could swap the database.
other="$E2E_TMP/other"
mkdir -m 700 "$other"
chown nobody "$other"
"$BOXD" serve --state-dir "$other" >"$E2E_TMP/other.log" 2>&1 &
pid=$!
if wait_for 15 gone "$pid"; then
	wait "$pid"
	rc=$?
else
	rc=running
	kill "$pid"
	wait "$pid"
fi
equal "a state dir owned by another user is refused (exit 1)" "$rc" 1
check "with a message that says why" grep -q "owned by uid $(id -u nobody)" "$E2E_TMP/other.log"
[ "$rc" = 1 ] || diag <"$E2E_TMP/other.log"

# ... unless it is the [tasks] user, whose workers write there anyway (not
# a privilege boundary: docs/ARCHITECTURE.md, "Security").
tuser="$E2E_TMP/tuser"
mkdir -m 700 "$tuser"
chown nobody "$tuser"
env BOXD_E2E_TAG="$E2E_TAG" "$BOXD" serve --state-dir "$tuser" --task-user nobody >"$E2E_TMP/tuser.log" 2>&1 &
tpid=$!
tuser_answers() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$tuser/boxd.sock" http://boxd/api/v1/status)" = 200 ]; }
tuser_up() { tuser_answers || gone "$tpid"; }
wait_for 15 tuser_up
check "a state dir owned by the [tasks] user is accepted" tuser_answers
tuser_answers || diag <"$E2E_TMP/tuser.log"
kill "$tpid"
wait "$tpid"

done_testing
