#!/usr/bin/env bash
# Remote transactions run at the local transaction's isolation level: READ COMMITTED clients that
# update the same rows wait and proceed, as on one server, instead of failing with "could not
# serialize access"; REPEATABLE READ and SERIALIZABLE stay what they are.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_isolation
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE t (k int PRIMARY KEY, v text); SELECT create_distributed_table('t', 'k', shard_count := 6);
    INSERT INTO t SELECT g, 'v' FROM generate_series(1, 20) g;
    CREATE TABLE plain (k int PRIMARY KEY, v text); INSERT INTO plain SELECT g, 'v' FROM generate_series(1, 20) g" >/dev/null
check "keys 1..20 are on all three nodes" "3" "$(q "$COORDINATOR_PORT" $db "SELECT count(DISTINCT s.nodeid) FROM generate_series(1, 20) k
    JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('t', k)")"

# The isolation level a remote transaction runs at, seen on the worker.
for level in "READ COMMITTED" "REPEATABLE READ" "SERIALIZABLE"; do
	got=$(q "$COORDINATOR_PORT" $db "BEGIN ISOLATION LEVEL $level; SELECT fdwshard.run_command_on_node(3, 'SHOW transaction_isolation'); COMMIT" | sed -n 2p)
	check "$level on the coordinator is $level on the worker" "$(echo "$level" | tr 'A-Z' 'a-z')" "$got"
done

# Every way a statement reaches a worker first (rows routed by a multi-row INSERT, ANALYZE,
# TRUNCATE, COPY, a multi-shard scan) leaves the transaction usable and READ COMMITTED there.
for first in "INSERT INTO t VALUES (101, 'a'), (102, 'b'), (103, 'c'), (104, 'd')" "ANALYZE t" "SELECT count(*) FROM t" \
	"SELECT * FROM t WHERE v IS NULL" \
	"TRUNCATE t" "COPY t (k) FROM PROGRAM 'seq 201 210'" "ANALYZE $(q "$COORDINATOR_PORT" $db "SELECT shard_name FROM fdwshard.shards WHERE nodeid = 3 LIMIT 1")" \
	"SAVEPOINT s; SELECT count(*) FROM t; RELEASE s" "SAVEPOINT s; SELECT * FROM t WHERE v IS NULL; RELEASE s"; do
	got=$(q "$COORDINATOR_PORT" $db "BEGIN; $first; SELECT count(*) FROM t WHERE k <= 20; UPDATE t SET v = v WHERE k <= 20;
	      SELECT fdwshard.run_command_on_node(3, 'SHOW transaction_isolation')" | tail -1)
	# A scan through postgres_fdw inside a savepoint comes too late to set the level; a multi-shard
	# aggregate there reads over the pool and leaves the transaction's connection alone.
	case "$first" in "SAVEPOINT s; SELECT * FROM t"*) want="repeatable read" ;; *) want="read committed" ;; esac
	check "after \"$first\": $want on the worker" "$want" "$got"
done

# With use_remote_estimate postgres_fdw queries the worker while planning: fdwshard leaves that
# server's level alone rather than fail (the statement and the transaction work).
q "$COORDINATOR_PORT" $db "ALTER SERVER fdwshard_node_3 OPTIONS (ADD use_remote_estimate 'true')" >/dev/null
got=$(q "$COORDINATOR_PORT" $db "BEGIN; SELECT count(*) FROM t WHERE k <= 20; UPDATE t SET v = v WHERE k <= 20;
      SELECT fdwshard.run_command_on_node(3, 'SHOW transaction_isolation')" | tail -1)
check "use_remote_estimate: the transaction works, its level left to postgres_fdw" "repeatable read" "$got"
q "$COORDINATOR_PORT" $db "ALTER SERVER fdwshard_node_3 OPTIONS (DROP use_remote_estimate)" >/dev/null

# 8 clients, 20 keys, one-row updates in transaction blocks (the issue's workload).
script=$(mktemp); chmod 644 "$script"
printf '\\set k random(1, 20)\nBEGIN;\nUPDATE %s SET v = v WHERE k = :k;\nCOMMIT;\n' t >"$script"
for mode in simple prepared; do
	out=$(as_pg timeout 120 "$PG_BIN/pgbench" -h 127.0.0.1 -p "$COORDINATOR_PORT" -U postgres -n -c 8 -j 2 -t 100 -M $mode -f "$script" $db 2>&1)
	check "8 clients updating 20 keys, -M $mode: no serialization failure" "0" "$(echo "$out" | grep -c 'could not serialize')"
	check_contains "8 clients updating 20 keys, -M $mode: every transaction done" "number of transactions actually processed: 800/800" "$out"
done
rm -f "$script"

# A multi-shard UPDATE (postgres_fdw's foreign modifications, not the router) waits for a
# concurrent writer of one of its rows and then updates the committed row, as on one server.
remote_key=$(q "$COORDINATOR_PORT" $db "SELECT min(k) FROM generate_series(1, 20) k JOIN fdwshard.shards s
    ON s.shardid = get_shard_id_for_distribution_column('t', k) WHERE s.nodeid = 3")
for table in plain t; do
	(psql_on "$COORDINATOR_PORT" -d $db -X -q -v ON_ERROR_STOP=1 -c "BEGIN; UPDATE $table SET v = 'first' WHERE k = $remote_key; SELECT pg_sleep(2); COMMIT;" >/dev/null 2>&1) &
	sleep 0.7
	out=$(timeout 60 bash -c "source '$(dirname "$0")/lib.sh' 2>/dev/null; q $COORDINATOR_PORT $db \"UPDATE $table SET v = v || '+second' WHERE k <= 20\"")
	wait
	check "$table: the concurrent multi-shard UPDATE waits and succeeds" "UPDATE 20" "$out"
	check "$table: it updated the committed row" "first+second" "$(q "$COORDINATOR_PORT" $db "SELECT v FROM $table WHERE k = $remote_key")"
done

# A single statement under default_transaction_isolation = 'repeatable read' is a REPEATABLE READ
# transaction: meeting a concurrent update it fails, as on one server (it must not take the
# autocommit path, whose worker transaction is READ COMMITTED).
for table in plain t; do
	(psql_on "$COORDINATOR_PORT" -d $db -X -q -v ON_ERROR_STOP=1 -c "BEGIN; UPDATE $table SET v = 'rr' WHERE k = $remote_key; SELECT pg_sleep(2); COMMIT;" >/dev/null 2>&1) &
	sleep 0.7
	out=$(PGOPTIONS="-c default_transaction_isolation=repeatable\\ read" timeout 60 bash -c "source '$(dirname "$0")/lib.sh' 2>/dev/null; q $COORDINATOR_PORT $db \"UPDATE $table SET v = v || '+x' WHERE k = $remote_key\"")
	wait
	check_contains "$table: a REPEATABLE READ single-row UPDATE meeting a concurrent update fails" "could not serialize access" "$out"
done

q "$COORDINATOR_PORT" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null
exit $((failures > 0))
