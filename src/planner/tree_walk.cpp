/* Range table collection over a whole query tree (see planner/tree_walk.h). */
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard
{

namespace
{

bool
RelationRtesWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		ListCell *cell;
		foreach (cell, ((Query *) node)->rtable)
		{
			RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
			if (rte->rtekind == RTE_RELATION && rte->relkind != RELKIND_COMPOSITE_TYPE)
				*(List **) context = lappend(*(List **) context, copyObject(rte));
		}
		return query_tree_walker((Query *) node, WalkerFn(RelationRtesWalker), context, 0);
	}
	return expression_tree_walker(node, WalkerFn(RelationRtesWalker), context);
}

} // namespace

List *
RelationRtes(Query *query, bool nested_only)
{
	List *rtes = NIL;
	if (nested_only)
		(void) query_tree_walker(query, WalkerFn(RelationRtesWalker), &rtes, 0);
	else
		(void) RelationRtesWalker((Node *) query, &rtes);
	return rtes;
}

} // namespace fdwshard
