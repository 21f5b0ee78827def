#!/usr/bin/env bash
# t0300-sftp.sh — the sftp service end to end, with real Podman and a real
# sftp client: boxd rebuilds the container only when its spec changes
# (never for an app under the appsdata root), restarts it in place, shows a
# filesystem mounted under the volumes root after the container started
# (rslave on a shared root), refuses to create a missing bind source, and
# answers the status calls when no engine is reachable. Prints the time of a
# rebuild and of a restart as TAP comments. With BOXD_TEST_ENGINE=docker
# the same against the test env's dockerd.
#
# Needs root (mounts), the test env (scripts/test-env.sh: Podman and the sftp
# image), sftp and ssh-keygen.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp-lib.sh"
sftp_need findmnt

# Not sftp_setup: this test writes its own config, whose engine socket it
# changes further down. The helpers of sftp-lib.sh use these three.
CONF=$E2E_TMP/boxd.conf
KEY=$E2E_TMP/key
CLIENT=$E2E_TMP/client
SFTP_KEY=$KEY
SFTP_CLIENT=$CLIENT
APPS=$STATE/appsdata
VOLS=$STATE/volumes
# App ids start with $APP_PREFIX: the cleanup (_apps_cleanup in lib.sh)
# removes exactly their containers, boxd-sftp if it binds our dirs, every
# mount below our temp dirs, and the dirs made by outside_dir.
WEB=$APP_PREFIX-web
NAS=$APP_PREFIX-nas
EXT=$APP_PREFIX-ext
on_exit _apps_cleanup
# A custom data dir must lie outside the roots (and outside the state dir,
# which is in /tmp here); /srv is an allowed place for one.
outside_dir /srv || bail "cannot create a temp dir under /srv"
SRV=$OUTSIDE
mkdir -p "$CLIENT"

PORT=$(sftp_free_port) || bail "no free port"
SFTP_PORT=$PORT
ssh-keygen -q -t ed25519 -N '' -C t0300 -f "$KEY"

write_conf() { # write_conf ENGINE_SOCKET
	cat >"$CONF" <<EOF
[engine]
socket = $1
[sftp]
port = $PORT
authorized_keys_file = $KEY.pub
EOF
}
write_conf "$BOXD_TEST_ENGINE_SOCKET"

# The sftp container's id ("" when there is none).
container_id() { engine_cli inspect -f '{{.Id}}' boxd-sftp 2>/dev/null; }

result() { jq -r ".result.$1" <<<"$TASK"; }

# wait_no_rebuild: wait until no service.rebuild task is active (the
# scheduler queues one after app work or a new volume when the spec changed).
wait_no_rebuild() { sleep 0.3; wait_for 60 no_active_rebuild; }

# svc JQ: jq -r JQ on GET /services/sftp.
svc() { api GET /services/sftp | jq -r "$1"; }

plan 40

daemon_start --config "$CONF"
# The daemon may run a platformstart task first (it brings the sftp
# service to its spec too): let it end.
wait_for 120 no_active_task || diag "tasks still active after 120 s: $(api GET '/tasks?state=active')"

# ---- status; no container ---------------------------------------------------

req GET /status
equal "status: the engine is reachable" "$(jq -r .engine.reachable <<<"$BODY")" true
equal "status: on the configured socket" "$(jq -r .engine.socket <<<"$BODY")" "$BOXD_TEST_ENGINE_SOCKET"
# Whoever made it (platformstart), start from no container.
engine DELETE '/containers/boxd-sftp?force=1&v=1'
req GET /services
equal "GET /services lists sftp, without a container" \
	"$(jq -c '[.services[] | {name, state, running, health}]' <<<"$BODY")" \
	'[{"name":"sftp","state":"missing","running":false,"health":"missing"}]'
req GET /services/nope
equal "GET /services/nope is 404" "$STATUS" 404
check "the roots are shared mount points (made at daemon start)" \
	test "$(findmnt -no PROPAGATION "$APPS")" = shared -a "$(findmnt -no PROPAGATION "$VOLS")" = shared

# ---- create --------------------------------------------------------------

run_task /services/sftp/rebuild
check "rebuild creates the container" task_ok
equal "result: rebuilt, reason created" "$(result rebuilt) $(result reason)" "true created"
diag "rebuild (create): $TASK_MS ms from request to task end (handler $(result seconds) s)"
ID1=$(container_id)
equal "the container has the id the task reported" "$ID1" "$(result containerId)"
check "GET /services/sftp: running, healthy, up to date" \
	test "$(svc '[.running, .health, .upToDate] | map(tostring) | join(",")')" = "true,healthy,true"
equal "the container binds the two roots rslave" \
	"$(svc '[.mounts[] | "\(.source)>\(.target):\(.propagation)"] | sort | join(" ")')" \
	"$APPS>/mnt/appsdata:rslave $VOLS>/mnt/volumes:rslave"
equal "its labels: boxd.service and boxd.spec-hash" \
	"$(engine_cli inspect -f '{{index .Config.Labels "boxd.service"}} {{index .Config.Labels "boxd.spec-hash"}}' boxd-sftp)" \
	"sftp $(svc .currentSpecHash)"

# ---- an app under the appsdata root -------------------------------------

req GET /apps
HAVE_APPS=$([ "$STATUS" = 200 ] && echo 1)
if [ -n "$HAVE_APPS" ]; then
	check "install app $WEB (default data dir under the root)" install_wait "$WEB"
else
	skip "install app $WEB" "no apps API: a plain directory instead"
fi
mkdir -p "$APPS/$WEB"
echo "served over sftp" >"$APPS/$WEB/hello.txt"
out=$(sftp_batch "ls -1 /appsdata/$WEB
get /appsdata/$WEB/hello.txt got.txt")
if grep -q hello.txt <<<"$out" && [ "$(cat "$CLIENT/got.txt" 2>/dev/null)" = "served over sftp" ]; then
	ok "sftp lists and downloads a file of the app's data dir"
else
	not_ok "sftp lists and downloads a file of the app's data dir"
	diag "$out"
fi
echo uploaded >"$CLIENT/up.txt"
out=$(sftp_batch "put up.txt /appsdata/$WEB/up.txt")
equal "a file uploaded over sftp appears on the host" "$(cat "$APPS/$WEB/up.txt" 2>/dev/null)" uploaded
run_task /services/sftp/rebuild
check "rebuild after the app install succeeds" task_ok
equal "... and rebuilds nothing (app under the root): same container" \
	"$(result rebuilt) $(result reason) $(container_id)" "false unchanged $ID1"

# ---- a filesystem mounted under the volumes root later ------------------

mkdir -p "$VOLS/late"
mount -t tmpfs -o size=1m t0300 "$VOLS/late" && echo on-tmpfs >"$VOLS/late/marker"
out=$(sftp_batch 'ls -1 /volumes/late')
check "a tmpfs mounted under the volumes root after the start is listed over sftp" grep -q marker <<<"$out"
umount "$VOLS/late"
out=$(sftp_batch 'ls -1 /volumes/late')
check "after its unmount it is gone" test -n "$(sftp_batch 'ls -1 /volumes')" -a -z "$(grep marker <<<"$out")"
equal "no rebuild for either (same container)" "$(container_id)" "$ID1"

# ---- a custom data dir outside the roots: exactly one rebuild -----------

rebuilds_so_far() { api GET '/tasks?type=service.rebuild&per_page=1000' | jq '[.tasks[] | select(.result.rebuilt == true)] | length'; }
n0=$(rebuilds_so_far)
if [ -n "$HAVE_APPS" ]; then
	check "install app $NAS with a custom data dir outside the roots" install_wait "$NAS" "$SRV/$NAS"
else
	skip "install app $NAS" "no apps API"
fi
mkdir -p "$SRV/$NAS"
echo custom >"$SRV/$NAS/custom.txt"
# The scheduler may rebuild the service on its own after app work; either
# way the service is rebuilt exactly once for this change.
wait_no_rebuild
run_task /services/sftp/rebuild
check "rebuild for the custom dir succeeds" task_ok
[ "$(result rebuilt)" = true ] && diag "rebuild (spec changed): $TASK_MS ms from request to task end (handler $(result seconds) s)"
REBUILD_MS=$TASK_MS
run_task /services/sftp/rebuild
equal "exactly one rebuild for the custom dir (the next request is a no-op)" \
	"$(($(rebuilds_so_far) - n0)) $(result rebuilt)" "1 false"
ID2=$(container_id)
check "the container was recreated (new id)" test -n "$ID2" -a "$ID2" != "$ID1"
out=$(sftp_batch "get /custom/apps/$NAS/custom.txt custom.txt")
equal "the custom dir is reachable at /custom/apps/<id>" "$(cat "$CLIENT/custom.txt" 2>/dev/null)" custom

# ---- a volume outside the volumes root -----------------------------------

req POST /volumes "$(jq -nc --arg id "$EXT" --arg p "$SRV/$EXT" '{id: $id, hostPath: $p}')"
if [ "$STATUS" = 201 ]; then
	echo ext >"$SRV/$EXT/ext.txt"
	wait_no_rebuild
	run_task /services/sftp/rebuild
	out=$(sftp_batch "ls -1 /custom/volumes/$EXT")
	check "a volume outside the volumes root: rebuilt (new id), at /custom/volumes/<id>" \
		test "$(jq -r .state <<<"$TASK")" = succeeded -a "$(container_id)" != "$ID2" -a -n "$(grep ext.txt <<<"$out")"
else
	skip "a volume outside the volumes root" "POST /volumes: $STATUS"
fi
ID3=$(container_id)

# ---- restart, no-op, force ------------------------------------------------

run_task /services/sftp/restart
check "restart succeeds" task_ok
diag "restart: $TASK_MS ms from request to task end (handler $(result seconds) s)"
RESTART_MS=$TASK_MS
equal "restart keeps the container id" "$(container_id) $(result containerId)" "$ID3 $ID3"
check "sftp answers after the restart" test -n "$(sftp_batch 'ls -1 /appsdata' | grep "$WEB")"
run_task /services/sftp/rebuild
equal "rebuild with an unchanged spec is a no-op" "$(result rebuilt) $(result reason) $(container_id)" \
	"false unchanged $ID3"
boxctl() { "${BOXCTL:-$BUILD_DIR/boxctl}" --socket "$SOCK" "$@"; }
# grep_ok DESC PATTERN TEXT: one test point, TEXT shown when it fails.
grep_ok() {
	if grep -Eq "$2" <<<"$3"; then ok "$1"; else not_ok "$1"; diag "$3"; fi
}
grep_ok "boxctl service list: sftp running, healthy, up to date" \
	'^sftp +running +healthy +[0-9a-f]{12} +yes' "$(boxctl service list 2>&1)"
grep_ok "boxctl service rebuild --wait: not rebuilt (unchanged)" \
	"^not rebuilt: container ${ID3:0:12} \(unchanged\)" "$(boxctl service rebuild sftp --wait 2>&1)"
run_task '/services/sftp/rebuild?force=1'
ID4=$(container_id)
check "rebuild with force recreates it (new id)" \
	test "$(result rebuilt) $(result reason)" = "true forced" -a -n "$ID4" -a "$ID4" != "$ID3"

# ---- a bind source that was deleted -----------------------------------------

# Deleted behind boxd's back: the dir is a mount point of its own (boxd's
# bind onto itself), which an operator unmounts first.
umount_below "$SRV/$NAS"
rm -rf "$SRV/$NAS"
run_task '/services/sftp/rebuild?force=1'
check "a deleted bind source fails the rebuild, naming the path" \
	test "$(jq -r '.state + " " + .error.code' <<<"$TASK")" = "failed missing_source" \
	-a -n "$(jq -r .error.message <<<"$TASK" | grep -F "$SRV/$NAS")"
check "... it is not created on the host, and the old container still runs" \
	test ! -e "$SRV/$NAS" -a "$(container_id)" = "$ID4" -a "$(svc .running)" = true

# ---- bad paths ------------------------------------------------------------

ln -s /etc "$SRV/escape"
bad_paths_refused() {
	local p rc=0
	for p in "$SRV/../etc/x" /etc/boxd-t0300 /proc/x "$SRV/escape/boxd-t0300" /home/boxd-t0300 / "$SRV/./x" relative/x; do
		req POST /volumes "$(jq -nc --arg p "$p" '{id: "bad", hostPath: $p}')"
		case $STATUS in 4??) ;; *) diag "$p: $STATUS $BODY"; rc=1 ;; esac
	done
	req POST /apps "$(jq -nc --arg img "$BOXD_TEST_APP_IMAGE" --arg d "$SRV/escape/app" '{id: "bad", image: $img, dataDir: $d}')"
	case $STATUS in 4??) ;; *) diag "app dataDir via a symlink: $STATUS $BODY"; rc=1 ;; esac
	return $rc
}
check "bad paths (traversal, system dirs, symlink escape, elsewhere) are refused with 4xx" bad_paths_refused
check "... and change nothing (no volume, no app, nothing on the host, no rebuild)" \
	test "$(api GET /volumes | jq '[.volumes[] | select(.id == "bad")] | length')" = 0 \
	-a "$(api GET /apps | jq '[.apps[]? | select(.id == "bad")] | length')" = 0 \
	-a ! -e /etc/boxd-t0300 -a ! -e /home/boxd-t0300 -a "$(container_id)" = "$ID4"

# ---- no engine ----------------------------------------------------------------

daemon_kill9
write_conf "$E2E_TMP/no-engine.sock"
daemon_start --config "$CONF"
req GET /services/sftp
equal "engine down: GET /services/sftp still answers, running false, with an error" \
	"$STATUS $(jq -r '.running, (.error | length > 0)' <<<"$BODY" | tr '\n' ' ')" "200 false true "
req GET /status
equal "engine down: /status says it is not reachable" "$(jq -r .engine.reachable <<<"$BODY")" false
run_task /services/sftp/rebuild
equal "engine down: a rebuild fails with engine_unavailable" "$(jq -r '.state + " " + .error.code' <<<"$TASK")" \
	"failed engine_unavailable"
run_task /services/sftp/restart
equal "engine down: a restart fails with engine_unavailable" "$(jq -r '.state + " " + .error.code' <<<"$TASK")" \
	"failed engine_unavailable"

diag "timings: rebuild ${REBUILD_MS:-?} ms, restart ${RESTART_MS:-?} ms (request to task end)"
done_testing
