# shellcheck shell=bash
# box-lib.sh — what the whole-box restore tests share (t0560 with `boxd
# restore`, t0561 through the API): filling a data dir, destroying box
# A, and the things of box B that must stay untouched.
# Source it after lib.sh (its tree_hash hashes the data dirs) and
# sftp-lib.sh.

# fill DIR [MB]: random data, nested dirs, an empty dir, a private file
# with a foreign owner, a symlink, a hard link, an old mtime.
fill() {
	local d=$1 mb=${2:-${DATA_MB:-1}}
	mkdir -p "$d/sub/deeper" "$d/empty-dir"
	head -c $((mb * 1024 * 1024)) /dev/urandom >"$d/blob.bin"
	printf 'hello %s\n' "$d" >"$d/sub/hello.txt"
	printf 'secret\n' >"$d/sub/deeper/secret"
	chmod 0600 "$d/sub/deeper/secret"
	chown 1234:2345 "$d/sub/deeper/secret"
	ln -s sub/hello.txt "$d/link"
	ln "$d/sub/hello.txt" "$d/hard"
	touch -d '2001-02-03 04:05:06.789' "$d/sub/hello.txt"
}

# box_destroy [DIR...]: box A is gone: its daemon killed (-9), the
# processes it started, its containers and sftp service, its mounts, its
# state dir and DIRs, its database.
box_destroy() {
	daemon_kill9
	_e2e_kill_all
	engine_rm_containers "app-$APP_PREFIX-"
	engine_rm_sftp_if_ours
	_e2e_unmount_all
	[ -n "$OUTSIDE" ] && umount_below "$OUTSIDE"
	rm -rf "$STATE" "$@"
	if [ -n "$E2E_DB" ]; then
		store_db_drop "$E2E_DB"
		E2E_DB=
	fi
}

# The app containers of this test.
engine_list_ours() { podman ps -a --format '{{.Names}}' 2>/dev/null | grep "^app-$APP_PREFIX-" || true; }

# box_b_empty ROOT [DIR]: nothing of the box on B: no app or volume in its
# store, nothing below ROOT, no DIR, no container of this test.
box_b_empty() {
	local root=$1 dir=${2:-} n=0
	if [ "$TEST_STORE" = sqlite ]; then
		# (only an existing file: sqlite3 would create it)
		[ -e "$STATE/boxd.db" ] && n=$(sqlite3 "$STATE/boxd.db" "SELECT (SELECT COUNT(*) FROM apps) + (SELECT COUNT(*) FROM volumes)" 2>/dev/null || echo 0)
	else
		n=$(store_sql "$E2E_DB" "SELECT (SELECT COUNT(*) FROM apps) + (SELECT COUNT(*) FROM volumes)" 2>/dev/null || echo 0)
	fi
	[ "${n:-0}" = 0 ] || { diag "B's store has $n apps and volumes"; return 1; }
	[ -z "$(ls -A "$root" 2>/dev/null)" ] || { diag "B has data dirs: $(ls -A "$root")"; return 1; }
	[ -z "$dir" ] || [ ! -e "$dir" ] || { diag "B has $dir"; return 1; }
	[ -z "$(engine_list_ours)" ] || { diag "B has containers: $(engine_list_ours)"; return 1; }
}
