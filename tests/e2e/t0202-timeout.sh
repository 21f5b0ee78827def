#!/usr/bin/env bash
# t0202-timeout.sh — per-type timeouts: with --timeout hold=1s a 30 s hold
# is stopped by the supervisor and ends failed with error.code timeout
# within a few seconds, and its lock is freed for the next task.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

plan 8
daemon_start --timeout hold=1s --stop-grace 1s

t0=$(now_ms)
A=$(hold_task 30 app:t) || bail "cannot create task A"
check "the hold runs" wait_for 10 state_is "$A" running
check "the hold ends within 6 s of its creation" wait_for 6 is_final "$A"
t1=$(now_ms)
diag "the 30 s hold ended $((t1 - t0)) ms after it was created"
t=$(task "$A")
equal "it failed with error.code timeout" "$(jq -r '[.state, .error.code] | join(" ")' <<<"$t")" "failed timeout"
diag "error.message: $(jq -r .error.message <<<"$t")"
check "it ran at least its 1 s timeout" test $(($(ms_of "$(jq -r .finishedAt <<<"$t")") - $(ms_of "$(jq -r .createdAt <<<"$t")"))) -ge 1000
equal "it holds no lock any more" "$(holds "$A")" ""

# The lock is free for the next task. (Created only now: its own 1 s
# timeout runs from its spawn, lock wait included.)
B=$(hold_task 0 app:t) || bail "cannot create task B"
check "a new hold on the same lock succeeds" wait_for 10 state_is "$B" succeeded
equal "GET /locks has no holder and no waiter" \
	"$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"
check "the worker process is gone" gone "$(jq -r .pid <<<"$t")"

done_testing
