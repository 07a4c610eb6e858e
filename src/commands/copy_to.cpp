/*
 * COPY TO of a distributed table (see commands/copy_to.h). PostgreSQL refuses COPY TO of a
 * partitioned table and hints at COPY (SELECT ...) TO; it makes that same rewrite itself for a
 * table with row level security, and so does fdwshard for a distributed table.
 */
#include "fdwshard/commands/copy_to.h"

#include "fdwshard/catalog/metadata_cache.h"

namespace fdwshard::commands
{

bool
CopyFromDistributedTable(UtilityCall *call)
{
	CopyStmt *stmt = (CopyStmt *) call->pstmt->utilityStmt;
	if (stmt->is_from || stmt->relation == NULL)
		return false;
	Oid relid = RangeVarGetRelid(stmt->relation, AccessShareLock, true);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return false;
	const catalog::CachedTable *table = catalog::LookupDistributedTable(relid);
	if (table == NULL || !table->is_distributed)
		return false;

	/* SELECT columns FROM schema.table, as DoCopy builds it for row level security. */
	List *targets = NIL;
	ListCell *cell;
	if (stmt->attlist == NIL)
	{
		ColumnRef *star = makeNode(ColumnRef);
		star->fields = list_make1(makeNode(A_Star));
		star->location = -1;
		ResTarget *target = makeNode(ResTarget);
		target->val = (Node *) star;
		target->location = -1;
		targets = list_make1(target);
	}
	else
		foreach (cell, stmt->attlist)
		{
			ColumnRef *column = makeNode(ColumnRef);
			column->fields = list_make1(makeString(strVal(lfirst(cell))));
			column->location = -1;
			ResTarget *target = makeNode(ResTarget);
			target->val = (Node *) column;
			target->location = -1;
			targets = lappend(targets, target);
		}
	RangeVar *from = makeRangeVar(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid), -1);
	SelectStmt *select = makeNode(SelectStmt);
	select->targetList = targets;
	select->fromClause = list_make1(from);

	CopyStmt *rewritten = (CopyStmt *) copyObject(stmt);
	rewritten->relation = NULL;
	rewritten->attlist = NIL;
	rewritten->query = (Node *) select; /* DoCopy wraps it in a RawStmt */
	PlannedStmt *pstmt = (PlannedStmt *) copyObject(call->pstmt);
	pstmt->utilityStmt = (Node *) rewritten;
	UtilityCall rewritten_call = *call;
	rewritten_call.pstmt = pstmt;
	rewritten_call.read_only_tree = false;
	CallPreviousUtility(&rewritten_call);
	return true;
}

} // namespace fdwshard::commands
