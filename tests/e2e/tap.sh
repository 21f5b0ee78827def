# shellcheck shell=bash
# tap.sh — the TAP side of the end-to-end scripts: the plan, numbered test
# points, diagnostics, the exit code, and waiting with a deadline. lib.sh
# sources it (a test that runs boxd sources lib.sh); a test that starts no
# daemon sources this file alone:
#
#	. "$(dirname "$0")/tap.sh"
#	plan 3
#	check "the server answers" curl -fsS "http://127.0.0.1:$port/"
#	equal "two rows" "$(count_rows)" 2
#	wait_for 10 alive "$pid" || bail "it died"
#	...
#	done_testing
#
# Every test point goes through ok/not_ok (check, equal and skip call
# them), so the numbers and the count are right; done_testing exits 1 when
# a point failed or the count is not the plan's. TAP reads stdout: anything
# else a test prints there must be a diag line ("# ..."), and a description
# must not contain "#" (what follows it is read as a directive: "# SKIP").

_tap_n=0
_tap_fails=0
_tap_plan=

# plan N: N test points follow ("1..N").
plan() { _tap_plan=$1; echo "1..$1"; }
# skip_all REASON: this test has nothing to run here ("1..0 # SKIP"); exit 0.
skip_all() { echo "1..0 # SKIP $*"; exit 0; }

ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_fails=$((_tap_fails + 1)); echo "not ok $_tap_n - $*"; }
# skip DESC [REASON]: a test point that could not run here.
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP ${2:-}"; }

# diag TEXT... or diag < file: TAP comments.
diag() {
	if [ $# -gt 0 ]; then
		printf '%s\n' "$*" | sed 's/^/# /'
	else
		sed 's/^/# /'
	fi
}
bail() { echo "Bail out! $*"; exit 1; }

# check DESC CMD...: one test point, ok when CMD succeeds; returns CMD's
# status (`check ... || bail ...`). CMD runs in this shell, so variables it
# sets stay set (`check "..." eval '[ "$a" = 1 ] && ...'` for a condition).
# What CMD prints (stdout and stderr) is shown as diag lines when it fails
# and dropped when it succeeds: TAP reads stdout.
check() {
	# Names of its own: CMD sees the caller's variables (rc, out, ...).
	local _tap_desc=$1 _tap_file _tap_rc=0
	shift
	_tap_file=$(mktemp "${TMPDIR:-/tmp}/tap-check.XXXXXX") || bail "mktemp failed"
	if "$@" >"$_tap_file" 2>&1; then
		ok "$_tap_desc"
	else
		_tap_rc=$?
		not_ok "$_tap_desc"
		diag <"$_tap_file"
	fi
	rm -f "$_tap_file"
	return $_tap_rc
}

# equal DESC GOT WANT: one test point; shows both values when they differ.
equal() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "got:  $2"
		diag "want: $3"
	fi
}

# done_testing: exit 0 when every planned test ran and passed. Without a
# plan (plan was not called) it prints the plan now ("1..N" at the end is
# TAP too).
done_testing() {
	if [ -z "$_tap_plan" ]; then
		echo "1..$_tap_n"
	elif [ "$_tap_n" != "$_tap_plan" ]; then
		diag "planned $_tap_plan tests but ran $_tap_n"
		exit 1
	fi
	[ "$_tap_fails" = 0 ] || exit 1
	exit 0
}

# ---- time and waiting --------------------------------------------------

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# wait_for DEADLINE_S CMD...: run CMD every 50 ms until it succeeds (0) or
# the deadline passes (1). DEADLINE_S: whole seconds.
wait_for() {
	local _tap_until=$(($(now_ms) + ${1%.*} * 1000))
	shift
	for (( ; ; )); do
		"$@" && return 0
		[ "$(now_ms)" -ge "$_tap_until" ] && return 1
		sleep 0.05
	done
}

# gone PID: the process no longer exists or is a zombie (will never run
# again; its parent just has not reaped it yet).
gone() {
	local st
	st=$(awk '{ sub(/.*\) /, ""); print substr($0, 1, 1) }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}
# alive PID: the process runs (not gone).
alive() { ! gone "$1"; }
# all_gone PID...: none of the processes runs (wait_for 30 all_gone "${pids[@]}").
all_gone() {
	local p
	for p in "$@"; do
		alive "$p" && return 1
	done
	return 0
}
