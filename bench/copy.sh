#!/usr/bin/env bash
# COPY benchmark: rows/s of COPY ... FROM '<csv file>' into a plain table, native hash partitioning
# (local and postgres_fdw partitions) and fdwshard (local and remote shards); writes
# bench/results/copy-<timestamp>.{md,csv}. Usage: bash bench/copy.sh [--skip-build]; parameters via
# environment, see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

source bench/lib.sh
bench_args "$@"
ROWS=${ROWS:-1000000}
# The postgres_fdw systems load one row per round trip today (~115 s for 1M rows): fewer rows for them.
NATIVE_FDW_ROWS=${NATIVE_FDW_ROWS:-$ROWS}
FDWSHARD_REMOTE_ROWS=${FDWSHARD_REMOTE_ROWS:-$ROWS}
SHARD_COUNT=${SHARD_COUNT:-32}
REPEATS=${REPEATS:-3}
SYSTEMS=${SYSTEMS:-plain native_local native_fdw fdwshard_local fdwshard_remote}
SHARED_BUFFERS=${SHARED_BUFFERS:-1GB}
ROWS_PER_TENANT=100

source test/cluster.sh # sets PG_BIN from FDWSHARD_PG_BIN

rows_of() { # SYSTEM: rows its COPY loads
	case $1 in
	native_fdw) echo "$NATIVE_FDW_ROWS" ;;
	fdwshard_remote) echo "$FDWSHARD_REMOTE_ROWS" ;;
	plain | native_local | fdwshard_local) echo "$ROWS" ;;
	*) echo "unknown system $1" >&2; exit 2 ;;
	esac
}
for sys in $SYSTEMS; do
	n=$(rows_of "$sys")
	[ "$n" -le "$ROWS" ] && [ "$n" -ge 1 ] || { echo "$sys: $n rows, want 1..ROWS ($ROWS)" >&2; exit 2; }
done
[[ " $SYSTEMS " == *" plain "* ]] || echo "note: without plain in SYSTEMS there are no ratios" >&2
read -ra systems <<<"$SYSTEMS"
echo "== plan: ${#systems[@]} systems x $REPEATS COPYs of up to $ROWS rows, interleaved"

bench_start copy
bench_tune

# The rows of bench/run.sh's events, tenant by tenant, as one CSV file the servers can read; each
# system loads its first rows_of(system) lines (a file of its own when fewer).
COLUMNS="tenant_id int NOT NULL, id bigint NOT NULL, value int NOT NULL, payload text,
         kind text, amount numeric, touched int"
TENANTS=$(((ROWS + ROWS_PER_TENANT - 1) / ROWS_PER_TENANT))
echo "== writing $ROWS rows to $WORK/rows.csv"
sql "$C" postgres -c "COPY (SELECT t, i, (t * 7 + i * 13) % 1000, md5((t * 1000 + i)::text),
                                  'k' || (t + i) % 10, ((t * 31 + i * 17) % 10000) / 100.0, 0
                           FROM generate_series(1, $TENANTS) t, generate_series(1, $ROWS_PER_TENANT) i
                           ORDER BY t, i LIMIT $ROWS) TO STDOUT (FORMAT csv)" >"$WORK/rows.csv"
declare -A FILE SUM
for sys in "${systems[@]}"; do
	n=$(rows_of "$sys")
	FILE[$sys]=$WORK/rows.csv
	if [ "$n" != "$ROWS" ]; then
		FILE[$sys]=$WORK/rows-$n.csv
		[ -f "${FILE[$sys]}" ] || head -n "$n" "$WORK/rows.csv" >"${FILE[$sys]}"
	fi
	SUM[$sys]=$(awk -F, '{ s += $3 } END { print s + 0 }' "${FILE[$sys]}")
done
chmod 644 "$WORK"/*.csv
echo "   $(du -h "$WORK/rows.csv" | cut -f1) csv"

create_plain() { sql "$C" "$1" -c "CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id))"; }
create_native_local() { # DB
	sql "$C" "$1" <<-SQL
		CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id)) PARTITION BY HASH (tenant_id);
		SELECT format('CREATE TABLE events_%s PARTITION OF events FOR VALUES WITH (MODULUS $SHARD_COUNT, REMAINDER %s)', r, r)
		FROM generate_series(0, $SHARD_COUNT - 1) r \gexec
	SQL
}
create_fdwshard() { # DB local|remote
	local nodes=""
	[ "$2" = remote ] && nodes="SELECT fdwshard_add_node('127.0.0.1', ${W[0]});
		SELECT fdwshard_add_node('127.0.0.1', ${W[1]});
		SELECT fdwshard_set_node_property(1, 'should_have_shards', false);"
	sql "$C" "$1" >/dev/null <<-SQL
		SET client_min_messages = warning;
		CREATE EXTENSION fdwshard CASCADE;
		$nodes
		CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id));
		SELECT create_distributed_table('events', 'tenant_id', shard_count := $SHARD_COUNT);
	SQL
}
# What each system must look like: "foreign partitions|partitions" of events.
expected_layout() {
	case $1 in
	plain) echo "0|0" ;;
	native_local | fdwshard_local) echo "0|$SHARD_COUNT" ;;
	native_fdw | fdwshard_remote) echo "$SHARD_COUNT|$SHARD_COUNT" ;;
	esac
}
LAYOUT="SELECT count(*) FILTER (WHERE c.relkind = 'f') || '|' || count(*)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass"

echo "== creating one database per system, $SHARD_COUNT partitions or shards"
for sys in "${systems[@]}"; do
	for port in "$C" "${W[@]}"; do sql "$port" postgres -c "CREATE DATABASE $sys"; done
	case $sys in
	plain) create_plain "$sys" ;;
	native_local) create_native_local "$sys" ;;
	native_fdw) bench_native_fdw "$sys" events ;;
	fdwshard_local) create_fdwshard "$sys" local ;;
	fdwshard_remote) create_fdwshard "$sys" remote ;;
	esac
	layout=$(sql "$C" "$sys" -c "$LAYOUT")
	[ "$layout" = "$(expected_layout "$sys")" ] ||
		{ echo "!! $sys: events has foreign|all partitions $layout, expected $(expected_layout "$sys")" >&2; exit 1; }
	echo "   $sys: partitions (foreign|all) $layout, loads $(rows_of "$sys") rows"
done

# run_one ROUND SYSTEM: TRUNCATE, CHECKPOINT everywhere (untimed), then the timed COPY; checks the rows.
run_one() {
	local round=$1 sys=$2 n got
	n=$(rows_of "$sys")
	k=$((k + 1))
	sql "$C" "$sys" -c "TRUNCATE events"
	bench_timed "$sys" "COPY events FROM '${FILE[$sys]}' (FORMAT csv)" "round $round $sys"
	got=$(sql "$C" "$sys" -c "SELECT count(*) || '|' || coalesce(sum(value), 0) FROM events")
	if [ -z "$ms" ] || [ "$(echo "$out" | grep -c "^COPY $n\$")" != 1 ] || [ "$got" != "$n|${SUM[$sys]}" ]; then
		echo "!! $sys: time '$ms' ms, output '$out', count|sum(value) $got, expected $n|${SUM[$sys]}" >&2
		exit 1
	fi
	bench_record "$round" "$sys" "$n" "$ms" 16
}

bench_rounds "COPY ... FROM file (FORMAT csv)"

bench_rates
target() { # DESCRIPTION A B MIN
	local r
	r=$(rate_ratio "$2" "$3")
	[ "$r" = - ] && return 0
	echo "| $1 | $r | $(awk -v r="$r" -v m="$4" 'BEGIN { print (r >= m) ? "**met**" : "**not met**" }') |"
}
describe() {
	case $1 in
	plain) echo "one table" ;;
	native_local) echo "PARTITION BY HASH, $SHARD_COUNT local partitions" ;;
	native_fdw) echo "PARTITION BY HASH, $SHARD_COUNT postgres_fdw partitions on 2 workers (seed 000; batch_size 1000)" ;;
	fdwshard_local) echo "$SHARD_COUNT shards, all on the coordinator" ;;
	fdwshard_remote) echo "$SHARD_COUNT shards on 2 workers, none on the coordinator" ;;
	esac
}

{
	echo "# fdwshard COPY benchmark, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "- fdwshard $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), $("$PG_BIN/postgres" --version)," \
		"$(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
	echo "- one coordinator + 2 workers on this machine (test/cluster.sh settings: fsync and synchronous_commit off;" \
		"shared_buffers $SHARED_BUFFERS, autovacuum off, max_wal_size 8GB)"
	echo "- \`events ($(echo $COLUMNS), PRIMARY KEY (tenant_id, id))\` (no primary key on native_fdw's parent), the rows of" \
		"bench/run.sh tenant by tenant ($ROWS_PER_TENANT per tenant), one CSV file of $ROWS rows on the coordinator's machine"
	echo "- \`COPY events FROM '<file>' (FORMAT csv)\` timed by psql's \\timing; before each: TRUNCATE, CHECKPOINT on every" \
		"node (untimed); after each: count and sum(value) checked; median of $REPEATS runs, interleaved across systems;" \
		"load average before/after: $LOADAVG_BEFORE / $LOADAVG_AFTER"
	echo
	echo "| system | | rows | median s | median rows/s | x plain | rows/s of the runs |"
	echo "|---|---|---:|---:|---:|---:|---|"
	for sys in "${systems[@]}"; do
		printf '| %s | %s | %s | %.2f | %.0f | %s | %s |\n' "$sys" "$(describe "$sys")" "$(rows_of "$sys")" "${SECS[$sys]}" \
			"${RATE[$sys]}" "$(rate_ratio "$sys" plain)" "$(rate_runs "$sys")"
	done
	if [ "$NATIVE_FDW_ROWS" != "$ROWS" ] || [ "$FDWSHARD_REMOTE_ROWS" != "$ROWS" ]; then
		echo
		echo "Systems that load fewer rows are compared by rows/s (their first rows of the same file)."
	fi
	echo
	echo "#### Targets (issue 11)"
	echo
	echo "| target | ratio | |"
	echo "|---|---:|---|"
	target "fdwshard_remote >= 1.5 x plain (rows/s)" fdwshard_remote plain 1.5
	target "fdwshard_remote >= 20 x native_fdw (rows/s)" fdwshard_remote native_fdw 20
	target "fdwshard_local >= 0.9 x plain (rows/s)" fdwshard_local plain 0.9
} >"$REPORT"
echo
cat "$REPORT"
echo
echo "== wrote $REPORT, $CSV and $LOG"
