-- INSERT ... ON CONFLICT on a distributed table whose key was added after distribution.
-- Through the partitioned table PostgreSQL needs an arbiter index on it, which a distributed table
-- cannot have (keys live on the shards). The router plans a single-row INSERT against its shard
-- (local) or ships it whole (remote), so the shard's own unique index is the arbiter.
CREATE SCHEMA ddl_upsert;
SET search_path = ddl_upsert, public;
SET fdwshard.next_shard_id = 4400;
CREATE TABLE kv (k int, v text);
SELECT create_distributed_table('kv', 'k', shard_count := 3);
ALTER TABLE kv ADD PRIMARY KEY (k);
INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 9) g;
SELECT k, tableoid::regclass FROM kv ORDER BY k;

-- Single-row, one shard, with a conflict target: local shard k = 2, remote k = 1 and 4.
SELECT try($$INSERT INTO kv VALUES (2, 'new') ON CONFLICT (k) DO UPDATE SET v = excluded.v$$);
SELECT try($$INSERT INTO kv VALUES (1, 'new') ON CONFLICT (k) DO UPDATE SET v = excluded.v$$);
SELECT try($$INSERT INTO kv VALUES (4, 'new') ON CONFLICT (k) DO NOTHING$$);
-- The key's name works too (its placeholder on the table; see the on_constraint suite).
SELECT try($$INSERT INTO kv VALUES (2, 'new') ON CONFLICT ON CONSTRAINT kv_pkey DO NOTHING$$);
-- Several rows across shards with a conflict target run as one INSERT per shard.
SELECT try($$INSERT INTO kv VALUES (1, 'x'), (2, 'x') ON CONFLICT (k) DO NOTHING$$);
-- DO NOTHING without a target works on local and remote shards, one row or several.
INSERT INTO kv VALUES (1, 'kept?'), (2, 'kept?'), (100, 'new') ON CONFLICT DO NOTHING;
INSERT INTO kv VALUES (4, 'kept?') ON CONFLICT DO NOTHING;
SELECT k, v FROM kv WHERE k IN (1, 2, 4, 100) ORDER BY k;

-- Against the local shard relation, the shard's own unique index is the arbiter.
INSERT INTO kv_4400 VALUES (2, 'upserted') ON CONFLICT (k) DO UPDATE SET v = excluded.v;
INSERT INTO kv_4400 VALUES (2, 'ignored') ON CONFLICT (k) DO NOTHING;
SELECT k, v FROM kv WHERE k = 2;

DROP SCHEMA ddl_upsert CASCADE;
