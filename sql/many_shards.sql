-- Many shards: create_distributed_table and DROP TABLE send a worker all of its shards' DDL in one
-- round trip and leave nothing behind anywhere; a multi-shard read sends a worker's pool
-- connection its shards' statements together (a pipeline); each shard's statement names its own shard.
CREATE SCHEMA "Many ""Sh""";
SET search_path = "Many ""Sh""";
SET fdwshard.next_shard_id = 40000;

CREATE TABLE wide (k int PRIMARY KEY, v text);
CREATE UNIQUE INDEX wide_k_v ON wide (k, v);
CREATE INDEX wide_v ON wide (v);
SELECT create_distributed_table('wide', 'k', shard_count := 300, colocate_with := 'none');
SELECT p.nodeid, count(*) AS shards, min(s.shardid), max(s.shardid)
FROM fdwshard.shard s JOIN fdwshard.placement p USING (shardid)
WHERE s.logicalrelid = 'wide'::regclass GROUP BY 1 ORDER BY 1;
-- Each node holds its 100 shard tables, each with its primary key, unique index and index.
SELECT * FROM fdwshard.run_command_on_all_nodes($$
    SELECT count(*) || ' shards, ' || sum((SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid)) || ' indexes'
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'Many "Sh"' AND c.relkind IN ('r', 'f') AND c.relname ~ '^wide_[0-9]+$'$$);
INSERT INTO wide SELECT g, 'v' || g FROM generate_series(1, 3000) g;
SELECT count(*), sum(k), count(DISTINCT tableoid) AS shards_with_rows FROM wide;

-- Each foreign shard's statement reads its own shard: made from one statement by replacing the
-- shards' names, never inside a string literal (here the name of another shard).
CREATE FUNCTION remote_sql(query text) RETURNS TABLE (shard text, sql text) LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
        IF line ~ '^\s*Remote SQL on ' THEN
            shard := substring(line FROM 'Remote SQL on (.*?): ');
            sql := substring(line FROM 'Remote SQL on .*?: (.*)$');
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;
SELECT count(*) AS foreign_shards, count(DISTINCT shard) AS distinct_shards,
       count(*) FILTER (WHERE sql LIKE '% FROM ' || shard || ' %') AS read_their_own,
       count(*) FILTER (WHERE sql LIKE '%''wide_40001''%') AS literal_kept
FROM remote_sql($$SELECT count(*) FROM wide WHERE v <> 'wide_40001'$$);
SELECT sql FROM remote_sql($$SELECT count(*) FROM wide WHERE v <> 'wide_40001'$$) ORDER BY shard LIMIT 2;
SELECT count(*) FROM wide WHERE v <> 'v7';
-- A column named as a shard: the statements differ by more than the shards' names, so each
-- shard's is deparsed (the column stays what it is).
SET fdwshard.next_shard_id = 40400;
CREATE TABLE odd (k int, odd_40401 int);
SELECT create_distributed_table('odd', 'k', shard_count := 6, colocate_with := 'none');
INSERT INTO odd SELECT g, g FROM generate_series(1, 60) g;
SELECT count(*) AS foreign_shards, count(*) FILTER (WHERE sql LIKE '% FROM ' || shard || ' %') AS read_their_own,
       count(*) FILTER (WHERE sql LIKE '%(odd_40401 > 50)%') AS column_kept
FROM remote_sql($$SELECT odd_40401 FROM odd WHERE odd_40401 > 50 ORDER BY 1 LIMIT 3$$);
SELECT odd_40401 FROM odd WHERE odd_40401 > 50 ORDER BY 1 LIMIT 3;

-- With one pool connection per worker, a read of a worker's 4 shards runs on that connection
-- (one pipeline of 4 statements).
CREATE TABLE few (k int, v text);
SELECT create_distributed_table('few', 'k', shard_count := 12, colocate_with := 'none');
INSERT INTO few SELECT g, 'v' || g FROM generate_series(1, 120) g;
SET fdwshard.pool_size = 1;
SELECT count(*), sum(k) FROM few;
RESET fdwshard.pool_size;
SELECT nodeid, result AS connections_that_read FROM fdwshard.run_command_on_all_nodes($$
    SELECT count(*) FROM pg_stat_activity
    WHERE query LIKE '%FROM "Many ""Sh""".few_%' AND pid <> pg_backend_pid()$$) WHERE nodeid > 1;

-- A worker's batch of shard statements (one pipeline, pool_size = 1: 8 statements each) returns
-- what a plain table returns: aggregates, GROUP BY, ORDER BY with LIMIT per shard, over empty
-- shards (10 rows over 24 shards: 14 at least are empty) and NULLs, each read twice (the second
-- time the statements are prepared on the worker).
SET fdwshard.next_shard_id = 40500;
CREATE TABLE vals (k int, g int, v numeric(10, 2));
SELECT create_distributed_table('vals', 'k', shard_count := 24, colocate_with := 'none');
INSERT INTO vals SELECT g, NULLIF(g % 4, 3), CASE WHEN g % 5 = 0 THEN NULL ELSE g * 1.5 END
FROM generate_series(1, 10) g;
CREATE TABLE plain_vals AS SELECT * FROM vals;
CREATE FUNCTION rows_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    result text := '';
BEGIN
    FOR r IN EXECUTE query LOOP
        result := result || r::text || ' ';
    END LOOP;
    RETURN result;
END $$;
CREATE TABLE queries (n int, q text);
INSERT INTO queries VALUES
    (1, 'SELECT count(*), count(v), sum(v), avg(v), min(g), max(g), sum(k) FROM vals'),
    (2, 'SELECT g, count(*), sum(v), avg(v), max(v) FROM vals GROUP BY g ORDER BY g NULLS FIRST'),
    (3, 'SELECT k, v FROM vals ORDER BY v DESC NULLS LAST, k LIMIT 3'),
    (4, 'SELECT k, g, v FROM vals ORDER BY v NULLS FIRST, k LIMIT 4'),
    (5, 'SELECT count(*) FROM vals WHERE k > 100');
SET fdwshard.pool_size = 1;
SELECT rows_of(q) FROM queries WHERE n = 2;
SELECT n, rows_of(q) = rows_of(replace(q, 'FROM vals', 'FROM plain_vals')) AS first_read,
       rows_of(q) = rows_of(replace(q, 'FROM vals', 'FROM plain_vals')) AS next_read
FROM queries ORDER BY n;
-- The last read reached each worker on one connection.
SELECT nodeid, result AS connections_that_read FROM fdwshard.run_command_on_all_nodes($$
    SELECT count(*) FROM pg_stat_activity
    WHERE query LIKE '%FROM "Many ""Sh""".vals_%' AND pid <> pg_backend_pid()$$) WHERE nodeid > 1;
RESET fdwshard.pool_size;

-- DROP TABLE drops a large table's shards a chunk at a time, after DROP TABLE's own checks: a
-- role that does not own it is refused; a dependent view refuses it after the first chunks are
-- gone, and the rollback brings every shard back, here and on the workers.
CREATE ROLE many_shards_other;
GRANT USAGE ON SCHEMA "Many ""Sh""" TO many_shards_other;
SET ROLE many_shards_other;
DROP TABLE wide;
RESET ROLE;
REVOKE USAGE ON SCHEMA "Many ""Sh""" FROM many_shards_other;
DROP ROLE many_shards_other;
CREATE VIEW wide_keys AS SELECT k FROM wide;
DROP TABLE wide;
DROP VIEW wide_keys;
SELECT count(*), sum(k), count(DISTINCT tableoid) AS shards_with_rows FROM wide;
SELECT * FROM fdwshard.run_command_on_all_nodes($$
    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'Many "Sh"' AND c.relkind IN ('r', 'f') AND c.relname ~ '^wide_[0-9]+$'$$);

-- DROP TABLE: no shard table left on any node, no catalog row.
DROP TABLE wide, few, odd, vals, plain_vals, queries;
SELECT * FROM fdwshard.run_command_on_all_nodes($$
    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'Many "Sh"'$$);
SELECT count(*) AS catalog_rows FROM fdwshard.shard WHERE shardid BETWEEN 40000 AND 40999;

RESET search_path;
SELECT * FROM fdwshard.run_command_on_all_nodes('DROP SCHEMA "Many ""Sh""" CASCADE');
