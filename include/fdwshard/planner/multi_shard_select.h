/* Multi-shard SELECTs without aggregates: ORDER BY ... LIMIT and co-located joins run on the shards. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::multi_shard
{

/*
 * A SELECT without aggregates, grouping, window functions, set-returning functions in its
 * list, DISTINCT, subqueries, CTEs, set operations, row locks or row security: the shape the
 * multi-shard SELECT and co-located INSERT ... SELECT paths handle. Its FROM is checked by
 * planner::CollectJoinedTables.
 */
bool IsPlainSelect(Query *parse, int cursor_options);

/*
 * A plan for parse, a SELECT without aggregates over several shards of one distributed table
 * or of co-located tables inner-joined on their distribution columns, in which each shard index
 * runs the query on the node holding its shards (the join included) with ORDER BY and LIMIT
 * limit + offset where that returns every row of the answer it holds, and the coordinator runs
 * the user's query over the shards' rows: PostgreSQL's own Sort and Limit over the "FdwShard
 * Multi-Shard Select" scan. Taken only when it is better than PostgreSQL's plan of the
 * partitioned table: a LIMIT that each shard can apply, or a co-located join. NULL (the caller
 * plans it the ordinary way) for any other statement: outer or other joins, subqueries, CTEs,
 * window functions, DISTINCT, set operations, FOR UPDATE, a part that cannot be shipped
 * (volatile or non-built-in functions, ...). parse is not modified.
 */
PlannedStmt *PlanMultiShardSelect(Query *parse, const char *query_string, int cursor_options,
                                  ParamListInfo bound_params);

} // namespace fdwshard::multi_shard
