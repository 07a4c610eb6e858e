#!/usr/bin/env bash
# Benchmark runner: starts a coordinator and two workers (test/cluster.sh), loads the same data into
# one database per system, runs pgbench workloads and writes bench/results/<timestamp>.{md,csv}.
# Usage: bash bench/run.sh [--quick] [--skip-build]; parameters via environment, see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0 SKIP_BUILD=0
for arg in "$@"; do
	case $arg in
	--quick) QUICK=1 ;;
	--skip-build) SKIP_BUILD=1 ;;
	-h | --help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument: $arg" >&2; exit 2 ;;
	esac
done
if [ $QUICK = 1 ]; then
	: "${SHARD_COUNTS:=32}" "${DURATION:=5}" "${REPEATS:=1}"
fi
SHARD_COUNTS=${SHARD_COUNTS:-8 32 128 512}
SYSTEMS=${SYSTEMS:-plain native_local native_fdw fdwshard_local fdwshard_remote}
WORKLOADS=${WORKLOADS:-select_simple select_prepared agg_simple agg_prepared update_prepared insert_prepared agg_all agg_kind join_agg top_n stats_kind update_10pct}
DURATION=${DURATION:-4}
REPEATS=${REPEATS:-3}
ITERATIONS=${ITERATIONS:-5}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
TENANTS=${TENANTS:-10000}
ROWS_PER_TENANT=${ROWS_PER_TENANT:-100}
SHARED_BUFFERS=${SHARED_BUFFERS:-1GB}
UPDATE_README=${UPDATE_README:-$((1 - QUICK))}

source test/cluster.sh # sets PG_BIN from FDWSHARD_PG_BIN

# Latency workloads: multi-shard analytic statements, timed one at a time by a single client (the
# script is the workload's own name); modifying ones run after every other workload, see below.
LATENCY_WORKLOADS="agg_all agg_kind join_agg top_n stats_kind update_10pct"
MODIFYING_LATENCY_WORKLOADS="update_10pct"
is_latency() { [[ " $LATENCY_WORKLOADS " == *" $1 "* ]]; }
is_modifying_latency() { [[ " $MODIFYING_LATENCY_WORKLOADS " == *" $1 "* ]]; }
for w in $WORKLOADS; do
	if is_latency "$w"; then continue; fi
	[ -f "bench/workloads/${w%_*}.sql" ] && [[ ${w##*_} =~ ^(simple|extended|prepared)$ ]] ||
		{ echo "unknown workload $w (want <script>_<simple|extended|prepared> or one of $LATENCY_WORKLOADS)" >&2; exit 2; }
done
# The systems to measure, as system:shards:database; plain is the baseline of every ratio.
RUNS=()
for sys in $SYSTEMS; do
	case $sys in
	plain) RUNS+=("plain:0:plain") ;;
	native_local | native_fdw | fdwshard_local | fdwshard_remote)
		for n in $SHARD_COUNTS; do RUNS+=("$sys:$n:${sys}_$n"); done ;;
	*) echo "unknown system $sys" >&2; exit 2 ;;
	esac
done
[[ " $SYSTEMS " == *" plain "* ]] || echo "note: without plain in SYSTEMS there are no ratios" >&2

read -ra workloads <<<"$WORKLOADS"
# Phase 1 runs every workload that leaves the data other workloads read as it was (the TPS workloads'
# single-row writes included, as before); phase 2 runs the modifying latency workloads (UPDATE of 10%
# of the rows), whose new row versions would otherwise slow the scans of later rounds.
phase1=() phase2=()
for w in "${workloads[@]}"; do
	if is_modifying_latency "$w"; then phase2+=("$w"); else phase1+=("$w"); fi
done
total=$((${#RUNS[@]} * ${#workloads[@]} * REPEATS))
nlat=0
for w in "${workloads[@]}"; do if is_latency "$w"; then nlat=$((nlat + 1)); fi; done
echo "== plan: ${#RUNS[@]} systems x ${#workloads[@]} workloads x $REPEATS repeats = $total pgbench runs" \
	"($((${#workloads[@]} - nlat)) TPS workloads of ${DURATION}s: ~$((((${#workloads[@]} - nlat) * ${#RUNS[@]} * REPEATS * DURATION * 21 / 20 + ${#RUNS[@]} * 20 + 59) / 60)) min" \
	"with ~20 s loading per database; $nlat latency workloads: seconds to minutes per system)"

if [ $SKIP_BUILD = 0 ]; then bash scripts/build.sh; fi

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=bench/results
mkdir -p "$OUT"
CSV=$OUT/$STAMP.csv
LOG=$OUT/$STAMP.log
REPORT=$OUT/$STAMP.md
: >"$LOG"

trap 'cluster_stop' EXIT
trap 'exit 130' INT TERM
echo "== starting a coordinator and two workers ($PG_BIN)"
cluster_start
for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
	psql_on "$port" -q -c "ALTER SYSTEM SET shared_buffers = '$SHARED_BUFFERS'" -c "ALTER SYSTEM SET autovacuum = off"
	# MAX_FILES_PER_PROCESS: open files a backend keeps (PostgreSQL's default, 1000, is below 512 shards' 1024 files).
	if [ -n "${MAX_FILES_PER_PROCESS:-}" ]; then
		psql_on "$port" -q -c "ALTER SYSTEM SET max_files_per_process = $MAX_FILES_PER_PROCESS"
	fi
done
for name in "${CLUSTER_NODES[@]}"; do node_stop "$name" && node_restart "$name"; done

C=$COORDINATOR_PORT
W=("$WORKER1_PORT" "$WORKER2_PORT")
# sql PORT DB [psql args]: runs SQL (stdin or -c), stops at the first error, prints unaligned.
sql() {
	local port=$1 db=$2; shift 2
	psql_on "$port" -d "$db" -v ON_ERROR_STOP=1 -qAt "$@"
}

# Same schema and rows everywhere: ROWS_PER_TENANT rows for each of TENANTS tenants, stored tenant
# by tenant, so one tenant's rows fill the same few pages in every system (rows spread over the
# table would favour many partitions, which pack fewer tenants per page range, on aggregates).
# kind, amount and touched are for the latency workloads only (the TPS workloads do not read them;
# select's SELECT * returns them): kind takes 10 values, each on 10% of every tenant's rows.
COLUMNS="tenant_id int NOT NULL, id bigint NOT NULL, value int NOT NULL, payload text,
         kind text, amount numeric, touched int"
ROWS="SELECT t, i, (t * 7 + i * 13) % 1000, md5((t * 1000 + i)::text),
             'k' || (t + i) % 10, ((t * 31 + i * 17) % 10000) / 100.0, 0
      FROM generate_series(1, $TENANTS) t, generate_series(1, $ROWS_PER_TENANT) i ORDER BY t, i"
# tenants: one row per tenant, co-located with events (same distribution column and shards).
TENANT_COLUMNS="tenant_id int NOT NULL, name text, plan text"
TENANT_ROWS="SELECT t, 'tenant ' || t, (ARRAY['free', 'pro', 'enterprise'])[t % 3 + 1]
             FROM generate_series(1, $TENANTS) t"

load_plain() { # DB
	sql "$C" "$1" <<-SQL
		CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id));
		INSERT INTO events $ROWS;
		CREATE TABLE tenants ($TENANT_COLUMNS, PRIMARY KEY (tenant_id));
		INSERT INTO tenants $TENANT_ROWS;
	SQL
}

load_native_local() { # DB N: native hash partitioning, N local partitions
	sql "$C" "$1" <<-SQL
		CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id)) PARTITION BY HASH (tenant_id);
		SELECT format('CREATE TABLE events_%s PARTITION OF events FOR VALUES WITH (MODULUS $2, REMAINDER %s)', r, r)
		FROM generate_series(0, $2 - 1) r \gexec
		INSERT INTO events $ROWS;
		CREATE TABLE tenants ($TENANT_COLUMNS, PRIMARY KEY (tenant_id)) PARTITION BY HASH (tenant_id);
		SELECT format('CREATE TABLE tenants_%s PARTITION OF tenants FOR VALUES WITH (MODULUS $2, REMAINDER %s)', r, r)
		FROM generate_series(0, $2 - 1) r \gexec
		INSERT INTO tenants $TENANT_ROWS;
	SQL
}

load_native_fdw() { # DB N: the seed-000 design, N postgres_fdw partitions alternating over the two workers
	local w
	for w in 0 1; do
		sql "${W[$w]}" "$1" <<-SQL
			SELECT format('CREATE TABLE events_%s ($COLUMNS, PRIMARY KEY (tenant_id, id))', r)
			FROM generate_series(0, $2 - 1) r WHERE r % 2 = $w \gexec
			SELECT format('CREATE TABLE tenants_%s ($TENANT_COLUMNS, PRIMARY KEY (tenant_id))', r)
			FROM generate_series(0, $2 - 1) r WHERE r % 2 = $w \gexec
		SQL
	done
	# No primary key on the parent: a partitioned table with foreign partitions cannot have one.
	sql "$C" "$1" <<-SQL
		CREATE EXTENSION postgres_fdw;
		CREATE SERVER worker0 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '${W[0]}',
			dbname '$1', async_capable 'true', fetch_size '1000', batch_size '1000');
		CREATE SERVER worker1 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '${W[1]}',
			dbname '$1', async_capable 'true', fetch_size '1000', batch_size '1000');
		CREATE USER MAPPING FOR CURRENT_USER SERVER worker0;
		CREATE USER MAPPING FOR CURRENT_USER SERVER worker1;
		CREATE TABLE events ($COLUMNS) PARTITION BY HASH (tenant_id);
		SELECT format('CREATE FOREIGN TABLE events_%s PARTITION OF events FOR VALUES WITH (MODULUS $2, REMAINDER %s)
		               SERVER worker%s', r, r, r % 2)
		FROM generate_series(0, $2 - 1) r \gexec
		INSERT INTO events $ROWS;
		CREATE TABLE tenants ($TENANT_COLUMNS) PARTITION BY HASH (tenant_id);
		SELECT format('CREATE FOREIGN TABLE tenants_%s PARTITION OF tenants FOR VALUES WITH (MODULUS $2, REMAINDER %s)
		               SERVER worker%s', r, r, r % 2)
		FROM generate_series(0, $2 - 1) r \gexec
		INSERT INTO tenants $TENANT_ROWS;
	SQL
}

load_fdwshard() { # DB N local|remote: load a plain table, then create_distributed_table moves its rows
	local nodes=""
	[ "$3" = remote ] && nodes="SELECT fdwshard_add_node('127.0.0.1', ${W[0]});
		SELECT fdwshard_add_node('127.0.0.1', ${W[1]});
		SELECT fdwshard_set_node_property(1, 'should_have_shards', false);"
	sql "$C" "$1" >/dev/null <<-SQL
		SET client_min_messages = warning;
		CREATE EXTENSION fdwshard CASCADE;
		$nodes
		CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id));
		INSERT INTO events $ROWS;
		SELECT create_distributed_table('events', 'tenant_id', shard_count := $2);
		CREATE TABLE tenants ($TENANT_COLUMNS, PRIMARY KEY (tenant_id));
		INSERT INTO tenants $TENANT_ROWS;
		SELECT create_distributed_table('tenants', 'tenant_id', shard_count := $2, colocate_with := 'events');
	SQL
}

# Statistics and visibility map everywhere; foreign partitions are analyzed explicitly (a plain
# ANALYZE skips foreign tables), and the worker tables behind them too.
analyze() { # DB
	sql "$C" "$1" -c "VACUUM ANALYZE"
	sql "$C" "$1" <<<"SELECT format('ANALYZE %s', oid::regclass) FROM pg_class WHERE relkind = 'f' \gexec"
	if [[ $1 == *_fdw_* || $1 == *_remote_* ]]; then
		for port in "${W[@]}"; do sql "$port" "$1" -c "VACUUM ANALYZE"; done
	fi
	sql "$C" "$1" -c "CHECKPOINT"
}

# What each system must look like: "foreign partitions|partitions" of events.
expected_layout() { # SYSTEM N
	case $1 in
	plain) echo "0|0" ;;
	native_local | fdwshard_local) echo "0|$2" ;;
	native_fdw | fdwshard_remote) echo "$2|$2" ;;
	esac
}
LAYOUT="SELECT count(*) FILTER (WHERE c.relkind = 'f') || '|' || count(*)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass;
        SELECT count(*) FILTER (WHERE c.relkind = 'f') || '|' || count(*)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'tenants'::regclass;"
mid=$((TENANTS / 2 + 7))
SAMPLES="SELECT count(*), sum(value) FROM events;
SELECT count(*), sum(value) FROM events WHERE tenant_id = 1;
SELECT count(*), sum(value) FROM events WHERE tenant_id = $mid;
SELECT count(*), sum(value) FROM events WHERE tenant_id = $TENANTS;
SELECT * FROM events WHERE tenant_id = $mid AND id = $ROWS_PER_TENANT;
SELECT count(*), sum(amount), count(DISTINCT kind), sum(touched) FROM events;
SELECT t.plan, count(*), sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan ORDER BY t.plan;"

declare -A LOAD_SECONDS
reference=""
echo "== loading $((TENANTS * ROWS_PER_TENANT)) rows ($TENANTS tenants) into ${#RUNS[@]} databases"
for run in "${RUNS[@]}"; do
	IFS=: read -r sys n db <<<"$run"
	for port in "$C" "${W[@]}"; do sql "$port" postgres -c "CREATE DATABASE $db"; done
	start=$SECONDS
	case $sys in
	plain) load_plain "$db" ;;
	native_local) load_native_local "$db" "$n" ;;
	native_fdw) load_native_fdw "$db" "$n" ;;
	fdwshard_local) load_fdwshard "$db" "$n" local ;;
	fdwshard_remote) load_fdwshard "$db" "$n" remote ;;
	esac
	analyze "$db"
	LOAD_SECONDS[$db]=$((SECONDS - start))
	# Sanity: the layout is what the system claims, and every system gives the same answers.
	layout=$(sql "$C" "$db" <<<"$LAYOUT" | sort -u)
	if [ "$layout" != "$(expected_layout "$sys" "$n")" ]; then
		echo "!! $db: events and tenants have foreign|all partitions $layout, expected $(expected_layout "$sys" "$n") for both" >&2
		exit 1
	fi
	answers=$(sql "$C" "$db" <<<"$SAMPLES")
	if [ -z "$reference" ]; then
		reference=$answers
		reference_db=$db
	elif [ "$answers" != "$reference" ]; then
		echo "!! $db answers differ from $reference_db:" >&2
		diff <(echo "$reference") <(echo "$answers") >&2 || true
		exit 1
	fi
	echo "   $db: loaded in ${LOAD_SECONDS[$db]}s, partitions (foreign|all) $layout, sample answers match"
done

# vacuum_events DB: untimed, before each modifying latency run, so that every run of it starts from a
# table without the dead row versions of the previous one (the workers' tables too).
vacuum_events() {
	sql "$C" "$1" -c "VACUUM events"
	if [[ $1 == *_fdw_* || $1 == *_remote_* ]]; then
		for port in "${W[@]}"; do sql "$port" "$1" -c "VACUUM"; done
	fi
}

# run_one ROUND WORKLOAD SYSTEM N DB: one pgbench run, one CSV line (TPS, or median latency in ms).
run_one() {
	local round=$1 w=$2 sys=$3 n=$4 db=$5 out value failed retried args lat iterations
	k=$((k + 1))
	echo "-- round $round $w $db" >>"$LOG"
	if is_latency "$w"; then
		# One client, one statement at a time; every execution's latency from pgbench's per-transaction
		# log (third field, microseconds); the run's value is their median.
		iterations=$ITERATIONS
		if is_modifying_latency "$w"; then
			iterations=1
			vacuum_events "$db"
		fi
		lat=$(mktemp -d)
		chmod 777 "$lat"
		args=(-c 1 -j 1 -t "$iterations" -M simple -l --log-prefix="$lat/tx" -f "bench/workloads/$w.sql")
	else
		args=(-c "$CLIENTS" -j "$THREADS" -T "$DURATION" --max-tries=10 -M "${w##*_}"
			-D tenants="$TENANTS" -D rows_per_tenant="$ROWS_PER_TENANT" -f "bench/workloads/${w%_*}.sql")
	fi
	if ! out=$("$PG_BIN/pgbench" -h 127.0.0.1 -p "$C" -U postgres -n "${args[@]}" "$db" 2>&1); then
		echo "$out" >>"$LOG"
		echo "!! pgbench failed: $w on $db" >&2
		echo "$out" | tail -20 >&2
		exit 1
	fi
	echo "$out" >>"$LOG"
	failed=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
	retried=$(echo "$out" | sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p')
	if is_latency "$w"; then
		value=$(cat "$lat"/tx.* | awk '{ print $3 / 1000 }' | sort -g |
			awk '{ v[++n] = $1 } END { if (n) printf "%.3f", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }')
		echo "latencies (ms): $(cat "$lat"/tx.* | awk '{ printf "%.1f ", $3 / 1000 }')" >>"$LOG"
		rm -rf "$lat"
	else
		value=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
	fi
	if [ -z "$value" ] || [ "${failed:-0}" != 0 ]; then
		echo "!! $w on $db: value '$value', failed transactions '$failed'" >&2
		echo "$out" | tail -20 >&2
		exit 1
	fi
	echo "$round,$sys,$n,$db,$w,$value,${failed:-0},${retried:-0}" >>"$CSV"
	if is_latency "$w"; then
		printf '   [%d/%d] round %d %-16s %-22s %10.1f ms\n' "$k" "$total" "$round" "$w" "$db" "$value"
	else
		printf '   [%d/%d] round %d %-16s %-22s %10.0f tps\n' "$k" "$total" "$round" "$w" "$db" "$value"
	fi
}

echo "== running pgbench: TPS workloads -c $CLIENTS -j $THREADS -T $DURATION; latency workloads -c 1," \
	"$ITERATIONS executions per run (modifying ones: 1); median of $REPEATS runs"
# value: TPS for TPS workloads, the run's median latency in ms for latency workloads.
echo "round,system,shards,database,workload,value,failed,retried" >"$CSV"
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
k=0
for phase in 1 2; do
	if [ $phase = 1 ]; then phase_workloads=("${phase1[@]}"); else phase_workloads=("${phase2[@]}"); fi
	[ ${#phase_workloads[@]} -gt 0 ] || continue
	for round in $(seq 1 "$REPEATS"); do
		for w in "${phase_workloads[@]}"; do
			for run in "${RUNS[@]}"; do
				IFS=: read -r sys n db <<<"$run"
				run_one "$round" "$w" "$sys" "$n" "$db"
			done
		done
	done
done

LOADAVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
source bench/report.sh
write_report "$CSV" >"$REPORT"
cp "$REPORT" "$OUT/latest.md"
if [ "$UPDATE_README" = 1 ]; then update_readme bench/README.md "$REPORT"; fi
echo
cat "$REPORT"
echo
echo "== wrote $REPORT, $CSV, $LOG and $OUT/latest.md"
