-- Co-located joins on the distribution column with aggregates: each shard index runs the join.
-- Every query is compared with the same query on plain copies of the tables.
CREATE SCHEMA multi_shard_join;
SET search_path = multi_shard_join, public;
SET fdwshard.next_shard_id = 9300;

CREATE TABLE events (tenant_id int, id int NOT NULL, kind text, amount numeric(10,2), qty int);
CREATE TABLE tenants (tenant_id int, plan text, name text);
-- notes' distribution column is its second: events.id is too, and is not one.
CREATE TABLE notes (note text, tenant_id int, score float8);
SELECT create_distributed_table('events', 'tenant_id', shard_count := 6);
SELECT create_distributed_table('tenants', 'tenant_id', shard_count := 6, colocate_with := 'events');
SELECT create_distributed_table('notes', 'tenant_id', shard_count := 6, colocate_with := 'events');
-- Not co-located: another group with the same shard count, another shard count.
CREATE TABLE tenants_apart (LIKE tenants);
CREATE TABLE tenants_four (LIKE tenants);
SELECT create_distributed_table('tenants_apart', 'tenant_id', shard_count := 6, colocate_with := 'none');
SELECT create_distributed_table('tenants_four', 'tenant_id', shard_count := 4, colocate_with := 'none');
-- A local table.
CREATE TABLE plans (plan text, price numeric);
INSERT INTO plans VALUES ('free', 0), ('pro', 10), ('team', 25);
CREATE TABLE plain_events (LIKE events);
CREATE TABLE plain_tenants (LIKE tenants);
CREATE TABLE plain_notes (LIKE notes);
CREATE TABLE plain_tenants_apart (LIKE tenants);
CREATE TABLE plain_tenants_four (LIKE tenants);
-- The shards of one index are on one node; both workers and the coordinator hold some.
SELECT count(DISTINCT s.nodeid) AS nodes, bool_and(s.nodeid = t.nodeid AND s.nodeid = n.nodeid) AS together
FROM fdwshard.shards s
JOIN fdwshard.shards t ON t.table_name = 'tenants'::regclass AND t.min_hash = s.min_hash
JOIN fdwshard.shards n ON n.table_name = 'notes'::regclass AND n.min_hash = s.min_hash
WHERE s.table_name = 'events'::regclass;

-- Rows without partner: tenant 6 has no tenant row, 9 events only, 10 a tenant row only, 2 no notes.
-- NULLs: tenant 7's plan, some kinds and amounts.
INSERT INTO events
SELECT t, i, CASE WHEN i % 4 = 0 THEN NULL ELSE 'k' || (i % 3) END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i * 1.25 + t END, i % 5
FROM generate_series(1, 9) t, generate_series(1, 20) i;
DELETE FROM events WHERE tenant_id = 5;
INSERT INTO tenants SELECT t, CASE WHEN t = 7 THEN NULL WHEN t % 3 = 0 THEN 'free' WHEN t % 3 = 1 THEN 'pro' ELSE 'team' END,
                           'tenant ' || t
FROM generate_series(1, 10) t WHERE t <> 6;
INSERT INTO notes SELECT 'note ' || t || '.' || j, t, t * 0.5 + j FROM generate_series(1, 8) t, generate_series(1, 2) j WHERE t <> 2;
INSERT INTO tenants_apart SELECT * FROM tenants;
INSERT INTO tenants_four SELECT * FROM tenants;
INSERT INTO plain_events SELECT * FROM events;
INSERT INTO plain_tenants SELECT * FROM tenants;
INSERT INTO plain_notes SELECT * FROM notes;
INSERT INTO plain_tenants_apart SELECT * FROM tenants_apart;
INSERT INTO plain_tenants_four SELECT * FROM tenants_four;

-- plain(q): q over the plain copies; same(q), same_ordered(q), plan(q): helpers from setup.sql.
CREATE FUNCTION plain(q text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(q, '\m(events|tenants|notes|tenants_apart|tenants_four)\M', 'plain_\1', 'g') $$;
CREATE FUNCTION same(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows(q, plain(q)) $$;
CREATE FUNCTION same_ordered(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows_ordered(q, plain(q)) $$;
CREATE FUNCTION plan(q text) RETURNS text LANGUAGE sql AS $$ SELECT plan_kind(q) $$;

-- Partial aggregates grouped by another column: the join runs on each shard index.
SELECT t.plan, count(*), sum(e.amount), avg(e.amount), min(e.kind), max(e.qty)
FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan ORDER BY t.plan;
SELECT t.plan, count(*), sum(e.amount), avg(e.amount), min(e.kind), max(e.qty)
FROM plain_events e JOIN plain_tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan ORDER BY t.plan;
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT t.plan, count(*), sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan'),
    ('SELECT t.plan, count(*), sum(e.amount) FROM events e, tenants t WHERE e.tenant_id = t.tenant_id GROUP BY t.plan'),
    ('SELECT plan, kind, count(*), count(amount), avg(qty) FROM events JOIN tenants USING (tenant_id) GROUP BY plan, kind'),
    ('SELECT count(*), sum(amount), avg(amount), min(name), max(kind) FROM events e JOIN tenants t ON e.tenant_id = t.tenant_id'),
    ('SELECT e.kind, count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id AND t.plan <> ''free'' WHERE e.qty > 1 GROUP BY e.kind HAVING count(*) > 3'),
    ('SELECT t.plan, n.note LIKE ''%.1'' AS first, count(*), sum(e.amount), avg(n.score), min(n.note) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id JOIN notes n ON n.tenant_id = t.tenant_id GROUP BY 1, 2'),
    ('SELECT t.plan, count(*), max(n.score) FROM events e, tenants t, notes n WHERE e.tenant_id = t.tenant_id AND n.tenant_id = e.tenant_id GROUP BY t.plan'),
    ('SELECT count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.kind IS NULL')) v(q);

-- GROUP BY a distribution column: each shard index runs the whole query, count(DISTINCT) included.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT e.tenant_id, t.name, count(*), count(DISTINCT e.kind), sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY e.tenant_id, t.name'),
    ('SELECT t.tenant_id, count(DISTINCT n.note), avg(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id JOIN notes n ON n.tenant_id = e.tenant_id GROUP BY t.tenant_id'),
    ('SELECT tenant_id, count(*) FROM events JOIN tenants USING (tenant_id) GROUP BY tenant_id HAVING sum(qty) > 30')) v(q);
SELECT q, plan(q), same_ordered(q) FROM (VALUES
    ('SELECT e.tenant_id, sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY e.tenant_id ORDER BY 2 DESC, 1 LIMIT 3'),
    ('SELECT t.plan, count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan ORDER BY count(*) DESC, t.plan LIMIT 2')) v(q);

-- A constant on a distribution column keeps only its shard indexes (pinned to one, the router runs it).
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT t.plan, count(*), sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE t.tenant_id IN (1, 3, 7) GROUP BY t.plan'),
    ('SELECT count(*), sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.tenant_id = ANY (ARRAY[2, 4, 9])'),
    ('SELECT count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.tenant_id = 1 AND t.tenant_id = 2'),
    ('SELECT count(*), avg(n.score) FROM events e JOIN notes n ON n.tenant_id = e.tenant_id WHERE e.id = 1'),
    ('SELECT count(*), avg(n.score) FROM events e JOIN notes n ON n.tenant_id = e.tenant_id WHERE n.tenant_id = ANY (ARRAY[1, 3])'),
    ('SELECT count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.tenant_id = 3')) v(q);
SET client_min_messages = debug1;
SELECT count(*), sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE t.tenant_id IN (1, 3, 7);
SELECT count(*), avg(n.score) FROM events e JOIN notes n ON n.tenant_id = e.tenant_id WHERE n.tenant_id = ANY (ARRAY[1, 3]);
RESET client_min_messages;

-- A parameter, custom and generic plans.
PREPARE by_qty(int) AS SELECT t.plan, count(*), sum(e.amount), avg(e.qty) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.qty = $1 GROUP BY t.plan ORDER BY t.plan;
PREPARE plain_by_qty(int) AS SELECT t.plan, count(*), sum(e.amount), avg(e.qty) FROM plain_events e JOIN plain_tenants t ON t.tenant_id = e.tenant_id WHERE e.qty = $1 GROUP BY t.plan ORDER BY t.plan;
SET plan_cache_mode = force_custom_plan;
EXECUTE by_qty(2);
EXECUTE plain_by_qty(2);
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE by_qty(2);
EXECUTE by_qty(3);
EXECUTE plain_by_qty(3);
RESET plan_cache_mode;

-- What is not a co-located inner join on the distribution columns keeps PostgreSQL's own plan.
SELECT q, plan(q), same(q) FROM (VALUES
    ('SELECT t.plan, count(*) FROM events e JOIN tenants_apart t ON t.tenant_id = e.tenant_id GROUP BY t.plan'),
    ('SELECT t.plan, count(*) FROM events e JOIN tenants_four t ON t.tenant_id = e.tenant_id GROUP BY t.plan'),
    ('SELECT t.plan, count(*) FROM events e JOIN tenants t ON t.tenant_id = e.qty GROUP BY t.plan'),
    ('SELECT t.plan, count(*) FROM events e JOIN tenants t ON t.tenant_id + 0 = e.tenant_id GROUP BY t.plan'),
    ('SELECT t.plan, count(*) FROM events e, tenants t GROUP BY t.plan'),
    ('SELECT t.plan, count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id JOIN notes n ON n.note = t.name GROUP BY t.plan'),
    ('SELECT t.plan, count(*), sum(e.amount) FROM events e LEFT JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan'),
    ('SELECT t.plan, count(*) FROM events e RIGHT JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan'),
    ('SELECT e.tenant_id, count(*) FROM events e FULL JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY e.tenant_id'),
    ('SELECT p.price, count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id JOIN plans p ON p.plan = t.plan GROUP BY p.price'),
    ('SELECT e.tenant_id, count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id JOIN plans p ON p.plan = t.plan GROUP BY e.tenant_id')) v(q);

-- What runs where: the shards and their nodes; VERBOSE shows each foreign shard index's join.
EXPLAIN (COSTS OFF) SELECT t.plan, count(*), sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan;
EXPLAIN (VERBOSE, COSTS OFF) SELECT t.plan, count(*), sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.qty > 1 GROUP BY t.plan;

-- Permissions are checked on every distributed table of the join, columns included.
CREATE ROLE multi_shard_join_reader;
SELECT fdwshard.run_command_on_node(n, 'CREATE ROLE multi_shard_join_reader') FROM unnest(ARRAY[2, 3]) n;
GRANT USAGE ON SCHEMA multi_shard_join TO multi_shard_join_reader;
GRANT SELECT ON events TO multi_shard_join_reader;
SET ROLE multi_shard_join_reader;
SELECT t.plan, count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan;
SELECT e.tenant_id, count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY e.tenant_id;
RESET ROLE;
GRANT SELECT (tenant_id) ON tenants TO multi_shard_join_reader;
SET ROLE multi_shard_join_reader;
SELECT t.plan, count(*) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan;
SELECT e.tenant_id, max(t.name) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY e.tenant_id;
RESET ROLE;
DROP OWNED BY multi_shard_join_reader;
DROP ROLE multi_shard_join_reader;
SELECT fdwshard.run_command_on_node(n, 'DROP OWNED BY multi_shard_join_reader; DROP ROLE multi_shard_join_reader')
FROM unnest(ARRAY[2, 3]) n;

DROP SCHEMA multi_shard_join CASCADE;
