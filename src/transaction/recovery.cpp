/* Recovery of prepared transactions (see transaction/recovery.h). */
#include "fdwshard/transaction/recovery.h"

namespace fdwshard::transaction
{

int
RecoverPreparedTransactions(void)
{
	/* Filled in with two-phase commit (issue 10). */
	return 0;
}

} // namespace fdwshard::transaction
