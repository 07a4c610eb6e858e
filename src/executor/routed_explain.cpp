/*
 * The pass-through "FdwShard Router" node EXPLAIN shows above a plan the router built against
 * shard relations (see executor/routed_explain.h). It exists only in EXPLAIN: execution never
 * pays for it.
 */
#include "fdwshard/executor/routed_explain.h"

#include "fdwshard/catalog/metadata_cache.h"

namespace fdwshard::executor
{

namespace
{

struct RoutedExplainState
{
	CustomScanState css; /* must be first */
	char *shards;
	char *nodes;
};

extern const CustomExecMethods kRoutedExecMethods;

Node *
CreateRoutedState(CustomScan *scan)
{
	RoutedExplainState *state = (RoutedExplainState *) palloc0(sizeof(RoutedExplainState));
	NodeSetTag(state, T_CustomScanState);
	state->css.methods = &kRoutedExecMethods;
	state->shards = strVal(linitial(scan->custom_private));
	state->nodes = strVal(lsecond(scan->custom_private));
	return (Node *) state;
}

void
BeginRouted(CustomScanState *node, EState *estate, int eflags)
{
	Plan *child = (Plan *) linitial(((CustomScan *) node->ss.ps.plan)->custom_plans);
	node->custom_ps = list_make1(ExecInitNode(child, estate, eflags));
}

TupleTableSlot *
ExecRouted(CustomScanState *node)
{
	return ExecProcNode((PlanState *) linitial(node->custom_ps));
}

void
EndRouted(CustomScanState *node)
{
	ExecEndNode((PlanState *) linitial(node->custom_ps));
}

void
ReScanRouted(CustomScanState *node)
{
	ExecReScan((PlanState *) linitial(node->custom_ps));
}

void
ExplainRouted(CustomScanState *node, List *, ExplainState *es)
{
	RoutedExplainState *state = (RoutedExplainState *) node;
	ExplainPropertyText("Shard", state->shards, es);
	ExplainPropertyText("Node", state->nodes, es);
}

const CustomScanMethods kRoutedScanMethods = {
    "FdwShard Router (shard plan)",
    CreateRoutedState,
};

const CustomExecMethods kRoutedExecMethods = {
    "FdwShard Router", BeginRouted, ExecRouted, EndRouted, ReScanRouted, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    ExplainRouted,
};

void
AppendName(StringInfo names, const char *name)
{
	if (names->len > 0)
		appendStringInfoString(names, ", ");
	appendStringInfoString(names, name);
}

} // namespace

PlannedStmt *
WrapRoutedPlanForExplain(PlannedStmt *stmt)
{
	if (stmt->planTree == NULL || IsA(stmt->planTree, CustomScan))
		return stmt;

	/* The router leaves each distributed table in the range table, unexpanded, for permission checks. */
	StringInfoData shards;
	StringInfoData nodes;
	initStringInfo(&shards);
	initStringInfo(&nodes);
	ListCell *cell;
	foreach (cell, stmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_PARTITIONED_TABLE || rte->inh)
			continue;
		const catalog::CachedTable *table = catalog::LookupDistributedTable(rte->relid);
		if (table == NULL)
			continue;

		ListCell *other;
		foreach (other, stmt->rtable)
		{
			RangeTblEntry *shard_rte = (RangeTblEntry *) lfirst(other);
			if (shard_rte->rtekind != RTE_RELATION)
				continue;
			for (int i = 0; i < table->shard_count; i++)
			{
				const catalog::CachedShard *shard = &table->shards[i];
				if (shard->relid != shard_rte->relid)
					continue;
				AppendName(&shards, quote_qualified_identifier(get_namespace_name(get_rel_namespace(shard->relid)),
				                                               get_rel_name(shard->relid)));
				const catalog::CachedNode *node = catalog::LookupNode(shard->nodeid);
				AppendName(&nodes, node == NULL     ? psprintf("%d", shard->nodeid)
				                   : node->is_local ? psprintf("%d (local)", node->nodeid)
				                                    : psprintf("%d (%s)", node->nodeid, node->host));
				break;
			}
		}
	}
	if (shards.len == 0)
		return stmt;

	CustomScan *scan = makeNode(CustomScan);
	scan->scan.plan.startup_cost = stmt->planTree->startup_cost;
	scan->scan.plan.total_cost = stmt->planTree->total_cost;
	scan->scan.plan.plan_rows = stmt->planTree->plan_rows;
	scan->scan.plan.plan_width = stmt->planTree->plan_width;
	/*
	 * The child's rows pass through unchanged: the output list describes them by position, and
	 * lefttree (which the executor ignores for a custom scan) lets EXPLAIN VERBOSE name them.
	 */
	AttrNumber resno = 1;
	foreach (cell, stmt->planTree->targetlist)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		Node *expr = (Node *) entry->expr;
		Var *var = makeVar(OUTER_VAR, resno, exprType(expr), exprTypmod(expr), exprCollation(expr), 0);
		scan->scan.plan.targetlist =
		    lappend(scan->scan.plan.targetlist, makeTargetEntry((Expr *) var, resno, entry->resname, entry->resjunk));
		resno++;
	}
	scan->scan.plan.lefttree = stmt->planTree;
	scan->custom_plans = list_make1(stmt->planTree);
	scan->custom_private = list_make2(makeString(shards.data), makeString(nodes.data));
	scan->methods = &kRoutedScanMethods;

	PlannedStmt *wrapped = makeNode(PlannedStmt);
	*wrapped = *stmt;
	wrapped->planTree = (Plan *) scan;
	return wrapped;
}

void
InitRoutedExplain(void)
{
	RegisterCustomScanMethods(&kRoutedScanMethods);
}

} // namespace fdwshard::executor
