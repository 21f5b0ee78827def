#!/usr/bin/env bash
# t0912-pg-lost-grant.sh — a lock grant lost by an asynchronous failover
# (docs/ARCHITECTURE.md, "A replicated PostgreSQL"), made deterministic:
# the standby is cut off from the primary first (primary_conninfo = '',
# reloaded: its WAL receiver stops), so what the primary commits next can
# never reach it. Then host a's task T1 is granted app:x (on the primary
# alone: its task row too), the primary is killed (kill -9, every process)
# and the standby promoted: the new primary has no trace of T1, app:x is
# free, and host b's task T2 takes it. What boxd does about it:
#  - T1's worker notices at its next lease renewal on the new primary (its
#    locks are gone from the document) and stops itself (lease_lost, its
#    process group killed): its hold never finishes (no window logged);
#  - T2 runs and succeeds; no lock is left.
# Measured (diag): the promotion, T1's stop and T2's grant, each from the
# kill; the overlap (T1 stopped after T2 was granted) if any.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

PGREPL=$(cd "$(dirname "$0")/../.." && pwd)/scripts/test-pgrepl.sh
if [ "$(id -u)" != 0 ] || ! id postgres >/dev/null 2>&1 || [ ! -x /usr/lib/postgresql/15/bin/pg_basebackup ]; then
	skip_all "needs root, the postgres user and PostgreSQL 15's server binaries"
fi

LEASE=10s # the default: T1 must stop at its renewal, whatever the outage
HOSTS="a b"

plan 7

chmod 0711 "$E2E_TMP" # the servers run as postgres
PGDIR=$E2E_TMP/pg
mkdir -p "$PGDIR"
on_exit "$PGREPL" stop "$PGDIR"
"$PGREPL" start "$PGDIR" >>"$E2E_TMP/pgrepl.log" 2>&1 ||
	{ diag <"$E2E_TMP/pgrepl.log"; bail "cannot start the primary and the standby"; }
# shellcheck source=/dev/null
. "$PGDIR/env"
P2=$PGREPL_STANDBY_PORT

sql_at() { runuser -u postgres -- psql -h 127.0.0.1 -p "$1" -d boxd -X -q -A -t -v ON_ERROR_STOP=1 -c "$2"; }
not() { ! "$@"; }
log_ms() { date -d "$(cut -d' ' -f1 <<<"$1")" +%s%3N; } # a log line's timestamp, ms

for h in $HOSTS; do
	mkdir -p "$E2E_TMP/$h"
	printf '[store]\nbackend = postgres\ndsn = %s\nlease = %s\n' "$PGREPL_DSN" "$LEASE" >"$E2E_TMP/$h.conf"
	echo "=== host $h" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" BOXD_E2E_HOST="$E2E_TAG-$h" BOXD_HOST_ID="host-$h" \
		"$BOXD" --config "$E2E_TMP/$h.conf" serve --state-dir "$E2E_TMP/$h" --stop-grace 2s >>"$DAEMON_LOG" 2>&1 &
	SOCK=$E2E_TMP/$h/boxd.sock
	wait_for 30 daemon_answers || bail "host $h does not answer"
done
on() { SOCK=$E2E_TMP/$1/boxd.sock; }

# Cut the standby off: from now on nothing the primary commits reaches it.
sql_at "$P2" "ALTER SYSTEM SET primary_conninfo = ''" >/dev/null && sql_at "$P2" "SELECT pg_reload_conf()" >/dev/null ||
	bail "cannot change the standby's primary_conninfo"
no_receiver() { [ "$(sql_at "$P2" "SELECT count(*) FROM pg_stat_wal_receiver")" = 0 ]; }
wait_for 30 no_receiver || bail "the standby's WAL receiver does not stop"

on a
T1=$(hold_task 60 app:x) || bail "cannot post to a"
holding() { [ "$(holder_of app:x)" = "$T1" ]; }
check "host a's task $T1 holds app:x (on the primary)" wait_for 60 holding
equal "the standby has no trace of it" "$(sql_at "$P2" "SELECT count(*) FROM tasks WHERE id = $T1")" 0

kill_ms=$(now_ms)
"$PGREPL" signal "$PGDIR" primary KILL
"$PGREPL" promote "$PGDIR" >>"$E2E_TMP/pgrepl.log" 2>&1 || { diag <"$E2E_TMP/pgrepl.log"; bail "promote failed"; }
promoted_ms=$(now_ms)

on b
accepts() {
	req POST /tasks '{"type":"hold","args":{"locks":[{"name":"app:x","mode":"exclusive"}],"seconds":2}}'
	[ "$STATUS" = 202 ] && T2=$(jq -r .taskId <<<"$BODY")
}
wait_for 120 accepts || bail "host b does not accept a task on the new primary"
t2_ok() { [ "$(sql_at "$P2" "SELECT state FROM tasks WHERE id = $T2")" = succeeded ]; }
check "host b's task $T2 gets app:x, which the new primary says is free, and succeeds" wait_for 120 t2_ok

T1_LOG=$E2E_TMP/a/logs/tasks/$T1.log
stopped() { grep -q 'lease lost' "$T1_LOG" 2>/dev/null; }
check "task $T1's worker notices its lost grant and stops (lease_lost)" wait_for 60 stopped
check "task $T1's hold never finished (no window)" not grep -q '^hold: held from' "$T1_LOG"
diag "$(grep -h 'lease lost' "$T1_LOG" | cut -c1-300)"

stop_ms=$(log_ms "$(grep -m1 'lease lost' "$T1_LOG")")
t2_from=$(sed -n 's/^hold: held from \([0-9]*\) to .*/\1/p' "$E2E_TMP/b/logs/tasks/$T2.log")
diag "from the kill: promoted after $((promoted_ms - kill_ms)) ms, task $T1 stopped after $((stop_ms - kill_ms)) ms, task $T2 granted after $((${t2_from:-0} - kill_ms)) ms (lease $LEASE, renewed every tenth)"
diag "two holders of app:x for $((stop_ms > ${t2_from:-0} ? stop_ms - ${t2_from:-0} : 0)) ms"

on b
equal "no lock left" "$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"
check "both daemons answer" daemon_answers

done_testing
