# Shared by fault tests: the cluster scripts/test.sh started (exported ports and CLUSTER_DIR) and checks.
source "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
: "${CLUSTER_DIR:?run through scripts/test.sh}"
failures=0

# check NAME EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then echo "   ok   $1"; else echo "   FAIL $1: expected [$2], got [$3]"; failures=$((failures + 1)); fi
}
# check_contains NAME NEEDLE HAYSTACK
check_contains() {
	case "$3" in *"$2"*) echo "   ok   $1" ;; *) echo "   FAIL $1: [$2] not in [$3]"; failures=$((failures + 1)) ;; esac
}
# q PORT DB SQL: one value, errors on stdout
q() { psql_on "$1" -d "$2" -tA -v ON_ERROR_STOP=1 -c "$3" 2>&1; }

# fresh_db NAME: the database on every node, fdwshard with both workers on the coordinator.
fresh_db() {
	for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
		q "$port" postgres "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
		q "$port" postgres "CREATE DATABASE $1" >/dev/null
	done
	q "$COORDINATOR_PORT" "$1" "CREATE EXTENSION fdwshard CASCADE" >/dev/null
	q "$COORDINATOR_PORT" "$1" "SELECT fdwshard_add_node('127.0.0.1', $WORKER1_PORT)" >/dev/null
	q "$COORDINATOR_PORT" "$1" "SELECT fdwshard_add_node('127.0.0.1', $WORKER2_PORT)" >/dev/null
}
