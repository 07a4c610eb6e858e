-- create_distributed_table makes each shard an inheritance child of a staging table, then a
-- partition in the catalog (operations/shard_partitions.cpp): the shards must be exactly what
-- CREATE [FOREIGN] TABLE ... PARTITION OF gives a partition of the same parent.
CREATE SCHEMA shard_partitions;
SET search_path = shard_partitions, public;
SET fdwshard.next_shard_id = 72000;

CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;

CREATE TABLE dist (
    id serial PRIMARY KEY,
    code text COLLATE "C" NOT NULL DEFAULT 'none',
    amount numeric CHECK (amount > 0),
    doubled numeric GENERATED ALWAYS AS (amount * 2) STORED,
    note text COMPRESSION pglz,
    UNIQUE (id, code)
);
ALTER TABLE dist ALTER COLUMN note SET STORAGE EXTERNAL;
SELECT create_distributed_table('dist', 'id', shard_count := 3);

-- One shard on the coordinator, two on the workers.
SELECT s.shard_index, c.relkind, c.relispartition, i.inhparent::regclass AS parent
FROM fdwshard.shard s JOIN pg_class c ON c.oid = s.shard_relid JOIN pg_inherits i ON i.inhrelid = c.oid
WHERE s.logicalrelid = 'dist'::regclass ORDER BY s.shard_index;
SELECT count(*) AS staging_tables FROM pg_class WHERE relname LIKE 'fdwshard_staging%';
SELECT relhassubclass FROM pg_class WHERE oid = 'dist'::regclass;

-- What PostgreSQL itself makes: a parent of the same shape, its trigger, a local and a foreign partition.
CREATE TABLE ref (LIKE dist INCLUDING COMPRESSION INCLUDING CONSTRAINTS INCLUDING DEFAULTS INCLUDING GENERATED
    INCLUDING STORAGE) PARTITION BY RANGE (pg_catalog.fdwshard_hash(id));
CREATE TRIGGER ref_trigger AFTER UPDATE OF id ON ref FOR EACH ROW EXECUTE FUNCTION noop();
CREATE TABLE ref_local PARTITION OF ref FOR VALUES FROM (MINVALUE) TO (0);
SELECT format('CREATE FOREIGN TABLE ref_foreign PARTITION OF ref FOR VALUES FROM (0) TO (MAXVALUE) SERVER %I',
              s.srvname)
FROM fdwshard.shard sh JOIN pg_foreign_table ft ON ft.ftrelid = sh.shard_relid
JOIN pg_foreign_server s ON s.oid = ft.ftserver
WHERE sh.logicalrelid = 'dist'::regclass LIMIT 1 \gexec

-- A relation's shape as a partition: columns, defaults, constraints, inheritance, dependencies, triggers.
CREATE FUNCTION shape(rel regclass) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT format('column %s %s not null %s local %s inherited %s storage %s compression %s generated %s '
                  'identity %s collation %s default %s', a.attname, format_type(a.atttypid, a.atttypmod),
                  a.attnotnull, a.attislocal, a.attinhcount, a.attstorage, a.attcompression, a.attgenerated,
                  a.attidentity, a.attcollation::regcollation, coalesce(pg_get_expr(d.adbin, d.adrelid), '-'))
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %s %s local %s inherited %s valid %s no inherit %s: %s', conname, contype, conislocal,
                  coninhcount, convalidated, connoinherit, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE conrelid = rel
    UNION ALL
    SELECT format('inherits seqno %s detach pending %s from a %s', i.inhseqno, i.inhdetachpending, p.relkind)
    FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = rel
    UNION ALL
    SELECT format('partition %s bound %s', relispartition, relpartbound IS NOT NULL) FROM pg_class WHERE oid = rel
    UNION ALL
    SELECT format('depends %s on %s%s', d.deptype, d.refclassid::regclass,
                  CASE WHEN d.refclassid = 'pg_class'::regclass THEN ' (' || p.relkind::text || ')' ELSE '' END)
    FROM pg_depend d LEFT JOIN pg_class p ON p.oid = d.refobjid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = rel AND d.objsubid = 0
    UNION ALL
    SELECT format('trigger internal %s enabled %s type %s has parent %s depends %s', t.tgisinternal, t.tgenabled,
                  t.tgtype, t.tgparentid <> 0,
                  (SELECT string_agg(d.deptype::text, '' ORDER BY d.deptype) FROM pg_depend d
                   WHERE d.classid = 'pg_trigger'::regclass AND d.objid = t.oid))
    FROM pg_trigger t WHERE t.tgrelid = rel
$$;

-- The local shard is what PARTITION OF makes, and so is a foreign shard (but for fdwshard's own
-- keys: each shard's PRIMARY KEY / UNIQUE, and their placeholders, which LIKE leaves out of ref).
CREATE FUNCTION shape_as_partition(rel regclass) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT s FROM shape(rel) s WHERE s NOT LIKE '%fdwshard_shard_key%' AND s NOT LIKE '%\_720__ %'
$$;
SELECT s.shard_relid::oid AS local_shard FROM fdwshard.shard s JOIN pg_class c ON c.oid = s.shard_relid
WHERE s.logicalrelid = 'dist'::regclass AND c.relkind = 'r' \gset
SELECT s.shard_relid::oid AS foreign_shard FROM fdwshard.shard s JOIN pg_class c ON c.oid = s.shard_relid
WHERE s.logicalrelid = 'dist'::regclass AND c.relkind = 'f' LIMIT 1 \gset
SELECT shape FROM shape(:local_shard) ORDER BY 1;
(SELECT shape_as_partition(:local_shard) EXCEPT ALL SELECT shape_as_partition('ref_local'))
UNION ALL (SELECT shape_as_partition('ref_local') EXCEPT ALL SELECT shape_as_partition(:local_shard));
SELECT shape FROM shape(:foreign_shard) ORDER BY 1;
(SELECT shape_as_partition(:foreign_shard) EXCEPT ALL SELECT shape_as_partition('ref_foreign'))
UNION ALL (SELECT shape_as_partition('ref_foreign') EXCEPT ALL SELECT shape_as_partition(:foreign_shard));

-- The partitions work as partitions: routing, defaults and generated columns through the parent,
-- each row in the shard its hash names, and the partition constraint.
INSERT INTO dist (amount, note) SELECT g, 'note ' || g FROM generate_series(1, 30) g;
SELECT count(*), sum(doubled), count(DISTINCT code) FROM dist;
SELECT count(*) AS misplaced FROM dist d JOIN fdwshard.shard s ON s.shard_relid = d.tableoid
WHERE fdwshard_hash(d.id) NOT BETWEEN s.min_hash AND s.max_hash;
SELECT count(*) AS constraint_rows FROM ONLY pg_class c, LATERAL pg_get_partition_constraintdef(c.oid) def
WHERE c.oid = :local_shard AND def LIKE '%fdwshard_hash(id)%';
UPDATE dist SET id = id + 1000 WHERE id = 7;
SELECT id, tableoid = (SELECT shard_relid FROM fdwshard.shard WHERE logicalrelid = 'dist'::regclass AND
                       fdwshard_hash(1007) BETWEEN min_hash AND max_hash) AS right_shard
FROM dist WHERE id = 1007;

DROP TABLE ref;

-- DROP takes the shards with it: nothing left here or in the dependency catalog.
SELECT array_agg(shard_relid::oid) AS shard_oids FROM fdwshard.shard WHERE logicalrelid = 'dist'::regclass \gset
DROP TABLE dist;
SELECT count(*) AS left_behind FROM pg_class WHERE oid = ANY (:'shard_oids');
SELECT count(*) AS dependencies_left FROM pg_depend WHERE objid = ANY (:'shard_oids') OR refobjid = ANY (:'shard_oids');

DROP SCHEMA shard_partitions CASCADE;
