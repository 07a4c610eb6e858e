#!/usr/bin/env bash
# fdwshard.nodes shows each node's health as the coordinator last saw it: a stopped worker fails
# the statements that need it within the connect timeout, naming it, while the other worker's
# shards keep working; the view shows it 'unreachable' with the connection error, then 'ok' once
# it is back. And fdwshard_add_node refuses a server with max_prepared_transactions = 0 (a 4th
# PostgreSQL started here), leaving nothing registered. A coordinator restart starts from 'unknown'.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_node_health
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE t (k int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g; SELECT create_distributed_table('t', 'k', shard_count := 6)" >/dev/null
key_on() { q "$COORDINATOR_PORT" $db "SELECT min(k) FROM t WHERE get_shard_id_for_distribution_column('t', k) IN (SELECT shardid FROM fdwshard.shards WHERE nodeid = $1)"; }
k2=$(key_on 2) k3=$(key_on 3)
health() { q "$COORDINATOR_PORT" $db "SELECT string_agg(nodeid || ':' || health, ' ' ORDER BY nodeid) FROM fdwshard.nodes"; }
error_at() { q "$COORDINATOR_PORT" $db "SELECT last_error_at FROM fdwshard.nodes WHERE nodeid = 3"; }

check "all nodes ok after distributing" "1:ok 2:ok 3:ok" "$(health)"
# Earlier tests on this cluster may have left errors (kept per worker, whatever the database): older than last_ok.
check "reached since any error" "t|t" "$(q "$COORDINATOR_PORT" $db "SELECT bool_and(last_ok IS NOT NULL), bool_and(last_error_at IS NULL OR last_ok > last_error_at) FROM fdwshard.nodes")"

node_stop worker2
# fdwshard's own connection (a routed autocommit statement): fails at once, naming the node.
start=$(date +%s.%N)
out=$(timeout 30 bash -c "source test/cluster.sh; psql_on $COORDINATOR_PORT -d $db -tA -c 'SET fdwshard.connect_timeout = 3000' -c 'SELECT v FROM t WHERE k = $k3'" 2>&1)
took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
check_contains "a statement on the stopped worker fails" 'could not connect to server "fdwshard_node_3"' "$out"
check_contains "the error names the node" "node 3 (127.0.0.1:$WORKER2_PORT)" "$out"
check "it fails within the connect timeout (${took}s)" yes "$(awk -v t="$took" 'BEGIN { print (t < 3) ? "yes" : "no" }')"
check "the other worker's shards keep working" "v$k2" "$(q "$COORDINATOR_PORT" $db "SELECT v FROM t WHERE k = $k2")"
check "the stopped worker is unreachable, the others ok" "1:ok 2:ok 3:unreachable" "$(health)"
check_contains "its last error is the connection error" "port $WORKER2_PORT failed: Connection refused" \
	"$(q "$COORDINATOR_PORT" $db "SELECT last_error FROM fdwshard.nodes WHERE nodeid = 3")"
check "one line, with its time" "1|t" "$(q "$COORDINATOR_PORT" $db "SELECT array_length(string_to_array(last_error, E'\n'), 1), last_error_at > last_ok FROM fdwshard.nodes WHERE nodeid = 3")"

# postgres_fdw's connection (in a transaction block) records its failures too.
before=$(error_at)
out=$(q "$COORDINATOR_PORT" $db "BEGIN; SELECT v FROM t WHERE k = $k3; COMMIT")
check_contains "in a transaction block too" 'could not connect to server "fdwshard_node_3"' "$out"
check "postgres_fdw's failure is recorded" "t" "$(q "$COORDINATOR_PORT" $db "SELECT last_error_at > '$before' FROM fdwshard.nodes WHERE nodeid = 3")"

node_restart worker2
# Back: postgres_fdw's connection first, then fdwshard's own.
check "a transaction reaches it again" "v$k3" "$(q "$COORDINATOR_PORT" $db "BEGIN; SELECT v FROM t WHERE k = $k3; COMMIT" | sed -n 2p)"
check "ok again (postgres_fdw's connection)" "1:ok 2:ok 3:ok" "$(health)"
check "a routed statement reaches it" "v$k3" "$(q "$COORDINATOR_PORT" $db "SELECT v FROM t WHERE k = $k3")"
check "ok, the last error still shown" "ok|t|t" "$(q "$COORDINATOR_PORT" $db "SELECT health, last_ok > last_error_at, last_error IS NOT NULL FROM fdwshard.nodes WHERE nodeid = 3")"

# A coordinator restart forgets what it saw: 'unknown' until a session reaches the worker (the
# recovery worker's pass at startup would reach them first: it is off for this part).
q "$COORDINATOR_PORT" postgres "ALTER SYSTEM SET fdwshard.recovery_interval = 0" >/dev/null
node_stop coordinator && node_restart coordinator
check "after a coordinator restart: unknown" "1:ok 2:unknown 3:unknown" "$(health)"
check "nothing known of them" "t" "$(q "$COORDINATOR_PORT" $db "SELECT bool_and(last_ok IS NULL AND last_error_at IS NULL AND last_error IS NULL) FROM fdwshard.nodes WHERE NOT is_local")"
q "$COORDINATOR_PORT" $db "SELECT count(*) FROM t" >/dev/null
check "a multi-shard read reaches both workers" "1:ok 2:ok 3:ok" "$(health)"
q "$COORDINATOR_PORT" postgres "ALTER SYSTEM RESET fdwshard.recovery_interval" >/dev/null
q "$COORDINATOR_PORT" postgres "SELECT pg_reload_conf()" >/dev/null

# A server without prepared transactions, started for this test only.
trap 'extra_node_stop no_prepared' EXIT
extra_node_start no_prepared <<CONF || exit 1
max_prepared_transactions = 0
max_connections = 20
shared_buffers = 16MB
CONF
port=$NO_PREPARED_PORT
q "$port" postgres "CREATE DATABASE $db" >/dev/null
registered="SELECT (SELECT count(*) FROM fdwshard.node), (SELECT count(*) FROM pg_foreign_server), (SELECT count(*) FROM pg_user_mappings)"
before=$(q "$COORDINATOR_PORT" $db "$registered")
out=$(psql_on "$COORDINATOR_PORT" -d $db -tA -v VERBOSITY=verbose -c "SELECT fdwshard_add_node('127.0.0.1', $port)" 2>&1)
check_contains "add_node refuses it (55000)" "ERROR:  55000: node 127.0.0.1:$port does not allow prepared transactions" "$out"
check_contains "the detail says why" "Its max_prepared_transactions is 0" "$out"
check_contains "the hint says what to do" "HINT:  Set max_prepared_transactions on the worker (at least its max_connections) and restart it" "$out"
check "no node, server or user mapping left" "$before" "$(q "$COORDINATOR_PORT" $db "$registered")"
check "no server named after the refused node" "0" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM pg_foreign_server WHERE srvoptions @> ARRAY['port=$port']")"
extra_node_stop no_prepared
trap - EXIT
exit $((failures > 0))
