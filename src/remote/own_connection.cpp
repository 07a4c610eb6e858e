/*
 * fdwshard's own connections to workers (see remote/own_connection.h). postgres_fdw keeps one
 * connection per user mapping, always inside a remote transaction; these run statements that
 * are transactions of their own: whole-transaction statements in one round trip, and the
 * multi-shard reads that go to a worker over several connections at once.
 */
#include "fdwshard/remote/own_connection.h"
#include "fdwshard/remote/prepared_statements.h"

#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/node_health.h"
#include "fdwshard/remote/node_wait.h"

extern "C"
{
#include "storage/proc.h"
}

namespace fdwshard::remote
{

namespace
{

struct OwnConnectionKey
{
	Oid user_mapping;
	int index;
};

/* Owned by this file for the life of the backend; connections close when the backend exits. */
HTAB *connections = NULL;

/* READ COMMITTED whatever the worker's default: only READ COMMITTED clients use these connections. */
const char *const kSessionSetup = "SET search_path = pg_catalog; SET timezone = 'UTC'; SET datestyle = ISO; "
                                  "SET intervalstyle = postgres; SET extra_float_digits = 3; "
                                  "SET default_transaction_isolation = 'read committed'";

/*
 * fdwshard.worker_plan_cache_mode: plan_cache_mode of the statements prepared on these connections.
 * Generic by default: each shard's statement is prepared on each session's connection, and five
 * custom plans of each before a generic one made a new session's first thousands of executions
 * over many shards plan on the worker every time (as a partition's plan is generic under a
 * generic plan of its table). auto leaves it to the worker's own setting.
 */
int worker_plan_cache_mode = PLAN_CACHE_MODE_FORCE_GENERIC_PLAN;
const struct config_enum_entry kPlanCacheModes[] = {{"auto", PLAN_CACHE_MODE_AUTO, false},
                                                    {"force_generic_plan", PLAN_CACHE_MODE_FORCE_GENERIC_PLAN, false},
                                                    {"force_custom_plan", PLAN_CACHE_MODE_FORCE_CUSTOM_PLAN, false},
                                                    {NULL, 0, false}};

void
EnsureTable()
{
	if (connections != NULL)
		return;
	HASHCTL ctl;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(OwnConnectionKey);
	ctl.entrysize = sizeof(OwnConnection);
	ctl.hcxt = CacheMemoryContext;
	connections = hash_create("fdwshard own connections", 8, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

void
Disconnect(OwnConnection *entry)
{
	if (entry->conn != NULL)
	{
		/* PQfinish sends Terminate: never let it block on a server that stopped reading. */
		PQsetnonblocking(entry->conn, 1);
		PQfinish(entry->conn);
		ReleaseExternalFD();
		ReleaseConnection(entry->slot);
	}
	if (entry->wait_set != NULL)
		FreeWaitEventSet(entry->wait_set);
	entry->wait_set = NULL;
	entry->conn = NULL;
	entry->slot = -1;
	entry->in_flight = false;
	entry->stale = false;
	entry->connecting = false;
	ForgetPrepared(entry);
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
CheckInterruptsOrGiveUp(OwnConnection *entry, PGresult *last)
{
	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		if (!CancelWithin(entry->conn, connect_timeout_ms))
			RecordNodeFailure(entry->serverid, "did not take a cancel request within fdwshard.connect_timeout");
		PQclear(last);
		Disconnect(entry);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * The connection's wait set, made at its first wait and kept until it closes: WaitLatchOrSocket
 * would create and close an epoll set at every wait, a good part of a routed statement's time.
 */
WaitEventSet *
WaitSetOf(OwnConnection *entry)
{
	if (entry->wait_set == NULL)
	{
		WaitEventSet *set = CreateWaitEventSet(TopMemoryContext, 3);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		AddWaitEventToSet(set, WL_SOCKET_READABLE, PQsocket(entry->conn), NULL, NULL);
		entry->wait_set = set;
	}
	return entry->wait_set;
}

PGresult *
WaitForResult(OwnConnection *entry, const char *sql)
{
	PGconn *conn = entry->conn;
	PGresult *last = NULL;
	NodeContext context;

	PushNodeContext(&context, entry->serverid, "while waiting for");
	for (;;)
	{
		while (PQisBusy(conn))
		{
			WaitEvent event;
			(void) WaitEventSetWait(WaitSetOf(entry), -1L, &event, 1, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CheckInterruptsOrGiveUp(entry, last);
			if ((event.events & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
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
	RecordNodeOk(entry->serverid);
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
 * Polls conns (started with PQconnectStartParams) until each is made or failed (errors[k] set),
 * all at once; fdwshard.connect_timeout bounds them together. An interrupt raises; the caller
 * closes what is still half-open. context (or NULL) is kept naming the node of serverids still
 * connecting, for that error.
 */
void
PollConnecting(PGconn *const *conns, int count, char **errors, const Oid *serverids, NodeContext *context)
{
	PostgresPollingStatusType *polled = (PostgresPollingStatusType *) palloc(sizeof(PostgresPollingStatusType) * count);
	bool *done = (bool *) palloc0(sizeof(bool) * count);
	for (int k = 0; k < count; k++)
		polled[k] = PGRES_POLLING_WRITING;
	WaitEvent *events = (WaitEvent *) palloc(sizeof(WaitEvent) * (count + 2));
	TimestampTz deadline =
	    connect_timeout_ms > 0 ? TimestampTzPlusMilliseconds(GetCurrentTimestamp(), connect_timeout_ms) : 0;

	for (;;)
	{
		int waiting = 0;
		for (int k = 0; k < count; k++)
		{
			if (done[k])
				continue;
			PGconn *conn = conns[k];
			if (PQstatus(conn) == CONNECTION_BAD || polled[k] == PGRES_POLLING_FAILED ||
			    PQsocket(conn) == PGINVALID_SOCKET)
			{
				errors[k] = pchomp(PQerrorMessage(conn));
				done[k] = true;
			}
			else if (polled[k] == PGRES_POLLING_OK)
				done[k] = true;
			else if (waiting++ == 0 && context != NULL && context->serverid != serverids[k])
			{
				context->serverid = serverids[k];
				context->node = NodeName(serverids[k]);
			}
		}
		if (waiting == 0)
			break;
		long timeout = -1L;
		if (deadline != 0)
		{
			timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (timeout <= 0)
			{
				for (int k = 0; k < count; k++)
					if (!done[k])
						errors[k] =
						    psprintf("timeout expired after %d ms (fdwshard.connect_timeout)", connect_timeout_ms);
				break;
			}
		}
		/* A connection's socket can change while it tries the host's next address: a set per wait. */
		WaitEventSet *set = CreateWaitEventSet(CurrentMemoryContext, waiting + 2);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		for (int k = 0; k < count; k++)
			if (!done[k])
				AddWaitEventToSet(set, polled[k] == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
				                  PQsocket(conns[k]), NULL, &done[k]);
		int fired = WaitEventSetWait(set, timeout, events, waiting + 2, PG_WAIT_EXTENSION);
		FreeWaitEventSet(set);
		bool latched = false;
		for (int i = 0; i < fired; i++)
		{
			if (events[i].events & WL_LATCH_SET)
				latched = true;
			else if (events[i].user_data != NULL)
			{
				int k = (int) ((bool *) events[i].user_data - done);
				polled[k] = PQconnectPoll(conns[k]);
			}
		}
		if (latched)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	pfree(events);
	pfree(done);
	pfree(polled);
}

} // namespace

PGconn *
ConnectInterruptibly(const char *const *keywords, const char *const *values, char **error)
{
	PGconn *conn = PQconnectStartParams(keywords, values, false);
	if (conn == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	*error = NULL;
	PG_TRY();
	{
		PollConnecting(&conn, 1, error, NULL, NULL);
	}
	PG_CATCH();
	{
		PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (*error != NULL)
	{
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

namespace
{

/* ConnectInterruptibly to server, its failure recorded in the node's health and raised. */
PGconn *
ConnectWithin(ForeignServer *server, const char *const *keywords, const char *const *values)
{
	char *message;
	PGconn *conn = ConnectInterruptibly(keywords, values, &message);
	if (conn == NULL)
	{
		RecordNodeFailure(server->serverid, message);
		ereport(ERROR,
		        (errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
		         errmsg("could not connect to server \"%s\"", server->servername), errdetail_internal("%s", message)));
	}
	return conn;
}

/* The session setup sent on each new connection: kSessionSetup and the workers' plan cache mode. */
const char *
SessionSetup()
{
	for (const config_enum_entry *mode = kPlanCacheModes; mode->name != NULL; mode++)
		if (mode->val == worker_plan_cache_mode && mode->val != PLAN_CACHE_MODE_AUTO)
			return psprintf("%s; SET plan_cache_mode = %s", kSessionSetup, mode->name);
	return kSessionSetup;
}

/* Starts entry's connection as user, in a budget slot taken by the caller (given back on failure). */
void
StartOpen(OwnConnection *entry, UserMapping *user, BudgetSlot slot)
{
	const char **keywords;
	const char **values;
	ForeignServer *server = GetForeignServer(entry->serverid);
	ConnectionOptions(server, user, &keywords, &values);

	/* The socket counts against max_files_per_process, as postgres_fdw's do (a third of it for all). */
	if (!AcquireExternalFD())
	{
		ReleaseConnection(slot);
		ereport(ERROR, (errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
		                errmsg("could not connect to server \"%s\"", server->servername),
		                errdetail("There are too many open files on the local server."),
		                errhint("Raise the server's max_files_per_process and/or \"ulimit -n\" limits.")));
	}
	PGconn *conn = PQconnectStartParams(keywords, values, false);
	if (conn == NULL)
	{
		ReleaseExternalFD();
		ReleaseConnection(slot);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	entry->conn = conn;
	entry->slot = slot;
	entry->prepared_count = 0;
	entry->connecting = true;

	/*
	 * As postgres_fdw: without a password a non-superuser could borrow the server's own identity,
	 * unless a superuser set password_required 'false' on the user mapping.
	 */
	bool password_required = true;
	ListCell *cell;
	foreach (cell, user->options)
		if (strcmp(((DefElem *) lfirst(cell))->defname, "password_required") == 0)
			password_required = defGetBoolean((DefElem *) lfirst(cell));
	entry->password_checked = password_required && !superuser_arg(user->userid);
}

/* Closes every connection of pending that is still connecting (a failure or an interrupt). */
void
CloseConnecting(OwnConnection *const *pending, int count)
{
	for (int k = 0; k < count; k++)
		if (pending[k]->connecting)
			Disconnect(pending[k]);
}

/* Opens entry's connection as user, in a budget slot taken by the caller (given back on failure). */
void
Open(OwnConnection *entry, UserMapping *user, BudgetSlot slot)
{
	StartOpen(entry, user, slot);
	FinishOwnConnecting(&entry, 1);
}

/* Whether a run holds any connection of this backend. */
bool
AnyLent()
{
	HASH_SEQ_STATUS status;
	OwnConnection *entry;
	bool lent = false;

	hash_seq_init(&status, connections);
	while ((entry = (OwnConnection *) hash_seq_search(&status)) != NULL)
		lent = lent || entry->lent;
	return lent;
}

void
InvalidateConnections(Datum, int, uint32)
{
	if (connections == NULL)
		return;
	HASH_SEQ_STATUS status;
	OwnConnection *entry;
	hash_seq_init(&status, connections);
	while ((entry = (OwnConnection *) hash_seq_search(&status)) != NULL)
		entry->stale = true;
}

} // namespace

OwnConnection *
GetOwnConnection(Oid serverid, int index, bool wait, bool defer)
{
	EnsureTable();
	UserMapping *user = GetUserMapping(GetUserId(), serverid);
	OwnConnectionKey key = {user->umid, index};
	bool found;
	OwnConnection *entry = (OwnConnection *) hash_search(connections, &key, HASH_ENTER, &found);
	if (!found)
	{
		entry->serverid = serverid;
		entry->conn = NULL;
		entry->slot = -1;
		entry->in_flight = false;
		entry->stale = false;
		entry->lent = false;
		entry->prepared = NULL;
		entry->prepared_count = 0;
		entry->wait_set = NULL;
		entry->last_used = 0;
		entry->used_lxid = InvalidLocalTransactionId;
		entry->connecting = false;
		entry->password_checked = false;
	}
	if (entry->lent)
		return NULL;
	/* connecting: started for a run that ended before completing it, so without its session setup. */
	if (entry->conn != NULL &&
	    (entry->in_flight || entry->stale || entry->connecting || PQstatus(entry->conn) != CONNECTION_OK))
		Disconnect(entry);
	entry->used_lxid = MyProc->lxid;
	entry->last_used = GetCurrentTimestamp();
	if (entry->conn != NULL)
		return entry;

	BudgetSlot slot = -1;
	if (worker_connection_limit >= 0)
	{
		slot = ReserveConnection(serverid, wait, AnyLent() || TransactionHoldsFdwConnections());
		if (slot < 0 && !wait && worker_connection_limit >= 0)
			return NULL;
	}
	if (defer)
		StartOpen(entry, user, slot);
	else
		Open(entry, user, slot);
	return entry;
}

void
FinishOwnConnecting(OwnConnection *const *entries, int count)
{
	OwnConnection **pending = (OwnConnection **) palloc(sizeof(OwnConnection *) * Max(count, 1));
	int pending_count = 0;
	for (int i = 0; i < count; i++)
		if (entries[i] != NULL && entries[i]->connecting)
			pending[pending_count++] = entries[i];
	if (pending_count == 0)
	{
		pfree(pending);
		return;
	}

	char **errors = (char **) palloc0(sizeof(char *) * pending_count);
	PGconn **conns = (PGconn **) palloc(sizeof(PGconn *) * pending_count);
	Oid *serverids = (Oid *) palloc(sizeof(Oid) * pending_count);
	for (int k = 0; k < pending_count; k++)
	{
		conns[k] = pending[k]->conn;
		serverids[k] = pending[k]->serverid;
	}
	NodeContext context;
	PushNodeContext(&context, serverids[0], "while connecting to");
	PG_TRY();
	{
		PollConnecting(conns, pending_count, errors, serverids, &context);
	}
	PG_CATCH();
	{
		CloseConnecting(pending, pending_count);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PopNodeContext(&context);

	int failed = -1;
	for (int k = 0; k < pending_count; k++)
	{
		if (errors[k] != NULL)
			RecordNodeFailure(serverids[k], errors[k]);
		else
			RecordNodeOk(serverids[k]);
		if (errors[k] != NULL && failed < 0)
			failed = k;
	}
	if (failed >= 0)
	{
		CloseConnecting(pending, pending_count); /* the others have no session setup yet: none is kept */
		PushNodeContext(&context, serverids[failed], "while connecting to");
		ereport(ERROR, (errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
		                errmsg("could not connect to server \"%s\"", GetForeignServer(serverids[failed])->servername),
		                errdetail_internal("%s", errors[failed])));
	}
	for (int k = 0; k < pending_count; k++)
	{
		OwnConnection *entry = pending[k];
		if (entry->password_checked && !PQconnectionUsedPassword(entry->conn))
		{
			Oid serverid = entry->serverid;
			CloseConnecting(pending, pending_count);
			PushNodeContext(&context, serverid, "while connecting to"); /* names the node */
			ereport(ERROR, (errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED), errmsg("password is required"),
			                errdetail("Non-superuser cannot connect if the server does not request a password."),
			                errhint("Target server's authentication method must be changed or password_required=false "
			                        "set in the user mapping attributes.")));
		}
	}

	/* Every setup sent, then every result read: the workers run them at once. */
	const char *setup = SessionSetup();
	for (int k = 0; k < pending_count; k++)
	{
		OwnConnection *entry = pending[k];
		entry->connecting = false;
		entry->in_flight = true; /* until its result is read: an error on the way leaves it to be reconnected */
		if (!PQsendQuery(entry->conn, setup))
			ReportRemoteError(NULL, entry->conn, setup);
	}
	for (int k = 0; k < pending_count; k++)
	{
		OwnConnection *entry = pending[k];
		PGresult *result = WaitForResult(entry, setup);
		if (PQresultStatus(result) != PGRES_COMMAND_OK)
		{
			entry->stale = true; /* never reuse a connection without its session setup */
			ReportRemoteError(result, entry->conn, setup);
		}
		PQclear(result);
	}
	pfree(serverids);
	pfree(conns);
	pfree(errors);
	pfree(pending);
}

PGresult *
WaitForOwnResult(OwnConnection *connection, const char *sql)
{
	return WaitForResult(connection, sql);
}

PGresult *
WaitForOwnSuccess(OwnConnection *connection, const char *sql)
{
	PGresult *result = WaitForResult(connection, sql);
	ExecStatusType status = PQresultStatus(result);
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		ReportRemoteError(result, connection->conn, sql);
	return result;
}

PGresult *
WaitForOwnPipeline(OwnConnection *connection, const char *sql)
{
	PGresult *failed = NULL;
	PGresult *last = NULL;
	bool prepare_failed = false;
	for (int index = 0;; index++)
	{
		connection->in_flight = true;
		PGresult *result = WaitForResult(connection, sql);
		ExecStatusType status = PQresultStatus(result);
		if (result == NULL || status == PGRES_PIPELINE_SYNC)
		{
			PQclear(result);
			break;
		}
		if (status == PGRES_PIPELINE_ABORTED)
			PQclear(result);
		else if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		{
			if (failed == NULL)
			{
				failed = result;
				prepare_failed = index == 0;
			}
			else
				PQclear(result);
		}
		else
		{
			PQclear(last);
			last = result;
		}
	}
	if (!PQexitPipelineMode(connection->conn))
		connection->stale = true;
	if (prepare_failed)
		connection->stale = true; /* counted as prepared, not prepared: start afresh */
	if (failed != NULL)
	{
		PQclear(last);
		ReportRemoteError(failed, connection->conn, sql);
	}
	if (last == NULL)
		ReportRemoteError(NULL, connection->conn, sql);
	return last;
}

bool
AbandonOwnConnection(OwnConnection *connection, bool cancel)
{
	bool cancelled = true;
	if (cancel && connection->conn != NULL && connection->in_flight)
		cancelled = CancelWithin(connection->conn, connect_timeout_ms);
	Disconnect(connection);
	return cancelled;
}

void
CloseIdleOwnConnections(bool only_wanted)
{
	if (connections == NULL)
		return;
	HASH_SEQ_STATUS status;
	OwnConnection *entry;
	hash_seq_init(&status, connections);
	while ((entry = (OwnConnection *) hash_seq_search(&status)) != NULL)
		if (entry->conn != NULL && !entry->in_flight && !entry->lent && (!only_wanted || ConnectionWanted(entry->slot)))
			Disconnect(entry);
}

TimestampTz
CloseOwnConnectionsUnusedSince(TimestampTz cutoff, TimestampTz now)
{
	if (connections == NULL)
		return 0;
	TimestampTz oldest = 0;
	HASH_SEQ_STATUS status;
	OwnConnection *entry;
	hash_seq_init(&status, connections);
	while ((entry = (OwnConnection *) hash_seq_search(&status)) != NULL)
	{
		if (entry->conn == NULL)
			continue;
		TimestampTz used = entry->used_lxid == MyProc->lxid || entry->lent || entry->in_flight ? now : entry->last_used;
		if (used < cutoff)
			Disconnect(entry);
		else if (oldest == 0 || used < oldest)
			oldest = used;
	}
	return oldest;
}

void
InitOwnConnections(void)
{
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, InvalidateConnections, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, InvalidateConnections, (Datum) 0);
	DefineCustomEnumVariable(
	    "fdwshard.worker_plan_cache_mode",
	    "plan_cache_mode on workers for the parameterized statements fdwshard prepares there.",
	    "force_generic_plan (the default) plans each statement once on each connection; auto leaves it to the "
	    "worker's plan_cache_mode (by default five custom plans before it may reuse a generic one). Takes effect "
	    "on the session's next new connection to each worker.",
	    &worker_plan_cache_mode, PLAN_CACHE_MODE_FORCE_GENERIC_PLAN, kPlanCacheModes, PGC_USERSET, 0, NULL, NULL, NULL);
}

char *
ProbeNode(Oid serverid)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	const char *node = NodeName(serverid);
	char *error = NULL;

	/* A subtransaction: whatever fails (no user mapping, no connection) becomes the row's error. */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		ForeignServer *server = GetForeignServer(serverid);
		UserMapping *user = GetUserMapping(GetUserId(), serverid);
		const char **keywords;
		const char **values;
		ConnectionOptions(server, user, &keywords, &values);
		PGconn *conn = ConnectWithin(server, keywords, values);

		/* One round trip, bounded as the connection was: a frozen server accepts and never answers. */
		TimestampTz deadline =
		    connect_timeout_ms > 0 ? TimestampTzPlusMilliseconds(GetCurrentTimestamp(), connect_timeout_ms) : 0;
		PGresult *result = NULL;
		bool sent = PQsendQuery(conn, "SELECT 1");
		while (sent && error == NULL)
		{
			while (PQisBusy(conn) && error == NULL)
			{
				long timeout = deadline != 0 ? TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline) : -1L;
				if (deadline != 0 && timeout <= 0)
				{
					error = psprintf("no answer within %d ms (fdwshard.connect_timeout)", connect_timeout_ms);
					break;
				}
				int events = WaitLatchOrSocket(
				    MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | WL_SOCKET_READABLE | (deadline != 0 ? WL_TIMEOUT : 0),
				    PQsocket(conn), timeout, PG_WAIT_EXTENSION);
				if (events & WL_LATCH_SET)
				{
					ResetLatch(MyLatch);
					CheckInterruptsOrFinish(conn);
				}
				if ((events & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
					break;
			}
			if (error != NULL || PQisBusy(conn))
				break;
			PGresult *next = PQgetResult(conn);
			if (next == NULL)
				break;
			PQclear(result);
			result = next;
		}
		if (error == NULL && (result == NULL || PQresultStatus(result) != PGRES_TUPLES_OK))
			error = pchomp(result != NULL ? PQresultErrorMessage(result) : PQerrorMessage(conn));
		PQclear(result);
		PQsetnonblocking(conn, 1);
		PQfinish(conn);
		if (error != NULL)
			RecordNodeFailure(serverid, error);
		else
			RecordNodeOk(serverid);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		error = edata->detail != NULL ? psprintf("%s: %s", edata->message, edata->detail) : pstrdup(edata->message);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	CurrentResourceOwner = owner;
	return error != NULL ? psprintf("%s: %s", node, error) : NULL;
}

} // namespace fdwshard::remote
