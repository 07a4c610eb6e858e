# Sourced by bench/run.sh: turns the raw CSV into the markdown report. Uses run.sh's RUNS,
# workloads, SHARD_COUNTS, settings and LOAD_SECONDS.

declare -A MED RUNLIST
declare -A DESCRIBE=([select]="point SELECT by key" [agg]="per-tenant aggregate" [update]="UPDATE by key"
	[insert]="single-row INSERT" [agg_all]="SELECT count(*), sum(amount) FROM events"
	[agg_kind]="SELECT kind, count(*), avg(amount) FROM events GROUP BY kind"
	[join_agg]="co-located events JOIN tenants ON tenant_id, count(*) and sum(amount) GROUP BY plan"
	[top_n]="SELECT ... FROM events ORDER BY amount DESC, tenant_id, id LIMIT 10"
	[stats_kind]="SELECT kind, stddev(amount), var_pop(amount), bool_or(amount > 990) FROM events GROUP BY kind"
	[update_10pct]="UPDATE events SET touched = touched + 1 WHERE kind = 'k3' (10% of the rows)")

# medians CSV: "system,shards,workload,median,runs" per measured combination (runs sorted; latencies
# in ms with one decimal).
medians() {
	tail -n +2 "$1" | sort -t, -k2,2 -k3,3n -k5,5 -k6,6g | awk -F, -v lat=" $LATENCY_WORKLOADS " '
		function flush() { if (n) print key "," (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) "," runs }
		{ k = $2 "," $3 "," $5
		  if (k != key) { flush(); key = k; n = 0; runs = "" }
		  v[++n] = $6; runs = runs (n > 1 ? " " : "") sprintf(index(lat, " " $5 " ") ? "%.1f" : "%.0f", $6) }
		END { flush() }'
}

calc() { awk "BEGIN { printf \"$1\", $2 }"; } # calc FORMAT EXPRESSION
med() { echo "${MED[$1,$2,$3]:-}"; }          # med SYSTEM SHARDS WORKLOAD
ratio() {                                       # ratio SYSTEM SHARDS WORKLOAD: median / plain's median
	local a b
	a=$(med "$1" "$2" "$3") b=$(med plain 0 "$3")
	[ -n "$a" ] && [ -n "$b" ] && calc %.2f "$a / $b"
}
change() { # change SYSTEM WORKLOAD: TPS at 512 shards relative to 8 shards
	local a b
	a=$(med "$1" 8 "$2") b=$(med "$1" 512 "$2")
	[ -n "$a" ] && [ -n "$b" ] && calc %+.1f "($b / $a - 1) * 100"
}
verdict() { # verdict VALUE MIN
	if [ -z "$1" ]; then echo "not measured"; elif awk "BEGIN { exit !($1 >= $2) }"; then echo "**met**"; else echo "**not met**"; fi
}
verdict_max() { # verdict_max VALUE MAX
	if [ -z "$1" ]; then echo "not measured"; elif awk "BEGIN { exit !($1 <= $2) }"; then echo "**met**"; else echo "**not met**"; fi
}
speedup() { # speedup SYSTEM SHARDS OTHER WORKLOAD: OTHER's median latency / SYSTEM's (how many times faster)
	local a b
	a=$(med "$1" "$2" "$4") b=$(med "$3" "$2" "$4")
	[ -n "$a" ] && [ -n "$b" ] && calc %.1f "$b / $a"
}
has_shards() { [[ " $SHARD_COUNTS " == *" $1 "* ]]; }
has_workload() { [[ " ${workloads[*]} " == *" $1 "* ]]; }

write_report() { # CSV
	local line sys n w mode m r runs commit version cpu
	while IFS=, read -r sys n w m runs; do
		MED[$sys,$n,$w]=$m
		RUNLIST[$sys,$n,$w]=$runs
	done < <(medians "$1")
	commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
	version=$("$PG_BIN/postgres" --version)
	cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)

	echo "# fdwshard benchmark, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "- fdwshard $commit, $version, $(nproc) CPUs ($cpu)"
	echo "- $((TENANTS * ROWS_PER_TENANT)) rows ($TENANTS tenants x $ROWS_PER_TENANT) in every system;" \
		"one coordinator + 2 workers on this machine, same server settings for all (test/cluster.sh," \
		"shared_buffers $SHARED_BUFFERS${MAX_FILES_PER_PROCESS:+, max_files_per_process $MAX_FILES_PER_PROCESS}, autovacuum off after VACUUM ANALYZE)"
	local tps_workloads=0
	for w in "${workloads[@]}"; do is_latency "$w" || tps_workloads=1; done
	[ $tps_workloads = 0 ] || echo "- TPS workloads: pgbench -n -c $CLIENTS -j $THREADS -T $DURATION; median TPS of $REPEATS runs (runs interleaved across systems);" \
		"ratio = median / plain's median"
	echo "- load average before/after: $LOADAVG_BEFORE / $LOADAVG_AFTER"
	local latency_workloads=0
	for w in "${workloads[@]}"; do is_latency "$w" && latency_workloads=1; done
	[ $latency_workloads = 0 ] || echo "- latency workloads: pgbench -n -c 1 -j 1 -M simple -t $ITERATIONS" \
		"(update_10pct: -t 1, after an untimed VACUUM, in rounds of its own after every other workload);" \
		"a run's value is the median of its executions' latencies (pgbench per-transaction log);" \
		"median ms of $REPEATS runs; x plain = median / plain's median (lower is faster)"
	echo "- failed transactions: none (checked); serialization failures retried by pgbench (--max-tries=10):" \
		"$(awk -F, 'NR > 1 { s += $8 } END { print s + 0 }' "$1")"
	echo "- systems: **plain** one table; **native_local** PARTITION BY HASH, local partitions;" \
		"**native_fdw** PARTITION BY HASH, postgres_fdw partitions on 2 workers (seed 000);" \
		"**fdwshard_local** all shards on the coordinator; **fdwshard_remote** shards on 2 workers"
	echo -n "- load + VACUUM ANALYZE seconds:"
	for line in "${RUNS[@]}"; do
		IFS=: read -r sys n db <<<"$line"
		echo -n " $db ${LOAD_SECONDS[$db]:-?};"
	done
	echo
	for w in "${workloads[@]}"; do
		echo
		if is_latency "$w"; then
			echo "## $w: ${DESCRIBE[$w]:-$w} (latency)"
			echo
			echo "| system | shards | median ms | x plain | runs (ms) |"
		else
			mode=${w##*_}
			echo "## $w: ${DESCRIBE[${w%_*}]:-${w%_*}}, -M $mode"
			echo
			echo "| system | shards | median TPS | x plain | runs |"
		fi
		echo "|---|---:|---:|---:|---|"
		for line in "${RUNS[@]}"; do
			IFS=: read -r sys n db <<<"$line"
			m=$(med "$sys" "$n" "$w")
			[ -n "$m" ] || continue
			r=$(ratio "$sys" "$n" "$w") || r="-"
			printf "| %s | %s | $(is_latency "$w" && echo %.1f || echo %.0f) | %s | %s |\n" \
				"$sys" "$([ "$n" = 0 ] && echo - || echo "$n")" "$m" "$r" \
				"${RUNLIST[$sys,$n,$w]}"
		done
	done

	if has_shards 8 && has_shards 512; then
		echo
		echo "## 512 vs 8 shards (TPS change)"
		echo
		echo "| workload | fdwshard_local | native_local | fdwshard_remote | native_fdw |"
		echo "|---|---:|---:|---:|---:|"
		for w in "${workloads[@]}"; do
			if is_latency "$w"; then continue; fi
			echo -n "| $w |"
			for sys in fdwshard_local native_local fdwshard_remote native_fdw; do
				r=$(change "$sys" "$w") && echo -n " $r% |" || echo -n " - |"
			done
			echo
		done
	fi

	# The issue's targets, on ratios only, at 32 shards (or the first shard count measured).
	local ts=32
	has_shards 32 || ts=${SHARD_COUNTS%% *}
	echo
	echo "## Targets"
	echo
	echo "| target | fdwshard | native, for comparison | |"
	echo "|---|---:|---:|---|"
	for w in select_simple select_prepared agg_simple agg_prepared; do
		has_workload "$w" || continue
		r=$(ratio fdwshard_local "$ts" "$w") || r=""
		echo "| local shards, $ts shards, $w >= 0.95 x plain | ${r:--} | $(ratio native_local "$ts" "$w" || echo -) | $(verdict "$r" 0.95) |"
	done
	if has_shards 8 && has_shards 512; then
		for w in select_simple select_prepared agg_simple agg_prepared; do
			has_workload "$w" || continue
			r=$(change fdwshard_local "$w") || r=""
			echo "| local shards, 512 vs 8 shards, $w: drop <= 5% | ${r:--}% | $(change native_local "$w" || echo -)% |" \
				"$(verdict "$r" -5) |"
		done
	fi
	for w in "${workloads[@]}"; do
		if is_latency "$w"; then continue; fi
		case $w in select_*) min=0.25 ;; update_* | insert_*) min=0.5 ;; *) continue ;; esac
		r=$(ratio fdwshard_remote "$ts" "$w") || r=""
		echo "| remote shards (2 workers), $ts shards, $w >= $min x plain | ${r:--} |" \
			"$(ratio native_fdw "$ts" "$w" || echo -) | $(verdict "$r" "$min") |"
	done
	# Multi-shard latency targets (issue 9): remote shards >= 7x faster than native_fdw and <= 1.5x plain,
	# local shards <= 1.1x plain; the multi-shard UPDATE <= 2x plain.
	for w in agg_all agg_kind join_agg; do
		has_workload "$w" || continue
		r=$(speedup fdwshard_remote "$ts" native_fdw "$w") || r=""
		echo "| remote shards (2 workers), $ts shards, $w: >= 7x faster than native_fdw | ${r:+${r}x} | - | $(verdict "$r" 7) |"
		r=$(ratio fdwshard_remote "$ts" "$w") || r=""
		echo "| remote shards (2 workers), $ts shards, $w: latency <= 1.5 x plain | ${r:--} |" \
			"$(ratio native_fdw "$ts" "$w" || echo -) | $(verdict_max "$r" 1.5) |"
		r=$(ratio fdwshard_local "$ts" "$w") || r=""
		echo "| local shards, $ts shards, $w: latency <= 1.1 x plain | ${r:--} |" \
			"$(ratio native_local "$ts" "$w" || echo -) | $(verdict_max "$r" 1.1) |"
	done
	if has_workload update_10pct; then
		r=$(ratio fdwshard_remote "$ts" update_10pct) || r=""
		echo "| remote shards (2 workers), $ts shards, update_10pct: latency <= 2 x plain | ${r:--} |" \
			"$(ratio native_fdw "$ts" update_10pct || echo -) | $(verdict_max "$r" 2) |"
		r=$(ratio fdwshard_local "$ts" update_10pct) || r=""
		echo "| local shards, $ts shards, update_10pct: latency <= 2 x plain | ${r:--} |" \
			"$(ratio native_local "$ts" update_10pct || echo -) | $(verdict_max "$r" 2) |"
	fi
}

# update_readme README REPORT: replaces the text between the "latest results" markers.
update_readme() {
	local tmp
	tmp=$(mktemp)
	awk -v report="$2" '
		/<!-- latest results: end -->/ { skip = 0 }
		!skip { print }
		/<!-- latest results: start -->/ {
			while ((getline line < report) > 0) print (line ~ /^#/ ? "##" line : line)  # headings one level down
			skip = 1 }' "$1" >"$tmp" && cat "$tmp" >"$1"
	rm -f "$tmp"
}
