#!/usr/bin/env bash
# t0100-lock-torture.sh — many real processes fight over a few locks in one
# database (tests/tools/lock-torture.c is the worker): an SQLite file, or with
# BOXD_TEST_STORE=mysql|postgres a fresh database on the test env's server
# (tests/e2e/store.sh; skipped when the test env is not started).
#
#  1. 8 processes x 1,000 acquisitions over 4 names, half shared, half
#     exclusive. Each exclusive holder increments its name's counter file with
#     a read-modify-write, each shared holder checks that the counter does not
#     move, and witness files catch two conflicting holders directly. So: every
#     worker exits 0, no INVARIANT VIOLATION, the counters add up to the
#     exclusive operations the workers report, and the document ends empty.
#  2. Kill test: a holder of t:0 is SIGKILLed while 3 workers queue for t:0;
#     the workers reap the dead owner by themselves and finish.
#
# With BOXD_TEST_LOCK_BROKER=on every phase runs behind a per-host lock
# broker (tests/tools/lock-broker.c: the daemon's broker code alone in a
# process; src/locks/broker.h): the workers ask it and it batches their
# requests into one change per round. Same checks, plus: the broker served
# them (no silent fallback to the direct loop).
#
# Needs: LOCK_TORTURE, LOCK_BROKER (broker runs), BUILD_DIR (from tests/meson.build), sqlite3 and jq
# (mariadb or psql on the server backends).
# Every wait has a deadline; the trap kills whatever this script started.
set -u
# shellcheck source=tests/e2e/tap.sh
. "$(dirname "$0")/tap.sh"
# shellcheck source=tests/e2e/store.sh
. "$(dirname "$0")/store.sh"
store_need

WORKERS=8
ITERATIONS=1000
NAMES=4
KILL_WORKERS=3
KILL_ITERATIONS=200
TORTURE_DEADLINE=110   # seconds for the whole torture phase
# A server database commits every CAS over a socket (PostgreSQL with fsync):
# several times slower than SQLite, and slower still on a loaded machine.
[ "$TEST_STORE" = sqlite ] || TORTURE_DEADLINE=400
STEP_DEADLINE=30       # seconds for each wait of the kill test

: "${LOCK_TORTURE:?LOCK_TORTURE must point at the lock-torture binary}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t0100-lock-torture.XXXXXX") || exit 1
pids=()
dbs=() # server databases made here

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

BROKER=${BOXD_TEST_LOCK_BROKER:-off}
broker_flags=()
if [ "$BROKER" = on ]; then
	: "${LOCK_BROKER:?LOCK_BROKER must point at the lock-broker binary}"
	plan 12
else
	plan 10
fi

for tool in sqlite3 jq; do
	command -v "$tool" >/dev/null || bail "$tool is needed"
done
diag "backend: $TEST_STORE, lock broker: $BROKER"

broker_listening() { grep -q '^LISTENING' "$broker_out"; }
# start_broker NAME: a lock broker on the current phase's store (after
# new_db); sets broker_flags for the workers.
start_broker() {
	[ "$BROKER" = on ] || return 0
	local sock=$tmp/$1.sock
	broker_out=$tmp/$1.broker.out
	"$LOCK_BROKER" --socket "$sock" "${db_flags[@]}" >"$broker_out" 2>&1 &
	pids+=($!)
	wait_for 10 broker_listening || bail "the lock broker did not start: $(cat "$broker_out")"
	broker_flags=(--broker "$sock")
}

# brokered_ok FILE...: the workers' requests went through the broker.
brokered_ok() {
	[ "$BROKER" = on ] || return 0
	local brokered direct
	brokered=$(sum brokered "$@")
	direct=$(sum direct "$@")
	if [ "$brokered" -gt 0 ] && [ "$direct" = 0 ]; then
		ok "the broker served every request ($brokered brokered, 0 direct)"
	else
		not_ok "the broker served every request ($brokered brokered, $direct direct)"
	fi
}

# collect_codes PID...: sets $codes to " pid=status ..." (they must have
# exited; not in a $(...) subshell, which cannot wait for our children).
collect_codes() {
	local p rc
	codes=""
	for p in "$@"; do
		wait "$p"
		rc=$?
		codes="$codes $p=$rc"
	done
}

# sum FIELD FILE...: add up a numeric field of the workers' JSON stat lines.
sum() {
	local field=$1
	shift
	cat "$@" | jq -s "map(.$field) | add // 0"
}

# new_db NAME: a fresh lock store for one phase; sets db (what doc takes)
# and db_flags (how lock-torture opens it).
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

# doc_count DB H|T: holders (H) or tickets (T) in the stored document:
# format 2 (src/locks/lock_doc_text.c) has a line per entry ("H ...",
# "T ..."; the MariaDB client prints newlines as \n); a JSON document
# (before the first change) is counted with jq.
doc_count() {
	local d
	d=$(doc "$1") || return 1
	if [ "${d:0:1}" = "{" ]; then
		jq "$([ "$2" = H ] && echo .holders || echo .queue) | length" <<<"$d"
	else
		sed 's/\\n/\n/g' <<<"$d" | grep -c "^$2 " || true
	fi
}

doc_is_empty() {
	[ "$(doc_count "$1" H)" = 0 ] && [ "$(doc_count "$1" T)" = 0 ] || { doc "$1" | diag; return 1; }
}

counters_total() {
	local f total=0
	for f in "$@"; do
		[ -e "$f" ] && total=$((total + 10#$(cat "$f")))
	done
	echo $total
}

# ---- 1. the torture ---------------------------------------------------------

new_db locks
mkdir "$tmp/witness" "$tmp/counters"
if "$LOCK_TORTURE" "${db_flags[@]}" --counter "$tmp/counters/c" --iterations 0 --names 1 --seed 0 \
	>"$tmp/init.out" 2>&1; then
	ok "a fresh $TEST_STORE lock store is created"
else
	not_ok "a fresh $TEST_STORE lock store is created"
	diag <"$tmp/init.out"
	bail "cannot create the store"
fi

start_broker locks
start=$(now_ms)
torture=()
for i in $(seq 1 $WORKERS); do
	"$LOCK_TORTURE" "${db_flags[@]}" --counter "$tmp/counters/c" --iterations $ITERATIONS --names $NAMES \
		--seed "$((1000 + i))" --shared-ratio 0.5 --invariant-dir "$tmp/witness" ${broker_flags[@]+"${broker_flags[@]}"} \
		>"$tmp/w$i.json" 2>"$tmp/w$i.err" &
	pids+=($!)
	torture+=($!)
done
if wait_for $TORTURE_DEADLINE all_gone "${torture[@]}"; then
	wall=$(($(now_ms) - start))
	collect_codes "${torture[@]}"
	if [[ "$codes" =~ =[1-9] ]]; then
		not_ok "$WORKERS workers x $ITERATIONS acquisitions all exit 0 (pid=status:$codes)"
		cat "$tmp"/w*.err | head -n 20 | diag
	else
		ok "$WORKERS workers x $ITERATIONS acquisitions all exit 0"
	fi
else
	wall=$(($(now_ms) - start))
	not_ok "$WORKERS workers x $ITERATIONS acquisitions finish within ${TORTURE_DEADLINE}s"
	for p in "${torture[@]}"; do kill -KILL "$p" 2>/dev/null; done
	cat "$tmp"/w*.err | diag
	doc "$db" | diag
fi

if grep -q "INVARIANT VIOLATION" "$tmp"/w*.err; then
	not_ok "no invariant violation ($(cat "$tmp"/w*.err | grep -c "INVARIANT VIOLATION") worker(s) saw one)"
elif find "$tmp/witness" -type f ! -name '*.fence' | grep -q .; then
	not_ok "no invariant violation (witness files left behind)"
	find "$tmp/witness" -type f ! -name '*.fence' | diag
else
	ok "no invariant violation"
fi

ops=$(sum ops "$tmp"/w*.json)
excl=$(sum exclusive_ops "$tmp"/w*.json)
counted=$(counters_total "$tmp"/counters/c.t:*)
if [ "$ops" = $((WORKERS * ITERATIONS)) ] && [ "$excl" -gt 0 ] && [ "$counted" = "$excl" ]; then
	ok "the counters add up to the exclusive operations ($counted)"
else
	not_ok "the counters add up to the exclusive operations (ops $ops, exclusive $excl, counted $counted)"
fi

if doc_is_empty "$db"; then
	ok "the lock document is empty after the torture"
else
	not_ok "the lock document is empty after the torture"
fi
brokered_ok "$tmp"/w*.json

conflicts=$(sum cas_conflicts "$tmp"/w*.json)
commits=$(sum cas_commits "$tmp"/w*.json)
noops=$(sum cas_noops "$tmp"/w*.json)
polls=$(sum polls "$tmp"/w*.json)
maxwait=$(cat "$tmp"/w*.json | jq -s 'map(.max_wait_ms) | max')
if [ "${ops:-0}" -gt 0 ]; then
	awk -v ops="$ops" -v excl="$excl" -v wall="$wall" -v conf="$conflicts" -v com="$commits" -v noops="$noops" \
		-v polls="$polls" -v maxwait="$maxwait" -v w=$WORKERS -v k=$NAMES -v be="$TEST_STORE" 'BEGIN {
		printf "# torture on %s: %d processes, %d names: %d ops (%d exclusive) in %.2f s wall = %.0f ops/s\n",
			be, w, k, ops, excl, wall / 1000, ops / (wall / 1000)
		printf "# retries/op (cas_conflicts/ops) %.4f, polls/op %.2f, longest wait %.1f ms\n",
			conf / ops, polls / ops, maxwait
		printf "# per op: %.2f document writes, %.2f write transactions that changed nothing (cas_noops)\n",
			com / ops, noops / ops
	}'
fi

# ---- 2. the kill test ------------------------------------------------------

new_db kill
kdb=$db
mkdir "$tmp/kwitness" "$tmp/kcounters"
start_broker kill
"$LOCK_TORTURE" "${db_flags[@]}" ${broker_flags[@]+"${broker_flags[@]}"} --hold-and-wait t:0 >"$tmp/holder.out" 2>"$tmp/holder.err" &
holder=$!
pids+=("$holder")
holding() { grep -q '^HOLDING' "$tmp/holder.out"; }
# Stop waiting as soon as the holder died.
holding_or_dead() { holding || gone "$holder"; }
wait_for $STEP_DEADLINE holding_or_dead
if holding; then
	ok "a holder takes t:0 and says so"
else
	not_ok "a holder takes t:0 and says so"
	diag <"$tmp/holder.err"
fi

victims=()
for i in $(seq 1 $KILL_WORKERS); do
	"$LOCK_TORTURE" "${db_flags[@]}" --counter "$tmp/kcounters/c" --iterations $KILL_ITERATIONS --names 1 \
		--seed "$((2000 + i))" --invariant-dir "$tmp/kwitness" ${broker_flags[@]+"${broker_flags[@]}"} >"$tmp/k$i.json" 2>"$tmp/k$i.err" &
	pids+=($!)
	victims+=($!)
done
# They must really be waiting behind the holder before it dies.
queued=0
all_queued() {
	queued=$(doc_count "$kdb" T 2>/dev/null)
	[ "${queued:-0}" -ge $KILL_WORKERS ]
}
wait_for $STEP_DEADLINE all_queued
if [ "${queued:-0}" -ge $KILL_WORKERS ] && alive $holder; then
	ok "$KILL_WORKERS workers queue behind the holder"
else
	not_ok "$KILL_WORKERS workers queue behind the holder (queue length ${queued:-?})"
	doc "$kdb" | diag
fi

killed_at=$(now_ms)
kill -KILL $holder
wait $holder 2>/dev/null # reap it: a zombie still counts as a live owner
if wait_for $STEP_DEADLINE all_gone "${victims[@]}"; then
	collect_codes "${victims[@]}"
	if [[ "$codes" =~ =[1-9] ]]; then
		not_ok "the workers finish after the holder is killed (pid=status:$codes)"
		cat "$tmp"/k*.err | diag
	else
		ok "the workers finish after the holder is killed ($(($(now_ms) - killed_at)) ms)"
	fi
else
	not_ok "the workers finish within ${STEP_DEADLINE}s after the holder is killed"
	for p in "${victims[@]}"; do kill -KILL "$p" 2>/dev/null; done
	cat "$tmp"/k*.err | diag
	doc "$kdb" | diag
fi

kexcl=$(sum exclusive_ops "$tmp"/k*.json)
kcounted=$(counters_total "$tmp/kcounters/c.t:0")
if [ "$kexcl" -gt 0 ] && [ "$kcounted" = "$kexcl" ] && ! grep -q "INVARIANT VIOLATION" "$tmp"/k*.err; then
	ok "after the kill the counter adds up ($kcounted) and no invariant broke"
else
	not_ok "after the kill the counter adds up (exclusive $kexcl, counted $kcounted) and no invariant broke"
	grep -h "INVARIANT VIOLATION" "$tmp"/k*.err | diag
fi

if doc_is_empty "$kdb"; then
	ok "the lock document is empty after the kill test (the dead holder was reaped)"
else
	not_ok "the lock document is empty after the kill test (the dead holder was reaped)"
fi
brokered_ok "$tmp"/k*.json

done_testing
