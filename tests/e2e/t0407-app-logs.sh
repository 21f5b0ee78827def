#!/usr/bin/env bash
# t0407-app-logs.sh — GET /api/v1/apps/:id/logs and `boxctl app logs`
# (issue 13): the container's stdout and stderr from the engine, all or the
# last N lines, and followed (follow=1, server-sent events; `app logs -f`):
# a line the container writes arrives while the stream is open; the stream
# ends with an "end" event when the container stops, at once when the
# client goes away (not at the next keepalive), and when boxd stops.
# Lines are written by the container's own PID 1 output (podman or docker
# exec writing to /proc/1/fd/1 and 2). Bad tail or follow: 400; unknown
# app: 404. Also run against dockerd: "t0407-app-logs (docker)", suite extra.
#
# TAP. Needs the test env (BOXD_TEST_ENGINE_SOCKET, BOXD_TEST_APP_IMAGE).
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF

A=$APP_PREFIX-log
plan 21
apps_setup
daemon_start --config "$APPS_CONF"
ctl() { "$BOXCTL" --socket "$SOCK" "$@"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
say() { in_container "app-$A" sh -c "echo '$1' >/proc/1/fd/1"; }

tid=$(install_app "$A" "$BOXD_TEST_APP_IMAGE") || tid=
check "install" wait_task "$tid" 60
# stdout and stderr reach the engine through pipes of their own (Docker
# copies each in its own goroutine): the stderr line is written once the
# stdout lines are in the log, so that the order is the same on both.
in_container "app-$A" sh -c 'for i in 1 2 3 4; do echo "out $i" >/proc/1/fd/1; done'
has_outs() { api GET "/apps/$A/logs" | grep -c '^out [1-4]$' | grep -qx 4; }
wait_for 10 has_outs
in_container "app-$A" sh -c 'echo "err 5" >/proc/1/fd/2'
has_all() { api GET "/apps/$A/logs" | grep -c '^\(out [1-4]\|err 5\)$' | grep -qx 5; }
check "logs: every line, stdout and stderr" wait_for 10 has_all
equal "logs?tail=2: the last two lines" "$(api GET "/apps/$A/logs?tail=2" | tr '\n' ' ')" "out 4 err 5 "
equal "boxctl app logs --tail 3" "$(ctl app logs "$A" --tail 3 | tr '\n' ' ')" "out 3 out 4 err 5 "

# ---- following -------------------------------------------------------------
F=$E2E_TMP/follow
# Background clients carry the test's tag (the cleanup kills them), and
# are simple commands: $! is the client itself.
BOXD_E2E_TAG=$E2E_TAG curl -sN -D "$F.head" -o "$F.out" --unix-socket "$SOCK" "http://boxd/api/v1/apps/$A/logs?follow=1&tail=1" &
curl_pid=$!
check "follow=1&tail=1: the last line first" wait_for 10 grep -qsx 'data: err 5' "$F.out"
check "follow=1: text/event-stream" grep -qi '^Content-Type: text/event-stream' "$F.head"
say "live 6"
check "follow=1: a line written now arrives" wait_for 10 grep -qsx 'data: live 6' "$F.out"
equal "follow=1: only the tail and the new line" "$(grep -c '^data:' "$F.out")" 2

BOXD_E2E_TAG=$E2E_TAG "$BOXCTL" --socket "$SOCK" app logs "$A" -f --tail 1 >"$F.ctl" 2>"$F.ctl.err" &
ctl_pid=$!
check "app logs -f --tail 1: the last line" wait_for 10 grep -qsx 'live 6' "$F.ctl"
say "live 7"
check "app logs -f: a line written now arrives" wait_for 10 grep -qsx 'live 7' "$F.ctl"
check "follow=1: the first stream sees it too" wait_for 10 grep -qsx 'data: live 7' "$F.out"

# The client goes away: its stream (a connection thread of boxd, and its
# engine connection) ends at once, not at the next keepalive (15 s).
before=$(threads)
kill "$curl_pid"
wait "$curl_pid" 2>/dev/null
fewer() { [ "$(threads)" -lt "$before" ]; }
check "a client that goes away ends its stream within 3 s" wait_for 3 fewer
diag "threads of boxd: $before with both streams, $(threads) after"

# boxd stops while a stream is open: it does not wait for the stream, and
# boxctl says the stream ended before the container did (exit 3).
t0=$(now_ms)
kill -TERM "$DAEMON_PID"
check "boxd stops within 5 s with a log stream open" wait_for 5 gone "$DAEMON_PID"
diag "boxd stopped in $(($(now_ms) - t0)) ms with a log stream open"
wait "$ctl_pid"
equal "app logs -f: exit 3 when boxd went away" "$?" 3
daemon_start --config "$APPS_CONF"

# The container stops: the stream ends with its state; boxctl exits 0.
BOXD_E2E_TAG=$E2E_TAG "$BOXCTL" --socket "$SOCK" app logs "$A" -f --tail 1 >"$F.ctl2" 2>"$F.ctl2.err" &
ctl_pid=$!
check "app logs -f again: open" wait_for 10 grep -qsx 'live 7' "$F.ctl2"
engine POST "/containers/app-$A/stop?t=1"
check "app logs -f ends when the container stops" wait_for 15 gone "$ctl_pid"
wait "$ctl_pid"
equal "app logs -f: exit 0" "$?" 0
check "app logs -f: says the container exited" grep -q "is exited (exit code" "$F.ctl2.err"

req GET "/apps/$A/logs?tail=0"
equal "tail=0: 400" "$STATUS" 400
req GET "/apps/$A/logs?follow=x"
equal "follow=x: 400" "$STATUS" 400
req GET "/apps/$APP_PREFIX-nope/logs?follow=1"
equal "unknown app: 404" "$STATUS" 404

done_testing
