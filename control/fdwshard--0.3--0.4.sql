-- fdwshard 0.3 -> 0.4 (operations: backup and restore; scale). Every change here is also in
-- fdwshard--0.4.sql; test/fault/extension_upgrade.sh checks that both give the same extension.
\echo Use "ALTER EXTENSION fdwshard UPDATE" to load this file. \quit

-- pg_dump of the coordinator: the coordinator's own row is not dumped, as CREATE EXTENSION makes it
-- again for the server restored into (before, the restored row collided with it).
SELECT pg_catalog.pg_extension_config_dump('fdwshard.node', 'WHERE NOT is_local');

-- create_distributed_table without shard_count takes the count of the table named by
-- colocate_with (it was 32, refused when that table had another count), or 32.
CREATE OR REPLACE FUNCTION pg_catalog.create_distributed_table(table_name regclass, distribution_column text,
                                                    shard_count int DEFAULT NULL, colocate_with text DEFAULT 'default')
    RETURNS void AS 'MODULE_PATHNAME', 'create_distributed_table' LANGUAGE C;
