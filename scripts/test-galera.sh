#!/usr/bin/env bash
# test-galera.sh — a 3-node MariaDB Galera cluster on 127.0.0.1 for tests,
# as plain processes in DIR (never systemd, nothing in /etc).
#
#   scripts/test-galera.sh start DIR        bootstrap node 1 (--wsrep-new-cluster,
#                                           from test-env's cached data dir), then
#                                           join nodes 2 and 3 (state transfer with
#                                           mariabackup), each waited for until it
#                                           is Synced; database "boxd" exists;
#                                           prints KEY=value lines (also in DIR/env)
#   scripts/test-galera.sh stop DIR         stop every node (any state); safe to repeat
#   scripts/test-galera.sh node-kill DIR N  kill -9 node N (its whole process group)
#   scripts/test-galera.sh node-start DIR N start node N again on its data (it
#                                           rejoins: IST from the position its
#                                           InnoDB recovered after a kill, or
#                                           SST when IST cannot)
#
# Printed (and in DIR/env):
#   GALERA_DSN             the three nodes' DSNs as one boxd DSN list
#                          ("mysql://...sock1,mysql://...sock2,mysql://...sock3")
#   GALERA_DSN_N           node N alone (unix socket, root, no password, db boxd)
#   GALERA_SOCKET_N        node N's socket
#   GALERA_PGID_N          node N's process group (kill -KILL -- -PGID)
#
# Each node N has its own ports on 127.0.0.1: the SQL port (unused by boxd,
# which talks over the socket), the group communication (gmcast), IST and
# SST ports. Ports are picked free at start and kept in DIR/ports, so that a
# restarted node rejoins at the same address. Failure detection is faster
# than Galera's defaults (a killed node is evicted after evs.suspect_timeout,
# 3 s, instead of 5–15 s): commits stall until the survivors agree on the
# new view.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# Seconds per node: a mariabackup SST takes ~10 s on an idle machine, and
# 1-2 minutes when other tests load both cores (its scripts fork a lot).
startup_timeout=${BOXD_GALERA_STARTUP_TIMEOUT:-300}
provider=/usr/lib/galera/libgalera_smm.so

die() {
	echo "test-galera: error: $*" >&2
	exit 1
}
say() { echo "test-galera: $*" >&2; }

running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ "${stat:0:1}" != Z ]]
}

# free_port — a TCP port on 127.0.0.1 nobody listens on (and not handed out
# earlier in this run).
declare -A taken=()
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		[[ -z ${taken[$p]:-} ]] || continue
		if ! ss -Htan "sport = :$p" | grep -q .; then
			taken[$p]=1
			echo "$p"
			return 0
		fi
	done
	die "no free port"
}

# sql N STATEMENT — run on node N, print the result (no headers).
sql() {
	mariadb --no-defaults --socket="$dir/node$1/mysqld.sock" -uroot -N -B -e "$2"
}

status_var() { # status_var N NAME
	sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | awk '{ print $2 }'
}

synced() {
	[[ $(status_var "$1" wsrep_ready) == ON && $(status_var "$1" wsrep_local_state_comment) == Synced ]]
}

write_conf() { # write_conf N
	local n=$1 d=$dir/node$1 addrs
	# shellcheck disable=SC2154
	addrs="127.0.0.1:${gport[1]},127.0.0.1:${gport[2]},127.0.0.1:${gport[3]}"
	mkdir -p "$d"
	# A file of its own (not --no-defaults): the SST scripts read the
	# node's options through --defaults-file too.
	cat >"$d/my.cnf" <<EOF
[mysqld]
user=root
datadir=$d/data
socket=$d/mysqld.sock
port=${sport[$n]}
bind-address=127.0.0.1
pid-file=$d/mysqld.pid
tmpdir=$d
log-error=$d/mysqld.log
max-connections=500
innodb-log-file-size=16M
innodb-buffer-pool-size=64M
binlog-format=ROW
default-storage-engine=InnoDB
innodb-autoinc-lock-mode=2
wsrep-on=ON
wsrep-provider=$provider
wsrep-cluster-name=boxd-test-${dir##*/}
wsrep-cluster-address=gcomm://$addrs
wsrep-node-name=node$n
wsrep-node-address=127.0.0.1:${gport[$n]}
wsrep-node-incoming-address=127.0.0.1:${sport[$n]}
wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:${gport[$n]};ist.recv_addr=127.0.0.1:${iport[$n]};gcache.size=32M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT10S;evs.inactive_check_period=PT1S;evs.keepalive_period=PT1S
wsrep-sst-method=mariabackup
wsrep-sst-auth=root:
wsrep-sst-receive-address=127.0.0.1:${tport[$n]}
[mariabackup]
socket=$d/mysqld.sock
[sst]
EOF
}

start_node() { # start_node N [--wsrep-new-cluster]
	local n=$1 d=$dir/node$1 pid
	shift
	setsid mariadbd --defaults-file="$d/my.cnf" "$@" </dev/null >>"$d/mysqld.log" 2>&1 &
	pid=$!
	echo "$pid" >"$d/pgid"
	local deadline=$(($(date +%s) + startup_timeout))
	until synced "$n"; do
		if ! running "$pid"; then
			tail -n 30 "$d/mysqld.log" >&2
			die "node $n exited while starting"
		fi
		if (($(date +%s) >= deadline)); then
			tail -n 30 "$d/mysqld.log" >&2
			die "node $n not Synced after ${startup_timeout}s"
		fi
		sleep 0.2
	done
	say "node $n Synced"
}

load_ports() {
	declare -gA sport=() gport=() iport=() tport=()
	local n s g i t
	while read -r n s g i t; do
		sport[$n]=$s gport[$n]=$g iport[$n]=$i tport[$n]=$t
	done <"$dir/ports"
}

print_env() {
	local n list=""
	for n in 1 2 3; do
		echo "GALERA_DSN_$n=mysql://root@localhost/boxd?socket=$dir/node$n/mysqld.sock"
		echo "GALERA_SOCKET_$n=$dir/node$n/mysqld.sock"
		echo "GALERA_PGID_$n=$(cat "$dir/node$n/pgid")"
		list+="${list:+,}mysql://root@localhost/boxd?socket=$dir/node$n/mysqld.sock"
	done
	echo "GALERA_DSN=$list"
}

cmd_start() {
	local n template
	command -v mariabackup >/dev/null || die "mariabackup missing (scripts/deps.sh --test installs mariadb-backup)"
	[[ -e $provider ]] || die "$provider missing (scripts/deps.sh --test installs galera-4)"
	mkdir -p "$dir"
	[[ ! -e "$dir/node1/data" ]] || die "$dir already holds a cluster (stop it and use a new dir)"
	declare -gA sport=() gport=() iport=() tport=()
	: >"$dir/ports"
	for n in 1 2 3; do
		sport[$n]=$(free_port) gport[$n]=$(free_port) iport[$n]=$(free_port) tport[$n]=$(free_port)
		echo "$n ${sport[$n]} ${gport[$n]} ${iport[$n]} ${tport[$n]}" >>"$dir/ports"
	done
	template=$("$root/scripts/test-env.sh" db-template mysql)
	for n in 1 2 3; do
		write_conf "$n"
	done
	cp -a "$template" "$dir/node1/data"
	start_node 1 --wsrep-new-cluster
	sql 1 "CREATE DATABASE IF NOT EXISTS boxd CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	# One joiner at a time: node 1 is the only donor until node 2 is in.
	for n in 2 3; do
		mkdir -p "$dir/node$n/data"
		start_node "$n"
		grep -q 'mariabackup SST completed' "$dir/node$n/mysqld.log" ||
			die "node $n joined without a mariabackup SST"
	done
	[[ $(status_var 1 wsrep_cluster_size) == 3 ]] || die "cluster size is not 3"
	print_env | tee "$dir/env"
}

stop_node() { # stop_node N
	local pgid
	pgid=$(cat "$dir/node$1/pgid" 2>/dev/null) || return 0
	[[ "$pgid" =~ ^[0-9]+$ ]] || return 0
	kill -TERM -- "-$pgid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		pgrep -g "$pgid" >/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$pgid" 2>/dev/null || true
}

cmd_stop() {
	local n
	[[ -d $dir ]] || return 0
	# All at once: a node that stops last would wait for the others'
	# goodbyes otherwise.
	for n in 1 2 3; do
		stop_node "$n" &
	done
	wait
}

[[ $# -ge 2 ]] || die "usage: $0 start|stop DIR | node-kill|node-start DIR N"
dir=$(mkdir -p "$2" && cd "$2" && pwd)
case $1 in
start) cmd_start ;;
stop) cmd_stop ;;
node-kill)
	[[ ${3:-} =~ ^[123]$ ]] || die "node-kill DIR 1|2|3"
	kill -KILL -- "-$(cat "$dir/node$3/pgid")"
	;;
node-start)
	[[ ${3:-} =~ ^[123]$ ]] || die "node-start DIR 1|2|3"
	load_ports
	# After a kill -9 its saved state has no position (seqno -1): joined
	# like that it asks for a whole SST (minutes under load). Its position
	# is in InnoDB: recovered (as the systemd unit's galera_recovery does),
	# it asks for the writes it missed only (IST, from the donor's gcache).
	pos=""
	if grep -q '^seqno: *-1' "$dir/node$3/data/grastate.dat" 2>/dev/null; then
		rm -f "$dir/node$3/recover.log"
		timeout "$startup_timeout" mariadbd --defaults-file="$dir/node$3/my.cnf" --wsrep-recover \
			--log-error="$dir/node$3/recover.log" </dev/null >/dev/null 2>&1 || true
		pos=$(sed -n 's/.*WSREP: Recovered position: *\([0-9a-f-]*:[0-9-]*\).*/\1/p' "$dir/node$3/recover.log" | tail -n 1)
		say "node $3: recovered position ${pos:-none (a whole SST)}"
	fi
	start_node "$3" ${pos:+--wsrep-start-position="$pos"}
	print_env >"$dir/env"
	;;
*) die "usage: $0 start|stop DIR | node-kill|node-start DIR N" ;;
esac
