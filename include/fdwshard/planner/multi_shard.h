/* Multi-shard UPDATE and DELETE: one statement per shard, run on the shard's node. */
#pragma once

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/pg.h"

namespace fdwshard::multi_shard
{

/*
 * A plan that runs parse, an UPDATE or DELETE of one distributed table over several shards, as
 * the same statement on each shard that can hold matching rows: deparsed and sent to the worker
 * for a foreign shard, planned against the shard for a local one. NULL (the caller plans it the
 * ordinary way) when the statement must stay on the coordinator: it changes the distribution
 * column, joins other relations, has triggers to fire, a part that cannot be shipped, or no
 * foreign shard to gain on. parse is not modified.
 */
PlannedStmt *PlanMultiShardModify(Query *parse, int cursor_options, ParamListInfo bound_params);

} // namespace fdwshard::multi_shard
