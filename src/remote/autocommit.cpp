/*
 * One-round-trip execution of statements that are a whole transaction (see remote/autocommit.h).
 * postgres_fdw opens a remote transaction before the first statement and commits it at the end:
 * three round trips for a one-statement transaction. When the client's transaction is that one
 * statement, the worker may run it in its own implicit transaction instead, with the same outcome.
 */
#include "fdwshard/remote/autocommit.h"

#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/own_connection.h"
#include "fdwshard/remote/prepared_statements.h"

namespace fdwshard::remote
{

PGresult *
ExecuteAutocommit(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values)
{
	OwnConnection *connection = GetOwnConnection(serverid, 0, true);
	if (connection == NULL)
		ereport(ERROR,
		        (errcode(ERRCODE_INTERNAL_ERROR), errmsg("fdwshard's connection to server %u is in use", serverid)));
	bool needs_prepare = false;
	const char *name =
	    nparams > 0 ? PreparedName(connection, sql, nparams, types, PrepareOn::kFirstUse, &needs_prepare) : NULL;
	PGconn *conn = connection->conn;

	elog(DEBUG2, "fdwshard: on server %u as its own transaction: %s", serverid, sql);
	connection->in_flight = true;
	if (needs_prepare)
	{
		/* A first use: its PREPARE and its execution in one round trip (a new session meets every shard so). */
		if (!PQenterPipelineMode(conn) || !PQsendPrepare(conn, name, sql, nparams, types) ||
		    !PQsendQueryPrepared(conn, name, nparams, values, NULL, NULL, 0) || !PQpipelineSync(conn))
			ReportRemoteError(NULL, conn, sql);
		return WaitForOwnPipeline(connection, sql);
	}
	int sent = name != NULL ? PQsendQueryPrepared(conn, name, nparams, values, NULL, NULL, 0)
	                        : PQsendQueryParams(conn, sql, nparams, types, values, NULL, NULL, 0);
	if (!sent)
		ReportRemoteError(NULL, conn, sql);
	return WaitForOwnSuccess(connection, sql);
}

} // namespace fdwshard::remote
