-- ALTER TABLE, RENAME and SET SCHEMA on a distributed table reach every shard: the local one, the
-- foreign partitions on the coordinator and the shard tables on the workers.
CREATE SCHEMA ddl_alter;
SET search_path = ddl_alter, public;
SET fdwshard.next_shard_id = 4000;
CREATE TABLE items (k int NOT NULL, v text);
SELECT create_distributed_table('items', 'k', shard_count := 3);
INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 30) g;
SELECT shard_name, nodeid FROM fdwshard.shards WHERE table_name = 'items'::regclass;

-- ADD COLUMN: existing rows get the default everywhere; defaults stay on the coordinator.
ALTER TABLE items ADD COLUMN qty int DEFAULT 5 NOT NULL, ADD COLUMN note varchar(20) COLLATE "C";
ALTER TABLE items ADD COLUMN total int GENERATED ALWAYS AS (qty * 2) STORED;
SELECT shard_columns(1, 'ddl_alter.items_4000');
SELECT shard_columns(2, 'ddl_alter.items_4001');
SELECT shard_columns(3, 'ddl_alter.items_4002');
SELECT on_node(3, $$SELECT count(*) FILTER (WHERE qty = 5 AND total = 10) || '/' || count(*) FROM ddl_alter.items_4002$$);
INSERT INTO items (k, v) VALUES (31, 'new');
SELECT k, qty, total FROM items WHERE k IN (1, 2, 31) ORDER BY k;
SELECT shard_columns(2, 'ddl_alter.items_4001') = shard_columns(3, 'ddl_alter.items_4002') AS same;

-- SET/DROP DEFAULT and SET/DROP NOT NULL.
ALTER TABLE items ALTER COLUMN qty SET DEFAULT 9, ALTER COLUMN v SET NOT NULL;
INSERT INTO items (k, v) VALUES (32, 'nine');
SELECT qty FROM items WHERE k = 32;
SELECT shard_columns(2, 'ddl_alter.items_4001');
INSERT INTO items (k) VALUES (33);
ALTER TABLE items ALTER COLUMN qty DROP DEFAULT, ALTER COLUMN v DROP NOT NULL;
INSERT INTO items (k, qty) VALUES (33, 1);
SELECT qty, v FROM items WHERE k = 33;
SELECT shard_columns(3, 'ddl_alter.items_4002');

-- ALTER COLUMN TYPE.
ALTER TABLE items ALTER COLUMN note TYPE varchar(40), ALTER COLUMN v TYPE varchar(10) COLLATE "C";
SELECT shard_columns(1, 'ddl_alter.items_4000');
SELECT shard_columns(2, 'ddl_alter.items_4001');
SELECT max(v) FROM items;
-- The distribution column places rows by its hash, and USING cannot reach foreign partitions.
ALTER TABLE items ALTER COLUMN k TYPE bigint;
ALTER TABLE items ALTER COLUMN qty TYPE int USING qty::int;

-- CHECK constraints, added and dropped; a violating row is refused on a remote shard too.
ALTER TABLE items ADD CONSTRAINT qty_positive CHECK (qty > 0);
ALTER TABLE items ADD COLUMN price numeric CHECK (price >= 0);
SELECT shard_constraints(3, 'ddl_alter.items_4002');
SELECT try($$INSERT INTO items (k, qty) VALUES (3, -1)$$);
SELECT try($$UPDATE ONLY items_4002 SET qty = -1$$);
ALTER TABLE items ADD CONSTRAINT too_big CHECK (qty < 2) NOT VALID;
ALTER TABLE items VALIDATE CONSTRAINT too_big;
ALTER TABLE items DROP CONSTRAINT too_big;
ALTER TABLE items DROP CONSTRAINT qty_positive;
SELECT shard_constraints(3, 'ddl_alter.items_4002');

-- DROP COLUMN (also its CHECK constraint); the distribution column cannot go.
ALTER TABLE items DROP COLUMN price, DROP COLUMN IF EXISTS nothing;
ALTER TABLE items DROP COLUMN total;
ALTER TABLE items DROP COLUMN k;
ALTER TABLE items ALTER COLUMN qty TYPE bigint;
SELECT shard_columns(2, 'ddl_alter.items_4001');
SELECT shard_constraints(2, 'ddl_alter.items_4001');
SELECT count(*), sum(qty) FROM items;

-- RENAME COLUMN, also of the distribution column: routing, the catalog and row moves follow.
ALTER TABLE items RENAME COLUMN v TO "Value";
ALTER TABLE items RENAME COLUMN k TO key;
SELECT distribution_column FROM fdwshard.tables WHERE table_name = 'items'::regclass;
SELECT shard_columns(3, 'ddl_alter.items_4002');
SELECT "Value" FROM items WHERE key = 7;
UPDATE items SET key = 1007 WHERE key = 7;
SELECT tableoid::regclass, key FROM items WHERE key = 1007;
SELECT on_node(2, $$SELECT count(*) FROM ddl_alter.items_4001 WHERE key = 7$$) || on_node(3, $$SELECT count(*) FROM ddl_alter.items_4002 WHERE key = 7$$) AS old_row_gone;

-- RENAME the table: every shard follows, on the coordinator and on the workers.
ALTER TABLE items RENAME TO "Stock ""Items""";
SELECT shard_name, nodeid FROM fdwshard.shards WHERE table_name = '"Stock ""Items"""'::regclass;
SELECT on_node(2, $$SELECT string_agg(relname, ',') FROM pg_class WHERE relnamespace = 'ddl_alter'::regnamespace AND relkind = 'r'$$);
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'ddl_alter."Stock ""Items""_4002"'::regclass;
SELECT count(*) FROM "Stock ""Items""";

-- SET SCHEMA: the table, its shards everywhere and the foreign tables' options move.
CREATE SCHEMA "Other Schema";
ALTER TABLE "Stock ""Items""" SET SCHEMA "Other Schema";
SELECT table_name, shard_name FROM fdwshard.shards WHERE table_name = '"Other Schema"."Stock ""Items"""'::regclass;
SELECT c.oid::regclass FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = '"Other Schema"."Stock ""Items"""'::regclass ORDER BY 1;
SELECT on_node(3, $$SELECT string_agg(oid::regclass::text, ',') FROM pg_class WHERE relname LIKE 'Stock%' AND relkind = 'r'$$);
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = '"Other Schema"."Stock ""Items""_4002"'::regclass;
SELECT count(*) FROM "Other Schema"."Stock ""Items""" WHERE key = 1007;
ALTER TABLE "Other Schema"."Stock ""Items""" SET SCHEMA ddl_alter;
ALTER TABLE "Stock ""Items""" RENAME TO items;

-- OWNER TO: the table and every shard relation on every node (the role exists on the workers).
CREATE ROLE regress_ddl_owner;
SELECT fdwshard.run_command_on_node(2, 'CREATE ROLE regress_ddl_owner');
SELECT fdwshard.run_command_on_node(3, 'CREATE ROLE regress_ddl_owner');
ALTER TABLE items OWNER TO regress_ddl_owner;
SELECT relname, relowner::regrole FROM pg_class WHERE relname LIKE 'items%' AND relkind IN ('r', 'p', 'f') ORDER BY 1;
SELECT on_node(2, $$SELECT relowner::regrole::text FROM pg_class WHERE oid = 'ddl_alter.items_4001'::regclass$$);
ALTER TABLE items OWNER TO postgres;

-- A DDL that fails on one worker in the middle changes nothing anywhere.
SELECT fdwshard.run_command_on_node(3, 'ALTER TABLE ddl_alter.items_4002 ADD COLUMN clash int');
ALTER TABLE items ADD COLUMN clash int;
SELECT count(*) AS coordinator FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'clash';
SELECT shard_columns(1, 'ddl_alter.items_4000');
SELECT shard_columns(2, 'ddl_alter.items_4001');
SELECT fdwshard.run_command_on_node(3, 'ALTER TABLE ddl_alter.items_4002 DROP COLUMN clash');
ALTER TABLE items ADD COLUMN clash int;
SELECT shard_columns(3, 'ddl_alter.items_4002');

-- What fdwshard cannot propagate is refused, never applied on the coordinator alone.
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
ALTER TABLE items SET (fillfactor = 50);
ALTER TABLE items ALTER COLUMN qty SET STATISTICS 10;
ALTER TABLE items ADD COLUMN id serial;
ALTER TABLE items ADD COLUMN r float8 DEFAULT random();
ALTER TABLE items ADD COLUMN u int UNIQUE;
CREATE TRIGGER t BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION fdwshard.relocate_row();
CREATE TABLE items_extra PARTITION OF items FOR VALUES FROM (1) TO (2);
-- Shards are changed through their table only.
ALTER TABLE items_4000 ADD COLUMN x int;
ALTER FOREIGN TABLE items_4001 ADD COLUMN x int;
ALTER TABLE items_4000 RENAME TO x;
CREATE INDEX ON items_4000 (qty);

DROP SCHEMA ddl_alter CASCADE;
DROP SCHEMA "Other Schema";
DROP ROLE regress_ddl_owner;
SELECT fdwshard.run_command_on_node(2, 'DROP ROLE regress_ddl_owner');
SELECT fdwshard.run_command_on_node(3, 'DROP ROLE regress_ddl_owner');
