/* Recovery of prepared transactions this coordinator left on workers (two-phase commit). */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::transaction
{

/*
 * One recovery pass in the current database, inside the caller's transaction: for every worker
 * node, each prepared transaction this coordinator and database made there and whose local
 * transaction is no longer in progress is committed (its commit decision was logged) or rolled
 * back (it was not), and decision-log rows nobody needs any more are deleted. Returns how many
 * prepared transactions it resolved. Nodes that cannot be reached are skipped with a WARNING.
 */
int RecoverPreparedTransactions(void);

} // namespace fdwshard::transaction
