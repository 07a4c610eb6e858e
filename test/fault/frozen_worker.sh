#!/usr/bin/env bash
# A worker frozen by SIGSTOP: statements on its shards end within statement_timeout plus
# fdwshard.connect_timeout (the bound of a cancel request nobody answers), a cancel ends them, a
# new connection gives up after fdwshard.connect_timeout, errors name the node by host and port,
# and the other nodes' shards keep working. Once the worker resumes, everything is intact.
# Prints how long each case took; FROZEN_VERBOSE=1 also prints every session's output.
set -u
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
db=fault_frozen_worker
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE t (k int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g; SELECT create_distributed_table('t', 'k', shard_count := 6)" >/dev/null
key_on() { q "$COORDINATOR_PORT" $db "SELECT min(k) FROM t WHERE get_shard_id_for_distribution_column('t', k) IN (SELECT shardid FROM fdwshard.shards WHERE nodeid = $1)"; }
k1=$(key_on 1) k2=$(key_on 2) k3=$(key_on 3)
check "keys on every node" "yes" "$([ -n "$k1" ] && [ -n "$k2" ] && [ -n "$k3" ] && echo yes || echo no)"
before=$(q "$COORDINATOR_PORT" $db "SELECT count(*), sum(k), md5(string_agg(v, ',' ORDER BY k)) FROM t")
node3="127.0.0.1:$WORKER2_PORT"

work=$CLUSTER_DIR/frozen_worker
rm -rf "$work"; mkdir -p "$work"; chmod 777 "$work"
frozen=()
thaw() { [ ${#frozen[@]} -gt 0 ] && kill -CONT "${frozen[@]}" 2>/dev/null; frozen=(); }
trap thaw EXIT

# session NAME WARMUP STATEMENTS: a psql session that first connects to worker 2 the way the case
# needs (WARMUP), waits until the worker is frozen, then runs STATEMENTS, timing them.
session() {
	local name=$1 warmup=$2 statements=$3
	cat >"$work/$name.sql" <<SQL
SET application_name = '$name';
SET fdwshard.connect_timeout = '3s';
$warmup
\! touch $work/$name.ready; while [ ! -f $work/frozen ]; do sleep 0.05; done
\! date +%s.%N > $work/$name.start
$statements
\! date +%s.%N > $work/$name.end
SQL
	timeout 60 bash -c "source '$here/../cluster.sh'; psql_on $COORDINATOR_PORT -d $db -f '$work/$name.sql'" >"$work/$name.out" 2>&1 &
}
elapsed() { awk -v s="$(cat "$work/$1.start" 2>/dev/null)" -v e="$(cat "$work/$1.end" 2>/dev/null)" 'BEGIN { if (s == "" || e == "") print "none"; else printf "%.1f", e - s }'; }
# within NAME SECONDS: the case took less than SECONDS
within() { local t; t=$(elapsed "$1"); echo "        $1 took ${t}s"; check "$1 ends within ${2}s" yes "$(awk -v t="$t" -v b="$2" 'BEGIN { print (t != "none" && t < b) ? "yes" : "no" }')"; }

# (1) a routed autocommit statement waiting on fdwshard's own connection, ended by statement_timeout;
# (2) the same inside a transaction block, on postgres_fdw's connection;
# (5) a cancel of a session waiting on worker 2.
session routed "SELECT v FROM t WHERE k = $k3;" "SET statement_timeout = '2s';
SELECT v FROM t WHERE k = $k3;"
# In a transaction the statement waits with its query in flight (the remote transaction began
# before the freeze), or at the transaction's first use, on START TRANSACTION.
session in_transaction "BEGIN; SELECT v FROM t WHERE k = $k3;" "SET statement_timeout = '2s';
SELECT v FROM t WHERE k = $k3;
ROLLBACK;"
session in_new_transaction "BEGIN; SELECT v FROM t WHERE k = $k3; COMMIT;" "SET statement_timeout = '2s';
BEGIN;
SELECT v FROM t WHERE k = $k3;
ROLLBACK;"
session in_savepoint "BEGIN; SELECT v FROM t WHERE k = $k3;" "SET statement_timeout = '2s';
SAVEPOINT s;
SELECT v FROM t WHERE k = $k3;
ROLLBACK TO SAVEPOINT s;
SELECT 'after rollback to savepoint: ' || v FROM t WHERE k = $k2;
COMMIT;"
session cancelled "SELECT v FROM t WHERE k = $k3;" "SELECT v FROM t WHERE k = $k3;"
session cancelled_in_transaction "BEGIN; SELECT v FROM t WHERE k = $k3;" "SELECT v FROM t WHERE k = $k3;
ROLLBACK;"
# Multi-shard scans run on postgres_fdw's connections, which fdwshard notes at executor start.
session scan_in_transaction "BEGIN; SELECT count(*) FROM t;" "SET statement_timeout = '2s';
SELECT count(*) FROM t;
ROLLBACK;"
session scan "SELECT count(*) FROM t;" "SET statement_timeout = '2s';
SELECT count(*) FROM t;"
session scan_repeatable_read "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t;" "SET statement_timeout = '2s';
SELECT count(*) FROM t;
ROLLBACK;"
# One pool connection per worker: worker 2's two shards are read by one combined statement.
session scan_combined "SET fdwshard.pool_size = 1; SELECT count(*) FROM t;" "SET statement_timeout = '2s';
SELECT count(*) FROM t;"
# (4) brand-new connections to worker 2: fdwshard's own, postgres_fdw's, and one cut short by statement_timeout.
session connect_routed "" "SELECT v FROM t WHERE k = $k3;"
session connect_in_transaction "" "BEGIN;
SELECT v FROM t WHERE k = $k3;
ROLLBACK;"
# A multi-shard read's new pool connections to every worker, made at once: worker 1's are made,
# worker 2's time out, and the error names worker 2.
session connect_scan "" "SELECT count(*) FROM t;"
session connect_timeout_by_statement "" "SET fdwshard.connect_timeout = '30s';
SET statement_timeout = '1s';
SELECT v FROM t WHERE k = $k3;"
for _ in $(seq 1 200); do [ "$(ls "$work"/*.ready 2>/dev/null | wc -l)" -ge 14 ] && break; sleep 0.05; done

postmaster=$(head -1 "$CLUSTER_DIR/worker2/postmaster.pid")
frozen=("$postmaster" $(pgrep -P "$postmaster"))
kill -STOP "${frozen[@]}"
touch "$work/frozen"

# (3) meanwhile, a new session reaches the coordinator's and worker 1's shards.
start=$(date +%s.%N)
out=$(timeout 30 bash -c "source '$here/../cluster.sh'; psql_on $COORDINATOR_PORT -d $db -tA -c \"SELECT v FROM t WHERE k = $k1\" -c \"SELECT v FROM t WHERE k = $k2\" -c \"BEGIN\" -c \"SELECT v FROM t WHERE k = $k2\" -c \"COMMIT\"" 2>&1 | tr '\n' ' ')
t=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
echo "        other nodes took ${t}s"
check "the coordinator's and worker 1's shards answer while worker 2 is frozen" "v$k1 v$k2 BEGIN v$k2 COMMIT " "$out"

sleep 1
q "$COORDINATOR_PORT" $db "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE application_name IN ('cancelled', 'cancelled_in_transaction') AND state = 'active'" >"$work/cancel.out"
check "both waiting sessions were sent a cancel" "2" "$(cat "$work/cancel.out")"

for name in routed in_transaction in_new_transaction in_savepoint cancelled cancelled_in_transaction connect_routed connect_in_transaction connect_scan connect_timeout_by_statement scan scan_in_transaction scan_repeatable_read scan_combined; do
	for _ in $(seq 1 200); do [ -f "$work/$name.end" ] && break; sleep 0.05; done
done

within routed 6.5
check_contains "routed: statement_timeout" "canceling statement due to statement timeout" "$(cat "$work/routed.out")"
check_contains "routed: the error names the node" "while waiting for node 3 ($node3)" "$(cat "$work/routed.out")"
within in_transaction 6.5
check_contains "in a transaction: statement_timeout" "canceling statement due to statement timeout" "$(cat "$work/in_transaction.out")"
check_contains "in a transaction: the error names the node" "while waiting for node 3 ($node3)" "$(cat "$work/in_transaction.out")"
within in_new_transaction 3.5
check_contains "in a new transaction: statement_timeout" "canceling statement due to statement timeout" "$(cat "$work/in_new_transaction.out")"
check_contains "in a new transaction: the error names the node" "while waiting for node 3 ($node3)" "$(cat "$work/in_new_transaction.out")"
within in_savepoint 6.5
check_contains "in a savepoint: statement_timeout" "canceling statement due to statement timeout" "$(cat "$work/in_savepoint.out")"
check_contains "in a savepoint: the transaction goes on after ROLLBACK TO SAVEPOINT" "after rollback to savepoint: v$k2" "$(cat "$work/in_savepoint.out")"
check_contains "in a savepoint: COMMIT then fails on the broken connection" 'connection to server "fdwshard_node_3" cannot be used due to abort cleanup failure' "$(cat "$work/in_savepoint.out")"
within cancelled 5.5
check_contains "cancelled: ended by the cancel" "canceling statement due to user request" "$(cat "$work/cancelled.out")"
check_contains "cancelled: the error names the node" "while waiting for node 3 ($node3)" "$(cat "$work/cancelled.out")"
within cancelled_in_transaction 5.5
check_contains "cancelled in a transaction: ended by the cancel" "canceling statement due to user request" "$(cat "$work/cancelled_in_transaction.out")"
within connect_routed 4.5
check_contains "connect (fdwshard's connection): timeout" "timeout expired after 3000 ms" "$(cat "$work/connect_routed.out")"
check_contains "connect (fdwshard's connection): the error names the node" "while connecting to node 3 ($node3)" "$(cat "$work/connect_routed.out")"
within connect_in_transaction 5
check_contains "connect (postgres_fdw's connection): timeout" "timeout expired" "$(cat "$work/connect_in_transaction.out")"
check_contains "connect (postgres_fdw's connection): the error names the node" "while waiting for node 3 ($node3)" "$(cat "$work/connect_in_transaction.out")"
within connect_scan 4.5
check_contains "connect (a multi-shard read's pool): timeout" 'could not connect to server "fdwshard_node_3"' "$(cat "$work/connect_scan.out")"
check_contains "connect (a multi-shard read's pool): after fdwshard.connect_timeout" "timeout expired after 3000 ms" "$(cat "$work/connect_scan.out")"
check_contains "connect (a multi-shard read's pool): the error names the node" "while connecting to node 3 ($node3)" "$(cat "$work/connect_scan.out")"
within connect_timeout_by_statement 2.5
check_contains "connect cut short by statement_timeout" "canceling statement due to statement timeout" "$(cat "$work/connect_timeout_by_statement.out")"

for name in scan scan_in_transaction scan_repeatable_read scan_combined; do
	within $name 6.5
	check_contains "$name: statement_timeout" "canceling statement due to statement timeout" "$(cat "$work/$name.out")"
done
check_contains "scan_combined: the error names the node" "while waiting for node 3 ($node3)" "$(cat "$work/scan_combined.out")"

# fdwshard.nodes: the frozen worker unreachable (connect timeouts, cancels it did not take), the others ok.
check "fdwshard.nodes: worker 2 unreachable while frozen" "1:ok 2:ok 3:unreachable" "$(q "$COORDINATOR_PORT" $db "SELECT string_agg(nodeid || ':' || health, ' ' ORDER BY nodeid) FROM fdwshard.nodes")"

thaw
wait
check "data intact once worker 2 resumes" "$before" "$(q "$COORDINATOR_PORT" $db "SELECT count(*), sum(k), md5(string_agg(v, ',' ORDER BY k)) FROM t")"
check "every shard answers again" "v$k1 v$k2 v$k3" "$(for k in $k1 $k2 $k3; do q "$COORDINATOR_PORT" $db "SELECT v FROM t WHERE k = $k"; done | tr '\n' ' ' | sed 's/ $//')"
check "worker 2 in a transaction again" "v$k3" "$(q "$COORDINATOR_PORT" $db "BEGIN; UPDATE t SET v = v WHERE k = $k3; SELECT v FROM t WHERE k = $k3; COMMIT" | sed -n 3p)"
check "fdwshard.nodes: worker 2 ok again" "ok" "$(q "$COORDINATOR_PORT" $db "SELECT health FROM fdwshard.nodes WHERE nodeid = 3")"
if [ "$failures" -gt 0 ] || [ -n "${FROZEN_VERBOSE:-}" ]; then for f in "$work"/*.out; do echo "--- $f"; sed 's/^/        /' "$f"; done; fi
exit $((failures > 0))
