/*
 * Co-located INSERT ... SELECT (see planner/insert_select.h). PostgreSQL's own plan inserts into
 * the partitioned table: every row comes to the coordinator, is routed there, and goes to its
 * foreign shard one round trip at a time. When target and source are co-located and the target's
 * distribution column gets the source's, a row of source shard i hashes into target shard i, on
 * the same node: each shard index runs the whole statement against its shards there (local
 * shards in process), and only row counts and RETURNING rows come back.
 */
#include "fdwshard/planner/insert_select.h"

#include "fdwshard/executor/multi_shard_modify.h"
#include "fdwshard/planner/multi_shard_select.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/planner/shard_query.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard::multi_shard
{

using catalog::CachedShard;
using catalog::CachedTable;
using planner::JoinedTables;

namespace
{

/*
 * The INSERT's target when this path may write it: a distributed table without triggers, row
 * security or stored generated columns (those would have to run on the coordinator); else NULL.
 */
const CachedTable *
InsertTarget(Query *parse)
{
	RangeTblEntry *rte = rt_fetch(parse->resultRelation, parse->rtable);
	if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_PARTITIONED_TABLE)
		return NULL;
	const CachedTable *table = catalog::LookupDistributedTable(rte->relid);
	if (table == NULL || table->has_row_triggers || table->has_stmt_triggers)
		return NULL;
	/* The parser holds a lock on the target. */
	Relation rel = relation_open(rte->relid, NoLock);
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	bool refused = rel->rd_rel->relrowsecurity || (constr != NULL && constr->has_generated_stored);
	relation_close(rel, NoLock);
	return refused ? NULL : table;
}

/* The range table index of the INSERT's SELECT (its only FROM item), or 0 for VALUES and the like. */
Index
SelectRti(Query *parse)
{
	FromExpr *from = parse->jointree;
	if (from == NULL || from->quals != NULL || list_length(from->fromlist) != 1 ||
	    !IsA(linitial(from->fromlist), RangeTblRef))
		return 0;
	Index rti = ((RangeTblRef *) linitial(from->fromlist))->rtindex;
	RangeTblEntry *rte = rt_fetch(rti, parse->rtable);
	return rte->rtekind == RTE_SUBQUERY && rte->subquery != NULL ? rti : 0;
}

/*
 * The statement's own shape: an INSERT whose range table is its target, its SELECT and ON
 * CONFLICT's EXCLUDED, with no CTE, subquery or set-returning function outside the SELECT, and
 * no ON CONFLICT DO UPDATE of the distribution column (the row would stay in the wrong shard)
 * nor ON CONSTRAINT (the shards' keys have their own names).
 */
bool
IsInsertSelect(Query *parse, const CachedTable *target)
{
	if (parse->commandType != CMD_INSERT || parse->utilityStmt != NULL || parse->cteList != NIL ||
	    parse->hasModifyingCTE || parse->hasSubLinks || parse->hasTargetSRFs || parse->hasRowSecurity ||
	    parse->withCheckOptions != NIL)
		return false;
	OnConflictExpr *on_conflict = parse->onConflict;
	int relations = on_conflict != NULL && on_conflict->exclRelIndex > 0 ? 3 : 2;
	if (list_length(parse->rtable) != relations)
		return false;
	if (on_conflict == NULL)
		return true;
	if (OidIsValid(on_conflict->constraint))
		return false;
	ListCell *cell;
	foreach (cell, on_conflict->onConflictSet)
		if (((TargetEntry *) lfirst(cell))->resno == target->dist_attnum)
			return false;
	return true;
}

/*
 * Moves the INSERT's own expressions (assignment casts, defaults of the columns left out) into
 * its SELECT list, so that the INSERT's list is the SELECT's columns in order: deparsed, an
 * INSERT ... SELECT prints the target columns' names and the SELECT, nothing of those
 * expressions, and the shard must not apply its own casts (a timestamptz to timestamp one
 * depends on the session's TimeZone). The SELECT has no grouping, DISTINCT or set operation, so
 * an expression of its columns means the same in its list. query is the caller's own copy.
 */
bool
PushInsertListIntoSelect(Query *query, Index select_rti)
{
	RangeTblEntry *select_rte = rt_fetch(select_rti, query->rtable);
	Query *select = select_rte->subquery;
	List *select_list = NIL;
	List *names = NIL;
	ListCell *cell;

	foreach (cell, query->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		if (entry->resjunk)
			return false;
		bool has_sublinks = false;
		Expr *expr = (Expr *) ReplaceVarsFromTargetList((Node *) entry->expr, select_rti, 0, select_rte,
		                                                select->targetList, REPLACEVARS_REPORT_ERROR, 0, &has_sublinks);
		if (has_sublinks)
			return false;
		AttrNumber resno = list_length(select_list) + 1;
		char *name = entry->resname != NULL ? pstrdup(entry->resname) : psprintf("column%d", resno);
		select_list = lappend(select_list, makeTargetEntry(expr, resno, name, false));
		names = lappend(names, makeString(name));
		entry->expr = (Expr *) makeVar(select_rti, resno, exprType((Node *) expr), exprTypmod((Node *) expr),
		                               exprCollation((Node *) expr), 0);
	}
	select->targetList = select_list;
	select_rte->eref->colnames = names;
	return true;
}

/*
 * Whether query uses a system column or a whole-row reference (they mean something else on a
 * shard), but for the whole-row entry of ON CONFLICT's list of EXCLUDED columns, which is always
 * there and only resolves a reference to EXCLUDED.* (itself a whole-row reference).
 */
bool
ReferencesSystemColumn(Query *query)
{
	OnConflictExpr *on_conflict = query->onConflict;
	List *excluded_columns = on_conflict != NULL ? on_conflict->exclRelTlist : NIL;
	if (on_conflict != NULL)
		on_conflict->exclRelTlist = NIL;
	bool references = planner::ReferencesSystemColumn(query);
	if (on_conflict != NULL)
		on_conflict->exclRelTlist = excluded_columns;
	return references;
}

bool
IsDeterministic(Oid collation)
{
	return !OidIsValid(collation) || get_collation_isdeterministic(collation);
}

/*
 * Whether query (after PushInsertListIntoSelect) gives target's distribution column the value of
 * a distribution column of joined, the SELECT's tables: a plain column, binary-compatible
 * relabels aside, hashed alike (the same co-location group, collations that do not change the
 * hash).
 */
bool
KeepsDistributionColumn(Query *query, Index select_rti, const CachedTable *target, const JoinedTables *joined)
{
	Query *select = rt_fetch(select_rti, query->rtable)->subquery;
	ListCell *cell;
	foreach (cell, query->targetList)
	{
		TargetEntry *entry = (TargetEntry *) lfirst(cell);
		if (entry->resno != target->dist_attnum)
			continue;
		Var *var = (Var *) entry->expr; /* a Var of the SELECT's column, PushInsertListIntoSelect made it */
		Node *value = (Node *) ((TargetEntry *) list_nth(select->targetList, var->varattno - 1))->expr;
		while (IsA(value, RelabelType))
			value = (Node *) ((RelabelType *) value)->arg;
		if (planner::DistributionColumnOf(joined, value) < 0)
			return false;
		Oid type;
		int32 typmod;
		Oid collation;
		get_atttypetypmodcoll(target->relid, target->dist_attnum, &type, &typmod, &collation);
		Oid source_collation = ((Var *) value)->varcollid;
		return collation == source_collation || (IsDeterministic(collation) && IsDeterministic(source_collation));
	}
	return false; /* the column gets its default, or NULL */
}

/* Whether every table of joined is co-located with target: shard i of each covers the same hashes. */
bool
ColocatedWith(const CachedTable *target, const JoinedTables *joined)
{
	for (int k = 0; k < joined->count; k++)
	{
		const CachedTable *table = joined->tables[k];
		if (table->colocationid != target->colocationid || table->shard_count != target->shard_count)
			return false;
		for (int i = 0; i < table->shard_count; i++)
			if (table->shards[i].min_hash != target->shards[i].min_hash ||
			    table->shards[i].max_hash != target->shards[i].max_hash)
				return false;
	}
	return true;
}

/* Whether target's shard of each index kept is where the source's shards of that index are, with the table's columns.
 */
bool
TargetShardsInPlace(const CachedTable *target, const JoinedTables *joined, const bool *keep)
{
	for (int i = 0; i < target->shard_count; i++)
	{
		const CachedShard *shard = &target->shards[i];
		const CachedShard *source = &joined->tables[0]->shards[i];
		if (keep[i] && (!catalog::ShardSameAttnos(target, i) || shard->nodeid != source->nodeid ||
		                shard->serverid != source->serverid))
			return false;
	}
	return true;
}

} // namespace

PlannedStmt *
PlanColocatedInsertSelect(Query *parse, int cursor_options, ParamListInfo bound_params)
{
	if (parse->commandType != CMD_INSERT)
		return NULL;
	const CachedTable *target = InsertTarget(parse);
	if (target == NULL || !IsInsertSelect(parse, target))
		return NULL;
	Index select_rti = SelectRti(parse);
	if (select_rti == 0)
		return NULL;
	Query *select = rt_fetch(select_rti, parse->rtable)->subquery;
	JoinedTables joined;
	if (!IsPlainSelect(select, 0) || select->sortClause != NIL || select->limitCount != NULL ||
	    select->limitOffset != NULL || !planner::CollectJoinedTables(select, &joined) ||
	    !ColocatedWith(target, &joined))
		return NULL;
	/*
	 * Only local shards too: PostgreSQL's plan of the partitioned table routes every row and
	 * cannot infer an ON CONFLICT arbiter (the keys are the shards').
	 */
	bool *keep = planner::ShardIndexesToRun(select, &joined, true);
	if (keep == NULL || !TargetShardsInPlace(target, &joined, keep))
		return NULL;
	/*
	 * Each shard evaluates its rows' expressions: nothing volatile (nextval() of serial or
	 * identity defaults, random()) may run there.
	 */
	if (contain_volatile_functions((Node *) parse))
		return NULL;

	Query *insert = (Query *) copyObject(parse);
	if (ReferencesSystemColumn(insert) || !PushInsertListIntoSelect(insert, select_rti) ||
	    !KeepsDistributionColumn(insert, select_rti, target, &joined))
		return NULL;

	RangeTblEntry *target_rte = rt_fetch(insert->resultRelation, insert->rtable);
	planner::ShardTaskList list;
	planner::InitShardTaskList(&list, target);
	for (int i = 0; i < target->shard_count; i++)
	{
		if (!keep[i])
			continue;
		const CachedShard *shard = &target->shards[i];
		Query *shard_query;
		executor::ShardTask *task =
		    planner::AddShardTask(&list, insert, insert->resultRelation, shard, target_rte->rellockmode, &shard_query);
		/* ON CONFLICT's EXCLUDED pseudo-relation describes the target's row: follow it. */
		if (shard_query->onConflict != NULL && shard_query->onConflict->exclRelIndex > 0)
			rt_fetch(shard_query->onConflict->exclRelIndex, shard_query->rtable)->relid = shard->relid;
		Query *shard_select = rt_fetch(select_rti, shard_query->rtable)->subquery;
		List *shard_relids =
		    planner::PointJoinedTablesAtShards(&list, shard_select, &joined, i, 0, list_make1_oid(shard->relid));
		if (!planner::ShipOrPlanShardTask(&list, task, shard_query, shard_relids, cursor_options, bound_params))
			return NULL;
	}

	elog(DEBUG1, "fdwshard: INSERT ... SELECT into %s runs on each of %d co-located shard index(es)",
	     get_rel_name(target->relid), list.task_count);
	/*
	 * Permissions are checked, and locks taken, on the distributed tables: the target (INSERT) and
	 * the SELECT's tables, whose entries are copied up from it; the shards are locked too.
	 */
	List *rtable = NIL;
	ListCell *cell;
	foreach (cell, parse->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) copyObject(lfirst(cell));
		if (rte->rtekind == RTE_SUBQUERY)
			rte->subquery = NULL; /* its relations follow; nothing plans or runs it here */
		rtable = lappend(rtable, rte);
	}
	rtable = list_concat(rtable, list.shard_rtes);
	rtable = list_concat(rtable, RelationRtes(parse, true));
	return executor::MakeColocatedInsertPlan(parse, rtable, list.tasks, list.task_count, &list.params);
}

} // namespace fdwshard::multi_shard
