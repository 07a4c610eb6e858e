-- fdwshard 0.4: catalog, SQL API and views (a fresh install; earlier versions run the fdwshard--0.1--0.2.sql, fdwshard--0.2--0.3.sql, fdwshard--0.3--0.4.sql chain through ALTER EXTENSION fdwshard UPDATE).
\echo Use "CREATE EXTENSION fdwshard CASCADE" to load this file. \quit

CREATE SCHEMA fdwshard;
GRANT USAGE ON SCHEMA fdwshard TO PUBLIC;

-- Catalog ---------------------------------------------------------------------------------------

-- Servers that hold shards. The coordinator is the one local node; workers have a postgres_fdw server.
CREATE TABLE fdwshard.node (
    nodeid int PRIMARY KEY,
    host text NOT NULL,
    port int NOT NULL CHECK (port BETWEEN 1 AND 65535),
    dbname text NOT NULL,
    is_local bool NOT NULL DEFAULT false,
    should_have_shards bool NOT NULL DEFAULT true,
    server_name name UNIQUE,
    -- What the server is, whatever its address is spelled like: pg_control_system()'s
    -- system_identifier (NULL for workers registered before 0.2), with dbname.
    system_identifier bigint,
    UNIQUE (host, port),
    UNIQUE (system_identifier, dbname),
    CHECK (is_local = (server_name IS NULL))
);
CREATE UNIQUE INDEX node_one_local ON fdwshard.node (is_local) WHERE is_local;
CREATE SEQUENCE fdwshard.node_nodeid_seq START 2 OWNED BY fdwshard.node.nodeid;

-- Tables whose shard i covers the same hash range and sits on the same node.
CREATE TABLE fdwshard.colocation_group (
    colocationid int PRIMARY KEY,
    shard_count int NOT NULL CHECK (shard_count BETWEEN 1 AND 64000),
    distribution_type regtype NOT NULL
);
CREATE SEQUENCE fdwshard.colocationid_seq OWNED BY fdwshard.colocation_group.colocationid;

CREATE TABLE fdwshard.distributed_table (
    logicalrelid regclass PRIMARY KEY,
    distribution_column name NOT NULL,
    colocationid int NOT NULL REFERENCES fdwshard.colocation_group
);

-- A shard is a hash range of one distributed table, stored in relation shard_relid.
CREATE TABLE fdwshard.shard (
    shardid bigint PRIMARY KEY,
    logicalrelid regclass NOT NULL REFERENCES fdwshard.distributed_table ON DELETE CASCADE,
    shard_index int NOT NULL CHECK (shard_index >= 0),
    min_hash int NOT NULL,
    max_hash int NOT NULL,
    shard_relid regclass NOT NULL UNIQUE,
    UNIQUE (logicalrelid, shard_index),
    CHECK (min_hash <= max_hash)
);
CREATE SEQUENCE fdwshard.shardid_seq START 102008 OWNED BY fdwshard.shard.shardid;
-- Shard tables are named <table>_<shardid> on the workers, and an earlier install of fdwshard (or
-- another coordinator) may have left some there: a new install starts its shard ids at the
-- milliseconds since 2025, past the ids of any install before it that took fewer than 1000 ids
-- per second of its life (DROP EXTENSION fdwshard CASCADE leaves none behind anyway).
SELECT pg_catalog.setval('fdwshard.shardid_seq', GREATEST(102008,
    ((pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) - 1735689600) * 1000)::bigint), false);

-- The node each shard lives on.
CREATE TABLE fdwshard.placement (
    shardid bigint PRIMARY KEY REFERENCES fdwshard.shard ON DELETE CASCADE,
    nodeid int NOT NULL REFERENCES fdwshard.node
);

-- Keys enforced shard by shard (none can live on the partitioned table): each shard has the
-- constraint or unique index <name>_<shardid>. Foreign keys pair shard i with the referenced
-- table's shard i (co-located).
CREATE TABLE fdwshard.shard_key (
    logicalrelid regclass NOT NULL REFERENCES fdwshard.distributed_table ON DELETE CASCADE,
    name name NOT NULL,
    kind "char" NOT NULL CHECK (kind IN ('p', 'u', 'i', 'f')), -- primary key, unique, unique index, foreign key
    referenced regclass REFERENCES fdwshard.distributed_table ON DELETE CASCADE,
    PRIMARY KEY (logicalrelid, name),
    CHECK ((kind = 'f') = (referenced IS NOT NULL))
);

GRANT SELECT ON ALL TABLES IN SCHEMA fdwshard TO PUBLIC;

-- The coordinator's own row is not dumped: CREATE EXTENSION makes it again, for the server restored into.
SELECT pg_catalog.pg_extension_config_dump('fdwshard.node', 'WHERE NOT is_local');
SELECT pg_catalog.pg_extension_config_dump('fdwshard.node_nodeid_seq', '');
SELECT pg_catalog.pg_extension_config_dump('fdwshard.colocation_group', '');
SELECT pg_catalog.pg_extension_config_dump('fdwshard.colocationid_seq', '');
SELECT pg_catalog.pg_extension_config_dump('fdwshard.distributed_table', '');
SELECT pg_catalog.pg_extension_config_dump('fdwshard.shard', '');
SELECT pg_catalog.pg_extension_config_dump('fdwshard.shardid_seq', '');
SELECT pg_catalog.pg_extension_config_dump('fdwshard.placement', '');
SELECT pg_catalog.pg_extension_config_dump('fdwshard.shard_key', '');

-- The coordinator is node 1 and holds shards until told otherwise.
INSERT INTO fdwshard.node (nodeid, host, port, dbname, is_local, should_have_shards, system_identifier)
VALUES (1, 'localhost', pg_catalog.current_setting('port')::int, pg_catalog.current_database(), true, true,
        (SELECT system_identifier FROM pg_catalog.pg_control_system()));

-- Views ----------------------------------------------------------------------------------------

-- Each worker's health as this coordinator last saw it (shared memory; the coordinator itself: NULL, 'ok').
CREATE FUNCTION fdwshard.node_health(server_name name, OUT health text, OUT last_ok timestamptz,
                                     OUT last_error_at timestamptz, OUT last_error text)
    AS 'MODULE_PATHNAME', 'fdwshard_node_health' LANGUAGE C VOLATILE;

CREATE VIEW fdwshard.nodes AS
SELECT nodeid, host, port, dbname, is_local, should_have_shards,
       (SELECT count(*) FROM fdwshard.placement p WHERE p.nodeid = n.nodeid) AS shard_count,
       server_name, h.health, h.last_ok, h.last_error_at, h.last_error
FROM fdwshard.node n, LATERAL fdwshard.node_health(n.server_name) h
ORDER BY nodeid;

-- Each shard's size measured on its node, every worker asked once for all of its shards (of table_name,
-- or of every distributed table): pg_total_relation_size, and pg_class.reltuples (NULL when never
-- vacuumed or analyzed). A worker that does not answer gives NULL sizes and a WARNING naming it, or
-- the error with nodes_must_answer.
CREATE FUNCTION fdwshard.shard_sizes(table_name regclass DEFAULT NULL, nodes_must_answer bool DEFAULT false,
                                     OUT shardid bigint, OUT rows_estimate bigint, OUT bytes bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'fdwshard_shard_sizes' LANGUAGE C VOLATILE;

-- Sizes (rows_estimate, bytes, size) are measured only when a query reads them: the planner removes
-- a LEFT JOIN to a subquery unique on its key whose columns nobody reads.
CREATE VIEW fdwshard.tables AS
SELECT t.logicalrelid AS table_name, t.distribution_column, g.shard_count, t.colocationid,
       z.rows_estimate, z.bytes, pg_catalog.pg_size_pretty(z.bytes) AS size
FROM fdwshard.distributed_table t JOIN fdwshard.colocation_group g USING (colocationid)
LEFT JOIN (SELECT s.logicalrelid,
                  CASE WHEN count(m.rows_estimate) = count(*) THEN sum(m.rows_estimate)::bigint END AS rows_estimate,
                  CASE WHEN count(m.bytes) = count(*) THEN sum(m.bytes)::bigint END AS bytes
           FROM fdwshard.shard_sizes() m JOIN fdwshard.shard s USING (shardid)
           GROUP BY s.logicalrelid) z ON z.logicalrelid = t.logicalrelid
ORDER BY t.logicalrelid::text;

CREATE VIEW fdwshard.shards AS
SELECT s.logicalrelid AS table_name, s.shardid, c.relname::text AS shard_name,
       s.min_hash, s.max_hash, p.nodeid, n.host, n.port, n.is_local,
       z.rows_estimate, z.bytes, pg_catalog.pg_size_pretty(z.bytes) AS size
FROM fdwshard.shard s
JOIN fdwshard.placement p USING (shardid)
JOIN fdwshard.node n USING (nodeid)
JOIN pg_catalog.pg_class c ON c.oid = s.shard_relid
LEFT JOIN (SELECT DISTINCT ON (m.shardid) m.shardid, m.rows_estimate, m.bytes FROM fdwshard.shard_sizes() m) z
       ON z.shardid = s.shardid
ORDER BY s.logicalrelid::text, s.shard_index;

GRANT SELECT ON fdwshard.nodes, fdwshard.tables, fdwshard.shards TO PUBLIC;

-- SQL API (in pg_catalog: callable unqualified, whatever the search_path) -----------------------

CREATE FUNCTION pg_catalog.fdwshard_hash(anyelement) RETURNS int4
    AS 'MODULE_PATHNAME', 'fdwshard_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION pg_catalog.fdwshard_hash(anyelement) IS 'shard hash (xxHash, signed 32 bits) of a value';

-- The placeholder a PRIMARY KEY or UNIQUE key N of a distributed table leaves on the table, so that
-- ON CONFLICT ON CONSTRAINT N finds it: N CHECK (fdwshard_shard_key(<key columns>)), always true.
CREATE FUNCTION pg_catalog.fdwshard_shard_key(VARIADIC "any") RETURNS bool
    AS 'MODULE_PATHNAME', 'fdwshard_shard_key' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pg_catalog.fdwshard_shard_key("any")
    IS 'placeholder of a shard key for ON CONFLICT ON CONSTRAINT (always true: each shard enforces the key)';

CREATE FUNCTION pg_catalog.fdwshard_add_node(host text, port int, dbname text DEFAULT pg_catalog.current_database())
    RETURNS int AS 'MODULE_PATHNAME', 'fdwshard_add_node' LANGUAGE C;
CREATE FUNCTION pg_catalog.fdwshard_add_node(host text, port int, dbname text, "user" text, password text DEFAULT NULL)
    RETURNS int AS 'MODULE_PATHNAME', 'fdwshard_add_node' LANGUAGE C;
COMMENT ON FUNCTION pg_catalog.fdwshard_add_node(text, int, text) IS 'register a worker node';

CREATE FUNCTION pg_catalog.fdwshard_remove_node(nodeid int) RETURNS void
    AS 'MODULE_PATHNAME', 'fdwshard_remove_node' LANGUAGE C STRICT;
CREATE FUNCTION pg_catalog.fdwshard_set_node_property(nodeid int, property text, value bool) RETURNS void
    AS 'MODULE_PATHNAME', 'fdwshard_set_node_property' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_add_node(text, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_add_node(text, int, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_remove_node(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_set_node_property(int, text, bool) FROM PUBLIC;

-- Two-phase commit: a recovery pass on demand (the background worker runs one every fdwshard.recovery_interval).
CREATE FUNCTION pg_catalog.fdwshard_recover_prepared_transactions() RETURNS int
    AS 'MODULE_PATHNAME', 'fdwshard_recover_prepared_transactions' LANGUAGE C;
COMMENT ON FUNCTION pg_catalog.fdwshard_recover_prepared_transactions()
    IS 'commit or roll back the prepared transactions this coordinator left on the workers';
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_recover_prepared_transactions() FROM PUBLIC;

-- shard_count NULL: the count of the table named by colocate_with, or 32.
CREATE FUNCTION pg_catalog.create_distributed_table(table_name regclass, distribution_column text,
                                                    shard_count int DEFAULT NULL, colocate_with text DEFAULT 'default')
    RETURNS void AS 'MODULE_PATHNAME', 'create_distributed_table' LANGUAGE C;
COMMENT ON FUNCTION pg_catalog.create_distributed_table(regclass, text, int, text)
    IS 'hash-shard a table over the nodes that should have shards';

CREATE FUNCTION pg_catalog.undistribute_table(table_name regclass) RETURNS void
    AS 'MODULE_PATHNAME', 'undistribute_table' LANGUAGE C STRICT;
COMMENT ON FUNCTION pg_catalog.undistribute_table(regclass)
    IS 'bring every row of a distributed table back into one local table and remove its shards';

-- pg_total_relation_size across nodes: a distributed table's shards measured on their nodes.
CREATE FUNCTION pg_catalog.fdwshard_table_size(table_name regclass) RETURNS bigint
    AS 'MODULE_PATHNAME', 'fdwshard_table_size' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION pg_catalog.fdwshard_table_size(regclass)
    IS 'disk space of a table, a distributed table''s shards measured on their nodes';

-- Elastic moves: a shard group (the shards of one index of a co-location group) to another node.
CREATE FUNCTION pg_catalog.fdwshard_move_shard(shard_id bigint, target_node int, mode text DEFAULT 'auto')
    RETURNS void AS 'MODULE_PATHNAME', 'fdwshard_move_shard' LANGUAGE C;
COMMENT ON FUNCTION pg_catalog.fdwshard_move_shard(bigint, int, text)
    IS 'move a shard and the co-located shards of its index to another node';

-- A named restore point on every node at one moment of the cluster (no distributed transaction
-- half-committed), for point-in-time recovery of all nodes together.
CREATE FUNCTION pg_catalog.fdwshard_create_restore_point(name text, OUT nodeid int, OUT lsn pg_lsn)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'fdwshard_create_restore_point' LANGUAGE C;
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_create_restore_point(text) FROM PUBLIC;

-- Shard moves in progress (fdwshard_move_shard, fdwshard_rebalance), from shared memory: readable
-- from any session while they run.
CREATE FUNCTION fdwshard.move_progress(OUT pid int, OUT shardid bigint, OUT shards int, OUT source_node int,
                                       OUT target_node int, OUT phase text, OUT shard_table text,
                                       OUT rows_copied bigint, OUT started timestamptz)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'fdwshard_move_progress' LANGUAGE C VOLATILE;
CREATE VIEW fdwshard.rebalance_progress AS
SELECT pid, shardid, shards, source_node, target_node, phase, shard_table, rows_copied, started,
       pg_catalog.clock_timestamp() - started AS elapsed
FROM fdwshard.move_progress();
GRANT SELECT ON fdwshard.rebalance_progress TO PUBLIC;

-- Rebalancing: the moves that spread shard groups over the nodes that should have shards, groups on
-- other nodes moving off first. by_shard_count: every co-location group's shard groups, each node
-- within one of the others. by_disk_size: the bytes of the shard groups in scope (each the sum of its
-- tables' shards, measured on their nodes), greedily: the move from the fullest node to the emptiest
-- that narrows their gap the most, until no move narrows it.
CREATE FUNCTION pg_catalog.fdwshard_rebalance_plan(table_name regclass DEFAULT NULL,
                                                   strategy text DEFAULT 'by_shard_count')
    RETURNS TABLE (step int, shardid bigint, shard_index int, colocationid int, source_node int, target_node int)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $fn$
DECLARE
    groups int[];
    grp int;
    shard_count int;
    nodes int[];
    placed int[];     -- node of each shard index (1-based)
    first_table regclass;
    counts int[];
    i int;
    n int;
    most int;
    least int;
    pick int;
    -- by_disk_size: the shard groups in scope (1-based), and the bytes on each node of nodes
    item_group int[];
    item_index int[];
    item_bytes bigint[];
    item_node int[];
    loads bigint[];
    gap bigint;
BEGIN
    IF strategy IS NULL OR strategy NOT IN ('by_shard_count', 'by_disk_size') THEN
        RAISE EXCEPTION 'invalid rebalance strategy "%"', strategy USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Valid strategies are ''by_shard_count'' and ''by_disk_size''.';
    END IF;
    IF table_name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM fdwshard.distributed_table t WHERE t.logicalrelid = table_name) THEN
        RAISE EXCEPTION 'relation "%" is not a distributed table', table_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(n.nodeid ORDER BY n.nodeid) INTO nodes FROM fdwshard.node n WHERE n.should_have_shards;
    IF nodes IS NULL THEN
        RAISE EXCEPTION 'no node can hold shards' USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Let a node hold shards with fdwshard_set_node_property(nodeid, ''should_have_shards'', true).';
    END IF;
    SELECT array_agg(DISTINCT t.colocationid ORDER BY t.colocationid) INTO groups FROM fdwshard.distributed_table t
    WHERE table_name IS NULL OR t.colocationid = (SELECT x.colocationid FROM fdwshard.distributed_table x WHERE x.logicalrelid = table_name);
    step := 0;
    IF strategy = 'by_disk_size' THEN
        -- Every node must answer: sizes that are unknown would make a wrong plan.
        SELECT array_agg(x.colocationid ORDER BY x.colocationid, x.shard_index),
               array_agg(x.shard_index ORDER BY x.colocationid, x.shard_index),
               array_agg(x.bytes ORDER BY x.colocationid, x.shard_index),
               array_agg(x.nodeid ORDER BY x.colocationid, x.shard_index)
          INTO item_group, item_index, item_bytes, item_node
        FROM (SELECT t.colocationid, s.shard_index, min(p.nodeid) AS nodeid, coalesce(sum(z.bytes), 0)::bigint AS bytes
              FROM fdwshard.shard_sizes(NULL, true) z
              JOIN fdwshard.shard s USING (shardid)
              JOIN fdwshard.placement p USING (shardid)
              JOIN fdwshard.distributed_table t ON t.logicalrelid = s.logicalrelid
              WHERE t.colocationid = ANY (groups)
              GROUP BY t.colocationid, s.shard_index) x;
        loads := array_fill(0::bigint, ARRAY[array_length(nodes, 1)]);
        FOR i IN 1 .. coalesce(array_length(item_group, 1), 0) LOOP
            n := array_position(nodes, item_node[i]);
            IF n IS NOT NULL THEN loads[n] := loads[n] + item_bytes[i]; END IF;
        END LOOP;
        LOOP
            least := 1;
            most := 1;
            FOR n IN 1 .. array_length(nodes, 1) LOOP
                IF loads[n] < loads[least] THEN least := n; END IF;
                IF loads[n] > loads[most] THEN most := n; END IF;
            END LOOP;
            -- On a node that should not hold shards: moves first, the biggest first.
            pick := NULL;
            FOR i IN 1 .. coalesce(array_length(item_group, 1), 0) LOOP
                IF array_position(nodes, item_node[i]) IS NULL AND (pick IS NULL OR item_bytes[i] > item_bytes[pick]) THEN
                    pick := i;
                END IF;
            END LOOP;
            IF pick IS NULL THEN
                -- The group on the fullest node whose move to the emptiest narrows their gap the most:
                -- bytes strictly between 0 and the gap, closest to half of it. Each move lowers the
                -- sum of the squared loads, so this ends.
                gap := loads[most] - loads[least];
                FOR i IN 1 .. coalesce(array_length(item_group, 1), 0) LOOP
                    IF item_node[i] = nodes[most] AND item_bytes[i] > 0 AND item_bytes[i] < gap
                       AND (pick IS NULL OR abs(gap - 2 * item_bytes[i]) < abs(gap - 2 * item_bytes[pick])) THEN
                        pick := i;
                    END IF;
                END LOOP;
                EXIT WHEN pick IS NULL;
            END IF;
            step := step + 1;
            source_node := item_node[pick];
            target_node := nodes[least];
            shard_index := item_index[pick];
            colocationid := item_group[pick];
            SELECT s.shardid INTO shardid FROM fdwshard.shard s JOIN fdwshard.distributed_table t USING (logicalrelid)
            WHERE t.colocationid = item_group[pick] AND s.shard_index = item_index[pick]
            ORDER BY s.logicalrelid LIMIT 1;
            RETURN NEXT;
            n := array_position(nodes, item_node[pick]);
            IF n IS NOT NULL THEN loads[n] := loads[n] - item_bytes[pick]; END IF;
            loads[least] := loads[least] + item_bytes[pick];
            item_node[pick] := nodes[least];
        END LOOP;
        RETURN;
    END IF;
    FOREACH grp IN ARRAY coalesce(groups, '{}') LOOP
        SELECT g.shard_count INTO shard_count FROM fdwshard.colocation_group g WHERE g.colocationid = grp;
        SELECT t.logicalrelid INTO first_table FROM fdwshard.distributed_table t WHERE t.colocationid = grp
        ORDER BY t.logicalrelid LIMIT 1;
        SELECT array_agg(p.nodeid ORDER BY s.shard_index) INTO placed
        FROM fdwshard.shard s JOIN fdwshard.placement p USING (shardid) WHERE s.logicalrelid = first_table;
        LOOP
            counts := array_fill(0, ARRAY[array_length(nodes, 1)]);
            pick := NULL;
            FOR i IN 1 .. shard_count LOOP
                n := array_position(nodes, placed[i]);
                IF n IS NULL THEN
                    pick := coalesce(pick, i); -- on a node that should not hold shards: moves first
                ELSE
                    counts[n] := counts[n] + 1;
                END IF;
            END LOOP;
            least := 1;
            most := 1;
            FOR n IN 1 .. array_length(nodes, 1) LOOP
                IF counts[n] < counts[least] THEN least := n; END IF;
                IF counts[n] > counts[most] THEN most := n; END IF;
            END LOOP;
            IF pick IS NULL THEN
                EXIT WHEN counts[most] - counts[least] <= 1;
                -- the last shard index on the fullest node
                SELECT max(x.i) INTO pick FROM generate_subscripts(placed, 1) x(i) WHERE placed[x.i] = nodes[most];
            END IF;
            step := step + 1;
            source_node := placed[pick];
            target_node := nodes[least];
            shard_index := pick - 1;
            colocationid := grp;
            SELECT s.shardid INTO shardid FROM fdwshard.shard s WHERE s.logicalrelid = first_table AND s.shard_index = pick - 1;
            RETURN NEXT;
            placed[pick] := nodes[least];
        END LOOP;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION pg_catalog.fdwshard_rebalance_plan(regclass, text)
    IS 'the shard moves fdwshard_rebalance would make';

-- The plan's moves, one at a time, each committed before the next (CALL it outside a transaction block;
-- no SET clause: a procedure with one cannot commit).
CREATE PROCEDURE pg_catalog.fdwshard_rebalance(table_name regclass DEFAULT NULL, strategy text DEFAULT 'by_shard_count')
    LANGUAGE plpgsql AS $fn$
DECLARE
    move record;
    moves int := 0;
BEGIN
    FOR move IN SELECT * FROM pg_catalog.fdwshard_rebalance_plan(table_name, strategy) LOOP
        PERFORM pg_catalog.fdwshard_move_shard(move.shardid, move.target_node, 'auto');
        COMMIT;
        moves := moves + 1;
    END LOOP;
    RAISE NOTICE 'fdwshard_rebalance: % shard group move(s)', moves;
END
$fn$;
COMMENT ON PROCEDURE pg_catalog.fdwshard_rebalance(regclass, text)
    IS 'spread the shard groups evenly over the nodes that should have shards, one move at a time';

-- Everything off a node (which then takes no new shards), so that it can be removed.
CREATE PROCEDURE pg_catalog.fdwshard_drain_node(nodeid int)
    LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_catalog.fdwshard_set_node_property(nodeid, 'should_have_shards', false);
    COMMIT;
    CALL pg_catalog.fdwshard_rebalance();
END
$fn$;
COMMENT ON PROCEDURE pg_catalog.fdwshard_drain_node(int)
    IS 'move every shard off a node and let it take no new ones, so that it can be removed';

-- "any": a literal ('42') is taken as the distribution column's type, as INSERT takes it.
CREATE FUNCTION pg_catalog.get_shard_id_for_distribution_column(table_name regclass, value "any")
    RETURNS bigint AS 'MODULE_PATHNAME', 'get_shard_id_for_distribution_column' LANGUAGE C STABLE;

CREATE FUNCTION fdwshard.run_command_on_node(nodeid int, command text) RETURNS text
    AS 'MODULE_PATHNAME', 'run_command_on_node' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION fdwshard.run_command_on_node(int, text) FROM PUBLIC;

-- One command on every node, the coordinator included, each in a subtransaction of the caller's
-- transaction (on the workers: a savepoint of the remote transaction): a node's error becomes its
-- row (success false, the message), and what succeeded commits or rolls back with the caller.
CREATE FUNCTION fdwshard.run_command_on_all_nodes(command text)
    RETURNS TABLE (nodeid int, success bool, result text)
    AS 'MODULE_PATHNAME', 'run_command_on_all_nodes' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION fdwshard.run_command_on_all_nodes(text) FROM PUBLIC;

-- A worker's new address (the same server and database, checked).
CREATE FUNCTION pg_catalog.fdwshard_update_node(nodeid int, host text, port int) RETURNS void
    AS 'MODULE_PATHNAME', 'fdwshard_update_node' LANGUAGE C STRICT;
COMMENT ON FUNCTION pg_catalog.fdwshard_update_node(int, text, int) IS 'change a worker''s address';
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_update_node(int, text, int) FROM PUBLIC;

-- Every worker tried now (within fdwshard.connect_timeout); what fdwshard.nodes shows is updated.
CREATE FUNCTION pg_catalog.fdwshard_check_nodes() RETURNS TABLE (nodeid int, ok bool, error text)
    AS 'MODULE_PATHNAME', 'fdwshard_check_nodes' LANGUAGE C;
COMMENT ON FUNCTION pg_catalog.fdwshard_check_nodes() IS 'try every node now and record its health';
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_check_nodes() FROM PUBLIC;

-- Internals ------------------------------------------------------------------------------------

CREATE FUNCTION fdwshard.relocate_row() RETURNS trigger
    AS 'MODULE_PATHNAME', 'relocate_row' LANGUAGE C;

CREATE FUNCTION fdwshard.drop_trigger() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'drop_trigger' LANGUAGE C;
CREATE EVENT TRIGGER fdwshard_drop ON sql_drop EXECUTE FUNCTION fdwshard.drop_trigger();

-- Multi-shard aggregates: the coordinator's half of variance and stddev split into the shards'
-- moments (count, sum, sum of squares; or float8 {N, Sx, Sxx} states), PostgreSQL's arithmetic.
CREATE FUNCTION fdwshard.numeric_moments_result(count bigint, sum numeric, sum_of_squares numeric, sample bool,
                                                stddev bool) RETURNS numeric
    AS 'MODULE_PATHNAME', 'fdwshard_numeric_moments_result' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fdwshard.float8_moments_result(states float8[], sample bool, stddev bool) RETURNS float8
    AS 'MODULE_PATHNAME', 'fdwshard_float8_moments_result' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Two-phase commit: the commit decision for each remote transaction a multi-node transaction
-- prepared, written by the committing transaction itself. Recovery commits the prepared
-- transactions that have a row and rolls back those that have none, then deletes rows nobody
-- needs any more.
CREATE TABLE fdwshard.transactions (
    gid text PRIMARY KEY,
    nodeid int NOT NULL,
    created timestamptz NOT NULL
);
GRANT SELECT ON fdwshard.transactions TO PUBLIC;

-- Metadata cache ------------------------------------------------------------------------------

-- Every change to the catalog tells every backend's metadata cache to drop its entries.
CREATE FUNCTION fdwshard.invalidate_metadata() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'fdwshard_invalidate_metadata';
CREATE TRIGGER invalidate_metadata AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fdwshard.node
    FOR EACH STATEMENT EXECUTE FUNCTION fdwshard.invalidate_metadata();
CREATE TRIGGER invalidate_metadata AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fdwshard.colocation_group
    FOR EACH STATEMENT EXECUTE FUNCTION fdwshard.invalidate_metadata();
CREATE TRIGGER invalidate_metadata AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fdwshard.distributed_table
    FOR EACH STATEMENT EXECUTE FUNCTION fdwshard.invalidate_metadata();
CREATE TRIGGER invalidate_metadata AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fdwshard.shard
    FOR EACH STATEMENT EXECUTE FUNCTION fdwshard.invalidate_metadata();
CREATE TRIGGER invalidate_metadata AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fdwshard.placement
    FOR EACH STATEMENT EXECUTE FUNCTION fdwshard.invalidate_metadata();
