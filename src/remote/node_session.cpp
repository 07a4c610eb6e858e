/* Autocommit sessions on any node (see remote/node_session.h): own connections to workers, a loopback connection to the
 * coordinator. */
#include "fdwshard/remote/node_session.h"

#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/node_wait.h"
#include "fdwshard/remote/own_connection.h"

namespace fdwshard::remote
{

struct NodeSession
{
	int32 nodeid;
	Oid serverid; /* InvalidOid: the coordinator */
	char *host;
	int32 port;
	char *dbname;
};

namespace
{

/* The loopback connection: owned by this file, open from the first coordinator session until CloseNodeSessions. */
PGconn *loopback = NULL;

/*
 * Session settings of the loopback: qualified names only, and a lock wait that ends (a statement of
 * the loopback that waited for a lock this backend holds would otherwise wait forever).
 */
const char *const kLoopbackSetup = "SET search_path = pg_catalog; SET lock_timeout = '10s'; "
                                   "SET default_transaction_isolation = 'read committed'; "
                                   "SET client_min_messages = warning";

void
CloseLoopback(void)
{
	if (loopback == NULL)
		return;
	PQsetnonblocking(loopback, 1);
	PQfinish(loopback);
	loopback = NULL;
}

/* CHECK_FOR_INTERRUPTS while waiting on the loopback: a cancel stops its statement and closes it first. */
void
CheckInterruptsOrCloseLoopback(bool in_flight)
{
	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		if (in_flight)
			(void) CancelWithin(loopback, connect_timeout_ms);
		CloseLoopback();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

[[noreturn]] void
LoopbackError(PGresult *result, const char *sql)
{
	const char *primary = result != NULL ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char *message = pchomp(primary != NULL ? primary : PQerrorMessage(loopback));
	const char *detail = result != NULL ? PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = result != NULL ? PQresultErrorField(result, PG_DIAG_MESSAGE_HINT) : NULL;
	detail = detail != NULL ? pstrdup(detail) : NULL;
	hint = hint != NULL ? pstrdup(hint) : NULL;
	const char *state = result != NULL ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;
	int code = state != NULL && strlen(state) == 5 ? MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])
	                                               : ERRCODE_CONNECTION_FAILURE;
	PQclear(result);
	if (code == ERRCODE_CONNECTION_FAILURE)
		CloseLoopback();
	ereport(ERROR, (errcode(code), errmsg("%s", message), detail != NULL ? errdetail("%s", detail) : 0,
	                hint != NULL ? errhint("%s", hint) : 0,
	                errcontext("statement of fdwshard on the coordinator's own connection: %s", sql)));
}

void
ConnectLoopback(const NodeSession *session)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", session->port);
	const char *keywords[] = {"host", "port", "dbname", "user", "fallback_application_name", "client_encoding", NULL};
	const char *values[] = {session->host,
	                        port,
	                        session->dbname,
	                        GetUserNameFromId(GetUserId(), false),
	                        "fdwshard",
	                        GetDatabaseEncodingName(),
	                        NULL};
	char *message;
	loopback = ConnectInterruptibly(keywords, values, &message);
	if (loopback == NULL)
	{
		ereport(ERROR, (errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
		                errmsg("could not connect to the coordinator itself at %s:%d", session->host, session->port),
		                errdetail_internal("%s", message),
		                errhint("An online shard move runs part of its work on its own connection to the coordinator, "
		                        "as the current user: let the coordinator accept it (host and port are those of node "
		                        "1 in fdwshard.nodes).")));
	}
}

/* Sends sql on the loopback and returns its last result (status checked). */
PGresult *
LoopbackQuery(const NodeSession *session, const char *sql)
{
	if (loopback != NULL && (PQstatus(loopback) != CONNECTION_OK || PQisBusy(loopback)))
		CloseLoopback();
	if (loopback == NULL)
	{
		ConnectLoopback(session);
		PGresult *setup = PQexec(loopback, kLoopbackSetup); /* a local SET: answers at once */
		if (PQresultStatus(setup) != PGRES_COMMAND_OK)
			LoopbackError(setup, kLoopbackSetup);
		PQclear(setup);
	}
	if (!PQsendQuery(loopback, sql))
		LoopbackError(NULL, sql);
	PGresult *last = NULL;
	for (;;)
	{
		while (PQisBusy(loopback))
		{
			(void) WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
			                         PQsocket(loopback), -1L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			if (InterruptPending)
			{
				PQclear(last); /* libpq's memory: the error would leak it */
				last = NULL;
			}
			CheckInterruptsOrCloseLoopback(true);
			if (!PQconsumeInput(loopback))
			{
				PQclear(last);
				LoopbackError(NULL, sql);
			}
		}
		PGresult *result = PQgetResult(loopback);
		if (result == NULL)
			break;
		if (last != NULL && PQresultStatus(last) == PGRES_FATAL_ERROR)
		{
			PQclear(result); /* keep the first error */
			continue;
		}
		PQclear(last);
		last = result;
	}
	if (last == NULL)
		LoopbackError(NULL, sql);
	ExecStatusType status = PQresultStatus(last);
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		LoopbackError(last, sql);
	return last;
}

/* Sends sql on the current user's own connection to the worker and returns its last result (status checked). */
PGresult *
WorkerQuery(const NodeSession *session, const char *sql)
{
	OwnConnection *connection = GetOwnConnection(session->serverid, 0, true);
	if (connection == NULL)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
		                errmsg("fdwshard's connection to node %d is in use", session->nodeid)));
	connection->in_flight = true;
	if (!PQsendQuery(connection->conn, sql))
		ReportRemoteError(NULL, connection->conn, sql);
	return WaitForOwnSuccess(connection, sql);
}

} // namespace

NodeSession *
OpenNodeSession(const catalog::Node *node)
{
	NodeSession *session = (NodeSession *) palloc0(sizeof(NodeSession));
	session->nodeid = node->nodeid;
	session->serverid = node->is_local ? InvalidOid : node->serverid;
	session->host = pstrdup(node->host);
	session->port = node->port;
	session->dbname = pstrdup(node->dbname);
	return session;
}

char *
NodeSessionQuery(NodeSession *session, const char *sql)
{
	elog(DEBUG2, "fdwshard: on node %d as its own transaction: %s", session->nodeid, sql);
	PGresult *result = OidIsValid(session->serverid) ? WorkerQuery(session, sql) : LoopbackQuery(session, sql);
	char *value = NULL;
	if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0 &&
	    !PQgetisnull(result, 0, 0))
		value = pstrdup(PQgetvalue(result, 0, 0));
	PQclear(result);
	return value;
}

bool
NodeSessionTry(NodeSession *session, const char *sql, char **value)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ErrorContextCallback *saved_context_stack = error_context_stack;
	volatile bool ok = true;
	PG_TRY();
	{
		char *answer = NodeSessionQuery(session, sql);
		if (value != NULL)
			*value = answer;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller_context);
		error_context_stack = saved_context_stack;
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING, (errmsg("fdwshard could not clean up on node %d: %s", session->nodeid, edata->message),
		                  errhint("The next move of the shard group cleans it up.")));
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

void
CloseNodeSessions(void)
{
	CloseLoopback();
}

} // namespace fdwshard::remote
