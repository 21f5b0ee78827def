#!/usr/bin/env bash
# t0410-bind-sources.sh — an app container only ever gets the data dir boxd
# made (issue 10, finding 1).
#
# The audit's attack, by an sftp user (uid 0 in the sftp container, on the
# appsdata root): `rename /appsdata/esc /appsdata/esc.old; symlink /etc
# /appsdata/esc`; then any restart, configure, update or platformstart of
# app esc bind-mounted the symlink's target into the container (the engine
# follows it) and boxd said succeeded. Here the same two steps run on the
# host (their effect is the same; HOSTETC stands in for /etc), then:
#   - restart, configure (recreate), update (recreate) each fail with
#     bind_source_changed, and the container never sees HOSTETC (a refused
#     recreate leaves the old container as it was);
#   - platformstart (a daemon restart while the container is stopped) does
#     not start it, and names it;
#   - another app's data dir renamed into esc's place (a real directory,
#     not a symlink) is refused as well: it is not the directory boxd
#     made (device/inode recorded at install);
#   - once the real dir is back, restart works again;
#   - the sftp service: a volume dir outside the roots (bound on its own)
#     replaced by another directory, or by a symlink, makes the rebuild fail
#     with bind_source_changed; the volume put back, it succeeds.
#
# TAP. Needs the test env (scripts/test-env.sh). The trap kills the daemon
# and its workers, removes our containers and temp dirs.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE BOXD_TEST_SFTP_IMAGE CONTAINERS_CONF

IMG=$BOXD_TEST_APP_IMAGE
T=90
E=$APP_PREFIX-esc
F=$APP_PREFIX-other
plan 24
apps_setup
outside_dir /srv || bail "cannot make a temp dir under /srv"
OUT=$OUTSIDE
daemon_start --config "$APPS_CONF" --stop-grace 2s
ROOT=$STATE/appsdata
HOSTETC=$E2E_TMP/hostetc
mkdir -p "$HOSTETC"
echo "root:secret-hash:0:0" >"$HOSTETC/shadow"

no_active_task() { [ "$(api GET '/tasks?state=active' | jq '.tasks | length')" = 0 ]; }
wait_for 120 no_active_task
for a in "$E" "$F"; do
	tid=$(install_app "$a" "$IMG") || tid=
	check "app $a installed" wait_task "$tid" $T
done
echo "esc's own data" >"$ROOT/$E/mine.txt"
echo "other's data" >"$ROOT/$F/theirs.txt"

# task_code ID: "state code" once the task is final.
task_code() { wait_for $T is_final "$1"; task "$1" '[.state, (.error.code // "")] | join(" ")'; }
# exposed: the container of esc sees the stand-in for /etc or other's data.
exposed() { in_container "app-$E" sh -c 'test -e /app/data/shadow -o -e /app/data/theirs.txt' 2>/dev/null; }
# A data dir is a mount point of its own (boxd binds it onto itself, for
# sftp: docs/ARCHITECTURE.md): neither an sftp user nor a local user can
# rename it. The attacks below run as root on the host, so they unmount it
# first — what the bind-source check must still catch.
attack_symlink() { umount_below "$ROOT/$E" && mv "$ROOT/$E" "$ROOT/$E.old" && ln -s "$HOSTETC" "$ROOT/$E"; }
undo_symlink() { rm "$ROOT/$E" && mv "$ROOT/$E.old" "$ROOT/$E"; }

# ---- the symlink swapped in for the data dir -------------------------------------------
attack_symlink
tid=$(app_task "$E" restart) || tid=
equal "symlink: restart fails with bind_source_changed" "$(task_code "$tid")" "failed bind_source_changed"
check "... and the container never got the symlink's target" eval '! exposed'
tid=$(app_task "$E" configure '{"env":{"X":"1"}}') || tid=
equal "symlink: configure (recreate) fails with bind_source_changed" "$(task_code "$tid")" "failed bind_source_changed"
check "... not exposed" eval '! exposed'
equal "... and the old container was left running (on its own data)" "$(container_state "app-$E")" running
undo_symlink
# configure left the app in error; a configure repairs it.
tid=$(app_task "$E" configure '{"env":{"X":"2"}}') || tid=
check "the real dir back: configure repairs the app" wait_task "$tid" $T
attack_symlink
tid=$(app_task "$E" update "{\"image\":\"$IMG\"}") || tid=
equal "symlink: update (recreate) fails with bind_source_changed" "$(task_code "$tid")" "failed bind_source_changed"
check "... not exposed" eval '! exposed'
undo_symlink
tid=$(app_task "$E" configure '{"env":{"X":"3"}}') || tid=
check "the real dir back: configure repairs the app again" wait_task "$tid" $T

# platformstart: the container stopped while boxd is down, the symlink in place.
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
engine POST "/containers/app-$E/stop?t=0"
attack_symlink
daemon_start --config "$APPS_CONF" --stop-grace 2s
P=$(api GET '/tasks?type=platformstart&per_page=1' | jq -r '.tasks[0].id')
wait_for $T is_final "$P"
check "platformstart does not start esc's container (listed as failed)" \
	test "$(task "$P" ".result.failed // [] | index(\"$E\") != null")" = true -o \
	"$(task "$P" ".error.message // \"\" | contains(\"$E\")")" = true
equal "... it stays stopped" "$(container_state "app-$E")" exited
check "... not exposed" eval '! exposed'
undo_symlink

# ---- another app's dir renamed into its place ----------------------------------------
check "a data dir boxd made cannot be renamed as it is (a mount point of its own)" \
	eval '! mv "$ROOT/$F" "$ROOT/$F.x" 2>/dev/null && [ -d "$ROOT/$F" ]'
umount_below "$ROOT/$E"
mv "$ROOT/$E" "$ROOT/$E.old"
cp -a "$ROOT/$F" "$ROOT/$E"
tid=$(app_task "$E" restart) || tid=
equal "another dir in its place: restart fails with bind_source_changed" "$(task_code "$tid")" "failed bind_source_changed"
check "... esc never sees other's data" eval '! exposed'
rm -rf "$ROOT/$E"
mv "$ROOT/$E.old" "$ROOT/$E"
tid=$(app_task "$E" restart) || tid=
check "its own dir back: restart succeeds" wait_task "$tid" $T
equal "... and the container sees its own data" "$(in_container "app-$E" cat /app/data/mine.txt 2>&1)" "esc's own data"

# ---- the sftp service: a volume bound on its own ---------------------------------------
mkdir -p "$OUT/evil"
req POST /volumes "$(jq -nc --arg p "$OUT/vol" '{id: "vol1", hostPath: $p}')"
equal "a volume dir outside the roots: 201" "$STATUS" 201
rebuild() {
	req POST /services/sftp/rebuild
	[ "$STATUS" = 202 ] || { diag "rebuild: $STATUS $BODY"; echo "refused"; return; }
	task_code "$(jq -r .taskId <<<"$BODY")"
}
equal "sftp rebuild with the volume as boxd made it" "$(rebuild)" "succeeded "
umount_below "$OUT/vol"
mv "$OUT/vol" "$OUT/vol.old"
mkdir "$OUT/vol"
equal "the volume dir replaced by another one: the rebuild fails" "$(rebuild)" "failed bind_source_changed"
rmdir "$OUT/vol"
ln -s "$OUT/evil" "$OUT/vol"
# (the path check of the spec, which does not trust the store either, may
# see the symlink first: spec_error)
check "the volume dir replaced by a symlink: the rebuild fails" \
	grep -qxE "failed (bind_source_changed|spec_error)" <<<"$(rebuild)"
rm "$OUT/vol"
mv "$OUT/vol.old" "$OUT/vol"
equal "the volume back: the rebuild succeeds" "$(rebuild)" "succeeded "

done_testing
