#!/usr/bin/env bash
# The extension's lifecycle on a cluster: DROP EXTENSION fdwshard is refused while distributed
# tables exist; with CASCADE it fails whole while a worker is down (naming it), and otherwise
# leaves nothing on any node (no shard tables, no prepared transactions, no servers or user
# mappings); CREATE EXTENSION again then adds the same workers (past a leftover server name) and
# distributes the same table names. fdwshard_check_nodes() tries every worker now and updates
# fdwshard.nodes, with a worker stopped and back.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_extension_lifecycle
fresh_db $db
c() { q "$COORDINATOR_PORT" $db "$1"; }
setup_tables="CREATE TABLE events (tenant_id int PRIMARY KEY, v text);
SELECT create_distributed_table('events', 'tenant_id', shard_count := 4);
CREATE TABLE \"Odd Items\" (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('\"Odd Items\"', 'tenant_id', shard_count := 4, colocate_with := 'events');
INSERT INTO events SELECT g, 'v' || g FROM generate_series(1, 100) g;
INSERT INTO \"Odd Items\" SELECT g, 1 FROM generate_series(1, 100) g"
c "$setup_tables" >/dev/null
shard_tables() { q "$1" $db "SELECT count(*) FROM pg_tables WHERE tablename ~ '^(events|Odd Items)_[0-9]+$'"; }
nothing_left="SELECT (SELECT count(*) FROM pg_foreign_server), (SELECT count(*) FROM pg_user_mappings), (SELECT count(*) FROM pg_prepared_xacts)"
check "shard tables on worker 1" "2" "$(shard_tables "$WORKER1_PORT")"
check "shard tables on worker 2" "2" "$(shard_tables "$WORKER2_PORT")"
first_ids=$(c "SELECT max(shardid) FROM fdwshard.shards")

# Without CASCADE: refused, with a hint, nothing changed.
out=$(c "DROP EXTENSION fdwshard")
check_contains "DROP EXTENSION is refused" "ERROR:  cannot drop extension fdwshard because distributed tables exist" "$out"
check_contains "the detail names a table" 'DETAIL:  2 distributed table(s), among them "Odd Items".' "$out"
check_contains "the hint says what to do" "HINT:  Undistribute them first" "$out"
check "the extension is still there" "1" "$(c "SELECT count(*) FROM pg_extension WHERE extname = 'fdwshard'")"

# A worker down: the whole DROP fails, naming it, and nothing is dropped anywhere.
node_stop worker2
out=$(timeout 60 bash -c "source test/cluster.sh; psql_on $COORDINATOR_PORT -d $db -tA -c 'SET fdwshard.connect_timeout = 3000' -c 'DROP EXTENSION fdwshard CASCADE'" 2>&1)
check_contains "DROP EXTENSION CASCADE fails with a worker down" 'could not connect to server "fdwshard_node_3"' "$out"
check_contains "the error names the node" "node 3 (127.0.0.1:$WORKER2_PORT)" "$out"
check_contains "the hint says what to do" "HINT:  DROP EXTENSION fdwshard drops the shards on every worker: start the node again" "$out"
check "the extension is still there" "1" "$(c "SELECT count(*) FROM pg_extension WHERE extname = 'fdwshard'")"
check "worker 1 keeps its shards" "2" "$(shard_tables "$WORKER1_PORT")"
node_restart worker2
check "the rows are all there once the worker is back" "100|100" "$(c "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM \"Odd Items\")")"

# CASCADE: the shards on every node, the servers and user mappings go too.
out=$(c "DROP EXTENSION fdwshard CASCADE" 2>&1)
check_contains "DROP EXTENSION CASCADE" "DROP EXTENSION" "$out"
check "no shard table left on worker 1" "0" "$(shard_tables "$WORKER1_PORT")"
check "no shard table left on worker 2" "0" "$(shard_tables "$WORKER2_PORT")"
check "no table left on the coordinator" "0" "$(c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
check "no server, user mapping or prepared transaction on the coordinator" "0|0|0" "$(c "$nothing_left")"
check "no prepared transaction on worker 1" "0" "$(q "$WORKER1_PORT" $db "SELECT count(*) FROM pg_prepared_xacts")"
check "no prepared transaction on worker 2" "0" "$(q "$WORKER2_PORT" $db "SELECT count(*) FROM pg_prepared_xacts")"
check "postgres_fdw stays" "1" "$(c "SELECT count(*) FROM pg_extension WHERE extname = 'postgres_fdw'")"

# Again, past a server an earlier install left behind under the name the first node would get.
c "CREATE SERVER fdwshard_node_2 FOREIGN DATA WRAPPER postgres_fdw" >/dev/null
c "CREATE EXTENSION fdwshard" >/dev/null
check "workers added again" "3 4" "$(c "SELECT fdwshard_add_node('127.0.0.1', $WORKER1_PORT) || ' ' || fdwshard_add_node('127.0.0.1', $WORKER2_PORT)")"
check "their servers" "fdwshard_node_2 fdwshard_node_3 fdwshard_node_4" "$(c "SELECT string_agg(srvname, ' ' ORDER BY srvname) FROM pg_foreign_server")"
out=$(c "$setup_tables; SELECT count(*) FROM events JOIN \"Odd Items\" USING (tenant_id)" 2>&1)
check "the same tables distributed again" "100" "$(echo "$out" | tail -1)"
check "new shard ids, past the earlier install's" "t" "$(c "SELECT min(shardid) > $first_ids FROM fdwshard.shards")"
check "shard tables on worker 1" "2" "$(shard_tables "$WORKER1_PORT")"
c "DROP SERVER fdwshard_node_2" >/dev/null

# fdwshard_check_nodes: every worker tried now.
check "all nodes answer" "1|true| 3|true| 4|true|" "$(c "SELECT string_agg(nodeid || '|' || ok || '|' || coalesce(error, ''), ' ' ORDER BY nodeid) FROM fdwshard_check_nodes()")"
node_stop worker2
start=$(date +%s.%N)
out=$(timeout 30 bash -c "source test/cluster.sh; psql_on $COORDINATOR_PORT -d $db -tA -c 'SET fdwshard.connect_timeout = 2000' -c 'SELECT nodeid, ok, error FROM fdwshard_check_nodes() ORDER BY nodeid'" 2>&1)
took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
check_contains "the others answer" "3|t|" "$out"
check_contains "the stopped worker does not, named by its address" "4|f|node 4 (127.0.0.1:$WORKER2_PORT): could not connect to server \"fdwshard_node_4\"" "$out"
check "within the connect timeout (${took}s)" yes "$(awk -v t="$took" 'BEGIN { print (t < 3) ? "yes" : "no" }')"
check "fdwshard.nodes shows it" "1:ok 3:ok 4:unreachable" "$(c "SELECT string_agg(nodeid || ':' || health, ' ' ORDER BY nodeid) FROM fdwshard.nodes")"
node_restart worker2
check "back" "4|true" "$(c "SELECT nodeid || '|' || ok FROM fdwshard_check_nodes() WHERE nodeid = 4")"
check "fdwshard.nodes shows it" "1:ok 3:ok 4:ok" "$(c "SELECT string_agg(nodeid || ':' || health, ' ' ORDER BY nodeid) FROM fdwshard.nodes")"

c "DROP EXTENSION fdwshard CASCADE" >/dev/null
check "dropped again: nothing left on worker 1" "0" "$(shard_tables "$WORKER1_PORT")"
exit $((failures > 0))
