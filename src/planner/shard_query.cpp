/* The per-shard parts of a multi-shard statement (see planner/shard_query.h), for UPDATE/DELETE and aggregates. */
#include "fdwshard/planner/shard_query.h"

#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/distribution.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard::planner
{

using catalog::CachedShard;
using catalog::CachedTable;

namespace
{

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

/* Is node the distribution column of table, range table entry rti? */
bool
IsDistributionColumn(Node *node, const CachedTable *table, Index rti)
{
	while (node != NULL && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node != NULL && IsA(node, Var) && ((Var *) node)->varlevelsup == 0 && ((Var *) node)->varno == (int) rti &&
	       ((Var *) node)->varattno == table->dist_attnum;
}

/* Marks in keep the shards that can hold value; false when value is not a usable constant. */
bool
KeepShardsOfArray(const CachedTable *table, Index rti, ScalarArrayOpExpr *op, bool *keep)
{
	int32 *hashes;
	int count;

	if (!op->useOr || list_length(op->args) != 2 || !IsDistributionColumn((Node *) linitial(op->args), table, rti) ||
	    !IsDistributionEquality(op->opno, table->dist_type) ||
	    !ConstantArrayHashes((Node *) lsecond(op->args), op->inputcollid, &hashes, &count))
		return false;
	for (int i = 0; i < count; i++)
		keep[catalog::ShardIndexForHash(table, hashes[i])] = true;
	return true;
}

/* Marks in keep the shard of "dist_col = constant"; false when op is not that. */
bool
KeepShardOfEquality(const CachedTable *table, Index rti, OpExpr *op, bool *keep)
{
	if (list_length(op->args) != 2 || !IsDistributionEquality(op->opno, table->dist_type))
		return false;
	Node *other;
	if (IsDistributionColumn((Node *) linitial(op->args), table, rti))
		other = (Node *) lsecond(op->args);
	else if (IsDistributionColumn((Node *) lsecond(op->args), table, rti))
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

bool
ConstantArrayHashes(Node *array, Oid collation, int32 **hashes_out, int *count_out)
{
	array = FoldConstant(array);
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

	int32 *hashes = (int32 *) palloc(sizeof(int32) * (count + 1));
	int hash_count = 0;
	for (int i = 0; i < count; i++)
		if (!nulls[i])
			hashes[hash_count++] = DatumHash(elements[i], element_type, collation);
	*hashes_out = hashes;
	*count_out = hash_count;
	return true;
}

bool *
ShardsToKeep(Query *query, const CachedTable *table, Index rti)
{
	bool *keep = (bool *) palloc0(sizeof(bool) * table->shard_count);
	if (query->jointree->quals != NULL)
	{
		ListCell *cell;
		foreach (cell, make_ands_implicit((Expr *) query->jointree->quals))
		{
			Node *conjunct = (Node *) lfirst(cell);
			if (IsA(conjunct, ScalarArrayOpExpr) && KeepShardsOfArray(table, rti, (ScalarArrayOpExpr *) conjunct, keep))
				return keep;
			if (IsA(conjunct, OpExpr) && KeepShardOfEquality(table, rti, (OpExpr *) conjunct, keep))
				return keep;
		}
	}
	for (int i = 0; i < table->shard_count; i++)
		keep[i] = true;
	return keep;
}

bool
ReferencesSystemColumn(Query *query)
{
	return SystemColumnWalker((Node *) query, NULL);
}

bool
KeepsForeignShard(const CachedTable *table, const bool *keep)
{
	for (int i = 0; i < table->shard_count; i++)
		if (keep[i] && OidIsValid(table->shards[i].serverid))
			return true;
	return false;
}

void
InitShardTaskList(ShardTaskList *list, const CachedTable *table)
{
	memset(list, 0, sizeof(*list));
	list->tasks = (executor::ShardTask *) palloc0(sizeof(executor::ShardTask) * table->shard_count);
}

void
PointQueryAtShard(ShardTaskList *list, Query *shard_query, Index rti, const CachedShard *shard, LOCKMODE lockmode)
{
	LockRelationOid(shard->relid, lockmode);
	RangeTblEntry *rte = rt_fetch(rti, shard_query->rtable);
	rte->relid = shard->relid;
	rte->relkind = OidIsValid(shard->serverid) ? RELKIND_FOREIGN_TABLE : RELKIND_RELATION;
	rte->inh = false;
	rte->requiredPerms = 0;
	list->shard_rtes = lappend(list->shard_rtes, copyObject(rte));
}

executor::ShardTask *
AddShardTask(ShardTaskList *list, Query *query, Index rti, const CachedShard *shard, LOCKMODE lockmode,
             Query **shard_query)
{
	*shard_query = (Query *) copyObject(query);
	PointQueryAtShard(list, *shard_query, rti, shard, lockmode);
	executor::ShardTask *task = &list->tasks[list->task_count++];
	task->shard = shard;
	return task;
}

bool
ShipShardTask(Query *shard_query, executor::ShardTask *task, ship::ShippedQuery *params, List *shard_relids)
{
	ship::ShippedQuery shipped;
	if (!ship::ShipQuery(shard_query, shard_relids != NIL ? shard_relids : list_make1_oid(task->shard->relid),
	                     &shipped))
		return false;
	task->sql = shipped.sql;
	if (params->sql == NULL)
		*params = shipped;
	return true;
}

} // namespace fdwshard::planner
