/*
 * The "FdwShard Router" custom scan for shipped statements (see executor/remote_statement.h):
 * evaluates the parameters (user parameters and coordinator-side expressions), sends the
 * statement in one round trip on postgres_fdw's connection, and returns its rows.
 */
#include "fdwshard/executor/remote_statement.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/executor/result_row.h"
#include "fdwshard/guard.h"
#include "fdwshard/planner/router.h"
#include "fdwshard/remote/autocommit.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/transaction/whole_transaction.h"

namespace fdwshard::executor
{

namespace
{

/* Positions in CustomScan.custom_private. */
enum RemotePrivate
{
	kSql,
	kServer,
	kNode,
	kShardNames,
	kParamSources,
	kParamTypes,
	kOperation
};

struct RemoteScanState
{
	CustomScanState css; /* must be first */
	char *sql;
	Oid serverid;
	int32 nodeid;
	char *shard_names;
	List *param_sources;
	List *param_types;
	List *local_states; /* ExprState per coordinator-side expression */
	CmdType operation;
	PGresult *result; /* owned; cleared by EndCustomScan or the executor context's reset callback */
	int next_row;
	bool executed;
	RowInput input;
	MemoryContextCallback cleanup;
};

extern const CustomScanMethods kRemoteScanMethods;
extern const CustomExecMethods kRemoteExecMethods;

void
ClearResult(void *arg)
{
	RemoteScanState *state = (RemoteScanState *) arg;
	if (state->result != NULL)
		PQclear(state->result);
	state->result = NULL;
}

Node *
CreateRemoteScanState(CustomScan *scan)
{
	RemoteScanState *state = (RemoteScanState *) palloc0(sizeof(RemoteScanState));
	NodeSetTag(state, T_CustomScanState);
	state->css.methods = &kRemoteExecMethods;

	List *items = scan->custom_private;
	state->sql = strVal(list_nth(items, kSql));
	state->serverid = (Oid) strtoul(strVal(list_nth(items, kServer)), NULL, 10);
	state->nodeid = intVal(list_nth(items, kNode));
	state->shard_names = strVal(list_nth(items, kShardNames));
	state->param_sources = (List *) list_nth(items, kParamSources);
	state->param_types = (List *) list_nth(items, kParamTypes);
	state->operation = (CmdType) intVal(list_nth(items, kOperation));
	return (Node *) state;
}

void
BeginRemoteScan(CustomScanState *node, EState *estate, int)
{
	RemoteScanState *state = (RemoteScanState *) node;
	CustomScan *scan = (CustomScan *) node->ss.ps.plan;

	state->local_states = ExecInitExprList(scan->custom_exprs, &node->ss.ps);

	InitRowInput(&state->input, node->ss.ss_ScanTupleSlot->tts_tupleDescriptor);

	state->cleanup.func = pg::EntryPoint<ClearResult>::Call;
	state->cleanup.arg = state;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &state->cleanup);
}

void
Execute(RemoteScanState *state)
{
	Oid *types;
	const char **values = ShippedParameterValues(&state->css.ss.ps, state->param_sources, state->param_types,
	                                             state->local_states, &types);

	int count = list_length(state->param_sources);
	EState *estate = state->css.ss.ps.state;
	/* The worker's own transaction is READ COMMITTED: only then is it the client's transaction. */
	if (XactIsoLevel == XACT_READ_COMMITTED && transaction::IsWholeTransaction(estate))
		state->result = remote::ExecuteAutocommit(state->serverid, state->sql, count, types, values);
	else
		state->result =
		    remote::ExecuteParams(state->serverid, state->sql, count, types, values, state->operation != CMD_SELECT);
	state->executed = true;
	state->next_row = 0;

	if (state->operation != CMD_SELECT)
		state->css.ss.ps.state->es_processed += strtoul(PQcmdTuples(state->result), NULL, 10);

	TupleDesc desc = state->css.ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	if (PQresultStatus(state->result) == PGRES_TUPLES_OK && PQnfields(state->result) != desc->natts)
		ereport(ERROR, (errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
		                errmsg("worker returned %d columns, expected %d", PQnfields(state->result), desc->natts),
		                errdetail("Remote SQL: %s", state->sql)));
}

TupleTableSlot *
ExecRemoteScan(CustomScanState *node)
{
	RemoteScanState *state = (RemoteScanState *) node;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (!state->executed)
		Execute(state);

	ExecClearTuple(slot);
	if (PQresultStatus(state->result) != PGRES_TUPLES_OK || state->next_row >= PQntuples(state->result))
		return slot;

	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	ResetExprContext(econtext);
	MemoryContext old_context = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	ReadResultRow(&state->input, state->result, state->next_row++, slot);
	MemoryContextSwitchTo(old_context);
	ExecStoreVirtualTuple(slot);

	if (node->ss.ps.ps_ProjInfo != NULL)
	{
		econtext->ecxt_scantuple = slot;
		return ExecProject(node->ss.ps.ps_ProjInfo);
	}
	return slot;
}

void
EndRemoteScan(CustomScanState *node)
{
	ClearResult(node);
}

void
ReScanRemoteScan(CustomScanState *node)
{
	/* The statement's parameters are fixed for the whole execution: replay the rows already fetched. */
	((RemoteScanState *) node)->next_row = 0;
}

void
ExplainRemoteScan(CustomScanState *node, List *, ExplainState *es)
{
	RemoteScanState *state = (RemoteScanState *) node;
	const catalog::CachedNode *worker = catalog::LookupNode(state->nodeid);

	ExplainPropertyText("Shard", state->shard_names, es);
	/* Host without port: regression output must not depend on the ports a test cluster got. */
	ExplainPropertyText(
	    "Node", worker != NULL ? psprintf("%d (%s)", worker->nodeid, worker->host) : psprintf("%d", state->nodeid), es);
	if (es->verbose)
		ExplainPropertyText("Remote SQL", state->sql, es);
}

const CustomScanMethods kRemoteScanMethods = {
    "FdwShard Router",
    pg::EntryPoint<CreateRemoteScanState>::Call,
};

const CustomExecMethods kRemoteExecMethods =
    SerialExecMethods("FdwShard Router", pg::EntryPoint<BeginRemoteScan>::Call, pg::EntryPoint<ExecRemoteScan>::Call,
                      pg::EntryPoint<EndRemoteScan>::Call, pg::EntryPoint<ReScanRemoteScan>::Call,
                      pg::EntryPoint<ExplainRemoteScan>::Call);

char *
ShardNames(List *shards)
{
	StringInfoData names;
	ListCell *cell;

	initStringInfo(&names);
	foreach (cell, shards)
	{
		Oid relid = ((const catalog::CachedShard *) lfirst(cell))->relid;
		if (names.len > 0)
			appendStringInfoString(&names, ", ");
		appendStringInfoString(
		    &names, quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)));
	}
	return names.data;
}

/*
 * A hand-built scan's target lists for output (a SELECT list or RETURNING list): *scan_tlist
 * the expressions (custom_scan_tlist), *tlist INDEX_VAR references to them, *width their width.
 */
void
OutputTargetLists(List *output, List **scan_tlist_out, List **tlist_out, int *width_out)
{
	List *scan_tlist = NIL;
	List *tlist = NIL;
	AttrNumber resno = 1;
	int width = 0;
	ListCell *cell;

	foreach (cell, output)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		if (entry->resjunk)
			continue;
		Expr *expr = entry->expr;
		Oid type = exprType((Node *) expr);
		int32 typmod = exprTypmod((Node *) expr);
		Oid collation = exprCollation((Node *) expr);

		/* EXPLAIN shows these; a subquery there cannot be shown outside its statement. */
		if (contain_subplans((Node *) expr))
			expr = (Expr *) makeNullConst(type, typmod, collation);
		scan_tlist = lappend(scan_tlist, makeTargetEntry((Expr *) copyObject(expr), resno, entry->resname, false));
		tlist = lappend(tlist, makeTargetEntry((Expr *) makeVar(INDEX_VAR, resno, type, typmod, collation, 0), resno,
		                                       entry->resname, false));
		width += get_typavgwidth(type, typmod);
		resno++;
	}

	*scan_tlist_out = scan_tlist;
	*tlist_out = tlist;
	*width_out = width;
}

} // namespace

/*
 * The parameters as text. Expressions are evaluated under the session's settings (DateStyle,
 * TimeZone, ...), as on one server; only printing the values for the worker uses postgres_fdw's
 * transmission modes (DateStyle ISO, ...), which the worker's session reads back unambiguously.
 */
const char **
ShippedParameterValues(PlanState *plan_state, List *param_sources, List *param_types, List *local_states,
                       Oid **types_out)
{
	int count = list_length(param_sources);
	const char **values = (const char **) palloc0(sizeof(char *) * Max(count, 1));
	Oid *types = (Oid *) palloc0(sizeof(Oid) * Max(count, 1));
	Datum *datums = (Datum *) palloc0(sizeof(Datum) * Max(count, 1));
	bool *nulls = (bool *) palloc0(sizeof(bool) * Max(count, 1));
	ExprContext *econtext = plan_state->ps_ExprContext;
	EState *estate = plan_state->state;

	*types_out = types;
	if (count == 0)
		return values;

	for (int i = 0; i < count; i++)
	{
		int source = intVal(list_nth(param_sources, i));

		types[i] = list_nth_oid(param_types, i);
		nulls[i] = true;
		if (source > 0)
		{
			Oid actual_type;
			if (!router::ParamValue(estate->es_param_list_info, source, false, &datums[i], &nulls[i], &actual_type))
				ereport(ERROR,
				        (errcode(ERRCODE_UNDEFINED_PARAMETER), errmsg("no value found for parameter %d", source)));
		}
		else
			datums[i] = ExecEvalExpr((ExprState *) list_nth(local_states, -source - 1), econtext, &nulls[i]);
	}

	int nest_level = remote::SetTransmissionModes();
	for (int i = 0; i < count; i++)
		if (!nulls[i])
		{
			Oid output_function;
			bool is_varlena;
			getTypeOutputInfo(types[i], &output_function, &is_varlena);
			values[i] = OidOutputFunctionCall(output_function, datums[i]);
		}
	remote::ResetTransmissionModes(nest_level);
	return values;
}

CustomScan *
MakeOutputScan(List *output, List *local_exprs, const CustomScanMethods *methods, Cost startup_cost)
{
	List *scan_tlist;
	List *tlist;
	int width;
	ListCell *cell;

	OutputTargetLists(output, &scan_tlist, &tlist, &width);

	CustomScan *scan = makeNode(CustomScan);
	foreach (cell, local_exprs)
		scan->custom_exprs = lappend(scan->custom_exprs, expression_planner((Expr *) lfirst(cell)));
	scan->scan.plan.targetlist = tlist;
	scan->scan.plan.startup_cost = startup_cost;
	scan->scan.plan.total_cost = startup_cost + cpu_tuple_cost;
	scan->scan.plan.plan_rows = 1;
	scan->scan.plan.plan_width = width;
	scan->scan.scanrelid = 0;
	scan->methods = methods;
	scan->custom_scan_tlist = scan_tlist;
	return scan;
}

PlannedStmt *
MakeScanStatement(Query *query, List *rtable, CustomScan *scan)
{
	ListCell *cell;

	PlannedStmt *stmt = makeNode(PlannedStmt);
	stmt->commandType = query->commandType;
	stmt->queryId = query->queryId;
	stmt->hasReturning = query->returningList != NIL;
	stmt->hasModifyingCTE = query->hasModifyingCTE;
	stmt->canSetTag = query->canSetTag;
	stmt->planTree = (Plan *) scan;
	stmt->rtable = rtable;
	foreach (cell, rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind == RTE_RELATION)
			stmt->relationOids = lappend_oid(stmt->relationOids, rte->relid);
	}
	stmt->stmt_location = query->stmt_location;
	stmt->stmt_len = query->stmt_len;
	return stmt;
}

PlannedStmt *
MakeRemoteStatementPlan(Query *query, List *rtable, const RemoteStatement *statement)
{
	List *output = query->commandType == CMD_SELECT ? query->targetList : query->returningList;
	/* One round trip, as postgres_fdw's DEFAULT_FDW_STARTUP_COST. */
	CustomScan *scan = MakeOutputScan(output, statement->local_exprs, &kRemoteScanMethods, 100.0);
	scan->custom_private =
	    list_make5(makeString(statement->sql), makeString(psprintf("%u", statement->serverid)),
	               makeInteger(statement->nodeid), makeString(ShardNames(statement->shards)), statement->param_sources);
	scan->custom_private = lappend(scan->custom_private, statement->param_types);
	scan->custom_private = lappend(scan->custom_private, makeInteger(query->commandType));
	return MakeScanStatement(query, rtable, scan);
}

bool
IsRemoteStatementPlan(const PlannedStmt *plan)
{
	return plan != NULL && plan->planTree != NULL && IsA(plan->planTree, CustomScan) &&
	       ((CustomScan *) plan->planTree)->methods == &kRemoteScanMethods;
}

const char *
RemoteStatementSql(const PlannedStmt *plan)
{
	return strVal(list_nth(((CustomScan *) plan->planTree)->custom_private, kSql));
}

const char *
RemoteStatementShardNames(const PlannedStmt *plan)
{
	return strVal(list_nth(((CustomScan *) plan->planTree)->custom_private, kShardNames));
}

void
RetargetRemoteStatement(PlannedStmt *plan, char *sql, Oid serverid, int32 nodeid, char *shard_names)
{
	List *items = ((CustomScan *) plan->planTree)->custom_private;
	list_nth_cell(items, kSql)->ptr_value = makeString(sql);
	list_nth_cell(items, kServer)->ptr_value = makeString(psprintf("%u", serverid));
	list_nth_cell(items, kNode)->ptr_value = makeInteger(nodeid);
	list_nth_cell(items, kShardNames)->ptr_value = makeString(shard_names);
}

void
InitRemoteStatement(void)
{
	RegisterCustomScanMethods(&kRemoteScanMethods);
}

} // namespace fdwshard::executor
