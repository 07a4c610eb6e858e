/*
 * The "FdwShard Multi-Shard Modify" custom scan (see executor/multi_shard_modify.h): sends each
 * foreign shard's statement on postgres_fdw's connection to its worker, one statement per worker
 * at a time but all workers at once, runs the local shards' plans meanwhile, sums the row counts
 * and returns the RETURNING rows.
 */
#include "fdwshard/executor/multi_shard_modify.h"

#include "fdwshard/executor/relocate_row.h"
#include "fdwshard/executor/remote_statement.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/distribution.h"
#include "fdwshard/remote/connection.h"

namespace fdwshard::executor
{

namespace
{

/* Positions in CustomScan.custom_private. */
enum MultiShardPrivate
{
	kTasks, /* per shard: List of String(shard name), Integer(nodeid), String(serverid), String(sql) or PlannedStmt or
	           Integer(0) (moves: a local shard run by the first local task's plan), String(shard relid) */
	kParamSources,
	kParamTypes,
	kMoves /* NIL, or List of String(distributed table relid), Integer(distribution column) */
};

/* One task as the executor reads it from custom_private. */
struct TaskState
{
	char *shard_name;
	int32 nodeid;
	Oid serverid; /* InvalidOid: local shard */
	char *sql;
	PlannedStmt *local_plan;
	int round; /* foreign shards: how many of the same worker's shards go before it */
	Oid relid;
	List *misplaced; /* moves: new distribution values (text) of rows that left this foreign shard */
};

struct MultiShardState
{
	CustomScanState css; /* must be first */
	TaskState *tasks;
	int task_count;
	List *param_sources;
	List *param_types;
	List *local_states;    /* ExprState per coordinator-side expression */
	Tuplestorestate *rows; /* RETURNING rows of every shard; NULL without RETURNING */
	TupleTableSlot *row_slot;
	bool executed;
	PGresult *result; /* owned while it is read; cleared by the executor context's reset callback on error */
	FmgrInfo *in_functions;
	Oid *typioparams;
	MemoryContextCallback cleanup;
	/* moves: the distributed table and its distribution column */
	Oid moves_relid;
	AttrNumber dist_attnum;
	Oid dist_type;
	Oid dist_collation;
	FmgrInfo dist_in;
	Oid dist_typioparam;
};

extern const CustomScanMethods kMultiShardScanMethods;
extern const CustomExecMethods kMultiShardExecMethods;

void
ClearResult(void *arg)
{
	MultiShardState *state = (MultiShardState *) arg;
	if (state->result != NULL)
		PQclear(state->result);
	state->result = NULL;
}

Node *
CreateMultiShardState(CustomScan *scan)
{
	MultiShardState *state = (MultiShardState *) palloc0(sizeof(MultiShardState));
	NodeSetTag(state, T_CustomScanState);
	state->css.methods = &kMultiShardExecMethods;

	List *tasks = (List *) list_nth(scan->custom_private, kTasks);
	state->task_count = list_length(tasks);
	state->tasks = (TaskState *) palloc0(sizeof(TaskState) * Max(state->task_count, 1));
	for (int i = 0; i < state->task_count; i++)
	{
		List *items = (List *) list_nth(tasks, i);
		TaskState *task = &state->tasks[i];
		Node *work = (Node *) lfourth(items);

		task->shard_name = strVal(linitial(items));
		task->nodeid = intVal(lsecond(items));
		task->serverid = (Oid) strtoul(strVal(lthird(items)), NULL, 10);
		if (IsA(work, PlannedStmt))
			task->local_plan = (PlannedStmt *) work;
		else if (IsA(work, String))
			task->sql = strVal(work);
		task->relid = (Oid) strtoul(strVal(list_nth(items, 4)), NULL, 10);
		for (int j = 0; j < i && OidIsValid(task->serverid); j++)
			if (state->tasks[j].serverid == task->serverid)
				task->round++;
	}
	state->param_sources = (List *) list_nth(scan->custom_private, kParamSources);
	state->param_types = (List *) list_nth(scan->custom_private, kParamTypes);
	List *moves = (List *) list_nth(scan->custom_private, kMoves);
	if (moves != NIL)
	{
		state->moves_relid = (Oid) strtoul(strVal(linitial(moves)), NULL, 10);
		state->dist_attnum = intVal(lsecond(moves));
	}
	return (Node *) state;
}

void
BeginMultiShard(CustomScanState *node, EState *estate, int)
{
	MultiShardState *state = (MultiShardState *) node;
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

	if (OidIsValid(state->moves_relid))
	{
		/* The executor holds the distributed table's lock (the plan's range table). */
		Relation rel = relation_open(state->moves_relid, NoLock);
		Distribution distribution;
		if (!GetDistribution(rel, &distribution))
			elog(ERROR, "fdwshard: \"%s\" is not a distributed table", RelationGetRelationName(rel));
		state->dist_type = TupleDescAttr(RelationGetDescr(rel), state->dist_attnum - 1)->atttypid;
		state->dist_collation = exprInputCollation((Node *) distribution.partition_key);
		relation_close(rel, NoLock);
		Oid input_function;
		getTypeInputInfo(state->dist_type, &input_function, &state->dist_typioparam);
		fmgr_info(input_function, &state->dist_in);
	}

	state->cleanup.func = ClearResult;
	state->cleanup.arg = state;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &state->cleanup);
}

/* Moves: notes the new distribution values (the last column) that belong in another shard. */
void
NoteMisplacedRows(MultiShardState *state, TaskState *task)
{
	PGresult *result = state->result;
	int column = PQnfields(result) - 1;
	const catalog::CachedTable *table = catalog::LookupDistributedTable(state->moves_relid);

	if (table == NULL || column < 0)
		elog(ERROR, "fdwshard: \"%s\" is not a distributed table", get_rel_name(state->moves_relid));
	for (int row = 0; row < PQntuples(result); row++)
	{
		if (PQgetisnull(result, row, column))
			ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
			                errmsg("null value in distribution column \"%s\" of relation \"%s\"",
			                       get_attname(state->moves_relid, state->dist_attnum, false),
			                       get_rel_name(state->moves_relid))));
		char *text = PQgetvalue(result, row, column);
		Datum value = InputFunctionCall(&state->dist_in, text, state->dist_typioparam, -1);
		if (catalog::ShardForHash(table, DatumHash(value, state->dist_type, state->dist_collation))->relid !=
		    task->relid)
			task->misplaced = lappend(task->misplaced, pstrdup(text));
	}
}

int
CompareText(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/* Moves: rows left in a foreign shard that is no longer theirs go to their shard, once per value. */
void
MoveMisplacedRows(MultiShardState *state)
{
	for (int i = 0; i < state->task_count; i++)
	{
		TaskState *task = &state->tasks[i];
		const char *previous = NULL;
		ListCell *cell;

		list_sort(task->misplaced, CompareText);
		foreach (cell, task->misplaced)
		{
			const char *text = (const char *) lfirst(cell);
			if (previous != NULL && strcmp(previous, text) == 0)
				continue;
			previous = text;
			MoveRowsOutOfShard(task->relid, state->moves_relid, state->dist_attnum,
			                   InputFunctionCall(&state->dist_in, (char *) text, state->dist_typioparam, -1));
		}
	}
}

/* Counts a foreign shard's rows and keeps its RETURNING rows; frees the result. */
void
ConsumeResult(MultiShardState *state, TaskState *task)
{
	EState *estate = state->css.ss.ps.state;
	PGresult *result = state->result;

	estate->es_processed += strtoul(PQcmdTuples(result), NULL, 10);
	if (OidIsValid(state->moves_relid))
		NoteMisplacedRows(state, task);
	if (state->rows != NULL && PQresultStatus(result) == PGRES_TUPLES_OK)
	{
		TupleTableSlot *slot = state->css.ss.ss_ScanTupleSlot;
		TupleDesc desc = slot->tts_tupleDescriptor;
		ExprContext *econtext = state->css.ss.ps.ps_ExprContext;

		if (PQnfields(result) != desc->natts + (OidIsValid(state->moves_relid) ? 1 : 0))
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
	}
	ClearResult(state);
}

/* Runs a local shard's plan in this process, under the statement's snapshot and parameters. */
void
RunLocalTask(MultiShardState *state, const TaskState *task)
{
	EState *estate = state->css.ss.ps.state;
	DestReceiver *dest = None_Receiver;

	if (state->rows != NULL)
	{
		dest = CreateDestReceiver(DestTuplestore);
		SetTuplestoreDestReceiverParams(dest, state->rows, estate->es_query_cxt, false, NULL, NULL);
	}
	QueryDesc *query_desc = CreateQueryDesc(task->local_plan, estate->es_sourceText, GetActiveSnapshot(),
	                                        InvalidSnapshot, dest, estate->es_param_list_info, estate->es_queryEnv, 0);
	ExecutorStart(query_desc, 0);
	ExecutorRun(query_desc, ForwardScanDirection, 0, true);
	ExecutorFinish(query_desc);
	estate->es_processed += query_desc->estate->es_processed;
	ExecutorEnd(query_desc);
	FreeQueryDesc(query_desc);
	if (dest != None_Receiver)
		dest->rDestroy(dest);
}

/*
 * Every shard's statement. Round r sends the r-th statement of each worker, runs the local
 * shards during the first round, then waits for the round's results: the workers (and the
 * coordinator) work at the same time, each worker's statements run one after another on its one
 * postgres_fdw connection, which keeps the transaction's remote work on that connection.
 */
void
Execute(MultiShardState *state)
{
	EState *estate = state->css.ss.ps.state;
	Oid *types;
	const char **values = ShippedParameterValues(&state->css.ss.ps, state->param_sources, state->param_types,
	                                             state->local_states, &types);
	int param_count = list_length(state->param_sources);

	if (((CustomScan *) state->css.ss.ps.plan)->custom_scan_tlist != NIL)
	{
		MemoryContext old_context = MemoryContextSwitchTo(estate->es_query_cxt);
		state->rows = tuplestore_begin_heap(false, false, work_mem);
		MemoryContextSwitchTo(old_context);
	}

	PGconn **conns = (PGconn **) palloc0(sizeof(PGconn *) * Max(state->task_count, 1));
	for (int round = 0;; round++)
	{
		bool sent = false;
		for (int i = 0; i < state->task_count; i++)
		{
			TaskState *task = &state->tasks[i];
			if (task->sql != NULL && task->round == round)
			{
				conns[i] = remote::SendParams(task->serverid, task->sql, param_count, types, values);
				sent = true;
			}
		}
		if (round == 0 && !OidIsValid(state->moves_relid))
			for (int i = 0; i < state->task_count; i++)
				if (state->tasks[i].local_plan != NULL)
					RunLocalTask(state, &state->tasks[i]);
		for (int i = 0; i < state->task_count; i++)
		{
			TaskState *task = &state->tasks[i];
			if (task->sql != NULL && task->round == round)
			{
				state->result = remote::FinishParams(task->serverid, conns[i], task->sql);
				ConsumeResult(state, task);
			}
		}
		if (!sent)
			break;
	}
	if (OidIsValid(state->moves_relid))
	{
		/* After the foreign shards: rows the local plan routes into them must not be updated again. */
		for (int i = 0; i < state->task_count; i++)
			if (state->tasks[i].local_plan != NULL)
				RunLocalTask(state, &state->tasks[i]);
		MoveMisplacedRows(state);
	}
	state->executed = true;
}

TupleTableSlot *
ExecMultiShard(CustomScanState *node)
{
	MultiShardState *state = (MultiShardState *) node;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (!state->executed)
		Execute(state);

	ExecClearTuple(slot);
	if (state->rows == NULL || !tuplestore_gettupleslot(state->rows, true, false, state->row_slot))
		return slot;
	ExecCopySlot(slot, state->row_slot);

	if (node->ss.ps.ps_ProjInfo != NULL)
	{
		ExprContext *econtext = node->ss.ps.ps_ExprContext;
		ResetExprContext(econtext);
		econtext->ecxt_scantuple = slot;
		return ExecProject(node->ss.ps.ps_ProjInfo);
	}
	return slot;
}

void
EndMultiShard(CustomScanState *node)
{
	MultiShardState *state = (MultiShardState *) node;
	ClearResult(state);
	if (state->rows != NULL)
		tuplestore_end(state->rows);
	state->rows = NULL;
}

void
ReScanMultiShard(CustomScanState *node)
{
	/* The statement ran once: replay its rows. */
	MultiShardState *state = (MultiShardState *) node;
	if (state->rows != NULL)
		tuplestore_rescan(state->rows);
}

/* The nodes and their shards; VERBOSE adds each foreign shard's statement. */
void
ExplainMultiShard(CustomScanState *node, List *, ExplainState *es)
{
	MultiShardState *state = (MultiShardState *) node;

	ExplainPropertyInteger("Shards", NULL, state->task_count, es);
	if (OidIsValid(state->moves_relid))
		ExplainPropertyText("Row Movement",
		                    "foreign shards in place, local shards by tuple routing, then misplaced rows", es);
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
		for (int j = i; j < state->task_count; j++)
			if (state->tasks[j].nodeid == nodeid)
				appendStringInfo(&shards, "%s%s", shards.len > 0 ? ", " : "", state->tasks[j].shard_name);
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

const CustomScanMethods kMultiShardScanMethods = {
    "FdwShard Multi-Shard Modify",
    CreateMultiShardState,
};

const CustomExecMethods kMultiShardExecMethods = {
    "FdwShard Multi-Shard Modify",
    BeginMultiShard,
    ExecMultiShard,
    EndMultiShard,
    ReScanMultiShard,
    NULL, /* MarkPos */
    NULL, /* RestrPos */
    NULL, /* EstimateDSM */
    NULL, /* InitializeDSM */
    NULL, /* ReInitializeDSM */
    NULL, /* InitializeWorker */
    NULL, /* ShutdownCustomScan */
    ExplainMultiShard,
};

} // namespace

PlannedStmt *
MakeMultiShardModifyPlan(Query *query, List *rtable, const ShardTask *tasks, int task_count,
                         const ship::ShippedQuery *params, const catalog::CachedTable *moves)
{
	List *scan_tlist;
	List *tlist;
	int width;
	ListCell *cell;

	OutputTargetLists(query->returningList, &scan_tlist, &tlist, &width);

	List *local_exprs = NIL;
	List *task_items = NIL;
	List *relation_oids = NIL;
	List *inval_items = NIL;
	if (params != NULL)
		foreach (cell, params->local_exprs)
			local_exprs = lappend(local_exprs, expression_planner((Expr *) lfirst(cell)));
	for (int i = 0; i < task_count; i++)
	{
		const catalog::CachedShard *shard = tasks[i].shard;
		Oid relid = shard->relid;
		char *name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
		Node *work = tasks[i].local_plan != NULL ? (Node *) tasks[i].local_plan
		             : tasks[i].sql != NULL      ? (Node *) makeString(tasks[i].sql)
		                                         : (Node *) makeInteger(0);

		task_items = lappend(task_items, list_make5(makeString(name), makeInteger(shard->nodeid),
		                                            makeString(psprintf("%u", shard->serverid)), work,
		                                            makeString(psprintf("%u", relid))));
		if (tasks[i].local_plan != NULL)
		{
			relation_oids = list_concat(relation_oids, tasks[i].local_plan->relationOids);
			inval_items = list_concat(inval_items, tasks[i].local_plan->invalItems);
		}
	}

	CustomScan *scan = makeNode(CustomScan);
	scan->scan.plan.targetlist = tlist;
	scan->scan.plan.startup_cost = 100.0 * task_count; /* one round trip per shard */
	scan->scan.plan.total_cost = scan->scan.plan.startup_cost + cpu_tuple_cost;
	scan->scan.plan.plan_rows = 1;
	scan->scan.plan.plan_width = width;
	scan->scan.scanrelid = 0;
	scan->methods = &kMultiShardScanMethods;
	scan->custom_scan_tlist = scan_tlist;
	scan->custom_exprs = local_exprs;
	List *move_items =
	    moves != NULL ? list_make2(makeString(psprintf("%u", moves->relid)), makeInteger(moves->dist_attnum)) : NIL;
	scan->custom_private = list_make4(task_items, params != NULL ? params->param_sources : NIL,
	                                  params != NULL ? params->param_types : NIL, move_items);

	PlannedStmt *stmt = makeNode(PlannedStmt);
	stmt->commandType = query->commandType;
	stmt->queryId = query->queryId;
	stmt->hasReturning = query->returningList != NIL;
	stmt->canSetTag = query->canSetTag;
	stmt->planTree = (Plan *) scan;
	stmt->rtable = rtable;
	foreach (cell, rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind == RTE_RELATION)
			stmt->relationOids = lappend_oid(stmt->relationOids, rte->relid);
	}
	stmt->relationOids = list_concat(stmt->relationOids, relation_oids);
	stmt->invalItems = inval_items;
	stmt->stmt_location = query->stmt_location;
	stmt->stmt_len = query->stmt_len;
	return stmt;
}

void
InitMultiShardModify(void)
{
	RegisterCustomScanMethods(&kMultiShardScanMethods);
}

} // namespace fdwshard::executor
