#!/usr/bin/env bash
# Two-phase commit benchmark: TPS of a write transaction over two workers with 2PC on and off, and of
# one over a single worker (which never prepares) with it on and off; writes
# bench/results/two_phase-<timestamp>.{md,csv}. Usage: bash bench/two_phase.sh [--skip-build];
# parameters via environment, see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

source bench/lib.sh
bench_args "$@"
TENANTS=${TENANTS:-10000}
SHARD_COUNT=${SHARD_COUNT:-32}
PAIRS=${PAIRS:-1000}
DURATION=${DURATION:-10}
REPEATS=${REPEATS:-5}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
# SYNC=1: fsync and synchronous_commit on on every node (test/cluster.sh turns both off), so that
# the flushes of PREPARE, of the decision log and of COMMIT PREPARED are paid as in production.
SYNC=${SYNC:-0}

source test/cluster.sh # sets PG_BIN from FDWSHARD_PG_BIN

# The variants, in the order each round runs them: name|2PC setting|pair columns|description.
VARIANTS=(
	"two_node_2pc|on|two|two-node write (one UPDATE on worker 1, one on worker 2), 2PC on"
	"two_node_no2pc|off|two|the same, fdwshard.two_phase_commit = off"
	"one_node_2pc|on|one|one-node write (two UPDATEs on tenants of the same worker), 2PC on"
	"one_node_no2pc|off|one|the same, fdwshard.two_phase_commit = off"
)
echo "== plan: ${#VARIANTS[@]} variants x $REPEATS runs of ${DURATION}s (~$(((${#VARIANTS[@]} * REPEATS * DURATION * 21 / 20 + 30 + 59) / 60)) min)"

bench_start two_phase
C=$COORDINATOR_PORT
if [ "$SYNC" = 1 ]; then
	for port in "$C" "$WORKER1_PORT" "$WORKER2_PORT"; do
		psql_on "$port" -q -c "ALTER SYSTEM SET fsync = on" -c "ALTER SYSTEM SET synchronous_commit = on"
	done
	for name in "${CLUSTER_NODES[@]}"; do node_stop "$name" && node_restart "$name"; done
	C=$COORDINATOR_PORT
fi
db=bench_two_phase
sql() { # DB [psql args]: stops at the first error, prints unaligned
	local d=$1; shift
	psql_on "$C" -d "$d" -v ON_ERROR_STOP=1 -qAt "$@"
}
for port in "$C" "$WORKER1_PORT" "$WORKER2_PORT"; do psql_on "$port" -qc "CREATE DATABASE $db"; done

echo "== loading $TENANTS tenants, $SHARD_COUNT shards on the two workers"
# accounts on the workers only (the coordinator has no shard); bench_pairs is a local table of tenant
# pairs picked up front, the same for every variant: "two" pairs a tenant of worker 1 with one of
# worker 2, "one" pairs two tenants of one worker (worker 1 for odd i, worker 2 for even i, so both
# kinds load both workers alike). Pairs share no tenant: two transactions never lock the same rows in
# opposite orders on two workers (a deadlock no detector sees).
sql "$db" >/dev/null <<-SQL
	SET client_min_messages = warning;
	CREATE EXTENSION fdwshard CASCADE;
	SELECT fdwshard_add_node('127.0.0.1', $WORKER1_PORT);
	SELECT fdwshard_add_node('127.0.0.1', $WORKER2_PORT);
	SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
	CREATE TABLE accounts (tenant int PRIMARY KEY, balance bigint NOT NULL);
	SELECT create_distributed_table('accounts', 'tenant', shard_count := $SHARD_COUNT);
	INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, $TENANTS) g;
	CREATE TEMP TABLE placed AS
		SELECT g AS tenant, s.nodeid, row_number() OVER (PARTITION BY s.nodeid ORDER BY g) AS r
		FROM generate_series(1, $TENANTS) g
		JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('accounts', g);
	CREATE TABLE bench_pairs (i int PRIMARY KEY, two_a int, two_b int, one_a int, one_b int);
	INSERT INTO bench_pairs
		SELECT i, w1.tenant, w2.tenant, o1.tenant, o2.tenant
		FROM generate_series(1, $PAIRS) i
		JOIN placed w1 ON w1.nodeid = 2 AND w1.r = i
		JOIN placed w2 ON w2.nodeid = 3 AND w2.r = i
		JOIN placed o1 ON o1.nodeid = 3 - i % 2 AND o1.r = $PAIRS + i
		JOIN placed o2 ON o2.nodeid = 3 - i % 2 AND o2.r = 2 * $PAIRS + i;
	VACUUM ANALYZE;
SQL
for port in "$WORKER1_PORT" "$WORKER2_PORT"; do psql_on "$port" -d "$db" -qc "VACUUM ANALYZE"; done
[ "$(sql "$db" -c "SELECT count(*) FROM bench_pairs")" = "$PAIRS" ] ||
	{ echo "!! fewer than $PAIRS pairs: each worker needs $((3 * PAIRS)) tenants (raise TENANTS)" >&2; exit 1; }
TOTAL=$(sql "$db" -c "SELECT sum(balance) FROM accounts")

for kind in two one; do
	cat >"$WORK/$kind.sql" <<-SQL
		\set i random(1, $PAIRS)
		SELECT ${kind}_a AS a, ${kind}_b AS b FROM bench_pairs WHERE i = :i \gset
		BEGIN;
		UPDATE accounts SET balance = balance - 1 WHERE tenant = :a;
		UPDATE accounts SET balance = balance + 1 WHERE tenant = :b;
		END;
	SQL
done

# Sanity: the two-node transaction prepares on both workers with 2PC on, and nothing else prepares.
prepares() { # KIND SETTING: PREPARE TRANSACTIONs one transaction of the variant sends
	local pair
	pair=$(sql "$db" -F' ' -c "SELECT ${1}_a, ${1}_b FROM bench_pairs WHERE i = 1")
	PGOPTIONS="-c client_min_messages=debug2 -c fdwshard.two_phase_commit=$2" psql_on "$C" -d "$db" -v ON_ERROR_STOP=1 \
		-c "BEGIN" -c "UPDATE accounts SET balance = balance WHERE tenant = ${pair% *}" \
		-c "UPDATE accounts SET balance = balance WHERE tenant = ${pair#* }" -c "COMMIT" 2>&1 | grep -c 'PREPARE TRANSACTION' || true
}
for v in "${VARIANTS[@]}"; do
	IFS='|' read -r name setting kind _ <<<"$v"
	expected=0
	[ "$kind/$setting" = two/on ] && expected=2
	got=$(prepares "$kind" "$setting")
	[ "$got" = "$expected" ] || { echo "!! $name: $got PREPARE TRANSACTION in one transaction, expected $expected" >&2; exit 1; }
	echo "   $name: $got PREPARE TRANSACTION per transaction, as expected"
done

echo "== running pgbench -c $CLIENTS -j $THREADS -T $DURATION -M prepared; $REPEATS runs per variant, interleaved"
echo "round,variant,tps,failed" >"$CSV"
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
k=0
for round in $(seq 1 "$REPEATS"); do
	for v in "${VARIANTS[@]}"; do
		IFS='|' read -r name setting kind _ <<<"$v"
		k=$((k + 1))
		echo "-- round $round $name" >>"$LOG"
		if ! out=$(PGOPTIONS="-c fdwshard.two_phase_commit=$setting" "$PG_BIN/pgbench" -h 127.0.0.1 -p "$C" -U postgres -n \
			-c "$CLIENTS" -j "$THREADS" -T "$DURATION" -M prepared --max-tries=10 -f "$WORK/$kind.sql" "$db" 2>&1); then
			echo "$out" >>"$LOG"
			echo "!! pgbench failed: $name" >&2
			echo "$out" | tail -20 >&2
			exit 1
		fi
		echo "$out" >>"$LOG"
		tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
		failed=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
		if [ -z "$tps" ] || [ "${failed:-0}" != 0 ]; then
			echo "!! $name: tps '$tps', failed transactions '$failed'" >&2
			exit 1
		fi
		echo "$round,$name,$tps,${failed:-0}" >>"$CSV"
		printf '   [%d/%d] round %d %-16s %8.0f tps\n' "$k" "$((REPEATS * ${#VARIANTS[@]}))" "$round" "$name" "$tps"
	done
done
LOADAVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Afterwards: nothing prepared is left, and the transfers kept the total.
left=$(($(psql_on "$WORKER1_PORT" -d postgres -qAt -c "SELECT count(*) FROM pg_prepared_xacts") +
	$(psql_on "$WORKER2_PORT" -d postgres -qAt -c "SELECT count(*) FROM pg_prepared_xacts")))
total=$(sql "$db" -c "SELECT sum(balance) FROM accounts")
[ "$left" = 0 ] && [ "$total" = "$TOTAL" ] ||
	{ echo "!! after the runs: $left prepared transactions left, total $total (was $TOTAL)" >&2; exit 1; }

median() { # VARIANT: median TPS of its runs
	awk -F, -v v="$1" '$2 == v { print $3 }' "$CSV" | sort -g |
		awk '{ x[++n] = $1 } END { printf "%.0f", n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }'
}
runs() { awk -F, -v v="$1" '$2 == v { printf "%s%.0f", (n++ ? " " : ""), $3 }' "$CSV"; }
declare -A MED
for v in "${VARIANTS[@]}"; do
	IFS='|' read -r name _ <<<"$v"
	MED[$name]=$(median "$name")
done
ratio() { awk -v a="${MED[$1]}" -v b="${MED[$2]}" 'BEGIN { printf "%.2f", a / b }'; }

{
	echo "# fdwshard two-phase commit benchmark, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "- fdwshard $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), $("$PG_BIN/postgres" --version)," \
		"$(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
	echo "- one coordinator + 2 workers on this machine (test/cluster.sh settings$([ "$SYNC" = 1 ] &&
		echo ", with fsync and synchronous_commit on" || echo ": fsync and synchronous_commit off, so no flush is timed"))"
	echo "- \`accounts (tenant int PRIMARY KEY, balance bigint)\`, $TENANTS tenants, $SHARD_COUNT shards on the two workers" \
		"(none on the coordinator); $PAIRS disjoint tenant pairs of each kind picked up front in a local table, read with \\gset" \
		"by every transaction (the same for all variants)"
	echo "- transaction: \`SELECT pair \\gset; BEGIN; UPDATE accounts SET balance = balance - 1 WHERE tenant = :a;" \
		"UPDATE ... + 1 WHERE tenant = :b; END\`"
	echo "- pgbench -n -c $CLIENTS -j $THREADS -T $DURATION -M prepared; median TPS of $REPEATS runs, interleaved across" \
		"variants; 2PC off through PGOPTIONS='-c fdwshard.two_phase_commit=off'; load average before/after:" \
		"$LOADAVG_BEFORE / $LOADAVG_AFTER"
	echo "- checked: the two-node transaction sends PREPARE TRANSACTION to both workers with 2PC on, no other variant" \
		"prepares; no failed transaction; afterwards no prepared transaction left and the total of balances unchanged"
	echo
	echo "| variant | | median TPS | runs |"
	echo "|---|---|---:|---|"
	for v in "${VARIANTS[@]}"; do
		IFS='|' read -r name _ _ description <<<"$v"
		echo "| $name | $description | ${MED[$name]} | $(runs "$name") |"
	done
	echo
	echo "| ratio | |"
	echo "|---|---:|"
	echo "| two-node: 2PC off / 2PC on (the cost of 2PC) | $(ratio two_node_no2pc two_node_2pc) |"
	echo "| one-node: 2PC off / 2PC on (should be 1: nothing prepares) | $(ratio one_node_no2pc one_node_2pc) |"
	echo "| two-node 2PC on / one-node 2PC on | $(ratio two_node_2pc one_node_2pc) |"
} >"$REPORT"
echo
cat "$REPORT"
echo
echo "== wrote $REPORT, $CSV and $LOG"
