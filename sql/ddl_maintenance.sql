-- TRUNCATE, DROP TABLE, VACUUM, ANALYZE and GRANT/REVOKE on distributed tables.
CREATE SCHEMA ddl_maint;
SET search_path = ddl_maint, public;
SET fdwshard.next_shard_id = 4200;
CREATE TABLE a (k int, id bigserial, v text);
CREATE TABLE b (k int, v text);
SELECT create_distributed_table('a', 'k', shard_count := 3);
SELECT create_distributed_table('b', 'k', shard_count := 3);
INSERT INTO a (k, v) SELECT g, 'a' FROM generate_series(1, 300) g;
INSERT INTO b SELECT g, 'b' FROM generate_series(1, 30) g;

-- TRUNCATE of several tables, every shard, RESTART IDENTITY resets the sequence.
BEGIN;
TRUNCATE a, b;
SELECT (SELECT count(*) FROM a) AS a, (SELECT count(*) FROM b) AS b;
SELECT on_node(2, 'SELECT count(*) FROM ddl_maint.a_4201') AS worker_a;
ROLLBACK;
SELECT count(*) FROM a;
TRUNCATE b;
SELECT count(*) FROM b;
TRUNCATE a RESTART IDENTITY;
INSERT INTO a (k, v) SELECT g, 'a' FROM generate_series(1, 300) g;
SELECT max(id) FROM a;

-- ANALYZE: statistics on the coordinator (foreign partitions sampled) and on the workers.
SELECT relname, reltuples FROM pg_class WHERE relname IN ('a', 'a_4200', 'a_4201', 'a_4202') ORDER BY 1;
ANALYZE a;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('a', 'a_4200', 'a_4201', 'a_4202') ORDER BY 1;
SELECT on_node(3, $$SELECT reltuples FROM pg_class WHERE oid = 'ddl_maint.a_4202'::regclass$$) AS worker_reltuples;
SELECT on_node(3, $$SELECT count(*) FROM pg_stats WHERE schemaname = 'ddl_maint' AND tablename = 'a_4202'$$) AS worker_stats;
EXPLAIN (COSTS ON) SELECT * FROM a;
ANALYZE a (v);

-- VACUUM: the local shard here, remote shards through their own connection, no warnings.
VACUUM a;
VACUUM (ANALYZE, VERBOSE false) a, b;
VACUUM FULL b;
BEGIN;
VACUUM a;
ROLLBACK;

-- GRANT/REVOKE: the table, the shard relations on the coordinator and the shard tables on the workers.
CREATE ROLE regress_ddl_reader;
SELECT fdwshard.run_command_on_node(2, 'CREATE ROLE regress_ddl_reader');
SELECT fdwshard.run_command_on_node(3, 'CREATE ROLE regress_ddl_reader');
GRANT SELECT, UPDATE (v) ON a TO regress_ddl_reader WITH GRANT OPTION;
SELECT relname, relacl FROM pg_class WHERE relname LIKE 'a%' AND relkind IN ('p', 'r', 'f') ORDER BY 1;
SELECT on_node(2, $$SELECT relacl::text FROM pg_class WHERE oid = 'ddl_maint.a_4201'::regclass$$);
SELECT on_node(3, $$SELECT attacl::text FROM pg_attribute WHERE attrelid = 'ddl_maint.a_4202'::regclass AND attname = 'v'$$);
REVOKE GRANT OPTION FOR SELECT ON a FROM regress_ddl_reader;
REVOKE ALL ON a FROM regress_ddl_reader;
SELECT on_node(2, $$SELECT relacl::text FROM pg_class WHERE oid = 'ddl_maint.a_4201'::regclass$$);
SELECT on_node(3, $$SELECT attacl::text FROM pg_attribute WHERE attrelid = 'ddl_maint.a_4202'::regclass AND attname = 'v'$$);
-- A role missing on a worker: nothing granted anywhere.
CREATE ROLE regress_ddl_nowhere;
GRANT SELECT ON a TO regress_ddl_nowhere;
SELECT count(*) FROM pg_class WHERE relname LIKE 'a%' AND relacl::text LIKE '%nowhere%';
DROP ROLE regress_ddl_nowhere;

-- DROP TABLE of several tables with CASCADE: a view goes, every shard on every node goes.
CREATE VIEW ab AS SELECT a.k FROM a JOIN b USING (k);
DROP TABLE a, b;
DROP TABLE a, b CASCADE;
SELECT count(*) FROM fdwshard.shards WHERE shard_name ~ '^[ab]_42';
SELECT on_node(2, $$SELECT count(*) FROM pg_tables WHERE schemaname = 'ddl_maint'$$) AS worker1;
SELECT on_node(3, $$SELECT count(*) FROM pg_tables WHERE schemaname = 'ddl_maint'$$) AS worker2;

DROP SCHEMA ddl_maint CASCADE;
DROP ROLE regress_ddl_reader;
SELECT fdwshard.run_command_on_node(2, 'DROP ROLE regress_ddl_reader');
SELECT fdwshard.run_command_on_node(3, 'DROP ROLE regress_ddl_reader');
