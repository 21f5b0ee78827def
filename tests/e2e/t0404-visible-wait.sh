#!/usr/bin/env bash
# t0404-visible-wait.sh — an app task waits visibly for a lock held by
# another task, while an app task of another app runs at once (issue 6).
#
# Two installed apps A and B. A `hold` task takes app:A exclusively for 30 s;
# a restart of A then shows state "waiting", message "Waiting for app:A (held
# by task N, hold)" and waitingFor {lock: app:A, heldBy: N}; a restart of B,
# submitted after it, runs and finishes within 5 s while A's still waits.
# Stopping the hold lets A's restart run and succeed.
#
# TAP. Needs the test env (scripts/test-env.sh). The trap kills the daemon
# and its workers, removes our containers and the temp dir, also on failure.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF

A=$APP_PREFIX-a
B=$APP_PREFIX-b

plan 12
apps_setup
daemon_start --config "$APPS_CONF"

ta=$(install_app "$A" "$BOXD_TEST_APP_IMAGE") || ta=
tb=$(install_app "$B" "$BOXD_TEST_APP_IMAGE") || tb=
both_installed() { [ -n "$ta" ] && [ -n "$tb" ] && wait_task "$ta" 30 && wait_task "$tb" 30; }
check "A and B are installed" both_installed

hold=$(hold_task 30 "app:$A") || hold=
check "a hold task on app:$A runs" wait_for 10 state_is "$hold" running
equal "the hold holds app:$A" "$(holder_of "app:$A")" "$hold"

ra=$(app_task "$A" restart) || ra=
check "restart of A: waiting" wait_for 10 state_is "$ra" waiting
equal "restart of A: the message names the lock, its holder and its type" \
	"$(task "$ra" .message)" "Waiting for app:$A (held by task $hold, hold)"
equal "restart of A: waitingFor {lock, heldBy}" "$(task "$ra" '[.waitingFor.lock, .waitingFor.heldBy] | join(" ")')" \
	"app:$A $hold"

t0=$(now_ms)
rb=$(app_task "$B" restart) || rb=
wait_for 10 is_final "$rb"
elapsed=$(($(now_ms) - t0))
diag "restart of B: submitted to finished in $elapsed ms"
equal "restart of B: succeeds while A waits" "$(task_state "$rb")" succeeded
check "restart of B: finished within 5 s ($elapsed ms)" test "$elapsed" -lt 5000
equal "restart of A: still waiting after B finished" "$(task_state "$ra")" waiting

req POST "/tasks/$hold/stop"
equal "stop the hold: 204" "$STATUS" 204
check "restart of A: runs and succeeds once the hold is gone" wait_task "$ra" 30
equal "A's container runs" "$(container_state "app-$A")" running

done_testing
