-- Generic plans routed at executor start: the plan of a shard index whose statement is shipped is
-- derived from another shard index's (its shards swapped), checked once against the planner's.
-- Each key must still get its own shard's rows on its own node, with hostile names.
CREATE SCHEMA "Swap ""Sch"" ü";
SET search_path = "Swap ""Sch"" ü";
SET fdwshard.next_shard_id = 73000;
SET plan_cache_mode = force_generic_plan;

CREATE TABLE "Tä ""b""" (id int PRIMARY KEY, "Vål" text);
SELECT create_distributed_table('"Tä ""b"""', 'id', shard_count := 6);
CREATE TABLE "Other T" (id int, n int);
SELECT create_distributed_table('"Other T"', 'id', shard_count := 6, colocate_with := '"Tä ""b"""');
INSERT INTO "Tä ""b""" SELECT i, 'v' || i FROM generate_series(1, 60) i;
INSERT INTO "Other T" SELECT i, i * 10 FROM generate_series(1, 60) i;

-- One key per shard index, and where each shard is (node 1 is the coordinator).
CREATE VIEW placements AS
SELECT (s.shardid - 73000) % 6 AS shard_index, s.shardid, s.shard_name, s.nodeid,
       (SELECT min(id) FROM "Tä ""b""" t WHERE get_shard_id_for_distribution_column('"Tä ""b"""', t.id) = s.shardid) AS k
FROM fdwshard.shards s WHERE s.table_name = '"Tä ""b"""'::regclass ORDER BY s.shardid;
SELECT * FROM placements;
SELECT k AS k0 FROM placements WHERE shard_index = 0 \gset
SELECT k AS k1 FROM placements WHERE shard_index = 1 \gset
SELECT k AS k2 FROM placements WHERE shard_index = 2 \gset
SELECT k AS k3 FROM placements WHERE shard_index = 3 \gset
SELECT k AS k4 FROM placements WHERE shard_index = 4 \gset
SELECT k AS k5 FROM placements WHERE shard_index = 5 \gset

-- Shard index 0 is planned with the generic plan (a local shard: no model); 1, the first shipped
-- statement, is the model; 2 is planned and derived both, equal; 4 and 5 are derived; 3 is local.
PREPARE get(int) AS SELECT id, "Vål" FROM "Tä ""b""" WHERE id = $1;
SET client_min_messages = debug2;
EXPLAIN (COSTS OFF) EXECUTE get(:k1);
EXPLAIN (COSTS OFF) EXECUTE get(:k2);
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE get(:k4);
EXPLAIN (COSTS OFF) EXECUTE get(:k5);
EXPLAIN (COSTS OFF) EXECUTE get(:k3);
RESET client_min_messages;
-- Every shard's first and last key gets its own row (id|Vål, one line each).
CREATE VIEW some_keys AS
SELECT keys.k, (SELECT p.shard_index FROM placements p
                WHERE p.shardid = get_shard_id_for_distribution_column('"Tä ""b"""', keys.k)) AS shard_index
FROM (SELECT min(id) AS k FROM "Tä ""b""" GROUP BY get_shard_id_for_distribution_column('"Tä ""b"""', id)
      UNION SELECT max(id) FROM "Tä ""b""" GROUP BY get_shard_id_for_distribution_column('"Tä ""b"""', id)) keys;
\pset tuples_only on
\pset format unaligned
SELECT format('EXECUTE get(%s)', k) FROM some_keys ORDER BY shard_index, k \gexec
\pset tuples_only off
\pset format aligned

-- A co-located join on the distribution column: both tables' shards swapped.
PREPARE joined(int) AS
SELECT b.id, b."Vål", o.n FROM "Tä ""b""" b JOIN "Other T" o ON o.id = b.id WHERE b.id = $1 AND o.n > 0;
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE joined(:k1);
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE joined(:k2);
SET client_min_messages = debug2;
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE joined(:k5);
RESET client_min_messages;
\pset tuples_only on
\pset format unaligned
SELECT format('EXECUTE joined(%s)', k) FROM some_keys ORDER BY shard_index, k \gexec
\pset tuples_only off
\pset format aligned

-- UPDATE and DELETE with RETURNING through prepared statements, then read back without them.
PREPARE upd(int, text) AS UPDATE "Tä ""b""" SET "Vål" = $2 || id::text WHERE id = $1 RETURNING id, "Vål";
PREPARE del(int) AS DELETE FROM "Other T" WHERE id = $1 RETURNING id, n;
SET client_min_messages = debug2;
EXPLAIN (COSTS OFF) EXECUTE upd(:k1, 'x');
EXPLAIN (COSTS OFF) EXECUTE upd(:k2, 'x');
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE upd(:k4, 'x');
EXPLAIN (COSTS OFF) EXECUTE del(:k1);
EXPLAIN (COSTS OFF) EXECUTE del(:k2);
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE del(:k5);
RESET client_min_messages;
\pset tuples_only on
\pset format unaligned
SELECT format('EXECUTE upd(%s, %L)', k, 'new ' || shard_index || ' ') FROM some_keys ORDER BY shard_index, k \gexec
SELECT format('EXECUTE del(%s)', k) FROM some_keys ORDER BY shard_index, k \gexec
\pset tuples_only off
\pset format aligned
SELECT count(*) FILTER (WHERE "Vål" LIKE 'new %') AS updated, count(*) FILTER (WHERE "Vål" = 'v' || id) AS untouched,
       count(*) FILTER (WHERE "Vål" = 'new ' || s.shard_index || ' ' || id) AS updated_as_asked
FROM "Tä ""b""" t LEFT JOIN some_keys s ON s.k = t.id;
SELECT count(*) AS left_in_other, count(*) FILTER (WHERE id IN (SELECT k FROM some_keys)) AS deleted_keys_left
FROM "Other T";
INSERT INTO "Other T" SELECT k, k * 10 FROM some_keys;

-- Permissions are checked on the distributed table, for derived plans as for planned ones
-- (EXPLAIN checks them too; it sends nothing to the workers).
CREATE ROLE regress_swap_reader;
SELECT fdwshard.run_command_on_node(n, 'CREATE ROLE regress_swap_reader') FROM unnest(ARRAY[2, 3]) n;
GRANT USAGE ON SCHEMA "Swap ""Sch"" ü" TO regress_swap_reader;
GRANT SELECT (id) ON "Tä ""b""" TO regress_swap_reader;
PREPARE ids(int) AS SELECT id FROM "Tä ""b""" WHERE id = $1;
PREPARE vals(int) AS SELECT "Vål" FROM "Tä ""b""" WHERE id = $1;
EXECUTE ids(:k1);
EXECUTE ids(:k2);
EXECUTE vals(:k1);
EXECUTE vals(:k2);
SET ROLE regress_swap_reader;
SET client_min_messages = debug2;
EXPLAIN (COSTS OFF) EXECUTE ids(:k4);
EXPLAIN (COSTS OFF) EXECUTE vals(:k4);
EXPLAIN (COSTS OFF) EXECUTE vals(:k2);
RESET client_min_messages;
RESET ROLE;

-- A shard name that is also another name of the statement (here a column alias of the model's
-- shard) makes the derived SQL differ from the planner's: that statement is planned for each shard.
PREPARE aliased(int) AS SELECT id AS "Tä ""b""_73001", "Vål" FROM "Tä ""b""" WHERE id = $1;
SET client_min_messages = debug2;
EXPLAIN (COSTS OFF) EXECUTE aliased(:k1);
EXPLAIN (COSTS OFF) EXECUTE aliased(:k2);
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE aliased(:k4);
RESET client_min_messages;
EXECUTE aliased(:k4);
EXECUTE aliased(:k5);

-- An invalidation of every routed plan (a new function) leaves the generic plan: the model is
-- planned again, checked again on the next shard index, then plans are derived again.
CREATE FUNCTION "Swap ""Sch"" ü".nothing() RETURNS int LANGUAGE sql AS 'SELECT 1';
SET client_min_messages = debug2;
EXPLAIN (COSTS OFF) EXECUTE get(:k4);
EXPLAIN (COSTS OFF) EXECUTE get(:k5);
EXPLAIN (COSTS OFF) EXECUTE get(:k1);
EXPLAIN (COSTS OFF) EXECUTE get(:k2);
RESET client_min_messages;
EXECUTE get(:k2);

-- DDL on the table replaces the generic plan; the new one routes each key right.
ALTER TABLE "Tä ""b""" ADD COLUMN extra int DEFAULT 7;
PREPARE with_extra(int) AS SELECT id, "Vål", extra FROM "Tä ""b""" WHERE id = $1;
SET client_min_messages = debug2;
EXPLAIN (COSTS OFF) EXECUTE get(:k1);
EXPLAIN (COSTS OFF) EXECUTE get(:k2);
EXPLAIN (COSTS OFF) EXECUTE get(:k4);
RESET client_min_messages;
EXECUTE get(:k4);
EXECUTE with_extra(:k1);
EXECUTE with_extra(:k2);
EXECUTE with_extra(:k5);

-- Shards moved between executions: the next EXECUTE goes to the new node (a worker's shard to
-- the other worker, another to the coordinator, the model's to the other worker).
\set VERBOSITY terse
SELECT fdwshard_move_shard(shardid, CASE nodeid WHEN 2 THEN 3 ELSE 2 END) FROM placements WHERE shard_index = 4;
SELECT fdwshard_move_shard(shardid, 1) FROM placements WHERE shard_index = 5;
SELECT fdwshard_move_shard(shardid, CASE nodeid WHEN 2 THEN 3 ELSE 2 END) FROM placements WHERE shard_index = 1;
\set VERBOSITY default
SELECT shard_index, nodeid FROM placements;
SET client_min_messages = debug2;
EXPLAIN (COSTS OFF) EXECUTE get(:k2);
EXPLAIN (COSTS OFF) EXECUTE get(:k1);
EXPLAIN (COSTS OFF) EXECUTE get(:k4);
EXPLAIN (COSTS OFF) EXECUTE get(:k5);
RESET client_min_messages;
\pset tuples_only on
\pset format unaligned
SELECT format('EXECUTE get(%s)', k) FROM some_keys ORDER BY shard_index, k \gexec
SELECT format('EXECUTE joined(%s)', k) FROM some_keys ORDER BY shard_index, k \gexec
\pset tuples_only off
\pset format aligned

DEALLOCATE ALL;
RESET plan_cache_mode;
RESET search_path;
DROP SCHEMA "Swap ""Sch"" ü" CASCADE;
DROP ROLE regress_swap_reader;
SELECT fdwshard.run_command_on_node(n, 'DROP OWNED BY regress_swap_reader') FROM unnest(ARRAY[2, 3]) n;
SELECT fdwshard.run_command_on_node(n, 'DROP ROLE regress_swap_reader') FROM unnest(ARRAY[2, 3]) n;
