/* The planner hook: the router fast path first, shard pruning for everything else. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/*
 * The ordinary plan of query: with add_pruning (a statement over distributed tables not routed to
 * shards), the implied fdwshard_hash() conditions that let partition pruning drop shards, and the
 * refusal of ON CONFLICT ON CONSTRAINT naming a shard key; then the planner hook we replaced, or
 * standard_planner.
 */
PlannedStmt *PlanOrdinary(Query *query, const char *query_string, int cursor_options, ParamListInfo bound_params,
                          bool add_pruning);

/* Installs the planner hook, chained after any previous one. */
void InitPlanner(void);

} // namespace fdwshard
