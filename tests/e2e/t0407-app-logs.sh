#!/usr/bin/env bash
# t0407-app-logs.sh — GET /api/v1/apps/:id/logs and `boxctl app logs`
# (issue 13): the container's stdout and stderr from the engine, all or the
# last N lines. Lines are written by the container's own PID 1 output
# (podman exec writing to /proc/1/fd/1 and 2). follow=1 is not built yet:
# 501. Bad tail: 400; unknown app: 404.
#
# TAP. Needs the test env (BOXD_TEST_ENGINE_SOCKET, BOXD_TEST_APP_IMAGE).
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF

A=$APP_PREFIX-log
plan 8
apps_setup
daemon_start --config "$APPS_CONF"
ctl() { "$BOXCTL" --socket "$SOCK" "$@"; }

tid=$(install_app "$A" "$BOXD_TEST_APP_IMAGE") || tid=
check "install" wait_task "$tid" 60
in_container "app-$A" sh -c 'for i in 1 2 3 4; do echo "out $i" >/proc/1/fd/1; done; echo "err 5" >/proc/1/fd/2'
has_all() { api GET "/apps/$A/logs" | grep -c '^\(out [1-4]\|err 5\)$' | grep -qx 5; }
check "logs: every line, stdout and stderr" wait_for 10 has_all
equal "logs?tail=2: the last two lines" "$(api GET "/apps/$A/logs?tail=2" | tr '\n' ' ')" "out 4 err 5 "
equal "boxctl app logs --tail 3" "$(ctl app logs "$A" --tail 3 | tr '\n' ' ')" "out 3 out 4 err 5 "
req GET "/apps/$A/logs?follow=1"
equal "follow=1: 501 (not built yet)" "$STATUS" 501
req GET "/apps/$A/logs?tail=0"
equal "tail=0: 400" "$STATUS" 400
req GET "/apps/$A/logs?tail=x"
equal "tail=x: 400" "$STATUS" 400
req GET "/apps/$APP_PREFIX-nope/logs"
equal "unknown app: 404" "$STATUS" 404

done_testing
