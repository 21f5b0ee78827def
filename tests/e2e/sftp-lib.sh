# shellcheck shell=bash
# sftp-lib.sh — what the sftp end-to-end tests share: a daemon with the
# test env's engine and sftp image, a key, the real `sftp` client, and
# waits on the sftp container. Source it after lib.sh:
#
#	. "$(dirname "$0")/lib.sh"
#	. "$(dirname "$0")/sftp-lib.sh"
#	sftp_need                      # skips unless root, test env, tools
#	sftp_setup [EXTRA_INI]         # $APPS_CONF with a key and a free port
#	daemon_start --config "$APPS_CONF"
#	sftp_wait_idle                 # platformstart and its rebuild are over
#	out=$(sftp_batch "ls -1 /appsdata")
#
# Everything it starts is cleaned up by lib.sh's exit trap (containers of
# this test, boxd-sftp if it binds our dirs, mounts below our dirs).

# sftp_need: skip the test unless it can run.
sftp_need() {
	need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_SFTP_IMAGE BOXD_TEST_APP_IMAGE CONTAINERS_CONF
	if [ "$(id -u)" != 0 ]; then
		skip_all "needs root (mounts)"
	fi
	local tool
	for tool in sftp ssh-keygen "$(engine_cli_name)" ss "$@"; do
		command -v "$tool" >/dev/null || skip_all "$tool is missing"
	done
}

# sftp_free_port: a TCP port nothing listens on (the container uses the
# host network): lib.sh's free_port.
sftp_free_port() { free_port; }

SFTP_KEY=
SFTP_CLIENT=
SFTP_PORT=
# sftp_setup [EXTRA_INI]: $APPS_CONF (lib.sh apps_setup) with a key allowed
# to log in and a free port; EXTRA_INI is appended.
sftp_setup() {
	SFTP_KEY=$E2E_TMP/key
	SFTP_CLIENT=$E2E_TMP/client
	mkdir -p "$SFTP_CLIENT"
	ssh-keygen -q -t ed25519 -N '' -C "$E2E_NAME" -f "$SFTP_KEY" || bail "ssh-keygen failed"
	SFTP_PORT=$(sftp_free_port) || bail "no free port"
	APPS_SFTP_PORT=$SFTP_PORT apps_setup "authorized_keys_file = $SFTP_KEY.pub${1:+
$1}"
}

# sftp_batch COMMANDS: run sftp commands (one per line) as the sftp user,
# in $SFTP_CLIENT; prints the client's output. Its status is sftp's (with
# -b, the first failing command fails the batch).
sftp_batch() {
	(cd "$SFTP_CLIENT" && sftp -q -i "$SFTP_KEY" -P "${2:-$SFTP_PORT}" -o BatchMode=yes \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-o ConnectTimeout=10 -b - boxd@127.0.0.1 <<<"$1") 2>&1
}

# sftp_lists DIR NAME: the sftp user sees NAME in DIR (sftp prints the
# entries of a named dir with that dir in front).
sftp_lists() { sftp_batch "ls -1a $1" | sed 's|.*/||' | grep -qxF "$2"; }
sftp_lacks() { ! sftp_lists "$1" "$2" && sftp_batch "ls -1a /" >/dev/null; }
# sftp_put LOCAL_TEXT REMOTE: upload a file with that content; status is
# whether sftp accepted it.
sftp_put() {
	printf '%s\n' "$1" >"$SFTP_CLIENT/put.tmp"
	sftp_batch "put put.tmp $2" >/dev/null
}
# sftp_get REMOTE: print the remote file's content ("" when it fails).
sftp_get() {
	rm -f "$SFTP_CLIENT/get.tmp"
	sftp_batch "get $1 get.tmp" >/dev/null && cat "$SFTP_CLIENT/get.tmp"
}

# sftp_id: the sftp container's id ("" when there is none).
sftp_id() { container_inspect boxd-sftp .Id 2>/dev/null; }
sftp_running() { [ "$(container_state boxd-sftp)" = running ]; }

no_active_task() { [ "$(api GET '/tasks?state=active' | jq '.tasks | length')" = 0 ]; }
no_active_rebuild() { [ "$(api GET '/tasks?type=service.rebuild&state=active' | jq '.tasks | length')" = 0 ]; }
# sftp_wait_idle: no task active (platformstart, the rebuilds after it).
sftp_wait_idle() { wait_for "${1:-120}" no_active_task || diag "still active: $(api GET '/tasks?state=active')"; }

# sftp_answers [PORT]: a real sftp login works.
sftp_answers() { sftp_batch "ls /" "${1:-$SFTP_PORT}" >/dev/null; }

# sftp_spec_up_to_date: the container runs the spec built now.
sftp_spec_up_to_date() { [ "$(api GET /services/sftp | jq -r '.upToDate')" = true ]; }
# sftp_wait_converged [SECONDS]: the scheduler rebuilt sftp (no rebuild
# active, the container up to date and answering).
sftp_converged() { no_active_rebuild && sftp_spec_up_to_date && sftp_answers; }
sftp_wait_converged() {
	wait_for "${1:-120}" sftp_converged && return 0
	diag "sftp did not converge: rebuilds $(api GET '/tasks?type=service.rebuild&per_page=5' |
		jq -c '[.tasks[] | {id, state, message, error, result: (.result | if . then {reason, rebuilt} else null end)}]')"
	diag "service: $(api GET /services/sftp | jq -c '{state, health, upToDate, error}')"
	return 1
}

# run_task METHOD_PATH [BODY]: POST, wait until the task ends; sets TASK_ID,
# TASK (the final task object) and TASK_MS (from the request to the end).
run_task() {
	local t0
	t0=$(now_ms)
	TASK_ID= TASK= TASK_MS=
	req POST "$1" "${2:-}"
	[ "$STATUS" = 202 ] || { diag "POST $1: $STATUS $BODY"; return 1; }
	TASK_ID=$(jq -r .taskId <<<"$BODY")
	wait_for 120 is_final "$TASK_ID" || { diag "task $TASK_ID did not end"; return 1; }
	TASK_MS=$(($(now_ms) - t0))
	TASK=$(task "$TASK_ID")
}
task_ok() { [ "$(jq -r .state <<<"$TASK")" = succeeded ] || { diag "task: $TASK"; return 1; }; }

# install_wait ID [DATADIR]: install an app and wait for its task.
install_wait() {
	local tid
	tid=$(install_app "$1" "$BOXD_TEST_APP_IMAGE" '{}' "${2:-}") && wait_task "$tid" 120
}
