#!/usr/bin/env bash
# t0820-readme.sh — README.md, pasted in order: every command line of every
# fenced ```sh block runs, in a directory laid out like a fresh checkout
# (symlinks to the source tree's Makefile, scripts/ and etc/, and to the
# build dir under test as build/), and must exit 0. What the README's
# comments claim is checked where it matters (task numbers, the visible
# wait, the version after an update).
#
# A `<!-- readme-test: WORDS -->` line right before a block says how a
# person would run it:
#   background  the block starts the daemon (`make run ...`): it runs in the
#               background until the API answers, as in its own terminal;
#   stop        press Ctrl-C in that terminal first (SIGINT to its process
#               group) and wait until the daemon is gone;
#   engine      needs a container engine (the test env's Podman, named by
#               DOCKER_HOST as the README says); skipped without one;
#   ci          not run here: CI runs it (`make check` is what .ci/run runs).
# A block without such a line runs as it is. Before a few lines the test
# waits (with a deadline) for what a person would see before typing them.
# shellcheck disable=SC2317 # functions run through wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
: "${SOURCE_DIR:?}" "${BUILD_DIR:?}"

README=$SOURCE_DIR/README.md
WORK=$E2E_TMP/checkout
BLOCKS=$E2E_TMP/blocks
mkdir -p "$WORK" "$BLOCKS"
for f in Makefile scripts etc; do ln -s "$SOURCE_DIR/$f" "$WORK/$f"; done
ln -s "$BUILD_DIR" "$WORK/build"
HAVE_ENGINE=0
[ -n "${BOXD_TEST_ENGINE_SOCKET:-}" ] && [ -n "${CONTAINERS_CONF:-}" ] && HAVE_ENGINE=1

# ---- the blocks ---------------------------------------------------------
# BLOCKS/N.tags: the marker words; BLOCKS/N.sh: the block's lines.
awk -v dir="$BLOCKS" '
	/^<!-- readme-test: .* -->$/ { tags = $0; sub(/^<!-- readme-test: /, "", tags); sub(/ -->$/, "", tags); next }
	/^```sh$/ { n++; inblock = 1; printf "%s\n", tags > (dir "/" n ".tags"); close(dir "/" n ".tags"); tags = ""; next }
	/^```/ && inblock { inblock = 0; next }
	inblock { print > (dir "/" n ".sh"); next }
	!/^[[:space:]]*$/ { tags = "" }
' "$README"
n_blocks=$(find "$BLOCKS" -name '*.tags' | wc -l)
[ "$n_blocks" -gt 0 ] || bail "no sh block found in $README"

# Command lines of a block: not blank, not only a comment.
block_lines() { grep -vE '^[[:space:]]*(#|$)' "$BLOCKS/$1.sh" 2>/dev/null || true; }
has_tag() { grep -qw -- "$2" "$BLOCKS/$1.tags"; }

# Count the test points first: one per command line, one per Ctrl-C, one
# for the ci block's check.
points=0
for ((b = 1; b <= n_blocks; b++)); do
	points=$((points + $(block_lines "$b" | wc -l)))
	has_tag "$b" stop && points=$((points + 1))
done
plan "$points"

# ---- running the lines --------------------------------------------------

export BOXD_E2E_TAG=$E2E_TAG # lib.sh's cleanup finds our processes by it
unset BOXD_SOCKET BOXD_ENGINE_SOCKET DOCKER_HOST BOXD_STATE_DIR BOXD_INSTALL_ROOT
SOCK=$WORK/var/boxd.sock
BG_PID=
BG_LOG=
OUT=$E2E_TMP/out

tasks_state() { BOXD_SOCKET=$SOCK "$BUILD_DIR/boxctl" --json task show "$1" 2>/dev/null | jq -r .state; }
task_waits() { [ "$(tasks_state "$1")" = waiting ]; }
sock_answers() { curl -sf --max-time 10 --unix-socket "$SOCK" http://d/api/v1/status >/dev/null; }
bg_gone() { ! kill -0 "$BG_PID" 2>/dev/null && ! sock_answers; }

# before LINE: what a person waits for before typing LINE.
before() {
	case $1 in
	"build/boxctl task show 3"*) wait_for 20 task_waits 3 || diag "task 3 is not waiting: $(tasks_state 3)" ;;
	esac
}

# expect LINE: what the README's comment on LINE claims, checked on its
# output ($OUT). Prints the problem and fails, or succeeds.
expect() {
	local want=
	case $1 in
	"build/boxctl task list"*) want='^ *1 +platformstart' ;;
	"build/boxctl lock hold app:wiki --for 10m"*) want='^task 2 ' ;;
	"build/boxctl lock hold app:wiki --for 5s"*) want='^task 3 ' ;;
	"build/boxctl task show 3"*) want='Waiting for app:wiki \(held by task 2, hold\)' ;;
	"build/boxctl status"*) [ -n "${UPDATED:-}" ] && want='^boxd 0\.2\.0 ' ;;
	esac
	[ -z "$want" ] && return 0
	grep -qE -- "$want" "$OUT" && return 0
	diag "expected /$want/ in the output of: $1"
	return 1
}

run_line() {
	local line=$1
	before "$line"
	# The line runs from the checkout, with a deadline; an `export` is
	# repeated in this shell so that it holds for the lines after it.
	timeout 300 bash -c "set -o pipefail; $line" >"$OUT" 2>&1 </dev/null
	local rc=$?
	case $line in export\ *) eval "$line" ;; esac
	case $line in *"update apply"*) UPDATED=1 ;; esac
	if [ $rc -eq 0 ] && expect "$line"; then
		ok "$line"
	else
		not_ok "$line (exit $rc)"
		diag <"$OUT"
	fi
}

start_background() {
	local line=$1
	BG_LOG=$E2E_TMP/bg-$((++n_bg)).log
	# Its own terminal: a session and process group of its own, so that
	# Ctrl-C (SIGINT to the group) reaches make and boxd as it would.
	setsid bash -c "$line" >"$BG_LOG" 2>&1 </dev/null &
	BG_PID=$!
	if wait_for 120 sock_answers; then
		ok "$line (serves on var/boxd.sock)"
	else
		not_ok "$line: boxd did not answer within 120 s"
		diag <"$BG_LOG"
		bail "the daemon does not start"
	fi
}

ctrl_c() {
	kill -INT -- "-$BG_PID" 2>/dev/null
	if wait_for 30 bg_gone; then
		ok "Ctrl-C: make run stopped"
	else
		not_ok "Ctrl-C: make run still runs after 30 s"
		diag <"$BG_LOG"
	fi
	wait "$BG_PID" 2>/dev/null
	BG_PID=
}

engine_cleanup() {
	engine_rm_containers app-wiki
	engine_rm_sftp_if_ours
	podman rmi -f localhost/wiki:1 localhost/wiki:2 >/dev/null 2>&1
}
[ "$HAVE_ENGINE" = 1 ] && on_exit engine_cleanup

n_bg=0
cd "$WORK" || bail "cannot enter $WORK"
for ((b = 1; b <= n_blocks; b++)); do
	mapfile -t lines < <(block_lines "$b")
	if has_tag "$b" engine && [ "$HAVE_ENGINE" = 0 ]; then
		has_tag "$b" stop && skip "Ctrl-C" "no container engine (test env not started)"
		for l in "${lines[@]}"; do skip "$l" "no container engine (test env not started)"; done
		continue
	fi
	if has_tag "$b" ci; then
		for l in "${lines[@]}"; do
			if grep -qF -- "$(sed 's/[[:space:]]*#.*//' <<<"$l")" "$SOURCE_DIR/.ci/run"; then
				ok "$l (run by CI: .ci/run)"
			else
				not_ok "$l: .ci/run does not run it"
			fi
		done
		continue
	fi
	has_tag "$b" stop && ctrl_c
	if has_tag "$b" background; then
		[ "${#lines[@]}" = 1 ] || bail "a background block holds one command, not ${#lines[@]}"
		if has_tag "$b" engine; then
			export DOCKER_HOST=unix://$BOXD_TEST_ENGINE_SOCKET
		else
			unset DOCKER_HOST
		fi
		start_background "${lines[0]}"
		continue
	fi
	for l in "${lines[@]}"; do run_line "$l"; done
done
if [ -n "$BG_PID" ]; then
	diag "the README leaves the daemon running at its end"
	kill -INT -- "-$BG_PID" 2>/dev/null
fi
done_testing
