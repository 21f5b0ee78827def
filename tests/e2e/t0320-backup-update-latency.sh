#!/usr/bin/env bash
# t0320-backup-update-latency.sh — an update waiting for a full backup does
# not make app tasks wait for that backup (issue 20).
#
# Six apps, each with T0320_DATA_MB (default 64) MiB of /dev/urandom in its
# data dir, backed up as gzip (slower than zstd: a longer backup for the
# same data). The issue's case is 6 × 500 MiB (T0320_DATA_MB=500 runs it);
# the property is the same with less data, only the backup is shorter — it
# must last long enough for the update and the app tasks to be submitted
# while it runs, which the test checks (from the tasks' times). Then:
#   - a full backup runs (it holds `platform` shared throughout);
#   - once it runs, a platform update (skipBackup) is submitted; past its
#     package checks it waits, visibly (waitingFor.deferred, "Waiting for
#     the full backup ... app tasks go on meanwhile"), and takes no place in
#     the lock queue;
#   - app tasks (restarts) of apps 1 and 2, submitted after that once the
#     backup is done with them (it works on app 4 or later), start within
#     1 s each (their start latencies are printed: the closing-note
#     number), while the backup still runs;
#   - the update applies only after the backup released `platform` (the
#     time it took `platform` exclusive is after the backup ended), and
#     succeeds: the daemon re-executes into the new release.
# TAP. Needs the test env (the engine, the app image).
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF
: "${BOXCTL:?BOXCTL must point at the boxctl binary}"

DATA_MB=${T0320_DATA_MB:-64}
N=6
plan 10

IR=$E2E_TMP/install
BUILD_BOXD=$BOXD
make_release() {
	mkdir -p "$1/bin"
	cp "$BUILD_BOXD" "$BOXCTL" "$1/bin/"
	jq -n --arg v "$2" '{version: $v, built: "t0320"}' >"$1/manifest.json"
}
make_release "$IR/releases/0.1.0" 0.1.0
ln -s releases/0.1.0 "$IR/current"
PKG=$E2E_TMP/boxd-9.9.9-t0320.tar.gz
make_release "$E2E_TMP/pkg" 9.9.9-t0320
tar -czf "$PKG" -C "$E2E_TMP/pkg" .
PKG_SHA=$(sha256sum "$PKG" | cut -d' ' -f1)

# T0320_EXTRA_INI (e.g. $'[tasks]\nbackup_wait_max = 0', the rule off)
# shows what the test catches without it.
apps_setup "$(printf '[update]\ninstall_root = %s\n[backups]\nformat = gzip\n%s\n' "$IR" "${T0320_EXTRA_INI:-}")"
BOXD=$IR/current/bin/boxd
daemon_start --config "$APPS_CONF" --app-concurrency 5
wait_for 120 eval '[ "$(api GET "/tasks?state=active" | jq ".tasks | length")" = 0 ]'

APPS=()
for i in $(seq 1 $N); do APPS+=("$APP_PREFIX-app$i"); done
installs_ok() {
	local a t ids=()
	for a in "${APPS[@]}"; do
		t=$(install_app "$a" "$BOXD_TEST_APP_IMAGE") || return 1
		ids+=("$t")
	done
	for t in "${ids[@]}"; do wait_task "$t" 180 || return 1; done
}
check "$N apps installed" installs_ok
t0=$(now_ms)
for a in "${APPS[@]}"; do
	for k in 1 2; do
		head -c $((DATA_MB * 1024 * 1024 / 2)) /dev/urandom >"$STATE/appsdata/$a/blob$k.bin"
	done
done
diag "wrote $((N * DATA_MB)) MiB of random data in $(($(now_ms) - t0)) ms"
# Let the sftp rebuild after the installs pass (it would not block
# anything here, but keeps the picture clean).
wait_for 120 eval '[ "$(api GET "/tasks?state=active" | jq ".tasks | length")" = 0 ]'

# ---- the full backup, the update, the app tasks ------------------------------

req POST /backups/create
FB=$(jq -r .taskId <<<"$BODY")
check "a full backup starts" test "$STATUS" = 202
# The update first checks its package (seconds): submitted as soon as the
# backup runs, it asks for platform while the backup is in the middle.
wait_for 60 state_is "$FB" running || diag "the backup does not run: $(task "$FB" '.state + " " + .message')"

req POST /updater/update "$(jq -nc --arg p "$PKG" --arg s "$PKG_SHA" '{package: $p, sha256: $s, skipBackup: true}')"
UP=$(jq -r .taskId <<<"$BODY")
PLATFORM=$(here platform) || bail "cannot read this host's id"
deferring() {
	[ "$(task "$UP" .waitingFor.deferred)" = true ] && [ "$(task "$UP" .waitingFor.lock)" = "$PLATFORM" ]
}
if ! wait_for 30 eval 'deferring || ! state_is $FB running waiting'; then :; fi
if ! state_is "$FB" running waiting; then
	diag "backup: $(task "$FB" '[.startedAt, .finishedAt, .state] | join(" ")'); update: $(task "$UP" '[.state, .message] | join(" ")')"
	bail "the backup ended before the update was seen waiting: raise T0320_DATA_MB"
fi
diag "backup at: $(task "$FB" .message)"
check "the update waits for the backup, visibly and outside the lock queue" deferring
diag "update $UP: $(task "$UP" .message)"
check "... it holds no ticket for platform (the queue is empty of it)" \
	test "$(api GET /locks | jq --argjson t "$UP" '[.queue[] | select(.task == $t)] | length')" = 0

# Tasks of apps the backup is done with (the app it archives right now is
# locked by it, rightly): wait until it works on app 4.
past_app3() { task "$FB" .message | grep -Eq "app [4-9] of"; }
wait_for 120 eval 'past_app3 || ! state_is $FB running waiting'
state_is "$FB" running waiting || bail "the backup ended before it reached app 4: raise T0320_DATA_MB"
diag "backup at: $(task "$FB" .message); update: $(task "$UP" .state)"
lat=() starts=()
late=0
for a in "${APPS[0]}" "${APPS[1]}"; do
	tid=$(app_task "$a" restart) || continue
	wait_for 30 eval "[ \"\$(task $tid .startedAt)\" != null ]"
	started=$(ms_of "$(task "$tid" .startedAt)")
	ms=$((started - $(ms_of "$(task "$tid" .createdAt)")))
	lat+=("$ms")
	starts+=("$started")
	[ "$ms" -le 1000 ] || late=$((late + 1))
	wait_task "$tid" 60 >/dev/null
done
diag "app-task start latencies during the backup, with the update waiting: ${lat[*]} ms (created → running)"
check "app tasks submitted after the update started within 1 s each" test "${#lat[@]}" = 2 -a "$late" = 0

# The update re-executes the daemon right after the backup ends; the API
# may be briefly away, also between two looks at the backup's state.
check "the full backup succeeds" eval 'wait_for 600 is_final $FB && wait_for 30 state_is $FB succeeded'
check "the update succeeds afterwards" wait_for 180 eval 'state_is $UP succeeded failed cancelled'
equal "... succeeded, into the new release" "$(task "$UP" .state) $(readlink "$IR/current")" \
	"succeeded releases/9.9.9-t0320"
# When did it take platform? Its log says, with the time.
took=$(api GET "/tasks/$UP/logs" | grep -m1 "took $PLATFORM exclusive" | cut -d' ' -f1)
fb_end=$(ms_of "$(task "$FB" .finishedAt)")
before_end() { local t; for t in "${starts[@]}"; do [ "$t" -lt "$fb_end" ] || return 1; done; }
check "... and they started while the backup still ran" before_end
took_ms=$( [ -n "$took" ] && ms_of "$took" || echo 0)
# The backup's worker releases its locks after it logged that it succeeded
# and before it records finishedAt: compare with that line, not with
# finishedAt (a millisecond later, which the update may beat).
fb_done=$(api GET "/tasks/$FB/logs" | grep -m1 "task $FB succeeded" | cut -d' ' -f1)
fb_done_ms=$( [ -n "$fb_done" ] && ms_of "$fb_done" || echo 0)
check "it took platform exclusive only after the backup was done ($((took_ms - fb_done_ms)) ms after)" \
	test -n "$took" -a -n "$fb_done" -a "$took_ms" -ge "$fb_done_ms"

done_testing
