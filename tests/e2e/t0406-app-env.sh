#!/usr/bin/env bash
# t0406-app-env.sh — env with set/unset semantics (issue 13).
#
# `app configure --env FOO=` used to replace the whole env silently. Now:
# - PATCH /api/v1/apps/:id/env {"set":{..},"unset":[..]} (boxctl app env
#   set / unset) changes only those variables; the container is recreated
#   with the rest kept; two patches queued back to back both count;
# - `app env list` prints KEY=VALUE lines;
# - `app configure --env` without --replace-all is refused (exit 2, nothing
#   queued); with it the env is exactly what was given;
# - bad patches are 400/404 with nothing queued.
#
# TAP. Needs the test env (BOXD_TEST_ENGINE_SOCKET, BOXD_TEST_APP_IMAGE).
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE

A=$APP_PREFIX-env
T=60
plan 18
apps_setup
daemon_start --config "$APPS_CONF"
ctl() { "$BOXCTL" --socket "$SOCK" "$@"; }
# ctl_wait ARGS: a boxctl --wait, its progress lines as TAP diagnostics.
ctl_wait() { ctl "$@" | sed "s/^/# /"; return "${PIPESTATUS[0]}"; }
env_of() { container_inspect "app-$A" '[.Config.Env[] | select(test("^(A|B|C|D|X)="))] | sort | join(" ")'; }

tid=$(install_app "$A" "$BOXD_TEST_APP_IMAGE" '{"A":"1","B":"2","C":"3"}') || tid=
check "install with A, B, C" wait_task "$tid" $T

check "env set A=10 D=4: succeeds" ctl_wait app env set "$A" A=10 D=4 --wait
equal "env set: A changed, D added, B and C kept (container)" "$(env_of)" "A=10 B=2 C=3 D=4"
equal "env set: the app's env" "$(app "$A" '.env | tojson')" '{"A":"10","B":"2","C":"3","D":"4"}'

check "env unset B: succeeds" ctl_wait app env unset "$A" B --wait
equal "env unset: only B gone" "$(env_of)" "A=10 C=3 D=4"
equal "env list: KEY=VALUE lines" "$(ctl app env list "$A" | tr '\n' ' ')" "A=10 C=3 D=4 "

# Two patches queued back to back: the second applies to the first's result.
req PATCH "/apps/$A/env" '{"set":{"X":"1"}}'
t1=$(jq -r .taskId <<<"$BODY")
req PATCH "/apps/$A/env" '{"unset":["C"]}'
t2=$(jq -r .taskId <<<"$BODY")
check "two patches back to back: both succeed" eval 'wait_task "$t1" $T && wait_task "$t2" $T'
equal "two patches: both count" "$(env_of)" "A=10 D=4 X=1"

# configure --env: explicit or refused.
n=$(all_tasks | jq length)
ctl app configure "$A" --env ONLY=1 >/dev/null 2>"$E2E_TMP/err"
equal "configure --env without --replace-all: exit 2" "$?" 2
check "... says why" grep -q -- "--replace-all" "$E2E_TMP/err"
equal "... and queues nothing" "$(all_tasks | jq length)" "$n"
check "configure --env X=9 --replace-all: succeeds" ctl_wait app configure "$A" --env X=9 --replace-all --wait
equal "configure --replace-all: the env is exactly X=9" "$(app "$A" '.env | tojson')" '{"X":"9"}'

# Bad patches: nothing queued.
n=$(all_tasks | jq length)
bad() { req PATCH "$2" "$3"; [ "$STATUS" = "$1" ] || diag "$STATUS $BODY"; [ "$STATUS" = "$1" ]; }
check "bad patches: 400 (empty, unset not an array, set and unset, bad name, bad value), 404 unknown app" eval '
	bad 400 "/apps/$A/env" "{}" && bad 400 "/apps/$A/env" "{\"unset\":\"B\"}" &&
	bad 400 "/apps/$A/env" "{\"set\":{\"B\":\"1\"},\"unset\":[\"B\"]}" &&
	bad 400 "/apps/$A/env" "{\"unset\":[\"1B\"]}" && bad 400 "/apps/$A/env" "{\"set\":{\"B\":1}}" &&
	bad 404 "/apps/$APP_PREFIX-nope/env" "{\"set\":{\"B\":\"1\"}}"'
# An empty patch or configure names the fields it takes (one message
# builder serves both).
req PATCH "/apps/$A/env" '{}'
equal "empty patch: says what it needs" "$(jq -r .error.message <<<"$BODY")" 'an env patch needs "set" and/or "unset"'
req POST "/apps/$A/configure" '{}'
equal "empty configure: 400, says what it needs" "$STATUS $(jq -r .error.message <<<"$BODY")" \
	'400 configure needs "env", "dataDir", "ports", "domains" and/or "httpPort"'
equal "bad patches: nothing queued" "$(all_tasks | jq length)" "$n"

done_testing
