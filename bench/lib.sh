# Sourced by bench/copy.sh and bench/two_phase.sh: their arguments, the build (unless
# --skip-build), the result files' names and the cluster every run uses.

# bench_args "$@": --skip-build sets SKIP_BUILD=1; -h prints the script's header (lines 2-5).
bench_args() {
	SKIP_BUILD=0
	for arg in "$@"; do
		case $arg in
		--skip-build) SKIP_BUILD=1 ;;
		-h | --help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "unknown argument: $arg" >&2; exit 2 ;;
		esac
	done
}

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
