/* Bounded waits on worker nodes (see remote/node_wait.h): connect timeout, bounded cancels, node names in errors. */
#include "fdwshard/remote/node_wait.h"

#include "fdwshard/remote/connection_budget.h"
#include "fdwshard/remote/node_health.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace fdwshard::remote
{

int connect_timeout_ms = 5000;

namespace
{

/* "node N (host:port)" of a foreign server, cached per server; dropped when any server changes. */
struct NodeName
{
	Oid serverid; /* hash key */
	char text[NAMEDATALEN + 64];
};

/* Owned by this file for the life of the backend (CacheMemoryContext); emptied by InvalidateNodeNames. */
HTAB *node_names = NULL;

/*
 * postgres_fdw connections fdwshard used in the current transaction, emptied at its end and when
 * a subtransaction aborts. In mid-transaction postgres_fdw closes only a connection an aborted
 * subtransaction left half-way through a change of its remote transaction state; otherwise it
 * closes them at the end, after XactCallback. So every pointer here is alive while it is here.
 */
constexpr int kMaxNotedConnections = 64;
PGconn *noted_connections[kMaxNotedConnections];
int noted_count = 0;
bool callbacks_registered = false;

const char *
NodeNameOf(Oid serverid)
{
	if (node_names == NULL)
	{
		HASHCTL ctl;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(NodeName);
		ctl.hcxt = CacheMemoryContext;
		node_names = hash_create("fdwshard node names", 8, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	bool found;
	NodeName *entry = (NodeName *) hash_search(node_names, &serverid, HASH_ENTER, &found);
	if (found)
		return entry->text;

	ForeignServer *server = GetForeignServerExtended(serverid, FSV_MISSING_OK);
	if (server == NULL)
	{
		/* Dropped in this transaction (DROP EXTENSION fdwshard): not cached, the oid will not come back. */
		hash_search(node_names, &serverid, HASH_REMOVE, NULL);
		return psprintf("server %u", serverid);
	}
	const char *host = "?";
	const char *port = "?";
	ListCell *cell;
	foreach (cell, server->options)
	{
		DefElem *option = (DefElem *) lfirst(cell);
		if (strcmp(option->defname, "host") == 0 || (strcmp(option->defname, "hostaddr") == 0 && *host == '?'))
			host = defGetString(option);
		else if (strcmp(option->defname, "port") == 0)
			port = defGetString(option);
	}
	/* fdwshard_add_node names its servers fdwshard_node_<nodeid>. */
	int nodeid;
	char rest;
	if (sscanf(server->servername, "fdwshard_node_%d%c", &nodeid, &rest) == 1)
		snprintf(entry->text, sizeof(entry->text), "node %d (%s:%s)", nodeid, host, port);
	else
		snprintf(entry->text, sizeof(entry->text), "server \"%s\" (%s:%s)", server->servername, host, port);
	return entry->text;
}

void
InvalidateNodeNames(Datum, int, uint32)
{
	if (node_names == NULL)
		return;
	HASH_SEQ_STATUS status;
	NodeName *entry;
	hash_seq_init(&status, node_names);
	while ((entry = (NodeName *) hash_seq_search(&status)) != NULL)
		hash_search(node_names, &entry->serverid, HASH_REMOVE, NULL);
}

/* Error context callback of NodeContext: only for failures of the connection itself. */
void
NodeErrorContext(void *arg)
{
	NodeContext *context = (NodeContext *) arg;
	int code = geterrcode();

	/* 2F003: "password is required", postgres_fdw's (and fdwshard's) refusal of a connection. */
	if (code == ERRCODE_QUERY_CANCELED || ERRCODE_TO_CATEGORY(code) == ERRCODE_CONNECTION_EXCEPTION ||
	    code == ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED)
		errcontext("%s %s", context->doing, context->node);
	RecordNodeError(context->serverid);
}

/* One PQcancel handed to a thread; the thread owns it and frees it. */
struct CancelRequest
{
	PGcancel *cancel;
	int done_fd; /* write end of a pipe: one byte, 1 when the server took the request */
};

void *
CancelThread(void *arg)
{
	CancelRequest *request = (CancelRequest *) arg;
	char error[256];
	char answer = PQcancel(request->cancel, error, sizeof(error)) ? 1 : 0;

	PQfreeCancel(request->cancel);
	/* The reader may have given up and closed its end: EPIPE, ignored (SIGPIPE is blocked here). */
	(void) !write(request->done_fd, &answer, 1);
	close(request->done_fd);
	free(request);
	return NULL;
}

int64
MonotonicMs()
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Aborting with a query in flight on a noted connection: cancel within the timeout, or break it. */
void
CleanUpNotedConnections()
{
	for (int i = 0; i < noted_count; i++)
	{
		PGconn *conn = noted_connections[i];
		if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_ACTIVE &&
		    !CancelWithin(conn, connect_timeout_ms))
		{
			/* The server's host and port as the connection has them: no catalog access while aborting. */
			char target[kWorkerTargetLength];
			snprintf(target, sizeof(target), "%s:%s", PQhost(conn), PQport(conn));
			RecordNodeFailureAt(target, "did not take a cancel request within fdwshard.connect_timeout");
			BreakConnection(conn);
		}
	}
}

/*
 * Registered after postgres_fdw's callbacks (on the first connection fdwshard takes from it), so
 * it runs before them: callbacks run last-registered first.
 */
void
XactCallback(XactEvent event, void *)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			CleanUpNotedConnections();
			noted_count = 0;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			noted_count = 0;
			break;
		default:
			break;
	}
}

/*
 * After a subtransaction aborts, postgres_fdw may have left a connection mid-change of its
 * transaction state; the next GetConnection of it (a foreign scan's, say) then closes it while
 * the transaction goes on. So forget every noted connection here, before that can happen:
 * fdwshard notes them again when it next uses them.
 */
void
SubXactCallback(SubXactEvent event, SubTransactionId, SubTransactionId, void *)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		CleanUpNotedConnections();
		noted_count = 0;
	}
}

void
AssignConnectTimeout(int value, void *)
{
	/*
	 * postgres_fdw connects with PQconnectdbParams, which reads PGCONNECT_TIMEOUT when the server
	 * has no connect_timeout option: its connections in this backend follow the setting too
	 * (whole seconds, at least 2, as libpq counts them; 0 waits without limit).
	 */
	char seconds[16];
	snprintf(seconds, sizeof(seconds), "%d", value == 0 ? 0 : (value + 999) / 1000);
	setenv("PGCONNECT_TIMEOUT", seconds, 1);
}

} // namespace

const char *
NodeName(Oid serverid)
{
	return NodeNameOf(serverid);
}

void
PushNodeContext(NodeContext *context, Oid serverid, const char *doing)
{
	context->serverid = serverid;
	context->node = NodeNameOf(serverid);
	context->doing = doing;
	context->callback.callback = NodeErrorContext;
	context->callback.arg = context;
	context->callback.previous = error_context_stack;
	error_context_stack = &context->callback;
}

void
PopNodeContext(NodeContext *context)
{
	error_context_stack = context->callback.previous;
}

bool
CancelWithin(PGconn *conn, int timeout_ms) noexcept
{
	PGcancel *cancel = PQgetCancel(conn);
	char error[256];

	if (cancel == NULL)
		return false;
	if (timeout_ms <= 0)
	{
		bool sent = PQcancel(cancel, error, sizeof(error));
		PQfreeCancel(cancel);
		return sent;
	}

	int fds[2];
	CancelRequest *request = (CancelRequest *) malloc(sizeof(CancelRequest));
	if (request == NULL || pipe2(fds, O_CLOEXEC) != 0)
	{
		free(request);
		PQfreeCancel(cancel);
		return false;
	}
	request->cancel = cancel;
	request->done_fd = fds[1];

	/* The thread blocks every signal: PostgreSQL's handlers must only ever run on the backend's own thread. */
	sigset_t all;
	sigset_t saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	pthread_attr_t attributes;
	pthread_t thread;
	pthread_attr_init(&attributes);
	pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attributes, 256 * 1024);
	int started = pthread_create(&thread, &attributes, CancelThread, request);
	pthread_attr_destroy(&attributes);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (started != 0)
	{
		close(fds[0]);
		close(fds[1]);
		PQfreeCancel(cancel);
		free(request);
		return false;
	}

	/* Wait for the thread's byte; signals (EINTR) do not shorten or lengthen the bound. */
	int64 deadline = MonotonicMs() + timeout_ms;
	char answer = 0;
	for (;;)
	{
		struct pollfd pfd = {fds[0], POLLIN, 0};
		int64 left = deadline - MonotonicMs();
		if (left <= 0)
			break;
		int ready = poll(&pfd, 1, (int) left);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready > 0 && read(fds[0], &answer, 1) != 1)
			answer = 0;
		break;
	}
	close(fds[0]);
	return answer == 1;
}

void
BreakConnection(PGconn *conn) noexcept
{
	int sock = PQsocket(conn);
	if (sock < 0)
		return;
	shutdown(sock, SHUT_RDWR);
	/* libpq reads the EOF, reports "server closed the connection" and sets CONNECTION_BAD. */
	(void) PQconsumeInput(conn);
}

PGresult *
WaitForResults(PGconn *conn, Oid serverid, const char *doing, bool stop_at_copy_in)
{
	NodeContext context;
	PGresult *last = NULL;

	PushNodeContext(&context, serverid, doing);
	for (;;)
	{
		while (PQisBusy(conn))
		{
			(void) WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH, PQsocket(conn),
			                         -1L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			if (!PQconsumeInput(conn))
			{
				PQclear(last);
				PopNodeContext(&context);
				return NULL;
			}
		}
		PGresult *result = PQgetResult(conn);
		if (result == NULL)
			break;
		PQclear(last);
		last = result;
		if (stop_at_copy_in && PQresultStatus(result) == PGRES_COPY_IN)
			break;
	}
	PopNodeContext(&context);
	return last;
}

void
NoteFdwConnection(PGconn *conn)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(XactCallback, NULL);
		RegisterSubXactCallback(SubXactCallback, NULL);
		callbacks_registered = true;
	}
	for (int i = 0; i < noted_count; i++)
		if (noted_connections[i] == conn)
			return;
	if (noted_count < kMaxNotedConnections)
		noted_connections[noted_count++] = conn;
}

void
InitNodeWait(void)
{
	DefineCustomIntVariable(
	    "fdwshard.connect_timeout", "How long connecting to a worker, or having it take a cancel request, may take.",
	    "0 waits without limit. postgres_fdw's connections follow it in whole seconds (at least "
	    "2) unless the server has its own connect_timeout option.",
	    &connect_timeout_ms, 5000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, NULL, AssignConnectTimeout, NULL);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, InvalidateNodeNames, (Datum) 0);
}

} // namespace fdwshard::remote
