#!/usr/bin/env bash
# Shard moves in mode block_writes under load and under failure (online moves: move_online.sh).
# (1) Two writers (separate sessions per insert, and pgbench -M prepared) and a reader run while
# every shard group moves around the coordinator and both workers twice: no client sees an error, every acknowledged row is there exactly once.
# The reader's sum of the old rows reads each worker's shards with one statement, and is always right.
# (2) A second move of a group that is moving fails at once. (3) A move to a stopped worker and a
# move cancelled half-way leave the shard where it was, serving, with nothing on the target; the
# same moves then succeed.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_move_shard
fresh_db $db
C=$COORDINATOR_PORT
W=(x "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT") # by nodeid
work=$(mktemp -d)
chmod 777 "$work"
q $C $db "CREATE TABLE t (k bigint PRIMARY KEY, v int, src text);
          SELECT create_distributed_table('t', 'k', shard_count := 6);
          CREATE TABLE t2 (k bigint, n int);
          SELECT create_distributed_table('t2', 'k', shard_count := 6, colocate_with := 't');
          INSERT INTO t SELECT g, 0, 'old' FROM generate_series(1, 30000) g;
          INSERT INTO t2 SELECT g, 1 FROM generate_series(1, 30000, 3) g" >/dev/null
shard_of() { q $C $db "SELECT shardid FROM fdwshard.shards WHERE table_name = 't'::regclass ORDER BY shardid LIMIT 1 OFFSET $1"; }
node_of() { q $C $db "SELECT nodeid FROM fdwshard.shards WHERE shardid = $1"; }
move() { # SHARDID NODEID [PGOPTIONS]: the move's error, if any, on stdout
	PGOPTIONS="${3:-}" timeout 120 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -qAt -v ON_ERROR_STOP=1 \
	    -c 'SET client_min_messages = warning' -c 'SELECT fdwshard_move_shard($1, $2, \$\$block_writes\$\$)'" 2>&1
}
# tables_on NODEID SHARDID: shard tables of the group of SHARDID (t_<id>, t2_<id + 6>) on that node
tables_on() {
	q "${W[$1]}" $db "SELECT count(*) FROM pg_class WHERE relname IN ('t_$2', 't2_$(($2 + 6))') AND relkind IN ('r', 'f')"
}

# (1) Moves while clients write and read.
writer() { # FIRST: one session per INSERT, ids FIRST.., each acknowledged id to a file
	local i=$1
	while [ ! -f "$work/stop" ]; do
		if psql_on $C -d $db -qAt -c "INSERT INTO t VALUES ($i, 1, 'writer')" >/dev/null 2>>"$work/writer.err"; then
			echo "$i" >>"$work/acked"
		else
			echo "$i" >>"$work/failed"
		fi
		i=$((i + 1))
	done
}
reader() {
	local old
	while [ ! -f "$work/stop" ]; do
		psql_on $C -d $db -qAt -c "SELECT count(*) FROM t JOIN t2 USING (k)" >/dev/null 2>>"$work/reader.err" ||
			echo x >>"$work/reader.failed"
		# One pool connection per worker: each reads its shards with one statement while they move.
		old=$(psql_on $C -d $db -qAt -c "SET fdwshard.pool_size = 1" \
			-c "SELECT count(*), sum(k) FROM t WHERE src = 'old'" 2>>"$work/reader.err")
		[ "$old" = "30000|450015000" ] || echo "combined read: $old" >>"$work/reader.failed"
		sleep 0.05
	done
}
cat >"$work/bench.sql" <<'SQL'
\set id random(1000000000, 9000000000000)
INSERT INTO t VALUES (:id, 2, 'pgbench');
SQL
: >"$work/acked"
: >"$work/failed"
writer 100000 &
writer_pid=$!
reader &
reader_pid=$!
as_pg timeout 300 pgbench -n -h 127.0.0.1 -p $C -U postgres -c 2 -j 1 -T 25 -M prepared -f "$work/bench.sql" $db \
	>"$work/pgbench.out" 2>&1 &
pgbench_pid=$!
sleep 1
moves=0 move_errors=""
for round in 1 2; do
	for index in 0 1 2 3 4 5; do
		shard=$(shard_of $index)
		from=$(node_of "$shard")
		to=$(((from + round - 1) % 3 + 1))
		[ "$to" = "$from" ] && to=$((from % 3 + 1))
		out=$(move "$shard" "$to")
		if [ -z "$out" ]; then moves=$((moves + 1)); else move_errors="$move_errors $out"; fi
	done
done
wait $pgbench_pid
touch "$work/stop"
wait $writer_pid $reader_pid
check "12 moves made under load" "12|" "$moves|$move_errors"
check "every group visited another node" "yes" "$(q $C $db "SELECT CASE WHEN count(DISTINCT nodeid) = 3 THEN 'yes' ELSE 'no' END FROM fdwshard.shards")"
acked=$(wc -l <"$work/acked")
check "the writer's inserts were all acknowledged (none failed: $(head -c 300 "$work/writer.err" 2>/dev/null))" "0" "$(wc -l <"$work/failed" 2>/dev/null || echo 0)"
check "the writer made progress (at least 50 rows)" "yes" "$([ "$acked" -ge 50 ] && echo yes || echo no)"
q $C $db "CREATE TABLE acked (k bigint)" >/dev/null
psql_on $C -d $db -qAt -c "COPY acked FROM STDIN" <"$work/acked"
check "every acknowledged row there exactly once" "$acked|$acked|0" \
	"$(q $C $db "SELECT count(*), count(DISTINCT t.k), (SELECT count(*) FROM t WHERE src = 'writer' AND k NOT IN (SELECT k FROM acked)) FROM t JOIN acked USING (k)")"
check "the reader saw no error ($(head -c 300 "$work/reader.err" 2>/dev/null)$(head -c 200 "$work/reader.failed" 2>/dev/null))" "0" \
	"$(cat "$work/reader.failed" 2>/dev/null | wc -l)"
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pgbench.out")
check "pgbench -M prepared: no failed transaction ($(grep -m1 -i error "$work/pgbench.out"))" "0" "${failed:-none}"
check "pgbench -M prepared: every transaction's row there" "${processed:-none}" "$(q $C $db "SELECT count(*) FROM t WHERE src = 'pgbench'")"
check "the old rows intact" "30000|450015000|10000" "$(q $C $db "SELECT count(*), sum(k), (SELECT count(*) FROM t2) FROM t WHERE src = 'old'")"
check "nothing prepared left on the workers" "0|0" "$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")|$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")"
for node in 1 2 3; do
	check "node $node holds exactly the tables of its shards" \
		"$(q $C $db "SELECT count(*) FROM fdwshard.shards WHERE nodeid = $node")" \
		"$(q "${W[$node]}" $db "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind = 'r' AND relname ~ '^t2?_[0-9]+$'")"
done

# (1b) A write that commits while the move waits for its lock moves with the shard (from the
# coordinator and from a worker).
for source in 1 2; do
	shard=$(q $C $db "SELECT shardid FROM fdwshard.shards WHERE table_name = 't'::regclass AND nodeid = $source ORDER BY shardid LIMIT 1")
	key=$(q $C $db "SELECT k FROM generate_series(20000000, 20010000) k WHERE get_shard_id_for_distribution_column('t', k) = $shard LIMIT 1")
	timeout 60 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -qAt -c 'BEGIN' \
	    -c \"INSERT INTO t VALUES ($key, 5, 'late')\" -c 'SELECT pg_sleep(2)' -c 'COMMIT'" >/dev/null 2>&1 &
	late=$!
	sleep 0.5
	out=$(move "$shard" 3)
	wait $late
	check "node $source: the move waited for the write and succeeded" "|3" "$out|$(node_of "$shard")"
	check "node $source: the write's row moved with the shard" "1" "$(q $C $db "SELECT count(*) FROM t WHERE k = $key")"
done

# (2) A second move of a moving group fails at once.
shard=$(shard_of 0)
from=$(node_of "$shard")
to=$((from % 3 + 1))
other=$(((from + 1) % 3 + 1))
timeout 60 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -qAt -c 'SET client_min_messages = warning' \
    -c 'BEGIN' -c 'SELECT fdwshard_move_shard($shard, $to)' -c 'SELECT pg_sleep(4)' -c 'COMMIT'" >/dev/null 2>&1 &
first=$!
sleep 1.5
start=$(date +%s)
out=$(move "$shard" "$other")
check_contains "a second move of the group is refused" "is being moved by another session" "$out"
check "refused at once" "yes" "$([ $(($(date +%s) - start)) -lt 3 ] && echo yes || echo no)"
wait $first
check "the first move committed" "$to" "$(node_of "$shard")"

# (3) A move to a stopped worker, then a move cancelled half-way: nothing changes.
shard=$(shard_of 1)
from=$(node_of "$shard")
[ "$from" = 3 ] && { move "$shard" 2 >/dev/null; from=2; }
check "100,000 more rows in that shard" "INSERT 0 100000" \
	"$(psql_on $C -d $db -At -c "INSERT INTO t SELECT k, 3, 'bulk' FROM generate_series(10000000, 10700000) k
	                              WHERE get_shard_id_for_distribution_column('t', k) = $shard LIMIT 100000" 2>&1)"
key=$(q $C $db "SELECT min(k) FROM t WHERE get_shard_id_for_distribution_column('t', k) = $shard")
node_stop worker2
out=$(move "$shard" 3)
check_contains "a move to a stopped worker fails" "could not connect" "$out"
check "the shard stays where it was" "$from" "$(node_of "$shard")"
check "its rows are served" "1" "$(q $C $db "SELECT count(*) FROM t WHERE k = $key")"
node_restart worker2
check "nothing made on the target" "0" "$(tables_on 3 "$shard")"
check "the source keeps its tables" "2" "$(tables_on "$from" "$shard")"

before=$(q $C $db "SELECT count(*), sum(k) FROM t")
# The source's shard table locked on its worker: the move makes the target's table, then waits to read.
source_port=${W[$from]}
timeout 60 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $source_port -d $db -qAt -c 'BEGIN' \
    -c 'LOCK TABLE public.t_$shard IN ACCESS EXCLUSIVE MODE' -c 'SELECT pg_sleep(20)' -c 'COMMIT'" >/dev/null 2>&1 &
locker=$!
for _ in $(seq 1 100); do
	[ "$(q "$source_port" $db "SELECT count(*) FROM pg_locks WHERE relation = 'public.t_$shard'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
	sleep 0.1
done
move "$shard" 3 "-c statement_timeout=3s" >"$work/cancelled.out" &
mover=$!
seen=""
for _ in $(seq 1 50); do
	seen=$(q $C $db "SELECT format('%s %s->%s %s %s', shardid, source_node, target_node, phase, shard_table) FROM fdwshard.rebalance_progress")
	[[ $seen == *copying* ]] && break # "starting" comes first, for a moment
	sleep 0.05
done
check "fdwshard.rebalance_progress shows the move from another session" "$shard $from->3 copying t_$shard" "$seen"
wait $mover
out=$(cat "$work/cancelled.out")
check "and nothing once it failed" "0" "$(q $C $db "SELECT count(*) FROM fdwshard.rebalance_progress")"
kill $locker 2>/dev/null
q "$source_port" postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()" >/dev/null
wait $locker 2>/dev/null
check_contains "a move cancelled half-way fails" "canceling statement due to statement timeout" "$out"
check "the shard stays where it was" "$from" "$(node_of "$shard")"
check "nothing left on the target" "0" "$(tables_on 3 "$shard")"
check "no row lost or doubled" "$before" "$(q $C $db "SELECT count(*), sum(k) FROM t")"
out=$(move "$shard" 3)
check "the same move then succeeds" "|3" "$out|$(node_of "$shard")"
check "every row after it" "$before" "$(q $C $db "SELECT count(*), sum(k) FROM t")"
check "nothing prepared left on the workers" "0|0" "$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")|$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")"

rm -rf "$work"
exit $((failures > 0))
