#!/usr/bin/env bash
# Two sessions distributing or undistributing one table at once: the one that waited for the table's
# lock gets a clear error (the winner replaced the table), and the table is converted exactly once.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_concurrent_distribute
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE t (k int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g" >/dev/null

# psql_timed ARGS: psql on the coordinator, killed after 60 s.
psql_timed() { timeout 60 "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$COORDINATOR_PORT" -U postgres -d $db "$@"; }
# race WINNER LOSER: WINNER holds the table in a transaction that sleeps 2 s before committing,
# LOSER runs meanwhile; sets loser_error to "SQLSTATE message / detail" of the loser's error.
race() {
	psql_timed -v ON_ERROR_STOP=1 -c "BEGIN" -c "$1" -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null 2>&1 &
	local winner=$!
	# The loser starts once the winner has done its work and sleeps, holding the lock.
	for _ in $(seq 1 100); do
		[ "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")" = 1 ] && break
		sleep 0.1
	done
	loser_error=$(psql_timed -v VERBOSITY=verbose -c "$2" 2>&1 |
		sed -n -e 's/^ERROR:  \([0-9A-Z]\{5\}\): \(.*\)$/\1 \2/p' -e 's/^DETAIL:  \(.*\)$/\/ \1/p' | paste -sd ' ')
	wait $winner
	check "winner committed: $1" "0" "$?"
}
catalog() { q "$COORDINATOR_PORT" $db "SELECT (SELECT count(*) FROM fdwshard.distributed_table) || ' tables, ' || (SELECT count(*) FROM fdwshard.shard) || ' shards, ' || (SELECT count(*) FROM fdwshard.colocation_group) || ' groups'"; }
shard_tables() { q "$1" $db "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\\_%'"; }
rows() { q "$COORDINATOR_PORT" $db "SELECT count(*) || ' ' || sum(k) FROM t"; }
kind() { q "$COORDINATOR_PORT" $db "SELECT relkind FROM pg_class WHERE oid = 't'::regclass"; }

echo "-- create_distributed_table twice at once"
race "SELECT create_distributed_table('t', 'k', shard_count := 4)" "SELECT create_distributed_table('t', 'k', shard_count := 4)"
check "loser: already distributed" '55000 table "t" is already distributed / Another session distributed it while this one waited for its lock.' "$loser_error"
check "distributed once" "1 tables, 4 shards, 1 groups" "$(catalog)"
check "partitions on the coordinator" "4" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM pg_inherits WHERE inhparent = 't'::regclass")"
check "local shard tables" "2" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\\_%'")"
check "shard tables on worker 1" "1" "$(shard_tables "$WORKER1_PORT")"
check "shard tables on worker 2" "1" "$(shard_tables "$WORKER2_PORT")"
check "every row" "1000 500500" "$(rows)"

echo "-- undistribute_table twice at once"
race "SELECT undistribute_table('t')" "SELECT undistribute_table('t')"
check "loser: not distributed" '55000 table "t" is not distributed / Another session undistributed it while this one waited for its lock.' "$loser_error"
check "undistributed once" "0 tables, 0 shards, 0 groups" "$(catalog)"
check "a plain table" "r" "$(kind)"
check "no shard table on worker 1" "0" "$(shard_tables "$WORKER1_PORT")"
check "no shard table on worker 2" "0" "$(shard_tables "$WORKER2_PORT")"
check "every row" "1000 500500" "$(rows)"

echo "-- undistribute_table while create_distributed_table runs"
race "SELECT create_distributed_table('t', 'k', shard_count := 4)" "SELECT undistribute_table('t')"
check "loser: replaced" '55000 table "t" was replaced by another session / Another session distributed it while this one waited for its lock.' "$loser_error"
check "distributed once" "1 tables, 4 shards, 1 groups" "$(catalog)"
check "every row" "1000 500500" "$(rows)"

echo "-- create_distributed_table while undistribute_table runs"
race "SELECT undistribute_table('t')" "SELECT create_distributed_table('t', 'k', shard_count := 4)"
check "loser: replaced" '55000 table "t" was replaced by another session / Another session undistributed it while this one waited for its lock.' "$loser_error"
check "undistributed once" "0 tables, 0 shards, 0 groups" "$(catalog)"
check "a plain table" "r" "$(kind)"
check "every row" "1000 500500" "$(rows)"

q "$COORDINATOR_PORT" $db "DROP TABLE t" >/dev/null
exit $((failures > 0))
