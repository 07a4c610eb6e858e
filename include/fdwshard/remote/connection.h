/* Remote commands on worker nodes through postgres_fdw's own connection cache and transactions. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/*
 * Runs a command on the server in the local transaction; a remote error becomes a local ERROR.
 * It and QueryOnServer count as writes for the transaction's commit (transaction/two_phase.h).
 */
void ExecuteOnServer(Oid serverid, const char *sql);

/*
 * Runs sqls[i], one statement or several separated by semicolons, on servers[i] in the local
 * transaction, every server at once: one round trip per server, however many statements (DDL on
 * many shards of a node). Counts as writes like ExecuteOnServer. The first remote error becomes a
 * local ERROR whose context shows the server's statements (cut when long); *failed, when given,
 * is set to the index of the server whose result is being read.
 */
void ExecuteOnServers(int count, const Oid *servers, const char *const *sqls, int *failed = nullptr);

/* Runs sql on the server and returns the first column of the first row, or the command tag. */
char *QueryOnServer(Oid serverid, const char *sql);

/*
 * Runs sql with text parameters (types must exist on the worker: built-in) in one round trip on
 * the session's connection to serverid, inside the remote transaction. Returns the result (free
 * with PQclear); a remote error becomes a local ERROR with the worker's SQLSTATE. writes: sql may
 * change something, so the commit must count the worker as written (transaction/two_phase.h).
 */
PGresult *ExecuteParams(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values,
                        bool writes);

/*
 * ExecuteParams in two halves, so statements on several workers run at once: SendParams sends
 * without waiting and returns the connection; FinishParams waits for that statement's result.
 * Until FinishParams, nothing else may use the connection.
 */
PGconn *SendParams(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values,
                   bool writes);
/*
 * postgres_fdw's connection of the current user to serverid, in the remote transaction and
 * counted as written, for a COPY stream the caller drives with libpq (nothing else may use it
 * until the COPY's result is read).
 */
PGconn *CopyConnection(Oid serverid);

PGresult *FinishParams(Oid serverid, PGconn *conn, const char *sql);

/* Raises the error in result (or the connection's) as postgres_fdw does, with the worker's SQLSTATE; frees result. */
[[noreturn]] void ReportRemoteError(PGresult *result, PGconn *conn, const char *sql);

/* postgres_fdw's set/reset_transmission_modes: DateStyle ISO etc. while printing values for the worker. */
int SetTransmissionModes(void);
void ResetTransmissionModes(int nest_level);

/* Opens (or reuses) postgres_fdw's connection of userid to serverid in the remote transaction, and settles its
 * isolation. */
void SettleConnection(Oid serverid, Oid userid, bool writes);

/* A postgres_fdw connection the current transaction may have written through (see WrittenConnections). */
struct WrittenConnection
{
	Oid user_mapping;
	Oid serverid;
	PGconn *conn;
};

/*
 * The postgres_fdw connections this local transaction may have written through: those handed
 * out with writes (statements sent by fdwshard that change data or schema, plans' foreign
 * modifications, rows routed into foreign shards, COPY, TRUNCATE). Returns their count and a
 * palloc'd array.
 */
int WrittenConnections(WrittenConnection **connections_out);

/* Runs a command without result rows on a connection postgres_fdw handed out; errors as postgres_fdw reports them. */
void ExecuteOnConnection(PGconn *conn, const char *sql);

/*
 * Counts in the connection budget the postgres_fdw connections a plan's foreign scans and
 * modifications will open, waiting for slots if need be, before ExecutorStart opens them.
 */
void HoldPlanConnections(PlannedStmt *stmt);

/* Whether this local transaction used postgres_fdw's connection of userid to serverid (it may have written there). */
bool FdwConnectionUsedInTransaction(Oid serverid, Oid userid);

/* Whether this local transaction holds budget slots of postgres_fdw connections it uses. */
bool TransactionHoldsFdwConnections(void);

/* While waiting for a slot: closes postgres_fdw's connections that others wait for and this transaction does not use.
 */
void CloseIdleFdwConnections(void);

/* At the end of a transaction, after postgres_fdw's own callback: gives every postgres_fdw connection back if others
 * wait. */
void CloseFdwConnectionsAtTransactionEnd(void);

/*
 * Before a commit, after postgres_fdw's pre-commit callback (or with cutoff 0, anywhere: closes
 * nothing): closes postgres_fdw's connections to the workers none of whose connections was used
 * since cutoff or in this transaction. Returns when the oldest of those left open was last used
 * (now for those of this transaction), 0 when none is open.
 */
TimestampTz CloseFdwConnectionsUnusedSince(TimestampTz cutoff, TimestampTz now);

} // namespace fdwshard::remote
