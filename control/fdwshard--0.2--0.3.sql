-- fdwshard 0.2 -> 0.3 (multi-shard execution, two-phase commit). Every change here is also in
-- fdwshard--0.3.sql; test/fault/extension_upgrade.sh checks that both give the same extension.
\echo Use "ALTER EXTENSION fdwshard UPDATE" to load this file. \quit

-- Multi-shard aggregates: the coordinator's half of variance and stddev split into the shards'
-- moments (count, sum, sum of squares; or float8 {N, Sx, Sxx} states), PostgreSQL's arithmetic.
CREATE FUNCTION fdwshard.numeric_moments_result(count bigint, sum numeric, sum_of_squares numeric, sample bool,
                                                stddev bool) RETURNS numeric
    AS 'MODULE_PATHNAME', 'fdwshard_numeric_moments_result' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fdwshard.float8_moments_result(states float8[], sample bool, stddev bool) RETURNS float8
    AS 'MODULE_PATHNAME', 'fdwshard_float8_moments_result' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- fdwshard.nodes shows each worker's health as this coordinator last saw it (new columns at the end;
-- shared memory; the coordinator itself: server NULL, 'ok').
CREATE FUNCTION fdwshard.node_health(server_name name, OUT health text, OUT last_ok timestamptz,
                                     OUT last_error_at timestamptz, OUT last_error text)
    AS 'MODULE_PATHNAME', 'fdwshard_node_health' LANGUAGE C VOLATILE;

CREATE OR REPLACE VIEW fdwshard.nodes AS
SELECT nodeid, host, port, dbname, is_local, should_have_shards,
       (SELECT count(*) FROM fdwshard.placement p WHERE p.nodeid = n.nodeid) AS shard_count,
       server_name, h.health, h.last_ok, h.last_error_at, h.last_error
FROM fdwshard.node n, LATERAL fdwshard.node_health(n.server_name) h
ORDER BY nodeid;

-- Two-phase commit: a recovery pass on demand (the background worker runs one every fdwshard.recovery_interval).
CREATE FUNCTION pg_catalog.fdwshard_recover_prepared_transactions() RETURNS int
    AS 'MODULE_PATHNAME', 'fdwshard_recover_prepared_transactions' LANGUAGE C;
COMMENT ON FUNCTION pg_catalog.fdwshard_recover_prepared_transactions()
    IS 'commit or roll back the prepared transactions this coordinator left on the workers';
REVOKE ALL ON FUNCTION pg_catalog.fdwshard_recover_prepared_transactions() FROM PUBLIC;
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

-- ON CONFLICT ON CONSTRAINT N on a distributed table: the placeholder of each PRIMARY KEY or UNIQUE key,
-- N CHECK (fdwshard_shard_key(<key columns>)), also given to the keys of tables distributed before
-- (their columns read from a shard: a worker holding only remote shards of such a table must be up).
CREATE FUNCTION pg_catalog.fdwshard_shard_key(VARIADIC "any") RETURNS bool
    AS 'MODULE_PATHNAME', 'fdwshard_shard_key' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION pg_catalog.fdwshard_shard_key("any")
    IS 'placeholder of a shard key for ON CONFLICT ON CONSTRAINT (always true: each shard enforces the key)';
CREATE FUNCTION fdwshard.add_shard_key_placeholders() RETURNS void
    AS 'MODULE_PATHNAME', 'fdwshard_add_shard_key_placeholders' LANGUAGE C;
SELECT fdwshard.add_shard_key_placeholders();
DROP FUNCTION fdwshard.add_shard_key_placeholders();

-- Sizes: each shard's rows (estimate) and bytes in fdwshard.shards, the total in fdwshard.tables (new
-- columns at the end), and fdwshard_table_size().
-- Each shard's size measured on its node, every worker asked once for all of its shards (of table_name,
-- or of every distributed table): pg_total_relation_size, and pg_class.reltuples (NULL when never
-- vacuumed or analyzed). A worker that does not answer gives NULL sizes and a WARNING naming it, or
-- the error with nodes_must_answer.
CREATE FUNCTION fdwshard.shard_sizes(table_name regclass DEFAULT NULL, nodes_must_answer bool DEFAULT false,
                                     OUT shardid bigint, OUT rows_estimate bigint, OUT bytes bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'fdwshard_shard_sizes' LANGUAGE C VOLATILE;

-- Sizes (rows_estimate, bytes, size) are measured only when a query reads them: the planner removes
-- a LEFT JOIN to a subquery unique on its key whose columns nobody reads.
CREATE OR REPLACE VIEW fdwshard.tables AS
SELECT t.logicalrelid AS table_name, t.distribution_column, g.shard_count, t.colocationid,
       z.rows_estimate, z.bytes, pg_catalog.pg_size_pretty(z.bytes) AS size
FROM fdwshard.distributed_table t JOIN fdwshard.colocation_group g USING (colocationid)
LEFT JOIN (SELECT s.logicalrelid,
                  CASE WHEN count(m.rows_estimate) = count(*) THEN sum(m.rows_estimate)::bigint END AS rows_estimate,
                  CASE WHEN count(m.bytes) = count(*) THEN sum(m.bytes)::bigint END AS bytes
           FROM fdwshard.shard_sizes() m JOIN fdwshard.shard s USING (shardid)
           GROUP BY s.logicalrelid) z ON z.logicalrelid = t.logicalrelid
ORDER BY t.logicalrelid::text;

CREATE OR REPLACE VIEW fdwshard.shards AS
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

-- Operating a cluster. get_shard_id_for_distribution_column takes "any": a literal ('42') is
-- taken as the distribution column's type, as INSERT takes it.
DROP FUNCTION pg_catalog.get_shard_id_for_distribution_column(regclass, anyelement);
CREATE FUNCTION pg_catalog.get_shard_id_for_distribution_column(table_name regclass, value "any")
    RETURNS bigint AS 'MODULE_PATHNAME', 'get_shard_id_for_distribution_column' LANGUAGE C STABLE;

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
