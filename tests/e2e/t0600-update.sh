#!/usr/bin/env bash
# t0600-update.sh — the platform update (POST /api/v1/updater/update, task
# type platformupdate):
#  - the build is installed as release 0.1.0 under a temp install root and
#    the daemon runs as <install_root>/current/bin/boxd; /status shows the
#    version of the release it runs from;
#  - bad input is refused (400, 404); a bad SHA-256 fails the task with
#    bad_checksum before anything changes; a corrupt tarball (whose checksum
#    is right) fails with bad_package; an apply that cannot create its
#    release dir fails with apply_failed: `current` and the daemon are
#    unchanged each time;
#  - a real update to 9.9.9-test (package built here from the build's
#    binaries): it backs up first, then waits for `platform` while a hold of
#    platform:shared runs (an app task's lock), a second update is refused
#    with 409 naming it; once the hold stops the daemon re-execs into the new
#    release (same pid), the task ends succeeded, a task queued behind the
#    update completes, new workers run the new binary, and no worker is left
#    a zombie. /status is polled every 10 ms during the re-exec: the longest
#    gap between answers is reported as the API's downtime;
#  - `boxctl update apply FILE --skip-backup --wait` follows the task across
#    the re-exec to the end; re-applying the running version is refused.
# No container engine is configured: platformstart fails at each start and
# nothing else minds.
# shellcheck disable=SC2317 # functions run through check and wait_for
set -u
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
: "${BOXCTL:?BOXCTL must point at the boxctl binary}"
: "${STATUS_POLL:?STATUS_POLL must point at tests/tools/status-poll}"

plan 44
BUILD_BOXD=$BOXD
IR=$E2E_TMP/install
CONF=$E2E_TMP/boxd.conf
POLLER=
# shellcheck disable=SC2016 # expanded when the test exits
on_exit '[ -n "$POLLER" ] && kill "$POLLER"'

# make_release DIR VERSION: a release tree of the build's binaries.
make_release() {
	mkdir -p "$1/bin"
	cp "$BUILD_BOXD" "$BOXCTL" "$1/bin/"
	jq -n --arg v "$2" '{version: $v, built: "t0600"}' >"$1/manifest.json"
}
# make_package VERSION FILE: a .tar.gz update package.
make_package() {
	local dir=$E2E_TMP/pkg-$1
	make_release "$dir" "$1"
	tar -czf "$2" -C "$dir" .
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

make_release "$IR/releases/0.1.0" 0.1.0
ln -s releases/0.1.0 "$IR/current"
cat >"$CONF" <<EOF
[update]
install_root = $IR
[engine]
socket = $E2E_TMP/no-engine.sock
EOF

# The daemon runs from the install root, so that its re-exec lands in the
# release `current` points at.
BOXD=$IR/current/bin/boxd
daemon_start --config "$CONF" --stop-grace 2s
PID0=$DAEMON_PID

status_version() { api GET /status | jq -r .version; }
current() { readlink "$IR/current"; }
equal "status shows the version of the release boxd runs from" "$(status_version)" 0.1.0
equal "... and the version the binary was built as" "$(api GET /status | jq -r .buildVersion)" "$("$BUILD_BOXD" version | cut -d' ' -f2)"

PKG=$E2E_TMP/boxd-9.9.9-test.tar.gz
make_package 9.9.9-test "$PKG"
PKG_SHA=$(sha "$PKG")
upd_body() { jq -nc --arg p "$1" --arg s "$2" --argjson k "${3:-true}" '{package: $p, sha256: $s, skipBackup: $k}'; }

# ---- bad input ----------------------------------------------------------

req POST /updater/update "$(jq -nc --arg p "$PKG" '{package: $p}')"
equal "no sha256: 400" "$STATUS" 400
req POST /updater/update "$(upd_body pkg.tar.gz "$PKG_SHA")"
equal "a relative package path: 400" "$STATUS" 400
req POST /updater/update "$(upd_body "$PKG" nothex)"
equal "a sha256 that is not 64 hex digits: 400" "$STATUS" 400
req POST /updater/update "$(jq -nc --arg p "$PKG" --arg s "$PKG_SHA" '{package: $p, sha256: $s, force: true}')"
equal "an unknown field: 400" "$STATUS" 400
req POST /updater/update "$(upd_body "$E2E_TMP/missing.tar.gz" "$PKG_SHA")"
equal "a missing package: 404" "$STATUS" 404
req POST /tasks "$(jq -nc --arg p "$PKG" --arg s "$PKG_SHA" '{type: "platformupdate", args: {package: $p, sha256: $s}}')"
check "platformupdate cannot be created through POST /tasks" test "${STATUS:0:1}" = 4

# ---- refused before anything changes --------------------------------------

# run_update BODY: start an update, wait for it to end, print its id.
run_update() {
	req POST /updater/update "$1"
	[ "$STATUS" = 202 ] || { diag "POST /updater/update: $STATUS $BODY"; return 1; }
	local id
	id=$(jq -r .taskId <<<"$BODY")
	wait_for 60 is_final "$id" || diag "task $id did not end"
	echo "$id"
}
unchanged() {
	[ "$(current)" = releases/0.1.0 ] && [ "$(status_version)" = 0.1.0 ] && [ "$DAEMON_PID" = "$PID0" ] &&
		alive "$PID0" && [ "$(readlink "/proc/$PID0/exe")" = "$IR/releases/0.1.0/bin/boxd" ]
}

ZERO=$(printf '0%.0s' {1..64})
out=$("$BOXCTL" --socket "$SOCK" update apply "$PKG" --skip-backup --sha256 "$ZERO" --wait 2>&1)
code=$?
equal "boxctl update apply with a wrong --sha256 --wait exits 1" "$code" 1
T=$(api GET '/tasks?type=platformupdate' | jq -r '.tasks[0].id')
equal "a bad SHA-256: the task fails with bad_checksum" "$(task "$T" .error.code)" bad_checksum
diag "error.message: $(task "$T" .error.message)"
check "a bad SHA-256: current, the running release and the daemon are unchanged" unchanged
check "a bad SHA-256: no release dir was unpacked" test ! -e "$IR/releases/9.9.9-test"
equal "a bad SHA-256: no backup was made" "$(api GET /backups | jq '.backups | length')" 0

BAD=$E2E_TMP/corrupt.tar.gz
head -c $(($(stat -c %s "$PKG") / 2)) "$PKG" >"$BAD"
T=$(run_update "$(upd_body "$BAD" "$(sha "$BAD")" false)")
equal "a corrupt tarball (its checksum right): the task fails with bad_package" "$(task "$T" .error.code)" bad_package
diag "error.message: $(task "$T" .error.message)"
check "a corrupt tarball: nothing changed" unchanged

FAIL_PKG=$E2E_TMP/boxd-8.8.8-fail.tar.gz
make_package 8.8.8-fail "$FAIL_PKG"
echo "in the way" >"$IR/releases/8.8.8-fail"
T=$(run_update "$(upd_body "$FAIL_PKG" "$(sha "$FAIL_PKG")")")
equal "an apply that cannot create releases/8.8.8-fail: the task fails with apply_failed" \
	"$(task "$T" .error.code)" apply_failed
diag "error.message: $(task "$T" .error.message)"
check "a failed apply: current, the running release and the daemon are unchanged" unchanged
equal "a failed apply: what was in the way is untouched, no temp dir is left" \
	"$(cat "$IR/releases/8.8.8-fail") / $(find "$IR/releases" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' ')" \
	"in the way / 0.1.0 8.8.8-fail "

# ---- the update ------------------------------------------------------------

PLATFORM=$(here platform) || bail "cannot read this host's id"
H=$(hold_task 120 "$PLATFORM:shared") || bail "cannot create a hold task"
wait_for 15 state_is "$H" running || bail "hold $H did not run"
req POST /updater/update "$(upd_body "$PKG" "$PKG_SHA" false)"
equal "POST /updater/update: 202" "$STATUS" 202
U=$(jq -r .taskId <<<"$BODY")
waits_for_platform() {
	local t
	t=$(task "$1") || return 1
	[ "$(jq -r '[.state, .waitingFor.lock] | join(" ")' <<<"$t")" = "waiting $PLATFORM" ] &&
		[ "$(jq -r .waitingFor.heldBy <<<"$t")" = "$2" ]
}
check "the update backs up, then waits for platform held by the hold (an app task's lock)" \
	wait_for 30 waits_for_platform "$U" "$H"
diag "message: $(task "$U" .message)"
check "its message names platform and the holder" grep -q "Waiting for $PLATFORM (held by task $H, hold)" \
	<<<"$(task "$U" .message)"
equal "the backup before the update was made (a full backup, ok)" \
	"$(api GET /backups | jq -r '[.backups[] | select(.kind == "full") | .state] | join(",")')" ok
equal "current is unchanged while the update waits" "$(current)" releases/0.1.0
req POST /updater/update "$(upd_body "$PKG" "$PKG_SHA")"
equal "a second update while one waits: 409" "$STATUS" 409
equal "... naming the waiting update task" "$(jq -r .error.taskId <<<"$BODY")" "$U"
Q=$(hold_task 1 "$PLATFORM:shared") || bail "cannot create a hold task"
queued_behind() { [ "$(task "$1" '[.state, .waitingFor.heldBy, .waitingFor.queued] | join(" ")')" = "waiting $2 true" ]; }
check "a task that wants platform after the update queues behind it" wait_for 15 queued_behind "$Q" "$U"

# Poll /status every 10 ms while the daemon re-execs: "ms version|down".
POLL_LOG=$E2E_TMP/poll.log
"$STATUS_POLL" "$SOCK" 10 "$E2E_TMP/poll.stop" >"$POLL_LOG" &
POLLER=$!
sleep 0.3
req POST "/tasks/$H/stop"
equal "stop the hold: 204" "$STATUS" 204
on_new_release() { [ "$(status_version 2>/dev/null)" = 9.9.9-test ]; }
check "the daemon comes back on the new release (status version 9.9.9-test)" wait_for 30 on_new_release
sleep 0.3
touch "$E2E_TMP/poll.stop"
wait "$POLLER"
POLLER=
equal "the update task succeeded" "$(task "$U" '[.state, .result.version, .result.previousVersion] | join(" ")')" \
	"succeeded 9.9.9-test 0.1.0"
diag "result: $(task "$U" .result | jq -c .)"
check "its result names the backup it made" test "$(task "$U" .result.backupId)" -gt 0
equal "current -> releases/9.9.9-test" "$(current)" releases/9.9.9-test
equal "the daemon kept its pid across the re-exec" "$DAEMON_PID" "$PID0"
check "... and runs the new release's binary" test "$(readlink "/proc/$PID0/exe")" = "$IR/releases/9.9.9-test/bin/boxd"
check "the task queued behind the update completed" wait_for 15 state_is "$Q" succeeded
check "the daemon re-adopted the update's worker after its re-exec" \
	grep -q "task $U: re-adopted its running worker" "$DAEMON_LOG"
# shellcheck disable=SC2009 # the state of the daemon's children, not a name
no_zombies() { ! ps --ppid "$PID0" -o stat= | grep -q '^Z'; }
check "no worker is left a zombie" wait_for 5 no_zombies
N=$(hold_task 30 app:after) || bail "cannot create a hold task"
wait_for 15 state_is "$N" running || diag "hold $N did not run"
check "new workers run the new release's binary" \
	test "$(readlink "/proc/$(task "$N" .pid)/exe")" = "$IR/releases/9.9.9-test/bin/boxd"
req POST "/tasks/$N/stop"
equal "the hold is stopped" "$STATUS" 204

# Downtime: the longest gap between two answers of /status.
read -r gap downs polls < <(awk '
	$2 != "down" { if (last) { g = $1 - last; if (g > max) max = g } last = $1 }
	$2 == "down" { d++ }
	END { print max + 0, d + 0, NR }' "$POLL_LOG")
diag "API downtime during the re-exec: longest gap between answers ${gap} ms ($downs of $polls polls unanswered)"
sed -n '/re-executing/,/now serving/p' "$DAEMON_LOG" | cut -d' ' -f1,4- | diag
check "the API was back within 2 s" test "$gap" -lt 2000
saw_both() { grep -q " 0.1.0$" "$POLL_LOG" && grep -q " 9.9.9-test$" "$POLL_LOG"; }
check "the poll saw both releases" saw_both

# ---- boxctl, and the same version again ------------------------------------

PKG2=$E2E_TMP/boxd-9.9.10-test.tar.zst
make_release "$E2E_TMP/pkg-9.9.10-test" 9.9.10-test
if ! tar --zstd -cf "$PKG2" -C "$E2E_TMP/pkg-9.9.10-test" . 2>/dev/null; then
	diag "no zstd here: a .tar.gz package instead"
	PKG2=$E2E_TMP/boxd-9.9.10-test.tar.gz
	tar -czf "$PKG2" -C "$E2E_TMP/pkg-9.9.10-test" .
fi
out=$("$BOXCTL" --socket "$SOCK" update apply "$PKG2" --skip-backup --wait 2>&1)
code=$?
equal "boxctl update apply $(basename "$PKG2") --skip-backup --wait follows the re-exec to the end (exit 0)" "$code" 0
diag "$out"
equal "status now shows 9.9.10-test" "$(status_version)" 9.9.10-test
T=$(run_update "$(upd_body "$PKG2" "$(sha "$PKG2")")")
equal "re-applying the running version fails with same_version" "$(task "$T" .error.code)" same_version
equal "... and changes nothing" "$(current) $(status_version) $DAEMON_PID" "releases/9.9.10-test 9.9.10-test $PID0"

done_testing
