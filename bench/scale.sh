#!/usr/bin/env bash
# Scale benchmark (issue 14): one coordinator and 8 workers on this machine, shard counts 32 to 4096:
# create_distributed_table and DROP TABLE, router point SELECT, count(*), a backend's memory;
# medians and ratios to the first shard count; writes bench/results/scale-<timestamp>.{md,csv,log}.
# Usage: bash bench/scale.sh [--skip-build]; SHARD_COUNTS, REPEATS, WORKERS, BENCH_VERSION (the build's name in the report), ... via environment.
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
bench_args "$@"
VERSION=${BENCH_VERSION:-$(git describe --always --dirty 2>/dev/null || echo unknown)} # before the run: commits may follow
SHARD_COUNTS=${SHARD_COUNTS:-32 1024 4096}
REPEATS=${REPEATS:-3}
WORKERS=${WORKERS:-8}
ROWS=${ROWS:-100000}
DURATION=${DURATION:-8}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
COUNT_RUNS=${COUNT_RUNS:-5}
MEM_TABLES=${MEM_TABLES:-20}
MEM_SHARDS=${MEM_SHARDS:-256}
MANY_CLIENTS=${MANY_CLIENTS:-200}            # the clients step: workers at WORKER_MAX_CONNECTIONS
WORKER_MAX_CONNECTIONS=${WORKER_MAX_CONNECTIONS:-100}
SHARED_BUFFERS=${SHARED_BUFFERS:-32MB}
MAX_LOCKS=${MAX_LOCKS:-1024}

# The servers' directories on a tmpfs when there is one: creating and dropping thousands of
# tables is file-system work, and the shared disk's write-back made it vary 3x run to run.
if [ -z "${FDWSHARD_CLUSTER_ROOT:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export FDWSHARD_CLUSTER_ROOT=/dev/shm; fi
source test/cluster.sh # sets PG_BIN from FDWSHARD_PG_BIN
declare -A PLANNING JIT
read -ra counts <<<"$SHARD_COUNTS"
BASE=${counts[0]}
echo "== plan: shard counts ${counts[*]} on $WORKERS workers, $REPEATS runs of each measurement"

# The point SELECTs' floor (below): a client of our own, built against libpq.
bench_start scale
cc -O2 -o "$WORK/table_router" bench/table_router.c -I"$("$PG_BIN/pg_config" --includedir)" -lpq -lpthread
W=("$WORKER1_PORT" "$WORKER2_PORT")
# Workers 3..WORKERS: servers of their own in the cluster's directory, stopped by cluster_stop.
for i in $(seq 3 "$WORKERS"); do
	extra_node_start "worker$i" <<-CONF
		max_prepared_transactions = 20
		max_connections = 120
		synchronous_commit = off
		full_page_writes = off
	CONF
	CLUSTER_NODES+=("worker$i")
	port_var="WORKER${i}_PORT"
	W+=("${!port_var}")
done
C=$COORDINATOR_PORT
# Every server: SHARED_BUFFERS, no autovacuum, locks for one transaction over thousands of shards.
for port in "$C" "${W[@]}"; do
	psql_on "$port" -q -c "ALTER SYSTEM SET shared_buffers = '$SHARED_BUFFERS'" -c "ALTER SYSTEM SET autovacuum = off" \
		-c "ALTER SYSTEM SET max_locks_per_transaction = $MAX_LOCKS" -c "ALTER SYSTEM SET max_wal_size = '8GB'"
done
for name in "${CLUSTER_NODES[@]}"; do node_stop "$name" && node_restart "$name"; done

for port in "$C" "${W[@]}"; do sql "$port" postgres -c "CREATE DATABASE scale"; done
sql "${W[0]}" postgres -c "CREATE DATABASE native" # the reference: PostgreSQL's own partitioning on one server
sql "$C" scale >/dev/null <<-SQL
	SET client_min_messages = warning;
	CREATE EXTENSION fdwshard CASCADE;
	SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
SQL
for port in "${W[@]}"; do sql "$C" scale -c "SELECT fdwshard_add_node('127.0.0.1', $port)" >/dev/null; done

echo "what,shards,round,value" >"$CSV"
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
record() { # WHAT SHARDS ROUND VALUE
	echo "$1,$2,$3,$4" >>"$CSV"
	printf '   %-16s %5s shards  round %s  %s\n' "$1" "$2" "$3" "$4"
}
# timed DB STATEMENT LABEL: the statement's ms (psql \timing) in ms; exits on an error.
timed() {
	local out
	echo "-- $3" >>"$LOG"
	if ! out=$(psql_on "$C" -d "$1" -v ON_ERROR_STOP=1 -c '\timing on' -c "$2" 2>&1); then
		echo "$out" >>"$LOG"
		echo "!! $3 failed: $(echo "$out" | tail -5)" >&2
		exit 1
	fi
	echo "$out" >>"$LOG"
	ms=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
}
# orphans: shard tables left on the workers (none expected once every table is dropped but pt).
worker_tables() {
	local port n=0
	for port in "${W[@]}"; do
		n=$((n + $(sql "$port" scale -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")))
	done
	echo "$n"
}

cat >"$WORK/select.sql" <<-SQL
	\set id random(1, $ROWS)
	SELECT v FROM pt WHERE id = :id;
SQL
chmod 644 "$WORK/select.sql"

# cpu_us PID...: their CPU time so far (schedstat), in µs.
cpu_us() {
	local pid total=0 v
	for pid in "$@"; do
		v=$(awk '{ print $1 }' "/proc/$pid/schedstat" 2>/dev/null || true)
		total=$((total + ${v:-0}))
	done
	echo $((total / 1000))
}
# worker_pids: every process of the workers' servers.
worker_pids() {
	local name pm
	for name in "${CLUSTER_NODES[@]}"; do
		[ "$name" = coordinator ] && continue
		pm=$(head -1 "$CLUSTER_DIR/$name/postmaster.pid")
		echo "$pm" $(ps -o pid= --ppid "$pm")
	done
}
# first_use MODE N: a session's first use of each of pt's N shards, as extra CPU per shard: one new
# session (its connections opened first on another table), a point query on each shard, then the
# same pass again; the first pass's CPU minus the second's, of the coordinator backend and of the
# workers, in µs per shard (records first_use_MODE_coordinator and first_use_MODE_workers).
first_use() {
	local mode=$1 n=$2 fifo out pid k c0 w0 c1 w1 pass
	fifo=$WORK/first_use.fifo out=$WORK/first_use.out
	rm -f "$fifo" "$out"; mkfifo "$fifo"; chmod 666 "$fifo"; : >"$out"; chmod 666 "$out"
	psql_on "$C" -d scale -At <"$fifo" >"$out" 2>&1 &
	exec 7>"$fifo"
	echo "SELECT 'pid', pg_backend_pid();" >&7
	for k in $(seq 1 64); do echo "SELECT v FROM warmup.warm WHERE id = $k;" >&7; done
	[ "$mode" = prepared ] && echo 'PREPARE get(int) AS SELECT v FROM pt WHERE id = $1;' >&7
	echo "SELECT 'ready';" >&7
	until grep -q '^ready$' "$out"; do sleep 0.05; done
	pid=$(sed -n 's/^pid|//p' "$out")
	for pass in 1 2; do
		c0=$(cpu_us "$pid"); w0=$(cpu_us $(worker_pids))
		if [ "$mode" = prepared ]; then sed 's/.*/EXECUTE get(&);/' "$WORK/ids" >&7
		else sed 's/.*/SELECT v FROM pt WHERE id = &;/' "$WORK/ids" >&7; fi
		echo "SELECT 'pass $pass';" >&7
		until grep -q "^pass $pass\$" "$out"; do sleep 0.05; done
		c1=$(cpu_us "$pid"); w1=$(cpu_us $(worker_pids))
		eval "coordinator_$pass=$((c1 - c0)) workers_$pass=$((w1 - w0))"
	done
	exec 7>&-
	wait
	grep -q ERROR "$out" && { echo "!! first_use $mode: $(grep ERROR "$out" | head -1)" >&2; exit 1; }
	record "first_use_${mode}_coordinator" "$n" 1 "$(awk -v a="$coordinator_1" -v b="$coordinator_2" -v n="$n" 'BEGIN { printf "%.1f", (a - b) / n }')"
	record "first_use_${mode}_workers" "$n" 1 "$(awk -v a="$workers_1" -v b="$workers_2" -v n="$n" 'BEGIN { printf "%.1f", (a - b) / n }')"
}
# warmup.warm: a shard on each worker, for first_use to open its connections (not in public: worker_tables).
sql "$C" scale >/dev/null <<-SQL
	CREATE SCHEMA warmup;
	CREATE TABLE warmup.warm (id int PRIMARY KEY, v int);
	SELECT create_distributed_table('warmup.warm', 'id', shard_count := $WORKERS, colocate_with := 'none');
	INSERT INTO warmup.warm SELECT i, i FROM generate_series(1, 64) i;
SQL

for n in "${counts[@]}"; do
	echo "== $n shards"
	# create_distributed_table of an empty table, then DROP TABLE, REPEATS times.
	for round in $(seq 1 "$REPEATS"); do
		sql "$C" scale -c "CREATE TABLE ddl (id int PRIMARY KEY, v int, payload text)"
		# The catalogs as fresh for every round (autovacuum is off): earlier rounds' dead rows and
		# files not yet unlinked would charge the later, larger shard counts.
		for port in "$C" "${W[@]}"; do sql "$port" scale -c "VACUUM" -c "CHECKPOINT"; done
		timed scale "SELECT create_distributed_table('ddl', 'id', shard_count := $n, colocate_with := 'none')" "create $n $round"
		record create "$n" "$round" "$ms"
		got=$(sql "$C" scale -c "SELECT count(*) FROM fdwshard.shard WHERE logicalrelid = 'ddl'::regclass")
		[ "$got" = "$n" ] || { echo "!! ddl has $got shards, expected $n" >&2; exit 1; }
		[ "$(worker_tables)" = "$n" ] || { echo "!! the workers hold $(worker_tables) tables, expected $n" >&2; exit 1; }
		timed scale "DROP TABLE ddl" "drop $n $round"
		record drop "$n" "$round" "$ms"
		[ "$(worker_tables)" = 0 ] || { echo "!! $(worker_tables) tables left on the workers after DROP" >&2; exit 1; }
	done

	# pt: ROWS rows over n shards, for the point SELECTs and count(*).
	sql "$C" scale >/dev/null <<-SQL
		CREATE TABLE pt (id int PRIMARY KEY, v int, payload text);
		SELECT create_distributed_table('pt', 'id', shard_count := $n, colocate_with := 'none');
		INSERT INTO pt SELECT i, i % 1000, md5(i::text) FROM generate_series(1, $ROWS) i;
		ANALYZE pt;
	SQL
	for port in "${W[@]}"; do sql "$port" scale -c "VACUUM ANALYZE" >/dev/null; done
	for round in $(seq 1 "$REPEATS"); do
		# prepared_auto: -M prepared with fdwshard.worker_plan_cache_mode = auto (the workers' own plan cache mode).
		for mode in simple prepared prepared_auto; do
			echo "-- pgbench $mode $n $round" >>"$LOG"
			options=""
			[ "$mode" = prepared_auto ] && options="-c fdwshard.worker_plan_cache_mode=auto"
			out=$(as_pg env PGOPTIONS="$options" "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$C" -U postgres -M "${mode%_auto}" \
				-c "$CLIENTS" -j "$THREADS" -T "$DURATION" -f "$WORK/select.sql" scale 2>&1) || { echo "$out" | tail -5 >&2; exit 1; }
			echo "$out" >>"$LOG"
			grep -q '^number of failed transactions: 0 ' <<<"$out" || { echo "!! pgbench: failed transactions" >&2; exit 1; }
			record "select_$mode" "$n" "$round" "$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')"
		done
	done
	for round in $(seq 1 "$REPEATS"); do
		# Each run: a new session, COUNT_RUNS executions; its value is their median. count_uncombined:
		# one statement per shard, as before a pool connection read its batch with one statement.
		for what in count count_uncombined; do
			echo "-- $what $n $round" >>"$LOG"
			args=(-c '\timing on')
			[ "$what" = count ] || args+=(-c 'SET fdwshard.combine_shard_reads = off')
			for _ in $(seq 1 "$COUNT_RUNS"); do args+=(-c "SELECT count(*) FROM pt"); done
			out=$(psql_on "$C" -d scale -v ON_ERROR_STOP=1 "${args[@]}" 2>&1)
			echo "$out" >>"$LOG"
			grep -qx " *$ROWS" <<<"$out" || { echo "!! count(*) is not $ROWS: $out" >&2; exit 1; }
			record "$what" "$n" "$round" "$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -g |
				awk '{ x[++k] = $1 } END { print k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2 }')"
		done
	done
	sql "$C" scale -c "SELECT min(g) FROM generate_series(1, $ROWS) g
		GROUP BY get_shard_id_for_distribution_column('pt', g)" >"$WORK/ids"
	for mode in simple prepared; do first_use "$mode" "$n"; done
	plan=$(sql "$C" scale -c "EXPLAIN (ANALYZE, SUMMARY) SELECT count(*) FROM pt")
	echo "$plan" >>"$LOG"
	PLANNING[$n]=$(echo "$plan" | sed -n 's/^Planning Time: \([0-9.]*\) ms/\1/p')
	JIT[$n]=$(grep -q '^JIT:' <<<"$plan" && echo on || echo off)
	sql "$C" scale -c "DROP TABLE pt"
	[ "$(worker_tables)" = 0 ] || { echo "!! $(worker_tables) tables left on the workers after DROP TABLE pt" >&2; exit 1; }

	# For reference, the same reads on PostgreSQL's own partitioning: one server (worker 1, idle
	# meanwhile), the same rows in a table hash-partitioned into n partitions, the same pgbench runs
	# and count(*) against it directly.
	sql "${W[0]}" native >/dev/null <<-SQL
		SET client_min_messages = warning;
		CREATE TABLE pt (id int PRIMARY KEY, v int, payload text) PARTITION BY HASH (id);
		SELECT format('CREATE TABLE pt_%s PARTITION OF pt FOR VALUES WITH (MODULUS $n, REMAINDER %s)', i, i)
		FROM generate_series(0, $n - 1) i \gexec
		INSERT INTO pt SELECT i, i % 1000, md5(i::text) FROM generate_series(1, $ROWS) i;
		VACUUM ANALYZE pt;
	SQL
	for round in $(seq 1 "$REPEATS"); do
		for mode in simple prepared; do
			echo "-- native pgbench $mode $n $round" >>"$LOG"
			out=$(as_pg "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "${W[0]}" -U postgres -M "$mode" \
				-c "$CLIENTS" -j "$THREADS" -T "$DURATION" -f "$WORK/select.sql" native 2>&1) || { echo "$out" | tail -5 >&2; exit 1; }
			echo "$out" >>"$LOG"
			grep -q '^number of failed transactions: 0 ' <<<"$out" || { echo "!! pgbench: failed transactions" >&2; exit 1; }
			record "native_select_$mode" "$n" "$round" "$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')"
		done
		args=(-c '\timing on')
		for _ in $(seq 1 "$COUNT_RUNS"); do args+=(-c "SELECT count(*) FROM pt"); done
		out=$(psql_on "${W[0]}" -d native -v ON_ERROR_STOP=1 "${args[@]}" 2>&1)
		echo "-- native count $n $round" >>"$LOG"
		echo "$out" >>"$LOG"
		grep -qx " *$ROWS" <<<"$out" || { echo "!! native count(*) is not $ROWS: $out" >&2; exit 1; }
		record native_count "$n" "$round" "$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -g |
			awk '{ x[++k] = $1 } END { print k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2 }')"
	done
	sql "${W[0]}" native -c "DROP TABLE pt"

	# The floor: the same rows in n plain tables on one server (worker 1), read by table_router, a
	# client that routes each point SELECT to its table itself. It loses what PostgreSQL loses by
	# touching n tables in a session instead of 32, which no router in front of it can avoid.
	sql "${W[0]}" native >/dev/null <<-SQL
		SELECT format('CREATE TABLE t_%s (id int PRIMARY KEY, v int, payload text)', i) FROM generate_series(0, $n - 1) i \gexec
		SELECT format('INSERT INTO t_%s SELECT g, g %% 1000, md5(g::text) FROM generate_series(1, $ROWS) g WHERE g %% $n = %s', i, i)
		FROM generate_series(0, $n - 1) i \gexec
		VACUUM ANALYZE;
	SQL
	for round in $(seq 1 "$REPEATS"); do
		for mode in simple prepared; do
			echo "-- tables $mode $n $round" >>"$LOG"
			out=$("$WORK/table_router" "host=127.0.0.1 port=${W[0]} user=postgres dbname=native" t_ "$n" "$ROWS" "$mode" \
				"$CLIENTS" "$DURATION" 2>&1) || { echo "!! table_router: $out" >&2; exit 1; }
			echo "$out" >>"$LOG"
			record "tables_select_$mode" "$n" "$round" "${out#tps }"
		done
	done
	sql "${W[0]}" native >/dev/null <<-SQL
		SELECT format('DROP TABLE t_%s', i) FROM generate_series(0, $n - 1) i \gexec
	SQL
done

# A backend's memory after point queries on MEM_TABLES tables of MEM_SHARDS shards, then after a
# count(*) on each too; and the first point query's time in a new session.
echo "== memory: $MEM_TABLES tables of $MEM_SHARDS shards"
for t in $(seq 1 "$MEM_TABLES"); do
	sql "$C" scale >/dev/null <<-SQL
		CREATE TABLE m$t (id int PRIMARY KEY, v int);
		SELECT create_distributed_table('m$t', 'id', shard_count := $MEM_SHARDS);
		INSERT INTO m$t SELECT i, i FROM generate_series(1, 1000) i;
	SQL
done
MEMSQL="SELECT sum(total_bytes) FROM pg_backend_memory_contexts"
for round in $(seq 1 "$REPEATS"); do
	args=(-c '\timing on')
	for t in $(seq 1 "$MEM_TABLES"); do args+=(-c "SELECT v FROM m$t WHERE id = $((t * 7 + round))"); done
	args+=(-c '\timing off' -c "$MEMSQL")
	for t in $(seq 1 "$MEM_TABLES"); do args+=(-c "SELECT count(*) FROM m$t"); done
	args+=(-c "$MEMSQL")
	out=$(psql_on "$C" -d scale -v ON_ERROR_STOP=1 -At "${args[@]}" 2>&1)
	echo "-- memory $round" >>"$LOG"
	echo "$out" >>"$LOG"
	times=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
	record first_query "$MEM_SHARDS" "$round" "$(echo "$times" | head -1)"
	record next_queries "$MEM_SHARDS" "$round" "$(echo "$times" | tail -n +2 | sort -g |
		awk '{ x[++k] = $1 } END { print k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2 }')"
	mem=$(echo "$out" | grep -E '^[0-9]{6,}$')
	record memory_point "$MEM_SHARDS" "$round" "$(echo "$mem" | sed -n 1p)"
	record memory_count "$MEM_SHARDS" "$round" "$(echo "$mem" | sed -n 2p)"
done

# MANY_CLIENTS clients against the 8 workers at max_connections = WORKER_MAX_CONNECTIONS (the
# default fdwshard.worker_connection_limit): point SELECTs, count(*) and transfers over two
# workers, in both protocols; no transaction may fail and no client may abort.
echo "== $MANY_CLIENTS clients, workers at max_connections = $WORKER_MAX_CONNECTIONS"
psql_on "$C" -q -c "ALTER SYSTEM SET max_connections = $((MANY_CLIENTS + 30))"
for port in "${W[@]}"; do psql_on "$port" -q -c "ALTER SYSTEM SET max_connections = $WORKER_MAX_CONNECTIONS"; done
for name in "${CLUSTER_NODES[@]}"; do node_stop "$name" && node_restart "$name"; done
sql "$C" scale >/dev/null <<-SQL
	CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL);
	SELECT create_distributed_table('acct', 'id', shard_count := 64);
	INSERT INTO acct SELECT i, 1000 FROM generate_series(1, 10000) i;
SQL
cat >"$WORK/point.sql" <<-SQL
	\set id random(1, 10000)
	SELECT balance FROM acct WHERE id = :id;
SQL
echo "SELECT count(*), sum(balance) FROM acct;" >"$WORK/count.sql"
cat >"$WORK/transfer.sql" <<-SQL
	\set a random(1, 5000)
	\set b random(5001, 10000)
	BEGIN;
	UPDATE acct SET balance = balance - 1 WHERE id = :a;
	UPDATE acct SET balance = balance + 1 WHERE id = :b;
	COMMIT;
SQL
chmod 644 "$WORK"/*.sql
for mode in simple prepared; do
	echo "-- $MANY_CLIENTS clients $mode" >>"$LOG"
	out=$(as_pg timeout 300 "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$C" -U postgres -M "$mode" -c "$MANY_CLIENTS" -j 4 \
		-T "$DURATION" -f "$WORK/point.sql@6" -f "$WORK/count.sql@1" -f "$WORK/transfer.sql@3" scale 2>&1 || true)
	echo "$out" >>"$LOG"
	failed=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
	aborted=$(echo "$out" | grep -c 'aborted in command\|too many clients\|could not connect' || true)
	record "clients_${mode}_tps" "$MANY_CLIENTS" 1 "$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')"
	record "clients_${mode}_failed" "$MANY_CLIENTS" 1 "${failed:-all}"
	record "clients_${mode}_aborted" "$MANY_CLIENTS" 1 "$aborted"
done
total=$(sql "$C" scale -c "SELECT sum(balance) FROM acct")
record clients_total "$MANY_CLIENTS" 1 "$total"

LOADAVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# med WHAT SHARDS: the median of the runs.
med() {
	awk -F, -v w="$1" -v s="$2" '$1 == w && $2 == s { print $4 }' "$CSV" | sort -g |
		awk '{ x[++n] = $1 } END { if (n) printf "%.3f", n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }'
}
runs() { awk -F, -v w="$1" -v s="$2" '$1 == w && $2 == s { printf "%s%s", (n++ ? " " : ""), $4 }' "$CSV"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# verdict OK: **met** / **not met**
verdict() { if [ "$1" = 1 ]; then echo "**met**"; else echo "**not met**"; fi; }
check() { awk "BEGIN { print ($1) ? 1 : 0 }"; }

{
	echo "# fdwshard scale benchmark, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "- fdwshard $VERSION, $("$PG_BIN/postgres" --version)," \
		"$(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), shared with other work"
	echo "- one coordinator (no shards) + $WORKERS workers on this machine: shared_buffers $SHARED_BUFFERS," \
		"max_locks_per_transaction $MAX_LOCKS, autovacuum off, fsync and synchronous_commit off (test/cluster.sh)," \
		"data directories in ${FDWSHARD_CLUSTER_ROOT:-/tmp}; VACUUM and CHECKPOINT on every node before each \`create\`"
	echo "- \`create\` / \`drop\`: \`create_distributed_table\` of an empty \`(id int PRIMARY KEY, v int, payload text)\` and" \
		"\`DROP TABLE\` of it (psql \\timing, ms); \`select_simple\` / \`select_prepared\`: point SELECT by key," \
		"pgbench -n -c $CLIENTS -j $THREADS -T $DURATION, new sessions, no warm-up (TPS; \`select_prepared_auto\`:" \
		"\`-M prepared\` with \`fdwshard.worker_plan_cache_mode = auto\`); \`count\`: \`SELECT count(*)\` of" \
		"$ROWS rows, median of $COUNT_RUNS in a new session (ms; \`count_uncombined\`: the same with" \
		"\`fdwshard.combine_shard_reads = off\`, one statement per shard); \`native_*\`: the same reads on PostgreSQL's own" \
		"hash partitioning into as many partitions, on one server (worker 1, idle meanwhile); \`tables_*\`: the floor," \
		"the same point SELECTs on one server (worker 1) over as many plain tables, from $CLIENTS new sessions of a client" \
		"that picks each row's table itself (bench/table_router.c, $DURATION s, TPS)"
	echo "- median of $REPEATS runs; ratio = median / the $BASE-shard median (for TPS, higher is better);" \
		"load average before/after: $LOADAVG_BEFORE / $LOADAVG_AFTER"
	echo
	printf '| measurement |'; for n in "${counts[@]}"; do printf ' %s shards |' "$n"; done
	for n in "${counts[@]:1}"; do printf ' %s / %s |' "$n" "$BASE"; done; echo
	printf '|---|'; for _ in "${counts[@]}" "${counts[@]:1}"; do printf -- '---:|'; done; echo
	for what in create drop select_simple select_prepared select_prepared_auto count count_uncombined \
		native_select_simple native_select_prepared native_count tables_select_simple tables_select_prepared; do
		printf '| %s |' "$what"
		for n in "${counts[@]}"; do printf ' %s |' "$(med "$what" "$n")"; done
		for n in "${counts[@]:1}"; do printf ' %s |' "$(ratio "$(med "$what" "$n")" "$(med "$what" "$BASE")")"; done
		echo
	done
	printf '| count(*): planning ms, JIT |'; for n in "${counts[@]}"; do printf ' %s, %s |' "${PLANNING[$n]}" "${JIT[$n]}"; done
	for _ in "${counts[@]:1}"; do printf ' |'; done; echo
	echo
	echo "Runs:"
	echo
	for what in create drop select_simple select_prepared select_prepared_auto count count_uncombined \
		native_select_simple native_select_prepared native_count tables_select_simple tables_select_prepared; do
		for n in "${counts[@]}"; do echo "- $what, $n shards: $(runs "$what" "$n")"; done
	done
	echo
	echo "A coordinator backend (new session) after a point query on each of $MEM_TABLES tables of $MEM_SHARDS shards," \
		"then a count(*) on each too (sum of pg_backend_memory_contexts' total_bytes, MB; median of $REPEATS sessions):"
	echo
	mp=$(med memory_point "$MEM_SHARDS")
	mc=$(med memory_count "$MEM_SHARDS")
	echo "| after point queries | after count(*) too | first point query, ms | the next ones, median ms |"
	echo "|---:|---:|---:|---:|"
	awk -v a="$mp" -v b="$mc" -v f="$(med first_query "$MEM_SHARDS")" -v q="$(med next_queries "$MEM_SHARDS")" \
		'BEGIN { printf "| %.1f | %.1f | %.1f | %.2f |\n", a / 1048576, b / 1048576, f, q }'
	echo
	echo "A session's first use of a shard, as extra CPU per shard (one new session, its connections opened on" \
		"another table first, a point query on each shard of pt, then the same pass again: the first pass's CPU" \
		"minus the second's, per shard, µs; the coordinator backend and every process of the workers):"
	echo
	echo "| shards | -M simple: coordinator | workers | -M prepared: coordinator | workers |"
	echo "|---:|---:|---:|---:|---:|"
	for n in "${counts[@]}"; do
		echo "| $n | $(runs first_use_simple_coordinator "$n") | $(runs first_use_simple_workers "$n") |" \
			"$(runs first_use_prepared_coordinator "$n") | $(runs first_use_prepared_workers "$n") |"
	done
	echo
	echo "Targets (issue 14):"
	echo
	if [ -n "$(med create 1024)" ]; then
		echo "- create at 1024 shards under 3 s: $(med create 1024) ms, $(verdict "$(check "$(med create 1024) < 3000")")"
		echo "- DROP at 1024 shards under 1 s: $(med drop 1024) ms, $(verdict "$(check "$(med drop 1024) < 1000")")"
		if [ -n "$(med create 4096)" ]; then
			echo "- create at 4096 at most 4 x 1024: $(ratio "$(med create 4096)" "$(med create 1024)") x," \
				"$(verdict "$(check "$(med create 4096) <= 4 * $(med create 1024)")")"
			echo "- DROP at 4096 at most 4 x 1024: $(ratio "$(med drop 4096)" "$(med drop 1024)") x," \
				"$(verdict "$(check "$(med drop 4096) <= 4 * $(med drop 1024)")")"
		fi
		if [ "$BASE" = 32 ]; then
			for mode in simple prepared; do
				r=$(ratio "$(med "select_$mode" 1024)" "$(med "select_$mode" 32)")
				echo "- point SELECT -M $mode at 1024 shards at least 0.95 x 32: $r x, $(verdict "$(check "$r >= 0.95")")"
			done
			r=$(ratio "$(med select_prepared_auto 1024)" "$(med select_prepared_auto 32)")
			echo "  - with fdwshard.worker_plan_cache_mode = auto: $r x, $(verdict "$(check "$r >= 0.95")")"
			r=$(ratio "$(med count 1024)" "$(med count 32)")
			echo "- count(*) at 1024 shards at most 2 x 32: $r x, $(verdict "$(check "$r <= 2")")"
			r=$(ratio "$(med count_uncombined 1024)" "$(med count_uncombined 32)")
			echo "  - with fdwshard.combine_shard_reads = off (one statement per shard): $r x," \
				"$(verdict "$(check "$r <= 2")")"
			echo "- for reference, PostgreSQL's own partitioning on one server, 1024 partitions / 32:" \
				"point SELECT -M simple $(ratio "$(med native_select_simple 1024)" "$(med native_select_simple 32)") x," \
				"-M prepared $(ratio "$(med native_select_prepared 1024)" "$(med native_select_prepared 32)") x," \
				"count(*) $(ratio "$(med native_count 1024)" "$(med native_count 32)") x"
			echo "- the floor, PostgreSQL alone on one server, 1024 plain tables / 32, each query sent to its table" \
				"by the client: point SELECT -M simple $(ratio "$(med tables_select_simple 1024)" "$(med tables_select_simple 32)") x," \
				"-M prepared $(ratio "$(med tables_select_prepared 1024)" "$(med tables_select_prepared 32)") x"
		fi
	fi
	echo "- memory after point queries under 4 MB: $(awk -v a="$mp" 'BEGIN { printf "%.1f", a / 1048576 }') MB," \
		"$(verdict "$(check "$mp < 4194304")")"
	for mode in simple prepared; do
		f=$(runs "clients_${mode}_failed" "$MANY_CLIENTS")
		a=$(runs "clients_${mode}_aborted" "$MANY_CLIENTS")
		echo "- $MANY_CLIENTS clients, -M $mode, workers at max_connections = $WORKER_MAX_CONNECTIONS:" \
			"$(runs "clients_${mode}_tps" "$MANY_CLIENTS") TPS, $f failed transactions, $a clients aborted," \
			"$(verdict "$(check "\"$f\" == \"0\" && $a == 0")")"
	done
	echo "- after the transfers the balances still total $((10000 * 1000)): $(runs clients_total "$MANY_CLIENTS")," \
		"$(verdict "$(check "$(runs clients_total "$MANY_CLIENTS")0 == $((10000 * 1000))0")")"
} >"$REPORT"
echo
cat "$REPORT"
echo
echo "== wrote $REPORT, $CSV and $LOG"
