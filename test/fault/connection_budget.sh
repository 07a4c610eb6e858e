#!/usr/bin/env bash
# The connection budget: 200 clients on the coordinator, workers at max_connections = 100. Point
# reads, multi-shard aggregates and transactions that write on both workers all run; no client
# fails, no worker ever has more fdwshard connections than the budget (plus its in-transaction
# spare), and every committed update is there. Without the budget the same load fails.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_budget
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE t (k int PRIMARY KEY, v int NOT NULL DEFAULT 0);
    SELECT create_distributed_table('t', 'k', shard_count := 8);
    INSERT INTO t SELECT g FROM generate_series(1, 1000) g" >/dev/null

limit=40
spare=10 # a quarter of the limit, for sessions already inside a transaction on another worker
work=$(mktemp -d)
chmod 755 "$work"

# Settings for this test only; put back at the end.
configure() { # CLIENTS LIMIT
	q "$COORDINATOR_PORT" postgres "ALTER SYSTEM SET max_connections = $1" >/dev/null
	q "$COORDINATOR_PORT" postgres "ALTER SYSTEM SET fdwshard.worker_connection_limit = $2" >/dev/null
	# Recovery passes connect to the workers too: none while the workers' sessions are counted.
	q "$COORDINATOR_PORT" postgres "ALTER SYSTEM SET fdwshard.recovery_interval = 0" >/dev/null
	for port in "$WORKER1_PORT" "$WORKER2_PORT"; do q "$port" postgres "ALTER SYSTEM SET max_connections = 100" >/dev/null; done
	for name in "${CLUSTER_NODES[@]}"; do node_stop "$name"; node_restart "$name"; done
}
restore() {
	for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
		for setting in max_connections fdwshard.worker_connection_limit fdwshard.recovery_interval; do
			q "$port" postgres "ALTER SYSTEM RESET $setting" >/dev/null # one statement: not in a transaction block
		done
	done
	for name in "${CLUSTER_NODES[@]}"; do node_stop "$name"; node_restart "$name"; done
}

cat >"$work/point.sql" <<'SQL'
\set k random(1, 1000)
SELECT v FROM t WHERE k = :k;
SQL
cat >"$work/aggregate.sql" <<'SQL'
SELECT count(*), sum(v) FROM t;
SQL
# k1 and k2 differ; with 8 shards over three nodes most pairs span two nodes.
cat >"$work/transfer.sql" <<'SQL'
\set k1 random(1, 500)
\set k2 random(501, 1000)
BEGIN;
UPDATE t SET v = v + 1 WHERE k = :k1;
UPDATE t SET v = v + 1 WHERE k = :k2;
COMMIT;
SQL
chmod 644 "$work"/*.sql

# Samples the most connections fdwshard holds on each worker while the load runs.
sample() {
	local max1=0 max2=0 n1 n2
	while [ ! -f "$work/stop" ]; do
		n1=$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
		n2=$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
		[[ "$n1" =~ ^[0-9]+$ ]] && [ "$n1" -gt "$max1" ] && max1=$n1
		[[ "$n2" =~ ^[0-9]+$ ]] && [ "$n2" -gt "$max2" ] && max2=$n2
		sleep 0.2
	done
	echo "$max1 $max2" >"$work/max"
}

load() { # SECONDS: 200 clients, pgbench's output
	rm -f "$work/stop"
	sample &
	local sampler=$!
	as_pg timeout $(($1 + 120)) "$PG_BIN/pgbench" -h 127.0.0.1 -p "$COORDINATOR_PORT" -U postgres -n -c 200 -j 4 -T "$1" \
		-M prepared -f "$work/point.sql@6" -f "$work/aggregate.sql@1" -f "$work/transfer.sql@3" $db >"$work/pgbench.out" 2>&1
	echo "exit $?" >>"$work/pgbench.out"
	touch "$work/stop"
	wait $sampler
}

echo "-- without a budget: the workers refuse clients"
configure 230 -1
load 5
check_contains "some clients fail without the budget" "too many clients already" "$(cat "$work/pgbench.out")"

echo "-- with fdwshard.worker_connection_limit = $limit"
configure 230 $limit
before=$(q "$COORDINATOR_PORT" $db "SELECT sum(v) FROM t")
load 15
out=$(cat "$work/pgbench.out")
echo "$out" | grep -E "number of transactions actually processed|number of failed|^tps|aborted" | sed 's/^/        /'
check "pgbench ends without error" "exit 0" "$(echo "$out" | tail -1)"
check "no client aborted" "0" "$(echo "$out" | grep -c 'aborted')"
read -r max1 max2 <"$work/max"
echo "        most connections seen: worker 1 $max1, worker 2 $max2"
check "worker 1 never above the budget" yes "$([ "$max1" -le $((limit + spare)) ] && [ "$max1" -gt 0 ] && echo yes || echo "no ($max1)")"
check "worker 2 never above the budget" yes "$([ "$max2" -le $((limit + spare)) ] && [ "$max2" -gt 0 ] && echo yes || echo "no ($max2)")"
# Each committed transfer adds 2; pgbench counts them per script.
transfers=$(echo "$out" | awk '/^SQL script 3/ { script3 = 1 } script3 && /- [0-9]+ transactions/ { print $2; exit }')
after=$(q "$COORDINATOR_PORT" $db "SELECT sum(v) FROM t")
check "every committed transfer is there ($transfers)" "$((before + 2 * transfers))" "$after"
check "the budget is given back when the clients leave" "0" \
	"$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend'")"

restore
rm -rf "$work"
q "$COORDINATOR_PORT" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null
for port in "$WORKER1_PORT" "$WORKER2_PORT"; do q "$port" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null; done
[ "$failures" -eq 0 ]
