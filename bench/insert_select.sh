#!/usr/bin/env bash
# INSERT ... SELECT benchmark: time of INSERT INTO dst SELECT * FROM src (1M rows, src and dst alike)
# on a plain table, native hash partitioning (postgres_fdw partitions; local ones on request) and
# fdwshard (co-located src and dst, local and remote shards); writes
# bench/results/insert_select-<timestamp>.{md,csv}. Usage: bash bench/insert_select.sh [--skip-build].
# Environment: ROWS (1000000), SHARD_COUNT (32), REPEATS (5), SYSTEMS (plain native_fdw fdwshard_local
# fdwshard_remote; native_local as well on request), SHARED_BUFFERS (1GB), FDWSHARD_PG_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

source bench/lib.sh
bench_args "$@"
ROWS=${ROWS:-1000000}
SHARD_COUNT=${SHARD_COUNT:-32}
REPEATS=${REPEATS:-5}
SYSTEMS=${SYSTEMS:-plain native_fdw fdwshard_local fdwshard_remote}
SHARED_BUFFERS=${SHARED_BUFFERS:-1GB}
ROWS_PER_TENANT=100

source test/cluster.sh # sets PG_BIN from FDWSHARD_PG_BIN

[[ " $SYSTEMS " == *" plain "* ]] || echo "note: without plain in SYSTEMS there are no ratios" >&2
read -ra systems <<<"$SYSTEMS"
echo "== plan: ${#systems[@]} systems x $REPEATS INSERT ... SELECTs of $ROWS rows, interleaved"

bench_start insert_select
bench_tune

# bench/run.sh's events, tenant by tenant; src and dst have the same columns and primary key.
COLUMNS="tenant_id int NOT NULL, id bigint NOT NULL, value int NOT NULL, payload text,
         kind text, amount numeric, touched int"
TENANTS=$(((ROWS + ROWS_PER_TENANT - 1) / ROWS_PER_TENANT))
SOURCE_ROWS="SELECT t, i, (t * 7 + i * 13) % 1000, md5((t * 1000 + i)::text), 'k' || (t + i) % 10,
                    ((t * 31 + i * 17) % 10000) / 100.0, 0
             FROM generate_series(1, $TENANTS) t, generate_series(1, $ROWS_PER_TENANT) i ORDER BY t, i LIMIT $ROWS"
STATEMENT="INSERT INTO dst SELECT * FROM src"

create_plain() { # DB
	sql "$C" "$1" <<-SQL
		CREATE TABLE src ($COLUMNS, PRIMARY KEY (tenant_id, id));
		INSERT INTO src $SOURCE_ROWS;
		CREATE TABLE dst ($COLUMNS, PRIMARY KEY (tenant_id, id));
	SQL
}
create_native_local() { # DB
	local t
	for t in src dst; do
		sql "$C" "$1" <<-SQL
			CREATE TABLE $t ($COLUMNS, PRIMARY KEY (tenant_id, id)) PARTITION BY HASH (tenant_id);
			SELECT format('CREATE TABLE ${t}_%s PARTITION OF $t FOR VALUES WITH (MODULUS $SHARD_COUNT, REMAINDER %s)', r, r)
			FROM generate_series(0, $SHARD_COUNT - 1) r \gexec
		SQL
	done
	sql "$C" "$1" -c "INSERT INTO src $SOURCE_ROWS"
}
create_native_fdw() { # DB: bench_native_fdw's src and dst, src filled on the workers
	bench_native_fdw "$1" src dst
	# src's rows go straight into the workers' tables (postgres_fdw would insert them in batches
	# of 1000 rows): hash-partitioned by a local table of the same partitioning, each partition
	# copied into its worker's table.
	sql "$C" "$1" <<-SQL
		CREATE TABLE stage ($COLUMNS) PARTITION BY HASH (tenant_id);
		SELECT format('CREATE TABLE stage_%s PARTITION OF stage FOR VALUES WITH (MODULUS $SHARD_COUNT, REMAINDER %s)', r, r)
		FROM generate_series(0, $SHARD_COUNT - 1) r \gexec
		INSERT INTO stage $SOURCE_ROWS;
	SQL
	local r
	for r in $(seq 0 $((SHARD_COUNT - 1))); do
		sql "$C" "$1" -c "COPY stage_$r TO STDOUT" | sql "${W[$((r % 2))]}" "$1" -c "COPY src_$r FROM STDIN"
	done
	sql "$C" "$1" -c "DROP TABLE stage"
}
create_fdwshard() { # DB local|remote: src and dst in one co-location group
	local nodes=""
	[ "$2" = remote ] && nodes="SELECT fdwshard_add_node('127.0.0.1', ${W[0]});
		SELECT fdwshard_add_node('127.0.0.1', ${W[1]});
		SELECT fdwshard_set_node_property(1, 'should_have_shards', false);"
	sql "$C" "$1" >/dev/null <<-SQL
		SET client_min_messages = warning;
		CREATE EXTENSION fdwshard CASCADE;
		$nodes
		CREATE TABLE src ($COLUMNS, PRIMARY KEY (tenant_id, id));
		INSERT INTO src $SOURCE_ROWS;
		SELECT create_distributed_table('src', 'tenant_id', shard_count := $SHARD_COUNT);
		CREATE TABLE dst ($COLUMNS, PRIMARY KEY (tenant_id, id));
		SELECT create_distributed_table('dst', 'tenant_id', shard_count := $SHARD_COUNT, colocate_with := 'src');
	SQL
}
# What each system must look like: "foreign partitions|partitions" of src and of dst.
expected_layout() {
	case $1 in
	plain) echo "0|0" ;;
	native_local | fdwshard_local) echo "0|$SHARD_COUNT" ;;
	native_fdw | fdwshard_remote) echo "$SHARD_COUNT|$SHARD_COUNT" ;;
	esac
}
layout() { # DB TABLE
	sql "$C" "$1" -c "SELECT count(*) FILTER (WHERE c.relkind = 'f') || '|' || count(*)
	                  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '$2'::regclass"
}
describe() {
	case $1 in
	plain) echo "one table" ;;
	native_local) echo "PARTITION BY HASH, $SHARD_COUNT local partitions each" ;;
	native_fdw) echo "PARTITION BY HASH, $SHARD_COUNT postgres_fdw partitions each on 2 workers (seed 000; batch_size 1000)" ;;
	fdwshard_local) echo "$SHARD_COUNT co-located shards each, all on the coordinator" ;;
	fdwshard_remote) echo "$SHARD_COUNT co-located shards each on 2 workers, none on the coordinator" ;;
	esac
}

echo "== creating one database per system: src with $ROWS rows, dst empty"
declare -A PLAN
for sys in "${systems[@]}"; do
	for port in "$C" "${W[@]}"; do sql "$port" postgres -c "CREATE DATABASE $sys"; done
	case $sys in
	plain) create_plain "$sys" ;;
	native_local) create_native_local "$sys" ;;
	native_fdw) create_native_fdw "$sys" ;;
	fdwshard_local) create_fdwshard "$sys" local ;;
	fdwshard_remote) create_fdwshard "$sys" remote ;;
	*) echo "unknown system $sys" >&2; exit 2 ;;
	esac
	for t in src dst; do
		got=$(layout "$sys" "$t")
		[ "$got" = "$(expected_layout "$sys")" ] ||
			{ echo "!! $sys: $t has foreign|all partitions $got, expected $(expected_layout "$sys")" >&2; exit 1; }
	done
	# Hint bits, visibility map and statistics everywhere before the first timed run.
	sql "$C" "$sys" -c "VACUUM ANALYZE"
	if [ "$sys" = native_fdw ]; then
		for port in "${W[@]}"; do sql "$port" "$sys" -c "VACUUM ANALYZE"; done
		sql "$C" "$sys" <<<"SELECT format('ANALYZE %s', oid::regclass) FROM pg_class WHERE relkind = 'f' \gexec"
	fi
	got=$(sql "$C" "$sys" -c "SELECT count(*) FROM src")
	[ "$got" = "$ROWS" ] || { echo "!! $sys: src has $got rows, expected $ROWS" >&2; exit 1; }
	PLAN[$sys]=$(sql "$C" "$sys" -c "EXPLAIN (COSTS OFF) $STATEMENT" | head -1 | sed 's/^ *//')
	echo "   $sys: src and dst partitions (foreign|all) $(expected_layout "$sys"); plan: ${PLAN[$sys]}"
done
EXPECTED=$(sql "$C" "${systems[0]}" -c "SELECT count(*) || '|' || sum(value) || '|' || sum(hashtext(payload)) FROM src")

# run_one ROUND SYSTEM: TRUNCATE dst, CHECKPOINT everywhere (untimed), then the timed statement; checks dst.
run_one() {
	local round=$1 sys=$2 got
	k=$((k + 1))
	sql "$C" "$sys" -c "TRUNCATE dst"
	bench_timed "$sys" "$STATEMENT" "round $round $sys"
	got=$(sql "$C" "$sys" -c "SELECT count(*) || '|' || sum(value) || '|' || sum(hashtext(payload)) FROM dst")
	if [ -z "$ms" ] || [ "$(echo "$out" | grep -c "^INSERT 0 $ROWS\$")" != 1 ] || [ "$got" != "$EXPECTED" ]; then
		echo "!! $sys: time '$ms' ms, output '$out', count|sum(value)|sum(hash) $got, expected $EXPECTED" >&2
		exit 1
	fi
	bench_record "$round" "$sys" "$ROWS" "$ms" 16
}

bench_rounds "$STATEMENT"

runs() { awk -F, -v s="$1" '$2 == s { printf "%s%.2f", (n++ ? " " : ""), $4 }' "$CSV"; }
declare -A SECS
for sys in "${systems[@]}"; do SECS[$sys]=$(median "$sys" 4); done
ratio() { # A B: time of A / time of B (lower is faster), or - when either is not measured
	if [ -n "${SECS[$1]:-}" ] && [ -n "${SECS[$2]:-}" ]; then awk -v a="${SECS[$1]}" -v b="${SECS[$2]}" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi
}
target() { # DESCRIPTION A B MAX: time of A at most MAX x time of B
	local r
	r=$(ratio "$2" "$3")
	[ "$r" = - ] && return 0
	echo "| $1 | $r | $(awk -v r="$r" -v m="$4" 'BEGIN { print (r <= m) ? "**met**" : "**not met**" }') |"
}

{
	echo "# fdwshard INSERT ... SELECT benchmark, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "- fdwshard $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), $("$PG_BIN/postgres" --version)," \
		"$(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
	echo "- one coordinator + 2 workers on this machine (test/cluster.sh settings: fsync and synchronous_commit off;" \
		"shared_buffers $SHARED_BUFFERS, autovacuum off, max_wal_size 8GB)"
	echo "- \`src\` and \`dst\`: \`($(echo $COLUMNS), PRIMARY KEY (tenant_id, id))\` (no primary key on native_fdw's parents)," \
		"src holding the rows of bench/run.sh tenant by tenant ($ROWS_PER_TENANT per tenant, $ROWS rows), dst empty"
	echo "- \`$STATEMENT\` timed by psql's \\timing; before each: TRUNCATE dst, CHECKPOINT on every node (untimed);" \
		"after each: the command tag, count, sum(value) and sum(hashtext(payload)) of dst checked; median of $REPEATS runs," \
		"interleaved across systems; load average before/after: $LOADAVG_BEFORE / $LOADAVG_AFTER"
	echo
	echo "| system | | plan | median s | median rows/s | x plain time | seconds of the runs |"
	echo "|---|---|---|---:|---:|---:|---|"
	for sys in "${systems[@]}"; do
		printf '| %s | %s | `%s` | %.2f | %.0f | %s | %s |\n' "$sys" "$(describe "$sys")" "${PLAN[$sys]}" "${SECS[$sys]}" \
			"$(median "$sys" 5)" "$(ratio "$sys" plain)" "$(runs "$sys")"
	done
	echo
	echo "x plain time: the median time over the plain table's (lower is faster)."
	echo
	echo "#### Targets (issue 11)"
	echo
	echo "| target | x plain time | |"
	echo "|---|---:|---|"
	target "co-located INSERT ... SELECT, fdwshard_remote no slower than plain" fdwshard_remote plain 1.0
	target "co-located INSERT ... SELECT, fdwshard_local no slower than plain" fdwshard_local plain 1.0
} >"$REPORT"
echo
cat "$REPORT"
echo
echo "== wrote $REPORT, $CSV and $LOG"
