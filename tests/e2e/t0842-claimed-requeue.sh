#!/usr/bin/env bash
# t0842-claimed-requeue.sh — a task claimed by a scheduler whose worker
# never started is queued again, not failed:
#  1. the state a daemon killed between claiming a task and spawning its
#     worker leaves behind (queued, claimed for this host with a claim
#     token, no pid): the next daemon queues it again and it succeeds.
#     The window between claim and spawn is microseconds of one loop
#     iteration, so the test writes that state with SQL while no daemon
#     runs, instead of hoping kill -9 lands in it;
#  2. the same, claimed 60 s ago by another host that is gone: the
#     scheduler takes the claim over (the claim token makes that safe);
#  3. a worker started late for the old claim (what a spawn that raced
#     the requeue would start) leaves the task alone: exit 77, the task
#     and its locks untouched;
#  4. a platformstart claimed but never started is cancelled, not queued
#     for any host (each start queues its own).
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

plan 9
daemon_start --stop-grace 2s
# Task claims carry the owner id (host id + boot, common/proc.h).
HOST=$(api GET /status | jq -r .ownerId)

# A hold task row as the API makes it, plus a claim: queued, no pid.
insert_claimed() { # ID HOST CLAIM CLAIMED_AT LOCK [TYPE]
	local args
	args=$(jq -nc --arg n "$5" '{locks: [{name: $n, mode: "exclusive"}], seconds: 0}')
	db_sql "INSERT INTO tasks (id, type, args, state, percent, message, created_at, host, claim, claimed_at) VALUES ($1, '${6:-hold}', '$args', 'queued', 0, '', $(now_ms), '$2', $3, $4)"
}
X=$(hold_task 0 app:first) || bail "cannot create a hold task"
wait_for 15 state_is "$X" succeeded || bail "task $X does not run"
daemon_kill9

A=$((X + 100)) B=$((X + 101)) P=$((X + 102))
insert_claimed "$A" "$HOST" 4242 "$(now_ms)" app:a
insert_claimed "$B" host-gone 777 $(($(store_now_ms "$E2E_DB" 2>/dev/null || now_ms) - 60000)) app:b
insert_claimed "$P" "$HOST" 99 "$(now_ms)" app:p platformstart
daemon_start --stop-grace 2s

# ---- 1. this host's claim ------------------------------------------------
check "a task claimed for this host whose worker never started runs and succeeds" wait_for 20 state_is "$A" succeeded
equal "it is not failed as crashed" "$(task "$A" '.error')" null
requeued() { grep -q "task $A (hold): claimed, but its worker never started; queued again" "$DAEMON_LOG"; }
check "the daemon says it queued it again" requeued

# ---- 2. another host's stale claim ----------------------------------------
check "a task claimed 60 s ago by a host that is gone is taken over and succeeds" wait_for 20 state_is "$B" succeeded
equal "it ran here" "$(db_sql "SELECT host FROM tasks WHERE id = $B")" "$HOST"

# ---- 3. a late worker of the old claim --------------------------------------
H=$(hold_task 30 app:late) || bail "cannot create a hold task"
wait_for 15 state_is "$H" running || bail "task $H does not run"
before=$(task "$H" '[.state, .pid] | join(" ")')
rc=0
store_env=()
[ "$TEST_STORE" != sqlite ] && store_env=(BOXD_STORE_BACKEND="$TEST_STORE" BOXD_STORE_DSN="$(store_dsn "$E2E_DB")")
env BOXD_E2E_TAG="$E2E_TAG" "${store_env[@]}" "$BOXD" --state-dir "$STATE" task run "$H" 1 >>"$E2E_TMP/late.log" 2>&1 ||
	rc=$?
[ "$rc" = 77 ] || diag <"$E2E_TMP/late.log"
equal "a worker for a claim that is not the task's exits 77 (not mine)" "$rc" 77
equal "and leaves the task as it was" "$(task "$H" '[.state, .pid] | join(" ")')" "$before"
equal "and its lock with its worker" "$(holder_of app:late)" "$H"
req POST "/tasks/$H/stop"

# ---- 4. platformstart -------------------------------------------------------
equal "a platformstart claimed but never started is cancelled" \
	"$(task "$P" '[.state, .error.code] | join(" ")')" "cancelled stopped"

done_testing
