#!/usr/bin/env bash
# Without shared_preload_libraries (worker 1 is vanilla PostgreSQL), CREATE EXTENSION fails with a
# clear error and hint, and creates nothing.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_preload
q "$WORKER1_PORT" postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
q "$WORKER1_PORT" postgres "CREATE DATABASE $db" >/dev/null
out=$(psql_on "$WORKER1_PORT" -d $db -v ON_ERROR_STOP=1 -c "CREATE EXTENSION fdwshard CASCADE" 2>&1)
check_contains "CREATE EXTENSION refused" "fdwshard must be loaded via shared_preload_libraries" "$out"
check_contains "with a hint" "HINT:  Add fdwshard to shared_preload_libraries" "$out"
check "nothing created" "0" "$(q "$WORKER1_PORT" $db "SELECT count(*) FROM pg_extension WHERE extname IN ('fdwshard', 'postgres_fdw')")"
q "$WORKER1_PORT" postgres "DROP DATABASE $db" >/dev/null
exit $((failures > 0))
