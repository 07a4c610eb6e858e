#!/usr/bin/env bash
# Bulk upsert benchmark: one 10,000-row INSERT ... VALUES ... ON CONFLICT (key) DO UPDATE (half new keys,
# half existing) and one 10,000-row multi-row INSERT into a plain table, native hash partitioning with
# postgres_fdw partitions and fdwshard (shards on two workers); writes bench/results/upsert-<timestamp>.{md,csv}.
# Usage: bash bench/upsert.sh [--skip-build]; ROWS, SHARD_COUNT, REPEATS, SYSTEMS via environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

source bench/lib.sh
bench_args "$@"
ROWS=${ROWS:-10000}
SHARD_COUNT=${SHARD_COUNT:-32}
REPEATS=${REPEATS:-5}
SYSTEMS=${SYSTEMS:-plain native_fdw fdwshard}
WORKLOADS="upsert insert"
ROWS_PER_TENANT=100

source test/cluster.sh # sets PG_BIN from FDWSHARD_PG_BIN
read -ra systems <<<"$SYSTEMS"
[[ " $SYSTEMS " == *" plain "* ]] || echo "note: without plain in SYSTEMS there are no ratios" >&2
echo "== plan: ${#systems[@]} systems x 2 statements x $REPEATS runs of $ROWS rows, interleaved"

bench_start upsert
C=$COORDINATOR_PORT
W=("$WORKER1_PORT" "$WORKER2_PORT")

COLUMNS="tenant_id int NOT NULL, id bigint NOT NULL, value int NOT NULL, payload text, touched int NOT NULL DEFAULT 0"
TENANTS=$((ROWS / ROWS_PER_TENANT))
# The table before an upsert: half the keys (ids 1-50 of every tenant); the upsert brings every
# tenant's ids 1-100, so half its rows update and half insert. The insert starts from an empty table.
EXISTING="SELECT t, i, 0, 'old' FROM generate_series(1, $TENANTS) t, generate_series(1, $((ROWS_PER_TENANT / 2))) i"
NEW_ROWS="SELECT t, i, (t * 7 + i * 13) % 1000 AS v, md5((t * 1000 + i)::text) AS p
          FROM generate_series(1, $TENANTS) t, generate_series(1, $ROWS_PER_TENANT) i ORDER BY i, t"
statement() { # WORKLOAD: the statement's text, one line per row
	local tail=""
	[ "$1" = upsert ] && tail=" ON CONFLICT (tenant_id, id) DO UPDATE SET value = EXCLUDED.value, payload = EXCLUDED.payload, touched = events.touched + 1"
	sql "$C" postgres -c "SELECT 'INSERT INTO events (tenant_id, id, value, payload) VALUES ' ||
		string_agg(format('(%s, %s, %s, %L)', t, i, v, p), E',\n') || '$tail;' FROM ($NEW_ROWS) r(t, i, v, p)"
}
for w in $WORKLOADS; do statement "$w" >"$WORK/$w.sql"; done
chmod 644 "$WORK"/*.sql
# After either statement: ROWS rows, the new values; touched = 1 on the upserted half.
EXPECTED=$(sql "$C" postgres -c "SELECT count(*) || '|' || sum(v) FROM ($NEW_ROWS) r(t, i, v, p)")
declare -A TOUCHED=([upsert]=$((ROWS / 2)) [insert]=0)
echo "   statements of $(du -h "$WORK/upsert.sql" | cut -f1) each; after each: count|sum(value) $EXPECTED"

create_plain() { sql "$C" "$1" -c "CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id))"; }
create_fdwshard() { # DB: shards on the two workers, none on the coordinator
	sql "$C" "$1" >/dev/null <<-SQL
		SET client_min_messages = warning;
		CREATE EXTENSION fdwshard CASCADE;
		SELECT fdwshard_add_node('127.0.0.1', ${W[0]});
		SELECT fdwshard_add_node('127.0.0.1', ${W[1]});
		SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
		CREATE TABLE events ($COLUMNS, PRIMARY KEY (tenant_id, id));
		SELECT create_distributed_table('events', 'tenant_id', shard_count := $SHARD_COUNT);
	SQL
}
describe() {
	case $1 in
	plain) echo "one table, PRIMARY KEY (tenant_id, id)" ;;
	native_fdw) echo "PARTITION BY HASH, $SHARD_COUNT postgres_fdw partitions on 2 workers (keys on the workers; batch_size 1000)" ;;
	fdwshard) echo "$SHARD_COUNT shards on 2 workers, none on the coordinator" ;;
	esac
}

echo "== creating one database per system"
for sys in "${systems[@]}"; do
	for port in "$C" "${W[@]}"; do sql "$port" postgres -c "CREATE DATABASE $sys"; done
	case $sys in
	plain) create_plain "$sys" ;;
	native_fdw) bench_native_fdw "$sys" events ;;
	fdwshard) create_fdwshard "$sys" ;;
	*) echo "unknown system $sys" >&2; exit 2 ;;
	esac
done

declare -A FAILED
# run_one ROUND SYSTEM WORKLOAD: the table as the workload starts (untimed), then the timed statement; checks the rows.
run_one() {
	local round=$1 sys=$2 w=$3 out ms got port
	k=$((k + 1))
	sql "$C" "$sys" -c "TRUNCATE events"
	[ "$w" = upsert ] && sql "$C" "$sys" -c "INSERT INTO events (tenant_id, id, value, payload) $EXISTING"
	sql "$C" "$sys" -c "VACUUM ANALYZE events" 2>/dev/null || true
	for port in "$C" "${W[@]}"; do sql "$port" postgres -c "CHECKPOINT"; done
	echo "-- round $round $sys $w" >>"$LOG"
	if ! out=$(psql_on "$C" -d "$sys" -v ON_ERROR_STOP=1 -c '\timing on' -f "$WORK/$w.sql" 2>&1); then
		echo "$out" | tail -5 >>"$LOG"
		FAILED[$sys,$w]=$(echo "$out" | sed -n 's/^psql:[^E]*ERROR:  //p' | head -1)
		echo "   [$k/$total] round $round $sys $w: fails: ${FAILED[$sys,$w]}"
		return 0
	fi
	echo "$out" | grep -v "^INSERT" >>"$LOG"
	ms=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
	got=$(sql "$C" "$sys" -c "SELECT count(*) || '|' || sum(value) FROM events")
	touched=$(sql "$C" "$sys" -c "SELECT count(*) FROM events WHERE touched = 1")
	if [ -z "$ms" ] || [ "$(echo "$out" | grep -c "^INSERT 0 $ROWS\$")" != 1 ] || [ "$got" != "$EXPECTED" ] ||
		[ "$touched" != "${TOUCHED[$w]}" ]; then
		echo "!! $sys $w: time '$ms' ms, output '$(echo "$out" | head -3)', count|sum(value) $got (expected $EXPECTED), touched $touched (expected ${TOUCHED[$w]})" >&2
		exit 1
	fi
	echo "$round,$sys,$w,$ms" >>"$CSV"
	printf '   [%d/%d] round %d %-10s %-6s %8.1f ms\n' "$k" "$total" "$round" "$sys" "$w" "$ms"
}

echo "== timing the statements (psql \\timing); $REPEATS rounds, systems interleaved"
echo "round,system,workload,ms" >"$CSV"
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
k=0
total=$((REPEATS * ${#systems[@]} * 2))
for round in $(seq 1 "$REPEATS"); do
	for w in $WORKLOADS; do
		for sys in "${systems[@]}"; do
			# A statement that fails (native_fdw's upsert: 42P10) is run once, not timed.
			if [ -n "${FAILED[$sys,$w]:-}" ]; then k=$((k + 1)); continue; fi
			run_one "$round" "$sys" "$w"
		done
	done
done
LOADAVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

median() { # SYSTEM WORKLOAD: median ms over its runs
	awk -F, -v s="$1" -v w="$2" '$2 == s && $3 == w { print $4 }' "$CSV" | sort -g |
		awk '{ x[++n] = $1 } END { if (n) printf "%.1f", n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }'
}
runs() { awk -F, -v s="$1" -v w="$2" '$2 == s && $3 == w { printf "%s%.0f", (n++ ? " " : ""), $4 }' "$CSV"; }
declare -A MS
for w in $WORKLOADS; do for sys in "${systems[@]}"; do MS[$sys,$w]=$(median "$sys" "$w"); done; done
paired() { # SYSTEM WORKLOAD: the median over rounds of its time / plain's time in the same round, or -
	awk -F, -v s="$1" -v w="$2" '$3 == w && $2 == "plain" { p[$1] = $4 } $3 == w && $2 == s { t[$1] = $4 }
		END { for (r in t) if (r in p) print t[r] / p[r] }' "$CSV" | sort -g |
		awk '{ x[++n] = $1 } END { if (n) printf "%.2f", n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2; else printf "-" }'
}
ratio() { # SYSTEM WORKLOAD: its median time / plain's (lower is faster), or -
	local a=${MS[$1,$2]:-} b=${MS[plain,$2]:-}
	if [ -n "$a" ] && [ -n "$b" ]; then awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi
}

{
	echo "# fdwshard bulk upsert benchmark, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "- fdwshard $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), $("$PG_BIN/postgres" --version)," \
		"$(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
	echo "- one coordinator + 2 workers on this machine (test/cluster.sh settings: fsync and synchronous_commit off)"
	echo "- \`events ($COLUMNS)\`, key (tenant_id, id); $TENANTS tenants x $ROWS_PER_TENANT ids"
	echo "- **upsert**: one statement \`INSERT INTO events (tenant_id, id, value, payload) VALUES <$ROWS rows> ON CONFLICT" \
		"(tenant_id, id) DO UPDATE SET value = EXCLUDED.value, payload = EXCLUDED.payload, touched = events.touched + 1\`" \
		"into a table holding ids 1-$((ROWS_PER_TENANT / 2)) of every tenant: $((ROWS / 2)) rows updated, $((ROWS / 2)) inserted"
	echo "- **insert**: the same $ROWS rows as one multi-row \`INSERT ... VALUES\` into an empty table"
	echo "- timed by psql's \\timing (the client sends the whole statement); before each: TRUNCATE, the existing rows," \
		"VACUUM ANALYZE, CHECKPOINT on every node (untimed); after each: count, sum(value) and the updated rows checked;" \
		"median of $REPEATS runs, interleaved across systems; load average before/after: $LOADAVG_BEFORE / $LOADAVG_AFTER"
	for sys in "${systems[@]}"; do echo "- **$sys**: $(describe "$sys")"; done
	echo
	echo "| statement | system | median ms | x plain (time) | x plain, same round (median) | ms of the runs |"
	echo "|---|---|---:|---:|---:|---|"
	for w in $WORKLOADS; do
		for sys in "${systems[@]}"; do
			if [ -n "${FAILED[$sys,$w]:-}" ]; then
				echo "| $w | $sys | fails | - | - | ERROR: ${FAILED[$sys,$w]} |"
			else
				echo "| $w | $sys | ${MS[$sys,$w]} | $(ratio "$sys" "$w") | $(paired "$sys" "$w") | $(runs "$sys" "$w") |"
			fi
		done
	done
	echo
	echo "#### Target (issue 11)"
	echo
	echo "Each round runs the systems one after the other, so the ratio within a round is the least"
	echo "exposed to a machine shared with other work; both ratios are given."
	echo
	r=$(ratio fdwshard upsert)
	p=$(paired fdwshard upsert)
	if [ "$r" != - ]; then
		echo "| target | x plain (medians) | x plain (same round, median) | |"
		echo "|---|---:|---:|---|"
		echo "| 10,000-row upsert on fdwshard within 2 x of plain | $r | $p | $(awk -v r="$r" -v p="$p" 'BEGIN { print (r <= 2 && p <= 2) ? "**met**" : (r <= 2 || p <= 2) ? "**met by one ratio**" : "**not met**" }') |"
	fi
} >"$REPORT"
echo
cat "$REPORT"
echo
echo "== wrote $REPORT, $CSV and $LOG"
