-- Multi-shard UPDATE and DELETE run as one statement per shard on its node: results, row counts,
-- RETURNING rows and the table afterwards must match a plain table, in and out of transactions.
CREATE SCHEMA multi_shard_dml;
SET search_path = multi_shard_dml, public;
SET fdwshard.next_shard_id = 9000;

CREATE TABLE events (tenant_id int NOT NULL, id int NOT NULL, kind text, amount numeric(10,2), note text,
                     updated_at timestamptz, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('events', 'tenant_id', shard_count := 6);
CREATE TABLE plain_events (LIKE events INCLUDING ALL);
SELECT shard_name, nodeid FROM fdwshard.shards WHERE table_name = 'events'::regclass;
-- Tenants by shard: 3 and 4 local (node 1), 1 and 2 on node 2, 7 on node 3.
SELECT t AS tenant, s.shard_name, s.nodeid
FROM generate_series(1, 8) t JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('events', t)
ORDER BY t;

INSERT INTO events SELECT t, i, CASE WHEN i % 4 = 0 THEN NULL ELSE 'k' || (i % 3) END, i * 1.25, NULL,
                          CASE WHEN i % 5 = 0 THEN NULL ELSE timestamptz '2024-03-01 22:30:00+00' + i * interval '1 hour' END
FROM generate_series(1, 12) t, generate_series(1, 20) i;
INSERT INTO plain_events SELECT * FROM events;

-- same(): events and plain_events hold the same rows (as multisets).
CREATE FUNCTION same() RETURNS bool LANGUAGE sql AS $$
    SELECT NOT EXISTS (SELECT * FROM events EXCEPT ALL SELECT * FROM plain_events)
       AND NOT EXISTS (SELECT * FROM plain_events EXCEPT ALL SELECT * FROM events) $$;

-- dml(q): runs q on events, then on plain_events; says how many rows it changed and whether the
-- row counts, the RETURNING rows (as multisets) and then the tables are the same.
CREATE FUNCTION dml(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p text := replace(q, 'events', 'plain_events');
    n1 bigint;
    n2 bigint;
    a text[] := '{}';
    b text[] := '{}';
    r record;
BEGIN
    IF q ~* 'returning' THEN
        FOR r IN EXECUTE q LOOP a := a || r::text; END LOOP;
        FOR r IN EXECUTE p LOOP b := b || r::text; END LOOP;
        n1 := cardinality(a);
        n2 := cardinality(b);
    ELSE
        EXECUTE q;
        GET DIAGNOSTICS n1 = ROW_COUNT;
        EXECUTE p;
        GET DIAGNOSTICS n2 = ROW_COUNT;
    END IF;
    RETURN format('%s rows: %s', n1,
        CASE WHEN n1 <> n2 THEN format('plain table: %s rows', n2)
             WHEN (SELECT array_agg(x ORDER BY x) FROM unnest(a) x) IS DISTINCT FROM
                  (SELECT array_agg(x ORDER BY x) FROM unnest(b) x) THEN 'RETURNING differs'
             WHEN NOT same() THEN 'tables differ'
             ELSE 'same' END);
END $$;

-- What runs on the shards: one statement per shard, the foreign shards' SQL under VERBOSE.
EXPLAIN (COSTS OFF) UPDATE events SET amount = amount * 2 WHERE kind = 'k1';
EXPLAIN (VERBOSE, COSTS OFF) UPDATE events SET amount = amount * 2 WHERE kind = 'k1' RETURNING tenant_id, id, amount;
EXPLAIN (VERBOSE, COSTS OFF) DELETE FROM events WHERE amount > 20;
-- IN lists keep only the shards of their values (2 and 5 share a shard).
EXPLAIN (COSTS OFF) UPDATE events SET note = 'x' WHERE tenant_id IN (1, 2, 3, 5);
SET client_min_messages = debug1;
UPDATE events SET amount = amount * 2 WHERE kind = 'k1';
RESET client_min_messages;
UPDATE plain_events SET amount = amount * 2 WHERE kind = 'k1';
SELECT same();

-- Outside a transaction block, with and without RETURNING (the coordinator's rows, then one worker's:
-- rows of several workers come back in the order they arrive); NULLs in conditions and values.
UPDATE events SET note = 'no kind' WHERE kind IS NULL AND tenant_id IN (1, 3) AND id = 4 RETURNING tenant_id, id, note;
UPDATE plain_events SET note = 'no kind' WHERE kind IS NULL AND tenant_id IN (1, 3) AND id = 4;
SELECT same();
DELETE FROM events WHERE id = 20 AND tenant_id IN (2, 4);
DELETE FROM plain_events WHERE id = 20 AND tenant_id IN (2, 4);
SELECT same();
SELECT dml($$UPDATE events SET note = coalesce(note, '') || kind, amount = NULL WHERE id % 7 = 0 RETURNING *$$);
SELECT dml($$UPDATE events SET kind = upper(kind) WHERE updated_at IS NULL$$);
SELECT dml($$DELETE FROM events WHERE amount > 40 RETURNING tenant_id, id, amount$$);
SELECT dml($$UPDATE events SET amount = amount + 1 WHERE tenant_id IN (1, 3) AND kind = 'k2' RETURNING id, amount$$);
SELECT dml($$UPDATE events SET amount = amount + 1 WHERE kind = 'nothing' RETURNING *$$);
SELECT dml($$DELETE FROM events WHERE false$$);

-- Coordinator-side values: now() and a timestamptz literal read under the session's TimeZone.
SET TimeZone = 'America/New_York';
EXPLAIN (VERBOSE, COSTS OFF) UPDATE events SET updated_at = '2024-03-01 12:00', note = now()::date::text WHERE kind = 'k2';
SELECT dml($$UPDATE events SET updated_at = '2024-03-01 12:00' WHERE kind = 'k2' RETURNING tenant_id, id, updated_at$$);
SELECT dml($$UPDATE events SET updated_at = now() WHERE kind = 'k0'$$);
SELECT dml($$UPDATE events SET note = to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24') WHERE id < 5$$);
RESET TimeZone;

-- Prepared, with parameters: custom plans, then the generic plan.
PREPARE bump(numeric, text) AS UPDATE events SET amount = amount + $1 WHERE kind = $2;
PREPARE plain_bump(numeric, text) AS UPDATE plain_events SET amount = amount + $1 WHERE kind = $2;
SET plan_cache_mode = force_custom_plan;
EXECUTE bump(1.5, 'k1');
EXECUTE plain_bump(1.5, 'k1');
SET plan_cache_mode = force_generic_plan;
EXECUTE bump(2.5, 'k0');
EXECUTE plain_bump(2.5, 'k0');
EXECUTE bump(NULL, 'k1');
EXECUTE plain_bump(NULL, 'k1');
RESET plan_cache_mode;
SELECT same();

-- Inside transaction blocks: later statements see the writes, ROLLBACK undoes every shard.
BEGIN;
SELECT dml($$UPDATE events SET note = 'in transaction' WHERE id IN (1, 2)$$);
SELECT count(*) FROM events WHERE note = 'in transaction';
SELECT dml($$DELETE FROM events WHERE note = 'in transaction' AND id = 1 RETURNING tenant_id$$);
ROLLBACK;
SELECT same(), count(*) FROM events WHERE note = 'in transaction';
BEGIN;
SELECT dml($$UPDATE events SET note = 'committed' WHERE id IN (1, 2) RETURNING tenant_id, id, note$$);
SAVEPOINT s;
SELECT dml($$UPDATE events SET note = 'rolled back' WHERE id = 1$$);
SELECT dml($$DELETE FROM events WHERE id = 2$$);
ROLLBACK TO SAVEPOINT s;
SELECT same(), count(*) FILTER (WHERE note = 'committed') AS committed FROM events;
COMMIT;
SELECT same(), count(*) FILTER (WHERE note = 'committed') AS committed FROM events;

-- A unique violation on one (foreign) shard rolls back every shard, outside and inside a transaction.
UPDATE events SET id = 100 WHERE id = 3 OR (tenant_id = 1 AND id = 6);
SELECT count(*) AS moved FROM events WHERE id = 100;
BEGIN;
SELECT try($$UPDATE events SET id = 100 WHERE id = 3 OR (tenant_id = 7 AND id = 6)$$);
SELECT same(), count(*) AS moved FROM events WHERE id = 100;
COMMIT;
-- On a local shard (tenant 3) while foreign shards have already been sent theirs.
UPDATE events SET id = 100 WHERE id = 3 OR (tenant_id = 3 AND id = 6);
SELECT same(), count(*) AS moved FROM events WHERE id = 100;

-- Changing the distribution column: the foreign shards update in place, then the local shards
-- move their rows by tuple routing (into foreign shards too), then rows left in a foreign shard
-- that is no longer theirs move to their shard. Every row ends in its shard, updated once.
EXPLAIN (COSTS OFF) UPDATE events SET tenant_id = tenant_id + 20 WHERE tenant_id IN (1, 2, 7) AND id = 9;
SET client_min_messages = debug1;
UPDATE events SET tenant_id = tenant_id + 20 WHERE tenant_id IN (1, 2, 7) AND id = 9;
RESET client_min_messages;
UPDATE plain_events SET tenant_id = tenant_id + 20 WHERE tenant_id IN (1, 2, 7) AND id = 9;
-- in_place(): every row is in the shard its distribution value hashes to.
CREATE FUNCTION in_place() RETURNS bool LANGUAGE sql AS $$
    SELECT bool_and(tableoid::regclass::text = (SELECT shard_name FROM fdwshard.shards
                                                 WHERE shardid = get_shard_id_for_distribution_column('events', tenant_id)))
    FROM events $$;
SELECT same(), in_place(), count(*) AS moved FROM events WHERE tenant_id > 20;
-- Tenant t + 30 moves rows local to foreign, foreign to local, and between nodes, in one statement.
SELECT s.nodeid AS from_node, n.nodeid AS to_node, count(*) AS tenants
FROM generate_series(1, 12) t
JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('events', t)
JOIN fdwshard.shards n ON n.shardid = get_shard_id_for_distribution_column('events', t + 30)
GROUP BY 1, 2 ORDER BY 1, 2;
EXPLAIN (VERBOSE, COSTS OFF) UPDATE events SET tenant_id = tenant_id + 30, note = 'moved' WHERE id = 11 RETURNING tenant_id, id, note;
SELECT dml($$UPDATE events SET tenant_id = tenant_id + 30, note = 'moved' WHERE id = 11 RETURNING tenant_id, id, note$$), in_place();
SELECT dml($$UPDATE events SET tenant_id = tenant_id * 3 + 50 WHERE id IN (12, 13)$$), in_place();
BEGIN;
SELECT dml($$UPDATE events SET tenant_id = tenant_id + 100, id = id + 100 WHERE id < 4 RETURNING *$$), in_place();
SELECT count(*) FROM events WHERE tenant_id > 100;
ROLLBACK;
SELECT same(), in_place(), count(*) FROM events WHERE tenant_id > 100;
BEGIN;
SAVEPOINT s;
SELECT dml($$UPDATE events SET tenant_id = tenant_id + 100 WHERE id = 5$$), in_place();
ROLLBACK TO SAVEPOINT s;
SELECT dml($$UPDATE events SET tenant_id = 8 - tenant_id WHERE id = 6 AND tenant_id < 8$$), in_place();
COMMIT;
SELECT same(), in_place();
-- A move that collides with an existing key fails as a whole.
UPDATE events SET tenant_id = 1 WHERE id = 7 AND tenant_id IN (2, 3, 7);
SELECT same(), in_place();
-- A NULL distribution value is refused, as for any row.
UPDATE events SET tenant_id = NULL WHERE id = 8;

-- What cannot be shipped keeps PostgreSQL's own plan: a function only the coordinator has,
-- a volatile function, a system column.
CREATE FUNCTION coordinator_only(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
EXPLAIN (COSTS OFF) UPDATE events SET amount = coordinator_only(amount) WHERE kind = 'k1';
SELECT dml($$UPDATE events SET amount = coordinator_only(amount) WHERE kind = 'k1' RETURNING *$$);
SELECT dml($$DELETE FROM events WHERE coordinator_only(amount) > 20 RETURNING id$$);
SELECT setseed(0.5);
EXPLAIN (COSTS OFF) UPDATE events SET note = 'r' WHERE id = 5 AND random() >= 0;
SELECT dml($$UPDATE events SET note = 'r' WHERE id = 5 AND random() >= 0$$);
EXPLAIN (COSTS OFF) UPDATE events SET note = 'o' WHERE id = 5 RETURNING tableoid::regclass;
-- ... and one that only touches local shards keeps it too: nothing to gain there.
EXPLAIN (COSTS OFF) UPDATE events SET note = 'local' WHERE tenant_id IN (3, 4);
SELECT dml($$UPDATE events SET note = 'local' WHERE tenant_id IN (3, 4) RETURNING tenant_id, id$$);

-- Permissions are checked on the distributed table, as for any partitioned table.
CREATE ROLE multi_shard_dml_reader;
GRANT USAGE ON SCHEMA multi_shard_dml TO multi_shard_dml_reader;
SET ROLE multi_shard_dml_reader;
UPDATE events SET note = 'denied' WHERE kind = 'k1';
DELETE FROM events WHERE kind = 'k1';
RESET ROLE;

SELECT same(), count(*) FROM events;
DROP SCHEMA multi_shard_dml CASCADE;
DROP ROLE multi_shard_dml_reader;
