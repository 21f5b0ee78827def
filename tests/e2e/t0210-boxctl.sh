#!/usr/bin/env bash
# t0210-boxctl.sh — boxctl against a real boxd (SQLite, unix socket).
#
# Starts its own daemon in a temp state dir, then: status; a `hold` task on
# app:x and a second one that waits for it (task list, task show, locks);
# stop the first → the second finishes; task wait exit codes (0 succeeded,
# 1 stopped, 4 timeout); --json through jq; usage errors (exit 2); API errors
# (exit 1); a daemon that is not there (exit 3); task logs -f of a short task.
#
# Needs: BOXD and BOXCTL (from tests/meson.build), jq. Every wait has a
# deadline; the trap kills the daemon and every worker it started, and
# removes the temp dir, also on failure.
set -u

DEADLINE=20 # seconds for each wait

: "${BOXD:?BOXD must point at the boxd binary}"
: "${BOXCTL:?BOXCTL must point at the boxctl binary}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t0210-boxctl.XXXXXX") || exit 1
sock=$tmp/boxd.sock
daemon=
bg_pids=()

export BOXD_SOCKET=$sock
unset BOXD_TOKEN

# Worker pids of the tasks still active, asked from the API while it runs.
worker_pids() {
	"$BOXCTL" --json task list --state active --per-page 1000 2>/dev/null |
		jq -r '.tasks[] | .pid // empty' 2>/dev/null
}

stop_daemon() {
	[ -n "$daemon" ] || return 0
	kill -TERM "$daemon" 2>/dev/null
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$daemon" 2>/dev/null
	wait "$daemon" 2>/dev/null
	daemon=
}

cleanup() {
	local p
	for p in "${bg_pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	# Workers run in their own process groups and outlive the daemon:
	# kill them by the pids the API reports, then by their command line
	# (which names this state dir) for any the API could not report.
	for p in $(worker_pids); do
		kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
	done
	stop_daemon
	pkill -KILL -f -- "--state-dir $tmp " 2>/dev/null
	wait 2>/dev/null
	# The daemon makes its data roots shared bind mounts; they outlive it.
	awk -v d="$tmp" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION CONDITION-EXIT-CODE; returns the condition
	if [ "$2" = 0 ]; then ok "$1"; else not_ok "$1"; fi
	return "$2"
}
diag() { sed 's/^/# /'; }
bail() {
	echo "Bail out! $*"
	[ -f "$tmp/boxd.log" ] && diag <"$tmp/boxd.log"
	exit 1
}

# wait_until CMD...: run CMD every 50 ms until it succeeds or DEADLINE passes.
wait_until() {
	local until=$((SECONDS + DEADLINE))
	until "$@"; do
		[ $SECONDS -ge $until ] && return 1
		sleep 0.05
	done
}

# wait_exit PID: wait (with the deadline) until the background PID ends;
# sets $rc to its exit code (124 if it did not end in time).
wait_exit() {
	local until=$((SECONDS + DEADLINE))
	while kill -0 "$1" 2>/dev/null; do
		if [ $SECONDS -ge $until ]; then
			rc=124
			return 1
		fi
		sleep 0.05
	done
	wait "$1"
	rc=$?
}

# run CMD...: run boxctl, keeping stdout in $out, stderr in $err, status in $rc.
run() {
	"$BOXCTL" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

show() { { echo "exit $rc"; echo "stdout:"; echo "$out"; echo "stderr:"; echo "$err"; } | diag; }

echo "1..24"
command -v jq >/dev/null || bail "jq is needed"

# ---- the daemon ----------------------------------------------------------------
"$BOXD" --state-dir "$tmp" serve >"$tmp/boxd.log" 2>&1 &
daemon=$!
answers() { [ -S "$sock" ] && "$BOXCTL" status >/dev/null 2>&1; }
if wait_until answers; then ok "boxd starts and answers on $sock"; else bail "boxd did not answer within ${DEADLINE}s"; fi

# ---- status --------------------------------------------------------------------
version=$("$BOXD" version | awk '{print $2}')
run status
echo "$out" | grep -q "boxd $version" && [ $rc = 0 ]
check "status shows the version ($version)" $? || show

run status --json
[ $rc = 0 ] && [ "$(echo "$out" | jq -r .version)" = "$version" ] && [ "$(echo "$out" | jq -r .store.backend)" = sqlite ]
check "status --json parses with jq (version, store backend)" $?

# ---- a holder and a waiter -------------------------------------------------------
run lock hold app:x --for 30
first=$(echo "$out" | sed -n 's/^task \([0-9]*\) holds app:x (exclusive) for 30s$/\1/p')
[ $rc = 0 ] && [ -n "$first" ]
check "lock hold app:x --for 30 creates task ${first:-?}" $?
[ -n "$first" ] || { show; bail "no task id"; }

listed_running() { "$BOXCTL" task list | grep -Eq "^$first +hold +- +running "; }
wait_until listed_running
check "task list shows task $first running" $?

"$BOXCTL" lock hold app:x --for 0 --wait >"$tmp/second.out" 2>"$tmp/second.err" &
second_pid=$!
bg_pids+=("$second_pid")
second_started() { grep -q '^task [0-9]* holds app:x' "$tmp/second.out" 2>/dev/null; }
wait_until second_started
second=$(sed -n 's/^task \([0-9]*\) holds app:x.*/\1/p' "$tmp/second.out")
[ -n "$second" ]
check "lock hold app:x --for 0 --wait (in the background) creates task ${second:-?}" $?
[ -n "$second" ] || bail "no second task id"

shows_waiting() { "$BOXCTL" task show "$second" | grep -qF "waiting for app:x (held by task $first)"; }
wait_until shows_waiting
check "task show $second: waiting for app:x (held by task $first)" $?

run locks
echo "$out" | grep -Eq "^app:x +exclusive +task $first " && echo "$out" | grep -Eq "^[0-9]+ +task $second +app:x \(exclusive\)"
check "locks shows app:x held by task $first and task $second queued" $? || show

run --json locks
[ $rc = 0 ] && [ "$(echo "$out" | jq '.holders[0].task')" = "$first" ] && [ "$(echo "$out" | jq '.queue[0].task')" = "$second" ]
check "locks --json parses with jq (holder, queue)" $?

run task show "$second" --json
[ $rc = 0 ] && [ "$(echo "$out" | jq -r .state)" = waiting ] && [ "$(echo "$out" | jq .waitingFor.heldBy)" = "$first" ]
check "task show --json parses with jq (state waiting, waitingFor.heldBy)" $?

run --json task list --state active
[ $rc = 0 ] && [ "$(echo "$out" | jq '.tasks | length')" = 2 ] && [ "$(echo "$out" | jq .total)" = 2 ]
check "task list --json --state active parses with jq (2 tasks)" $?

# ---- stop the holder: the waiter gets the lock and ends ---------------------------
run task stop "$first"
[ $rc = 0 ] && [ "$out" = "stopping task $first" ]
check "task stop $first: stopping task $first" $?

wait_exit "$second_pid"
[ $rc = 0 ] && grep -q "^task $second succeeded$" "$tmp/second.out"
check "the waiting lock hold --wait ends with exit 0 (task $second succeeded)" $? || { diag <"$tmp/second.out"; diag <"$tmp/second.err"; }

run task wait "$second"
[ $rc = 0 ] && echo "$out" | grep -q "^task $second succeeded$"
check "task wait $second exits 0" $?

run task wait "$first"
[ $rc = 1 ] && echo "$err" | grep -qF "task $first cancelled: stopped: stopped by request"
check "task wait of the stopped task $first exits 1 with its error" $? || show

run task stop "$first"
[ $rc = 1 ] && echo "$err" | grep -qF "boxctl: task $first is already cancelled"
check "task stop of a finished task: exit 1 with the 409 message" $?

run task show 999999
[ $rc = 1 ] && [ "$err" = "boxctl: no task 999999" ]
check "task show of an unknown task: exit 1, boxctl: no task 999999" $?

# ---- timeout ------------------------------------------------------------------------
run --json lock hold app:slow --for 30
slow=$(echo "$out" | jq -r .taskId)
run task wait "$slow" --timeout 300ms
[ $rc = 4 ] && echo "$err" | grep -q "task $slow is still"
check "task wait --timeout 300ms of a 30s hold exits 4" $?
"$BOXCTL" task stop "$slow" >/dev/null 2>&1

# ---- logs ------------------------------------------------------------------------------
run --json lock hold app:short --for 0.5
short=$(echo "$out" | jq -r .taskId)
timeout $DEADLINE "$BOXCTL" task logs -f "$short" >"$tmp/out" 2>"$tmp/err"
rc=$?
out=$(cat "$tmp/out")
err=$(cat "$tmp/err")
[ $rc = 0 ] && echo "$out" | grep -q "task $short" && echo "$out" | grep -q "succeeded"
check "task logs -f of a short hold task streams its log and ends with exit 0" $? || show

run task logs "$short"
[ $rc = 0 ] && echo "$out" | grep -q "task $short"
check "task logs prints the log of a finished task" $?

# ---- usage errors ------------------------------------------------------------------------
usage_rcs=""
for args in "frobnicate" "task" "task frob" "task show" "task show abc" "task list --bogus" \
	"lock hold app:x" "lock hold --for 3" "task wait 1 --timeout soon" "--socket"; do
	# shellcheck disable=SC2086
	"$BOXCTL" $args >/dev/null 2>&1
	usage_rcs="$usage_rcs $?"
done
[ "$usage_rcs" = "$(printf ' 2%.0s' 1 2 3 4 5 6 7 8 9 10)" ]
check "unknown commands and usage errors exit 2 (got:$usage_rcs)" $?

run --help
[ $rc = 0 ] && echo "$out" | grep -q "task wait" && echo "$out" | grep -q "lock hold"
help_rc=$?
run task wait --help
[ $help_rc = 0 ] && [ $rc = 0 ] && echo "$out" | grep -q "^usage: boxctl task wait ID"
check "--help lists the commands; task wait --help shows its usage" $?

# ---- no daemon ---------------------------------------------------------------------------------
run --socket "$tmp/nobody.sock" status
[ $rc = 3 ] && echo "$err" | grep -qF "cannot reach boxd at $tmp/nobody.sock" && echo "$err" | grep -q "is the daemon running"
check "a socket nobody listens on: exit 3 and a helpful message" $? || show

stop_daemon
run task list
[ $rc = 3 ] && echo "$err" | grep -qF "cannot reach boxd at $sock"
check "after the daemon stopped: exit 3" $?

[ $n = 24 ] || echo "# planned 24 tests, ran $n"
exit $((fails > 0))
