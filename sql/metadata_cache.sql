-- The router reads a backend-local metadata cache. Changes made by another session (here through
-- dblink, a second connection) reach it through invalidation: the next statement sees them.
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE SCHEMA cache;
SET search_path = cache, public;
SELECT format('host=127.0.0.1 port=%s dbname=%s user=postgres', current_setting('port'), current_database()) AS other
\gset

SET fdwshard.next_shard_id = 500;
CREATE TABLE t (k int NOT NULL, v text);
INSERT INTO t SELECT g, 'first ' || g FROM generate_series(1, 20) g;
SELECT create_distributed_table('t', 'k', shard_count := 4);
SELECT v FROM t WHERE k = 3;
EXPLAIN (COSTS OFF) SELECT v FROM t WHERE k = 3;
PREPARE get(int) AS SELECT v FROM t WHERE k = $1;
SET plan_cache_mode = force_generic_plan;
EXECUTE get(3);

-- Another session replaces the table: new shards, new placement, new rows.
SELECT dblink_exec(:'other', $$
    BEGIN;
    DROP TABLE cache.t;
    CREATE TABLE cache.t (k int NOT NULL, v text);
    INSERT INTO cache.t SELECT g, 'second ' || g FROM generate_series(1, 20) g;
    SET fdwshard.next_shard_id = 600;
    SELECT create_distributed_table('cache.t', 'k', shard_count := 2);
    COMMIT;
$$);
SELECT v FROM t WHERE k = 3;
EXPLAIN (COSTS OFF) SELECT v FROM t WHERE k = 3;
EXECUTE get(3);
EXPLAIN (COSTS OFF) EXECUTE get(3);

-- A plain table distributed by another session is routed at once.
CREATE TABLE u (k int NOT NULL, v text);
INSERT INTO u VALUES (1, 'one'), (2, 'two');
SELECT v FROM u WHERE k = 2;
SELECT * FROM dblink(:'other', $$SET fdwshard.next_shard_id = 700;
                                 SELECT create_distributed_table('cache.u', 'k', shard_count := 2)::text$$) AS r(done text);
SET client_min_messages = debug1;
SELECT v FROM u WHERE k = 2;
RESET client_min_messages;

-- Dropped by another session: the statement fails as for any dropped table.
SELECT dblink_exec(:'other', 'DROP TABLE cache.u');
SELECT v FROM u WHERE k = 2;
RESET plan_cache_mode;

-- A multi-shard read names each foreign shard by a name kept in the cache. Renamed by another
-- session (every shard follows its table), the next read names the renamed shards, whose rows
-- it reads, in one statement per node or one per shard (the statements of the third and later
-- foreign shards are the first's with the cached names spliced in).
SET fdwshard.next_shard_id = 800;
CREATE TABLE r (k int NOT NULL, v int);
SELECT create_distributed_table('r', 'k', shard_count := 8);
INSERT INTO r SELECT g, g FROM generate_series(1, 100) g;
SELECT count(*), sum(v) FROM r;
SELECT dblink_exec(:'other', 'ALTER TABLE cache.r RENAME TO "R ""renamed"""');
SELECT count(*), sum(v) FROM "R ""renamed""";
SET fdwshard.combine_shard_reads = off;
SELECT count(*), sum(v) FROM "R ""renamed""";
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM "R ""renamed""";
RESET fdwshard.combine_shard_reads;
DROP SCHEMA cache CASCADE;
