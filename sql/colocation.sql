-- Co-location groups: shard i of every table in a group covers the same range on the same node.
CREATE SCHEMA coloc;
SET search_path = coloc;

CREATE TABLE a (k int);
CREATE TABLE b (k bigint);           -- integer types hash alike: same group
CREATE TABLE c (k int);
CREATE TABLE d (k int);
CREATE TABLE e (k text);
SELECT create_distributed_table('a', 'k', shard_count := 4);
SELECT create_distributed_table('b', 'k', shard_count := 4);
SELECT create_distributed_table('c', 'k', shard_count := 4, colocate_with := 'none');
SELECT create_distributed_table('d', 'k', shard_count := 4, colocate_with := 'c');
SELECT create_distributed_table('e', 'k', shard_count := 4);
SELECT table_name, shard_count, dense_rank() OVER (ORDER BY colocationid) AS grp
FROM fdwshard.tables WHERE table_name::text IN ('a', 'b', 'c', 'd', 'e') ORDER BY table_name::text;

-- Same ranges and nodes, shard by shard.
SELECT count(*) AS mismatches FROM fdwshard.shard x JOIN fdwshard.shard y USING (shard_index)
JOIN fdwshard.placement px ON px.shardid = x.shardid JOIN fdwshard.placement py ON py.shardid = y.shardid
WHERE x.logicalrelid = 'a'::regclass AND y.logicalrelid IN ('b'::regclass, 'c'::regclass, 'd'::regclass)
  AND (x.min_hash, x.max_hash, px.nodeid) IS DISTINCT FROM (y.min_hash, y.max_hash, py.nodeid);

-- A group keeps its placement even when nodes stop taking new shards.
SELECT fdwshard_set_node_property(2, 'should_have_shards', false);
CREATE TABLE f (k int);
SELECT create_distributed_table('f', 'k', shard_count := 4, colocate_with := 'a');
SELECT count(*) AS mismatches FROM fdwshard.shards x JOIN fdwshard.shards y USING (min_hash)
WHERE x.table_name = 'a'::regclass AND y.table_name = 'f'::regclass AND x.nodeid <> y.nodeid;
-- New groups skip it.
CREATE TABLE g (k int);
SELECT create_distributed_table('g', 'k', shard_count := 4, colocate_with := 'none');
SELECT nodeid, count(*) FROM fdwshard.shards WHERE table_name = 'g'::regclass GROUP BY 1 ORDER BY 1;
SELECT fdwshard_set_node_property(2, 'should_have_shards', true);

-- Co-located tables joined on the distribution column.
INSERT INTO a SELECT generate_series(1, 100);
INSERT INTO b SELECT generate_series(1, 100, 2);
SELECT count(*) FROM a JOIN b USING (k);

-- Errors.
CREATE TABLE h (k int);
SELECT create_distributed_table('h', 'k', shard_count := 8, colocate_with := 'a');
SELECT create_distributed_table('h', 'k', shard_count := 4, colocate_with := 'e');
SELECT create_distributed_table('h', 'k', shard_count := 4, colocate_with := 'h');
SELECT create_distributed_table('h', 'k', shard_count := 4, colocate_with := 'no_such_table');
SELECT count(*) AS h_distributed FROM fdwshard.tables WHERE table_name = 'h'::regclass;
-- Without shard_count, the table takes the shard count of the one it is co-located with.
SELECT create_distributed_table('h', 'k', colocate_with := 'a');
SELECT table_name, shard_count, colocationid = (SELECT colocationid FROM fdwshard.tables WHERE table_name = 'a'::regclass) AS with_a
FROM fdwshard.tables WHERE table_name = 'h'::regclass;

DROP SCHEMA coloc CASCADE;
SELECT count(*) AS groups_left FROM fdwshard.colocation_group;
