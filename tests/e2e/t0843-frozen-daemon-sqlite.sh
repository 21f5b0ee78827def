#!/usr/bin/env bash
# t0843-frozen-daemon-sqlite.sh — the daemon is frozen (SIGSTOP) for
# FREEZE_S seconds while it holds SQLite's write lock, longer than the
# connections' busy timeout (10 s), with WAITERS workers waiting for a
# lock held by another task:
#  - 0 failed: the waiters keep waiting, and the holder's release and
#    final write wait too;
#  - afterwards every task ends succeeded within seconds, no lock left.
# The holder writes its progress every second: those writes meet the busy
# store (SQLITE_BUSY after the busy timeout) and it goes on holding.
# T0843_BROKER says where the waiters wait (meson runs both):
#  - on (the default [locks] broker): on the lock broker, a thread of the
#    frozen daemon. They never touch the store while they wait, so none of
#    them meets the busy store;
#  - off: on the store directly. A waiter writes only to refresh its ticket
#    (every 10 s), so whether one meets the busy store depends on where its
#    refresh falls: counted, not checked.
# Catching the daemon inside a write transaction: while a stream of short
# tasks keeps it writing, the test stops it and probes the write lock
# (BEGIN IMMEDIATE with a 100 ms timeout, three times); if the probe gets
# it, the daemon was not inside one: it is resumed and stopped again.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$TEST_STORE" != sqlite ]; then
	skip_all "SQLite's write lock only"
fi
command -v sqlite3 >/dev/null || bail "sqlite3 is needed"

WAITERS=20
BROKER=${T0843_BROKER:-on}
FREEZE_S=15
HOLD_S=45 # from before the waiters queue to well after the thaw

if [ "$BROKER" = on ]; then plan 10; else plan 9; fi
CONF=$E2E_TMP/boxd.conf
printf '[locks]\nbroker = %s\n' "$BROKER" >"$CONF"
daemon_start --config "$CONF" --stop-grace 2s
if [ "$BROKER" = on ]; then
	check "the daemon runs its lock broker" grep -q 'lock broker on' "$DAEMON_LOG"
else
	check "the daemon runs no lock broker" bash -c '! grep -q "lock broker on" "$1"' _ "$DAEMON_LOG"
fi
DB=$STATE/boxd.db

H=$(hold_task $HOLD_S app:x) || bail "cannot create the holder"
wait_for 15 state_is "$H" running || bail "the holder does not run"
W=()
for i in $(seq 1 $WAITERS); do
	W+=("$(hold_task 0 app:x)") || bail "cannot create a waiter"
done
all_waiting() {
	local id
	for id in "${W[@]}"; do state_is "$id" waiting || return 1; done
}
check "$WAITERS tasks wait for app:x" wait_for 60 all_waiting

# ---- catch the daemon holding the write lock --------------------------------
churn() { # keep the daemon writing: short tasks, one after another
	local i=0
	while :; do
		i=$((i + 1))
		curl -s -o /dev/null --max-time 30 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
			--data-binary "{\"type\":\"hold\",\"args\":{\"locks\":[{\"name\":\"app:churn-$1-$i\"}],\"seconds\":0}}" \
			http://boxd/api/v1/tasks
	done
}
churn a &
c1=$!
churn b &
c2=$!
on_exit "kill $c1 $c2"
write_lock_free() { sqlite3 "$DB" ".timeout 100" "BEGIN IMMEDIATE; ROLLBACK;" >/dev/null 2>&1; }
held_by_daemon() {
	local k
	for k in 1 2 3; do write_lock_free && return 1; done
	return 0
}
caught=0 tries=0
while [ $tries -lt 300 ]; do
	tries=$((tries + 1))
	kill -STOP "$DAEMON_PID"
	if held_by_daemon; then
		caught=1
		break
	fi
	kill -CONT "$DAEMON_PID"
	sleep 0.0$((RANDOM % 9 + 1))
done
stop_ms=$(now_ms)
kill "$c1" "$c2" 2>/dev/null
wait "$c1" "$c2" 2>/dev/null
diag "caught the daemon inside a write transaction after $tries tries"
check "the daemon is frozen holding SQLite's write lock" test $caught = 1
[ $caught = 1 ] || bail "could not catch the daemon in a write transaction"

# ---- FREEZE_S seconds frozen -------------------------------------------------
still_held=1
while [ "$(now_ms)" -lt $((stop_ms + FREEZE_S * 1000)) ]; do
	write_lock_free && still_held=0
	sleep 0.5
done
check "the write lock stayed held for ${FREEZE_S} s (beyond the 10 s busy timeout)" test $still_held = 1
kill -CONT "$DAEMON_PID"
cont_ms=$(now_ms)

# ---- afterwards ---------------------------------------------------------------
waiters_failed() { # the waiters and the holder that are failed or cancelled
	local id
	for id in "$H" "${W[@]}"; do state_is "$id" failed cancelled && echo "$id"; done
}
all_done() {
	local id
	for id in "$H" "${W[@]}"; do is_final "$id" || return 1; done
}
check "the holder and the $WAITERS waiters end within 60 s of the thaw" wait_for 60 all_done
done_ms=$(now_ms)
diag "all of them final $((done_ms - cont_ms)) ms after the thaw (the holder's ${HOLD_S} s included)"
bad=$(waiters_failed)
for id in $bad; do diag "task $id: $(task "$id" '[.state, .error.code, .error.message] | join(" ")')"; done
equal "0 failed among the holder and the waiters" "$(wc -w <<<"$bad")" 0
equal "all $((WAITERS + 1)) succeeded" "$(for id in "$H" "${W[@]}"; do task_state "$id"; done | grep -c succeeded)" \
	$((WAITERS + 1))
check "the holder met the busy store (progress not recorded) and went on" \
	grep -q 'progress not recorded: .*database is locked' "$STATE/logs/tasks/$H.log"
# The waiters' own logs (a task of the churn may meet the busy store too).
met_busy=0
for id in "${W[@]}"; do grep -q 'store busy since' "$STATE/logs/tasks/$id.log" && met_busy=$((met_busy + 1)); done
diag "$met_busy of the $WAITERS waiters met the busy store"
if [ "$BROKER" = on ]; then
	equal "the waiters waited on the frozen broker, none on the busy store" "$met_busy" 0
fi
none_active() { [ "$(api GET '/tasks?state=active' | jq '.total')" = 0 ]; }
wait_for 30 none_active
equal "no lock is left behind" "$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"

done_testing
