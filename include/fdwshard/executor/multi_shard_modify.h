/* Custom scan that runs a multi-shard UPDATE, DELETE or co-located INSERT ... SELECT one statement per shard. */
#pragma once

#include "fdwshard/executor/shard_tasks.h"

namespace fdwshard::executor
{

/*
 * The PlannedStmt of query (a multi-shard UPDATE or DELETE) as one custom scan over tasks. The
 * foreign shards' statements share parameters (params); they run on their workers at the same
 * time, one per worker at once, while the local shards' plans run in this process. It returns
 * the RETURNING rows of every shard and counts every shard's rows. rtable becomes the plan's
 * range table (the distributed table first, for permission checks).
 *
 * moves, when the UPDATE changes the distribution column of that table: the foreign shards'
 * statements (each returning the new distribution value last) update rows in place; then the
 * one local plan runs, moving its rows by tuple routing; then rows left in a foreign shard that
 * is no longer theirs move to their shard. Each step sees the shards after the ones before it,
 * so no row is updated twice.
 */
PlannedStmt *MakeMultiShardModifyPlan(Query *query, List *rtable, const ShardTask *tasks, int task_count,
                                      const ship::ShippedQuery *params, const catalog::CachedTable *moves);

/*
 * The same scan, shown as "FdwShard Co-located Insert ... Select", for query, an INSERT ... SELECT
 * between co-located tables whose tasks each insert a shard's rows into the target's shard of the
 * same index on the same node (planner/insert_select.h).
 */
PlannedStmt *MakeColocatedInsertPlan(Query *query, List *rtable, const ShardTask *tasks, int task_count,
                                     const ship::ShippedQuery *params);

/* Registers the custom scan methods. */
void InitMultiShardModify(void);

} // namespace fdwshard::executor
