-- A table's owner who is not a superuser distributes, changes, undistributes and drops it; other
-- roles get PostgreSQL's "must be owner"; node management stays with superusers.
CREATE SCHEMA owner_perms;
SET search_path = owner_perms;
SET fdwshard.next_shard_id = 4800;
CREATE ROLE regress_perm_owner;
CREATE ROLE regress_perm_other;
GRANT USAGE, CREATE ON SCHEMA owner_perms TO regress_perm_owner;
GRANT USAGE ON SCHEMA owner_perms TO regress_perm_other;
-- The owner's user mappings log in as a role of the same name on the workers, with CREATE on the schema.
SELECT fdwshard.run_command_on_node(n, 'CREATE ROLE regress_perm_owner LOGIN') FROM unnest(ARRAY[2, 3]) n;
SELECT fdwshard.run_command_on_node(n, 'CREATE SCHEMA owner_perms') FROM unnest(ARRAY[2, 3]) n;
SELECT fdwshard.run_command_on_node(n, 'GRANT USAGE, CREATE ON SCHEMA owner_perms TO regress_perm_owner')
FROM unnest(ARRAY[2, 3]) n;

SET ROLE regress_perm_owner;
CREATE TABLE t (k int, v text);
INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;
-- Foreign shards are foreign tables of the workers' servers, reached through the owner's user mappings.
SELECT create_distributed_table('t', 'k', shard_count := 4);
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER fdwshard_node_2, fdwshard_node_3 TO regress_perm_owner;
SET ROLE regress_perm_owner;
SELECT create_distributed_table('t', 'k', shard_count := 4);
RESET ROLE;
-- password_required 'false' needs a superuser (the test cluster trusts local connections).
CREATE USER MAPPING FOR regress_perm_owner SERVER fdwshard_node_2 OPTIONS (user 'regress_perm_owner', password_required 'false');
CREATE USER MAPPING FOR regress_perm_owner SERVER fdwshard_node_3 OPTIONS (user 'regress_perm_owner', password_required 'false');

-- Another role may not distribute it (ownership is checked first, before anything else).
SET ROLE regress_perm_other;
SELECT create_distributed_table('t', 'k', shard_count := 4);
RESET ROLE;

-- The owner distributes it: catalog rows written on their behalf, local and remote shards, every row.
SET ROLE regress_perm_owner;
SELECT create_distributed_table('t', 'k', shard_count := 4);
SELECT count(*), sum(k), count(DISTINCT v) FROM t;
SELECT * FROM t WHERE k = 42;
SELECT table_name, distribution_column, shard_count FROM fdwshard.tables WHERE table_name = 't'::regclass;
SELECT shard_name, nodeid FROM fdwshard.shards WHERE table_name = 't'::regclass;
SELECT relname, relkind, relowner::regrole FROM pg_class
WHERE relnamespace = 'owner_perms'::regnamespace AND relkind IN ('r', 'p', 'f') ORDER BY relname;
RESET ROLE;
SELECT fdwshard.run_command_on_node(2, $$SELECT string_agg(tablename || ' ' || tableowner, ', ' ORDER BY tablename)
                                          FROM pg_tables WHERE schemaname = 'owner_perms'$$) AS worker1;
SELECT fdwshard.run_command_on_node(3, $$SELECT string_agg(tablename || ' ' || tableowner, ', ' ORDER BY tablename)
                                          FROM pg_tables WHERE schemaname = 'owner_perms'$$) AS worker2;

-- The owner changes it: columns, indexes, a primary key with the distribution column, renames.
SET ROLE regress_perm_owner;
ALTER TABLE t ADD COLUMN w int DEFAULT 7;
CREATE INDEX t_v_idx ON t (v);
ALTER TABLE t ADD PRIMARY KEY (k);
CREATE UNIQUE INDEX t_k_w_idx ON t (k, w);
ALTER TABLE t RENAME COLUMN k TO key;
SELECT distribution_column FROM fdwshard.tables WHERE table_name = 't'::regclass;
SELECT name, kind FROM fdwshard.shard_key WHERE logicalrelid = 't'::regclass ORDER BY name;
INSERT INTO t (key, v) VALUES (1, 'duplicate');
SELECT count(*), sum(w) FROM t;
RESET ROLE;
SELECT fdwshard.run_command_on_node(2, $$SELECT string_agg(indexname, ', ' ORDER BY indexname)
                                          FROM pg_indexes WHERE tablename = 't_4801'$$) AS worker1_indexes;

-- Another role may change nothing: each refusal is PostgreSQL's, before any shard is touched.
SET ROLE regress_perm_other;
ALTER TABLE t ADD COLUMN z int;
ALTER TABLE t ADD UNIQUE (key, w);
ALTER TABLE t DROP CONSTRAINT t_pkey;
ALTER TABLE t RENAME COLUMN v TO vv;
CREATE INDEX t_w_idx ON t (w);
CREATE UNIQUE INDEX t_key_v_idx ON t (key, v);
DROP INDEX t_k_w_idx;
DROP INDEX t_v_idx;
SELECT undistribute_table('t');
SELECT create_distributed_table('t', 'key');
DROP TABLE t;
-- Node management: EXECUTE is revoked, and granting it does not let a non-superuser in.
SELECT fdwshard_set_node_property(2, 'should_have_shards', false);
RESET ROLE;
GRANT EXECUTE ON FUNCTION fdwshard_add_node(text, int, text), fdwshard_remove_node(int),
    fdwshard_set_node_property(int, text, bool), fdwshard.run_command_on_node(int, text) TO regress_perm_other;
SET ROLE regress_perm_other;
SELECT fdwshard_add_node('127.0.0.1', 1);
SELECT fdwshard_remove_node(2);
SELECT fdwshard_set_node_property(2, 'should_have_shards', false);
SELECT fdwshard.run_command_on_node(2, 'SELECT 1');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION fdwshard_add_node(text, int, text), fdwshard_remove_node(int),
    fdwshard_set_node_property(int, text, bool), fdwshard.run_command_on_node(int, text) FROM regress_perm_other;
SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT fdwshard.run_command_on_node(2, $$SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
                                          WHERE attrelid = 'owner_perms.t_4801'::regclass AND attnum > 0 AND NOT attisdropped$$) AS worker1_columns;
SELECT name FROM fdwshard.shard_key WHERE logicalrelid = 't'::regclass ORDER BY name;

-- A foreign key needs REFERENCES on the referenced table (or its columns), as on one server.
CREATE TABLE ref (key int PRIMARY KEY);
INSERT INTO ref SELECT generate_series(1, 100);
SELECT create_distributed_table('ref', 'key', shard_count := 4, colocate_with := 't');
SET ROLE regress_perm_owner;
ALTER TABLE t ADD CONSTRAINT t_key_fkey FOREIGN KEY (key) REFERENCES ref (key);
RESET ROLE;
GRANT REFERENCES (key) ON ref TO regress_perm_owner;
SET ROLE regress_perm_owner;
ALTER TABLE t ADD CONSTRAINT t_key_fkey FOREIGN KEY (key) REFERENCES ref (key);
INSERT INTO t (key, v) VALUES (1000, 'no such ref');
ALTER TABLE t DROP CONSTRAINT t_key_fkey;
RESET ROLE;
DROP TABLE ref;

-- The owner undistributes it, distributes it again and drops it.
SET ROLE regress_perm_owner;
ALTER TABLE t DROP CONSTRAINT t_pkey;
SELECT undistribute_table('t');
SELECT relkind, relowner::regrole FROM pg_class WHERE oid = 't'::regclass;
SELECT count(*), sum(key) FROM t;
SELECT count(*) AS catalog_rows FROM fdwshard.distributed_table WHERE logicalrelid = 't'::regclass;
SELECT create_distributed_table('t', 'key', shard_count := 2);
SELECT count(*), sum(key) FROM t;
-- Catalog statements run with search_path pg_catalog: an operator of the caller's cannot slip in.
SET search_path = owner_perms, pg_catalog;
CREATE FUNCTION spy(regclass, oid) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'regress_perm_owner' THEN
        RAISE NOTICE 'operator ran as %', current_user;
    END IF;
    RETURN $1::oid OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR = (LEFTARG = regclass, RIGHTARG = oid, FUNCTION = spy);
DROP TABLE t;
DROP OPERATOR = (regclass, oid);
DROP FUNCTION spy(regclass, oid);
RESET ROLE;
SET search_path = owner_perms;
SELECT count(*) AS catalog_rows FROM fdwshard.distributed_table;
SELECT count(*) AS groups FROM fdwshard.colocation_group g
WHERE NOT EXISTS (SELECT 1 FROM fdwshard.distributed_table d WHERE d.colocationid = g.colocationid);
SELECT fdwshard.run_command_on_node(n, $$SELECT count(*) FROM pg_tables WHERE schemaname = 'owner_perms'$$) AS worker_tables
FROM unnest(ARRAY[2, 3]) n;

RESET search_path;
DROP SCHEMA owner_perms CASCADE;
DROP USER MAPPING FOR regress_perm_owner SERVER fdwshard_node_2;
DROP USER MAPPING FOR regress_perm_owner SERVER fdwshard_node_3;
DROP OWNED BY regress_perm_owner, regress_perm_other;
DROP ROLE regress_perm_owner;
DROP ROLE regress_perm_other;
SELECT fdwshard.run_command_on_node(n, 'DROP SCHEMA owner_perms CASCADE') FROM unnest(ARRAY[2, 3]) n;
SELECT fdwshard.run_command_on_node(n, 'DROP OWNED BY regress_perm_owner') FROM unnest(ARRAY[2, 3]) n;
SELECT fdwshard.run_command_on_node(n, 'DROP ROLE regress_perm_owner') FROM unnest(ARRAY[2, 3]) n;
