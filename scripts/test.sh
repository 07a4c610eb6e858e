#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the unit tests, every pg_regress suite
# against a local coordinator + two workers, and the fault tests; ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/build.sh || exit 1
passed=0
failed=0

echo "== unit tests (GoogleTest)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null || exit 1
unit_log=$(mktemp)
(cd build && ctest --output-on-failure) | tee "$unit_log"
unit_total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$unit_log")
unit_failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$unit_log")
if [ -z "$unit_total" ]; then unit_total=1; unit_failed=1; fi
passed=$((passed + unit_total - unit_failed)); failed=$((failed + unit_failed))

echo "== schedule check"
for f in sql/*.sql; do
	name=$(basename "$f" .sql)
	if grep -qw "$name" test/schedule; then passed=$((passed + 1)); else echo "not in test/schedule: $f"; failed=$((failed + 1)); fi
done

source test/cluster.sh
trap 'cluster_stop' EXIT
echo "== starting coordinator and two workers"
cluster_start regression || exit 1
echo "   coordinator :$COORDINATOR_PORT  worker1 :$WORKER1_PORT  worker2 :$WORKER2_PORT  ($CLUSTER_DIR)"

echo "== pg_regress"
regress_out=$(mktemp -d /tmp/fdwshard-regress.XXXXXX)
regress_log="$regress_out/summary.log"
"$(dirname "$("${FDWSHARD_PG_BIN:-/usr/lib/postgresql/15/bin}/pg_config" --pgxs)")/../test/regress/pg_regress" --use-existing --host=127.0.0.1 \
	--port="$COORDINATOR_PORT" --user=postgres --dbname=regression --inputdir="$ROOT" \
	--outputdir="$regress_out" --schedule="$ROOT/test/schedule" | tee "$regress_log"
regress_total=$(grep -cE '^(ok|not ok) ' "$regress_log")
regress_failed=$(grep -cE '^not ok ' "$regress_log")
if [ "$regress_total" -eq 0 ]; then
	# pg_regress 15 prints "test name ... ok" lines.
	regress_total=$(grep -cE '\.\.\. (ok|FAILED)' "$regress_log")
	regress_failed=$(grep -cE '\.\.\. FAILED' "$regress_log")
fi
if [ "$regress_total" -eq 0 ]; then regress_total=1; regress_failed=1; fi
if [ "$regress_failed" -gt 0 ] && [ -f "$regress_out/regression.diffs" ]; then
	cat "$regress_out/regression.diffs"
fi
passed=$((passed + regress_total - regress_failed)); failed=$((failed + regress_failed))

echo "== fault tests"
for t in test/fault/*.sh; do
	[ "$(basename "$t")" = lib.sh ] && continue
	if bash "$t"; then
		echo "ok   $(basename "$t")"; passed=$((passed + 1))
	else
		echo "FAIL $(basename "$t")"; failed=$((failed + 1))
	fi
done

cluster_stop
trap - EXIT
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
