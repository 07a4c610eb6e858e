/*
 * Multi-shard UPDATE and DELETE (see planner/multi_shard.h). PostgreSQL's own plan of such a
 * statement updates foreign shards row by row (the relocate trigger keeps postgres_fdw from
 * pushing the UPDATE down) and one shard after another; here each shard gets the whole
 * statement, and the executor (executor/multi_shard_modify.cpp) runs the workers' parts at once.
 */
#include "fdwshard/planner/multi_shard.h"

#include "fdwshard/executor/multi_shard_modify.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/distribution.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/planner/ship.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard::multi_shard
{

using catalog::CachedShard;
using catalog::CachedTable;

namespace
{

/* System columns and whole-row references mean something else on a shard (tableoid, the row type). */
bool
SystemColumnWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
		return ((Var *) node)->varattno <= 0;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, WalkerFn(SystemColumnWalker), context, 0);
	return expression_tree_walker(node, WalkerFn(SystemColumnWalker), context);
}

bool
AssignsColumn(Query *query, AttrNumber attnum)
{
	ListCell *cell;
	foreach (cell, query->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		if (!entry->resjunk && entry->resno == attnum)
			return true;
	}
	return false;
}

/* Is node the distribution column of the target (varno 1, the only relation)? */
bool
IsDistributionColumn(Node *node, const CachedTable *table)
{
	while (node != NULL && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node != NULL && IsA(node, Var) && ((Var *) node)->varlevelsup == 0 &&
	       ((Var *) node)->varattno == table->dist_attnum;
}

/* Marks in keep the shards that can hold value; false when value is not a usable constant. */
bool
KeepShardsOfArray(const CachedTable *table, ScalarArrayOpExpr *op, bool *keep)
{
	if (!op->useOr || list_length(op->args) != 2 || !IsDistributionColumn((Node *) linitial(op->args), table) ||
	    !IsDistributionEquality(op->opno, table->dist_type))
		return false;
	Node *array = FoldConstant((Node *) lsecond(op->args));
	if (!IsA(array, Const) || ((Const *) array)->constisnull)
		return false;

	ArrayType *values = DatumGetArrayTypeP(((Const *) array)->constvalue);
	Oid element_type = ARR_ELEMTYPE(values);
	int16 typlen;
	bool typbyval;
	char typalign;
	Datum *elements;
	bool *nulls;
	int count;
	get_typlenbyvalalign(element_type, &typlen, &typbyval, &typalign);
	deconstruct_array(values, element_type, typlen, typbyval, typalign, &elements, &nulls, &count);
	for (int i = 0; i < count; i++)
		if (!nulls[i])
			keep[catalog::ShardIndexForHash(table, DatumHash(elements[i], element_type, op->inputcollid))] = true;
	return true;
}

/*
 * Which shards can hold rows the statement touches: a top-level "dist_col IN (constants)" or
 * "= ANY (constant array)" keeps the shards of those values; otherwise every shard.
 */
bool *
ShardsToKeep(Query *query, const CachedTable *table)
{
	bool *keep = (bool *) palloc0(sizeof(bool) * table->shard_count);
	if (query->jointree->quals != NULL)
	{
		ListCell *cell;
		foreach (cell, make_ands_implicit((Expr *) query->jointree->quals))
		{
			Node *conjunct = (Node *) lfirst(cell);
			if (IsA(conjunct, ScalarArrayOpExpr) && KeepShardsOfArray(table, (ScalarArrayOpExpr *) conjunct, keep))
				return keep;
		}
	}
	for (int i = 0; i < table->shard_count; i++)
		keep[i] = true;
	return keep;
}

/* A copy of query whose target is the shard; permissions stay checked on the distributed table. */
Query *
ShardQuery(Query *query, const CachedShard *shard)
{
	Query *copy = (Query *) copyObject(query);
	RangeTblEntry *rte = rt_fetch(copy->resultRelation, copy->rtable);
	rte->relid = shard->relid;
	rte->relkind = OidIsValid(shard->serverid) ? RELKIND_FOREIGN_TABLE : RELKIND_RELATION;
	rte->inh = false;
	rte->requiredPerms = 0;
	return copy;
}

} // namespace

PlannedStmt *
PlanMultiShardModify(Query *parse, int cursor_options, ParamListInfo bound_params)
{
	if ((parse->commandType != CMD_UPDATE && parse->commandType != CMD_DELETE) || parse->cteList != NIL ||
	    parse->hasModifyingCTE || parse->withCheckOptions != NIL || list_length(parse->rtable) != 1 ||
	    parse->resultRelation != 1 || (cursor_options & CURSOR_OPT_SCROLL))
		return NULL;
	RangeTblEntry *rte = rt_fetch(parse->resultRelation, parse->rtable);
	if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_PARTITIONED_TABLE || !rte->inh ||
	    rte->securityQuals != NIL)
		return NULL;
	const CachedTable *table = catalog::LookupDistributedTable(rte->relid);
	if (table == NULL || table->has_row_triggers || table->has_stmt_triggers ||
	    AssignsColumn(parse, table->dist_attnum) || SystemColumnWalker((Node *) parse, NULL))
		return NULL;

	bool *keep = ShardsToKeep(parse, table);
	bool any_foreign = false;
	for (int i = 0; i < table->shard_count; i++)
	{
		if (!keep[i])
			continue;
		if (!table->shards[i].same_attnos)
			return NULL;
		any_foreign = any_foreign || OidIsValid(table->shards[i].serverid);
	}
	/* Only local shards: PostgreSQL's own plan does the same work in one executor. */
	if (!any_foreign)
		return NULL;

	executor::ShardTask *tasks = (executor::ShardTask *) palloc0(sizeof(executor::ShardTask) * table->shard_count);
	int task_count = 0;
	ship::ShippedQuery params;
	bool have_params = false;
	List *shard_rtes = NIL;
	for (int i = 0; i < table->shard_count; i++)
	{
		if (!keep[i])
			continue;
		const CachedShard *shard = &table->shards[i];
		LockRelationOid(shard->relid, rte->rellockmode);
		Query *shard_query = ShardQuery(parse, shard);
		/* The shard in the plan's range table: locked again when a cached plan is reused. */
		shard_rtes = lappend(shard_rtes, copyObject(rt_fetch(1, shard_query->rtable)));
		executor::ShardTask *task = &tasks[task_count++];
		task->shard = shard;
		if (OidIsValid(shard->serverid))
		{
			ship::ShippedQuery shipped;
			if (!ship::ShipQuery(shard_query, list_make1_oid(shard->relid), &shipped))
				return NULL;
			task->sql = shipped.sql;
			if (!have_params)
				params = shipped;
			have_params = true;
		}
		else
			task->local_plan = PlanOrdinary(shard_query, NULL, cursor_options, bound_params, false);
	}

	elog(DEBUG1, "fdwshard: %s of %s runs as one statement on each of %d shard(s)",
	     parse->commandType == CMD_UPDATE ? "UPDATE" : "DELETE", get_rel_name(table->relid), task_count);
	List *rtable = list_concat(list_copy(parse->rtable), shard_rtes);
	rtable = list_concat(rtable, RelationRtes(parse, true));
	return executor::MakeMultiShardModifyPlan(parse, rtable, tasks, task_count, &params);
}

} // namespace fdwshard::multi_shard
