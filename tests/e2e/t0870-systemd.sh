#!/usr/bin/env bash
# t0870-systemd.sh — boxd under systemd's protocols, with libsystemd as the
# real sender and tests/tools/dgram-sink standing in for systemd's sockets
# (no systemd runs here as PID 1):
#  - notify (NOTIFY_SOCKET): READY=1 comes from the daemon's pid, and at that
#    moment the API answers and platformstart is in line (dgram-sink runs
#    the check when READY=1 arrives); STATUS= says "1 task running, 1
#    waiting" for a hold and a hold behind it; WATCHDOG_USEC=200000 makes
#    the loop ping WATCHDOG=1 every 100 ms, none without it; SIGHUP sends
#    RELOADING=1 then READY=1; SIGTERM STOPPING=1;
#  - reload (SIGHUP, ExecReload=): a new log_level and [timeouts] hold take
#    effect at once (a hold created after it times out); the log says that
#    a changed [api] max_connections and the dashboard's [api]
#    session_lifetime need a restart, that a changed [store] lease reaches
#    workers started from now on and the daemon after a restart, and that
#    a changed [backups] keep (only workers read it) applies to tasks
#    started from now on; a broken file keeps the configuration in use;
#  - the journal: with stderr named by JOURNAL_STREAM, lines go to journald's
#    native socket (a dgram-sink at /run/systemd/journal/socket in a mount
#    namespace of their own) with PRIORITY=, SYSLOG_IDENTIFIER=boxd and
#    TASK_ID= (the daemon's lines about a task; every line of its worker,
#    with APP_ID= when it has one), LOCK= on the waiting line; none of them
#    as text on stderr; the worker's task log still has them as text;
#  - [tasks] user under no_new_privs (NoNewPrivileges=yes) refuses to start;
#  - the unit: no setting that gives it a mount namespace (PrivateIPC= was
#    one); systemd-analyze security's exposure stays below 6.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
: "${DGRAM_SINK:?}" "${BUILD_DIR:?}"

plan 28
NSOCK=$E2E_TMP/notify.sock
NOUT=$E2E_TMP/notify.out
SINK=

sink_start() { # PATH OUT [--on LINE CMD...]
	local path=$1 out=$2
	shift 2
	"$DGRAM_SINK" "$path" "$@" >"$out" 2>&1 &
	SINK=$!
	on_exit "kill $SINK"
	wait_for 10 grep -q '^@@ listening' "$out" || bail "dgram-sink did not start"
}
sink_stop() { kill "$SINK" 2>/dev/null; wait "$SINK" 2>/dev/null; }
# received OUT LINE [PID]: a datagram holding LINE (from PID) was received.
received() {
	awk -v l="$2" -v p="${3:-}" '/^@@ pid=/ { split($2, a, "="); pid = a[2]; next }
		$0 == l && (p == "" || pid == p) { f = 1 } END { exit !f }' "$1"
}
count_of() { grep -cx -- "$2" "$1"; }

# ---- notify ----------------------------------------------------------------

# What must hold when READY=1 arrives: the API answers and task 1
# (platformstart) is in line for `platform`.
cat >"$E2E_TMP/on-ready.sh" <<EOF
#!/bin/sh
st=\$(curl -s --max-time 5 --unix-socket "$SOCK" http://d/api/v1/tasks/1 | jq -r '.type + " " + .state')
echo "at READY=1: task 1 is \$st" >&2
case \$st in "platformstart queued"|"platformstart waiting"|"platformstart running"|"platformstart failed"|"platformstart succeeded") exit 0 ;; esac
exit 1
EOF
chmod +x "$E2E_TMP/on-ready.sh"
sink_start "$NSOCK" "$NOUT" --on READY=1 "$E2E_TMP/on-ready.sh"
# The daemon is exec'ed by the shell whose pid is WATCHDOG_PID, as systemd
# sets it for its main process.
start_notify_daemon() { # EXTRA_ENV...
	mkdir -p "$STATE"
	echo "=== boxd serve under NOTIFY_SOCKET $*" >>"$DAEMON_LOG"
	env BOXD_E2E_TAG="$E2E_TAG" NOTIFY_SOCKET="$NSOCK" "$@" bash -c \
		'[ -n "${WATCHDOG_USEC:-}" ] && export WATCHDOG_PID=$$; exec "$0" serve --state-dir "$1" --config "$2"' \
		"$BOXD" "$STATE" "$E2E_TMP/boxd.conf" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	wait_for 15 _daemon_answers_or_died && daemon_answers || bail "boxd did not start: $(tail -5 "$DAEMON_LOG")"
}
printf '[boxd]\nlog_level = info\n[store]\nlease = 0\n' >"$E2E_TMP/boxd.conf"
start_notify_daemon WATCHDOG_USEC=200000
wait_for 10 received "$NOUT" READY=1 "$DAEMON_PID"
check "READY=1 comes from the daemon's pid" received "$NOUT" READY=1 "$DAEMON_PID"
equal "... when the API answers and platformstart is in line" "$(sed -n 's/^@@ on-exit=//p' "$NOUT")" 0
n0=$(count_of "$NOUT" WATCHDOG=1)
wait_for 10 sh -c "[ \$(grep -cx WATCHDOG=1 '$NOUT') -ge $((n0 + 5)) ]"
check "WATCHDOG_USEC=200000: the loop pings WATCHDOG=1 (5 more within the deadline)" \
	test "$(count_of "$NOUT" WATCHDOG=1)" -ge $((n0 + 5))
T1=$(hold_task 120 app:n0870)
T2=$(hold_task 120 app:n0870)
check "STATUS= says 1 task running, 1 waiting" wait_for 15 received "$NOUT" "STATUS=1 task running, 1 waiting"

# ---- reload ---------------------------------------------------------------

printf '[boxd]\nlog_level = debug\n[api]\nmax_connections = 8\nsession_lifetime = 1h\n[store]\nlease = 7s\n[timeouts]\nhold = 2s\n[backups]\nkeep = 3\n' \
	>"$E2E_TMP/boxd.conf"
kill -HUP "$DAEMON_PID"
check "SIGHUP: RELOADING=1" wait_for 10 received "$NOUT" RELOADING=1 "$DAEMON_PID"
check "... then READY=1 and STATUS=configuration reloaded" wait_for 10 received "$NOUT" "STATUS=configuration reloaded"
check "the log says what changed at once" grep -q "reload of .*log_level info -> debug; \[timeouts\] changed" "$DAEMON_LOG"
check "... what needs a restart (only the daemon reads [api])" \
	grep -q "\[api\] max_connections changed: needs a restart of boxd" "$DAEMON_LOG"
check "... what workers read from their start, and the daemon after a restart" \
	grep -q "\[store\] lease changed: tasks started from now on use it, the daemon after a restart" "$DAEMON_LOG"
check "... and what only workers read" grep -q "\[backups\] keep changed: tasks started from now on use it\($\|;\)" "$DAEMON_LOG"
check "... also the dashboard's [api] session_lifetime (read when the API starts)" \
	grep -q "\[api\] session_lifetime changed: needs a restart of boxd" "$DAEMON_LOG"
T3=$(hold_task 60 app:r0870)
wait_for 20 is_final "$T3"
equal "a hold created after the reload times out after [timeouts] hold = 2s" \
	"$(task "$T3" '[.state, .error.code] | join(" ")')" "failed timeout"
check "log_level = debug took effect (debug lines appear)" grep -q " DEBUG \[$DAEMON_PID\]" "$DAEMON_LOG"
printf '[boxd]\nlog_level = loud\n' >"$E2E_TMP/boxd.conf"
kill -HUP "$DAEMON_PID"
check "a broken file: the reload fails and says so" wait_for 10 grep -q "reload: .*boxd.conf:2: bad value for \[boxd\] log_level" "$DAEMON_LOG"
check "... READY=1 with STATUS=reload failed" wait_for 10 received "$NOUT" "STATUS=reload failed; the configuration in use stays"
check "... the daemon still serves" daemon_answers
api POST "/tasks/$T1/stop" >/dev/null
api POST "/tasks/$T2/stop" >/dev/null
wait_for 20 is_final "$T2"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
DAEMON_PID=
check "SIGTERM: STOPPING=1" received "$NOUT" STOPPING=1
sink_stop

# No watchdog asked for: no pings.
NOUT2=$E2E_TMP/notify2.out
sink_start "$NSOCK" "$NOUT2"
printf '[store]\nlease = 0\n' >"$E2E_TMP/boxd.conf"
start_notify_daemon
wait_for 10 received "$NOUT2" READY=1
T4=$(hold_task 1 app:w0870)
wait_for 20 is_final "$T4" # a second and more of a running loop
equal "without WATCHDOG_USEC, no WATCHDOG=1" "$(count_of "$NOUT2" WATCHDOG=1)" 0
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
DAEMON_PID=
sink_stop

# ---- the journal ------------------------------------------------------------

# A mount namespace whose /run is a tmpfs with a dgram-sink at journald's
# socket; stderr is a file that JOURNAL_STREAM names (as systemd names the
# journal's stream).
JOUT=$E2E_TMP/journal.out
ERR=$E2E_TMP/stderr.txt
: >"$ERR"
JS="$(stat -c '%d:%i' "$ERR")"
cat >"$E2E_TMP/in-ns.sh" <<EOF
mount --make-rprivate / && mount -t tmpfs boxd-t0870 /run && mkdir -p /run/systemd/journal || exit 1
# Not a child of the shell that becomes boxd: boxd takes the children it
# finds at start for workers of its previous image.
setsid -f "$DGRAM_SINK" /run/systemd/journal/socket >"$JOUT" 2>&1
for i in \$(seq 100); do grep -q '^@@ listening' "$JOUT" && break; sleep 0.05; done
exec env JOURNAL_STREAM=$JS "$BOXD" serve --state-dir "$STATE" ${BOXD_TEST_ENGINE_SOCKET:+--engine-socket "$BOXD_TEST_ENGINE_SOCKET"} 2>>"$ERR"
EOF
rm -rf "$STATE"
mkdir -p "$STATE"
BOXD_E2E_TAG=$E2E_TAG unshare -m bash "$E2E_TMP/in-ns.sh" &
DAEMON_PID=$!
wait_for 15 _daemon_answers_or_died && daemon_answers || bail "boxd did not start under JOURNAL_STREAM: $(cat "$ERR")"
J1=$(hold_task 60 app:j0870)
J2=$(hold_task 1 app:j0870)
wait_for 20 state_is "$J2" waiting
api POST "/tasks/$J1/stop" >/dev/null
wait_for 20 is_final "$J2"
# entry FIELD=VALUE...: one journal entry holds all of them.
entry() {
	awk -v want="$*" 'BEGIN { n = split(want, w, " ") }
		/^@@ / { if (hit == n && n > 0) found = 1; hit = 0; delete seen; next }
		{ for (i = 1; i <= n; i++) if ($0 == w[i] && !seen[i]) { seen[i] = 1; hit++ } }
		END { if (hit == n) found = 1; exit !found }' "$JOUT"
}
check "the daemon's lines are journal entries: SYSLOG_IDENTIFIER=boxd, PRIORITY=6" \
	entry SYSLOG_IDENTIFIER=boxd PRIORITY=6
daemon_task_line() { # a daemon's line (not the worker's: no APP_ID) about task $1
	awk -v t="TASK_ID=$1" -v p="$DAEMON_PID" '/^@@ pid=/ { split($2, a, "="); pid = a[2]; next }
		pid == p && $0 == t { f = 1 } END { exit !f }' "$JOUT"
}
check "... its lines about task $J1 (\"task $J1 ...\") carry TASK_ID=$J1" daemon_task_line "$J1"
check "the worker of task $J2 copies its lines with TASK_ID=$J2" entry "TASK_ID=$J2" PRIORITY=6
check "... its waiting line with LOCK=app:j0870" entry "TASK_ID=$J2" LOCK=app:j0870
check "no text line on the journal stream (stderr)" sh -c "! grep -q ' INFO ' '$ERR'"
check "the worker's task log still has its lines as text" grep -q "INFO .*task $J2 (hold) starting" "$STATE/logs/tasks/$J2.log"
# An app task's worker adds APP_ID= (needs the test env's engine).
if [ -n "${BOXD_TEST_ENGINE_SOCKET:-}" ] && [ -n "${BOXD_TEST_APP_IMAGE:-}" ]; then
	on_exit engine_rm_containers "app-$APP_PREFIX-"
	A=$(install_app "$APP_PREFIX-j" "$BOXD_TEST_APP_IMAGE")
	wait_for 60 is_final "$A"
	check "an app task's worker adds APP_ID= ($APP_PREFIX-j)" entry "TASK_ID=$A" "APP_ID=$APP_PREFIX-j"
	U=$(app_task "$APP_PREFIX-j" uninstall)
	wait_for 60 is_final "$U"
else
	skip "an app task's worker adds APP_ID=" "no container engine (test env not started)"
fi
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
DAEMON_PID=
diag "journal entries received: $(grep -c '^@@ pid=' "$JOUT")"

# ---- NoNewPrivileges and sudo ------------------------------------------------

rm -rf "$STATE"
setpriv --no-new-privs "$BOXD" serve --state-dir "$STATE" --task-user nobody >"$E2E_TMP/nnp.log" 2>&1
rc=$?
check "[tasks] user under no_new_privs: boxd refuses to start, naming the drop-in" \
	sh -c "[ $rc = 1 ] && grep -q 'set NoNewPrivileges=no in a drop-in' '$E2E_TMP/nnp.log'"

# ---- the unit's exposure ------------------------------------------------------

UNIT=$BUILD_DIR/dist/boxd.service
# The settings for which systemd gives the service a mount namespace of its
# own (exec_needs_mount_namespace() in systemd's execute.c): boxd's mounts
# on the roots would then never reach the engine in the host's namespace.
MNTNS='RootImage|RootDirectory|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|ExecPaths|NoExecPaths|BindPaths|BindReadOnlyPaths|TemporaryFileSystem|MountImages|ExtensionImages|ExtensionDirectories|MountFlags|PrivateTmp|PrivateDevices|PrivateMounts|PrivateNetwork|NetworkNamespacePath|PrivateIPC|IPCNamespacePath|ProtectSystem|ProtectHome|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectProc|ProcSubset|LogNamespace'
equal "the unit sets nothing that gives it a mount namespace" "$(grep -E "^($MNTNS)=" "$UNIT")" ""
systemd-analyze security --offline=yes "$UNIT" >"$E2E_TMP/security" 2>&1
score=$(sed -n 's/.*Overall exposure level for boxd.service: \([0-9.]*\).*/\1/p' "$E2E_TMP/security")
diag "systemd-analyze security --offline=yes: exposure $score"
check "systemd-analyze security: exposure below 6.0 (it was 9.6 before the hardening)" \
	awk -v s="$score" 'BEGIN { exit !(s != "" && s < 6.0) }'
done_testing
