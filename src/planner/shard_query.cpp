/* The per-shard parts of a multi-shard statement (see planner/shard_query.h), for UPDATE/DELETE, aggregates and
 * SELECTs. */
#include "fdwshard/planner/shard_query.h"

#include "fdwshard/core/sql_text.h"
#include "fdwshard/executor/partial_aggregate.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/distribution.h"
#include "fdwshard/planner/planner.h"
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

/* The position in joined of the table at range table entry rti, or -1. */
int
JoinedTableOf(const JoinedTables *joined, Index rti)
{
	for (int k = 0; k < joined->count; k++)
		if (joined->rtis[k] == rti)
			return k;
	return -1;
}

/* Adds the distributed table of a FROM item; false for anything else (the query is not split). */
bool
AddJoinedTable(Query *parse, JoinedTables *joined, Index rti)
{
	if (joined->count == kMaxJoinedTables || rti < 1 || rti > (Index) list_length(parse->rtable))
		return false;
	RangeTblEntry *rte = rt_fetch(rti, parse->rtable);
	if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_PARTITIONED_TABLE || !rte->inh ||
	    rte->securityQuals != NIL || rte->tablesample != NULL)
		return false;
	const CachedTable *table = catalog::LookupDistributedTable(rte->relid);
	if (table == NULL)
		return false;
	joined->rtis[joined->count] = rti;
	joined->tables[joined->count] = table;
	joined->count++;
	return true;
}

/*
 * Collects the tables of a FROM item and the conjuncts of its conditions (read only: the list is
 * new, its conditions parse's own); false unless all inner joins of tables.
 */
bool
CollectFromItem(Query *parse, Node *item, JoinedTables *joined, List **conjuncts)
{
	if (IsA(item, RangeTblRef))
		return AddJoinedTable(parse, joined, ((RangeTblRef *) item)->rtindex);
	if (!IsA(item, JoinExpr))
		return false;
	JoinExpr *join = (JoinExpr *) item;
	if (join->jointype != JOIN_INNER || !CollectFromItem(parse, join->larg, joined, conjuncts) ||
	    !CollectFromItem(parse, join->rarg, joined, conjuncts))
		return false;
	if (join->quals != NULL)
		*conjuncts = list_concat(*conjuncts, make_ands_implicit((Expr *) join->quals));
	return true;
}

int
FindRoot(int *parent, int k)
{
	while (parent[k] != k)
		k = parent[k] = parent[parent[k]];
	return k;
}

/*
 * Several tables: co-located (shard i of each covers the same hashes), and equalities between
 * their distribution columns (hash equality, deterministic collation) connect them all, so
 * joined rows come from shards of one index. false when they do not.
 */
bool
JoinedOnDistributionColumns(const JoinedTables *joined, List *conjuncts)
{
	const CachedTable *first = joined->tables[0];
	for (int k = 1; k < joined->count; k++)
	{
		const CachedTable *table = joined->tables[k];
		if (table->colocationid != first->colocationid || table->shard_count != first->shard_count ||
		    table->dist_type != first->dist_type)
			return false;
		for (int i = 0; i < table->shard_count; i++)
			if (table->shards[i].min_hash != first->shards[i].min_hash ||
			    table->shards[i].max_hash != first->shards[i].max_hash)
				return false;
	}
	int parent[kMaxJoinedTables];
	for (int k = 0; k < joined->count; k++)
		parent[k] = k;
	int components = joined->count;
	ListCell *cell;
	foreach (cell, conjuncts)
	{
		OpExpr *op = (OpExpr *) lfirst(cell);
		if (!IsA(op, OpExpr) || list_length(op->args) != 2 || !IsDistributionEquality(op->opno, first->dist_type) ||
		    (OidIsValid(op->inputcollid) && !get_collation_isdeterministic(op->inputcollid)))
			continue;
		int left = DistributionColumnOf(joined, (Node *) linitial(op->args));
		int right = DistributionColumnOf(joined, (Node *) lsecond(op->args));
		if (left < 0 || right < 0)
			continue;
		left = FindRoot(parent, left);
		right = FindRoot(parent, right);
		if (left != right)
		{
			parent[right] = left;
			components--;
		}
	}
	return components == 1;
}

/*
 * The shard indexes joined needs: for several tables, those every table keeps (a joined row
 * has a row of each in shards of one index). palloc'd.
 */
bool *
ShardIndexesToKeep(Query *parse, const JoinedTables *joined)
{
	bool *keep = planner::ShardsToKeep(parse, joined->tables[0], joined->rtis[0]);
	for (int k = 1; k < joined->count; k++)
	{
		bool *also = planner::ShardsToKeep(parse, joined->tables[k], joined->rtis[k]);
		for (int i = 0; i < joined->tables[0]->shard_count; i++)
			keep[i] = keep[i] && also[i];
	}
	return keep;
}

/* Replaces the scan of the shards' rows in plan's tree; the number of scans replaced. */
int
ReplacePartialsScan(Plan **plan, const executor::ShardTask *tasks, int task_count, const ship::ShippedQuery *params,
                    executor::ShardRowsKind kind, const char *per_shard, const executor::ShardCombine *combine)
{
	if (*plan == NULL)
		return 0;
	if (IsA(*plan, FunctionScan) && ((FunctionScan *) *plan)->scan.scanrelid == kShardRowsRti)
	{
		*plan = (Plan *) executor::MakeShardRowsScan((FunctionScan *) *plan, tasks, task_count, params, kind, per_shard,
		                                             combine);
		return 1;
	}
	return ReplacePartialsScan(&(*plan)->lefttree, tasks, task_count, params, kind, per_shard, combine) +
	       ReplacePartialsScan(&(*plan)->righttree, tasks, task_count, params, kind, per_shard, combine);
}

/*
 * How one statement may read several shards of a node (see executor::ShardCombine): a read of
 * one table (partial aggregates, or rows the coordinator orders and limits), its shards'
 * statements all spliced from one model whose table the deparser wrote once, as a plain
 * " FROM schema.name [alias]". What each shard's statement computes then holds for the union
 * of the shards' rows as well: the coordinator combines partial results, whichever rows each
 * covers. NULL when it may not.
 */
const executor::ShardCombine *
CombineOf(const ShardTaskList *list, Query *worker, const JoinedTables *joined)
{
	if (joined->count != 1 || list->model_state != 2 || list->model_place_count != 1 || worker->hasSubLinks ||
	    worker->rowMarks != NIL)
		return NULL;
	const executor::ShardTask *model = NULL;
	for (int i = 0; i < list->task_count && model == NULL; i++)
		if (list->tasks[i].sql != NULL)
			model = &list->tasks[i];
	if (model == NULL)
		return NULL;
	const char *schema = quote_identifier(get_namespace_name(get_rel_namespace(model->shard->relid)));
	core::FromItem item;
	if (!core::FindSoleFromItem(list->model_sql, list->model_places[0], schema, &item))
		return NULL;

	/*
	 * The columns the statement uses, by name (none for count(*)): the worker checks column
	 * privileges on them as it did on the shard's statement.
	 */
	Bitmapset *used = NULL;
	pull_varattnos((Node *) worker->targetList, joined->rtis[0], &used);
	pull_varattnos((Node *) worker->jointree, joined->rtis[0], &used);
	pull_varattnos(worker->havingQual, joined->rtis[0], &used);
	StringInfoData head;
	initStringInfo(&head);
	appendStringInfoString(&head, "SELECT ");
	int columns = 0;
	int member = -1;
	while ((member = bms_next_member(used, member)) >= 0)
	{
		AttrNumber attno = member + FirstLowInvalidHeapAttributeNumber;
		if (attno <= 0)
			return NULL; /* a system column or the whole row: the shard's own */
		appendStringInfo(&head, "%s%s", columns++ > 0 ? ", " : "",
		                 quote_identifier(get_attname(joined->tables[0]->relid, attno, false)));
	}
	appendStringInfoString(&head, columns > 0 ? " FROM " : "FROM ");
	const char *table_name = quote_identifier(get_rel_name(joined->tables[0]->relid));

	executor::ShardCombine *combine = (executor::ShardCombine *) palloc(sizeof(executor::ShardCombine));
	combine->head = head.data;
	combine->offset = (int) item.offset;
	combine->rest = (int) (strlen(list->model_sql) - item.length);
	combine->alias = item.has_alias ? "" : psprintf(" %s", table_name);
	return combine;
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
PointRteAtShard(RangeTblEntry *rte, const CachedShard *shard)
{
	rte->relid = shard->relid;
	rte->relkind = OidIsValid(shard->serverid) ? RELKIND_FOREIGN_TABLE : RELKIND_RELATION;
	rte->inh = false;
	rte->requiredPerms = 0;
}

void
InitShardTaskList(ShardTaskList *list, const CachedTable *table)
{
	memset(list, 0, sizeof(*list));
	list->tasks = (executor::ShardTask *) palloc0(sizeof(executor::ShardTask) * table->shard_count);
}

namespace
{

/* A shard locked for a statement was dropped before the lock came. */
[[noreturn]] void
RelationGone(Oid relid)
{
	ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
}

/*
 * The plan's range table entry of shard, locked in lockmode: a flat copy of rte (the distributed
 * table's) sharing its names, as PostgreSQL's own flattened range table does, not a deep copy
 * per shard.
 */
RangeTblEntry *
ShardRte(ShardTaskList *list, const RangeTblEntry *rte, const CachedShard *shard, LOCKMODE lockmode)
{
	LockRelationOid(shard->relid, lockmode);
	RangeTblEntry *shard_rte = (RangeTblEntry *) palloc(sizeof(RangeTblEntry));
	memcpy(shard_rte, rte, sizeof(RangeTblEntry));
	PointRteAtShard(shard_rte, shard);
	shard_rte->tablesample = NULL;
	shard_rte->securityQuals = NIL;
	list->shard_rtes = lappend(list->shard_rtes, shard_rte);
	return shard_rte;
}

} // namespace

void
PointQueryAtShard(ShardTaskList *list, Query *shard_query, Index rti, const CachedShard *shard, LOCKMODE lockmode)
{
	RangeTblEntry *rte = rt_fetch(rti, shard_query->rtable);
	RangeTblEntry *shard_rte = ShardRte(list, rte, shard, lockmode);
	rte->relid = shard_rte->relid;
	rte->relkind = shard_rte->relkind;
	rte->inh = false;
	rte->requiredPerms = 0;
}

bool
AddNamedShardTask(ShardTaskList *list, Query *query, const JoinedTables *joined, int index, LOCKMODE lockmode)
{
	const CachedShard *shard = &joined->tables[0]->shards[index];
	if (list->model_state != 2 || !OidIsValid(shard->serverid))
		return false;
	const char **names = (const char **) palloc(sizeof(char *) * joined->count);
	for (int k = 0; k < joined->count; k++)
	{
		const CachedShard *joined_shard = &joined->tables[k]->shards[index];
		const RangeTblEntry *rte = rt_fetch(joined->rtis[k], query->rtable);
		(void) ShardRte(list, rte, joined_shard, k == 0 ? lockmode : rte->rellockmode);
		names[k] = catalog::ShardQuotedName(joined_shard);
		if (names[k] == NULL)
			RelationGone(joined_shard->relid);
	}
	executor::ShardTask *task = &list->tasks[list->task_count++];
	task->shard = shard;
	task->sql = SpliceShardNames(list, names);
	pfree(names);
	return true;
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

List *
PointJoinedTablesAtShards(ShardTaskList *list, Query *shard_query, const JoinedTables *joined, int index, int first,
                          List *shard_relids)
{
	for (int k = first; k < joined->count; k++)
	{
		const CachedShard *shard = &joined->tables[k]->shards[index];
		/* The task's copy still has the distributed table's lock mode. */
		PointQueryAtShard(list, shard_query, joined->rtis[k], shard,
		                  rt_fetch(joined->rtis[k], shard_query->rtable)->rellockmode);
		shard_relids = lappend_oid(shard_relids, shard->relid);
	}
	return shard_relids;
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

namespace
{

/* relid's name as the deparser prints it: locked, but it may have been dropped before the lock came. */
const char *
QuotedName(Oid relid)
{
	char *name = get_rel_name(relid);
	if (name == NULL)
		RelationGone(relid);
	return quote_identifier(name);
}

/* names (a List of C strings) as an array, NULL-terminated. */
const char **
NameArray(List *names)
{
	const char **array = (const char **) palloc0(sizeof(char *) * (list_length(names) + 1));
	for (int i = 0; i < list_length(names); i++)
		array[i] = (const char *) list_nth(names, i);
	return array;
}

/* Where the checked model's names are: the further shards' statements are spliced from them. */
void
FindModelPlaces(ShardTaskList *list)
{
	const char **from = NameArray(list->model_names);
	int count = list_length(list->model_names);
	int places = core::FindNames(list->model_sql, from, count, NULL, 0);
	list->model_places = (core::NamePlace *) palloc(sizeof(core::NamePlace) * Max(places, 1));
	list->model_place_count = core::FindNames(list->model_sql, from, count, list->model_places, places);
}

} // namespace

List *
QuotedNames(List *relids)
{
	List *names = NIL;
	ListCell *cell;
	foreach (cell, relids)
		names = lappend(names, (void *) QuotedName(lfirst_oid(cell)));
	return names;
}

char *
ReplaceShardNames(const char *model, List *from, List *to)
{
	const char **from_names = NameArray(from);
	const char **to_names = NameArray(to);
	int count = list_length(from);
	size_t length = core::ReplaceNames(model, from_names, to_names, count, NULL, 0);
	char *sql = (char *) palloc(length + 1);
	(void) core::ReplaceNames(model, from_names, to_names, count, sql, length + 1);
	return sql;
}

char *
SpliceShardNames(const ShardTaskList *list, const char *const *names)
{
	size_t length = core::SpliceNames(list->model_sql, list->model_places, list->model_place_count, names, NULL, 0);
	char *sql = (char *) palloc(length + 1);
	(void) core::SpliceNames(list->model_sql, list->model_places, list->model_place_count, names, sql, length + 1);
	return sql;
}

/*
 * A foreign shard's statement differs from another shard's of the same query only in the
 * shards' names: deparsing it for each of 1024 shards took most of the planning. The first
 * statement is a model; the second is deparsed too and must equal the model with the names
 * replaced (or every shard is deparsed, as before); the others are the model with their names.
 */
bool
ShipOrPlanShardTask(ShardTaskList *list, executor::ShardTask *task, Query *shard_query, List *shard_relids,
                    int cursor_options, ParamListInfo bound_params)
{
	if (OidIsValid(task->shard->serverid))
	{
		List *relids = shard_relids != NIL ? shard_relids : list_make1_oid(task->shard->relid);
		if (list->model_state == 2)
		{
			task->sql = SpliceShardNames(list, NameArray(QuotedNames(relids)));
			return true;
		}
		if (!ShipShardTask(shard_query, task, &list->params, shard_relids))
			return false;
		if (list->model_state == 0)
		{
			list->model_sql = task->sql;
			list->model_names = QuotedNames(relids);
			list->model_state = 1;
		}
		else if (list->model_state == 1)
		{
			List *names = QuotedNames(relids);
			bool same = list_length(names) == list_length(list->model_names) &&
			            strcmp(ReplaceShardNames(list->model_sql, list->model_names, names), task->sql) == 0;
			list->model_state = same ? 2 : -1;
			if (same)
				FindModelPlaces(list);
			if (!same)
				elog(DEBUG2, "fdwshard: shard statements differ by more than names, deparsing each");
		}
		return true;
	}
	task->local_plan = PlanOrdinary(shard_query, NULL, cursor_options, bound_params, false);
	return true;
}

int
DistributionColumnOf(const JoinedTables *joined, Node *node)
{
	if (node == NULL || !IsA(node, Var) || ((Var *) node)->varlevelsup != 0)
		return -1;
	Var *var = (Var *) node;
	int k = JoinedTableOf(joined, var->varno);
	return k >= 0 && var->varattno == joined->tables[k]->dist_attnum ? k : -1;
}

bool
CollectJoinedTables(Query *parse, JoinedTables *joined)
{
	joined->count = 0;
	List *conjuncts = NIL;
	ListCell *cell;
	foreach (cell, parse->jointree->fromlist)
		if (!CollectFromItem(parse, (Node *) lfirst(cell), joined, &conjuncts))
			return false;
	/* Every relation of the range table is one of them (the rest are the joins'). */
	int relations = 0;
	foreach (cell, parse->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind == RTE_RELATION)
			relations++;
		else if (rte->rtekind != RTE_JOIN)
			return false;
	}
	if (joined->count == 0 || relations != joined->count)
		return false;
	if (joined->count == 1)
		return true;
	if (parse->jointree->quals != NULL)
		conjuncts = list_concat(conjuncts, make_ands_implicit((Expr *) parse->jointree->quals));
	return JoinedOnDistributionColumns(joined, conjuncts);
}

bool *
ShardIndexesToRun(Query *parse, const JoinedTables *joined, bool local_only)
{
	const CachedTable *table = joined->tables[0];
	bool *keep = ShardIndexesToKeep(parse, joined);
	if (!local_only && !planner::KeepsForeignShard(table, keep))
		return NULL;
	for (int i = 0; i < table->shard_count; i++)
		for (int k = 0; keep[i] && k < joined->count; k++)
		{
			const CachedShard *shard = &joined->tables[k]->shards[i];
			if (!catalog::ShardSameAttnos(joined->tables[k], i) || shard->nodeid != table->shards[i].nodeid ||
			    shard->serverid != table->shards[i].serverid)
			{
				elog(DEBUG2, "fdwshard: shards of index %d are not on one node, planning the ordinary way", i);
				return NULL;
			}
		}
	return keep;
}

RangeTblEntry *
ShardRowsRte(List *names, List *exprs)
{
	RangeTblFunction *function = makeNode(RangeTblFunction);
	ListCell *cell;
	foreach (cell, exprs)
	{
		Node *expr = (Node *) lfirst(cell);
		function->funccoltypes = lappend_oid(function->funccoltypes, exprType(expr));
		function->funccoltypmods = lappend_int(function->funccoltypmods, exprTypmod(expr));
		function->funccolcollations = lappend_oid(function->funccolcollations, exprCollation(expr));
	}
	/* Any function returning SETOF record: its scan is always replaced, never run. */
	FuncExpr *call =
	    makeFuncExpr(F_JSON_TO_RECORDSET, RECORDOID,
	                 list_make1(makeConst(JSONOID, -1, InvalidOid, -1, CStringGetTextDatum("[]"), false, false)),
	                 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	call->funcretset = true;
	function->funcexpr = (Node *) call;
	function->funccolcount = list_length(names);
	function->funccolnames = names;

	RangeTblEntry *rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_FUNCTION;
	rte->functions = list_make1(function);
	rte->eref = makeAlias("partials", names);
	rte->inFromCl = true;
	return rte;
}

PlannedStmt *
PlanOverShardRows(Query *parse, const JoinedTables *joined, const bool *keep, Query *coordinator, Query *worker,
                  List *names, List *exprs, executor::ShardRowsKind kind, const char *per_shard,
                  const char *query_string, int cursor_options, ParamListInfo bound_params)
{
	const CachedTable *table = joined->tables[0];
	RangeTblEntry *shard_rows = ShardRowsRte(names, exprs);
	if (kind == executor::ShardRowsKind::kSelect)
		shard_rows->eref->aliasname = pstrdup("shard_rows");
	coordinator->rtable = list_make1(shard_rows);
	coordinator->jointree = makeFromExpr(list_make1(makeNode(RangeTblRef)), NULL);
	((RangeTblRef *) linitial(coordinator->jointree->fromlist))->rtindex = kShardRowsRti;

	planner::ShardTaskList list;
	planner::InitShardTaskList(&list, table);
	for (int i = 0; i < table->shard_count; i++)
	{
		if (!keep[i])
			continue;
		const CachedShard *shard = &table->shards[i];
		LOCKMODE lockmode = rt_fetch(joined->rtis[0], parse->rtable)->rellockmode;
		if (AddNamedShardTask(&list, worker, joined, i, lockmode))
			continue;
		Query *shard_query;
		executor::ShardTask *task =
		    planner::AddShardTask(&list, worker, joined->rtis[0], shard, lockmode, &shard_query);
		List *shard_relids = PointJoinedTablesAtShards(&list, shard_query, joined, i, 1, list_make1_oid(shard->relid));
		if (!ShipOrPlanShardTask(&list, task, shard_query, shard_relids, cursor_options & ~CURSOR_OPT_PARALLEL_OK,
		                         bound_params))
			return NULL;
	}

	PlannedStmt *stmt =
	    PlanOrdinary(coordinator, query_string, cursor_options & ~CURSOR_OPT_PARALLEL_OK, bound_params, false);
	if (stmt->subplans != NIL || ReplacePartialsScan(&stmt->planTree, list.tasks, list.task_count, &list.params, kind,
	                                                 per_shard, CombineOf(&list, worker, joined)) != 1)
	{
		elog(DEBUG2, "fdwshard: unexpected plan over the shards' rows, planning the ordinary way");
		return NULL;
	}
	bool whole = kind == executor::ShardRowsKind::kWholeAggregates;
	if (kind == executor::ShardRowsKind::kSelect)
		elog(DEBUG1, "fdwshard: SELECT runs on each of %d shard index(es): %s", list.task_count, per_shard);
	else if (joined->count > 1)
		elog(DEBUG1, "fdwshard: join of %d co-located tables%s runs on each of %d shard index(es)%s", joined->count,
		     whole ? " grouped by the distribution column" : "", list.task_count,
		     whole ? "" : ", aggregates combined on the coordinator");
	else if (whole)
		elog(DEBUG1, "fdwshard: %s grouped by its distribution column, the query runs whole on each of %d shard(s)",
		     get_rel_name(table->relid), list.task_count);
	else
		elog(DEBUG1, "fdwshard: aggregates of %s computed on each of %d shard(s), combined on the coordinator",
		     get_rel_name(table->relid), list.task_count);

	/*
	 * Permissions are checked, and locks taken, on the distributed tables; the shards are locked
	 * too. The tables keep inh: nothing scans them, and EXPLAIN does not take the plan for one
	 * the router made against shards (those leave it without).
	 */
	ListCell *cell;
	for (int k = 0; k < joined->count; k++)
	{
		stmt->rtable = lappend(stmt->rtable, copyObject(rt_fetch(joined->rtis[k], parse->rtable)));
		stmt->relationOids = lappend_oid(stmt->relationOids, joined->tables[k]->relid);
	}
	stmt->rtable = list_concat(stmt->rtable, list.shard_rtes);
	foreach (cell, list.shard_rtes)
		stmt->relationOids = lappend_oid(stmt->relationOids, ((RangeTblEntry *) lfirst(cell))->relid);
	executor::AddShardTaskDependencies(stmt, list.tasks, list.task_count);
	return stmt;
}

} // namespace fdwshard::planner
