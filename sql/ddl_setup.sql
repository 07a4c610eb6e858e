-- Helpers of the ddl_* tests: what a shard looks like on its node, read there directly.
-- on_node(node, sql): the first value sql returns on node 1 (the coordinator), 2 or 3 (the workers;
-- there under search_path pg_catalog, so that definitions show every name schema-qualified).
CREATE FUNCTION public.on_node(node int, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    answer text;
BEGIN
    IF node = 1 THEN
        EXECUTE 'SELECT (' || sql || ')::text' INTO STRICT answer;
        RETURN answer;
    END IF;
    RETURN fdwshard.run_command_on_node(node, 'SET search_path = pg_catalog; ' || sql);
END $$;
-- Columns: name type [not null].
CREATE FUNCTION public.shard_columns(node int, rel text) RETURNS text LANGUAGE sql AS $$
SELECT public.on_node(node, format($q$SELECT string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod)
    || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum)
    FROM pg_attribute WHERE attrelid = %L::regclass AND attnum > 0 AND NOT attisdropped$q$, rel)) $$;
-- Indexes, as pg_get_indexdef shows them.
CREATE FUNCTION public.shard_indexes(node int, rel text) RETURNS text LANGUAGE sql AS $$
SELECT public.on_node(node, format($q$SELECT coalesce(string_agg(pg_get_indexdef(indexrelid), E'\n' ORDER BY 1), '(none)')
    FROM pg_index WHERE indrelid = %L::regclass$q$, rel)) $$;
-- Constraints other than NOT NULL: name definition.
CREATE FUNCTION public.shard_constraints(node int, rel text) RETURNS text LANGUAGE sql AS $$
SELECT public.on_node(node, format($q$SELECT coalesce(string_agg(conname || ' ' || pg_get_constraintdef(oid), E'\n' ORDER BY conname), '(none)')
    FROM pg_constraint WHERE conrelid = %L::regclass$q$, rel)) $$;
