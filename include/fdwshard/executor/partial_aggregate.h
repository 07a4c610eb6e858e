/* Custom scans that run a query on every shard and return all their rows: partial aggregates, multi-shard SELECTs. */
#pragma once

#include "fdwshard/executor/shard_tasks.h"

namespace fdwshard::executor
{

/* What each shard of a scan of shard rows runs: its name and EXPLAIN say it. */
enum class ShardRowsKind
{
	kPartialAggregates, /* "FdwShard Partial Aggregate": partial aggregates, combined on the coordinator */
	kWholeAggregates, /* "FdwShard Partial Aggregate": the whole aggregate query, grouped by the distribution column */
	kSelect,          /* "FdwShard Multi-Shard Select": a SELECT without aggregates, ordered and limited on the
	                     coordinator */
};

/*
 * A scan of kind that replaces function_scan (a FunctionScan over a column definition list of
 * the shards' rows, scanrelid its range table index in the final plan): it runs tasks (SQL sent
 * to the worker for foreign shards, all workers at once; plans run in this process for local
 * shards) and returns every shard's rows. The SQL lives only in the plan. per_shard (kSelect):
 * what each shard runs, for EXPLAIN. combine (or NULL): how one statement reads several shards
 * of a node.
 */
CustomScan *MakeShardRowsScan(FunctionScan *function_scan, const ShardTask *tasks, int task_count,
                              const ship::ShippedQuery *params, ShardRowsKind kind, const char *per_shard,
                              const ShardCombine *combine);

/*
 * The coordinator's half of split variance and stddev are SQL functions of this file:
 * fdwshard.numeric_moments_result and fdwshard.float8_moments_result (see the planner's
 * CombineMoments).
 */

/* Registers the custom scan methods. */
void InitPartialAggregate(void);

} // namespace fdwshard::executor
