/*
 * The "FdwShard Partial Aggregate" custom scan (see executor/partial_aggregate.h): sends each
 * foreign shard's partial-aggregate query on postgres_fdw's connection to its worker, one query
 * per worker at a time but all workers at once, runs the local shards' plans meanwhile, and
 * returns every shard's rows to the coordinator's aggregation above it.
 */
#include "fdwshard/executor/partial_aggregate.h"

#include "fdwshard/executor/remote_statement.h"
#include "fdwshard/planner/tree_walk.h"
#include "fdwshard/remote/connection.h"

namespace fdwshard::executor
{

namespace
{

/* Positions in CustomScan.custom_private. */
enum PartialPrivate
{
	kTasks, /* per shard: List of String(shard name), Integer(nodeid), String(serverid), String(sql) or PlannedStmt */
	kParamSources,
	kParamTypes
};

struct PartialTask
{
	char *shard_name;
	int32 nodeid;
	Oid serverid; /* InvalidOid: local shard */
	char *sql;
	PlannedStmt *local_plan;
	int round; /* foreign shards: how many of the same worker's shards go before it */
	int64 rows;
};

struct PartialState
{
	CustomScanState css; /* must be first */
	PartialTask *tasks;
	int task_count;
	List *param_sources;
	List *param_types;
	List *local_states;    /* ExprState per coordinator-side expression */
	Tuplestorestate *rows; /* every shard's partial rows */
	TupleTableSlot *row_slot;
	TupleTableSlot *parse_slot;
	bool executed;
	PGresult *result; /* owned while it is read; cleared by the executor context's reset callback on error */
	FmgrInfo *in_functions;
	Oid *typioparams;
	MemoryContextCallback cleanup;
};

extern const CustomScanMethods kPartialScanMethods;
extern const CustomExecMethods kPartialExecMethods;

void
ClearResult(void *arg)
{
	PartialState *state = (PartialState *) arg;
	if (state->result != NULL)
		PQclear(state->result);
	state->result = NULL;
}

Node *
CreatePartialState(CustomScan *scan)
{
	PartialState *state = (PartialState *) palloc0(sizeof(PartialState));
	NodeSetTag(state, T_CustomScanState);
	state->css.methods = &kPartialExecMethods;

	List *tasks = (List *) list_nth(scan->custom_private, kTasks);
	state->task_count = list_length(tasks);
	state->tasks = (PartialTask *) palloc0(sizeof(PartialTask) * Max(state->task_count, 1));
	for (int i = 0; i < state->task_count; i++)
	{
		List *items = (List *) list_nth(tasks, i);
		PartialTask *task = &state->tasks[i];
		Node *work = (Node *) lfourth(items);

		task->shard_name = strVal(linitial(items));
		task->nodeid = intVal(lsecond(items));
		task->serverid = (Oid) strtoul(strVal(lthird(items)), NULL, 10);
		if (IsA(work, PlannedStmt))
			task->local_plan = (PlannedStmt *) work;
		else
			task->sql = strVal(work);
		for (int j = 0; j < i && OidIsValid(task->serverid); j++)
			if (state->tasks[j].serverid == task->serverid)
				task->round++;
	}
	state->param_sources = (List *) list_nth(scan->custom_private, kParamSources);
	state->param_types = (List *) list_nth(scan->custom_private, kParamTypes);
	return (Node *) state;
}

void
BeginPartial(CustomScanState *node, EState *estate, int)
{
	PartialState *state = (PartialState *) node;
	CustomScan *scan = (CustomScan *) node->ss.ps.plan;

	state->local_states = ExecInitExprList(scan->custom_exprs, &node->ss.ps);

	TupleDesc desc = node->ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	state->in_functions = (FmgrInfo *) palloc0(sizeof(FmgrInfo) * Max(desc->natts, 1));
	state->typioparams = (Oid *) palloc0(sizeof(Oid) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Oid input_function;
		getTypeInputInfo(TupleDescAttr(desc, i)->atttypid, &input_function, &state->typioparams[i]);
		fmgr_info(input_function, &state->in_functions[i]);
	}
	state->row_slot = ExecAllocTableSlot(&estate->es_tupleTable, desc, &TTSOpsMinimalTuple);
	state->parse_slot = ExecAllocTableSlot(&estate->es_tupleTable, desc, &TTSOpsVirtual);

	state->cleanup.func = ClearResult;
	state->cleanup.arg = state;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &state->cleanup);
}

/* Keeps a foreign shard's rows; frees the result. */
void
ConsumeResult(PartialState *state, PartialTask *task)
{
	PGresult *result = state->result;
	TupleTableSlot *slot = state->parse_slot;
	TupleDesc desc = slot->tts_tupleDescriptor;
	ExprContext *econtext = state->css.ss.ps.ps_ExprContext;

	if (PQresultStatus(result) != PGRES_TUPLES_OK || PQnfields(result) != desc->natts)
		ereport(ERROR, (errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
		                errmsg("worker returned %d columns, expected %d", PQnfields(result), desc->natts),
		                errdetail("Remote SQL: %s", task->sql)));
	for (int row = 0; row < PQntuples(result); row++)
	{
		ResetExprContext(econtext);
		MemoryContext old_context = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		ExecClearTuple(slot);
		for (int i = 0; i < desc->natts; i++)
		{
			bool is_null = PQgetisnull(result, row, i);
			slot->tts_isnull[i] = is_null;
			slot->tts_values[i] =
			    InputFunctionCall(&state->in_functions[i], is_null ? NULL : PQgetvalue(result, row, i),
			                      state->typioparams[i], TupleDescAttr(desc, i)->atttypmod);
		}
		ExecStoreVirtualTuple(slot);
		MemoryContextSwitchTo(old_context);
		tuplestore_puttupleslot(state->rows, slot);
	}
	ExecClearTuple(slot);
	task->rows += PQntuples(result);
	ClearResult(state);
}

/* Runs a local shard's plan in this process, under the statement's snapshot and parameters. */
void
RunLocalTask(PartialState *state, PartialTask *task)
{
	EState *estate = state->css.ss.ps.state;
	DestReceiver *dest = CreateDestReceiver(DestTuplestore);
	SetTuplestoreDestReceiverParams(dest, state->rows, estate->es_query_cxt, false, NULL, NULL);
	QueryDesc *query_desc = CreateQueryDesc(task->local_plan, estate->es_sourceText, GetActiveSnapshot(),
	                                        InvalidSnapshot, dest, estate->es_param_list_info, estate->es_queryEnv, 0);
	ExecutorStart(query_desc, 0);
	ExecutorRun(query_desc, ForwardScanDirection, 0, true);
	ExecutorFinish(query_desc);
	task->rows += query_desc->estate->es_processed;
	ExecutorEnd(query_desc);
	FreeQueryDesc(query_desc);
	dest->rDestroy(dest);
}

/*
 * Every shard's query, as the multi-shard modify scan runs its statements: round r sends the
 * r-th query of each worker, the local shards run during the first round, then the round's
 * results are read.
 */
void
Execute(PartialState *state)
{
	EState *estate = state->css.ss.ps.state;
	Oid *types;
	const char **values = ShippedParameterValues(&state->css.ss.ps, state->param_sources, state->param_types,
	                                             state->local_states, &types);
	int param_count = list_length(state->param_sources);

	MemoryContext old_context = MemoryContextSwitchTo(estate->es_query_cxt);
	state->rows = tuplestore_begin_heap(false, false, work_mem);
	MemoryContextSwitchTo(old_context);

	PGconn **conns = (PGconn **) palloc0(sizeof(PGconn *) * Max(state->task_count, 1));
	for (int round = 0;; round++)
	{
		bool sent = false;
		for (int i = 0; i < state->task_count; i++)
		{
			PartialTask *task = &state->tasks[i];
			if (task->sql != NULL && task->round == round)
			{
				conns[i] = remote::SendParams(task->serverid, task->sql, param_count, types, values);
				sent = true;
			}
		}
		if (round == 0)
			for (int i = 0; i < state->task_count; i++)
				if (state->tasks[i].local_plan != NULL)
					RunLocalTask(state, &state->tasks[i]);
		for (int i = 0; i < state->task_count; i++)
		{
			PartialTask *task = &state->tasks[i];
			if (task->sql != NULL && task->round == round)
			{
				state->result = remote::FinishParams(task->serverid, conns[i], task->sql);
				ConsumeResult(state, task);
			}
		}
		if (!sent)
			break;
	}
	state->executed = true;
}

TupleTableSlot *
NextPartialRow(ScanState *node)
{
	PartialState *state = (PartialState *) node;
	TupleTableSlot *slot = node->ss_ScanTupleSlot;

	if (!state->executed)
		Execute(state);
	ExecClearTuple(slot);
	if (tuplestore_gettupleslot(state->rows, true, false, state->row_slot))
		ExecCopySlot(slot, state->row_slot);
	return slot;
}

bool
RecheckPartialRow(ScanState *, TupleTableSlot *)
{
	return true;
}

TupleTableSlot *
ExecPartial(CustomScanState *node)
{
	return ExecScan(&node->ss, NextPartialRow, RecheckPartialRow);
}

void
EndPartial(CustomScanState *node)
{
	PartialState *state = (PartialState *) node;
	ClearResult(state);
	if (state->rows != NULL)
		tuplestore_end(state->rows);
	state->rows = NULL;
}

void
ReScanPartial(CustomScanState *node)
{
	/* The shards' queries ran once (no parameter of this node changes between scans): replay their rows. */
	PartialState *state = (PartialState *) node;
	if (state->rows != NULL)
		tuplestore_rescan(state->rows);
	ExecScanReScan(&node->ss);
}

/* The nodes and their shards; VERBOSE adds each foreign shard's query; ANALYZE the rows each shard sent. */
void
ExplainPartial(CustomScanState *node, List *, ExplainState *es)
{
	PartialState *state = (PartialState *) node;

	ExplainPropertyInteger("Shards", NULL, state->task_count, es);
	for (int i = 0; i < state->task_count; i++)
	{
		int32 nodeid = state->tasks[i].nodeid;
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = state->tasks[j].nodeid == nodeid;
		if (seen)
			continue;

		StringInfoData shards;
		initStringInfo(&shards);
		int64 rows = 0;
		for (int j = i; j < state->task_count; j++)
			if (state->tasks[j].nodeid == nodeid)
			{
				appendStringInfo(&shards, "%s%s", shards.len > 0 ? ", " : "", state->tasks[j].shard_name);
				rows += state->tasks[j].rows;
			}
		if (es->analyze)
			appendStringInfo(&shards, " (rows received: " INT64_FORMAT ")", rows);
		const catalog::CachedNode *shard_node = catalog::LookupNode(nodeid);
		/* Host without port: regression output must not depend on the ports a test cluster got. */
		const char *label = shard_node == NULL     ? psprintf("Node %d", nodeid)
		                    : shard_node->is_local ? psprintf("Node %d (local)", nodeid)
		                                           : psprintf("Node %d (%s)", nodeid, shard_node->host);
		ExplainPropertyText(label, shards.data, es);
	}
	if (es->verbose)
		for (int i = 0; i < state->task_count; i++)
			if (state->tasks[i].sql != NULL)
				ExplainPropertyText(psprintf("Remote SQL on %s", state->tasks[i].shard_name), state->tasks[i].sql, es);
}

Node *
IndexVarMutator(Node *node, void *context)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == (int) *(Index *) context && ((Var *) node)->varlevelsup == 0)
	{
		Var *var = (Var *) copyObject(node);
		var->varno = INDEX_VAR;
		return (Node *) var;
	}
	return expression_tree_mutator(node, MutatorFn(IndexVarMutator), context);
}

const CustomScanMethods kPartialScanMethods = {
    "FdwShard Partial Aggregate",
    CreatePartialState,
};

const CustomExecMethods kPartialExecMethods = {
    "FdwShard Partial Aggregate",
    BeginPartial,
    ExecPartial,
    EndPartial,
    ReScanPartial,
    NULL, /* MarkPos */
    NULL, /* RestrPos */
    NULL, /* EstimateDSM */
    NULL, /* InitializeDSM */
    NULL, /* ReInitializeDSM */
    NULL, /* InitializeWorker */
    NULL, /* ShutdownCustomScan */
    ExplainPartial,
};

} // namespace

CustomScan *
MakePartialAggregateScan(FunctionScan *function_scan, const ShardTask *tasks, int task_count,
                         const ship::ShippedQuery *params)
{
	Index scanrelid = function_scan->scan.scanrelid;
	RangeTblFunction *function = (RangeTblFunction *) linitial(function_scan->functions);

	CustomScan *scan = makeNode(CustomScan);
	scan->scan.plan = function_scan->scan.plan;
	scan->scan.plan.type = T_CustomScan; /* the copy carried FunctionScan's tag */
	scan->scan.plan.targetlist = (List *) IndexVarMutator((Node *) function_scan->scan.plan.targetlist, &scanrelid);
	scan->scan.plan.qual = (List *) IndexVarMutator((Node *) function_scan->scan.plan.qual, &scanrelid);
	scan->scan.scanrelid = 0;
	scan->methods = &kPartialScanMethods;
	/* The scan's tuple: every column of the partial rows, named through the function RTE for EXPLAIN. */
	ListCell *type_cell;
	ListCell *typmod_cell;
	ListCell *collation_cell;
	AttrNumber attno = 1;
	forthree(type_cell, function->funccoltypes, typmod_cell, function->funccoltypmods, collation_cell,
	         function->funccolcollations)
	{
		Var *var =
		    makeVar(scanrelid, attno, lfirst_oid(type_cell), lfirst_int(typmod_cell), lfirst_oid(collation_cell), 0);
		scan->custom_scan_tlist = lappend(scan->custom_scan_tlist, makeTargetEntry((Expr *) var, attno, NULL, false));
		attno++;
	}
	scan->custom_relids = bms_make_singleton(scanrelid);

	List *task_items = NIL;
	ListCell *cell;
	foreach (cell, params->local_exprs)
		scan->custom_exprs = lappend(scan->custom_exprs, expression_planner((Expr *) lfirst(cell)));
	for (int i = 0; i < task_count; i++)
	{
		const catalog::CachedShard *shard = tasks[i].shard;
		Oid relid = shard->relid;
		char *name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
		Node *work = tasks[i].local_plan != NULL ? (Node *) tasks[i].local_plan : (Node *) makeString(tasks[i].sql);
		task_items = lappend(task_items, list_make4(makeString(name), makeInteger(shard->nodeid),
		                                            makeString(psprintf("%u", shard->serverid)), work));
	}
	scan->custom_private = list_make3(task_items, params->param_sources, params->param_types);
	return scan;
}

void
InitPartialAggregate(void)
{
	RegisterCustomScanMethods(&kPartialScanMethods);
}

} // namespace fdwshard::executor
