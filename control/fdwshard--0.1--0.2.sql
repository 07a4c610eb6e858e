-- fdwshard 0.1 -> 0.2 (hardening). Every change here is also in fdwshard--0.2.sql;
-- test/fault/extension_upgrade.sh checks that both give the same extension.
\echo Use "ALTER EXTENSION fdwshard UPDATE" to load this file. \quit

-- Nodes are identified by what the server is (system identifier and database), not by how its
-- address is spelled. The coordinator's row gets its own; workers registered by 0.1 keep NULL
-- (they are still compared by host and port) until removed and added again.
ALTER TABLE fdwshard.node ADD COLUMN system_identifier bigint, ADD UNIQUE (system_identifier, dbname);
UPDATE fdwshard.node SET system_identifier = (SELECT system_identifier FROM pg_catalog.pg_control_system())
WHERE is_local;
