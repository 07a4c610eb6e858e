/* Router fast path: statements whose distributed tables are all pinned to one shard skip partition expansion. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::router
{

/* How the distributed tables of a statement are pinned. */
enum class RouteKind
{
	kNotRoutable, /* some table is not pinned to one shard: plan it the ordinary way */
	kResolved,    /* every table's shard is known now */
	kDeferred     /* every table is pinned by the same parameter, not bound yet (generic plan) */
};

/* The parameter a deferred route waits for, and the table that turns its hash into a shard index. */
struct DeferredPin
{
	int paramid;
	Oid type;
	Oid collation;
	Oid relid;
};

/*
 * Plans parse (not modified) through the router and returns the plan, or NULL with *kind saying
 * why: kNotRoutable, or kDeferred (then *deferred, when given, says which parameter). pin_params
 * resolve parameters that pin shards; plan_params go to the planner. forced_shard_index >= 0
 * routes a deferred statement to that shard index (its parameter's value hashes there).
 */
PlannedStmt *RouteQuery(Query *parse, int cursor_options, ParamListInfo pin_params, ParamListInfo plan_params,
                        DeferredPin *deferred, RouteKind *kind, int forced_shard_index = -1);

/* The value of parameter paramid in params; false when absent or (require_const) not fixed. */
bool ParamValue(ParamListInfo params, int paramid, bool require_const, Datum *value, bool *is_null, Oid *type);

} // namespace fdwshard::router
