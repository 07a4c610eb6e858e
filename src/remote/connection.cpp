/* Remote commands through postgres_fdw's connection cache (see remote/connection.h). */
#include "fdwshard/remote/connection.h"

#include "fdwshard/remote/node_wait.h"
#include "fdwshard/transaction/remote_isolation.h"

/* postgres_fdw's exported connection API (contrib/postgres_fdw/postgres_fdw.h, PostgreSQL 15). */
extern "C"
{
	typedef struct PgFdwConnState PgFdwConnState;
	typedef PGconn *(*GetConnectionFn)(UserMapping *user, bool will_prep_stmt, PgFdwConnState **state);
	typedef PGresult *(*ExecQueryFn)(PGconn *conn, const char *query, PgFdwConnState *state);
	typedef void (*ReportErrorFn)(int elevel, PGresult *res, PGconn *conn, bool clear, const char *sql);
	typedef PGresult *(*GetResultFn)(PGconn *conn, const char *query);
	typedef int (*SetTransmissionModesFn)(void);
	typedef void (*ResetTransmissionModesFn)(int nestlevel);

	/* postgres_fdw.h, PostgreSQL 15: an async foreign scan may still await its result on the connection. */
	struct PgFdwConnState
	{
		void *pendingAreq;
	};
}

namespace fdwshard::remote
{

namespace
{

/* Resolved once per backend from postgres_fdw.so; never reset (the library stays loaded). */
GetConnectionFn get_connection = nullptr;
ExecQueryFn exec_query = nullptr;
ReportErrorFn report_error = nullptr;
GetResultFn get_result = nullptr;
SetTransmissionModesFn set_transmission_modes_fn = nullptr;
ResetTransmissionModesFn reset_transmission_modes_fn = nullptr;

void
LoadPostgresFdw()
{
	if (get_connection != nullptr)
		return;
	exec_query = (ExecQueryFn) load_external_function("$libdir/postgres_fdw", "pgfdw_exec_query", true, NULL);
	report_error = (ReportErrorFn) load_external_function("$libdir/postgres_fdw", "pgfdw_report_error", true, NULL);
	get_result = (GetResultFn) load_external_function("$libdir/postgres_fdw", "pgfdw_get_result", true, NULL);
	set_transmission_modes_fn =
	    (SetTransmissionModesFn) load_external_function("$libdir/postgres_fdw", "set_transmission_modes", true, NULL);
	reset_transmission_modes_fn = (ResetTransmissionModesFn) load_external_function(
	    "$libdir/postgres_fdw", "reset_transmission_modes", true, NULL);
	/* Set last: it marks the others as loaded. */
	get_connection = (GetConnectionFn) load_external_function("$libdir/postgres_fdw", "GetConnection", true, NULL);
}

/*
 * postgres_fdw's connection to serverid for userid, in the local transaction (START TRANSACTION
 * at its first use), noted for abort on a frozen worker and set to the local isolation level.
 * Connecting is bounded by fdwshard.connect_timeout (PGCONNECT_TIMEOUT, see node_wait.cpp) but,
 * in PostgreSQL 15, not interruptible.
 */
PGconn *
Connection(Oid serverid, Oid userid, PgFdwConnState **state)
{
	LoadPostgresFdw();
	UserMapping *mapping = GetUserMapping(userid, serverid);
	PGconn *conn = get_connection(mapping, false, state);
	NoteFdwConnection(conn);
	transaction::SettleRemoteIsolation(mapping, conn);
	return conn;
}

PGresult *
Run(Oid serverid, const char *sql, PGconn **conn_out)
{
	PgFdwConnState *state = NULL;
	NodeContext context;

	PushNodeContext(&context, serverid, "while waiting for");
	PGconn *conn = Connection(serverid, GetUserId(), &state);
	PGresult *result = exec_query(conn, sql, state);
	PopNodeContext(&context);
	ExecStatusType status = PQresultStatus(result);

	/* Only comments or semicolons: there is no statement, and no error for postgres_fdw to report. */
	if (status == PGRES_EMPTY_QUERY)
	{
		PQclear(result);
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("command contains no statement")));
	}
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		report_error(ERROR, result, conn, true, sql);
	*conn_out = conn;
	return result;
}

} // namespace

void
ExecuteOnServer(Oid serverid, const char *sql)
{
	PGconn *conn;

	elog(DEBUG2, "fdwshard: on server %u: %s", serverid, sql);
	PQclear(Run(serverid, sql, &conn));
}

char *
QueryOnServer(Oid serverid, const char *sql)
{
	PGconn *conn;
	PGresult *result = Run(serverid, sql, &conn);
	char *answer;

	if (PQresultStatus(result) == PGRES_TUPLES_OK)
		answer = (PQntuples(result) > 0 && PQnfields(result) > 0 && !PQgetisnull(result, 0, 0))
		             ? pstrdup(PQgetvalue(result, 0, 0))
		             : NULL;
	else
		answer = pstrdup(PQcmdStatus(result));
	PQclear(result);
	return answer;
}

PGconn *
SendParams(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values)
{
	PgFdwConnState *state = NULL;
	NodeContext context;

	PushNodeContext(&context, serverid, "while waiting for");
	PGconn *conn = Connection(serverid, GetUserId(), &state);
	/* Let a pending asynchronous foreign scan on this connection collect its result first. */
	if (state != NULL && state->pendingAreq != NULL)
		PQclear(exec_query(conn, "", state));

	elog(DEBUG2, "fdwshard: on server %u: %s", serverid, sql);
	if (!PQsendQueryParams(conn, sql, nparams, types, values, NULL, NULL, 0))
		report_error(ERROR, NULL, conn, false, sql);
	PopNodeContext(&context);
	return conn;
}

PGresult *
FinishParams(Oid serverid, PGconn *conn, const char *sql)
{
	NodeContext context;

	PushNodeContext(&context, serverid, "while waiting for");
	PGresult *result = get_result(conn, sql);
	PopNodeContext(&context);
	ExecStatusType status = PQresultStatus(result);
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		report_error(ERROR, result, conn, true, sql);
	return result;
}

PGresult *
ExecuteParams(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values)
{
	return FinishParams(serverid, SendParams(serverid, sql, nparams, types, values), sql);
}

void
ReportRemoteError(PGresult *result, PGconn *conn, const char *sql)
{
	LoadPostgresFdw();
	report_error(ERROR, result, conn, true, sql);
	pg_unreachable();
}

int
SetTransmissionModes(void)
{
	LoadPostgresFdw();
	return set_transmission_modes_fn();
}

void
ResetTransmissionModes(int nest_level)
{
	reset_transmission_modes_fn(nest_level);
}

void
SettleConnection(Oid serverid, Oid userid)
{
	PgFdwConnState *state = NULL;

	(void) Connection(serverid, userid, &state);
}

void
ExecuteOnConnection(PGconn *conn, const char *sql)
{
	LoadPostgresFdw();
	PGresult *result = exec_query(conn, sql, NULL);
	if (PQresultStatus(result) != PGRES_COMMAND_OK)
		report_error(ERROR, result, conn, true, sql);
	PQclear(result);
}

} // namespace fdwshard::remote
