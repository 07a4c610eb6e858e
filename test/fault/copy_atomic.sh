#!/usr/bin/env bash
# A COPY of 20,000 rows over all three nodes that fails leaves none of its rows on any node: a unique
# violation near the end on a worker's shard, and a statement_timeout while a worker's shard is locked.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_copy_atomic
fresh_db $db
C=$COORDINATOR_PORT
q $C $db "CREATE TABLE t (k int PRIMARY KEY, v text); SELECT create_distributed_table('t', 'k', shard_count := 6);
          INSERT INTO t SELECT g, 'old' FROM generate_series(1, 1000) g" >/dev/null
key_on() { q $C $db "SELECT min(k) FROM t WHERE get_shard_id_for_distribution_column('t', k) IN (SELECT shardid FROM fdwshard.shards WHERE nodeid = $1)"; }
k2=$(key_on 2) k3=$(key_on 3)
check "old keys on both workers" "yes" "$([ -n "$k2" ] && [ -n "$k3" ] && echo yes || echo no)"

# copy_rows NODEID PORT: rows of the COPYs (v = 'copy') in the node's shard tables, read on the node.
copy_rows() {
	local sql
	sql=$(q $C $db "SELECT string_agg(format('SELECT count(*) FROM public.%I WHERE v = %L', shard_name, 'copy'), ' UNION ALL ')
	                FROM fdwshard.shards WHERE nodeid = $1")
	q "$2" $db "SELECT sum(count) FROM ($sql) s"
}
nothing_left() { # CASE
	check "$1: none of its rows through the coordinator" "0" "$(q $C $db "SELECT count(*) FROM t WHERE v = 'copy'")"
	check "$1: none in the coordinator's shards" "0" "$(copy_rows 1 $C)"
	check "$1: none in worker 1's shards" "0" "$(copy_rows 2 "$WORKER1_PORT")"
	check "$1: none in worker 2's shards" "0" "$(copy_rows 3 "$WORKER2_PORT")"
	check "$1: the old rows intact" "1000|1000" "$(q $C $db "SELECT count(*), count(*) FILTER (WHERE v = 'old') FROM t")"
	check "$1: nothing prepared on the workers" "0|0" "$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")|$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")"
}
# rows DUPLICATE_AT: 20,000 csv rows with new keys, over every shard; line DUPLICATE_AT (if any) has
# the old key $k2 (worker 1).
rows() { awk -v at="$1" -v dup="$k2" 'BEGIN { for (i = 1; i <= 20000; i++) printf "%d,copy\n", i == at ? dup : 100000 + i }'; }
copy() { # [PGOPTIONS]: COPY rows from stdin into t, the error on stdout
	PGOPTIONS="${1:-}" timeout 120 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -v ON_ERROR_STOP=1 -c 'COPY t FROM STDIN (FORMAT csv)'" 2>&1
}
check "the new keys reach every node" "1|2|3" "$(q $C $db "SELECT string_agg(DISTINCT nodeid::text, '|') FROM fdwshard.shards
    WHERE shardid IN (SELECT get_shard_id_for_distribution_column('t', 100000 + g) FROM generate_series(1, 20000) g)")"

# (1) A unique violation on line 19,990, on worker 1's shard, after rows for every shard.
out=$(rows 19990 | copy)
check_contains "unique violation: the error" "duplicate key value violates unique constraint" "$out"
check_contains "unique violation: the error names the line" "line 19990" "$out"
nothing_left "unique violation"

# (2) statement_timeout while a shard of worker 2 is locked there: the COPY is cancelled on every node.
shard3=$(q $C $db "SELECT shard_name FROM fdwshard.shards WHERE table_name = 't'::regclass AND nodeid = 3 ORDER BY shardid LIMIT 1")
PGAPPNAME=copy_atomic_lock timeout 60 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $WORKER2_PORT -d $db -qAt \
    -c 'BEGIN' -c 'LOCK TABLE public.\"$shard3\" IN ACCESS EXCLUSIVE MODE' -c 'SELECT pg_sleep(30)' -c 'COMMIT'" >/dev/null 2>&1 &
locker=$!
locked=no
for _ in $(seq 1 100); do
	[ "$(q "$WORKER2_PORT" $db "SELECT count(*) FROM pg_locks WHERE relation = 'public.\"$shard3\"'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && { locked=yes; break; }
	sleep 0.1
done
check "worker 2's shard $shard3 locked" "yes" "$locked"
start=$(date +%s)
out=$(rows 0 | copy "-c statement_timeout=2s")
took=$(($(date +%s) - start))
check_contains "statement_timeout: the COPY is cancelled" "canceling statement due to statement timeout" "$out"
check "statement_timeout: within 10 s (took ${took}s)" "yes" "$([ $took -lt 10 ] && echo yes || echo no)"
q "$WORKER2_PORT" postgres "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'copy_atomic_lock'" >/dev/null
wait $locker
nothing_left "statement_timeout"
check "no COPY left running on worker 2" "0" "$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND state <> 'idle' AND pid <> pg_backend_pid()")"

# (3) The same COPY without a fault loads every row.
out=$(rows 0 | copy)
check "the COPY then succeeds" "COPY 20000" "$out"
check "all its rows there" "20000" "$(q $C $db "SELECT count(*) FROM t WHERE v = 'copy'")"
check "spread over the nodes" "20000" "$(($(copy_rows 1 $C) + $(copy_rows 2 "$WORKER1_PORT") + $(copy_rows 3 "$WORKER2_PORT")))"
exit $((failures > 0))
