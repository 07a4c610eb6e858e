/*
 * Router fast path (see planner/router.h). Finds every distributed table in the statement, works
 * out from equalities on the distribution column which shard each one is pinned to, and rewrites
 * the range table entries to point at the shard relations: the planner then sees ordinary tables
 * (local shards) or foreign tables (remote shards), so planning cost does not depend on the shard
 * count. A statement whose shards all sit on one worker and which can be shipped goes there whole.
 */
#include "fdwshard/planner/router.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/commands/shard_keys.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/distribution.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/planner/ship.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard::router
{

using catalog::CachedShard;
using catalog::CachedTable;

namespace
{

enum class PinKind
{
	kNone,
	kValue, /* a known value: a constant or a bound parameter */
	kParam, /* a parameter without a value yet */
	kConflict
};

struct Pin
{
	PinKind kind = PinKind::kNone;
	int32 hash = 0;  /* kValue */
	int paramid = 0; /* kParam */
	Oid type = InvalidOid;
	Oid collation = InvalidOid;
};

/* One reference to a distributed table somewhere in the statement. */
struct TableRef
{
	Query *query;
	Index rtindex;
	const CachedTable *table;
	int parent; /* union-find over equalities between distribution columns */
	Pin pin;
};

/* Collected while walking the statement; palloc'd arrays, freed with the planner's context. */
struct Analysis
{
	TableRef *refs;
	int count;
	int capacity;
	bool refuse; /* something in the statement rules out the fast path */
	ParamListInfo pin_params;
};

int
FindRoot(Analysis *analysis, int ref)
{
	while (analysis->refs[ref].parent != ref)
		ref = analysis->refs[ref].parent = analysis->refs[analysis->refs[ref].parent].parent;
	return ref;
}

void
MergePin(Pin *into, const Pin &pin)
{
	if (pin.kind == PinKind::kNone || into->kind == PinKind::kConflict)
		return;
	if (into->kind == PinKind::kNone)
		*into = pin;
	else if (pin.kind == PinKind::kConflict || into->kind != pin.kind ||
	         (pin.kind == PinKind::kValue && pin.hash != into->hash) ||
	         (pin.kind == PinKind::kParam && pin.paramid != into->paramid))
		into->kind = PinKind::kConflict;
}

int
FindRef(Analysis *analysis, Query *query, Index rtindex)
{
	for (int i = 0; i < analysis->count; i++)
		if (analysis->refs[i].query == query && analysis->refs[i].rtindex == rtindex)
			return i;
	return -1;
}

/* The distributed table reference whose distribution column node is, or -1. Follows join aliases. */
int
DistributionColumnRef(Analysis *analysis, Query *query, Node *node)
{
	for (;;)
	{
		while (node != NULL && IsA(node, RelabelType))
			node = (Node *) ((RelabelType *) node)->arg;
		if (node == NULL || !IsA(node, Var))
			return -1;
		Var *var = (Var *) node;
		if (var->varlevelsup != 0 || var->varno < 1 || var->varno > list_length(query->rtable))
			return -1;
		RangeTblEntry *rte = rt_fetch(var->varno, query->rtable);
		if (rte->rtekind == RTE_JOIN && var->varattno > 0 && var->varattno <= list_length(rte->joinaliasvars))
		{
			node = (Node *) list_nth(rte->joinaliasvars, var->varattno - 1);
			continue;
		}
		int ref = FindRef(analysis, query, var->varno);
		if (ref < 0 || analysis->refs[ref].table->dist_attnum != var->varattno)
			return -1;
		return ref;
	}
}

/* A constant, bound parameter or unbound parameter as a pin; kNone for anything else. */
Pin
PinFor(Analysis *analysis, Node *node, Oid collation)
{
	Pin pin;

	node = FoldConstant(node);

	if (IsA(node, Const))
	{
		Const *value = (Const *) node;
		if (value->constisnull)
			return pin;
		pin.kind = PinKind::kValue;
		pin.hash = DatumHash(value->constvalue, value->consttype, collation);
	}
	else if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXTERN)
	{
		Param *param = (Param *) node;
		Datum value;
		bool is_null;
		Oid type;
		if (ParamValue(analysis->pin_params, param->paramid, true, &value, &is_null, &type))
		{
			if (is_null)
				return pin;
			pin.kind = PinKind::kValue;
			pin.hash = DatumHash(value, type, collation);
		}
		else
		{
			pin.kind = PinKind::kParam;
			pin.paramid = param->paramid;
			pin.type = param->paramtype;
			pin.collation = collation;
		}
	}
	return pin;
}

/* Records what one conjunct says about distribution columns of this query level. */
void
CollectConjunct(Analysis *analysis, Query *query, Node *clause)
{
	if (!IsA(clause, OpExpr) || list_length(((OpExpr *) clause)->args) != 2)
		return;
	OpExpr *op = (OpExpr *) clause;
	Node *left = (Node *) linitial(op->args);
	Node *right = (Node *) lsecond(op->args);
	int left_ref = DistributionColumnRef(analysis, query, left);
	int right_ref = DistributionColumnRef(analysis, query, right);

	if (left_ref < 0 && right_ref < 0)
		return;
	int some_ref = left_ref >= 0 ? left_ref : right_ref;
	if (!IsDistributionEquality(op->opno, analysis->refs[some_ref].table->dist_type))
		return;

	if (left_ref >= 0 && right_ref >= 0)
	{
		int a = FindRoot(analysis, left_ref);
		int b = FindRoot(analysis, right_ref);
		if (a != b)
		{
			analysis->refs[b].parent = a;
			MergePin(&analysis->refs[a].pin, analysis->refs[b].pin);
		}
		return;
	}
	Node *other = left_ref >= 0 ? right : left;
	if (contain_var_clause(other))
		return;
	MergePin(&analysis->refs[FindRoot(analysis, some_ref)].pin, PinFor(analysis, other, op->inputcollid));
}

/* WHERE conjuncts and inner join conditions; conditions of outer joins pin nothing here. */
void
CollectJoinTree(Analysis *analysis, Query *query, Node *node)
{
	if (node == NULL)
		return;
	Node *quals = NULL;
	if (IsA(node, FromExpr))
	{
		ListCell *cell;
		foreach (cell, ((FromExpr *) node)->fromlist)
			CollectJoinTree(analysis, query, (Node *) lfirst(cell));
		quals = ((FromExpr *) node)->quals;
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr *join = (JoinExpr *) node;
		CollectJoinTree(analysis, query, join->larg);
		CollectJoinTree(analysis, query, join->rarg);
		if (join->jointype == JOIN_INNER)
			quals = join->quals;
	}
	if (quals == NULL)
		return;

	ListCell *cell;
	foreach (cell, make_ands_implicit((Expr *) quals))
		CollectConjunct(analysis, query, (Node *) lfirst(cell));
}

/* INSERT ... VALUES of one row: the distribution column's value pins the target. */
void
CollectInsert(Analysis *analysis, Query *query)
{
	int ref = FindRef(analysis, query, query->resultRelation);
	if (ref < 0)
		return;

	ListCell *cell;
	foreach (cell, query->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind == RTE_SUBQUERY || rte->rtekind == RTE_VALUES)
		{
			analysis->refuse = true; /* INSERT ... SELECT or several rows */
			return;
		}
	}
	foreach (cell, query->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		if (entry->resno == analysis->refs[ref].table->dist_attnum)
			MergePin(&analysis->refs[ref].pin,
			         PinFor(analysis, (Node *) entry->expr, exprCollation((Node *) entry->expr)));
	}
}

void
AddRef(Analysis *analysis, Query *query, Index rtindex, const CachedTable *table)
{
	if (analysis->count == analysis->capacity)
	{
		analysis->capacity *= 2;
		analysis->refs = (TableRef *) repalloc(analysis->refs, sizeof(TableRef) * analysis->capacity);
	}
	TableRef *ref = &analysis->refs[analysis->count];
	ref->query = query;
	ref->rtindex = rtindex;
	ref->table = table;
	ref->parent = analysis->count;
	ref->pin = Pin();
	analysis->count++;
}

/* One query level: its distributed tables, then what its quals say about them. */
void
AnalyzeLevel(Analysis *analysis, Query *query)
{
	int first = analysis->count;
	Index rtindex = 0;
	ListCell *cell;

	foreach (cell, query->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		rtindex++;
		if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_PARTITIONED_TABLE)
			continue;
		const CachedTable *table = catalog::LookupDistributedTable(rte->relid);
		if (table == NULL)
			continue;
		bool insert_target = query->commandType == CMD_INSERT && query->resultRelation == (int) rtindex;
		if ((!rte->inh && !insert_target) || rte->tablesample != NULL)
			analysis->refuse = true; /* ONLY parent, TABLESAMPLE: leave them to the ordinary plan */
		AddRef(analysis, query, rtindex, table);
	}
	if (analysis->count == first)
		return;

	if (query->commandType == CMD_INSERT)
		CollectInsert(analysis, query);
	CollectJoinTree(analysis, query, (Node *) query->jointree);
}

bool AnalyzeWalker(Node *node, void *context);

bool
AnalyzeWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		AnalyzeLevel((Analysis *) context, (Query *) node);
		return query_tree_walker((Query *) node, WalkerFn(AnalyzeWalker), context, 0);
	}
	return expression_tree_walker(node, WalkerFn(AnalyzeWalker), context);
}

/* True when query (one level) updates the distribution column of its target: rows may move. */
bool
UpdatesDistributionColumn(Analysis *analysis, Query *query)
{
	if (query->commandType != CMD_UPDATE)
		return false;
	int ref = FindRef(analysis, query, query->resultRelation);
	if (ref < 0)
		return false;

	ListCell *cell;
	foreach (cell, query->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		if (!entry->resjunk && entry->resno == analysis->refs[ref].table->dist_attnum)
			return true;
	}
	return false;
}

/* Statement-level checks: what the fast path would change the meaning of. */
bool
RoutingAllowed(Analysis *analysis)
{
	for (int i = 0; i < analysis->count; i++)
	{
		TableRef *ref = &analysis->refs[i];
		Query *query = ref->query;
		bool is_target = query->resultRelation == (int) ref->rtindex && query->commandType != CMD_SELECT;

		if (is_target && (ref->table->has_stmt_triggers || UpdatesDistributionColumn(analysis, query)))
			return false;
		if (is_target && query->commandType == CMD_INSERT && query->onConflict != NULL &&
		    query->onConflict->action == ONCONFLICT_UPDATE)
		{
			ListCell *cell;
			foreach (cell, query->onConflict->onConflictSet)
				if (((TargetEntry *) lfirst(cell))->resno == ref->table->dist_attnum)
					return false;
		}
	}
	return true;
}

/*
 * Points every reference at its shard. The table's own entries go to *permission_rtes: appended
 * to the plan's range table, unreferenced, so permissions are checked (and locks taken) on the
 * distributed table, as for any partitioned table.
 */
List *
RewriteToShards(Analysis *analysis, const int *shard_indexes, List **permission_rtes)
{
	List *shards = NIL;

	for (int i = 0; i < analysis->count; i++)
	{
		TableRef *ref = &analysis->refs[i];
		const CachedShard *shard = &ref->table->shards[shard_indexes[i]];
		RangeTblEntry *rte = rt_fetch(ref->rtindex, ref->query->rtable);
		RangeTblEntry *check = (RangeTblEntry *) copyObject(rte);

		check->inh = false;
		check->securityQuals = NIL;
		*permission_rtes = lappend(*permission_rtes, check);

		LockRelationOid(shard->relid, rte->rellockmode);
		rte->relid = shard->relid;
		rte->relkind = OidIsValid(shard->serverid) ? RELKIND_FOREIGN_TABLE : RELKIND_RELATION;
		rte->inh = false;
		rte->requiredPerms = 0;

		/* ON CONFLICT's EXCLUDED pseudo-relation describes the target's row: follow it; the same for its arbiter. */
		Query *query = ref->query;
		if (query->commandType == CMD_INSERT && query->resultRelation == (int) ref->rtindex &&
		    query->onConflict != NULL)
		{
			if (query->onConflict->exclRelIndex > 0)
				rt_fetch(query->onConflict->exclRelIndex, query->rtable)->relid = shard->relid;
			commands::PointArbiterAtShard(query, shard);
		}

		shards = lappend(shards, (void *) shard);
	}
	return shards;
}

/*
 * INSERT ... SELECT or several rows of VALUES into a distributed table, which CollectInsert
 * refuses: refused before the copy of what may be thousands of rows. A single-row INSERT has no
 * VALUES or subquery entry, so this is a look at one or two entries.
 */
bool
IsBulkInsert(Query *parse)
{
	if (parse->commandType != CMD_INSERT || parse->resultRelation <= 0)
		return false;
	bool bulk = false;
	ListCell *cell;
	foreach (cell, parse->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		bulk = bulk || rte->rtekind == RTE_VALUES || rte->rtekind == RTE_SUBQUERY;
	}
	if (!bulk)
		return false;
	RangeTblEntry *target = rt_fetch(parse->resultRelation, parse->rtable);
	return target->rtekind == RTE_RELATION && target->relkind == RELKIND_PARTITIONED_TABLE &&
	       catalog::LookupDistributedTable(target->relid) != NULL;
}

} // namespace

bool
ParamValue(ParamListInfo params, int paramid, bool require_const, Datum *value, bool *is_null, Oid *type)
{
	if (params == NULL || paramid <= 0 || paramid > params->numParams)
		return false;

	ParamExternData workspace;
	ParamExternData *param = params->paramFetch != NULL ? params->paramFetch(params, paramid, true, &workspace)
	                                                    : &params->params[paramid - 1];
	if (param == NULL || !OidIsValid(param->ptype) || (require_const && !(param->pflags & PARAM_FLAG_CONST)))
		return false;
	*value = param->value;
	*is_null = param->isnull;
	*type = param->ptype;
	return true;
}

PlannedStmt *
RouteQuery(Query *parse, int cursor_options, ParamListInfo pin_params, ParamListInfo plan_params, DeferredPin *deferred,
           RouteKind *kind, int forced_shard_index)
{
	*kind = RouteKind::kNotRoutable;
	if (parse->commandType == CMD_UTILITY || parse->commandType == CMD_MERGE || IsBulkInsert(parse))
		return NULL;

	/* Everything below works on a copy: the caller's tree may still be planned the ordinary way. */
	Query *query = (Query *) copyObject(parse);
	Analysis analysis;
	analysis.capacity = 4;
	analysis.count = 0;
	analysis.refs = (TableRef *) palloc(sizeof(TableRef) * analysis.capacity);
	analysis.refuse = false;
	analysis.pin_params = pin_params;
	AnalyzeWalker((Node *) query, &analysis);

	if (analysis.count == 0 || analysis.refuse || !RoutingAllowed(&analysis))
		return NULL;

	/* Every table pinned by a value, or every table pinned by the same parameter in one co-location group. */
	int *shard_indexes = (int *) palloc(sizeof(int) * analysis.count);
	const Pin &first = analysis.refs[FindRoot(&analysis, 0)].pin;
	bool by_param = first.kind == PinKind::kParam;
	for (int i = 0; i < analysis.count; i++)
	{
		TableRef *ref = &analysis.refs[i];
		const Pin &pin = analysis.refs[FindRoot(&analysis, i)].pin;

		if (!by_param && pin.kind == PinKind::kValue)
			shard_indexes[i] = catalog::ShardIndexForHash(ref->table, pin.hash);
		else if (by_param && pin.kind == PinKind::kParam && pin.paramid == first.paramid &&
		         ref->table->colocationid == analysis.refs[0].table->colocationid)
			shard_indexes[i] = forced_shard_index;
		else
			return NULL;
	}

	if (by_param && forced_shard_index < 0)
	{
		*kind = RouteKind::kDeferred;
		if (deferred != NULL)
		{
			deferred->paramid = first.paramid;
			deferred->type = first.type;
			deferred->collation = first.collation;
			deferred->relid = analysis.refs[0].table->relid;
		}
		return NULL;
	}

	bool has_row_triggers = false;
	for (int i = 0; i < analysis.count; i++)
	{
		const CachedTable *table = analysis.refs[i].table;
		if (shard_indexes[i] >= table->shard_count)
			return NULL;
		/* Locked as RewriteToShards will: the check then reads the relcache entry planning needs anyway. */
		RangeTblEntry *rte = rt_fetch(analysis.refs[i].rtindex, analysis.refs[i].query->rtable);
		LockRelationOid(table->shards[shard_indexes[i]].relid, rte->rellockmode);
		if (!catalog::ShardSameAttnos(table, shard_indexes[i], true))
			return NULL;
		has_row_triggers = has_row_triggers || table->has_row_triggers;
	}

	*kind = RouteKind::kResolved;
	List *permission_rtes = NIL;
	List *shards = RewriteToShards(&analysis, shard_indexes, &permission_rtes);
	for (int i = 0; i < analysis.count; i++)
		elog(DEBUG1, "fdwshard: routed %s to shard %s", get_rel_name(analysis.refs[i].table->relid),
		     get_rel_name(((const CachedShard *) list_nth(shards, i))->relid));

	if (!has_row_triggers)
	{
		PlannedStmt *shipped = ship::PlanRemoteStatement(query, shards, permission_rtes, cursor_options);
		if (shipped != NULL)
			return shipped;
	}
	query->rtable = list_concat(query->rtable, permission_rtes);
	return PlanOrdinary(query, NULL, cursor_options, plan_params, false);
}

} // namespace fdwshard::router
