-- Reads and writes through the coordinator: same results as a plain table, pruned to the shards
-- that can hold the rows, rows moved when their distribution column changes.
CREATE SCHEMA routing;
SET search_path = routing;
SET fdwshard.next_shard_id = 300;

CREATE TABLE events (tenant_id bigint NOT NULL, id int NOT NULL, kind text, payload int,
                     PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('events', 'tenant_id', shard_count := 6);
CREATE TABLE plain (LIKE events INCLUDING ALL);
SELECT shardid, nodeid FROM fdwshard.shards WHERE table_name = 'events'::regclass;

-- Where tenants 1..6 live: a mix of local and remote shards.
SELECT t AS tenant, get_shard_id_for_distribution_column('events', t) AS shardid,
       (SELECT nodeid FROM fdwshard.shards s WHERE s.shardid = get_shard_id_for_distribution_column('events', t)) AS nodeid
FROM generate_series(1, 6) t;

-- INSERT ... RETURNING, multi-row (the shards' rows in any order) and INSERT ... SELECT.
CREATE FUNCTION returned(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    FOR r IN EXECUTE q LOOP RETURN NEXT r::text; END LOOP;
END $$;
SELECT * FROM returned($$INSERT INTO events VALUES (1, 1, 'click', 10), (2, 1, 'view', 20), (3, 1, 'click', 30) RETURNING *$$) ORDER BY 1;
INSERT INTO plain VALUES (1, 1, 'click', 10), (2, 1, 'view', 20), (3, 1, 'click', 30);
INSERT INTO events SELECT g % 40 + 1, g, CASE WHEN g % 3 = 0 THEN 'view' ELSE 'click' END, g FROM generate_series(2, 2000) g;
INSERT INTO plain SELECT g % 40 + 1, g, CASE WHEN g % 3 = 0 THEN 'view' ELSE 'click' END, g FROM generate_series(2, 2000) g;

-- compare(query): rows of query on events vs on plain (as multisets): 0 and 0 means identical.
CREATE FUNCTION compare(q text) RETURNS TABLE (only_distributed bigint, only_plain bigint) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT (SELECT count(*) FROM ((%1$s) EXCEPT ALL (%2$s)) a),
                                        (SELECT count(*) FROM ((%2$s) EXCEPT ALL (%1$s)) b)',
                                q, replace(q, 'events', 'plain'));
END $$;
SELECT * FROM compare('SELECT * FROM events');
SELECT * FROM compare('SELECT * FROM events WHERE tenant_id = 5');
SELECT * FROM compare('SELECT * FROM events WHERE tenant_id IN (2, 3, 17)');
SELECT * FROM compare('SELECT tenant_id, count(*), sum(payload), min(id), max(kind) FROM events GROUP BY tenant_id');
SELECT * FROM compare('SELECT kind, count(*) FROM events WHERE tenant_id > 20 GROUP BY kind');
SELECT * FROM compare('SELECT e.tenant_id, e.id, p.payload FROM events e JOIN events p USING (tenant_id, id) WHERE e.id % 97 = 0');
SELECT count(*), sum(payload), count(DISTINCT tenant_id) FROM events;
SELECT * FROM events WHERE tenant_id = 4 ORDER BY id LIMIT 3;

-- dist_col = constant touches one shard, local or remote; IN touches the matching ones.
EXPLAIN (COSTS OFF) SELECT * FROM events WHERE tenant_id = 1;
EXPLAIN (COSTS OFF) SELECT * FROM events WHERE tenant_id = 2;
EXPLAIN (COSTS OFF) SELECT * FROM events WHERE 3 = tenant_id AND kind = 'view';
EXPLAIN (COSTS OFF) SELECT count(*) FROM events WHERE tenant_id IN (1, 2);
EXPLAIN (COSTS OFF) SELECT count(*) FROM events WHERE tenant_id = ANY ('{1,2}'::bigint[]);
EXPLAIN (COSTS OFF) UPDATE events SET payload = 0 WHERE tenant_id = 2;
EXPLAIN (COSTS OFF) DELETE FROM events WHERE tenant_id = 1;
-- A constant of another integer type hashes the same.
EXPLAIN (COSTS OFF) SELECT * FROM events WHERE tenant_id = 1::int2;
-- Without a usable equality every shard is scanned.
EXPLAIN (COSTS OFF) SELECT count(*) FROM events WHERE tenant_id < 3;
-- Subqueries and CTEs are pruned too.
EXPLAIN (COSTS OFF) WITH t AS (SELECT * FROM events WHERE tenant_id = 2) SELECT count(*) FROM t;

-- Prepared statements: custom plans prune at plan time, the generic plan at executor start-up.
PREPARE by_tenant(bigint) AS SELECT count(*), sum(payload) FROM events WHERE tenant_id = $1;
EXECUTE by_tenant(1);
EXECUTE by_tenant(2);
EXECUTE by_tenant(3);
EXECUTE by_tenant(4);
EXECUTE by_tenant(5);
EXECUTE by_tenant(6);
EXECUTE by_tenant(7);
SELECT count(*), sum(payload) FROM plain WHERE tenant_id = 7;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE by_tenant(2);
EXECUTE by_tenant(2);
RESET plan_cache_mode;

-- UPDATE / DELETE ... RETURNING give the same rows as on a plain table.
UPDATE events SET payload = payload + 1 WHERE tenant_id = 2 AND id < 100 RETURNING tenant_id, id, payload;
UPDATE plain SET payload = payload + 1 WHERE tenant_id = 2 AND id < 100;
UPDATE events SET kind = 'seen' WHERE kind = 'view' AND payload % 11 = 0;
UPDATE plain SET kind = 'seen' WHERE kind = 'view' AND payload % 11 = 0;
DELETE FROM events WHERE tenant_id = 3 AND id > 1900 RETURNING id;
DELETE FROM plain WHERE tenant_id = 3 AND id > 1900;
DELETE FROM events WHERE payload % 13 = 0;
DELETE FROM plain WHERE payload % 13 = 0;
SELECT * FROM compare('SELECT * FROM events');

-- A NULL distribution value has no shard.
INSERT INTO events VALUES (NULL, 1, 'x', 1);

-- Changing the distribution column moves the row to its new shard: local -> remote,
-- remote -> local, remote -> remote (another worker) and remote -> same-node shard.
CREATE FUNCTION where_is(t bigint) RETURNS TABLE (nodeid int, rows bigint) LANGUAGE sql AS $$
    SELECT s.nodeid, count(e.*) FROM fdwshard.shards s
    LEFT JOIN events e ON e.tableoid = (SELECT shard_relid FROM fdwshard.shard x WHERE x.shardid = s.shardid)
                      AND e.tenant_id = t
    WHERE s.shardid = get_shard_id_for_distribution_column('events', t) GROUP BY s.nodeid $$;
SELECT * FROM where_is(1) UNION ALL SELECT * FROM where_is(2) UNION ALL SELECT * FROM where_is(6)
UNION ALL SELECT * FROM where_is(3);
-- New keys on node 1 (local), node 2 and node 3.
SELECT min(t) AS to_local FROM generate_series(1000, 1100) t
WHERE (SELECT nodeid FROM fdwshard.shards s WHERE s.shardid = get_shard_id_for_distribution_column('events', t)) = 1 \gset
SELECT min(t) AS to_node2 FROM generate_series(1000, 1100) t
WHERE (SELECT nodeid FROM fdwshard.shards s WHERE s.shardid = get_shard_id_for_distribution_column('events', t)) = 2 \gset
SELECT min(t) AS to_node3 FROM generate_series(1000, 1100) t
WHERE (SELECT nodeid FROM fdwshard.shards s WHERE s.shardid = get_shard_id_for_distribution_column('events', t)) = 3 \gset
SELECT :to_local AS to_local, :to_node2 AS to_node2, :to_node3 AS to_node3;
UPDATE events SET tenant_id = :to_local WHERE tenant_id = 1 AND id = 40 RETURNING *;
UPDATE events SET tenant_id = :to_node3 WHERE tenant_id = 2 AND id IN (1, 41) RETURNING *;
UPDATE events SET tenant_id = :to_node2 WHERE tenant_id = 6 AND id = 5 RETURNING *;
UPDATE events SET tenant_id = :to_node2 WHERE tenant_id = 3 AND id = 2 RETURNING *;
UPDATE plain SET tenant_id = :to_local WHERE tenant_id = 1 AND id = 40;
UPDATE plain SET tenant_id = :to_node3 WHERE tenant_id = 2 AND id IN (1, 41);
UPDATE plain SET tenant_id = :to_node2 WHERE tenant_id = 6 AND id = 5;
UPDATE plain SET tenant_id = :to_node2 WHERE tenant_id = 3 AND id = 2;
SELECT e.tenant_id, e.id, s.nodeid FROM events e JOIN fdwshard.shard x ON x.shard_relid = e.tableoid
JOIN fdwshard.shards s USING (shardid) WHERE e.tenant_id >= 1000 ORDER BY 1, 2;
SELECT count(*) AS misplaced FROM events e JOIN fdwshard.shard s ON s.shard_relid = e.tableoid
WHERE fdwshard_hash(e.tenant_id) NOT BETWEEN s.min_hash AND s.max_hash;
SELECT * FROM compare('SELECT * FROM events');
-- Rows moving out of remote shards in a multi-shard UPDATE are moved too.
UPDATE events SET tenant_id = tenant_id + 200 WHERE tenant_id IN (1, 2, 5, 6);
UPDATE plain SET tenant_id = tenant_id + 200 WHERE tenant_id IN (1, 2, 5, 6);
SELECT count(*) AS misplaced FROM events e JOIN fdwshard.shard s ON s.shard_relid = e.tableoid
WHERE fdwshard_hash(e.tenant_id) NOT BETWEEN s.min_hash AND s.max_hash;
SELECT * FROM compare('SELECT * FROM events');
-- One UPDATE moves rows in every direction, from local shards into foreign shards it also updates
-- included (PostgreSQL alone refuses that for postgres_fdw partitions).
BEGIN;
UPDATE events SET tenant_id = tenant_id + 100;
UPDATE plain SET tenant_id = tenant_id + 100;
SELECT count(*) AS misplaced FROM events e JOIN fdwshard.shard s ON s.shard_relid = e.tableoid
WHERE fdwshard_hash(e.tenant_id) NOT BETWEEN s.min_hash AND s.max_hash;
SELECT * FROM compare('SELECT * FROM events');
ROLLBACK;
-- Setting it to NULL is refused, on local and on remote shards.
UPDATE events SET tenant_id = NULL WHERE tenant_id = :to_local;
UPDATE events SET tenant_id = NULL WHERE tenant_id = :to_node2;
SELECT count(*) FROM events WHERE tenant_id IS NULL;

-- Transactions: a rolled-back write leaves nothing on any node; a committed one is seen everywhere.
BEGIN;
INSERT INTO events VALUES (2, 5000, 'tx', 1), (1, 5000, 'tx', 1);
SELECT count(*) FROM events WHERE id = 5000;
ROLLBACK;
SELECT count(*) FROM events WHERE id = 5000;
BEGIN;
INSERT INTO events VALUES (2, 5001, 'tx', 1), (1, 5001, 'tx', 1);
COMMIT;
SELECT tenant_id, id FROM events WHERE id = 5001 ORDER BY 1;

DROP SCHEMA routing CASCADE;
