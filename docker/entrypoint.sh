#!/usr/bin/env bash
# Container entrypoint (runs as postgres). On first start, initialises $PGDATA for the role in
# FDWSHARD_ROLE, then runs PostgreSQL in the foreground.
#   FDWSHARD_ROLE=coordinator  shared_preload_libraries = 'fdwshard'; CREATE EXTENSION fdwshard, and
#                              fdwshard_add_node for each "host:port" in FDWSHARD_WORKERS
#   FDWSHARD_ROLE=worker       plain PostgreSQL 15
#   POSTGRES_DB                database to create and use (default postgres; the same on every node)
#   POSTGRES_PASSWORD          if set: password of role postgres, scram-sha-256 for TCP clients,
#                              and the password the coordinator uses for workers; if not: trust
# Arguments starting with "-" go to postgres; any other command is run instead (e.g. bash).
set -euo pipefail

ROLE=${FDWSHARD_ROLE:-worker}
DB=${POSTGRES_DB:-postgres}
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
	exec "$@"
fi
case "$ROLE" in
coordinator | worker) ;;
*) echo "FDWSHARD_ROLE must be coordinator or worker, not \"$ROLE\"" >&2; exit 1 ;;
esac

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	echo "== initialising $PGDATA as a fdwshard $ROLE"
	# A failed setup leaves an empty data directory, so the next start tries again.
	trap 'pg_ctl -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1; find "$PGDATA" -mindepth 1 -delete' EXIT
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		auth=scram-sha-256
		initdb -U postgres --auth-local=trust --auth-host=$auth --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
			-E UTF8 --locale=C.UTF-8 >/dev/null
	else
		auth=trust
		initdb -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
	fi
	cat >>"$PGDATA/postgresql.conf" <<CONF

# fdwshard container ($ROLE)
listen_addresses = '*'
max_connections = 200
max_prepared_transactions = 20
CONF
	[ "$ROLE" = coordinator ] && echo "shared_preload_libraries = 'fdwshard'" >>"$PGDATA/postgresql.conf"
	echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"

	# A temporary server on the Unix socket only, for the setup SQL.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null
	psql_local() { psql -X -q -v ON_ERROR_STOP=1 -U postgres "$@"; }
	if [ "$DB" != postgres ]; then
		psql_local -d postgres -v db="$DB" <<<'CREATE DATABASE :"db"'
	fi
	if [ "$ROLE" = coordinator ]; then
		psql_local -d "$DB" -c 'CREATE EXTENSION fdwshard CASCADE'
		for worker in ${FDWSHARD_WORKERS:-}; do
			host=${worker%:*} port=${worker##*:}
			[ "$host" != "$worker" ] || port=5432
			echo "== waiting for worker $host:$port"
			for _ in $(seq 1 60); do
				pg_isready -q -h "$host" -p "$port" -U postgres -d "$DB" && break
				sleep 1
			done
			psql_local -d "$DB" -v host="$host" -v port="$port" -v db="$DB" -v pw="${POSTGRES_PASSWORD:-}" <<'SQL'
SELECT CASE WHEN :'pw' = '' THEN fdwshard_add_node(:'host', :'port'::int)
            ELSE fdwshard_add_node(:'host', :'port'::int, :'db', 'postgres', :'pw') END AS nodeid \gset
\echo == added worker :host port :port as node :nodeid
SQL
		done
	fi
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	trap - EXIT
fi

exec postgres -D "$PGDATA" "$@"
