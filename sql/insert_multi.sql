-- Multi-row INSERT, INSERT ... SELECT and upserts into distributed tables (shards on all three nodes), each
-- against the same statements on a plain table.
CREATE SCHEMA insert_multi;
SET search_path = insert_multi, public;
SET fdwshard.next_shard_id = 10500;
\pset null '(null)'

-- items: a serial column, defaults, a timestamptz; plain_items the same with sequences of its own.
CREATE TABLE items (tenant int, id serial, name text, note text DEFAULT 'none',
                    at timestamptz DEFAULT '2024-01-01 00:00+00', CHECK (name IS DISTINCT FROM 'bad'),
                    PRIMARY KEY (tenant, id));
SELECT create_distributed_table('items', 'tenant', shard_count := 6);
CREATE TABLE plain_items (LIKE items INCLUDING ALL);
CREATE SEQUENCE items_id_seq_plain;
ALTER TABLE plain_items ALTER COLUMN id SET DEFAULT nextval('items_id_seq_plain');
-- Tenants by node: 3 and 4 local (node 1), 1 and 2 on node 2, 7 on node 3.
SELECT t AS tenant, s.nodeid
FROM generate_series(1, 8) t JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('items', t)
ORDER BY t;
-- same(): items and plain_items hold the same rows (as multisets), generated ids included.
CREATE FUNCTION same() RETURNS bool LANGUAGE sql AS $$
    SELECT public.same_rows('SELECT * FROM insert_multi.items', 'SELECT * FROM insert_multi.plain_items') $$;
-- returned(q): the rows statement q returns, as text, so RETURNING can be ordered.
CREATE FUNCTION returned(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    FOR r IN EXECUTE q LOOP RETURN NEXT r::text; END LOOP;
END $$;

-- A single row stays on the router; several rows are computed on the coordinator and go by COPY.
EXPLAIN (COSTS OFF) INSERT INTO items (tenant, name) VALUES (1, 'one');
EXPLAIN (COSTS OFF) INSERT INTO items (tenant, name) VALUES (1, 'one'), (3, 'three');

-- Local and remote shards; quotes, unicode, tabs, NULLs in other columns, DEFAULT in some rows.
INSERT INTO items (tenant, name, note) VALUES
    (1, 'plain', NULL), (2, 'it''s "quoted"', 'back\slash'), (3, E'tab\there\nnewline', DEFAULT),
    (4, 'héllo ✓ 日本', ''), (7, NULL, DEFAULT), (5, DEFAULT, 'x');
INSERT INTO plain_items (tenant, name, note) VALUES
    (1, 'plain', NULL), (2, 'it''s "quoted"', 'back\slash'), (3, E'tab\there\nnewline', DEFAULT),
    (4, 'héllo ✓ 日本', ''), (7, NULL, DEFAULT), (5, DEFAULT, 'x');
SELECT same();
SELECT tenant, id, to_json(name) AS name, note, at FROM items ORDER BY id;
SELECT (SELECT last_value FROM items_id_seq) AS items_id, (SELECT last_value FROM items_id_seq_plain) AS plain_id;
-- Every column given, an explicit id, DEFAULT for the timestamp.
INSERT INTO items VALUES (1, 100, 'a', 'b', DEFAULT), (7, 101, 'c', 'd', '2024-05-06 07:08:09+02');
INSERT INTO plain_items VALUES (1, 100, 'a', 'b', DEFAULT), (7, 101, 'c', 'd', '2024-05-06 07:08:09+02');
SELECT same();

-- INSERT ... SELECT from a plain table: 1000 rows over every shard.
CREATE TABLE src (tenant int, name text);
INSERT INTO src SELECT g % 97, 'row ' || g FROM generate_series(1, 1000) g;
EXPLAIN (COSTS OFF) INSERT INTO items (tenant, name) SELECT tenant, name FROM src ORDER BY name;
INSERT INTO items (tenant, name) SELECT tenant, name FROM src ORDER BY name;
INSERT INTO plain_items (tenant, name) SELECT tenant, name FROM src ORDER BY name;
SELECT same(), (SELECT count(*) FROM items) AS rows;
-- ... and from a distributed table that is not co-located (4 shards): its rows come from every shard.
CREATE TABLE other (tenant int, name text);
SELECT create_distributed_table('other', 'tenant', shard_count := 4);
INSERT INTO other SELECT tenant + 1000, name FROM src;
EXPLAIN (COSTS OFF) INSERT INTO items (tenant, name) SELECT tenant, name FROM other ORDER BY name;
INSERT INTO items (tenant, name) SELECT tenant, name FROM other ORDER BY name;
INSERT INTO plain_items (tenant, name) SELECT tenant, name FROM other ORDER BY name;
SELECT same(), (SELECT count(*) FROM items) AS rows;
EXPLAIN (COSTS OFF) INSERT INTO items (tenant, name) SELECT tenant, name FROM other WHERE tenant = 1001;
INSERT INTO items (tenant, name) SELECT tenant, name FROM other WHERE tenant = 1001 ORDER BY name;
INSERT INTO plain_items (tenant, name) SELECT tenant, name FROM other WHERE tenant = 1001 ORDER BY name;
SELECT same(), (SELECT count(*) FROM items) AS rows;
-- ... pinned to a shard on a worker by a parameter, in custom plans and the generic plan.
SELECT min(o.tenant) AS remote_tenant FROM other o
JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('other', o.tenant) WHERE s.nodeid = 2 \gset
PREPARE sel(int) AS INSERT INTO items (tenant, name) SELECT tenant, name || ' again' FROM other WHERE tenant = $1 ORDER BY name;
PREPARE plain_sel(int) AS
    INSERT INTO plain_items (tenant, name) SELECT tenant, name || ' again' FROM other WHERE tenant = $1 ORDER BY name;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE sel(:remote_tenant);
EXECUTE sel(:remote_tenant);
EXECUTE sel(1001);
EXECUTE sel(1002);
EXECUTE sel(:remote_tenant);
EXECUTE sel(1003);
EXECUTE sel(:remote_tenant);
EXECUTE sel(1007);
EXECUTE plain_sel(:remote_tenant);
EXECUTE plain_sel(1001);
EXECUTE plain_sel(1002);
EXECUTE plain_sel(:remote_tenant);
EXECUTE plain_sel(1003);
EXECUTE plain_sel(:remote_tenant);
EXECUTE plain_sel(1007);
SELECT same(), (SELECT count(*) FROM items) AS rows;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE sel(:remote_tenant);
EXECUTE sel(:remote_tenant);
EXECUTE plain_sel(:remote_tenant);
RESET plan_cache_mode;
SELECT same(), (SELECT count(*) FROM items) AS rows;
DEALLOCATE sel;
DEALLOCATE plain_sel;

-- A NULL distribution value, a CHECK violation in the middle (on a worker, then on the coordinator), a
-- duplicate key: nothing of the statement is left on any node.
\set VERBOSITY terse
INSERT INTO items (tenant, name) VALUES (1, 'a'), (NULL, 'b');
INSERT INTO items (tenant, name) SELECT (ARRAY[1, 2, 3, 4, 7])[1 + g % 5], CASE WHEN g = 1504 THEN 'bad' ELSE 'ok' END
FROM generate_series(1, 3000) g ORDER BY g;
INSERT INTO items (tenant, name) SELECT (ARRAY[1, 2, 3, 4, 7])[1 + g % 5], CASE WHEN g = 1502 THEN 'bad' ELSE 'ok' END
FROM generate_series(1, 3000) g ORDER BY g;
INSERT INTO items (tenant, id, name) SELECT g % 10, 100, 'dup' FROM generate_series(1, 20) g;
\set VERBOSITY default
SELECT same(), (SELECT count(*) FROM items) AS rows;
SELECT count(*) FROM items WHERE name = 'ok';
-- Rolled back: nothing left.
BEGIN;
INSERT INTO items (tenant, name) SELECT g, 'rolled back' FROM generate_series(1, 100) g;
SELECT count(*) FROM items WHERE name = 'rolled back';
ROLLBACK;
SELECT count(*) FROM items WHERE name = 'rolled back';
-- The failed and rolled back statements took values of items' sequence: align the plain one.
SELECT setval('items_id_seq_plain', (SELECT last_value FROM items_id_seq)) > 0 AS aligned;
-- Committed with other writes in the same transaction.
BEGIN;
INSERT INTO items (tenant, name) SELECT g, 'committed' FROM generate_series(1, 20) g ORDER BY g;
UPDATE items SET note = 'updated' WHERE name = 'committed' AND tenant < 5;
INSERT INTO items (tenant, name) VALUES (1, 'committed'), (7, 'committed');
COMMIT;
INSERT INTO plain_items (tenant, name) SELECT g, 'committed' FROM generate_series(1, 20) g ORDER BY g;
UPDATE plain_items SET note = 'updated' WHERE name = 'committed' AND tenant < 5;
INSERT INTO plain_items (tenant, name) VALUES (1, 'committed'), (7, 'committed');
SELECT same();
-- EXPLAIN ANALYZE: the rows each shard was sent, by node.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
INSERT INTO items (tenant, name) VALUES (1, 'e'), (3, 'e'), (7, 'e'), (7, 'e'), (2, 'e');
INSERT INTO plain_items (tenant, name) VALUES (1, 'e'), (3, 'e'), (7, 'e'), (7, 'e'), (2, 'e');
SELECT same();

-- A prepared multi-row insert, executed 7 times (generic plan from the 6th): rows computed at execution.
PREPARE ins(int, text, int, text) AS INSERT INTO items (tenant, name) VALUES ($1, $2), ($3, $4);
PREPARE plain_ins(int, text, int, text) AS INSERT INTO plain_items (tenant, name) VALUES ($1, $2), ($3, $4);
EXECUTE ins(1, 'p1', 3, 'p3');
EXECUTE ins(2, 'p2', 7, 'p7');
EXECUTE ins(4, 'p4', 5, 'p5');
EXECUTE ins(6, 'p6', 8, 'p8');
EXECUTE ins(1, 'q1', 7, 'q7');
EXECUTE ins(3, 'q3', 2, 'q2');
EXECUTE ins(4, NULL, 1, 'r1');
EXECUTE plain_ins(1, 'p1', 3, 'p3');
EXECUTE plain_ins(2, 'p2', 7, 'p7');
EXECUTE plain_ins(4, 'p4', 5, 'p5');
EXECUTE plain_ins(6, 'p6', 8, 'p8');
EXECUTE plain_ins(1, 'q1', 7, 'q7');
EXECUTE plain_ins(3, 'q3', 2, 'q2');
EXECUTE plain_ins(4, NULL, 1, 'r1');
SELECT same();
EXPLAIN (COSTS OFF) EXECUTE ins(1, 'x', 2, 'y');
DEALLOCATE ins;
DEALLOCATE plain_ins;

-- Session settings apply where the values are made: DateStyle SQL, DMY and another TimeZone.
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Europe/Berlin';
INSERT INTO items (tenant, name, at) VALUES (1, 'dmy', '02/03/2024 10:00'), (3, 'dmy', '13/12/2024 23:30'),
                                            (7, 'dmy', now()::date::timestamptz);
INSERT INTO plain_items (tenant, name, at) VALUES (1, 'dmy', '02/03/2024 10:00'), (3, 'dmy', '13/12/2024 23:30'),
                                                  (7, 'dmy', now()::date::timestamptz);
SELECT tenant, at FROM items WHERE name = 'dmy' AND tenant <> 7 ORDER BY tenant;
RESET DateStyle;
RESET TimeZone;
SELECT same();

-- Upserts: kv against plain_kv.
CREATE TABLE kv (k int PRIMARY KEY, v text, n int DEFAULT 0, at timestamptz);
SELECT create_distributed_table('kv', 'k', shard_count := 6);
CREATE TABLE plain_kv (k int PRIMARY KEY, v text, n int DEFAULT 0, at timestamptz);
CREATE FUNCTION same_kv() RETURNS bool LANGUAGE sql AS $$
    SELECT public.same_rows('SELECT * FROM insert_multi.kv', 'SELECT * FROM insert_multi.plain_kv') $$;
INSERT INTO kv (k, v) SELECT g, 'v' || g FROM generate_series(1, 10) g;
INSERT INTO plain_kv (k, v) SELECT g, 'v' || g FROM generate_series(1, 10) g;
-- DO NOTHING: new keys inserted, existing ones left; the count is of the rows inserted.
EXPLAIN (COSTS OFF) INSERT INTO kv (k, v) VALUES (1, 'x'), (11, 'y') ON CONFLICT (k) DO NOTHING;
INSERT INTO kv (k, v) VALUES (1, 'x'), (11, 'y'), (3, 'x'), (13, 'y'), (7, 'x') ON CONFLICT (k) DO NOTHING;
INSERT INTO plain_kv (k, v) VALUES (1, 'x'), (11, 'y'), (3, 'x'), (13, 'y'), (7, 'x') ON CONFLICT (k) DO NOTHING;
INSERT INTO kv (k, v) VALUES (2, 'x'), (12, 'y') ON CONFLICT DO NOTHING;
INSERT INTO plain_kv (k, v) VALUES (2, 'x'), (12, 'y') ON CONFLICT DO NOTHING;
SELECT same_kv();
-- DO UPDATE SET ... = EXCLUDED ..., with the existing row's values.
EXPLAIN (COSTS OFF) INSERT INTO kv AS t (k, v) VALUES (1, 'x'), (21, 'y') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = t.n + 1;
INSERT INTO kv AS t (k, v) VALUES (1, 'u1'), (21, 'u21'), (3, 'u3'), (4, 'u4'), (7, 'u7') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = t.n + 1;
INSERT INTO plain_kv AS t (k, v) VALUES (1, 'u1'), (21, 'u21'), (3, 'u3'), (4, 'u4'), (7, 'u7') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = t.n + 1;
SELECT same_kv();
-- ... with WHERE: only rows whose condition holds are updated.
INSERT INTO kv AS t (k, v) VALUES (1, 'w1'), (2, 'w2'), (3, 'w3'), (4, 'w4'), (30, 'w30')
ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v || t.v, n = t.n + 10 WHERE t.n > 0 OR EXCLUDED.k = 2;
INSERT INTO plain_kv AS t (k, v) VALUES (1, 'w1'), (2, 'w2'), (3, 'w3'), (4, 'w4'), (30, 'w30')
ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v || t.v, n = t.n + 10 WHERE t.n > 0 OR EXCLUDED.k = 2;
SELECT same_kv();
SELECT * FROM kv WHERE k <= 4 OR k = 30 ORDER BY k;
-- ... with a value made on the coordinator (now() of the statement) and RETURNING.
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO kv (k, v) VALUES (1, 'r'), (40, 'r') ON CONFLICT (k) DO UPDATE SET at = now() RETURNING k, v, n, at = now();
SELECT * FROM returned($$INSERT INTO kv (k, v) VALUES (1, 'r'), (40, 'r'), (3, 'r'), (7, 'r')
    ON CONFLICT (k) DO UPDATE SET at = now(), v = EXCLUDED.v RETURNING k, v, n, at = now() AS now$$) ORDER BY 1;
SELECT * FROM returned($$INSERT INTO plain_kv (k, v) VALUES (1, 'r'), (40, 'r'), (3, 'r'), (7, 'r')
    ON CONFLICT (k) DO UPDATE SET at = now(), v = EXCLUDED.v RETURNING k, v, n, at = now() AS now$$) ORDER BY 1;
UPDATE kv SET at = NULL;
UPDATE plain_kv SET at = NULL;
SELECT same_kv();
-- RETURNING without ON CONFLICT, and with DO NOTHING (only the rows inserted).
SELECT * FROM returned($$INSERT INTO kv (k, v) VALUES (50, 'a'), (51, 'b'), (53, 'c') RETURNING *$$) ORDER BY 1;
SELECT * FROM returned($$INSERT INTO kv (k, v) VALUES (50, 'a'), (52, 'b'), (4, 'c') ON CONFLICT (k) DO NOTHING RETURNING k, v$$) ORDER BY 1;
INSERT INTO plain_kv (k, v) VALUES (50, 'a'), (51, 'b'), (53, 'c');
INSERT INTO plain_kv (k, v) VALUES (50, 'a'), (52, 'b'), (4, 'c') ON CONFLICT (k) DO NOTHING;
SELECT same_kv();
-- INSERT ... SELECT ... ON CONFLICT, from a distributed table.
INSERT INTO kv (k, v) SELECT tenant, name FROM other WHERE name LIKE 'row 1%' ORDER BY name
ON CONFLICT (k) DO NOTHING;
INSERT INTO plain_kv (k, v) SELECT tenant, name FROM other WHERE name LIKE 'row 1%' ORDER BY name
ON CONFLICT (k) DO NOTHING;
SELECT same_kv(), (SELECT count(*) FROM kv) AS rows;
-- ... from a source the router sends whole to a worker (its SELECT keeps its FROM).
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO kv (k, v) SELECT tenant, min(name) FROM other WHERE tenant = :remote_tenant
GROUP BY tenant ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO kv (k, v) SELECT tenant, min(name) FROM other WHERE tenant = :remote_tenant GROUP BY tenant
ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO plain_kv (k, v) SELECT tenant, min(name) FROM other WHERE tenant = :remote_tenant GROUP BY tenant
ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
SELECT same_kv(), (SELECT count(*) FROM kv) AS rows;
-- A row affected twice by one command: the error, whether the two rows are neighbours or 5000 rows apart
-- (each shard gets all its rows of the statement at once), on a worker (k = 1) or on the coordinator (k = 3).
\set VERBOSITY terse
INSERT INTO kv (k, v) VALUES (1, 'a'), (1, 'b') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO plain_kv (k, v) VALUES (1, 'a'), (1, 'b') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO kv (k, v) SELECT g, 'g' FROM generate_series(1, 6000) g UNION ALL SELECT 1, 'again'
ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO kv (k, v) SELECT g, 'g' FROM generate_series(1, 6000) g UNION ALL SELECT 3, 'again'
ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO kv (k, v) VALUES (3, 'a'), (4, 'b'), (3, 'c') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
\set VERBOSITY default
SELECT same_kv(), (SELECT count(*) FROM kv) AS rows;
-- DO NOTHING keeps the first of two rows with the same key, in batches as in one statement.
INSERT INTO kv (k, v) SELECT g, 'first' FROM generate_series(1001, 7000) g UNION ALL SELECT 1001, 'second'
ON CONFLICT (k) DO NOTHING;
INSERT INTO plain_kv (k, v) SELECT g, 'first' FROM generate_series(1001, 7000) g UNION ALL SELECT 1001, 'second'
ON CONFLICT (k) DO NOTHING;
SELECT same_kv(), (SELECT count(*) FROM kv) AS rows;
-- 60,000 rows, made and sent in waves of shard statements (existing keys and repeated ones skipped).
INSERT INTO kv (k, v) SELECT g, 'wave' FROM generate_series(1, 60000) g UNION ALL SELECT g, 'again' FROM generate_series(1, 100) g
ON CONFLICT (k) DO NOTHING;
INSERT INTO plain_kv (k, v) SELECT g, 'wave' FROM generate_series(1, 60000) g UNION ALL SELECT g, 'again' FROM generate_series(1, 100) g
ON CONFLICT (k) DO NOTHING;
SELECT same_kv(), (SELECT count(*) FROM kv) AS rows;
-- A source that fdwshard runs on every shard of another table (an aggregate here).
EXPLAIN (COSTS OFF) INSERT INTO kv (k, v) SELECT tenant, min(name) FROM other GROUP BY tenant ON CONFLICT (k) DO NOTHING;
INSERT INTO kv (k, v) SELECT tenant, min(name) FROM other GROUP BY tenant ON CONFLICT (k) DO NOTHING;
INSERT INTO plain_kv (k, v) SELECT tenant, min(name) FROM other GROUP BY tenant ON CONFLICT (k) DO NOTHING;
SELECT same_kv(), (SELECT count(*) FROM kv) AS rows;
-- A WITH of the INSERT, and one inside its SELECT.
WITH w AS (SELECT g FROM generate_series(200001, 200020) g) INSERT INTO kv (k, v) SELECT g, 'with' FROM w;
WITH w AS (SELECT g FROM generate_series(200001, 200020) g) INSERT INTO plain_kv (k, v) SELECT g, 'with' FROM w;
INSERT INTO kv (k, v) WITH w AS (SELECT g FROM generate_series(200011, 200030) g) SELECT g, 'inner' FROM w
ON CONFLICT (k) DO UPDATE SET v = kv.v || EXCLUDED.v;
INSERT INTO plain_kv (k, v) WITH w AS (SELECT g FROM generate_series(200011, 200030) g) SELECT g, 'inner' FROM w
ON CONFLICT (k) DO UPDATE SET v = plain_kv.v || EXCLUDED.v;
SELECT same_kv(), (SELECT count(*) FROM kv WHERE k > 200000) AS rows;
-- A source that is the target itself: every row read before the first is written.
INSERT INTO kv (k, v) SELECT k + 100000, v FROM kv WHERE k % 1000 = 7;
INSERT INTO plain_kv (k, v) SELECT k + 100000, v FROM plain_kv WHERE k % 1000 = 7;
INSERT INTO kv AS t (k, v) SELECT k, v || '+' FROM kv WHERE k % 1000 = 7 ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = t.n + 1;
INSERT INTO plain_kv AS t (k, v) SELECT k, v || '+' FROM plain_kv WHERE k % 1000 = 7 ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = t.n + 1;
SELECT same_kv(), (SELECT count(*) FROM kv) AS rows, (SELECT count(*) FROM kv WHERE v LIKE '%+') AS updated;
-- A NULL distribution value in an upsert; an upsert that would move a row keeps the ordinary plan.
\set VERBOSITY terse
INSERT INTO kv (k, v) VALUES (2, 'x'), (NULL, 'y') ON CONFLICT (k) DO NOTHING;
INSERT INTO kv (k, v) VALUES (2, 'x'), (5, 'y') ON CONFLICT (k) DO UPDATE SET k = EXCLUDED.k + 1;
\set VERBOSITY default
-- A prepared upsert, 7 times.
PREPARE up(int, text, int, text) AS
    INSERT INTO kv AS t (k, v) VALUES ($1, $2), ($3, $4) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v || $2, n = t.n + 1;
PREPARE plain_up(int, text, int, text) AS
    INSERT INTO plain_kv AS t (k, v) VALUES ($1, $2), ($3, $4) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v || $2, n = t.n + 1;
EXECUTE up(1, 'a', 2, 'b');
EXECUTE up(3, 'c', 7, 'd');
EXECUTE up(1, 'e', 90, 'f');
EXECUTE up(91, 'g', 3, 'h');
EXECUTE up(1, 'i', 2, 'j');
EXECUTE up(4, 'k', 7, 'l');
EXECUTE up(92, 'm', 1, 'n');
EXECUTE plain_up(1, 'a', 2, 'b');
EXECUTE plain_up(3, 'c', 7, 'd');
EXECUTE plain_up(1, 'e', 90, 'f');
EXECUTE plain_up(91, 'g', 3, 'h');
EXECUTE plain_up(1, 'i', 2, 'j');
EXECUTE plain_up(4, 'k', 7, 'l');
EXECUTE plain_up(92, 'm', 1, 'n');
SELECT same_kv();
-- An upsert rolled back leaves nothing, a failing one neither.
BEGIN;
INSERT INTO kv (k, v) VALUES (1, 'rb'), (200, 'rb'), (3, 'rb') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
SELECT count(*) FROM kv WHERE v = 'rb';
ROLLBACK;
SELECT same_kv();

-- Permissions as on one server: INSERT on the table, UPDATE for DO UPDATE, SELECT on the source.
CREATE ROLE regress_insert_multi;
SELECT fdwshard.run_command_on_node(2, 'CREATE ROLE regress_insert_multi');
SELECT fdwshard.run_command_on_node(3, 'CREATE ROLE regress_insert_multi');
GRANT USAGE ON SCHEMA insert_multi TO regress_insert_multi;
GRANT SELECT ON kv TO regress_insert_multi;
SET ROLE regress_insert_multi;
INSERT INTO kv (k, v) VALUES (1, 'no'), (2, 'no');
INSERT INTO kv (k, v) VALUES (1, 'no'), (2, 'no') ON CONFLICT (k) DO NOTHING;
RESET ROLE;
GRANT INSERT ON kv TO regress_insert_multi;
SET ROLE regress_insert_multi;
INSERT INTO kv (k, v) VALUES (1, 'no'), (2, 'no') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO kv (k, v) SELECT tenant, name FROM src;
RESET ROLE;
SELECT same_kv();

-- A dropped column: the rows leave it out, on every shard.
CREATE TABLE dropped (a int, x int, b text, UNIQUE (a));
SELECT create_distributed_table('dropped', 'a', shard_count := 6);
ALTER TABLE dropped DROP COLUMN x;
INSERT INTO dropped VALUES (1, 'one'), (3, 'three'), (7, 'seven');
SELECT * FROM returned($$INSERT INTO dropped VALUES (1, 'uno'), (2, 'two') ON CONFLICT (a) DO UPDATE SET b = EXCLUDED.b RETURNING *$$) ORDER BY 1;
SELECT * FROM dropped ORDER BY a;

DROP SCHEMA insert_multi CASCADE;
SELECT fdwshard.run_command_on_node(2, 'DROP ROLE regress_insert_multi');
SELECT fdwshard.run_command_on_node(3, 'DROP ROLE regress_insert_multi');
DROP ROLE regress_insert_multi;
