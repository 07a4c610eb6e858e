/*
 * Multi-shard aggregates (see planner/multi_shard_aggregate.h). PostgreSQL 15's postgres_fdw
 * cannot push partial aggregates, and a GROUP BY is never the partition key fdwshard_hash(col),
 * so its own plan pulls every row of every foreign shard. Here each shard runs
 *     SELECT g1.., partial1.. FROM shard WHERE quals GROUP BY g1..
 * and the coordinator runs the user's query over those rows, with each aggregate replaced by
 * its combination (count -> sum of counts, avg -> sum of sums / sum of counts, variance ->
 * PostgreSQL's formula over the sums of counts, sums and sums of squares, ...), planned by
 * PostgreSQL over a function RTE whose scan is then swapped for the custom scan returning the
 * shards' rows (executor/partial_aggregate.cpp). The results are exactly PostgreSQL's, numeric
 * display scales included: avg is numeric_div(sum, count) there as here. GROUP BY the
 * distribution column puts every group in one shard: then each shard runs the whole query and
 * the coordinator's, over the same placeholder, only orders and limits their rows. Co-located
 * tables inner-joined on their distribution columns work the same way, shard index by shard
 * index: shard i of each is on one node, and a joined row's rows are all in shards i.
 */
#include "fdwshard/planner/multi_shard_aggregate.h"

#include "fdwshard/executor/partial_aggregate.h"
#include "fdwshard/planner/distribution.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/planner/shard_query.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard::multi_shard
{

using catalog::CachedTable;
using planner::DistributionColumnOf;
using planner::JoinedTables;
using planner::PlanOverShardRows;
using planner::ShardIndexesToRun;
using planner::ShardRowsRte;

namespace
{

/* The function RTE's index in the coordinator query: it replaces the distributed table(s). */
constexpr int kPartialsRti = planner::kShardRowsRti;

struct CombineContext
{
	bool ok;
	Query *parse;               /* the user's query (read only) */
	const JoinedTables *joined; /* its distributed tables */
	List *group_exprs;          /* GROUP BY expressions: partial columns 1..n */
	List *group_names;          /* their column names (String), as the user named them where possible */
	List *partials;             /* partial aggregates, columns n+1..: Aggrefs */
	List *seen_aggrefs;         /* original aggregates already combined */
	List *seen_combined;
};

bool
IsBuiltinPgCatalog(Oid funcid)
{
	return funcid < FirstGenbkiObjectId && get_func_namespace(funcid) == PG_CATALOG_NAMESPACE;
}

/* Types whose partial values survive the text round trip from a worker exactly. */
bool
IsNumericType(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID || type == NUMERICOID || type == FLOAT4OID ||
	       type == FLOAT8OID;
}

bool
IsMinMaxType(Oid type)
{
	return IsNumericType(type) || type == TEXTOID || type == BPCHAROID || type == DATEOID || type == TIMESTAMPOID ||
	       type == TIMESTAMPTZOID;
}

/* GROUP BY values come back as text too: only types whose text form means the same on every node. */
bool
IsGroupType(Oid type)
{
	return IsMinMaxType(type) || type == VARCHAROID || type == BOOLOID || type == UUIDOID;
}

Var *
PartialColumn(int attno, Oid type, Oid collation)
{
	return makeVar(kPartialsRti, attno, type, -1, collation, 0);
}

/* The partial aggregate column for aggref (appended to context), as a Var of the partial rows. */
Var *
AddPartial(CombineContext *context, Aggref *aggref)
{
	context->partials = lappend(context->partials, aggref);
	return PartialColumn(list_length(context->group_exprs) + list_length(context->partials), aggref->aggtype,
	                     aggref->aggcollid);
}

/* The aggregate funcid(args) returning type, FILTER (WHERE filter) when filter is not NULL. */
Aggref *
MakeAggregateCall(Oid funcid, Oid type, List *args, Oid collation, Expr *filter)
{
	Aggref *aggref = makeNode(Aggref);
	aggref->aggfnoid = funcid;
	aggref->aggtype = type;
	aggref->aggcollid = type_is_collatable(type) ? collation : InvalidOid;
	aggref->inputcollid = collation;
	aggref->aggtranstype = InvalidOid;
	int resno = 1;
	ListCell *cell;
	foreach (cell, args)
	{
		aggref->aggargtypes = lappend_oid(aggref->aggargtypes, exprType((Node *) lfirst(cell)));
		aggref->args = lappend(aggref->args, makeTargetEntry((Expr *) lfirst(cell), resno++, NULL, false));
	}
	aggref->aggfilter = filter;
	aggref->aggkind = AGGKIND_NORMAL;
	aggref->aggsplit = AGGSPLIT_SIMPLE;
	aggref->aggno = -1;
	aggref->aggtransno = -1;
	aggref->location = -1;
	return aggref;
}

/* pg_catalog.<name>(args), declared with exactly the arguments' types, as an aggregate. */
Aggref *
MakeAggregateOf(const char *name, List *args, Oid collation, Expr *filter)
{
	Oid argtypes[FUNC_MAX_ARGS];
	int nargs = 0;
	ListCell *cell;
	foreach (cell, args)
		argtypes[nargs++] = exprType((Node *) lfirst(cell));
	Oid funcid = LookupFuncName(list_make2(makeString(pstrdup("pg_catalog")), makeString(pstrdup(name))), nargs,
	                            argtypes, false);
	return MakeAggregateCall(funcid, get_func_rettype(funcid), args, collation, filter);
}

/* pg_catalog.<name>(arg) as an aggregate over one expression. */
Aggref *
MakeAggregate(const char *name, Expr *arg, Oid collation, Expr *filter)
{
	return MakeAggregateOf(name, list_make1(arg), collation, filter);
}

/* left <pg_catalog.op> right, both of type. */
Expr *
MakeOperator(const char *op, Expr *left, Expr *right, Oid type)
{
	Oid opno = OpernameGetOprid(list_make2(makeString(pstrdup("pg_catalog")), makeString(pstrdup(op))), type, type);
	if (!OidIsValid(opno))
		elog(ERROR, "fdwshard: no operator %s for type %u", op, type);
	OpExpr *expr = (OpExpr *) make_opclause(opno, get_op_rettype(opno), false, left, right, InvalidOid, InvalidOid);
	set_opfuncid(expr);
	return (Expr *) expr;
}

/* fdwshard.<name>(args...) of the extension, InvalidOid when this version has no such function. */
Oid
ExtensionFunction(const char *name, int nargs, const Oid *argtypes)
{
	return LookupFuncName(list_make2(makeString(pstrdup("fdwshard")), makeString(pstrdup(name))), nargs, argtypes,
	                      true);
}

Expr *
Cast(Expr *expr, Oid type)
{
	Oid from = exprType((Node *) expr);
	if (from == type)
		return expr;
	Node *cast =
	    coerce_to_target_type(NULL, (Node *) expr, from, type, -1, COERCION_EXPLICIT, COERCE_EXPLICIT_CAST, -1);
	if (cast == NULL)
		elog(ERROR, "fdwshard: no cast from type %u to %u", from, type);
	return (Expr *) cast;
}

/* The sum of a partial count column: COALESCE(sum(col), 0)::numeric (0 when no shard had rows). */
Expr *
SumOfCounts(Var *count)
{
	CoalesceExpr *coalesce = makeNode(CoalesceExpr);
	coalesce->coalescetype = NUMERICOID;
	coalesce->coalescecollid = InvalidOid;
	coalesce->args = list_make2(
	    MakeAggregate("sum", (Expr *) count, InvalidOid, NULL),
	    makeConst(NUMERICOID, -1, InvalidOid, -1, DirectFunctionCall1(int8_numeric, Int64GetDatum(0)), false, false));
	coalesce->location = -1;
	return (Expr *) coalesce;
}

/* A partial aggregate like aggref (its FILTER) of another function of other arguments. */
Aggref *
PartialLike(Aggref *aggref, const char *name, List *args)
{
	return MakeAggregateOf(name, args, aggref->inputcollid, (Expr *) copyObject(aggref->aggfilter));
}

bool CountsDistinctDistributionColumn(const CombineContext *context, const Aggref *aggref);

/*
 * variance, var_samp, var_pop, stddev, stddev_samp, stddev_pop of arg (sample, stddev say which):
 * PostgreSQL's own results from the shards' moments.
 * - Integers and numeric: PostgreSQL computes them from the exact count, sum(x) and sum(x * x)
 *   (numeric_stddev_internal); the shards send exactly those, the coordinator adds them up and
 *   fdwshard.numeric_moments_result does PostgreSQL's arithmetic at PostgreSQL's scales.
 * - float4 and float8: the state is Youngs-Cramer's (count, sum, sum of squared deviations); each
 *   shard sends its own (count, sum(x::float8), regr_sxx(0, x::float8): the state's own Sxx, not
 *   var_pop * count rounded twice) and fdwshard.float8_moments_result folds them with
 *   float8_combine, as parallel query folds its workers' states.
 * NULL when this version of the extension lacks the function.
 */
Expr *
CombineMoments(CombineContext *context, Aggref *aggref, Expr *arg, Oid argtype, bool sample, bool stddev)
{
	/* count(x) FILTER (...): aggref itself as count(any). */
	Aggref *partial_count = (Aggref *) copyObject(aggref);
	partial_count->aggfnoid = F_COUNT_ANY;
	partial_count->aggtype = INT8OID;
	partial_count->aggcollid = InvalidOid;
	Expr *flags[2] = {(Expr *) makeBoolConst(sample, false), (Expr *) makeBoolConst(stddev, false)};
	if (argtype == FLOAT4OID || argtype == FLOAT8OID)
	{
		Oid argtypes[3] = {FLOAT8ARRAYOID, BOOLOID, BOOLOID};
		Oid funcid = ExtensionFunction("float8_moments_result", 3, argtypes);
		if (!OidIsValid(funcid))
			return NULL;
		Expr *value = Cast((Expr *) copyObject(arg), FLOAT8OID);
		Expr *zero =
		    (Expr *) makeConst(FLOAT8OID, -1, InvalidOid, sizeof(float8), Float8GetDatum(0.0), false, FLOAT8PASSBYVAL);
		Var *count = AddPartial(context, partial_count);
		Var *sum = AddPartial(context, PartialLike(aggref, "sum", list_make1(copyObject(value))));
		Var *sxx = AddPartial(context, PartialLike(aggref, "regr_sxx", list_make2(copyObject(zero), value)));
		/* One {N, Sx, Sxx} per shard: a shard without values has N = 0 (and NULL sums). */
		List *elements = NIL;
		Var *columns[3] = {count, sum, sxx};
		for (int i = 0; i < 3; i++)
		{
			CoalesceExpr *coalesce = makeNode(CoalesceExpr);
			coalesce->coalescetype = FLOAT8OID;
			coalesce->args = list_make2(Cast((Expr *) columns[i], FLOAT8OID), copyObject(zero));
			coalesce->location = -1;
			elements = lappend(elements, coalesce);
		}
		ArrayExpr *state = makeNode(ArrayExpr);
		state->array_typeid = FLOAT8ARRAYOID;
		state->element_typeid = FLOAT8OID;
		state->elements = elements;
		state->location = -1;
		/* array_agg(anyarray): the shards' states as rows of a two-dimensional array. */
		Aggref *states = MakeAggregateCall(F_ARRAY_AGG_ANYARRAY, FLOAT8ARRAYOID, list_make1(state), InvalidOid, NULL);
		return (Expr *) makeFuncExpr(funcid, FLOAT8OID, list_make3(states, flags[0], flags[1]), InvalidOid, InvalidOid,
		                             COERCE_EXPLICIT_CALL);
	}

	Oid argtypes[5] = {INT8OID, NUMERICOID, NUMERICOID, BOOLOID, BOOLOID};
	Oid funcid = ExtensionFunction("numeric_moments_result", 5, argtypes);
	if (!OidIsValid(funcid))
		return NULL;
	/* x * x exactly: int8 products of int2/int4 (at most 2^62), numeric ones of int8 and numeric. */
	Oid square_type = argtype == INT8OID || argtype == NUMERICOID ? NUMERICOID : INT8OID;
	Expr *square = MakeOperator("*", Cast((Expr *) copyObject(arg), square_type),
	                            Cast((Expr *) copyObject(arg), square_type), square_type);
	Var *count = AddPartial(context, partial_count);
	Var *sum = AddPartial(context, PartialLike(aggref, "sum", list_make1(copyObject(arg))));
	Var *squares = AddPartial(context, PartialLike(aggref, "sum", list_make1(square)));
	List *args = list_make5(Cast(SumOfCounts(count), INT8OID),
	                        Cast((Expr *) MakeAggregate("sum", (Expr *) sum, InvalidOid, NULL), NUMERICOID),
	                        Cast((Expr *) MakeAggregate("sum", (Expr *) squares, InvalidOid, NULL), NUMERICOID),
	                        flags[0], flags[1]);
	return (Expr *) makeFuncExpr(funcid, NUMERICOID, args, InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
}

/*
 * The coordinator's expression for aggref, adding its partial aggregates to context, or NULL
 * when the aggregate cannot be split exactly.
 */
Expr *
CombineAggref(CombineContext *context, Aggref *aggref)
{
	if (aggref->agglevelsup != 0 || aggref->aggkind != AGGKIND_NORMAL || aggref->aggorder != NIL ||
	    aggref->aggdirectargs != NIL || aggref->aggvariadic || !IsBuiltinPgCatalog(aggref->aggfnoid))
		return NULL;
	/* count(DISTINCT dist_col): each value is in one shard, the shards' counts add up. */
	if (aggref->aggdistinct != NIL && !CountsDistinctDistributionColumn(context, aggref))
		return NULL;

	if (aggref->aggfnoid == F_COUNT_ || aggref->aggfnoid == F_COUNT_ANY)
		return Cast(SumOfCounts(AddPartial(context, (Aggref *) copyObject(aggref))), INT8OID);

	if (list_length(aggref->args) != 1)
		return NULL;
	const char *name = get_func_name(aggref->aggfnoid);
	Expr *arg = ((TargetEntry *) linitial(aggref->args))->expr;
	Oid argtype = exprType((Node *) arg);

	if (strcmp(name, "min") == 0 || strcmp(name, "max") == 0)
	{
		if (!IsMinMaxType(aggref->aggtype))
			return NULL;
		Var *partial = AddPartial(context, (Aggref *) copyObject(aggref));
		return (Expr *) MakeAggregate(name, (Expr *) partial, aggref->inputcollid, NULL);
	}
	if (strcmp(name, "sum") == 0)
	{
		/* sum(int2/int4) is int8, sum(int8) numeric, others their own type: summing partials keeps it. */
		if (!IsNumericType(argtype))
			return NULL;
		Var *partial = AddPartial(context, (Aggref *) copyObject(aggref));
		return Cast((Expr *) MakeAggregate("sum", (Expr *) partial, InvalidOid, NULL), aggref->aggtype);
	}
	if (strcmp(name, "avg") == 0)
	{
		if (!IsNumericType(argtype))
			return NULL;
		bool floating = argtype == FLOAT4OID || argtype == FLOAT8OID;
		/* avg(float4) accumulates in float8, as sum(x::float8) does; sum(float4) would not. */
		Expr *sum_arg = floating ? Cast((Expr *) copyObject(arg), FLOAT8OID) : (Expr *) copyObject(arg);
		Aggref *partial_sum =
		    MakeAggregate("sum", sum_arg, aggref->inputcollid, (Expr *) copyObject(aggref->aggfilter));
		Aggref *partial_count = (Aggref *) copyObject(aggref);
		partial_count->aggfnoid = F_COUNT_ANY;
		partial_count->aggtype = INT8OID;
		partial_count->aggcollid = InvalidOid;
		Var *sum_column = AddPartial(context, partial_sum);
		Var *count_column = AddPartial(context, partial_count);
		Expr *sum = (Expr *) MakeAggregate("sum", (Expr *) sum_column, InvalidOid, NULL);
		Expr *count = SumOfCounts(count_column);
		/*
		 * PostgreSQL's avg is numeric_div(sum::numeric, count::numeric) for integers and numeric
		 * (the same operands and display scales as here): no rows, the sum is NULL and so is the
		 * (strict) division. For floats it is float8_avg of the {count, sum, sum of squares}
		 * state, which divides without float8div's underflow check and is NULL for no rows.
		 */
		if (floating)
		{
			CoalesceExpr *float_sum = makeNode(CoalesceExpr);
			float_sum->coalescetype = FLOAT8OID;
			float_sum->args = list_make2(
			    sum, makeConst(FLOAT8OID, -1, InvalidOid, sizeof(float8), Float8GetDatum(0.0), false, FLOAT8PASSBYVAL));
			float_sum->location = -1;
			ArrayExpr *state = makeNode(ArrayExpr);
			state->array_typeid = FLOAT8ARRAYOID;
			state->element_typeid = FLOAT8OID;
			state->elements = list_make3(
			    Cast(count, FLOAT8OID), float_sum,
			    makeConst(FLOAT8OID, -1, InvalidOid, sizeof(float8), Float8GetDatum(0.0), false, FLOAT8PASSBYVAL));
			state->location = -1;
			return (Expr *) makeFuncExpr(F_FLOAT8_AVG, FLOAT8OID, list_make1(state), InvalidOid, InvalidOid,
			                             COERCE_EXPLICIT_CALL);
		}
		return (Expr *) makeFuncExpr(F_NUMERIC_DIV, NUMERICOID, list_make2(Cast(sum, NUMERICOID), count), InvalidOid,
		                             InvalidOid, COERCE_EXPLICIT_CALL);
	}
	if (strcmp(name, "bool_and") == 0 || strcmp(name, "every") == 0 || strcmp(name, "bool_or") == 0)
	{
		/* NULLs are skipped at both levels; a shard with none of the group's values sends NULL. */
		if (argtype != BOOLOID)
			return NULL;
		Var *partial = AddPartial(context, (Aggref *) copyObject(aggref));
		return (Expr *) MakeAggregate(strcmp(name, "bool_or") == 0 ? "bool_or" : "bool_and", (Expr *) partial,
		                              InvalidOid, NULL);
	}
	if (strcmp(name, "variance") == 0 || strcmp(name, "var_samp") == 0 || strcmp(name, "var_pop") == 0 ||
	    strcmp(name, "stddev") == 0 || strcmp(name, "stddev_samp") == 0 || strcmp(name, "stddev_pop") == 0)
	{
		if (!IsNumericType(argtype))
			return NULL;
		return CombineMoments(context, aggref, arg, argtype, strstr(name, "_pop") == NULL,
		                      strncmp(name, "stddev", 6) == 0);
	}
	return NULL;
}

Node *CombineMutator(Node *node, void *raw_context);

/* Rewrites an expression of the user's query over the partial rows: group expressions become their columns. */
Node *
CombineMutator(Node *node, void *raw_context)
{
	CombineContext *context = (CombineContext *) raw_context;
	if (node == NULL || !context->ok)
		return node;

	int position = 1;
	ListCell *cell;
	foreach (cell, context->group_exprs)
	{
		Node *group_expr = (Node *) lfirst(cell);
		if (equal(node, group_expr))
			return (Node *) makeVar(kPartialsRti, position, exprType(group_expr), exprTypmod(group_expr),
			                        exprCollation(group_expr), 0);
		position++;
	}
	if (IsA(node, Aggref))
	{
		ListCell *combined_cell;
		/* An aggregate written twice is combined once: the same partial columns. */
		forboth(cell, context->seen_aggrefs, combined_cell, context->seen_combined)
		{
			if (equal(node, lfirst(cell)))
				return (Node *) copyObject(lfirst(combined_cell));
		}
		Expr *combined = CombineAggref(context, (Aggref *) node);
		if (combined == NULL)
		{
			context->ok = false;
			return node;
		}
		context->seen_aggrefs = lappend(context->seen_aggrefs, node);
		context->seen_combined = lappend(context->seen_combined, combined);
		return (Node *) copyObject(combined);
	}
	/* A column outside GROUP BY (a functionally dependent one) or a GROUPING() is not in the partial rows. */
	if (IsA(node, Var) || IsA(node, GroupingFunc) || IsA(node, Query) || IsA(node, SubLink))
	{
		context->ok = false;
		return node;
	}
	return expression_tree_mutator(node, MutatorFn(CombineMutator), context);
}

/*
 * The shape this slice handles: aggregates over one distributed table, or over co-located ones
 * inner-joined on their distribution columns (planner::CollectJoinedTables), nothing else.
 */
bool
IsSplittableAggregateQuery(Query *parse, int cursor_options, JoinedTables *joined)
{
	if (parse->commandType != CMD_SELECT || parse->utilityStmt != NULL || !parse->hasAggs || parse->hasWindowFuncs ||
	    parse->hasTargetSRFs || parse->hasSubLinks || parse->hasDistinctOn || parse->hasRecursive ||
	    parse->hasModifyingCTE || parse->hasForUpdate || parse->hasRowSecurity || parse->cteList != NIL ||
	    parse->distinctClause != NIL || parse->groupingSets != NIL || parse->rowMarks != NIL ||
	    parse->setOperations != NULL || (cursor_options & CURSOR_OPT_SCROLL) || parse->jointree == NULL)
		return false;
	return planner::CollectJoinedTables(parse, joined);
}

/* The user's name of a GROUP BY column for EXPLAIN, unless taken or like a partial's (p1, ...): g<n> then. */
char *
GroupColumnName(SortGroupClause *clause, Query *parse, const CombineContext *context)
{
	char *name = get_sortgroupclause_tle(clause, parse->targetList)->resname;
	bool usable =
	    name != NULL && strcmp(name, "?column?") != 0 && !(name[0] == 'p' && isdigit((unsigned char) name[1]));
	ListCell *cell;
	foreach (cell, context->group_names)
		usable = usable && strcmp(strVal(lfirst(cell)), name) != 0;
	return usable ? pstrdup(name) : psprintf("g%d", list_length(context->group_names) + 1);
}

/* SELECT group exprs, partials FROM <table> WHERE <quals> GROUP BY group exprs: a shard's part. */
Query *
WorkerQuery(Query *parse, const CombineContext *context)
{
	Query *worker = (Query *) copyObject(parse);
	List *targets = NIL;
	List *group_clause = NIL;
	int resno = 1;
	ListCell *cell;

	foreach (cell, parse->groupClause)
	{
		SortGroupClause *clause = (SortGroupClause *) copyObject(lfirst(cell));
		Expr *expr = (Expr *) copyObject(get_sortgroupclause_expr(clause, parse->targetList));
		TargetEntry *entry = makeTargetEntry(expr, resno, psprintf("g%d", resno), false);
		entry->ressortgroupref = resno;
		clause->tleSortGroupRef = resno;
		targets = lappend(targets, entry);
		group_clause = lappend(group_clause, clause);
		resno++;
	}
	int partial = 1;
	foreach (cell, context->partials)
		targets = lappend(
		    targets, makeTargetEntry((Expr *) copyObject(lfirst(cell)), resno++, psprintf("p%d", partial++), false));
	worker->targetList = targets;
	worker->groupClause = group_clause;
	worker->havingQual = NULL;
	worker->sortClause = NIL;
	worker->limitOffset = NULL;
	worker->limitCount = NULL;
	worker->limitOption = LIMIT_OPTION_DEFAULT;
	worker->hasAggs = true;
	return worker;
}

/* The partial rows: the GROUP BY columns, then the partial aggregates p1, ... */
RangeTblEntry *
PartialsRte(const CombineContext *context)
{
	List *names = list_copy(context->group_names);
	for (int i = 1; i <= list_length(context->partials); i++)
		names = lappend(names, makeString(psprintf("p%d", i)));
	return ShardRowsRte(names, list_concat(list_copy(context->group_exprs), context->partials));
}

bool
NonBuiltinAggregateWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref) && !IsBuiltinPgCatalog(((Aggref *) node)->aggfnoid))
		return true;
	return expression_tree_walker(node, WalkerFn(NonBuiltinAggregateWalker), context);
}

/* The query-level GROUP BY and ORDER BY clauses (ship.cpp sees only expressions) use built-in operators. */
bool
ClausesBuiltin(List *clauses)
{
	ListCell *cell;
	foreach (cell, clauses)
	{
		SortGroupClause *clause = (SortGroupClause *) lfirst(cell);
		if (clause->eqop >= FirstGenbkiObjectId ||
		    (OidIsValid(clause->sortop) && clause->sortop >= FirstGenbkiObjectId))
			return false;
	}
	return true;
}

/* A Var of a join's output as the column it stands for (a Var of a join's input), else node. */
Node *
ResolveJoinAlias(Query *parse, Node *node)
{
	while (node != NULL && IsA(node, Var) && ((Var *) node)->varlevelsup == 0 && ((Var *) node)->varno >= 1 &&
	       ((Var *) node)->varno <= list_length(parse->rtable))
	{
		Var *var = (Var *) node;
		RangeTblEntry *rte = rt_fetch(var->varno, parse->rtable);
		if (rte->rtekind != RTE_JOIN || var->varattno <= 0 || var->varattno > list_length(rte->joinaliasvars))
			break;
		node = (Node *) list_nth(rte->joinaliasvars, var->varattno - 1);
	}
	return node;
}

/*
 * Is one GROUP BY item the distribution column itself (of any of the joined tables: they are
 * joined on them), grouped by an equality of its hash opfamily under a deterministic
 * collation? Then rows of one group have equal hashes: every group lives in shards of one index.
 */
bool
GroupsByDistributionColumn(Query *parse, const JoinedTables *joined)
{
	ListCell *cell;
	foreach (cell, parse->groupClause)
	{
		SortGroupClause *clause = (SortGroupClause *) lfirst(cell);
		Node *expr = (Node *) get_sortgroupclause_expr(clause, parse->targetList);
		int k = DistributionColumnOf(joined, ResolveJoinAlias(parse, expr));
		if (k < 0)
			continue;
		Var *var = (Var *) ResolveJoinAlias(parse, expr);
		if (IsDistributionEquality(clause->eqop, joined->tables[k]->dist_type) &&
		    (!OidIsValid(var->varcollid) || get_collation_isdeterministic(var->varcollid)))
			return true;
	}
	return false;
}

/*
 * Is aggref count(DISTINCT c) of a distribution column c of the joined tables, distinct under
 * an equality of its hash opfamily and a deterministic collation? Then every value is in shards
 * of one index and the shards' counts add up.
 */
bool
CountsDistinctDistributionColumn(const CombineContext *context, const Aggref *aggref)
{
	if (aggref->aggfnoid != F_COUNT_ANY || list_length(aggref->args) != 1 || list_length(aggref->aggdistinct) != 1)
		return false;
	SortGroupClause *clause = (SortGroupClause *) linitial(aggref->aggdistinct);
	Node *arg = (Node *) ((TargetEntry *) linitial(aggref->args))->expr;
	Node *column = ResolveJoinAlias(context->parse, arg);
	int k = DistributionColumnOf(context->joined, column);
	if (k < 0)
		return false;
	Oid collation = ((Var *) column)->varcollid;
	return IsDistributionEquality(clause->eqop, context->joined->tables[k]->dist_type) &&
	       (!OidIsValid(collation) || get_collation_isdeterministic(collation));
}

/*
 * LIMIT n OFFSET m ORDER BY keys of non-collatable types (which sort the same on every node):
 * each shard sends only its first n + m groups, which hold every group of the answer (each
 * group is in one shard). Constants only; anything else is not limited on the shards.
 */
Node *
ShardLimit(Query *parse)
{
	if (parse->limitCount == NULL || parse->sortClause == NIL || parse->limitOption != LIMIT_OPTION_COUNT)
		return NULL;
	ListCell *cell;
	foreach (cell, parse->sortClause)
	{
		Node *expr = (Node *) get_sortgroupclause_expr((SortGroupClause *) lfirst(cell), parse->targetList);
		if (OidIsValid(exprCollation(expr)))
			return NULL;
	}
	/* Read only; FoldConstant copies what it evaluates. */
	Node *count = FoldConstant(parse->limitCount);
	Node *offset = parse->limitOffset != NULL ? FoldConstant(parse->limitOffset) : NULL;
	if (!IsA(count, Const) || ((Const *) count)->constisnull || ((Const *) count)->consttype != INT8OID ||
	    (offset != NULL && (!IsA(offset, Const) || ((Const *) offset)->consttype != INT8OID)))
		return NULL;
	int64 total = DatumGetInt64(((Const *) count)->constvalue);
	int64 skip = offset == NULL || ((Const *) offset)->constisnull ? 0 : DatumGetInt64(((Const *) offset)->constvalue);
	if (total < 0 || skip < 0 || pg_add_s64_overflow(total, skip, &total))
		return NULL;
	return (Node *) makeConst(INT8OID, -1, InvalidOid, sizeof(int64), Int64GetDatum(total), false, FLOAT8PASSBYVAL);
}

/*
 * GROUP BY the distribution column: each shard runs the whole query (aggregates, HAVING; ORDER
 * BY with LIMIT n + m when ShardLimit allows) returning every target column, junk ones included
 * (c1, ...); the coordinator's query is the user's over those rows, without GROUP BY or HAVING.
 * false when the query is not of that kind.
 */
bool
WholeQueries(Query *parse, const JoinedTables *joined, Query **coordinator_out, Query **worker_out, List **names_out,
             List **exprs_out)
{
	if (!GroupsByDistributionColumn(parse, joined) || !ClausesBuiltin(parse->groupClause) ||
	    !ClausesBuiltin(parse->sortClause) || NonBuiltinAggregateWalker((Node *) parse->targetList, NULL) ||
	    NonBuiltinAggregateWalker(parse->havingQual, NULL))
		return false;

	Query *worker = (Query *) copyObject(parse);
	Query *coordinator = (Query *) copyObject(parse);
	List *names = NIL;
	List *exprs = NIL;
	ListCell *cell;
	foreach (cell, worker->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		/* Values come back as text: only types whose text form means the same on every node. */
		if (!IsGroupType(exprType((Node *) entry->expr)))
			return false;
		entry->resjunk = false;
		entry->resname = psprintf("c%d", entry->resno);
		names = lappend(names, makeString(entry->resname));
		exprs = lappend(exprs, entry->expr);
	}
	Node *limit = ShardLimit(parse);
	worker->limitOffset = NULL;
	worker->limitCount = limit;
	worker->limitOption = limit != NULL ? LIMIT_OPTION_COUNT : LIMIT_OPTION_DEFAULT;
	if (limit == NULL)
		worker->sortClause = NIL;

	foreach (cell, coordinator->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		Node *expr = (Node *) entry->expr;
		entry->expr =
		    (Expr *) makeVar(kPartialsRti, entry->resno, exprType(expr), exprTypmod(expr), exprCollation(expr), 0);
	}
	coordinator->groupClause = NIL;
	coordinator->groupDistinct = false;
	coordinator->havingQual = NULL;
	coordinator->hasAggs = false;
	*coordinator_out = coordinator;
	*worker_out = worker;
	*names_out = names;
	*exprs_out = exprs;
	return true;
}

/* The partial path's queries: the coordinator combines each shard's partial aggregates per group. */
bool
PartialQueries(Query *parse, const JoinedTables *joined, Query **coordinator_out, Query **worker_out, List **names_out,
               List **exprs_out)
{
	CombineContext context;
	memset(&context, 0, sizeof(context));
	context.ok = true;
	context.parse = parse;
	context.joined = joined;
	ListCell *cell;
	foreach (cell, parse->groupClause)
	{
		Node *expr = (Node *) get_sortgroupclause_expr((SortGroupClause *) lfirst(cell), parse->targetList);
		if (contain_volatile_functions(expr) || !IsGroupType(exprType(expr)))
			return false;
		context.group_exprs = lappend(context.group_exprs, expr);
		context.group_names = lappend(context.group_names,
		                              makeString(GroupColumnName((SortGroupClause *) lfirst(cell), parse, &context)));
	}
	Query *coordinator = (Query *) copyObject(parse);
	List *targets = NIL;
	foreach (cell, coordinator->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		entry->expr = (Expr *) CombineMutator((Node *) entry->expr, &context);
		targets = lappend(targets, entry);
	}
	coordinator->targetList = targets;
	coordinator->havingQual = CombineMutator(coordinator->havingQual, &context);
	if (!context.ok || context.partials == NIL)
		return false;
	RangeTblEntry *partials = PartialsRte(&context);
	*coordinator_out = coordinator;
	*worker_out = WorkerQuery(parse, &context);
	*names_out = ((RangeTblFunction *) linitial(partials->functions))->funccolnames;
	*exprs_out = list_concat(list_copy(context.group_exprs), context.partials);
	return true;
}

} // namespace

PlannedStmt *
PlanMultiShardAggregate(Query *parse, const char *query_string, int cursor_options, ParamListInfo bound_params)
{
	JoinedTables joined;
	if (!IsSplittableAggregateQuery(parse, cursor_options, &joined))
		return NULL;
	/* Once for both ways of splitting, before either copies the query or walks all of it. */
	bool *keep = ShardIndexesToRun(parse, &joined);
	if (keep == NULL || planner::ReferencesSystemColumn(parse))
		return NULL;

	/* The coordinator's query (the user's, over the shards' rows) and each shard's part: whole first. */
	Query *coordinator;
	Query *worker;
	List *names;
	List *exprs;
	if (WholeQueries(parse, &joined, &coordinator, &worker, &names, &exprs))
	{
		PlannedStmt *stmt = PlanOverShardRows(parse, &joined, keep, coordinator, worker, names, exprs,
		                                      executor::ShardRowsKind::kWholeAggregates, NULL, query_string,
		                                      cursor_options, bound_params);
		if (stmt != NULL)
			return stmt;
	}
	if (!PartialQueries(parse, &joined, &coordinator, &worker, &names, &exprs))
		return NULL;
	return PlanOverShardRows(parse, &joined, keep, coordinator, worker, names, exprs,
	                         executor::ShardRowsKind::kPartialAggregates, NULL, query_string, cursor_options,
	                         bound_params);
}

} // namespace fdwshard::multi_shard
