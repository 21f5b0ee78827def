#!/usr/bin/env bash
# t0844-store-restart.sh — kill -9 of the database server (MariaDB or
# PostgreSQL, BOXD_TEST_STORE) in the middle of TASKS contended hold tasks,
# restarted DOWN_S seconds later:
#  - 0 stuck: every task ends within a deadline after the server is back;
#  - 0 failed: the outage fails no task (workers and the daemon retry);
#  - 0 violations: the exclusive windows of the workers (each hold task
#    logs the wall-clock window in which it held its lock) never overlap;
#  - no lock is left behind;
# and it reports how long recovery took. The server is the test's own
# (scripts/test-env.sh db-start), so killing it disturbs no other test.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$TEST_STORE" = sqlite ]; then
	skip_all "a database server is killed: run with BOXD_TEST_STORE=mysql or postgres"
fi
need_test_env BOXD_TEST_ENV_DIR
TESTENV="$SOURCE_DIR/scripts/test-env.sh"

TASKS=${T0844_TASKS:-150}
LOCKS=6         # exclusive lock names the tasks contend for
HOLD=1          # seconds each task holds its lock
ACTIVE_MAX=40   # tasks active at once (posted ahead, then topped up)
DOWN_S=5        # the server is down this long (the fault)
KILL_AFTER=20   # kill once this many tasks succeeded

plan 8
PDIR=$E2E_TMP/db
mkdir -p "$PDIR"
chmod 0711 "$E2E_TMP" # postgres runs as its own user and must reach $PDIR
on_exit "'$TESTENV' db-stop '$PDIR'"
db_up() {
	local out
	out=$("$TESTENV" db-start "$TEST_STORE" "$PDIR") || return 1
	DB_PGID=$(sed -n 's/^DB_PGID=//p' <<<"$out")
	E2E_DSN=$(sed -n 's/^DB_DSN=//p' <<<"$out")
}
db_up || bail "cannot start a private $TEST_STORE server"
# A holder whose lease could run out during the outage must stop acting
# (worker_lease.h; t0845 tests that). Riding out an outage needs a lease
# longer than the outage: the default 10 s rides out 8.5 s, and the server
# takes up to 10 s to come back after kill -9 on a loaded machine. So 30 s.
printf '[store]\nlease = 30s\n' >"$E2E_TMP/boxd.conf"
daemon_start --config "$E2E_TMP/boxd.conf" --stop-grace 2s

# The poster keeps at most ACTIVE_MAX tasks active (this machine has two
# cores: 150 workers polling at once would measure the machine, not boxd)
# until TASKS are created. A POST that fails (the server is down) is sent
# again with the same Idempotency-Key: never two tasks for one request.
post_one() { # I: POST task I with its own Idempotency-Key; prints the status
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" -X POST \
		-H "Idempotency-Key: t0844-$$-$1" -H 'Content-Type: application/json' \
		--data-binary "{\"type\":\"hold\",\"args\":{\"locks\":[{\"name\":\"app:r$(($1 % LOCKS))\"}],\"seconds\":$HOLD}}" \
		http://boxd/api/v1/tasks
}
poster() { # FIRST: post tasks FIRST..TASKS
	local i=$1 st active out
	while [ $i -le "$TASKS" ]; do
		out=$(curl -s --max-time 10 --unix-socket "$SOCK" 'http://boxd/api/v1/tasks?state=active&per_page=1')
		active=999
		[[ $out =~ \"total\":([0-9]+) ]] && active=${BASH_REMATCH[1]}
		if [ "$active" -ge $ACTIVE_MAX ]; then
			sleep 0.1
			continue
		fi
		st=$(post_one "$i")
		if [ "$st" = 202 ]; then
			echo "$i" >"$E2E_TMP/posted"
			i=$((i + 1))
		else
			echo "$st" >>"$E2E_TMP/post-errors"
			sleep 0.2
		fi
	done
}
# A head start: ACTIVE_MAX tasks posted behind one gate per lock (a long
# hold, stopped once they wait), so that many workers hold or wait when
# the server dies.
gates=()
for l in $(seq 0 $((LOCKS - 1))); do
	gates+=("$(hold_task 600 "app:r$l")") || bail "cannot create a gate"
done
for i in $(seq 1 $ACTIVE_MAX); do
	[ "$(post_one "$i")" = 202 ] || bail "cannot create hold task $i"
done
for g in "${gates[@]}"; do req POST "/tasks/$g/stop"; done
poster $((ACTIVE_MAX + 1)) &
poster_pid=$!
on_exit "kill $poster_pid"
done_count() { api GET '/tasks?state=succeeded&type=hold&per_page=1' | jq .total; }
# (the gates end cancelled: they are not counted)
enough_done() { [ "$(done_count)" -ge $KILL_AFTER ]; }
wait_for 60 enough_done || bail "the tasks do not progress"

# ---- the fault --------------------------------------------------------------
before=$(done_count)
active_at_kill=$(api GET '/tasks?state=active&type=hold&per_page=1' | jq .total)
kill -KILL -- "-$DB_PGID"
kill_ms=$(now_ms)
diag "killed the $TEST_STORE server (process group $DB_PGID) with $before of $TASKS tasks done, $active_at_kill active"
while [ "$(now_ms)" -lt $((kill_ms + DOWN_S * 1000)) ]; do sleep 0.2; done
db_up || bail "cannot restart the $TEST_STORE server"
up_ms=$(now_ms)
diag "the server answers again $((up_ms - kill_ms)) ms after the kill"

# ---- afterwards -----------------------------------------------------------------
wait "$poster_pid"
diag "POSTs answered other than 202 (sent again): $(sort "$E2E_TMP/post-errors" 2>/dev/null | uniq -c | tr '\n' ' ')"
all_final() { [ "$(api GET '/tasks?state=active&type=hold&per_page=1' 2>/dev/null | jq .total)" = 0 ]; }
check "0 stuck: every task ends within 120 s of the server's return" wait_for 120 all_final
end_ms=$(now_ms)
check "the daemon is up" daemon_answers
all=$(all_tasks)
holds=$(jq -c '[.[] | select(.type == "hold" and .args.seconds != 600)]' <<<"$all")
diag "tasks: $(jq -c 'group_by(.state) | map({(.[0].state): length}) | add' <<<"$holds")"
equal "all $TASKS tasks exist" "$(jq length <<<"$holds")" "$TASKS"
failed=$(jq '[.[] | select(.state != "succeeded")] | length' <<<"$holds")
equal "0 failed" "$failed" 0
jq -c '.[] | select(.state != "succeeded") | {id, state, error}' <<<"$holds" | head -n 5 | diag
# ... and what their workers logged: why (the log is removed with the test's dir)
for id in $(jq -r '.[] | select(.state != "succeeded") | .id' <<<"$holds" | head -n 3); do
	tail -n 8 "$STATE/logs/tasks/$id.log" 2>/dev/null | sed "s/^/task $id log: /" | diag
done

first_after=$(jq -r --argjson up "$up_ms" '[.[] | .finishedAt] | map(select(. != null))' <<<"$holds" |
	jq -r '.[]' | while read -r f; do ms_of "$f"; done | sort -n | awk -v up="$up_ms" '$1 > up { print $1; exit }')
diag "recovery: first task finished $((${first_after:-$up_ms} - up_ms)) ms after the server was back;" \
	"all done $((end_ms - up_ms)) ms after (the remaining tasks' hold time included)"
grep -h 'store available again after' "$DAEMON_LOG" | sed 's/^/daemon: /' | diag
outage_ms=$(grep -ho 'store available again (.*lasted [0-9]* ms' "$STATE"/logs/tasks/*.log 2>/dev/null |
	sed 's/.*lasted \([0-9]*\) ms/\1/' | sort -n | tail -n 1)
diag "the longest outage a worker rode out: ${outage_ms:-none} ms"

# ---- exclusion, from the workers' own windows ---------------------------------------
windows=$E2E_TMP/windows
: >"$windows"
for id in $(jq -r '.[].id' <<<"$holds"); do
	lock=$(jq -r --argjson id "$id" '.[] | select(.id == $id) | .args.locks[0].name' <<<"$holds")
	sed -n 's/^hold: held from \([0-9]*\) to \([0-9]*\)$/\1 \2/p' "$STATE/logs/tasks/$id.log" |
		while read -r a b; do echo "$lock $a $b $id"; done >>"$windows"
done
equal "every task logged its window" "$(wc -l <"$windows")" "$TASKS"
violations=$(sort -k1,1 -k2,2n "$windows" | awk '
	$1 != lock { lock = $1; end = 0; prev = "" }
	$2 < end { v++; ms += ($3 < end ? $3 : end) - $2; print "overlap: task " $4 " and task " prev " on " lock >"/dev/stderr" }
	$3 > end { end = $3; prev = $4 }
	END { printf "%d %d\n", v + 0, ms + 0 }' 2>"$E2E_TMP/overlaps")
diag <"$E2E_TMP/overlaps"
diag "exclusive windows overlapping: ${violations% *} (for ${violations#* } ms in all)"
equal "0 violations: no two exclusive windows on one lock overlap" "${violations% *}" 0
equal "no lock is left behind" "$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"
check "workers said the store was unavailable, and when it was back" \
	grep -q 'store available again' "$STATE"/logs/tasks/*.log

done_testing
