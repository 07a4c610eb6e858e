-- The same answers as one server: values computed on the coordinator follow the session's
-- settings, and get_shard_id_for_distribution_column takes a value as the column would store it.
CREATE SCHEMA same_answers;
SET search_path = same_answers, public;
SET fdwshard.next_shard_id = 5000;

CREATE TABLE t (k int PRIMARY KEY, at timestamptz, v text);
SELECT create_distributed_table('t', 'k', shard_count := 6);
CREATE TABLE plain (LIKE t INCLUDING ALL);
INSERT INTO t SELECT g, timestamptz '2024-03-01 00:00:00+00' + g * interval '1 day', 'v' || g FROM generate_series(1, 12) g;
INSERT INTO plain SELECT * FROM t;
-- Where keys 1 to 12 live: node 1 is the coordinator, 2 and 3 the workers (1: worker 1, 3: the
-- coordinator, 7: worker 2).
SELECT k, s.nodeid FROM generate_series(1, 12) k
JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('t', k) ORDER BY k;

-- DateStyle and TimeZone apply to what the coordinator computes, shipped statement or not.
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Asia/Tokyo';
PREPARE q(int, timestamptz) AS SELECT k, $2::text AS param, at::text, at FROM t WHERE k = $1;
PREPARE p(int, timestamptz) AS SELECT k, $2::text AS param, at::text, at FROM plain WHERE k = $1;
EXECUTE q(1, '2024-03-01');
EXECUTE p(1, '2024-03-01');
-- The issue's statement: shipped whole, with $2::text computed on the coordinator.
PREPARE r(int, timestamptz) AS SELECT k, $2::text FROM t WHERE k = $1;
PREPARE rp(int, timestamptz) AS SELECT k, $2::text FROM plain WHERE k = $1;
EXECUTE r(1, '2024-03-01');
EXECUTE rp(1, '2024-03-01');
EXECUTE q(3, '2024-03-01');
SET plan_cache_mode = force_generic_plan;
EXECUTE q(7, '01/03/2024 12:00');
EXECUTE p(7, '01/03/2024 12:00');
RESET plan_cache_mode;
SELECT k, now()::date = current_date AS today, (timestamptz '2024-03-01 00:00+00')::text AS lit FROM t WHERE k = 2;
INSERT INTO t VALUES (100, '02/03/2024 10:00', '02/03/2024 10:00'::timestamptz::text) RETURNING k, at, v;
INSERT INTO plain VALUES (100, '02/03/2024 10:00', '02/03/2024 10:00'::timestamptz::text) RETURNING k, at, v;
SELECT (SELECT row(at, v) FROM t WHERE k = 100) = (SELECT row(at, v) FROM plain WHERE k = 100) AS same_row;
RESET DateStyle;
RESET TimeZone;
-- Stored as the instant the user meant, whatever the style (read on worker 1 in its own session).
SELECT fdwshard.run_command_on_node(2, format('SELECT at = %L::timestamptz FROM same_answers.%I WHERE k = 100',
       '2024-03-02 10:00:00+09', (SELECT shard_name FROM fdwshard.shards WHERE shardid = get_shard_id_for_distribution_column('t', 100)))) AS stored_right
WHERE (SELECT nodeid FROM fdwshard.shards WHERE shardid = get_shard_id_for_distribution_column('t', 100)) = 2;

-- get_shard_id_for_distribution_column: values of other types are coerced as an assignment
-- would, and agree with the shard that holds the row.
SELECT get_shard_id_for_distribution_column('t', 6) = s.shardid AS holds_row
FROM t JOIN fdwshard.shards s ON s.shard_name = t.tableoid::regclass::text WHERE k = 6;
SELECT get_shard_id_for_distribution_column('t', 6::int2) = get_shard_id_for_distribution_column('t', 6) AS int2,
       get_shard_id_for_distribution_column('t', 6::int8) = get_shard_id_for_distribution_column('t', 6) AS int8,
       get_shard_id_for_distribution_column('t', 6.0::numeric) = get_shard_id_for_distribution_column('t', 6) AS numeric,
       get_shard_id_for_distribution_column('t', 5.6::numeric) = get_shard_id_for_distribution_column('t', 6) AS rounded,
       get_shard_id_for_distribution_column('t', 6.0::float8) = get_shard_id_for_distribution_column('t', 6) AS float8;
-- What INSERT refuses is refused.
SELECT get_shard_id_for_distribution_column('t', '6'::text);
SELECT get_shard_id_for_distribution_column('t', now());
SELECT get_shard_id_for_distribution_column('t', 3000000000::int8);
SELECT get_shard_id_for_distribution_column('t', NULL::int);
SELECT get_shard_id_for_distribution_column('plain', 6);
-- A text distribution column takes varchar and a domain over text alike.
CREATE DOMAIN code AS text;
CREATE TABLE named (name text PRIMARY KEY);
SELECT create_distributed_table('named', 'name', shard_count := 4);
SELECT get_shard_id_for_distribution_column('named', 'abc'::varchar) = get_shard_id_for_distribution_column('named', 'abc'::text) AS varchar,
       get_shard_id_for_distribution_column('named', 'abc'::code) = get_shard_id_for_distribution_column('named', 'abc'::text) AS domain;

-- Index definitions replayed on the workers mean there what they mean here, whatever the
-- search_path that found their functions.
CREATE SCHEMA same_answers_fn;
CREATE FUNCTION same_answers_fn.twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 2';
SELECT fdwshard.run_command_on_node(n, 'CREATE SCHEMA same_answers_fn; CREATE FUNCTION same_answers_fn.twice(int) '
       || 'RETURNS int IMMUTABLE LANGUAGE sql AS ''SELECT $1 * 2''') FROM unnest(ARRAY[2, 3]) n;
SET search_path = same_answers, same_answers_fn, public;
CREATE TABLE ix (k int, v int);
CREATE INDEX ix_twice ON ix (twice(v));
SELECT create_distributed_table('ix', 'k', shard_count := 4);
-- (read there under search_path pg_catalog: every name schema-qualified)
SELECT fdwshard.run_command_on_node(3, format('SET search_path = pg_catalog; '
       'SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %L::regclass',
       'same_answers.' || (SELECT shard_name FROM fdwshard.shards WHERE table_name = 'ix'::regclass AND nodeid = 3 LIMIT 1))) AS worker_index;
SET search_path = same_answers, public;
DROP TABLE ix;
DROP SCHEMA same_answers_fn CASCADE;
SELECT fdwshard.run_command_on_node(n, 'DROP SCHEMA same_answers_fn CASCADE') FROM unnest(ARRAY[2, 3]) n;

DROP SCHEMA same_answers CASCADE;
