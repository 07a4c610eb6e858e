/* fdwshard's own connections to workers (not postgres_fdw's): statements that are transactions of their own. */
#pragma once

#include "fdwshard/pg.h"
#include "fdwshard/remote/connection_budget.h"

namespace fdwshard::remote
{

/*
 * A connection of this backend to one worker as one user mapping; a user mapping has several
 * (index 0 for whole-transaction statements, 1.. for the pool of multi-shard reads). Each runs
 * its statements in implicit transactions of the worker, with fdwshard's session settings
 * (search_path pg_catalog, UTC, ISO dates, READ COMMITTED). C-style: owned by this file for the
 * life of the backend.
 */
struct OwnConnection
{
	Oid user_mapping; /* hash key, with index */
	int index;
	Oid serverid;   /* the worker's server, for errors that name the node */
	PGconn *conn;   /* NULL until connected */
	bool in_flight; /* a command was sent and its result not yet read: unusable, reconnect */
	bool stale;     /* the server or user mapping changed: reconnect before the next use */
	bool lent;      /* a multi-shard run uses it until it ends: nobody else may */
	HTAB *prepared; /* what is prepared on conn (remote/prepared_statements.h); NULL when nothing is */
	int prepared_count;
	WaitEventSet *wait_set;       /* latch, postmaster death and conn's socket; NULL until the first wait */
	BudgetSlot slot;              /* its place in the connection budget */
	TimestampTz last_used;        /* when it was last handed out */
	LocalTransactionId used_lxid; /* the local transaction it was last handed out in */
	bool connecting;              /* started by GetOwnConnection(defer): FinishOwnConnecting completes it */
	bool password_checked;        /* it must have used a password (a non-superuser's mapping requires one) */
};

/*
 * Connection index of the current user to serverid, connected if needed (bounded by
 * fdwshard.connect_timeout, interruptible). A new connection takes a slot of the budget: with
 * wait, waits for one; without, returns NULL when the budget is spent. NULL too when the
 * connection is lent to a run (a statement running inside another's shard work). With defer, a
 * new connection is only started (connecting): FinishOwnConnecting completes it, with others.
 */
OwnConnection *GetOwnConnection(Oid serverid, int index, bool wait, bool defer = false);

/*
 * Completes the started (connecting) connections among entries at once: connects them
 * concurrently, bounded by fdwshard.connect_timeout and interruptible, then sends each its session
 * setup and reads them all. A session's first multi-shard read opened its pool connections one
 * after the other before: 32 of them, a few ms each, were most of its time. When one fails, every
 * connection of entries that was connecting is closed and the first failure raised, naming its node.
 */
void FinishOwnConnecting(OwnConnection *const *entries, int count);

/*
 * Reads every result of the command sent on connection, returning the last (free with PQclear).
 * On a cancel or timeout the worker is asked to stop (bounded) and the connection is closed.
 */
PGresult *WaitForOwnResult(OwnConnection *connection, const char *sql);

/* WaitForOwnResult, the remote error (anything but a command or rows) raised as a local ERROR. */
PGresult *WaitForOwnSuccess(OwnConnection *connection, const char *sql);

/*
 * The results of a pipeline on connection up to its sync: the last statement's, or the first
 * error raised as a local ERROR (the first statement's error marks the connection stale: it is
 * a PREPARE the registry counts). The connection leaves pipeline mode.
 */
PGresult *WaitForOwnPipeline(OwnConnection *connection, const char *sql);

/*
 * Closes connection, first asking the worker to stop what runs on it (with cancel; bounded by
 * fdwshard.connect_timeout). Returns false when the worker did not take the cancel in time.
 */
bool AbandonOwnConnection(OwnConnection *connection, bool cancel);

/* Closes this backend's own connections that run nothing (only_wanted: those other backends wait for). */
void CloseIdleOwnConnections(bool only_wanted);

/*
 * Before a commit (or with cutoff 0, anywhere: closes nothing): closes the own connections that
 * run nothing and were last used before cutoff, not in this transaction. Returns when the
 * oldest of those left open was last used (now for those of this transaction), 0 when none is open.
 */
TimestampTz CloseOwnConnectionsUnusedSince(TimestampTz cutoff, TimestampTz now);

/*
 * Tries serverid's worker now, as the current user, on a connection of its own opened and closed
 * here (not from the budget: it lasts one round trip): connect and SELECT 1, each within
 * fdwshard.connect_timeout. Records the outcome in the node's health and returns NULL when the
 * worker answered, else the error, starting with the node's name and address. Raises no error.
 */
char *ProbeNode(Oid serverid);

/*
 * PQconnectdbParams without its blocking: waits on the socket with the latch, so a cancel or
 * statement_timeout ends it (closing the half-open connection), and gives up after
 * fdwshard.connect_timeout (a frozen server accepts the TCP connection and never answers).
 * Returns a connection that is CONNECTION_OK, or NULL with *error set (nothing left open).
 */
PGconn *ConnectInterruptibly(const char *const *keywords, const char *const *values, char **error);

/* Registers the invalidation callbacks that drop connections when servers or user mappings change. */
void InitOwnConnections(void);

} // namespace fdwshard::remote
