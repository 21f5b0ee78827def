#!/usr/bin/env bash
# t0217-task-log-open.sh — a task's log, <state>/logs/tasks/<id>.log: the
# worker a standby starts creates it itself (the daemon's loop thread no
# longer pays for the inode, issue 18), owner-only, with the worker's lines;
# when it cannot be created the task fails with spawn_failed and says why,
# and nothing else is disturbed: the next task runs.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

plan 9
daemon_start

# The standby (`boxd task standby`, a child of the daemon) is what starts
# the tasks below.
has_standby() { pgrep -P "$DAEMON_PID" -f 'task standby' >/dev/null; }
check "the daemon keeps a standby worker" wait_for 20 has_standby

LOGS="$STATE/logs/tasks"
A=$(hold_task 0 log:a) || bail "cannot create a hold task"
check "a task runs" wait_task "$A" 20
equal "its log is owner-only" "$(stat -c %a "$LOGS/$A.log" 2>&1)" 600
check "its log has the worker's lines" grep -q "hold: held from" "$LOGS/$A.log"

# A log that cannot be created: logs/tasks is a file, not a directory.
mv "$LOGS" "$LOGS.saved"
on_exit "rm -f '$LOGS'; [ -d '$LOGS' ] || mv '$LOGS.saved' '$LOGS'"
: >"$LOGS"
B=$(hold_task 0 log:b) || bail "cannot create a hold task"
check "a task whose log cannot be created ends" wait_for 20 is_final "$B"
equal "... failed, spawn_failed" "$(task "$B" '[.state, .error.code] | join(" ")')" "failed spawn_failed"
msg=$(task "$B" .error.message)
diag "its error: $msg"
check "... saying which log it could not open" eval '[[ $msg == *"cannot open the task log under $STATE/logs/tasks"* ]]'

rm -f "$LOGS"
mv "$LOGS.saved" "$LOGS"
C=$(hold_task 0 log:c) || bail "cannot create a hold task"
check "the next task runs" wait_task "$C" 20
check "... with its log" grep -q "hold: held from" "$LOGS/$C.log"
