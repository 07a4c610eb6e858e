#!/usr/bin/env bash
# A worker stopped while fdwshard works: create_distributed_table and DROP TABLE fail whole,
# leaving no shard on any node and no catalog row; once the worker is back both succeed. A read
# that cannot connect to it leaks none of the connections it took on the others.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_worker_down
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE t (k int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g" >/dev/null

node_stop worker2
# Shard 0 goes to the coordinator, shard 1 to worker 1, shard 2 to the stopped worker 2.
out=$(q "$COORDINATOR_PORT" $db "SELECT create_distributed_table('t', 'k', shard_count := 6)")
check_contains "create_distributed_table fails when a worker is down" 'could not connect to server "fdwshard_node_3"' "$out"
check "no catalog rows" "0" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM fdwshard.shard")"
check "table still plain with its rows" "r|1000" "$(q "$COORDINATOR_PORT" $db "SELECT relkind, (SELECT count(*) FROM t) FROM pg_class WHERE relname = 't'")"
check "no local shard tables" "0" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM pg_class WHERE relname LIKE 't\_%' AND relkind IN ('r', 'f')")"
check "no shard tables on worker 1" "0" "$(q "$WORKER1_PORT" $db "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\_%'")"

node_restart worker2
out=$(q "$COORDINATOR_PORT" $db "SELECT create_distributed_table('t', 'k', shard_count := 6)")
check "create_distributed_table succeeds once the worker is back" "" "$out"
check "all rows kept" "1000" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM t")"
check "worker 2 holds its shards" "2" "$(q "$WORKER2_PORT" $db "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\_%'")"

# A worker stopped mid-way through a multi-shard write: nothing is half-written.
node_stop worker1
out=$(q "$COORDINATOR_PORT" $db "INSERT INTO t SELECT g, 'x' FROM generate_series(1001, 1100) g")
check_contains "write touching a stopped worker fails" "could not connect" "$out"
node_restart worker1
check "no row of the failed write anywhere" "1000" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM t")"

# Sizes with a worker down: the views show NULL for its shards and warn naming it, the others are
# measured; fdwshard_table_size and a plan by disk size fail naming it (a partial sum would be wrong).
node_stop worker1
out=$(q "$COORDINATOR_PORT" $db "SELECT string_agg(format('%s:%s', nodeid, bytes IS NOT NULL), ' ' ORDER BY shardid) FROM fdwshard.shards")
check_contains "fdwshard.shards warns naming the stopped node" "WARNING:  could not measure the shards on node 2 (127.0.0.1:$WORKER1_PORT)" "$out"
check "its shards' sizes are NULL, the others' measured" "1:t 2:f 3:t 1:t 2:f 3:t" "$(echo "$out" | tail -1)"
out=$(q "$COORDINATOR_PORT" $db "SELECT bytes IS NULL FROM fdwshard.tables")
check "the table's total is NULL" "t" "$(echo "$out" | tail -1)"
out=$(q "$COORDINATOR_PORT" $db "SELECT fdwshard_table_size('t')")
check_contains "fdwshard_table_size fails naming the node" "while measuring the shards on node 2 (127.0.0.1:$WORKER1_PORT)" "$out"
out=$(q "$COORDINATOR_PORT" $db "SELECT * FROM fdwshard_rebalance_plan('t', 'by_disk_size')")
check_contains "a plan by disk size fails naming the node" "while measuring the shards on node 2 (127.0.0.1:$WORKER1_PORT)" "$out"
on_worker2=$(q "$COORDINATOR_PORT" $db "SELECT min(k) FROM generate_series(1, 100) k WHERE (SELECT nodeid FROM fdwshard.shards WHERE shardid = get_shard_id_for_distribution_column('t', k)) = 3")
out=$(q "$COORDINATOR_PORT" $db "BEGIN; SELECT count(*) FROM fdwshard.shards WHERE bytes IS NULL; SELECT count(*) FROM t WHERE k = $on_worker2; COMMIT")
check "the transaction goes on after the warning, on the other worker too" "2|1" "$(echo "$out" | grep -xE '[0-9]+' | paste -sd'|')"
check_contains "and commits" "COMMIT" "$out"
node_restart worker1
check "measured again once it is back" "6" "$(q "$COORDINATOR_PORT" $db "SELECT count(bytes) FROM fdwshard.shards")"

# A multi-shard read that cannot connect to a stopped worker gives back the pool connections it
# took on the others first: once the worker is back, the same session's reads use them again,
# and worker 1 holds no more than fdwshard.pool_size of its connections (they leaked before).
session_open "$COORDINATOR_PORT" $db
echo "SET fdwshard.pool_size = 2;" >&7
session_mark ready
node_stop worker2 7>&-
echo "SELECT count(*) FROM t;" >&7
session_mark failed
node_restart worker2 7>&- # the server must not hold the session's input open
for _ in 1 2 3; do echo "SELECT count(*) FROM t;" >&7; done
session_mark done
pool=$(q "$WORKER1_PORT" $db "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fdwshard' AND datname = '$db'")
session_close
out=$session_text
check_contains "a read while worker 2 is down fails naming it" 'could not connect to server "fdwshard_node_3"' "$out"
check "once it is back the session reads all rows, three times" "1000 1000 1000" \
	"$(sed -n '/^failed$/,$p' <<<"$out" | grep -xE '[0-9]+' | tr '\n' ' ' | sed 's/ $//')"
check "worker 1 holds the session's pool connections, no leaked ones" "2" "$pool"

node_stop worker1
out=$(q "$COORDINATOR_PORT" $db "DROP TABLE t")
check_contains "DROP TABLE fails while a worker is down" "could not connect" "$out"
node_restart worker1
check "table and shards still there" "1000|6" "$(q "$COORDINATOR_PORT" $db "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM fdwshard.shard)")"
q "$COORDINATOR_PORT" $db "DROP TABLE t" >/dev/null
check "DROP TABLE succeeds once the worker is back" "0|0|0" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM fdwshard.shard")|$(q "$WORKER1_PORT" $db "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\_%'")|$(q "$WORKER2_PORT" $db "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\_%'")"
exit $((failures > 0))
