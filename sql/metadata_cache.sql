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
DROP SCHEMA cache CASCADE;
