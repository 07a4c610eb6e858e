#!/usr/bin/env bash
# create_distributed_table benchmark: rows/s of distributing a filled 1M-row table (shards on two
# workers, and all local) next to INSERT INTO plain2 SELECT * FROM plain and a COPY of the same rows
# into a distributed table; writes bench/results/distribute-<timestamp>.{md,csv}.
# Usage: bash bench/distribute.sh [--skip-build]; ROWS, SHARD_COUNT, REPEATS via environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

source bench/lib.sh
bench_args "$@"
ROWS=${ROWS:-1000000}
SHARD_COUNT=${SHARD_COUNT:-32}
REPEATS=${REPEATS:-3}
SYSTEMS=${SYSTEMS:-plain_insert distribute_remote copy_remote distribute_local}
SHARED_BUFFERS=${SHARED_BUFFERS:-1GB}
ROWS_PER_TENANT=100

source test/cluster.sh # sets PG_BIN from FDWSHARD_PG_BIN
read -ra systems <<<"$SYSTEMS"
[[ " $SYSTEMS " == *" plain_insert "* ]] || echo "note: without plain_insert in SYSTEMS there are no ratios" >&2
echo "== plan: ${#systems[@]} systems x $REPEATS runs of $ROWS rows, interleaved"

bench_start distribute
bench_tune

# bench/copy.sh's events: the rows of bench/run.sh, tenant by tenant.
COLUMNS="tenant_id int NOT NULL, id bigint NOT NULL, value int NOT NULL, payload text,
         kind text, amount numeric, touched int"
TENANTS=$(((ROWS + ROWS_PER_TENANT - 1) / ROWS_PER_TENANT))
ROWS_SQL="SELECT t, i, (t * 7 + i * 13) % 1000, md5((t * 1000 + i)::text), 'k' || (t + i) % 10,
                 ((t * 31 + i * 17) % 10000) / 100.0, 0
          FROM generate_series(1, $TENANTS) t, generate_series(1, $ROWS_PER_TENANT) i ORDER BY t, i LIMIT $ROWS"
echo "== writing $ROWS rows to $WORK/rows.csv"
sql "$C" postgres -c "COPY ($ROWS_SQL) TO STDOUT (FORMAT csv)" >"$WORK/rows.csv"
chmod 644 "$WORK/rows.csv"
SUM=$(awk -F, '{ s += $3 } END { print s + 0 }' "$WORK/rows.csv")

# One database per system. plain_insert and distribute_* keep the rows in a plain table `plain`.
db_of() { case $1 in distribute_local) echo local ;; *) echo remote ;; esac; }
for db in remote local; do
	for port in "$C" "${W[@]}"; do sql "$port" postgres -c "CREATE DATABASE $db"; done
	sql "$C" $db >/dev/null <<-SQL
		SET client_min_messages = warning;
		CREATE EXTENSION fdwshard CASCADE;
		CREATE TABLE plain ($COLUMNS, PRIMARY KEY (tenant_id, id));
		INSERT INTO plain $ROWS_SQL;
		VACUUM ANALYZE plain;
	SQL
done
sql "$C" remote >/dev/null <<-SQL
	SELECT fdwshard_add_node('127.0.0.1', ${W[0]});
	SELECT fdwshard_add_node('127.0.0.1', ${W[1]});
	SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
SQL

# prepare SYSTEM: the untimed setup of a run; STATEMENT: what is timed; TABLE: where the rows end.
prepare() {
	case $1 in
	plain_insert) echo "SET client_min_messages = warning; DROP TABLE IF EXISTS plain2; CREATE TABLE plain2 ($COLUMNS, PRIMARY KEY (tenant_id, id))" ;;
	distribute_*) echo "SET client_min_messages = warning; DROP TABLE IF EXISTS events;
	                    CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id)); INSERT INTO events SELECT * FROM plain" ;;
	copy_remote) echo "SET client_min_messages = warning; DROP TABLE IF EXISTS events;
	                   CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id));
	                   SELECT create_distributed_table('events', 'tenant_id', shard_count := $SHARD_COUNT)" ;;
	esac
}
statement() {
	case $1 in
	plain_insert) echo "INSERT INTO plain2 SELECT * FROM plain" ;;
	distribute_*) echo "SELECT create_distributed_table('events', 'tenant_id', shard_count := $SHARD_COUNT)" ;;
	copy_remote) echo "COPY events FROM '$WORK/rows.csv' (FORMAT csv)" ;;
	esac
}
table_of() { case $1 in plain_insert) echo plain2 ;; *) echo events ;; esac; }
# The layout each system must end with: "foreign shards|shards".
expected_layout() {
	case $1 in
	plain_insert) echo "0|0" ;;
	distribute_local) echo "0|$SHARD_COUNT" ;;
	*) echo "$SHARD_COUNT|$SHARD_COUNT" ;;
	esac
}

# run_one ROUND SYSTEM: the untimed setup and a CHECKPOINT everywhere, then the timed statement;
# checks the rows and the layout.
run_one() {
	local round=$1 sys=$2 db out ms got layout port
	db=$(db_of "$sys")
	k=$((k + 1))
	sql "$C" "$db" -c "$(prepare "$sys")" >/dev/null
	case $sys in distribute_*) sql "$C" "$db" -c "VACUUM ANALYZE events" ;; esac
	bench_timed "$db" "$(statement "$sys")" "round $round $sys"
	got=$(sql "$C" "$db" -c "SELECT count(*) || '|' || coalesce(sum(value), 0) FROM $(table_of "$sys")")
	layout=$(sql "$C" "$db" -c "SELECT count(*) FILTER (WHERE c.relkind = 'f') || '|' || count(*)
	                            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	                            WHERE i.inhparent = '$(table_of "$sys")'::regclass")
	if [ -z "$ms" ] || [ "$got" != "$ROWS|$SUM" ] || [ "$layout" != "$(expected_layout "$sys")" ]; then
		echo "!! $sys: time '$ms' ms, count|sum(value) $got (expected $ROWS|$SUM)," \
			"foreign|all shards $layout (expected $(expected_layout "$sys")), output '$out'" >&2
		exit 1
	fi
	bench_record "$round" "$sys" "$ROWS" "$ms" 18
}

bench_rounds "the statements"

bench_rates
describe() {
	case $1 in
	plain_insert) echo "\`INSERT INTO plain2 SELECT * FROM plain\` (plain copy of the table)" ;;
	distribute_remote) echo "\`create_distributed_table\` of the filled table, $SHARD_COUNT shards on 2 workers (COPY path)" ;;
	copy_remote) echo "\`COPY ... FROM '<csv file>'\` into an empty distributed table, $SHARD_COUNT shards on 2 workers" ;;
	distribute_local) echo "\`create_distributed_table\` of the filled table, $SHARD_COUNT shards all on the coordinator (tuple routing)" ;;
	esac
}

{
	echo "# fdwshard create_distributed_table benchmark, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "- fdwshard $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), $("$PG_BIN/postgres" --version)," \
		"$(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), shared with other work"
	echo "- one coordinator + 2 workers on this machine (test/cluster.sh settings: fsync and synchronous_commit off;" \
		"shared_buffers $SHARED_BUFFERS, autovacuum off, max_wal_size 8GB)"
	echo "- \`($(echo $COLUMNS), PRIMARY KEY (tenant_id, id))\`, $ROWS rows of bench/run.sh tenant by tenant" \
		"($ROWS_PER_TENANT per tenant); every table has the primary key, so each time includes building it"
	echo "- each statement timed by psql's \\timing; before each (untimed): the target table created (and, to" \
		"distribute, filled from \`plain\` and vacuumed), CHECKPOINT on every node; after each: count, sum(value)" \
		"and the shards checked; median of $REPEATS runs, interleaved across systems;" \
		"load average before/after: $LOADAVG_BEFORE / $LOADAVG_AFTER"
	echo
	echo "| system | | rows | median s | median rows/s | x plain copy | rows/s of the runs |"
	echo "|---|---|---:|---:|---:|---:|---|"
	for sys in "${systems[@]}"; do
		printf '| %s | %s | %s | %.2f | %.0f | %s | %s |\n' "$sys" "$(describe "$sys")" "$ROWS" "${SECS[$sys]}" \
			"${RATE[$sys]}" "$(rate_ratio "$sys" plain_insert)" "$(rate_runs "$sys")"
	done
} >"$REPORT"
echo
cat "$REPORT"
echo
echo "== wrote $REPORT, $CSV and $LOG"
