#!/usr/bin/env bash
# Two-phase commit under repeated faults: concurrent transfers between tenants on different nodes,
# each with its ledger row in the same transaction, while the workers are killed (immediate
# shutdown) and restarted again and again, and the coordinator once; then the data must be exact:
# the total, every tenant's balance against its ledger rows, every acknowledged commit present,
# nothing left prepared, the decision log empty.
#
# The clients are bash loops running one psql per transaction rather than pgbench: pgbench aborts a
# client at its first non-retryable error (a killed node is one), and these clients must keep going
# and know, per transaction id, whether its COMMIT was acknowledged.
#
# A kill lands between PREPARE and COMMIT PREPARED only when a commit is under way there: the
# odd-numbered clients widen that window (fdwshard.test_sleep_after_prepare and
# test_sleep_after_local_commit, CHAOS_COMMIT_DELAY_MS each), so that faults also hit commits in
# doubt, not only statements that find a node down.
#
# Environment: CHAOS_SECONDS (default 60), CHAOS_CLIENTS (6), CHAOS_COMMIT_DELAY_MS (20),
# CHAOS_TWO_PHASE (on; "off" runs the same workload with fdwshard.two_phase_commit = off, to see
# the checks fail without 2PC), CHAOS_KILL_COORDINATOR (1; 0 kills the workers only).
set -u
source "$(dirname "$0")/lib.sh"
db=fault_two_phase_chaos
C=$COORDINATOR_PORT
seconds=${CHAOS_SECONDS:-60}
clients=${CHAOS_CLIENTS:-6}
two_phase=${CHAOS_TWO_PHASE:-on}
kill_coordinator=${CHAOS_KILL_COORDINATOR:-1}
commit_delay=${CHAOS_COMMIT_DELAY_MS:-20}
tenants=60
initial=1000
dir=$CLUSTER_DIR/two_phase_chaos
rm -rf "$dir"
mkdir -p "$dir"

client_pids=()
cleanup() {
	for pid in "${client_pids[@]}"; do kill "$pid" 2>/dev/null; done
	for name in "${CLUSTER_NODES[@]}"; do
		as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" status >/dev/null 2>&1 || node_restart "$name"
	done
	for port in "$C" "$WORKER1_PORT" "$WORKER2_PORT"; do
		q "$port" postgres "ALTER SYSTEM RESET synchronous_commit" >/dev/null
		q "$port" postgres "SELECT pg_reload_conf()" >/dev/null
	done
	q "$C" postgres "ALTER SYSTEM RESET fdwshard.recovery_interval" >/dev/null
	q "$C" postgres "SELECT pg_reload_conf()" >/dev/null
	for port in "$C" "$WORKER1_PORT" "$WORKER2_PORT"; do q "$port" postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; done
}
trap cleanup EXIT

fresh_db $db
for port in "$C" "$WORKER1_PORT" "$WORKER2_PORT"; do
	q "$port" postgres "ALTER SYSTEM SET synchronous_commit = on" >/dev/null # alone: not in a transaction block
	q "$port" postgres "SELECT pg_reload_conf()" >/dev/null
done
# Background recovery often, so that it runs while transactions are in flight (it must leave them
# alone) and releases the rows an interrupted commit leaves locked on a restarted worker soon.
q "$C" postgres "ALTER SYSTEM SET fdwshard.recovery_interval = '2s'" >/dev/null
q "$C" postgres "SELECT pg_reload_conf()" >/dev/null

q "$C" $db "CREATE TABLE accounts (tenant int PRIMARY KEY, balance bigint NOT NULL);
    SELECT create_distributed_table('accounts', 'tenant', shard_count := 6);
    INSERT INTO accounts SELECT g, $initial FROM generate_series(1, $tenants) g;
    CREATE TABLE ledger (id bigint PRIMARY KEY, from_tenant int, to_tenant int, amount int);
    SELECT create_distributed_table('ledger', 'id', shard_count := 6)" >/dev/null
# Each tenant's node (1 the coordinator, 2 and 3 the workers).
declare -a node_of
while IFS='|' read -r t n; do node_of[t]=$n; done < <(q "$C" $db "SELECT g, s.nodeid FROM generate_series(1, $tenants) g
    JOIN fdwshard.shards s ON s.shardid = get_shard_id_for_distribution_column('accounts', g) ORDER BY g")
check "accounts have tenants on the coordinator and both workers" "1 2 3" "$(printf '%s\n' "${node_of[@]}" | sort -u | xargs)"
check "initial total" "$((tenants * initial))" "$(q "$C" $db "SELECT sum(balance) FROM accounts")"

# client N END: transfers until END (epoch seconds). Writes each transaction id to attempted, and to
# acked when COMMIT succeeded (psql exit 0, no ERROR message, a COMMIT tag; a WARNING that a prepared
# transaction could not be committed still means committed: recovery finishes it. Its DETAIL may
# quote the worker's error, hence ERROR only at the start of a line).
client() {
	local n=$1 end=$2 seq=0 id a b amount first second out delay=0
	RANDOM=$((BASHPID + n * 7919))
	[ $((n % 2)) = 1 ] && delay=$commit_delay
	local options="-c statement_timeout=20s -c fdwshard.two_phase_commit=$two_phase"
	options+=" -c fdwshard.test_sleep_after_prepare=$delay -c fdwshard.test_sleep_after_local_commit=$delay"
	while [ "$(date +%s)" -lt "$end" ]; do
		seq=$((seq + 1))
		id=$((n * 1000000 + seq))
		a=$((RANDOM % tenants + 1))
		b=$((RANDOM % tenants + 1))
		[ "${node_of[a]}" != "${node_of[b]}" ] || continue
		amount=$((RANDOM % 100 + 1))
		# The lower tenant first in every transaction: rows locked on two nodes in one global order,
		# so two transfers never wait on each other across nodes (no deadlock detector sees that).
		if [ "$a" -lt "$b" ]; then first="- $amount WHERE tenant = $a" second="+ $amount WHERE tenant = $b"
		else first="+ $amount WHERE tenant = $b" second="- $amount WHERE tenant = $a"; fi
		echo "$id" >>"$dir/attempted.$n"
		if out=$(PGOPTIONS=$options timeout 30 \
			"$PG_BIN/psql" -X -h 127.0.0.1 -p "$C" -U postgres -d $db -v ON_ERROR_STOP=1 2>&1 <<-SQL
				BEGIN;
				UPDATE accounts SET balance = balance $first;
				UPDATE accounts SET balance = balance $second;
				INSERT INTO ledger VALUES ($id, $a, $b, $amount);
				COMMIT;
			SQL
		) && ! grep -qE '^(psql:[^ ]*: )?ERROR:' <<<"$out" && grep -qx COMMIT <<<"$out"; then
			echo "$id" >>"$dir/acked.$n"
			[[ $out == *"could not commit prepared transaction"* ]] && echo "$id" >>"$dir/warned.$n"
		else
			echo "$id ${out//$'\n'/ }" >>"$dir/failed.$n"
			sleep 0.1 # a node down: do not spin
		fi
	done
}

start=$(date +%s)
end=$((start + seconds))
for n in $(seq 1 "$clients"); do
	client "$n" "$end" &
	client_pids+=($!)
done

# The killer: every 3-8 s one node stopped with an immediate shutdown, 1-2 s down, then restarted;
# the workers alternate, and once past half-time the coordinator takes one turn.
worker_kills=0 coordinator_kills=0 turn=0
while :; do
	sleep "$((RANDOM % 6 + 3)).$((RANDOM % 10))"
	[ "$(date +%s)" -lt $((end - 2)) ] || break
	if [ "$kill_coordinator" = 1 ] && [ $coordinator_kills = 0 ] && [ "$(date +%s)" -ge $((start + seconds / 2)) ]; then
		victim=coordinator
		coordinator_kills=1
	else
		victim=worker$((turn % 2 + 1))
		turn=$((turn + 1))
		worker_kills=$((worker_kills + 1))
	fi
	as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$victim" -m immediate -w stop >/dev/null
	sleep "1.$((RANDOM % 10))"
	node_restart "$victim" || echo "   could not restart $victim"
	echo "   $(($(date +%s) - start))s: $victim killed and restarted"
done
for pid in "${client_pids[@]}"; do wait "$pid"; done # each psql is bounded by timeout 30
client_pids=()

cat "$dir"/attempted.* | sort >"$dir/attempted"
cat "$dir"/acked.* 2>/dev/null | sort >"$dir/acked"
attempted=$(wc -l <"$dir/attempted")
acked=$(wc -l <"$dir/acked")
warned=$(cat "$dir"/warned.* 2>/dev/null | wc -l)
echo "   workload: $clients clients x ${seconds}s (half of them with ${commit_delay} ms sleeps in the commit)," \
	"fdwshard.two_phase_commit = $two_phase: $attempted transfers" \
	"attempted, $acked acknowledged ($warned of them with a warning that a prepared transaction could" \
	"not be committed), $((attempted - acked)) failed"
echo "   faults: $((worker_kills + coordinator_kills)) immediate shutdowns ($worker_kills of a worker," \
	"$coordinator_kills of the coordinator)"
echo "   transfers whose COMMIT itself failed: $(cat "$dir"/failed.* 2>/dev/null | grep -c 'INSERT 0 1 ')"
echo "   errors seen by clients (most frequent first):"
cat "$dir"/failed.* 2>/dev/null | sed 's/^[0-9]* //; s/[0-9][0-9]*/N/g' | cut -c1-150 | sort | uniq -c | sort -rn | head -5 | sed 's/^/      /'
check "the workload ran (at least 50 acknowledged transfers)" yes "$([ "$acked" -ge 50 ] && echo yes || echo "no: $acked")"
# 60 s of 3-8 s pauses, 1-2 s down and a restart: 5 faults at the least unless restarts are slow.
check "faults were injected (at least 4)" yes "$([ $((worker_kills + coordinator_kills)) -ge 4 ] && echo yes || echo "no: $((worker_kills + coordinator_kills))")"

# Every node up, then recovery until no prepared transaction is left (the background worker may
# resolve some as well).
for name in "${CLUSTER_NODES[@]}"; do
	as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/$name" status >/dev/null 2>&1 || node_restart "$name"
done
prepared_left() {
	echo "$(q "$WORKER1_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")/$(q "$WORKER2_PORT" postgres "SELECT count(*) FROM pg_prepared_xacts")"
}
echo "   prepared transactions left on the workers after the run: $(prepared_left)"
resolved=0
deadline=$((SECONDS + 30))
while [ "$(prepared_left)" != "0/0" ] && [ $SECONDS -lt $deadline ]; do
	r=$(q "$C" $db "SELECT fdwshard_recover_prepared_transactions()")
	[[ $r =~ ^[0-9]+$ ]] && resolved=$((resolved + r))
	sleep 0.5
done
echo "   resolved by fdwshard_recover_prepared_transactions(): $resolved"

check "(d) no prepared transaction on any worker" "0/0" "$(prepared_left)"
check "(d) none on the coordinator" "0" "$(q "$C" postgres "SELECT count(*) FROM pg_prepared_xacts")"
check "(a) the total of balances is the initial total" "$((tenants * initial))" "$(q "$C" $db "SELECT sum(balance) FROM accounts")"
# Each tenant's balance against its ledger rows, written in the same transactions as the transfers.
mismatch="SELECT a.tenant, a.balance, $initial + coalesce(i.amount, 0) - coalesce(o.amount, 0) AS from_ledger
    FROM accounts a
    LEFT JOIN (SELECT to_tenant, sum(amount) AS amount FROM ledger GROUP BY to_tenant) i ON i.to_tenant = a.tenant
    LEFT JOIN (SELECT from_tenant, sum(amount) AS amount FROM ledger GROUP BY from_tenant) o ON o.from_tenant = a.tenant
    WHERE a.balance <> $initial + coalesce(i.amount, 0) - coalesce(o.amount, 0)"
check "(b) every tenant's balance is its initial balance plus its ledger movements" "0" "$(q "$C" $db "SELECT count(*) FROM ($mismatch) m")"
q "$C" $db "$mismatch ORDER BY 1 LIMIT 5" | sed 's/^/      tenant|balance|from the ledger: /'
q "$C" $db "SELECT id FROM ledger" | sort >"$dir/ledger"
check "(c) every acknowledged transfer is in the ledger" "0" "$(comm -23 "$dir/acked" "$dir/ledger" | wc -l)"
check "    and every ledger row is a transfer a client attempted" "0" "$(comm -13 "$dir/attempted" "$dir/ledger" | wc -l)"
echo "   ledger rows of transfers whose COMMIT was not acknowledged (the client could not know): $(comm -13 "$dir/acked" "$dir/ledger" | wc -l)"
q "$C" $db "SELECT fdwshard_recover_prepared_transactions()" >/dev/null
check "(d) the decision log is empty after a final recovery pass" "0" "$(q "$C" $db "SELECT count(*) FROM fdwshard.transactions")"
[ "$failures" -eq 0 ]
