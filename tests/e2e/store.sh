# store.sh — the database an end-to-end test runs boxd (or lock-torture)
# on. Source it; lib.sh does.
#
#	BOXD_TEST_STORE=sqlite (default) | mysql | postgres
#
# sqlite needs nothing. mysql and postgres use the servers of the test env
# (scripts/test-env.sh; docs/TEST-ENV.md): BOXD_TEST_MYSQL_SOCKET (root, no
# password) and BOXD_TEST_PG_HOST/BOXD_TEST_PG_PORT (user postgres, trust).
# A test makes its own database with store_db_create and drops it when it
# ends; the server itself is never changed otherwise.
#
#	store_need                   skip_all (TAP "1..0 # SKIP") unless the
#	                             backend's server is there
#	db=$(store_db_create)        a fresh empty database, prints its name
#	store_dsn "$db"              the DSN boxd takes for it ([store] dsn, --dsn)
#	store_sql "$db" "SQL"        run SQL, print rows (tab-separated, no header)
#	store_db_drop "$db"          drop it (also with open connections)
#	store_now_ms "$db"           the database's clock, ms since the epoch
#
# Names are boxd_e2e_<pid>_<random>: only ever made here, so they are safe
# to splice into SQL.

TEST_STORE=${BOXD_TEST_STORE:-sqlite}

store_need() {
	local missing=
	case $TEST_STORE in
	sqlite) return 0 ;;
	mysql)
		[ -n "${BOXD_TEST_MYSQL_SOCKET:-}" ] || missing=BOXD_TEST_MYSQL_SOCKET
		command -v mariadb >/dev/null || missing="the mariadb client"
		;;
	postgres)
		[ -n "${BOXD_TEST_PG_HOST:-}" ] && [ -n "${BOXD_TEST_PG_PORT:-}" ] || missing=BOXD_TEST_PG_HOST/PORT
		command -v psql >/dev/null || missing="the psql client"
		;;
	*)
		echo "Bail out! BOXD_TEST_STORE=$TEST_STORE: use sqlite, mysql or postgres"
		exit 1
		;;
	esac
	if [ -n "$missing" ]; then
		skip_all "$TEST_STORE: $missing is not set (test env not started; run make check)"
	fi
}

# _store_admin [DB] SQL: run SQL as the server's superuser.
_store_admin() {
	local db=
	[ $# -ge 2 ] && { db=$1; shift; }
	case $TEST_STORE in
	mysql) mariadb --socket="$BOXD_TEST_MYSQL_SOCKET" -u root -N -B ${db:+"$db"} -e "$1" ;;
	postgres)
		psql -h "$BOXD_TEST_PG_HOST" -p "$BOXD_TEST_PG_PORT" -U postgres -X -q -A -t -F $'\t' \
			-v ON_ERROR_STOP=1 -d "${db:-postgres}" -c "$1"
		;;
	*) return 1 ;;
	esac
}

store_db_create() {
	local name="boxd_e2e_$$_$RANDOM$RANDOM"
	case $TEST_STORE in
	mysql) _store_admin "CREATE DATABASE $name CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" ;;
	postgres) _store_admin "CREATE DATABASE $name" ;;
	*) return 1 ;;
	esac || return 1
	echo "$name"
}

store_dsn() {
	case $TEST_STORE in
	mysql) echo "mysql://root@localhost/$1?socket=$BOXD_TEST_MYSQL_SOCKET" ;;
	postgres) echo "host=$BOXD_TEST_PG_HOST port=$BOXD_TEST_PG_PORT user=postgres dbname=$1" ;;
	*) return 1 ;;
	esac
}

store_sql() { _store_admin "$1" "$2"; }

store_db_drop() {
	case $TEST_STORE in
	mysql) _store_admin "DROP DATABASE IF EXISTS $1" ;;
	postgres) _store_admin "DROP DATABASE IF EXISTS $1 WITH (FORCE)" ;;
	*) return 0 ;;
	esac
}

store_now_ms() {
	case $TEST_STORE in
	mysql) store_sql "$1" "SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)" ;;
	postgres) store_sql "$1" "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)" ;;
	*) echo $(($(date +%s%N) / 1000000)) ;;
	esac
}
