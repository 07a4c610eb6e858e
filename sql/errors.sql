-- Refusals, each with a clear error and nothing left behind; atomicity when a worker fails.
CREATE SCHEMA errs;
SET search_path = errs;
CREATE TABLE t (k int PRIMARY KEY, v int);

-- Unknown table or column, system and generated columns, types without hashing.
SELECT create_distributed_table('no_such_table', 'k');
SELECT create_distributed_table('t', 'no_such_column');
SELECT create_distributed_table('t', 'ctid');
CREATE TABLE gen (a int, b int GENERATED ALWAYS AS (a * 2) STORED);
SELECT create_distributed_table('gen', 'b');
CREATE TABLE pt (p point);
SELECT create_distributed_table('pt', 'p');
SELECT create_distributed_table('t', NULL);

-- shard_count out of 1..64000.
SELECT create_distributed_table('t', 'k', shard_count := 0);
SELECT create_distributed_table('t', 'k', shard_count := 64001);

-- Keys that cannot be enforced per shard.
CREATE TABLE pk_without (id int PRIMARY KEY, tenant int);
SELECT create_distributed_table('pk_without', 'tenant');
CREATE TABLE uniq_without (id int, tenant int, UNIQUE (id));
SELECT create_distributed_table('uniq_without', 'tenant');
CREATE TABLE uidx_without (id int, tenant int);
CREATE UNIQUE INDEX uidx_without_idx ON uidx_without (id);
SELECT create_distributed_table('uidx_without', 'tenant');
CREATE TABLE excl (id int, tenant int, EXCLUDE USING btree (tenant WITH =));
SELECT create_distributed_table('excl', 'tenant');

-- Kinds of relation that cannot be distributed.
CREATE TEMP TABLE tmp (k int);
SELECT create_distributed_table('tmp', 'k');
CREATE UNLOGGED TABLE unlogged (k int);
SELECT create_distributed_table('unlogged', 'k');
CREATE TABLE parted (k int) PARTITION BY RANGE (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
SELECT create_distributed_table('parted', 'k');
SELECT create_distributed_table('parted_1', 'k');
CREATE TABLE parent (k int);
CREATE TABLE child () INHERITS (parent);
SELECT create_distributed_table('parent', 'k');
SELECT create_distributed_table('child', 'k');
CREATE FOREIGN TABLE ft (k int) SERVER fdwshard_node_2;
SELECT create_distributed_table('ft', 'k');
CREATE VIEW tv AS SELECT * FROM t;
SELECT create_distributed_table('tv', 'k');

-- Dependents that would not survive: foreign keys, triggers, policies (views are rebuilt: see ddl_views).
DROP VIEW tv;
CREATE TABLE referencing (k int REFERENCES t);
SELECT create_distributed_table('t', 'k');
SELECT create_distributed_table('referencing', 'k');
DROP TABLE referencing;
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER t_noop BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION noop();
SELECT create_distributed_table('t', 'k');
DROP TRIGGER t_noop ON t;
CREATE POLICY p ON t USING (true);
SELECT create_distributed_table('t', 'k');
DROP POLICY p ON t;

-- Only the owner may distribute a table.
CREATE ROLE regress_errs_user;
GRANT USAGE ON SCHEMA errs TO regress_errs_user;
SET ROLE regress_errs_user;
SELECT create_distributed_table('t', 'k');
RESET ROLE;
REVOKE ALL ON SCHEMA errs FROM regress_errs_user;
DROP ROLE regress_errs_user;

-- Already distributed.
SELECT create_distributed_table('t', 'k', shard_count := 2);
SELECT create_distributed_table('t', 'k', shard_count := 2);

-- No node that should have shards.
SELECT fdwshard_set_node_property(n, 'should_have_shards', false) FROM generate_series(1, 3) n;
CREATE TABLE nowhere (k int);
SELECT create_distributed_table('nowhere', 'k', colocate_with := 'none');
SELECT fdwshard_set_node_property(n, 'should_have_shards', true) FROM generate_series(1, 3) n;

-- A node that holds shards cannot be removed.
SELECT fdwshard_remove_node(2);

-- get_shard_id_for_distribution_column on a plain table or with NULL.
SELECT get_shard_id_for_distribution_column('nowhere', 1);
SELECT get_shard_id_for_distribution_column('t', NULL::int);

-- Atomicity: a failure on worker 2 after the coordinator and worker 1 got their shards leaves
-- nothing anywhere: no shard tables on any node, no catalog rows, the table and rows intact.
CREATE TABLE atomic (k int PRIMARY KEY, v text);
INSERT INTO atomic SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT fdwshard.run_command_on_node(3, 'CREATE SCHEMA IF NOT EXISTS errs');
SELECT fdwshard.run_command_on_node(3, 'CREATE TABLE errs.atomic_502 (k int)');
SET fdwshard.next_shard_id = 500;
SELECT create_distributed_table('atomic', 'k', shard_count := 6);
SELECT relkind, count(*) FROM pg_class WHERE relname = 'atomic' OR relname LIKE 'atomic\_5%' GROUP BY 1;
SELECT count(*) AS rows, sum(k) FROM atomic;
SELECT count(*) AS catalog_rows FROM fdwshard.distributed_table WHERE logicalrelid = 'atomic'::regclass;
SELECT count(*) AS shard_rows FROM fdwshard.shard WHERE shardid BETWEEN 500 AND 505;
SELECT fdwshard.run_command_on_node(2, $$SELECT count(*) FROM pg_tables WHERE tablename LIKE 'atomic%'$$) AS worker1_tables;
SELECT fdwshard.run_command_on_node(3, $$SELECT string_agg(tablename, ',') FROM pg_tables WHERE tablename LIKE 'atomic%'$$) AS worker2_tables;
-- Once the obstacle is gone it succeeds, in a transaction that a later error rolls back too.
SELECT fdwshard.run_command_on_node(3, 'DROP TABLE errs.atomic_502');
BEGIN;
SELECT create_distributed_table('atomic', 'k', shard_count := 6);
SELECT count(*) AS shards FROM fdwshard.shards WHERE table_name = 'atomic'::regclass;
SELECT 1 / 0;
ROLLBACK;
SELECT count(*) AS catalog_rows FROM fdwshard.distributed_table WHERE logicalrelid = 'atomic'::regclass;
SELECT fdwshard.run_command_on_node(2, $$SELECT count(*) FROM pg_tables WHERE tablename LIKE 'atomic%'$$) AS worker1_tables;
SELECT relkind FROM pg_class WHERE relname = 'atomic';

DROP SCHEMA errs CASCADE;
