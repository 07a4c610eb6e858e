-- Operating a cluster: a refused add uses no node id, a worker's address changes (to the same
-- server only), commands run on the nodes under the caller's search_path, one or all of them,
-- a literal's shard, and every node checked now.
\getenv worker1_port WORKER1_PORT
\getenv worker2_port WORKER2_PORT
SELECT current_setting('port') AS coordinator_port \gset
SET fdwshard.next_shard_id = 32000;

-- refusal(sql): the error's SQLSTATE, message, detail, hint and the context lines naming a node;
-- ports and system identifiers vary.
CREATE FUNCTION pg_temp.refusal(sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE detail text; hint text; context text;
BEGIN
    EXECUTE sql;
    RETURN NEXT 'ok';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT, context = PG_EXCEPTION_CONTEXT;
    RETURN NEXT regexp_replace(SQLSTATE || ': ' || SQLERRM, ':[0-9]+ ', ':<port> ', 'g');
    IF detail <> '' THEN
        RETURN NEXT 'DETAIL: ' || regexp_replace(detail, '[0-9]{12,}', '<system identifier>', 'g');
    END IF;
    IF hint <> '' THEN
        RETURN NEXT 'HINT: ' || hint;
    END IF;
    RETURN QUERY SELECT 'CONTEXT: ' || regexp_replace(line, ':[0-9]+\)', ':<port>)')
                 FROM unnest(string_to_array(context, E'\n')) line WHERE line LIKE 'while % node %';
END $$;

-- The suite's schema, on every node at once (a name that needs quoting).
SELECT * FROM fdwshard.run_command_on_all_nodes('CREATE SCHEMA "Life ""Cycle"""');
SET search_path = "Life ""Cycle""", public;

-- A refused fdwshard_add_node uses no node id: the next add gets the id this one would have had.
CREATE TEMP TABLE next_node_id AS SELECT last_value, is_called FROM fdwshard.node_nodeid_seq;
SELECT public.try(format('SELECT fdwshard_add_node(%L, %s)', '127.0.0.1', 1));
SELECT public.try(format('SELECT fdwshard_add_node(%L, %s)', '127.0.0.1', :coordinator_port), :'coordinator_port');
SELECT (SELECT (last_value, is_called) FROM fdwshard.node_nodeid_seq) = (SELECT (last_value, is_called) FROM next_node_id)
    AS no_node_id_used;
SELECT count(*) AS nodes FROM fdwshard.nodes;

-- fdwshard_update_node: another server is refused (worker 2, or the coordinator, for node 2),
-- as are a registered address, the coordinator's own row, and a port out of range.
SELECT pg_temp.refusal(format('SELECT fdwshard_update_node(2, %L, %s)', 'localhost', :worker2_port));
SELECT pg_temp.refusal(format('SELECT fdwshard_update_node(2, %L, %s)', '127.0.0.1', :coordinator_port));
SELECT pg_temp.refusal(format('SELECT fdwshard_update_node(2, %L, %s)', '127.0.0.1', :worker2_port));
SELECT pg_temp.refusal(format('SELECT fdwshard_update_node(1, %L, %s)', 'localhost', :worker1_port));
SELECT pg_temp.refusal('SELECT fdwshard_update_node(2, ''localhost'', 0)');
SELECT pg_temp.refusal('SELECT fdwshard_update_node(9, ''localhost'', 5432)');
-- Nothing changed: the catalog row and the server still say 127.0.0.1 and worker 1's port.
SELECT n.nodeid, n.host, n.port = :worker1_port AS worker1_port,
       array(SELECT o FROM unnest(s.srvoptions) o WHERE o LIKE 'host=%') AS server_host,
       s.srvoptions @> ARRAY['port=' || :worker1_port] AS server_port
FROM fdwshard.node n JOIN pg_foreign_server s ON s.srvname = n.server_name WHERE n.nodeid = 2;

-- Another spelling of the same server is accepted: the catalog and the server follow, and the
-- shards on it are reached there.
CREATE TABLE events (tenant_id int PRIMARY KEY, v text);
SELECT create_distributed_table('events', 'tenant_id', shard_count := 4);
INSERT INTO events SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT fdwshard_update_node(2, 'localhost', :worker1_port);
SELECT n.nodeid, n.host, n.port = :worker1_port AS worker1_port,
       array(SELECT o FROM unnest(s.srvoptions) o WHERE o LIKE 'host=%') AS server_host
FROM fdwshard.node n JOIN pg_foreign_server s ON s.srvname = n.server_name WHERE n.nodeid = 2;
SELECT nodeid, host, count(*) AS shards FROM fdwshard.shards WHERE table_name = 'events'::regclass GROUP BY 1, 2 ORDER BY 1;
SELECT count(*), sum(tenant_id) FROM events;
SELECT fdwshard_update_node(2, '127.0.0.1', :worker1_port);
SELECT nodeid, host FROM fdwshard.nodes WHERE nodeid = 2;

-- Only superusers change nodes, even with EXECUTE granted.
CREATE ROLE regress_lifecycle_user;
GRANT EXECUTE ON FUNCTION fdwshard_update_node(int, text, int) TO regress_lifecycle_user;
SET ROLE regress_lifecycle_user;
SELECT pg_temp.refusal(format('SELECT fdwshard_update_node(2, %L, %s)', 'localhost', :worker1_port));
RESET ROLE;
REVOKE EXECUTE ON FUNCTION fdwshard_update_node(int, text, int) FROM regress_lifecycle_user;
DROP ROLE regress_lifecycle_user;

-- A role whose user mapping has a password, on workers that trust the coordinator: postgres_fdw
-- and fdwshard refuse to connect without a password (see README, Operations), naming the node.
-- (roles are per server: on every node)
SELECT * FROM fdwshard.run_command_on_all_nodes('CREATE ROLE regress_lifecycle_reader');
GRANT USAGE ON SCHEMA "Life ""Cycle""" TO regress_lifecycle_reader;
GRANT SELECT ON events TO regress_lifecycle_reader;
CREATE USER MAPPING FOR regress_lifecycle_reader SERVER fdwshard_node_2 OPTIONS (user 'postgres', password 'secret');
SET ROLE regress_lifecycle_reader;
SELECT pg_temp.refusal('SELECT v FROM events WHERE tenant_id = 42');
BEGIN;
SELECT pg_temp.refusal('SELECT v FROM events WHERE tenant_id = 42');
ROLLBACK;
RESET ROLE;
-- A superuser can let the mapping go without one (the worker then trusts the coordinator for it).
ALTER USER MAPPING FOR regress_lifecycle_reader SERVER fdwshard_node_2 OPTIONS (ADD password_required 'false');
SET ROLE regress_lifecycle_reader;
SELECT v FROM events WHERE tenant_id = 42;
RESET ROLE;
DROP USER MAPPING FOR regress_lifecycle_reader SERVER fdwshard_node_2;
REVOKE ALL ON events FROM regress_lifecycle_reader;
REVOKE ALL ON SCHEMA "Life ""Cycle""" FROM regress_lifecycle_reader;
SELECT * FROM fdwshard.run_command_on_all_nodes('DROP ROLE regress_lifecycle_reader');

-- run_command_on_node runs under the caller's search_path: unqualified names are the suite's schema.
SELECT fdwshard.run_command_on_node(2, 'CREATE TABLE plain (a int)');
SELECT fdwshard.run_command_on_node(2, 'INSERT INTO plain VALUES (1), (2)');
SELECT fdwshard.run_command_on_node(2, 'SELECT count(*) FROM plain');
SELECT fdwshard.run_command_on_node(2, $$SELECT relnamespace::regnamespace FROM pg_class WHERE relname = 'plain'$$);
SELECT fdwshard.run_command_on_node(2, $$SELECT pg_catalog.current_setting('search_path')$$);
-- ... for that command only: fdwshard's own statements on that connection are unchanged, and a
-- failed command leaves nothing behind.
SELECT public.try($$SELECT fdwshard.run_command_on_node(2, 'SELECT * FROM no_such_table')$$);
BEGIN;
SELECT count(*) FROM events;
SELECT fdwshard.run_command_on_node(2, 'SELECT count(*) FROM plain');
SELECT count(*) FROM events WHERE tenant_id = 42;
COMMIT;

-- run_command_on_all_nodes: one row per node, the coordinator included; a node's error is its row.
SELECT * FROM fdwshard.run_command_on_all_nodes('SELECT count(*) FROM plain');
SELECT * FROM fdwshard.run_command_on_all_nodes('SELEC 1');
SELECT * FROM fdwshard.run_command_on_all_nodes($$SELECT pg_catalog.current_setting('search_path')$$);
-- In a transaction: the failed node's command is rolled back alone (a savepoint), the others
-- go with the transaction.
BEGIN;
SELECT * FROM fdwshard.run_command_on_all_nodes('CREATE TABLE plain (a int)');
SELECT * FROM fdwshard.run_command_on_all_nodes('SELECT count(*) FROM plain');
ROLLBACK;
SELECT * FROM fdwshard.run_command_on_all_nodes($$SELECT count(*) FROM pg_tables WHERE tablename = 'plain'$$);
SELECT public.try($$SELECT * FROM fdwshard.run_command_on_all_nodes(' ')$$);
-- Transaction control would end the caller's transaction or the workers' remote ones: refused.
SELECT public.try($$SELECT * FROM fdwshard.run_command_on_all_nodes('COMMIT')$$);
SELECT public.try($$SELECT fdwshard.run_command_on_node(2, 'SELECT 1; ROLLBACK')$$);
SELECT fdwshard.run_command_on_node(2, 'SELECT count(*) FROM plain');

-- get_shard_id_for_distribution_column takes a literal as the distribution column's type, as INSERT does.
SELECT get_shard_id_for_distribution_column('events', '42') AS literal,
       get_shard_id_for_distribution_column('events', 42) AS int4,
       get_shard_id_for_distribution_column('events', 42::bigint) AS int8;
SELECT shardid = get_shard_id_for_distribution_column('events', '42') AS covers_it FROM fdwshard.shards
WHERE table_name = 'events'::regclass AND fdwshard_hash(42) BETWEEN min_hash AND max_hash;
SELECT public.try($$SELECT get_shard_id_for_distribution_column('events', 'forty-two')$$);
SELECT public.try($$SELECT get_shard_id_for_distribution_column('events', 'forty-two'::text)$$);

-- fdwshard_check_nodes: every node tried now (a worker stopped: test/fault/extension_lifecycle.sh).
SELECT * FROM fdwshard_check_nodes();
SELECT nodeid, health FROM fdwshard.nodes;

DROP TABLE events;
SELECT * FROM fdwshard.run_command_on_all_nodes('DROP SCHEMA "Life ""Cycle""" CASCADE');
