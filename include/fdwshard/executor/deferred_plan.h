/* Generic plans of statements pinned by a parameter: routed when the parameter's value is known. */
#pragma once

#include "fdwshard/pg.h"
#include "fdwshard/planner/router.h"

namespace fdwshard::deferred
{

/*
 * A plan for parse whose shard depends on parameter pin.paramid. At executor start the
 * parameter's value picks the shard index and the statement runs that index's plan, planned
 * once per backend and kept until an invalidation touches one of its relations. Execution never
 * expands the distributed table, so it costs the same at 8 or 512 shards.
 */
PlannedStmt *MakeDeferredPlan(Query *parse, int cursor_options, const router::DeferredPin &pin);

/* Installs the ExecutorStart hook and the invalidation callbacks. */
void InitDeferredPlans(void);

} // namespace fdwshard::deferred
