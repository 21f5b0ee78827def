#!/usr/bin/env bash
# t0203-restart.sh — tasks survive a crash of the daemon:
#  1. kill -9 the daemon while three holds run; a new daemon on the same
#     state dir re-adopts the workers and the tasks finish succeeded.
#  2. kill -9 the daemon, then SIGKILL one worker while no daemon runs; the
#     new daemon marks that task failed (crashed) and frees its locks, and
#     the others succeed.
#  3. a re-adopted worker (not the new daemon's child) that is SIGKILLed
#     leaves no process behind: the supervisor kills its process group.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

plan 20
# Long enough that the holds still run when the new daemon starts, also on
# a busy machine; short enough to wait for them to end.
SECS=8
daemon_start --stop-grace 2s

all_in_state() {
	local want=$1 id
	shift
	for id in "$@"; do state_is "$id" "$want" || return 1; done
}
# adopted_log N: the daemon log reports N re-adopted workers (of its last start).
adopted_count() { sed -n 's/.*start: re-adopted \([0-9]*\) worker(s), \([0-9]*\) task(s) crashed.*/\1 \2/p' "$DAEMON_LOG" | tail -n 1; }
last_adopt_is() { [ "$(adopted_count)" = "$1" ]; }

# ---- 1. re-adoption ----------------------------------------------------

R=()
for i in 1 2 3; do
	R+=("$(hold_task $SECS "app:r$i")") || bail "cannot create a hold task"
done
check "three holds run" wait_for 15 all_in_state running "${R[@]}"
pids=$(api GET '/tasks?state=running' | jq -r '.tasks[].pid')
daemon_kill9
all_alive() {
	local p
	for p in "$@"; do alive "$p" || return 1; done
}
# shellcheck disable=SC2086
check "the workers outlive kill -9 of the daemon" all_alive $pids
daemon_start --stop-grace 2s
check "the new daemon reports 3 re-adopted workers, 0 crashed" wait_for 5 last_adopt_is "3 0"
check "the re-adopted tasks still run" all_in_state running "${R[@]}"
check "the re-adopted tasks finish succeeded" wait_for 20 all_in_state succeeded "${R[@]}"
equal "their results are recorded" \
	"$(api GET '/tasks?state=succeeded' | jq -c '[.tasks[].result.heldSeconds]')" "[$SECS,$SECS,$SECS]"
equal "GET /locks has no holder and no waiter" \
	"$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"
# The re-adopted workers are watched: a stop reaches them.
X=$(hold_task 60 app:r1) || bail "cannot create a hold task"
wait_for 15 state_is "$X" running || bail "task $X did not run"
daemon_kill9
daemon_start --stop-grace 2s
wait_for 5 last_adopt_is "1 0" || diag "adoption not reported: $(adopted_count)"
req POST "/tasks/$X/stop"
check "a re-adopted worker can be stopped" wait_for 10 state_is "$X" cancelled
no_holder() { [ -z "$(holder_of "$1")" ]; }
check "its lock is freed" wait_for 5 no_holder app:r1

# ---- 2. a worker dies while no daemon runs ------------------------------

# Longer holds than part 1's: all three must still run when the daemon is
# killed, however long the machine takes to start them (at load 45 an 8 s
# hold had ended before the test got to the kill). The victim is killed, so
# its length is only a bound.
S_SECS=25
S=()
for i in 1 2 3; do
	secs=$S_SECS
	[ "$i" = 2 ] && secs=120
	S+=("$(hold_task $secs "app:s$i" "shared:s$i:shared")") || bail "cannot create a hold task"
done
check "three holds run again" wait_for 15 all_in_state running "${S[@]}"
victim=${S[1]}
vpid=$(task "$victim" .pid)
equal "the victim holds its two locks" "$(holds "$victim")" "app:s2,shared:s2"
daemon_kill9
kill -KILL "$vpid"
wait_for 5 gone "$vpid" || bail "worker $vpid does not die"
daemon_start --stop-grace 2s
check "the new daemon reports 2 re-adopted workers, 1 crashed" wait_for 5 last_adopt_is "2 1"
t=$(task "$victim")
equal "the task of the dead worker is failed with error.code crashed" \
	"$(jq -r '[.state, .error.code] | join(" ")' <<<"$t")" "failed crashed"
diag "error.message: $(jq -r .error.message <<<"$t")"
equal "its locks are freed (GET /locks)" "$(holds "$victim")" ""
check "the others finish succeeded" wait_for $((S_SECS + 20)) all_in_state succeeded "${S[0]}" "${S[2]}"
N=$(hold_task 0 app:s2) || bail "cannot create a hold task"
check "a new task takes the dead worker's lock at once" wait_for 10 state_is "$N" succeeded

# ---- 3. a re-adopted worker's child --------------------------------------

has_child() { grep -q '^hold: started child process ' "$STATE/logs/tasks/$1.log" 2>/dev/null; }
K=$(hold_task 60 app:k -- '{"spawnChild": true}') || bail "cannot create a spawnChild task"
wait_for 15 state_is "$K" running || bail "task $K did not run"
wait_for 10 has_child "$K" || bail "task $K did not start its child"
kpid=$(task "$K" .pid)
cpid=$(sed -n 's/^hold: started child process //p' "$STATE/logs/tasks/$K.log")
daemon_kill9
daemon_start --stop-grace 2s
wait_for 5 last_adopt_is "1 0" || diag "adoption not reported: $(adopted_count)"
kill -KILL "$kpid"
check "SIGKILL of a re-adopted worker: the task ends" wait_for 10 is_final "$K"
equal "SIGKILL of a re-adopted worker: the task is failed with error.code crashed" \
	"$(task "$K" '[.state, .error.code] | join(" ")')" "failed crashed"
diag "error.message: $(task "$K" .error.message)"
check "SIGKILL of a re-adopted worker: its child is gone" wait_for 10 gone "$cpid"
equal "no lock is left behind" "$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"

done_testing
