/* Per-shard tasks of a custom scan (see executor/shard_tasks.h): workers all at once, local shards in process. */
#include "fdwshard/executor/shard_tasks.h"

#include "fdwshard/executor/remote_statement.h"
#include "fdwshard/executor/task_run.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard::executor
{

namespace
{

/* Positions in CustomScan.custom_private. */
enum ShardTasksPrivateItem
{
	kTasks, /* List of four lists, an item per shard each: OidList of the shards, OidList of their
	           servers, IntList of their nodes, List of String(sql) or PlannedStmt or Integer(0) (a local
	           shard run by another task's plan); no names: an EXPLAIN looks them up (ShardTaskName) */
	kParamSources,
	kParamTypes,
	kCombine /* ShardCombineToList, or NIL */
};
static_assert(kCombine + 1 == kShardTasksPrivateLength, "the scans' own items follow the tasks'");

void
ClearResult(ShardTaskScan *scan)
{
	if (scan->result != NULL)
		PQclear(scan->result);
	scan->result = NULL;
}

/* The executor context's reset callback: an error left a result being read. */
void
ClearResultCallback(void *arg)
{
	ClearResult((ShardTaskScan *) arg);
}

} // namespace

void
ConsumeShardResult(ShardTaskScan *scan, ShardTaskState *task, ShardResultFn on_result, void *arg)
{
	PGresult *result = scan->result;

	if (scan->counts_processed)
		scan->css.ss.ps.state->es_processed += strtoul(PQcmdTuples(result), NULL, 10);
	task->rows += PQntuples(result);
	if (on_result != NULL)
		on_result(arg, task, result);
	if (scan->rows != NULL)
	{
		TupleTableSlot *slot = scan->parse_slot;
		TupleDesc desc = slot->tts_tupleDescriptor;
		ExprContext *econtext = scan->css.ss.ps.ps_ExprContext;

		if (PQresultStatus(result) != PGRES_TUPLES_OK || PQnfields(result) != desc->natts + scan->extra_columns)
			ereport(ERROR, (errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
			                errmsg("worker returned %d columns, expected %d", PQnfields(result),
			                       desc->natts + scan->extra_columns),
			                errdetail("Remote SQL: %s", task->sql)));
		for (int row = 0; row < PQntuples(result); row++)
		{
			ResetExprContext(econtext);
			MemoryContext old_context = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
			ExecClearTuple(slot);
			ReadResultRow(&scan->input, result, row, slot);
			ExecStoreVirtualTuple(slot);
			MemoryContextSwitchTo(old_context);
			tuplestore_puttupleslot(scan->rows, slot);
		}
		ExecClearTuple(slot);
	}
	ClearResult(scan);
}

namespace
{

void
RunLocalTask(ShardTaskScan *scan, ShardTaskState *task)
{
	EState *estate = scan->css.ss.ps.state;
	DestReceiver *dest = None_Receiver;

	if (scan->rows != NULL)
	{
		dest = CreateDestReceiver(DestTuplestore);
		SetTuplestoreDestReceiverParams(dest, scan->rows, estate->es_query_cxt, false, NULL, NULL);
	}
	QueryDesc *query_desc = CreateQueryDesc(task->local_plan, estate->es_sourceText, GetActiveSnapshot(),
	                                        InvalidSnapshot, dest, estate->es_param_list_info, estate->es_queryEnv, 0);
	ExecutorStart(query_desc, 0);
	ExecutorRun(query_desc, ForwardScanDirection, 0, true);
	ExecutorFinish(query_desc);
	task->rows += query_desc->estate->es_processed;
	if (scan->counts_processed)
		estate->es_processed += query_desc->estate->es_processed;
	ExecutorEnd(query_desc);
	FreeQueryDesc(query_desc);
	if (dest != None_Receiver)
		dest->rDestroy(dest);
}

} // namespace

List *
ShardTasksPrivate(const ShardTask *tasks, int task_count, const ship::ShippedQuery *params, const ShardCombine *combine)
{
	/* Four flat lists, not a list of items per shard: at 1024 shards that was most of the allocations. */
	List *relids = NIL;
	List *serverids = NIL;
	List *nodeids = NIL;
	List *work = NIL;
	for (int i = 0; i < task_count; i++)
	{
		const catalog::CachedShard *shard = tasks[i].shard;
		relids = lappend_oid(relids, shard->relid);
		serverids = lappend_oid(serverids, shard->serverid);
		nodeids = lappend_int(nodeids, shard->nodeid);
		work = lappend(work, tasks[i].local_plan != NULL ? (Node *) tasks[i].local_plan
		                     : tasks[i].sql != NULL      ? (Node *) makeString(tasks[i].sql)
		                                                 : (Node *) makeInteger(0));
	}
	return list_make4(list_make4(relids, serverids, nodeids, work), params != NULL ? params->param_sources : NIL,
	                  params != NULL ? params->param_types : NIL, ShardCombineToList(combine));
}

List *
ShardCombineToList(const ShardCombine *combine)
{
	if (combine == NULL)
		return NIL;
	return list_make4(makeString(pstrdup(combine->head)), makeInteger(combine->offset), makeInteger(combine->rest),
	                  makeString(pstrdup(combine->alias)));
}

const ShardCombine *
ShardCombineFromList(List *list)
{
	if (list == NIL)
		return NULL;
	ShardCombine *combine = (ShardCombine *) palloc(sizeof(ShardCombine));
	combine->head = strVal(linitial(list));
	combine->offset = intVal(lsecond(list));
	combine->rest = intVal(lthird(list));
	combine->alias = strVal(lfourth(list));
	return combine;
}

char *
CombinedShardSql(const ShardCombine *combine, const char *const *sqls, int count)
{
	StringInfoData sql;
	initStringInfo(&sql);
	appendBinaryStringInfo(&sql, sqls[0], combine->offset);
	appendStringInfoChar(&sql, '(');
	for (int i = 0; i < count; i++)
	{
		int length = (int) strlen(sqls[i]) - combine->rest;
		Assert(length > 0 && strncmp(sqls[i], sqls[0], combine->offset) == 0);
		appendStringInfo(&sql, "%s%s%.*s", i > 0 ? " UNION ALL " : "", combine->head, length,
		                 sqls[i] + combine->offset);
	}
	int first_length = (int) strlen(sqls[0]) - combine->rest;
	appendStringInfo(&sql, ")%s%s", combine->alias, sqls[0] + combine->offset + first_length);
	return sql.data;
}

void
AddShardTaskDependencies(PlannedStmt *stmt, const ShardTask *tasks, int task_count)
{
	for (int i = 0; i < task_count; i++)
		if (tasks[i].local_plan != NULL)
		{
			stmt->relationOids = list_concat(stmt->relationOids, tasks[i].local_plan->relationOids);
			stmt->invalItems = list_concat(stmt->invalItems, tasks[i].local_plan->invalItems);
		}
}

Node *
CreateShardTaskScan(CustomScan *plan, Size size, const CustomExecMethods *methods)
{
	ShardTaskScan *scan = (ShardTaskScan *) palloc0(size);
	NodeSetTag(scan, T_CustomScanState);
	scan->css.methods = methods;

	List *tasks = (List *) list_nth(plan->custom_private, kTasks);
	List *relids = (List *) linitial(tasks);
	List *serverids = (List *) lsecond(tasks);
	List *nodeids = (List *) lthird(tasks);
	List *work = (List *) lfourth(tasks);
	scan->task_count = list_length(relids);
	scan->tasks = (ShardTaskState *) palloc0(sizeof(ShardTaskState) * Max(scan->task_count, 1));
	for (int i = 0; i < scan->task_count; i++)
	{
		ShardTaskState *task = &scan->tasks[i];
		Node *item = (Node *) list_nth(work, i);

		task->relid = list_nth_oid(relids, i);
		task->serverid = list_nth_oid(serverids, i);
		task->nodeid = list_nth_int(nodeids, i);
		if (IsA(item, PlannedStmt))
			task->local_plan = (PlannedStmt *) item;
		else if (IsA(item, String))
			task->sql = strVal(item);
	}
	scan->combine = ShardCombineFromList((List *) list_nth(plan->custom_private, kCombine));
	scan->param_sources = (List *) list_nth(plan->custom_private, kParamSources);
	scan->param_types = (List *) list_nth(plan->custom_private, kParamTypes);
	return (Node *) scan;
}

void
BeginShardTaskScan(CustomScanState *node, EState *estate, int)
{
	ShardTaskScan *scan = (ShardTaskScan *) node;
	TupleDesc desc = node->ss.ss_ScanTupleSlot->tts_tupleDescriptor;

	scan->local_states = ExecInitExprList(((CustomScan *) node->ss.ps.plan)->custom_exprs, &node->ss.ps);
	InitRowInput(&scan->input, desc);
	scan->row_slot = ExecAllocTableSlot(&estate->es_tupleTable, desc, &TTSOpsMinimalTuple);
	scan->parse_slot = ExecAllocTableSlot(&estate->es_tupleTable, desc, &TTSOpsVirtual);

	scan->cleanup.func = pg::EntryPoint<ClearResultCallback>::Call;
	scan->cleanup.arg = scan;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &scan->cleanup);
}

void
RunShardTasks(ShardTaskScan *scan, bool keep_rows, bool local_first_round, ShardResultFn on_result, void *arg)
{
	EState *estate = scan->css.ss.ps.state;
	Oid *types;
	const char **values =
	    ShippedParameterValues(&scan->css.ss.ps, scan->param_sources, scan->param_types, scan->local_states, &types);

	if (keep_rows)
	{
		MemoryContext old_context = MemoryContextSwitchTo(estate->es_query_cxt);
		scan->rows = tuplestore_begin_heap(false, false, work_mem);
		MemoryContextSwitchTo(old_context);
	}

	ShardTaskRun run;
	memset(&run, 0, sizeof(run));
	PG_TRY();
	{
		/* Inside: a worker that cannot be connected must not leave the channels taken before it lent. */
		StartShardTaskRun(&run, scan, list_length(scan->param_sources), types, values, on_result, arg);
		SendShardTasks(&run);
		if (local_first_round)
			RunLocalShardTasks(scan);
		FinishShardTasks(&run);
	}
	PG_CATCH();
	{
		EndShardTaskRun(&run);
		PG_RE_THROW();
	}
	PG_END_TRY();
	EndShardTaskRun(&run);
	scan->executed = true;
}

void
RunLocalShardTasks(ShardTaskScan *scan)
{
	for (int i = 0; i < scan->task_count; i++)
		if (scan->tasks[i].local_plan != NULL)
			RunLocalTask(scan, &scan->tasks[i]);
}

TupleTableSlot *
NextProjectedRow(ShardTaskScan *scan)
{
	CustomScanState *node = &scan->css;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	if (!NextShardTaskRow(scan, slot) || node->ss.ps.ps_ProjInfo == NULL)
		return slot;

	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	ResetExprContext(econtext);
	econtext->ecxt_scantuple = slot;
	return ExecProject(node->ss.ps.ps_ProjInfo);
}

void
EndShardTaskScan(CustomScanState *node)
{
	ShardTaskScan *scan = (ShardTaskScan *) node;
	ClearResult(scan);
	if (scan->rows != NULL)
		tuplestore_end(scan->rows);
	scan->rows = NULL;
}

bool
NextShardTaskRow(ShardTaskScan *scan, TupleTableSlot *slot)
{
	ExecClearTuple(slot);
	if (scan->rows == NULL || !tuplestore_gettupleslot(scan->rows, true, false, scan->row_slot))
		return false;
	ExecCopySlot(slot, scan->row_slot);
	return true;
}

void
ReScanShardTaskScan(CustomScanState *node)
{
	ShardTaskScan *scan = (ShardTaskScan *) node;
	if (scan->rows != NULL)
		tuplestore_rescan(scan->rows);
}

const char *
ShardTaskName(ShardTaskState *task)
{
	if (task->shard_name == NULL)
		task->shard_name = pstrdup(remote::QualifiedRelationName(task->relid));
	return task->shard_name;
}

void
ExplainShardTasks(const ShardTaskScan *scan, bool rows_received, ExplainState *es)
{
	for (int i = 0; i < scan->task_count; i++)
	{
		int32 nodeid = scan->tasks[i].nodeid;
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = scan->tasks[j].nodeid == nodeid;
		if (seen)
			continue;

		StringInfoData shards;
		initStringInfo(&shards);
		int statement_left = 0; /* shards listed next that the last statement read too */
		for (int j = i; j < scan->task_count; j++)
			if (scan->tasks[j].nodeid == nodeid)
			{
				const ShardTaskState *task = &scan->tasks[j];
				appendStringInfo(&shards, "%s%s", shards.len > 0 ? ", " : "", ShardTaskName(&scan->tasks[j]));
				if (!rows_received)
					continue;
				if (statement_left > 0)
					statement_left--;
				else if (task->statement_shards > 1)
				{
					statement_left = task->statement_shards - 1;
					appendStringInfo(&shards, " (rows received: " INT64_FORMAT " in one statement with the next %d)",
					                 task->rows, statement_left);
				}
				else
					appendStringInfo(&shards, " (rows received: " INT64_FORMAT ")", task->rows);
			}
		const catalog::CachedNode *shard_node = catalog::LookupNode(nodeid);
		/* Host without port: regression output must not depend on the ports a test cluster got. */
		const char *label = shard_node == NULL     ? psprintf("Node %d", nodeid)
		                    : shard_node->is_local ? psprintf("Node %d (local)", nodeid)
		                                           : psprintf("Node %d (%s)", nodeid, shard_node->host);
		ExplainPropertyText(label, shards.data, es);
	}
	if (!es->verbose)
		return;
	for (int i = 0; i < scan->task_count; i++)
		if (scan->tasks[i].sql != NULL)
			ExplainPropertyText(psprintf("Remote SQL on %s", ShardTaskName(&scan->tasks[i])), scan->tasks[i].sql, es);
	/*
	 * When a node has more shards than a read's pool connections to it: the statement, over its
	 * first two, that each connection sends for its share of them.
	 */
	if (scan->combine == NULL || !combine_shard_reads)
		return;
	for (int i = 0; i < scan->task_count; i++)
	{
		const char *sqls[2] = {scan->tasks[i].sql, NULL};
		int shards = 0;
		for (int j = i; sqls[0] != NULL && j < scan->task_count; j++)
			if (scan->tasks[j].sql != NULL && scan->tasks[j].serverid == scan->tasks[i].serverid && shards++ == 1)
				sqls[1] = scan->tasks[j].sql;
		if (shards > pool_size)
		{
			ExplainPropertyText("Remote SQL for several shards of a node", CombinedShardSql(scan->combine, sqls, 2),
			                    es);
			return;
		}
	}
}

} // namespace fdwshard::executor
