-- INSERT ... SELECT between co-located distributed tables runs shard by shard on the nodes: rows,
-- row counts, RETURNING rows, ON CONFLICT and errors must match plain tables; every other form
-- runs as the distributed insert (rows through the coordinator) with the same answers.
CREATE SCHEMA insert_select;
SET search_path = insert_select, public;
SET fdwshard.next_shard_id = 12000;

CREATE TABLE src (tenant_id int NOT NULL, id int NOT NULL, v text, amount numeric(10,2), PRIMARY KEY (tenant_id, id));
CREATE TABLE extra (tenant_id int NOT NULL, id int NOT NULL, label text, factor int, PRIMARY KEY (tenant_id, id));
CREATE TABLE "Dst ""Q""" ("Tenant" int NOT NULL, id int NOT NULL, v text, amount numeric(10,2),
                          note text DEFAULT 'none', at date DEFAULT current_date, PRIMARY KEY ("Tenant", id));
-- Plain copies with the same keys, to compare with.
CREATE TABLE p_src (LIKE src INCLUDING ALL);
CREATE TABLE p_extra (LIKE extra INCLUDING ALL);
CREATE TABLE p_dst (LIKE "Dst ""Q""" INCLUDING ALL);
SELECT create_distributed_table('src', 'tenant_id', shard_count := 6, colocate_with := 'none');
SELECT create_distributed_table('extra', 'tenant_id', shard_count := 6, colocate_with := 'src');
SELECT create_distributed_table('"Dst ""Q"""', 'Tenant', shard_count := 6, colocate_with := 'src');
-- Shard index i of every table is on one node: 0 and 3 local, 1 and 4 on node 2, 2 and 5 on node 3.
SELECT table_name, shard_name, nodeid FROM fdwshard.shards
WHERE table_name IN ('src'::regclass, '"Dst ""Q"""'::regclass) ORDER BY shardid;

INSERT INTO p_src SELECT t, i, CASE WHEN i % 5 = 0 THEN NULL ELSE 'v' || t || '-' || i END, i * 1.25
FROM generate_series(1, 12) t, generate_series(1, 30) i;
INSERT INTO p_extra SELECT t, i, 'l' || (i % 4), i % 3 FROM generate_series(1, 12) t, generate_series(1, 30, 2) i;
INSERT INTO src SELECT * FROM p_src;
INSERT INTO extra SELECT * FROM p_extra;

-- same(): the target and its plain copy hold the same rows (as multisets).
CREATE FUNCTION same() RETURNS bool LANGUAGE sql AS $$
    SELECT NOT EXISTS (SELECT * FROM "Dst ""Q""" EXCEPT ALL SELECT * FROM p_dst)
       AND NOT EXISTS (SELECT * FROM p_dst EXCEPT ALL SELECT * FROM "Dst ""Q""") $$;

-- ins(q): how q is planned ('co-located', 'distributed insert': rows through the coordinator, or
-- 'ordinary'), then q on the distributed tables and on
-- their plain copies; says how many rows q inserted and whether the row counts, the RETURNING
-- rows (as multisets) and then the targets are the same.
CREATE FUNCTION ins(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p text := regexp_replace(regexp_replace(q, '\m(src|extra)\M', 'p_\1', 'g'), '"Dst ""Q"""', 'p_dst', 'g');
    plan text := 'ordinary';
    line text;
    n1 bigint;
    n2 bigint;
    a text[] := '{}';
    b text[] := '{}';
    r record;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line LIKE '%FdwShard Co-located Insert ... Select%' THEN plan := 'co-located'; END IF;
        IF line LIKE '%FdwShard Distributed Insert%' THEN plan := 'distributed insert'; END IF;
    END LOOP;
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
    RETURN format('%s, %s rows: %s', plan, n1,
        CASE WHEN n1 <> n2 THEN format('plain tables: %s rows', n2)
             WHEN (SELECT array_agg(x ORDER BY x) FROM unnest(a) x) IS DISTINCT FROM
                  (SELECT array_agg(x ORDER BY x) FROM unnest(b) x) THEN 'RETURNING differs'
             WHEN NOT same() THEN 'tables differ'
             ELSE 'same' END);
END $$;

-- What runs: one INSERT ... SELECT per shard index, each on the node of its shards; VERBOSE shows
-- the statements sent (the default of "note" goes into the SELECT list).
EXPLAIN (COSTS OFF) INSERT INTO "Dst ""Q""" SELECT * FROM src WHERE id % 3 = 0;
EXPLAIN (VERBOSE, COSTS OFF)
INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id, upper(v) FROM src WHERE amount > 30 RETURNING id, note;
-- A constant on the distribution column keeps only the shards of its values.
EXPLAIN (COSTS OFF) INSERT INTO "Dst ""Q""" SELECT * FROM src WHERE tenant_id IN (1, 3, 9);
SET client_min_messages = debug1;
INSERT INTO "Dst ""Q""" SELECT * FROM src WHERE id % 3 = 0;
RESET client_min_messages;
INSERT INTO p_dst SELECT * FROM p_src WHERE id % 3 = 0;
SELECT same();
SELECT count(*), sum(hashtext(t::text)) FROM "Dst ""Q""" t;
SELECT count(*), sum(hashtext(t::text)) FROM p_dst t;

-- WHERE, a column list in another order, expressions, defaults, RETURNING.
SELECT ins($$INSERT INTO "Dst ""Q""" SELECT * FROM src WHERE id % 3 = 1 AND v IS NOT NULL$$);
SELECT ins($$INSERT INTO "Dst ""Q""" (v, id, "Tenant") SELECT v || '!', id + 100, tenant_id FROM src WHERE id < 10$$);
SELECT ins($$INSERT INTO "Dst ""Q""" (amount, "Tenant", id, note) SELECT amount * 2, tenant_id, id + 200, 'n' || id::text
             FROM src WHERE tenant_id IN (2, 5, 7) RETURNING *$$);
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, id + 300 FROM src WHERE tenant_id = 1
             RETURNING "Tenant", id, note, at = current_date AS today$$);
SELECT ins($$INSERT INTO "Dst ""Q""" SELECT * FROM src WHERE false RETURNING *$$);
-- Only local shards: run in this process, shard by shard.
EXPLAIN (COSTS OFF) INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id + 400, v FROM src WHERE tenant_id = 3;
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id + 400, v FROM src WHERE tenant_id = 3$$);

-- A join of two co-located sources on their distribution columns.
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, v, amount)
             SELECT s.tenant_id, s.id + 1000, e.label, s.amount * e.factor
             FROM src s JOIN extra e ON e.tenant_id = s.tenant_id AND e.id = s.id WHERE e.factor > 0$$);
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT e.tenant_id, s.id + 2000, s.v || e.label
             FROM src s, extra e WHERE s.tenant_id = e.tenant_id AND s.id = e.id + 1 RETURNING "Tenant", id, v$$);

-- ON CONFLICT on the shards' primary key, exactly as on one table.
SELECT ins($$INSERT INTO "Dst ""Q""" SELECT * FROM src ON CONFLICT DO NOTHING$$);
SELECT ins($$INSERT INTO "Dst ""Q""" SELECT tenant_id, id, 'again', amount FROM src WHERE id % 2 = 0
             ON CONFLICT ("Tenant", id) DO NOTHING RETURNING *$$);
SELECT ins($$INSERT INTO "Dst ""Q""" AS d SELECT tenant_id, id, v, amount FROM src WHERE id % 4 = 0
             ON CONFLICT ("Tenant", id) DO UPDATE SET v = EXCLUDED.v || '+' || d.v, amount = d.amount + EXCLUDED.amount
             WHERE d.id % 8 = 0 RETURNING d."Tenant", d.id, d.v, d.amount$$);
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, note) SELECT tenant_id, id + 5000, v FROM src WHERE id < 3
             ON CONFLICT ("Tenant", id) DO UPDATE SET note = 'updated ' || EXCLUDED.note$$);
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, note) SELECT tenant_id, id + 5000, v FROM src WHERE id < 3
             ON CONFLICT ("Tenant", id) DO UPDATE SET note = 'updated ' || EXCLUDED.note RETURNING *$$);
-- ON CONFLICT DO UPDATE of the distribution column would leave the row in the wrong shard: the
-- ordinary plan, which needs an arbiter on the distributed table itself, refuses it.
SELECT try($$INSERT INTO "Dst ""Q""" SELECT * FROM src ON CONFLICT ("Tenant", id) DO UPDATE SET "Tenant" = 99$$);
-- A row affected twice is PostgreSQL's error, on a local and on a foreign shard; nothing of it remains.
SELECT try($$INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, id % 2 FROM src WHERE tenant_id = 3
             ON CONFLICT ("Tenant", id) DO UPDATE SET v = 'twice'$$);
SELECT try($$INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, id % 2 FROM src WHERE tenant_id IN (1, 2)
             ON CONFLICT ("Tenant", id) DO UPDATE SET v = 'twice'$$);
SELECT try($$INSERT INTO p_dst ("Tenant", id) SELECT tenant_id, id % 2 FROM p_src WHERE tenant_id IN (1, 2)
             ON CONFLICT ("Tenant", id) DO UPDATE SET v = 'twice'$$);
SELECT same();
-- A unique violation on one shard leaves nothing on any shard: on local shards, and on a foreign
-- shard only (tenant 1's) while every other shard's rows were inserted.
SELECT try($$INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, id FROM src WHERE id > 25$$);
SELECT same();
SELECT try($$INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, CASE WHEN tenant_id = 1 THEN id ELSE id + 30000 END
             FROM src WHERE id > 25$$);
SELECT same();

-- In a transaction: later statements see the rows; a rollback leaves nothing on any node.
BEGIN;
INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id + 7000, 'rolled back' FROM src;
SELECT count(*) FROM "Dst ""Q""" WHERE v = 'rolled back';
SELECT count(*) FROM "Dst ""Q""" WHERE v = 'rolled back' AND "Tenant" = 2;
ROLLBACK;
SELECT count(*) FROM "Dst ""Q""" WHERE v = 'rolled back';
SELECT same();
-- Committed on both workers (two-phase commit) and the coordinator.
BEGIN;
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id + 8000, 'committed' FROM src$$);
COMMIT;
SELECT s.nodeid, count(*) FROM "Dst ""Q""" d
JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('"Dst ""Q"""', d."Tenant")
WHERE d.v = 'committed' GROUP BY s.nodeid ORDER BY s.nodeid;

-- ... and a deferred unique violation found when one worker prepares rolls back every node.
CREATE TABLE deferred (tenant_id int NOT NULL, id int NOT NULL, UNIQUE (tenant_id, id) DEFERRABLE INITIALLY DEFERRED);
SELECT create_distributed_table('deferred', 'tenant_id', shard_count := 6, colocate_with := 'src');
BEGIN;
INSERT INTO deferred SELECT tenant_id, id FROM src;
INSERT INTO deferred SELECT tenant_id, id FROM src WHERE tenant_id = 1 AND id = 7;
\set VERBOSITY terse
COMMIT;
\set VERBOSITY default
SELECT count(*) FROM deferred;
SELECT fdwshard.run_command_on_node(n, 'SELECT count(*) FROM pg_prepared_xacts') AS prepared FROM unnest(ARRAY[2, 3]) n;

-- Prepared, with a parameter, generic plan.
SET plan_cache_mode = force_generic_plan;
PREPARE ins_tenant(int) AS
    INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id + 9000, v FROM src WHERE tenant_id = $1 AND id < 5;
EXPLAIN (COSTS OFF) EXECUTE ins_tenant(2);
EXECUTE ins_tenant(2);
EXECUTE ins_tenant(3);
INSERT INTO p_dst ("Tenant", id, v) SELECT tenant_id, id + 9000, v FROM p_src WHERE tenant_id IN (2, 3) AND id < 5;
SELECT same();
DEALLOCATE ins_tenant;
RESET plan_cache_mode;

-- A binary-compatible cast of the distribution column keeps the hash: varchar into text.
CREATE TABLE vsrc (k varchar(10) NOT NULL, n int);
CREATE TABLE tdst (k text NOT NULL, n int, PRIMARY KEY (k));
CREATE TABLE bdst (k bigint NOT NULL, n int);
CREATE TABLE isrc (k int NOT NULL, n int);
SELECT create_distributed_table('vsrc', 'k', shard_count := 4, colocate_with := 'none');
SELECT create_distributed_table('tdst', 'k', shard_count := 4, colocate_with := 'vsrc');
SELECT create_distributed_table('isrc', 'k', shard_count := 4, colocate_with := 'none');
SELECT create_distributed_table('bdst', 'k', shard_count := 4, colocate_with := 'isrc');
INSERT INTO vsrc SELECT 'key ' || g, g FROM generate_series(1, 50) g;
INSERT INTO isrc SELECT g, g FROM generate_series(1, 50) g;
EXPLAIN (COSTS OFF) INSERT INTO tdst SELECT * FROM vsrc;
INSERT INTO tdst SELECT * FROM vsrc ON CONFLICT (k) DO UPDATE SET n = EXCLUDED.n * 2;
INSERT INTO tdst SELECT * FROM vsrc ON CONFLICT (k) DO UPDATE SET n = EXCLUDED.n * 2;
-- Every row in the shard its value hashes to.
SELECT count(*), sum(n), count(*) FILTER (WHERE t.tableoid <> s.shard_name::regclass) AS misplaced
FROM tdst t JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('tdst', t.k);
-- An int into a bigint is a conversion: not the co-located path but the distributed insert (rows
-- through the coordinator, a COPY into each shard), and the rows still land in their shards.
EXPLAIN (COSTS OFF) INSERT INTO bdst SELECT * FROM isrc;
INSERT INTO bdst SELECT * FROM isrc;
SELECT count(*), sum(n), count(*) FILTER (WHERE t.tableoid <> s.shard_name::regclass) AS misplaced
FROM bdst t JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('bdst', t.k);

-- Not co-located INSERT ... SELECT: the distributed insert (rows through the coordinator), with the
-- same answers.
-- A serial column: nextval() runs on the coordinator, one value per row (the distributed insert).
CREATE TABLE serials (tenant_id int NOT NULL, seq serial, v text);
SELECT create_distributed_table('serials', 'tenant_id', shard_count := 6, colocate_with := 'src');
CREATE TABLE p_serials (tenant_id int NOT NULL, seq serial, v text);
EXPLAIN (COSTS OFF) INSERT INTO serials (tenant_id, v) SELECT tenant_id, v FROM src;
INSERT INTO serials (tenant_id, v) SELECT tenant_id, v FROM src;
INSERT INTO p_serials (tenant_id, v) SELECT tenant_id, v FROM p_src;
SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM serials;
SELECT (SELECT array_agg(s ORDER BY s) FROM (SELECT tenant_id, v FROM serials) s) =
       (SELECT array_agg(s ORDER BY s) FROM (SELECT tenant_id, v FROM p_serials) s) AS same_rows;
-- The distribution column filled from another column of the source.
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT id, tenant_id + 11000, v FROM src$$);
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id + 1, id + 12000, v FROM src$$);
-- A source in another co-location group (other shard count), and a local table.
CREATE TABLE other_group (tenant_id int NOT NULL, id int NOT NULL, v text);
SELECT create_distributed_table('other_group', 'tenant_id', shard_count := 4);
INSERT INTO other_group SELECT tenant_id, id, v FROM p_src WHERE id <= 10;
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id + 13000, v FROM other_group$$);
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id + 14000, label FROM p_extra$$);
-- Aggregates, DISTINCT, LIMIT, volatile expressions.
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, amount) SELECT tenant_id, 15000, sum(amount) FROM src GROUP BY tenant_id$$);
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT DISTINCT tenant_id, 16000 FROM src$$);
SELECT ins($$INSERT INTO "Dst ""Q""" SELECT * FROM src ORDER BY tenant_id, id LIMIT 0$$);
SELECT ins($$INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id + 17000, v FROM src WHERE random() >= 0$$);
SELECT count(*), sum(hashtext(t::text)) FROM "Dst ""Q""" t;
SELECT count(*), sum(hashtext(t::text)) FROM p_dst t;

-- Permissions are checked on the coordinator as on one server: SELECT on the source, INSERT on the target.
CREATE ROLE regress_insert_select;
SELECT fdwshard.run_command_on_node(n, 'CREATE ROLE regress_insert_select') FROM unnest(ARRAY[2, 3]) n;
GRANT USAGE ON SCHEMA insert_select TO regress_insert_select;
CREATE USER MAPPING FOR regress_insert_select SERVER fdwshard_node_2 OPTIONS (user 'postgres', password_required 'false');
CREATE USER MAPPING FOR regress_insert_select SERVER fdwshard_node_3 OPTIONS (user 'postgres', password_required 'false');
GRANT INSERT ON "Dst ""Q""" TO regress_insert_select;
SET ROLE regress_insert_select;
INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, id + 19000 FROM src;
RESET ROLE;
GRANT SELECT (tenant_id, id) ON src TO regress_insert_select;
SET ROLE regress_insert_select;
INSERT INTO "Dst ""Q""" ("Tenant", id, v) SELECT tenant_id, id + 19000, v FROM src;
EXPLAIN (COSTS OFF) INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, id + 19000 FROM src WHERE id < 3;
INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, id + 19000 FROM src WHERE id < 3;
INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, id + 19000 FROM src WHERE id < 3 RETURNING *;
RESET ROLE;
REVOKE INSERT ON "Dst ""Q""" FROM regress_insert_select;
SET ROLE regress_insert_select;
INSERT INTO "Dst ""Q""" ("Tenant", id) SELECT tenant_id, id + 20000 FROM src;
RESET ROLE;
SELECT count(*) FROM "Dst ""Q""" WHERE id > 19000;

RESET search_path;
DROP SCHEMA insert_select CASCADE;
DROP USER MAPPING FOR regress_insert_select SERVER fdwshard_node_2;
DROP USER MAPPING FOR regress_insert_select SERVER fdwshard_node_3;
DROP ROLE regress_insert_select;
SELECT fdwshard.run_command_on_node(n, 'DROP ROLE regress_insert_select') FROM unnest(ARRAY[2, 3]) n;
