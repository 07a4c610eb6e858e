/*
 * Multi-shard SELECTs without aggregates (see planner/multi_shard_select.h). PostgreSQL's own
 * plan of a distributed table is an Append of its shards: every matching row of every foreign
 * shard comes to the coordinator, a worker's shards one after another, and a join of co-located
 * tables is a join on the coordinator. Here each shard index runs
 *     SELECT <every target column, ORDER BY keys included> FROM shards WHERE ... [ORDER BY ... LIMIT n + m]
 * on the node holding its shards (local shards in process) and the coordinator runs the user's
 * query over their rows, planned by PostgreSQL: it sorts, skips and limits exactly as it would
 * the plain table. A shard's first n + m rows hold every row of the answer it has only when the
 * shard sorts exactly as the coordinator does, so ORDER BY goes to the shards only on keys whose
 * order is the same on every node (not a collation-dependent order, which a worker's locale may
 * change); otherwise a join still runs on the shards, without ORDER BY or LIMIT there, and a
 * single table keeps the ordinary plan.
 */
#include "fdwshard/planner/multi_shard_select.h"

#include "fdwshard/planner/distribution.h"
#include "fdwshard/planner/shard_query.h"

namespace fdwshard::multi_shard
{

using planner::JoinedTables;

bool
IsPlainSelect(Query *parse, int cursor_options)
{
	return parse->commandType == CMD_SELECT && parse->utilityStmt == NULL && !parse->hasAggs &&
	       parse->groupClause == NIL && parse->groupingSets == NIL && parse->havingQual == NULL &&
	       !parse->hasWindowFuncs && !parse->hasTargetSRFs && !parse->hasSubLinks && parse->distinctClause == NIL &&
	       !parse->hasDistinctOn && !parse->hasRecursive && !parse->hasModifyingCTE && !parse->hasForUpdate &&
	       parse->rowMarks == NIL && !parse->hasRowSecurity && parse->cteList == NIL && parse->setOperations == NULL &&
	       !(cursor_options & CURSOR_OPT_SCROLL) && parse->jointree != NULL;
}

namespace
{

/*
 * Does a key of type under collation sort the same on every node? Built-in types ordered by
 * their value alone; strings only in byte order ("C", "POSIX"): any other collation follows the
 * node's locale or ICU version, and types such as jsonb or records compare strings inside them
 * under the database's default collation.
 */
bool
OrderSameOnEveryNode(Oid type, Oid collation)
{
	switch (type)
	{
		case BOOLOID:
		case CHAROID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case DATEOID:
		case TIMEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case INTERVALOID:
		case UUIDOID:
		case BYTEAOID:
		case INETOID:
		case CIDROID:
		case MACADDROID:
			return true;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			return collation == C_COLLATION_OID || collation == POSIX_COLLATION_OID;
		default:
			return false;
	}
}

/* Can every ORDER BY key go to the shards (OrderSameOnEveryNode, built-in operators)? */
bool
OrderPushable(Query *parse)
{
	ListCell *cell;
	foreach (cell, parse->sortClause)
	{
		SortGroupClause *clause = (SortGroupClause *) lfirst(cell);
		Node *expr = (Node *) get_sortgroupclause_expr(clause, parse->targetList);
		if (clause->sortop >= FirstGenbkiObjectId || clause->eqop >= FirstGenbkiObjectId ||
		    !OrderSameOnEveryNode(exprType(expr), exprCollation(expr)))
			return false;
	}
	return true;
}

/*
 * Can the coordinator read a value of type back from a worker's text (postgres_fdw's session
 * settings: DateStyle ISO, TimeZone UTC, every float digit) as the same value? Not an anonymous
 * record (no input function) nor money (its text follows the worker's lc_monetary).
 */
bool
ReadableFromText(Oid type)
{
	Oid base = getBaseType(type);
	Oid element = get_element_type(base);
	if (OidIsValid(element))
		base = getBaseType(element);
	return get_typtype(base) != TYPTYPE_PSEUDO && base != MONEYOID;
}

Const *
Int8Const(int64 value)
{
	return makeConst(INT8OID, -1, InvalidOid, sizeof(int64), Int64GetDatum(value), false, FLOAT8PASSBYVAL);
}

/* pg_catalog's binary operator name on two bigints. */
Expr *
Int8Operator(const char *name, Expr *left, Expr *right)
{
	Oid opno =
	    OpernameGetOprid(list_make2(makeString(pstrdup("pg_catalog")), makeString(pstrdup(name))), INT8OID, INT8OID);
	if (!OidIsValid(opno))
		elog(ERROR, "fdwshard: no operator %s for bigint", name);
	Expr *op = make_opclause(opno, INT8OID, false, left, right, InvalidOid, InvalidOid);
	((OpExpr *) op)->opfuncid = get_opcode(opno);
	return op;
}

Expr *
CoalesceToZero(Expr *value)
{
	CoalesceExpr *coalesce = makeNode(CoalesceExpr);
	coalesce->coalescetype = INT8OID;
	coalesce->coalescecollid = InvalidOid;
	coalesce->args = list_make2(copyObject(value), Int8Const(0));
	coalesce->location = -1;
	return (Expr *) coalesce;
}

/*
 * The LIMIT each shard runs so that its rows hold every row of the answer it has: limit +
 * offset rows (with ties when the user's has them). A constant when both are; else
 *     LEAST(limit, INT64_MAX - COALESCE(offset, 0)) + COALESCE(offset, 0)
 * which, having parameters, the coordinator evaluates at each execution and sends to the
 * workers as one (ship.cpp); local shards evaluate it themselves. It cannot overflow: the
 * coordinator's Limit rejects a negative limit or offset before any shard runs, and a NULL
 * limit (LIMIT ALL) makes it INT64_MAX. NULL: no limit on the shards (none, LIMIT ALL, a volatile limit, or a constant
 * sum out of range).
 */
Expr *
ShardLimit(Query *parse)
{
	if (parse->limitCount == NULL || exprType(parse->limitCount) != INT8OID ||
	    (parse->limitOffset != NULL && exprType(parse->limitOffset) != INT8OID))
		return NULL;
	/* Read only; FoldConstant copies what it evaluates. */
	Expr *count = (Expr *) FoldConstant(parse->limitCount);
	Expr *offset = parse->limitOffset != NULL ? (Expr *) FoldConstant(parse->limitOffset) : NULL;
	if (IsA(count, Const) && ((Const *) count)->constisnull)
		return NULL;
	if (offset != NULL && IsA(offset, Const) &&
	    (((Const *) offset)->constisnull || DatumGetInt64(((Const *) offset)->constvalue) == 0))
		offset = NULL;
	if (contain_volatile_functions((Node *) count) || contain_volatile_functions((Node *) offset))
		return NULL;
	if (IsA(count, Const) && (offset == NULL || IsA(offset, Const)))
	{
		int64 total = DatumGetInt64(((Const *) count)->constvalue);
		int64 skip = offset != NULL ? DatumGetInt64(((Const *) offset)->constvalue) : 0;
		if (total < 0 || skip < 0 || pg_add_s64_overflow(total, skip, &total))
			return NULL;
		return (Expr *) Int8Const(total);
	}
	if (offset == NULL)
		return (Expr *) copyObject(count);

	MinMaxExpr *least = makeNode(MinMaxExpr);
	least->minmaxtype = INT8OID;
	least->op = IS_LEAST;
	least->args =
	    list_make2(copyObject(count), Int8Operator("-", (Expr *) Int8Const(PG_INT64_MAX), CoalesceToZero(offset)));
	least->location = -1;
	return Int8Operator("+", (Expr *) least, CoalesceToZero(offset));
}

/* What each shard runs, for EXPLAIN: "join of a, b, ORDER BY, LIMIT 10". */
char *
PerShardText(const JoinedTables *joined, bool ordered, Expr *limit, bool with_ties)
{
	StringInfoData text;
	initStringInfo(&text);
	appendStringInfoString(&text, joined->count > 1 ? "join of " : "scan of ");
	for (int k = 0; k < joined->count; k++)
		appendStringInfo(&text, "%s%s", k > 0 ? ", " : "", quote_identifier(get_rel_name(joined->tables[k]->relid)));
	if (ordered)
		appendStringInfoString(&text, ", ORDER BY");
	if (limit != NULL && IsA(limit, Const))
		appendStringInfo(&text, ", %s " INT64_FORMAT "%s", with_ties ? "FETCH FIRST" : "LIMIT",
		                 DatumGetInt64(((Const *) limit)->constvalue), with_ties ? " ROWS WITH TIES" : "");
	else if (limit != NULL)
		appendStringInfo(&text, ", %s limit + offset of each execution%s", with_ties ? "FETCH FIRST" : "LIMIT",
		                 with_ties ? " ROWS WITH TIES" : "");
	return text.data;
}

/* The name EXPLAIN gives a column of the shards' rows: the user's, the column's for a junk ORDER BY key, or c<n>. */
char *
ShardRowsColumnName(Query *parse, TargetEntry *entry)
{
	if (entry->resname != NULL && strcmp(entry->resname, "?column?") != 0)
		return pstrdup(entry->resname);
	Var *var = (Var *) entry->expr;
	if (IsA(var, Var) && var->varlevelsup == 0 && var->varattno > 0 && var->varno >= 1 &&
	    var->varno <= list_length(parse->rtable) && rt_fetch(var->varno, parse->rtable)->rtekind == RTE_RELATION)
	{
		char *name = get_attname(rt_fetch(var->varno, parse->rtable)->relid, var->varattno, true);
		if (name != NULL)
			return name;
	}
	return psprintf("c%d", entry->resno);
}

/*
 * The shards' query (parse with every target column returned, c1.., junk ones included;
 * ordered and limited by limit when it is not NULL) and the coordinator's (parse over their
 * rows: each target a column of them, ORDER BY, OFFSET and LIMIT its own); false when a column
 * cannot come back as text.
 */
bool
SelectQueries(Query *parse, Expr *limit, Query **coordinator_out, Query **worker_out, List **names_out,
              List **exprs_out)
{
	Query *worker = (Query *) copyObject(parse);
	Query *coordinator = (Query *) copyObject(parse);
	List *names = NIL;
	List *exprs = NIL;
	ListCell *cell;
	foreach (cell, worker->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		if (!ReadableFromText(exprType((Node *) entry->expr)))
			return false;
		/* For EXPLAIN only (ruleutils makes duplicates unique): the worker's columns are read by position. */
		names = lappend(names, makeString(ShardRowsColumnName(parse, entry)));
		exprs = lappend(exprs, entry->expr);
		entry->resjunk = false;
		entry->resname = psprintf("c%d", entry->resno);
	}
	worker->limitOffset = NULL;
	worker->limitCount = (Node *) limit;
	if (limit == NULL)
	{
		worker->sortClause = NIL;
		worker->limitOption = LIMIT_OPTION_DEFAULT;
	}

	foreach (cell, coordinator->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		Node *expr = (Node *) entry->expr;
		entry->expr = (Expr *) makeVar(planner::kShardRowsRti, entry->resno, exprType(expr), exprTypmod(expr),
		                               exprCollation(expr), 0);
	}
	*coordinator_out = coordinator;
	*worker_out = worker;
	*names_out = names;
	*exprs_out = exprs;
	return true;
}

} // namespace

PlannedStmt *
PlanMultiShardSelect(Query *parse, const char *query_string, int cursor_options, ParamListInfo bound_params)
{
	JoinedTables joined;
	if (!IsPlainSelect(parse, cursor_options) || !planner::CollectJoinedTables(parse, &joined))
		return NULL;

	/* ORDER BY and LIMIT go to the shards together, or not at all. */
	bool ordered = parse->sortClause != NIL && OrderPushable(parse);
	Expr *limit = parse->sortClause == NIL || ordered ? ShardLimit(parse) : NULL;
	if (limit == NULL)
		ordered = false;
	if (limit == NULL && joined.count == 1)
	{
		/* PostgreSQL's own plan streams the shards' rows; running the query on each gains nothing. */
		elog(DEBUG2, "fdwshard: no LIMIT the shards can apply, planning the ordinary way");
		return NULL;
	}
	bool *keep = planner::ShardIndexesToRun(parse, &joined);
	if (keep == NULL || planner::ReferencesSystemColumn(parse))
		return NULL;

	Query *coordinator;
	Query *worker;
	List *names;
	List *exprs;
	if (!SelectQueries(parse, limit, &coordinator, &worker, &names, &exprs))
		return NULL;
	const char *per_shard =
	    PerShardText(&joined, ordered, limit, limit != NULL && parse->limitOption == LIMIT_OPTION_WITH_TIES);
	return planner::PlanOverShardRows(parse, &joined, keep, coordinator, worker, names, exprs,
	                                  executor::ShardRowsKind::kSelect, per_shard, query_string, cursor_options,
	                                  bound_params);
}

} // namespace fdwshard::multi_shard
