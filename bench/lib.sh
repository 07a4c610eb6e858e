# Sourced by bench/copy.sh and bench/two_phase.sh: builds (unless --skip-build), names the result
# files and starts the cluster every run uses.
# bench_start PREFIX: sets STAMP, OUT, CSV, LOG, REPORT and WORK, starts a coordinator and two
# workers (test/cluster.sh), and stops them and removes WORK on exit.
bench_start() {
	if [ "$SKIP_BUILD" = 0 ]; then bash scripts/build.sh; fi
	STAMP=$(date +%Y%m%d-%H%M%S)
	OUT=bench/results
	mkdir -p "$OUT"
	CSV=$OUT/$1-$STAMP.csv
	LOG=$OUT/$1-$STAMP.log
	REPORT=$OUT/$1-$STAMP.md
	: >"$LOG"
	WORK=$(mktemp -d)
	chmod 755 "$WORK"
	trap 'cluster_stop; rm -rf "$WORK"' EXIT
	trap 'exit 130' INT TERM
	echo "== starting a coordinator and two workers ($PG_BIN)"
	cluster_start
}
