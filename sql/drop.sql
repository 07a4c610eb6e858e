-- DROP TABLE removes the shards on every node and the catalog rows.
CREATE SCHEMA dropping;
SET search_path = dropping;
SET fdwshard.next_shard_id = 700;
CREATE TABLE d1 (k int PRIMARY KEY);
CREATE TABLE d2 (k int);
SELECT create_distributed_table('d1', 'k', shard_count := 3);
SELECT create_distributed_table('d2', 'k', shard_count := 3);
INSERT INTO d1 SELECT generate_series(1, 30);
SELECT fdwshard.run_command_on_node(2, $$SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'dropping'$$);

-- A single shard cannot be dropped on its own.
DROP TABLE d1_700;
DROP TABLE d1_701;
DROP FOREIGN TABLE d1_701;

-- A dropped table's shards and catalog rows go with it; rolled back, they all come back.
BEGIN;
DROP TABLE d1;
SELECT count(*) FROM fdwshard.shards WHERE shard_name LIKE 'd1%';
SELECT fdwshard.run_command_on_node(2, $$SELECT count(*) FROM pg_tables WHERE tablename LIKE 'd1%'$$);
ROLLBACK;
SELECT count(*) AS rows FROM d1;
DROP TABLE d1;
SELECT count(*) FROM fdwshard.shards WHERE shard_name LIKE 'd1%';
SELECT count(*) FROM fdwshard.distributed_table WHERE logicalrelid::text LIKE '%d1%';
SELECT fdwshard.run_command_on_node(2, $$SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'dropping'$$);
SELECT fdwshard.run_command_on_node(3, $$SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'dropping'$$);

-- DROP SCHEMA ... CASCADE reaches the workers too.
DROP SCHEMA dropping CASCADE;
SELECT count(*) AS shards_left FROM fdwshard.shard;
SELECT fdwshard.run_command_on_node(3, $$SELECT count(*) FROM pg_tables WHERE schemaname = 'dropping'$$);

-- With no shards left, workers can be removed.
SELECT nodeid, shard_count FROM fdwshard.nodes;
SELECT fdwshard_remove_node(3);
SELECT nodeid FROM fdwshard.nodes;
