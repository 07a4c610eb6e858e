#!/usr/bin/env bash
# Shard move benchmark (issue 12): the time to move one shard group of a 32-shard table (~30k rows per
# shard) in each direction, the longest write stall a pgbench INSERT workload sees during a move, and
# its throughput during CALL fdwshard_rebalance() against before; writes bench/results/move-<stamp>.{md,csv}.
# Usage: bash bench/move.sh [--skip-build]; parameters via environment, see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

source bench/lib.sh
bench_args "$@"
SHARD_COUNT=${SHARD_COUNT:-32}
TENANTS=${TENANTS:-10000}
ROWS_PER_TENANT=${ROWS_PER_TENANT:-100}
IDLE_ROUNDS=${IDLE_ROUNDS:-5}     # rounds of three moves (one per direction) with no other work
LOADED_ROUNDS=${LOADED_ROUNDS:-3} # the same under the pgbench INSERT workload
REBALANCES=${REBALANCES:-3}       # drain the coordinator, then rebalance under the workload
MODE=${MODE:-block_writes}        # fdwshard_move_shard's mode for the single moves (online: to the workers;
                                  # moves to the coordinator cannot go online and run in block_writes)
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
BASELINE=${BASELINE:-8} # seconds of workload before a rebalance starts (its "before" window)
SHARED_BUFFERS=${SHARED_BUFFERS:-512MB}

source test/cluster.sh # sets PG_BIN from FDWSHARD_PG_BIN

DIRECTIONS=(local_to_remote remote_to_remote remote_to_local)
# A round's three moves leave every node with the shard count it had: coordinator -> worker 1,
# worker 1 -> worker 2, worker 2 -> coordinator (nodes 1, 2, 3).
source_node() { case $1 in local_to_remote) echo 1 ;; remote_to_remote) echo 2 ;; remote_to_local) echo 3 ;; esac; }
target_node() { case $1 in local_to_remote) echo 2 ;; remote_to_remote) echo 3 ;; remote_to_local) echo 1 ;; esac; }
echo "== plan: $SHARD_COUNT shards, $((TENANTS * ROWS_PER_TENANT)) rows; $IDLE_ROUNDS x 3 moves idle," \
	"$LOADED_ROUNDS x 3 under pgbench, $REBALANCES drain + rebalance cycles (mode $MODE)"

bench_start move
for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
	psql_on "$port" -q -c "ALTER SYSTEM SET shared_buffers = '$SHARED_BUFFERS'" -c "ALTER SYSTEM SET max_wal_size = '8GB'"
done
for name in "${CLUSTER_NODES[@]}"; do node_stop "$name" && node_restart "$name"; done
C=$COORDINATOR_PORT
DB=bench_move
sql() { psql_on "$C" -d "$DB" -v ON_ERROR_STOP=1 -qAt "$@"; }
for port in "$C" "$WORKER1_PORT" "$WORKER2_PORT"; do psql_on "$port" -qc "CREATE DATABASE $DB"; done

# pgbench writes its per-transaction logs as the PostgreSQL user.
PGLOG=$WORK/pgbench
mkdir -p "$PGLOG"
[ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$PGLOG"
cp bench/workloads/insert.sql "$WORK/insert.sql"
chmod 644 "$WORK/insert.sql"

echo "== loading events: $TENANTS tenants x $ROWS_PER_TENANT rows, $SHARD_COUNT shards on the coordinator and two workers"
sql >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION fdwshard CASCADE;
SELECT fdwshard_add_node('127.0.0.1', $WORKER1_PORT);
SELECT fdwshard_add_node('127.0.0.1', $WORKER2_PORT);
CREATE TABLE events (tenant_id int NOT NULL, id bigint NOT NULL, value int NOT NULL, payload text,
                     kind text, amount numeric, touched int, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('events', 'tenant_id', shard_count := $SHARD_COUNT);
SQL
sql -c "COPY (SELECT t, i, (t * 7 + i * 13) % 1000, md5((t * 1000 + i)::text), 'k' || (t + i) % 10,
                     ((t * 31 + i * 17) % 10000) / 100.0, 0
              FROM generate_series(1, $TENANTS) t, generate_series(1, $ROWS_PER_TENANT) i ORDER BY t, i)
        TO STDOUT" | sql -c "COPY events FROM STDIN"
sql -c "VACUUM ANALYZE events" >/dev/null
ROWS=$(sql -c "SELECT count(*) FROM events")
[ "$ROWS" = $((TENANTS * ROWS_PER_TENANT)) ] || { echo "!! events has $ROWS rows, expected $((TENANTS * ROWS_PER_TENANT))" >&2; exit 1; }
PLACEMENT="SELECT string_agg(nodeid || ':' || n, ' ' ORDER BY nodeid)
           FROM (SELECT nodeid, count(*) AS n FROM fdwshard.shards WHERE table_name = 'events'::regclass GROUP BY 1) s"
echo "   $ROWS rows; shards per node (node:shards) $(sql -c "$PLACEMENT")"

now() { date +%s.%N; }

# mode_of DIRECTION: MODE, but block_writes for an online move to the coordinator (online goes to workers only).
mode_of() { if [ "$MODE" = online ] && [ "$(target_node "$1")" = 1 ]; then echo block_writes; else echo "$MODE"; fi; }

# move DIRECTION: moves a random shard of the direction's source node to its target; sets MOVED_SHARD,
# MOVED_ROWS, MOVE_SECONDS (the statement, by psql's \timing), MOVE_WAITED (the NOTICE's "writes
# waited"), MOVE_T0 and MOVE_T1 (epoch seconds around the psql call).
move() {
	local dir=$1 out
	MOVED_SHARD=$(sql -c "SELECT shardid FROM fdwshard.shards WHERE table_name = 'events'::regclass
	                      AND nodeid = $(source_node "$dir") ORDER BY random() LIMIT 1")
	MOVE_T0=$(now)
	if ! out=$(psql_on "$C" -d "$DB" -v ON_ERROR_STOP=1 -q -c '\timing on' \
		-c "SELECT fdwshard_move_shard($MOVED_SHARD, $(target_node "$dir"), '$(mode_of "$dir")')" 2>&1); then
		echo "$out" >&2
		echo "!! the move of shard $MOVED_SHARD ($dir) failed" >&2
		exit 1
	fi
	MOVE_T1=$(now)
	echo "-- move $dir shard $MOVED_SHARD" >>"$LOG"
	echo "$out" >>"$LOG"
	MOVE_SECONDS=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk '{ printf "%.3f", $1 / 1000 }')
	MOVED_ROWS=$(echo "$out" | sed -n 's/.*shards, \([0-9]*\) rows).*/\1/p')
	MOVE_WAITED=$(echo "$out" | sed -n 's/.*waited \([0-9.]*\) s.*/\1/p')
	if [ -z "$MOVE_SECONDS" ] || [ -z "$MOVED_ROWS" ]; then
		echo "!! could not read the move's time or rows from: $out" >&2
		exit 1
	fi
	[ "$(sql -c "SELECT nodeid FROM fdwshard.shards WHERE shardid = $MOVED_SHARD")" = "$(target_node "$dir")" ] ||
		{ echo "!! shard $MOVED_SHARD is not on node $(target_node "$dir") after its move" >&2; exit 1; }
}

# pgbench_start NAME SECONDS: the INSERT workload in the background, one log line per transaction.
pgbench_start() {
	PGBENCH_ROWS_BEFORE=$(sql -c "SELECT count(*) FROM events")
	PGBENCH_NAME=$1
	as_pg "$PG_BIN/pgbench" -h 127.0.0.1 -p "$C" -U postgres -n -M prepared -c "$CLIENTS" -j "$THREADS" -T "$2" \
		-D tenants="$TENANTS" -f "$WORK/insert.sql" -l --log-prefix="$PGLOG/$1" "$DB" >"$WORK/$1.out" 2>&1 &
	PGBENCH_PID=$!
	PGBENCH_T0=$(now)
}
# pgbench_finish: waits for it; checks that no transaction failed and that every committed row is there.
# Sets PGBENCH_T1 (when the last transaction ended) and TXLOG (one line per transaction:
# start-epoch end-epoch latency-ms).
pgbench_finish() {
	local processed failed rows
	wait "$PGBENCH_PID" || { cat "$WORK/$PGBENCH_NAME.out" >&2; echo "!! pgbench failed" >&2; exit 1; }
	cat "$WORK/$PGBENCH_NAME.out" >>"$LOG"
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/$PGBENCH_NAME.out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/$PGBENCH_NAME.out")
	rows=$(sql -c "SELECT count(*) FROM events")
	if [ -z "$processed" ] || [ "${failed:-0}" != 0 ] || [ "$rows" != $((PGBENCH_ROWS_BEFORE + processed)) ]; then
		cat "$WORK/$PGBENCH_NAME.out" >&2
		echo "!! $PGBENCH_NAME: $processed transactions, ${failed:-?} failed; events has $rows rows," \
			"expected $PGBENCH_ROWS_BEFORE + $processed" >&2
		exit 1
	fi
	TXLOG=$WORK/$PGBENCH_NAME.tx
	cat "$PGLOG/$PGBENCH_NAME".* | awk '{ end = $5 + $6 / 1e6; printf "%.6f %.6f %.3f\n", end - $3 / 1e6, end, $3 / 1000 }' |
		sort -n >"$TXLOG"
	[ "$(wc -l <"$TXLOG")" = "$processed" ] ||
		{ echo "!! $PGBENCH_NAME: $(wc -l <"$TXLOG") logged transactions, pgbench counted $processed" >&2; exit 1; }
	PGBENCH_T1=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { printf "%.6f", m }' "$TXLOG")
	# The workload's rows go (their ids are above the loaded ones), so every move moves ~ROWS/SHARD_COUNT rows.
	sql -c "DELETE FROM events WHERE id > $ROWS_PER_TENANT" -c "VACUUM events" >/dev/null
	[ "$(sql -c "SELECT count(*) FROM events")" = "$ROWS" ] || { echo "!! events does not have its $ROWS rows back" >&2; exit 1; }
}
# stall T0 T1: the longest latency (ms) of a transaction that was running at some point in [T0, T1].
stall() { awk -v a="$1" -v b="$2" 'BEGIN { m = 0 } $2 >= a && $1 <= b && $3 > m { m = $3 } END { printf "%.1f", m }' "$TXLOG"; }
# tps T0 T1: transactions that ended in [T0, T1], per second.
tps() { awk -v a="$1" -v b="$2" '$2 >= a && $2 <= b { n++ } END { printf "%.0f", (b > a) ? n / (b - a) : 0 }' "$TXLOG"; }
# p50 T0 T1: the median latency (ms) of the transactions that ended in [T0, T1].
p50() { awk -v a="$1" -v b="$2" '$2 >= a && $2 <= b { print $3 }' "$TXLOG" | sort -g |
	awk '{ x[++n] = $1 } END { if (n) printf "%.2f", n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2; else print "-" }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
plus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a + b }'; }

echo "kind,round,direction,shardid,rows,seconds,writes_waited_s,longest_stall_ms,tps_before,tps_during,p50_ms_before" >"$CSV"
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== moving one shard group at a time, nothing else running ($IDLE_ROUNDS rounds)"
for round in $(seq 1 "$IDLE_ROUNDS"); do
	for dir in "${DIRECTIONS[@]}"; do
		move "$dir"
		echo "idle,$round,$dir,$MOVED_SHARD,$MOVED_ROWS,$MOVE_SECONDS,$MOVE_WAITED,,,," >>"$CSV"
		printf '   round %d %-17s shard %6s %7s rows %7s s\n' "$round" "$dir" "$MOVED_SHARD" "$MOVED_ROWS" "$MOVE_SECONDS"
	done
done
IDLE_MAX=$(awk -F, '$1 == "idle" && $6 > m { m = $6 } END { print m }' "$CSV")

# Under load: pgbench runs 3 s alone, then the move, then 3 s more (its -T leaves 5 x the slowest idle move).
LEAD=3
echo "== moving under the pgbench INSERT workload (-M prepared, -c $CLIENTS; $LOADED_ROUNDS rounds)"
for round in $(seq 1 "$LOADED_ROUNDS"); do
	for dir in "${DIRECTIONS[@]}"; do
		pgbench_start "move-$round-$dir" "$(awk -v m="$IDLE_MAX" -v l="$LEAD" 'BEGIN { printf "%d", 2 * l + 2 + 5 * m }')"
		sleep "$LEAD"
		move "$dir"
		pgbench_finish
		[ "$(awk -v a="$MOVE_T1" -v b="$PGBENCH_T1" 'BEGIN { print (b > a) }')" = 1 ] ||
			{ echo "!! the workload ended before the move did: raise its duration" >&2; exit 1; }
		s=$(stall "$MOVE_T0" "$MOVE_T1")
		# "before": the seconds before the move, less pgbench's first (connections, prepared statements).
		before=$(tps "$(plus "$PGBENCH_T0" 1)" "$MOVE_T0")
		during=$(tps "$MOVE_T0" "$MOVE_T1")
		p=$(p50 "$(plus "$PGBENCH_T0" 1)" "$MOVE_T0")
		echo "loaded,$round,$dir,$MOVED_SHARD,$MOVED_ROWS,$MOVE_SECONDS,$MOVE_WAITED,$s,$before,$during,$p" >>"$CSV"
		printf '   round %d %-17s shard %6s %7s rows %7s s; longest stall %8s ms; TPS %5s before, %5s during\n' \
			"$round" "$dir" "$MOVED_SHARD" "$MOVED_ROWS" "$MOVE_SECONDS" "$s" "$before" "$during"
	done
done

echo "== rebalancing under the workload: drain the coordinator, let it take shards again, CALL fdwshard_rebalance() ($REBALANCES times)"
for round in $(seq 1 "$REBALANCES"); do
	t=$(now)
	psql_on "$C" -d "$DB" -v ON_ERROR_STOP=1 -q -c "SET client_min_messages = warning" -c "CALL fdwshard_drain_node(1)" >>"$LOG" 2>&1
	drain=$(minus "$(now)" "$t")
	[ "$(sql -c "SELECT count(*) FROM fdwshard.shards WHERE table_name = 'events'::regclass AND nodeid = 1")" = 0 ] ||
		{ echo "!! the coordinator still holds shards after fdwshard_drain_node(1)" >&2; exit 1; }
	sql -c "SELECT fdwshard_set_node_property(1, 'should_have_shards', true)" >/dev/null
	moves=$(sql -c "SELECT count(*) FROM fdwshard_rebalance_plan()")
	pgbench_start "rebalance-$round" "$(awk -v d="$drain" -v b="$BASELINE" 'BEGIN { printf "%d", b + 5 + 3 * d }')"
	sleep "$BASELINE"
	t0=$(now)
	psql_on "$C" -d "$DB" -v ON_ERROR_STOP=1 -q -c "SET client_min_messages = warning" -c "CALL fdwshard_rebalance()" >>"$LOG" 2>&1
	t1=$(now)
	pgbench_finish
	[ "$(awk -v a="$t1" -v b="$PGBENCH_T1" 'BEGIN { print (b > a) }')" = 1 ] ||
		{ echo "!! the workload ended before the rebalance did: raise its duration" >&2; exit 1; }
	[ "$(sql -c "SELECT count(*) FROM fdwshard_rebalance_plan()")" = 0 ] || { echo "!! not balanced after the rebalance" >&2; exit 1; }
	secs=$(minus "$t1" "$t0")
	# "before": the baseline window, less its first second (connections, prepared statements).
	before=$(tps "$(plus "$PGBENCH_T0" 1)" "$t0")
	during=$(tps "$t0" "$t1")
	s=$(stall "$t0" "$t1")
	p=$(p50 "$(plus "$PGBENCH_T0" 1)" "$t0")
	echo "rebalance,$round,drained_coordinator,,$moves,$(printf '%.3f' "$secs"),,$s,$before,$during,$p" >>"$CSV"
	printf '   cycle %d: drain %.1f s; rebalance of %s moves %.1f s; TPS %s before, %s during; longest stall %s ms; %s\n' \
		"$round" "$drain" "$moves" "$secs" "$before" "$during" "$s" "$(sql -c "$PLACEMENT")"
done
LOADAVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------------------------------

med() { sort -g | awk '{ x[++n] = $1 } END { if (n) printf "%.3f", n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2; else print "-" }'; }
col() { # KIND DIRECTION COLUMN: the column's values, one a line
	awk -F, -v k="$1" -v d="$2" -v c="$3" '$1 == k && (d == "" || $3 == d) && $c != "" { print $c }' "$CSV"
}
fmt() { awk -v x="$1" -v f="$2" 'BEGIN { if (x == "-") print "-"; else printf f, x }'; }
maxof() { sort -g | tail -1; }
runs() { col "$@" | paste -sd' ' -; }
STALL_MED=$(col loaded "" 8 | med)
STALL_MAX=$(col loaded "" 8 | maxof)
# The online moves alone (to the workers), for the online target.
ONLINE_STALL_MED=$( (col loaded local_to_remote 8; col loaded remote_to_remote 8) | med)
ONLINE_STALL_MAX=$( (col loaded local_to_remote 8; col loaded remote_to_remote 8) | maxof)

{
	echo "# fdwshard shard move benchmark, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "- fdwshard $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), $("$PG_BIN/postgres" --version)," \
		"$(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); load average before/after:" \
		"$LOADAVG_BEFORE / $LOADAVG_AFTER"
	echo "- one coordinator + 2 workers on this machine (test/cluster.sh settings: fsync and synchronous_commit off;" \
		"shared_buffers $SHARED_BUFFERS, max_wal_size 8GB)"
	echo "- \`events\` of bench/run.sh, $ROWS rows ($TENANTS tenants x $ROWS_PER_TENANT), $SHARD_COUNT shards" \
		"(~$((ROWS / SHARD_COUNT)) rows each) on the coordinator (node 1) and the two workers (nodes 2, 3)," \
		"no co-located table: a shard group is one shard"
	echo "- move mode: \`$MODE\` (to the coordinator: \`$(mode_of remote_to_local)\`); \`fdwshard_rebalance\` moves in" \
		"\`auto\`: online to the workers, block_writes to the coordinator. In block_writes, writes to the table wait" \
		"for the whole move; online, only for the switch; reads go on"
	echo "- workload: bench/workloads/insert.sql (single-row INSERT of a new key), pgbench -n -M prepared -c $CLIENTS" \
		"-j $THREADS, per-transaction log (-l); the longest stall is the longest latency of a transaction running" \
		"at some point during the move or rebalance; after each run every committed row is checked to be there"
	echo
	echo "## Moving one shard group"
	echo
	echo "A round moves a random shard coordinator -> worker 1, worker 1 -> worker 2, worker 2 -> coordinator." \
		"Seconds are the \`SELECT fdwshard_move_shard(...)\` statement's (psql \\timing); idle: $IDLE_ROUNDS rounds" \
		"with nothing else running; under load: $LOADED_ROUNDS rounds, each move with pgbench running" \
		"${LEAD} s before it and until after it. TPS before: those ${LEAD} s less the first; during: the" \
		"transactions that ended while the move ran."
	echo
	echo "| direction | median s, idle | median s, under load | median longest stall, ms | longest stall, ms | median TPS before | median TPS during | idle runs, s | stalls, ms |"
	echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
	for dir in "${DIRECTIONS[@]}"; do
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${dir//_/ }" \
			"$(fmt "$(col idle "$dir" 6 | med)" %.2f)" "$(fmt "$(col loaded "$dir" 6 | med)" %.2f)" \
			"$(fmt "$(col loaded "$dir" 8 | med)" %.0f)" "$(fmt "$(col loaded "$dir" 8 | maxof)" %.0f)" \
			"$(fmt "$(col loaded "$dir" 9 | med)" %.0f)" "$(fmt "$(col loaded "$dir" 10 | med)" %.0f)" \
			"$(runs idle "$dir" 6)" "$(runs loaded "$dir" 8)"
	done
	printf '| all | %s | %s | %s | %s | %s | %s | | |\n' \
		"$(fmt "$(col idle "" 6 | med)" %.2f)" "$(fmt "$(col loaded "" 6 | med)" %.2f)" "$(fmt "$STALL_MED" %.0f)" \
		"$(fmt "$STALL_MAX" %.0f)" "$(fmt "$(col loaded "" 9 | med)" %.0f)" "$(fmt "$(col loaded "" 10 | med)" %.0f)"
	echo
	echo "Rows per moved shard: median $(col idle "" 5 | med | cut -d. -f1) (idle moves); the median latency of an INSERT" \
		"before a move: $(fmt "$(col loaded "" 11 | med)" %.2f) ms."
	echo
	echo "## Throughput during a rebalance"
	echo
	echo "Each cycle: \`CALL fdwshard_drain_node(1)\` (no workload) moves every shard off the coordinator; then it may" \
		"take shards again and, with pgbench running (${BASELINE} s of baseline first), \`CALL fdwshard_rebalance()\`" \
		"moves shards back until every node is within one of the others. TPS before: the baseline less its first" \
		"second (every shard on the workers); during: transactions that ended while the rebalance ran."
	echo
	echo "A \`block_writes\` move locks the distributed table itself against writes (\`EXCLUSIVE\`), not only the" \
		"moving shard: every INSERT waits for each move, and as the rebalance's moves follow one another" \
		"(a commit between two), writes get through only between moves."
	echo
	echo "| cycle | moves | rebalance s | TPS before | TPS during | during / before | longest stall, ms |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	awk -F, '$1 == "rebalance" { printf "| %s | %s | %.1f | %s | %s | %.2f | %.0f |\n", $2, $5, $6, $9, $10, $10 / $9, $8 }' "$CSV"
	printf '| median | %s | %s | %s | %s | %s | %s |\n' "$(col rebalance "" 5 | med | cut -d. -f1)" \
		"$(fmt "$(col rebalance "" 6 | med)" %.1f)" "$(fmt "$(col rebalance "" 9 | med)" %.0f)" \
		"$(fmt "$(col rebalance "" 10 | med)" %.0f)" \
		"$(awk -F, '$1 == "rebalance" { print $10 / $9 }' "$CSV" | med | xargs printf '%.2f')" \
		"$(fmt "$(col rebalance "" 8 | med)" %.0f)"
	echo
	echo "## Target (issue 12)"
	echo
	echo "| target | this run | |"
	echo "|---|---|---|"
	if [ "$MODE" = online ]; then
		echo "| write stall < 1 s per move, online mode (the moves to the workers) | longest stall per move: median" \
			"$(fmt "$ONLINE_STALL_MED" %.0f) ms, max $(fmt "$ONLINE_STALL_MAX" %.0f) ms |" \
			"$(awk -v m="$ONLINE_STALL_MAX" 'BEGIN { print (m < 1000) ? "**met**" : "**not met**" }') |"
	else
		echo "| write stall < 1 s per move, online mode | \`$MODE\` measured, not online: longest stall per move" \
			"median $(fmt "$STALL_MED" %.0f) ms, max $(fmt "$STALL_MAX" %.0f) ms (writes wait for the whole move)" \
			"| **not measured** (online mode: \`MODE=online bash bench/move.sh\` once it exists) |"
	fi
} >"$REPORT"
echo
cat "$REPORT"
echo
echo "== wrote $REPORT, $CSV and $LOG"
