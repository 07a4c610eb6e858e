/* Whether the statement being executed is certainly the client's whole transaction. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::transaction
{

/*
 * True when the statement being executed by estate is certainly the client's entire transaction:
 * the only statement of an implicit transaction, run by the top-level portal (not a function, DO
 * block or multi-statement query string), and not part of an extended-protocol pipeline (the
 * statements before one Sync form one transaction). Then nothing else in the transaction can read
 * or write on the worker, so the worker may run it as its own transaction. When in doubt: false.
 */
bool IsWholeTransaction(EState *estate);

/* Remembers which statement stands for the top-level portal's generic plan (see IsWholeTransaction). */
void NoteSwappedPlan(PlannedStmt *marker, PlannedStmt *plan);

} // namespace fdwshard::transaction
