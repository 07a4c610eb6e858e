#!/usr/bin/env bash
# A worker stopped during schema changes: ALTER TABLE, CREATE INDEX and ADD PRIMARY KEY fail whole,
# changing nothing on the coordinator or the other worker; once the worker is back they succeed.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_ddl_worker_down
fresh_db $db
q "$COORDINATOR_PORT" $db "SET fdwshard.next_shard_id = 102008; CREATE TABLE t (k int, v text); SELECT create_distributed_table('t', 'k', shard_count := 3); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 300) g" >/dev/null
cols() { q "$1" $db "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '$2'::regclass AND attnum > 0 AND NOT attisdropped"; }

node_stop worker2
out=$(q "$COORDINATOR_PORT" $db "ALTER TABLE t ADD COLUMN extra int DEFAULT 1")
check_contains "ALTER TABLE fails while a worker is down" "could not connect" "$out"
check "coordinator unchanged" "k,v" "$(cols "$COORDINATOR_PORT" t)"
check "local shard unchanged" "k,v" "$(cols "$COORDINATOR_PORT" t_102008)"
check "worker 1 shard unchanged" "k,v" "$(cols "$WORKER1_PORT" t_102009)"
out=$(q "$COORDINATOR_PORT" $db "ALTER TABLE t ADD PRIMARY KEY (k)")
check_contains "ADD PRIMARY KEY fails while a worker is down" "could not connect" "$out"
check "no key recorded" "0" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM fdwshard.shard_key")"
check "no key on worker 1" "0" "$(q "$WORKER1_PORT" $db "SELECT count(*) FROM pg_constraint WHERE conrelid = 't_102009'::regclass")"

node_restart worker2
q "$COORDINATOR_PORT" $db "ALTER TABLE t ADD COLUMN extra int DEFAULT 1; ALTER TABLE t ADD PRIMARY KEY (k)" >/dev/null
check "ALTER TABLE succeeds once the worker is back" "k,v,extra" "$(cols "$WORKER2_PORT" t_102010)"
check "rows filled on worker 2" "1" "$(q "$WORKER2_PORT" $db "SELECT min(extra) FROM t_102010")"
check "primary key on worker 2" "1" "$(q "$WORKER2_PORT" $db "SELECT count(*) FROM pg_constraint WHERE conrelid = 't_102010'::regclass AND contype = 'p'")"
q "$COORDINATOR_PORT" $db "DROP TABLE t" >/dev/null
exit $((failures > 0))
