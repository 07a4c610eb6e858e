-- Combined reads: a multi-shard read of one table sends each pool connection one statement for
-- its batch of a worker's shards (their rows as UNION ALL under the read's own statement). The
-- answers are those of one statement per shard and of a plain table; names are hostile, and the
-- distributed table has a dropped column its shards do not have.
CREATE SCHEMA "Comb ""Ü"" s";
SET search_path = "Comb ""Ü"" s";
SET fdwshard.next_shard_id = 41000;

CREATE TABLE "Ev ""t"" ü" (k int PRIMARY KEY, gone int, "Grp x" int, "order" text, amount numeric);
ALTER TABLE "Ev ""t"" ü" DROP COLUMN gone;
SELECT create_distributed_table('"Ev ""t"" ü"', 'k', shard_count := 32, colocate_with := 'none');
CREATE TABLE plain (LIKE "Ev ""t"" ü");
INSERT INTO "Ev ""t"" ü" SELECT g, g % 7, 'o' || (g % 13), g * 1.5 FROM generate_series(1, 2000) g;
INSERT INTO plain SELECT * FROM "Ev ""t"" ü";
SELECT nodeid, count(*) AS shards FROM fdwshard.shards WHERE table_name = '"Ev ""t"" ü"'::regclass GROUP BY 1 ORDER BY 1;

-- A query's rows in order, as one text (run alone, so the planner sees the query itself).
CREATE FUNCTION answer(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    acc text := '';
BEGIN
    FOR r IN EXECUTE query LOOP
        acc := acc || r::text || ';';
    END LOOP;
    RETURN acc;
END $$;
-- What EXPLAIN shows of a query: its statements that read several shards (ANALYZE), or the form
-- of one (VERBOSE).
CREATE FUNCTION combined_statements(query text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    line text;
    n int := 0;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
        n := n + (SELECT count(*) FROM regexp_matches(line, 'in one statement with the next [0-9]+', 'g'));
    END LOOP;
    RETURN n;
END $$;
CREATE FUNCTION combined_form(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
        IF line ~ 'Remote SQL for several shards of a node: ' THEN
            RETURN regexp_replace(regexp_replace(line, '^.*?: ', ''), '_410[0-9]{2}', '_N', 'g');
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TABLE queries (n int, q text);
INSERT INTO queries VALUES
  (1, $$SELECT count(*), sum(amount), avg("Grp x") FROM "Ev ""t"" ü"$$),
  (2, $$SELECT "Grp x", count(*), max("order"), stddev(amount) FROM "Ev ""t"" ü" WHERE k > 100 GROUP BY 1 ORDER BY 1$$),
  (3, $$SELECT e."Grp x", count(*) FROM "Ev ""t"" ü" e WHERE e."order" LIKE 'o1%' GROUP BY 1 HAVING count(*) > 10 ORDER BY 2 DESC, 1 LIMIT 3$$),
  (4, $$SELECT k, "order" FROM "Ev ""t"" ü" WHERE amount > 100 ORDER BY amount DESC, k LIMIT 5$$),
  (5, $$SELECT DISTINCT "order" FROM "Ev ""t"" ü" ORDER BY 1$$),
  (6, $$SELECT k FROM "Ev ""t"" ü" ORDER BY k LIMIT 3 OFFSET 2$$),
  (7, $$SELECT k, count(*) FROM "Ev ""t"" ü" GROUP BY k ORDER BY 2 DESC, 1 LIMIT 3$$),
  (8, $$SELECT count(*) FROM "Ev ""t"" ü" WHERE "order" = 'no such value'$$);

-- The same answers as the plain table, combined and not; how many statements read several
-- shards. Each query in its own transaction: once a transaction has read a worker over its
-- postgres_fdw connection (5 is planned the ordinary way), its later reads stay on it.
CREATE FUNCTION check_query(n int) RETURNS TABLE (n int, same_as_plain boolean, combined int) LANGUAGE sql AS $$
    SELECT n, answer(q) = answer(replace(q, '"Ev ""t"" ü"', 'plain')), combined_statements(q) FROM queries WHERE queries.n = $1
$$;
SELECT format('SELECT * FROM check_query(%s)', n) FROM queries ORDER BY n \gexec
SET fdwshard.combine_shard_reads = off;
SELECT format('SELECT * FROM check_query(%s)', n) FROM queries ORDER BY n \gexec
RESET fdwshard.combine_shard_reads;

-- What one of them sends for two shards: the columns it uses, the table's alias or its name.
SELECT n, combined_form(q) FROM queries WHERE n IN (1, 3, 4) ORDER BY n;
SELECT answer((SELECT q FROM queries WHERE n = 2));

-- One connection per shard (pool size above the shards per worker): nothing to combine.
SET fdwshard.pool_size = 16;
SELECT combined_statements(q) AS combined, combined_form(q) FROM queries WHERE n = 1;
RESET fdwshard.pool_size;

-- A REPEATABLE READ transaction reads over its own connections, one statement per shard.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT combined_statements(q) AS combined, answer(q) = answer(replace(q, '"Ev ""t"" ü"', 'plain')) AS same_as_plain
FROM queries WHERE n = 2;
COMMIT;

-- Not combined: a join of co-located shards, a system column (each shard's own).
SELECT combined_form($$SELECT count(*) FROM "Ev ""t"" ü" a JOIN "Ev ""t"" ü" b USING (k)$$) AS join_form,
       combined_form($$SELECT count(*) FROM "Ev ""t"" ü" WHERE tableoid <> 0$$) AS system_column_form;

-- An error in a combined statement (on a row of worker 1) is the worker's error; the session's
-- next reads are right.
SELECT min(g) AS worker_key FROM generate_series(1, 2000) g
JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('"Ev ""t"" ü"', g) WHERE s.nodeid = 2 \gset
SELECT count(*) FROM "Ev ""t"" ü" WHERE 1 / (k - :worker_key) > 0;
SELECT n, answer(q) = answer(replace(q, '"Ev ""t"" ü"', 'plain')) AS same_as_plain FROM queries WHERE n <= 2 ORDER BY n;

-- A prepared read, custom plan or generic: its parameter goes with the statement that reads
-- several shards (it appears once there). The same answers as the plain table.
PREPARE by_grp(int) AS SELECT count(*), sum(amount) FROM "Ev ""t"" ü" WHERE "Grp x" = $1;
SET plan_cache_mode = force_custom_plan;
SELECT combined_statements('EXECUTE by_grp(3)') AS combined;
EXECUTE by_grp(3);
SET plan_cache_mode = force_generic_plan;
SELECT combined_statements('EXECUTE by_grp(3)') AS combined;
EXECUTE by_grp(3);
RESET plan_cache_mode;
SELECT count(*), sum(amount) FROM plain WHERE "Grp x" = 3;

-- A role that is not superuser, with SELECT on two columns only: the coordinator checks its
-- columns as one server would, and its combined reads give the plain table's answers.
CREATE ROLE regress_comb_reader;
SELECT fdwshard.run_command_on_node(n, 'CREATE ROLE regress_comb_reader') FROM unnest(ARRAY[2, 3]) n;
GRANT USAGE ON SCHEMA "Comb ""Ü"" s" TO regress_comb_reader;
GRANT SELECT (k, "Grp x") ON "Ev ""t"" ü", plain TO regress_comb_reader;
CREATE USER MAPPING FOR regress_comb_reader SERVER fdwshard_node_2 OPTIONS (user 'postgres', password_required 'false');
CREATE USER MAPPING FOR regress_comb_reader SERVER fdwshard_node_3 OPTIONS (user 'postgres', password_required 'false');
SET ROLE regress_comb_reader;
SELECT answer($$SELECT "Grp x", count(*), sum(k) FROM "Ev ""t"" ü" GROUP BY 1 ORDER BY 1$$)
       = answer($$SELECT "Grp x", count(*), sum(k) FROM plain GROUP BY 1 ORDER BY 1$$) AS same_as_plain,
       combined_statements($$SELECT "Grp x", count(*), sum(k) FROM "Ev ""t"" ü" GROUP BY 1$$) AS combined;
SELECT count(*) FROM "Ev ""t"" ü" WHERE amount > 0;
SELECT count(*) FROM plain WHERE amount > 0;
RESET ROLE;
DROP USER MAPPING FOR regress_comb_reader SERVER fdwshard_node_2;
DROP USER MAPPING FOR regress_comb_reader SERVER fdwshard_node_3;

DROP TABLE "Ev ""t"" ü";
SELECT count(*) AS shards_left FROM fdwshard.shard WHERE shardid >= 41000 AND shardid < 41100;
DROP OWNED BY regress_comb_reader;
DROP ROLE regress_comb_reader;
SELECT fdwshard.run_command_on_node(n, 'DROP ROLE regress_comb_reader') FROM unnest(ARRAY[2, 3]) n;
RESET search_path;
DROP SCHEMA "Comb ""Ü"" s" CASCADE;
