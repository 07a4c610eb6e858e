/* Multi-shard aggregates: each shard computes partial aggregates, the coordinator combines them. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::multi_shard
{

/*
 * A plan for parse, a SELECT with aggregates over one distributed table and several shards, or
 * over co-located tables inner-joined on their distribution columns (each shard index's join
 * runs on the node holding those shards), in which every shard computes partial aggregates of
 * its rows (GROUP BY included) and the coordinator combines them: the coordinator part is parse
 * over the partial rows, planned by PostgreSQL (HAVING, ORDER BY, LIMIT run there), with its
 * scan of the partial rows replaced by the "FdwShard Partial Aggregate" custom scan. When GROUP
 * BY has a distribution column itself, every group is in one shard: each shard runs the whole
 * query (any built-in aggregate, HAVING, ORDER BY with the LIMIT when it can) and the
 * coordinator's query only orders and limits the shards' rows, through the same scan. NULL (the
 * caller plans it the ordinary way) for any other statement: other joins, subqueries, window
 * functions, DISTINCT, grouping sets, aggregates other than count, sum, min, max, avg,
 * variance and stddev on built-in numeric types (min and max on a few more), bool_and, bool_or,
 * every and count(DISTINCT distribution column), or a part that cannot be shipped. parse is not
 * modified.
 */
PlannedStmt *PlanMultiShardAggregate(Query *parse, const char *query_string, int cursor_options,
                                     ParamListInfo bound_params);

} // namespace fdwshard::multi_shard
