#!/usr/bin/env bash
# pg_dump of the coordinator restored into a new coordinator over the same workers, as a working
# distributed cluster and without a single error: by pg_restore (custom format, section by section,
# two jobs at once: the catalog tables load in parallel) and by psql (plain SQL, ON_ERROR_STOP). Afterwards the rows, nodes and placements are those of before the dump,
# duplicate keys are refused on a local and on a remote shard, a foreign key on a local shard,
# indexes are valid, grants hold, DDL reaches the workers and DROP TABLE removes the workers'
# shards. A --schema-only dump, which has no catalog rows, fails loudly and distributes nothing.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_dump_restore
work=$CLUSTER_DIR/dump_restore
C=$COORDINATOR_PORT
restored_dbs="fault_dump_restored fault_dump_restored_sql fault_dump_schema_only"
cleanup() {
	for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
		for d in $db $restored_dbs; do q "$port" postgres "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null; done
		q "$port" postgres "DROP ROLE IF EXISTS dump_reader" >/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
as_pg mkdir -p "$work"

fresh_db $db
for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
	q "$port" postgres "DROP ROLE IF EXISTS dump_reader; CREATE ROLE dump_reader" >/dev/null
done
c() { q "$C" $db "$1"; }
out=$(c "CREATE TABLE tenants (tenant_id int PRIMARY KEY, name text, UNIQUE (name, tenant_id));
SELECT create_distributed_table('tenants', 'tenant_id', shard_count := 6);
CREATE TABLE \"Odd Events\" (tenant_id int, id bigserial, kind text, amount numeric, ext text,
                              PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('\"Odd Events\"', 'tenant_id', shard_count := 6, colocate_with := 'tenants');
ALTER TABLE \"Odd Events\" ADD CONSTRAINT \"Odd fk\" FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id);
CREATE INDEX \"Odd kind\" ON \"Odd Events\" (kind);
CREATE UNIQUE INDEX odd_ext ON \"Odd Events\" (tenant_id, ext);
CREATE VIEW big_events AS SELECT * FROM \"Odd Events\" WHERE amount > 500;
GRANT SELECT ON \"Odd Events\" TO dump_reader;
SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
CREATE TABLE remote_only (k int PRIMARY KEY, v int);
SELECT create_distributed_table('remote_only', 'k', shard_count := 4);
CREATE INDEX remote_only_v ON remote_only (v);
SELECT fdwshard_set_node_property(1, 'should_have_shards', true);
INSERT INTO remote_only SELECT g, g FROM generate_series(1, 100) g;
INSERT INTO tenants SELECT g, 'tenant ' || g FROM generate_series(1, 30) g;
INSERT INTO \"Odd Events\" (tenant_id, kind, amount, ext) SELECT g % 30 + 1, 'k' || g % 3, g, 'x' || g
FROM generate_series(1, 3000) g" 2>&1)
check "the source cluster" "" "$(echo "$out" | grep -E 'ERROR|WARNING')"
[ $failures = 0 ] || exit 1
summary="SELECT (SELECT count(*) || ' ' || sum(amount) FROM \"Odd Events\") || ' ' ||
         (SELECT count(*) FROM big_events) || ' ' || (SELECT count(*) FROM tenants) || ' ' || (SELECT sum(v) FROM remote_only)"
placements="SELECT string_agg(table_name::text || ':' || shardid || ':' || nodeid, ' ' ORDER BY table_name::text, shardid)
            FROM fdwshard.shards"
nodes="SELECT string_agg(nodeid || ' ' || port || ' ' || is_local, ', ' ORDER BY nodeid) FROM fdwshard.nodes"
before=$(c "$summary")
before_placements=$(c "$placements")
check "rows before the dump" "3000 4501500 2500 30 5050" "$before"
check "shards on the coordinator and both workers" "3" "$(c "SELECT count(DISTINCT nodeid) FROM fdwshard.shards")"
worker_tables="SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
w1_tables=$(q "$WORKER1_PORT" $db "$worker_tables")
check "shard tables on worker 1" "6" "$w1_tables"

as_pg "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$C" -U postgres -Fc -f "$work/coordinator.dump" $db || check "pg_dump -Fc" 0 $?
as_pg "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$C" -U postgres -f "$work/coordinator.sql" $db || check "pg_dump" 0 $?
as_pg "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$C" -U postgres --schema-only -f "$work/schema.sql" $db || check "pg_dump --schema-only" 0 $?
# The coordinator is lost: its database goes, the workers keep their shards.
q "$C" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null

# A --schema-only dump has none of fdwshard's catalog rows: the restore fails, naming the reason,
# and leaves no distributed table (its tables are the coordinator's alone: DROP TABLE touches no worker).
q "$C" postgres "CREATE DATABASE fault_dump_schema_only" >/dev/null
out=$(as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$C" -U postgres -d fault_dump_schema_only -f "$work/schema.sql" 2>&1)
check_contains "a --schema-only restore fails loudly" 'ERROR:  table "Odd Events" is not distributed, so fdwshard'"'"'s trigger cannot be created on it' "$out"
check "and distributes nothing" "0|0" "$(q "$C" fault_dump_schema_only "SELECT (SELECT count(*) FROM fdwshard.tables), (SELECT count(*) FROM fdwshard.shards)")"
q "$C" fault_dump_schema_only "DROP TABLE \"Odd Events\", tenants CASCADE" >/dev/null
check "its DROP TABLE leaves the workers' shards" "$w1_tables" "$(q "$WORKER1_PORT" $db "$worker_tables")"

# pg_restore of the custom format into a new coordinator database, by sections, data and post-data
# two jobs at once (the README's parallel restore).
r=fault_dump_restored
q "$C" postgres "CREATE DATABASE $r" >/dev/null
out=""
rc=0
for section in "pre-data" "data -j 2" "post-data -j 2"; do # shellcheck disable=SC2086
	out+=$(as_pg "$PG_BIN/pg_restore" --section=$section -h 127.0.0.1 -p "$C" -U postgres -d $r "$work/coordinator.dump" 2>&1) || rc=$?
done
check "pg_restore succeeds" "0" "$rc"
check "pg_restore reports no error" "" "$out"
check "rows after pg_restore" "$before" "$(q "$C" $r "$summary")"
check "every shard on its node" "$before_placements" "$(q "$C" $r "$placements")"
check "nodes: the new coordinator and both workers" "1 $C true, 2 $WORKER1_PORT false, 3 $WORKER2_PORT false" "$(q "$C" $r "$nodes")"
check "the partitioned index is valid" "t" "$(q "$C" $r "SELECT indisvalid FROM pg_index WHERE indexrelid = '\"Odd kind\"'::regclass")"
check "so is that of a table without local shards" "t" "$(q "$C" $r "SELECT indisvalid FROM pg_index WHERE indexrelid = 'remote_only_v'::regclass")"
check "the grant holds" "t|t" "$(q "$C" $r "SELECT has_table_privilege('dump_reader', '\"Odd Events\"', 'SELECT'), has_table_privilege('dump_reader', (SELECT shard_relid FROM fdwshard.shard s JOIN fdwshard.placement p USING (shardid) WHERE logicalrelid = '\"Odd Events\"'::regclass AND p.nodeid = 1 LIMIT 1), 'SELECT')")"
# A tenant (from FROM..TO) whose shard is local (nodeid = 1) or remote (nodeid <> 1).
tenant_on() { # CONDITION FROM TO
	q "$C" $r "SELECT t FROM generate_series($2, $3) t JOIN fdwshard.shards s
	           ON s.table_name = 'tenants'::regclass AND fdwshard_hash(t) BETWEEN s.min_hash AND s.max_hash
	           WHERE s.$1 ORDER BY t LIMIT 1"
}
for where in "nodeid = 1:a local shard" "nodeid <> 1:a remote shard"; do
	tenant=$(tenant_on "${where%%:*}" 1 30)
	check_contains "primary key on ${where#*:}" "ERROR:  duplicate key value violates unique constraint" "$(q "$C" $r "INSERT INTO tenants VALUES ($tenant, 'again')")"
	check_contains "unique index on ${where#*:}" "ERROR:  duplicate key value violates unique constraint" "$(q "$C" $r "INSERT INTO \"Odd Events\" (tenant_id, ext) SELECT tenant_id, ext FROM \"Odd Events\" WHERE tenant_id = $tenant LIMIT 1")"
	missing=$(tenant_on "${where%%:*}" 31 1000)
	check_contains "foreign key on ${where#*:}" "violates foreign key constraint" "$(q "$C" $r "INSERT INTO \"Odd Events\" (tenant_id) VALUES ($missing)")"
done
check "the restored cluster writes" "INSERT 0 1" "$(q "$C" $r "INSERT INTO \"Odd Events\" (tenant_id, kind, amount, ext) VALUES (1, 'new', 1, 'new')" | tail -1)"
check "after the write" "3001" "$(q "$C" $r "SELECT count(*) FROM \"Odd Events\"")"
q "$C" $r "DELETE FROM \"Odd Events\" WHERE kind = 'new'" >/dev/null
q "$C" postgres "DROP DATABASE $r WITH (FORCE)" >/dev/null

# psql with the plain SQL dump, stopping at the first error.
r=fault_dump_restored_sql
q "$C" postgres "CREATE DATABASE $r" >/dev/null
out=$(as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$C" -U postgres -d $r -v ON_ERROR_STOP=1 -f "$work/coordinator.sql" 2>&1 >/dev/null)
check "psql restores the plain dump" "0" "$?"
check "psql reports no error" "" "$out"
check "rows after the psql restore" "$before" "$(q "$C" $r "$summary")"
check "the partitioned index is valid" "t" "$(q "$C" $r "SELECT indisvalid FROM pg_index WHERE indexrelid = '\"Odd kind\"'::regclass")"

# DDL reaches every shard, new shards do not collide with the restored ones, DROP removes them everywhere.
out=$(q "$C" $r "ALTER TABLE \"Odd Events\" ADD COLUMN note text DEFAULT 'n';
                 CREATE INDEX amount_idx ON \"Odd Events\" (amount);
                 SELECT count(*) FILTER (WHERE note = 'n') FROM \"Odd Events\"" 2>&1)
check "ADD COLUMN and CREATE INDEX reach every shard" "3000" "$(echo "$out" | tail -1)"
check "the new index on worker 1's two shards" "2" "$(q "$WORKER1_PORT" $db "SELECT count(*) FROM pg_indexes WHERE indexname ~ '^amount_idx_[0-9]+$'")"
out=$(q "$C" $r "CREATE TABLE more (tenant_id int PRIMARY KEY); SELECT create_distributed_table('more', 'tenant_id', shard_count := 6)" 2>&1)
check "a new table is distributed past the restored shard ids" "" "$(echo "$out" | grep ERROR)"
out=$(q "$C" $r "DROP TABLE \"Odd Events\" CASCADE; DROP TABLE tenants, more, remote_only" 2>&1)
check "DROP TABLE" "" "$(echo "$out" | grep -E 'ERROR|WARNING')"
check "no shard left on worker 1" "0" "$(q "$WORKER1_PORT" $db "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
check "no shard left on worker 2" "0" "$(q "$WORKER2_PORT" $db "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
check "nothing prepared anywhere" "000" "$(for p in "$C" "$WORKER1_PORT" "$WORKER2_PORT"; do q "$p" postgres "SELECT count(*) FROM pg_prepared_xacts"; done | tr -d '\n')"
exit $((failures > 0))
