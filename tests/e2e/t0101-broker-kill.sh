#!/usr/bin/env bash
# t0101-broker-kill.sh — the per-host lock broker (src/locks/broker.h) is
# SIGKILLed while its workers wait for and hand off one lock; they go on
# with the direct CAS loop (src/locks/broker_client.h): no lock is lost or
# granted twice, and every waiter finishes.
#
# The broker is tests/tools/lock-broker (the daemon's broker code alone in
# a process); the workers are lock-torture processes (t0100) on ONE name,
# half shared, half exclusive, so that at any moment some hold it and
# others wait in the broker's queue. Each round: a fresh store, a broker,
# 6 workers; once at least 3 tickets are queued (the broker is serving
# waiters and handing off), the broker gets SIGKILL, after 0, 100 or 300 ms
# more. Then:
#   - every worker exits 0 (none timed out, none saw a store error);
#   - no INVARIANT VIOLATION: the workers' witness files (each holder's own
#     time window, checked when it starts, after its pause and before it
#     leaves, as t0700 does across hosts) never overlap a conflicting one,
#     fencing tokens grow, and a release finds its holding still there;
#   - the counter of exclusive read-modify-writes adds up (a lock granted
#     twice loses an increment);
#   - the workers fell back (fallbacks > 0) and finished directly (direct > 0)
#     after the broker had served them (brokered > 0);
#   - the document ends empty.
# BOXD_TEST_STORE=mysql|postgres runs it on a server database (store.sh).
set -u
# shellcheck source=tests/e2e/tap.sh
. "$(dirname "$0")/tap.sh"
# shellcheck source=tests/e2e/store.sh
. "$(dirname "$0")/store.sh"
store_need

: "${LOCK_TORTURE:?LOCK_TORTURE must point at the lock-torture binary}"
: "${LOCK_BROKER:?LOCK_BROKER must point at the lock-broker binary}"
WORKERS=6
ITERATIONS=300
# Holdings of up to 3 ms: the round lasts seconds, the kill falls in it.
MAX_PAUSE_US=3000
DEADLINE=120
DELAYS="0 200"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t0101-broker-kill.XXXXXX") || exit 1
pids=()
dbs=()
cleanup() {
	local p d
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	for d in ${dbs[@]+"${dbs[@]}"}; do
		store_db_drop "$d" >/dev/null 2>&1
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

command -v jq >/dev/null || bail "jq is needed"
plan $((6 * 2))
diag "backend: $TEST_STORE"

sum() {
	local field=$1
	shift
	cat "$@" | jq -s "map(.$field // 0) | add // 0"
}

new_db() {
	if [ "$TEST_STORE" = sqlite ]; then
		db=$tmp/$1.db
		db_flags=(--db "$db")
	else
		db=$(store_db_create) || bail "cannot create a $TEST_STORE database"
		dbs+=("$db")
		db_flags=(--store "$TEST_STORE" --dsn "$(store_dsn "$db")")
	fi
}

doc() {
	if [ "$TEST_STORE" = sqlite ]; then
		sqlite3 -cmd ".timeout 5000" "$1" "select data from locks where id = 1"
	else
		store_sql "$1" "select data from locks where id = 1"
	fi
}

# doc_count DB H|T: holders or tickets in the stored document (format 2:
# a line per entry; see t0100).
doc_count() {
	local d
	d=$(doc "$1") || return 1
	if [ "${d:0:1}" = "{" ]; then
		jq "$([ "$2" = H ] && echo .holders || echo .queue) | length" <<<"$d"
	else
		sed 's/\\n/\n/g' <<<"$d" | grep -c "^$2 " || true
	fi
}

broker_listening() { grep -q '^LISTENING' "$broker_out"; }
queued=0
tickets_queued() {
	queued=$(doc_count "$db" T 2>/dev/null)
	[ "${queued:-0}" -ge 3 ]
}

for delay in $DELAYS; do
	r=kill$delay
	new_db "$r"
	mkdir "$tmp/$r.w"
	"$LOCK_TORTURE" "${db_flags[@]}" --counter "$tmp/$r.c" --iterations 0 --names 1 --seed 0 >/dev/null 2>&1 ||
		bail "cannot create the $TEST_STORE lock store"
	broker_out=$tmp/$r.broker.out
	"$LOCK_BROKER" --socket "$tmp/$r.sock" "${db_flags[@]}" >"$broker_out" 2>&1 &
	broker=$!
	pids+=("$broker")
	wait_for 10 broker_listening || bail "the lock broker did not start: $(cat "$broker_out")"

	workers=()
	for i in $(seq 1 $WORKERS); do
		"$LOCK_TORTURE" "${db_flags[@]}" --broker "$tmp/$r.sock" --counter "$tmp/$r.c" --iterations $ITERATIONS \
			--names 1 --seed "$((3000 + i))" --shared-ratio 0.5 --invariant-dir "$tmp/$r.w" --timeout 60 \
			--max-pause-us $MAX_PAUSE_US \
			>"$tmp/$r.$i.json" 2>"$tmp/$r.$i.err" &
		pids+=($!)
		workers+=($!)
	done
	if wait_for 30 tickets_queued && alive "$broker"; then
		[ "$delay" -gt 0 ] && sleep "0.$(printf %03d "$delay")" # the kill's moment, not a synchronization
		kill -KILL "$broker"
		wait "$broker" 2>/dev/null
		running=0
		for p in "${workers[@]}"; do alive "$p" && running=$((running + 1)); done
		if [ "$running" -ge 2 ]; then
			ok "$delay ms after waiters queued behind the broker (${queued} tickets) it is SIGKILLed, $running workers running"
		else
			not_ok "the broker is SIGKILLed while workers still run (only $running running)"
		fi
	else
		not_ok "waiters queue behind the broker (tickets: ${queued:-?})"
		kill -KILL "$broker" 2>/dev/null
	fi

	if wait_for $DEADLINE all_gone "${workers[@]}"; then
		codes=""
		for p in "${workers[@]}"; do
			wait "$p"
			codes="$codes $?"
		done
		if [[ "$codes" =~ [1-9] ]]; then
			not_ok "every worker finishes after the kill (exit codes:$codes)"
			cat "$tmp/$r".*.err | head -n 20 | diag
		else
			ok "every worker finishes after the kill"
		fi
	else
		not_ok "every worker finishes within ${DEADLINE}s after the kill"
		for p in "${workers[@]}"; do kill -KILL "$p" 2>/dev/null; done
		cat "$tmp/$r".*.err | diag
	fi

	if grep -aq "INVARIANT VIOLATION" "$tmp/$r".*.err; then
		not_ok "no holder's time window overlaps a conflicting one"
		grep -ah "INVARIANT VIOLATION" "$tmp/$r".*.err | head -n 5 | diag
	elif find "$tmp/$r.w" -type f ! -name '*.fence' | grep -q .; then
		not_ok "no holder's time window overlaps a conflicting one (witness files left)"
	else
		ok "no holder's time window overlaps a conflicting one"
	fi

	excl=$(sum exclusive_ops "$tmp/$r".*.json)
	ops=$(sum ops "$tmp/$r".*.json)
	counted=$(cat "$tmp/$r.c.t:0" 2>/dev/null || echo 0)
	counted=$((10#$counted))
	if [ "$ops" = $((WORKERS * ITERATIONS)) ] && [ "$excl" -gt 0 ] && [ "$counted" = "$excl" ]; then
		ok "no lock lost or granted twice: the counter adds up ($counted exclusive holdings)"
	else
		not_ok "no lock lost or granted twice (ops $ops, exclusive $excl, counted $counted)"
	fi

	brokered=$(sum brokered "$tmp/$r".*.json)
	direct=$(sum direct "$tmp/$r".*.json)
	fallbacks=$(sum fallbacks "$tmp/$r".*.json)
	reread=$(sum held_on_reread "$tmp/$r".*.json)
	if [ "$brokered" -gt 0 ] && [ "$fallbacks" -gt 0 ] && [ "$direct" -gt 0 ]; then
		ok "the workers went on directly ($brokered brokered, $fallbacks fell back, $reread held on re-read, $direct direct)"
	else
		not_ok "the workers went on directly ($brokered brokered, $fallbacks fell back, $direct direct)"
	fi

	if [ "$(doc_count "$db" H)" = 0 ] && [ "$(doc_count "$db" T)" = 0 ]; then
		ok "the lock document is empty"
	else
		not_ok "the lock document is empty"
		doc "$db" | diag
	fi
done

done_testing
