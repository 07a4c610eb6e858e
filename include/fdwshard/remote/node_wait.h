/* Bounded waits on worker nodes: the connect timeout, cancels that cannot hang, errors that name the node. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/* fdwshard.connect_timeout in milliseconds (0: wait without limit); also bounds a cancel request. */
extern int connect_timeout_ms;

/*
 * An error context that names the node (as "node N (host:port)") of a connection attempt or a
 * remote wait. It adds its line only to connection failures (class 08), a connection refused
 * for want of a password (2F003) and cancels or timeouts (57014), so the worker's own errors
 * read as they would on the worker; connection failures are
 * also recorded in the node's health (remote/node_health.h).
 */
struct NodeContext
{
	ErrorContextCallback callback;
	Oid serverid;      /* the node's server: a connection failure goes to its health */
	const char *node;  /* "node 3 (127.0.0.1:5433)" */
	const char *doing; /* "while connecting to" or "while waiting for" */
};

/* "node N (host:port)" of serverid's worker, for messages; "server <oid>" once the server is gone. */
const char *NodeName(Oid serverid);

/* Pushes context for serverid onto error_context_stack; pop it with PopNodeContext on the way out. */
void PushNodeContext(NodeContext *context, Oid serverid, const char *doing);
void PopNodeContext(NodeContext *context);

/*
 * Asks the server to cancel conn's running query and waits at most timeout_ms (0: without limit)
 * for it to take the request. libpq 15's PQcancel waits until the server closes the cancel
 * connection, forever on a frozen server, so it runs in a short-lived thread of its own (it
 * touches no PostgreSQL state); one that does not finish in time is left to end with the server's
 * answer or the backend. Returns whether the server took the request. Never raises an error.
 */
bool CancelWithin(PGconn *conn, int timeout_ms) noexcept;

/* Marks conn broken (CONNECTION_BAD) without talking to the server: shutdown(2) and read the EOF. */
void BreakConnection(PGconn *conn) noexcept;

/*
 * Waits for every result of the command sent on conn, interruptibly (a cancel or timeout
 * raises the error, naming serverid's node "doing ..."), and returns the last one; with
 * stop_at_copy_in, stops at COPY IN. NULL when the connection failed: its error is on conn.
 */
PGresult *WaitForResults(PGconn *conn, Oid serverid, const char *doing, bool stop_at_copy_in);

/*
 * Remembers a postgres_fdw connection fdwshard used in this transaction. If the transaction or
 * subtransaction aborts while a query is in flight on it, a bounded cancel runs first, and a
 * server that does not answer has its connection broken, so postgres_fdw's own abort cleanup
 * (an unbounded PQcancel in PostgreSQL 15) finds it unusable and discards it instead of hanging.
 */
void NoteFdwConnection(PGconn *conn);

/* Registers fdwshard.connect_timeout and the cache invalidation of node names. */
void InitNodeWait(void);

} // namespace fdwshard::remote
