/*
 * Deciding what may be shipped, and building the shipped statement (see planner/ship.h).
 *
 * The worker must compute exactly what the coordinator would. So every function, operator, type
 * and collation sent must be built in (it exists on every PostgreSQL) and immutable (no session
 * setting such as TimeZone or DateStyle can change its value). Parts without columns that fail
 * this test -- now(), current_user, a timestamptz literal cast, nextval() in INSERT ... VALUES --
 * are evaluated on the coordinator when the statement runs and sent as parameters; anything else
 * keeps the statement on the ordinary plan.
 */
#include "fdwshard/planner/ship.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/core/sql_text.h"
#include "fdwshard/executor/remote_statement.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard::ship
{

using catalog::CachedShard;

namespace
{

struct ShipContext
{
	bool ok;
	List *shard_relids;  /* relations the statement may reference: its shards */
	List *param_sources; /* per shipped parameter: Integer(user paramid) or Integer(-1 - local expr index) */
	List *param_types;   /* per shipped parameter: its type */
	List *local_exprs;   /* expressions evaluated on the coordinator */
	int *user_param_map; /* user paramid -> shipped paramid, 0 when not yet used */
	int user_param_count;
	List *insert_targetlist; /* the INSERT ... VALUES target list: its entries may be volatile */
	bool allow_volatile;
};

bool
IsBuiltin(Oid oid)
{
	return oid < FirstGenbkiObjectId;
}

/* Collations created by initdb exist on every node of the same build; users' own may not. */
bool
IsKnownCollation(Oid collation)
{
	return collation < FirstNormalObjectId;
}

bool
FunctionNotShippable(Oid funcid, void *)
{
	return !IsBuiltin(funcid) || func_volatile(funcid) != PROVOLATILE_IMMUTABLE;
}

bool
SortClauseShippable(SortGroupClause *clause)
{
	return IsBuiltin(clause->eqop) && (!OidIsValid(clause->sortop) || IsBuiltin(clause->sortop));
}

bool
IsExpressionNode(Node *node)
{
	switch (nodeTag(node))
	{
		case T_List:
		case T_IntList:
		case T_OidList:
		case T_TargetEntry:
		case T_FromExpr:
		case T_JoinExpr:
		case T_RangeTblRef:
		case T_RangeTblFunction:
		case T_SortGroupClause:
		case T_WindowClause:
		case T_RowMarkClause:
		case T_CommonTableExpr:
		case T_OnConflictExpr:
		case T_InferenceElem:
		case T_SetOperationStmt:
		case T_GroupingSet:
		case T_CaseWhen:
		case T_NamedArgExpr:
		case T_Query:
		case T_Param:
		case T_Const:
			return false;
		default:
			return true;
	}
}

/* This one node (not its children) means the same on the worker. */
bool
NodeShippable(Node *node)
{
	switch (nodeTag(node))
	{
		case T_Var:
		case T_List:
		case T_IntList:
		case T_OidList:
		case T_TargetEntry:
		case T_FromExpr:
		case T_JoinExpr:
		case T_RangeTblRef:
		case T_RangeTblFunction:
		case T_WindowClause:
		case T_RowMarkClause:
		case T_CommonTableExpr:
		case T_OnConflictExpr:
		case T_InferenceElem:
		case T_SetOperationStmt:
		case T_GroupingSet:
		case T_BoolExpr:
		case T_NullTest:
		case T_BooleanTest:
		case T_CaseExpr:
		case T_CaseWhen:
		case T_CaseTestExpr:
		case T_CoalesceExpr:
		case T_SubLink:
		case T_NamedArgExpr:
		case T_GroupingFunc:
			break;
		case T_SortGroupClause:
			return SortClauseShippable((SortGroupClause *) node);
		case T_Const:
			return IsBuiltin(((Const *) node)->consttype);
		case T_RelabelType:
		case T_FieldSelect:
		case T_ArrayExpr:
		case T_MinMaxExpr:
		case T_SubscriptingRef:
			if (!IsBuiltin(exprType(node)))
				return false;
			break;
		case T_RowExpr:
			if (((RowExpr *) node)->row_typeid != RECORDOID)
				return false;
			break;
		case T_CollateExpr:
			return IsKnownCollation(((CollateExpr *) node)->collOid);
		case T_FuncExpr:
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
		case T_ScalarArrayOpExpr:
		case T_CoerceViaIO:
		case T_Aggref:
		case T_WindowFunc:
			if (check_functions_in_node(node, FunctionNotShippable, NULL) || !IsBuiltin(exprType(node)))
				return false;
			if (IsA(node, OpExpr) && !IsBuiltin(((OpExpr *) node)->opno))
				return false;
			if (IsA(node, ScalarArrayOpExpr) && !IsBuiltin(((ScalarArrayOpExpr *) node)->opno))
				return false;
			break;
		default:
			return false;
	}
	if (!IsExpressionNode(node) || IsA(node, Var) || IsA(node, CaseTestExpr))
		return true;
	return IsKnownCollation(exprCollation(node)) && IsKnownCollation(exprInputCollation(node));
}

bool
ContainsUnshippableWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query) || !NodeShippable(node))
		return true;
	return expression_tree_walker(node, WalkerFn(ContainsUnshippableWalker), context);
}

bool
ContainsCaseTestWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, CaseTestExpr))
		return true;
	return expression_tree_walker(node, WalkerFn(ContainsCaseTestWalker), context);
}

/* A part without columns that is fine on the coordinator but not on the worker: evaluate it here. */
bool
EvaluateLocally(Node *node, ShipContext *context)
{
	if (!IsExpressionNode(node) || contain_var_clause(node) || contain_agg_clause(node) ||
	    contain_window_function(node) || contain_subplans(node) || ContainsCaseTestWalker(node, NULL))
		return false;
	if (!context->allow_volatile && contain_volatile_functions(node))
		return false;
	return contain_mutable_functions(node) || ContainsUnshippableWalker(node, NULL);
}

Param *
NewParam(ShipContext *context, Oid type, int32 typmod, Oid collation, Node *source)
{
	Param *param = makeNode(Param);
	param->paramkind = PARAM_EXTERN;
	param->paramid = list_length(context->param_sources) + 1;
	param->paramtype = type;
	param->paramtypmod = typmod;
	param->paramcollid = collation;
	param->location = -1;
	context->param_sources = lappend(context->param_sources, source);
	context->param_types = lappend_oid(context->param_types, type);
	return param;
}

bool
RangeTableShippable(Query *query, ShipContext *context)
{
	ListCell *cell;
	foreach (cell, query->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		switch (rte->rtekind)
		{
			case RTE_RELATION:
				if (rte->relkind == RELKIND_COMPOSITE_TYPE) /* ON CONFLICT's EXCLUDED */
					break;
				if (!list_member_oid(context->shard_relids, rte->relid) || rte->securityQuals != NIL)
					return false;
				break;
			case RTE_SUBQUERY:
			case RTE_JOIN:
			case RTE_FUNCTION:
			case RTE_VALUES:
			case RTE_CTE:
			case RTE_RESULT:
				break;
			default:
				return false;
		}
	}
	return query->utilityStmt == NULL && query->withCheckOptions == NIL;
}

Node *ShipMutator(Node *node, void *raw_context);

Node *
ShipMutator(Node *node, void *raw_context)
{
	ShipContext *context = (ShipContext *) raw_context;

	if (node == NULL || !context->ok)
		return node;
	if (IsA(node, Var) && ((Var *) node)->varattno == TableOidAttributeNumber)
	{
		/* tableoid is the coordinator's shard relation, which the worker does not know: planned here. */
		context->ok = false;
		return node;
	}
	if (IsA(node, Query))
	{
		Query *query = (Query *) node;
		if (!RangeTableShippable(query, context))
		{
			context->ok = false;
			return node;
		}
		return (Node *) query_tree_mutator(query, MutatorFn(ShipMutator), context, 0);
	}
	if (node == (Node *) context->insert_targetlist)
	{
		/* One row of INSERT ... VALUES is evaluated once, as on the coordinator: volatile is fine. */
		List *entries = NIL;
		ListCell *cell;
		foreach (cell, (List *) node)
		{
			TargetEntry *entry = (TargetEntry *) copyObject(lfirst(cell));
			Node *folded = eval_const_expressions(NULL, (Node *) entry->expr);
			if (IsA(folded, Const) && IsBuiltin(((Const *) folded)->consttype))
			{
				/* Values go as parameters: every INSERT of this shape is one statement, prepared once. */
				Const *value = (Const *) folded;
				context->local_exprs = lappend(context->local_exprs, value);
				entry->expr = (Expr *) NewParam(context, value->consttype, value->consttypmod, value->constcollid,
				                                (Node *) makeInteger(-list_length(context->local_exprs)));
				entries = lappend(entries, entry);
				continue;
			}
			context->allow_volatile = true;
			entry->expr = (Expr *) ShipMutator((Node *) entry->expr, context);
			context->allow_volatile = false;
			entries = lappend(entries, entry);
		}
		return (Node *) entries;
	}
	if (IsA(node, Param))
	{
		Param *param = (Param *) node;
		if (param->paramkind != PARAM_EXTERN || !IsBuiltin(param->paramtype) || param->paramid <= 0 ||
		    param->paramid > context->user_param_count)
		{
			context->ok = false;
			return node;
		}
		int &shipped = context->user_param_map[param->paramid - 1];
		if (shipped == 0)
			shipped = NewParam(context, param->paramtype, param->paramtypmod, param->paramcollid,
			                   (Node *) makeInteger(param->paramid))
			              ->paramid;
		Param *copy = (Param *) copyObject(param);
		copy->paramid = shipped;
		return (Node *) copy;
	}
	if (EvaluateLocally(node, context))
	{
		Oid type = exprType(node);
		if (!IsBuiltin(type))
		{
			context->ok = false;
			return node;
		}
		context->local_exprs = lappend(context->local_exprs, copyObject(node));
		return (Node *) NewParam(context, type, exprTypmod(node), exprCollation(node),
		                         (Node *) makeInteger(-list_length(context->local_exprs)));
	}
	if (!NodeShippable(node))
	{
		context->ok = false;
		return node;
	}
	return expression_tree_mutator(node, MutatorFn(ShipMutator), context);
}

/*
 * SQL text of query as the worker must read it: every name schema-qualified (search_path is
 * just pg_catalog while deparsing) and constants printed in postgres_fdw's transmission modes
 * (DateStyle ISO, IntervalStyle postgres, all float digits), on one line.
 */
char *
DeparseQuery(Query *query)
{
	int transmission_level = remote::SetTransmissionModes();
	int nest_level = remote::BeginQualifiedDeparse();
	char *sql = pg_get_querydef(query, false);
	remote::EndQualifiedDeparse(nest_level);
	remote::ResetTransmissionModes(transmission_level);
	core::CollapseLineBreaks(sql);
	return sql;
}

/* Shard relations print as they are named on the worker; no ONLY needed for a plain table there. */
void
PrepareForDeparse(Query *query, List *shard_relids)
{
	ListCell *cell;
	foreach (cell, query->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind == RTE_RELATION && list_member_oid(shard_relids, rte->relid))
			rte->inh = true;
	}
}

bool
PrepareWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		PrepareForDeparse((Query *) node, (List *) context);
		return query_tree_walker((Query *) node, WalkerFn(PrepareWalker), context, 0);
	}
	return expression_tree_walker(node, WalkerFn(PrepareWalker), context);
}

bool
MaxParamWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXTERN)
	{
		int *max = (int *) context;
		*max = Max(*max, ((Param *) node)->paramid);
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, WalkerFn(MaxParamWalker), context, 0);
	return expression_tree_walker(node, WalkerFn(MaxParamWalker), context);
}

} // namespace

Query *
ShipQueryTree(Query *query, List *shard_relids, ShippedQuery *out)
{
	ShipContext context;
	memset(&context, 0, sizeof(context));
	context.ok = true;
	context.shard_relids = shard_relids;
	(void) MaxParamWalker((Node *) query, &context.user_param_count);
	context.user_param_map = (int *) palloc0(sizeof(int) * (context.user_param_count + 1));
	/* The router routes an INSERT only when it is one row of VALUES; a distributed insert's rows are constants. */
	if (query->commandType == CMD_INSERT)
		context.insert_targetlist = query->targetList;

	Query *shipped = (Query *) ShipMutator((Node *) query, &context);
	if (!context.ok)
	{
		elog(DEBUG2, "fdwshard: statement not shippable, planning it against the shard");
		return NULL;
	}
	out->sql = NULL;
	out->param_sources = context.param_sources;
	out->param_types = context.param_types;
	out->local_exprs = context.local_exprs;
	return shipped;
}

char *
DeparseShipped(Query *shipped, List *shard_relids)
{
	PrepareWalker((Node *) shipped, shard_relids);
	return DeparseQuery(shipped);
}

bool
ShipQuery(Query *query, List *shard_relids, ShippedQuery *out)
{
	Query *shipped = ShipQueryTree(query, shard_relids, out);
	if (shipped == NULL)
		return false;
	out->sql = DeparseShipped(shipped, shard_relids);
	return true;
}

PlannedStmt *
PlanRemoteStatement(Query *query, List *shards, List *permission_rtes, int cursor_options)
{
	if ((cursor_options & CURSOR_OPT_SCROLL) || query->commandType == CMD_UTILITY)
		return NULL;

	const CachedShard *first = (const CachedShard *) linitial(shards);
	List *shard_relids = NIL;
	ListCell *cell;
	foreach (cell, shards)
	{
		const CachedShard *shard = (const CachedShard *) lfirst(cell);
		if (!OidIsValid(shard->serverid) || shard->serverid != first->serverid)
			return NULL;
		shard_relids = lappend_oid(shard_relids, shard->relid);
	}

	ShippedQuery shipped;
	if (!ShipQuery(query, shard_relids, &shipped))
		return NULL;

	List *rtable = list_concat(list_copy(query->rtable), permission_rtes);
	rtable = list_concat(rtable, RelationRtes(query, true));

	executor::RemoteStatement statement;
	statement.sql = shipped.sql;
	statement.serverid = first->serverid;
	statement.nodeid = first->nodeid;
	statement.shards = shards;
	statement.param_sources = shipped.param_sources;
	statement.param_types = shipped.param_types;
	statement.local_exprs = shipped.local_exprs;
	return executor::MakeRemoteStatementPlan(query, rtable, &statement);
}

} // namespace fdwshard::ship
