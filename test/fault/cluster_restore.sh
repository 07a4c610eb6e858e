#!/usr/bin/env bash
# Whole-cluster backup and point-in-time recovery to one fdwshard_create_restore_point(): every
# node archives its WAL and has a base backup; transfers between tenants on different nodes run
# (two-phase commit) while the restore point is made; then every node is recovered from its base
# backup to that restore point, and the restored cluster must be consistent: after one recovery
# pass, nothing prepared anywhere, the total of balances unchanged, every tenant's balance equal
# to its ledger, every transfer whole (both its ledger rows or neither), and nothing written after
# the restore point. The original data directories come back at the end.
set -u
source "$(dirname "$0")/lib.sh"
db=fault_restore_point
C=$COORDINATOR_PORT
PORTS=("$COORDINATOR_PORT" "$WORKER1_PORT" "$WORKER2_PORT")
work=$CLUSTER_DIR/restore_point
tenants=30
initial=1000
restored=no
client_pids=()

set_everywhere() { # SETTING VALUE: ALTER SYSTEM on every node (restarted by the caller)
	local port
	for port in "${PORTS[@]}"; do q "$port" postgres "ALTER SYSTEM SET $1 = '$2'" >/dev/null; done
}
restart_all() {
	local name
	for name in "${CLUSTER_NODES[@]}"; do node_stop "$name" && node_restart "$name"; done
}
cleanup() {
	local name
	for pid in "${client_pids[@]}"; do kill "$pid" 2>/dev/null; done
	if [ "$restored" = yes ]; then
		for name in "${CLUSTER_NODES[@]}"; do
			as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" -m immediate -w stop >/dev/null 2>&1
			rm -rf "${CLUSTER_DIR:?}/$name" && mv "$work/original_$name" "$CLUSTER_DIR/$name"
			node_restart "$name"
		done
	fi
	for port in "${PORTS[@]}"; do
		q "$port" postgres "ALTER SYSTEM RESET archive_mode" >/dev/null
		q "$port" postgres "ALTER SYSTEM RESET archive_command" >/dev/null
	done
	restart_all
	for port in "${PORTS[@]}"; do q "$port" postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT

rm -rf "$work"
mkdir -p "$work"
chown "$PG_USER" "$work" 2>/dev/null
for name in "${CLUSTER_NODES[@]}"; do as_pg mkdir -p "$work/archive_$name"; done
for i in 0 1 2; do
	q "${PORTS[$i]}" postgres "ALTER SYSTEM SET archive_mode = on" >/dev/null
	q "${PORTS[$i]}" postgres "ALTER SYSTEM SET archive_command = 'cp %p $work/archive_${CLUSTER_NODES[$i]}/%f'" >/dev/null
done
restart_all
fresh_db $db
q $C $db "CREATE TABLE accounts (tenant int PRIMARY KEY, balance int NOT NULL);
          SELECT create_distributed_table('accounts', 'tenant', shard_count := 6);
          CREATE TABLE ledger (tenant int NOT NULL, transfer bigint NOT NULL, amount int NOT NULL);
          SELECT create_distributed_table('ledger', 'tenant', shard_count := 6, colocate_with := 'accounts');
          INSERT INTO accounts SELECT t, $initial FROM generate_series(1, $tenants) t" >/dev/null
check "tenants on the coordinator and both workers" "3" "$(q $C $db "SELECT count(DISTINCT nodeid) FROM fdwshard.shards WHERE table_name = 'accounts'::regclass")"

# Base backups, before any transfer.
for i in 0 1 2; do
	as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "${PORTS[$i]}" -U postgres -D "$work/base_${CLUSTER_NODES[$i]}" -X fetch -c fast ||
		{ echo "   FAIL base backup of ${CLUSTER_NODES[$i]}"; exit 1; }
done

client() { # N: transfers until the stop file appears, each a transaction over two tenants
	local n=$1 i=0 a b x
	while [ ! -f "$work/stop" ]; do
		i=$((i + 1))
		a=$((RANDOM % tenants + 1)) b=$((RANDOM % tenants + 1))
		[ "$a" = "$b" ] && continue
		x=$((n * 1000000 + i))
		# Rows locked in tenant order: two transfers locking them the other way round on two
		# workers would wait for each other with no node seeing the deadlock.
		timeout 60 bash -c "source '$(dirname "$0")/../cluster.sh'; psql_on $C -d $db -qAt -v ON_ERROR_STOP=1 -c 'BEGIN' \
			-c 'UPDATE accounts SET balance = balance + CASE WHEN tenant = $a THEN -7 ELSE 7 END WHERE tenant = $((a < b ? a : b))' \
			-c 'UPDATE accounts SET balance = balance + CASE WHEN tenant = $a THEN -7 ELSE 7 END WHERE tenant = $((a < b ? b : a))' \
			-c 'INSERT INTO ledger VALUES ($a, $x, -7), ($b, $x, 7)' -c 'COMMIT'" >/dev/null 2>&1
	done
}
for n in 1 2 3 4; do
	client $n &
	client_pids+=($!)
done
sleep 3
rp=$(q $C $db "SELECT string_agg(nodeid || ':' || (lsn IS NOT NULL), ' ' ORDER BY nodeid) FROM fdwshard_create_restore_point('fdwshard_test_rp')")
check "a restore point on every node" "1:true 2:true 3:true" "$rp"
sleep 2
touch "$work/stop"
wait "${client_pids[@]}"
client_pids=()
q $C $db "INSERT INTO accounts VALUES (100000, 0)" >/dev/null # after the restore point: must not come back
at_end=$(q $C $db "SELECT count(DISTINCT transfer) FROM ledger")
check "transfers ran on both sides of the restore point (at least 20)" "yes" "$([ "$at_end" -ge 20 ] && echo yes || echo no)"
for i in 0 1 2; do
	q "${PORTS[$i]}" postgres "SELECT pg_switch_wal()" >/dev/null
done
# The archivers have copied everything up to the restore point (bounded).
for i in 0 1 2; do
	for _ in $(seq 1 100); do
		[ "$(q "${PORTS[$i]}" postgres "SELECT last_archived_wal >= pg_walfile_name(pg_current_wal_lsn() - 1) FROM pg_stat_archiver")" = t ] && break
		sleep 0.1
	done
done

# Every node back to its base backup, recovered to the restore point.
for i in 0 1 2; do
	name=${CLUSTER_NODES[$i]}
	as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" -m fast -w stop >/dev/null
	mv "$CLUSTER_DIR/$name" "$work/original_$name"
	restored=yes
	as_pg cp -a "$work/base_$name" "$CLUSTER_DIR/$name"
	cat >>"$CLUSTER_DIR/$name/postgresql.auto.conf" <<CONF
restore_command = 'cp $work/archive_$name/%f %p'
recovery_target_name = 'fdwshard_test_rp'
recovery_target_action = 'promote'
archive_mode = off
CONF
	as_pg touch "$CLUSTER_DIR/$name/recovery.signal"
	node_restart "$name"
done
for i in 0 1 2; do
	for _ in $(seq 1 100); do
		[ "$(q "${PORTS[$i]}" postgres "SELECT pg_is_in_recovery()")" = f ] && break
		sleep 0.1
	done
	check "${CLUSTER_NODES[$i]} recovered to the restore point and promoted" "f" "$(q "${PORTS[$i]}" postgres "SELECT pg_is_in_recovery()")"
done

restored_transfers=$(q $C $db "SELECT count(DISTINCT transfer) FROM ledger")
check "the restore point is in the middle (0 < $restored_transfers < $at_end transfers)" "yes" \
	"$([ "$restored_transfers" -gt 0 ] && [ "$restored_transfers" -lt "$at_end" ] && echo yes || echo no)"
check "nothing written after the restore point" "0" "$(q $C $db "SELECT count(*) FROM accounts WHERE tenant = 100000")"
resolved=$(q $C $db "SELECT fdwshard_recover_prepared_transactions()")
echo "   prepared transactions resolved by recovery after the restore: $resolved"
check "nothing prepared on any node" "0|0|0" "$(q $C postgres "SELECT count(*) FROM pg_prepared_xacts")|$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")|$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")"
check "the total of balances is the initial total" "$((tenants * initial))" "$(q $C $db "SELECT sum(balance) FROM accounts")"
check "every tenant's balance is its ledger's" "0" "$(q $C $db "SELECT count(*) FROM accounts a WHERE a.balance <> $initial + coalesce((SELECT sum(amount) FROM ledger l WHERE l.tenant = a.tenant), 0)")"
check "every transfer whole (both its ledger rows)" "0" "$(q $C $db "SELECT count(*) FROM (SELECT transfer FROM ledger GROUP BY transfer HAVING count(*) <> 2 OR sum(amount) <> 0) t")"
exit $((failures > 0))
