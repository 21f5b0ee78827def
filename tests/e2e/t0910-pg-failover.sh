#!/usr/bin/env bash
# t0910-pg-failover.sh — boxd on a PostgreSQL primary with a streaming
# standby (scripts/test-pgrepl.sh, both on 127.0.0.1, started and stopped
# here), through a libpq multi-host DSN.
#
# (The connect defaults are t0910-pg-failover-connect's.) Three hosts a, b,
#     c (BOXD_HOST_ID, own state dirs) run contended hold tasks on app:x, app:y, app:z (lease 30 s, see LEASE).
#     Mid-run the primary is killed (kill -9 of the postmaster and every
#     backend) and the standby promoted at once: the daemons and the
#     workers reconnect to it and go on. Then: 0 exclusion violations (each
#     hold task logs the window in which its worker held its lock, by its
#     own clock; same machine, one clock), 0 lost tasks (all succeeded, none
#     failed lease_lost/crashed), 0 stale locks, all three daemons answer
#     and run tasks posted after the failover. Measured (diag): the failover
#     time, kill -> first lock change committed on the new primary; the
#     lease left to the holders at the promotion; the jump of the database
#     clock across the failover.
#
# With T0910_SYNC=1 the primary has synchronous_standby_names = '*': a
# commit returns once the standby has it, so no acknowledged lock change
# can be lost by the failover (docs/ARCHITECTURE.md, "Replicated
# PostgreSQL").
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

PGREPL=$(cd "$(dirname "$0")/../.." && pwd)/scripts/test-pgrepl.sh
if [ "$(id -u)" != 0 ] || ! id postgres >/dev/null 2>&1 || [ ! -x /usr/lib/postgresql/15/bin/pg_basebackup ]; then
	skip_all "needs root, the postgres user and PostgreSQL 15's server binaries"
fi

# T0910_PER_HOST: the issue's 3 x 200 runs by hand (T0910_PER_HOST=195).
PER_HOST=${T0910_PER_HOST:-30} # tasks posted to each host before the kill
PER_HOST_AFTER=5               # and after it
HOLD_S=0.5
HOSTS="a b c"
LOCKS=(app:x app:y app:z)
# Not the default 10 s: on a loaded 2-core CI machine the promotion alone
# has taken 13 s, and a failover longer than a holder's lease stops the
# holders (lease_lost, by design). The outage is measured and printed
# against the default.
LEASE=30s

plan 11

# The servers run as postgres: it must reach its dirs below ours.
chmod 0711 "$E2E_TMP"
PGDIR=$E2E_TMP/pg
mkdir -p "$PGDIR"
on_exit "$PGREPL" stop "$PGDIR"
sync_arg=
[ "${T0910_SYNC:-}" = 1 ] && sync_arg=--sync
"$PGREPL" start "$PGDIR" $sync_arg >>"$E2E_TMP/pgrepl.log" 2>&1 ||
	{ diag <"$E2E_TMP/pgrepl.log"; bail "cannot start the primary and the standby"; }
# shellcheck source=/dev/null
. "$PGDIR/env"
P1=$PGREPL_PRIMARY_PORT
P2=$PGREPL_STANDBY_PORT
diag "primary on 127.0.0.1:$P1, standby on 127.0.0.1:$P2 (synchronous: $PGREPL_SYNC)"

sql_at() { runuser -u postgres -- psql -h 127.0.0.1 -p "$1" -d boxd -X -q -A -t -v ON_ERROR_STOP=1 -c "$2"; }
db_now() { sql_at "$1" "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"; }

# ---- failover under contention -----------------------------------------------

declare -A HPID
host_start() {
	local name=$1 dir=$E2E_TMP/$1
	mkdir -p "$dir"
	printf '[store]\nbackend = postgres\ndsn = %s\nlease = %s\n' "$PGREPL_DSN" "$LEASE" >"$dir.conf"
	echo "=== host $name" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" BOXD_E2E_HOST="$E2E_TAG-$name" BOXD_HOST_ID="host-$name" \
		"$BOXD" --config "$dir.conf" serve --state-dir "$dir" --stop-grace 2s >>"$DAEMON_LOG" 2>&1 &
	HPID[$name]=$!
	on "$name"
	wait_for 20 daemon_answers || bail "host $name does not answer"
}
on() { SOCK=$E2E_TMP/$1/boxd.sock; }
for h in $HOSTS; do host_start "$h"; done

posted=0
post_round() { # COUNT: COUNT tasks to each host, the locks in turn (req, no jq:
	local i h t0 # they must queue up faster than they run)
	for i in $(seq 1 "$1"); do
		for h in $HOSTS; do
			on "$h"
			# A 503 store_unavailable is the API's answer while its own
			# connection is still finding the new primary (a 3 s connect
			# timeout that a loaded machine can use up): a client tries
			# again. Anything else, or 30 s of it, fails the test.
			t0=$(now_ms)
			while :; do
				req POST /tasks "{\"type\":\"hold\",\"args\":{\"locks\":[{\"name\":\"${LOCKS[posted % ${#LOCKS[@]}]}\",\"mode\":\"exclusive\"}],\"seconds\":$HOLD_S}}"
				if [ "$STATUS" != 503 ] || ! grep -q store_unavailable <<<"$BODY" ||
					[ $(($(now_ms) - t0)) -ge 30000 ]; then
					break
				fi
				diag "host $h: 503 store_unavailable, posting again"
				sleep 0.5
			done
			[ "$STATUS" = 202 ] || bail "cannot post a task to $h: $STATUS $BODY"
			posted=$((posted + 1))
		done
	done
}
# A gate holds the three locks while the tasks are posted, so that they
# queue up (and the kill finds a queue and holders), then lets them go.
env BOXD_E2E_TAG="$E2E_TAG" BOXD_HOST_ID=host-gate "$BOXD" --config "$E2E_TMP/a.conf" --state-dir "$E2E_TMP/probe" \
	locks hold "${LOCKS[@]}" --for 600 >"$E2E_TMP/gate.log" 2>&1 &
GATE=$!
gate_holds() { grep -q acquired "$E2E_TMP/gate.log"; }
wait_for 30 gate_holds || bail "the gate cannot take the locks"
post_round $PER_HOST
kill -TERM $GATE
wait $GATE
total=$((posted + PER_HOST_AFTER * 3))
succeeded_at() { sql_at "$1" "SELECT count(*) FROM tasks WHERE type = 'hold' AND state = 'succeeded'"; }
# Progress from the workers' logs (cheap to poll): the kill comes once a
# quarter of the tasks held their lock.
held() { cat "$E2E_TMP"/[abc]/logs/tasks/*.log 2>/dev/null | grep -c '^hold: held from'; }
quarter_done() { [ "$(held)" -ge $((total / 4)) ]; }
wait_for 120 quarter_done || bail "the tasks do not get going"
running=$(sql_at "$P1" "SELECT string_agg(state || ':' || n, ' ') FROM (SELECT state, count(*) AS n FROM tasks GROUP BY state) s")
skew_before=$(($(db_now "$P1") - $(now_ms)))

kill_ms=$(now_ms)
"$PGREPL" signal "$PGDIR" primary KILL
"$PGREPL" promote "$PGDIR" >>"$E2E_TMP/pgrepl.log" 2>&1 || { diag <"$E2E_TMP/pgrepl.log"; bail "promote failed"; }
promoted_ms=$(now_ms)
# The version the new primary starts from (the hosts reconnect with a
# backoff, so a change before this read is unlikely; it would make the
# failover time below one change late), and the holders' leases then
# (format 2 rows: "H NAME MODE TASK HOST PID START AT LEASE").
v_promoted=$(sql_at "$P2" "SELECT version FROM locks WHERE id = 1")
lease_left=$(sql_at "$P2" "SELECT data FROM locks WHERE id = 1" |
	awk -v now="$(db_now "$P2")" '/^H / { l = $9 - now; if (min == "" || l < min) min = l } END { print min }')
skew_after=$(($(db_now "$P2") - $(now_ms)))
moved() { [ "$(sql_at "$P2" "SELECT version FROM locks WHERE id = 1")" -gt "$v_promoted" ]; }
check "the hosts change locks on the new primary" wait_for 60 moved
first_ms=$(now_ms)
diag "tasks at the kill: $running; holders' lease left at the promotion: ${lease_left:-none} ms (of $LEASE)"
diag "promoted $((promoted_ms - kill_ms)) ms after the kill; failover time (kill -> first lock change on the new primary): $((first_ms - kill_ms)) ms (default lease 10000 ms; a holder stops if it cannot renew for 8500 ms)"
diag "database clock minus local clock: $skew_before ms before, $skew_after ms after (jump $((skew_after - skew_before)) ms)"

post_round $PER_HOST_AFTER
final_count() { sql_at "$P2" "SELECT count(*) FROM tasks WHERE type = 'hold' AND state IN ('succeeded', 'failed', 'cancelled')"; }
all_final() { [ "$(final_count)" -ge "$total" ]; }
check "all $total hold tasks end" wait_for $((240 + PER_HOST * 2)) all_final
equal "0 lost tasks: all succeeded" "$(succeeded_at "$P2")" "$total"
sql_at "$P2" "SELECT id, state, error_code, error_message FROM tasks WHERE type = 'hold' AND state <> 'succeeded'" | diag

# Every worker's window, by its own clock: "LOCK FROM TO".
windows() {
	local h id lock
	sql_at "$P2" "SELECT id, args::json->'locks'->0->>'name' FROM tasks WHERE type = 'hold'" |
		while IFS='|' read -r id lock; do
			for h in $HOSTS; do
				sed -n "s/^hold: held from \([0-9]*\) to \([0-9]*\)$/$lock \1 \2/p" \
					"$E2E_TMP/$h/logs/tasks/$id.log" 2>/dev/null
			done
		done
}
windows >"$E2E_TMP/windows"
equal "every task logged its window" "$(wc -l <"$E2E_TMP/windows")" "$total"
violations=$(sort -k1,1 -k2,2n "$E2E_TMP/windows" |
	awk '$1 == lock && $2 < to { v++; print "overlap: " $0 " starts before " to > "/dev/stderr" }
	     { if ($1 != lock || $3 > to) to = $3; lock = $1 } END { print v + 0 }')
equal "0 exclusion violations (windows of one lock never overlap)" "$violations" 0
ran=$(for h in $HOSTS; do echo "$h:$(ls "$E2E_TMP/$h/logs/tasks" 2>/dev/null | wc -l)"; done | tr '\n' ' ')
diag "task logs per host: $ran"

for h in $HOSTS; do
	on "$h"
	check "host $h answers after the failover" daemon_answers
done
on a
equal "0 stale locks" "$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"
after_ok() { [ "$(sql_at "$P2" "SELECT count(*) FROM tasks WHERE type = 'hold' AND state = 'succeeded' AND created_at > $promoted_ms")" = $((PER_HOST_AFTER * 3)) ]; }
check "the tasks posted after the failover all succeeded" after_ok
# Which host claims a task is a race (the first claim wins), so that each
# one ran some of the few posted after the failover is not checked. That
# every daemon writes to the new primary is, by its heartbeat (every 2 s,
# in the database's time: same machine, the clocks differ by < 1 s).
beat_after() {
	local h
	for h in $HOSTS; do
		[ "$(sql_at "$P2" "SELECT count(*) FROM hosts WHERE id = 'host-$h' AND heartbeat_at > $((first_ms + 1000))")" = 1 ] ||
			return 1
	done
}
check "every host's daemon writes to the new primary (its heartbeat)" wait_for 60 beat_after

done_testing
