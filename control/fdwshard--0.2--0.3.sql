-- fdwshard 0.2 -> 0.3 (multi-shard execution, two-phase commit). Every change here is also in
-- fdwshard--0.3.sql; test/fault/extension_upgrade.sh checks that both give the same extension.
\echo Use "ALTER EXTENSION fdwshard UPDATE" to load this file. \quit

-- Multi-shard aggregates: the coordinator's half of variance and stddev split into the shards'
-- moments (count, sum, sum of squares; or float8 {N, Sx, Sxx} states), PostgreSQL's arithmetic.
CREATE FUNCTION fdwshard.numeric_moments_result(count bigint, sum numeric, sum_of_squares numeric, sample bool,
                                                stddev bool) RETURNS numeric
    AS 'MODULE_PATHNAME', 'fdwshard_numeric_moments_result' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fdwshard.float8_moments_result(states float8[], sample bool, stddev bool) RETURNS float8
    AS 'MODULE_PATHNAME', 'fdwshard_float8_moments_result' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- fdwshard.nodes shows each worker's health as this coordinator last saw it (new columns at the end;
-- shared memory; the coordinator itself: server NULL, 'ok').
CREATE FUNCTION fdwshard.node_health(server_name name, OUT health text, OUT last_ok timestamptz,
                                     OUT last_error_at timestamptz, OUT last_error text)
    AS 'MODULE_PATHNAME', 'fdwshard_node_health' LANGUAGE C VOLATILE;

CREATE OR REPLACE VIEW fdwshard.nodes AS
SELECT nodeid, host, port, dbname, is_local, should_have_shards,
       (SELECT count(*) FROM fdwshard.placement p WHERE p.nodeid = n.nodeid) AS shard_count,
       server_name, h.health, h.last_ok, h.last_error_at, h.last_error
FROM fdwshard.node n, LATERAL fdwshard.node_health(n.server_name) h
ORDER BY nodeid;

-- Two-phase commit: a recovery pass on demand (the background worker runs one every fdwshard.recovery_interval).
CREATE FUNCTION pg_catalog.fdwshard_recover_prepared_transactions() RETURNS int
    AS 'MODULE_PATHNAME', 'fdwshard_recover_prepared_transactions' LANGUAGE C;
COMMENT ON FUNCTION pg_catalog.fdwshard_recover_prepared_transactions()
    IS 'commit or roll back the prepared transactions this coordinator left on the workers';
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_recover_prepared_transactions() FROM PUBLIC;
-- Two-phase commit: the commit decision for each remote transaction a multi-node transaction
-- prepared, written by the committing transaction itself. Recovery commits the prepared
-- transactions that have a row and rolls back those that have none, then deletes rows nobody
-- needs any more.
CREATE TABLE fdwshard.transactions (
    gid text PRIMARY KEY,
    nodeid int NOT NULL,
    created timestamptz NOT NULL
);
GRANT SELECT ON fdwshard.transactions TO PUBLIC;

-- ON CONFLICT ON CONSTRAINT N on a distributed table: the placeholder of each PRIMARY KEY or UNIQUE key,
-- N CHECK (fdwshard_shard_key(<key columns>)), also given to the keys of tables distributed before
-- (their columns read from a shard: a worker holding only remote shards of such a table must be up).
CREATE FUNCTION pg_catalog.fdwshard_shard_key(VARIADIC "any") RETURNS bool
    AS 'MODULE_PATHNAME', 'fdwshard_shard_key' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pg_catalog.fdwshard_shard_key("any")
    IS 'placeholder of a shard key for ON CONFLICT ON CONSTRAINT (always true: each shard enforces the key)';
CREATE FUNCTION fdwshard.add_shard_key_placeholders() RETURNS void
    AS 'MODULE_PATHNAME', 'fdwshard_add_shard_key_placeholders' LANGUAGE C;
SELECT fdwshard.add_shard_key_placeholders();
DROP FUNCTION fdwshard.add_shard_key_placeholders();

-- Elastic moves: a shard group (the shards of one index of a co-location group) to another node.
CREATE FUNCTION pg_catalog.fdwshard_move_shard(shard_id bigint, target_node int, mode text DEFAULT 'auto')
    RETURNS void AS 'MODULE_PATHNAME', 'fdwshard_move_shard' LANGUAGE C;
COMMENT ON FUNCTION pg_catalog.fdwshard_move_shard(bigint, int, text)
    IS 'move a shard and the co-located shards of its index to another node';
