#!/usr/bin/env bash
# test-pgrepl.sh — a PostgreSQL primary and a streaming-replication standby
# on 127.0.0.1, as plain processes, for the failover tests (t0910).
#
#   test-pgrepl.sh start DIR [--sync]   initdb a primary (wal_level=replica,
#                                       a replication user `repl`, trust on
#                                       127.0.0.1 only), a database `boxd`,
#                                       then the standby from pg_basebackup -R
#                                       (a physical replication slot); waits
#                                       until the standby streams. --sync:
#                                       synchronous_standby_names = '*' on the
#                                       primary (a commit returns once the
#                                       standby has flushed it). Prints
#                                       KEY=value lines, shell-quoted (also in
#                                       DIR/env, to source):
#                                       PGREPL_DSN (multi-host, read-write),
#                                       PGREPL_PRIMARY_PORT, _STANDBY_PORT,
#                                       PGREPL_PRIMARY_PGID, _STANDBY_PGID
#                                       (the process group of each server's
#                                       postmaster: NOT its backends, see
#                                       signal).
#   test-pgrepl.sh promote DIR          promote the standby; waits until it
#                                       accepts writes.
#   test-pgrepl.sh signal DIR primary|standby SIG
#                                       send SIG (KILL, STOP, CONT...) to the
#                                       whole server: its postmaster and every
#                                       process it started. Every backend is
#                                       a session of its own (setsid() in
#                                       InitPostmasterChild), so a signal to
#                                       the postmaster's process group reaches
#                                       the postmaster alone: after a kill -9
#                                       of it the backends serve their open
#                                       connections on until they notice, and
#                                       a SIGSTOP of it freezes new
#                                       connections only.
#   test-pgrepl.sh stop DIR             stop both (any state), for cleanup.
#
# No systemd, no /etc changes; the servers run as the `postgres` system
# user (postgres refuses root), in DIR (which must be reachable by that
# user: this makes DIR 0755). Ports are free ones, picked at start.
set -euo pipefail

pgbin=/usr/lib/postgresql/15/bin
startup_timeout=60 # seconds, per server

die() {
	echo "test-pgrepl: $*" >&2
	exit 1
}

as_postgres() { runuser -u postgres -- "$@"; }

# wait_until SECONDS WHAT CMD...: run CMD until it succeeds, with a deadline.
wait_until() {
	local deadline=$(($(date +%s) + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || {
			echo "test-pgrepl: $what: not within the deadline" >&2
			return 1
		}
		sleep 0.1
	done
}

free_port() {
	local p
	for _ in {1..50}; do
		p=$((20000 + RANDOM % 12000))
		if [ -z "$(ss -Htan "sport = :$p")" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

psql_at() { # PORT SQL...: one value, as postgres over TCP
	local port=$1
	shift
	as_postgres psql -h 127.0.0.1 -p "$port" -U postgres -X -q -A -t -v ON_ERROR_STOP=1 \
		-d postgres "$@"
}

# start_server NAME PORT: the server of DIR/NAME in a session of its own.
# setpriv execs (runuser would stay the parent, and stop itself for good
# when its child is stopped, as su does), so the postmaster leads the
# session: DIR/NAME/pgid is its pid.
start_server() {
	local name=$1 port=$2 d=$dir/$1
	setsid setpriv --reuid=postgres --regid=postgres --init-groups -- "$pgbin/postgres" -D "$d/data" -k "$d" \
		-p "$port" </dev/null >>"$d/postgres.log" 2>&1 &
	echo $! >"$d/pgid"
	wait_until "$startup_timeout" "$name answers" as_postgres "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" ||
		{ tail -n 20 "$d/postgres.log" >&2; return 1; }
}

is_primary() { [ "$(psql_at "$1" -c 'SELECT pg_is_in_recovery()')" = f ]; }
streams() { [ "$(psql_at "$1" -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" -ge 1 ]; }

start() {
	local sync=no
	[ "${1:-}" = --sync ] && sync=yes
	[ ! -e "$dir/primary" ] || die "$dir/primary exists: stop and remove it first"
	chmod 0755 "$dir"
	local p1 p2
	p1=$(free_port) || die "no free port"
	p2=$(free_port) || die "no free port"
	[ "$p1" != "$p2" ] || p2=$(free_port)
	install -d -o postgres -g postgres -m 0755 "$dir/primary" "$dir/standby"

	as_postgres "$pgbin/initdb" -D "$dir/primary/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
		--no-sync >"$dir/primary/initdb.log" 2>&1 || { cat "$dir/primary/initdb.log" >&2; die "initdb failed"; }
	# TCP on 127.0.0.1 only (the hosts list needs ports), sockets in the
	# server's dir. fsync off: a kill -9 of the processes loses nothing the
	# kernel has; nothing here survives a machine crash anyway. 1000
	# connections: every waiting worker keeps one (the 3 x 200 of issue 16
	# exhausted 300).
	as_postgres tee -a "$dir/primary/data/postgresql.conf" >/dev/null <<-CONF
		listen_addresses = '127.0.0.1'
		max_connections = 1000
		wal_level = replica
		max_wal_senders = 5
		max_replication_slots = 5
		wal_keep_size = 256MB
		hot_standby = on
		fsync = off
		wal_sender_timeout = 5s
		wal_receiver_timeout = 5s
		wal_retrieve_retry_interval = 200ms
		log_line_prefix = '%m [%p] '
	CONF
	as_postgres tee "$dir/primary/data/pg_hba.conf" >/dev/null <<-HBA
		local all all trust
		host all all 127.0.0.1/32 trust
		host replication repl 127.0.0.1/32 trust
	HBA
	start_server primary "$p1"
	psql_at "$p1" -c "CREATE ROLE repl WITH REPLICATION LOGIN" -c "CREATE DATABASE boxd" >/dev/null

	as_postgres "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$p1" -U repl -D "$dir/standby/data" -R -X stream \
		-c fast -C -S boxd_standby >"$dir/standby/basebackup.log" 2>&1 ||
		{ cat "$dir/standby/basebackup.log" >&2; die "pg_basebackup failed"; }
	# The copy carries the primary's settings; pg_basebackup -R wrote
	# primary_conninfo and standby.signal. cluster_name is the standby's
	# application_name, the name synchronous_standby_names would list.
	as_postgres tee -a "$dir/standby/data/postgresql.conf" >/dev/null <<-CONF
		cluster_name = 'boxd_standby'
		primary_slot_name = 'boxd_standby'
	CONF
	start_server standby "$p2"
	wait_until "$startup_timeout" "the standby streams" streams "$p1" ||
		{ tail -n 20 "$dir/standby/postgres.log" >&2; die "the standby does not stream"; }
	if [ $sync = yes ]; then
		psql_at "$p1" -c "ALTER SYSTEM SET synchronous_standby_names = '*'" -c "SELECT pg_reload_conf()" >/dev/null
		wait_until 10 "synchronous standby" \
			test "$(psql_at "$p1" -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")" = 1
	fi
	local dsn="host=127.0.0.1,127.0.0.1 port=$p1,$p2 user=postgres dbname=boxd target_session_attrs=read-write"
	{
		printf 'PGREPL_DSN=%q\n' "$dsn"
		echo "PGREPL_PRIMARY_PORT=$p1"
		echo "PGREPL_STANDBY_PORT=$p2"
		echo "PGREPL_PRIMARY_PGID=$(cat "$dir/primary/pgid")"
		echo "PGREPL_STANDBY_PGID=$(cat "$dir/standby/pgid")"
		echo "PGREPL_SYNC=$sync"
	} | tee "$dir/env"
}

env_of() { (. "$dir/env" && eval "echo \"\${$1}\""); }

promote() {
	local p2
	p2=$(env_of PGREPL_STANDBY_PORT)
	[ -n "$p2" ] || die "no $dir/env: not started"
	# pg_promote(wait): returns once the standby accepts writes.
	[ "$(psql_at "$p2" -c "SELECT pg_promote(true, $startup_timeout)")" = t ] ||
		{ tail -n 20 "$dir/standby/postgres.log" >&2; die "promote failed"; }
	wait_until "$startup_timeout" "the standby accepts writes" is_primary "$p2" ||
		{ tail -n 20 "$dir/standby/postgres.log" >&2; die "the promoted standby does not accept writes"; }
}

# signal_server NAME SIG: the postmaster is stopped first (it forks no more
# and its children stay its children), then SIG goes to its children, then
# to it; CONT it again unless SIG was KILL or STOP.
# postmaster_of NAME: its pid, if it runs (postmaster.pid outlives a kill -9:
# the pid must still be a postgres of this data dir).
postmaster_of() {
	local pm
	pm=$(head -n 1 "$dir/$1/data/postmaster.pid" 2>/dev/null) || return 1
	[[ "$pm" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pm/cmdline" 2>/dev/null | grep -qF -- "-D $dir/$1/data " &&
		echo "$pm"
}

signal_server() {
	local pm kids
	pm=$(postmaster_of "$1") || die "$1 is not running"
	kill -STOP "$pm"
	kids=$(pgrep -P "$pm" || true)
	# shellcheck disable=SC2086 # a list of pids
	[ -z "$kids" ] || kill -"$2" $kids 2>/dev/null || true
	kill -"$2" "$pm"
	case $2 in KILL | 9 | STOP | SIGSTOP | SIGKILL) ;; *) kill -CONT "$pm" ;; esac
}

group_alive() { pgrep -g "$1" >/dev/null; }
not() { ! "$@"; }

stop_server() {
	local pgid
	pgid=$(cat "$dir/$1/pgid" 2>/dev/null) || return 0
	[[ "$pgid" =~ ^[0-9]+$ ]] || return 0
	# A frozen server (signal STOP) must run to stop.
	(signal_server "$1" CONT) 2>/dev/null || true
	# Fast shutdown; a server that is gone already (killed) is fine.
	kill -INT -- "-$pgid" 2>/dev/null || true
	if ! wait_until 10 "$1 exits" not group_alive "$pgid"; then
		(signal_server "$1" KILL) 2>/dev/null || true
		kill -KILL -- "-$pgid" 2>/dev/null || true
	fi
	wait_until 5 "$1 exits" not group_alive "$pgid" || true
	rm -f "$dir/$1/pgid"
}

stop() {
	stop_server standby
	stop_server primary
}

usage="usage: $0 start DIR [--sync] | promote DIR | signal DIR primary|standby SIG | stop DIR"
[ $# -ge 2 ] || die "$usage"
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
shift 2
case $cmd in
start) start "$@" ;;
promote) promote ;;
signal)
	if [ $# != 2 ] || [[ ! "$1" =~ ^(primary|standby)$ ]]; then die "$usage"; fi
	signal_server "$1" "$2"
	;;
stop) stop ;;
*) die "$usage" ;;
esac
