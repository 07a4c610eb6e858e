-- INSERT ... ON CONFLICT ON CONSTRAINT on a distributed table: the name the user gave a PRIMARY KEY
-- or UNIQUE key works as on a plain table, on local and remote shards, prepared or not. The key
-- lives on the shards (<name>_<shardid>); a placeholder on the table, <name> CHECK
-- (fdwshard_shard_key(<key columns>)), lets parse analysis find the name, and the router points
-- the statement's arbiter at the shard's own key. Every statement also runs on a plain table with
-- the same keys (schema on_constraint_plain), and both must give the same answer.
CREATE SCHEMA on_constraint;
CREATE SCHEMA on_constraint_plain;
SET search_path = on_constraint, public;
SET fdwshard.next_shard_id = 13100;

CREATE TABLE on_constraint.accounts (tenant int, id int, email text, balance int, note text,
    PRIMARY KEY (tenant, id), CONSTRAINT "Email ""Key"" x" UNIQUE (tenant, email),
    CONSTRAINT positive CHECK (balance >= 0));
CREATE TABLE on_constraint_plain.accounts (tenant int, id int, email text, balance int, note text,
    PRIMARY KEY (tenant, id), CONSTRAINT "Email ""Key"" x" UNIQUE (tenant, email),
    CONSTRAINT positive CHECK (balance >= 0));
INSERT INTO on_constraint.accounts VALUES (1, 1, 'a@1', 10, 'old'), (3, 1, 'a@3', 30, 'old'), (7, 1, 'a@7', 70, 'old');
INSERT INTO on_constraint_plain.accounts SELECT * FROM on_constraint.accounts;
SELECT create_distributed_table('accounts', 'tenant', shard_count := 6);

-- Tenant 3 lives on the coordinator, 1 on worker 1 (node 2), 7 on worker 2 (node 3).
SELECT t AS tenant, s.shard_name, s.nodeid
FROM unnest(ARRAY[1, 3, 7]) t JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('accounts', t)
ORDER BY t;

-- The keys' placeholders: on the table and, by PostgreSQL, on each shard relation of the coordinator
-- (local shards also have the key itself); the worker's shard has the key and no placeholder.
\d accounts
SELECT conrelid::regclass AS rel, conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid IN ('accounts'::regclass, 'accounts_13100'::regclass, 'accounts_13101'::regclass)
ORDER BY 1, 2;
SELECT fdwshard.run_command_on_node(2, $$SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname)
    FROM pg_constraint WHERE conrelid = 'on_constraint.accounts_13101'::regclass$$) AS worker_shard;

-- run(stmt): the rows stmt returns, its row count ('done' for DDL), or its error. upsert(stmt): stmt on the
-- distributed table, then on the plain one: the answer when both agree, both answers otherwise.
CREATE FUNCTION run(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    answer text := '';
    n bigint;
BEGIN
    IF stmt !~* '^\s*(insert|with)' THEN
        EXECUTE stmt;
        RETURN 'done';
    END IF;
    IF stmt ~* 'returning' THEN
        FOR r IN EXECUTE stmt LOOP answer := answer || r::text || ' '; END LOOP;
        RETURN coalesce(nullif(rtrim(answer), ''), 'no row');
    END IF;
    EXECUTE stmt;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n || ' row(s)';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- With sqlstate_only, an error is its SQLSTATE alone (a shard's constraint has the shard's name).
CREATE FUNCTION upsert(stmt text, sqlstate_only bool DEFAULT false) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    distributed text;
    plain text;
BEGIN
    PERFORM set_config('search_path', 'on_constraint, public', true);
    distributed := on_constraint.run(stmt);
    PERFORM set_config('search_path', 'on_constraint_plain, public', true);
    plain := on_constraint.run(stmt);
    IF sqlstate_only AND distributed ~ '^[0-9A-Z]{5}: ' THEN
        distributed := left(distributed, 5);
        plain := left(plain, 5);
    END IF;
    PERFORM set_config('search_path', 'on_constraint, public', true);
    RETURN CASE WHEN distributed = plain THEN distributed
                ELSE 'DIFFERENT: distributed ' || distributed || ', plain ' || plain END;
END $$;
-- same_tables(): both tables hold the same rows.
CREATE FUNCTION same_tables() RETURNS bool LANGUAGE sql AS $$
    SELECT same_rows('SELECT * FROM on_constraint.accounts', 'SELECT * FROM on_constraint_plain.accounts') $$;

-- DO NOTHING, on a local (3) and remote (1, 7) shard: a conflict, then a new row.
SELECT t, upsert(format($$INSERT INTO accounts VALUES (%s, 1, 'x', 1) ON CONFLICT ON CONSTRAINT accounts_pkey DO NOTHING$$, t)) AS conflict,
       upsert(format($$INSERT INTO accounts VALUES (%s, 2, 'b@%s', 2) ON CONFLICT ON CONSTRAINT accounts_pkey DO NOTHING RETURNING *$$, t, t)) AS new_row
FROM unnest(ARRAY[3, 1, 7]) t;
SELECT same_tables();

-- DO UPDATE with EXCLUDED, WHERE and RETURNING; the other key (a quoted name) as arbiter.
SELECT t, upsert(format($$INSERT INTO accounts AS a VALUES (%s, 1, 'z', 5, 'new') ON CONFLICT ON CONSTRAINT accounts_pkey
                          DO UPDATE SET balance = a.balance + EXCLUDED.balance, note = EXCLUDED.note
                          WHERE a.balance < 50 RETURNING tenant, id, balance, note$$, t)) AS by_pkey,
       upsert(format($$INSERT INTO accounts VALUES (%s, 9, 'b@%s', 100, 'via email') ON CONFLICT ON CONSTRAINT "Email ""Key"" x"
                          DO UPDATE SET note = EXCLUDED.note || ' ' || accounts.id::text RETURNING id, email, note$$, t, t)) AS by_email,
       upsert(format($$INSERT INTO accounts VALUES (%s, 9, 'c@%s', 1) ON CONFLICT ON CONSTRAINT "Email ""Key"" x"
                          DO UPDATE SET note = 'never' RETURNING id, email, note$$, t, t)) AS no_conflict
FROM unnest(ARRAY[3, 1, 7]) t;
SELECT same_tables();

-- The WHERE of DO UPDATE keeps the row: no row affected.
SELECT t, upsert(format($$INSERT INTO accounts AS a VALUES (%s, 1, 'z', 5) ON CONFLICT ON CONSTRAINT accounts_pkey
                          DO UPDATE SET balance = 0 WHERE a.balance > 1000$$, t)) AS kept
FROM unnest(ARRAY[3, 7]) t;
-- A conflict on the other key than the arbiter is an error, as on a plain table.
SELECT t, upsert(format($$INSERT INTO accounts VALUES (%s, 50, 'a@%s', 1) ON CONFLICT ON CONSTRAINT accounts_pkey DO NOTHING$$, t, t), true) AS other_key
FROM unnest(ARRAY[3, 1]) t;

-- ON CONSTRAINT needs SELECT on the key's columns, as on a plain table (the placeholder names them).
CREATE ROLE regress_on_constraint;
SELECT fdwshard.run_command_on_node(n, 'CREATE ROLE regress_on_constraint') FROM unnest(ARRAY[2, 3]) n;
GRANT USAGE ON SCHEMA on_constraint, on_constraint_plain TO regress_on_constraint;
GRANT INSERT, UPDATE, SELECT (balance, note) ON on_constraint.accounts, on_constraint_plain.accounts TO regress_on_constraint;
SET ROLE regress_on_constraint;
SELECT upsert($$INSERT INTO accounts VALUES (3, 1, 'x', 1) ON CONFLICT ON CONSTRAINT accounts_pkey DO NOTHING$$) AS without_key_columns;
RESET ROLE;
GRANT SELECT (tenant, id) ON on_constraint.accounts, on_constraint_plain.accounts TO regress_on_constraint;
SET ROLE regress_on_constraint;
SELECT upsert($$INSERT INTO accounts VALUES (3, 1, 'x', 1) ON CONFLICT ON CONSTRAINT accounts_pkey DO NOTHING$$) AS with_key_columns;
RESET ROLE;

-- In a data-modifying WITH.
SELECT t, upsert(format($$WITH up AS (INSERT INTO accounts VALUES (%s, 1, 'y', 1) ON CONFLICT ON CONSTRAINT accounts_pkey
                          DO UPDATE SET note = 'from with' RETURNING id, note) SELECT * FROM up$$, t)) AS in_with
FROM unnest(ARRAY[3, 1]) t;
SELECT same_tables();

-- Where the arbiter goes: the local shard's own constraint; the remote shard's key columns.
SET client_min_messages = debug1;
INSERT INTO accounts VALUES (3, 1, 'x', 1) ON CONFLICT ON CONSTRAINT accounts_pkey DO NOTHING;
INSERT INTO accounts VALUES (1, 1, 'a@1', 1) ON CONFLICT ON CONSTRAINT "Email ""Key"" x" DO NOTHING;
RESET client_min_messages;
EXPLAIN (COSTS OFF, VERBOSE) INSERT INTO accounts VALUES (1, 1, 'x', 1) ON CONFLICT ON CONSTRAINT accounts_pkey
    DO UPDATE SET note = EXCLUDED.note;
EXPLAIN (COSTS OFF) INSERT INTO accounts VALUES (3, 1, 'x', 1) ON CONFLICT ON CONSTRAINT accounts_pkey
    DO UPDATE SET note = EXCLUDED.note;

-- Prepared, executed 7 times (generic plans from the 6th), alternating local and remote tenants.
-- (Qualified names: a prepared statement is analysed again under the search_path of its execution.)
PREPARE up(int, int, text, int) AS INSERT INTO on_constraint.accounts AS a VALUES ($1, $2, $3, $4)
    ON CONFLICT ON CONSTRAINT accounts_pkey DO UPDATE SET balance = a.balance + EXCLUDED.balance RETURNING tenant, id, balance;
PREPARE up_plain(int, int, text, int) AS INSERT INTO on_constraint_plain.accounts AS a VALUES ($1, $2, $3, $4)
    ON CONFLICT ON CONSTRAINT accounts_pkey DO UPDATE SET balance = a.balance + EXCLUDED.balance RETURNING tenant, id, balance;
SELECT i, t, d.rows AS distributed, d.rows = p.rows AS plain_agrees
FROM generate_series(1, 7) i
CROSS JOIN LATERAL (SELECT (ARRAY[3, 1, 7])[i % 3 + 1] AS t) t
CROSS JOIN LATERAL (SELECT query_rows(format($$EXECUTE up(%s, %s, 'p%s@%s', %s)$$, t, i % 3, i, t, i)) AS rows) d
CROSS JOIN LATERAL (SELECT query_rows(format($$EXECUTE up_plain(%s, %s, 'p%s@%s', %s)$$, t, i % 3, i, t, i)) AS rows) p
ORDER BY i;
SELECT name, generic_plans > 0 AS generic FROM pg_prepared_statements WHERE name IN ('up', 'up_plain') ORDER BY name;
-- The generic plan, routed at execution to the parameter's shard.
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE up(1, 1, 'x', 0);
EXPLAIN (COSTS OFF) EXECUTE up(3, 1, 'x', 0);
SELECT same_tables();

-- A copy made with LIKE gets neither the keys (the table has no index to copy) nor their placeholders.
CREATE TABLE copy (LIKE accounts INCLUDING ALL);
\d copy
DROP TABLE copy;

-- Errors as on a plain table: an unknown name, a CHECK constraint, a unique index (not a constraint).
CREATE UNIQUE INDEX accounts_email_idx ON on_constraint.accounts (tenant, email, id);
CREATE UNIQUE INDEX accounts_email_idx ON on_constraint_plain.accounts (tenant, email, id);
SELECT t, upsert(format($$INSERT INTO accounts VALUES (%s, 1, 'x', 1) ON CONFLICT ON CONSTRAINT nope DO NOTHING$$, t)) AS unknown,
       upsert(format($$INSERT INTO accounts VALUES (%s, 1, 'x', 1) ON CONFLICT ON CONSTRAINT positive DO NOTHING$$, t)) AS check_constraint,
       upsert(format($$INSERT INTO accounts VALUES (%s, 1, 'x', 1) ON CONFLICT ON CONSTRAINT accounts_email_idx DO NOTHING$$, t)) AS unique_index
FROM unnest(ARRAY[3, 1]) t;
-- A key cannot take a CHECK constraint's name, nor a CHECK a key's, as on a plain table.
SELECT upsert($$ALTER TABLE accounts ADD CONSTRAINT positive UNIQUE (tenant, note)$$) AS key_named_as_check,
       upsert($$ALTER TABLE accounts ADD CONSTRAINT accounts_pkey CHECK (id > 0)$$) AS check_named_as_key;

-- Several rows (one statement per shard, local and remote) and INSERT ... SELECT take the key's name
-- too (RETURNING: the coordinator's rows, then one worker's, so that the order is fixed).
SELECT upsert($$INSERT INTO accounts VALUES (3, 1, 'x', 1), (1, 1, 'x', 1), (7, 50, 'm@7', 3) ON CONFLICT ON CONSTRAINT accounts_pkey DO NOTHING$$) AS multi_row;
SELECT upsert($$INSERT INTO accounts AS a VALUES (3, 1, 'x', 2), (1, 1, 'x', 3), (1, 51, 'n@1', 4) ON CONFLICT ON CONSTRAINT accounts_pkey
                DO UPDATE SET balance = a.balance + EXCLUDED.balance RETURNING tenant, id, balance$$) AS multi_row_update;
SELECT upsert($$INSERT INTO accounts SELECT t, 1, 'x', 1 FROM unnest(ARRAY[3, 1, 7, 8]) t ON CONFLICT ON CONSTRAINT accounts_pkey DO NOTHING$$) AS insert_select;
SELECT upsert($$INSERT INTO accounts VALUES (3, 60, 'x', 1), (3, 60, 'y', 1) ON CONFLICT ON CONSTRAINT accounts_pkey DO UPDATE SET note = 'twice'$$, true) AS affected_twice;
SELECT same_tables();

-- A key added after distribution gets its placeholder; RENAME CONSTRAINT renames both the key and
-- the placeholder (the old name is gone, even for a statement prepared before); DROP CONSTRAINT
-- drops both.
SELECT upsert($$ALTER TABLE accounts ADD CONSTRAINT "Note Key" UNIQUE (tenant, note)$$) AS added;
SELECT t, upsert(format($$INSERT INTO accounts VALUES (%s, 60, 'n@%s', 1, 'via email 2') ON CONFLICT ON CONSTRAINT "Note Key"
                          DO UPDATE SET balance = accounts.balance + 1000 RETURNING id, balance$$, t, t)) AS by_note
FROM unnest(ARRAY[3, 1, 7]) t;
SELECT upsert($$ALTER TABLE accounts RENAME CONSTRAINT accounts_pkey TO "Pk ""2"""$$) AS renamed,
       upsert($$ALTER TABLE accounts DROP CONSTRAINT "Email ""Key"" x"$$) AS dropped;
SELECT t, upsert(format($$INSERT INTO accounts VALUES (%s, 1, 'x', 1) ON CONFLICT ON CONSTRAINT accounts_pkey DO NOTHING$$, t)) AS old_name,
       upsert(format($$INSERT INTO accounts VALUES (%s, 1, 'x', 7) ON CONFLICT ON CONSTRAINT "Pk ""2"""
                       DO UPDATE SET balance = EXCLUDED.balance RETURNING id, balance$$, t)) AS new_name,
       upsert(format($$INSERT INTO accounts VALUES (%s, 1, 'x', 1) ON CONFLICT ON CONSTRAINT "Email ""Key"" x" DO NOTHING$$, t)) AS dropped
FROM unnest(ARRAY[3, 1, 7]) t;
SELECT try($$EXECUTE up(3, 1, 'x', 1)$$) AS prepared_local, try($$EXECUTE up(1, 1, 'x', 1)$$) AS prepared_remote,
       try($$EXECUTE up_plain(3, 1, 'x', 1)$$) AS prepared_plain;
SELECT conrelid::regclass AS rel, conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid IN ('accounts'::regclass, 'accounts_13100'::regclass, 'accounts_13101'::regclass)
ORDER BY 1, 2;
SELECT fdwshard.run_command_on_node(2, $$SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname)
    FROM pg_constraint WHERE conrelid = 'on_constraint.accounts_13101'::regclass$$) AS worker_shard;
SELECT name, kind FROM fdwshard.shard_key WHERE logicalrelid = 'accounts'::regclass ORDER BY name;
SELECT same_tables();

-- Dropping a column the key INCLUDEs drops the key, and its placeholder (which names only the key's columns).
ALTER TABLE accounts ADD CONSTRAINT with_include UNIQUE (tenant, id) INCLUDE (email);
SELECT conname FROM pg_constraint WHERE conrelid = 'accounts'::regclass AND conname = 'with_include';
ALTER TABLE accounts DROP COLUMN email;
ALTER TABLE on_constraint_plain.accounts DROP COLUMN email;
SELECT conname FROM pg_constraint WHERE conrelid = 'accounts'::regclass ORDER BY 1;
SELECT name FROM fdwshard.shard_key WHERE logicalrelid = 'accounts'::regclass ORDER BY name;

-- undistribute_table: a plain table again, whose keys have their names (no placeholder left).
SELECT undistribute_table('accounts');
\d accounts
SELECT t, upsert(format($$INSERT INTO accounts VALUES (%s, 1, 3) ON CONFLICT ON CONSTRAINT "Pk ""2"""
                          DO UPDATE SET balance = accounts.balance + EXCLUDED.balance RETURNING id, balance$$, t)) AS plain_again
FROM unnest(ARRAY[3, 1, 7]) t;
SELECT same_tables();

-- Distributing a table with keys again gives them their placeholders again.
SELECT create_distributed_table('accounts', 'tenant', shard_count := 2);
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'accounts'::regclass ORDER BY 1;
SELECT t, upsert(format($$INSERT INTO accounts VALUES (%s, 77, 3, 'via email 2') ON CONFLICT ON CONSTRAINT "Note Key"
                          DO UPDATE SET balance = 77 RETURNING *$$, t)) AS again
FROM unnest(ARRAY[3, 1, 7]) t;

DEALLOCATE up;
DEALLOCATE up_plain;
DROP SCHEMA on_constraint CASCADE;
DROP SCHEMA on_constraint_plain CASCADE;
DROP ROLE regress_on_constraint;
SELECT fdwshard.run_command_on_node(n, 'DROP ROLE regress_on_constraint') FROM unnest(ARRAY[2, 3]) n;
