#!/usr/bin/env bash
# t0102-broker-daemon-kill.sh — the daemon, and with it its lock broker
# (src/daemon/serve_broker.c), is SIGKILLed while its workers wait for and
# hand off one lock through it.
#
#  1. The daemon starts its broker ("lock broker on" in its log).
#  2. HOLDS hold tasks of HOLD_S s on app:x: one runs, the others wait —
#     through the broker: each waiting worker has a connection to the
#     broker's socket (ss), and none polls the store itself.
#  3. kill -9 of the daemon. The workers go on directly: the lock passes
#     from one task to the next with no daemon running (the holder in the
#     stored document changes).
#  4. A new daemon re-adopts them; every task succeeds, and the windows
#     [startedAt, startedAt + HOLD_S] never overlap (startedAt is written
#     once the locks are taken, t0700): no lock was lost or granted twice.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

HOLDS=4
HOLD_S=5
plan 8
command -v ss >/dev/null || bail "ss (iproute2) is needed"
command -v sqlite3 >/dev/null || bail "sqlite3 is needed"
BROKER_SOCK=$STATE/lock-broker.sock

daemon_start
check "the daemon starts its lock broker" grep -q "lock broker on $BROKER_SOCK" "$DAEMON_LOG"

ids=()
for _ in $(seq 1 $HOLDS); do
	ids+=("$(hold_task $HOLD_S app:x)") || bail "cannot create a hold task"
done
count_state() {
	local want=$1 id n=0
	for id in "${ids[@]}"; do state_is "$id" "$want" && n=$((n + 1)); done
	echo $n
}
waiting_enough() { [ "$(count_state waiting)" -ge 2 ]; }
check "one task holds app:x, at least 2 wait for it" wait_for 30 waiting_enough

# The broker's side of each worker's connection (its local address is the
# socket's path).
connections() { ss -x -H state connected src "$BROKER_SOCK" 2>/dev/null | wc -l; }
conns_enough() { [ "$(connections)" -ge 2 ]; }
check "the waiting workers wait through the broker (connections: $(connections))" wait_for 10 conns_enough

# The holder in the stored document (format 2: "H <name> <mode> <task> ...").
doc_holder() {
	sqlite3 -cmd ".timeout 5000" "$STATE/boxd.db" "select data from locks where id = 1" |
		awk '$1 == "H" && $2 == "app:x" { print $4 }'
}
first=$(doc_holder)
daemon_kill9
check "the daemon is gone, no broker listens" wait_for 10 eval '! ss -x -H -l src "$BROKER_SOCK" | grep -q .'
moved() { h=$(doc_holder); [ -n "$h" ] && [ "$h" != "$first" ]; }
check "with no daemon, app:x passes from task $first to the next waiter" wait_for $((HOLD_S * 3 + 10)) moved

daemon_start
all_final() { for id in "${ids[@]}"; do is_final "$id" || return 1; done; }
check "a new daemon re-adopts them and every task ends" wait_for $((HOLDS * HOLD_S * 3 + 30)) all_final
equal "every task succeeded" "$(count_state succeeded)" "$HOLDS"
starts=$(for id in "${ids[@]}"; do ms_of "$(task "$id" .startedAt)"; done | sort -n)
gaps=$(awk -v hold=$((HOLD_S * 1000)) 'NR > 1 { printf "%d ", $1 - prev - hold } { prev = $1 }' <<<"$starts")
diag "start-to-start gaps minus the hold time (ms): $gaps"
no_overlap() { [ -n "$gaps" ] && [[ "$gaps" != *-* ]]; }
check "mutual exclusion: the windows [startedAt, startedAt + ${HOLD_S}s] never overlap" no_overlap

done_testing
