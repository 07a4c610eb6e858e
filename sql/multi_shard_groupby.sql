-- GROUP BY the distribution column: every group is in one shard, which runs the whole query.
-- Every query is compared with the same query on a plain copy of the table.
CREATE SCHEMA multi_shard_groupby;
SET search_path = multi_shard_groupby, public;
SET fdwshard.next_shard_id = 9200;

CREATE TABLE events (tenant_id int, id int NOT NULL, kind text, amount numeric(10,2), qty int, ratio float8,
                     day date, flag bool, note varchar(10), span interval, at timestamptz);
SELECT create_distributed_table('events', 'tenant_id', shard_count := 6);
CREATE TABLE plain_events (LIKE events INCLUDING ALL);
-- Both workers and the coordinator hold shards.
SELECT count(DISTINCT nodeid) FROM fdwshard.shards WHERE table_name = 'events'::regclass;

-- same(q): q on events and on plain_events give the same rows; plan(q): how it runs (helpers from setup.sql).
CREATE FUNCTION same(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows(q, replace(q, 'events', 'plain_events')) $$;
CREATE FUNCTION same_ordered(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows_ordered(q, replace(q, 'events', 'plain_events')) $$;
CREATE FUNCTION plan(q text) RETURNS text LANGUAGE sql AS $$ SELECT plan_kind(q) $$;

-- An empty table: no groups.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT tenant_id, count(*), string_agg(kind, '','') FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, count(*) FROM events GROUP BY tenant_id ORDER BY count(*) DESC, tenant_id LIMIT 3')) v(q);

INSERT INTO events
SELECT t, i, CASE WHEN i % 4 = 0 THEN NULL ELSE 'k' || (i % 3) END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i * 1.25 END, i % 5, CASE WHEN i % 6 = 0 THEN NULL ELSE i * 0.5 END,
       date '2024-01-01' + i * t, i % 3 <> 0, 'n' || (i % 2), i * interval '1 hour',
       timestamptz '2024-01-01 00:00+00' + i * t * interval '1 hour'
FROM generate_series(1, 9) t, generate_series(1, 20 + t) i;
INSERT INTO plain_events SELECT * FROM events;

-- Aggregates that cannot be split run whole on each shard when grouped by the distribution column.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT tenant_id, count(*), count(DISTINCT kind), count(DISTINCT qty) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, string_agg(kind, '','' ORDER BY kind, id) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, bool_and(flag), bool_or(flag), every(qty > 0) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, stddev(amount), variance(qty), stddev_pop(ratio), var_samp(ratio) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, sum(amount), avg(amount), min(day), max(at), max(note) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, count(*) FILTER (WHERE qty > 2), avg(ratio) FILTER (WHERE flag) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY ratio), mode() WITHIN GROUP (ORDER BY qty DESC) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, GROUPING(tenant_id), count(*) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, kind, count(*), string_agg(note, ''-'' ORDER BY id) FROM events GROUP BY tenant_id, kind'),
    ('SELECT kind, tenant_id, sum(qty) FROM events GROUP BY kind, tenant_id'),
    ('SELECT count(*), sum(qty) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, count(*) FROM events WHERE qty > 1 GROUP BY tenant_id HAVING count(DISTINCT kind) > 2'),
    ('SELECT tenant_id, avg(qty) FROM events GROUP BY tenant_id HAVING sum(amount) > 300 AND tenant_id IS NOT NULL'),
    ('SELECT tenant_id, count(*) FROM events WHERE tenant_id IN (1, 2, 7) GROUP BY tenant_id'),
    ('SELECT tenant_id, count(*), count(amount), min(kind), max(ratio) FROM events WHERE kind IS NULL GROUP BY tenant_id'),
    ('SELECT tenant_id, count(*) FROM events WHERE kind = ''none'' GROUP BY tenant_id')) v(q);

-- ORDER BY and LIMIT: each shard sends at most LIMIT + OFFSET groups, compared in order.
SELECT q, plan(q), same_ordered(q) FROM (VALUES
    ('SELECT tenant_id, count(*) FROM events GROUP BY tenant_id ORDER BY count(*) DESC, tenant_id LIMIT 3'),
    ('SELECT tenant_id, count(*) FROM events GROUP BY tenant_id ORDER BY count(*) DESC, tenant_id LIMIT 3 OFFSET 2'),
    ('SELECT tenant_id, sum(qty) FROM events GROUP BY tenant_id ORDER BY 2, 1 LIMIT 4'),
    ('SELECT tenant_id, count(*) FROM events GROUP BY tenant_id ORDER BY tenant_id DESC OFFSET 3'),
    ('SELECT tenant_id, kind, count(*) FROM events GROUP BY tenant_id, kind ORDER BY kind NULLS FIRST, tenant_id LIMIT 5'),
    ('SELECT tenant_id, string_agg(kind, '','' ORDER BY kind, id) FROM events GROUP BY tenant_id ORDER BY 2, 1 LIMIT 2'),
    ('SELECT tenant_id FROM events GROUP BY tenant_id ORDER BY stddev(qty) DESC, tenant_id LIMIT 4')) v(q);

-- What runs where: VERBOSE shows each shard's whole query, with the shards' LIMIT.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT tenant_id, count(*) FROM events GROUP BY tenant_id HAVING count(DISTINCT kind) > 1
ORDER BY count(*) DESC, tenant_id LIMIT 3 OFFSET 1;
-- Text sorts by each node's collation: the shards group and the coordinator sorts and limits.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT tenant_id, kind, count(*) FROM events WHERE tenant_id IN (1, 2) GROUP BY tenant_id, kind ORDER BY kind, tenant_id LIMIT 2;
-- Rows received from the shards: at most LIMIT + OFFSET each.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT tenant_id, count(*) FROM events GROUP BY tenant_id ORDER BY count(*) DESC, tenant_id LIMIT 1;

-- A parameter, custom and generic plans (a parameter as LIMIT is not sent to the shards).
PREPARE by_qty(int, bigint) AS SELECT tenant_id, count(DISTINCT kind), string_agg(note, ',' ORDER BY id)
    FROM events WHERE qty = $1 GROUP BY tenant_id ORDER BY 1 LIMIT $2;
PREPARE plain_by_qty(int, bigint) AS SELECT tenant_id, count(DISTINCT kind), string_agg(note, ',' ORDER BY id)
    FROM plain_events WHERE qty = $1 GROUP BY tenant_id ORDER BY 1 LIMIT $2;
SET plan_cache_mode = force_custom_plan;
EXECUTE by_qty(2, 4);
EXECUTE plain_by_qty(2, 4);
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE by_qty(2, 4);
EXECUTE by_qty(3, 3);
EXECUTE plain_by_qty(3, 3);
RESET plan_cache_mode;

-- What the shards cannot compute, or the coordinator could not read back exactly (an interval's text
-- depends on IntervalStyle), takes another path; a comparison of intervals computed on the shards is fine.
CREATE FUNCTION coordinator_only(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE AGGREGATE my_sum(numeric) (sfunc = numeric_add, stype = numeric);
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT tenant_id, sum(coordinator_only(amount)) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, coordinator_only(sum(amount)) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, my_sum(amount) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, sum(span) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, max(span) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, count(*), max(span) > interval ''1 day'' FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id + 0, count(DISTINCT kind) FROM events GROUP BY tenant_id + 0'),
    ('SELECT tenant_id % 3, count(*), sum(qty) FROM events GROUP BY tenant_id % 3'),
    ('SELECT tenant_id, count(*) FROM events GROUP BY ROLLUP (tenant_id)'),
    ('SELECT tenant_id, count(*) OVER () FROM events GROUP BY tenant_id'),
    ('SELECT DISTINCT count(*) FROM events GROUP BY tenant_id'),
    ('SELECT tenant_id, count(*) FROM events WHERE random() >= 0 GROUP BY tenant_id'),
    ('SELECT tenant_id, count(*) FROM events WHERE tenant_id = 3 GROUP BY tenant_id')) v(q);

-- Permissions are checked on the distributed table.
CREATE ROLE multi_shard_groupby_reader;
GRANT USAGE ON SCHEMA multi_shard_groupby TO multi_shard_groupby_reader;
SET ROLE multi_shard_groupby_reader;
SELECT tenant_id, count(DISTINCT kind) FROM events GROUP BY tenant_id;
RESET ROLE;
DROP OWNED BY multi_shard_groupby_reader;
DROP ROLE multi_shard_groupby_reader;

DROP SCHEMA multi_shard_groupby CASCADE;
