#!/usr/bin/env bash
# A multi-shard read's statements reach each worker as one pipeline per pool connection, each
# statement prepared there on its second use: worker 1 logs the first read's statements as
# unnamed and the next ones as fdwshard's prepared statements, with the same answers. A statement
# that fails inside a pipeline fails the read with the worker's error, and the session's next
# reads are right (the connection starts afresh). With one connection for all of a worker's
# shards, one statement reads them all (their rows as UNION ALL), unnamed then prepared, and
# fails and recovers the same way.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_pool_prepared
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE t (k int PRIMARY KEY, v int NOT NULL);
    SELECT create_distributed_table('t', 'k', shard_count := 12);
    INSERT INTO t SELECT g, g FROM generate_series(1, 600) g" >/dev/null
w1_shards=$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM fdwshard.shards WHERE table_name = 't'::regclass AND port = $WORKER1_PORT")
k1=$(q "$COORDINATOR_PORT" $db "SELECT min(g) FROM generate_series(1, 600) g
    JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('t', g) WHERE s.port = $WORKER1_PORT")
log=$CLUSTER_DIR/worker1.log
q "$WORKER1_PORT" postgres "ALTER SYSTEM SET log_statement = 'all'" >/dev/null
q "$WORKER1_PORT" postgres "SELECT pg_reload_conf()" >/dev/null
sleep 0.3

# reads SQL N: one session running SQL N times (each its own transaction); its answers, one per line.
reads() {
	local args=() i
	for i in $(seq 1 "$2"); do args+=(-c "$1"); done
	psql_on "$COORDINATOR_PORT" -d $db -tA "${args[@]}" 2>&1
}
before=$(wc -l <"$log")
check "three reads, the same answer" "$(printf '600\n600\n600')" "$(reads "SELECT count(*) FROM t WHERE v > 0" 3)"
sleep 0.3
logged=$(tail -n +"$((before + 1))" "$log")
check "the first read: each of worker 1's shards unnamed" "$w1_shards" \
	"$(grep -c 'execute <unnamed>: SELECT count(\*) AS p1 FROM public.t_[0-9]* WHERE (v > 0)' <<<"$logged")"
check "the next two: its prepared statements" "$((2 * w1_shards))" \
	"$(grep -cE 'execute fdwshard_[0-9]+: SELECT count\(\*\) AS p1 FROM public.t_[0-9]* WHERE \(v > 0\)' <<<"$logged")"

echo "-- a batch longer than 64 kB goes as one simple-protocol message"
long=$(printf 'x%.0s' $(seq 1 20000))
before=$(wc -l <"$log")
check "a read with a 20 kB literal per shard" "$(printf '600\n600')" \
	"$(psql_on "$COORDINATOR_PORT" -d $db -tA -c "SET fdwshard.pool_size = 1" -c "SET fdwshard.combine_shard_reads = off" \
		-c "SELECT count(*) FROM t WHERE v::text <> '$long'" \
		-c "SELECT count(*) FROM t WHERE v::text <> '$long'" 2>&1 | grep -v '^SET')"
sleep 0.3
logged=$(tail -n +"$((before + 1))" "$log")
check "worker 1 got each read as one message of its shards' statements" "2" \
	"$(grep -c "statement: SELECT count(\*) AS p1 FROM public.t_[0-9]* WHERE ((v)::text <> 'x" <<<"$logged")"
check "and nothing of them prepared or unnamed" "0" "$(grep -c "execute .*WHERE ((v)::text <> 'x" <<<"$logged")"

echo "-- one connection for all of a worker's shards: one statement reads them all"
before=$(wc -l <"$log")
check "three reads, the same answer" "$(printf '599\n600\n601')" \
	"$(psql_on "$COORDINATOR_PORT" -d $db -tA -c "SET fdwshard.pool_size = 1" -c "SELECT count(*) FROM t WHERE v > 1" \
		-c "SELECT count(*) + 1 FROM t WHERE v > 1" -c "SELECT count(*) + 2 FROM t WHERE v > 1" 2>&1 | grep -v '^SET')"
sleep 0.3
logged=$(tail -n +"$((before + 1))" "$log")
union="SELECT count\(\*\) AS p1 FROM \(SELECT v FROM public.t_[0-9]*( UNION ALL SELECT v FROM public.t_[0-9]*){$((w1_shards - 1))}\) t WHERE \(v > 1\)"
check "worker 1: the first read unnamed, one statement for its $w1_shards shards" "1" \
	"$(grep -cE "execute <unnamed>: $union\$" <<<"$logged")"
check "the next two: prepared" "2" "$(grep -cE "execute fdwshard_[0-9]+: $union\$" <<<"$logged")"
check "and no statement of one shard" "0" "$(grep -cE 'FROM public.t_[0-9]* WHERE \(v > 1\)' <<<"$logged")"

echo "-- with a parameter: one statement for the shards, the parameter sent with it"
before=$(wc -l <"$log")
check "three prepared reads, the right answers" "$(printf '599\n598\n597')" \
	"$(psql_on "$COORDINATOR_PORT" -d $db -tA -c "SET fdwshard.pool_size = 1" \
		-c "PREPARE r(int) AS SELECT count(*) FROM t WHERE v > \$1" -c "EXECUTE r(1)" -c "EXECUTE r(2)" -c "EXECUTE r(3)" \
		2>&1 | grep -v '^SET' | grep -v '^PREPARE')"
sleep 0.3
logged=$(tail -n +"$((before + 1))" "$log")
union="SELECT count\(\*\) AS p1 FROM \(SELECT v FROM public.t_[0-9]*( UNION ALL SELECT v FROM public.t_[0-9]*){$((w1_shards - 1))}\) t WHERE \(v > \\\$1\)"
check "worker 1: the first unnamed" "1" "$(grep -cE "execute <unnamed>: $union\$" <<<"$logged")"
check "the next two: prepared" "2" "$(grep -cE "execute fdwshard_[0-9]+: $union\$" <<<"$logged")"
check "each with its parameter" "1 2 3" "$(grep -oE "parameters: \\\$1 = '[0-9]+'" <<<"$logged" | grep -oE "[0-9]+'$" | tr -d "'" | tr '\n' ' ' | sed 's/ $//')"

# The second and third reads divide by zero on worker 1 (prepared there on the second).
failing_reads() {
	local out
	out=$(psql_on "$COORDINATOR_PORT" -d $db -tA -c "$1" -c "SELECT count(*) FROM t WHERE 100 / v > -1" \
		-c "UPDATE t SET v = 0 WHERE k = $k1" -c "SELECT count(*) FROM t WHERE 100 / v > -1" \
		-c "SELECT count(*) FROM t WHERE 100 / v > -1" -c "UPDATE t SET v = $k1 WHERE k = $k1" \
		-c "SELECT count(*) FROM t WHERE 100 / v > -1" -c "SELECT count(*) FROM t WHERE v > 0" 2>&1)
	check_contains "the failing reads report the worker's error" "division by zero" "$out"
	check "before, after and other reads right" "600 UPDATE 1 UPDATE 1 600 600" \
		"$(grep -v ERROR <<<"$out" | grep -v CONTEXT | grep -v '^SET' | grep -v '^$' | tr '\n' ' ' | sed 's/ $//')"
	check "two reads failed" "2" "$(grep -c 'ERROR:  division by zero' <<<"$out")"
}
echo "-- a statement failing in the middle of a pipeline"
failing_reads "SET fdwshard.combine_shard_reads = off"
echo "-- a statement reading all of a worker's shards failing"
failing_reads "SET fdwshard.pool_size = 1"

q "$WORKER1_PORT" postgres "ALTER SYSTEM RESET log_statement" >/dev/null
q "$WORKER1_PORT" postgres "SELECT pg_reload_conf()" >/dev/null
q "$COORDINATOR_PORT" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null
for port in "$WORKER1_PORT" "$WORKER2_PORT"; do q "$port" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null; done
[ "$failures" -eq 0 ]
