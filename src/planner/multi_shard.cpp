/*
 * Multi-shard UPDATE and DELETE (see planner/multi_shard.h). PostgreSQL's own plan of such a
 * statement updates foreign shards row by row (the relocate trigger keeps postgres_fdw from
 * pushing the UPDATE down) and one shard after another; here each shard gets the whole
 * statement, and the executor (executor/multi_shard_modify.cpp) runs the workers' parts at once.
 */
#include "fdwshard/planner/multi_shard.h"

#include "fdwshard/executor/multi_shard_modify.h"
#include "fdwshard/planner/distribution.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/planner/shard_query.h"
#include "fdwshard/planner/ship.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard::multi_shard
{

using catalog::CachedShard;
using catalog::CachedTable;

namespace
{

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

/* "key >= min AND key <= max" for the hash range of shard, key being the partition key expression. */
Expr *
HashRangeClause(Expr *key, const CachedShard *shard)
{
	Oid ge = get_opfamily_member(INTEGER_BTREE_FAM_OID, INT4OID, INT4OID, BTGreaterEqualStrategyNumber);
	Oid le = get_opfamily_member(INTEGER_BTREE_FAM_OID, INT4OID, INT4OID, BTLessEqualStrategyNumber);
	Expr *min = (Expr *) makeConst(INT4OID, -1, InvalidOid, sizeof(int32), Int32GetDatum(shard->min_hash), false, true);
	Expr *max = (Expr *) makeConst(INT4OID, -1, InvalidOid, sizeof(int32), Int32GetDatum(shard->max_hash), false, true);
	Expr *lower = make_opclause(ge, BOOLOID, false, (Expr *) copyObject(key), min, InvalidOid, InvalidOid);
	Expr *upper = make_opclause(le, BOOLOID, false, (Expr *) copyObject(key), max, InvalidOid, InvalidOid);
	set_opfuncid((OpExpr *) lower);
	set_opfuncid((OpExpr *) upper);
	return make_andclause(list_make2(lower, upper));
}

/*
 * The plan of query over its local shards only (kept), as PostgreSQL plans a partitioned
 * UPDATE: rows whose distribution column changes move to their new shard by tuple routing,
 * into foreign shards too, since none of those is a result relation of this plan.
 */
PlannedStmt *
PlanLocalShards(Query *query, const CachedTable *table, const bool *keep, int cursor_options,
                ParamListInfo bound_params)
{
	Query *copy = (Query *) copyObject(query);
	Relation rel = relation_open(table->relid, NoLock);
	Distribution distribution;
	bool distributed = GetDistribution(rel, &distribution);
	Expr *key = distributed ? (Expr *) copyObject(distribution.partition_key) : NULL;
	relation_close(rel, NoLock);
	if (!distributed)
		return NULL;

	List *ranges = NIL;
	for (int i = 0; i < table->shard_count; i++)
		if (keep[i] && !OidIsValid(table->shards[i].serverid))
			ranges = lappend(ranges, HashRangeClause(key, &table->shards[i]));
	Expr *local_only = list_length(ranges) == 1 ? (Expr *) linitial(ranges) : make_orclause(ranges);
	copy->jointree->quals = copy->jointree->quals == NULL
	                            ? (Node *) local_only
	                            : (Node *) make_andclause(list_make2(copy->jointree->quals, local_only));
	PlannedStmt *plan = PlanOrdinary(copy, NULL, cursor_options, bound_params, false);

	/* The foreign shards' rows are updated by their own statements: never twice. */
	ListCell *cell;
	foreach (cell, plan->resultRelations)
		if (rt_fetch(lfirst_int(cell), plan->rtable)->relkind == RELKIND_FOREIGN_TABLE)
			return NULL;
	return plan;
}

/*
 * When rows may move, a foreign shard's statement also returns the new distribution value: the
 * RETURNING entry to add after query's own.
 */
TargetEntry *
NewValueEntry(Query *query, const CachedTable *table)
{
	Oid type;
	int32 typmod;
	Oid collation;
	get_atttypetypmodcoll(table->relid, table->dist_attnum, &type, &typmod, &collation);
	return makeTargetEntry((Expr *) makeVar(1, table->dist_attnum, type, typmod, collation, 0),
	                       list_length(query->returningList) + 1, NULL, false);
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
	if (table == NULL || table->has_row_triggers || table->has_stmt_triggers)
		return NULL;

	bool *keep = planner::ShardsToKeep(parse, table);
	for (int i = 0; i < table->shard_count; i++)
		if (keep[i] && !catalog::ShardSameAttnos(table, i))
			return NULL;
	/* Only local shards: PostgreSQL's own plan does the same work in one executor. */
	if (!planner::KeepsForeignShard(table, keep))
		return NULL;
	/* The one walk of the whole tree, once the cheap checks have passed. */
	if (planner::ReferencesSystemColumn(parse))
		return NULL;
	bool moves = AssignsColumn(parse, table->dist_attnum);

	TargetEntry *new_value = moves ? NewValueEntry(parse, table) : NULL;
	planner::ShardTaskList list;
	planner::InitShardTaskList(&list, table);
	bool local_planned = false;
	for (int i = 0; i < table->shard_count; i++)
	{
		if (!keep[i])
			continue;
		const CachedShard *shard = &table->shards[i];
		Query *shard_query;
		executor::ShardTask *task =
		    planner::AddShardTask(&list, parse, parse->resultRelation, shard, rte->rellockmode, &shard_query);
		if (OidIsValid(shard->serverid))
		{
			/* shard_query is the task's own copy. */
			if (moves)
				shard_query->returningList = lappend(shard_query->returningList, copyObject(new_value));
			if (!planner::ShipShardTask(shard_query, task, &list.params))
				return NULL;
		}
		else if (!moves)
			task->local_plan = PlanOrdinary(shard_query, NULL, cursor_options, bound_params, false);
		else if (!local_planned)
		{
			/* One plan for every local shard, which runs after the foreign shards' statements. */
			task->local_plan = PlanLocalShards(parse, table, keep, cursor_options, bound_params);
			if (task->local_plan == NULL)
				return NULL;
			local_planned = true;
		}
	}

	elog(DEBUG1, "fdwshard: %s of %s runs as one statement on each of %d shard(s)%s",
	     parse->commandType == CMD_UPDATE ? "UPDATE" : "DELETE", get_rel_name(table->relid), list.task_count,
	     moves ? ", then moves rows whose distribution column changed" : "");
	List *rtable = list_concat(list_copy(parse->rtable), list.shard_rtes);
	rtable = list_concat(rtable, RelationRtes(parse, true));
	return executor::MakeMultiShardModifyPlan(parse, rtable, list.tasks, list.task_count, &list.params,
	                                          moves ? table : NULL);
}

} // namespace fdwshard::multi_shard
