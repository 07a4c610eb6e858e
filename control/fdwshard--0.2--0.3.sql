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
