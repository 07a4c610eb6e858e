/* Distributed tables are self-describing: RANGE (fdwshard_hash(column)) partitioning (see distribution.h). */
#include "fdwshard/planner/distribution.h"

#include "fdwshard/hash/datum_hash.h"

namespace fdwshard
{

bool
GetDistribution(Relation rel, Distribution *distribution)
{
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return false;

	PartitionKey key = RelationGetPartitionKey(rel);
	if (key == NULL || key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 || key->partattrs[0] != 0 ||
	    list_length(key->partexprs) != 1)
		return false;

	Expr *expr = (Expr *) linitial(key->partexprs);
	Oid hash_function = HashFunctionOid();
	if (!IsA(expr, FuncExpr) || !OidIsValid(hash_function) || ((FuncExpr *) expr)->funcid != hash_function)
		return false;

	Node *arg = (Node *) linitial(((FuncExpr *) expr)->args);
	if (!IsA(arg, Var))
		return false;

	distribution->attnum = ((Var *) arg)->varattno;
	distribution->column_type = ((Var *) arg)->vartype;
	distribution->partition_key = expr;
	return true;
}

bool
IsDistributionEquality(Oid opno, Oid column_type)
{
	TypeCacheEntry *type = lookup_type_cache(getBaseType(column_type), TYPECACHE_HASH_OPFAMILY);

	return OidIsValid(type->hash_opf) && get_op_opfamily_strategy(opno, type->hash_opf) == HTEqualStrategyNumber;
}

Node *
FoldConstant(Node *node)
{
	while (IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (IsA(node, Const) || IsA(node, Param) || contain_var_clause(node) || contain_mutable_functions(node) ||
	    contain_subplans(node) || contain_agg_clause(node))
		return node;
	node = eval_const_expressions(NULL, (Node *) copyObject(node));
	while (IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node;
}

} // namespace fdwshard
