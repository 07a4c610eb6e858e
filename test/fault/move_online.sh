#!/usr/bin/env bash
# Online shard moves under load and under failure. (1) pgbench -M prepared inserts and updates
# rows and a writer (one session per statement) inserts, updates and deletes rows, recording what
# was acknowledged, while shard groups move online from the coordinator to the workers and back
# and forth between the workers (once in mode auto, which picks online): no client error, every acknowledged row there exactly once
# with its last update, each move's reported write stall under 1 s (printed), and another
# session sees the phases in fdwshard.rebalance_progress. (2) A move cancelled while it copies and
# (3) a move whose target stops while it copies leave the shard where it was, serving, with no
# slot, publication or subscription left on any node (after (3), once the next move cleaned up
# what the stopped target kept); the same moves then succeed. (4) Neither does a coordinator
# restart while a move copies: the next move cleans up what was left and succeeds.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_move_online
fresh_db $db
C=$COORDINATOR_PORT
W=(x "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT") # by nodeid
work=$(mktemp -d)
chmod 777 "$work"
q $C $db "CREATE TABLE t (k bigint PRIMARY KEY, v int, src text);
          SELECT create_distributed_table('t', 'k', shard_count := 4);
          CREATE TABLE t2 (k bigint, n int, PRIMARY KEY (k, n));
          SELECT create_distributed_table('t2', 'k', shard_count := 4, colocate_with := 't');
          INSERT INTO t SELECT g, 0, 'old' FROM generate_series(1, 40000) g;
          INSERT INTO t2 SELECT g, 1 FROM generate_series(1, 40000, 4) g" >/dev/null
shard_of() { q $C $db "SELECT shardid FROM fdwshard.shards WHERE table_name = 't'::regclass ORDER BY shardid LIMIT 1 OFFSET $1"; }
node_of() { q $C $db "SELECT nodeid FROM fdwshard.shards WHERE shardid = $1"; }
move() { # SHARDID NODEID [MODE [PGOPTIONS]]: the move's NOTICE detail or its error on stdout
	PGOPTIONS="${4:-}" timeout 120 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -qAt -v ON_ERROR_STOP=1 \
	    -c 'SELECT fdwshard_move_shard($1, $2, \$\$${3:-online}\$\$)'" 2>&1 | grep -v '^NOTICE: \|^$'
}
# leftovers: replication slots, publications and subscriptions on the three nodes
leftovers() {
	local out="" port
	for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
		out="$out$(q "$port" $db "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_subscription)")"
	done
	echo "$out"
}

# (1) Online moves while clients write.
writer() { # one session per statement: inserts id i, updates it, deletes every 10th; each acknowledged step to a file
	local i=$1
	while [ ! -f "$work/stop" ]; do
		if psql_on $C -d $db -qAt -c "INSERT INTO t VALUES ($i, 1, 'writer')" >/dev/null 2>>"$work/writer.err"; then
			echo "$i" >>"$work/inserted"
			if psql_on $C -d $db -qAt -c "UPDATE t SET v = 2 WHERE k = $i" >/dev/null 2>>"$work/writer.err"; then
				echo "$i" >>"$work/updated"
			else
				echo "$i" >>"$work/failed"
			fi
			if [ $((i % 10)) = 0 ]; then
				if psql_on $C -d $db -qAt -c "DELETE FROM t WHERE k = $i" >/dev/null 2>>"$work/writer.err"; then
					echo "$i" >>"$work/deleted"
				else
					echo "$i" >>"$work/failed"
				fi
			fi
		else
			echo "$i" >>"$work/failed"
		fi
		i=$((i + 1))
	done
}
cat >"$work/bench.sql" <<'SQL'
\set id random(1000000000, 9000000000000)
\set old random(1, 40000)
INSERT INTO t VALUES (:id, 0, 'pgbench');
UPDATE t SET v = v + 1 WHERE k = :id;
UPDATE t SET v = v + 1 WHERE k = :old;
SQL
# Another session polls fdwshard.rebalance_progress: the phases it saw.
cat >"$work/poll.sql" <<'SQL'
DO $$
DECLARE phases text[] := '{}'; p record;
BEGIN
    FOR i IN 1 .. 4000 LOOP
        FOR p IN SELECT phase FROM fdwshard.rebalance_progress LOOP
            IF NOT p.phase = ANY (phases) THEN phases := phases || p.phase; END IF;
        END LOOP;
        PERFORM pg_sleep(0.002);
    END LOOP;
    RAISE NOTICE 'phases: %', array_to_string(ARRAY(SELECT unnest(phases) ORDER BY 1), ',');
END $$;
SQL
: >"$work/inserted"
: >"$work/updated"
: >"$work/deleted"
: >"$work/failed"
writer 100000 &
writer_pid=$!
(cd "$work" && as_pg timeout 120 pgbench -n -h 127.0.0.1 -p $C -U postgres -c 2 -j 1 -T 8 -M prepared -l \
	-f "$work/bench.sql" $db >"$work/pgbench.out" 2>&1) &
pgbench_pid=$!
timeout 120 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -qAt -f '$work/poll.sql'" >"$work/poll.out" 2>&1 &
poller=$!
sleep 1
moves=0 move_errors="" stalls="" auto_detail=""
for round in 1 2; do
	for index in 0 1 2 3; do
		shard=$(shard_of $index)
		from=$(node_of "$shard")
		to=$((from % 3 + 1))
		[ "$to" = 1 ] && to=2 # online moves go to workers
		mode=online
		[ "$round$index" = 21 ] && mode=auto
		out=$(move "$shard" "$to" $mode)
		stall=$(sed -n 's/^DETAIL:  Online: writes to their tables waited \([0-9.]*\) s, for the switch\.$/\1/p' <<<"$out")
		if [ -n "$stall" ]; then
			moves=$((moves + 1))
			stalls="$stalls $stall"
		else
			move_errors="$move_errors [$out]"
		fi
		[ $mode = auto ] && auto_detail=$out
	done
done
wait $pgbench_pid
touch "$work/stop"
wait $writer_pid $poller
echo "   write stalls reported by the 8 online moves (s):$stalls"
check "8 online moves made under load" "8|" "$moves|$move_errors"
check_contains "mode auto moved online" "Online: writes to their tables waited" "$auto_detail"
check "every reported write stall under 1 s" "yes" "$(awk -v s="$stalls" 'BEGIN { n = split(s, a, " "); ok = n > 0; for (i = 1; i <= n; i++) if (a[i] >= 1.0) ok = 0; print ok ? "yes" : "no" }')"
if ls "$work"/pgbench_log.* >/dev/null 2>&1; then
	echo "   longest pgbench transaction (3 statements), as its client saw it: $(cat "$work"/pgbench_log.* | awk '$3 > m { m = $3 } END { printf "%.3f s", m / 1000000 }')"
fi
check_contains "another session saw the phases in fdwshard.rebalance_progress" "catching up,copying,starting,switching" "$(cat "$work/poll.out")"
check "every group left the coordinator" "0" "$(q $C $db "SELECT count(*) FROM fdwshard.shards WHERE nodeid = 1")"
check "no client statement of the writer failed ($(head -c 300 "$work/writer.err"))" "0" "$(wc -l <"$work/failed")"
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pgbench.out")
check "pgbench -M prepared: no failed transaction ($(grep -m1 -i error "$work/pgbench.out"))" "0" "${failed:-none}"
check "pgbench: every row there once, with its last update" "${processed:-none}|${processed:-none}|0" \
	"$(q $C $db "SELECT count(*), count(DISTINCT k), count(*) FILTER (WHERE v <> 1) FROM t WHERE src = 'pgbench'")"
check "pgbench: every update of the old rows there (sum of v)" "${processed:-none}" "$(q $C $db "SELECT sum(v) FROM t WHERE src = 'old'")"
inserted=$(wc -l <"$work/inserted")
check "the writer made progress (at least 30 rows)" "yes" "$([ "$inserted" -ge 30 ] && echo yes || echo no)"
for f in inserted updated deleted; do
	q $C $db "CREATE TABLE acked_$f (k bigint)" >/dev/null
	psql_on $C -d $db -qAt -c "COPY acked_$f FROM STDIN" <"$work/$f"
done
check "the writer's rows: each kept one there once with its update, each deleted one gone" "0|0|0" \
	"$(q $C $db "SELECT (SELECT count(*) FROM acked_inserted a WHERE NOT EXISTS (SELECT 1 FROM acked_deleted d WHERE d.k = a.k)
	                    AND (SELECT count(*) FROM t WHERE t.k = a.k) <> 1),
	                   (SELECT count(*) FROM acked_updated u JOIN t USING (k) WHERE t.v <> 2),
	                   (SELECT count(*) FROM acked_deleted d JOIN t USING (k))")"
check "the old rows intact" "40000|800020000|10000" "$(q $C $db "SELECT count(*), sum(k), (SELECT count(*) FROM t2) FROM t WHERE src = 'old'")"
check "no slot, publication or subscription on any node" "000" "$(leftovers)"
check "no marked copy or marker table left on any node" "000" \
	"$(for port in $C $WORKER1_PORT $WORKER2_PORT; do q "$port" $db "SELECT count(*) FROM pg_class WHERE relname LIKE 'fdwshard%'"; done | tr -d '\n')"
for node in 1 2 3; do
	check "node $node holds exactly the tables of its shards" \
		"$(q $C $db "SELECT count(*) FROM fdwshard.shards WHERE nodeid = $node")" \
		"$(q "${W[$node]}" $db "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind = 'r' AND relname ~ '^t2?_[0-9]+$'")"
done

# A group with 150,000 more rows, on a worker, for moves that fail while they copy.
shard=$(shard_of 1)
from=$(node_of "$shard")
to=$((5 - from)) # the other worker
check "150,000 more rows in that shard" "INSERT 0 150000" \
	"$(psql_on $C -d $db -At -c "INSERT INTO t SELECT k, 3, 'bulk' FROM generate_series(10000000, 10750000) k
	                              WHERE get_shard_id_for_distribution_column('t', k) = $shard LIMIT 150000" 2>&1)"
before=$(q $C $db "SELECT count(*), sum(k), sum(v) FROM t")
key=$(q $C $db "SELECT min(k) FROM t WHERE get_shard_id_for_distribution_column('t', k) = $shard")
# wait_for_copying: until fdwshard.rebalance_progress shows the move copying (at most 20 s)
wait_for_copying() {
	for _ in $(seq 1 400); do
		[ "$(q $C $db "SELECT count(*) FROM fdwshard.rebalance_progress WHERE phase = 'copying'")" = 1 ] && return 0
		sleep 0.05
	done
	return 1
}

# (2) Cancelled while it copies.
move "$shard" "$to" online >"$work/cancelled.out" &
mover=$!
wait_for_copying
check "the move reached its copy" "1" "$(q $C $db "SELECT pg_cancel_backend(pid)::int FROM fdwshard.rebalance_progress WHERE phase = 'copying'")"
wait $mover
check_contains "the cancelled move fails" "canceling statement due to user request" "$(cat "$work/cancelled.out")"
check "the shard stays where it was" "$from" "$(node_of "$shard")"
check "its rows are served and writable" "1|UPDATE 1" "$(q $C $db "SELECT count(*) FROM t WHERE k = $key")|$(psql_on $C -d $db -At -c "UPDATE t SET v = v WHERE k = $key" 2>&1)"
check "no slot, publication or subscription on any node" "000" "$(leftovers)"
check "nothing left on the target" "0" "$(q "${W[$to]}" $db "SELECT count(*) FROM pg_class WHERE relname IN ('t_$shard', 't2_$((shard + 4))') OR relname LIKE 'fdwshard%'")"
check "no row lost or doubled" "$before" "$(q $C $db "SELECT count(*), sum(k), sum(v) FROM t")"

# (3) The target stops while it copies; it comes back; the next move cleans up and succeeds.
target_name=worker$((to - 1))
move "$shard" "$to" online >"$work/stopped.out" &
mover=$!
wait_for_copying
node_stop "$target_name"
wait $mover
check_contains "the move to the stopped target fails" "ERROR" "$(cat "$work/stopped.out")"
check "the shard stays where it was" "$from" "$(node_of "$shard")"
check "its rows are served and writable" "1|UPDATE 1" "$(q $C $db "SELECT count(*) FROM t WHERE k = $key")|$(psql_on $C -d $db -At -c "UPDATE t SET v = v WHERE k = $key" 2>&1)"
check "nothing left on the source" "0" "$(q "${W[$from]}" $db "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)")"
node_restart "$target_name"
out=$(move "$shard" "$to" online)
check_contains "the same move then succeeds" "Online: writes to their tables waited" "$out"
check "the shard moved" "$to" "$(node_of "$shard")"
check "no slot, publication or subscription on any node" "000" "$(leftovers)"
check "every row after it" "$before" "$(q $C $db "SELECT count(*), sum(k), sum(v) FROM t")"

# (4) The coordinator restarts while a move copies: the next move cleans up and succeeds.
from=$to
to=$((5 - from))
move "$shard" "$to" online >"$work/restarted.out" &
mover=$!
wait_for_copying
node_stop coordinator
node_restart coordinator
wait $mover
check "the shard stays where it was after the restart" "$from" "$(node_of "$shard")"
check "its rows are served" "$before" "$(q $C $db "SELECT count(*), sum(k), sum(v) FROM t")"
check "the move left its replication behind" "yes" "$([ "$(leftovers)" != 000 ] && echo yes || echo no)"
out=$(move "$shard" "$to" online)
check_contains "the next move succeeds" "Online: writes to their tables waited" "$out"
check "no slot, publication or subscription on any node" "000" "$(leftovers)"
check "no marked copy or marker table left on any node" "000" \
	"$(for port in $C $WORKER1_PORT $WORKER2_PORT; do q "$port" $db "SELECT count(*) FROM pg_class WHERE relname LIKE 'fdwshard%'"; done | tr -d '\n')"
check "every row after it" "$before" "$(q $C $db "SELECT count(*), sum(k), sum(v) FROM t")"
check "nothing prepared left on the workers" "0|0" "$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")|$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")"

rm -rf "$work"
exit $((failures > 0))
