/*
 * The "FdwShard Multi-Shard Modify" custom scan (see executor/multi_shard_modify.h): counts, RETURNING, moves; as
 * "FdwShard Co-located Insert ... Select", the same for an INSERT ... SELECT run shard by shard.
 */
#include "fdwshard/executor/multi_shard_modify.h"

#include "fdwshard/executor/relocate_row.h"
#include "fdwshard/executor/remote_statement.h"
#include "fdwshard/guard.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/distribution.h"

namespace fdwshard::executor
{

namespace
{

/*
 * The scan's own item in CustomScan.custom_private, after the tasks': NIL, or List of
 * String(distributed table relid), Integer(distribution column).
 */
constexpr int kMoves = kShardTasksPrivateLength;

struct MultiShardState
{
	ShardTaskScan scan; /* must be first */
	List **misplaced;   /* moves, per task: new distribution values (text) of rows that left its foreign shard */
	/* moves: the distributed table and its distribution column */
	Oid moves_relid;
	AttrNumber dist_attnum;
	Oid dist_type;
	Oid dist_collation;
	FmgrInfo dist_in;
	Oid dist_typioparam;
};

extern const CustomScanMethods kMultiShardScanMethods;
extern const CustomScanMethods kColocatedInsertScanMethods;
extern const CustomExecMethods kMultiShardExecMethods;

Node *
CreateMultiShardState(CustomScan *scan)
{
	MultiShardState *state =
	    (MultiShardState *) CreateShardTaskScan(scan, sizeof(MultiShardState), &kMultiShardExecMethods);
	state->scan.counts_processed = true;
	state->misplaced = (List **) palloc0(sizeof(List *) * Max(state->scan.task_count, 1));
	List *moves = (List *) list_nth(scan->custom_private, kMoves);
	if (moves != NIL)
	{
		state->moves_relid = (Oid) strtoul(strVal(linitial(moves)), NULL, 10);
		state->dist_attnum = intVal(lsecond(moves));
		state->scan.extra_columns = 1; /* the new distribution value */
	}
	return (Node *) state;
}

void
BeginMultiShard(CustomScanState *node, EState *estate, int eflags)
{
	MultiShardState *state = (MultiShardState *) node;

	BeginShardTaskScan(node, estate, eflags);
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
}

/* Moves: notes the new distribution values (the last column) that belong in another shard. */
void
NoteMisplacedRows(void *arg, ShardTaskState *task, PGresult *result)
{
	MultiShardState *state = (MultiShardState *) arg;
	List **misplaced = &state->misplaced[task - state->scan.tasks];
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
			*misplaced = lappend(*misplaced, pstrdup(text));
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
	for (int i = 0; i < state->scan.task_count; i++)
	{
		if (state->misplaced[i] == NIL)
			continue;
		Datum *values = (Datum *) palloc(sizeof(Datum) * list_length(state->misplaced[i]));
		int count = 0;
		const char *previous = NULL;
		ListCell *cell;

		list_sort(state->misplaced[i], CompareText);
		foreach (cell, state->misplaced[i])
		{
			const char *text = (const char *) lfirst(cell);
			if (previous != NULL && strcmp(previous, text) == 0)
				continue;
			previous = text;
			values[count++] = InputFunctionCall(&state->dist_in, (char *) text, state->dist_typioparam, -1);
		}
		MoveRowsOutOfShard(state->scan.tasks[i].relid, state->moves_relid, state->dist_attnum, values, count);
	}
}

/* Every shard's statement (see RunShardTasks); with moves, the local plan and the misplaced rows after. */
void
Execute(MultiShardState *state)
{
	bool moves = OidIsValid(state->moves_relid);
	bool returning = ((CustomScan *) state->scan.css.ss.ps.plan)->custom_scan_tlist != NIL;

	RunShardTasks(&state->scan, returning, !moves, moves ? NoteMisplacedRows : NULL, state);
	if (moves)
	{
		/* After the foreign shards: rows the local plan routes into them must not be updated again. */
		RunLocalShardTasks(&state->scan);
		MoveMisplacedRows(state);
	}
}

TupleTableSlot *
ExecMultiShard(CustomScanState *node)
{
	MultiShardState *state = (MultiShardState *) node;
	if (!state->scan.executed)
		Execute(state);
	return NextProjectedRow(&state->scan);
}

/* The nodes and their shards; VERBOSE adds each foreign shard's statement. */
void
ExplainMultiShard(CustomScanState *node, List *, ExplainState *es)
{
	MultiShardState *state = (MultiShardState *) node;

	ExplainPropertyInteger("Shards", NULL, state->scan.task_count, es);
	if (OidIsValid(state->moves_relid))
		ExplainPropertyText("Row Movement",
		                    "foreign shards in place, local shards by tuple routing, then misplaced rows", es);
	ExplainShardTasks(&state->scan, false, es);
}

const CustomScanMethods kMultiShardScanMethods = {
    "FdwShard Multi-Shard Modify",
    pg::EntryPoint<CreateMultiShardState>::Call,
};

/* The same scan for a co-located INSERT ... SELECT (executor/multi_shard_modify.h): EXPLAIN names it. */
const CustomScanMethods kColocatedInsertScanMethods = {
    "FdwShard Co-located Insert ... Select",
    pg::EntryPoint<CreateMultiShardState>::Call,
};

const CustomExecMethods kMultiShardExecMethods =
    SerialExecMethods("FdwShard Multi-Shard Modify", pg::EntryPoint<BeginMultiShard>::Call,
                      pg::EntryPoint<ExecMultiShard>::Call, pg::EntryPoint<EndShardTaskScan>::Call,
                      pg::EntryPoint<ReScanShardTaskScan>::Call, pg::EntryPoint<ExplainMultiShard>::Call);

PlannedStmt *
MakeModifyPlan(const CustomScanMethods *methods, Query *query, List *rtable, const ShardTask *tasks, int task_count,
               const ship::ShippedQuery *params, const catalog::CachedTable *moves)
{
	/* One round trip per shard. */
	CustomScan *scan =
	    MakeOutputScan(query->returningList, params != NULL ? params->local_exprs : NIL, methods, 100.0 * task_count);
	List *move_items =
	    moves != NULL ? list_make2(makeString(psprintf("%u", moves->relid)), makeInteger(moves->dist_attnum)) : NIL;
	scan->custom_private = lappend(ShardTasksPrivate(tasks, task_count, params), move_items);

	PlannedStmt *stmt = MakeScanStatement(query, rtable, scan);
	AddShardTaskDependencies(stmt, tasks, task_count);
	return stmt;
}

} // namespace

PlannedStmt *
MakeMultiShardModifyPlan(Query *query, List *rtable, const ShardTask *tasks, int task_count,
                         const ship::ShippedQuery *params, const catalog::CachedTable *moves)
{
	return MakeModifyPlan(&kMultiShardScanMethods, query, rtable, tasks, task_count, params, moves);
}

PlannedStmt *
MakeColocatedInsertPlan(Query *query, List *rtable, const ShardTask *tasks, int task_count,
                        const ship::ShippedQuery *params)
{
	return MakeModifyPlan(&kColocatedInsertScanMethods, query, rtable, tasks, task_count, params, NULL);
}

void
InitMultiShardModify(void)
{
	RegisterCustomScanMethods(&kMultiShardScanMethods);
	RegisterCustomScanMethods(&kColocatedInsertScanMethods);
}

} // namespace fdwshard::executor
