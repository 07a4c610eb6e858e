-- VACUUM, ANALYZE and GRANT/REVOKE as an attacker would use them: options reach the workers only as
-- PostgreSQL's own keywords with validated values, the owner rule holds on every node, and roles
-- such as CURRENT_USER mean on the workers what they mean on the coordinator.
CREATE SCHEMA ddl_sec;
SET search_path = ddl_sec, public;
SET fdwshard.next_shard_id = 8800;
-- vt: a shard on each node; rt: shards on the workers only (no local VACUUM checks its options);
-- plain_t: an ordinary table, for PostgreSQL's own answers; victim: a table on each worker only.
CREATE TABLE vt (k int, v text);
SELECT create_distributed_table('vt', 'k', shard_count := 3);
SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
CREATE TABLE rt (k int, v text);
SELECT create_distributed_table('rt', 'k', shard_count := 2);
SELECT fdwshard_set_node_property(1, 'should_have_shards', true);
SELECT table_name, shard_name, nodeid FROM fdwshard.shards WHERE table_name IN ('vt', 'rt') ORDER BY shardid;
INSERT INTO vt SELECT g, 'v' FROM generate_series(1, 300) g;
INSERT INTO rt SELECT g, 'r' FROM generate_series(1, 300) g;
CREATE TABLE plain_t (k int);
CREATE TABLE mine (k int);
SELECT on_node(n, 'CREATE TABLE ddl_sec.victim (a int)') FROM unnest(ARRAY[2, 3]) n;
SELECT on_node(n, 'INSERT INTO ddl_sec.victim VALUES (1)') FROM unnest(ARRAY[2, 3]) n;
-- Statistics on the workers come only from the statements below, not from autovacuum.
SELECT on_node(n, format('ALTER TABLE %s SET (autovacuum_enabled = false)', rel))
FROM (VALUES (2, 'ddl_sec.vt_8801'), (3, 'ddl_sec.vt_8802'), (2, 'ddl_sec.rt_8803'), (3, 'ddl_sec.rt_8804')) s(n, rel);

-- rewritten(): the watched relations whose files changed (VACUUM FULL) since the last call.
CREATE TABLE watched (node int, rel text, filenode text);
INSERT INTO watched (node, rel) VALUES (2, 'ddl_sec.victim'), (3, 'ddl_sec.victim'), (1, 'ddl_sec.vt_8800'),
    (2, 'ddl_sec.vt_8801'), (3, 'ddl_sec.vt_8802'), (2, 'ddl_sec.rt_8803'), (3, 'ddl_sec.rt_8804'), (1, 'ddl_sec.mine');
CREATE FUNCTION rewritten() RETURNS text LANGUAGE sql AS $$
WITH now AS (SELECT node, rel, on_node(node, format('SELECT pg_relation_filenode(%L)', rel)) AS filenode FROM watched),
changed AS (UPDATE watched w SET filenode = now.filenode FROM now
    WHERE w.node = now.node AND w.rel = now.rel AND w.filenode IS DISTINCT FROM now.filenode
    RETURNING w.rel || ' on node ' || w.node AS what)
SELECT coalesce(string_agg(what, ', ' ORDER BY what), 'nothing') FROM changed $$;
SELECT rewritten() IS NOT NULL AS watching;

-- Option names are PostgreSQL's, with PostgreSQL's error, before anything runs anywhere: this one
-- used to reach the workers as "VACUUM (full) ddl_sec.victim --) ..." and rewrite victim.
VACUUM ("full) ddl_sec.victim --") plain_t;
VACUUM ("full) ddl_sec.victim --") rt;
\echo :LAST_ERROR_SQLSTATE
VACUUM (verbose, "full) ddl_sec.victim --") vt, rt;
ANALYZE ("verbose) ddl_sec.victim; VACUUM (full) ddl_sec.victim --") rt;
\echo :LAST_ERROR_SQLSTATE
ANALYZE (full) rt;
SELECT rewritten();
-- Values are checked as PostgreSQL checks them, with its errors.
VACUUM (verbose 'yes); VACUUM (full) ddl_sec.victim; --') rt;
\echo :LAST_ERROR_SQLSTATE
VACUUM (index_cleanup 'sometimes') rt;
VACUUM (truncate 2) rt;
VACUUM (parallel) rt;
\echo :LAST_ERROR_SQLSTATE
VACUUM (parallel -1) rt;
VACUUM (parallel '1) ddl_sec.victim --') rt;
VACUUM (parallel 1.5) rt;
VACUUM (full, parallel 2) rt;
\echo :LAST_ERROR_SQLSTATE
VACUUM (full, disable_page_skipping) rt;
\echo :LAST_ERROR_SQLSTATE
VACUUM (full, process_toast false) rt;
VACUUM rt (k);
\echo :LAST_ERROR_SQLSTATE
BEGIN;
VACUUM (full) rt;
ROLLBACK;
SELECT rewritten();
-- Only the owner of a table (or of the database, or a superuser) vacuums or analyzes it, on every
-- node: another role gets PostgreSQL's warning, and none of the shards is touched. The workers
-- would run the command as the user of the user mapping, here a superuser.
CREATE ROLE regress_sec_owner;
CREATE ROLE regress_sec_plain;
SELECT on_node(n, 'CREATE ROLE regress_sec_owner') FROM unnest(ARRAY[2, 3]) n;
SELECT on_node(n, 'CREATE ROLE regress_sec_plain') FROM unnest(ARRAY[2, 3]) n;
CREATE USER MAPPING FOR regress_sec_owner SERVER fdwshard_node_2 OPTIONS (user 'postgres', password_required 'false');
CREATE USER MAPPING FOR regress_sec_owner SERVER fdwshard_node_3 OPTIONS (user 'postgres', password_required 'false');
CREATE USER MAPPING FOR regress_sec_plain SERVER fdwshard_node_2 OPTIONS (user 'postgres', password_required 'false');
CREATE USER MAPPING FOR regress_sec_plain SERVER fdwshard_node_3 OPTIONS (user 'postgres', password_required 'false');
GRANT USAGE ON SCHEMA ddl_sec TO regress_sec_owner, regress_sec_plain;
ALTER TABLE vt OWNER TO regress_sec_owner;
ALTER TABLE mine OWNER TO regress_sec_plain;
SET ROLE regress_sec_plain;
VACUUM (FULL) vt;
VACUUM (FULL) rt, mine;
ANALYZE vt;
VACUUM (ANALYZE) rt;
VACUUM (FULL, ANALYZE) vt (v);
RESET ROLE;
SELECT rewritten();
SELECT rel, on_node(n, format($$SELECT reltuples || ' rows, ' || (SELECT count(*) FROM pg_stats
    WHERE schemaname = 'ddl_sec' AND tablename = %L) || ' column statistics' FROM pg_class WHERE oid = %L::regclass$$,
    rel, 'ddl_sec.' || rel)) AS worker_statistics
FROM (VALUES (2, 'vt_8801'), (3, 'rt_8804')) s(n, rel);
-- The owner may, on every node.
SET ROLE regress_sec_owner;
VACUUM (FULL) vt;
ANALYZE vt;
RESET ROLE;
SELECT rewritten();
SELECT on_node(2, $$SELECT reltuples FROM pg_class WHERE oid = 'ddl_sec.vt_8801'::regclass$$) AS worker_reltuples;
SELECT on_node(3, $$SELECT reltuples FROM pg_class WHERE oid = 'ddl_sec.rt_8804'::regclass$$) AS rt_reltuples;

-- Shard keys do not go through PostgreSQL's own ALTER TABLE, CREATE/DROP INDEX: fdwshard checks
-- ownership as they would, before anything reaches a worker (rt has no local shard to check it).
ALTER TABLE rt ADD CONSTRAINT rt_key UNIQUE (k);
CREATE UNIQUE INDEX rt_idx ON rt (k, v);
SET ROLE regress_sec_plain;
ALTER TABLE rt ADD CONSTRAINT rt_key2 UNIQUE (k);
\echo :LAST_ERROR_SQLSTATE
CREATE UNIQUE INDEX rt_idx2 ON rt (k);
ALTER TABLE rt RENAME CONSTRAINT rt_key TO rt_mine;
ALTER TABLE rt VALIDATE CONSTRAINT rt_key;
ALTER TABLE rt DROP CONSTRAINT rt_key;
DROP INDEX rt_idx;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT shard_indexes(2, 'ddl_sec.rt_8803');

-- Every option, in any spelling PostgreSQL takes, reaches the workers with its value.
VACUUM (FULL false, VERBOSE off, SKIP_LOCKED, FREEZE 1, ANALYZE 'on', INDEX_CLEANUP 'AUTO', TRUNCATE false,
        PROCESS_TOAST, DISABLE_PAGE_SKIPPING 0, PARALLEL 0) vt, rt;
SELECT rewritten();
VACUUM (FULL 1, INDEX_CLEANUP off, PARALLEL 0) rt;
SELECT rewritten();
VACUUM (FULL, INDEX_CLEANUP) vt;
SELECT rewritten();

-- GRANT/REVOKE: CURRENT_USER, CURRENT_ROLE and SESSION_USER are resolved on the coordinator; on a
-- worker they would be the user of the user mapping (postgres here).
SET ROLE regress_sec_owner;
REVOKE DELETE, TRUNCATE ON vt FROM CURRENT_USER;
GRANT SELECT ON vt TO CURRENT_ROLE, SESSION_USER;
-- GRANTED BY names the current user, where it changes nothing; a worker would refuse it.
GRANT SELECT ON vt TO regress_sec_plain GRANTED BY regress_sec_owner;
GRANT UPDATE (v) ON vt TO regress_sec_plain GRANTED BY CURRENT_USER;
RESET ROLE;
SELECT on_node(n, format($$SELECT relacl::text FROM pg_class WHERE oid = %L::regclass$$, 'ddl_sec.' || rel)) AS relacl
FROM (VALUES (1, 'vt'), (1, 'vt_8800'), (2, 'vt_8801'), (3, 'vt_8802')) s(n, rel);
SELECT on_node(3, $$SELECT attacl::text FROM pg_attribute WHERE attrelid = 'ddl_sec.vt_8802'::regclass AND attname = 'v'$$);
-- Privilege names are PostgreSQL's.
GRANT "select ON ddl_sec.victim TO PUBLIC; --" ON vt TO regress_sec_plain;
GRANT USAGE ON vt TO regress_sec_plain;
-- Only the owner changes privileges of a distributed table: a worker would check the grant
-- options of the mapping's user, not those of the role. Before, regress_sec_plain's GRANT only
-- warned here and granted on the workers.
SET ROLE regress_sec_plain;
GRANT SELECT ON vt TO PUBLIC;
REVOKE SELECT ON vt FROM regress_sec_owner;
RESET ROLE;
SELECT on_node(n, format($$SELECT relacl::text FROM pg_class WHERE oid = %L::regclass$$, 'ddl_sec.' || rel)) AS relacl
FROM (VALUES (1, 'vt'), (2, 'vt_8801')) s(n, rel);
-- GRANT ... ON ALL TABLES IN SCHEMA reaches the shards on the workers too; only for the owner.
GRANT INSERT ON ALL TABLES IN SCHEMA ddl_sec TO regress_sec_plain;
SELECT on_node(n, format($$SELECT relacl::text FROM pg_class WHERE oid = %L::regclass$$, 'ddl_sec.' || rel)) AS relacl
FROM (VALUES (1, 'vt'), (2, 'vt_8801'), (3, 'vt_8802'), (1, 'rt')) s(n, rel);
SELECT shard_name, nodeid, on_node(nodeid, format($$SELECT relacl::text LIKE '%%regress_sec_plain=a/%%' FROM pg_class
                                                      WHERE oid = %L::regclass$$, 'ddl_sec.' || shard_name)) AS granted
FROM fdwshard.shards WHERE table_name = 'rt'::regclass ORDER BY shardid;
REVOKE INSERT ON ALL TABLES IN SCHEMA ddl_sec FROM regress_sec_plain;
SELECT on_node(2, $$SELECT relacl::text FROM pg_class WHERE oid = 'ddl_sec.vt_8801'::regclass$$) AS relacl;
SET ROLE regress_sec_plain;
GRANT INSERT ON ALL TABLES IN SCHEMA ddl_sec TO regress_sec_plain;
RESET ROLE;

DROP SCHEMA ddl_sec CASCADE;
DROP USER MAPPING FOR regress_sec_owner SERVER fdwshard_node_2;
DROP USER MAPPING FOR regress_sec_owner SERVER fdwshard_node_3;
DROP USER MAPPING FOR regress_sec_plain SERVER fdwshard_node_2;
DROP USER MAPPING FOR regress_sec_plain SERVER fdwshard_node_3;
DROP ROLE regress_sec_owner, regress_sec_plain;
SELECT on_node(n, 'DROP SCHEMA ddl_sec CASCADE') FROM unnest(ARRAY[2, 3]) n;
SELECT on_node(n, 'DROP ROLE regress_sec_owner, regress_sec_plain') FROM unnest(ARRAY[2, 3]) n;
