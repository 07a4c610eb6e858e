#!/usr/bin/env bash
# ALTER EXTENSION fdwshard UPDATE from the previous version gives the same extension as a fresh
# install of the current one: every member object, its definition, privileges and comments, the
# configuration tables pg_dump saves and the coordinator's catalog row are compared.
set -u
source "$(dirname "$0")/lib.sh"

current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$(dirname "$0")/../../control/fdwshard.control")
previous_versions="0.1 0.2 0.3" # every earlier release updates to the current one

# Everything about the installed extension, one line per fact, sorted.
describe='
WITH ext AS (SELECT oid, extversion, extconfig, extcondition FROM pg_extension WHERE extname = $$fdwshard$$),
members AS (
    SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
    WHERE d.refclassid = $$pg_extension$$::regclass AND d.refobjid = ext.oid AND d.deptype = $$e$$)
SELECT $$version $$ || extversion FROM ext
UNION ALL SELECT $$member $$ || pg_describe_object(classid, objid, objsubid) FROM members
UNION ALL SELECT $$config $$ || c::regclass::text FROM ext, unnest(extconfig) c
UNION ALL SELECT $$function $$ || pg_get_functiondef(p.oid) || $$ acl $$ || coalesce(p.proacl::text, $$-$$)
                 || $$ comment $$ || coalesce(obj_description(p.oid, $$pg_proc$$), $$-$$)
          FROM members m JOIN pg_proc p ON m.classid = $$pg_proc$$::regclass AND p.oid = m.objid
UNION ALL SELECT $$relation $$ || c.oid::regclass::text || $$ kind $$ || c.relkind::text || $$ acl $$
                 || coalesce(c.relacl::text, $$-$$) || $$ options $$ || coalesce(c.reloptions::text, $$-$$)
          FROM pg_class c WHERE c.relnamespace = $$fdwshard$$::regnamespace
UNION ALL SELECT $$column $$ || a.attrelid::regclass::text || $$.$$ || a.attname || $$ $$
                 || format_type(a.atttypid, a.atttypmod) || $$ notnull $$ || a.attnotnull || $$ default $$
                 || coalesce(pg_get_expr(ad.adbin, ad.adrelid), $$-$$) || $$ position $$ || a.attnum
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
          WHERE c.relnamespace = $$fdwshard$$::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL SELECT $$constraint $$ || conrelid::regclass::text || $$ $$ || conname || $$ $$ || pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = $$fdwshard$$::regnamespace
UNION ALL SELECT $$index $$ || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
          WHERE c.relnamespace = $$fdwshard$$::regnamespace
UNION ALL SELECT $$trigger $$ || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = $$fdwshard$$::regnamespace AND NOT t.tgisinternal
UNION ALL SELECT $$view $$ || c.oid::regclass::text || $$ $$ || pg_get_viewdef(c.oid)
          FROM pg_class c WHERE c.relnamespace = $$fdwshard$$::regnamespace AND c.relkind = $$v$$
UNION ALL SELECT $$sequence $$ || s.seqrelid::regclass::text || $$ $$ || s.seqstart || $$ $$ || s.seqincrement
          FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = $$fdwshard$$::regnamespace
UNION ALL SELECT $$event trigger $$ || evtname || $$ $$ || evtevent || $$ $$ || evtfoid::regproc::text || $$ $$ || evtenabled::text
          FROM pg_event_trigger WHERE evtname LIKE $$fdwshard%$$
UNION ALL SELECT $$schema acl $$ || coalesce(nspacl::text, $$-$$) FROM pg_namespace WHERE nspname = $$fdwshard$$
UNION ALL SELECT $$local node $$ || (to_jsonb(n) - $$dbname$$)::text FROM fdwshard.node n
ORDER BY 1'

q "$COORDINATOR_PORT" postgres "DROP DATABASE IF EXISTS upgrade_fresh WITH (FORCE)" >/dev/null
q "$COORDINATOR_PORT" postgres "CREATE DATABASE upgrade_fresh" >/dev/null
q "$COORDINATOR_PORT" upgrade_fresh "CREATE EXTENSION fdwshard CASCADE" >/dev/null
fresh=$(q "$COORDINATOR_PORT" upgrade_fresh "$describe")
echo "$fresh" | grep -q "^ERROR" && echo "$fresh"
check "the description is not empty" "yes" "$([ "$(echo "$fresh" | grep -c '^function ')" -gt 5 ] && echo yes || echo no)"

for previous in $previous_versions; do
	q "$COORDINATOR_PORT" postgres "DROP DATABASE IF EXISTS upgrade_updated WITH (FORCE)" >/dev/null
	q "$COORDINATOR_PORT" postgres "CREATE DATABASE upgrade_updated" >/dev/null
	out=$(q "$COORDINATOR_PORT" upgrade_updated "CREATE EXTENSION fdwshard VERSION '$previous' CASCADE" | grep -v NOTICE)
	check "version $previous installs" "CREATE EXTENSION" "$out"
	if [ "$previous" = 0.2 ]; then
		# Tables distributed before 0.3 have no placeholders for ON CONFLICT ON CONSTRAINT: the update adds
		# them, reading the keys' columns from a local shard (local_only) or from the worker (remote_only).
		# (With 0.2's SQL, the 0.3 library cannot distribute a table over the coordinator and a worker.)
		q "$WORKER1_PORT" postgres "DROP DATABASE IF EXISTS upgrade_updated WITH (FORCE)" >/dev/null
		q "$WORKER1_PORT" postgres "CREATE DATABASE upgrade_updated" >/dev/null
		out=$(q "$COORDINATOR_PORT" upgrade_updated "
			SELECT fdwshard_add_node('127.0.0.1', $WORKER1_PORT);
			SELECT fdwshard_set_node_property(2, 'should_have_shards', false);
			CREATE TABLE local_only (k int, \"Odd Id\" int, v text, PRIMARY KEY (k, \"Odd Id\"), CONSTRAINT \"U 1\" UNIQUE (v, k));
			SELECT create_distributed_table('local_only', 'k', shard_count := 2);
			SELECT fdwshard_set_node_property(2, 'should_have_shards', true);
			SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
			CREATE TABLE remote_only (k int PRIMARY KEY, v text);
			SELECT create_distributed_table('remote_only', 'k', shard_count := 2);
			INSERT INTO local_only VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c');
			INSERT INTO remote_only VALUES (1, 'a');
			SELECT count(*) FROM pg_constraint WHERE conrelid IN ('local_only'::regclass, 'remote_only'::regclass)")
		check "$previous: tables distributed before the update, without placeholders" "0" "$(echo "$out" | tail -1)"
	fi
	out=$(q "$COORDINATOR_PORT" upgrade_updated "ALTER EXTENSION fdwshard UPDATE")
	check "$previous: ALTER EXTENSION fdwshard UPDATE" "ALTER EXTENSION" "$out"
	if [ "$previous" = 0.2 ]; then
		check "$previous: placeholders added by the update" \
			'local_only U 1 CHECK (fdwshard_shard_key(v, k)),local_only local_only_pkey CHECK (fdwshard_shard_key(k, "Odd Id")),remote_only remote_only_pkey CHECK (fdwshard_shard_key(k))' \
			"$(q "$COORDINATOR_PORT" upgrade_updated "SELECT string_agg(conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid), ',' ORDER BY 1)
				FROM pg_constraint WHERE conrelid IN ('local_only'::regclass, 'remote_only'::regclass)")"
		check "$previous: ON CONFLICT ON CONSTRAINT after the update" "1 x|2 x|3 c|9 x|1 x" \
			"$(q "$COORDINATOR_PORT" upgrade_updated "
				INSERT INTO local_only VALUES (1, 1, 'x') ON CONFLICT ON CONSTRAINT local_only_pkey DO UPDATE SET v = EXCLUDED.v;
				INSERT INTO local_only VALUES (2, 2, 'x') ON CONFLICT ON CONSTRAINT local_only_pkey DO UPDATE SET v = EXCLUDED.v;
				INSERT INTO local_only VALUES (3, 9, 'c') ON CONFLICT ON CONSTRAINT \"U 1\" DO NOTHING;
				INSERT INTO local_only VALUES (9, 9, 'x') ON CONFLICT ON CONSTRAINT \"U 1\" DO NOTHING;
				INSERT INTO remote_only VALUES (1, 'x') ON CONFLICT ON CONSTRAINT remote_only_pkey DO UPDATE SET v = EXCLUDED.v;
				SELECT string_agg(k || ' ' || v, '|' ORDER BY k) FROM local_only UNION ALL SELECT string_agg(k || ' ' || v, '|') FROM remote_only" | grep -v '^INSERT' | tr '\n' '|' | sed 's/|$//')"
		# Back to the coordinator alone, as the fresh install is.
		q "$COORDINATOR_PORT" upgrade_updated "DROP TABLE local_only, remote_only; SELECT fdwshard_remove_node(2);
			SELECT fdwshard_set_node_property(1, 'should_have_shards', true)" >/dev/null
	fi
	check "$previous: updated to $current" "$current" "$(q "$COORDINATOR_PORT" upgrade_updated "SELECT extversion FROM pg_extension WHERE extname = 'fdwshard'")"
	updated=$(q "$COORDINATOR_PORT" upgrade_updated "$describe")
	if [ "$fresh" = "$updated" ]; then
		echo "   ok   $previous: updated equals fresh ($(echo "$fresh" | wc -l) facts)"
	else
		echo "   FAIL $previous: updated differs from fresh:"
		diff <(echo "$fresh") <(echo "$updated") | sed 's/^/        /' | cut -c1-300
		failures=$((failures + 1))
	fi
done

for db in upgrade_fresh upgrade_updated; do q "$COORDINATOR_PORT" postgres "DROP DATABASE $db" >/dev/null; done
q "$WORKER1_PORT" postgres "DROP DATABASE IF EXISTS upgrade_updated WITH (FORCE)" >/dev/null
exit $((failures > 0))
