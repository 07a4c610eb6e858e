/* INSERT into a distributed table that the router does not pin: rows computed on the coordinator, written per shard. */
#pragma once

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/pg.h"

namespace fdwshard::distributed_insert
{

/*
 * A plan for parse, an INSERT into a distributed table (multi-row VALUES, INSERT ... SELECT, a
 * row the router could not pin), whose rows a subplan computes on the coordinator (the source
 * with defaults, sequences and coercions, planned as a SELECT by fdwshard's own planner) and the
 * "FdwShard Distributed Insert" scan writes to their shards: through COPY (executor/shard_copy.h),
 * or, with ON CONFLICT or RETURNING, as one INSERT ... VALUES per shard (and batch). NULL (the
 * ordinary plan) for targets with triggers, row security or stored generated columns, and for
 * what cannot be shipped. parse is not modified.
 */
PlannedStmt *PlanInsert(Query *parse, const char *query_string, int cursor_options, ParamListInfo bound_params);

/*
 * The one place where a shard's copy of the INSERT (its target already the shard) gets its ON
 * CONFLICT clause: EXCLUDED describes the shard's row, the arbiter names what the shard has.
 */
void PrepareShardOnConflict(Query *shard_query, const catalog::CachedShard *shard);

/* Points shard_query's target (range table entry 1) and EXCLUDED at shard; permissions stay on the distributed table.
 */
void PointInsertAtShard(Query *shard_query, const catalog::CachedShard *shard);

} // namespace fdwshard::distributed_insert
