#!/usr/bin/env bash
# Two-phase commit: a transaction that writes on two nodes commits on both or on neither, whatever
# fails when. Each case checks the data itself on every node (a ledger row written in the same
# transaction as the transfer, and the balances), and that no prepared transaction is left over.
# synchronous_commit is on everywhere here: with it off an acknowledged commit can vanish in a
# crash whatever fdwshard does.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_two_phase
fresh_db $db
for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
	q "$port" postgres "ALTER SYSTEM SET synchronous_commit = on" >/dev/null # alone: not in a transaction block
	q "$port" postgres "SELECT pg_reload_conf()" >/dev/null
done
# Recovery runs when the test asks, so that its counts are the test's.
q "$COORDINATOR_PORT" postgres "ALTER SYSTEM SET fdwshard.recovery_interval = 0" >/dev/null
q "$COORDINATOR_PORT" postgres "SELECT pg_reload_conf()" >/dev/null

q "$COORDINATOR_PORT" $db "CREATE TABLE accounts (tenant int PRIMARY KEY, balance int NOT NULL);
    SELECT create_distributed_table('accounts', 'tenant', shard_count := 6);
    INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 30) g;
    CREATE TABLE ledger (id int PRIMARY KEY, from_tenant int, to_tenant int, amount int);
    SELECT create_distributed_table('ledger', 'id', shard_count := 6);
    CREATE TABLE d (tenant int, seq int, v int, UNIQUE (tenant, seq) DEFERRABLE INITIALLY DEFERRED);
    SELECT create_distributed_table('d', 'tenant', shard_count := 6)" >/dev/null
# A tenant on each node: c on the coordinator, a on worker 1 (node 2), b on worker 2 (node 3).
tenant_on() { q "$COORDINATOR_PORT" $db "SELECT min(g) FROM generate_series(1, 30) g
    JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('accounts', g) WHERE s.nodeid = $1"; }
c=$(tenant_on 1)
a=$(tenant_on 2)
b=$(tenant_on 3)
echo "   tenants: $c on the coordinator, $a on worker 1, $b on worker 2"

recover() { q "$COORDINATOR_PORT" $db "SELECT fdwshard_recover_prepared_transactions()"; }
prepared_left() { echo "$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")/$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")"; }
# Balances of a and b as the workers hold them (read directly, not through the coordinator).
on_worker() { q "$1" $db "SELECT balance FROM ONLY public.accounts_$(q "$COORDINATOR_PORT" $db "SELECT get_shard_id_for_distribution_column('accounts', $2)") WHERE tenant = $2"; }
balances() { echo "$(on_worker "$WORKER1_PORT" "$a") $(on_worker "$WORKER2_PORT" "$b")"; }
ledger_rows() { q "$COORDINATOR_PORT" $db "SELECT count(*) FROM ledger WHERE id = $1"; }
total() { q "$COORDINATOR_PORT" $db "SELECT sum(balance) FROM accounts"; }
transfer() { # ID FROM TO: moves 10 and writes the ledger row, one transaction over the nodes
	echo "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE tenant = $2;
	      UPDATE accounts SET balance = balance + 10 WHERE tenant = $3;
	      INSERT INTO ledger VALUES ($1, $2, $3, 10); COMMIT;"
}

echo "-- the deferred-constraint reproduction: 23505 at COMMIT, nothing anywhere"
out=$(q "$COORDINATOR_PORT" $db "BEGIN; INSERT INTO d VALUES ($b, 1, 10); INSERT INTO d VALUES ($a, 1, -10);
      INSERT INTO d VALUES ($a, 1, -10); COMMIT;")
check_contains "COMMIT fails with the duplicate" "duplicate key value violates unique constraint" "$out"
check "no row of the transaction on any node" "0" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM d")"
check "nothing left prepared" "0/0" "$(prepared_left)"
echo "-- the same with the coordinator's shard failing its deferred constraint"
out=$(q "$COORDINATOR_PORT" $db "BEGIN; INSERT INTO d VALUES ($b, 2, 10); INSERT INTO d VALUES ($c, 2, -10);
      INSERT INTO d VALUES ($c, 2, -10); COMMIT;")
check_contains "COMMIT fails with the duplicate" "duplicate key value violates unique constraint" "$out"
check "no row of the transaction on any node" "0" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM d")"
echo "-- with fdwshard.two_phase_commit = off, the old behaviour (this test can tell the difference)"
# postgres_fdw commits the workers in an order of its own (its hash table's: the user mappings'
# OIDs, and the order of first use when they share a bucket): try the duplicate on each worker;
# one or both attempts leave their first worker's row committed.
q "$COORDINATOR_PORT" $db "SET fdwshard.two_phase_commit = off; BEGIN; INSERT INTO d VALUES ($b, 3, 10);
      INSERT INTO d VALUES ($a, 3, -10); INSERT INTO d VALUES ($a, 3, -10); COMMIT;" >/dev/null
q "$COORDINATOR_PORT" $db "SET fdwshard.two_phase_commit = off; BEGIN; INSERT INTO d VALUES ($a, 4, 10);
      INSERT INTO d VALUES ($b, 4, -10); INSERT INTO d VALUES ($b, 4, -10); COMMIT;" >/dev/null
left=$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM d")
check "without 2PC a row of a failed COMMIT stays committed" yes "$([[ "$left" =~ ^[12]$ ]] && echo yes || echo "no ($left)")"
q "$COORDINATOR_PORT" $db "DELETE FROM d" >/dev/null

echo "-- a transfer over two workers"
before=$(total)
q "$COORDINATOR_PORT" $db "$(transfer 1 "$a" "$b")" >/dev/null
check "both balances changed" "990 1010" "$(balances)"
check "ledger row" "1" "$(ledger_rows 1)"
check "nothing left prepared" "0/0" "$(prepared_left)"
out=$(PGOPTIONS='-c client_min_messages=debug2' q "$COORDINATOR_PORT" $db "BEGIN; UPDATE accounts SET balance = balance WHERE tenant = $a;
      UPDATE accounts SET balance = balance WHERE tenant = $a; COMMIT; BEGIN; SELECT balance FROM accounts WHERE tenant = $a;
      SELECT balance FROM accounts WHERE tenant = $b; COMMIT;")
check "one node written, or only reads: no PREPARE" "0" "$(echo "$out" | grep -c 'PREPARE TRANSACTION')"

echo "-- worker 2 stopped just before COMMIT (the first reproduction)"
q "$COORDINATOR_PORT" $db "$(transfer 2 "$a" "$b" | sed 's/COMMIT;/SELECT pg_sleep(3); COMMIT;/')" >"$CLUSTER_DIR/two_phase_1.out" 2>&1 &
client=$!
sleep 1.5
as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/worker2" -m immediate -w stop >/dev/null
wait $client
check_contains "COMMIT fails" "ERROR" "$(cat "$CLUSTER_DIR/two_phase_1.out")"
node_restart worker2
check "neither balance changed" "990 1010" "$(balances)"
check "no ledger row" "0" "$(ledger_rows 2)"
recover >/dev/null
check "nothing left prepared" "0/0" "$(prepared_left)"

echo "-- worker 2 killed after PREPARE, before COMMIT PREPARED"
out=$(q "$COORDINATOR_PORT" $db "SET fdwshard.test_sleep_after_local_commit = 3000; $(transfer 3 "$a" "$b")" 2>&1 &
	sleep 1.5; as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/worker2" -m immediate -w stop >/dev/null; wait)
check_contains "COMMIT succeeds, with a warning about node 3" "could not commit prepared transaction" "$out"
node_restart worker2
check "worker 2 still holds it prepared" "0/1" "$(prepared_left)"
check "worker 1 committed, worker 2 not yet" "980 1010" "$(balances)"
check "recovery resolves one" "1" "$(recover)"
check "committed on both" "980 1020" "$(balances)"
check "ledger row" "1" "$(ledger_rows 3)"
check "nothing left prepared" "0/0" "$(prepared_left)"

echo "-- the coordinator killed after its local commit"
(q "$COORDINATOR_PORT" $db "SET fdwshard.test_sleep_after_local_commit = 3000; $(transfer 4 "$a" "$b")" >/dev/null 2>&1 &
	sleep 1.5; as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/coordinator" -m immediate -w stop >/dev/null; wait)
check "both workers hold it prepared" "1/1" "$(prepared_left)"
node_restart coordinator
check "recovery resolves two" "2" "$(recover)"
check "committed on both" "970 1030" "$(balances)"
check "ledger row" "1" "$(ledger_rows 4)"
check "nothing left prepared" "0/0" "$(prepared_left)"

echo "-- the coordinator killed after PREPARE, before its decision"
(q "$COORDINATOR_PORT" $db "SET fdwshard.test_sleep_after_prepare = 3000; $(transfer 5 "$a" "$b")" >/dev/null 2>&1 &
	sleep 1.5; as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/coordinator" -m immediate -w stop >/dev/null; wait)
check "both workers hold it prepared" "1/1" "$(prepared_left)"
node_restart coordinator
check "recovery resolves two" "2" "$(recover)"
check "rolled back on both" "970 1030" "$(balances)"
check "no ledger row" "0" "$(ledger_rows 5)"
check "nothing left prepared" "0/0" "$(prepared_left)"

echo "-- a transaction in flight is left alone"
(q "$COORDINATOR_PORT" $db "SET fdwshard.test_sleep_after_prepare = 3000; $(transfer 6 "$a" "$b")" >/dev/null 2>&1 &
	sleep 1.5; echo "$(recover)" >"$CLUSTER_DIR/two_phase_2.out"; wait)
check "recovery during the commit resolves nothing" "0" "$(cat "$CLUSTER_DIR/two_phase_2.out")"
check "the transaction committed on both" "960 1040" "$(balances)"
check "nothing left prepared" "0/0" "$(prepared_left)"

check "the total never changed" "$before" "$(total)"
recover >/dev/null
check "the decision log is empty once nothing is in doubt" "0" "$(q "$COORDINATOR_PORT" $db "SELECT count(*) FROM fdwshard.transactions")"

for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do
	q "$port" postgres "ALTER SYSTEM RESET synchronous_commit" >/dev/null
	q "$port" postgres "SELECT pg_reload_conf()" >/dev/null
done
q "$COORDINATOR_PORT" postgres "ALTER SYSTEM RESET fdwshard.recovery_interval" >/dev/null
q "$COORDINATOR_PORT" postgres "SELECT pg_reload_conf()" >/dev/null
for port in "$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT"; do q "$port" postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null; done
[ "$failures" -eq 0 ]
