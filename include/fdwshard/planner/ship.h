/* Whole-statement shipping: a statement whose shards all live on one worker runs there in one round trip. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::ship
{

/* A statement as the worker runs it, and where its parameters come from. */
struct ShippedQuery
{
	char *sql;           /* parameters are $1..$n */
	List *param_sources; /* per parameter: Integer(k): k > 0 user parameter k, k < 0 local_exprs[-k - 1] */
	List *param_types;   /* OID list */
	List *local_exprs;   /* coordinator-side parts, evaluated once per execution */
};

/*
 * Deparses query (its relations already the shard relations shard_relids) for the worker, with
 * coordinator-side parts turned into parameters, or returns false when some part cannot run
 * there with the same result. query is not modified.
 */
bool ShipQuery(Query *query, List *shard_relids, ShippedQuery *out);

/* ShipQuery without the text: the shipped tree (out->sql NULL), or NULL when it cannot be shipped. */
Query *ShipQueryTree(Query *query, List *shard_relids, ShippedQuery *out);

/* The SQL text of shipped (a ShipQueryTree result, changed in place; its relations among shard_relids). */
char *DeparseShipped(Query *shipped, List *shard_relids);

/*
 * A plan that sends query (its distributed tables already pointing at the shards in shards, a
 * List of CachedShard) to the worker holding all of them, or NULL when they are not all on one
 * worker or the statement cannot be shipped without changing its result. query is not modified.
 * permission_rtes are appended to the plan's range table for permission checks and locks.
 */
PlannedStmt *PlanRemoteStatement(Query *query, List *shards, List *permission_rtes, int cursor_options);

} // namespace fdwshard::ship
