-- fdwshard_move_shard: a shard group moves between the coordinator (node 1) and the workers
-- (nodes 2 and 3) with its rows, keys and indexes; the answers stay those of a plain copy.
CREATE SCHEMA "Move ""Sch""";
SET search_path = "Move ""Sch""";
SET fdwshard.next_shard_id = 31000;

CREATE TABLE "Acc ""t""" (tenant int PRIMARY KEY, "Näme" text, gone int, note text, UNIQUE ("Näme", tenant),
                          twice int GENERATED ALWAYS AS (tenant * 2) STORED, CHECK (tenant > 0));
ALTER TABLE "Acc ""t""" DROP COLUMN gone;
CREATE INDEX "Note idx" ON "Acc ""t""" (note);
INSERT INTO "Acc ""t""" (tenant, "Näme", note)
SELECT i, 'näme ' || i, CASE WHEN i % 5 = 0 THEN NULL ELSE E'tab\there ''q'' ' || i END
FROM generate_series(1, 2000) i;
SELECT create_distributed_table('"Acc ""t"""', 'tenant', shard_count := 4);
CREATE TABLE ledger (tenant int, id int, amount numeric, PRIMARY KEY (tenant, id));
SELECT create_distributed_table('ledger', 'tenant', shard_count := 4, colocate_with := '"Acc ""t"""');
ALTER TABLE ledger ADD FOREIGN KEY (tenant) REFERENCES "Acc ""t""" (tenant);
INSERT INTO ledger SELECT i % 2000 + 1, i, i / 7.0 FROM generate_series(1, 6000) i;

-- The same rows in plain tables, to compare with after every move.
CREATE TABLE plain_acc AS SELECT * FROM "Acc ""t""";
CREATE TABLE plain_ledger AS SELECT * FROM ledger;
CREATE FUNCTION differences() RETURNS bigint LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM ((SELECT * FROM "Move ""Sch"""."Acc ""t""" EXCEPT ALL SELECT * FROM "Move ""Sch""".plain_acc)
                                  UNION ALL (SELECT * FROM "Move ""Sch""".plain_acc EXCEPT ALL SELECT * FROM "Move ""Sch"""."Acc ""t"""))
                                 d)
         + (SELECT count(*) FROM ((SELECT * FROM "Move ""Sch""".ledger EXCEPT ALL SELECT * FROM "Move ""Sch""".plain_ledger)
                                  UNION ALL (SELECT * FROM "Move ""Sch""".plain_ledger EXCEPT ALL SELECT * FROM "Move ""Sch""".ledger))
                                 d) $$;
CREATE VIEW placements AS
SELECT s.table_name::text AS table_name, s.shardid, s.shard_name, s.nodeid FROM fdwshard.shards s
WHERE s.table_name IN ('"Move ""Sch"""."Acc ""t"""'::regclass, '"Move ""Sch""".ledger'::regclass)
ORDER BY s.shardid;
SELECT * FROM placements;

-- Sessions keep their prepared statements across moves.
PREPARE by_tenant(int) AS SELECT tenant, "Näme", twice FROM "Acc ""t""" WHERE tenant = $1;
PREPARE add_row(int, int) AS INSERT INTO ledger VALUES ($1, $2, 1);
EXECUTE by_tenant(1); EXECUTE by_tenant(1); EXECUTE by_tenant(1); EXECUTE by_tenant(1); EXECUTE by_tenant(1); EXECUTE by_tenant(1);

-- The NOTICE's detail says how long writes waited: hidden here (terse).
\set VERBOSITY terse
-- Coordinator to worker 1, worker 2 to the coordinator, worker 1 to worker 2.
SELECT fdwshard_move_shard(31000, 2);
SELECT fdwshard_move_shard(31002, 1);
SELECT fdwshard_move_shard(31001, 3);
\set VERBOSITY default
SELECT * FROM placements;
SELECT differences();
EXECUTE by_tenant(1);
SELECT k, (SELECT count(*) FROM fdwshard.shards s WHERE s.shardid = get_shard_id_for_distribution_column('"Acc ""t"""', k)
           AND s.nodeid = 1) AS on_coordinator FROM (VALUES (1), (2), (3), (4), (5)) v(k);

-- Keys and checks hold on the moved shards: every tenant's shard now refuses a duplicate.
DO $$
DECLARE k int; refused int := 0;
BEGIN
    FOR k IN 1..12 LOOP
        BEGIN
            INSERT INTO "Move ""Sch"""."Acc ""t""" (tenant, "Näme") VALUES (k, 'again');
        EXCEPTION WHEN unique_violation THEN refused := refused + 1;
        END;
        BEGIN
            INSERT INTO "Move ""Sch""".ledger VALUES (k + 5000, 1, 0);
        EXCEPTION WHEN foreign_key_violation THEN refused := refused + 1;
        END;
    END LOOP;
    RAISE NOTICE 'refused % of 24', refused;
END $$;
INSERT INTO "Acc ""t""" (tenant, "Näme") VALUES (-1, 'negative');
-- New rows land on the moved shards and read back the same.
INSERT INTO "Acc ""t""" (tenant, "Näme", note) SELECT i, 'näme ' || i, 'new' FROM generate_series(2001, 2100) i;
INSERT INTO plain_acc (tenant, "Näme", note, twice) SELECT i, 'näme ' || i, 'new', i * 2 FROM generate_series(2001, 2100) i;
EXECUTE add_row(3, 100000);
INSERT INTO plain_ledger VALUES (3, 100000, 1);
UPDATE ledger SET amount = amount + 1 WHERE id % 10 = 0;
UPDATE plain_ledger SET amount = amount + 1 WHERE id % 10 = 0;
SELECT differences();
-- The moved shards' tables: on their new nodes only.
SELECT s.shard_name, s.nodeid,
       fdwshard.run_command_on_node(2, format('SELECT count(*) FROM pg_tables WHERE schemaname = %L AND tablename = %L',
                                              'Move "Sch"', s.shard_name)) AS on_worker_1,
       fdwshard.run_command_on_node(3, format('SELECT count(*) FROM pg_tables WHERE schemaname = %L AND tablename = %L',
                                              'Move "Sch"', s.shard_name)) AS on_worker_2,
       (SELECT relkind FROM pg_class WHERE oid = format('%I.%I', 'Move "Sch"', s.shard_name)::regclass) AS kind
FROM placements s ORDER BY s.shardid;
-- Their indexes and keys where they live now (a worker's shard has the plain index as <name>_<shardid>).
SELECT fdwshard.run_command_on_node(2, $$SELECT string_agg(indexname, ', ' ORDER BY indexname) FROM pg_indexes
                                         WHERE schemaname = 'Move "Sch"' AND tablename = 'Acc "t"_31000'$$) AS worker_1_indexes;
SELECT string_agg(indexname, ', ' ORDER BY indexname) AS coordinator_indexes FROM pg_indexes
WHERE schemaname = 'Move "Sch"' AND tablename = 'Acc "t"_31002';

-- In a transaction that rolls back, nothing moves and nothing is left on the target.
BEGIN;
\set VERBOSITY terse
SELECT fdwshard_move_shard(31003, 2);
\set VERBOSITY default
SELECT nodeid FROM placements WHERE shardid = 31003;
ROLLBACK;
SELECT nodeid FROM placements WHERE shardid = 31003;
SELECT fdwshard.run_command_on_node(2, $$SELECT count(*) FROM pg_tables WHERE tablename LIKE '%31003' OR tablename LIKE '%31007'$$)
       AS left_on_worker_1;
SELECT differences();

-- Errors.
SELECT fdwshard_move_shard(99999999, 2);
SELECT fdwshard_move_shard(31000, 99);
SELECT fdwshard_move_shard(31000, 2);
BEGIN;
SELECT fdwshard_move_shard(31000, 3, 'online');
ROLLBACK;
SELECT fdwshard_move_shard(31000, 3, 'fast');
SELECT fdwshard_move_shard(NULL, 3);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT fdwshard_move_shard(31000, 3);
ROLLBACK;
SELECT fdwshard_set_node_property(3, 'should_have_shards', false);
SELECT fdwshard_move_shard(31000, 3);
SELECT fdwshard_set_node_property(3, 'should_have_shards', true);
-- Only the owner of the tables may move their shards.
CREATE ROLE move_stranger;
GRANT USAGE ON SCHEMA "Move ""Sch""" TO move_stranger;
SET ROLE move_stranger;
SELECT fdwshard_move_shard(31000, 3);
RESET ROLE;
REVOKE USAGE ON SCHEMA "Move ""Sch""" FROM move_stranger;
DROP ROLE move_stranger;
SELECT * FROM placements;
SELECT differences();

-- Online moves (the test cluster runs wal_level = logical): logical replication copies the group
-- while writes go on; writes wait only for the switch. From the coordinator to a worker and from
-- a worker to another (the NOTICE's detail says how long writes waited: hidden).
CREATE VIEW replication_left AS
SELECT format('node 1: %s, node 2: %s, node 3: %s',
              (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)
              + (SELECT count(*) FROM pg_subscription),
              fdwshard.run_command_on_node(2, 'SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_subscription)'),
              fdwshard.run_command_on_node(3, 'SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_subscription)'))
       AS slots_publications_subscriptions;
\set VERBOSITY terse
SELECT fdwshard_move_shard(31003, 2, 'online');
SELECT fdwshard_move_shard(31003, 3, 'online');
\set VERBOSITY default
SELECT * FROM placements WHERE shardid IN (31003, 31007);
SELECT differences();
SELECT * FROM replication_left;
-- The moved shard tables keep their keys and lose the mark they had while being copied.
INSERT INTO "Acc ""t""" (tenant, "Näme")
SELECT k, 'again' FROM generate_series(1, 100) k WHERE get_shard_id_for_distribution_column('"Acc ""t"""', k) = 31003 LIMIT 1;
SELECT fdwshard.run_command_on_node(3, $$SELECT string_agg(indexname, ', ' ORDER BY indexname) FROM pg_indexes
                                         WHERE schemaname = 'Move "Sch"' AND tablename IN ('Acc "t"_31003', 'ledger_31007')$$) AS worker_2_indexes;
SELECT fdwshard.run_command_on_node(3, $$SELECT count(obj_description(oid, 'pg_class')) FROM pg_class
                                         WHERE relname IN ('Acc "t"_31003', 'ledger_31007')$$) AS marked;
-- Updates and new rows after the moves land where the shards are now.
UPDATE ledger SET amount = amount * 2 WHERE tenant IN (4, 7, 8);
UPDATE plain_ledger SET amount = amount * 2 WHERE tenant IN (4, 7, 8);
EXECUTE add_row(4, 100001);
INSERT INTO plain_ledger VALUES (4, 100001, 1);
SELECT differences();

-- To the coordinator, 'online' is refused; 'auto' moves with block_writes.
SELECT fdwshard_move_shard(31003, 1, 'online');
\set VERBOSITY terse
SELECT fdwshard_move_shard(31003, 1);
\set VERBOSITY default

-- 'online' refuses a table without a primary key (its updates could not be replayed); 'auto'
-- moves it with block_writes, as it does inside a transaction block.
CREATE TABLE "No key" (tenant int, v int);
INSERT INTO "No key" SELECT i, i FROM generate_series(1, 100) i;
SELECT create_distributed_table('"No key"', 'tenant', shard_count := 2, colocate_with := 'none');
SELECT fdwshard_move_shard(31008, 2, 'online');
\set VERBOSITY terse
SELECT fdwshard_move_shard(31008, 2);
BEGIN;
SELECT fdwshard_move_shard(31003, 2);
ROLLBACK;
\set VERBOSITY default
SELECT s.shardid, s.nodeid, (SELECT count(*) FROM "No key") AS rows FROM fdwshard.shards s
WHERE s.table_name = '"No key"'::regclass ORDER BY s.shardid;

-- What a failed online move of the group leaves (made by hand here: a publication, a slot and
-- the marker table on the source, a subscription and a marked copy of a shard table on the
-- target) is cleaned up by the next move, which then succeeds.
CREATE PUBLICATION fdwshard_move_31003 FOR TABLE "Acc ""t""_31003";
SELECT pg_create_logical_replication_slot('fdwshard_move_31003', 'pgoutput') IS NOT NULL AS slot;
CREATE TABLE fdwshard_move_31003 (n int);
SELECT fdwshard.run_command_on_node(3, $$CREATE SUBSCRIPTION fdwshard_move_31003 CONNECTION 'dbname=nowhere'
                                         PUBLICATION fdwshard_move_31003 WITH (connect = false, slot_name = NONE)$$);
SELECT fdwshard.run_command_on_node(3, $$CREATE TABLE "Move ""Sch"""."Acc ""t""_31003" (tenant int);
                                         COMMENT ON TABLE "Move ""Sch"""."Acc ""t""_31003" IS 'fdwshard: copy of a shard being moved online'$$);
SELECT * FROM replication_left;
\set VERBOSITY terse
SELECT fdwshard_move_shard(31003, 3, 'online');
\set VERBOSITY default
SELECT * FROM placements WHERE shardid IN (31003, 31007);
SELECT * FROM replication_left;
SELECT to_regclass('fdwshard_move_31003') AS marker_table;
SELECT differences();

DROP SCHEMA "Move ""Sch""" CASCADE;
