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
# deadline; lib.sh's trap kills the daemon and every worker it started, and
# removes the temp dir, also on failure.
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

DEADLINE=20 # seconds for each wait

: "${BOXCTL:?BOXCTL must point at the boxctl binary}"
export BOXD_SOCKET=$SOCK
unset BOXD_TOKEN

# The boxctl runs this script puts in the background: not the daemon's, so
# lib.sh's cleanup does not know them.
bg_pids=()
kill_bg() {
	local p
	for p in ${bg_pids[@]+"${bg_pids[@]}"}; do kill -KILL "$p"; done
}
on_exit kill_bg

# run CMD...: run boxctl, keeping stdout in $out, stderr in $err, status in $rc.
run() {
	"$BOXCTL" "$@" >"$E2E_TMP/out" 2>"$E2E_TMP/err"
	rc=$?
	out=$(cat "$E2E_TMP/out")
	err=$(cat "$E2E_TMP/err")
}

show() { { echo "exit $rc"; echo "stdout:"; echo "$out"; echo "stderr:"; echo "$err"; } | diag; }

plan 24

# ---- the daemon ----------------------------------------------------------------
daemon_start
answers() { [ -S "$SOCK" ] && "$BOXCTL" status >/dev/null 2>&1; }
check "boxd starts and boxctl status reaches it on $SOCK" wait_for $DEADLINE answers

# ---- status --------------------------------------------------------------------
version=$("$BOXD" version | awk '{print $2}')
run status
check "status shows the version ($version)" eval '[ $rc = 0 ] && grep -q "boxd $version" <<<"$out"' || show

run status --json
check "status --json parses with jq (version, store backend)" eval '[ $rc = 0 ] &&
	[ "$(jq -r .version <<<"$out")" = "$version" ] && [ "$(jq -r .store.backend <<<"$out")" = "$TEST_STORE" ]' || show

# ---- a holder and a waiter -------------------------------------------------------
run lock hold app:x --for 30
first=$(sed -n 's/^task \([0-9]*\) holds app:x (exclusive) for 30s$/\1/p' <<<"$out")
check "lock hold app:x --for 30 creates task ${first:-?}" eval '[ $rc = 0 ] && [ -n "$first" ]' || { show; bail "no task id"; }

listed_running() { "$BOXCTL" task list | grep -Eq "^$first +hold +- +running "; }
check "task list shows task $first running" wait_for $DEADLINE listed_running

"$BOXCTL" lock hold app:x --for 0 --wait >"$E2E_TMP/second.out" 2>"$E2E_TMP/second.err" &
second_pid=$!
bg_pids+=("$second_pid")
second_started() { grep -q '^task [0-9]* holds app:x' "$E2E_TMP/second.out" 2>/dev/null; }
wait_for $DEADLINE second_started
second=$(sed -n 's/^task \([0-9]*\) holds app:x.*/\1/p' "$E2E_TMP/second.out")
check "lock hold app:x --for 0 --wait (in the background) creates task ${second:-?}" test -n "$second" || bail "no second task id"

shows_waiting() { "$BOXCTL" task show "$second" | grep -qF "waiting for app:x (held by task $first)"; }
check "task show $second: waiting for app:x (held by task $first)" wait_for $DEADLINE shows_waiting

run locks
check "locks shows app:x held by task $first and task $second queued" eval 'grep -Eq "^app:x +exclusive +task $first " <<<"$out" &&
	grep -Eq "^[0-9]+ +task $second +app:x \(exclusive\)" <<<"$out"' || show

run --json locks
check "locks --json parses with jq (holder, queue)" eval '[ $rc = 0 ] &&
	[ "$(jq ".holders[0].task" <<<"$out")" = "$first" ] && [ "$(jq ".queue[0].task" <<<"$out")" = "$second" ]' || show

run task show "$second" --json
check "task show --json parses with jq (state waiting, waitingFor.heldBy)" eval '[ $rc = 0 ] &&
	[ "$(jq -r .state <<<"$out")" = waiting ] && [ "$(jq .waitingFor.heldBy <<<"$out")" = "$first" ]' || show

run --json task list --state active
check "task list --json --state active parses with jq (2 tasks)" eval '[ $rc = 0 ] &&
	[ "$(jq ".tasks | length" <<<"$out")" = 2 ] && [ "$(jq .total <<<"$out")" = 2 ]' || show

# ---- stop the holder: the waiter gets the lock and ends ---------------------------
run task stop "$first"
check "task stop $first: stopping task $first" eval '[ $rc = 0 ] && [ "$out" = "stopping task $first" ]' || show

# second_done: the background lock hold --wait ended; sets rc to its status.
second_done() { wait_for $DEADLINE gone "$second_pid" && { wait "$second_pid"; rc=$?; }; }
check "the waiting lock hold --wait ends with exit 0 (task $second succeeded)" eval 'second_done && [ $rc = 0 ] &&
	grep -q "^task $second succeeded$" "$E2E_TMP/second.out"' || { diag <"$E2E_TMP/second.out"; diag <"$E2E_TMP/second.err"; }

run task wait "$second"
check "task wait $second exits 0" eval '[ $rc = 0 ] && grep -q "^task $second succeeded$" <<<"$out"' || show

run task wait "$first"
check "task wait of the stopped task $first exits 1 with its error" eval '[ $rc = 1 ] &&
	grep -qF "task $first cancelled: stopped: stopped by request" <<<"$err"' || show

run task stop "$first"
check "task stop of a finished task: exit 1 with the 409 message" eval '[ $rc = 1 ] &&
	grep -qF "boxctl: task $first is already cancelled" <<<"$err"' || show

run task show 999999
check "task show of an unknown task: exit 1, boxctl: no task 999999" eval '[ $rc = 1 ] && [ "$err" = "boxctl: no task 999999" ]' || show

# ---- timeout ------------------------------------------------------------------------
run --json lock hold app:slow --for 30
slow=$(jq -r .taskId <<<"$out")
run task wait "$slow" --timeout 300ms
check "task wait --timeout 300ms of a 30s hold exits 4" eval '[ $rc = 4 ] && grep -q "task $slow is still" <<<"$err"' || show
"$BOXCTL" task stop "$slow" >/dev/null 2>&1

# ---- logs ------------------------------------------------------------------------------
run --json lock hold app:short --for 0.5
short=$(jq -r .taskId <<<"$out")
timeout $DEADLINE "$BOXCTL" task logs -f "$short" >"$E2E_TMP/out" 2>"$E2E_TMP/err"
rc=$?
out=$(cat "$E2E_TMP/out")
err=$(cat "$E2E_TMP/err")
check "task logs -f of a short hold task streams its log and ends with exit 0" eval '[ $rc = 0 ] &&
	grep -q "task $short" <<<"$out" && grep -q "succeeded" <<<"$out"' || show

run task logs "$short"
check "task logs prints the log of a finished task" eval '[ $rc = 0 ] && grep -q "task $short" <<<"$out"' || show

# ---- usage errors ------------------------------------------------------------------------
usage_rcs=""
for args in "frobnicate" "task" "task frob" "task show" "task show abc" "task list --bogus" \
	"lock hold app:x" "lock hold --for 3" "task wait 1 --timeout soon" "--socket"; do
	# shellcheck disable=SC2086
	"$BOXCTL" $args >/dev/null 2>&1
	usage_rcs="$usage_rcs $?"
done
equal "unknown commands and usage errors exit 2" "$usage_rcs" "$(printf ' 2%.0s' 1 2 3 4 5 6 7 8 9 10)"

run --help
# shellcheck disable=SC2034 # used in the eval below
help_rc=$rc help_out=$out
run task wait --help
check "--help lists the commands; task wait --help shows its usage" eval '[ $help_rc = 0 ] &&
	grep -q "task wait" <<<"$help_out" && grep -q "lock hold" <<<"$help_out" &&
	[ $rc = 0 ] && grep -q "^usage: boxctl task wait ID" <<<"$out"' || show

# ---- no daemon ---------------------------------------------------------------------------------
run --socket "$E2E_TMP/nobody.sock" status
check "a socket nobody listens on: exit 3 and a helpful message" eval '[ $rc = 3 ] &&
	grep -qF "cannot reach boxd at $E2E_TMP/nobody.sock" <<<"$err" && grep -q "is the daemon running" <<<"$err"' || show

kill -TERM "$DAEMON_PID"
wait_for $DEADLINE gone "$DAEMON_PID" || diag "boxd did not stop on SIGTERM within ${DEADLINE}s"
daemon_kill9
run task list
check "after the daemon stopped: exit 3" eval '[ $rc = 3 ] && grep -qF "cannot reach boxd at $SOCK" <<<"$err"' || show

done_testing
