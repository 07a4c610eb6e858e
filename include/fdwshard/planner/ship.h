/* Whole-statement shipping: a statement whose shards all live on one worker runs there in one round trip. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::ship
{

/*
 * A plan that sends query (its distributed tables already pointing at the shards in shards, a
 * List of CachedShard) to the worker holding all of them, or NULL when they are not all on one
 * worker or the statement cannot be shipped without changing its result. query is not modified.
 * permission_rtes are appended to the plan's range table for permission checks and locks.
 */
PlannedStmt *PlanRemoteStatement(Query *query, List *shards, List *permission_rtes, int cursor_options);

} // namespace fdwshard::ship
