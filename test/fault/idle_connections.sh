#!/usr/bin/env bash
# fdwshard.idle_connection_timeout: a session idle at its prompt gives back its connections to the
# workers (fdwshard's own and postgres_fdw's) once unused for the timeout, and the budget slots
# with them; a session that keeps using a worker keeps its connection; 0 keeps them all.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_idle
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE t (k int PRIMARY KEY, v int NOT NULL DEFAULT 0);
    SELECT create_distributed_table('t', 'k', shard_count := 3);
    INSERT INTO t SELECT g FROM generate_series(1, 100) g" >/dev/null
# A key whose shard is on worker 1.
key_on() { # PORT
	q "$COORDINATOR_PORT" $db "SELECT min(g) FROM generate_series(1, 100) g
        JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('t', g)
        WHERE s.port = $1"
}
k1=$(key_on "$WORKER1_PORT")
work=$(mktemp -d)
chmod 777 "$work"
# Recovery passes connect to the workers too: none while this test counts connections.
q "$COORDINATOR_PORT" postgres "ALTER SYSTEM SET fdwshard.recovery_interval = 0" >/dev/null
q "$COORDINATOR_PORT" postgres "SELECT pg_reload_conf()" >/dev/null

# Connections from the coordinator's sessions on worker 1, by kind: "fdwshard" (own) and "postgres_fdw".
cat >"$work/count.sh" <<SH
#!/usr/bin/env bash
$PG_BIN/psql -X -h 127.0.0.1 -p $WORKER1_PORT -U postgres -d $db -tA -c "SELECT coalesce(string_agg(application_name, ',' ORDER BY application_name), 'none') FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
SH
chmod 755 "$work/count.sh"

# session TIMEOUT: one session, idle at its prompt between the counts (psql's \! runs while the
# backend waits); psql runs as the PostgreSQL user, its \! scripts too.
session() {
	cat >"$work/session.sql" <<SQL
SET fdwshard.idle_connection_timeout = '$1';
SELECT v FROM t WHERE k = $k1;
BEGIN;
SELECT v FROM t WHERE k = $k1;
COMMIT;
\\! $work/count.sh > $work/before
\\! sleep 2.5
\\! $work/count.sh > $work/idle
SELECT v FROM t WHERE k = $k1;
\\! $work/count.sh > $work/again
SQL
	chmod 644 "$work/session.sql"
	rm -f "$work/before" "$work/idle" "$work/again"
	as_pg timeout 60 "$PG_BIN/psql" -X -h 127.0.0.1 -p "$COORDINATOR_PORT" -U postgres -d $db -tA -v ON_ERROR_STOP=1 \
		-f "$work/session.sql" >"$work/out" 2>&1
	echo "exit $?" >>"$work/out"
}

echo "-- timeout 1s: an idle session gives its connections back"
session 1s
check "the session ran" "exit 0" "$(tail -1 "$work/out")"
check "both connections while in use" "fdwshard,postgres_fdw" "$(cat "$work/before")"
check "none after a second idle" "none" "$(cat "$work/idle")"
check "the next statement connects again" "fdwshard" "$(cat "$work/again")"

echo "-- timeout 0: connections stay for the session"
session 0
check "the session ran" "exit 0" "$(tail -1 "$work/out")"
check "both connections kept while idle" "fdwshard,postgres_fdw" "$(cat "$work/idle")"

echo "-- a busy session keeps the connection it uses and closes the one it stopped using"
cat >"$work/busy.sql" <<SQL
SET fdwshard.idle_connection_timeout = '1s';
BEGIN;
SELECT v FROM t WHERE k = $k1;
COMMIT;
SELECT v FROM t WHERE k = $k1;
SELECT pg_sleep(0.6);
SELECT v FROM t WHERE k = $k1;
SELECT pg_sleep(0.6);
SELECT v FROM t WHERE k = $k1;
SELECT pg_sleep(0.6);
SELECT v FROM t WHERE k = $k1;
\\! $work/count.sh > $work/busy
SQL
chmod 644 "$work/busy.sql"
as_pg timeout 60 "$PG_BIN/psql" -X -h 127.0.0.1 -p "$COORDINATOR_PORT" -U postgres -d $db -tA -v ON_ERROR_STOP=1 \
	-f "$work/busy.sql" >"$work/out" 2>&1
check "the session ran" "0" "$?"
check "only the connection in use is left" "fdwshard" "$(cat "$work/busy")"

echo "-- the budget slots go with them: a limit of 1 per worker, an idle session, another session"
cat >"$work/holder.sql" <<SQL
SELECT v FROM t WHERE k = $k1;
\\! sleep 6
SQL
chmod 644 "$work/holder.sql"
# contend TIMEOUT: the holder idles with its slot while another session wants one (waiting at most 3 s).
contend() {
	q "$COORDINATOR_PORT" postgres "ALTER SYSTEM SET fdwshard.worker_connection_limit = 1" >/dev/null
	q "$COORDINATOR_PORT" postgres "ALTER SYSTEM SET fdwshard.idle_connection_timeout = '$1'" >/dev/null
	q "$COORDINATOR_PORT" postgres "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	as_pg timeout 60 "$PG_BIN/psql" -X -h 127.0.0.1 -p "$COORDINATOR_PORT" -U postgres -d $db -tA \
		-f "$work/holder.sql" >/dev/null 2>&1 &
	local holder=$!
	sleep 1
	q "$COORDINATOR_PORT" $db "SET fdwshard.connection_wait_timeout = '3s'; SELECT v FROM t WHERE k = $k1" | tr '\n' ' '
	wait $holder
}
check_contains "without the timeout the other session waits in vain" "became free within 3000 ms" "$(contend 0)"
check "with it the other session gets the idle one's slot" "SET 0 " "$(contend 1s)"

q "$COORDINATOR_PORT" postgres "ALTER SYSTEM RESET fdwshard.worker_connection_limit" >/dev/null
q "$COORDINATOR_PORT" postgres "ALTER SYSTEM RESET fdwshard.idle_connection_timeout" >/dev/null
q "$COORDINATOR_PORT" postgres "ALTER SYSTEM RESET fdwshard.recovery_interval" >/dev/null
q "$COORDINATOR_PORT" postgres "SELECT pg_reload_conf()" >/dev/null
rm -rf "$work"
q "$COORDINATOR_PORT" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null
for port in "$WORKER1_PORT" "$WORKER2_PORT"; do q "$port" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null; done
[ "$failures" -eq 0 ]
