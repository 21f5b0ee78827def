#!/usr/bin/env bash
# t0405-app-images.sh — install and update pull a missing image from a real
# registry with the credentials of [registries] (issue 13).
#
# The test env's registry (Debian's docker-registry, htpasswd auth) gets two
# tags of this test's own repository, pushed with `podman push`; the engine
# does not have them. Then, through one daemon:
# - install pulls :1 with the configured credentials; the task log shows
#   "Pulling <app>: N of M MB" and the container runs the pulled image;
# - with a wrong password (the password file changed: every worker reads
#   the config afresh) an update to :2 fails with the registry's reason
#   (registry_unauthorized, "unauthorized") and changes nothing: the app
#   stays installed on :1, same container, running; an install fails the
#   same way and leaves no data dir and no container;
# - a tag the registry does not have: image_not_found, "manifest unknown";
# - with the right password again the update pulls :2 and recreates;
# - the password appears nowhere: not in task args, task objects, task
#   logs, the app objects or the daemon's log.
# Status shows the API version negotiated with the engine (Podman: 1.41).
#
# TAP. Needs the test env: BOXD_TEST_ENGINE_SOCKET, BOXD_TEST_REGISTRY and
# its user and password, podman. The trap removes the containers, then the
# pulled image names (untagged; the registry's copy goes with the test env).
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_REGISTRY BOXD_TEST_REGISTRY_USER BOXD_TEST_REGISTRY_PASSWORD \
	CONTAINERS_CONF CONTAINERS_REGISTRIES_CONF

REG=$BOXD_TEST_REGISTRY
REPO=$REG/$APP_PREFIX/app   # this test's own repository in the registry
SRC=localhost/boxd-test/busybox-registry:latest
A=$APP_PREFIX-wiki
B=$APP_PREFIX-denied
PW_FILE=$E2E_TMP/registry.pass
T=60

plan 24

untag_pulled() {
	local i
	for i in "$REPO:1" "$REPO:2"; do
		podman --url "unix://$BOXD_TEST_ENGINE_SOCKET" rmi "$i" >/dev/null 2>&1 || true
	done
}
on_exit untag_pulled # registered first: runs after the containers are gone

printf '%s\n' "$BOXD_TEST_REGISTRY_PASSWORD" >"$PW_FILE"
chmod 600 "$PW_FILE"
apps_setup "$(printf '[registries]\nhost = %s\nusername = %s\npassword_file = %s\n' "$REG" \
	"$BOXD_TEST_REGISTRY_USER" "$PW_FILE")"
daemon_start --config "$APPS_CONF"

push() {
	podman push -q --creds "$BOXD_TEST_REGISTRY_USER:$BOXD_TEST_REGISTRY_PASSWORD" "$SRC" "$1" >/dev/null 2>&1
}
has_image() { podman --url "unix://$BOXD_TEST_ENGINE_SOCKET" image exists "$1"; }

check "setup: two tags pushed to the registry" eval 'push "$REPO:1" && push "$REPO:2"'
check "setup: the engine has neither" eval '! has_image "$REPO:1" && ! has_image "$REPO:2"'

# ---- status: the negotiated API version --------------------------------------

equal "status: the engine's negotiated API version" "$(api GET /status | jq -r .engine.apiVersion)" 1.41

# ---- install pulls --------------------------------------------------------------

tid=$(install_app "$A" "$REPO:1" '{"X":"1"}') || tid=
check "install: the task succeeds" wait_task "$tid" $T
check "install: the engine has the image now" has_image "$REPO:1"
equal "install: the container runs the pulled image" "$(container_inspect "app-$A" .Config.Image)" "$REPO:1"
equal "install: running" "$(container_state "app-$A")" running
log=$(api GET "/tasks/$tid/logs")
check "install: the task log shows the pull's progress" grep -qE "Pulling $A: [0-9]+ of [0-9]+ (MB|layers)" <<<"$log"
check "install: the task log names the registry and the credentials" \
	grep -qF "pulling $REPO:1 from $REG with the configured credentials" <<<"$log"
cid=$(container_inspect "app-$A" .Id)

# ---- a wrong password: the registry's reason, nothing changed ------------------

printf 'wrong-%s\n' "$BOXD_TEST_REGISTRY_PASSWORD" >"$PW_FILE"
tid=$(app_task "$A" update "{\"image\":\"$REPO:2\"}") || tid=
wait_for $T is_final "$tid"
equal "wrong password: the update fails" "$(task_state "$tid")" failed
equal "wrong password: error code registry_unauthorized" "$(task "$tid" .error.code)" registry_unauthorized
check "wrong password: the message is the registry's reason" \
	grep -q "unauthorized" <<<"$(task "$tid" .error.message)"
check "wrong password: the app is untouched (installed, image :1, same running container)" \
	test "$(app_state "$A")" = installed -a "$(app "$A" .image)" = "$REPO:1" \
	-a "$(container_inspect "app-$A" .Id)" = "$cid" -a "$(container_state "app-$A")" = running
check "wrong password: no image pulled" eval '! has_image "$REPO:2"'

tid=$(install_app "$B" "$REPO:2") || tid=
wait_for $T is_final "$tid"
equal "wrong password: an install fails the same way" "$(task "$tid" .error.code)" registry_unauthorized
check "wrong password: the install left no data dir and no container" \
	test ! -e "$STATE/appsdata/$B" -a "$(container_state "app-$B")" = absent

# ---- a tag the registry does not have -------------------------------------------

printf '%s\n' "$BOXD_TEST_REGISTRY_PASSWORD" >"$PW_FILE"
tid=$(app_task "$A" update "{\"image\":\"$REPO:no-such-tag\"}") || tid=
wait_for $T is_final "$tid"
equal "missing tag: image_not_found" "$(task "$tid" .error.code)" image_not_found
check "missing tag: the registry's reason" grep -q "manifest unknown" <<<"$(task "$tid" .error.message)"
equal "missing tag: the app is still installed" "$(app_state "$A")" installed

# ---- the right password again: update pulls -----------------------------------

tid=$(app_task "$A" update "{\"image\":\"$REPO:2\"}") || tid=
check "update: the task succeeds" wait_task "$tid" $T
equal "update: the container runs :2" "$(container_inspect "app-$A" .Config.Image)" "$REPO:2"

# ---- the secret stays secret ---------------------------------------------------

PW=$BOXD_TEST_REGISTRY_PASSWORD
everything() {
	all_tasks
	api GET /apps
	for t in $(all_tasks | jq -r '.[].id'); do
		api GET "/tasks/$t/logs"
	done
	cat "$DAEMON_LOG"
}
out=$(everything 2>&1)
check "the password is in no task, task log, app or daemon log" eval '! grep -qF -- "$PW" <<<"$out"'
check "... and those were read (the pulls are in them)" grep -qF "pulling $REPO:2" <<<"$out"

tid=$(app_task "$A" uninstall) || tid=
check "uninstall: succeeds" wait_task "$tid" $T

done_testing
