#!/usr/bin/env bash
# t0200-tasks.sh — hold tasks against a real daemon and real workers:
# parallelism on different locks, a visible wait on the same lock, stop and
# the hand-off to the waiter, stop errors, the list filters and GET /locks.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

plan 23
daemon_start --stop-grace 2s

# A and B: different app locks, so both run at once.
A=$(hold_task 60 app:x) || bail "cannot create task A"
B=$(hold_task 60 app:y) || bail "cannot create task B"
both_running() {
	local ids
	ids=$(api GET '/tasks?state=running' | jq -c '[.tasks[].id] | sort') || return 1
	[ "$ids" = "$(jq -nc --argjson a "$A" --argjson b "$B" '[$a, $b] | sort')" ]
}
check "two holds on different app locks are running at the same time" wait_for 15 both_running

# C: the same exclusive lock as A, so it waits for A, visibly.
C=$(hold_task 60 app:x) || bail "cannot create task C"
check "a hold on a held exclusive lock shows state waiting" wait_for 15 state_is "$C" waiting
t=$(task "$C")
equal "waitingFor.lock is the contested lock" "$(jq -r .waitingFor.lock <<<"$t")" "app:x"
equal "waitingFor.heldBy is the holder's task id" "$(jq -r .waitingFor.heldBy <<<"$t")" "$A"
equal "the message names the lock, the holder and its type" "$(jq -r .message <<<"$t")" \
	"Waiting for app:x (held by task $A, hold)"

locks=$(api GET /locks)
equal "GET /locks shows the holders with their task ids" \
	"$(jq -c '[.holders[] | {name, task, mode}] | sort_by(.name)' <<<"$locks")" \
	"$(jq -nc --argjson a "$A" --argjson b "$B" \
		'[{name: "app:x", task: $a, mode: "exclusive"}, {name: "app:y", task: $b, mode: "exclusive"}]')"
equal "GET /locks shows the waiter in the wait queue" \
	"$(jq -c '[.queue[] | {task, locks: [.locks[].name]}]' <<<"$locks")" \
	"$(jq -nc --argjson c "$C" '[{task: $c, locks: ["app:x"]}]')"

# The list and its filters (newest first).
ids_total() { jq -c '{ids: [.tasks[].id], total}' <<<"$1"; }
expect() { jq -nc --argjson ids "$1" --argjson total "$2" '{ids: $ids, total: $total}'; }
equal "?state=running lists the two running tasks" \
	"$(ids_total "$(api GET '/tasks?state=running')")" "$(expect "[$B,$A]" 2)"
equal "?state=waiting lists the waiter" \
	"$(ids_total "$(api GET '/tasks?state=waiting')")" "$(expect "[$C]" 1)"
equal "?type=hold lists all three" \
	"$(ids_total "$(api GET '/tasks?type=hold')")" "$(expect "[$C,$B,$A]" 3)"
equal "?type=fullbackup lists none" \
	"$(ids_total "$(api GET '/tasks?type=fullbackup')")" "$(expect "[]" 0)"
# (?type=hold: the daemon's own platformstart task is in the list too.)
page=$(api GET '/tasks?type=hold&per_page=1&page=2')
equal "?type=hold&per_page=1&page=2 is the second newest hold, with the full total" \
	"$(jq -c '{ids: [.tasks[].id], total, page, perPage}' <<<"$page")" \
	"$(jq -nc --argjson b "$B" '{ids: [$b], total: 3, page: 2, perPage: 1}')"
equal "?state=active&type=hold lists the three active tasks" \
	"$(ids_total "$(api GET '/tasks?state=active&type=hold')")" "$(expect "[$C,$B,$A]" 3)"

# Stop A: C must take over promptly.
t0=$(now_ms)
req POST "/tasks/$A/stop"
equal "POST /tasks/A/stop answers 204" "$STATUS" 204
if wait_for 10 state_is "$C" running; then
	t1=$(now_ms)
	started=$(ms_of "$(task "$C" .startedAt)")
	diag "stop -> next running: observed after $((t1 - t0)) ms (startedAt is $((started - t0)) ms after the stop request)"
	check "the waiter is running less than 2 s after the stop" test $((t1 - t0)) -lt 2000
else
	not_ok "the waiter is running less than 2 s after the stop (still $(task_state "$C") after 10 s)"
fi
check "the stopped task ends" wait_for 10 is_final "$A"
equal "the stopped task is cancelled with error.code stopped" \
	"$(task "$A" '[.state, .error.code] | join(" ")')" "cancelled stopped"
equal "the stopped task's lock went to the waiter" "$(holder_of app:x)" "$C"
check "B did not notice: still running" state_is "$B" running

req POST "/tasks/$A/stop"
equal "stopping a finished task answers 409 not_active" "$STATUS $(jq -r .error.code <<<"$BODY")" "409 not_active"
req POST /tasks/999999/stop
equal "stopping an unknown task answers 404 not_found" "$STATUS $(jq -r .error.code <<<"$BODY")" "404 not_found"

equal "?state=cancelled lists the stopped task" \
	"$(ids_total "$(api GET '/tasks?state=cancelled')")" "$(expect "[$A]" 1)"
equal "?state=running&type=hold lists the two running tasks" \
	"$(ids_total "$(api GET '/tasks?state=running&type=hold')")" "$(expect "[$C,$B]" 2)"

done_testing
