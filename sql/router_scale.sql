-- The router's cost does not grow with the shard count: a new session's point query on a table of
-- 256 shards reads the catalog rows of the one shard it uses (no other shard's relcache or
-- catalog cache entry), in the simple and the extended protocol, and locks only that shard.
CREATE SCHEMA router_scale;
SET search_path = router_scale, public;
SET fdwshard.next_shard_id = 71000;
CREATE TABLE warm (k int PRIMARY KEY, v text);
SELECT create_distributed_table('warm', 'k', shard_count := 4);
CREATE TABLE wide (k int PRIMARY KEY, a int, b text, c date, d numeric, e bool, v text);
SELECT create_distributed_table('wide', 'k', shard_count := 256);
INSERT INTO wide (k, v) SELECT g, 'row ' || g FROM generate_series(1, 1000) g;

-- A new session; its first statements on a distributed table load what every table shares.
\c
SET search_path = router_scale, public;
SELECT v FROM warm WHERE k = 1;
SELECT used_bytes AS before FROM pg_backend_memory_contexts WHERE name = 'CacheMemoryContext'
\gset
SELECT v FROM wide WHERE k = 7;
-- Every shard's catalog rows would take over 1 MB here.
SELECT used_bytes - :before < 120000 AS one_shard_cached
FROM pg_backend_memory_contexts WHERE name = 'CacheMemoryContext';

-- A generic plan routed at execution: the shard it runs on, no other.
PREPARE get(int) AS SELECT v FROM wide WHERE k = $1;
SET plan_cache_mode = force_generic_plan;
EXECUTE get(8);
SELECT used_bytes AS before FROM pg_backend_memory_contexts WHERE name = 'CacheMemoryContext'
\gset
EXECUTE get(9);
EXECUTE get(10);
SELECT used_bytes - :before < 120000 AS two_shards_cached
FROM pg_backend_memory_contexts WHERE name = 'CacheMemoryContext';
RESET plan_cache_mode;

-- Inside a transaction the point query holds a lock on its shard only (and the table).
BEGIN;
SELECT v FROM wide WHERE k = 11;
SELECT count(DISTINCT l.relation) AS shards_locked
FROM pg_locks l JOIN pg_inherits i ON i.inhrelid = l.relation
WHERE i.inhparent = 'wide'::regclass AND l.pid = pg_backend_pid();
SELECT count(*) AS table_locked
FROM pg_locks WHERE relation = 'wide'::regclass AND pid = pg_backend_pid();
UPDATE wide SET v = 'eleven' WHERE k = 11; -- the same shard, a stronger lock
SELECT count(DISTINCT l.relation) AS shards_locked
FROM pg_locks l JOIN pg_inherits i ON i.inhrelid = l.relation
WHERE i.inhparent = 'wide'::regclass AND l.pid = pg_backend_pid();
COMMIT;
SELECT v FROM wide WHERE k = 11;

DEALLOCATE get;
DROP SCHEMA router_scale CASCADE;
