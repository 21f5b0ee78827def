#!/usr/bin/env bash
# t0311-sftp-data-dirs.sh — what sftp shows is the app's real data, also
# when a task replaces what is in a data dir (issue 19, cases 1; issue 10,
# finding 1), checked with the real sftp client against the real container:
#
#   - restore of an app with a custom data dir (outside the roots, bound
#     into sftp one by one) and of one under the appsdata root: sftp shows
#     the restored files, and a file uploaded over sftp after the restore
#     lands in the app's real data dir (the host path, and the app's own
#     container sees it);
#   - uninstall + reinstall at the same custom path: in the window before
#     the rebuild the old path accepts no upload (it is a deleted dir), and
#     after the rebuild sftp shows the new dir and uploads land in it;
#   - the sftp user cannot rename, delete or replace an app's data dir or a
#     volume's dir, nor create anything in the roots (a symlink where boxd
#     expects a data dir), but works freely inside them.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sftp-lib.sh"
sftp_need

plan 23

# A quiet period long enough to act in the window between an uninstall and
# the rebuild it causes.
APPS_QUIET=4s sftp_setup
outside_dir /srv || bail "cannot create a temp dir under /srv"
SRV=$OUTSIDE
APPS=$STATE/appsdata
VOLS=$STATE/volumes
CUS=$APP_PREFIX-cus   # custom data dir
DEF=$APP_PREFIX-def   # default data dir
RE=$APP_PREFIX-re     # reinstalled

daemon_start --config "$APPS_CONF"
sftp_wait_idle

# ---- restore of an app with a custom data dir --------------------------------

check "install $CUS with a custom data dir outside the roots" install_wait "$CUS" "$SRV/$CUS"
check "install $DEF with the default data dir" install_wait "$DEF"
check "sftp converges on the spec (one mount for the custom dir)" sftp_wait_converged

# backup_of APP: back up, print the backup id.
backup_of() {
	local tid
	tid=$(app_task "$1" backup) && wait_task "$tid" 120 && task "$tid" .result.backupId
}
# restore_of APP ID: restore and wait.
restore_of() {
	local tid
	tid=$(app_task "$1" restore "{\"backupId\": $2}") && wait_task "$tid" 120
}
in_app() { in_container "app-$1" "${@:2}"; }

restore_case() { # APP HOST_DIR SFTP_DIR
	local app=$1 dir=$2 sdir=$3 bid
	echo v1 >"$dir/data.txt"
	bid=$(backup_of "$app") || return 1
	echo v2 >"$dir/data.txt"
	echo junk >"$dir/junk.txt"
	restore_of "$app" "$bid" || return 1
	local got
	got=$(sftp_get "$sdir/data.txt")
	[ "$got" = v1 ] || { diag "$sdir/data.txt over sftp after the restore: '$got'"; return 1; }
	sftp_lacks "$sdir" junk.txt || { diag "junk.txt still listed"; return 1; }
	sftp_put "after restore" "$sdir/uploaded.txt" || { diag "upload into $sdir refused"; return 1; }
	[ "$(cat "$dir/uploaded.txt" 2>/dev/null)" = "after restore" ] ||
		{ diag "the upload is not in $dir on the host"; return 1; }
	wait_for 20 in_app "$app" test -f /app/data/uploaded.txt ||
		{ diag "the app's container does not see the upload"; return 1; }
}
check "restore, custom dir: sftp shows the restored data; an upload after it lands in the real data dir" \
	restore_case "$CUS" "$SRV/$CUS" "/custom/apps/$CUS"
check "restore, default dir: the same through /appsdata" \
	restore_case "$DEF" "$APPS/$DEF" "/appsdata/$DEF"
check "the restores needed no rebuild (same container, still up to date)" sftp_spec_up_to_date

# ---- uninstall + reinstall at the same custom path ---------------------------

check "install $RE at $SRV/$RE" install_wait "$RE" "$SRV/$RE"
check "sftp converges" sftp_wait_converged
echo old >"$SRV/$RE/old.txt"
check "sftp shows its file" sftp_lists "/custom/apps/$RE" old.txt
ID_BEFORE=$(sftp_id)
tid=$(app_task "$RE" uninstall)
check "uninstall $RE" wait_task "$tid" 120
# The rebuild waits for the quiet period: the container still binds the
# deleted dir now.
if [ "$(sftp_id)" = "$ID_BEFORE" ]; then
	if sftp_put lost "/custom/apps/$RE/lost.txt"; then
		not_ok "in the window before the rebuild, the deleted dir accepts no upload"
	else
		ok "in the window before the rebuild, the deleted dir accepts no upload"
	fi
else
	skip "in the window before the rebuild, the deleted dir accepts no upload" "rebuilt already"
fi
check "reinstall $RE at the same path" install_wait "$RE" "$SRV/$RE"
echo new >"$SRV/$RE/new.txt"
check "the reinstall changes the spec: sftp is rebuilt (new container)" \
	wait_for 120 eval '[ "$(sftp_id)" != "$ID_BEFORE" ] && sftp_converged'
check "sftp shows the new dir (new.txt, no old.txt)" \
	eval 'sftp_lists /custom/apps/$RE new.txt && sftp_lacks /custom/apps/$RE old.txt'
sftp_put "into the new dir" "/custom/apps/$RE/up.txt"
equal "an upload lands in the new dir on the host" "$(cat "$SRV/$RE/up.txt" 2>/dev/null)" "into the new dir"

# ---- the roots are the box's, their entries the user's ---------------------

mkdir -p "$VOLS" && req POST /volumes "$(jq -nc --arg id "$APP_PREFIX-vol" '{id: $id}')"
equal "a volume under the volumes root" "$STATUS" 201
refused() { ! sftp_batch "$1" >/dev/null; }
check "sftp cannot rename an app's data dir" refused "rename /appsdata/$DEF /appsdata/$DEF.old"
check "sftp cannot delete an app's data dir (even emptied)" \
	eval "sftp_batch 'rm /appsdata/$DEF/*' >/dev/null; refused 'rmdir /appsdata/$DEF'"
check "sftp cannot put a symlink into the appsdata root" refused "symlink /etc /appsdata/esc"
check "nor a directory or a file" eval "refused 'mkdir /appsdata/new' && refused 'put $SFTP_KEY.pub /appsdata/f'"
check "nothing of that reached the host" \
	test -d "$APPS/$DEF" -a ! -e "$APPS/esc" -a ! -e "$APPS/new" -a ! -e "$APPS/f" -a ! -e "$APPS/$DEF.old"
check "the same for a volume's dir" eval "refused 'rename /volumes/$APP_PREFIX-vol /volumes/x' && refused 'symlink / /volumes/y'"
works() { sftp_batch "$1" >/dev/null; }
check "inside a data dir the sftp user works freely (mkdir, put, rename, rm)" \
	works "mkdir /appsdata/$DEF/d
put $SFTP_KEY.pub /appsdata/$DEF/d/k
rename /appsdata/$DEF/d/k /appsdata/$DEF/d/k2
rm /appsdata/$DEF/d/k2
rmdir /appsdata/$DEF/d"

done_testing
