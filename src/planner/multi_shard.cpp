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

/* Marks in keep the shard of "dist_col = constant"; false when op is not that. */
bool
KeepShardOfEquality(const CachedTable *table, OpExpr *op, bool *keep)
{
	if (list_length(op->args) != 2 || !IsDistributionEquality(op->opno, table->dist_type))
		return false;
	Node *other;
	if (IsDistributionColumn((Node *) linitial(op->args), table))
		other = (Node *) lsecond(op->args);
	else if (IsDistributionColumn((Node *) lsecond(op->args), table))
		other = (Node *) linitial(op->args);
	else
		return false;
	other = FoldConstant(other);
	if (!IsA(other, Const))
		return false;
	/* "= NULL" holds for no row: any one shard will do. */
	Const *value = (Const *) other;
	int32 hash = value->constisnull ? 0 : DatumHash(value->constvalue, value->consttype, op->inputcollid);
	keep[catalog::ShardIndexForHash(table, hash)] = true;
	return true;
}

} // namespace

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
			if (IsA(conjunct, OpExpr) && KeepShardOfEquality(table, (OpExpr *) conjunct, keep))
				return keep;
		}
	}
	for (int i = 0; i < table->shard_count; i++)
		keep[i] = true;
	return keep;
}

namespace
{

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

/* The query a foreign shard runs when rows may move: its RETURNING list also gives the new distribution value. */
Query *
WithNewValue(Query *query, const CachedTable *table)
{
	Query *copy = (Query *) copyObject(query);
	Oid type;
	int32 typmod;
	Oid collation;
	get_atttypetypmodcoll(table->relid, table->dist_attnum, &type, &typmod, &collation);
	copy->returningList = lappend(copy->returningList,
	                              makeTargetEntry((Expr *) makeVar(1, table->dist_attnum, type, typmod, collation, 0),
	                                              list_length(copy->returningList) + 1, NULL, false));
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
	    SystemColumnWalker((Node *) parse, NULL))
		return NULL;
	bool moves = AssignsColumn(parse, table->dist_attnum);

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
	bool local_planned = false;
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
			if (moves)
				shard_query = WithNewValue(shard_query, table);
			if (!ship::ShipQuery(shard_query, list_make1_oid(shard->relid), &shipped))
				return NULL;
			task->sql = shipped.sql;
			if (!have_params)
				params = shipped;
			have_params = true;
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
	     parse->commandType == CMD_UPDATE ? "UPDATE" : "DELETE", get_rel_name(table->relid), task_count,
	     moves ? ", then moves rows whose distribution column changed" : "");
	List *rtable = list_concat(list_copy(parse->rtable), shard_rtes);
	rtable = list_concat(rtable, RelationRtes(parse, true));
	return executor::MakeMultiShardModifyPlan(parse, rtable, tasks, task_count, &params, moves ? table : NULL);
}

} // namespace fdwshard::multi_shard
