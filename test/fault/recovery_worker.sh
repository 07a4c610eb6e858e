#!/usr/bin/env bash
# The background recovery on the coordinator: the launcher runs, comes back after being
# terminated and runs a pass at once, follows fdwshard.recovery_interval on reload (0 stops it),
# visits every database with fdwshard and skips the others and templates without errors, keeps
# going when one database's worker fails; fdwshard_recover_prepared_transactions() returns 0 on a
# clean cluster and is refused without EXECUTE. Reads the coordinator's log at DEBUG1.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_recovery
plain=fault_recovery_plain
locked=fault_recovery_locked
# 31 two-byte characters: more than bgw_name has room for.
long=$(printf 'é%.0s' $(seq 1 31))
log=$CLUSTER_DIR/coordinator.log
C=$COORDINATOR_PORT
role=fault_recovery_user

log_size() { stat -c %s "$log"; }
log_since() { tail -c +$(($1 + 1)) "$log"; }
# count_since OFFSET TEXT: log lines after OFFSET that contain TEXT
count_since() { log_since "$1" | grep -cF -- "$2"; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS; "yes" or "no"
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && { echo no; return; }
		sleep 0.2
	done
	echo yes
}
launcher_pid() { q $C postgres "SELECT pid FROM pg_stat_activity WHERE backend_type = 'fdwshard recovery launcher'"; }
visited() { [ "$(count_since "$1" "fdwshard recovery found nothing to resolve in database \"$db\"")" -ge "${2:-1}" ]; }
skipped() { [ "$(count_since "$1" "fdwshard recovery skips database \"$2\": fdwshard is not installed")" -ge 1 ]; }
set_interval() {
	q $C postgres "ALTER SYSTEM SET fdwshard.recovery_interval = '$1'" >/dev/null
	q $C postgres "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5 # the launcher rereads the file after the postmaster's SIGHUP
}
cleanup() {
	q $C postgres "ALTER SYSTEM RESET fdwshard.recovery_interval" >/dev/null
	q $C postgres "ALTER SYSTEM RESET log_min_messages" >/dev/null
	q $C postgres "SELECT pg_reload_conf()" >/dev/null
	for name in $db $plain $locked "$long"; do
		q $C postgres "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null
	done
	for port in $WORKER1_PORT $WORKER2_PORT; do q $port postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; done
	q $C postgres "DROP ROLE IF EXISTS $role" >/dev/null
}
trap cleanup EXIT

fresh_db $db
q $C postgres "CREATE DATABASE $plain" >/dev/null
q $C postgres "CREATE DATABASE \"$long\"" >/dev/null
q $C postgres "ALTER SYSTEM SET log_min_messages = debug1" >/dev/null
q $C postgres "SELECT pg_reload_conf()" >/dev/null

# The launcher is a background worker connected to no database.
check "the launcher runs" yes "$(wait_for 10 test -n "$(launcher_pid)")"
check "one launcher, in no database" "1|" "$(q $C postgres "SELECT count(*), min(datname) FROM pg_stat_activity WHERE backend_type = 'fdwshard recovery launcher'")"

# Terminated, it comes back after bgw_restart_time (5 s) and runs a pass at once, not after
# fdwshard.recovery_interval (10 s by default).
old_pid=$(launcher_pid)
offset=$(log_size)
check "terminated" t "$(q $C postgres "SELECT pg_terminate_backend($old_pid)")"
new_launcher() { local pid; pid=$(launcher_pid); [ -n "$pid" ] && [ "$pid" != "$old_pid" ]; }
check "the launcher comes back" yes "$(wait_for 12 new_launcher)"
back=$SECONDS
check "and visits the databases at once" yes "$(wait_for 4 visited "$offset")"
echo "        first pass $((SECONDS - back))s after the launcher was back"

# A short interval, set by reload: passes follow each other; every database is visited or skipped.
offset=$(log_size)
set_interval 200ms
sleep 3
passes=$(count_since "$offset" "fdwshard recovery found nothing to resolve in database \"$db\"")
echo "        $passes passes in 3s at 200ms"
check "the reloaded interval is followed (>= 5 passes in 3s)" yes "$([ "$passes" -ge 5 ] && echo yes || echo no)"
check "a database without fdwshard is skipped" yes "$(wait_for 2 skipped "$offset" $plain)"
check "postgres too" yes "$(wait_for 2 skipped "$offset" postgres)"
check "templates are not visited" 0 "$(log_since "$offset" | grep -cE 'recovery (found nothing to resolve in|skips) database "template[01]"')"
check "no errors" "" "$(log_since "$offset" | grep -E '\] (ERROR|FATAL|PANIC):|exited with exit code [^0]')"
# The worker logs the database's whole name (the postmaster keeps only ASCII of its bgw_name).
check "a long unicode name is logged whole" yes "$(wait_for 2 skipped "$offset" "$long")"

# A worker that fails (here: a lock timeout in its database) is logged with its database, and the
# launcher goes on visiting the others.
q $C postgres "CREATE DATABASE $locked" >/dev/null
q $C postgres "ALTER DATABASE $locked SET lock_timeout = '100ms'" >/dev/null
launcher=$(launcher_pid)
offset=$(log_size)
timeout 20 bash -c "source $(dirname "$0")/lib.sh; q $C $locked 'BEGIN; LOCK TABLE pg_catalog.pg_extension IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT'" >/dev/null &
locker=$!
wait "$locker"
failure=$(log_since "$offset" | grep -A1 -F 'ERROR:  canceling statement due to lock timeout' | head -2)
check_contains "the failing worker's error is logged" "ERROR:  canceling statement due to lock timeout" "$failure"
check_contains "with its database" "CONTEXT:  fdwshard recovery in database \"$locked\"" "$failure"
after_failure=$(log_since "$offset" | sed -n '/canceling statement due to lock timeout/,$p' | grep -cF "fdwshard recovery found nothing to resolve in database \"$db\"")
check "the other databases are visited after it (>= 3)" yes "$([ "$after_failure" -ge 3 ] && echo yes || echo no)"
check "the launcher did not stop" "$launcher" "$(launcher_pid)"
offset=$(log_size)
check "once unlocked, the database is skipped cleanly" yes "$(wait_for 3 skipped "$offset" $locked)"

# fdwshard.recovery_interval = 0 stops the passes.
set_interval 0
offset=$(log_size)
sleep 2
check "interval 0: no pass" 0 "$(count_since "$offset" "fdwshard recovery found nothing to resolve in database")"
check "the launcher waits" "$launcher" "$(launcher_pid)"

# The SQL function: a pass on demand, superuser only unless EXECUTE is granted.
check "on demand: nothing to resolve" 0 "$(q $C $db "SELECT fdwshard_recover_prepared_transactions()")"
q $C $db "CREATE ROLE $role LOGIN" >/dev/null
out=$(psql_on $C -d $db -U $role -tA -c "SELECT fdwshard_recover_prepared_transactions()" 2>&1)
check_contains "refused to a user without EXECUTE" "permission denied for function fdwshard_recover_prepared_transactions" "$out"

exit $((failures > 0))
