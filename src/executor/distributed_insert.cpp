/*
 * The "FdwShard Distributed Insert" custom scan (see executor/distributed_insert.h): reads the
 * rows of its subplan, hashes each to its shard and writes them there, by COPY (shard_copy.h)
 * or, with ON CONFLICT or RETURNING, as one INSERT ... VALUES per shard and batch run as shard
 * tasks (shard_tasks.h): deparsed for foreign shards, planned and run in process for local ones.
 */
#include "fdwshard/executor/distributed_insert.h"

#include "fdwshard/executor/remote_statement.h"
#include "fdwshard/executor/shard_copy.h"
#include "fdwshard/executor/shard_tasks.h"
#include "fdwshard/guard.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/distributed_insert.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/remote/deparse.h"

extern "C"
{
#include "utils/ruleutils.h"
}

namespace fdwshard::executor
{

namespace
{

/* The scan's own items in CustomScan.custom_private, after the tasks'. */
enum InsertPrivate
{
	kRelid = kShardTasksPrivateLength, /* String(distributed table relid) */
	kLocalTemplate,                    /* Query, or NULL: COPY */
	kShippedTemplate,                  /* Query, or NULL */
	kBatchRows,                        /* Integer */
	kMaterialize,                      /* Integer(0/1) */
	kProjection                        /* NIL, or the row's expressions over the source's (OUTER_VAR) */
};

/* Source rows read before they go to COPY, under the session's settings. */
constexpr int kCopyBatchRows = 1000;

/* Rows of shard statements made and run at once (a shard's DO UPDATE statement may exceed it alone). */
constexpr int64 kWaveRows = 50000;

struct InsertState
{
	ShardTaskScan scan; /* must be first */
	Oid relid;
	Query *local_template;
	Query *shipped_template;
	int batch_rows;
	bool materialize;
	PlanState *source;
	Tuplestorestate *stored; /* materialize: the source's rows */
	TupleTableSlot *stored_slot;
	ProjectionInfo *projection; /* NULL: the source's rows are the table's rows */
	ExprContext *projection_context;
	TupleDesc row_desc; /* the rows NextSourceRow returns */
	/* after execution, for EXPLAIN ANALYZE: the shards and the rows each was sent */
	catalog::CachedTable *table;
	int64 *shard_rows;
	MemoryContext deparse_context; /* a foreign shard's statement while it is deparsed */
};

extern const CustomScanMethods kInsertScanMethods;
extern const CustomExecMethods kInsertExecMethods;

Node *
CreateInsertState(CustomScan *plan)
{
	InsertState *state = (InsertState *) CreateShardTaskScan(plan, sizeof(InsertState), &kInsertExecMethods);
	List *items = plan->custom_private;
	state->scan.counts_processed = true;
	state->relid = (Oid) strtoul(strVal(list_nth(items, kRelid)), NULL, 10);
	state->local_template = (Query *) list_nth(items, kLocalTemplate);
	state->shipped_template = (Query *) list_nth(items, kShippedTemplate);
	state->batch_rows = intVal(list_nth(items, kBatchRows));
	state->materialize = intVal(list_nth(items, kMaterialize)) != 0;
	return (Node *) state;
}

void
BeginInsert(CustomScanState *node, EState *estate, int eflags)
{
	InsertState *state = (InsertState *) node;
	BeginShardTaskScan(node, estate, eflags);
	CustomScan *plan = (CustomScan *) node->ss.ps.plan;
	state->source = ExecInitNode((Plan *) linitial(plan->custom_plans), estate, eflags);
	node->custom_ps = list_make1(state->source);
	List *projection = (List *) list_nth(plan->custom_private, kProjection);
	state->row_desc = ExecGetResultType(state->source);
	if (projection != NIL)
	{
		state->row_desc = ExecTypeFromTL(projection);
		state->projection_context = CreateExprContext(estate);
		TupleTableSlot *row_slot = ExecInitExtraTupleSlot(estate, state->row_desc, &TTSOpsVirtual);
		state->projection = ExecBuildProjectionInfo(projection, state->projection_context, row_slot, &node->ss.ps,
		                                            ExecGetResultType(state->source));
	}
}

/* The table's cache entry, copied: planning a local shard's statement may rebuild the cache. */
catalog::CachedTable *
TableSnapshot(Oid relid)
{
	const catalog::CachedTable *table = catalog::LookupDistributedTable(relid);
	if (table == NULL)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("relation \"%s\" is not a distributed table", get_rel_name(relid))));
	catalog::CachedTable *copy = (catalog::CachedTable *) palloc(sizeof(catalog::CachedTable));
	*copy = *table;
	copy->shards = (catalog::CachedShard *) palloc(sizeof(catalog::CachedShard) * table->shard_count);
	memcpy(copy->shards, table->shards, sizeof(catalog::CachedShard) * table->shard_count);
	return copy;
}

/*
 * The next row of the source, or NULL. With materialize, every row is read first: the source's
 * foreign scans use the workers' connections that the writes then use.
 */
TupleTableSlot *
NextSourceTuple(InsertState *state, bool materialize)
{
	if (!materialize)
	{
		TupleTableSlot *slot = ExecProcNode(state->source);
		return TupIsNull(slot) ? NULL : slot;
	}
	if (state->stored == NULL)
	{
		EState *estate = state->scan.css.ss.ps.state;
		MemoryContext old_context = MemoryContextSwitchTo(estate->es_query_cxt);
		state->stored = tuplestore_begin_heap(false, false, work_mem);
		state->stored_slot =
		    ExecAllocTableSlot(&estate->es_tupleTable, ExecGetResultType(state->source), &TTSOpsMinimalTuple);
		MemoryContextSwitchTo(old_context);
		for (;;)
		{
			TupleTableSlot *slot = ExecProcNode(state->source);
			if (TupIsNull(slot))
				break;
			tuplestore_puttupleslot(state->stored, slot);
		}
	}
	if (!tuplestore_gettupleslot(state->stored, true, false, state->stored_slot))
		return NULL;
	return state->stored_slot;
}

/* The next row to insert (every column of the table), or NULL: the source's, projected when it must be. */
TupleTableSlot *
NextSourceRow(InsertState *state, bool materialize)
{
	TupleTableSlot *slot = NextSourceTuple(state, materialize);
	if (slot == NULL || state->projection == NULL)
		return slot;
	ResetExprContext(state->projection_context);
	state->projection_context->ecxt_outertuple = slot;
	return ExecProject(state->projection);
}

/* Copies slot's values (every column of the table) into values/nulls, in the current memory context. */
void
CopyRow(TupleTableSlot *slot, TupleDesc desc, Datum *values, bool *nulls)
{
	slot_getallattrs(slot);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		nulls[i] = slot->tts_isnull[i];
		values[i] =
		    nulls[i] || att->attisdropped ? (Datum) 0 : datumCopy(slot->tts_values[i], att->attbyval, att->attlen);
		if (att->attisdropped)
			nulls[i] = true;
	}
}

/* Without ON CONFLICT and RETURNING: every row through the shards' COPY. */
void
ExecuteCopy(InsertState *state, Relation rel)
{
	EState *estate = state->scan.css.ss.ps.state;
	TupleDesc desc = RelationGetDescr(rel);
	int natts = desc->natts;
	MemoryContext batch_context =
	    AllocSetContextCreate(CurrentMemoryContext, "fdwshard INSERT batch", ALLOCSET_DEFAULT_SIZES);
	Datum *values = (Datum *) palloc(sizeof(Datum) * natts * kCopyBatchRows);
	bool *nulls = (bool *) palloc(sizeof(bool) * natts * kCopyBatchRows);
	ShardCopy *copy = BeginShardCopy(rel, state->table, "INSERT");
	uint64 processed = 0;

	for (bool done = false; !done;)
	{
		int count = 0;
		while (count < kCopyBatchRows)
		{
			CHECK_FOR_INTERRUPTS();
			TupleTableSlot *slot = NextSourceRow(state, state->materialize);
			if (slot == NULL)
			{
				done = true;
				break;
			}
			MemoryContext old_context = MemoryContextSwitchTo(batch_context);
			CopyRow(slot, desc, values + (size_t) count * natts, nulls + (size_t) count * natts);
			MemoryContextSwitchTo(old_context);
			count++;
		}
		ShardCopyAdd(copy, count, values, nulls, NULL);
		MemoryContextReset(batch_context);
		processed += count;
	}
	EndShardCopy(copy);
	memcpy(state->shard_rows, ShardCopyRowCounts(copy), sizeof(int64) * state->table->shard_count);
	MemoryContextDelete(batch_context);
	estate->es_processed += processed;
}

/* One shard's rows as VALUES rows of constants (dropped columns left out), in the current memory context. */
List *
RowConstants(TupleDesc desc, const Datum *values, const bool *nulls)
{
	List *row = NIL;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped)
			continue;
		row = lappend(row, makeConst(att->atttypid, att->atttypmod, att->attcollation, att->attlen, values[i], nulls[i],
		                             att->attbyval));
	}
	return row;
}

/* A shard's statement for rows: deparsed for a foreign shard, planned for a local one. */
void
MakeShardStatement(InsertState *state, ShardTaskState *task, const catalog::CachedShard *shard, List *rows)
{
	bool foreign = OidIsValid(shard->serverid);
	/* A placement change replans (the distributed table's relcache entry is invalidated): never reached. */
	if (foreign && state->shipped_template == NULL)
		elog(ERROR, "fdwshard: shard \"%s\" moved to a worker since the INSERT was planned",
		     get_rel_name(shard->relid));
	task->shard_name = pstrdup(remote::QualifiedRelationName(shard->relid));
	task->nodeid = shard->nodeid;
	task->serverid = shard->serverid;
	task->relid = shard->relid;

	/* The deparser's many small allocations go in a context of their own, reset for the next statement. */
	MemoryContext context = CurrentMemoryContext;
	if (foreign)
		MemoryContextSwitchTo(state->deparse_context);
	Query *shard_query = (Query *) copyObject(foreign ? state->shipped_template : state->local_template);
	distributed_insert::PointInsertAtShard(shard_query, shard);
	rt_fetch(2, shard_query->rtable)->values_lists = rows;
	if (!foreign)
	{
		task->local_plan = PlanOrdinary(shard_query, NULL, 0, NULL, false);
		return;
	}
	char *sql = ship::DeparseShipped(shard_query, list_make1_oid(shard->relid));
	MemoryContextSwitchTo(context);
	task->sql = pstrdup(sql);
	MemoryContextReset(state->deparse_context);
}

/* A shard's next count rows waiting in store, as VALUES rows of constants in the current memory context. */
List *
TakeRows(Tuplestorestate *store, TupleTableSlot *slot, TupleDesc desc, int64 count, Datum *values, bool *nulls)
{
	List *rows = NIL;
	for (int64 i = 0; i < count && tuplestore_gettupleslot(store, true, false, slot); i++)
	{
		CopyRow(slot, desc, values, nulls);
		rows = lappend(rows, RowConstants(desc, values, nulls));
	}
	return rows;
}

/*
 * With ON CONFLICT or RETURNING: every row read first, each kept (spilling to disk) for its
 * shard; then one INSERT ... VALUES per shard (and batch of batch_rows rows), made and run as
 * shard tasks in waves of about kWaveRows rows, which count the rows and keep what they return.
 */
void
ExecuteStatements(InsertState *state, Relation rel)
{
	EState *estate = state->scan.css.ss.ps.state;
	TupleDesc desc = RelationGetDescr(rel);
	catalog::CachedTable *table = state->table;
	int dist = table->dist_attnum - 1;
	Oid dist_collation = TupleDescAttr(desc, dist)->attcollation;
	Tuplestorestate **pending = (Tuplestorestate **) palloc0(sizeof(Tuplestorestate *) * table->shard_count);
	int64 *pending_count = (int64 *) palloc0(sizeof(int64) * table->shard_count);
	Datum *values = (Datum *) palloc(sizeof(Datum) * desc->natts);
	bool *nulls = (bool *) palloc(sizeof(bool) * desc->natts);
	int store_kbytes = Max(64, work_mem / table->shard_count);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		/* Every row is read before the first is written: no need to materialize the source first. */
		TupleTableSlot *slot = NextSourceRow(state, false);
		if (slot == NULL)
			break;
		slot_getallattrs(slot);
		if (slot->tts_isnull[dist])
			ReportNullDistributionValue(rel, table->dist_attnum);
		int index =
		    catalog::ShardIndexForHash(table, DatumHash(slot->tts_values[dist], table->dist_type, dist_collation));
		if (pending[index] == NULL)
		{
			MemoryContext old_context = MemoryContextSwitchTo(estate->es_query_cxt);
			pending[index] = tuplestore_begin_heap(false, false, store_kbytes);
			MemoryContextSwitchTo(old_context);
		}
		tuplestore_puttupleslot(pending[index], slot);
		pending_count[index]++;
		state->shard_rows[index]++;
	}

	if (((CustomScan *) state->scan.css.ss.ps.plan)->custom_scan_tlist != NIL)
	{
		MemoryContext old_context = MemoryContextSwitchTo(estate->es_query_cxt);
		state->scan.rows = tuplestore_begin_heap(false, false, work_mem);
		MemoryContextSwitchTo(old_context);
	}
	TupleTableSlot *pending_slot = ExecAllocTableSlot(&estate->es_tupleTable, state->row_desc, &TTSOpsMinimalTuple);
	MemoryContext wave_context =
	    AllocSetContextCreate(CurrentMemoryContext, "fdwshard INSERT wave", ALLOCSET_DEFAULT_SIZES);
	state->deparse_context =
	    AllocSetContextCreate(CurrentMemoryContext, "fdwshard INSERT deparse", ALLOCSET_DEFAULT_SIZES);
	int most_tasks = 0;
	for (int i = 0; i < table->shard_count; i++)
		most_tasks +=
		    state->batch_rows == 0 ? 1 : (int) ((pending_count[i] + state->batch_rows - 1) / state->batch_rows);

	for (int shard_index = 0; shard_index < table->shard_count;)
	{
		MemoryContext old_context = MemoryContextSwitchTo(wave_context);
		ShardTaskState *tasks = (ShardTaskState *) palloc0(sizeof(ShardTaskState) * Max(most_tasks, 1));
		int task_count = 0;
		int64 wave_rows = 0;
		while (shard_index < table->shard_count && (task_count == 0 || wave_rows < kWaveRows))
		{
			if (pending_count[shard_index] == 0)
			{
				shard_index++;
				continue;
			}
			const catalog::CachedShard *shard = &table->shards[shard_index];
			int64 count = state->batch_rows == 0 ? pending_count[shard_index]
			                                     : Min(pending_count[shard_index], (int64) state->batch_rows);
			LockRelationOid(shard->relid, RowExclusiveLock);
			List *rows = TakeRows(pending[shard_index], pending_slot, desc, count, values, nulls);
			MakeShardStatement(state, &tasks[task_count++], shard, rows);
			pending_count[shard_index] -= count;
			wave_rows += count;
		}
		MemoryContextSwitchTo(old_context);
		if (task_count > 0)
		{
			state->scan.tasks = tasks;
			state->scan.task_count = task_count;
			RunShardTasks(&state->scan, false, true, NULL, NULL);
			state->scan.tasks = NULL;
			state->scan.task_count = 0;
		}
		MemoryContextReset(wave_context);
	}
	for (int i = 0; i < table->shard_count; i++)
		if (pending[i] != NULL)
			tuplestore_end(pending[i]);
	MemoryContextDelete(state->deparse_context);
	state->deparse_context = NULL;
	MemoryContextDelete(wave_context);
}

void
Execute(InsertState *state)
{
	/* The executor holds the distributed table's lock (the plan's range table). */
	Relation rel = relation_open(state->relid, NoLock);
	state->table = TableSnapshot(state->relid);
	state->shard_rows = (int64 *) palloc0(sizeof(int64) * state->table->shard_count);
	if (state->local_template == NULL)
		ExecuteCopy(state, rel);
	else
		ExecuteStatements(state, rel);
	relation_close(rel, NoLock);
	state->scan.executed = true;
}

TupleTableSlot *
ExecInsert(CustomScanState *node)
{
	InsertState *state = (InsertState *) node;
	if (!state->scan.executed)
		Execute(state);
	return NextProjectedRow(&state->scan);
}

void
EndInsert(CustomScanState *node)
{
	InsertState *state = (InsertState *) node;
	EndShardTaskScan(node);
	if (state->stored != NULL)
		tuplestore_end(state->stored);
	state->stored = NULL;
	ExecEndNode(state->source);
}

/* How the rows are written; after execution, the rows each shard was sent, by node. */
void
ExplainInsert(CustomScanState *node, List *ancestors, ExplainState *es)
{
	InsertState *state = (InsertState *) node;
	CustomScan *plan = (CustomScan *) node->ss.ps.plan;
	List *projection = (List *) list_nth(plan->custom_private, kProjection);
	if (es->verbose && projection != NIL)
	{
		/* The row each source row becomes (defaults, nextval, coercions), as a Subquery Scan's Output shows it. */
		Result *over_source = makeNode(Result);
		over_source->plan.lefttree = (Plan *) linitial(plan->custom_plans);
		List *context = set_deparse_context_plan(es->deparse_cxt, (Plan *) over_source, lcons(plan, ancestors));
		List *columns = NIL;
		ListCell *cell;
		foreach (cell, projection)
			columns = lappend(columns,
			                  deparse_expression((Node *) ((TargetEntry *) lfirst(cell))->expr, context, true, false));
		ExplainPropertyList("Row", columns, es);
	}
	const char *method = state->local_template == NULL ? "COPY into each shard"
	                     : state->batch_rows == 0
	                         ? "one INSERT per shard"
	                         : psprintf("one INSERT per shard and batch of %d rows", state->batch_rows);
	ExplainPropertyText("Insert", method, es);
	const catalog::CachedTable *table = state->table;
	if (table == NULL)
		return;
	for (int i = 0; i < table->shard_count; i++)
	{
		int32 nodeid = table->shards[i].nodeid;
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = table->shards[j].nodeid == nodeid;
		if (seen)
			continue;
		StringInfoData shards;
		initStringInfo(&shards);
		for (int j = i; j < table->shard_count; j++)
			if (table->shards[j].nodeid == nodeid && state->shard_rows[j] > 0)
				appendStringInfo(&shards, "%s%s (rows sent: " INT64_FORMAT ")", shards.len > 0 ? ", " : "",
				                 remote::QualifiedRelationName(table->shards[j].relid), state->shard_rows[j]);
		if (shards.len == 0)
			continue;
		const catalog::CachedNode *shard_node = catalog::LookupNode(nodeid);
		/* Host without port: regression output must not depend on the ports a test cluster got. */
		const char *label = shard_node == NULL     ? psprintf("Node %d", nodeid)
		                    : shard_node->is_local ? psprintf("Node %d (local)", nodeid)
		                                           : psprintf("Node %d (%s)", nodeid, shard_node->host);
		ExplainPropertyText(label, shards.data, es);
	}
}

const CustomScanMethods kInsertScanMethods = {
    "FdwShard Distributed Insert",
    pg::EntryPoint<CreateInsertState>::Call,
};

const CustomExecMethods kInsertExecMethods = SerialExecMethods(
    "FdwShard Distributed Insert", pg::EntryPoint<BeginInsert>::Call, pg::EntryPoint<ExecInsert>::Call,
    pg::EntryPoint<EndInsert>::Call, pg::EntryPoint<ReScanShardTaskScan>::Call, pg::EntryPoint<ExplainInsert>::Call);

} // namespace

PlannedStmt *
MakeDistributedInsertPlan(Query *parse, const DistributedInsertPlan *plan)
{
	PlannedStmt *source = plan->source;
	Index target_rti = list_length(source->rtable) + 1;

	/* RETURNING reads the target, which follows the source's range table. */
	List *returning = (List *) copyObject(parse->returningList);
	if (target_rti != 1)
		ChangeVarNodes((Node *) returning, 1, target_rti, 0);
	CustomScan *scan = MakeOutputScan(returning, plan->params.local_exprs, &kInsertScanMethods, 0.0);
	scan->custom_plans = list_make1(source->planTree);
	scan->scan.plan.startup_cost = source->planTree->total_cost;
	scan->scan.plan.total_cost = source->planTree->total_cost + 100.0;
	scan->scan.plan.plan_rows = source->planTree->plan_rows;
	List *items = ShardTasksPrivate(NULL, 0, &plan->params);
	items = lappend(items, makeString(psprintf("%u", plan->relid)));
	items = lappend(items, plan->local_template);
	items = lappend(items, plan->shipped_template);
	items = lappend(items, makeInteger(plan->batch_rows));
	items = lappend(items, makeInteger(plan->materialize ? 1 : 0));
	items = lappend(items, plan->projection);
	scan->custom_private = items;

	/* The distributed table's entry: INSERT (and UPDATE, SELECT) checked and locked as for any INSERT. */
	List *rtable = lappend(list_copy(source->rtable), copyObject(rt_fetch(1, parse->rtable)));
	PlannedStmt *stmt = MakeScanStatement(parse, rtable, scan);
	stmt->relationOids = list_concat(stmt->relationOids, source->relationOids);
	stmt->invalItems = source->invalItems;
	stmt->subplans = source->subplans;
	stmt->rewindPlanIDs = source->rewindPlanIDs;
	stmt->rowMarks = source->rowMarks;
	stmt->appendRelations = source->appendRelations;
	stmt->paramExecTypes = source->paramExecTypes;
	stmt->dependsOnRole = source->dependsOnRole;
	stmt->transientPlan = source->transientPlan;
	stmt->jitFlags = source->jitFlags;
	return stmt;
}

void
InitDistributedInsert(void)
{
	RegisterCustomScanMethods(&kInsertScanMethods);
}

} // namespace fdwshard::executor
