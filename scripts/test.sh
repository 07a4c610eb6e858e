#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the unit tests, every pg_regress suite
# against a local coordinator + two workers, and the fault tests; ends with "N passed, M failed"
# (tests only: the schedule lint can fail the run but adds no passes).
#
# Usage: scripts/test.sh              everything
#        scripts/test.sh NAME...      only these pg_regress suites (sql/NAME.sql, after setup) and
#                                     fault tests (test/fault/NAME.sh); no unit tests, no lint
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

suites=()
faults=()
for name in "$@"; do
	name=$(basename "$name"); name=${name%.sql}; name=${name%.sh}
	if [ -f "sql/$name.sql" ]; then suites+=("$name")
	elif [ -f "test/fault/$name.sh" ] && [ "$name" != lib ]; then faults+=("$name")
	else echo "no pg_regress suite sql/$name.sql and no fault test test/fault/$name.sh" >&2; exit 2; fi
done
only=$(($# > 0))

scripts/build.sh || exit 1
passed=0
failed=0

if [ "$only" -eq 0 ]; then
echo "== unit tests (GoogleTest)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null || exit 1
unit_log=$(mktemp)
(cd build && ctest --output-on-failure) | tee "$unit_log"
unit_total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$unit_log")
unit_failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$unit_log")
if [ -z "$unit_total" ]; then unit_total=1; unit_failed=1; fi
passed=$((passed + unit_total - unit_failed)); failed=$((failed + unit_failed))

echo "== schedule check"
lint_failed=0
for f in sql/*.sql; do
	name=$(basename "$f" .sql)
	grep -qE "^test: .*\b$name\b" test/schedule || { echo "not in test/schedule: $f"; lint_failed=1; }
done
[ "$lint_failed" -eq 0 ] && echo "   every sql/*.sql is in test/schedule"
fi

source test/cluster.sh
trap 'cluster_stop' EXIT
echo "== starting coordinator and two workers"
cluster_start regression || exit 1
echo "   coordinator :$COORDINATOR_PORT  worker1 :$WORKER1_PORT  worker2 :$WORKER2_PORT  ($CLUSTER_DIR)"

if [ "$only" -eq 0 ]; then
	schedule_args="--schedule=$ROOT/test/schedule"
	faults=()
	for t in test/fault/*.sh; do [ "$(basename "$t")" = lib.sh ] || faults+=("$(basename "$t" .sh)"); done
elif [ ${#suites[@]} -gt 0 ]; then
	# Suites build on setup (the workers), ddl_* ones also on ddl_setup (their roles and schema).
	list=(setup)
	for name in "${suites[@]}"; do
		case "$name" in ddl_setup | setup) ;; ddl_*) [[ " ${list[*]} " == *" ddl_setup "* ]] || list+=(ddl_setup) ;; esac
		[[ " ${list[*]} " == *" $name "* ]] || list+=("$name")
	done
	schedule_args="${list[*]}"
fi
if [ "$only" -eq 0 ] || [ ${#suites[@]} -gt 0 ]; then
echo "== pg_regress"
regress_out=$(mktemp -d /tmp/fdwshard-regress.XXXXXX)
regress_log="$regress_out/summary.log"
"$(dirname "$("${FDWSHARD_PG_BIN:-/usr/lib/postgresql/15/bin}/pg_config" --pgxs)")/../test/regress/pg_regress" --use-existing --host=127.0.0.1 \
	--port="$COORDINATOR_PORT" --user=postgres --dbname=regression --inputdir="$ROOT" \
	--outputdir="$regress_out" $schedule_args | tee "$regress_log"
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
	echo "(results kept in $regress_out)"
elif [ "$regress_failed" -eq 0 ]; then
	rm -rf "$regress_out"
fi
passed=$((passed + regress_total - regress_failed)); failed=$((failed + regress_failed))
fi

if [ ${#faults[@]} -gt 0 ]; then
echo "== fault tests"
for name in "${faults[@]}"; do
	if bash "test/fault/$name.sh"; then
		echo "ok   $name"; passed=$((passed + 1))
	else
		echo "FAIL $name"; failed=$((failed + 1))
	fi
done
fi

cluster_stop
trap - EXIT
echo "$passed passed, $failed failed"
[ "${lint_failed:-0}" -eq 0 ] || echo "the schedule lint failed (see above)"
[ "$failed" -eq 0 ] && [ "${lint_failed:-0}" -eq 0 ]
