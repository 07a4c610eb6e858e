#!/usr/bin/env bash
# A walkthrough of fdwshard on a throw-away local cluster (a coordinator and two workers on
# loopback, and two more workers in Part 3), reproducing two scenarios:
#   Part 1: a "person" table hash-partitioned by quarter into 4 partitions over two servers,
#           filled with 5000 rows by concurrent clients (and, unlike the hand-made setup, with a
#           primary key).
#   Part 2: a "visits" table sharded by customer_id into 8 shards over two workers, with the
#           hash ranges of the textbook table, and a query routed to exactly one shard.
#   Part 3: the textbook's scale-out: two more workers are started and added, and half of the 8
#           visits shards move to them (the textbook's last table: shard i on its node
#           ((i - 1) mod 4) + 1) while a client keeps inserting; no committed row is lost.
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
# cluster_start's three nodes, and the two workers Part 3 starts in the same directory.
DEMO_NODES=("${CLUSTER_NODES[@]}" worker3 worker4)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# --- the state file and the stop helper --------------------------------------------------------

write_state() {
	umask 022
	cat >"$STATE_FILE" <<EOF
CLUSTER_DIR=$CLUSTER_DIR
COORDINATOR_PORT=${COORDINATOR_PORT:-}
WORKER1_PORT=${WORKER1_PORT:-}
WORKER2_PORT=${WORKER2_PORT:-}
WORKER3_PORT=${WORKER3_PORT:-}
WORKER4_PORT=${WORKER4_PORT:-}
EOF
}

# Reads the state file without sourcing it, accepting only the values demo.sh writes.
read_state() {
	local key value
	CLUSTER_DIR="" COORDINATOR_PORT="" WORKER1_PORT="" WORKER2_PORT="" WORKER3_PORT="" WORKER4_PORT=""
	while IFS='=' read -r key value; do
		case "$key" in
		CLUSTER_DIR) [[ $value =~ ^/tmp/fdwshard-cluster\.[A-Za-z0-9]+$ ]] && CLUSTER_DIR=$value ;;
		COORDINATOR_PORT | WORKER[1-4]_PORT) [[ $value =~ ^[0-9]+$ ]] && printf -v "$key" '%s' "$value" ;;
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
		for name in "${DEMO_NODES[@]}"; do
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

# --- Part 3's extra workers and background clients ---------------------------------------------

# start_extra_worker NAME: initdb and start one more worker in the cluster directory, as the same
# unprivileged user and with the same settings as cluster_start's workers (copied from worker1's
# postgresql.conf, all but the port), then create the demo database on it. Sets ${NAME^^}_PORT.
start_extra_worker() {
	local name=$1 port_var
	as_pg "$PG_BIN/initdb" -D "$CLUSTER_DIR/$name" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
	grep -E '^[a-z_]+ = ' "$CLUSTER_DIR/worker1/postgresql.conf" | grep -v '^port = ' |
		as_pg tee -a "$CLUSTER_DIR/$name/postgresql.conf" >/dev/null
	# node_start retries on another port when one was taken meanwhile: its pg_ctl messages only if it fails.
	if ! node_start "$name" 2>"$CLUSTER_DIR/$name.start.err"; then
		cat "$CLUSTER_DIR/$name.start.err" >&2
		return 1
	fi
	port_var=${name^^}_PORT
	write_state
	psql_on "${!port_var}" -d postgres -q -c "CREATE DATABASE \"$DB\""
}

CLIENTS_STOP="" WRITER_PID="" WATCHER_PID=""

# The writer's statements: single-row INSERTs numbered /live/1, /live/2, ... (about 1000 a second
# at most) until the stop file exists; psql runs each as its own transaction and prints
# "INSERT 0 1" once it has committed, and its duration (\timing).
writer_statements() {
	local n=0 i
	printf '%s\n' '\timing on'
	while [ ! -e "$CLIENTS_STOP" ]; do
		for i in 1 2 3 4 5 6 7 8 9 10; do
			n=$((n + 1))
			echo "INSERT INTO visits (customer_id, page) VALUES ($((RANDOM % 1000 + 1)), '/live/$n');"
		done
		sleep 0.01
	done
}

# The watcher's statements: fdwshard.rebalance_progress every 50 ms until the stop file exists.
watcher_statements() {
	while [ ! -e "$CLIENTS_STOP" ]; do
		echo "SELECT shardid, source_node, target_node, phase, shard_table, rows_copied,
		             round(extract(epoch FROM elapsed) * 1000) FROM fdwshard.rebalance_progress;"
		sleep 0.05
	done
}

start_background_clients() {
	CLIENTS_STOP=$CLUSTER_DIR/clients.stop
	rm -f "$CLIENTS_STOP"
	writer_statements | psql_on "$COORDINATOR_PORT" -d "$DB" >"$CLUSTER_DIR/writer.out" 2>"$CLUSTER_DIR/writer.err" &
	WRITER_PID=$!
	watcher_statements | psql_on "$COORDINATOR_PORT" -d "$DB" -At -F '|' >"$CLUSTER_DIR/progress.out" \
		2>"$CLUSTER_DIR/progress.err" &
	WATCHER_PID=$!
}

# kill_tree PID: the process and everything it started (only when a client does not stop by itself).
kill_tree() {
	local child
	for child in $(pgrep -P "$1" || true); do kill_tree "$child"; done
	kill "$1" 2>/dev/null || true
}

# Lets the clients finish: their statement streams end, psql runs what it has read and exits.
# Returns non-zero if one had to be killed after 60 s.
stop_background_clients() {
	local pid status=0
	[ -n "$WRITER_PID$WATCHER_PID" ] || return 0
	touch "$CLIENTS_STOP"
	for pid in $WRITER_PID $WATCHER_PID; do
		if ! timeout 60 tail --pid="$pid" -f /dev/null; then
			echo "demo.sh: a background client (pid $pid) did not stop within 60 s; killing it" >&2
			kill_tree "$pid"
			status=1
		fi
		wait "$pid" 2>/dev/null || true
	done
	WRITER_PID="" WATCHER_PID=""
	return "$status"
}

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
	stop_background_clients
	[ -n "$CLUSTER_DIR" ] || return 0
	[ -f "$STATE_FILE" ] || write_state # cluster_start failed half-way
	if [ "$status" -ne 0 ]; then
		echo >&2
		echo "demo.sh failed (exit $status). Server logs: $CLUSTER_DIR/{coordinator,worker1,worker2,worker3,worker4}.log" >&2
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

# --- Part 3 ------------------------------------------------------------------------------------

section "Part 3: scale out to four workers while a client keeps inserting"
say "The textbook ends by moving half of the shards to two new nodes, without touching the hash \
ranges. First, some traffic to move: a few months of visits from 1000 customers."
sql "$COORDINATOR_PORT" "$DB" <<SQL
INSERT INTO visits (customer_id, occurred_at, page)
SELECT c, now() - d * '1 day'::interval - c * '1 second'::interval, '/page/' || (c * d % 5)
FROM generate_series(1, 1000) AS c, generate_series(1, 80) AS d;
SQL

say "Start two more workers like the first two (plain PostgreSQL 15 run by the same unprivileged \
user, data in the same cluster directory), and register them."
start_extra_worker worker3
start_extra_worker worker4
cat <<EOF

  worker3      127.0.0.1:$WORKER3_PORT  (plain PostgreSQL 15)
  worker4      127.0.0.1:$WORKER4_PORT  (plain PostgreSQL 15)
EOF
sql "$COORDINATOR_PORT" "$DB" <<SQL
SELECT fdwshard_add_node('127.0.0.1', $WORKER3_PORT) AS worker3_nodeid;
SELECT fdwshard_add_node('127.0.0.1', $WORKER4_PORT) AS worker4_nodeid;
SQL

node_of_port() { sql_value "$COORDINATOR_PORT" "$DB" "SELECT nodeid FROM fdwshard.nodes WHERE port = $1"; }
worker3_node=$(node_of_port "$WORKER3_PORT")
worker4_node=$(node_of_port "$WORKER4_PORT")
# The textbook's node k (1..4) is fdwshard node TEXTBOOK_NODE[k].
TEXTBOOK_NODE=([1]=$worker1_node [2]=$worker2_node [3]=$worker3_node [4]=$worker4_node)
[ "$worker1_node $worker2_node $worker3_node $worker4_node" = "2 3 4 5" ] ||
	fail "expected the four workers to be fdwshard nodes 2 3 4 5, they are $worker1_node $worker2_node $worker3_node $worker4_node"
NODE_MAP="(VALUES (1, $worker1_node, 'worker1'), (2, $worker2_node, 'worker2'),
                   (3, $worker3_node, 'worker3'), (4, $worker4_node, 'worker4')) AS m(textbook_node, nodeid, name)"
# Shards of visits per node, with their rows, for every textbook node (empty ones too).
PER_NODE="SELECT m.textbook_node AS \"textbook node\", m.nodeid AS \"fdwshard node\",
       m.name || ' ' || n.host || ':' || n.port AS server,
       coalesce(string_agg(s.shardid::text, ', ' ORDER BY s.shardid), '') AS shards,
       coalesce(sum(r.n), 0) AS rows
FROM $NODE_MAP
JOIN fdwshard.nodes n USING (nodeid)
LEFT JOIN fdwshard.shards s ON s.nodeid = m.nodeid AND s.table_name = 'visits'::regclass
LEFT JOIN (SELECT tableoid, count(*) AS n FROM visits GROUP BY tableoid) r ON r.tableoid = s.shard_name::regclass
GROUP BY 1, 2, 3 ORDER BY 1;"

say "How the textbook's node numbers map onto fdwshard's: the textbook numbers its nodes 1 to 4. \
fdwshard's node 1 is the coordinator, which holds Part 1's person shards but no visits shards \
(should_have_shards is off), and the workers got the next ids as they were added, so textbook \
node k is fdwshard node k + 1. Today the 8 shards alternate over textbook nodes 1 and 2:"
sql "$COORDINATOR_PORT" "$DB" <<<"$PER_NODE"

# The moves: shard i goes to textbook node ((i - 1) mod 4) + 1, where it is not already.
moves="" move_count=0
for i in 1 2 3 4 5 6 7 8; do
	target=${TEXTBOOK_NODE[$(((i - 1) % 4 + 1))]}
	[ "$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT nodeid FROM fdwshard.shards WHERE shardid = $i")" = "$target" ] && continue
	moves+="SELECT fdwshard_move_shard($i, $target);  -- to textbook node $(((i - 1) % 4 + 1))"$'\n'
	move_count=$((move_count + 1))
done
[ "$move_count" = 4 ] || fail "expected 4 shards to move, found $move_count"

say "The textbook's last table puts shard i on node ((i - 1) mod 4) + 1: shards 1, 2, 5 and 6 \
stay, shards 3 and 7 go to textbook node 3, shards 4 and 8 to textbook node 4. \
(CALL fdwshard_rebalance() would move four shards too, but picks its own: any placement with two \
shards per node is balanced. Naming the moves gives exactly the textbook's table.)"

before=$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT count(*) FROM visits")
say "visits has $before rows. Now a client starts inserting single rows, one transaction each, \
and keeps going during all four moves; a second session polls fdwshard.rebalance_progress every \
50 ms. Each move copies the shard to its new worker and switches the coordinator's partition \
over in one transaction. In the default mode (today 'block_writes'), writes to visits wait while \
a move runs; reads go on."
start_background_clients
sleep 1
sql "$COORDINATOR_PORT" "$DB" <<<"$moves" 2>&1 | tee "$CLUSTER_DIR/moves.out"
sleep 1
stop_background_clients || fail "the background clients did not stop"

committed=$(grep -c '^INSERT 0 1$' "$CLUSTER_DIR/writer.out" || true)
longest=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$CLUSTER_DIR/writer.out" | sort -g | tail -1)
[ -s "$CLUSTER_DIR/writer.err" ] && { sed 's/^/    /' "$CLUSTER_DIR/writer.err" >&2; fail "the inserting client got errors"; }
[ -s "$CLUSTER_DIR/progress.err" ] && { sed 's/^/    /' "$CLUSTER_DIR/progress.err" >&2; fail "the progress watcher got errors"; }
[ "$committed" -gt 0 ] || fail "the inserting client committed no row"
say "The client committed $committed rows, without an error; its slowest INSERT took \
${longest:-?} ms (the NOTICEs above say how long each move made writes wait)."

say "What fdwshard.rebalance_progress showed, one line per shard, phase and table (the last \
sample of each; elapsed is since the move started):"
if [ -s "$CLUSTER_DIR/progress.out" ]; then
	awk -F'|' '{ key = $1 "|" $4 "|" $5; if (!(key in last)) order[++n] = key; last[key] = $0; samples[key]++ }
		END {
			printf "    %7s  %4s  %2s  %-9s  %-10s  %11s  %10s  %7s\n", "shardid", "from", "to", "phase", "shard_table", "rows_copied", "elapsed ms", "samples"
			for (i = 1; i <= n; i++) {
				split(last[order[i]], f, "|")
				printf "    %7s  %4s  %2s  %-9s  %-10s  %11s  %10s  %7s\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], samples[order[i]]
			}
		}' "$CLUSTER_DIR/progress.out"
else
	echo "    (no move was in progress at any of the polls: the moves were quicker than 50 ms)"
fi
unseen=""
for i in 3 4 7 8; do cut -d'|' -f1 "$CLUSTER_DIR/progress.out" | grep -qx "$i" || unseen+=" $i"; done
[ -z "$unseen" ] || echo "    (the move of shard${unseen} started and ended between two polls)"

say "After the moves: the textbook's last table, with each textbook node and the fdwshard node and \
server it is. The hash ranges did not change; only four placements did."
sql "$COORDINATOR_PORT" "$DB" <<SQL
SELECT s.shardid, s.min_hash AS "min hash value", s.max_hash AS "max hash value",
       m.textbook_node AS nodeid, s.nodeid AS "fdwshard node", m.name AS server
FROM fdwshard.shards s JOIN $NODE_MAP USING (nodeid)
WHERE s.table_name = 'visits'::regclass ORDER BY s.shardid;
$PER_NODE
SELECT count(*) AS moves_left FROM fdwshard_rebalance_plan('visits');
SQL

say "Every row is there once: the rows from before, plus each row the client committed."
sql "$COORDINATOR_PORT" "$DB" <<SQL
SELECT count(*) AS rows_now, $before AS rows_before, $committed AS rows_the_client_committed,
       $before + $committed AS expected FROM visits;
SELECT count(*) AS live_rows, count(DISTINCT page) AS distinct_live_rows
FROM visits WHERE page LIKE '/live/%';
SQL

say "On worker3, the moved shards are ordinary tables; worker1 kept only shards 1 and 5:"
sql "$WORKER3_PORT" "$DB" <<<'\dt'
sql "$WORKER1_PORT" "$DB" <<<'\dt'

# The checks.
placed=$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT string_agg(shardid || ':' || nodeid, ' ' ORDER BY shardid)
	FROM fdwshard.shards WHERE table_name = 'visits'::regclass")
want=""
for i in 1 2 3 4 5 6 7 8; do want+="$i:${TEXTBOOK_NODE[$(((i - 1) % 4 + 1))]} "; done
[ "$placed" = "${want% }" ] || fail "visits placement is '$placed', the textbook's last table is '${want% }'"
[ "$(sql_value "$COORDINATOR_PORT" "$DB" "
	WITH textbook (shardid, min_hash, max_hash) AS (VALUES
	  (1, -2147483648, -1610612737), (2, -1610612736, -1073741825),
	  (3, -1073741824,  -536870913), (4,  -536870912,          -1),
	  (5,           0,   536870911), (6,   536870912,  1073741823),
	  (7,  1073741824,  1610612735), (8,  1610612736,  2147483647))
	SELECT count(*) FROM fdwshard.shards s JOIN textbook t USING (shardid, min_hash, max_hash)
	WHERE s.table_name = 'visits'::regclass")" = 8 ] || fail "the visits hash ranges changed"
for i in 3 4 7 8; do
	grep -q "moved shard $i and its co-located shards" "$CLUSTER_DIR/moves.out" || fail "no NOTICE for the move of shard $i"
done
got=$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT count(*) FROM visits")
[ "$got" = $((before + committed)) ] ||
	fail "visits has $got rows, expected $before before + $committed committed = $((before + committed))"
[ "$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT count(*) || ' ' || count(DISTINCT page) FROM visits WHERE page LIKE '/live/%'")" = \
	"$committed $committed" ] || fail "the client's rows are not each there once"
[ "$(sql_value "$COORDINATOR_PORT" "$DB" "SELECT count(*) FROM fdwshard_rebalance_plan('visits')")" = 0 ] ||
	fail "the rebalance plan should be empty on the textbook's layout"
for w in 1 2 3 4; do
	port_var=WORKER${w}_PORT
	tables=$(sql_value "${!port_var}" "$DB" "SELECT string_agg(relname, ' ' ORDER BY relname::text COLLATE \"C\") FROM pg_class
		WHERE relkind = 'r' AND relname ~ '^visits_[0-9]+\$'")
	expect="visits_$w visits_$((w + 4))"
	[ "$tables" = "$expect" ] || fail "worker$w holds the shard tables '$tables', expected '$expect'"
done

# --- the end -----------------------------------------------------------------------------------

section "Done"
echo "Checks passed: person has 5000 rows over 4 shards on two servers; the 8 visits shards match"
echo "the textbook table; the customer_id = 2 query scans only $customer2_shard; after four moves"
echo "under load the visits shards are placed as in the textbook's last table (its node k = fdwshard"
echo "node k + 1), on four workers, with the same hash ranges, and visits has $got rows: the $before from"
echo "before and the $committed the client committed during the moves, each once."
if [ "$STOP_AT_END" = 1 ]; then
	echo
	echo "Stopping the cluster (--stop)."
else
	cat <<EOF

The cluster is still running. Connect to the coordinator with:
    psql -h 127.0.0.1 -p $COORDINATOR_PORT -U postgres $DB
and to the workers with -p $WORKER1_PORT, -p $WORKER2_PORT, -p $WORKER3_PORT or -p $WORKER4_PORT.
Stop it and remove its data with:
    $ROOT/scripts/demo.sh stop
EOF
fi
