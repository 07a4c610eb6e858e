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

# session_open PORT DB: one psql session fed through fd 7 (echo "SQL;" >&7), printing into
# $session_out. Commands that start servers meanwhile must close fd 7 (node_restart NAME 7>&-),
# or the session never sees the end of its input.
session_open() {
	session_fifo=$(mktemp -u); mkfifo "$session_fifo"; chmod 666 "$session_fifo"
	session_out=$(mktemp); chmod 666 "$session_out"
	psql_on "$1" -d "$2" -tA <"$session_fifo" >"$session_out" 2>&1 &
	session_pid=$!
	exec 7>"$session_fifo"
}
# session_mark MARK: the session runs SELECT 'MARK' and this waits until it has printed it.
session_mark() {
	echo "SELECT '$1';" >&7
	until grep -qx "$1" "$session_out"; do sleep 0.1; done
}
# session_close: ends the session; everything it printed in $session_text. (Not in a subshell:
# the session ends when this shell closes fd 7.)
session_close() {
	exec 7>&-
	wait "$session_pid"
	session_text=$(cat "$session_out")
	rm -f "$session_fifo" "$session_out"
}
