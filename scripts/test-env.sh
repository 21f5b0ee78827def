#!/usr/bin/env bash
# test-env.sh — real servers for the tests, as plain processes in a temp dir.
#
#   scripts/test-env.sh start ENVFILE   start MariaDB, PostgreSQL 15 and Podman's
#                                       Docker API service, build the offline
#                                       test images if missing, write ENVFILE
#   scripts/test-env.sh stop ENVFILE    stop all of it (containers too) and remove
#                                       the temp dir; safe to repeat, and after a
#                                       start that failed halfway
#
# ENVFILE gets KEY=value lines, no quoting needed (source it with `set -a`):
#   BOXD_TEST_ENV_DIR         the temp dir (/tmp/boxd-testenv.XXXX)
#   BOXD_TEST_MYSQL_DSN       mysql://root@localhost/?socket=DIR/mysql/mysqld.sock
#                             (root, no password, no database selected)
#   BOXD_TEST_MYSQL_SOCKET    DIR/mysql/mysqld.sock
#   BOXD_TEST_PG_DSN          postgresql://postgres@%2Ftmp%2Fboxd-testenv.XXXX%2Fpg:5432/postgres
#                             (libpq URI, socket dir percent-encoded as the
#                             host; superuser postgres, trust auth)
#   BOXD_TEST_PG_HOST         DIR/pg (the socket directory)
#   BOXD_TEST_PG_PORT         5432 (only names the socket file: no TCP)
#   BOXD_TEST_ENGINE_SOCKET   DIR/podman/podman.sock (Docker API v1.41)
#   CONTAINERS_CONF, CONTAINERS_STORAGE_CONF   so that the podman CLI sees the
#                             same containers as the API service
#   BOXD_TEST_APP_IMAGE       localhost/boxd-test/busybox:latest
#   BOXD_TEST_SFTP_IMAGE      localhost/boxd/sftp:latest
#   BOXD_TEST_WEB_IMAGE       localhost/boxd-test/web:latest (httpd on $HTTP_PORT)
#   BOXD_TEST_PROXY_IMAGE     localhost/boxd/proxy:latest
#   BOXD_TEST_PEBBLE_URL      https://127.0.0.1:PORT/dir, pebble's ACME directory
#                             (PEBBLE_VA_ALWAYS_VALID=1: no challenge is checked)
#   BOXD_TEST_PEBBLE_CA       the CA of pebble's own HTTPS (for the ACME client)
#   BOXD_TEST_PEBBLE_MGMT     https://127.0.0.1:PORT, pebble's management API:
#                             /roots/0 is the root of the certificates it issues
#   BOXD_TEST_REGISTRY        127.0.0.1:PORT, a Docker registry (distribution
#                             v2, Debian's docker-registry) over plain HTTP
#                             with htpasswd auth; podman knows it as insecure
#                             through CONTAINERS_REGISTRIES_CONF
#   BOXD_TEST_REGISTRY_USER, BOXD_TEST_REGISTRY_PASSWORD   its one account
#   BOXD_TEST_REGISTRY_IMAGE  BOXD_TEST_REGISTRY/boxd-test/busybox:latest, the
#                             app image pushed there (not in podman's store)
#   CONTAINERS_REGISTRIES_CONF  DIR/podman/registries.conf
#   BOXD_LOCK_WAKE_DIR        DIR/lockwake: the lock wake-up words of the test
#                             databases (src/locks/lock_wake.h), not /dev/shm
#   BOXD_TEST_DOCKER_SOCKET   DIR/docker/docker.sock, only when started with
#                             BOXD_TEST_DOCKER=1 (make check-extra): a real
#                             dockerd (Debian's docker.io, API 1.41) with the
#                             test images loaded, beside Podman
#
# Servers die with the test run: a watchdog runs `stop` once the parent
# process of `start` (check.sh) is gone, even if it was killed without running
# its exit trap. BOXD_TEST_ENV_OWNER_PID=PID watches another process instead
# (needed when start runs in a subshell that exits at once);
# BOXD_TEST_ENV_OWNER_PID=none disables the watchdog (then call stop yourself).
#
# A persistent cache (BOXD_TEST_CACHE, default /var/tmp/boxd-test) keeps what
# is slow to make: the test images, in an image store (podman/storage) that
# each run's podman reads as an additional, read-only store, and freshly
# initialized MariaDB and PostgreSQL data dirs, copied for each run.
# Everything else podman keeps (containers, networks, locks, events) lives in
# the run's temp dir, so concurrent runs, and other podman users on this
# machine, neither see nor remove each other's containers.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
self=$root/scripts/test-env.sh
pgbin=/usr/lib/postgresql/15/bin
# Persistent cache: images and database templates, reused across runs.
cache=${BOXD_TEST_CACHE:-/var/tmp/boxd-test}
pcache=$cache/podman
app_image=localhost/boxd-test/busybox:latest
# The image pushed to the test registry: the app image's files, but an
# image of its own, so that removing the pulled copy never touches the
# containers of the app image.
registry_src_image=localhost/boxd-test/busybox-registry:latest
sftp_image=localhost/boxd/sftp:latest
# A web app (busybox httpd on $HTTP_PORT serving /app/data): ports, domains.
web_image=localhost/boxd-test/web:latest
# The proxy service's image, from Debian's caddy.
proxy_image=localhost/boxd/proxy:latest
pg_port=5432
startup_timeout=60 # seconds, per server

t0=$(date +%s%N)
say() { # message to stderr with the time since start
	local now
	now=$(date +%s%N)
	printf 'test-env: %s (%d.%02ds)\n' "$*" $(((now - t0) / 1000000000)) $(((now - t0) / 10000000 % 100)) >&2
}
die() {
	echo "test-env: error: $*" >&2
	exit 1
}

# wait_until SECONDS WHAT CMD... — poll CMD until it succeeds or time is up.
wait_until() {
	local limit=$1 what=$2
	shift 2
	local deadline=$(($(date +%s) + limit))
	until "$@" >/dev/null 2>&1; do
		if (($(date +%s) >= deadline)); then
			echo "test-env: $what not ready after ${limit}s" >&2
			return 1
		fi
		sleep 0.05
	done
}

# wait_ready WHAT PID CMD... — wait_until CMD succeeds, failing at once if
# the server PID exits.
wait_ready() {
	local what=$1 pid=$2
	shift 2
	wait_until "$startup_timeout" "$what" alive_or_done "$pid" "$@" && "$@" >/dev/null 2>&1 ||
		{ echo "test-env: $what did not start" >&2; return 1; }
}
alive_or_done() { # true when CMD succeeds or PID is gone (to end the wait)
	local pid=$1
	shift
	"$@" || ! running "$pid"
}

# running PID — PID exists and is not a zombie. (kill -0 is not enough:
# the servers are reparented to PID 1, which may reap them late.)
running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ "${stat:0:1}" != Z ]]
}

# start_time PID — field 22 of /proc/PID/stat (ticks since boot), to tell a
# process from a later one that reuses its pid.
start_time() {
	local stat f
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) } # the command name may contain spaces and parens
	read -r -a f <<<"$stat"
	echo "${f[19]}"
}

# ------------------------------------------------------ database templates

# A freshly initialized data dir is kept in the cache, one per server
# version, and copied for each run: mariadb-install-db and initdb take a
# second or two each, a copy a fraction of that. Bump template_format when
# the init options below change.
template_format=1

# template NAME INIT_FUNCTION — set $template to the cached data dir NAME,
# creating it with INIT_FUNCTION DIR (DIR/data must not exist) if missing.
template() {
	local name=$1 init=$2 tmp
	template=$cache/$name-f$template_format/data
	[[ -d "$template" ]] && return 0
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.$name.XXXXXX")
	chmod 0755 "$tmp"
	"$init" "$tmp" || { rm -rf "$tmp"; return 1; }
	sync -f "$tmp/data" 2>/dev/null || true
	# Two runs may race to make it: the first rename wins.
	mv -T "$tmp" "${template%/data}" 2>/dev/null || rm -rf "$tmp"
}

# ---------------------------------------------------------------- MariaDB

init_mariadb() {
	# --no-defaults everywhere: /etc/mysql/my.cnf is for the system server.
	# Root gets a normal (empty) password instead of unix_socket auth, so the
	# DSN works whatever OS user the client runs as.
	mariadb-install-db --no-defaults --user=root --datadir="$1/data" \
		--auth-root-authentication-method=normal --skip-test-db \
		--innodb-log-file-size=16M >"$dir/logs/mariadb-install-db.log" 2>&1 ||
		{ cat "$dir/logs/mariadb-install-db.log" >&2; echo "test-env: mariadb-install-db failed" >&2; return 1; }
}

start_mariadb() {
	local d=$dir/mysql template
	template "mariadb-$(mariadbd --version | awk '{ print $3 }')" init_mariadb
	mkdir -p "$d"
	cp -a "$template" "$d/data"
	setsid mariadbd --no-defaults --user=root --datadir="$d/data" \
		--socket="$d/mysqld.sock" --skip-networking --pid-file="$d/mysqld.pid" \
		--tmpdir="$d" --log-error="$d/mysqld.log" \
		--innodb-log-file-size=16M --innodb-buffer-pool-size=64M \
		</dev/null >>"$d/mysqld.log" 2>&1 &
	echo $! >"$dir/pids/mariadbd"
	wait_ready MariaDB $! \
		mariadb-admin --no-defaults --socket="$d/mysqld.sock" -uroot ping ||
		{ tail -n 20 "$d/mysqld.log" >&2; return 1; }
	say "MariaDB ready"
}

# ------------------------------------------------------------- PostgreSQL

# postgres refuses to run as root, so initdb and the server run as the
# `postgres` system user, on a data dir that user owns.
as_postgres() {
	runuser -u postgres -- "$@"
}

init_postgres() {
	chown postgres: "$1" &&
		as_postgres "$pgbin/initdb" -D "$1/data" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 --no-sync >"$dir/logs/initdb.log" 2>&1 ||
		{ cat "$dir/logs/initdb.log" >&2; echo "test-env: initdb failed" >&2; return 1; }
}

start_postgres() {
	local d=$dir/pg template
	template "postgres-$("$pgbin/postgres" --version | awk '{ print $3 }')" init_postgres
	# $d is also the socket dir: owned by postgres, open to other users.
	install -d -o postgres -g postgres -m 0755 "$d"
	cp -a "$template" "$d/data" # keeps owner postgres and mode 0700
	# Sockets only: no TCP (listen_addresses empty), socket in $d.
	as_postgres "$pgbin/pg_ctl" -D "$d/data" -l "$d/postgres.log" -s -w \
		-t "$startup_timeout" -o "-k $d -p $pg_port -c listen_addresses=''" start ||
		{ tail -n 20 "$d/postgres.log" >&2; die "postgres failed to start"; }
	head -n1 "$d/data/postmaster.pid" >"$dir/pids/postgres"
	say "PostgreSQL ready"
}

# ----------------------------------------------------------------- Podman

# write_podman_conf DIR GRAPHROOT RUNROOT TMPDIR [ADDITIONAL_IMAGE_STORE]
# — DIR/containers.conf and DIR/storage.conf; more containers.conf text
# (a [network] table) may follow on stdin.
write_podman_conf() {
	local d=$1 graphroot=$2 runroot=$3 tmp=$4 extra=${5:-}
	mkdir -p "$d"
	# runc, cgroupfs, file events and fixed ulimits: crun fails on these
	# hybrid cgroups and raising rlimits is not permitted here. lock_type
	# "file" keeps the container locks in tmp_dir: the default shm segment
	# is shared by every podman on the machine and reset by a fresh one.
	{
		cat <<-EOF
			[containers]
			default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

			[engine]
			runtime = "runc"
			cgroup_manager = "cgroupfs"
			events_logger = "file"
			lock_type = "file"
			tmp_dir = "$tmp"
		EOF
		cat
	} >"$d/containers.conf"
	cat >"$d/storage.conf" <<-EOF
		[storage]
		driver = "vfs"
		graphroot = "$graphroot"
		runroot = "$runroot"
	EOF
	if [[ -n "$extra" ]]; then
		printf '\n[storage.options]\nadditionalimagestores = ["%s"]\n' "$extra" >>"$d/storage.conf"
	fi
}

# The images live in $pcache/storage; building them runs no container.
build_images() {
	mkdir -p "$pcache"
	write_podman_conf "$pcache" "$pcache/storage" "$pcache/run" "$pcache/tmp" </dev/null
	(
		# One builder at a time; a second run waits and then finds them built.
		exec 9>"$pcache/build.lock"
		flock 9
		export CONTAINERS_CONF=$pcache/containers.conf CONTAINERS_STORAGE_CONF=$pcache/storage.conf
		"$root/scripts/images/build-app-image.sh" "$app_image"
		BOXD_APP_IMAGE_LABEL=boxd.test.registry=1 \
			"$root/scripts/images/build-app-image.sh" "$registry_src_image"
		"$root/scripts/images/build-sftp-image.sh" "$sftp_image"
		"$root/scripts/images/build-web-image.sh" "$web_image"
		"$root/scripts/images/build-proxy-image.sh" "$proxy_image"
	) >"$dir/logs/images.log" 2>&1 || { cat "$dir/logs/images.log" >&2; die "building the test images failed"; }
	say "images ready"
}

start_podman() {
	local d=$dir/podman id=${dir##*.}
	# The run's own default network, on its own bridge: on the stock
	# "podman" network (bridge podman0, 10.88.0.0/16) every podman database
	# hands out addresses on its own, so two podman instances would give
	# containers the same IP. The bridge is named after the run, the subnet
	# is a random /24 in 10.128.0.0/9.
	write_podman_conf "$d" "$d/storage" "$d/run" "$d/tmp" "$pcache/storage" <<-EOF

		[network]
		network_config_dir = "$d/networks"
		default_network = "boxdtest"
	EOF
	write_registries_conf "$d/registries.conf"
	export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf
	export CONTAINERS_REGISTRIES_CONF=$d/registries.conf
	# Written by hand: this podman's `network create` cannot name the bridge.
	mkdir -p "$d/networks"
	local net=10.$((128 + RANDOM % 128)).$((RANDOM % 256))
	cat >"$d/networks/boxdtest.json" <<-EOF
		{
		  "name": "boxdtest",
		  "id": "$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)",
		  "driver": "bridge",
		  "network_interface": "boxd$id",
		  "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
		  "subnets": [{"subnet": "$net.0/24", "gateway": "$net.1"}],
		  "ipv6_enabled": false,
		  "internal": false,
		  "dns_enabled": false,
		  "ipam_options": {"driver": "host-local"}
		}
	EOF
	setsid podman system service --time=0 "unix://$d/podman.sock" \
		</dev/null >"$dir/logs/podman.log" 2>&1 &
	echo $! >"$dir/pids/podman"
	wait_ready "podman API" $! \
		curl -sf --unix-socket "$d/podman.sock" http://d/v1.41/_ping ||
		{ tail -n 20 "$dir/logs/podman.log" >&2; return 1; }
	say "podman API ready"
}

# --------------------------------------------------------------- registry

# Debian's docker-registry on 127.0.0.1 with htpasswd auth, storage in the
# run's dir. Plain HTTP: podman is told it is insecure by the run's own
# registries.conf (CONTAINERS_REGISTRIES_CONF), never the host's. The port
# is picked here (the registry cannot report one it chose); a port another
# process grabbed meanwhile makes it exit, and the next one is tried.
start_registry() {
	local d=$dir/registry try pid
	mkdir -p "$d/data"
	registry_user=boxd
	registry_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	htpasswd -Bbn "$registry_user" "$registry_password" >"$d/htpasswd" 2>/dev/null
	for try in 1 2 3 4 5; do
		registry_port=$((20000 + RANDOM % 12000))
		ss -Htan "sport = :$registry_port" | grep -q . && continue
		cat >"$d/config.yml" <<-EOF
			version: 0.1
			log:
			  level: warn
			storage:
			  filesystem:
			    rootdirectory: $d/data
			  delete:
			    enabled: true
			http:
			  addr: 127.0.0.1:$registry_port
			auth:
			  htpasswd:
			    realm: boxd-test
			    path: $d/htpasswd
		EOF
		setsid docker-registry serve "$d/config.yml" </dev/null >"$dir/logs/registry.log" 2>&1 &
		pid=$!
		echo $pid >"$dir/pids/registry"
		# 401 (auth required) is the registry answering.
		if wait_ready "registry" $pid registry_answers; then
			say "registry ready on 127.0.0.1:$registry_port"
			return 0
		fi
	done
	tail -n 20 "$dir/logs/registry.log" >&2
	return 1
}
registry_answers() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$registry_port/v2/") == 401 ]]
}

# ----------------------------------------------------------------- pebble

# Debian's pebble (an ACME test CA) on 127.0.0.1: the proxy service gets its
# certificates from it. PEBBLE_VA_ALWAYS_VALID=1: it checks no challenge
# (the test domains resolve nowhere), PEBBLE_VA_NOSLEEP=1 and
# PEBBLE_WFE_NONCEREJECT=0: no random delays nor refused nonces. Its own
# HTTPS uses a CA made here (ca.pem, which the ACME client trusts); the
# root of what it issues is new at every start: GET MGMT/roots/0.
start_pebble() {
	local d=$dir/pebble try pid
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" \
		-days 30 -subj /CN=boxd-test-pebble-ca >/dev/null 2>&1 &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/key.pem" -out "$d/cert.csr" \
			-subj /CN=localhost >/dev/null 2>&1 &&
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
			>"$d/ext.cnf" &&
		openssl x509 -req -in "$d/cert.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
			-out "$d/cert.pem" -days 30 -extfile "$d/ext.cnf" >/dev/null 2>&1 || return 1
	for try in 1 2 3 4 5; do
		pebble_port=$((20000 + RANDOM % 12000))
		pebble_mgmt=$((pebble_port + 1))
		ss -Htan "sport = :$pebble_port or sport = :$pebble_mgmt" | grep -q . && continue
		cat >"$d/config.json" <<-EOF
			{"pebble": {"listenAddress": "127.0.0.1:$pebble_port", "managementListenAddress": "127.0.0.1:$pebble_mgmt",
			 "certificate": "$d/cert.pem", "privateKey": "$d/key.pem", "httpPort": 5002, "tlsPort": 5001,
			 "ocspResponderURL": "", "externalAccountBindingRequired": false}}
		EOF
		PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
			setsid pebble -config "$d/config.json" </dev/null >"$dir/logs/pebble.log" 2>&1 &
		pid=$!
		echo $pid >"$dir/pids/pebble"
		if wait_ready "pebble" $pid pebble_answers; then
			printf '%s\n' "$pebble_port" "$pebble_mgmt" >"$d/env"
			say "pebble ready on 127.0.0.1:$pebble_port"
			return 0
		fi
	done
	tail -n 20 "$dir/logs/pebble.log" >&2
	return 1
}
pebble_answers() {
	curl -sf --cacert "$dir/pebble/ca.pem" "https://127.0.0.1:$pebble_port/dir" >/dev/null &&
		curl -sf --cacert "$dir/pebble/ca.pem" "https://127.0.0.1:$pebble_mgmt/roots/0" >/dev/null
}

# The registries.conf of the run's podman: the test registry over HTTP.
write_registries_conf() {
	cat >"$1" <<-EOF
		[[registry]]
		location = "127.0.0.1:$registry_port"
		insecure = true
	EOF
}

# The app image, pushed to the registry with its credentials.
push_registry_image() {
	podman push -q --creds "$registry_user:$registry_password" "$registry_src_image" \
		"127.0.0.1:$registry_port/boxd-test/busybox:latest" >>"$dir/logs/registry.log" 2>&1 ||
		{ tail -n 20 "$dir/logs/registry.log" >&2; return 1; }
	say "app image pushed to the registry"
}

# --------------------------------------------------------------- watchdog

start_watchdog() {
	local owner=${BOXD_TEST_ENV_OWNER_PID:-$PPID}
	[[ "$owner" == none ]] && return 0
	local since
	since=$(start_time "$owner") || die "owner pid $owner not running"
	# Poll once a second: bash cannot wait for a process it did not start.
	setsid bash -c '
		owner=$1 since=$2 self=$3 envfile=$4
		echo "watchdog: watching pid $owner"
		while stat=$(cat /proc/$owner/stat 2>/dev/null); do
			stat=${stat##*) }
			read -r -a f <<<"$stat"
			[[ ${f[0]} != Z && ${f[19]} == "$since" ]] || break
			sleep 1
		done
		echo "watchdog: pid $owner is gone, stopping"
		exec "$self" stop "$envfile"
	' watchdog "$owner" "$since" "$self" "$dir/env" </dev/null >>"$dir/logs/watchdog.log" 2>&1 &
	echo $! >"$dir/pids/watchdog"
}

# ------------------------------------------------- a test's private server
#
# A test that kills a database server (kill -9, restart) must not take the
# shared one down under the other tests: it starts its own, in a dir of its
# own, from the same cached template.
#
#   test-env.sh db-start mysql|postgres DIR   start (or restart: the data in
#                                             DIR/data is kept) and wait until
#                                             it answers; prints KEY=value
#                                             lines: DB_SOCKET_DIR, DB_DSN
#                                             (database "boxd", created on the
#                                             first start), DB_PGID (the
#                                             server's process group: kill
#                                             -KILL -- -PGID kills all of it)
#   test-env.sh db-stop DIR                   stop it (any state), for cleanup

db_start() {
	local kind=$1 d template
	d=$(cd "$2" && pwd) || die "no dir $2"
	dir=$d # template() and the init functions log into $dir/logs
	mkdir -p "$d/logs"
	case $kind in
	mysql)
		if [[ ! -d "$d/data" ]]; then
			template "mariadb-$(mariadbd --version | awk '{ print $3 }')" init_mariadb
			cp -a "$template" "$d/data"
		fi
		setsid mariadbd --no-defaults --user=root --datadir="$d/data" \
			--socket="$d/mysqld.sock" --skip-networking --pid-file="$d/mysqld.pid" \
			--tmpdir="$d" --log-error="$d/mysqld.log" --max-connections=1000 \
			--innodb-log-file-size=16M --innodb-buffer-pool-size=64M \
			</dev/null >>"$d/mysqld.log" 2>&1 &
		echo $! >"$d/pgid"
		wait_ready "private MariaDB" $! \
			mariadb-admin --no-defaults --socket="$d/mysqld.sock" -uroot ping ||
			{ tail -n 20 "$d/mysqld.log" >&2; return 1; }
		mariadb --no-defaults --socket="$d/mysqld.sock" -uroot \
			-e "CREATE DATABASE IF NOT EXISTS boxd CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" >&2
		echo "DB_SOCKET_DIR=$d"
		echo "DB_DSN=mysql://root@localhost/boxd?socket=$d/mysqld.sock"
		;;
	postgres)
		if [[ ! -d "$d/data" ]]; then
			template "postgres-$("$pgbin/postgres" --version | awk '{ print $3 }')" init_postgres
			chown postgres: "$d"
			chmod 0755 "$d"
			cp -a "$template" "$d/data"
		fi
		# Started directly (not through pg_ctl) in a session of its own,
		# so that the process group is the postmaster and its backends.
		setsid runuser -u postgres -- "$pgbin/postgres" -D "$d/data" -k "$d" -p "$pg_port" \
			-c listen_addresses='' -c max_connections=500 -c fsync=on \
			</dev/null >>"$d/postgres.log" 2>&1 &
		echo $! >"$d/pgid"
		wait_ready "private PostgreSQL" $! \
			runuser -u postgres -- "$pgbin/pg_isready" -q -h "$d" -p "$pg_port" ||
			{ tail -n 20 "$d/postgres.log" >&2; return 1; }
		wait_until "$startup_timeout" "private PostgreSQL" \
			runuser -u postgres -- psql -h "$d" -p "$pg_port" -X -q -c "SELECT 1" postgres
		if ! runuser -u postgres -- psql -h "$d" -p "$pg_port" -X -q -A -t \
			-c "SELECT 1 FROM pg_database WHERE datname = 'boxd'" postgres | grep -q 1; then
			runuser -u postgres -- psql -h "$d" -p "$pg_port" -X -q -c "CREATE DATABASE boxd" postgres >&2
		fi
		echo "DB_SOCKET_DIR=$d"
		echo "DB_DSN=host=$d port=$pg_port user=postgres dbname=boxd"
		;;
	*) die "db-start: mysql or postgres, not '$kind'" ;;
	esac
	echo "DB_PGID=$(cat "$d/pgid")"
}

db_stop() {
	local d=$1 pgid
	pgid=$(cat "$d/pgid" 2>/dev/null) || return 0
	[[ "$pgid" =~ ^[0-9]+$ ]] || return 0
	kill -TERM -- "-$pgid" 2>/dev/null || return 0
	wait_until 10 "private server exit" not running "$pgid" || kill -KILL -- "-$pgid" 2>/dev/null || true
	# Backends of a killed postmaster end once they notice.
	wait_until 10 "private server group exit" not group_alive "$pgid" || kill -KILL -- "-$pgid" 2>/dev/null || true
}

group_alive() { pgrep -g "$1" >/dev/null; }

# ------------------------------------------------------------------ start

# ----------------------------------------------------------------- dockerd
#
# Debian's docker.io as a plain process: no iptables, vfs storage; data,
# exec root (with the containerd it starts for itself), pidfile and socket
# in the run's dir, an empty config file instead of /etc/docker/daemon.json.
# Its socket is its own: Podman's and another run's dockerd are not touched.
# Its bridge too (not docker0, which every run's dockerd would share): the
# run's, named after it, on a random /24 in 10.128.0.0/9, made here and
# deleted at stop; apps get an address on it (the proxy routes to it), and
# published ports work through docker-proxy without iptables. Where no
# bridge can be made, none (--bridge=none: no ports, no proxy routes). The
# test images come from podman (`podman save` | POST /images/load).
start_docker() {
	local d=$dir/docker img br=boxdk${dir##*.} net bridge=none
	mkdir -p "$d"
	echo '{}' >"$d/daemon.json"
	net=10.$((128 + RANDOM % 128)).$((RANDOM % 256))
	if ip link add "$br" type bridge 2>>"$dir/logs/docker.log"; then
		echo "$br" >"$d/bridge"
		ip addr add "$net.1/24" dev "$br" && ip link set "$br" up && bridge=$br
	fi
	setsid dockerd --config-file "$d/daemon.json" --iptables=false --ip6tables=false --bridge="$bridge" \
		--storage-driver=vfs --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" \
		-H "unix://$d/docker.sock" </dev/null >"$dir/logs/docker.log" 2>&1 &
	echo $! >"$dir/pids/dockerd"
	wait_ready "dockerd" $! curl -sf --unix-socket "$d/docker.sock" http://d/_ping ||
		{ tail -n 20 "$dir/logs/docker.log" >&2; return 1; }
	for img in "$app_image" "$sftp_image" ${web_image:+"$web_image"} ${proxy_image:+"$proxy_image"}; do
		podman save --format docker-archive "$img" 2>>"$dir/logs/docker.log" |
			curl -sf --unix-socket "$d/docker.sock" -X POST -H 'Content-Type: application/x-tar' \
				--data-binary @- http://d/v1.41/images/load >>"$dir/logs/docker.log" ||
			{ tail -n 20 "$dir/logs/docker.log" >&2; return 1; }
	done
	say "dockerd ready (bridge $bridge), images loaded"
}

cmd_start() {
	local envfile=$1
	dir=$(mktemp -d /tmp/boxd-testenv.XXXX)
	# Other users (postgres) must reach their subdirectory.
	chmod 0755 "$dir"
	mkdir -p "$dir/pids" "$dir/logs"
	# Written first, so that `stop ENVFILE` finds the dir after any failure.
	echo "BOXD_TEST_ENV_DIR=$dir" >"$envfile"
	cp "$envfile" "$dir/env"
	started=0
	trap '[[ $started -eq 1 ]] || { echo "test-env: start failed, cleaning up" >&2; "$self" stop "$dir/env"; }' EXIT
	trap 'exit 130' INT TERM # so that the EXIT trap runs
	start_watchdog
	say "dir $dir"

	# The three servers start in parallel; the images are built (or found
	# up to date) before podman starts so that its image list is complete.
	local pids=() p rc=0
	start_mariadb &
	pids+=($!)
	start_postgres &
	pids+=($!)
	start_pebble &
	pids+=($!)
	# The registry's port goes into podman's registries.conf: it starts
	# first. The env file needs its credentials: a file, not a subshell var.
	{
		build_images
		start_registry
		start_podman
		push_registry_image
		printf '%s\n' "$registry_port" "$registry_user" "$registry_password" >"$dir/registry/env"
		if [[ ${BOXD_TEST_DOCKER:-} == 1 ]]; then start_docker; fi
	} &
	pids+=($!)
	mkdir -p "$dir/sshd"
	sshd_start "$dir/sshd" >"$dir/sshd/env" &
	pids+=($!)
	for p in "${pids[@]}"; do
		wait "$p" || rc=1
	done
	[[ $rc -eq 0 ]] || die "a server failed to start"

	local sock=$dir/mysql/mysqld.sock reg=() peb=()
	mapfile -t reg <"$dir/registry/env"
	mapfile -t peb <"$dir/pebble/env"
	cat >"$envfile" <<-EOF
		BOXD_TEST_ENV_DIR=$dir
		BOXD_TEST_MYSQL_DSN=mysql://root@localhost/?socket=$sock
		BOXD_TEST_MYSQL_SOCKET=$sock
		BOXD_TEST_PG_DSN=postgresql://postgres@${dir//\//%2F}%2Fpg:$pg_port/postgres
		BOXD_TEST_PG_HOST=$dir/pg
		BOXD_TEST_PG_PORT=$pg_port
		BOXD_TEST_ENGINE_SOCKET=$dir/podman/podman.sock
		CONTAINERS_CONF=$dir/podman/containers.conf
		CONTAINERS_STORAGE_CONF=$dir/podman/storage.conf
		BOXD_TEST_APP_IMAGE=$app_image
		BOXD_TEST_SFTP_IMAGE=$sftp_image
		BOXD_TEST_WEB_IMAGE=$web_image
		BOXD_TEST_PROXY_IMAGE=$proxy_image
		BOXD_TEST_PEBBLE_URL=https://127.0.0.1:${peb[0]}/dir
		BOXD_TEST_PEBBLE_CA=$dir/pebble/ca.pem
		BOXD_TEST_PEBBLE_MGMT=https://127.0.0.1:${peb[1]}
		BOXD_TEST_REGISTRY=127.0.0.1:${reg[0]}
		BOXD_TEST_REGISTRY_USER=${reg[1]}
		BOXD_TEST_REGISTRY_PASSWORD=${reg[2]}
		BOXD_TEST_REGISTRY_IMAGE=127.0.0.1:${reg[0]}/boxd-test/busybox:latest
		CONTAINERS_REGISTRIES_CONF=$dir/podman/registries.conf
		BOXD_LOCK_WAKE_DIR=$dir/lockwake
	EOF
	mkdir -p "$dir/lockwake"
	[[ -S $dir/docker/docker.sock ]] && echo "BOXD_TEST_DOCKER_SOCKET=$dir/docker/docker.sock" >>"$envfile"
	sed 's/^/BOXD_TEST_/' "$dir/sshd/env" >>"$envfile"
	cp "$envfile" "$dir/env"
	started=1
	say "started"
}

# ------------------------------------------------------------------- sshd
#
# A real OpenSSH server for the SFTP backup target (issue 15): 127.0.0.1 on
# a free port, its own host key, key auth only, for the current user (the
# tests run as root; no user is added to /etc), sftp only. Not chrooted:
# sshd refuses a chroot below /tmp (world-writable); the targets are paths
# below DIR/root (each test uses a subdir of it). Prints KEY=value lines:
# SSH_PORT, SSH_USER, SSH_KEY (the client's private key), SSH_KNOWN_HOSTS
# (the host key pinned for [127.0.0.1]:PORT), SSH_ROOT (DIR/root: the
# targets' paths are below it), SSH_PGID (kill -KILL --
# -PGID ends the server and every session).
#
#   test-env.sh sshd-start DIR   a test's own server (one that kills it)
#   test-env.sh sshd-stop DIR
sshd_start() {
	local d try port pid user
	d=$(cd "$1" && pwd) || die "no dir $1"
	user=$(id -un)
	mkdir -p "$d/root"
	chmod 0755 "$d" "$d/root"
	# sshd's privilege separation needs its empty dir (Debian makes it
	# in the service's start, which the tests do not use).
	mkdir -p /run/sshd
	[[ -f $d/host_key ]] || ssh-keygen -q -t ed25519 -N '' -C boxd-test-host -f "$d/host_key" >/dev/null
	[[ -f $d/client_key ]] || ssh-keygen -q -t ed25519 -N '' -C boxd-test-client -f "$d/client_key" >/dev/null
	cp "$d/client_key.pub" "$d/authorized_keys"
	chmod 0600 "$d/authorized_keys"
	for try in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 12000))
		ss -Htan "sport = :$port" | grep -q . && continue
		cat >"$d/sshd_config" <<-EOF
			ListenAddress 127.0.0.1:$port
			HostKey $d/host_key
			PidFile none
			UsePAM no
			PasswordAuthentication no
			KbdInteractiveAuthentication no
			PubkeyAuthentication yes
			PermitRootLogin prohibit-password
			AuthorizedKeysFile $d/authorized_keys
			StrictModes no
			Subsystem sftp internal-sftp
			ForceCommand internal-sftp
			AllowTcpForwarding no
			X11Forwarding no
			MaxStartups 100
			LogLevel ERROR
		EOF
		setsid /usr/sbin/sshd -D -e -f "$d/sshd_config" </dev/null >>"$d/sshd.log" 2>&1 &
		pid=$!
		echo $pid >"$d/pgid"
		if wait_ready "sshd" $pid listening "$port"; then
			echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/host_key.pub")" >"$d/known_hosts"
			echo "SSH_PORT=$port"
			echo "SSH_USER=$user"
			echo "SSH_KEY=$d/client_key"
			echo "SSH_KNOWN_HOSTS=$d/known_hosts"
			echo "SSH_ROOT=$d/root"
			echo "SSH_PGID=$pid"
			return 0
		fi
	done
	tail -n 20 "$d/sshd.log" >&2
	return 1
}
listening() { ss -Htln "sport = :$1" | grep -q .; }
# descendants PID: the pids below PID (children first, then theirs).
descendants() {
	local c
	for c in $(pgrep -P "$1"); do
		echo "$c"
		descendants "$c"
	done
}
# sshd_stop DIR: the listener and every session. A session's processes
# leave the listener's process group (sshd calls setsid for each
# connection): they are found as its descendants and killed by pid.
sshd_stop() {
	local d=$1 pgid sessions
	pgid=$(cat "$d/pgid" 2>/dev/null) || return 0
	[[ "$pgid" =~ ^[0-9]+$ ]] || return 0
	running "$pgid" || return 0
	sessions=$(descendants "$pgid")
	kill -STOP "$pgid" 2>/dev/null # no new session meanwhile
	[[ -n "$sessions" ]] && kill -KILL $sessions 2>/dev/null
	kill -KILL -- "-$pgid" 2>/dev/null
	kill -CONT "$pgid" 2>/dev/null
	wait_until 10 "sshd exit" not group_alive "$pgid" || true
}

# ------------------------------------------------------------------- stop

# stop_pid NAME SECONDS — SIGTERM the pid recorded as NAME, SIGKILL after
# SECONDS.
stop_pid() {
	local pid
	pid=$(head -n1 "$dir/pids/$1" 2>/dev/null) || return 0
	[[ -n "$pid" && "$pid" != "$$" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	wait_until "$2" "$1 exit" not running "$pid" || kill -KILL "$pid" 2>/dev/null || true
}

not() { ! "$@"; }

cmd_stop() {
	local envfile=$1
	[[ -f "$envfile" ]] || return 0
	dir=$(sed -n 's/^BOXD_TEST_ENV_DIR=//p' "$envfile" | head -n1)
	[[ -n "$dir" ]] || return 0
	# Never remove anything but a dir this script made.
	[[ "$dir" =~ ^/tmp/boxd-testenv\.[A-Za-z0-9]{4}$ ]] || die "refusing to clean up '$dir'"
	[[ -d "$dir" ]] || return 0
	# One stopper at a time (the watchdog and check.sh's trap may race).
	exec 8<"$dir"
	flock 8
	[[ -d "$dir" ]] || return 0

	local d=$dir/podman
	if [[ -f "$d/containers.conf" && -f "$d/storage.conf" ]]; then
		# Every container the tests started: through the CLI, which works
		# whether or not the API service still runs.
		export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf
		[[ -f $d/registries.conf ]] && export CONTAINERS_REGISTRIES_CONF=$d/registries.conf
		timeout 60 podman pod rm -af -t 0 >/dev/null 2>&1 || true
		timeout 60 podman rm -af -t 0 >/dev/null 2>&1 || echo "test-env: podman rm -af failed" >&2
		say "containers removed"
	fi
	stop_pid podman 10
	if [[ -S $dir/docker/docker.sock ]]; then
		# Its containers first (dockerd would stop them one by one with
		# their timeouts), then dockerd, which stops its containerd.
		local c
		for c in $(curl -s --max-time 10 --unix-socket "$dir/docker/docker.sock" \
			'http://d/v1.41/containers/json?all=1' | jq -r '.[].Id' 2>/dev/null); do
			curl -s --max-time 30 --unix-socket "$dir/docker/docker.sock" -X DELETE \
				"http://d/v1.41/containers/$c?force=1&v=1" >/dev/null || true
		done
	fi
	stop_pid dockerd 20
	if [[ -f $dir/docker/bridge ]]; then
		ip link del "$(cat "$dir/docker/bridge")" 2>/dev/null || true
	fi
	stop_pid registry 5
	stop_pid pebble 5
	sshd_stop "$dir/sshd"
	if [[ -f "$dir/pg/data/postmaster.pid" ]]; then
		as_postgres "$pgbin/pg_ctl" -D "$dir/pg/data" -s -m fast -w -t 20 stop >/dev/null 2>&1 || true
	fi
	stop_pid postgres 10
	stop_pid mariadbd 20
	stop_pid watchdog 1
	say "servers stopped"

	# Leftovers: any process whose command line names the temp dir (conmon,
	# a server that ignored SIGTERM). Not this script nor its callers,
	# though: a caller's command line may name it (`test-env.sh stop $dir/env`).
	local p stat keep=" " q=$BASHPID args f
	while [[ -n "$q" && "$q" != 0 ]]; do
		keep+="$q "
		stat=$(cat "/proc/$q/stat" 2>/dev/null) || break
		stat=${stat##*) }
		read -r -a f <<<"$stat"
		q=${f[1]}
	done
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[[ "$keep" == *" $p "* ]] && continue
		mapfile -d "" -t args 2>/dev/null <"/proc/$p/cmdline" || continue
		if [[ "${args[*]}" == *"$dir"* ]] && running "$p"; then
			echo "test-env: killing leftover $p: ${args[*]:0:8}" >&2
			kill -KILL "$p" 2>/dev/null || true
		fi
	done

	# Mounts podman (or a test) left under the dir, deepest first.
	local m
	while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)

	rm -rf --one-file-system "$dir"
	say "stopped"
}

case "${1:-}" in
start)
	[[ $# -eq 2 ]] || die "usage: $0 start ENVFILE"
	cmd_start "$2"
	;;
stop)
	[[ $# -eq 2 ]] || die "usage: $0 stop ENVFILE"
	cmd_stop "$2"
	;;
db-start)
	[[ $# -eq 3 ]] || die "usage: $0 db-start mysql|postgres DIR"
	db_start "$2" "$3"
	;;
db-stop)
	[[ $# -eq 2 ]] || die "usage: $0 db-stop DIR"
	db_stop "$2"
	;;
db-template)
	# The cached, freshly initialized MariaDB data dir (made if missing):
	# scripts/test-galera.sh copies it for its bootstrap node.
	[[ $# -eq 2 && $2 == mysql ]] || die "usage: $0 db-template mysql"
	dir=$(mktemp -d) && mkdir -p "$dir/logs"
	template "mariadb-$(mariadbd --version | awk '{ print $3 }')" init_mariadb
	rm -rf "$dir"
	echo "$template"
	;;
sshd-start)
	[[ $# -eq 2 ]] || die "usage: $0 sshd-start DIR"
	sshd_start "$2"
	;;
sshd-stop)
	[[ $# -eq 2 ]] || die "usage: $0 sshd-stop DIR"
	sshd_stop "$2"
	;;
*)
	echo "usage: $0 start|stop ENVFILE | db-start mysql|postgres DIR | db-stop DIR | db-template mysql | sshd-start DIR | sshd-stop DIR" >&2
	exit 2
	;;
esac
