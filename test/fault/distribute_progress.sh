#!/usr/bin/env bash
# create_distributed_table of 300,000 rows while another session polls pg_stat_progress_copy: it sees
# the rows move (shards on workers, and all local); the final NOTICE counts them; a session that
# committed rows while the call waited for the lock keeps them; a worker's backend terminated
# while the rows move leaves nothing behind (the table plain with all its rows, no shard anywhere).
set -u
source "$(dirname "$0")/lib.sh"
db=fault_distribute_progress
fresh_db $db
C=$COORDINATOR_PORT
ROWS=300000

# psql_timed ARGS: psql on the coordinator, killed after 120 s.
psql_timed() { timeout 120 "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$C" -U postgres -d $db "$@"; }
# poll_progress(relid, seconds): polls pg_stat_progress_copy for relid until its command ends (or
# seconds pass), returns "<distinct tuples_processed seen>|<any strictly between 0 and total>|<bytes_total>".
q $C $db "CREATE FUNCTION poll_progress(target oid, seconds float8, total bigint) RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
    seen bigint[] := '{}';
    n bigint;
    bytes bigint;
    max_bytes bigint := 0;
    started boolean := false;
    deadline timestamptz := clock_timestamp() + seconds * interval '1 second';
BEGIN
    WHILE clock_timestamp() < deadline LOOP
        PERFORM pg_stat_clear_snapshot();
        SELECT tuples_processed, bytes_total INTO n, bytes FROM pg_stat_progress_copy
        WHERE relid = target AND command = 'COPY FROM' AND type = 'CALLBACK';
        IF FOUND THEN
            started := true;
            max_bytes := greatest(max_bytes, bytes);
            IF NOT n = ANY (seen) THEN seen := seen || n; END IF;
        ELSIF started THEN
            EXIT;
        END IF;
        PERFORM pg_sleep(0.002);
    END LOOP;
    RETURN coalesce(array_length(seen, 1), 0) || '|' || (SELECT count(*) > 0 FROM unnest(seen) s WHERE s > 0 AND s < total)
           || '|' || (max_bytes > 0);
END \$\$" >/dev/null

# fill TABLE: ROWS rows of (k int, v text, pad text) and a plain copy copy_TABLE.
fill() {
	q $C $db "CREATE TABLE $1 (k int NOT NULL, v text, pad text);
	          INSERT INTO $1 SELECT g, 'v' || g, repeat('x', 50) FROM generate_series(1, $ROWS) g;
	          CREATE TABLE copy_$1 AS SELECT * FROM $1" >/dev/null
}
# distribute_polled TABLE SHARD_COUNT [COLOCATE]: create_distributed_table while poll_progress watches;
# sets polled (what the poller saw) and out (the call's output, NOTICEs included).
distribute_polled() {
	local relid poller
	relid=$(q $C $db "SELECT '$1'::regclass::oid")
	psql_timed -At -c "SELECT poll_progress($relid, 60, $ROWS)" >"$CLUSTER_DIR/polled" 2>&1 &
	poller=$!
	# The poller is polling before the rows move.
	for _ in $(seq 1 100); do
		[ "$(q $C $db "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT poll_progress%' AND pid <> pg_backend_pid()")" = 1 ] && break
		sleep 0.05
	done
	out=$(psql_timed -c "SELECT create_distributed_table('$1', 'k', shard_count := $2, colocate_with := '${3:-default}')" 2>&1)
	wait $poller
	polled=$(cat "$CLUSTER_DIR/polled")
}
same_rows() { # TABLE: rows missing|added against copy_TABLE
	q $C $db "SELECT (SELECT count(*) FROM (SELECT * FROM copy_$1 EXCEPT ALL SELECT * FROM $1) x) || '|' ||
	                 (SELECT count(*) FROM (SELECT * FROM $1 EXCEPT ALL SELECT * FROM copy_$1) x)"
}
shard_tables() { q "$1" $db "SELECT count(*) FROM pg_tables WHERE tablename LIKE '$2\\_%'"; }

echo "-- shards on every node: rows move through COPYs"
fill t
distribute_polled t 8
check_contains "the final NOTICE counts the rows" "NOTICE:  moved $ROWS rows of table \"t\" into 8 shards in" "$out"
polled_rows=${polled%%|*}
check "the poller saw the rows move (${polled_rows} distinct counts)" "yes" "$([ "${polled_rows:-0}" -ge 2 ] 2>/dev/null && echo yes || echo "no: $polled")"
check "the poller saw a count between 0 and $ROWS, and the table's size" "true|true" "${polled#*|}"
check "every row, unchanged" "0|0" "$(same_rows t)"
check "rows on each worker" "yes" "$([ "$(q $C $db "SELECT count(DISTINCT s.nodeid) FROM t JOIN fdwshard.shards s ON s.shard_name = t.tableoid::regclass::text")" = 3 ] && echo yes || echo no)"
check "no progress left behind" "0" "$(q $C $db "SELECT count(*) FROM pg_stat_progress_copy")"

echo "-- every shard local: rows move through tuple routing, a block range at a time"
fill u
distribute_polled u 1 none
check_contains "the final NOTICE counts the rows" "NOTICE:  moved $ROWS rows of table \"u\" into 1 shards in" "$out"
polled_rows=${polled%%|*}
check "the poller saw the rows move (${polled_rows} distinct counts)" "yes" "$([ "${polled_rows:-0}" -ge 2 ] 2>/dev/null && echo yes || echo "no: $polled")"
check "the poller saw a count between 0 and $ROWS, and the table's size" "true|true" "${polled#*|}"
check "every row, unchanged" "0|0" "$(same_rows u)"
check "all local" "0" "$(q $C $db "SELECT count(*) FROM fdwshard.shards WHERE table_name = 'u'::regclass AND NOT is_local")"

echo "-- rows committed while create_distributed_table waited for the table's lock are moved"
q $C $db "CREATE TABLE w (k int, v text); INSERT INTO w SELECT g, 'v' || g FROM generate_series(1, 1000) g" >/dev/null
psql_timed -v ON_ERROR_STOP=1 -c "BEGIN" -c "INSERT INTO w SELECT g, 'late' FROM generate_series(1001, 1100) g" \
	-c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null 2>&1 &
writer=$!
for _ in $(seq 1 100); do
	[ "$(q $C $db "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")" = 1 ] && break
	sleep 0.05
done
out=$(psql_timed -c "SELECT create_distributed_table('w', 'k', shard_count := 4)" 2>&1)
wait $writer
check "create_distributed_table after the wait" "" "$(echo "$out" | grep ERROR)"
check "the waiting call moved the rows committed meanwhile" "1100|100" "$(q $C $db "SELECT count(*) || '|' || count(*) FILTER (WHERE v = 'late') FROM w")"

echo "-- a worker's backend terminated while the rows move: nothing is left"
fill x
psql_timed -c "SELECT create_distributed_table('x', 'k', shard_count := 8)" >"$CLUSTER_DIR/x.out" 2>&1 &
mover=$!
killed=0
for _ in $(seq 1 400); do
	killed=$(q "$WORKER2_PORT" $db "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	                                WHERE datname = '$db' AND query LIKE 'COPY %' AND state <> 'idle' AND pid <> pg_backend_pid()")
	[ "$killed" != 0 ] && break
	sleep 0.01
done
wait $mover
out=$(cat "$CLUSTER_DIR/x.out"); echo "   (the error: $(echo "$out" | grep -m1 ERROR))"
check "a COPY on worker 2 was terminated" "1" "$killed"
check_contains "create_distributed_table fails" "ERROR:" "$out"
check "the table is plain, every row there" "r|0|0" "$(q $C $db "SELECT relkind FROM pg_class WHERE oid = 'x'::regclass")|$(same_rows x)"
check "no catalog rows for it" "0|0" "$(q $C $db "SELECT (SELECT count(*) FROM fdwshard.distributed_table WHERE logicalrelid = 'x'::regclass) || '|' || (SELECT count(*) FROM fdwshard.shards WHERE shard_name LIKE 'x\\_%')")"
check "no shard relation on the coordinator" "0" "$(shard_tables $C x)"
check "no shard table on worker 1" "0" "$(shard_tables "$WORKER1_PORT" x)"
check "no shard table on worker 2" "0" "$(shard_tables "$WORKER2_PORT" x)"
check "nothing prepared on the workers" "0|0" "$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")|$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")"
check "then it distributes" "" "$(q $C $db "SELECT create_distributed_table('x', 'k', shard_count := 8)" | grep ERROR)"
check "every row, unchanged" "0|0" "$(same_rows x)"

for port in "$C" "$WORKER1_PORT" "$WORKER2_PORT"; do q "$port" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null; done
exit $((failures > 0))
