/*
 * INSERT into a distributed table that the router does not pin (see planner/distributed_insert.h).
 * PostgreSQL's insert into the partitioned table sends a foreign shard one row per round trip and
 * cannot take ON CONFLICT (the shard keys exist only on the shards). Here the rows are computed on
 * the coordinator, once each, as on one server: the INSERT's source with its rewritten target list
 * (defaults, nextval, coercions) becomes a SELECT of every column, planned by fdwshard's planner;
 * the executor (executor/distributed_insert.cpp) sends each row to its shard.
 */
#include "fdwshard/planner/distributed_insert.h"

#include "fdwshard/commands/shard_keys.h"

#include "fdwshard/executor/distributed_insert.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/planner/shard_query.h"
#include "fdwshard/planner/ship.h"
#include "fdwshard/planner/tree_walk.h"

extern "C"
{
#include "utils/rls.h"
}

namespace fdwshard::distributed_insert
{

using catalog::CachedShard;
using catalog::CachedTable;

namespace
{

/* Rows per shard statement when ON CONFLICT or RETURNING keeps COPY out. */
constexpr int kBatchRows = 1000;

/* The range table index of the source in the shard statements' template: VALUES after the target. */
constexpr Index kValuesRti = 2;

/*
 * Every column of rel in attribute order: the INSERT's expression, or NULL as the planner's
 * expand_insert_targetlist makes it (through the domain's checks), a null int4 for dropped ones.
 */
List *
AllColumnsTargetList(List *insert_tlist, Relation rel)
{
	TupleDesc desc = RelationGetDescr(rel);
	List *tlist = NIL;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Expr *expr = NULL;
		ListCell *cell;
		foreach (cell, insert_tlist)
		{
			TargetEntry *entry = (TargetEntry *) lfirst(cell);
			if (!entry->resjunk && entry->resno == att->attnum)
				expr = (Expr *) copyObject(entry->expr);
		}
		if (expr == NULL && att->attisdropped)
			expr = (Expr *) makeNullConst(INT4OID, -1, InvalidOid);
		else if (expr == NULL)
		{
			Node *null =
			    (Node *) makeConst(att->atttypid, -1, att->attcollation, att->attlen, (Datum) 0, true, att->attbyval);
			expr = (Expr *) coerce_to_domain(null, InvalidOid, -1, att->atttypid, COERCION_IMPLICIT,
			                                 COERCE_IMPLICIT_CAST, -1, false);
		}
		tlist =
		    lappend(tlist, makeTargetEntry(expr, att->attnum,
		                                   pstrdup(att->attisdropped ? "?dropped?" : NameStr(att->attname)), false));
	}
	return tlist;
}

/*
 * The SELECT whose rows parse inserts: its source (range table entry source, or none) with every
 * column's expression, without the target and EXCLUDED entries.
 */
Query *
SourceQuery(Query *parse, Relation rel, Index source)
{
	/*
	 * The source entry (maybe thousands of rows of VALUES) is parse's own, not a copy: parse is
	 * planned no other way once the statement is ours, and the planner scribbles on its input anyway.
	 */
	Query without_source = *parse;
	without_source.rtable = NIL;
	without_source.jointree = NULL;
	without_source.targetList = NIL;
	without_source.onConflict = NULL;
	without_source.returningList = NIL;
	Query *select = (Query *) copyObject(&without_source);
	select->commandType = CMD_SELECT;
	select->resultRelation = 0;
	select->canSetTag = true;
	select->jointree = (FromExpr *) copyObject(parse->jointree);
	select->targetList = AllColumnsTargetList(parse->targetList, rel);
	if (source == 0)
		return select;
	RangeTblEntry *from = rt_fetch(source, parse->rtable);
	/* The INSERT's "*SELECT*" is not in its FROM; in the SELECT it is (else a shard's deparsed SQL drops it). */
	from->inFromCl = true;
	select->rtable = list_make1(from);
	ChangeVarNodes((Node *) select, source, 1, 0);
	return select;
}

bool
PointAtOuterWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) && ((Var *) node)->varlevelsup == 0 && ((Var *) node)->varno == *(int *) context)
		((Var *) node)->varno = OUTER_VAR;
	return expression_tree_walker(node, WalkerFn(PointAtOuterWalker), context);
}

/*
 * INSERT ... SELECT: the SELECT itself is the source, planned as the user wrote it (so a
 * distributed SELECT gets fdwshard's multi-shard paths, which a subquery in FROM would not), and
 * every column's expression (defaults, nextval, coercions) is a projection of its rows on the
 * coordinator; NIL when the INSERT's expressions need their query level (sublinks, a WITH of the INSERT).
 */
List *
SelectProjection(Query *parse, Relation rel, Index source)
{
	if (source == 0 || rt_fetch(source, parse->rtable)->rtekind != RTE_SUBQUERY || parse->cteList != NIL ||
	    checkExprHasSubLink((Node *) parse->targetList))
		return NIL;
	List *tlist = AllColumnsTargetList(parse->targetList, rel);
	int varno = (int) source;
	(void) PointAtOuterWalker((Node *) tlist, &varno);
	return (List *) expression_planner((Expr *) tlist);
}

/* Whether some row of the statement goes to a foreign shard: else PostgreSQL's own insert is as good. */
bool
HasForeignShard(const CachedTable *table)
{
	for (int i = 0; i < table->shard_count; i++)
		if (OidIsValid(table->shards[i].serverid))
			return true;
	return false;
}

/*
 * INSERT INTO <target> (every column) VALUES <none yet> ON CONFLICT ... RETURNING ...: parse
 * with its source replaced by an empty VALUES entry of the table's column types, which the
 * executor fills with one shard's rows as constants.
 */
Query *
ShardStatementTemplate(Query *parse, Relation rel)
{
	TupleDesc desc = RelationGetDescr(rel);
	/* Everything but the source, which may be thousands of rows: copied without it. */
	Query without_source = *parse;
	without_source.rtable = NIL;
	without_source.jointree = NULL;
	without_source.targetList = NIL;
	without_source.cteList = NIL;
	Query *shard_query = (Query *) copyObject(&without_source);
	RangeTblEntry *values = makeNode(RangeTblEntry);
	List *names = NIL;
	List *tlist = NIL;
	int column = 0;

	values->rtekind = RTE_VALUES;
	values->inFromCl = true;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped)
			continue;
		column++;
		values->coltypes = lappend_oid(values->coltypes, att->atttypid);
		values->coltypmods = lappend_int(values->coltypmods, att->atttypmod);
		values->colcollations = lappend_oid(values->colcollations, att->attcollation);
		names = lappend(names, makeString(psprintf("column%d", column)));
		tlist = lappend(tlist, makeTargetEntry((Expr *) makeVar(kValuesRti, column, att->atttypid, att->atttypmod,
		                                                        att->attcollation, 0),
		                                       att->attnum, pstrdup(NameStr(att->attname)), false));
	}
	values->eref = makeAlias("*VALUES*", names);

	List *rtable = list_make2(copyObject(linitial(parse->rtable)), values);
	OnConflictExpr *on_conflict = shard_query->onConflict;
	if (on_conflict != NULL && on_conflict->exclRelIndex > 0)
	{
		Index excluded = (Index) list_length(rtable) + 1;
		rtable = lappend(rtable, copyObject(rt_fetch(on_conflict->exclRelIndex, parse->rtable)));
		if ((Index) on_conflict->exclRelIndex != excluded)
			ChangeVarNodes((Node *) on_conflict, on_conflict->exclRelIndex, excluded, 0);
		on_conflict->exclRelIndex = excluded;
	}
	shard_query->rtable = rtable;
	RangeTblRef *values_ref = makeNode(RangeTblRef);
	values_ref->rtindex = kValuesRti;
	shard_query->jointree = makeFromExpr(list_make1(values_ref), NULL);
	shard_query->targetList = tlist;
	shard_query->hasSubLinks = false;
	shard_query->hasTargetSRFs = false;
	shard_query->rowMarks = NIL;
	return shard_query;
}

/* ON CONFLICT DO UPDATE that sets the distribution column would leave the row in the wrong shard. */
bool
UpdatesDistributionColumn(OnConflictExpr *on_conflict, const CachedTable *table)
{
	if (on_conflict == NULL || on_conflict->action != ONCONFLICT_UPDATE)
		return false;
	ListCell *cell;
	foreach (cell, on_conflict->onConflictSet)
		if (((TargetEntry *) lfirst(cell))->resno == table->dist_attnum)
			return true;
	return false;
}

/* The generic plan of a routed SELECT is a marker our ExecutorStart replaces: it cannot sit under another node. */
bool
IsDeferredMarker(Plan *plan)
{
	return IsA(plan, CustomScan) && strcmp(((CustomScan *) plan)->methods->CustomName, "FdwShard Deferred Router") == 0;
}

/* Whether the source's plan reads foreign tables: those share the workers' connections with the writes. */
bool
ReadsForeignTables(PlannedStmt *source)
{
	ListCell *cell;
	foreach (cell, source->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_FOREIGN_TABLE)
			return true;
	}
	return false;
}

} // namespace

void
PointInsertAtShard(Query *shard_query, const CachedShard *shard)
{
	RangeTblEntry *target = rt_fetch(1, shard_query->rtable);
	planner::PointRteAtShard(target, shard);
	target->checkAsUser = InvalidOid;
	target->selectedCols = NULL;
	target->insertedCols = NULL;
	target->updatedCols = NULL;
	PrepareShardOnConflict(shard_query, shard);
}

void
PrepareShardOnConflict(Query *shard_query, const CachedShard *shard)
{
	OnConflictExpr *on_conflict = shard_query->onConflict;
	if (on_conflict == NULL)
		return;
	/* EXCLUDED is a row of the target: of the shard now (as the router points it). */
	if (on_conflict->exclRelIndex > 0)
		rt_fetch(on_conflict->exclRelIndex, shard_query->rtable)->relid = shard->relid;
	/* ON CONSTRAINT name: the shard's own key (local) or the key's columns (foreign). */
	commands::PointArbiterAtShard(shard_query, shard);
}

PlannedStmt *
PlanInsert(Query *parse, const char *query_string, int cursor_options, ParamListInfo bound_params)
{
	if (parse->commandType != CMD_INSERT || parse->resultRelation != 1 || parse->hasModifyingCTE ||
	    parse->withCheckOptions != NIL || (cursor_options & CURSOR_OPT_SCROLL))
		return NULL;
	RangeTblEntry *target = rt_fetch(1, parse->rtable);
	if (target->rtekind != RTE_RELATION || target->relkind != RELKIND_PARTITIONED_TABLE)
		return NULL;
	const CachedTable *table = catalog::LookupDistributedTable(target->relid);
	if (table == NULL || !table->is_distributed || table->has_row_triggers || table->has_stmt_triggers)
		return NULL;

	/* The source: one VALUES or subquery entry (or none: one row of expressions); EXCLUDED aside. */
	OnConflictExpr *on_conflict = parse->onConflict;
	Index excluded = on_conflict != NULL ? on_conflict->exclRelIndex : 0;
	Index source = 0;
	for (Index rti = 2; rti <= (Index) list_length(parse->rtable); rti++)
	{
		RangeTblEntry *rte = rt_fetch(rti, parse->rtable);
		if (rti == excluded)
			continue;
		if (source != 0 || (rte->rtekind != RTE_VALUES && rte->rtekind != RTE_SUBQUERY))
			return NULL;
		source = rti;
	}
	if (list_length(parse->jointree->fromlist) != (source != 0 ? 1 : 0) || parse->jointree->quals != NULL)
		return NULL;

	bool statements = on_conflict != NULL || parse->returningList != NIL;
	/* Only local shards and nothing PostgreSQL's insert cannot do: its tuple routing is as fast. */
	if (!statements && !HasForeignShard(table))
		return NULL;
	if (statements)
	{
		if (UpdatesDistributionColumn(on_conflict, table) || checkExprHasSubLink((Node *) parse->returningList) ||
		    checkExprHasSubLink((Node *) on_conflict))
			return NULL;
		for (int i = 0; i < table->shard_count; i++)
			if (!catalog::ShardSameAttnos(table, i))
				return NULL;
	}

	/* The parser holds the target's lock. */
	Relation rel = relation_open(target->relid, NoLock);
	TupleDesc desc = RelationGetDescr(rel);
	if ((desc->constr != NULL && desc->constr->has_generated_stored) || rel->rd_rel->relrowsecurity)
	{
		relation_close(rel, NoLock);
		return NULL;
	}

	executor::DistributedInsertPlan plan;
	memset(&plan, 0, sizeof(plan));
	plan.relid = table->relid;
	if (statements)
	{
		plan.local_template = ShardStatementTemplate(parse, rel);
		for (int i = 0; i < table->shard_count && plan.shipped_template == NULL; i++)
		{
			const CachedShard *shard = &table->shards[i];
			if (!OidIsValid(shard->serverid))
				continue;
			Query *probe = (Query *) copyObject(plan.local_template);
			PointInsertAtShard(probe, shard);
			plan.shipped_template = ship::ShipQueryTree(probe, list_make1_oid(shard->relid), &plan.params);
			if (plan.shipped_template == NULL)
			{
				relation_close(rel, NoLock);
				return NULL;
			}
		}
		/* ON CONFLICT DO UPDATE must see the shard's earlier rows of this statement: one statement per shard. */
		plan.batch_rows = on_conflict != NULL && on_conflict->action == ONCONFLICT_UPDATE ? 0 : kBatchRows;
	}

	plan.projection = SelectProjection(parse, rel, source);
	Query *select =
	    plan.projection != NIL ? rt_fetch(source, parse->rtable)->subquery : SourceQuery(parse, rel, source);
	relation_close(rel, NoLock);
	int source_options = cursor_options & ~CURSOR_OPT_PARALLEL_OK;
	/* Only a source that reads tables can be routed by a parameter (and need a second plan): not VALUES alone. */
	bool values_only = list_length(select->rtable) == 1 && rt_fetch(1, select->rtable)->rtekind == RTE_VALUES;
	bool reads_tables = select->hasSubLinks || (select->rtable != NIL && !values_only);
	Query *select_copy = reads_tables ? (Query *) copyObject(select) : NULL;
	plan.source = ::planner(select, query_string, source_options, bound_params);
	if (select_copy != NULL && IsDeferredMarker(plan.source->planTree))
		plan.source = PlanOrdinary(select_copy, query_string, source_options, bound_params, true);
	plan.materialize = ReadsForeignTables(plan.source);

	elog(DEBUG1, "fdwshard: INSERT into %s computes its rows on the coordinator and writes them %s",
	     get_rel_name(table->relid),
	     !statements            ? "by COPY into each shard"
	     : plan.batch_rows == 0 ? "as one INSERT per shard"
	                            : "as one INSERT per shard and batch of rows");
	return executor::MakeDistributedInsertPlan(parse, &plan);
}

} // namespace fdwshard::distributed_insert
