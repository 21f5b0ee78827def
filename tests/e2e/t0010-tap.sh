#!/usr/bin/env bash
# t0010-tap.sh — tap.sh itself, the TAP library of the e2e scripts: what a
# script sourcing it prints and how it exits. Each case runs a small script
# in a child bash and compares its stdout and exit status with what TAP
# (and meson's parser) must see:
#   - check: ok/not ok numbering; on failure CMD's output (stdout and
#     stderr) as "# " lines, none on success; returns CMD's status; CMD
#     runs in the calling shell (variables it sets stay set) and sees the
#     caller's variables even when they are called out, rc or desc;
#   - done_testing: exit 1 on a failure or a count that is not the plan's;
#     the plan printed at the end when none was given;
#   - skip_all; wait_for with its deadline; gone/alive: a zombie is gone.
# Needs only bash. Every process it starts is killed by the trap.
set -u
. "$(dirname "$0")/tap.sh"
TAP_SH="$(cd "$(dirname "$0")" && pwd)/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t0010-tap.XXXXXX") || exit 1
bg=()
cleanup() {
	local p
	for p in ${bg[@]+"${bg[@]}"}; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

plan 12

# run_case SCRIPT: run SCRIPT (after sourcing tap.sh) in a child bash; sets
# got (its stdout) and rc.
run_case() {
	printf '%s\n' ". '$TAP_SH'" "$1" >"$tmp/case.sh"
	got=$(bash "$tmp/case.sh" 2>/dev/null)
	rc=$?
}
# same DESC WANT_RC WANT_STDOUT: the last case printed and exited so.
same() {
	if [ "$rc" = "$2" ] && [ "$got" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "got (exit $rc):"
		diag "$got"
		diag "want (exit $2):"
		diag "$3"
	fi
}

run_case 'plan 2
check "passes" true
check "passes quietly" sh -c "echo noise; echo more >&2"
done_testing'
same "passing checks: numbered, their output dropped, exit 0" 0 $'1..2\nok 1 - passes\nok 2 - passes quietly'

run_case 'plan 2
check "fails" sh -c "echo out; echo err >&2; exit 3"
echo "status $?"
check "next" true
done_testing'
same "a failing check: not ok, its output as diag, CMD's status, exit 1" 1 \
	$'1..2\nnot ok 1 - fails\n# out\n# err\nstatus 3\nok 2 - next'

run_case 'out=hi rc=7 desc=d
check "sees the caller'"'"'s out, rc, desc" eval '"'"'[ "$out $rc $desc" = "hi 7 d" ]'"'"'
check "sets a variable" eval "x=5"
echo "x=$x"
done_testing'
same "check runs CMD in this shell: it sees and sets the caller's variables" 0 \
	$'ok 1 - sees the caller\'s out, rc, desc\nok 2 - sets a variable\nx=5\n1..2'

run_case 'plan 3
ok "one"
skip "two" "not here"
done_testing'
same "fewer points than planned: exit 1, says so" 1 $'1..3\nok 1 - one\nok 2 - two # SKIP not here\n# planned 3 tests but ran 2'

run_case 'equal "same" a a
equal "differs" a b
done_testing'
same "equal: got and want on a difference; no plan: printed at the end" 1 \
	$'ok 1 - same\nnot ok 2 - differs\n# got:  a\n# want: b\n1..2'

run_case 'skip_all "no server here"
ok "never"'
same "skip_all: the skip plan (1..0, SKIP) and exit 0" 0 '1..0 # SKIP no server here'

run_case 'check "bail on failure" false || bail "cannot go on"
ok "never"'
same "check ... || bail" 1 $'not ok 1 - bail on failure\nBail out! cannot go on'

# ---- waiting ------------------------------------------------------------------

t0=$(now_ms)
wait_for 1 false
# shellcheck disable=SC2034 # used in the eval below
r=$?
waited=$(($(now_ms) - t0))
check "wait_for gives up after its deadline (1 s: waited $waited ms)" eval '[ $r = 1 ] && [ $waited -ge 1000 ] && [ $waited -lt 5000 ]'

touch_later() { [ -e "$tmp/flag" ] || { n_calls=$((n_calls + 1)); [ $n_calls -ge 3 ] && touch "$tmp/flag"; return 1; }; }
n_calls=0
check "wait_for returns as soon as CMD succeeds (it runs in this shell)" eval 'wait_for 10 touch_later && [ $n_calls = 3 ]'

# ---- processes ------------------------------------------------------------------

# A zombie: the child of a process that never reaps (sleep exec'ed over
# the subshell that started it).
( sleep 0 & echo $! >"$tmp/zombie"; exec sleep 60 ) &
parent=$!
bg+=("$parent")
zombie_known() { [ -s "$tmp/zombie" ]; }
wait_for 10 zombie_known || bail "the zombie's pid was not written"
zombie=$(cat "$tmp/zombie")
check "a zombie is gone (it will never run again)" wait_for 10 gone "$zombie"
check "its parent is alive" alive "$parent"
{
	kill -KILL "$parent"
	wait "$parent"
} 2>/dev/null
check "a process that exited and was reaped is gone; all_gone agrees" eval 'gone "$parent" && all_gone "$parent" "$zombie"'

done_testing
