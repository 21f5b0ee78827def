#!/usr/bin/env bash
# t0845-frozen-holder-multihost.sh — two hosts a and b on one database
# (BOXD_TEST_STORE=mysql or postgres), [store] lease = 3s; leases are held
# by the workers that act on the locks:
#  1. a's daemon is frozen (SIGSTOP) for FREEZE_S (5 leases) while a's
#     worker holds app:x and b's waits for it: a's worker renews its own
#     lease, so b's task gets app:x only once a's task released it. The
#     exclusive windows the two workers logged (each hold task logs the
#     wall-clock window it held its lock in) do not overlap: 0 ms of two
#     holders; a's task ends succeeded, not crashed.
#  2. a's worker itself is frozen for longer than its lease while it holds
#     app:y: b's waiter frees it once the lease expired and runs; when a's
#     worker wakes up it stops acting at once (lease lost: its process
#     group is killed, it exits 76) and never finishes its window.
# Which host runs a task: as in t0700, the other daemon is stopped while a
# task is posted and until it has a worker.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$TEST_STORE" = sqlite ]; then
	skip_all "several hosts share a server database: run with BOXD_TEST_STORE=mysql or postgres"
fi

LEASE_MS=3000
FREEZE_S=15
HOLD_A=8

plan 13
DB=$(store_db_create) || bail "cannot create a $TEST_STORE database"
on_exit store_db_drop "$DB"
DSN=$(store_dsn "$DB")

declare -A HPID
host_start() {
	local name=$1 dir=$E2E_TMP/$1
	mkdir -p "$dir"
	cat >"$dir.conf" <<-CONF
		[store]
		backend = $TEST_STORE
		dsn = $DSN
		lease = ${LEASE_MS}ms
	CONF
	echo "=== host $name" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" BOXD_E2E_HOST="$name" BOXD_HOST_ID="host-$name" \
		"$BOXD" --config "$dir.conf" serve --state-dir "$dir" --stop-grace 2s >>"$DAEMON_LOG" 2>&1 &
	HPID[$name]=$!
	on "$name"
	wait_for 15 daemon_answers || bail "host $name does not answer"
}
on() { SOCK=$E2E_TMP/$1/boxd.sock; }
has_pid() { [ "$(task "$1" .pid)" != null ]; }
# post_on NAME OTHER SECONDS LOCK [EXTRA]: a hold task that NAME runs.
post_on() {
	local id rc=0
	kill -STOP "${HPID[$2]}"
	on "$1"
	id=$(hold_task "$3" "$4" ${5:+-- "$5"}) && wait_for 10 has_pid "$id" || rc=1
	kill -CONT "${HPID[$2]}"
	[ $rc = 0 ] || return 1
	echo "$id"
}
# window HOST ID: the window in which the task's worker held its lock, by
# its own clock: the line the hold task logs, or (a build that does not
# log it) from "locks taken" to "task N succeeded" in its log.
window() {
	local log=$E2E_TMP/$1/logs/tasks/$2.log w from to
	w=$(sed -n 's/^hold: held from \([0-9]*\) to \([0-9]*\)$/\1 \2/p' "$log")
	if [ -z "$w" ] && grep -q "task $2 succeeded" "$log" 2>/dev/null; then
		from=$(grep -m1 'locks taken' "$log" | cut -d' ' -f1)
		to=$(grep -m1 "task $2 succeeded" "$log" | cut -d' ' -f1)
		w="$(ms_of "$from") $(ms_of "$to")"
	fi
	echo "$w"
}

host_start a
host_start b

# ---- 1. a's daemon frozen -------------------------------------------------------
A=$(post_on a b $HOLD_A app:x) || bail "cannot place a task on a"
on a
wait_for 15 state_is "$A" running || bail "task $A does not run on a"
B=$(post_on b a 1 app:x) || bail "cannot place a task on b"
on b
check "b's task waits for app:x, held by a's task" wait_for 15 state_is "$B" waiting
kill -STOP "${HPID[a]}"
stop_ms=$(now_ms)
on b
check "while a's daemon is frozen, a's task runs to its end" wait_for $((HOLD_A + 10)) state_is "$A" succeeded
check "and b's task then gets app:x and succeeds" wait_for 15 state_is "$B" succeeded
while [ "$(now_ms)" -lt $((stop_ms + FREEZE_S * 1000)) ]; do sleep 0.2; done
kill -CONT "${HPID[a]}"
read -r a1 a2 <<<"$(window a "$A")"
read -r b1 b2 <<<"$(window b "$B")"
overlap=$(( (a2 < b2 ? a2 : b2) - (a1 > b1 ? a1 : b1) ))
[ "$overlap" -lt 0 ] && overlap=0
diag "a held app:x from $a1 to $a2, b from $b1 to $b2 (ms, their own clocks): b began $((b1 - a2)) ms after a ended"
equal "0 ms of two exclusive holders" "$overlap" 0
on a
wait_for 10 daemon_answers || bail "a's daemon does not answer after SIGCONT"
equal "a's task ended succeeded, recorded by its worker" "$(task "$A" '[.state, (.error | tostring)] | join(" ")')" \
	"succeeded null"

# ---- 2. a's worker frozen ---------------------------------------------------------
A2=$(post_on a b 60 app:y '{"spawnChild": true}') || bail "cannot place a task on a"
on a
wait_for 15 state_is "$A2" running || bail "task $A2 does not run on a"
has_child() { grep -q '^hold: started child process ' "$E2E_TMP/a/logs/tasks/$A2.log" 2>/dev/null; }
wait_for 10 has_child || bail "task $A2 did not start its child"
wpid=$(task "$A2" .pid)
cpid=$(sed -n 's/^hold: started child process //p' "$E2E_TMP/a/logs/tasks/$A2.log")
B2=$(post_on b a 1 app:y) || bail "cannot place a task on b"
on b
wait_for 15 state_is "$B2" waiting || bail "task $B2 does not wait"
kill -STOP "$wpid"
freeze2_ms=$(now_ms)
check "with a's worker frozen, b's task gets app:y once the lease expired, and succeeds" \
	wait_for $((LEASE_MS / 1000 + 15)) state_is "$B2" succeeded
got_ms=$(ms_of "$(task "$B2" .startedAt)")
diag "b's task started $((got_ms - freeze2_ms)) ms after a's worker froze (lease ${LEASE_MS} ms)"
check "not before a's lease could have run out" test "$got_ms" -ge $((freeze2_ms + LEASE_MS - 1000))
kill -CONT "$wpid"
cont_ms=$(now_ms)
check "a's worker stops at once when it wakes up" wait_for 5 gone "$wpid"
diag "it was gone $(($(now_ms) - cont_ms)) ms after SIGCONT"
check "and its child with it (its process group is killed)" wait_for 5 gone "$cpid"
lost() { grep -q 'lease lost' "$E2E_TMP/a/logs/tasks/$A2.log"; }
check "its log says the lease was lost" lost
equal "it never finished its window (it stopped acting)" "$(window a "$A2")" ""
on a
check "a's task is failed" wait_for 10 state_is "$A2" failed
diag "a's task: $(task "$A2" '[.error.code, .error.message] | join(": ")')"
equal "no lock is left behind" "$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"

done_testing
