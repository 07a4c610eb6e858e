/* A statement that is its whole transaction runs on the worker in one round trip, without BEGIN/COMMIT. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/*
 * Runs sql on the worker of serverid as a transaction of its own, on a connection of fdwshard's
 * (not postgres_fdw's, which always wraps work in a remote transaction): shipped statements that
 * are a whole transaction, and commands such as VACUUM that cannot run in one. Statements with
 * parameters are prepared on the worker once per connection. Errors come back with the
 * worker's SQLSTATE. Returns the result; free with PQclear.
 */
PGresult *ExecuteAutocommit(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values);

} // namespace fdwshard::remote
