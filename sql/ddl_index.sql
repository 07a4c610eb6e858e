-- CREATE/DROP INDEX, PRIMARY KEY and UNIQUE added after distribution, and foreign keys between
-- co-located tables: each exists on every shard, local and remote, and is enforced there.
CREATE SCHEMA ddl_index;
SET search_path = ddl_index, public;
SET fdwshard.next_shard_id = 4100;
CREATE TABLE "Orders" ("Tenant Id" int, id int, "Note" text);
SELECT create_distributed_table('"Orders"', 'Tenant Id', shard_count := 3);
INSERT INTO "Orders" SELECT g % 10, g, 'n' || g FROM generate_series(1, 60) g;

-- A plain index: a partitioned index (local shard) and <name>_<shardid> on every remote shard.
CREATE INDEX "Orders Note" ON "Orders" ("Note" text_pattern_ops) WHERE id > 0;
CREATE INDEX ON "Orders" (lower("Note"));
SELECT shard_indexes(1, 'ddl_index."Orders_4100"');
SELECT shard_indexes(2, 'ddl_index."Orders_4101"');
SELECT shard_indexes(3, 'ddl_index."Orders_4102"');
DROP INDEX "Orders Note", "Orders_lower_idx";
SELECT shard_indexes(2, 'ddl_index."Orders_4101"');
CREATE INDEX CONCURRENTLY ON "Orders" (id);
DROP INDEX CONCURRENTLY IF EXISTS nothing_here;

-- PRIMARY KEY and UNIQUE after distribution, on every shard; the columns become NOT NULL.
ALTER TABLE "Orders" ADD PRIMARY KEY ("Tenant Id", id);
ALTER TABLE "Orders" ADD CONSTRAINT "Note Unique" UNIQUE ("Tenant Id", "Note") INCLUDE (id);
CREATE UNIQUE INDEX orders_id_desc ON "Orders" (id DESC, "Tenant Id") WHERE "Note" <> '';
SELECT name, kind FROM fdwshard.shard_key WHERE logicalrelid = '"Orders"'::regclass ORDER BY name;
SELECT shard_constraints(1, 'ddl_index."Orders_4100"');
SELECT shard_constraints(3, 'ddl_index."Orders_4102"');
SELECT shard_indexes(3, 'ddl_index."Orders_4102"');
SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = '"Orders"'::regclass AND attnum > 0 ORDER BY attnum;

-- Duplicates are refused by the shard that holds them, local or remote, with their SQLSTATE.
SELECT "Tenant Id", tableoid::regclass FROM "Orders" WHERE "Tenant Id" IN (1, 2, 3) AND id < 4 ORDER BY 1;
SELECT try($$INSERT INTO "Orders" VALUES (1, 1, 'dup')$$);
SELECT try($$INSERT INTO "Orders" VALUES (2, 2, 'dup')$$);
SELECT try($$INSERT INTO "Orders" VALUES (3, 3, 'dup')$$);
SELECT try($$INSERT INTO "Orders" VALUES (2, 1000, 'n2')$$);
SELECT try($$UPDATE "Orders" SET id = 12 WHERE "Tenant Id" = 2 AND id = 2$$);
-- The same id in another tenant is fine: keys are per distribution value.
INSERT INTO "Orders" VALUES (4, 1, 'other tenant');

-- Keys without the distribution column cannot be enforced shard by shard.
ALTER TABLE "Orders" ADD CONSTRAINT id_only UNIQUE (id);
CREATE UNIQUE INDEX ON "Orders" (id);
CREATE UNIQUE INDEX ON "Orders" ((id + "Tenant Id"));
ALTER TABLE "Orders" ADD PRIMARY KEY ("Tenant Id");
ALTER TABLE "Orders" ADD CONSTRAINT "Note Unique" UNIQUE ("Tenant Id");
ALTER TABLE "Orders" ADD CONSTRAINT ex EXCLUDE USING btree (id WITH =);
CREATE UNIQUE INDEX CONCURRENTLY ON "Orders" ("Tenant Id", id);
-- Duplicates already present: the key is not created anywhere.
ALTER TABLE "Orders" ADD CONSTRAINT one_per_tenant UNIQUE ("Tenant Id");
SELECT name FROM fdwshard.shard_key WHERE logicalrelid = '"Orders"'::regclass AND name = 'one_per_tenant';
SELECT shard_constraints(3, 'ddl_index."Orders_4102"');

-- RENAME and DROP of shard keys; DROP INDEX of one that belongs to a constraint is refused.
ALTER TABLE "Orders" RENAME CONSTRAINT "Note Unique" TO note_unique;
DROP INDEX orders_id_desc_4100;
DROP INDEX "Orders_pkey";
DROP INDEX orders_id_desc;
ALTER TABLE "Orders" DROP CONSTRAINT note_unique;
SELECT shard_constraints(2, 'ddl_index."Orders_4101"');
SELECT shard_indexes(2, 'ddl_index."Orders_4101"');
SELECT name, kind FROM fdwshard.shard_key WHERE logicalrelid = '"Orders"'::regclass ORDER BY name;

-- Foreign keys between co-located distributed tables, shard to shard.
CREATE TABLE lines (tenant int, order_id int, qty int);
SELECT create_distributed_table('lines', 'tenant', shard_count := 3, colocate_with := '"Orders"');
ALTER TABLE lines ADD CONSTRAINT lines_order FOREIGN KEY (tenant, order_id) REFERENCES "Orders" ON DELETE CASCADE;
SELECT shard_constraints(3, 'ddl_index.lines_4105');
INSERT INTO lines VALUES (1, 1, 10), (2, 2, 20), (3, 3, 30);
SELECT try($$INSERT INTO lines VALUES (2, 999, 1)$$);
SELECT try($$INSERT INTO lines VALUES (1, 999, 1)$$);
DELETE FROM "Orders" WHERE "Tenant Id" = 1 AND id = 1;
SELECT tenant, order_id FROM lines ORDER BY 1;
-- Foreign keys that cannot be kept shard by shard are refused.
CREATE TABLE plain (k int PRIMARY KEY);
ALTER TABLE lines ADD FOREIGN KEY (tenant) REFERENCES plain;
ALTER TABLE lines ADD FOREIGN KEY (order_id, tenant) REFERENCES "Orders" ("Tenant Id", id);
CREATE TABLE elsewhere (k int PRIMARY KEY);
SELECT create_distributed_table('elsewhere', 'k', shard_count := 2);
ALTER TABLE lines ADD FOREIGN KEY (tenant) REFERENCES elsewhere;
-- pg_dump's statements for local shards are a restore's (test/fault/dump_restore.sh); from users,
-- a key under a name the catalog does not give the shard, an index on a shard, an index ON ONLY
-- the table stay refused; fdwshard's trigger on a table the catalog does not know is an error.
ALTER TABLE ONLY "Orders_4100" ADD CONSTRAINT other_pkey_4100 PRIMARY KEY ("Tenant Id", id);
ALTER TABLE ONLY "Orders_4100" ADD CONSTRAINT "Orders_pkey_4101" PRIMARY KEY ("Tenant Id", id);
CREATE INDEX ON "Orders_4100" (id);
CREATE INDEX ON ONLY "Orders" (id);
CREATE TABLE not_distributed (k int) PARTITION BY RANGE (k);
CREATE TRIGGER fdwshard_relocate_row AFTER UPDATE OF k ON not_distributed
    FOR EACH ROW EXECUTE FUNCTION fdwshard.relocate_row();
DROP TABLE not_distributed;
-- DROP TABLE of a referenced table: refused, or CASCADE drops the foreign keys on every shard.
DROP TABLE "Orders";
DROP TABLE "Orders" CASCADE;
SELECT shard_constraints(3, 'ddl_index.lines_4105');
SELECT count(*) FROM fdwshard.shard_key WHERE kind = 'f';

DROP SCHEMA ddl_index CASCADE;
