-- Multi-shard aggregates: each shard computes partial aggregates, the coordinator combines them.
-- Every query is compared with the same query on a plain copy of the table.
CREATE SCHEMA multi_shard_agg;
SET search_path = multi_shard_agg, public;
SET fdwshard.next_shard_id = 9100;

CREATE TABLE events (tenant_id int NOT NULL, id int NOT NULL, kind text, amount numeric(10,2), qty int,
                     big bigint, small smallint, ratio float8, f4 float4, price numeric, day date,
                     PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('events', 'tenant_id', shard_count := 6);
CREATE TABLE plain_events (LIKE events INCLUDING ALL);
-- Tenants by node: 3 and 4 local (node 1), 1 and 2 on node 2, 7 on node 3.
SELECT t AS tenant, s.nodeid
FROM generate_series(1, 8) t JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('events', t)
ORDER BY t;

-- same(q): q on events and on plain_events give the same rows (helpers from setup.sql).
CREATE FUNCTION same(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows(q, replace(q, 'events', 'plain_events')) $$;
CREATE FUNCTION same_ordered(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows_ordered(q, replace(q, 'events', 'plain_events')) $$;
-- pushed(q): whether q's plan computes aggregates on the shards.
CREATE FUNCTION pushed(q text) RETURNS bool LANGUAGE sql AS $$ SELECT plan_kind(q) <> 'ordinary' $$;

-- An empty table: one row without GROUP BY (count 0, the rest NULL), none with it.
SELECT count(*), count(amount), sum(amount), avg(amount), min(kind), max(day) FROM events;
SELECT q, pushed(q), same(q) FROM (VALUES
    ('SELECT count(*), count(amount), sum(amount), avg(amount), min(kind), max(day) FROM events'),
    ('SELECT kind, count(*), sum(qty) FROM events GROUP BY kind')) v(q);

INSERT INTO events
SELECT t, i, CASE WHEN i % 4 = 0 THEN NULL ELSE 'k' || (i % 3) END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i * 1.25 END, i % 5, i * 1000000000000, (i % 9)::int2,
       CASE WHEN i % 6 = 0 THEN NULL ELSE i * 0.5 END, (i * 0.25)::float4,
       CASE WHEN i % 3 = 0 THEN i / 3.0 ELSE i * 0.001 END, date '2024-01-01' + i * t
FROM generate_series(1, 8) t, generate_series(1, 25) i;
-- Tenant 5's shard stays empty.
DELETE FROM events WHERE tenant_id = 5;
INSERT INTO plain_events SELECT * FROM events;

-- Every aggregate, with and without GROUP BY (by the distribution column, by another column, by an expression).
SELECT q, pushed(q), same(q) FROM (VALUES
    ('SELECT count(*) FROM events'),
    ('SELECT count(*), count(amount), count(kind) FROM events'),
    ('SELECT sum(amount), sum(qty), sum(big), sum(small), sum(ratio), sum(f4), sum(price) FROM events'),
    ('SELECT min(amount), max(amount), min(kind), max(kind), min(day), max(day), min(big), max(ratio) FROM events'),
    ('SELECT avg(amount), avg(qty), avg(big), avg(small), avg(ratio), avg(f4), avg(price) FROM events'),
    ('SELECT kind, count(*), count(amount), sum(amount), avg(amount), min(day), max(qty) FROM events GROUP BY kind'),
    ('SELECT tenant_id, count(*), sum(price), avg(price), avg(qty) FROM events GROUP BY tenant_id'),
    ('SELECT qty % 2, kind, count(*), avg(ratio), sum(f4) FROM events GROUP BY qty % 2, kind'),
    ('SELECT upper(kind) AS k, count(*) + 1, sum(qty) * 2, avg(amount) / 2 FROM events GROUP BY upper(kind)'),
    ('SELECT count(*) FILTER (WHERE qty > 2), sum(amount) FILTER (WHERE kind = ''k1''), avg(price) FILTER (WHERE qty = 0) FROM events'),
    ('SELECT kind, count(*) FROM events WHERE qty > 1 GROUP BY kind HAVING count(*) > 20'),
    ('SELECT kind, sum(amount) FROM events GROUP BY kind HAVING avg(qty) > 1.9 AND kind IS NOT NULL'),
    ('SELECT count(*), sum(amount) FROM events WHERE tenant_id IN (1, 3, 7)'),
    ('SELECT count(*), avg(amount) FROM events WHERE kind = ''none''')) v(q);

-- ORDER BY and LIMIT run on the coordinator: compared in order.
SELECT q, pushed(q), same_ordered(q) FROM (VALUES
    ('SELECT kind, count(*), avg(amount) FROM events GROUP BY kind ORDER BY kind NULLS FIRST'),
    ('SELECT tenant_id, sum(amount) FROM events GROUP BY tenant_id ORDER BY sum(amount) DESC, tenant_id LIMIT 3'),
    ('SELECT qty, avg(price) FROM events GROUP BY qty ORDER BY 2, 1 LIMIT 2 OFFSET 1'),
    ('SELECT avg(amount), avg(price), avg(big), sum(big) FROM events')) v(q);

-- avg keeps PostgreSQL's numeric display scale exactly; sum(bigint) is numeric and does not overflow.
SELECT avg(amount), avg(price), avg(qty), avg(big) FROM events;
SELECT avg(amount), avg(price), avg(qty), avg(big) FROM plain_events;
INSERT INTO events VALUES (1, 1000, 'max', 0, 0, 9223372036854775807, 0, 0, 0, 0.000000001, NULL),
                          (2, 1000, 'max', 0, 0, 9223372036854775807, 0, 0, 0, 1, NULL),
                          (7, 1000, 'max', 0, 0, 9223372036854775807, 0, 0, 0, 1, NULL);
INSERT INTO plain_events SELECT * FROM events WHERE id = 1000;
SELECT sum(big), avg(big), avg(price) FROM events WHERE kind = 'max';
SELECT q, pushed(q), same(q) FROM (VALUES
    ('SELECT sum(big), avg(big), avg(price), sum(price) FROM events'),
    ('SELECT kind, sum(big), avg(big), avg(price) FROM events GROUP BY kind')) v(q);

-- In a transaction, the shards' queries see its own writes (the same remote transaction).
BEGIN;
INSERT INTO events (tenant_id, id, kind, amount) VALUES (1, 2000, 'txn', 10), (7, 2000, 'txn', 20), (3, 2000, 'txn', 30);
INSERT INTO plain_events (tenant_id, id, kind, amount) VALUES (1, 2000, 'txn', 10), (7, 2000, 'txn', 20), (3, 2000, 'txn', 30);
SELECT count(*), sum(amount), avg(amount) FROM events WHERE kind = 'txn';
SELECT q, pushed(q), same(q) FROM (VALUES ('SELECT kind, count(*), sum(amount) FROM events GROUP BY kind')) v(q);
ROLLBACK;
SELECT count(*) FROM events WHERE kind = 'txn';

-- avg of floats divides as PostgreSQL does, without float8div's underflow check (5e-324 / n is 0).
SELECT avg(CASE WHEN tenant_id = 1 AND id = 1 THEN 5e-324::float8 ELSE 0 END) FROM events;
SELECT q, pushed(q), same(q) FROM (VALUES
    ('SELECT avg(CASE WHEN tenant_id = 1 AND id = 1 THEN 5e-324::float8 ELSE 0 END) FROM events')) v(q);

-- What runs where: the shards and their nodes; VERBOSE shows each foreign shard's query.
EXPLAIN (COSTS OFF) SELECT kind, count(*), avg(amount) FROM events GROUP BY kind ORDER BY kind;
EXPLAIN (VERBOSE, COSTS OFF) SELECT kind, count(*), avg(amount) FROM events WHERE qty > 1 GROUP BY kind HAVING sum(qty) > 3;
-- Rows received from the shards: one per shard without GROUP BY, shards x groups with it.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*), sum(amount) FROM events;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT qty, count(*) FROM events GROUP BY qty;

-- A parameter in WHERE, custom and generic plans.
PREPARE by_qty(int) AS SELECT kind, count(*), sum(amount), avg(price) FROM events WHERE qty = $1 GROUP BY kind ORDER BY kind;
PREPARE plain_by_qty(int) AS SELECT kind, count(*), sum(amount), avg(price) FROM plain_events WHERE qty = $1 GROUP BY kind ORDER BY kind;
SET plan_cache_mode = force_custom_plan;
EXECUTE by_qty(2);
EXECUTE plain_by_qty(2);
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE by_qty(2);
EXECUTE by_qty(2);
EXECUTE by_qty(3);
EXECUTE plain_by_qty(3);
RESET plan_cache_mode;
-- Coordinator-side values go to the shards as parameters.
SELECT q, pushed(q), same(q) FROM (VALUES
    ('SELECT count(*) FROM events WHERE day < now()::date'),
    ('SELECT count(*) FROM events WHERE kind = current_user')) v(q);

-- What cannot be split or shipped keeps PostgreSQL's own plan, with the same answers.
CREATE FUNCTION coordinator_only(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
SELECT q, pushed(q), same(q) FROM (VALUES
    ('SELECT sum(coordinator_only(amount)) FROM events'),
    ('SELECT count(*) FROM events WHERE coordinator_only(amount) > 3'),
    ('SELECT count(DISTINCT kind) FROM events'),
    ('SELECT string_agg(kind, '','' ORDER BY kind, id) FROM events'),
    ('SELECT corr(ratio, f4) FROM events'),
    ('SELECT DISTINCT count(*) FROM events GROUP BY kind'),
    ('SELECT kind, count(*) FROM events GROUP BY ROLLUP (kind)'),
    ('SELECT kind, count(*) OVER () FROM events GROUP BY kind'),
    ('SELECT count(*) FROM events WHERE random() >= 0'),
    ('SELECT qty * interval ''1 day'', count(*) FROM events GROUP BY 1'),
    ('SELECT count(*) FROM events WHERE tenant_id = 1'),
    ('SELECT count(*) FROM events WHERE tenant_id IN (3, 4)'),
    ('SELECT count(*) FROM events WHERE tableoid <> 0')) v(q);

-- Placements: every shard remote, or every shard local.
CREATE TABLE remote_only (k int, v numeric);
CREATE TABLE local_only (k int, v numeric);
SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
SELECT create_distributed_table('remote_only', 'k', shard_count := 4);
SELECT fdwshard_set_node_property(1, 'should_have_shards', true);
SELECT fdwshard_set_node_property(2, 'should_have_shards', false);
SELECT fdwshard_set_node_property(3, 'should_have_shards', false);
SELECT create_distributed_table('local_only', 'k', shard_count := 3);
SELECT fdwshard_set_node_property(2, 'should_have_shards', true);
SELECT fdwshard_set_node_property(3, 'should_have_shards', true);
INSERT INTO remote_only SELECT i % 13, i / 7.0 FROM generate_series(1, 500) i;
INSERT INTO local_only SELECT * FROM remote_only;
SELECT DISTINCT nodeid <> 1 AS remote FROM fdwshard.shards WHERE table_name = 'remote_only'::regclass;
SELECT DISTINCT nodeid = 1 AS local FROM fdwshard.shards WHERE table_name = 'local_only'::regclass;
SELECT pushed('SELECT k % 3, count(*), avg(v) FROM remote_only GROUP BY 1') AS remote_pushed,
       pushed('SELECT k % 3, count(*), avg(v) FROM local_only GROUP BY 1') AS local_pushed;
SELECT query_rows('SELECT k % 3, count(*), sum(v), avg(v), min(v), max(v) FROM remote_only GROUP BY 1 ORDER BY 1') =
       query_rows('SELECT k % 3, count(*), sum(v), avg(v), min(v), max(v) FROM local_only GROUP BY 1 ORDER BY 1') AS same_answers;

-- Permissions are checked on the distributed table.
CREATE ROLE multi_shard_agg_reader;
GRANT USAGE ON SCHEMA multi_shard_agg TO multi_shard_agg_reader;
SET ROLE multi_shard_agg_reader;
SELECT count(*) FROM events;
SELECT kind, avg(amount) FROM events WHERE qty > 1 GROUP BY kind;
RESET ROLE;
DROP OWNED BY multi_shard_agg_reader;
DROP ROLE multi_shard_agg_reader;

DROP SCHEMA multi_shard_agg CASCADE;
