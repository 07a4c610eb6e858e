-- Router fast path: statements pinned to one shard are planned against that shard alone, and
-- shipped whole to the worker when the shard is remote. Results must match a plain table.
CREATE SCHEMA router;
SET search_path = router, public;
SET fdwshard.next_shard_id = 400;

CREATE TABLE orders (tenant_id int NOT NULL, id int NOT NULL, status text, amount numeric(10,2),
                     created_at timestamptz, PRIMARY KEY (tenant_id, id));
CREATE TABLE items (tenant_id int NOT NULL, order_id int NOT NULL, sku text NOT NULL, qty int,
                    PRIMARY KEY (tenant_id, order_id, sku));
SELECT create_distributed_table('orders', 'tenant_id', shard_count := 6);
SELECT create_distributed_table('items', 'tenant_id', shard_count := 6, colocate_with := 'orders');
CREATE TABLE plain_orders (LIKE orders INCLUDING ALL);
CREATE TABLE plain_items (LIKE items INCLUDING ALL);

-- Tenants 3 and 4 live on the coordinator, 1 and 2 on worker 1 (node 2), 7 on worker 2 (node 3).
SELECT t AS tenant, s.shard_name, s.nodeid
FROM generate_series(1, 8) t JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('orders', t)
ORDER BY t;

INSERT INTO orders SELECT t, i, CASE WHEN i % 3 = 0 THEN 'open' ELSE 'paid' END, i * 1.5,
                          timestamptz '2024-03-01 22:30:00+00' + i * interval '1 hour'
FROM generate_series(1, 8) t, generate_series(1, 30) i;
INSERT INTO items SELECT tenant_id, id, 'sku-' || k, k FROM orders, generate_series(1, 2) k;
INSERT INTO plain_orders SELECT * FROM orders;
INSERT INTO plain_items SELECT * FROM items;

-- same(q): q on the distributed tables and on the plain ones give the same rows (as multisets).
CREATE FUNCTION same(q text) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE
    p text := replace(replace(q, 'orders', 'plain_orders'), 'items', 'plain_items');
    differ bigint;
BEGIN
    EXECUTE format('SELECT (SELECT count(*) FROM ((%1$s) EXCEPT ALL (%2$s)) a) + '
                   '(SELECT count(*) FROM ((%2$s) EXCEPT ALL (%1$s)) b)', q, p) INTO differ;
    RETURN differ = 0;
END $$;

-- Shapes that are routed, on a local (3) and a remote (1) tenant.
SELECT t, same(format('SELECT * FROM orders WHERE tenant_id = %s', t)) AS point,
       same(format('SELECT status, count(*), sum(amount), avg(amount) FROM orders WHERE tenant_id = %s GROUP BY status', t)) AS aggregate,
       same(format('SELECT id, amount FROM orders WHERE tenant_id = %s ORDER BY amount DESC, id LIMIT 3', t)) AS top_n,
       same(format('SELECT o.id, i.sku, i.qty FROM orders o JOIN items i ON i.tenant_id = o.tenant_id AND i.order_id = o.id WHERE o.tenant_id = %s', t)) AS join,
       same(format('SELECT o.id, (SELECT sum(qty) FROM items i WHERE i.tenant_id = o.tenant_id AND i.tenant_id = %s AND i.order_id = o.id) FROM orders o WHERE o.tenant_id = %s', t, t)) AS subquery,
       same(format('WITH big AS (SELECT * FROM orders WHERE tenant_id = %s AND amount > 20) SELECT count(*) FROM big', t)) AS cte
FROM unnest(ARRAY[3, 1]) t;

-- EXPLAIN names the shard and the node; VERBOSE shows the SQL sent to the worker.
EXPLAIN (COSTS OFF) SELECT * FROM orders WHERE tenant_id = 3;
EXPLAIN (COSTS OFF) SELECT * FROM orders WHERE tenant_id = 1;
EXPLAIN (COSTS OFF, VERBOSE) SELECT status, count(*) FROM orders WHERE tenant_id = 1 GROUP BY status ORDER BY status;
EXPLAIN (COSTS OFF, VERBOSE)
SELECT o.id, sum(i.qty) FROM orders o JOIN items i ON i.tenant_id = o.tenant_id AND i.order_id = o.id
WHERE o.tenant_id = 7 GROUP BY o.id ORDER BY o.id LIMIT 2;
EXPLAIN (COSTS OFF, VERBOSE) SELECT * FROM orders WHERE tenant_id = 2 AND id = 5 FOR UPDATE;
SELECT o.id, sum(i.qty) FROM orders o JOIN items i ON i.tenant_id = o.tenant_id AND i.order_id = o.id
WHERE o.tenant_id = 7 GROUP BY o.id ORDER BY o.id LIMIT 2;

-- The routing decision is logged at DEBUG1.
SET client_min_messages = debug1;
SELECT count(*) FROM orders WHERE tenant_id = 2;
SELECT count(*) FROM orders o JOIN items i USING (tenant_id) WHERE tenant_id = 3 AND o.id = 1 AND i.order_id = 1;
RESET client_min_messages;

-- Not routed: several tenants, no equality, tables pinned to different shards.
EXPLAIN (COSTS OFF) SELECT count(*) FROM orders WHERE tenant_id IN (1, 3);
SELECT same('SELECT count(*) FROM orders o JOIN items i ON i.tenant_id = 1 WHERE o.tenant_id = 3');

-- Session settings and coordinator-only functions are never evaluated on a worker.
SET TimeZone = 'Asia/Tokyo';
SELECT same($$SELECT date_trunc('day', created_at), count(*) FROM orders WHERE tenant_id = 1 GROUP BY 1$$) AS date_trunc,
       same($$SELECT id, created_at::text FROM orders WHERE tenant_id = 1$$) AS to_text,
       same($$SELECT id FROM orders WHERE tenant_id = 1 AND created_at < '2024-03-02'$$) AS literal;
EXPLAIN (COSTS OFF) SELECT date_trunc('day', created_at) FROM orders WHERE tenant_id = 1;
-- Expressions without columns (now(), a timestamptz literal) are computed here and sent as parameters.
EXPLAIN (COSTS OFF, VERBOSE) SELECT id FROM orders WHERE tenant_id = 1 AND created_at < now() - interval '1 day' AND id < 3;
SELECT id FROM orders WHERE tenant_id = 1 AND created_at < now() - interval '1 day' AND id < 3 ORDER BY id;
RESET TimeZone;
CREATE FUNCTION coordinator_only(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
SELECT same('SELECT id, coordinator_only(amount) FROM orders WHERE tenant_id = 1');
EXPLAIN (COSTS OFF) SELECT id, coordinator_only(amount) FROM orders WHERE tenant_id = 1;

-- Prepared statements: custom plans route at plan time, the generic plan at executor start.
PREPARE by_tenant(int) AS SELECT count(*), sum(amount) FROM orders WHERE tenant_id = $1;
SET plan_cache_mode = force_custom_plan;
EXECUTE by_tenant(1);
EXECUTE by_tenant(3);
SET plan_cache_mode = force_generic_plan;
EXECUTE by_tenant(1);
EXECUTE by_tenant(3);
EXECUTE by_tenant(NULL);
EXPLAIN (COSTS OFF) EXECUTE by_tenant(1);
EXPLAIN (COSTS OFF) EXECUTE by_tenant(3);
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE by_tenant(7);
RESET plan_cache_mode;
-- In the default mode the generic plan takes over after five executions.
PREPARE point(int, int) AS SELECT status, amount FROM orders WHERE tenant_id = $1 AND id = $2;
EXECUTE point(1, 1);
EXECUTE point(3, 2);
EXECUTE point(7, 3);
EXECUTE point(1, 4);
EXECUTE point(3, 5);
EXECUTE point(7, 6);
EXECUTE point(1, 7);
EXECUTE point(3, 8);
EXPLAIN (COSTS OFF) EXECUTE point(7, 9);
SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'point';

-- PL/pgSQL keeps plans too: run every tenant ten times (custom plans, then the generic one).
CREATE FUNCTION totals(t int, plain bool) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE total numeric;
BEGIN
    IF plain THEN
        SELECT sum(amount) INTO total FROM router.plain_orders WHERE tenant_id = t;
    ELSE
        SELECT sum(amount) INTO total FROM router.orders WHERE tenant_id = t;
    END IF;
    RETURN total;
END $$;
SELECT count(*) AS runs, count(*) FILTER (WHERE totals(t, false) IS NOT DISTINCT FROM totals(t, true)) AS equal
FROM generate_series(1, 10) run, generate_series(0, 9) t;

-- Writes: single-row INSERT, UPDATE and DELETE with RETURNING, local and remote.
INSERT INTO orders VALUES (3, 100, 'new', 1.25, '2024-01-01') RETURNING tenant_id, id, status;
INSERT INTO orders VALUES (1, 100, 'new', 2.50, '2024-01-01') RETURNING tenant_id, id, status;
EXPLAIN (COSTS OFF, VERBOSE) INSERT INTO orders VALUES (1, 101, 'new', 2.50, '2024-01-01');
UPDATE orders SET amount = amount + 1 WHERE tenant_id = 1 AND id = 100 RETURNING id, amount;
UPDATE orders SET status = 'paid' WHERE tenant_id = 3 AND id IN (99, 100) RETURNING id, status;
EXPLAIN (COSTS OFF, VERBOSE) UPDATE orders SET amount = amount + 1 WHERE tenant_id = 4 AND status = 'open';
-- tableoid is the coordinator's shard relation, as on a partitioned table, also when the statement
-- runs on a worker (shipped, tableoid would be the worker's table).
SELECT tableoid AS oid7 FROM orders WHERE tenant_id = 7 LIMIT 1 \gset
SELECT tableoid AS oid1 FROM orders WHERE tenant_id = 1 LIMIT 1 \gset
SELECT s.tenant, o::regclass = format('router.%I', s.shard_name)::regclass AS coordinator_shard
FROM (VALUES (7, :oid7), (1, :oid1)) v(tenant, o)
CROSS JOIN LATERAL (SELECT v.tenant, shard_name FROM fdwshard.shards
                    WHERE shardid = get_shard_id_for_distribution_column('orders', v.tenant)) s ORDER BY 1;
EXPLAIN (COSTS OFF, VERBOSE) UPDATE orders SET amount = amount + 1 WHERE tenant_id = 7 AND status = 'open' RETURNING id;
DELETE FROM orders WHERE tenant_id = 1 AND id = 100 RETURNING id;
DELETE FROM orders WHERE tenant_id = 3 AND id = 100 RETURNING id;
SELECT count(*) FROM orders WHERE id = 100;

-- ON CONFLICT on the shard's primary key, both ways, local and remote.
INSERT INTO orders VALUES (1, 1, 'dup', 0, NULL) ON CONFLICT DO NOTHING RETURNING id;
INSERT INTO orders VALUES (3, 1, 'dup', 0, NULL) ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id;
INSERT INTO orders VALUES (1, 1, 'dup', 0, NULL)
ON CONFLICT (tenant_id, id) DO UPDATE SET status = orders.status || '+' || excluded.status RETURNING id, status;
INSERT INTO orders VALUES (3, 1, 'dup', 0, NULL)
ON CONFLICT (tenant_id, id) DO UPDATE SET status = orders.status || '+' || excluded.status RETURNING id, status;
EXPLAIN (COSTS OFF, VERBOSE) INSERT INTO orders VALUES (7, 1, 'dup', 0, NULL)
ON CONFLICT (tenant_id, id) DO UPDATE SET status = excluded.status;
UPDATE orders SET status = 'paid' WHERE tenant_id IN (1, 3) AND id = 1;

-- Prepared writes through the generic plan, on both kinds of shard.
PREPARE upsert(int, int, text) AS INSERT INTO orders (tenant_id, id, status) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id, id) DO UPDATE SET status = excluded.status RETURNING tenant_id, id, status;
SET plan_cache_mode = force_generic_plan;
EXECUTE upsert(1, 200, 'a');
EXECUTE upsert(1, 200, 'b');
EXECUTE upsert(3, 200, 'c');
EXECUTE upsert(4, 200, 'd');
RESET plan_cache_mode;
SELECT tenant_id, id, status FROM orders WHERE id = 200 ORDER BY tenant_id;
DELETE FROM orders WHERE id = 200;

-- Defaults and volatile functions in INSERT ... VALUES are evaluated once, on the coordinator.
CREATE SEQUENCE ticket_seq;
CREATE TABLE tickets (tenant_id int NOT NULL, id bigint DEFAULT nextval('router.ticket_seq'), note text);
SELECT create_distributed_table('tickets', 'tenant_id', shard_count := 6, colocate_with := 'orders');
INSERT INTO tickets (tenant_id, note) VALUES (1, 'remote') RETURNING *;
INSERT INTO tickets (tenant_id, note) VALUES (3, 'local') RETURNING *;
INSERT INTO tickets VALUES (4, nextval('router.ticket_seq'), 'explicit') RETURNING *;
EXPLAIN (COSTS OFF, VERBOSE) INSERT INTO tickets (tenant_id, note) VALUES (1, 'x');

-- Updating the distribution column: the shard updates the row in place, then the coordinator moves it.
EXPLAIN (COSTS OFF) UPDATE tickets SET tenant_id = 3 WHERE tenant_id = 1;
UPDATE tickets SET tenant_id = 3 WHERE tenant_id = 1;
SELECT tenant_id, note, tableoid::regclass FROM tickets ORDER BY id;

-- Transactions: a transaction sees its own writes whichever path made them; savepoints roll back
-- shipped statements; errors from the worker keep their SQLSTATE.
BEGIN;
INSERT INTO orders VALUES (2, 300, 'tx', 1, NULL);
SELECT count(*) FROM orders WHERE id = 300;
SELECT status FROM orders WHERE tenant_id = 2 AND id = 300;
SAVEPOINT s1;
UPDATE orders SET status = 'rolled back' WHERE tenant_id = 2 AND id = 300;
ROLLBACK TO s1;
SELECT status FROM orders WHERE tenant_id = 2 AND id = 300;
SAVEPOINT s2;
INSERT INTO orders VALUES (2, 300, 'duplicate', 1, NULL);
ROLLBACK TO s2;
SELECT try('INSERT INTO router.orders VALUES (2, 300, ''duplicate'', 1, NULL)');
SELECT try('INSERT INTO router.orders VALUES (3, 1, ''duplicate'', 1, NULL)');
COMMIT;
SELECT status FROM orders WHERE tenant_id = 2 AND id = 300;
BEGIN;
DELETE FROM orders WHERE tenant_id = 2 AND id = 300;
ROLLBACK;
SELECT count(*) FROM orders WHERE tenant_id = 2 AND id = 300;
-- A statement alone runs on the worker as its own transaction; anything that can still fail
-- after it (a DO block, several statements in one query string) keeps the remote transaction.
DO $$ BEGIN INSERT INTO router.orders VALUES (2, 400, 'do', 1, NULL); RAISE EXCEPTION 'boom'; END $$;
INSERT INTO orders VALUES (2, 401, 'multi', 1, NULL) \; SELECT 1 / 0;
SELECT count(*) FROM orders WHERE tenant_id = 2 AND id IN (400, 401);
-- A statement timeout cancels the shipped statement on the worker too. (Terse: the error's
-- context names the node by its port, which changes from run to run.)
SET statement_timeout = '300ms';
\set VERBOSITY terse
SELECT count(*) FROM orders o, generate_series(1, 100000000) g WHERE o.tenant_id = 1;
\set VERBOSITY default
RESET statement_timeout;
SELECT pg_sleep(0.2);
SELECT fdwshard.run_command_on_node(2, $$SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%generate_series(1, 100000000)%' AND pid <> pg_backend_pid()$$) AS still_running;
-- A worker error inside a shipped statement (division by zero on the worker).
SELECT try('SELECT id / (id - 5) FROM router.orders WHERE tenant_id = 1');

-- Permissions are checked on the distributed table, not on the shards. (GRANT reaches the
-- workers' shards too, so the role must exist there.)
CREATE ROLE router_reader;
SELECT fdwshard.run_command_on_node(n, 'CREATE ROLE router_reader') FROM unnest(ARRAY[2, 3]) n;
GRANT USAGE ON SCHEMA router TO router_reader;
SET ROLE router_reader;
SELECT try('SELECT count(*) FROM router.orders WHERE tenant_id = 3');
RESET ROLE;
GRANT SELECT ON orders TO router_reader;
SET ROLE router_reader;
SELECT count(*) FROM orders WHERE tenant_id = 3;
SELECT try('UPDATE router.orders SET status = ''x'' WHERE tenant_id = 3');
RESET ROLE;
REVOKE ALL ON orders FROM router_reader;
REVOKE ALL ON SCHEMA router FROM router_reader;
DROP ROLE router_reader;
SELECT fdwshard.run_command_on_node(n, 'DROP ROLE router_reader') FROM unnest(ARRAY[2, 3]) n;

-- Final check: every shape above left the same data as the plain table, modulo the rows changed here.
SELECT same('SELECT tenant_id, id FROM orders'), same('SELECT * FROM items');

DROP SCHEMA router CASCADE;
