/* Custom scan that runs one whole statement on a worker through postgres_fdw's connection. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::executor
{

/* What a shipped statement needs at run time. */
struct RemoteStatement
{
	char *sql;    /* parameters are $1..$n */
	Oid serverid; /* foreign server of the worker */
	int32 nodeid;
	List *shards;        /* CachedShard pointers, for EXPLAIN */
	List *param_sources; /* per parameter: Integer(k): k > 0 user parameter k, k < 0 local_exprs[-k - 1] */
	List *param_types;   /* OID list */
	List *local_exprs;   /* evaluated on the coordinator at start-up */
};

/*
 * The PlannedStmt of query shipped as statement: a single custom scan returning the statement's
 * rows (SELECT list or RETURNING list). rtable becomes the plan's range table.
 */
PlannedStmt *MakeRemoteStatementPlan(Query *query, List *rtable, const RemoteStatement *statement);

/* True when plan is MakeRemoteStatementPlan's: a shipped statement. */
bool IsRemoteStatementPlan(const PlannedStmt *plan);

/* A remote statement plan's SQL text, and its shards' names as EXPLAIN shows them. */
const char *RemoteStatementSql(const PlannedStmt *plan);
const char *RemoteStatementShardNames(const PlannedStmt *plan);

/*
 * Points plan, a copy of a remote statement plan, at other shards of the same tables: its SQL
 * text, worker (serverid, nodeid) and shard names for EXPLAIN. The caller changes its range table.
 */
void RetargetRemoteStatement(PlannedStmt *plan, char *sql, Oid serverid, int32 nodeid, char *shard_names);

/*
 * The parameters of a shipped statement as text, for plan_state's execution: user parameters
 * from its EState, coordinator-side expressions (local_states, ExprStates) evaluated in its
 * ExprContext. *types_out gets their types.
 */
const char **ShippedParameterValues(PlanState *plan_state, List *param_sources, List *param_types, List *local_states,
                                    Oid **types_out);

/*
 * A hand-built custom scan with methods that returns output (a SELECT list or RETURNING list),
 * its coordinator-side expressions planned from local_exprs; startup_cost counts the round trips
 * it waits for. The caller fills custom_private.
 */
CustomScan *MakeOutputScan(List *output, List *local_exprs, const CustomScanMethods *methods, Cost startup_cost);

/* The PlannedStmt of query whose plan is scan alone; rtable becomes its range table. */
PlannedStmt *MakeScanStatement(Query *query, List *rtable, CustomScan *scan);

/* The methods of a custom scan without mark/restore or parallelism: the callbacks given, NULL the rest. */
constexpr CustomExecMethods
SerialExecMethods(const char *name, void (*begin)(CustomScanState *, EState *, int),
                  TupleTableSlot *(*exec)(CustomScanState *), void (*end)(CustomScanState *),
                  void (*rescan)(CustomScanState *), void (*explain)(CustomScanState *, List *, ExplainState *))
{
	return CustomExecMethods{name, begin, exec, end, rescan, NULL, NULL, NULL, NULL, NULL, NULL, NULL, explain};
}

/* Registers the custom scan methods (for plan copies sent to parallel workers). */
void InitRemoteStatement(void);

} // namespace fdwshard::executor
