/*
 * One-round-trip execution of statements that are a whole transaction (see remote/autocommit.h).
 * postgres_fdw opens a remote transaction before the first statement and commits it at the end:
 * three round trips for a one-statement transaction. When the client's transaction is that one
 * statement, the worker may run it in its own implicit transaction instead, with the same outcome.
 */
#include "fdwshard/remote/autocommit.h"

#include "fdwshard/core/hash.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/node_wait.h"

namespace fdwshard::remote
{

namespace
{

/* A connection of this backend to one worker as one user mapping. */
struct AutocommitConnection
{
	Oid user_mapping; /* hash key */
	Oid serverid;     /* the worker's server, for errors that name the node */
	PGconn *conn;     /* NULL until connected */
	bool in_flight;   /* a command was sent and its result not yet read: unusable, reconnect */
	bool stale;       /* the server or user mapping changed: reconnect before the next use */
	int prepared_count;
};

/* A statement prepared on a connection, named fdwshard_<n>. */
struct PreparedStatement
{
	uint64 key[2]; /* hash key: user mapping, hash of parameter types and SQL text */
	char name[NAMEDATALEN];
	char *sql; /* in CacheMemoryContext: a hash collision must not run another statement */
	Oid *types;
	int nparams;
};

/* Owned by this file for the life of the backend; connections close when the backend exits. */
HTAB *connections = NULL;
HTAB *prepared = NULL;

constexpr int kMaxPreparedPerConnection = 1000;

/* READ COMMITTED whatever the worker's default: only READ COMMITTED clients take this path. */
const char *const kSessionSetup = "SET search_path = pg_catalog; SET timezone = 'UTC'; SET datestyle = ISO; "
                                  "SET intervalstyle = postgres; SET extra_float_digits = 3; "
                                  "SET default_transaction_isolation = 'read committed'";

void
EnsureTables()
{
	if (connections != NULL)
		return;
	HASHCTL ctl;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(AutocommitConnection);
	ctl.hcxt = CacheMemoryContext;
	connections = hash_create("fdwshard autocommit connections", 8, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(uint64) * 2;
	ctl.entrysize = sizeof(PreparedStatement);
	prepared = hash_create("fdwshard prepared statements", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

void
Disconnect(AutocommitConnection *entry)
{
	if (entry->conn != NULL)
	{
		/* PQfinish sends Terminate: never let it block on a server that stopped reading. */
		PQsetnonblocking(entry->conn, 1);
		PQfinish(entry->conn);
	}
	entry->conn = NULL;
	entry->in_flight = false;
	entry->stale = false;
	entry->prepared_count = 0;

	/* Its prepared statements went with it. */
	HASH_SEQ_STATUS status;
	PreparedStatement *statement;
	hash_seq_init(&status, prepared);
	while ((statement = (PreparedStatement *) hash_seq_search(&status)) != NULL)
		if ((Oid) statement->key[0] == entry->user_mapping)
		{
			pfree(statement->sql);
			pfree(statement->types);
			hash_search(prepared, statement->key, HASH_REMOVE, NULL);
		}
}

/* Options of the server and user mapping that libpq knows, as postgres_fdw passes them. */
void
ConnectionOptions(ForeignServer *server, UserMapping *user, const char ***keywords_out, const char ***values_out)
{
	PQconninfoOption *defaults = PQconndefaults();
	List *options = list_concat(list_copy(server->options), user->options);
	int count = list_length(options) + 3;
	const char **keywords = (const char **) palloc0(sizeof(char *) * count);
	const char **values = (const char **) palloc0(sizeof(char *) * count);
	int n = 0;
	ListCell *cell;

	foreach (cell, options)
	{
		DefElem *option = (DefElem *) lfirst(cell);
		for (PQconninfoOption *known = defaults; known != NULL && known->keyword != NULL; known++)
			if (strcmp(known->keyword, option->defname) == 0 && strchr(known->dispchar, 'D') == NULL)
			{
				keywords[n] = option->defname;
				values[n] = defGetString(option);
				n++;
				break;
			}
	}
	keywords[n] = "fallback_application_name";
	values[n++] = "fdwshard";
	keywords[n] = "client_encoding";
	values[n++] = GetDatabaseEncodingName();
	PQconninfoFree(defaults);
	*keywords_out = keywords;
	*values_out = values;
}

/*
 * CHECK_FOR_INTERRUPTS while waiting on entry: on a cancel or timeout, stop the statement on the
 * worker too (a frozen worker gets fdwshard.connect_timeout to take the request), free the result
 * read so far and give up the connection.
 */
void
CheckInterruptsOrGiveUp(AutocommitConnection *entry, PGresult *last)
{
	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		(void) CancelWithin(entry->conn, connect_timeout_ms);
		PQclear(last);
		Disconnect(entry);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

PGresult *
WaitForResult(AutocommitConnection *entry, const char *sql)
{
	PGconn *conn = entry->conn;
	PGresult *last = NULL;
	NodeContext context;

	PushNodeContext(&context, entry->serverid, "while waiting for");
	for (;;)
	{
		while (PQisBusy(conn))
		{
			int events = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
			                               PQsocket(conn), -1L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CheckInterruptsOrGiveUp(entry, last);
			if ((events & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
			{
				PQclear(last); /* libpq's memory: the error would leak it */
				ReportRemoteError(NULL, conn, sql);
			}
		}
		PGresult *result = PQgetResult(conn);
		if (result == NULL)
			break;
		PQclear(last);
		last = result;
	}
	PopNodeContext(&context);
	entry->in_flight = false;
	return last;
}

/* CHECK_FOR_INTERRUPTS while connecting: a cancel or timeout closes the half-open connection first. */
void
CheckInterruptsOrFinish(PGconn *conn)
{
	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * PQconnectdbParams without its blocking: waits on the socket with the latch, so a cancel or
 * statement_timeout ends it, and gives up after fdwshard.connect_timeout (a frozen server accepts
 * the TCP connection and never answers). Returns a connection that is CONNECTION_OK; raises the
 * error otherwise.
 */
PGconn *
ConnectWithin(ForeignServer *server, const char *const *keywords, const char *const *values)
{
	PGconn *conn = PQconnectStartParams(keywords, values, false);
	if (conn == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));

	TimestampTz deadline =
	    connect_timeout_ms > 0 ? TimestampTzPlusMilliseconds(GetCurrentTimestamp(), connect_timeout_ms) : 0;
	PostgresPollingStatusType polled = PGRES_POLLING_WRITING;
	bool timed_out = false;
	while (PQstatus(conn) != CONNECTION_BAD && polled != PGRES_POLLING_OK && polled != PGRES_POLLING_FAILED)
	{
		int io = polled == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
		long timeout = -1L;
		if (deadline != 0)
		{
			timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (timeout <= 0)
			{
				timed_out = true;
				break;
			}
		}
		int events =
		    WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | io | (deadline != 0 ? WL_TIMEOUT : 0),
		                      PQsocket(conn), timeout, PG_WAIT_EXTENSION);
		if (events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CheckInterruptsOrFinish(conn);
		}
		if (events & io)
			polled = PQconnectPoll(conn);
	}
	if (timed_out || PQstatus(conn) != CONNECTION_OK)
	{
		char *message = timed_out
		                    ? psprintf("timeout expired after %d ms (fdwshard.connect_timeout)", connect_timeout_ms)
		                    : pchomp(PQerrorMessage(conn));
		PQfinish(conn);
		ereport(ERROR,
		        (errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
		         errmsg("could not connect to server \"%s\"", server->servername), errdetail_internal("%s", message)));
	}
	return conn;
}

AutocommitConnection *
Connect(Oid serverid)
{
	EnsureTables();
	UserMapping *user = GetUserMapping(GetUserId(), serverid);
	bool found;
	AutocommitConnection *entry = (AutocommitConnection *) hash_search(connections, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		entry->serverid = serverid;
		entry->conn = NULL;
		entry->in_flight = false;
		entry->stale = false;
		entry->prepared_count = 0;
	}
	if (entry->conn != NULL && (entry->in_flight || entry->stale || PQstatus(entry->conn) != CONNECTION_OK))
		Disconnect(entry);
	if (entry->conn != NULL)
		return entry;

	const char **keywords;
	const char **values;
	ForeignServer *server = GetForeignServer(serverid);
	ConnectionOptions(server, user, &keywords, &values);
	NodeContext context;
	PushNodeContext(&context, serverid, "while connecting to");
	PGconn *conn = ConnectWithin(server, keywords, values);
	PopNodeContext(&context);
	/*
	 * As postgres_fdw: without a password a non-superuser could borrow the server's own identity,
	 * unless a superuser set password_required 'false' on the user mapping.
	 */
	bool password_required = true;
	ListCell *cell;
	foreach (cell, user->options)
		if (strcmp(((DefElem *) lfirst(cell))->defname, "password_required") == 0)
			password_required = defGetBoolean((DefElem *) lfirst(cell));
	if (password_required && !superuser_arg(user->userid) && !PQconnectionUsedPassword(conn))
	{
		PQfinish(conn);
		ereport(ERROR, (errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED), errmsg("password is required"),
		                errdetail("Non-superuser cannot connect if the server does not request a password."),
		                errhint("Target server's authentication method must be changed.")));
	}
	entry->conn = conn;
	entry->in_flight = true;
	if (!PQsendQuery(conn, kSessionSetup))
		ReportRemoteError(NULL, conn, kSessionSetup);
	PGresult *result = WaitForResult(entry, kSessionSetup);
	if (PQresultStatus(result) != PGRES_COMMAND_OK)
	{
		entry->stale = true; /* never reuse a connection without its session setup */
		ReportRemoteError(result, conn, kSessionSetup);
	}
	PQclear(result);
	return entry;
}

/* The name of sql prepared on entry's connection, preparing it first; NULL when not worth it. */
const char *
PreparedName(AutocommitConnection *entry, const char *sql, int nparams, const Oid *types)
{
	uint64 key[2];
	key[0] = entry->user_mapping;
	key[1] = ((uint64) (uint32) core::HashBytes(types, sizeof(Oid) * nparams) << 32) |
	         (uint32) core::HashBytes(sql, strlen(sql));

	PreparedStatement *statement = (PreparedStatement *) hash_search(prepared, key, HASH_FIND, NULL);
	if (statement != NULL)
		return statement->nparams == nparams && memcmp(statement->types, types, sizeof(Oid) * nparams) == 0 &&
		               strcmp(statement->sql, sql) == 0
		           ? statement->name
		           : NULL;
	if (entry->prepared_count >= kMaxPreparedPerConnection)
		return NULL;

	char name[NAMEDATALEN];
	snprintf(name, sizeof(name), "fdwshard_%d", entry->prepared_count + 1);
	entry->in_flight = true;
	if (!PQsendPrepare(entry->conn, name, sql, nparams, types))
		ReportRemoteError(NULL, entry->conn, sql);
	PGresult *result = WaitForResult(entry, sql);
	if (PQresultStatus(result) != PGRES_COMMAND_OK)
		ReportRemoteError(result, entry->conn, sql);
	PQclear(result);

	entry->prepared_count++;
	statement = (PreparedStatement *) hash_search(prepared, key, HASH_ENTER, NULL);
	strlcpy(statement->name, name, sizeof(statement->name));
	statement->sql = MemoryContextStrdup(CacheMemoryContext, sql);
	statement->types = (Oid *) MemoryContextAlloc(CacheMemoryContext, sizeof(Oid) * Max(nparams, 1));
	memcpy(statement->types, types, sizeof(Oid) * nparams);
	statement->nparams = nparams;
	return statement->name;
}

void
InvalidateConnections(Datum, int, uint32)
{
	if (connections == NULL)
		return;
	HASH_SEQ_STATUS status;
	AutocommitConnection *entry;
	hash_seq_init(&status, connections);
	while ((entry = (AutocommitConnection *) hash_seq_search(&status)) != NULL)
		entry->stale = true;
}

} // namespace

PGresult *
ExecuteAutocommit(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values)
{
	AutocommitConnection *entry = Connect(serverid);
	const char *name = nparams > 0 ? PreparedName(entry, sql, nparams, types) : NULL;

	elog(DEBUG2, "fdwshard: on server %u as its own transaction: %s", serverid, sql);
	entry->in_flight = true;
	int sent = name != NULL ? PQsendQueryPrepared(entry->conn, name, nparams, values, NULL, NULL, 0)
	                        : PQsendQueryParams(entry->conn, sql, nparams, types, values, NULL, NULL, 0);
	if (!sent)
		ReportRemoteError(NULL, entry->conn, sql);
	PGresult *result = WaitForResult(entry, sql);
	ExecStatusType status = PQresultStatus(result);
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		ReportRemoteError(result, entry->conn, sql);
	return result;
}

void
InitAutocommit(void)
{
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, InvalidateConnections, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, InvalidateConnections, (Datum) 0);
}

} // namespace fdwshard::remote
