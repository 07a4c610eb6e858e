-- Nodes are servers, not address spellings: the coordinator and registered workers cannot be
-- added again under another name, and a refused add leaves nothing registered.
\getenv worker1_port WORKER1_PORT
CREATE SCHEMA nodes;
SET search_path = nodes;
SET fdwshard.next_shard_id = 4500;
SELECT current_setting('port') AS coordinator_port \gset

-- refusal(sql, hide): the error's SQLSTATE, message, detail and hint, with a varying port hidden.
CREATE FUNCTION refusal(sql text, hide text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE detail text; hint text;
BEGIN
    EXECUTE sql;
    RETURN NEXT 'ok';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN NEXT SQLSTATE || ': ' || replace(SQLERRM, hide, '<port>');
    RETURN NEXT 'DETAIL: ' || replace(detail, hide, '<port>');
    IF hint <> '' THEN
        RETURN NEXT 'HINT: ' || hint;
    END IF;
END $$;

-- What is registered before (the coordinator is node 1, registered as localhost).
SELECT nodeid, host, is_local FROM fdwshard.nodes;
-- Health as this coordinator last saw it: setup reached every worker (timestamps vary: only whether set).
SELECT nodeid, health, last_ok IS NOT NULL AS reached, last_error_at IS NULL AND last_error IS NULL AS no_error
FROM fdwshard.nodes;
CREATE TEMP TABLE registered AS
SELECT (SELECT count(*) FROM fdwshard.node) AS nodes,
       (SELECT count(*) FROM pg_foreign_server) AS servers,
       (SELECT count(*) FROM pg_user_mappings) AS mappings;

-- The coordinator itself, spelled as it is registered and otherwise: refused.
SELECT public.try(format('SELECT fdwshard_add_node(%L, %s)', 'localhost', :coordinator_port), :'coordinator_port');
SELECT public.try(format('SELECT fdwshard_add_node(%L, %s)', '127.0.0.1', :coordinator_port), :'coordinator_port');
SELECT refusal(format('SELECT fdwshard_add_node(%L, %s)', '127.0.0.1', :coordinator_port), :'coordinator_port');
-- The coordinator's address with another database: one address is one node.
SELECT public.try(format('SELECT fdwshard_add_node(%L, %s, %L)', 'localhost', :coordinator_port, 'postgres'), :'coordinator_port');

-- A worker registered as 127.0.0.1, spelled localhost: refused, naming the node it already is.
SELECT public.try(format('SELECT fdwshard_add_node(%L, %s)', 'localhost', :worker1_port), :'worker1_port');
SELECT refusal(format('SELECT fdwshard_add_node(%L, %s)', 'localhost', :worker1_port), :'worker1_port');

-- Nothing of the refused adds stayed: no node, no server, no user mapping.
SELECT (SELECT count(*) FROM fdwshard.node) = nodes AS same_nodes,
       (SELECT count(*) FROM pg_foreign_server) = servers AS same_servers,
       (SELECT count(*) FROM pg_user_mappings) = mappings AS same_mappings
FROM registered;

-- Every node knows what it is: the coordinator's identity is this server's.
SELECT nodeid, system_identifier = (SELECT system_identifier FROM pg_control_system()) AS this_server,
       system_identifier IS NOT NULL AS known
FROM fdwshard.node ORDER BY nodeid;

-- Distributing a table still works and reaches the workers.
CREATE TABLE t (k int PRIMARY KEY, v text);
INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 30) g;
SELECT create_distributed_table('t', 'k', shard_count := 3);
SELECT shardid, nodeid FROM fdwshard.shards WHERE table_name = 't'::regclass;
SELECT count(*) FROM t;

-- run_command_on_node: an empty command is an input error (22023), not a connection failure.
SELECT public.try($$SELECT fdwshard.run_command_on_node(2, '')$$);
SELECT public.try($$SELECT fdwshard.run_command_on_node(2, E' \n\t ')$$);
SELECT public.try($$SELECT fdwshard.run_command_on_node(2, '-- only a comment')$$);
SELECT public.try($$SELECT fdwshard.run_command_on_node(2, ';')$$);
SELECT fdwshard.run_command_on_node(2, 'SELECT 41 + 1');

DROP TABLE t;
DROP SCHEMA nodes CASCADE;
