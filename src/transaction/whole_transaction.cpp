/*
 * Whether a statement is its client's whole transaction (see transaction/whole_transaction.h):
 * the one question the autocommit shortcut depends on, answered conservatively.
 */
#include "fdwshard/transaction/whole_transaction.h"

namespace fdwshard::transaction
{

namespace
{

/* Owned by this file; set by the ExecutorStart hook of deferred plans for the statement it swaps in. */
PlannedStmt *swapped_marker = NULL; /* last generic plan our ExecutorStart hook replaced ... */
PlannedStmt *swapped_plan = NULL;   /* ... and the plan it ran instead */

/*
 * True when portal runs a simple-protocol Query message: exec_simple_query's portals have no
 * cached plan, and SQL EXECUTE runs a portal of its own inside such a Query's unnamed portal.
 * A Query message outside a transaction block is one transaction, whatever follows it.
 */
bool
InSimpleQuery(Portal portal)
{
	if (portal->cplan == NULL)
		return portal->name[0] == '\0';
	Portal outer = GetPortalByName("");
	return outer != NULL && outer != portal && outer->status == PORTAL_ACTIVE && outer->cplan == NULL;
}

/*
 * Extended protocol: the statements up to the next Sync form one implicit transaction, and
 * PostgreSQL marks it as a pipeline (XACT_FLAGS_PIPELINING) only after the first Execute. The
 * first statement is alone only if the client's next message, already received, is Sync; when
 * nothing more has arrived yet, the client may still send more before Sync.
 */
bool
NextMessageIsSync(void)
{
	if (whereToSendOutput != DestRemote || pq_is_reading_msg() || !pq_buffer_has_data())
		return false;
	return pq_peekbyte() == 'S'; /* does not block: the byte is in the buffer */
}

} // namespace

bool
IsWholeTransaction(EState *estate)
{
	if (IsTransactionBlock() || IsSubTransaction() || (MyXactFlags & XACT_FLAGS_PIPELINING) || ActivePortal == NULL ||
	    list_length(ActivePortal->stmts) != 1)
		return false;
	PlannedStmt *top = (PlannedStmt *) linitial(ActivePortal->stmts);
	if (top != estate->es_plannedstmt && !(top == swapped_marker && estate->es_plannedstmt == swapped_plan))
		return false;
	return InSimpleQuery(ActivePortal) || NextMessageIsSync();
}

void
NoteSwappedPlan(PlannedStmt *marker, PlannedStmt *plan)
{
	swapped_marker = marker;
	swapped_plan = plan;
}

} // namespace fdwshard::transaction
