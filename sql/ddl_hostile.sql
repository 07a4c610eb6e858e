-- Names with quotes, semicolons, "--", unicode, capitals and spaces, through every statement that
-- reaches a worker: the shards there get exactly the names given, and nothing else runs.
\set sch 'Hostile "Sch"; --ü'
\set sch2 'Other ''Sch''; DROP TABLE public.hostile_victim; --'
\set tab 'Tab''le "T"; DROP TABLE public.hostile_victim; --'
\set tab2 'Rénamed "T2"; --'
\set key 'Key "k"''; --'
\set val 'Välue $1 -- X'
\set role 'regress Rôle "r"; DROP TABLE public.hostile_victim; --'
CREATE SCHEMA :"sch";
SET search_path = :"sch", public;
SET fdwshard.next_shard_id = 8900;
-- A table on each worker that none of this may touch.
SELECT on_node(n, 'CREATE TABLE public.hostile_victim (a int)') FROM unnest(ARRAY[2, 3]) n;
-- shard(schema, table, shardid): a shard's schema-qualified name, for the helpers of ddl_setup.
CREATE FUNCTION public.shard(schema text, tab text, shardid int) RETURNS text LANGUAGE sql
    AS $$ SELECT format('%I.%I', schema, tab || '_' || shardid) $$;
-- rows_on(node, relation): how many rows the relation holds on that node.
CREATE FUNCTION public.rows_on(node int, rel text) RETURNS text LANGUAGE sql
    AS $$ SELECT public.on_node(node, format('SELECT count(*) FROM %s', rel)) $$;

-- create_distributed_table: a CHECK constraint calling a function of the table's schema, found by
-- search_path here; the workers (search_path pg_catalog) must get it schema-qualified.
CREATE FUNCTION "Pos?"(int) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0';
SELECT on_node(n, format('CREATE SCHEMA %I', :'sch')) FROM unnest(ARRAY[2, 3]) n;
SELECT on_node(n, format($$CREATE FUNCTION %I.%I(int) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0'$$,
    :'sch', 'Pos?')) FROM unnest(ARRAY[2, 3]) n;
CREATE TABLE :"tab" (:"key" int NOT NULL CHECK ("Pos?"(:"key")), :"val" text, "MiXeD Case" text DEFAULT 'it''s; --');
SELECT create_distributed_table(format('%I.%I', :'sch', :'tab')::regclass, :'key', shard_count := 3);
SELECT shard_name, nodeid FROM fdwshard.shards WHERE table_name = format('%I.%I', :'sch', :'tab')::regclass;
SELECT n, shard_columns(n, shard(:'sch', :'tab', 8899 + n)), shard_constraints(n, shard(:'sch', :'tab', 8899 + n))
FROM generate_series(1, 3) n;

-- INSERT, SELECT, UPDATE and DELETE, routed to one shard, and COPY.
INSERT INTO :"tab" (:"key", :"val") SELECT g, 'v' || g FROM generate_series(1, 30) g;
COPY :"tab" (:"key", :"val") FROM STDIN;
31	it's; --
32	"q"
\.
SELECT get_shard_id_for_distribution_column(format('%I.%I', :'sch', :'tab')::regclass, k) AS shard, min(k) AS k
FROM generate_series(1, 30) k GROUP BY 1 ORDER BY 1;
SELECT n, rows_on(n, shard(:'sch', :'tab', 8899 + n)) FROM generate_series(1, 3) n;
INSERT INTO :"tab" (:"key", :"val") VALUES (1, 'x''; --') RETURNING :"key", :"val", "MiXeD Case";
SELECT :"val" FROM :"tab" WHERE :"key" = 1 ORDER BY 1;
UPDATE :"tab" SET :"val" = 'one' WHERE :"key" = 1 AND :"val" = 'x''; --';
DELETE FROM :"tab" WHERE :"key" = 1 AND :"val" = 'v1';
SELECT on_node(3, format('SELECT string_agg(%I, %L ORDER BY 1) FROM %s WHERE %I = 1', :'val', ', ',
    shard(:'sch', :'tab', 8902), :'key')) AS worker_rows;
-- A new distribution value moves the row to its shard (node 3 to node 2).
SELECT min(k) AS new_key FROM generate_series(100, 200) k
WHERE get_shard_id_for_distribution_column(format('%I.%I', :'sch', :'tab')::regclass, k) = 8901 \gset
UPDATE :"tab" SET :"key" = :new_key WHERE :"key" = 1;
SELECT n, rows_on(n, shard(:'sch', :'tab', 8899 + n)) FROM generate_series(1, 3) n;
SELECT :"key" = :new_key AS moved, :"val" FROM :"tab" WHERE :"key" IN (1, :new_key);

-- ALTER TABLE: columns added (with a default for existing rows), renamed, constraints, table
-- renamed and moved to another schema.
ALTER TABLE :"tab" ADD COLUMN "New; Col" text DEFAULT 'dflt''; --' NOT NULL, ADD CONSTRAINT "Chk; ""c"" --" CHECK ("Pos?"(:"key" + 1));
ALTER TABLE :"tab" RENAME COLUMN :"val" TO "Vâl ""2""; --";
ALTER TABLE :"tab" RENAME CONSTRAINT "Chk; ""c"" --" TO "Chk ""2""";
ALTER TABLE :"tab" ADD COLUMN "Gone ""g""; --" int, ALTER COLUMN "MiXeD Case" TYPE varchar(40);
ALTER TABLE :"tab" DROP COLUMN "Gone ""g""; --";
SELECT n, shard_columns(n, shard(:'sch', :'tab', 8899 + n)), shard_constraints(n, shard(:'sch', :'tab', 8899 + n))
FROM generate_series(1, 3) n;
SELECT DISTINCT "New; Col" FROM :"tab";
ALTER TABLE :"tab" RENAME TO :"tab2";
CREATE SCHEMA :"sch2";
ALTER TABLE :"tab2" SET SCHEMA :"sch2";
SET search_path = :"sch2", :"sch", public;
SELECT shard_name, nodeid FROM fdwshard.shards WHERE table_name = format('%I.%I', :'sch2', :'tab2')::regclass;
SELECT n, rows_on(n, shard(:'sch2', :'tab2', 8899 + n)) FROM generate_series(1, 3) n;
SELECT count(*) FROM :"tab2";

-- CREATE INDEX and unique keys; DROP INDEX and DROP CONSTRAINT by the names given.
CREATE INDEX "Idx ""i""; --" ON :"tab2" ("Vâl ""2""; --", lower("New; Col"));
ALTER TABLE :"tab2" ADD CONSTRAINT "Uq 'u' ""x""" UNIQUE (:"key", "Vâl ""2""; --");
CREATE UNIQUE INDEX "Uidx ""j""; --" ON :"tab2" (:"key", "MiXeD Case");
SELECT n, shard_indexes(n, shard(:'sch2', :'tab2', 8899 + n)) FROM generate_series(1, 3) n;
INSERT INTO :"tab2" (:"key", "Vâl ""2""; --") VALUES (4, 'v4');
DROP INDEX "Uidx ""j""; --";
DROP INDEX "Idx ""i""; --";
ALTER TABLE :"tab2" DROP CONSTRAINT "Uq 'u' ""x""";
SELECT n, shard_indexes(n, shard(:'sch2', :'tab2', 8899 + n)) FROM generate_series(1, 3) n;

-- VACUUM and ANALYZE with options and a column list.
VACUUM (ANALYZE, VERBOSE false, INDEX_CLEANUP on) :"tab2" ("Vâl ""2""; --", :"key");
ANALYZE (SKIP_LOCKED) :"tab2" ("New; Col");
SELECT n, on_node(n, format('SELECT string_agg(attname, %L ORDER BY attname) FROM pg_stats WHERE schemaname = %L AND tablename = %L',
    ', ', :'sch2', :'tab2' || '_' || (8899 + n))) FROM generate_series(2, 3) n;

-- GRANT, REVOKE and OWNER TO with a role with such a name, and with CURRENT_USER.
CREATE ROLE :"role";
SELECT on_node(n, format('CREATE ROLE %I', :'role')) FROM unnest(ARRAY[2, 3]) n;
GRANT SELECT, UPDATE ("Vâl ""2""; --") ON :"tab2" TO :"role", CURRENT_USER WITH GRANT OPTION;
SELECT n, on_node(n, format($$SELECT relacl::text || ' ' || (SELECT attacl::text FROM pg_attribute
    WHERE attrelid = %1$L::regclass AND attname = %2$L) FROM pg_class WHERE oid = %1$L::regclass$$,
    shard(:'sch2', :'tab2', 8899 + n), 'Vâl "2"; --')) FROM generate_series(1, 3) n;
REVOKE UPDATE ("Vâl ""2""; --") ON :"tab2" FROM :"role";
REVOKE ALL ON :"tab2" FROM CURRENT_USER, :"role";
SELECT n, on_node(n, format($$SELECT coalesce(relacl::text, 'default') FROM pg_class WHERE oid = %L::regclass$$,
    shard(:'sch2', :'tab2', 8899 + n))) FROM generate_series(1, 3) n;

ALTER TABLE :"tab2" OWNER TO :"role";
SELECT n, on_node(n, format('SELECT relowner::regrole::text FROM pg_class WHERE oid = %L::regclass',
    shard(:'sch2', :'tab2', 8899 + n))) FROM generate_series(1, 3) n;
ALTER TABLE :"tab2" OWNER TO CURRENT_USER;
SELECT n, on_node(n, format('SELECT relowner::regrole::text FROM pg_class WHERE oid = %L::regclass',
    shard(:'sch2', :'tab2', 8899 + n))) FROM generate_series(1, 3) n;

-- TRUNCATE; undistribute_table brings rows and keys back into one table; DROP.
INSERT INTO :"tab2" (:"key", "Vâl ""2""; --") VALUES (100, 'kept');
BEGIN;
TRUNCATE :"tab2";
SELECT n, rows_on(n, shard(:'sch2', :'tab2', 8899 + n)) FROM generate_series(1, 3) n;
ROLLBACK;
ALTER TABLE :"tab2" ADD CONSTRAINT "Pk ""p""; --" PRIMARY KEY (:"key", "Vâl ""2""; --");
CREATE MATERIALIZED VIEW "Mv ""m""; --" AS SELECT count(*) FROM :"tab2";
SELECT undistribute_table(format('%I.%I', :'sch2', :'tab2')::regclass);
DROP MATERIALIZED VIEW "Mv ""m""; --";
SELECT undistribute_table(format('%I.%I', :'sch2', :'tab2')::regclass);
SELECT count(*), count(DISTINCT :"key") FROM :"tab2";
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = format('%I.%I', :'sch2', :'tab2')::regclass ORDER BY 1;
SELECT n, on_node(n, format('SELECT count(*) FROM pg_class WHERE relnamespace = %L::regnamespace',
    quote_ident(:'sch2'))) AS relations FROM unnest(ARRAY[2, 3]) n;
SELECT create_distributed_table(format('%I.%I', :'sch2', :'tab2')::regclass, :'key', shard_count := 2);
SELECT n, rows_on(n, shard(:'sch2', :'tab2', 8902 + n)) FROM generate_series(1, 2) n;
DROP TABLE :"tab2";
SELECT n, on_node(n, format('SELECT count(*) FROM pg_class WHERE relnamespace = %L::regnamespace',
    quote_ident(:'sch2'))) AS relations FROM unnest(ARRAY[2, 3]) n;

-- undistribute_table runs with search_path = pg_catalog: a shard key read from a worker (where
-- pg_catalog is the search_path) names pg_catalog.lower there, and must here too, whatever lower()
-- the caller's search_path finds first.
CREATE FUNCTION :"sch".lower(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT pg_catalog.upper($1)';
SELECT fdwshard_set_node_property(1, 'should_have_shards', false);
CREATE TABLE :"sch"."Lw" (k int, t text);
SELECT create_distributed_table(format('%I.%I', :'sch', 'Lw')::regclass, 'k', shard_count := 2);
SELECT fdwshard_set_node_property(1, 'should_have_shards', true);
CREATE UNIQUE INDEX "Lw key" ON :"sch"."Lw" (k, pg_catalog.lower(t));
SET search_path = :"sch", pg_catalog;
SELECT undistribute_table(format('%I.%I', :'sch', 'Lw')::regclass);
SET search_path = public;
SELECT pg_get_indexdef(format('%I.%I', :'sch', 'Lw key')::regclass);

-- Nothing else ran on the workers.
SELECT n, on_node(n, 'SELECT count(*) FROM public.hostile_victim') AS victim FROM unnest(ARRAY[2, 3]) n;

DROP SCHEMA :"sch" CASCADE;
DROP SCHEMA :"sch2" CASCADE;
DROP ROLE :"role";
DROP FUNCTION public.shard(text, text, int), public.rows_on(int, text);
SELECT on_node(n, format('DROP SCHEMA %I CASCADE', :'sch')) FROM unnest(ARRAY[2, 3]) n;
SELECT on_node(n, format('DROP SCHEMA %I CASCADE', :'sch2')) FROM unnest(ARRAY[2, 3]) n;
SELECT on_node(n, format('DROP ROLE %I', :'role')) FROM unnest(ARRAY[2, 3]) n;
SELECT on_node(n, 'DROP TABLE public.hostile_victim') FROM unnest(ARRAY[2, 3]) n;
