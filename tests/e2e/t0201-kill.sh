#!/usr/bin/env bash
# t0201-kill.sh — workers that die or are stopped leave nothing behind:
#  1. SIGKILL a worker that holds a lock: its task fails as crashed (naming
#     signal 9), the supervisor frees its lock and the waiter proceeds.
#  2. A worker's child (hold's "spawnChild") is gone after a stop of the
#     task, and after a SIGKILL of the worker (the supervisor kills what is
#     left of the worker's process group).
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

plan 17
daemon_start --stop-grace 2s

# ---- 1. SIGKILL of a lock holder ---------------------------------------

A=$(hold_task 60 app:k) || bail "cannot create task A"
check "the holder is running" wait_for 15 state_is "$A" running
B=$(hold_task 60 app:k) || bail "cannot create task B"
check "the second task waits for the holder" wait_for 15 state_is "$B" waiting
pid=$(task "$A" .pid)
equal "GET /locks shows the holder" "$(holder_of app:k)" "$A"

kill -KILL "$pid"
check "the killed task ends" wait_for 10 is_final "$A"
t=$(task "$A")
equal "the killed task is failed with error.code crashed" "$(jq -r '[.state, .error.code] | join(" ")' <<<"$t")" \
	"failed crashed"
msg=$(jq -r .error.message <<<"$t")
diag "error.message: $msg"
check "the error message names signal 9" grep -q 'signal 9\b' <<<"$msg"
equal "the killed task holds no lock any more" "$(holds "$A")" ""
check "the waiter proceeds: running" wait_for 10 state_is "$B" running
equal "the waiter now holds the lock" "$(holder_of app:k)" "$B"
req POST "/tasks/$B/stop"
wait_for 10 is_final "$B"
equal "after the waiter is stopped GET /locks has no holder and no waiter" \
	"$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"

# ---- 2. the worker's child process -------------------------------------

# child_of TASK: the pid of the sleep the worker started (from its log).
child_of() {
	sed -n 's/^hold: started child process \([0-9]*\)$/\1/p' "$STATE/logs/tasks/$1.log" 2>/dev/null | head -n 1
}
has_child() { [ -n "$(child_of "$1")" ]; }

# start_with_child LOCK: a 60 s hold with a child; sets T, WPID, CPID.
start_with_child() {
	T=$(hold_task 60 "$1" -- '{"spawnChild": true}') || bail "cannot create a spawnChild task"
	wait_for 15 state_is "$T" running || bail "task $T did not run"
	wait_for 10 has_child "$T" || bail "task $T did not start its child"
	WPID=$(task "$T" .pid)
	CPID=$(child_of "$T")
	diag "task $T: worker pid $WPID, child pid $CPID"
}

start_with_child app:c1
check "the child runs in the worker's process group" \
	test "$(alive "$CPID" && ps -o pgid= -p "$CPID" | tr -d ' ')" = "$WPID"
req POST "/tasks/$T/stop"
check "stop: the task ends cancelled" wait_for 10 state_is "$T" cancelled
check "stop: the worker's child is gone" wait_for 10 gone "$CPID"

start_with_child app:c2
kill -KILL "$WPID"
check "SIGKILL of the worker: the task ends failed" wait_for 10 state_is "$T" failed
equal "SIGKILL of the worker: error.code crashed" "$(task "$T" .error.code)" crashed
check "SIGKILL of the worker: its child is gone (the supervisor killed the group)" wait_for 10 gone "$CPID"
equal "no lock is left behind" "$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"

done_testing
