# Sourced by the bench scripts but run.sh: their arguments, the build (unless --skip-build), the
# result files' names, the cluster every run uses, its tuning, the native postgres_fdw setup and
# the timed runs' records and medians.

# bench_args "$@": --skip-build sets SKIP_BUILD=1; -h prints the script's header (lines 2-5).
bench_args() {
	SKIP_BUILD=0
	for arg in "$@"; do
		case $arg in
		--skip-build) SKIP_BUILD=1 ;;
		-h | --help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "unknown argument: $arg" >&2; exit 2 ;;
		esac
	done
}

# bench_start PREFIX: sets STAMP, OUT, CSV, LOG, REPORT and WORK, starts a coordinator and two
# workers (test/cluster.sh), and stops them and removes WORK on exit.
bench_start() {
	if [ "$SKIP_BUILD" = 0 ]; then bash scripts/build.sh; fi
	STAMP=$(date +%Y%m%d-%H%M%S)
	OUT=bench/results
	mkdir -p "$OUT"
	CSV=$OUT/$1-$STAMP.csv
	LOG=$OUT/$1-$STAMP.log
	REPORT=$OUT/$1-$STAMP.md
	: >"$LOG"
	WORK=$(mktemp -d)
	chmod 755 "$WORK"
	trap 'cluster_stop; rm -rf "$WORK"' EXIT
	trap 'exit 130' INT TERM
	echo "== starting a coordinator and two workers ($PG_BIN)"
	cluster_start
}

# bench_tune: on every node, SHARED_BUFFERS, no autovacuum and max_wal_size 8GB (no checkpoint
# forced by WAL volume in the middle of a timed statement); restarts them. Sets C and W.
bench_tune() {
	local port name
	for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
		psql_on "$port" -q -c "ALTER SYSTEM SET shared_buffers = '$SHARED_BUFFERS'" -c "ALTER SYSTEM SET autovacuum = off" \
			-c "ALTER SYSTEM SET max_wal_size = '8GB'"
	done
	for name in "${CLUSTER_NODES[@]}"; do node_stop "$name" && node_restart "$name"; done
	C=$COORDINATOR_PORT
	W=("$WORKER1_PORT" "$WORKER2_PORT")
}

# sql PORT DB [psql args]: stops at the first error, prints unaligned.
sql() {
	local port=$1 db=$2; shift 2
	psql_on "$port" -d "$db" -v ON_ERROR_STOP=1 -qAt "$@"
}

# bench_native_fdw DB TABLE...: native hash partitioning over postgres_fdw as in seed 000 (bench/run.sh):
# each TABLE (COLUMNS) partitioned into SHARD_COUNT foreign partitions alternating over the two
# workers, each a table there with PRIMARY KEY (tenant_id, id); the coordinator's table has none
# (a partitioned table with foreign partitions cannot).
bench_native_fdw() {
	local db=$1 w t
	shift
	for w in 0 1; do
		for t in "$@"; do
			sql "${W[$w]}" "$db" <<-SQL
				SELECT format('CREATE TABLE ${t}_%s ($COLUMNS, PRIMARY KEY (tenant_id, id))', r)
				FROM generate_series(0, $SHARD_COUNT - 1) r WHERE r % 2 = $w \gexec
			SQL
		done
	done
	sql "$C" "$db" <<-SQL
		CREATE EXTENSION postgres_fdw;
		CREATE SERVER worker0 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '${W[0]}',
			dbname '$db', async_capable 'true', fetch_size '1000', batch_size '1000');
		CREATE SERVER worker1 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '${W[1]}',
			dbname '$db', async_capable 'true', fetch_size '1000', batch_size '1000');
		CREATE USER MAPPING FOR CURRENT_USER SERVER worker0;
		CREATE USER MAPPING FOR CURRENT_USER SERVER worker1;
	SQL
	for t in "$@"; do
		sql "$C" "$db" <<-SQL
			CREATE TABLE $t ($COLUMNS) PARTITION BY HASH (tenant_id);
			SELECT format('CREATE FOREIGN TABLE ${t}_%s PARTITION OF $t FOR VALUES WITH (MODULUS $SHARD_COUNT, REMAINDER %s)
			               SERVER worker%s', r, r, r % 2)
			FROM generate_series(0, $SHARD_COUNT - 1) r \gexec
		SQL
	done
}

# bench_record ROUND SYSTEM ROWS MS WIDTH: appends "round,system,rows,seconds,rows_per_s" to CSV and
# prints the run's line, [k/total] from the caller's k and total (SYSTEM padded to WIDTH).
bench_record() {
	awk -v r="$1" -v s="$2" -v n="$3" -v ms="$4" 'BEGIN { printf "%s,%s,%s,%.3f,%.0f\n", r, s, n, ms / 1000, n / (ms / 1000) }' >>"$CSV"
	awk -v k="$k" -v t="$total" -v r="$1" -v s="$2" -v n="$3" -v ms="$4" -v w="${5:-16}" \
		'BEGIN { printf "   [%d/%d] round %d %-*s %8d rows %8.2f s %10.0f rows/s\n", k, t, r, w, s, n, ms / 1000, n / (ms / 1000) }'
}

# median SYSTEM COLUMN: the median of a CSV column (4 seconds, 5 rows/s) over SYSTEM's runs.
median() {
	awk -F, -v s="$1" -v c="$2" '$2 == s { print $c }' "$CSV" | sort -g |
		awk '{ x[++n] = $1 } END { printf "%.3f", n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }'
}

# bench_rounds WHAT: REPEATS rounds of run_one ROUND SYSTEM over the systems array, interleaved, with
# the CSV's header first; sets LOADAVG_BEFORE and LOADAVG_AFTER.
bench_rounds() {
	local round sys
	echo "== timing $1; $REPEATS rounds, systems interleaved"
	echo "round,system,rows,seconds,rows_per_s" >"$CSV"
	LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	k=0
	total=$((REPEATS * ${#systems[@]}))
	for round in $(seq 1 "$REPEATS"); do
		for sys in "${systems[@]}"; do run_one "$round" "$sys"; done
	done
	LOADAVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
}

# bench_timed DB STATEMENT LABEL: CHECKPOINT on every node (untimed), then STATEMENT timed on the
# coordinator in DB; sets out (its output) and ms, logs them under LABEL, exits on an error.
bench_timed() {
	local port
	for port in "$C" "${W[@]}"; do sql "$port" postgres -c "CHECKPOINT"; done
	echo "-- $3" >>"$LOG"
	if ! out=$(psql_on "$C" -d "$1" -v ON_ERROR_STOP=1 -c '\timing on' -c "$2" 2>&1); then
		echo "$out" >>"$LOG"
		echo "!! $3 failed" >&2
		echo "$out" | tail -20 >&2
		exit 1
	fi
	echo "$out" >>"$LOG"
	ms=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
}

# bench_rates: after bench_rounds, RATE and SECS hold each system's median rows/s and seconds;
# rate_runs SYSTEM prints its runs' rows/s, rate_ratio A B the ratio of their median rows/s (or -).
bench_rates() {
	local sys
	declare -gA RATE SECS
	for sys in "${systems[@]}"; do
		RATE[$sys]=$(median "$sys" 5)
		SECS[$sys]=$(median "$sys" 4)
	done
}
rate_runs() { awk -F, -v s="$1" '$2 == s { printf "%s%.0f", (n++ ? " " : ""), $5 }' "$CSV"; }
rate_ratio() {
	if [ -n "${RATE[$1]:-}" ] && [ -n "${RATE[$2]:-}" ]; then awk -v a="${RATE[$1]}" -v b="${RATE[$2]}" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi
}
