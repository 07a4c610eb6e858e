-- Shard sizes measured on their nodes: fdwshard.shards (rows_estimate, bytes, size), the totals in
-- fdwshard.tables, fdwshard_table_size(); and fdwshard_rebalance by disk size.
CREATE SCHEMA "Size ""Sch""";
SET search_path = "Size ""Sch""";
SET fdwshard.next_shard_id = 32000;

CREATE TABLE "Ev ""t""" (tenant int, id int, note text, PRIMARY KEY (tenant, id));
CREATE INDEX "Note idx" ON "Ev ""t""" (note);
SELECT create_distributed_table('"Ev ""t"""', 'tenant', shard_count := 4, colocate_with := 'none');
-- Under 1000 rows per shard: autovacuum leaves them alone (no visibility or free space map appears).
INSERT INTO "Ev ""t""" SELECT i % 40, i, repeat('n', i % 300) FROM generate_series(1, 2000) i;
CREATE TABLE plain (k int PRIMARY KEY, v text);
INSERT INTO plain SELECT g, 'v' || g FROM generate_series(1, 500) g;
SELECT shardid, shard_name, nodeid, is_local FROM fdwshard.shards WHERE table_name = '"Ev ""t"""'::regclass;

-- measured(shardid): pg_total_relation_size of the shard table, measured on its node itself.
CREATE FUNCTION measured(id bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    node int;
    on_coordinator bool;
    name text;
BEGIN
    SELECT s.nodeid, s.is_local, format('%I.%I', n.nspname, s.shard_name) INTO node, on_coordinator, name
    FROM fdwshard.shards s JOIN pg_class c ON c.oid = s.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE s.shardid = id;
    IF on_coordinator THEN
        RETURN pg_total_relation_size(name);
    END IF;
    RETURN fdwshard.run_command_on_node(node, format('SELECT pg_total_relation_size(%L)', name))::bigint;
END $$;

-- Each shard's bytes are what its node measures.
SELECT shardid, bytes = measured(shardid) AS as_on_node, bytes > 0 AS some_bytes,
       size = pg_size_pretty(bytes) AS size_is_pretty
FROM fdwshard.shards WHERE table_name = '"Ev ""t"""'::regclass;
-- A table never analyzed (nor vacuumed: autovacuum leaves an empty table alone) has no row estimate.
CREATE TABLE empty (k int);
SELECT create_distributed_table('empty', 'k', shard_count := 3, colocate_with := 'none');
SELECT shardid, nodeid, rows_estimate, bytes FROM fdwshard.shards WHERE table_name = 'empty'::regclass;
SELECT rows_estimate, bytes, size FROM fdwshard.tables WHERE table_name = 'empty'::regclass;

-- After ANALYZE (each node analyzes its shards) the estimate is each shard's row count.
ANALYZE "Ev ""t""", empty;
SELECT s.shardid, s.rows_estimate, s.rows_estimate = c.rows AS exact
FROM fdwshard.shards s
JOIN (SELECT tableoid AS shard, count(*) AS rows FROM "Ev ""t""" GROUP BY 1) c
     ON c.shard = format('%I.%I', 'Size "Sch"', s.shard_name)::regclass
WHERE s.table_name = '"Ev ""t"""'::regclass ORDER BY 1;
SELECT shardid, rows_estimate FROM fdwshard.shards WHERE table_name = 'empty'::regclass;

-- fdwshard.tables: the sums of the shards (rows and bytes), shown pretty too.
SELECT t.table_name, t.rows_estimate,
       t.bytes = (SELECT sum(bytes) FROM fdwshard.shards s WHERE s.table_name = t.table_name) AS bytes_are_the_sum,
       t.bytes = (SELECT sum(measured(s.shardid)) FROM fdwshard.shards s WHERE s.table_name = t.table_name) AS as_on_nodes,
       t.size = pg_size_pretty(t.bytes) AS size_is_pretty
FROM fdwshard.tables t WHERE t.table_name IN ('"Ev ""t"""'::regclass, 'empty'::regclass);

-- fdwshard_table_size: pg_total_relation_size across nodes. The distributed table itself has no
-- storage on the coordinator (pg_total_relation_size says 0); its shards are summed where they are.
SELECT pg_total_relation_size('"Ev ""t"""') AS coordinator_only,
       fdwshard_table_size('"Ev ""t"""') = (SELECT sum(measured(shardid)) FROM fdwshard.shards
                                             WHERE table_name = '"Ev ""t"""'::regclass) AS sum_of_shards;
-- A shard: its size on its node (a foreign shard's, not the coordinator's 0); a plain table: as PostgreSQL.
SELECT shardid, is_local, fdwshard_table_size(format('%I.%I', 'Size "Sch"', shard_name)::regclass) = measured(shardid) AS as_on_node
FROM fdwshard.shards WHERE table_name = '"Ev ""t"""'::regclass;
SELECT fdwshard_table_size('plain') = pg_total_relation_size('plain') AS plain_same,
       fdwshard_table_size('plain') > 0 AS plain_has_bytes,
       fdwshard_table_size(NULL) IS NULL AS null_is_null;

-- Relations that are not tables are refused.
CREATE VIEW ev_view AS SELECT * FROM "Ev ""t""";
CREATE SEQUENCE seq;
SELECT fdwshard_table_size('ev_view');
SELECT fdwshard_table_size('plain_pkey');
SELECT fdwshard_table_size('seq');
SELECT fdwshard_table_size('no_such_table');
SELECT * FROM fdwshard.shard_sizes('plain');

-- Sizes are measured only when a query reads them: otherwise the views never ask the workers.
SELECT count(*) FILTER (WHERE line LIKE '%shard_sizes%') AS measuring
FROM unnest(public.query_rows('EXPLAIN (COSTS OFF) SELECT shardid, nodeid FROM fdwshard.shards')) line;
SELECT count(*) FILTER (WHERE line LIKE '%shard_sizes%') AS measuring
FROM unnest(public.query_rows('EXPLAIN (COSTS OFF) SELECT table_name, shard_count FROM fdwshard.tables')) line;
SELECT count(*) FILTER (WHERE line LIKE '%shard_sizes%') AS measuring
FROM unnest(public.query_rows('EXPLAIN (COSTS OFF) SELECT shardid, bytes FROM fdwshard.shards')) line;

-- Rebalancing by disk size. Six shard groups on the coordinator and worker 1 (worker 2 takes no
-- shards while the table is distributed), one of them much bigger than the others.
SELECT fdwshard_set_node_property(3, 'should_have_shards', false);
CREATE TABLE big (k int PRIMARY KEY, pad text);
SELECT create_distributed_table('big', 'k', shard_count := 6, colocate_with := 'none');
SELECT fdwshard_set_node_property(3, 'should_have_shards', true);
INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 30000) g
WHERE get_shard_id_for_distribution_column('big', g) = 32007;
SELECT shardid, nodeid, bytes > 1000000 AS big FROM fdwshard.shards WHERE table_name = 'big'::regclass;
SELECT count(*) AS rows, sum(k) AS keys FROM big \gset before_
-- by_shard_count moves two small groups to the empty worker 2; by_disk_size moves the big one there.
SELECT step, shardid, shard_index, source_node, target_node FROM fdwshard_rebalance_plan('big');
SELECT step, shardid, shard_index, source_node, target_node FROM fdwshard_rebalance_plan('big', 'by_disk_size');
-- gap: the bytes of big on the fullest node less those on the emptiest.
CREATE FUNCTION gap() RETURNS bigint LANGUAGE sql AS $$
    SELECT max(b) - min(b) FROM (SELECT n.nodeid, coalesce(sum(s.bytes), 0) AS b FROM fdwshard.nodes n
                                 LEFT JOIN fdwshard.shards s ON s.nodeid = n.nodeid AND s.table_name = 'big'::regclass
                                 GROUP BY n.nodeid) per_node $$;
SELECT gap() AS gap_before \gset
\set VERBOSITY terse
CALL fdwshard_rebalance('big', strategy => 'by_disk_size');
\set VERBOSITY default
SELECT shardid, nodeid, bytes > 1000000 AS big FROM fdwshard.shards WHERE table_name = 'big'::regclass;
SELECT gap() < :gap_before AS closer;
SELECT count(*) = :before_rows AS same_rows, sum(k) = :before_keys AS same_keys FROM big;
SELECT count(*) AS moves_left FROM fdwshard_rebalance_plan('big', 'by_disk_size');
-- Groups on a node that should not have shards move off first, to the emptiest node; groups of no
-- bytes never move only to even out bytes.
SELECT fdwshard_set_node_property(2, 'should_have_shards', false);
SELECT step, shardid, shard_index, source_node, target_node FROM fdwshard_rebalance_plan('"Ev ""t"""', 'by_disk_size');
SELECT step, shardid, shard_index, source_node, target_node FROM fdwshard_rebalance_plan('empty', 'by_disk_size');
SELECT fdwshard_set_node_property(2, 'should_have_shards', true);
SELECT count(*) AS moves FROM fdwshard_rebalance_plan('empty', 'by_disk_size');

DROP FUNCTION gap();
RESET search_path;
DROP SCHEMA "Size ""Sch""" CASCADE;
