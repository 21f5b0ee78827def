#!/usr/bin/env bash
# t0402-burst.sh — a burst of 40 app tasks over 12 apps (issue 6).
#
# With --app-concurrency 5 and the sftp quiet period at 1 s, the test
# submits, as fast as one curl can (one connection, --next):
#   12 installs (app 12 with a custom data dir under /srv, outside the
#      appsdata root: the only change of the sftp mount spec),
#   24 configures (env) and restarts/updates, two per app, in an order that
#      differs between odd and even apps,
#    4 uninstalls (apps 1-4);
# waits (with a deadline) until all are final, and checks from GET
# /api/v1/tasks (startedAt/finishedAt, RFC 3339 ms):
#   - every task succeeded;
#   - per app, the tasks ran in submission order and never overlapped;
#   - at no moment did more than 5 app tasks run (a sweep over the start and
#     finish events), and more than one did (parallelism happened);
#   - every app ends as expected: apps 1-4 gone (row, container, data dir),
#     5-12 installed and running with the configured env, app 12 at its
#     custom dir;
#   - sftp: no `service.rebuild` task was created while the burst ran; after
#     it, exactly one (the custom path changed), and it succeeds and binds
#     the custom dir. Before the burst the sftp container is brought in line
#     with the spec, so that the burst is the only change. Without the
#     services module in the daemon these checks are skipped.
# TAP comments give the numbers: tasks, wall time, max concurrency, rebuilds.
#
# TAP. Needs the test env (scripts/test-env.sh). The trap kills the daemon
# and its workers, removes our containers (and the sftp container our daemon
# made), unmounts and removes the temp dirs, also on failure.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF

N=5           # --app-concurrency
DEADLINE=150  # seconds for the whole burst
IMG=$BOXD_TEST_APP_IMAGE

plan 15
apps_setup
outside_dir /srv || bail "cannot make a temp dir under /srv"
OUT=$OUTSIDE
daemon_start --config "$APPS_CONF" --app-concurrency "$N"
ROOT=$STATE/appsdata

app_id() { printf '%s-b%02d' "$APP_PREFIX" "$1"; }
CUSTOM=$OUT/app12-data

SERVICES=no
services_available && SERVICES=yes
diag "services module: $SERVICES"

# Bring sftp in line with the current spec first, so that only the burst
# changes it; then let the scheduler's own quiet period pass.
if [ $SERVICES = yes ]; then
	req POST /services/sftp/rebuild
	pre=$(jq -r '.taskId // empty' <<<"$BODY")
	if [ "$STATUS" != 202 ] || [ -z "$pre" ] || ! wait_task "$pre" 60; then
		diag "the rebuild before the burst failed: $STATUS $BODY"
	fi
	sleep 2
fi
base=$(all_tasks | jq 'map(.id) | max // 0')

# ---- the burst ---------------------------------------------------------------

reqs=() # "PATH BODY" lines, in submission order
for i in $(seq 1 12); do
	if [ "$i" = 12 ]; then
		body=$(jq -nc --arg id "$(app_id $i)" --arg img "$IMG" --arg d "$CUSTOM" \
			'{id: $id, image: $img, env: {N: "0"}, dataDir: $d}')
	else
		body=$(jq -nc --arg id "$(app_id $i)" --arg img "$IMG" '{id: $id, image: $img, env: {N: "0"}}')
	fi
	reqs+=("/apps $body")
done
second() { # the restart-like task of app $1
	if [ $(($1 % 4)) = 1 ]; then
		echo "/apps/$(app_id $1)/update {\"image\":\"$IMG\"}"
	else
		echo "/apps/$(app_id $1)/restart {}"
	fi
}
configure() { echo "/apps/$(app_id $1)/configure {\"env\":{\"N\":\"1\",\"APP\":\"$(app_id $1)\"}}"; }
for i in $(seq 1 12); do
	if [ $((i % 2)) = 1 ]; then reqs+=("$(configure $i)"); else reqs+=("$(second $i)"); fi
done
for i in $(seq 1 12); do
	if [ $((i % 2)) = 1 ]; then reqs+=("$(second $i)"); else reqs+=("$(configure $i)"); fi
done
for i in 1 2 3 4; do
	reqs+=("/apps/$(app_id $i)/uninstall {}")
done

args=()
k=0
for r in "${reqs[@]}"; do
	[ $k -gt 0 ] && args+=(--next)
	args+=(-s --unix-socket "$SOCK" -o "$E2E_TMP/burst.$k" -w '%{http_code}\n' -X POST
		-H 'Content-Type: application/json' --data-binary "${r#* }" "http://boxd/api/v1${r%% *}")
	k=$((k + 1))
done
t_submit=$(now_ms)
codes=$(curl "${args[@]}" 2>/dev/null)
t_submitted=$(now_ms)
diag "submitted ${#reqs[@]} requests in $((t_submitted - t_submit)) ms"
equal "burst: all ${#reqs[@]} requests accepted (202)" "$(sort <<<"$codes" | uniq -c | awk '{ print $1 "x" $2 }')" "40x202"
ids=()
for ((k = 0; k < ${#reqs[@]}; k++)); do
	ids+=("$(jq -r '.taskId // empty' "$E2E_TMP/burst.$k" 2>/dev/null)")
done
idlist=$(printf '%s\n' "${ids[@]}" | jq -sc 'map(select(. != null))')

# Done when none of them is active (polled every 0.2 s: the machine has
# better things to do than answer us).
burst_active() {
	local got
	got=$(api GET '/tasks?state=active&per_page=1000') || { echo 999; return; }
	jq --argjson ids "$idlist" '[.tasks[] | select(.id as $i | $ids | index($i))] | length' <<<"$got"
}
burst_done() {
	local until=$(($(now_ms) + DEADLINE * 1000))
	while [ "$(burst_active)" != 0 ]; do
		[ "$(now_ms)" -ge "$until" ] && return 1
		sleep 0.2
	done
}
check "burst: all 40 tasks final within $DEADLINE s" burst_done
t_done=$(now_ms)
all_tasks >"$E2E_TMP/tasks.json"

# The burst's tasks, ids ascending (= submission order), with ms times.
jq --argjson ids "$idlist" '
	def ms: if . == null then null else (.[0:19] + "Z" | fromdateiso8601) * 1000 + (.[20:23] | tonumber) end;
	[.[] | select(.id as $i | $ids | index($i))
	     | {id, type, appId, state, error, c: (.createdAt | ms), s: (.startedAt | ms), f: (.finishedAt | ms)}]
	| sort_by(.id)' "$E2E_TMP/tasks.json" >"$E2E_TMP/burst.json"

equal "burst: every task succeeded" \
	"$(jq -c '[.[] | select(.state != "succeeded") | {id, type, appId, state, error}]' "$E2E_TMP/burst.json")" '[]'
equal "burst: the tasks are 12 installs, 12 configures, 9 restarts, 3 updates, 4 uninstalls" \
	"$(jq -c 'group_by(.type) | map({(.[0].type): length}) | add' "$E2E_TMP/burst.json")" \
	'{"configure":12,"install":12,"restart":9,"uninstall":4,"update":3}'

# Per app: in submission (id) order, each started after the one before it
# finished.
bad_order=$(jq -c '
	group_by(.appId) | map(sort_by(.id) | . as $t
		| [range(1; length) | select($t[.].s == null or $t[. - 1].f == null or $t[.].s < $t[. - 1].f)
		   | {app: $t[.].appId, before: $t[. - 1].id, after: $t[.].id}]) | add' "$E2E_TMP/burst.json")
equal "per app: tasks ran in submission order and never overlapped" "$bad_order" '[]'

# The sweep: +1 at each start, -1 at each finish (a finish first when they
# fall in the same ms: a slot is freed before it is reused).
maxc=$(jq '[.[] | [.s, 1], [.f, -1]] | sort_by(.[0], .[1])
	| reduce .[] as $e ({cur: 0, max: 0}; .cur += $e[1] | .max = ([.max, .cur] | max)) | .max' "$E2E_TMP/burst.json")
check "at no moment more than $N app tasks ran (max seen: $maxc)" test "$maxc" -le "$N"
check "app tasks ran in parallel (max seen: $maxc > 1)" test "$maxc" -gt 1

first_c=$(jq 'map(.c) | min' "$E2E_TMP/burst.json")
last_f=$(jq 'map(.f) | max' "$E2E_TMP/burst.json")
wall=$((last_f - first_c))
mean=$(jq '[.[] | .f - .s] | add / length | floor' "$E2E_TMP/burst.json")

# ---- the end state -------------------------------------------------------------

gone_ok=0 inst_ok=0
for i in $(seq 1 12); do
	a=$(app_id $i)
	if [ "$i" -le 4 ]; then
		if [ "$(app_state "$a")" = absent ] && [ "$(container_state "app-$a")" = absent ] && [ ! -e "$ROOT/$a" ]; then
			gone_ok=$((gone_ok + 1))
		else
			diag "$a: state $(app_state "$a"), container $(container_state "app-$a"), dir $(ls -d "$ROOT/$a" 2>&1)"
		fi
	else
		want_dir=$ROOT/$a
		[ "$i" = 12 ] && want_dir=$CUSTOM
		got="$(app_state "$a") $(container_state "app-$a") $(app "$a" .dataDir)"
		got="$got $(in_container "app-$a" sh -c 'echo "$N/$APP"; ls -d /app/data' 2>&1 | tr '\n' ' ')"
		want="installed running $want_dir 1/$a /app/data "
		if [ "$got" = "$want" ] && [ -d "$want_dir" ]; then
			inst_ok=$((inst_ok + 1))
		else
			diag "$a: got '$got', want '$want'"
		fi
	fi
done
equal "apps 1-4: row, container and data dir gone" "$gone_ok" 4
equal "apps 5-12: installed, running, configured env, data dir in place" "$inst_ok" 8
equal "GET /apps lists exactly apps 5-12" "$(api GET /apps | jq -c '[.apps[].id]')" \
	"$(for i in $(seq 5 12); do app_id "$i"; echo; done | jq -Rsc 'split("\n") | map(select(. != ""))')"

# ---- the sftp rebuild after the burst --------------------------------------------

# The scheduler queues it after the quiet period (1 s); give it time to
# appear and to run, and then some more to see that no second one comes.
rebuilds() { all_tasks | jq -c --argjson b "$base" '[.[] | select(.id > $b and .type == "service.rebuild")]'; }
rebuild_queued() { [ "$(rebuilds | jq length)" -ge 1 ]; }
rebuild_final() { [ "$(rebuilds | jq '[.[] | select(.state | IN("queued","waiting","running"))] | length')" = 0 ]; }
if [ $SERVICES = yes ] && wait_for 15 rebuild_queued; then
	wait_for 90 rebuild_final
fi
sleep 2.5 # more than twice the quiet period: a second rebuild would show
rb=$(rebuilds)
nrb=$(jq length <<<"$rb")
early=$(jq -c --argjson f "$last_f" '
	def ms: (.[0:19] + "Z" | fromdateiso8601) * 1000 + (.[20:23] | tonumber);
	[.[] | select((.createdAt | ms) < $f) | .id]' <<<"$rb")
equal "sftp: no rebuild was queued while the burst ran" "$early" '[]'
if [ $SERVICES = yes ]; then
	equal "sftp: exactly one rebuild after the burst (a custom path changed)" "$nrb" 1
	equal "sftp: the rebuild succeeded" "$(jq -r '[.[].state] | join(",")' <<<"$rb")" succeeded
	equal "sftp: the container binds app 12's custom dir" \
		"$(container_inspect boxd-sftp "[.Mounts[] | select(.Source == \"$CUSTOM\") | .Destination] | join(\",\")")" \
		"/mnt/custom/apps/$(app_id 12)"
else
	skip "sftp: exactly one rebuild after the burst (a custom path changed)" "services module not in this daemon"
	skip "sftp: the rebuild succeeded" "services module not in this daemon"
	skip "sftp: the container binds app 12's custom dir" "services module not in this daemon"
fi
equal "sftp: the rebuild did not recreate a removed data dir" "$(ls -d "$ROOT/$(app_id 1)" "$ROOT/$(app_id 4)" 2>/dev/null)" ""

diag "tasks: ${#reqs[@]} over 12 apps, --app-concurrency $N"
diag "wall time: $wall ms (first created → last finished); submit $((t_submitted - t_submit)) ms; seen done after $((t_done - t_submit)) ms"
diag "max concurrency seen: $maxc; mean task run time $mean ms"
diag "rebuilds after the burst: $nrb ($(jq -c 'map({id, state, error: .error.code})' <<<"$rb"))"

done_testing
