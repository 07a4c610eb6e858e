/* Custom scan that runs a partial-aggregate query on every shard and returns all their rows. */
#pragma once

#include "fdwshard/executor/shard_tasks.h"

namespace fdwshard::executor
{

/*
 * A "FdwShard Partial Aggregate" scan that replaces function_scan (a FunctionScan over a column
 * definition list of the partial rows, scanrelid its range table index in the final plan): it
 * runs tasks (SQL sent to the worker for foreign shards, all workers at once; plans run in this
 * process for local shards) and returns every shard's rows. The SQL lives only in the plan.
 * whole: the shards run the whole aggregate query (grouped by the distribution column), which
 * EXPLAIN says.
 */
CustomScan *MakePartialAggregateScan(FunctionScan *function_scan, const ShardTask *tasks, int task_count,
                                     const ship::ShippedQuery *params, bool whole);

/*
 * The coordinator's half of split variance and stddev are SQL functions of this file:
 * fdwshard.numeric_moments_result and fdwshard.float8_moments_result (see the planner's
 * CombineMoments).
 */

/* Registers the custom scan methods. */
void InitPartialAggregate(void);

} // namespace fdwshard::executor
