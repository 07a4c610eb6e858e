-- Multi-shard SELECTs without aggregates: ORDER BY ... LIMIT runs on each shard, co-located joins
-- on each shard index. Every query is compared with the same query on plain copies of the tables.
CREATE SCHEMA multi_shard_select;
SET search_path = multi_shard_select, public;
SET fdwshard.next_shard_id = 9700;

CREATE TABLE events (tenant_id int, id int NOT NULL, kind text, amount numeric(10,2), qty int, at timestamptz,
                     ratio float8);
CREATE TABLE tenants (tenant_id int, name text, plan text);
CREATE TABLE notes (note text, tenant_id int);
SELECT create_distributed_table('events', 'tenant_id', shard_count := 6);
SELECT create_distributed_table('tenants', 'tenant_id', shard_count := 6, colocate_with := 'events');
SELECT create_distributed_table('notes', 'tenant_id', shard_count := 6, colocate_with := 'events');
-- Not co-located with events; an empty table; a local table.
CREATE TABLE tenants_apart (LIKE tenants);
SELECT create_distributed_table('tenants_apart', 'tenant_id', shard_count := 6, colocate_with := 'none');
CREATE TABLE empty_events (LIKE events);
SELECT create_distributed_table('empty_events', 'tenant_id', shard_count := 6, colocate_with := 'none');
CREATE TABLE plans (plan text, price numeric);
INSERT INTO plans VALUES ('free', 0), ('pro', 10), ('team', 25);
CREATE TABLE plain_events (LIKE events);
CREATE TABLE plain_tenants (LIKE tenants);
CREATE TABLE plain_notes (LIKE notes);
CREATE TABLE plain_tenants_apart (LIKE tenants);
CREATE TABLE plain_empty_events (LIKE events);

-- Tenants by node: the coordinator (node 1) and both workers hold some.
SELECT t AS tenant, s.nodeid
FROM generate_series(1, 9) t JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('events', t)
ORDER BY t;

-- NULLs in kind, amount and at; kinds whose order depends on the collation ('B..' and 'a..').
INSERT INTO events
SELECT t, i, CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN 'a' || i % 3 WHEN 2 THEN 'B' || i % 3 ELSE 'k' || i % 3 END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i * 1.25 + t END, i % 4,
       CASE WHEN i % 9 = 0 THEN NULL ELSE timestamptz '2024-01-01 00:00+00' + (i * t) * interval '1 hour' END,
       i * 0.1 + t
FROM generate_series(1, 9) t, generate_series(1, 30) i;
DELETE FROM events WHERE tenant_id = 5;
INSERT INTO tenants SELECT t, 'tenant ' || t, CASE WHEN t = 7 THEN NULL WHEN t % 3 = 0 THEN 'free' WHEN t % 3 = 1 THEN 'pro' ELSE 'team' END
FROM generate_series(1, 10) t WHERE t <> 6;
INSERT INTO notes SELECT 'note ' || t || '.' || j, t FROM generate_series(1, 8) t, generate_series(1, 2) j WHERE t <> 2;
INSERT INTO tenants_apart SELECT * FROM tenants;
INSERT INTO plain_events SELECT * FROM events;
INSERT INTO plain_tenants SELECT * FROM tenants;
INSERT INTO plain_notes SELECT * FROM notes;
INSERT INTO plain_tenants_apart SELECT * FROM tenants_apart;
-- Rows per shard: one of node 3's shards is empty.
SELECT s.shard_name, s.nodeid, (SELECT count(*) FROM plain_events e WHERE fdwshard_hash(e.tenant_id) BETWEEN s.min_hash AND s.max_hash) AS rows
FROM fdwshard.shards s WHERE s.table_name = 'events'::regclass ORDER BY s.shardid;

-- plain(q): q over the plain copies; same(q), same_ordered(q): q gives the same rows as plain(q).
CREATE FUNCTION plain(q text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(q, '\m(events|tenants|notes|tenants_apart|empty_events)\M', 'plain_\1', 'g') $$;
CREATE FUNCTION same(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows(q, plain(q)) $$;
CREATE FUNCTION same_ordered(q text) RETURNS bool LANGUAGE sql AS $$ SELECT same_rows_ordered(q, plain(q)) $$;
-- per_shard(q): what each shard runs when q goes to the shards ("Per Shard" in EXPLAIN), else 'ordinary'.
CREATE FUNCTION per_shard(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line LIKE '%Per Shard: %' THEN RETURN substring(line FROM 'Per Shard: (.*)$'); END IF;
    END LOOP;
    RETURN 'ordinary';
END $$;

-- ORDER BY ... LIMIT over one table: each shard sends its first limit + offset rows. Orders are
-- total (tenant_id, id is unique) or the rows compared as multisets: ties may come from any shard.
SELECT * FROM events WHERE kind = 'k1' ORDER BY amount DESC, tenant_id, id LIMIT 10;
SELECT * FROM plain_events WHERE kind = 'k1' ORDER BY amount DESC, tenant_id, id LIMIT 10;
SELECT q, per_shard(q), same_ordered(q) FROM (VALUES
    ('SELECT * FROM events WHERE kind = ''k1'' ORDER BY amount DESC, tenant_id, id LIMIT 10'),
    ('SELECT * FROM events ORDER BY amount NULLS FIRST, tenant_id, id LIMIT 7 OFFSET 3'),
    ('SELECT * FROM events ORDER BY amount DESC NULLS LAST, tenant_id DESC, id LIMIT 5'),
    ('SELECT tenant_id, id, at FROM events ORDER BY at DESC, tenant_id, id LIMIT 6 OFFSET 2'),
    ('SELECT tenant_id, id, ratio * 2 AS twice FROM events WHERE qty IN (1, 2) ORDER BY ratio * 2 DESC, id LIMIT 4'),
    ('SELECT id, kind FROM events ORDER BY amount, tenant_id, id LIMIT 5'),
    ('SELECT tenant_id, id, kind FROM events ORDER BY kind COLLATE "C" NULLS FIRST, tenant_id, id LIMIT 8'),
    ('SELECT tenant_id, id FROM events WHERE tenant_id IN (1, 2, 7) ORDER BY id DESC, tenant_id LIMIT 3'),
    ('SELECT tenant_id, id FROM events WHERE at < now() AND amount > 10 ORDER BY id, tenant_id LIMIT 4'),
    ('SELECT * FROM events ORDER BY qty, tenant_id, id LIMIT 5 OFFSET 1000'),
    ('SELECT * FROM events ORDER BY tenant_id, id LIMIT 0'),
    ('SELECT * FROM events ORDER BY tenant_id, id FETCH FIRST 4 ROWS ONLY'),
    ('SELECT * FROM empty_events ORDER BY tenant_id, id LIMIT 3')) v(q);
-- WITH TIES: each shard sends its ties too; LIMIT without ORDER BY: any rows, as many.
SELECT q, per_shard(q), same(q) FROM (VALUES
    ('SELECT tenant_id, qty FROM events ORDER BY qty FETCH FIRST 3 ROWS WITH TIES'),
    ('SELECT tenant_id, qty, amount FROM events WHERE qty > 0 ORDER BY amount DESC NULLS LAST OFFSET 2 ROWS FETCH FIRST 2 ROWS WITH TIES')) v(q);
SELECT per_shard('SELECT * FROM events LIMIT 5'), cardinality(query_rows('SELECT * FROM events LIMIT 5')),
       cardinality(query_rows('SELECT * FROM events WHERE qty = 1 LIMIT 1000')) =
       (SELECT count(*) FROM plain_events WHERE qty = 1) AS all_rows;

-- Not taken, same answers: keys whose order follows a collation (a worker's locale may differ),
-- no limit the shards can apply (none, LIMIT ALL or NULL, OFFSET alone, a volatile limit, a
-- sum out of range), and what the ordinary plan must keep: subqueries, CTEs, window functions,
-- DISTINCT, set operations, volatile functions.
SELECT q, per_shard(q), same_ordered(q) FROM (VALUES
    ('SELECT tenant_id, id, kind FROM events ORDER BY kind, tenant_id, id LIMIT 8'),
    ('SELECT tenant_id, id, kind FROM events ORDER BY lower(kind) DESC, tenant_id, id LIMIT 8'),
    ('SELECT * FROM events ORDER BY tenant_id, id'),
    ('SELECT * FROM events ORDER BY tenant_id, id LIMIT ALL'),
    ('SELECT * FROM events ORDER BY tenant_id, id LIMIT NULL OFFSET 3'),
    ('SELECT * FROM events ORDER BY tenant_id, id OFFSET 250'),
    ('SELECT tenant_id, id FROM events ORDER BY tenant_id, id LIMIT 9223372036854775807 OFFSET 2'),
    ('SELECT * FROM events WHERE id IN (SELECT id FROM events WHERE qty = 3) ORDER BY tenant_id, id LIMIT 5'),
    ('WITH e AS (SELECT * FROM events WHERE qty = 1) SELECT * FROM e ORDER BY tenant_id, id LIMIT 5'),
    ('SELECT tenant_id, id, rank() OVER (PARTITION BY tenant_id ORDER BY amount) FROM events ORDER BY tenant_id, id LIMIT 5'),
    ('SELECT DISTINCT qty FROM events ORDER BY qty LIMIT 3'),
    ('SELECT tenant_id, id FROM events WHERE qty = 1 UNION ALL SELECT tenant_id, id FROM events WHERE qty = 2 ORDER BY 1, 2 LIMIT 5'),
    ('SELECT tenant_id, id FROM events WHERE random() < 2 ORDER BY tenant_id, id LIMIT 5')) v(q);
SELECT per_shard('SELECT tenant_id, id FROM events ORDER BY tenant_id, id LIMIT (random() * 0 + 2)::int');
SELECT per_shard('SELECT * FROM events ORDER BY tenant_id, id LIMIT 2 FOR UPDATE');
SELECT cardinality(query_rows('SELECT tenant_id, id, random() FROM events ORDER BY tenant_id, id LIMIT 3')),
       per_shard('SELECT tenant_id, id, random() FROM events ORDER BY tenant_id, id LIMIT 3');

-- Co-located joins: the join runs on each shard index, with or without ORDER BY and LIMIT.
SELECT e.*, t.name FROM events e JOIN tenants t ON e.tenant_id = t.tenant_id WHERE e.qty = 2 ORDER BY e.amount DESC NULLS LAST, e.tenant_id, e.id LIMIT 5;
SELECT e.*, t.name FROM plain_events e JOIN plain_tenants t ON e.tenant_id = t.tenant_id WHERE e.qty = 2 ORDER BY e.amount DESC NULLS LAST, e.tenant_id, e.id LIMIT 5;
SELECT q, per_shard(q), same(q) FROM (VALUES
    ('SELECT e.*, t.name FROM events e JOIN tenants t ON e.tenant_id = t.tenant_id WHERE e.kind = ''k1'''),
    ('SELECT e.id, t.* FROM events e, tenants t WHERE e.tenant_id = t.tenant_id AND t.plan = ''pro'''),
    ('SELECT tenant_id, id, name, plan FROM events JOIN tenants USING (tenant_id) WHERE amount > 20'),
    ('SELECT e.tenant_id, e.id, t.name, n.note FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id JOIN notes n ON n.tenant_id = t.tenant_id WHERE e.id < 3'),
    ('SELECT e.tenant_id, e.id FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.tenant_id IN (1, 2, 7)'),
    ('SELECT a.tenant_id, a.id, b.kind FROM events a JOIN events b ON b.tenant_id = a.tenant_id AND b.id = a.id + 1 WHERE a.qty = 0'),
    ('SELECT * FROM empty_events e JOIN empty_events f ON f.tenant_id = e.tenant_id')) v(q);
SELECT q, per_shard(q), same_ordered(q) FROM (VALUES
    ('SELECT e.*, t.name FROM events e JOIN tenants t ON e.tenant_id = t.tenant_id WHERE e.qty = 2 ORDER BY e.amount DESC NULLS LAST, e.tenant_id, e.id LIMIT 5'),
    ('SELECT e.tenant_id, e.id, n.note FROM events e JOIN notes n ON n.tenant_id = e.tenant_id ORDER BY e.at NULLS FIRST, e.tenant_id, e.id, n.note COLLATE "C" LIMIT 6 OFFSET 4'),
    ('SELECT e.tenant_id, e.id, t.name FROM events e JOIN tenants t ON e.tenant_id = t.tenant_id ORDER BY t.name DESC, e.id LIMIT 4'),
    ('SELECT e.tenant_id, e.id, t.plan FROM events e JOIN tenants t ON e.tenant_id = t.tenant_id ORDER BY t.plan NULLS FIRST, e.tenant_id, e.id')) v(q);
-- Other joins keep the ordinary plan.
SELECT q, per_shard(q), same(q) FROM (VALUES
    ('SELECT e.tenant_id, e.id, t.name FROM events e LEFT JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.id = 1'),
    ('SELECT e.tenant_id, e.id, t.name FROM events e RIGHT JOIN tenants t ON t.tenant_id = e.tenant_id WHERE t.tenant_id > 5'),
    ('SELECT e.tenant_id, e.id, t.name FROM events e JOIN tenants_apart t ON t.tenant_id = e.tenant_id WHERE e.id = 1'),
    ('SELECT * FROM empty_events e JOIN events f ON f.tenant_id = e.tenant_id'),
    ('SELECT e.tenant_id, e.id, t.name FROM events e JOIN tenants t ON t.tenant_id = e.qty WHERE e.id = 1'),
    ('SELECT e.tenant_id, e.id, p.price FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id JOIN plans p ON p.plan = t.plan WHERE e.id = 1')) v(q);

-- Prepared statements, generic plans: LIMIT and OFFSET as parameters (limit + offset per shard
-- at each execution; NULL is no limit; negative ones fail as on a plain table).
SET plan_cache_mode = force_generic_plan;
PREPARE top(int, bigint, bigint) AS SELECT * FROM events WHERE qty = $1 ORDER BY amount DESC NULLS LAST, tenant_id, id LIMIT $2 OFFSET $3;
PREPARE plain_top(int, bigint, bigint) AS SELECT * FROM plain_events WHERE qty = $1 ORDER BY amount DESC NULLS LAST, tenant_id, id LIMIT $2 OFFSET $3;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE top(1, 3, 2);
EXECUTE top(1, 3, 2);
EXECUTE plain_top(1, 3, 2);
-- Each shard with rows sends limit + offset = 3 rows: 6, 6 and 3 received.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE top(1, 2, 1);
-- The same in PL/pgSQL (its variables are parameters, generic plans too), over more values.
CREATE FUNCTION top_rows(distributed bool, q int, l bigint, o bigint) RETURNS TABLE (t int, i int, a numeric) LANGUAGE plpgsql AS $$
BEGIN
    IF distributed THEN
        RETURN QUERY SELECT tenant_id, id, amount FROM events WHERE qty = q ORDER BY amount DESC NULLS LAST, tenant_id, id LIMIT l OFFSET o;
    ELSE
        RETURN QUERY SELECT tenant_id, id, amount FROM plain_events WHERE qty = q ORDER BY amount DESC NULLS LAST, tenant_id, id LIMIT l OFFSET o;
    END IF;
END $$;
SELECT q, l, o, array(SELECT r::text FROM top_rows(true, q, l, o) r) = array(SELECT r::text FROM top_rows(false, q, l, o) r) AS same,
       (SELECT count(*) FROM top_rows(true, q, l, o)) AS rows
FROM (VALUES (0, 5, NULL), (2, NULL, 3), (3, NULL, NULL), (1, 9223372036854775807, 60), (2, 0, 1), (1, 2, 9223372036854775807),
             (1, 4, 0), (2, 3, 10)) v(q, l, o);
EXECUTE top(1, -1, 0);
EXECUTE plain_top(1, -1, 0);
EXECUTE top(1, 1, -1);
EXECUTE plain_top(1, 1, -1);
PREPARE top_join(int) AS SELECT e.tenant_id, e.id, t.name FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id ORDER BY e.ratio DESC, e.id LIMIT $1;
PREPARE plain_top_join(int) AS SELECT e.tenant_id, e.id, t.name FROM plain_events e JOIN plain_tenants t ON t.tenant_id = e.tenant_id ORDER BY e.ratio DESC, e.id LIMIT $1;
EXPLAIN (COSTS OFF) EXECUTE top_join(3);
EXECUTE top_join(3);
EXECUTE plain_top_join(3);
RESET plan_cache_mode;
DEALLOCATE ALL;

-- EXPLAIN: what the shards run and what the coordinator does; VERBOSE: each foreign shard's SQL.
EXPLAIN (COSTS OFF) SELECT * FROM events WHERE kind = 'k1' ORDER BY amount DESC, tenant_id, id LIMIT 10;
EXPLAIN (VERBOSE, COSTS OFF) SELECT tenant_id, id FROM events WHERE kind = 'k1' ORDER BY amount DESC, tenant_id, id LIMIT 10 OFFSET 5;
EXPLAIN (VERBOSE, COSTS OFF) SELECT e.id, t.name FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.qty = 1 ORDER BY t.name, e.id LIMIT 3;
-- ANALYZE: at most limit + offset rows from each shard: 2 + 1 from each of the 5 shards with
-- rows (node 1's two shards, 6 rows; node 2's, 6; node 3's one, 3), 15 in all of 240.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT tenant_id, id FROM events ORDER BY ratio DESC, id LIMIT 2 OFFSET 1;
SELECT count(*) FROM events;

-- DEBUG1 says when a SELECT runs on the shards.
SET client_min_messages = debug1;
SELECT tenant_id, id FROM events ORDER BY ratio, id LIMIT 2;
SELECT e.id, t.name FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id WHERE e.id = 30 AND e.qty = 2 ORDER BY 1, 2;
RESET client_min_messages;

-- A transaction sees its own writes; a cursor reads the rows in order.
BEGIN;
INSERT INTO events VALUES (1, 1000, 'new', 99999, 1, NULL, 99999), (7, 1000, 'new', 99998, 1, NULL, 99998);
SELECT tenant_id, id, amount FROM events ORDER BY amount DESC NULLS LAST, id LIMIT 3;
DECLARE top_cursor CURSOR FOR SELECT tenant_id, id FROM events ORDER BY ratio DESC, id LIMIT 4;
FETCH 2 FROM top_cursor;
FETCH 3 FROM top_cursor;
ROLLBACK;
SELECT tenant_id, id, amount FROM events ORDER BY amount DESC NULLS LAST, id LIMIT 1;

-- Permissions are checked on every table, columns included.
CREATE ROLE multi_shard_select_reader;
SELECT fdwshard.run_command_on_node(n, 'CREATE ROLE multi_shard_select_reader') FROM unnest(ARRAY[2, 3]) n;
CREATE USER MAPPING FOR multi_shard_select_reader SERVER fdwshard_node_2 OPTIONS (user 'postgres', password_required 'false');
CREATE USER MAPPING FOR multi_shard_select_reader SERVER fdwshard_node_3 OPTIONS (user 'postgres', password_required 'false');
GRANT USAGE ON SCHEMA multi_shard_select TO multi_shard_select_reader;
GRANT SELECT (tenant_id, id, ratio) ON events TO multi_shard_select_reader;
GRANT SELECT (tenant_id) ON tenants TO multi_shard_select_reader;
SET ROLE multi_shard_select_reader;
SELECT tenant_id, id FROM events ORDER BY ratio DESC, id LIMIT 2;
SELECT tenant_id, id, amount FROM events ORDER BY ratio DESC, id LIMIT 2;
SELECT e.id FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id ORDER BY e.ratio DESC, e.id LIMIT 2;
SELECT e.id, t.name FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id ORDER BY e.ratio DESC, e.id LIMIT 2;
-- Without password_required 'false' a role that is not superuser may not log in without a
-- password, as with postgres_fdw: the read's new connections to node 3 are refused (those to
-- node 2, made at the same time, are closed); allowed again, the read runs. (Terse: the
-- context names the node by its port, which changes from run to run.)
RESET ROLE;
ALTER USER MAPPING FOR multi_shard_select_reader SERVER fdwshard_node_3 OPTIONS (DROP password_required);
SET ROLE multi_shard_select_reader;
\set VERBOSITY terse
SELECT tenant_id, id FROM events ORDER BY ratio DESC, id LIMIT 2;
\set VERBOSITY default
RESET ROLE;
ALTER USER MAPPING FOR multi_shard_select_reader SERVER fdwshard_node_3 OPTIONS (ADD password_required 'false');
SET ROLE multi_shard_select_reader;
SELECT tenant_id, id FROM events ORDER BY ratio DESC, id LIMIT 2;
RESET ROLE;
DROP USER MAPPING FOR multi_shard_select_reader SERVER fdwshard_node_2;
DROP USER MAPPING FOR multi_shard_select_reader SERVER fdwshard_node_3;
DROP OWNED BY multi_shard_select_reader;
DROP ROLE multi_shard_select_reader;
SELECT fdwshard.run_command_on_node(n, 'DROP OWNED BY multi_shard_select_reader; DROP ROLE multi_shard_select_reader')
FROM unnest(ARRAY[2, 3]) n;

DROP SCHEMA multi_shard_select CASCADE;
