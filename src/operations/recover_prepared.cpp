/* fdwshard_recover_prepared_transactions(): one recovery pass on demand (transaction/recovery.h). */
#include "fdwshard/guard.h"
#include "fdwshard/transaction/recovery.h"

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_recover_prepared_transactions);

	/*
	 * fdwshard_recover_prepared_transactions() RETURNS int: how many prepared transactions it
	 * resolved. Runs in the caller's transaction, as the caller (with their user mappings).
	 */
	Datum fdwshard_recover_prepared_transactions(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry([&]() -> Datum
		                           { PG_RETURN_INT32(fdwshard::transaction::RecoverPreparedTransactions()); });
	}
}
