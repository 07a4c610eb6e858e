# Sourced by scripts: a coordinator and two workers on loopback, run as an unprivileged user in a
# fresh temporary directory on free ports. cluster_start sets COORDINATOR_PORT, WORKER1_PORT,
# WORKER2_PORT and CLUSTER_DIR; cluster_stop stops every server it started. FDWSHARD_CLUSTER_ROOT: where
# the cluster directory goes (default /tmp; the scale benchmark uses a tmpfs, out of the disk's noise).

# FDWSHARD_PG_BIN: another PostgreSQL 15 installation (parallel development without clobbering).
PG_BIN=${FDWSHARD_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=${FDWSHARD_PG_USER:-postgres}
CLUSTER_NODES=(coordinator worker1 worker2)

# Runs a command as the PostgreSQL user (PostgreSQL refuses to run as root).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

port_is_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 40000))
		if port_is_free "$port"; then echo "$port"; return 0; fi
	done
	return 1
}

# node_start NAME: starts one node on a free port, retrying if another run grabbed the port.
node_start() {
	local name=$1 dir="$CLUSTER_DIR/$1" port
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		sed -i "/^port = /d" "$dir/postgresql.conf"
		echo "port = $port" >>"$dir/postgresql.conf"
		if as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$CLUSTER_DIR/$name.log" -w -t 60 start >/dev/null; then
			printf -v "${name^^}_PORT" '%s' "$port"
			return 0
		fi
	done
	echo "could not start $name; the end of $CLUSTER_DIR/$name.log:" >&2
	tail -n 20 "$CLUSTER_DIR/$name.log" >&2
	return 1
}

# extra_node_start NAME: a server of its own for one test (initdb, loopback, settings read from
# stdin appended), started in the cluster's directory like the others (NAME_PORT set); the test stops it.
extra_node_start() {
	local dir="$CLUSTER_DIR/$1"
	as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null || return 1
	{
		printf "listen_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\nlc_messages = 'C'\n" "$CLUSTER_DIR"
		cat
	} >>"$dir/postgresql.conf"
	node_start "$1"
}
extra_node_stop() { # NAME: stops it and removes its directory and log
	[ -f "$CLUSTER_DIR/$1/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$1" -m immediate -w stop >/dev/null 2>&1
	rm -rf "${CLUSTER_DIR:?}/$1" "$CLUSTER_DIR/$1.log"
}

# cluster_start [DBNAME]: initdb and start the three nodes, create DBNAME on each.
cluster_start() {
	local dbname=${1:-postgres}
	if [ "$(id -u)" -eq 0 ] && ! id "$PG_USER" >/dev/null 2>&1; then
		useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$PG_USER"
	fi
	CLUSTER_DIR=$(mktemp -d "${FDWSHARD_CLUSTER_ROOT:-/tmp}/fdwshard-cluster.XXXXXX")
	chmod 755 "$CLUSTER_DIR"
	[ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$CLUSTER_DIR"
	for name in "${CLUSTER_NODES[@]}"; do
		as_pg "$PG_BIN/initdb" -D "$CLUSTER_DIR/$name" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
		cat >>"$CLUSTER_DIR/$name/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$CLUSTER_DIR'
max_prepared_transactions = 20
max_connections = 120
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
lc_messages = 'C'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_logical_replication_workers = 8
max_worker_processes = 16
# online moves one after another: subscription workers start without waiting 5 s (see README)
wal_retrieve_retry_interval = 100ms
CONF
	done
	echo "shared_preload_libraries = 'fdwshard'" >>"$CLUSTER_DIR/coordinator/postgresql.conf"
	for name in "${CLUSTER_NODES[@]}"; do node_start "$name" || return 1; done
	export COORDINATOR_PORT WORKER1_PORT WORKER2_PORT CLUSTER_DIR
	if [ "$dbname" != postgres ]; then
		for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
			as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
				-c "CREATE DATABASE \"$dbname\"" >/dev/null
		done
	fi
}

# node_stop NAME / node_restart NAME: for fault tests.
node_stop() {
	as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$1" -m fast -w stop >/dev/null
}
node_restart() {
	as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$1" -l "$CLUSTER_DIR/$1.log" -w -t 60 start >/dev/null
}

# cluster_stop [keep]: stops every node; removes the directory unless asked to keep it.
cluster_stop() {
	[ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR" ] || return 0
	for name in "${CLUSTER_NODES[@]}"; do
		[ -f "$CLUSTER_DIR/$name/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" -m immediate -w stop >/dev/null 2>&1
	done
	[ "${1:-}" = keep ] || rm -rf "$CLUSTER_DIR"
	return 0
}

# psql_on PORT [psql args...]: psql as the postgres role against a node.
psql_on() {
	local port=$1; shift
	as_pg "$PG_BIN/psql" -X -h 127.0.0.1 -p "$port" -U postgres "$@"
}
