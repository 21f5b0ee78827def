#!/usr/bin/env bash
# t0800-first-run.sh — what a newcomer's first runs depend on:
#  - a relative --state-dir (and --config) is made absolute at start: with
#    the test env's engine, platformstart builds the sftp container and its
#    bind sources are absolute paths in the state dir;
#  - after boxd stops (SIGTERM, SIGINT), the shared self-binds it made on the
#    roots are gone and `rm -rf STATE` works; they stay while another mount
#    namespace is a slave of them (what a container binding them rslave is),
#    `boxd unmount` removes them once it is gone, and a filesystem the
#    operator mounted on a root is never unmounted;
#  - the engine socket: --engine-socket > BOXD_ENGINE_SOCKET > [engine]
#    socket > DOCKER_HOST=unix://..., for the daemon and for its workers
#    (platformstart names the socket it could not reach); DOCKER_HOST=tcp://
#    is ignored with a warning;
#  - `make run CONFIG=FILE` starts boxd with that config.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
: "${SOURCE_DIR:?}" "${BUILD_DIR:?}"

plan 25

HAVE_ENGINE=0
[ -n "${BOXD_TEST_ENGINE_SOCKET:-}" ] && [ -n "${BOXD_TEST_SFTP_IMAGE:-}" ] && HAVE_ENGINE=1
unset BOXD_ENGINE_SOCKET DOCKER_HOST BOXD_STATE_DIR BOXD_SOCKET BOXD_INSTALL_ROOT

# start_rel [ENV...] -- [SERVE_ARGS...]: boxd serve from $E2E_TMP with the
# relative state dir "state" (= $STATE), extra environment ENV.
start_rel() {
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	echo "=== (cd $E2E_TMP) ${envs[*]} boxd --state-dir state serve $*" >>"$DAEMON_LOG"
	(cd "$E2E_TMP" && exec env BOXD_E2E_TAG="$E2E_TAG" "${envs[@]}" "$BOXD" --state-dir state serve "$@") \
		>>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	wait_for 15 _daemon_answers_or_died && daemon_answers || bail "boxd did not start: $(tail -5 "$DAEMON_LOG")"
}
# stop_daemon SIGNAL: stop it and wait; sets STOP_RC to its exit status.
stop_daemon() {
	kill "-$1" "$DAEMON_PID"
	wait "$DAEMON_PID"
	STOP_RC=$?
	DAEMON_PID=
}
mounts_below() { awk -v d="$1" 'index($5, d "/") == 1 || $5 == d { print $5 }' /proc/self/mountinfo; }
no_mounts_below() { [ -z "$(mounts_below "$1")" ]; }
is_mount_point() { awk -v d="$1" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; }
not_mount_point() { ! is_mount_point "$1"; }
task_field() { api GET "/tasks/$1" | jq -r "$2"; }

# ---- a relative state dir -----------------------------------------------

if [ "$HAVE_ENGINE" = 1 ]; then
	apps_setup
	mv "$APPS_CONF" "$E2E_TMP/rel.conf"
	start_rel -- --config rel.conf
	wait_for 60 is_final 1
	equal "relative --state-dir: platformstart builds the sftp container (task 1)" "$(task_state 1)" succeeded
	srcs=$(container_inspect boxd-sftp '[.Mounts[] | .Source] | sort | join(" ")')
	equal "... whose bind sources are the absolute roots" "$srcs" "$STATE/appsdata $STATE/volumes"
	# The container binds the roots rslave: a slave in another namespace.
	stop_daemon TERM
	check "while the sftp container runs, the roots stay mounted after a stop" is_mount_point "$STATE/appsdata"
	check "... and the daemon says why" grep -q "a container still receives its mounts" "$DAEMON_LOG"
	engine DELETE '/containers/boxd-sftp?force=1&v=1'
	(cd "$E2E_TMP" && "$BOXD" --state-dir state unmount) >>"$DAEMON_LOG" 2>&1
	equal "once the container is gone, boxd unmount removes them (exit 0)" "$?" 0
	check "... and nothing is mounted in the state dir" no_mounts_below "$STATE"
	rm -rf "$STATE"
else
	for d in "relative --state-dir: platformstart builds the sftp container" "... whose bind sources are absolute" \
		"roots stay mounted while sftp runs" "... and the daemon says why" "boxd unmount removes them" \
		"... nothing is mounted"; do
		skip "$d" "no container engine (test env not started)"
	done
fi

# ---- a stop leaves a state dir that can be removed ----------------------

start_rel
check "the roots are shared self-binds while boxd runs" is_mount_point "$STATE/volumes"
stop_daemon INT
equal "SIGINT: boxd exits 0" "$STOP_RC" 0
check "... and unmounts its self-binds" no_mounts_below "$STATE"
check "... so that rm -rf of the state dir works" rm -rf "$STATE"

# A mount namespace that is a slave of the roots (what a container binding
# them rslave is) keeps them; an operator's own filesystem is never
# unmounted.
mkdir -p "$STATE/volumes"
mount -t tmpfs boxd-t0800 "$STATE/volumes"
start_rel
unshare -m --propagation slave sleep 600 &
SLAVE=$!
on_exit "kill $SLAVE"
slave_has_root() { grep -q " $STATE/appsdata " "/proc/$SLAVE/mountinfo" 2>/dev/null; }
wait_for 10 slave_has_root
stop_daemon TERM
check "a slave namespace of the appsdata root keeps its self-bind" is_mount_point "$STATE/appsdata"
check "... the log names it" grep -q "the namespace of pid $SLAVE (sleep)" "$DAEMON_LOG"
check "an operator's tmpfs on the volumes root stays mounted" \
	grep -q "^boxd-t0800 $STATE/volumes tmpfs" /proc/self/mounts
(cd "$E2E_TMP" && "$BOXD" --state-dir state unmount) >>"$DAEMON_LOG" 2>&1
equal "boxd unmount exits 1 while something still uses a root" "$?" 1
kill "$SLAVE"
wait "$SLAVE" 2>/dev/null
(cd "$E2E_TMP" && "$BOXD" --state-dir state unmount) >>"$DAEMON_LOG" 2>&1
equal "... and 1 for the operator's mount, which it leaves alone" "$?" 1
check "... the appsdata root is unmounted now" not_mount_point "$STATE/appsdata"
umount "$STATE/volumes"
rm -rf "$STATE"

# ---- the engine socket ----------------------------------------------------

printf '[engine]\nsocket = %s/file.sock\n' "$E2E_TMP" >"$E2E_TMP/engine.conf"
engine_socket() { api GET /status | jq -r .engine.socket; }
ps_error() { wait_for 30 is_final "$1"; task_field "$1" .error.message; }
start_rel BOXD_ENGINE_SOCKET="$E2E_TMP/env.sock" DOCKER_HOST="unix://$E2E_TMP/docker-host.sock" -- \
	--config "$E2E_TMP/engine.conf" --engine-socket "$E2E_TMP/flag.sock"
equal "--engine-socket beats the environment and the file" "$(engine_socket)" "$E2E_TMP/flag.sock"
check "... for the workers too (platformstart names it)" sh -c "printf '%s' \"\$1\" | grep -qF '$E2E_TMP/flag.sock'" _ "$(ps_error 1)"
stop_daemon TERM
start_rel BOXD_ENGINE_SOCKET="$E2E_TMP/env.sock" DOCKER_HOST="unix://$E2E_TMP/docker-host.sock" -- \
	--config "$E2E_TMP/engine.conf"
equal "BOXD_ENGINE_SOCKET beats the file" "$(engine_socket)" "$E2E_TMP/env.sock"
check "... for the workers too" sh -c "printf '%s' \"\$1\" | grep -qF '$E2E_TMP/env.sock'" _ "$(ps_error 2)"
stop_daemon TERM
start_rel DOCKER_HOST="unix://$E2E_TMP/docker-host.sock" -- --config "$E2E_TMP/engine.conf"
equal "[engine] socket beats DOCKER_HOST" "$(engine_socket)" "$E2E_TMP/file.sock"
stop_daemon TERM
start_rel DOCKER_HOST="unix://$E2E_TMP/docker-host.sock"
equal "DOCKER_HOST=unix://PATH names the engine when nothing else does" "$(engine_socket)" "$E2E_TMP/docker-host.sock"
stop_daemon TERM
start_rel DOCKER_HOST="tcp://127.0.0.1:2375"
check "DOCKER_HOST=tcp://... is ignored, with a warning" grep -q "DOCKER_HOST=tcp://127.0.0.1:2375 ignored" "$DAEMON_LOG"
stop_daemon TERM
rm -rf "$STATE"

# ---- make run CONFIG=FILE -------------------------------------------------

MR_SOCK=$E2E_TMP/mr-api.sock
printf '[api]\nsocket = %s\n' "$MR_SOCK" >"$E2E_TMP/mr.conf"
setsid make -s -C "$SOURCE_DIR" run BUILD="$BUILD_DIR" STATE_DIR="$E2E_TMP/mr-state" CONFIG="$E2E_TMP/mr.conf" \
	>"$E2E_TMP/make-run.log" 2>&1 </dev/null &
MR=$!
mr_answers() { curl -sf --max-time 10 --unix-socket "$MR_SOCK" http://d/api/v1/status >/dev/null; }
if wait_for 120 mr_answers; then
	ok "make run CONFIG=FILE: boxd serves on the socket the file names"
else
	not_ok "make run CONFIG=FILE: nothing answers on $MR_SOCK"
	diag <"$E2E_TMP/make-run.log"
fi
kill -INT -- "-$MR"
wait "$MR" 2>/dev/null
check "... and stops on Ctrl-C, leaving a state dir that rm -rf removes" rm -rf "$E2E_TMP/mr-state"

done_testing
