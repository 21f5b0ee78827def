#!/usr/bin/env bash
# t0700-multihost.sh — two boxd "hosts" on one MariaDB database: instances a
# and b, each with its own BOXD_HOST_ID, state dir, socket and workers, one
# fresh database of the test env's MariaDB, [store] lease = 3s.
#
#  1. Contention: hold tasks on app:x posted alternately to a's and b's API
#     run one at a time. A hold task holds app:x from before its startedAt
#     until after startedAt + its seconds, and startedAt is written only
#     once the locks are taken; so with mutual exclusion the windows
#     [startedAt, startedAt + seconds] of the tasks never overlap. (Not
#     [startedAt, finishedAt]: a worker frees its locks before it records
#     finishedAt, so the next holder may start a few ms earlier.)
#  2. kill -9 of b with its workers while b's task holds app:x and a's task
#     waits for it: b's lease (in the database's clock) is renewed by b's
#     worker while it lives; a's task acquires only after it expired —
#     checked in the database's clock (its grant time `at` is after b's
#     last lease expiry) and in local wall time (its startedAt is not
#     before the kill + lease − one renewal period − a margin) — and
#     within lease + a few seconds.
#     b's task, which no one else could finish, is failed (crashed) with a
#     message naming host b: once b's heartbeat is gone too (a reaped
#     lease alone is not enough: a live host's worker may only be late),
#     by a's sweep of gone hosts' tasks (task_sweep_gone_hosts()).
#  3. b again, under libfaketime with its clock a day ahead: while a's task
#     holds app:x with a live lease, b's task keeps waiting for it (leases
#     expire by the database's clock, never by b's), and gets it once a's
#     task ends.
#
# Which host runs a task: both schedulers claim queued tasks. To place a
# task on one host, the test stops the other daemon (SIGSTOP) just while it
# posts the task and until the task has a worker pid, far shorter than a
# lease. The worker's log file shows where it ran.
#
# Needs BOXD_TEST_MYSQL_DSN (the test env) and, for part 3, libfaketime.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
if [ -z "${BOXD_TEST_MYSQL_DSN:-}" ]; then
	echo "1..0 # SKIP BOXD_TEST_MYSQL_DSN is not set (test env not started; run make check)"
	exit 0
fi
export BOXD_TEST_STORE=mysql
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

LEASE_MS=3000
RENEW_MS=1000  # a holder renews its own lease at least this often (worker_lease.c)
MARGIN_MS=700  # for scheduling delays of the renewal and of this script
FAKETIME_LIB=${FAKETIME_LIB:-/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1}
HOLDS=8        # part 1: tasks of HOLD_S seconds each
HOLD_S=1

plan 18

DB=$(store_db_create) || bail "cannot create a MariaDB database"
on_exit store_db_drop "$DB"
DSN=$(store_dsn "$DB")

# ---- the two instances -------------------------------------------------

declare -A HPID # host -> daemon pid

# host_start NAME [ENV=VALUE...]: start instance NAME (host id host-NAME,
# state dir $E2E_TMP/NAME) with ENV in its environment, and wait until its
# API answers. Its processes carry BOXD_E2E_HOST=$E2E_TAG-NAME (this run's
# only: another test's host b is not ours to kill).
host_start() {
	local name=$1 dir=$E2E_TMP/$1
	shift
	mkdir -p "$dir"
	cat >"$dir.conf" <<-CONF
		[store]
		backend = mysql
		dsn = $DSN
		lease = ${LEASE_MS}ms
	CONF
	echo "=== host $name: boxd serve $*" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" BOXD_E2E_HOST="$E2E_TAG-$name" BOXD_HOST_ID="host-$name" "$@" \
		"$BOXD" --config "$dir.conf" serve --state-dir "$dir" --stop-grace 2s >>"$DAEMON_LOG" 2>&1 &
	HPID[$name]=$!
	on "$name"
	if ! wait_for 15 daemon_answers; then
		diag <"$DAEMON_LOG"
		bail "host $name does not answer"
	fi
}

# on NAME: the API calls that follow (req, api, task...) go to host NAME.
on() { SOCK=$E2E_TMP/$1/boxd.sock; }

# host_pids NAME: the daemon of NAME, its workers and their children.
host_pids() { grep -slz "^BOXD_E2E_HOST=$E2E_TAG-$1\$" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; }

# ran_on ID: the host whose worker ran task ID (its log is in that state dir).
ran_on() {
	local h
	for h in a b; do
		[ -e "$E2E_TMP/$h/logs/tasks/$1.log" ] && { echo "$h"; return 0; }
	done
	echo none
}

has_pid() { [ "$(task "$1" .pid)" != null ]; }

# post_on NAME OTHER SECONDS LOCK: create a hold task through NAME's API
# while OTHER's daemon is stopped, so that NAME claims it; prints its id.
post_on() {
	local id rc=0
	kill -STOP "${HPID[$2]}"
	on "$1"
	id=$(hold_task "$3" "$4") && wait_for 10 has_pid "$id" || rc=1
	kill -CONT "${HPID[$2]}"
	[ $rc = 0 ] || return 1
	echo "$id"
}

# (the MariaDB client prints the document's newlines as \n)
doc() { store_sql "$DB" "SELECT data FROM locks WHERE id = 1" | sed 's/\\n/\n/g'; }
# holder_field TASK FIELD: a field (at, lease, host) of TASK's holding, read
# from the stored document (format 2, src/locks/lock_doc_text.c: "@HOST"
# lines, then "H NAME MODE TASK HOST_INDEX PID START AT LEASE").
holder_field() {
	doc | awk -v t="$1" -v f="$2" '
		/^@/ { hosts[nh++] = substr($0, 2); next }
		/^H / && $4 == t { print (f == "at" ? $8 : f == "lease" ? $9 : hosts[$5]); exit }'
}

host_start a
host_start b
on a; ha=$(api GET /status | jq -r .host)
on b; hb=$(api GET /status | jq -r .host)
equal "two instances on one database, with their own host ids" "$ha $hb" "host-a host-b"

# ---- 1. contention through both APIs ------------------------------------

ids=()
for i in $(seq 1 $HOLDS); do
	if [ $((i % 2)) = 1 ]; then on a; else on b; fi
	ids+=("$(hold_task $HOLD_S app:x)") || bail "cannot create a hold task"
done
all_succeeded() {
	local id
	for id in "${ids[@]}"; do state_is "$id" succeeded || return 1; done
}
on a
check "$HOLDS hold tasks on app:x, posted alternately to a and b, all succeed" \
	wait_for $((HOLDS * HOLD_S * 4 + 30)) all_succeeded
hosts=$(for id in "${ids[@]}"; do ran_on "$id"; done | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
diag "ran on: $hosts"
both_ran() { [[ "$hosts" == *a:* && "$hosts" == *b:* ]]; }
check "both hosts ran some of them" both_ran
# startedAt (ms) of every task, in order.
starts=$(for id in "${ids[@]}"; do ms_of "$(task "$id" .startedAt)"; done | sort -n)
gaps=$(awk -v hold=$((HOLD_S * 1000)) 'NR > 1 { printf "%d ", $1 - prev - hold } { prev = $1 }' <<<"$starts")
diag "start-to-start gaps minus the hold time (ms): $gaps"
no_overlap() { [ -n "$gaps" ] && [[ "$gaps" != *-* ]]; }
check "mutual exclusion: the windows [startedAt, startedAt + ${HOLD_S}s] never overlap" no_overlap

# ---- 2. kill -9 of b while it holds app:x ------------------------------

KB=$(post_on b a 600 app:x) || bail "cannot place a task on b"
on b
wait_for 15 state_is "$KB" running || bail "task $KB does not run on b"
KA=$(post_on a b 5 app:x) || bail "cannot place a task on a"
on a
check "a's task waits for app:x, held by b's task" wait_for 15 state_is "$KA" waiting
equal "the tasks ran on b and a" "$(ran_on "$KB") $(ran_on "$KA")" "b a"
lease1=$(holder_field "$KB" lease)
now1=$(store_now_ms "$DB")
sleep 1.5
lease2=$(holder_field "$KB" lease)
diag "b's lease: $((lease1 - now1)) ms ahead of the database's clock; renewed by $((lease2 - lease1)) ms in 1.5 s"
renewed() { [ $((lease1 - now1)) -gt 0 ] && [ $((lease1 - now1)) -le "$LEASE_MS" ] && [ "$lease2" -gt "$lease1" ]; }
check "b's holding has a lease in the database's clock that b's worker renews" renewed

victims=$(host_pids b)
kill_ms=$(now_ms)
{
	# shellcheck disable=SC2086
	kill -KILL $victims
	kill_db=$(store_now_ms "$DB")
	wait "${HPID[b]}" # b's daemon is our child: reap it (quietly)
} 2>/dev/null
gone_all() {
	local p
	for p in $victims; do gone "$p" || return 1; done
}
wait_for 5 gone_all || bail "b's processes do not die"
# Nothing of b writes any more: this is its last lease.
last_lease=$(holder_field "$KB" lease)
diag "killed b (pids ${victims//$'\n'/ }); its last lease ends $((last_lease - kill_db)) ms after the kill (database clock)"
check "a's task runs after b's lease expired" wait_for $((LEASE_MS / 1000 + 15)) state_is "$KA" running
at=$(holder_field "$KA" at)
started=$(ms_of "$(task "$KA" .startedAt)")
diag "a's grant: $((at - last_lease)) ms after b's lease expired (database clock); startedAt $((started - kill_ms)) ms after the kill (local clock)"
check "not before b's lease expired, by the database's clock" test "${at:-0}" -gt "$last_lease"
check "not before the kill + lease - one renewal period - ${MARGIN_MS} ms, by the local clock" \
	test "$started" -ge $((kill_ms + LEASE_MS - RENEW_MS - MARGIN_MS))
check "within the lease + 3 s of the kill" test "$started" -le $((kill_ms + LEASE_MS + 3000))
failed_by_a() { [ "$(task "$KB" '[.state, .error.code] | join(" ")')" = "failed crashed" ]; }
check "b's task is failed (crashed) once b's heartbeat is gone" wait_for 40 failed_by_a
msg=$(task "$KB" .error.message)
diag "its error.message: $msg"
names_b() { [[ "$msg" == *host-b* ]]; }
check "with a message naming host b" names_b
check "a's task succeeds" wait_for 20 state_is "$KA" succeeded

# ---- 3. b with its clock a day ahead -----------------------------------

if [ ! -e "$FAKETIME_LIB" ]; then
	for d in "b's clock is a day ahead" "b's task waits for a's task" "b does not steal a's live lease" \
		"b's task gets app:x once a's task ends"; do
		skip "$d" "no libfaketime ($FAKETIME_LIB; Debian package faketime)"
	done
	done_testing
fi

# a's task first (b is down), then b under libfaketime.
on a
HA=$(hold_task 20 app:x) || bail "cannot create a's task"
wait_for 15 state_is "$HA" running || bail "task $HA does not run"
host_start b FAKETIME=+1d LD_PRELOAD="$FAKETIME_LIB"
TB=$(post_on b a 0 app:x) || bail "cannot place a task on b"
on a
created=$(ms_of "$(task "$TB" .createdAt)")
diag "b's task createdAt is $(((created - $(now_ms)) / 60000)) min ahead of the local clock"
check "b's clock is a day ahead (its task's createdAt)" test "$created" -gt $(($(now_ms) + 23 * 3600 * 1000))
b_waits() { state_is "$TB" waiting && [ "$(task "$TB" .waitingFor.heldBy)" = "$HA" ] && [ "$(ran_on "$TB")" = b ]; }
check "b's task waits for a's task" wait_for 10 b_waits
# Longer than a lease and a few reaps of b's worker and daemon.
until=$(($(now_ms) + LEASE_MS + 3000))
stolen=
while [ "$(now_ms)" -lt $until ]; do
	h=$(holder_of app:x)
	s=$(task_state "$TB")
	if [ "$h" != "$HA" ] || [ "$s" != waiting ]; then
		stolen="holder '$h', b's task $s"
		break
	fi
	sleep 0.2
done
check "for lease + 3 s, b does not steal a's live lease${stolen:+ ($stolen)}" test -z "$stolen"
both_done() { state_is "$HA" succeeded && state_is "$TB" succeeded; }
check "b's task gets app:x once a's task ends (a's succeeded)" wait_for 30 both_done

done_testing
