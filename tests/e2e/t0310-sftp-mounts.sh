#!/usr/bin/env bash
# t0310-sftp-mounts.sh — every filesystem mounted on the host where sftp
# shows data is visible over sftp, whenever it was mounted, and its unmount
# too (issue 19, cases 2 and 3), checked with the real sftp client:
#
#   - mounted under the volumes root / the appsdata root BEFORE the sftp
#     container is created, BEFORE a rebuild, BEFORE a restart (recursive
#     binds: Podman must be asked for them) — and unmounted after each;
#   - mounted AFTER the container started on a volume outside the roots
#     (a mountpoint volume, where the host mounts at its leisure; read-only
#     until then) and below a custom data dir (each made a shared mount
#     point of its own before the container binds it);
#   - a volume boxd mounts itself (a bind of an existing host directory),
#     visible without a rebuild, and a mount below its source later; and
#     a filesystem boxd mounts with mount(8) (a loop-mounted ext4 image
#     standing in for CIFS/NFS), unmounted when the volume is deleted.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp-lib.sh"
sftp_need

plan 30

sftp_setup
outside_dir /srv || bail "cannot create a temp dir under /srv"
SRV=$OUTSIDE
APPS=$STATE/appsdata
VOLS=$STATE/volumes
CUS=$APP_PREFIX-cus
NAS=$APP_PREFIX-nas
BND=$APP_PREFIX-bnd

daemon_start --config "$APPS_CONF"
sftp_wait_idle

# tmpfs_at DIR MARKER: mount a small tmpfs on DIR holding the file MARKER.
tmpfs_at() {
	mkdir -p "$1" && mount -t tmpfs -o size=1m "$E2E_NAME" "$1" && echo "$2" >"$1/$2"
}

# seen_then_gone DIR SFTP_DIR MARKER: sftp lists MARKER in SFTP_DIR; after
# DIR is unmounted on the host, it does not any more.
seen() { wait_for 10 sftp_lists "$1" "$2"; }
unmount_seen() { umount "$1" && wait_for 10 sftp_lacks "$2" "$3"; }

# ---- mounted before create ----------------------------------------------------

podman --url "unix://$BOXD_TEST_ENGINE_SOCKET" rm -f -t 0 boxd-sftp >/dev/null
tmpfs_at "$VOLS/pre-create" mark-create
tmpfs_at "$APPS/pre-create" mark-create-apps
run_task /services/sftp/rebuild
check "create: the rebuild creates the container" eval 'task_ok && [ "$(jq -r .result.reason <<<"$TASK")" = created ]'
check "create: a tmpfs mounted under the volumes root before is listed" seen /volumes/pre-create mark-create
check "create: ... and one under the appsdata root" seen /appsdata/pre-create mark-create-apps
check "create: their unmount is seen" \
	eval 'unmount_seen $VOLS/pre-create /volumes/pre-create mark-create && unmount_seen $APPS/pre-create /appsdata/pre-create mark-create-apps'

# ---- mounted before a rebuild ---------------------------------------------------

tmpfs_at "$VOLS/pre-rebuild" mark-rebuild
run_task '/services/sftp/rebuild?force=1'
check "rebuild: a new container" eval 'task_ok && [ "$(jq -r .result.rebuilt <<<"$TASK")" = true ]'
check "rebuild: the tmpfs mounted before it is listed" seen /volumes/pre-rebuild mark-rebuild
check "rebuild: its unmount is seen" unmount_seen "$VOLS/pre-rebuild" /volumes/pre-rebuild mark-rebuild

# ---- mounted before a restart ---------------------------------------------------

ID=$(sftp_id)
tmpfs_at "$VOLS/pre-restart" mark-restart
run_task /services/sftp/restart
check "restart: the same container, restarted" eval 'task_ok && [ "$(sftp_id)" = "$ID" ]'
check "restart: the tmpfs mounted before it is listed" seen /volumes/pre-restart mark-restart
check "restart: its unmount is seen" unmount_seen "$VOLS/pre-restart" /volumes/pre-restart mark-restart

# ---- mounted after the start, on a volume outside the roots --------------------

mkdir -p "$SRV/$NAS"
req POST /volumes "$(jq -nc --arg id "$NAS" --arg p "$SRV/$NAS" '{id: $id, hostPath: $p, mountType: "mountpoint"}')"
equal "a mountpoint volume outside the roots" "$STATUS" 201
check "sftp converges (binds it)" sftp_wait_converged
check "before anything is mounted there, it is read-only over sftp" \
	eval '! sftp_put early "/custom/volumes/$NAS/early.txt" && [ ! -e "$SRV/$NAS/early.txt" ]'
ID=$(sftp_id)
tmpfs_at "$SRV/$NAS" mark-nas # the host mounts its share, late
check "late mount on the volume: listed over sftp, without a rebuild" \
	eval 'seen /custom/volumes/$NAS mark-nas && [ "$(sftp_id)" = "$ID" ]'
check "... writable: an upload lands on the mounted filesystem" \
	eval 'sftp_put up "/custom/volumes/$NAS/up.txt" && [ "$(cat $SRV/$NAS/up.txt)" = up ]'
check "... and its unmount is seen" unmount_seen "$SRV/$NAS" "/custom/volumes/$NAS" mark-nas

# ---- mounted after the start, below a custom data dir ---------------------------

check "install $CUS with a custom data dir" install_wait "$CUS" "$SRV/$CUS"
check "sftp converges (binds it)" sftp_wait_converged
ID=$(sftp_id)
tmpfs_at "$SRV/$CUS/media" mark-media
check "late mount below the custom dir: listed over sftp, without a rebuild" \
	eval 'seen /custom/apps/$CUS/media mark-media && [ "$(sftp_id)" = "$ID" ]'
check "... and its unmount is seen" unmount_seen "$SRV/$CUS/media" "/custom/apps/$CUS/media" mark-media

# ---- a volume boxd mounts: a bind of an existing host directory -----------------

mkdir -p "$SRV/src" && echo shared >"$SRV/src/shared.txt"
req POST /volumes "$(jq -nc --arg id "$BND" --arg s "$SRV/src" '{id: $id, mountType: "bind", mountSource: $s}')"
equal "a bind volume (under the volumes root)" "$STATUS" 201
ID=$(sftp_id)
check "boxd bound it: listed over sftp at once, no rebuild" \
	eval 'seen /volumes/$BND shared.txt && [ "$(sftp_id)" = "$ID" ]'
check "an upload lands in the source directory" \
	eval 'sftp_put b "/volumes/$BND/b.txt" && [ "$(cat $SRV/src/b.txt)" = b ]'
tmpfs_at "$SRV/src/late" mark-late
check "a mount below its source later is listed, and its unmount seen" \
	eval 'seen /volumes/$BND/late mark-late && unmount_seen $SRV/src/late /volumes/$BND/late mark-late'

# ---- a volume boxd mounts: a filesystem (a loop-mounted ext4 image standing
# in for CIFS/NFS) -----------------------------------------------------------

DISK=$APP_PREFIX-disk
if command -v mkfs.ext4 >/dev/null && [ -e /dev/loop-control ]; then
	truncate -s 16M "$E2E_TMP/disk.img" && mkfs.ext4 -q -F "$E2E_TMP/disk.img"
	req POST /volumes "$(jq -nc --arg id "$DISK" --arg p "$SRV/$DISK" --arg s "$E2E_TMP/disk.img" \
		'{id: $id, hostPath: $p, mountType: "ext4", mountSource: $s, mountOptions: "loop"}')"
	equal "an ext4 volume outside the roots (boxd mounts it)" "$STATUS" 201
	on_exit "umount -l '$SRV/$DISK'"
	check "it is mounted, nosuid,nodev" eval 'findmnt -no OPTIONS "$SRV/$DISK" | grep -q nosuid'
	check "sftp converges and shows it; an upload lands on the filesystem" \
		eval 'sftp_wait_converged && sftp_put d "/custom/volumes/$DISK/d.txt" && [ "$(cat $SRV/$DISK/d.txt)" = d ] &&
			[ "$(stat -c %d "$SRV/$DISK")" != "$(stat -c %d "$SRV")" ]'
	req DELETE "/volumes/$DISK"
	check "deleting the volume unmounts it" eval '[ "$STATUS" = 204 ] && ! findmnt "$SRV/$DISK" >/dev/null'
	req POST /volumes "$(jq -nc --arg id "$DISK-x" --arg p "$SRV/x" '{id: $id, hostPath: $p, mountType: "ext4",
		mountSource: "/nonexistent.img", mountOptions: "loop"}')"
	check "a mount that fails: 422 mount_failed, no volume" \
		eval '[ "$STATUS $(jq -r .error.code <<<"$BODY")" = "422 mount_failed" ] && [ "$(api GET /volumes | jq --arg i "$DISK-x" "[.volumes[] | select(.id == \$i)] | length")" = 0 ]'
	req POST /volumes "$(jq -nc --arg id "$DISK-y" --arg s "$E2E_TMP/disk.img" '{id: $id, mountType: "ext4",
		mountSource: $s, mountOptions: "loop,suid"}')"
	check "an option that undoes nosuid is refused (400)" test "$STATUS" = 400
else
	for _ in 1 2 3 4 5 6; do skip "an ext4 volume" "no mkfs.ext4 or loop devices"; done
fi

done_testing
