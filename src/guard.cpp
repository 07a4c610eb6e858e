/* Raising errors caught by the C++/PostgreSQL guard (see guard.h). */
#include "fdwshard/guard.h"

namespace fdwshard::pg
{

void
RaiseCaught(ErrorData *edata, const char *message)
{
	if (edata != nullptr)
		ReThrowError(edata);
	ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("fdwshard: %s", message)));
	pg_unreachable();
}

} // namespace fdwshard::pg
