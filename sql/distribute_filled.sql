-- create_distributed_table on tables that hold rows: every row moves into its shard unchanged.
CREATE SCHEMA distribute_filled;
SET search_path = distribute_filled, public;
SET fdwshard.next_shard_id = 12700;
\pset null '(null)'
-- Values typed and shown under a session's own settings; the shards get them exactly.
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Pacific/Chatham';
SET extra_float_digits = 0;

-- filled: an identity column, a dropped column, text, numeric, timestamptz, bytea, arrays, a
-- stored generated column and a CHECK constraint; some rows tricky, 3,000 plain.
CREATE TABLE filled (id int GENERATED ALWAYS AS IDENTITY, k int NOT NULL, gone text, t text, n numeric,
                     at timestamptz, b bytea, tags text[], grid int[], f float8,
                     twice numeric GENERATED ALWAYS AS (n * 2) STORED, CHECK (k >= 0));
ALTER TABLE filled DROP COLUMN gone;
INSERT INTO filled (k, t, n, at, b, tags, grid, f) VALUES
    (1, 'héllo wörld ☃ 日本語', 1.00, '31/12/2023 23:59:59.123456', '\x00ff5c0a09', '{a,b}', '{1,NULL,3}', 0.1),
    (2, 'it''s "quoted"', 1.0, '01/01/2024 00:00', '', '{"a,b","\"q\"",NULL,"\\"}', '{}', -0.0),
    (3, E'tab\there', 123456789012345678901234567890.123456789, 'infinity', '\x5c4e', '{"",NULL}', '{{1,2},{3,4}}', 'NaN'),
    (4, E'new\nline and\r\nCRLF', 'NaN', '-infinity', NULL, '{}', NULL, 'Infinity'),
    (5, E'back\\slash and \\N and \\.', -0.0001, '15/03/0044 12:00 BC', '\x', NULL, '{-1}', 1e308),
    (6, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (7, '', 0, '29/02/2024 12:34:56+13:45', '\x5c', '{"\t","\n"}', '{0}', 3.141592653589793),
    (8, '\N', 1e-20, '10/03/2024 02:30', '\x0d0a', '{"NULL"}', '{2147483647}', -1e-300);
INSERT INTO filled (k, t, n, at, b, tags, grid, f)
SELECT g % 997, 'row ' || g, g / 7.0, '01/06/2024 00:00'::timestamptz + g * interval '1 minute',
       int4send(g), ARRAY['x' || g], ARRAY[g, -g], g / 3.0
FROM generate_series(1, 3000) g;
-- The rows as they were, generated column and identity included.
CREATE TABLE plain_filled AS SELECT * FROM filled;

-- Six shards: two local, two on each worker.
SELECT create_distributed_table('filled', 'k', shard_count := 6);
SELECT nodeid, count(*) AS shards FROM fdwshard.shards WHERE table_name = 'filled'::regclass GROUP BY 1 ORDER BY 1;
-- Every row, compared as text (numeric scale, float digits, timestamps under DateStyle): none missing, none added.
SELECT count(*) AS missing FROM (SELECT src::text FROM plain_filled src EXCEPT ALL SELECT dst::text FROM filled dst) x;
SELECT count(*) AS added FROM (SELECT dst::text FROM filled dst EXCEPT ALL SELECT src::text FROM plain_filled src) x;
SELECT count(*) AS missing FROM (SELECT * FROM plain_filled EXCEPT ALL SELECT * FROM filled) x;
SELECT count(*) AS added FROM (SELECT * FROM filled EXCEPT ALL SELECT * FROM plain_filled) x;
-- The tricky rows as the shards return them.
SELECT id, k, to_json(t) AS t, n, at, b, to_json(tags) AS tags, grid, f, twice FROM filled WHERE k < 9 AND id <= 8 ORDER BY id;
-- Rows per node, as each shard holds them, each in the shard of its hash.
SELECT s.nodeid, count(*) AS rows, count(*) FILTER (WHERE s.shardid <> get_shard_id_for_distribution_column('filled', f.k)) AS misplaced
FROM filled f JOIN fdwshard.shards s ON s.shard_name = f.tableoid::regclass::text GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM plain_filled;
-- The generated column was computed again by each shard, the same as before.
SELECT count(*) FILTER (WHERE twice IS DISTINCT FROM n * 2) AS wrong_twice FROM filled;
-- The identity sequence goes on where it was; the generated column of a new row on a worker's shard.
INSERT INTO filled (k, t, n) VALUES (4, 'after', 2.5) RETURNING id, k, t, n, twice;
SELECT s.nodeid FROM fdwshard.shards s WHERE s.shardid = get_shard_id_for_distribution_column('filled', 4);

-- Every shard on the coordinator: PostgreSQL's tuple routing moves the rows.
CREATE TABLE local_filled (id int GENERATED ALWAYS AS IDENTITY, k int NOT NULL, gone text, t text, n numeric,
                           at timestamptz, b bytea, tags text[], grid int[], f float8,
                           twice numeric GENERATED ALWAYS AS (n * 2) STORED, CHECK (k >= 0));
ALTER TABLE local_filled DROP COLUMN gone;
INSERT INTO local_filled (id, k, t, n, at, b, tags, grid, f) OVERRIDING SYSTEM VALUE
SELECT id, k, t, n, at, b, tags, grid, f FROM plain_filled;
SELECT create_distributed_table('local_filled', 'k', shard_count := 1, colocate_with := 'none');
SELECT nodeid, count(*) AS shards FROM fdwshard.shards WHERE table_name = 'local_filled'::regclass GROUP BY 1;
SELECT count(*) AS missing FROM (SELECT src::text FROM plain_filled src EXCEPT ALL SELECT dst::text FROM local_filled dst) x;
SELECT count(*) AS added FROM (SELECT dst::text FROM local_filled dst EXCEPT ALL SELECT src::text FROM plain_filled src) x;

-- An empty table.
CREATE TABLE empty (k int, v text);
SELECT create_distributed_table('empty', 'k', shard_count := 3);
SELECT count(*) FROM empty;

-- A row that breaks a CHECK constraint added NOT VALID: the move fails on the shard holding it
-- (a worker's, then the coordinator's), and nothing is left: no shard, no catalog row, the table
-- as it was with all its rows.
CREATE TABLE bad (k int, v text);
INSERT INTO bad SELECT g, 'v' || g FROM generate_series(1, 2000) g;
ALTER TABLE bad ADD CONSTRAINT bad_v CHECK (v <> 'v7') NOT VALID;
SELECT s.nodeid FROM fdwshard.shards s WHERE s.shardid = get_shard_id_for_distribution_column('filled', 7);
SELECT create_distributed_table('bad', 'k', shard_count := 6);
SELECT c.relkind, (SELECT count(*) FROM bad) AS rows,
       (SELECT count(*) FROM pg_class WHERE relname LIKE 'bad\_%' AND relnamespace = 'distribute_filled'::regnamespace) AS shard_relations,
       (SELECT count(*) FROM fdwshard.distributed_table WHERE logicalrelid = 'bad'::regclass) AS catalog_rows,
       (SELECT count(*) FROM fdwshard.shard s LEFT JOIN pg_class r ON r.oid = s.shard_relid WHERE r.oid IS NULL) AS orphan_shards
FROM pg_class c WHERE c.oid = 'bad'::regclass;
SELECT fdwshard.run_command_on_node(nodeid, $$SELECT count(*) FROM pg_tables WHERE schemaname = 'distribute_filled' AND tablename LIKE 'bad\_%'$$)
FROM fdwshard.nodes WHERE NOT is_local ORDER BY nodeid;
ALTER TABLE bad DROP CONSTRAINT bad_v;
ALTER TABLE bad ADD CONSTRAINT bad_v CHECK (v <> 'v3') NOT VALID;
SELECT s.nodeid FROM fdwshard.shards s WHERE s.shardid = get_shard_id_for_distribution_column('filled', 3);
SELECT create_distributed_table('bad', 'k', shard_count := 6);
SELECT c.relkind, (SELECT count(*) FROM bad) AS rows FROM pg_class c WHERE c.oid = 'bad'::regclass;

-- Rolled back: the table is plain again, with every row.
BEGIN;
SELECT create_distributed_table('plain_filled', 'k', shard_count := 6);
SELECT count(*) FROM plain_filled;
ROLLBACK;
SELECT relkind, (SELECT count(*) FROM plain_filled) AS rows FROM pg_class WHERE oid = 'plain_filled'::regclass;

RESET DateStyle;
RESET TimeZone;
RESET extra_float_digits;
SET client_min_messages = warning;
DROP SCHEMA distribute_filled CASCADE;
