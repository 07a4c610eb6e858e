#!/usr/bin/env bash
# fdwshard.worker_plan_cache_mode: the statements fdwshard prepares on a worker for a prepared
# statement's executions are planned as PostgreSQL plans them there (auto: custom plans first),
# or, with force_generic_plan, with one generic plan from the first execution. Worker 1 logs
# each plan it runs (auto_explain): a generic plan shows the parameter, a custom one the value.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_plan_cache
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE planned (k int PRIMARY KEY, v int NOT NULL DEFAULT 0);
    SELECT create_distributed_table('planned', 'k', shard_count := 3);
    INSERT INTO planned SELECT g FROM generate_series(1, 100) g" >/dev/null
k1=$(q "$COORDINATOR_PORT" $db "SELECT min(g) FROM generate_series(1, 100) g
    JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('planned', g)
    WHERE s.port = $WORKER1_PORT")
log=$CLUSTER_DIR/worker1.log
q "$WORKER1_PORT" postgres "ALTER SYSTEM SET session_preload_libraries = 'auto_explain'" >/dev/null
psql_on "$WORKER1_PORT" -q -c "LOAD 'auto_explain'" -c "ALTER SYSTEM SET auto_explain.log_min_duration = 0"
q "$WORKER1_PORT" postgres "SELECT pg_reload_conf()" >/dev/null

# plans MODE: three executions of a prepared point query in a new session; worker 1's plans of it.
plans() {
	local before
	before=$(wc -l <"$log")
	# Each statement its own transaction: the executions go through fdwshard's prepared statements.
	psql_on "$COORDINATOR_PORT" -d $db -q -v ON_ERROR_STOP=1 -c "${1:+SET fdwshard.worker_plan_cache_mode = $1}" \
		-c "PREPARE get(int) AS SELECT v FROM planned WHERE k = \$1" \
		-c "EXECUTE get($k1)" -c "EXECUTE get($k1)" -c "EXECUTE get($k1)" >/dev/null
	sleep 0.5
	tail -n +"$((before + 1))" "$log" | grep -E "Filter|Cond" | grep -E "k = " |
		sed -E 's/.*\((k = [^)]*)\).*/\1/' | sort | uniq -c | awk '{ printf "%s x %s %s %s; ", $1, $2, $3, $4 }'
}
check "the default: one generic plan, with the parameter" "3 x k = \$1; " "$(plans "")"
check "force_generic_plan: the same" "3 x k = \$1; " "$(plans force_generic_plan)"
check "auto: custom plans, each with the value" "3 x k = $k1; " "$(plans auto)"
check "force_custom_plan: custom plans" "3 x k = $k1; " "$(plans force_custom_plan)"
check_contains "a value that is not a mode is refused" 'invalid value for parameter "fdwshard.worker_plan_cache_mode"' \
	"$(q "$COORDINATOR_PORT" $db "SET fdwshard.worker_plan_cache_mode = sometimes")"

q "$WORKER1_PORT" postgres "ALTER SYSTEM RESET session_preload_libraries" >/dev/null
psql_on "$WORKER1_PORT" -q -c "LOAD 'auto_explain'" -c "ALTER SYSTEM RESET auto_explain.log_min_duration"
q "$WORKER1_PORT" postgres "SELECT pg_reload_conf()" >/dev/null
q "$COORDINATOR_PORT" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null
for port in "$WORKER1_PORT" "$WORKER2_PORT"; do q "$port" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null; done
[ "$failures" -eq 0 ]
