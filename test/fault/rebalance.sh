#!/usr/bin/env bash
# Growing and shrinking the cluster: a third worker is added and fdwshard_rebalance spreads every
# co-location group over the four nodes (each node within one shard group of the others) while
# pgbench -M prepared writes and reads; fdwshard_drain_node then empties the new worker, which
# fdwshard_remove_node removes. Every row written is there afterwards.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_rebalance
fresh_db $db
C=$COORDINATOR_PORT
q $C $db "CREATE TABLE a (k bigint PRIMARY KEY, v int);
          INSERT INTO a SELECT g, 1 FROM generate_series(1, 120000) g;
          SELECT create_distributed_table('a', 'k', shard_count := 12);
          CREATE TABLE b (k bigint, n int);
          INSERT INTO b SELECT g, 2 FROM generate_series(1, 120000, 2) g;
          SELECT create_distributed_table('b', 'k', shard_count := 12, colocate_with := 'a');
          CREATE TABLE c (id text PRIMARY KEY);
          INSERT INTO c SELECT 'id ' || g FROM generate_series(1, 5000) g;
          SELECT create_distributed_table('c', 'id', shard_count := 7)" >/dev/null
# spread: per co-location group, "shards per node" over the nodes that hold some, and the fewest/most
spread() {
	q $C $db "SELECT string_agg(format('%s:%s-%s', colocationid, lo, hi), ' ' ORDER BY colocationid) FROM (
	            SELECT colocationid, min(cnt) AS lo, max(cnt) AS hi FROM (
	              SELECT t.colocationid, n.nodeid, count(s.shardid) AS cnt FROM fdwshard.node n
	              CROSS JOIN (SELECT DISTINCT colocationid FROM fdwshard.distributed_table) t
	              LEFT JOIN fdwshard.shards s ON s.nodeid = n.nodeid AND s.table_name =
	                (SELECT min(logicalrelid::text)::regclass FROM fdwshard.distributed_table x WHERE x.colocationid = t.colocationid)
	              WHERE n.should_have_shards GROUP BY 1, 2) per_node GROUP BY 1) g"
}
totals() { q $C $db "SELECT (SELECT count(*) FROM a), (SELECT sum(k) FROM a), (SELECT count(*) FROM b), (SELECT count(*) FROM c)"; }
check "three nodes: already balanced, nothing to move" "0" "$(q $C $db "SELECT count(*) FROM fdwshard_rebalance_plan()")"

# A fourth server, started for this test only, with prepared transactions as a worker needs.
trap 'extra_node_stop worker3' EXIT
extra_node_start worker3 <<CONF || exit 1
max_prepared_transactions = 20
max_connections = 60
shared_buffers = 32MB
CONF
q "$WORKER3_PORT" postgres "CREATE DATABASE $db" >/dev/null
node=$(q $C $db "SELECT fdwshard_add_node('127.0.0.1', $WORKER3_PORT)")
check "the new worker is node 4" "4" "$node"
check "it holds nothing yet" "0" "$(q $C $db "SELECT shard_count FROM fdwshard.nodes WHERE nodeid = 4")"
plan=$(q $C $db "SELECT count(*), count(*) FILTER (WHERE target_node = 4) FROM fdwshard_rebalance_plan()")
check "the plan: 3 moves of a's group and 1 of c's, all to the new worker" "4|4" "$plan"
check "a plan for c's group alone: 1 move" "1" "$(q $C $db "SELECT count(*) FROM fdwshard_rebalance_plan('c')")"
check "nothing moved by planning" "0" "$(q $C $db "SELECT shard_count FROM fdwshard.nodes WHERE nodeid = 4")"

before=$(totals)
work=$(mktemp -d)
chmod 777 "$work"
cat >"$work/bench.sql" <<'SQL'
\set id random(1000000000, 9000000000000)
INSERT INTO a VALUES (:id, 3);
SELECT count(*) FROM a WHERE k = :id;
SQL
as_pg timeout 300 pgbench -n -h 127.0.0.1 -p $C -U postgres -c 2 -j 1 -T 8 -M prepared -f "$work/bench.sql" $db \
	>"$work/pgbench.out" 2>&1 &
pgbench_pid=$!
# Another session polls fdwshard.rebalance_progress: the moves it saw, and the most rows copied.
cat >"$work/poll.sql" <<'SQL'
DO $$
DECLARE most bigint := 0; seen bigint[] := '{}'; p record;
BEGIN
    FOR i IN 1 .. 3000 LOOP
        FOR p IN SELECT shardid, rows_copied FROM fdwshard.rebalance_progress LOOP
            IF NOT p.shardid = ANY (seen) THEN seen := seen || p.shardid; END IF;
            most := greatest(most, p.rows_copied);
        END LOOP;
        PERFORM pg_sleep(0.002);
    END LOOP;
    RAISE NOTICE 'seen: % moves, % rows', cardinality(seen), most;
END $$;
SQL
timeout 120 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -qAt -f '$work/poll.sql'" >"$work/poll.out" 2>&1 &
poller=$!
sleep 1
out=$(timeout 240 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -qAt -v ON_ERROR_STOP=1 -c 'CALL fdwshard_rebalance()'" 2>&1)
wait $pgbench_pid
wait $poller
seen=$(sed -n 's/.*seen: \([0-9]*\) moves, \([0-9]*\) rows.*/\1 \2/p' "$work/poll.out")
check "another session saw moves in fdwshard.rebalance_progress, with rows copied ($(cat "$work/poll.out"))" "yes" \
	"$(set -- $seen; [ "${1:-0}" -ge 1 ] && [ "${2:-0}" -gt 0 ] && echo yes || echo no)"
check_contains "the rebalance made 4 moves" "fdwshard_rebalance: 4 shard group move(s)" "$out"
check "every group within one shard of even over 4 nodes" "1:3-3 2:1-2" "$(spread)"
check "the plan is empty afterwards" "0" "$(q $C $db "SELECT count(*) FROM fdwshard_rebalance_plan()")"
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pgbench.out")
check "pgbench during the rebalance: no failed transaction ($(grep -m1 -i error "$work/pgbench.out"))" "0" "${failed:-none}"
check "pgbench's rows all there" "${processed:-none}" "$(q $C $db "SELECT count(*) FROM a WHERE v = 3")"
check "the other rows intact" "$before" "$(q $C $db "SELECT (SELECT count(*) FROM a WHERE v = 1), (SELECT sum(k) FROM a WHERE v = 1), (SELECT count(*) FROM b), (SELECT count(*) FROM c)")"
check "the new worker holds its share" "4" "$(q $C $db "SELECT count(*) FROM fdwshard.shards WHERE nodeid = 4 AND table_name IN ('a'::regclass, 'c'::regclass)")"

# Draining: the new worker empties and can be removed.
before=$(totals)
out=$(timeout 240 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -qAt -v ON_ERROR_STOP=1 -c 'CALL fdwshard_drain_node(4)'" 2>&1)
check_contains "draining moved its 4 shard groups (3 of a and b, 1 of c)" "fdwshard_rebalance: 4 shard group move(s)" "$out"
check "it holds nothing" "0" "$(q $C $db "SELECT shard_count FROM fdwshard.nodes WHERE nodeid = 4")"
check "no shard table left on it" "0" "$(q "$WORKER3_PORT" $db "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
check "the others within one of even" "1:4-4 2:2-3" "$(spread)"
check "every row still there" "$before" "$(totals)"
check "it is removed" "SET" "$(q $C $db "SET client_min_messages = warning; SELECT fdwshard_remove_node(4)")"
check "three nodes left" "3" "$(q $C $db "SELECT count(*) FROM fdwshard.nodes")"
check "nothing prepared left anywhere" "0|0|0" "$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")|$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")|$(q "$WORKER3_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")"

# Refusals: an unknown strategy, a table that is not distributed.
check_contains "unknown strategy" "invalid rebalance strategy \"fast\"" "$(q $C $db "SELECT * FROM fdwshard_rebalance_plan(NULL, 'fast')")"
check_contains "a plain table" "is not a distributed table" "$(q $C $db "CREATE TABLE p (k int); SELECT * FROM fdwshard_rebalance_plan('p')")"

rm -rf "$work"
extra_node_stop worker3
trap - EXIT
exit $((failures > 0))
