#!/usr/bin/env bash
# t0401-configure-move.sh — configure that moves an app's data dir keeps
# every byte (issue 6).
#
# An installed app gets a tree in its data dir: nested dirs, binary files of
# odd sizes (0, 1, 4097 bytes, 3 MiB from /dev/urandom), names with spaces
# and other odd characters, symlinks (relative, absolute, dangling), modes
# (0600, 0444, 0700, 2750 and 1777 dirs), an owner other than root. Its
# manifest — per entry path, type, mode, owner, file size, link target —
# and the SHA-256 of every file are taken before and compared after each
# move:
#   1. default dir → /srv/<tmp>/plain/data   (same filesystem: rename)
#   2. → /srv/<tmp>/tmpfs/data               (a tmpfs: copied across)
#   3. dataDir null → back to the default     (copied back)
# After each move the old dir is gone, the row names the new dir, the
# container binds it and sees the data. A move onto a non-empty dir is
# refused before anything changes (target_exists); a move that fails half-way
# (a 1 MiB tmpfs runs full) leaves the data complete where it was and the app
# in error, and configure (allowed from error) brings it back.
#
# TAP. Needs the test env (scripts/test-env.sh) and root (mount). The trap
# kills the daemon and its workers, removes our containers, unmounts the
# tmpfs and removes the temp dirs, also on failure.
set -u
. "$(dirname "$0")/lib.sh"
need_test_env BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE CONTAINERS_CONF

A=$APP_PREFIX-files
C=app-$A
T=60

plan 30
apps_setup
outside_dir /srv || bail "cannot make a temp dir under /srv"
OUT=$OUTSIDE
mkdir -p "$OUT/plain" "$OUT/tmpfs" "$OUT/busy"
CROSS=yes
if ! mount -t tmpfs -o size=64m,mode=0755 boxd-e2e "$OUT/tmpfs" 2>/dev/null; then
	CROSS=no
	diag "cannot mount a tmpfs (not root?): step 2 moves on the same filesystem"
fi
daemon_start --config "$APPS_CONF"
DEFAULT=$STATE/appsdata/$A

# manifest DIR: one line per entry (path, type, mode, owner, size of files,
# target of links), then the SHA-256 of every file; sorted, paths relative.
manifest() {
	(
		cd "$1" || exit 1
		find . -printf '%P|%y|%m|%u:%g|%l\n' | LC_ALL=C sort
		find . -type f -printf '%P|%s\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
	)
}

# build_tree DIR: the test data.
build_tree() {
	local d=$1
	mkdir -p "$d/a/b/c/d" "$d/with space/and  two" "$d/empty dir" "$d/private" "$d/sgid" "$d/sticky"
	head -c 3145728 /dev/urandom >"$d/a/b/c/d/big.bin"
	head -c 4097 /dev/urandom >"$d/a/b/odd size.bin"
	head -c 1 /dev/urandom >"$d/a/one"
	: >"$d/a/b/c/empty"
	printf 'line 1\nline 2\n' >"$d/with space/and  two/notes (1).txt"
	printf 'x' >"$d/-dash"
	printf 'é' >"$d/ünïcödé – ☃.txt"
	printf 'q' >"$d/private/q'uote\"s & *star?"
	head -c 65536 /dev/urandom >"$d/private/secret.key"
	chmod 0600 "$d/private/secret.key"
	chmod 0444 "$d/a/one"
	chmod 0755 "$d/-dash"
	chmod 0700 "$d/private"
	chmod 2750 "$d/sgid"
	chmod 1777 "$d/sticky"
	chown 1234:5678 "$d/a/b/odd size.bin"
	ln -s b/c/d/big.bin "$d/a/rel-link"
	ln -s /etc/hostname "$d/abs-link"
	ln -s "nowhere/at all" "$d/dangling link"
}

# check_move STEP NEW OLD: the data dir is now NEW (row, bind, data seen
# inside), OLD is gone, and the tree is unchanged.
check_move() {
	local step=$1 new=$2 old=$3
	equal "$step: the row names the new dir" "$(app "$A" .dataDir)" "$new"
	check "$step: the old dir is gone" test ! -e "$old"
	equal "$step: the container binds the new dir and runs" \
		"$(container_inspect "$C" '(.Mounts[] | select(.Destination == "/app/data") | .Source) + " " + .State.Status')" \
		"$new running"
	equal "$step: the container sees the data" "$(in_container "$C" cat "/app/data/with space/and  two/notes (1).txt" 2>&1)" \
		$'line 1\nline 2'
	manifest "$new" >"$E2E_TMP/after"
	if cmp -s "$E2E_TMP/before" "$E2E_TMP/after"; then
		ok "$step: every entry, mode, owner, link and byte is kept ($(wc -l <"$E2E_TMP/after") lines)"
	else
		not_ok "$step: every entry, mode, owner, link and byte is kept"
		diff "$E2E_TMP/before" "$E2E_TMP/after" | head -n 30 | diag
	fi
}

tid=$(install_app "$A" "$BOXD_TEST_APP_IMAGE" '{"K":"v"}') || tid=
check "install succeeds" wait_task "$tid" $T
build_tree "$DEFAULT"
in_container "$C" sh -c 'echo made inside >/app/data/inside.txt' >/dev/null 2>&1
manifest "$DEFAULT" >"$E2E_TMP/before"
diag "tree: $(find "$DEFAULT" | wc -l) entries, $(du -sb "$DEFAULT" | cut -f1) bytes"

# 1. same filesystem
P1=$OUT/plain/data
tid=$(app_task "$A" configure "{\"dataDir\":\"$P1\"}") || tid=
check "move 1 (same filesystem): the task succeeds" wait_task "$tid" $T
check_move "move 1" "$P1" "$DEFAULT"

# 2. to another filesystem
P2=$OUT/tmpfs/data
tid=$(app_task "$A" configure "{\"dataDir\":\"$P2\"}") || tid=
check "move 2 (to a tmpfs: cross=$CROSS): the task succeeds" wait_task "$tid" $T
check_move "move 2" "$P2" "$P1"
check "move 2: no temp copy left beside it" test -z "$(find "$OUT" -name '*boxd-move-tmp*' -print -quit)"

# A move onto a non-empty dir is refused before anything changes.
mkdir -p "$OUT/busy/data"
echo keep >"$OUT/busy/data/keep.txt"
id_before=$(container_inspect "$C" .Id)
tid=$(app_task "$A" configure "{\"dataDir\":\"$OUT/busy/data\",\"env\":{\"K\":\"changed\"}}") || tid=
wait_task "$tid" $T >/dev/null 2>&1
equal "move onto a non-empty dir: the task fails (target_exists)" "$(task "$tid" '.state + " " + .error.code')" \
	"failed target_exists"
check "move onto a non-empty dir: its content is untouched, no temp copy beside it" \
	test "$(ls -A "$OUT/busy")" = data -a "$(ls -A "$OUT/busy/data")" = keep.txt
equal "move onto a non-empty dir: the app is as it was (installed, dir, env, same running container)" \
	"$(app "$A" '[.installationState, .dataDir, .env.K, .runState] | join(" ")') $(container_inspect "$C" '.Id + " " + .State.Status')" \
	"installed $P2 v running $id_before running"

# A move that fails half-way (a 1 MiB tmpfs: no space for the copy) leaves
# the app in error with its data complete where it was; configure, allowed
# from error, brings it back.
SMALL=no
if [ $CROSS = yes ] && mkdir -p "$OUT/small" && mount -t tmpfs -o size=1m boxd-e2e "$OUT/small" 2>/dev/null; then
	SMALL=yes
fi
if [ $SMALL = yes ]; then
	tid=$(app_task "$A" configure "{\"dataDir\":\"$OUT/small/data\"}") || tid=
	wait_task "$tid" $T >/dev/null 2>&1
	equal "move to a full filesystem: the task fails, the app is in error" \
		"$(task_state "$tid") $(app_state "$A")" "failed error"
	manifest "$P2" >"$E2E_TMP/after"
	check "move to a full filesystem: the data stays complete where it was" cmp -s "$E2E_TMP/before" "$E2E_TMP/after"
	equal "move to a full filesystem: the row keeps the old dir, says the container is stopped" \
		"$(app "$A" '.dataDir + " " + .runState') $(container_state "$C")" "$P2 stopped exited"
	equal "move to a full filesystem: nothing left on the target filesystem" "$(ls -A "$OUT/small")" ""
	tid=$(app_task "$A" configure '{"env":{"K":"w"}}') || tid=
	check "configure from error (env only): the task succeeds" wait_task "$tid" $T
	equal "configure from error: installed, container running" "$(app_state "$A") $(container_state "$C")" \
		"installed running"
else
	for d in "the task fails, the app is in error" "the data stays complete where it was" \
		"the row keeps the old dir, says the container is stopped" "nothing left on the target filesystem" \
		"configure from error: the task succeeds" "configure from error: installed, container running"; do
		skip "move to a full filesystem: $d" "cannot mount a tmpfs"
	done
fi

# 3. back to the default (dataDir null)
tid=$(app_task "$A" configure '{"dataDir":null}') || tid=
check "move 3 (back to the default, dataDir null): the task succeeds" wait_task "$tid" $T
check_move "move 3" "$DEFAULT" "$P2"
equal "move 3: customDataDir false" "$(app "$A" .customDataDir)" false

done_testing
