#!/usr/bin/env bash
# A prepared statement's first execution on a worker shard sends the shard statement's PREPARE
# and its execution in one round trip. An error of the execution leaves the statement prepared
# there; a PREPARE that fails (the shard table renamed away on the worker) leaves nothing the
# session believes prepared: once the table is back, the same session runs the statement again.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_autocommit_prepare
fresh_db $db
q "$COORDINATOR_PORT" $db "CREATE TABLE kv (k int PRIMARY KEY, v int NOT NULL);
    SELECT create_distributed_table('kv', 'k', shard_count := 3)" >/dev/null
# Two keys of one shard on worker 1.
read -r k1 k2 < <(q "$COORDINATOR_PORT" $db "SELECT string_agg(g::text, ' ') FROM (SELECT g FROM generate_series(1, 200) g
    JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('kv', g)
    WHERE s.port = $WORKER1_PORT AND s.shardid = (SELECT min(shardid) FROM fdwshard.shards
        WHERE table_name = 'kv'::regclass AND port = $WORKER1_PORT) ORDER BY g LIMIT 2) two")
shard=$(q "$COORDINATOR_PORT" $db "SELECT shard_name FROM fdwshard.shards WHERE shardid = get_shard_id_for_distribution_column('kv', $k1)")

# One session: each statement its own transaction, so the executions go through fdwshard's own
# connection and the statements it prepares there.
out=$(psql_on "$COORDINATOR_PORT" -d $db -tA 2>&1 <<-SQL
	PREPARE ins(int, int) AS INSERT INTO kv VALUES (\$1, \$2);
	PREPARE get(int) AS SELECT v FROM kv WHERE k = \$1;
	EXECUTE ins($k1, 1);
	EXECUTE ins($k1, 2);
	EXECUTE get($k1);
	EXECUTE ins($k2, 3);
	EXECUTE get($k2);
SQL
)
check_contains "the second insert of a key fails on the worker" 'duplicate key value violates unique constraint' "$out"
check "then the session's statements still run: the first insert's row, then another" "1 3" \
	"$(grep -E '^[0-9]+$' <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
check "the rows" "$k1:1 $k2:3" "$(q "$COORDINATOR_PORT" $db "SELECT string_agg(k || ':' || v, ' ' ORDER BY k) FROM kv")"

# A PREPARE that fails on the worker: the table is renamed away between two executions of a
# new session's statement; the same session runs it again once the table is back.
session_open "$COORDINATOR_PORT" $db
echo "PREPARE get(int) AS SELECT v FROM kv WHERE k = \$1;" >&7
q "$WORKER1_PORT" $db "ALTER TABLE public.$shard RENAME TO moved_away" >/dev/null
echo "EXECUTE get($k1);" >&7
session_mark "renamed back"
q "$WORKER1_PORT" $db "ALTER TABLE public.moved_away RENAME TO $shard" >/dev/null
echo "EXECUTE get($k1);" >&7
echo "EXECUTE get($k2);" >&7
session_close
out=$session_text
check_contains "with the table away the worker's PREPARE fails" "does not exist" "$out"
check "with the table back the same session reads both rows" "1 3" \
	"$(sed -n '/renamed back/,$p' <<<"$out" | grep -E '^[0-9]+$' | tr '\n' ' ' | sed 's/ $//')"
check "no error names a statement the worker does not have" "0" "$(grep -c 'prepared statement "fdwshard_' <<<"$out")"

q "$COORDINATOR_PORT" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null
for port in "$WORKER1_PORT" "$WORKER2_PORT"; do q "$port" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null; done
[ "$failures" -eq 0 ]
