-- Multi-shard bool_and/bool_or/every, variance/stddev and count(DISTINCT dist_col): split into
-- per-shard partial aggregates and combined on the coordinator, compared with a plain copy.
CREATE SCHEMA multi_shard_agg_stats;
SET search_path = multi_shard_agg_stats, public;
SET fdwshard.next_shard_id = 9400;

CREATE TABLE events (tenant_id int NOT NULL, id int NOT NULL, kind text, flag bool, i2 int2, i4 int4, i8 int8,
                     num numeric, amount numeric(10,2), f4 float4, f8 float8);
SELECT create_distributed_table('events', 'tenant_id', shard_count := 6);
CREATE TABLE plain_events (LIKE events INCLUDING ALL);
SELECT count(DISTINCT nodeid) AS nodes FROM fdwshard.shards WHERE table_name = 'events'::regclass;

-- same(q): q on events and on plain_events give the same rows; plan(q): how it runs (helpers from setup.sql).
CREATE FUNCTION same(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows(q, replace(q, 'events', 'plain_events')) $$;
CREATE FUNCTION same_ordered(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows_ordered(q, replace(q, 'events', 'plain_events')) $$;
CREATE FUNCTION plan(q text) RETURNS text LANGUAGE sql AS $$ SELECT plan_kind(q) $$;
-- sig(x): a float to 10 significant digits. Floats are summed in another order than on the plain
-- table (per shard, then shard by shard), so only their leading digits can be compared.
CREATE FUNCTION sig(x float8) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x = 0 OR x = 'NaN' OR x IN ('Infinity', '-Infinity') THEN x::text ELSE to_char(x, '9.999999999EEEE') END $$;

-- An empty table: one row without GROUP BY (NULLs, count 0), none with it.
SELECT bool_and(flag), bool_or(flag), every(flag), variance(i4), stddev(num), var_pop(f8), stddev_samp(f4),
       count(DISTINCT tenant_id) FROM events;
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT bool_and(flag), bool_or(flag), every(flag), count(DISTINCT tenant_id) FROM events'),
    ('SELECT variance(i2), var_samp(i4), var_pop(i8), stddev(num), stddev_samp(amount), stddev_pop(f4), variance(f8) FROM events'),
    ('SELECT kind, bool_or(flag), stddev(i4), var_pop(f8), count(DISTINCT tenant_id) FROM events GROUP BY kind')) v(q);

-- Tenants 1..9 (tenant 5's shard stays empty), NULLs in every column, groups spanning shards.
INSERT INTO events
SELECT t, i, CASE WHEN i % 5 = 0 THEN NULL ELSE 'k' || (i % 3) END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i * t) % 4 <> 0 END,
       CASE WHEN i % 6 = 0 THEN NULL ELSE (i * 37 + t) % 1000 - 300 END,
       CASE WHEN i % 8 = 0 THEN NULL ELSE (i * 7919 * t) % 100003 - 20000 END,
       CASE WHEN i % 9 = 0 THEN NULL ELSE (i * 104729::int8 * t) * 1000003 END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE (i * t) / 7.0 + 1000000 END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE i * 1.25 - t END,
       CASE WHEN i % 5 = 1 THEN NULL ELSE (i * 0.37 + t)::float4 END,
       CASE WHEN i % 6 = 1 THEN NULL ELSE i * 1.1e3 / t END
FROM generate_series(1, 9) t, generate_series(1, 40) i WHERE t <> 5;
INSERT INTO plain_events SELECT * FROM events;

-- bool_and, bool_or, every: with NULLs, GROUP BY, FILTER, HAVING, ORDER BY.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT bool_and(flag), bool_or(flag), every(flag) FROM events'),
    ('SELECT kind, bool_and(flag), bool_or(flag), every(flag) FROM events GROUP BY kind'),
    ('SELECT id % 7 AS g, bool_and(flag), bool_or(flag) FROM events GROUP BY 1'),
    ('SELECT bool_and(flag) FILTER (WHERE i2 > 0), bool_or(flag) FILTER (WHERE kind = ''k1''), every(i4 > -20000) FROM events'),
    ('SELECT kind, bool_or(flag) FROM events WHERE flag IS NULL GROUP BY kind'),
    ('SELECT kind, count(*) FROM events GROUP BY kind HAVING bool_or(i2 > 600) AND every(id > 0)')) v(q);
SELECT q, plan(q), same_ordered(q) FROM (VALUES
    ('SELECT id % 5, bool_and(flag), every(flag) FROM events GROUP BY 1 ORDER BY 2, 1 LIMIT 3')) v(q);

-- variance and stddev of integers and numeric: PostgreSQL's exact digits and display scale.
SELECT variance(i2), stddev(i4), var_pop(i8), stddev_samp(num), stddev_pop(amount) FROM events;
SELECT variance(i2), stddev(i4), var_pop(i8), stddev_samp(num), stddev_pop(amount) FROM plain_events;
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT variance(i2), var_samp(i2), var_pop(i2), stddev(i2), stddev_samp(i2), stddev_pop(i2) FROM events'),
    ('SELECT variance(i4), var_samp(i4), var_pop(i4), stddev(i4), stddev_samp(i4), stddev_pop(i4) FROM events'),
    ('SELECT variance(i8), var_samp(i8), var_pop(i8), stddev(i8), stddev_samp(i8), stddev_pop(i8) FROM events'),
    ('SELECT variance(num), var_samp(num), var_pop(num), stddev(num), stddev_samp(num), stddev_pop(num) FROM events'),
    ('SELECT variance(amount), var_pop(amount), stddev(amount), stddev_pop(amount) FROM events'),
    ('SELECT kind, variance(i2), stddev(i4), var_pop(i8), stddev_samp(num), stddev_pop(amount) FROM events GROUP BY kind'),
    ('SELECT flag, stddev(num) FILTER (WHERE i2 > 0), variance(i4) FILTER (WHERE kind = ''k2'') FROM events GROUP BY flag'),
    ('SELECT kind, stddev(i4) FROM events GROUP BY kind HAVING variance(i2) > 1000'),
    ('SELECT stddev(num) + 1, variance(i4) * 2, stddev(i4 / 3), stddev(num * num) FROM events')) v(q);
-- Many groups of few rows each: many different square roots, each at PostgreSQL's scale.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT id, stddev(i4), stddev_pop(i2), stddev(num), stddev_pop(i8), stddev_samp(amount) FROM events GROUP BY id'),
    ('SELECT (i2 + 300) % 97, stddev(num), stddev_pop(i4), stddev(i8) FROM events GROUP BY 1')) v(q);
-- PostgreSQL's stddev is the square root at the variance's scale, rounded once: sqrt() at its own
-- scale rounded again would be one unit too high for some groups (65 and 280 below, among others).
CREATE TABLE roots (k int, g int, v int);
SELECT create_distributed_table('roots', 'k', shard_count := 6);
CREATE TABLE plain_roots (LIKE roots);
INSERT INTO roots SELECT g * 3 + x.i, g, x.v
FROM generate_series(1, 2000) g, LATERAL (VALUES (0, g % 1000), (1, (g * 7919) % 100003), (2, g / 3)) x(i, v);
INSERT INTO plain_roots SELECT * FROM roots;
SELECT g, stddev(v), stddev_pop(v), round(sqrt(variance(v)), scale(variance(v))) AS rounded_twice
FROM roots WHERE g IN (65, 280) GROUP BY g ORDER BY g;
SELECT g, stddev(v), stddev_pop(v) FROM plain_roots WHERE g IN (65, 280) GROUP BY g ORDER BY g;
SELECT q, plan(q), same_rows(q, replace(q, 'roots', 'plain_roots')) AS same FROM (VALUES
    ('SELECT g, stddev(v), stddev_pop(v) FROM roots GROUP BY g')) v(q);
-- One row per group: the sample statistics are NULL, the population ones 0.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT tenant_id * 1000 + id, var_samp(i4), stddev(num), var_pop(i4), stddev_pop(num), stddev(f8), var_pop(f8) FROM events GROUP BY 1')) v(q);
SELECT tenant_id * 1000 + id AS g, var_samp(i4), stddev(num), var_pop(i4), stddev_pop(num)
FROM events WHERE tenant_id = 1 AND id = 1 GROUP BY 1;

-- Numeric precision: huge and tiny values, equal values (0, of scale 0), NaN and infinities.
CREATE TABLE nums (k int, g int, v numeric);
SELECT create_distributed_table('nums', 'k', shard_count := 4);
CREATE TABLE plain_nums (LIKE nums);
INSERT INTO nums SELECT k, 1, 123456789012345678901234567890.123456789 + k * 0.000000001 FROM generate_series(1, 30) k;
INSERT INTO nums SELECT k, 2, 0.0000000000001 * k FROM generate_series(1, 30) k;
INSERT INTO nums SELECT k, 3, 42.50 FROM generate_series(1, 30) k;
INSERT INTO nums SELECT k, 4, CASE WHEN k = 7 THEN 'NaN' ELSE k::numeric END FROM generate_series(1, 30) k;
INSERT INTO nums SELECT k, 5, CASE WHEN k = 7 THEN 'Infinity' ELSE k::numeric END FROM generate_series(1, 30) k;
INSERT INTO nums SELECT k, 6, CASE WHEN k = 7 THEN 'Infinity' WHEN k = 8 THEN '-Infinity' ELSE k::numeric END FROM generate_series(1, 30) k;
INSERT INTO nums VALUES (1, 7, 'NaN'), (2, 8, 'Infinity'), (3, 9, 5);
INSERT INTO plain_nums SELECT * FROM nums;
SELECT g, variance(v), stddev(v), var_pop(v), stddev_pop(v) FROM nums GROUP BY g ORDER BY g;
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT g, variance(v), var_samp(v), var_pop(v), stddev(v), stddev_samp(v), stddev_pop(v) FROM nums GROUP BY g')) v(q);

-- Floats: Youngs-Cramer states per shard, combined as parallel query combines them.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT sig(variance(f8)), sig(var_samp(f8)), sig(var_pop(f8)), sig(stddev(f8)), sig(stddev_samp(f8)), sig(stddev_pop(f8)) FROM events'),
    ('SELECT sig(variance(f4)), sig(var_samp(f4)), sig(var_pop(f4)), sig(stddev(f4)), sig(stddev_samp(f4)), sig(stddev_pop(f4)) FROM events'),
    ('SELECT kind, sig(stddev(f8)), sig(var_pop(f4)) FROM events GROUP BY kind'),
    ('SELECT id % 11, sig(stddev(f8) FILTER (WHERE flag)), sig(variance(f4)) FROM events GROUP BY 1'),
    ('SELECT kind, sig(stddev(f8 * 1e6 + 1e12)) FROM events GROUP BY kind')) v(q);
SELECT sig(stddev(f8)), sig(var_pop(f4)) FROM events;
SELECT sig(stddev(f8)), sig(var_pop(f4)) FROM plain_events;
-- Float NaN and infinity as PostgreSQL gives them.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT id % 3, var_pop(CASE WHEN tenant_id = 2 AND id < 4 THEN ''NaN''::float8 ELSE 1 END), stddev(CASE WHEN tenant_id = 7 AND id = 3 THEN ''Infinity''::float8 ELSE 2 END) FROM events GROUP BY 1')) v(q);

-- count(DISTINCT dist_col): each value is in one shard, the shards' counts add up.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT count(DISTINCT tenant_id) FROM events'),
    ('SELECT kind, count(DISTINCT tenant_id), count(*) FROM events GROUP BY kind'),
    ('SELECT flag, count(DISTINCT tenant_id) FILTER (WHERE i2 > 0), count(DISTINCT tenant_id) FILTER (WHERE kind IS NULL) FROM events GROUP BY flag'),
    ('SELECT id % 4, count(DISTINCT tenant_id) FROM events WHERE id > 30 GROUP BY 1 HAVING count(DISTINCT tenant_id) > 1'),
    ('SELECT count(DISTINCT tenant_id) FROM events WHERE kind = ''none''')) v(q);
SELECT q, plan(q), same_ordered(q) FROM (VALUES
    ('SELECT kind, count(DISTINCT tenant_id) FROM events WHERE id < 6 GROUP BY kind ORDER BY 2 DESC, 1 NULLS FIRST')) v(q);
-- count(DISTINCT) of another column can be in several shards: PostgreSQL's own plan.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT count(DISTINCT kind) FROM events'),
    ('SELECT kind, count(DISTINCT id), count(DISTINCT tenant_id) FROM events GROUP BY kind'),
    ('SELECT count(DISTINCT tenant_id + 0) FROM events'),
    ('SELECT count(DISTINCT (tenant_id, id)) FROM events')) v(q);
-- In a join of co-located tables, either distribution column.
CREATE TABLE tenants (tenant_id int, name text);
SELECT create_distributed_table('tenants', 'tenant_id', shard_count := 6);
CREATE TABLE plain_tenants (LIKE tenants);
INSERT INTO tenants SELECT t, 'tenant ' || t FROM generate_series(1, 8) t;
INSERT INTO plain_tenants SELECT * FROM tenants;
SELECT q, plan(q), same_rows(q, replace(replace(q, 'events', 'plain_events'), 'tenants', 'plain_tenants')) AS same FROM (VALUES
    ('SELECT e.kind, count(DISTINCT t.tenant_id), count(DISTINCT e.tenant_id), bool_or(e.flag), stddev(e.i4) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY e.kind')) v(q);

-- EXPLAIN: the shards compute the partial aggregates, the coordinator combines them.
CREATE TABLE small (k int, g int, b bool, n numeric, x float8);
SELECT create_distributed_table('small', 'k', shard_count := 3);
EXPLAIN (VERBOSE, COSTS OFF)
SELECT g, bool_and(b), every(b), stddev(n), var_pop(x), count(DISTINCT k) FROM small GROUP BY g;

-- Rows received scale with shards x groups, not with rows: 30000 rows, 4 groups, 6 shards.
CREATE TABLE many (k int, g int, b bool, n numeric, i int, x float8);
SELECT create_distributed_table('many', 'k', shard_count := 6);
CREATE TABLE plain_many (LIKE many);
INSERT INTO many SELECT i % 997, i % 4, i % 3 = 0, i / 3.0, i % 1000, i * 0.5 FROM generate_series(1, 30000) i;
INSERT INTO plain_many SELECT * FROM many;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT g, bool_and(b), bool_or(b), stddev(n), variance(i), stddev_pop(x), count(DISTINCT k) FROM many GROUP BY g;
SELECT q, plan(q), same_rows(q, replace(q, 'many', 'plain_many')) AS same FROM (VALUES
    ('SELECT g, bool_and(b), bool_or(b), every(b), stddev(n), variance(i), var_samp(n), count(DISTINCT k), sig(stddev_pop(x)) FROM many GROUP BY g')) v(q);

-- Placements: every shard remote, or every shard local, give the same answers.
CREATE TABLE remote_only (k int, g int, b bool, v numeric, x float8);
CREATE TABLE local_only (k int, g int, b bool, v numeric, x float8);
SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
SELECT create_distributed_table('remote_only', 'k', shard_count := 4);
SELECT fdwshard_set_node_property(1, 'should_have_shards', true);
SELECT fdwshard_set_node_property(2, 'should_have_shards', false);
SELECT fdwshard_set_node_property(3, 'should_have_shards', false);
SELECT create_distributed_table('local_only', 'k', shard_count := 3);
SELECT fdwshard_set_node_property(2, 'should_have_shards', true);
SELECT fdwshard_set_node_property(3, 'should_have_shards', true);
INSERT INTO remote_only SELECT i % 13, i % 3, i % 5 <> 0, i / 7.0, i * 0.25 FROM generate_series(1, 500) i;
INSERT INTO local_only SELECT * FROM remote_only;
SELECT plan('SELECT g, stddev(v), bool_and(b), count(DISTINCT k) FROM remote_only GROUP BY g') AS remote_plan;
SELECT query_rows('SELECT g, bool_and(b), bool_or(b), variance(v), stddev_pop(v), count(DISTINCT k), sig(stddev(x)) FROM remote_only GROUP BY g ORDER BY g') =
       query_rows('SELECT g, bool_and(b), bool_or(b), variance(v), stddev_pop(v), count(DISTINCT k), sig(stddev(x)) FROM local_only GROUP BY g ORDER BY g') AS same_answers;

DROP SCHEMA multi_shard_agg_stats CASCADE;
