/* Co-located INSERT ... SELECT: each shard index inserts its source shards' rows on its own node. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::multi_shard
{

/*
 * A plan for parse, INSERT INTO target SELECT ... FROM source, that runs
 *     INSERT INTO target_shard_i (...) SELECT ... FROM source_shard_i ...
 * for each shard index i on the node holding both, when target and source are co-located
 * distributed tables (one, or several inner-joined on their distribution columns) and target's
 * distribution column gets source's: every row of source shard i belongs in target shard i. ON
 * CONFLICT and RETURNING run on the shards as on one table. NULL (the caller plans it another
 * way) for anything else: other sources, aggregates, DISTINCT, ORDER BY, LIMIT, CTEs,
 * subqueries, volatile expressions (serial, identity and random() defaults too), a part that
 * cannot be shipped, triggers, row security or stored generated columns on target. Local shards
 * run in this process. parse is not modified.
 */
PlannedStmt *PlanColocatedInsertSelect(Query *parse, int cursor_options, ParamListInfo bound_params);

} // namespace fdwshard::multi_shard
