/*
 * Planner hook. Statements pinned to one shard go to the router (planner/router.cpp); for the
 * rest, shard pruning: shards are partitioned by RANGE (fdwshard_hash(col)), so native
 * pruning cannot use "col = 42" by itself. For each such clause on a distributed table the hook
 * adds the implied "fdwshard_hash(col) = <hash of 42>" (or "= fdwshard_hash($1)" for a
 * parameter, "= ANY (hashes)" for IN lists); PostgreSQL's partition pruning then keeps only the
 * matching shards, at plan time or, for generic plans, at executor start-up.
 */
#include "fdwshard/planner/planner.h"

#include "fdwshard/commands/shard_keys.h"
#include "fdwshard/executor/deferred_plan.h"
#include "fdwshard/guard.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/distributed_insert.h"
#include "fdwshard/planner/distribution.h"
#include "fdwshard/planner/insert_select.h"
#include "fdwshard/planner/multi_shard.h"
#include "fdwshard/planner/multi_shard_aggregate.h"
#include "fdwshard/planner/multi_shard_select.h"
#include "fdwshard/planner/router.h"
#include "fdwshard/planner/shard_query.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard
{

namespace
{

/* The hook we replaced; set once in InitPlanner. */
planner_hook_type prev_planner_hook = nullptr;

/* The distributed table a Var of query refers to, or false. */
bool
VarDistribution(Query *query, Node *node, Var **var_out, Distribution *distribution)
{
	while (node != NULL && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node == NULL || !IsA(node, Var))
		return false;

	Var *var = (Var *) node;
	if (var->varlevelsup != 0 || var->varattno <= 0 || var->varno < 1 || var->varno > list_length(query->rtable))
		return false;

	RangeTblEntry *rte = rt_fetch(var->varno, query->rtable);
	if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_PARTITIONED_TABLE)
		return false;

	/* The parser holds a lock on every relation of the query. */
	Relation rel = relation_open(rte->relid, NoLock);
	bool distributed = GetDistribution(rel, distribution) && distribution->attnum == var->varattno;
	if (distributed)
		distribution->partition_key = (Expr *) copyObject(distribution->partition_key);
	relation_close(rel, NoLock);

	*var_out = var;
	return distributed;
}

Expr *
PartitionKeyFor(const Distribution &distribution, Var *var)
{
	Node *key = (Node *) distribution.partition_key;
	ChangeVarNodes(key, 1, var->varno, 0);
	return (Expr *) key;
}

Const *
HashConst(int32 hash)
{
	return makeConst(INT4OID, -1, InvalidOid, sizeof(int32), Int32GetDatum(hash), false, true);
}

Expr *
HashEquals(Expr *key, Expr *hash)
{
	OpExpr *clause = (OpExpr *) make_opclause(Int4EqualOperator, BOOLOID, false, key, hash, InvalidOid, InvalidOid);
	clause->opfuncid = F_INT4EQ;
	return (Expr *) clause;
}

/* "col = const" or "col = $n", either way round. */
Expr *
PruningClauseForOpExpr(Query *query, OpExpr *op)
{
	if (list_length(op->args) != 2)
		return NULL;

	Var *var;
	Distribution distribution;
	Node *other;
	if (VarDistribution(query, (Node *) linitial(op->args), &var, &distribution))
		other = (Node *) lsecond(op->args);
	else if (VarDistribution(query, (Node *) lsecond(op->args), &var, &distribution))
		other = (Node *) linitial(op->args);
	else
		return NULL;

	if (!IsDistributionEquality(op->opno, distribution.column_type))
		return NULL;
	other = FoldConstant(other);

	if (IsA(other, Const))
	{
		Const *value = (Const *) other;
		if (value->constisnull)
			return NULL;
		int32 hash = DatumHash(value->constvalue, value->consttype, op->inputcollid);
		return HashEquals(PartitionKeyFor(distribution, var), (Expr *) HashConst(hash));
	}
	if (IsA(other, Param) && ((Param *) other)->paramkind == PARAM_EXTERN)
	{
		Expr *hash = (Expr *) makeFuncExpr(HashFunctionOid(), INT4OID, list_make1(copyObject(other)), InvalidOid,
		                                   op->inputcollid, COERCE_EXPLICIT_CALL);
		return HashEquals(PartitionKeyFor(distribution, var), hash);
	}
	return NULL;
}

/* "col IN (constants)" / "col = ANY (constant array)". */
Expr *
PruningClauseForArray(Query *query, ScalarArrayOpExpr *op)
{
	Var *var;
	Distribution distribution;

	if (!op->useOr || list_length(op->args) != 2 ||
	    !VarDistribution(query, (Node *) linitial(op->args), &var, &distribution) ||
	    !IsDistributionEquality(op->opno, distribution.column_type))
		return NULL;

	int32 *hashes;
	int hash_count;
	if (!planner::ConstantArrayHashes((Node *) lsecond(op->args), op->inputcollid, &hashes, &hash_count) ||
	    hash_count == 0)
		return NULL;

	Datum *hash_datums = (Datum *) palloc(sizeof(Datum) * hash_count);
	for (int i = 0; i < hash_count; i++)
		hash_datums[i] = Int32GetDatum(hashes[i]);
	ArrayType *hash_array = construct_array(hash_datums, hash_count, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	ScalarArrayOpExpr *clause = makeNode(ScalarArrayOpExpr);
	clause->opno = Int4EqualOperator;
	clause->opfuncid = F_INT4EQ;
	clause->useOr = true;
	clause->inputcollid = InvalidOid;
	clause->args = list_make2(PartitionKeyFor(distribution, var),
	                          makeConst(INT4ARRAYOID, -1, InvalidOid, -1, PointerGetDatum(hash_array), false, false));
	clause->location = -1;
	return (Expr *) clause;
}

/* Adds pruning clauses implied by the top-level conjuncts of query's WHERE clause. */
void
AddPruningClauses(Query *query)
{
	if (query->jointree == NULL || query->jointree->quals == NULL)
		return;

	List *conjuncts = make_ands_implicit((Expr *) query->jointree->quals);
	List *added = NIL;
	ListCell *cell;

	foreach (cell, conjuncts)
	{
		Node *conjunct = (Node *) lfirst(cell);
		Expr *clause = NULL;

		if (IsA(conjunct, OpExpr))
			clause = PruningClauseForOpExpr(query, (OpExpr *) conjunct);
		else if (IsA(conjunct, ScalarArrayOpExpr))
			clause = PruningClauseForArray(query, (ScalarArrayOpExpr *) conjunct);
		if (clause != NULL)
			added = lappend(added, clause);
	}
	if (added != NIL)
	{
		elog(DEBUG2, "fdwshard: added %d shard pruning clause(s)", list_length(added));
		query->jointree->quals = (Node *) make_ands_explicit(list_concat(conjuncts, added));
	}
}

bool
HasPartitionedTable(Query *query)
{
	ListCell *cell;
	foreach (cell, query->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_PARTITIONED_TABLE)
			return true;
	}
	return false;
}

bool
PartitionedTableWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return HasPartitionedTable((Query *) node) ||
		       query_tree_walker((Query *) node, WalkerFn(PartitionedTableWalker), context, 0);
	return expression_tree_walker(node, WalkerFn(PartitionedTableWalker), context);
}

bool PruningWalker(Node *node, void *context);

bool
PruningWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query *query = (Query *) node;
		if (HasPartitionedTable(query))
			AddPruningClauses(query);
		return query_tree_walker(query, WalkerFn(PruningWalker), context, 0);
	}
	return expression_tree_walker(node, WalkerFn(PruningWalker), context);
}

PlannedStmt *
Plan(Query *parse, const char *query_string, int cursor_options, ParamListInfo bound_params)
{
	/*
	 * O(1) when fdwshard is not created in this database (one cached function lookup); a read-only
	 * walk of the range tables when the statement has no partitioned table, so it is neither
	 * copied by the router nor walked again for pruning.
	 */
	if (!OidIsValid(HashFunctionOid()) || !PartitionedTableWalker((Node *) parse, NULL))
		return PlanOrdinary(parse, query_string, cursor_options, bound_params, false);

	router::RouteKind kind;
	router::DeferredPin pin;
	PlannedStmt *routed = router::RouteQuery(parse, cursor_options, bound_params, bound_params, &pin, &kind);
	if (routed != NULL)
		return routed;
	if (kind == router::RouteKind::kDeferred)
		return deferred::MakeDeferredPlan(parse, cursor_options, pin);
	if (PlannedStmt *insert_select = multi_shard::PlanColocatedInsertSelect(parse, cursor_options, bound_params))
		return insert_select;
	if (PlannedStmt *insert = distributed_insert::PlanInsert(parse, query_string, cursor_options, bound_params))
		return insert;
	PlannedStmt *multi_shard = multi_shard::PlanMultiShardModify(parse, cursor_options, bound_params);
	if (multi_shard != NULL)
		return multi_shard;
	PlannedStmt *aggregate = multi_shard::PlanMultiShardAggregate(parse, query_string, cursor_options, bound_params);
	if (aggregate != NULL)
		return aggregate;
	PlannedStmt *select = multi_shard::PlanMultiShardSelect(parse, query_string, cursor_options, bound_params);
	if (select != NULL)
		return select;
	return PlanOrdinary(parse, query_string, cursor_options, bound_params, true);
}

} // namespace

PlannedStmt *
PlanOrdinary(Query *query, const char *query_string, int cursor_options, ParamListInfo bound_params, bool add_pruning)
{
	if (add_pruning)
	{
		commands::RefuseUnroutedArbiter(query);
		PruningWalker((Node *) query, NULL);
	}
	if (prev_planner_hook != nullptr)
		return prev_planner_hook(query, query_string, cursor_options, bound_params);
	return standard_planner(query, query_string, cursor_options, bound_params);
}

void
InitPlanner(void)
{
	prev_planner_hook = planner_hook;
	planner_hook = [](Query *parse, const char *query_string, int cursor_options,
	                  ParamListInfo bound_params) -> PlannedStmt *
	{ return pg::Entry([&] { return Plan(parse, query_string, cursor_options, bound_params); }); };
}

} // namespace fdwshard
