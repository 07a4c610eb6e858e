#!/usr/bin/env bash
# A walkthrough of fdwshard on a throw-away local cluster (a coordinator and two workers on
# loopback), reproducing two scenarios:
#   Part 1: a "person" table hash-partitioned by quarter into 4 partitions over two servers,
#           filled with 5000 rows by concurrent clients (and, unlike the hand-made setup, with a
#           primary key).
#   Part 2: a "visits" table sharded by customer_id into 8 shards over two workers, with the
#           hash ranges of the textbook table, and a query routed to exactly one shard.
#
# Usage: scripts/demo.sh [--stop] [--skip-build]   run the demo (as root, or with sudo available)
#        scripts/demo.sh stop                       stop a demo cluster left running
#   --stop (or DEMO_STOP=1)   stop the cluster at the end instead of leaving it running
#   --skip-build              do not run scripts/build.sh (the extension is already installed)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE_FILE=${FDWSHARD_DEMO_STATE:-/tmp/fdwshard-demo.env}
DB=demo
# shellcheck source=test/cluster.sh
source "$ROOT/test/cluster.sh"
CLUSTER_DIR="" # set by cluster_start; never taken from the environment

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# --- the state file and the stop helper --------------------------------------------------------

write_state() {
	umask 022
	cat >"$STATE_FILE" <<EOF
CLUSTER_DIR=$CLUSTER_DIR
COORDINATOR_PORT=${COORDINATOR_PORT:-}
WORKER1_PORT=${WORKER1_PORT:-}
WORKER2_PORT=${WORKER2_PORT:-}
EOF
}

# Reads the state file without sourcing it, accepting only the values demo.sh writes.
read_state() {
	local key value
	CLUSTER_DIR="" COORDINATOR_PORT="" WORKER1_PORT="" WORKER2_PORT=""
	while IFS='=' read -r key value; do
		case "$key" in
		CLUSTER_DIR) [[ $value =~ ^/tmp/fdwshard-cluster\.[A-Za-z0-9]+$ ]] && CLUSTER_DIR=$value ;;
		COORDINATOR_PORT | WORKER1_PORT | WORKER2_PORT) [[ $value =~ ^[0-9]+$ ]] && printf -v "$key" '%s' "$value" ;;
		esac
	done <"$STATE_FILE"
	[ -n "$CLUSTER_DIR" ]
}

# Stops the demo cluster recorded in the state file, if any, and removes its directory.
stop_demo_cluster() {
	[ -f "$STATE_FILE" ] || { echo "no demo cluster recorded in $STATE_FILE"; return 0; }
	if ! read_state; then
		echo "ignoring $STATE_FILE: it does not name a demo cluster directory" >&2
		rm -f "$STATE_FILE"
		return 0
	fi
	if [ -d "$CLUSTER_DIR" ]; then
		echo "== stopping the demo cluster in $CLUSTER_DIR"
		for name in "${CLUSTER_NODES[@]}"; do
			[ -f "$CLUSTER_DIR/$name/postmaster.pid" ] || continue
			as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" -m fast -w -t 60 stop >/dev/null ||
				as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" -m immediate -w stop >/dev/null || true
		done
		rm -rf "$CLUSTER_DIR"
	fi
	rm -f "$STATE_FILE"
}

# --- output helpers ----------------------------------------------------------------------------

RULE=$(printf '=%.0s' {1..100})
section() { printf '\n%s\n== %s\n%s\n' "$RULE" "$*" "$RULE"; }
say() { printf '\n%s\n' "$*" | fold -s -w 100; }

# sql PORT DB: runs the SQL on stdin, echoing every line before its result; stops at the first error.
sql() {
	local port=$1 db=$2
	printf '\n'
	psql_on "$port" -d "$db" -a -v ON_ERROR_STOP=1 -P pager=off -f -
}
# sql_value PORT DB QUERY: one unaligned value, for the script's own checks.
sql_value() { psql_on "$1" -d "$2" -At -v ON_ERROR_STOP=1 -c "$3"; }

fail() { echo "demo.sh: CHECK FAILED: $*" >&2; exit 1; }

# --- arguments ---------------------------------------------------------------------------------

STOP_AT_END=${DEMO_STOP:-0}
SKIP_BUILD=0
for arg in "$@"; do
	case "$arg" in
	stop) stop_demo_cluster; exit 0 ;;
	--stop) STOP_AT_END=1 ;;
	--skip-build) SKIP_BUILD=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "unknown argument: $arg" >&2; usage >&2; exit 2 ;;
	esac
done
[ "$STOP_AT_END" = 0 ] || STOP_AT_END=1

# --- setup -------------------------------------------------------------------------------------

section "Setup: build and install fdwshard"
if [ -f "$STATE_FILE" ]; then
	say "A previous demo cluster is recorded in $STATE_FILE: stopping it first."
	stop_demo_cluster
fi
if [ "$SKIP_BUILD" = 1 ]; then
	echo "(skipped: --skip-build)"
else
	"$ROOT/scripts/build.sh"
fi

# From here on, the cluster is recorded in the state file, and stopped on exit with --stop.
on_exit() {
	local status=$?
	[ -n "$CLUSTER_DIR" ] || return 0
	[ -f "$STATE_FILE" ] || write_state # cluster_start failed half-way
	if [ "$status" -ne 0 ]; then
		echo >&2
		echo "demo.sh failed (exit $status). Server logs: $CLUSTER_DIR/{coordinator,worker1,worker2}.log" >&2
	fi
	if [ "$STOP_AT_END" = 1 ]; then
		stop_demo_cluster
	elif [ "$status" -ne 0 ]; then
		echo "The cluster may still be running; stop it with: $0 stop" >&2
	fi
}
trap on_exit EXIT

section "Setup: start a coordinator and two workers on 127.0.0.1"
cluster_start "$DB"
write_state

cat <<EOF
  coordinator  127.0.0.1:$COORDINATOR_PORT  (shared_preload_libraries = 'fdwshard')
  worker1      127.0.0.1:$WORKER1_PORT  (plain PostgreSQL 15)
  worker2      127.0.0.1:$WORKER2_PORT  (plain PostgreSQL 15)
  each has a database "$DB"; data directories and logs in $CLUSTER_DIR
EOF

# --- Part 1 ------------------------------------------------------------------------------------

section "Part 1: four partitions over two servers, 5000 rows inserted concurrently"
say "The hand-made version: CREATE EXTENSION postgres_fdw, CREATE SERVER, CREATE USER MAPPING, a \
table PARTITION BY HASH (quarter), two local partitions, two tables created by hand on the second \
server and attached as foreign tables - and no primary key. With fdwshard the coordinator does all \
of that: it is node 1 and holds shards itself, and fdwshard_add_node registers the second server \
(the postgres_fdw server and user mapping included)."

sql "$COORDINATOR_PORT" "$DB" <<SQL
CREATE EXTENSION fdwshard CASCADE;
SELECT fdwshard_add_node('127.0.0.1', $WORKER1_PORT) AS worker1_nodeid;
SELECT nodeid, host, port, is_local, should_have_shards, server_name FROM fdwshard.nodes;
SQL

say "The same person table, but with a PRIMARY KEY (quarter, id): it includes the distribution \
column, so each shard can enforce it on its own server. create_distributed_table splits the table \
into 4 shards placed round-robin over the nodes: 2 on the coordinator, 2 on worker1."

sql "$COORDINATOR_PORT" "$DB" <<SQL
CREATE TABLE person (
  id BIGSERIAL NOT NULL,
  quarter BIGINT NOT NULL,
  name TEXT NOT NULL,
  address TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  PRIMARY KEY (quarter, id)
);
SELECT create_distributed_table('person', 'quarter', shard_count := 4);
SELECT shardid, shard_name, min_hash, max_hash, nodeid, host, port, is_local
FROM fdwshard.shards WHERE table_name = 'person'::regclass;
\d person
SQL

PGBENCH_SCRIPT=$CLUSTER_DIR/insert_person.sql
cat >"$PGBENCH_SCRIPT" <<'EOF'
\set q random(1, 40)
INSERT INTO person (quarter, name, address, customer_id)
VALUES (:q, 'person ' || :client_id || '-' || :q, :q || ' Main Street', '4');
EOF
chmod 644 "$PGBENCH_SCRIPT"

say "Instead of 5000 HTTP requests from 100 clients, pgbench: 10 concurrent clients, 500 inserts \
each, for customer 4 and a random quarter out of 40 (ten years). The script:"
sed 's/^/    /' "$PGBENCH_SCRIPT"
echo
as_pg "$PG_BIN/pgbench" -h 127.0.0.1 -p "$COORDINATOR_PORT" -U postgres -n -c 10 -j 2 -t 500 \
	-f "$PGBENCH_SCRIPT" "$DB" 2>&1 | sed 's/^/    /' || fail "pgbench failed"

say "The base table sees all the rows; tableoid tells which shard each one lives in."
sql "$COORDINATOR_PORT" "$DB" <<SQL
SELECT count(*) FROM person;
SELECT tableoid::regclass AS shard, count(*) FROM person GROUP BY 1 ORDER BY 1;
SQL

remote_person_shards=$(sql_value "$COORDINATOR_PORT" "$DB" \
	"SELECT string_agg(format('SELECT %L AS shard, count(*) FROM %I', shard_name, shard_name), ' UNION ALL ' ORDER BY shardid)
	 FROM fdwshard.shards WHERE table_name = 'person'::regclass AND NOT is_local")
remote_shard=$(sql_value "$COORDINATOR_PORT" "$DB" \
	"SELECT shard_name FROM fdwshard.shards WHERE table_name = 'person'::regclass AND NOT is_local ORDER BY shardid LIMIT 1")
say "On worker1 itself, the shards are ordinary tables, each with its own primary key:"
sql "$WORKER1_PORT" "$DB" <<SQL
\dt
\d $remote_shard
$remote_person_shards;
SQL

say "The primary key holds across the cluster: inserting copies of existing rows fails on whichever \
server holds them (the error below is expected)."
sql "$COORDINATOR_PORT" "$DB" <<SQL
\set ON_ERROR_STOP 0
INSERT INTO person SELECT * FROM $remote_shard LIMIT 1;
INSERT INTO person SELECT * FROM person ORDER BY id LIMIT 1;
\set ON_ERROR_STOP 1
SQL

[ "$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT count(*) FROM person")" = 5000 ] ||
	fail "person should have 5000 rows"
[ "$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT count(*) FROM fdwshard.shards WHERE table_name = 'person'::regclass GROUP BY is_local ORDER BY 1 LIMIT 1")" = 2 ] ||
	fail "person should have 2 local and 2 remote shards"

# --- Part 2 ------------------------------------------------------------------------------------

section "Part 2: eight shards over two workers, and a query routed to one shard"
say "Add worker2 and keep new shards off the coordinator, so the 8 shards of the next table \
alternate over the two workers like the textbook table's two nodes (its nodes 1 and 2 are our \
nodes 2 and 3). fdwshard.next_shard_id pins the shard ids to 1..8; it is a session setting, so it \
is SET in the same session as create_distributed_table."

sql "$COORDINATOR_PORT" "$DB" <<SQL
SELECT fdwshard_add_node('127.0.0.1', $WORKER2_PORT) AS worker2_nodeid;
SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
SELECT nodeid, host, port, is_local, should_have_shards, shard_count FROM fdwshard.nodes;

CREATE TABLE visits (customer_id int, occurred_at timestamptz DEFAULT now(), page text);
SET fdwshard.next_shard_id = 1;
SELECT create_distributed_table('visits', 'customer_id', shard_count := 8, colocate_with := 'none');
RESET fdwshard.next_shard_id;
SELECT shardid, min_hash, max_hash, nodeid FROM fdwshard.shards WHERE table_name = 'visits'::regclass;
SQL

say "The same shard ids and hash ranges as the textbook table, typed in here from it:"
sql "$COORDINATOR_PORT" "$DB" <<SQL
WITH textbook (shardid, min_hash, max_hash) AS (VALUES
  (1, -2147483648, -1610612737), (2, -1610612736, -1073741825),
  (3, -1073741824,  -536870913), (4,  -536870912,          -1),
  (5,           0,   536870911), (6,   536870912,  1073741823),
  (7,  1073741824,  1610612735), (8,  1610612736,  2147483647))
SELECT (SELECT count(*) FROM textbook) AS textbook_shards, count(*) AS identical_shards
FROM fdwshard.shards s JOIN textbook t USING (shardid, min_hash, max_hash)
WHERE s.table_name = 'visits'::regclass;
SQL

worker1_node=$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT nodeid FROM fdwshard.nodes WHERE port = $WORKER1_PORT")
worker2_node=$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT nodeid FROM fdwshard.nodes WHERE port = $WORKER2_PORT")
[ "$(sql_value "$COORDINATOR_PORT" "$DB" "
	WITH textbook (shardid, min_hash, max_hash, nodeid) AS (VALUES
	  (1, -2147483648, -1610612737, $worker1_node), (2, -1610612736, -1073741825, $worker2_node),
	  (3, -1073741824,  -536870913, $worker1_node), (4,  -536870912,          -1, $worker2_node),
	  (5,           0,   536870911, $worker1_node), (6,   536870912,  1073741823, $worker2_node),
	  (7,  1073741824,  1610612735, $worker1_node), (8,  1610612736,  2147483647, $worker2_node))
	SELECT count(*) = 8 AND (SELECT count(*) FROM fdwshard.shards WHERE table_name = 'visits'::regclass) = 8
	FROM fdwshard.shards s JOIN textbook t USING (shardid, min_hash, max_hash, nodeid)
	WHERE s.table_name = 'visits'::regclass")" = t ] ||
	fail "the visits shards differ from the textbook table"

say "Shard key != shard number: a customer id is hashed, and the hash falls in one shard's range. \
(fdwshard hashes with xxHash, so the hash values differ from the textbook's; the ranges do not.)"
sql "$COORDINATOR_PORT" "$DB" <<SQL
SELECT c AS customer_id, fdwshard_hash(c) AS hash,
       get_shard_id_for_distribution_column('visits', c) AS shardid
FROM generate_series(1, 3) AS c;
SQL

customer2_shard=$(sql_value "$COORDINATOR_PORT" "$DB" \
	"SELECT shard_name FROM fdwshard.shards WHERE shardid = get_shard_id_for_distribution_column('visits', 2)")
say "Two weeks of page views for customers 1..10, then the textbook query: the WHERE clause names \
customer 2, so only that customer's shard is scanned."
sql "$COORDINATOR_PORT" "$DB" <<SQL
INSERT INTO visits (customer_id, occurred_at, page)
SELECT c, now() - d * '1 day'::interval - c * '1 minute'::interval, '/page/' || (c * d % 5)
FROM generate_series(1, 10) AS c, generate_series(0, 13) AS d;
SELECT tableoid::regclass AS shard, count(*), array_agg(DISTINCT customer_id) AS customers
FROM visits GROUP BY 1 ORDER BY 1;

EXPLAIN (COSTS OFF)
SELECT * FROM visits
WHERE occurred_at >= now() - '1 week'::interval
  AND customer_id = 2;

SELECT * FROM visits
WHERE occurred_at >= now() - '1 week'::interval
  AND customer_id = 2
ORDER BY occurred_at;
SQL

say "With VERBOSE, the plan shows the query as rewritten for the worker that holds the shard - \
FROM visits becomes FROM public.$customer2_shard:"
sql "$COORDINATOR_PORT" "$DB" <<SQL
EXPLAIN (VERBOSE, COSTS OFF)
SELECT * FROM visits
WHERE occurred_at >= now() - '1 week'::interval
  AND customer_id = 2;
SQL

plan=$(sql_value "$COORDINATOR_PORT" "$DB" \
	"EXPLAIN (COSTS OFF) SELECT * FROM visits WHERE occurred_at >= now() - '1 week'::interval AND customer_id = 2")
scans=$(grep -oE 'visits_[0-9]+' <<<"$plan" | sort -u)
[ "$scans" = "$customer2_shard" ] || fail "the plan should scan only $customer2_shard, it scans: $scans"
[ "$(sql_value "$COORDINATOR_PORT" "$DB" \
	"SELECT count(*) FROM visits WHERE occurred_at >= now() - '1 week'::interval AND customer_id = 2")" = 7 ] ||
	fail "customer 2 should have 7 visits in the last week"

# --- the end -----------------------------------------------------------------------------------

section "Done"
echo "Checks passed: person has 5000 rows over 4 shards on two servers; the 8 visits shards match"
echo "the textbook table; the customer_id = 2 query scans only $customer2_shard."
if [ "$STOP_AT_END" = 1 ]; then
	echo
	echo "Stopping the cluster (--stop)."
else
	cat <<EOF

The cluster is still running. Connect to the coordinator with:
    psql -h 127.0.0.1 -p $COORDINATOR_PORT -U postgres $DB
and to the workers with -p $WORKER1_PORT or -p $WORKER2_PORT.
Stop it and remove its data with:
    $ROOT/scripts/demo.sh stop
EOF
fi
