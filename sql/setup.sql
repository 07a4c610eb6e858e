-- The extension, worker registration and node management. Runs first: later tests use nodes 2 and 3.
\getenv worker1_port WORKER1_PORT
\getenv worker2_port WORKER2_PORT

CREATE EXTENSION fdwshard CASCADE;
SELECT extname FROM pg_extension WHERE extname IN ('fdwshard', 'postgres_fdw') ORDER BY 1;

-- try(sql, hide): runs sql, returns 'ok' or "SQLSTATE: message" with a varying text hidden.
CREATE FUNCTION public.try(sql text, hide text DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || CASE WHEN hide IS NULL THEN SQLERRM ELSE replace(SQLERRM, hide, '<port>') END;
END $$;

-- The coordinator is node 1, local, holding shards.
SELECT nodeid, is_local, should_have_shards, server_name, port = current_setting('port')::int AS own_port
FROM fdwshard.nodes;

SELECT fdwshard_add_node('127.0.0.1', :worker1_port) AS worker1;
SELECT fdwshard_add_node('127.0.0.1', :worker2_port, current_database()) AS worker2;
SELECT nodeid, host, port IN (:worker1_port, :worker2_port) AS worker_port, dbname, is_local,
       should_have_shards, shard_count, server_name
FROM fdwshard.nodes;
SELECT srvname, array(SELECT o FROM unnest(srvoptions) o WHERE o NOT LIKE 'port=%') AS options
FROM pg_foreign_server ORDER BY srvname;
SELECT srvname, umuser::regrole FROM pg_user_mappings ORDER BY srvname;

-- The same host:port twice is refused.
SELECT try(format('SELECT fdwshard_add_node(%L, %s)', '127.0.0.1', :worker1_port), :'worker1_port');

-- A node that cannot be reached is refused and leaves nothing registered.
SELECT fdwshard_add_node('127.0.0.1', 1);
SELECT count(*) AS nodes FROM fdwshard.node;
SELECT count(*) AS servers FROM pg_foreign_server WHERE srvname LIKE 'fdwshard_node_%';

-- user/password pass through to the user mapping; a node without shards can be removed.
-- (another database of a registered server is another node)
SELECT fdwshard_add_node('localhost', :worker2_port, 'postgres', 'postgres', 'secret') AS extra \gset
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'fdwshard_node_' || :extra;
SELECT fdwshard_remove_node(:extra);
SELECT count(*) AS servers FROM pg_foreign_server WHERE srvname = 'fdwshard_node_' || :extra;
SELECT nodeid FROM fdwshard.nodes;

-- Node management errors.
SELECT fdwshard_remove_node(1);
SELECT fdwshard_remove_node(99);
SELECT fdwshard_set_node_property(2, 'bogus', true);
SELECT fdwshard_set_node_property(99, 'should_have_shards', true);
SELECT fdwshard_set_node_property(2, 'should_have_shards', false);
SELECT nodeid, should_have_shards FROM fdwshard.nodes;
SELECT fdwshard_set_node_property(2, 'should_have_shards', true);

-- Helpers of the multi_shard_* suites, which compare a distributed query with its plain copy.
-- query_rows(q): q's rows as text, in order; q runs as a statement of its own (as a subquery it
-- would be planned as part of the outer query, and never pushed down).
CREATE FUNCTION public.query_rows(q text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    a text[] := '{}';
    r record;
BEGIN
    FOR r IN EXECUTE q LOOP a := a || r::text; END LOOP;
    RETURN a;
END $$;
-- same_rows(q, p): q and p give the same rows (as multisets); same_rows_ordered: in the same order.
CREATE FUNCTION public.same_rows(q text, p text) RETURNS bool LANGUAGE sql AS $$
    SELECT (SELECT array_agg(x ORDER BY x) FROM unnest(public.query_rows(q)) x) IS NOT DISTINCT FROM
           (SELECT array_agg(x ORDER BY x) FROM unnest(public.query_rows(p)) x) $$;
CREATE FUNCTION public.same_rows_ordered(q text, p text) RETURNS bool LANGUAGE sql AS $$
    SELECT public.query_rows(q) = public.query_rows(p) $$;
-- plan_kind(q): how q's aggregates run: 'whole' on each shard, 'partial' aggregates combined, or 'ordinary'.
CREATE FUNCTION public.plan_kind(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    found text := 'ordinary';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line LIKE '%Grouped By: distribution column%' THEN RETURN 'whole'; END IF;
        IF line LIKE '%FdwShard Partial Aggregate%' THEN found := 'partial'; END IF;
    END LOOP;
    RETURN found;
END $$;
