#!/usr/bin/env bash
# t0050-test-env.sh — the servers of scripts/test-env.sh answer real clients:
# MariaDB and PostgreSQL run queries, Podman serves the Docker API (v1.41),
# containers from the offline images start with bind mounts, sftp works with
# a key, and a mount made on the host under an rslave bind after the
# container started shows up inside it (and its unmount too).
# TAP. The environment comes from check.sh (the sourced test-env file).
set -uo pipefail
# shellcheck source=tests/e2e/tap.sh
. "$(dirname "$0")/tap.sh"

for v in BOXD_TEST_MYSQL_SOCKET BOXD_TEST_PG_DSN BOXD_TEST_PG_HOST BOXD_TEST_PG_PORT \
	BOXD_TEST_ENGINE_SOCKET BOXD_TEST_APP_IMAGE BOXD_TEST_SFTP_IMAGE \
	CONTAINERS_CONF CONTAINERS_STORAGE_CONF; do
	[[ -n "${!v:-}" ]] || skip_all "test env not started (run make check)"
done
plan 17

sock=$BOXD_TEST_ENGINE_SOCKET
work=$(mktemp -d /tmp/t0050-test-env.XXXXXX) || bail "mktemp failed"
app=t0050-app-$$
sftpc=t0050-sftp-$$
data=$work/data      # bound at /data in the app container
shared=$work/shared  # a shared mount, bound rslave at /shared and at /mnt/volumes
appsdata=$work/appsdata
mkdir -p "$data" "$shared" "$appsdata" "$work/client" || bail "cannot make the dirs"

cleanup() {
	podman rm -f -i -t 0 "$app" "$sftpc" >/dev/null 2>&1 || true
	# Inner mounts first; lazily, in case a process still uses them.
	mountpoint -q "$shared/sub" && umount -l "$shared/sub"
	mountpoint -q "$shared" && umount -l "$shared"
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# api METHOD PATH [JSON] — a Docker API call; sets $code and $body.
api() {
	local out
	out=$(curl -sS --unix-socket "$sock" -X "$1" -H 'Content-Type: application/json' \
		${3:+--data "$3"} -w '\n%{http_code}' "http://d/v1.41$2") || { code=000 body=$out; return 1; }
	code=${out##*$'\n'}
	body=${out%$'\n'*}
}

# expect_code WANT METHOD PATH [JSON]
expect_code() {
	local want=$1
	shift
	api "$@" || return 1
	[[ "$code" == "$want" ]] || { echo "HTTP $code (want $want): $body"; return 1; }
}

# ---- databases

mysql_select() {
	local r
	r=$(mariadb --no-defaults --socket="$BOXD_TEST_MYSQL_SOCKET" -uroot -Nse 'SELECT 1') &&
		[[ "$r" == 1 ]] || { echo "got '$r'"; return 1; }
}
check "mariadb client: SELECT 1 over BOXD_TEST_MYSQL_SOCKET" mysql_select
check "BOXD_TEST_MYSQL_DSN names that socket" \
	test "$BOXD_TEST_MYSQL_DSN" = "mysql://root@localhost/?socket=$BOXD_TEST_MYSQL_SOCKET"

pg_select() {
	local r
	r=$(psql "$@" -XAtc 'SELECT 1 FROM pg_roles WHERE rolname = current_user AND rolsuper') &&
		[[ "$r" == 1 ]] || { echo "got '$r'"; return 1; }
}
check "psql: SELECT 1 as superuser over BOXD_TEST_PG_DSN" pg_select "$BOXD_TEST_PG_DSN"
check "psql: SELECT 1 over BOXD_TEST_PG_HOST/PORT" \
	pg_select -h "$BOXD_TEST_PG_HOST" -p "$BOXD_TEST_PG_PORT" -U postgres postgres

# ---- engine API

ping() {
	expect_code 200 GET /_ping && [[ "$body" == OK ]]
}
check "engine: GET /_ping answers OK" ping
version() {
	expect_code 200 GET /version && jq -e '.ApiVersion and .Version' <<<"$body" >/dev/null
}
check "engine: GET /version" version

# ---- app container with bind mounts (one plain, one rslave of a shared mount)

# Make $shared a shared mount: / is private here, and a bind with rslave
# propagation receives later mounts only from a shared (master) mount.
mount --bind "$shared" "$shared" && mount --make-shared "$shared" || bail "cannot make $shared a shared mount"

create_app() {
	local spec
	spec=$(jq -n --arg img "$BOXD_TEST_APP_IMAGE" --arg data "$data" --arg shared "$shared" '{
		Image: $img,
		HostConfig: { Mounts: [
			{ Type: "bind", Source: $data, Target: "/data", BindOptions: { Propagation: "rslave" } },
			{ Type: "bind", Source: $shared, Target: "/shared", BindOptions: { Propagation: "rslave" } }
		] } }')
	expect_code 201 POST "/containers/create?name=$app" "$spec" &&
		expect_code 204 POST "/containers/$app/start"
}
check "engine: create + start $BOXD_TEST_APP_IMAGE with Mounts (bind, rslave)" create_app

host_file_visible() {
	echo "written on the host" >"$data/from-host" &&
		[[ "$(podman exec "$app" cat /data/from-host)" == "written on the host" ]]
}
check "app: a file written in the host dir is seen in /data" host_file_visible
container_file_visible() {
	podman exec "$app" sh -c 'echo from-container > /data/from-container' &&
		[[ "$(cat "$data/from-container")" == from-container ]]
}
check "app: a file written in /data is seen on the host" container_file_visible

# A tmpfs mounted under the shared root after the container started.
late_mount_visible() {
	mkdir -p "$shared/sub" &&
		mount -t tmpfs -o size=1m t0050 "$shared/sub" &&
		echo late >"$shared/sub/marker" &&
		podman exec "$app" ls /shared/sub | grep -qx marker
}
check "propagation: a tmpfs mounted on the host later appears in the container" late_mount_visible
late_umount_gone() {
	umount "$shared/sub" &&
		[[ -z "$(podman exec "$app" ls -A /shared/sub)" ]] &&
		! podman exec "$app" grep -q ' /shared/sub ' /proc/self/mountinfo
}
check "propagation: its unmount is seen in the container too" late_umount_gone

# ---- sftp container

# A TCP port nothing listens on (the sftp container uses the host network).
free_port() {
	local p
	for _ in {1..50}; do
		p=$((20000 + RANDOM % 12000))
		if [[ -z "$(ss -Htan "sport = :$p")" ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
port=$(free_port) || bail "no free port"
ssh-keygen -q -t ed25519 -N '' -C t0050 -f "$work/key" || bail "ssh-keygen failed"
echo "served over sftp" >"$appsdata/hello.txt"
sftp_port_open() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; }

create_sftp() {
	local spec
	spec=$(jq -n --arg img "$BOXD_TEST_SFTP_IMAGE" --arg keys "$(cat "$work/key.pub")" \
		--arg port "$port" --arg apps "$appsdata" --arg vols "$shared" '{
		Image: $img,
		Env: ["SFTP_PORT=\($port)", "SFTP_AUTHORIZED_KEYS=\($keys)"],
		HostConfig: {
			NetworkMode: "host",
			Mounts: [
				{ Type: "bind", Source: $apps, Target: "/mnt/appsdata", BindOptions: { Propagation: "rslave" } },
				{ Type: "bind", Source: $vols, Target: "/mnt/volumes", BindOptions: { Propagation: "rslave" } }
			] } }')
	expect_code 201 POST "/containers/create?name=$sftpc" "$spec" &&
		expect_code 204 POST "/containers/$sftpc/start" &&
		wait_for 20 sftp_port_open ||
		{ podman logs "$sftpc"; return 1; }
}
check "sftp: $BOXD_TEST_SFTP_IMAGE starts (host network, port $port)" create_sftp

# sftp_batch COMMANDS — run sftp commands with the key; output on stdout.
sftp_batch() {
	(cd "$work/client" && sftp -q -i "$work/key" -P "$port" \
		-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o LogLevel=ERROR -o ConnectTimeout=10 -b - boxd@127.0.0.1 <<<"$1")
}
sftp_list() {
	local out
	out=$(sftp_batch $'ls -1 /\nls -1 /appsdata') || { echo "$out"; return 1; }
	grep -qx '/appsdata' <<<"$out" && grep -qx '/volumes' <<<"$out" &&
		grep -q 'hello.txt' <<<"$out" || { echo "$out"; return 1; }
}
check "sftp: lists / (chrooted to /mnt) and /appsdata" sftp_list
sftp_get() {
	sftp_batch 'get /appsdata/hello.txt got.txt' &&
		[[ "$(cat "$work/client/got.txt")" == "served over sftp" ]]
}
check "sftp: downloads a file" sftp_get
sftp_put() {
	echo "uploaded" >"$work/client/up.txt" &&
		sftp_batch 'put up.txt /appsdata/up.txt' &&
		[[ "$(cat "$appsdata/up.txt")" == uploaded ]]
}
check "sftp: an uploaded file appears on the host" sftp_put
sftp_late_mount() {
	local out
	mount -t tmpfs -o size=1m t0050 "$shared/sub" && echo share >"$shared/sub/on-tmpfs" &&
		out=$(sftp_batch 'ls -1 /volumes/sub') && grep -q on-tmpfs <<<"$out" || { echo "$out"; return 1; }
	umount "$shared/sub" && out=$(sftp_batch 'ls -1 /volumes/sub') && ! grep -q on-tmpfs <<<"$out"
}
check "sftp: a tmpfs mounted under /volumes after start is listed, and gone after umount" sftp_late_mount
no_password() {
	# Without the key (and with passwords disabled) the server says no.
	local out
	out=$(sftp -P "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o PubkeyAuthentication=no -b - boxd@127.0.0.1 <<<'ls /' 2>&1) && { echo "$out"; return 1; }
	grep -q 'Permission denied' <<<"$out" || { echo "$out"; return 1; }
}
check "sftp: refuses a login without the key" no_password

done_testing
