#!/usr/bin/env bash
# Extended-protocol pipelines (pgbench \startpipeline, as pgjdbc batches and psycopg 3 pipelines):
# the statements before one Sync are one transaction, so a failing statement rolls back the
# ones before it on every shard, exactly as on a plain table. A lone prepared statement followed
# by Sync keeps the one-round-trip autocommit path.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_pipeline
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE t (k int PRIMARY KEY, v text); CREATE TABLE plain (k int PRIMARY KEY, v text);
    SELECT create_distributed_table('t', 'k', shard_count := 6);
    INSERT INTO t SELECT g, 'v' FROM generate_series(1, 50) g; INSERT INTO plain SELECT g, 'v' FROM generate_series(1, 50) g" >/dev/null
# Keys on worker 2 (a remote shard): one taken (dup), two free.
read -r dup new1 new2 < <(q "$COORDINATOR_PORT" $db "SELECT string_agg(k::text, ' ') FROM (SELECT k FROM generate_series(1, 1000) k
    JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('t', k) WHERE s.nodeid = 3
    AND (k <= 50) = (k = (SELECT min(k) FROM t WHERE get_shard_id_for_distribution_column('t', k) IN
        (SELECT shardid FROM fdwshard.shards WHERE nodeid = 3))) ORDER BY k > 50, k LIMIT 3) x")
echo "   keys on worker 2: taken $dup, free $new1 $new2"

pipeline() { # TABLE K1 K2 MODE: two INSERTs in one pipeline; prints pgbench's output
	local script; script=$(mktemp); chmod 644 "$script"
	printf '\\startpipeline\nINSERT INTO %s VALUES (%s, %s);\nINSERT INTO %s VALUES (%s, %s);\n\\endpipeline\n' \
		"$1" "$2" "'pipelined'" "$1" "$3" "'second'" >"$script"
	PGOPTIONS='-c client_min_messages=debug2' as_pg timeout 60 "$PG_BIN/pgbench" -h 127.0.0.1 -p "$COORDINATOR_PORT" \
		-U postgres -n -t 1 -M "$4" -f "$script" $db 2>&1
	rm -f "$script"
}

for mode in extended prepared; do
	out=$(pipeline plain "$new1" "$dup" $mode)
	check_contains "plain table, $mode: the duplicate fails the pipeline" "duplicate key" "$out"
	out=$(pipeline t "$new1" "$dup" $mode)
	check_contains "fdwshard, $mode: the duplicate fails the pipeline" "duplicate key" "$out"
	check "fdwshard, $mode: the first INSERT was not sent as its own transaction" "0" "$(echo "$out" | grep -c 'as its own transaction')"
	check "$mode: the first INSERT is rolled back, as on the plain table" \
		"$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM plain WHERE k = $new1")" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM t WHERE k = $new1")"
	check "$mode: k = $new1 is on no shard (worker 2 read directly)" "0" \
		"$(q "$WORKER2_PORT" $db "SELECT count(*) FROM (SELECT k FROM ONLY public.t_$(q "$COORDINATOR_PORT" $db "SELECT get_shard_id_for_distribution_column('t', $new1)") WHERE k = $new1) x")"
done

out=$(pipeline t "$new1" "$new2" extended)
check_contains "a pipeline without errors commits" "number of failed transactions: 0" "$out"
check "both rows of that pipeline are there" "2" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM t WHERE k IN ($new1, $new2)")"

# A prepared statement followed by Sync is its whole transaction: one round trip, still.
script=$(mktemp); chmod 644 "$script"
echo "SELECT v FROM t WHERE k = $dup;" >"$script"
out=$(PGOPTIONS='-c client_min_messages=debug2' as_pg timeout 60 "$PG_BIN/pgbench" -h 127.0.0.1 -p "$COORDINATOR_PORT" \
	-U postgres -n -t 3 -M prepared -f "$script" $db 2>&1)
rm -f "$script"
check "prepared statements outside pipelines keep the autocommit path" "3" "$(echo "$out" | grep -c 'as its own transaction')"

q "$COORDINATOR_PORT" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null
exit $((failures > 0))
