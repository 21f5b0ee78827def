# shellcheck shell=bash
# lib.sh — shared helpers of the end-to-end TAP scripts that run a real
# boxd daemon. Source it after `set -u`; it sources tap.sh (plan, check,
# ok/not_ok, diag, bail, done_testing, wait_for, alive/gone):
#
#	. "$(dirname "$0")/lib.sh"
#	plan 5
#	daemon_start --stop-grace 2s
#	req POST /tasks '{"type":"hold",...}'   # sets STATUS and BODY
#	check "it worked" test "$STATUS" = 202
#	...
#	done_testing
#
# Every wait has a deadline (wait_for); nothing relies on a fixed sleep for
# ordering. On exit, also on failure or Ctrl-C, the trap kills the daemon
# and every process it started — workers run in their own sessions and
# outlive the daemon on purpose, and their children stay in the workers'
# process groups — and removes the temp dir.
#
# Needs: BOXD (from tests/meson.build), curl, jq.
#
# The database: BOXD_TEST_STORE=sqlite (default) | mysql | postgres (see
# store.sh). On a server backend daemon_start makes one fresh database for
# the test (the same for every daemon it starts, so a restarted daemon finds
# its tasks), passes it with --store/--dsn, and the exit trap drops it.

: "${BOXD:?BOXD must point at the boxd binary}"
# shellcheck source=tests/e2e/tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
# shellcheck source=tests/e2e/store.sh
. "$(dirname "${BASH_SOURCE[0]}")/store.sh"
store_need
E2E_DB=

E2E_NAME=$(basename "$0" .sh)
E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$E2E_NAME.XXXXXX") || exit 1
STATE="$E2E_TMP/state"
SOCK="$STATE/boxd.sock"
DAEMON_LOG="$E2E_TMP/daemon.log"
DAEMON_PID=
# Every process started by our daemons carries this in its environment:
# the cleanup finds leftovers (e.g. a child of a dead worker) by it.
E2E_TAG="boxd-e2e-$$-$RANDOM$RANDOM"
STATUS=
BODY=

for _tool in curl jq; do
	command -v "$_tool" >/dev/null || bail "$_tool is needed"
done

# ---- the API -----------------------------------------------------------

# req METHOD PATH [BODY|@FILE]: call the API (PATH below /api/v1, or an
# absolute path starting with /api or /metrics). Sets STATUS (HTTP code,
# 000 when the daemon did not answer) and BODY. Not for $(...): the
# variables would stay in the subshell.
req() { req_h "" "$@"; }

# req_h HEADER METHOD PATH [BODY|@FILE]: req with one more request header
# ("Name: value"; none when empty).
req_h() {
	local header=$1 method=$2 path=$3 url
	shift 3
	case $path in
	/api/* | /metrics*) url="http://boxd$path" ;;
	*) url="http://boxd/api/v1$path" ;;
	esac
	local args=(-s -o "$E2E_TMP/body" -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" -X "$method")
	[ -n "$header" ] && args+=(-H "$header")
	if [ $# -ge 1 ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$1")
	fi
	STATUS=$(curl "${args[@]}" "$url" 2>/dev/null)
	[ -n "$STATUS" ] || STATUS=000
	BODY=$(cat "$E2E_TMP/body" 2>/dev/null)
	rm -f "$E2E_TMP/body"
}

# db_sql SQL: run SQL on the test's database (any backend), print rows
# tab-separated.
db_sql() {
	if [ "$TEST_STORE" = sqlite ]; then
		sqlite3 -separator $'\t' "$STATE/boxd.db" "$1"
	else
		store_sql "$E2E_DB" "$1"
	fi
}

# api METHOD PATH [BODY]: print the body of the answer (for $(...)); fails
# unless the status is 2xx.
api() {
	req "$@"
	printf '%s\n' "$BODY"
	[ "${STATUS:0:1}" = 2 ]
}

# task ID [JQ]: the task object, or one field of it (jq -r).
task() { api GET "/tasks/$1" | jq -r "${2:-.}"; }
task_state() { task "$1" .state; }
# state_is ID STATE...: the task is in one of the states.
state_is() {
	local s w
	s=$(task_state "$1") || return 1
	shift
	for w in "$@"; do [ "$s" = "$w" ] && return 0; done
	return 1
}
is_final() { state_is "$1" succeeded failed cancelled; }

# hold_task SECONDS LOCK[:MODE]... [-- EXTRA_ARGS_JSON]: create a hold task,
# print its id. EXTRA_ARGS_JSON is merged into args, e.g. '{"spawnChild":true}'.
hold_task() {
	local secs=$1 locks='[]' extra='{}' l name mode
	shift
	while [ $# -gt 0 ]; do
		if [ "$1" = -- ]; then
			extra=$2
			break
		fi
		l=$1
		name=${l%:shared}
		name=${name%:exclusive}
		mode=exclusive
		[ "$name" != "$l" ] && mode=${l##*:}
		locks=$(jq -c --arg n "$name" --arg m "$mode" '. + [{name: $n, mode: $m}]' <<<"$locks")
		shift
	done
	local body
	body=$(jq -nc --argjson l "$locks" --argjson s "$secs" --argjson e "$extra" \
		'{type: "hold", args: ({locks: $l, seconds: $s} + $e)}')
	req POST /tasks "$body"
	if [ "$STATUS" != 202 ]; then
		# To stderr: callers read the task id from stdout ($(hold_task ...)),
		# which would swallow why it failed.
		diag "creating a hold task failed: $STATUS $BODY" >&2
		return 1
	fi
	jq -r .taskId <<<"$BODY"
}

# here NAME: this daemon's lock of a per-host resource, NAME:<host id>
# ("platform:<host>"; docs/ARCHITECTURE.md "Lock names and their scope").
here() {
	local host
	host=$(api GET /status | jq -r .host) && [ -n "$host" ] && [ "$host" != null ] || return 1
	printf '%s:%s\n' "$1" "$host"
}

# holder_of LOCK: the task id holding LOCK (empty if none).
holder_of() { api GET /locks | jq -r --arg n "$1" '[.holders[] | select(.name == $n) | .task] | join(",")'; }
# holds TASK: the lock names TASK holds, comma-separated (empty if none).
holds() { api GET /locks | jq -r --argjson t "$1" '[.holders[] | select(.task == $t) | .name] | join(",")'; }

# ms_of RFC3339: wall-clock milliseconds.
ms_of() {
	local s=${1%Z} frac=000
	case $s in *.*) frac=${s##*.}000; frac=${frac:0:3}; s=${s%.*} ;; esac
	echo $(($(date -u -d "$s" +%s) * 1000 + 10#$frac))
}

# free_port: a TCP port no socket uses now. From 20000-31999, below the
# kernel's ephemeral range (32768-60999 on Debian): a port in that range
# can be the local port of any outgoing connection, and a server that
# binds 0.0.0.0 on it then fails with "Address already in use" (the sftp
# container's sshd did, in a CI run of t0310). scripts/test-env.sh,
# test-galera.sh and test-pgrepl.sh pick their ports the same way.
free_port() {
	local p
	for _ in {1..50}; do
		p=$((20000 + RANDOM % 12000))
		if [ -z "$(ss -Htan "sport = :$p")" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# tree_hash DIR: one hash over the tree — every entry's type, mode, owner,
# size, mtime and link target, and every regular file's SHA-256.
tree_hash() {
	(
		cd "$1" || exit 1
		{
			find . -printf '%y %m %U:%G %s %P -> %l\n' | LC_ALL=C sort
			find . \( -type f -o -type d \) -printf '%P %T@\n' | LC_ALL=C sort
			find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
		} | sha256sum | cut -d' ' -f1
	)
}

# ---- the daemon --------------------------------------------------------

daemon_answers() { req GET /status; [ "$STATUS" = 200 ]; }
# Stop waiting as soon as the daemon exited (the socket may be a stale one).
_daemon_answers_or_died() { daemon_answers || gone "$DAEMON_PID"; }

# daemon_start [SERVE_FLAGS...]: start boxd serve on $STATE and wait (with
# a deadline) until the API answers. E2E_DSN, when set, is the database to
# use (a test's private server) instead of a fresh one on the test env's.
E2E_DSN=
daemon_start() {
	local store_flags=()
	if [ -n "$E2E_DSN" ]; then
		store_flags=(--store "$TEST_STORE" --dsn "$E2E_DSN")
	elif [ "$TEST_STORE" != sqlite ]; then
		if [ -z "$E2E_DB" ]; then
			E2E_DB=$(store_db_create) || bail "cannot create a $TEST_STORE database"
			on_exit store_db_drop "$E2E_DB"
		fi
		store_flags=(--store "$TEST_STORE" --dsn "$(store_dsn "$E2E_DB")")
	fi
	echo "=== boxd serve ${store_flags[*]} $*" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" "$BOXD" serve --state-dir "$STATE" "${store_flags[@]}" "$@" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	if ! wait_for 15 _daemon_answers_or_died || ! daemon_answers; then
		diag "boxd did not answer on $SOCK within 15 s or exited; its log:"
		diag <"$DAEMON_LOG"
		bail "cannot start boxd"
	fi
}

# daemon_kill9: kill -9 the daemon (its workers keep running).
daemon_kill9() {
	[ -n "$DAEMON_PID" ] || return 0
	{
		kill -KILL "$DAEMON_PID"
		wait "$DAEMON_PID"
	} 2>/dev/null
	DAEMON_PID=
}

# Processes of this test: every process whose command line names our state
# dir (daemon, workers) or that carries our tag (also grandchildren).
_e2e_pids() {
	pgrep -f -- "--state-dir $STATE" 2>/dev/null
	grep -slz "^BOXD_E2E_TAG=$E2E_TAG\$" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3
}

_e2e_kill_all() {
	local self_pg p pg
	self_pg=$(ps -o pgid= -p $$ | tr -d ' ')
	for _ in 1 2 3; do
		for p in $(_e2e_pids | sort -u); do
			[ "$p" = $$ ] && continue
			pg=$(ps -o pgid= -p "$p" 2>/dev/null | tr -d ' ')
			# A worker leads its own group: kill the group (and with it
			# whatever it started). Never our own group.
			if [ -n "$pg" ] && [ "$pg" = "$p" ] && [ "$pg" != "$self_pg" ]; then
				kill -KILL -- "-$pg" 2>/dev/null
			fi
			kill -KILL "$p" 2>/dev/null
		done
		[ -z "$(_e2e_pids)" ] && break
		sleep 0.1
	done
}

# on_exit CMD: run CMD (eval'ed) when the test exits, also on failure:
# after the daemon and its workers are dead, before the temp dir is
# removed; the last registered runs first.
_e2e_exit_hooks=()
on_exit() { _e2e_exit_hooks=("$*" ${_e2e_exit_hooks[@]+"${_e2e_exit_hooks[@]}"}); }

# The daemon makes the data roots in its state dir shared bind mounts
# (for the sftp container); they outlive it. Unmount, deepest first.
_e2e_unmount_all() {
	local m
	awk -v d="$E2E_TMP" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
}

_e2e_cleanup() {
	local rc=$?
	{
		_e2e_kill_all
		[ -n "$DAEMON_PID" ] && wait "$DAEMON_PID"
		_e2e_unmount_all
	} 2>/dev/null
	local _h
	for _h in ${_e2e_exit_hooks[@]+"${_e2e_exit_hooks[@]}"}; do
		eval "$_h" </dev/null >/dev/null 2>&1
	done
	if [ "$_tap_fails" != 0 ] || [ "$rc" != 0 ]; then
		diag "--- daemon log (last 60 lines) ---"
		tail -n 60 "$DAEMON_LOG" 2>/dev/null | diag
	fi
	[ -n "${E2E_KEEP:-}" ] || rm -rf "$E2E_TMP"
	exit "$rc"
}
trap _e2e_cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- apps and the container engine (tests of issue 6) ------------------
#
#	. "$(dirname "$0")/lib.sh"
#	need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE
#	apps_setup                    # config + cleanup of containers, mounts
#	daemon_start --config "$APPS_CONF" --app-concurrency 5
#	req POST /apps "$(jq -nc --arg id "$APP_PREFIX-web" ...)"
#
# App ids start with $APP_PREFIX (unique per run), so the cleanup removes
# exactly the containers app-$APP_PREFIX-* of this test from the shared
# test engine.

# need_test_env VAR...: print a TAP skip and exit unless every VAR is set.
need_test_env() {
	local v
	# BOXD_TEST_ENGINE=docker (the "(docker)" variants of suite extra):
	# the same test against the test env's dockerd instead of Podman.
	if [ "${BOXD_TEST_ENGINE:-}" = docker ]; then
		if [ -z "${BOXD_TEST_DOCKER_SOCKET:-}" ]; then
			skip_all "no dockerd in the test env (make check-extra starts one)"
		fi
		BOXD_TEST_PODMAN_SOCKET=$BOXD_TEST_ENGINE_SOCKET # where test images are built
		BOXD_TEST_ENGINE_SOCKET=$BOXD_TEST_DOCKER_SOCKET
	fi
	for v in "$@"; do
		if [ -z "${!v:-}" ]; then
			skip_all "test env not started (run make check)"
		fi
	done
}

APP_PREFIX="${E2E_NAME%%-*}-$$"
APPS_CONF="$E2E_TMP/boxd.conf"
# Dirs outside the temp dir that the test made (custom data dirs under
# /srv or /mnt): unmounted and removed at exit.
_e2e_outside_dirs=()

# apps_setup [EXTRA_INI]: write $APPS_CONF — the test env's engine, its
# sftp image on a free port (APPS_SFTP_PORT), the quiet period APPS_QUIET
# (default 1s), the roots in the state dir — with EXTRA_INI appended (other
# sections, e.g. $'[paths]\nvolumes = /srv/x'), and register the cleanup of
# this test's containers and mounts.
apps_setup() {
	local port=${APPS_SFTP_PORT:-$((20000 + RANDOM % 12000))}
	mkdir -p "$STATE"
	cat >"$APPS_CONF" <<-CONF
		[engine]
		socket = $BOXD_TEST_ENGINE_SOCKET
		[sched]
		sftp_quiet = ${APPS_QUIET:-1s}
		[sftp]
		image = ${BOXD_TEST_SFTP_IMAGE:-localhost/boxd/sftp:latest}
		port = $port
	CONF
	[ $# -gt 0 ] && printf '%s\n' "$1" >>"$APPS_CONF"
	on_exit _apps_cleanup
}

# outside_dir PARENT: make a temp dir below PARENT (/srv, /mnt) and set
# OUTSIDE to it (not for $(...): the cleanup would not know it); it is
# unmounted (also mounts below it) and removed at exit.
OUTSIDE=
outside_dir() {
	OUTSIDE=$(mktemp -d "$1/boxd-$E2E_NAME.XXXXXX") || return 1
	_e2e_outside_dirs+=("$OUTSIDE")
}

# umount_below DIR: unmount every mount at or below DIR, deepest first.
umount_below() {
	local m
	awk '{ print $5 }' /proc/self/mountinfo | sed 's/\\040/ /g' |
		awk -v d="$1" 'index($0, d) == 1 && (length($0) == length(d) || substr($0, length(d) + 1, 1) == "/")' |
		sort -r | while IFS= read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
}

_apps_cleanup() {
	local d
	engine_rm_containers "app-$APP_PREFIX-"
	engine_rm_sftp_if_ours
	for d in ${_e2e_outside_dirs[@]+"${_e2e_outside_dirs[@]}"}; do
		umount_below "$d"
		rm -rf --one-file-system "$d"
	done
}

# engine METHOD PATH [BODY]: the test env's Docker API (v1.41). Sets
# ESTATUS and EBODY.
ESTATUS=
EBODY=
engine() {
	local args=(-s -o "$E2E_TMP/ebody" -w '%{http_code}' --max-time 30 --unix-socket "$BOXD_TEST_ENGINE_SOCKET" -X "$1")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	ESTATUS=$(curl "${args[@]}" "http://d/v1.41$2" 2>/dev/null)
	[ -n "$ESTATUS" ] || ESTATUS=000
	EBODY=$(cat "$E2E_TMP/ebody" 2>/dev/null)
	rm -f "$E2E_TMP/ebody"
}

# container_state NAME: the engine's State.Status (running, exited, ...),
# "absent" when there is no such container, "error" when the engine fails.
container_state() {
	engine GET "/containers/$1/json"
	case $ESTATUS in
	200) jq -r .State.Status <<<"$EBODY" ;;
	404) echo absent ;;
	*) echo error ;;
	esac
}
# container_inspect NAME [JQ]: the inspect document (or a field, jq -r).
container_inspect() {
	engine GET "/containers/$1/json"
	[ "$ESTATUS" = 200 ] || return 1
	jq -r "${2:-.}" <<<"$EBODY"
}

# engine_rm_containers NAME_PREFIX: force-remove every container whose name
# starts with NAME_PREFIX.
engine_rm_containers() {
	local n
	engine GET '/containers/json?all=1'
	[ "$ESTATUS" = 200 ] || return 0
	for n in $(jq -r --arg p "/$1" '.[] | .Names[]? | select(startswith($p)) | ltrimstr("/")' <<<"$EBODY"); do
		engine DELETE "/containers/$n?force=1&v=1"
	done
}

# engine_rm_sftp_if_ours: remove boxd-sftp (and the boxd-sftp-<host> of
# hosts on a shared engine, [engine] shared) when it binds something of
# this test (our temp dir or one of our outside dirs): our daemon made it.
engine_rm_sftp_if_ours() {
	local name src d
	engine GET '/containers/json?all=1'
	[ "$ESTATUS" = 200 ] || return 0
	for name in $(jq -r '.[] | .Names[]? | ltrimstr("/") | select(. == "boxd-sftp" or startswith("boxd-sftp-"))' <<<"$EBODY"); do
		engine GET "/containers/$name/json"
		[ "$ESTATUS" = 200 ] || continue
		for src in $(jq -r '.Mounts[]?.Source' <<<"$EBODY"); do
			for d in "$E2E_TMP" ${_e2e_outside_dirs[@]+"${_e2e_outside_dirs[@]}"}; do
				if [ "${src#"$d"}" != "$src" ]; then
					engine DELETE "/containers/$name?force=1&v=1"
					continue 3
				fi
			done
		done
	done
}

# engine_cli ARGS...: the CLI of the engine the test runs against, on the
# test env's socket: podman, or docker with BOXD_TEST_ENGINE=docker. For
# what both CLIs spell the same (inspect -f, exec, rm -f, rmi -f, load).
engine_cli() {
	if [ "${BOXD_TEST_ENGINE:-}" = docker ]; then
		docker -H "unix://$BOXD_TEST_ENGINE_SOCKET" "$@"
	else
		podman --url "unix://$BOXD_TEST_ENGINE_SOCKET" "$@"
	fi
}
# engine_cli_name: the name of that CLI (to check that it is installed).
engine_cli_name() { [ "${BOXD_TEST_ENGINE:-}" = docker ] && echo docker || echo podman; }

# in_container NAME CMD...: run CMD in the container (the CLI's exec: the
# compat API has no usable exec here).
in_container() {
	local name=$1
	shift
	engine_cli exec "$name" "$@"
}

# app ID [JQ]: the app object, or one field of it (jq -r).
app() { api GET "/apps/$1" | jq -r "${2:-.}"; }
# app_state ID: installationState, or "absent" (404).
app_state() {
	req GET "/apps/$1"
	case $STATUS in
	200) jq -r .installationState <<<"$BODY" ;;
	404) echo absent ;;
	*) echo "error($STATUS)" ;;
	esac
}

# install_app ID IMAGE [ENV_JSON [DATA_DIR]]: POST /apps; prints the task id.
install_app() {
	local body
	body=$(jq -nc --arg id "$1" --arg img "$2" --argjson env "${3:-{\}}" --arg dir "${4:-}" \
		'{id: $id, image: $img, env: $env} + (if $dir == "" then {} else {dataDir: $dir} end)')
	req POST /apps "$body"
	if [ "$STATUS" != 202 ]; then
		diag "install of $1 refused: $STATUS $BODY"
		return 1
	fi
	jq -r .taskId <<<"$BODY"
}

# app_task ID ACTION [BODY]: POST /apps/ID/ACTION; prints the task id.
app_task() {
	req POST "/apps/$1/$2" ${3:+"$3"}
	if [ "$STATUS" != 202 ]; then
		diag "$2 of $1 refused: $STATUS $BODY"
		return 1
	fi
	jq -r .taskId <<<"$BODY"
}

# wait_task ID [SECONDS]: wait until the task is final; succeeds only when
# it succeeded (its error is shown otherwise).
wait_task() {
	if ! wait_for "${2:-60}" is_final "$1"; then
		diag "task $1 is not done after ${2:-60} s: $(task "$1" '[.type, .state, .message] | join(" ")' 2>/dev/null)"
		return 1
	fi
	state_is "$1" succeeded && return 0
	diag "task $1: $(task "$1" '[.type, .state, (.error | tostring)] | join(" ")')"
	return 1
}

# all_tasks: every task as one JSON array (all pages).
all_tasks() {
	local page=1 out='[]' got
	for (( ; ; )); do
		got=$(api GET "/tasks?per_page=1000&page=$page") || return 1
		out=$(jq -c --argjson o "$out" '$o + .tasks' <<<"$got")
		[ "$(jq '.tasks | length' <<<"$got")" -lt 1000 ] && break
		page=$((page + 1))
	done
	printf '%s\n' "$out"
}

# services_available: the daemon has the services module (GET
# /api/v1/services/sftp answers 200).
services_available() { req GET /services/sftp; [ "$STATUS" = 200 ]; }
