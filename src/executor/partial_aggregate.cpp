/* The "FdwShard Partial Aggregate" and "FdwShard Multi-Shard Select" custom scans (see executor/partial_aggregate.h).
 */
#include "fdwshard/executor/partial_aggregate.h"

#include "fdwshard/executor/remote_statement.h"
#include "fdwshard/guard.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard::executor
{

namespace
{

extern const CustomScanMethods kPartialScanMethods;
extern const CustomExecMethods kPartialExecMethods;
extern const CustomScanMethods kSelectScanMethods;
extern const CustomExecMethods kSelectExecMethods;

/* Positions in CustomScan.custom_private after the tasks' items. */
enum ShardRowsPrivateItem
{
	kKind = kShardTasksPrivateLength, /* Integer(ShardRowsKind) */
	kPerShard                         /* String: what each shard runs (kSelect), or "" */
};

ShardRowsKind
KindOf(const CustomScan *plan)
{
	return (ShardRowsKind) intVal(list_nth(plan->custom_private, kKind));
}

Node *
CreatePartialState(CustomScan *plan)
{
	ShardTaskScan *scan = (ShardTaskScan *) CreateShardTaskScan(
	    plan, sizeof(ShardTaskScan),
	    KindOf(plan) == ShardRowsKind::kSelect ? &kSelectExecMethods : &kPartialExecMethods);
	scan->read_only = true;
	return (Node *) scan;
}

TupleTableSlot *
NextPartialRow(ScanState *node)
{
	ShardTaskScan *scan = (ShardTaskScan *) node;
	TupleTableSlot *slot = node->ss_ScanTupleSlot;

	/* As the multi-shard modify scan runs its statements (see RunShardTasks), keeping every row. */
	if (!scan->executed)
		RunShardTasks(scan, true, true, NULL, NULL);
	NextShardTaskRow(scan, slot);
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
ReScanPartial(CustomScanState *node)
{
	/* The shards' queries ran once (no parameter of this node changes between scans): replay their rows. */
	ReScanShardTaskScan(node);
	ExecScanReScan(&node->ss);
}

/* The nodes and their shards; VERBOSE adds each foreign shard's query; ANALYZE the rows each shard sent. */
void
ExplainPartial(CustomScanState *node, List *, ExplainState *es)
{
	const ShardTaskScan *scan = (const ShardTaskScan *) node;
	const CustomScan *plan = (const CustomScan *) node->ss.ps.plan;
	ExplainPropertyInteger("Shards", NULL, scan->task_count, es);
	if (KindOf(plan) == ShardRowsKind::kWholeAggregates)
		ExplainPropertyText("Grouped By", "distribution column, whole query on each shard", es);
	if (KindOf(plan) == ShardRowsKind::kSelect)
		ExplainPropertyText("Per Shard", strVal(list_nth(plan->custom_private, kPerShard)), es);
	ExplainShardTasks(scan, es->analyze, es);
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
    pg::EntryPoint<CreatePartialState>::Call,
};

const CustomExecMethods kPartialExecMethods = SerialExecMethods(
    "FdwShard Partial Aggregate", pg::EntryPoint<BeginShardTaskScan>::Call, pg::EntryPoint<ExecPartial>::Call,
    pg::EntryPoint<EndShardTaskScan>::Call, pg::EntryPoint<ReScanPartial>::Call, pg::EntryPoint<ExplainPartial>::Call);

/* The same scan under the name EXPLAIN shows for a SELECT without aggregates. */
const CustomScanMethods kSelectScanMethods = {
    "FdwShard Multi-Shard Select",
    pg::EntryPoint<CreatePartialState>::Call,
};

const CustomExecMethods kSelectExecMethods = SerialExecMethods(
    "FdwShard Multi-Shard Select", pg::EntryPoint<BeginShardTaskScan>::Call, pg::EntryPoint<ExecPartial>::Call,
    pg::EntryPoint<EndShardTaskScan>::Call, pg::EntryPoint<ReScanPartial>::Call, pg::EntryPoint<ExplainPartial>::Call);

} // namespace

CustomScan *
MakeShardRowsScan(FunctionScan *function_scan, const ShardTask *tasks, int task_count, const ship::ShippedQuery *params,
                  ShardRowsKind kind, const char *per_shard, const ShardCombine *combine)
{
	Index scanrelid = function_scan->scan.scanrelid;
	RangeTblFunction *function = (RangeTblFunction *) linitial(function_scan->functions);

	CustomScan *scan = makeNode(CustomScan);
	scan->scan.plan = function_scan->scan.plan;
	scan->scan.plan.type = T_CustomScan; /* the copy carried FunctionScan's tag */
	scan->scan.plan.targetlist = (List *) IndexVarMutator((Node *) function_scan->scan.plan.targetlist, &scanrelid);
	scan->scan.plan.qual = (List *) IndexVarMutator((Node *) function_scan->scan.plan.qual, &scanrelid);
	scan->scan.scanrelid = 0;
	scan->methods = kind == ShardRowsKind::kSelect ? &kSelectScanMethods : &kPartialScanMethods;
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

	ListCell *cell;
	foreach (cell, params->local_exprs)
		scan->custom_exprs = lappend(scan->custom_exprs, expression_planner((Expr *) lfirst(cell)));
	scan->custom_private =
	    list_concat(ShardTasksPrivate(tasks, task_count, params, combine),
	                list_make2(makeInteger((int) kind), makeString(pstrdup(per_shard ? per_shard : ""))));
	return scan;
}

void
InitPartialAggregate(void)
{
	RegisterCustomScanMethods(&kPartialScanMethods);
	RegisterCustomScanMethods(&kSelectScanMethods);
}

} // namespace fdwshard::executor
