#!/usr/bin/env bash
# t0901-galera-locks.sh — issue 16's proof on MariaDB Galera: three boxd
# hosts (own host ids and state dirs) on a 3-node cluster
# (scripts/test-galera.sh, started here, stopped on exit), each connected
# to a different node first through a DSN list that names all three, with
# a lease of 30 s (T0901_LEASE); 3 × PER_HOST contended hold tasks on one app lock,
# posted to the three APIs in two batches:
#  - batch 1: node 1 (host a's node) is killed with -9 once a third of
#    it succeeded, and started again at once: it rejoins (state transfer)
#    while the tasks go on;
#  - batch 2, once node 1 is Synced again and host a restarted onto it
#    (its list names node 1 first): host a writes through node 1 again;
# and then:
#  - 0 lost: every task ends succeeded (none failed, none stuck);
#  - 0 violations: the exclusive windows the workers logged (each hold
#    task logs the wall-clock window it held its lock in, as in t0844)
#    never overlap;
#  - 0 stale locks: nothing held or queued, and the three nodes hold the
#    same lock document;
# and it reports how long the cluster stalled, when host a ran again
# after the kill, and how long node 1 took to rejoin.
# PER_HOST: T0901_PER_HOST (20 in CI: ~2 min on a quiet machine, most of it
# the two SSTs of the cluster's start; the issue's 3 × 200 runs by hand).
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
export BOXD_TEST_STORE=mysql
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

GALERA="$SOURCE_DIR/scripts/test-galera.sh"
[ -e /usr/lib/galera/libgalera_smm.so ] || skip_all "galera-4 is not installed (scripts/deps.sh --test)"
command -v mariabackup >/dev/null || skip_all "mariadb-backup is not installed (scripts/deps.sh --test)"

PER_HOST=${T0901_PER_HOST:-20}
LEASE=${T0901_LEASE:-30s}
HOLD=0.2          # seconds each task holds the lock
B1=$((PER_HOST / 2))        # batch 1 per host (the kill and the rejoin)
B2=$((PER_HOST - B1))       # batch 2 per host (after the rejoin)
KILL_AFTER=$B1              # a third of batch 1
LOCK=app:galera
TASKS=$((3 * PER_HOST))
# A deadline for a batch: generous per task (a hand-off between nodes
# under load takes up to a second), and the stall of a kill.
batch_deadline() { echo $((120 + 2 * 3 * $1)); }

plan 14
GDIR=$E2E_TMP/galera
on_exit "'$GALERA' stop '$GDIR'"
t0=$(now_ms)
out=$("$GALERA" start "$GDIR" 2>"$E2E_TMP/galera-start.log") || {
	diag <"$E2E_TMP/galera-start.log"
	bail "cannot start the Galera cluster"
}
diag "the cluster is up (3 nodes Synced, 2 joined by mariabackup SST) after $(($(now_ms) - t0)) ms"
declare -A NODE
for n in 1 2 3; do
	NODE[$n]=$(sed -n "s/^GALERA_DSN_$n=//p" <<<"$out")
done
# dsn_from K: the three nodes, node K first, one dsn line each.
dsn_from() {
	local k
	for k in $1 $(($1 % 3 + 1)) $((($1 + 1) % 3 + 1)); do
		echo "dsn = ${NODE[$k]}"
	done
}
node_sql() { # node_sql N SQL
	mariadb --no-defaults --socket="$GDIR/node$1/mysqld.sock" -uroot -N -B -e "$2"
}

declare -A HPID
host_start() { # host_start NAME NODE
	local name=$1 dir=$E2E_TMP/$1
	mkdir -p "$dir"
	{
		# A lease of 30 s, as ARCHITECTURE advises on Galera (renewed
		# every tenth of it). With the default 10 s, runs on a machine
		# with busy disks (stress-ng --hdd 2 --io 2) failed live waiters'
		# tasks: after the kill, host a's waiters took 10.5 s to reach
		# another node (4-5 s when the disks are quiet), and in other
		# runs one host's renewals did not land for 12 s around node 1's
		# rejoin; another host then freed their tickets.
		printf '[store]\nbackend = mysql\nlease = %s\n' "$LEASE"
		dsn_from "$2"
	} >"$dir.conf"
	echo "=== host $name (node $2 first)" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" BOXD_E2E_HOST="$name" BOXD_HOST_ID="host-$name" \
		"$BOXD" --config "$dir.conf" serve --state-dir "$dir" --stop-grace 2s >>"$DAEMON_LOG" 2>&1 &
	HPID[$name]=$!
	on "$name"
	wait_for 30 daemon_answers || bail "host $name does not answer"
}
on() { SOCK=$E2E_TMP/$1/boxd.sock; }
ran_on() { # ran_on ID: the host whose worker ran task ID
	local h
	for h in a b c; do
		[ -e "$E2E_TMP/$h/logs/tasks/$1.log" ] && { echo "$h"; return 0; }
	done
	echo none
}

host_start a 1
host_start b 2
host_start c 3
# The first host migrated the schema on node 1; every node has it.
conns() { node_sql "$1" "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = 'boxd'"; }
every_node_serves() { [ "$(conns 1)" -gt 0 ] && [ "$(conns 2)" -gt 0 ] && [ "$(conns 3)" -gt 0 ]; }
check "each node serves boxd connections (host a on 1, b on 2, c on 3)" wait_for 30 every_node_serves
diag "boxd connections per node: $(conns 1) $(conns 2) $(conns 3)"

# ---- the tasks, posted to the three APIs ----------------------------------------
# Each batch behind a gate (a long hold on the lock, stopped once all are
# posted), so that what follows comes while most of them hold or wait.
post_batch() { # post_batch PER_HOST
	local gate h
	on a
	gate=$(hold_task 600 "$LOCK") || bail "cannot create a gate"
	wait_for 60 state_is "$gate" running || bail "the gate does not run"
	GATES+=" $gate"
	for _ in $(seq 1 "$1"); do
		for h in a b c; do
			on "$h"
			hold_task "$HOLD" "$LOCK" >/dev/null || bail "cannot create a hold task on $h"
		done
	done
	on a
	req POST "/tasks/$gate/stop"
	on b
}
GATES=""
done_count() { api GET '/tasks?state=succeeded&type=hold&per_page=1' | jq .total; }
enough_done() { [ "$(done_count)" -ge "$KILL_AFTER" ]; }
all_final() { [ "$(api GET '/tasks?state=active&type=hold&per_page=1' 2>/dev/null | jq .total)" = 0 ]; }

post_batch "$B1"
wait_for "$(batch_deadline "$B1")" enough_done || bail "the tasks do not progress"

# ---- kill -9 of node 1, and its rejoin ----------------------------------------------
before=$(done_count)
"$GALERA" node-kill "$GDIR" 1
kill_ms=$(now_ms)
diag "killed node 1 with $before of $((3 * B1)) tasks of batch 1 done"
# Started again at once: it rejoins while the survivors run the tasks
# (node-start returns once it is Synced, or fails after its deadline).
"$GALERA" node-start "$GDIR" 1 >"$E2E_TMP/rejoin.log" 2>&1 &
rejoin_pid=$!
on_exit "kill $rejoin_pid"
check "0 stuck: every task of batch 1 ends" wait_for "$(batch_deadline "$B1")" all_final
rejoin_rc=0
wait "$rejoin_pid" || rejoin_rc=$?
rejoin_ms=$(($(now_ms) - kill_ms))
node1_synced() {
	[ "$(node_sql 1 "SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'" | cut -f2)" = Synced ] &&
		[ "$(node_sql 1 "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'" | cut -f2)" = 3 ]
}
check "node 1 rejoined: Synced in a cluster of 3 again" node1_synced
how="IST: only the writes it missed"
grep -q 'SST completed on joiner' "$GDIR/node1/mysqld.log" && how="a whole SST"
diag "node 1 rejoined ($how), node-start rc $rejoin_rc, Synced at most $rejoin_ms ms after the kill"
[ "$rejoin_rc" = 0 ] || diag <"$E2E_TMP/rejoin.log"

# ---- batch 2: host a back on node 1 ---------------------------------------------------
# Host a reconnected to node 2 after the kill and stays there; restarted
# (no task of its runs now), it connects to node 1 first again.
kill -TERM "${HPID[a]}"
a_stopped() { ! kill -0 "${HPID[a]}" 2>/dev/null; }
wait_for 30 a_stopped || bail "host a does not stop"
wait "${HPID[a]}" 2>/dev/null
host_start a 1
check "each node serves boxd connections again (host a on the rejoined node 1)" wait_for 30 every_node_serves
rejoined_ms=$(now_ms)
post_batch "$B2"
check "0 stuck: every task of batch 2 ends" wait_for "$(batch_deadline "$B2")" all_final

all_answer() {
	local h rc=0
	for h in a b c; do
		on "$h"
		daemon_answers || rc=1
	done
	on b
	return "$rc"
}
check "the three hosts answer" all_answer
all=$(all_tasks)
holds=$(jq -c --arg g "$GATES" '($g | split(" ") | map(select(. != "") | tonumber)) as $gates
	| [.[] | select(.type == "hold" and (.id as $id | $gates | index($id) | not))]' <<<"$all")
diag "tasks: $(jq -c 'group_by(.state) | map({(.[0].state): length}) | add' <<<"$holds")"
equal "all $TASKS tasks exist" "$(jq length <<<"$holds")" "$TASKS"
equal "0 lost: every task succeeded" "$(jq '[.[] | select(.state != "succeeded")] | length' <<<"$holds")" 0
jq -c '.[] | select(.state != "succeeded") | {id, state, error}' <<<"$holds" | head -n 5 | diag

# ---- exclusion, from the workers' own windows ---------------------------------------
windows=$E2E_TMP/windows
: >"$windows"
for id in $(jq -r '.[].id' <<<"$holds"); do
	h=$(ran_on "$id")
	[ "$h" = none ] && continue
	sed -n 's/^hold: held from \([0-9]*\) to \([0-9]*\)$/\1 \2/p' "$E2E_TMP/$h/logs/tasks/$id.log" |
		while read -r a b; do echo "$a $b $id $h"; done >>"$windows"
done
equal "every task logged its window" "$(wc -l <"$windows")" "$TASKS"
violations=$(sort -k1,1n "$windows" | awk '
	$1 < end { v++; ms += ($2 < end ? $2 : end) - $1; print "overlap: task " $3 " (" $4 ") and task " prev >"/dev/stderr" }
	$2 > end { end = $2; prev = $3 " (" $4 ")" }
	END { printf "%d %d\n", v + 0, ms + 0 }' 2>"$E2E_TMP/overlaps")
diag <"$E2E_TMP/overlaps"
diag "exclusive windows overlapping: ${violations% *} (for ${violations#* } ms in all)"
equal "0 violations: no two exclusive windows on $LOCK overlap" "${violations% *}" 0
equal "0 stale locks: nothing held or queued" "$(api GET /locks | jq -c '[(.holders | length), (.queue | length)]')" "[0,0]"
lock_rows() { # lock_rows N: the lock rows as node N has them (causal read)
	node_sql "$1" "SET SESSION wsrep_sync_wait = 1; SELECT id, version, MD5(data) FROM boxd.locks ORDER BY id"
}
same_doc() {
	local n v1
	v1=$(lock_rows 1) && [ -n "$v1" ] || return 1
	for n in 2 3; do
		[ "$(lock_rows "$n")" = "$v1" ] || return 1
	done
}
check "the three nodes hold the same lock rows" wait_for 30 same_doc

per_host=$(awk '{ print $4 }' "$windows" | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
diag "ran on: $per_host"
a_after=$(awk -v k="$kill_ms" '$4 == "a" && $1 > k { print $1 }' "$windows" | sort -n | head -n 1)
check "host a (node 1 first) reconnected and ran tasks after the kill" test -n "$a_after"
# Which host runs a task is a race (every host claims any unplaced task,
# and the first claim to commit wins), so "host a ran tasks after the
# rejoin" is not something to check; that host a writes through the
# rejoined node is, by its heartbeat (every 2 s) read on node 1.
after_rejoin=$(awk -v k="$rejoined_ms" '$1 > k { n[$4]++ } END { printf "a:%d b:%d c:%d", n["a"], n["b"], n["c"] }' "$windows")
diag "ran after the rejoin: $after_rejoin"
beat_of_a() { node_sql 1 "SET SESSION wsrep_sync_wait = 1; SELECT heartbeat_at FROM boxd.hosts WHERE id = 'host-a'"; }
beat0=$(beat_of_a)
beat_advanced() { [ "$(beat_of_a)" -gt "${beat0:-0}" ]; }
check "host a writes through the rejoined node 1 (its heartbeat advances there)" wait_for 30 beat_advanced
# The cluster's stall: the longest pause between one window's end and the
# next one's start across the kill (in batch 1).
stall=$(sort -k1,1n "$windows" | awk -v k="$kill_ms" -v r="$rejoined_ms" '
	NR > 1 && $1 > k && $1 < r && prev_end < k + 30000 { gap = $1 - prev_end; if (gap > max) max = gap }
	{ prev_end = $2 } END { print max + 0 }')
diag "longest pause between windows after the kill: $stall ms; host a's first window after the kill began $((${a_after:-$kill_ms} - kill_ms)) ms after it"
diag "lease warnings: $(grep -c 'cannot renew its lock lease' "$DAEMON_LOG" "$E2E_TMP"/?/logs/tasks/*.log 2>/dev/null | awk -F: '{ n += $NF } END { print n + 0 }'), reaped: $(grep -c 'freed the locks of pid' "$DAEMON_LOG" "$E2E_TMP"/?/logs/tasks/*.log 2>/dev/null | awk -F: '{ n += $NF } END { print n + 0 }')"

done_testing
