/*
 * Two-phase commit (see transaction/two_phase.h). postgres_fdw commits its remote transactions
 * one after another in its pre-commit callback: a failure (a worker gone, a deferred constraint)
 * after the first leaves that one committed. So when a transaction wrote on two nodes or more
 * (the coordinator's own writes count as one), fdwshard's pre-commit callback, which runs before
 * postgres_fdw's, records the commit decision in fdwshard.transactions as part of the local
 * transaction and prepares every written remote transaction. postgres_fdw then commits
 * the empty transactions left on its connections, the local commit makes the decision durable,
 * and the commit callback commits the prepared transactions. Whatever fails after the decision
 * (a worker down, a lost connection, a coordinator crash) is finished by recovery
 * (transaction/recovery.cpp) from the log; whatever fails before it is rolled back, here or by
 * recovery, which rolls back prepared transactions without a decision.
 */
#include "fdwshard/transaction/two_phase.h"

#include "fdwshard/guard.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/node_wait.h"

#include <poll.h>

extern "C"
{
#include "access/xlog.h"
#include "utils/timestamp.h"
}

namespace fdwshard::transaction
{

bool two_phase_commit = true;

namespace
{

/* A remote transaction taking part in the two-phase commit of the current transaction. */
struct Branch
{
	char *gid;
	Oid serverid;
	int32 nodeid;
	const char *node; /* "node N (host:port)", for warnings after the commit (no catalog access then) */
	PGconn *conn;
	bool sent;     /* PREPARE TRANSACTION was sent: the branch may be prepared */
	bool prepared; /* the worker answered that it is */
};

/* The current transaction's branches, in TopTransactionContext; NULL outside a two-phase commit. */
Branch *branches = NULL;
int branch_count = 0;
bool callbacks_registered = false;

/* Test only: sleeps at points of the protocol, so that a test can kill a node there. */
int test_sleep_after_prepare_ms = 0;
int test_sleep_after_local_commit_ms = 0;

int32
NodeIdOfServer(Oid serverid)
{
	const char *name = GetForeignServer(serverid)->servername;
	return (int32) strtol(name + strlen("fdwshard_node_"), NULL, 10);
}

/*
 * Waits at most timeout_ms (0: without limit) for every result of the command running on conn,
 * without interrupts (a commit callback cannot raise errors). Returns the last result, or NULL
 * when the connection failed or the time ran out: then the connection is broken, so that nothing
 * waits on it again, and postgres_fdw closes it at the end of the transaction.
 */
PGresult *
WaitWithin(PGconn *conn, int timeout_ms)
{
	TimestampTz deadline = timeout_ms > 0 ? TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms) : 0;
	PGresult *last = NULL;

	for (;;)
	{
		while (PQisBusy(conn))
		{
			long left = deadline != 0 ? TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline) : -1;
			if (deadline != 0 && left <= 0)
			{
				PQclear(last);
				remote::BreakConnection(conn);
				return NULL;
			}
			struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
			int ready = poll(&pfd, 1, deadline != 0 ? (int) Min(left, INT_MAX) : -1);
			if (ready < 0 && errno != EINTR)
			{
				PQclear(last);
				remote::BreakConnection(conn);
				return NULL;
			}
			if (ready > 0 && !PQconsumeInput(conn))
			{
				PQclear(last);
				return NULL;
			}
		}
		PGresult *result = PQgetResult(conn);
		if (result == NULL)
			return last;
		PQclear(last);
		last = result;
	}
}

/* Runs sql on conn within the connect timeout; true when it succeeded, else *error says why. */
bool
CommandWithin(PGconn *conn, const char *sql, char **error)
{
	*error = NULL;
	if (PQstatus(conn) != CONNECTION_OK || !PQsendQuery(conn, sql))
	{
		*error = pchomp(PQerrorMessage(conn));
		return false;
	}
	PGresult *result = WaitWithin(conn, remote::connect_timeout_ms);
	bool ok = result != NULL && PQresultStatus(result) == PGRES_COMMAND_OK;
	if (!ok)
		*error = result == NULL ? psprintf("no answer within %d ms", remote::connect_timeout_ms)
		                        : pchomp(PQresultErrorMessage(result));
	PQclear(result);
	return ok;
}

/*
 * Rolls branch back: ends the empty transaction left after PREPARE, then ROLLBACK PREPARED
 * (which cannot run inside one), then opens it again for postgres_fdw, which still counts it
 * open and will end it. A failure is left to recovery, which rolls back what has no decision.
 */
void
RollBackBranch(Branch *branch)
{
	PGconn *conn = branch->conn;
	char *error;

	/* An answer still on its way (a cancelled PREPARE, say) comes first. */
	if (PQisBusy(conn))
		PQclear(WaitWithin(conn, remote::connect_timeout_ms));
	if (PQstatus(conn) != CONNECTION_OK)
		return;
	bool in_block = PQtransactionStatus(conn) == PQTRANS_INTRANS || PQtransactionStatus(conn) == PQTRANS_INERROR;
	if (in_block && !CommandWithin(conn, "ROLLBACK", &error))
		return;
	if (!CommandWithin(conn, psprintf("ROLLBACK PREPARED %s", quote_literal_cstr(branch->gid)), &error) &&
	    strstr(error, "does not exist") == NULL)
		ereport(WARNING, (errmsg("could not roll back prepared transaction %s on %s", branch->gid, branch->node),
		                  errdetail_internal("%s", error),
		                  errhint("fdwshard's recovery rolls it back (fdwshard_recover_prepared_transactions).")));
	if (in_block)
		(void) CommandWithin(conn, "START TRANSACTION", &error);
}

void
RollBackBranches(void)
{
	for (int i = 0; i < branch_count; i++)
		if (branches[i].sent)
			RollBackBranch(&branches[i]);
	branches = NULL;
	branch_count = 0;
}

/* Records the commit decision for branch in fdwshard.transactions, in the local transaction. */
void
LogDecision(Relation log, const Branch *branch)
{
	Datum values[3] = {CStringGetTextDatum(branch->gid), Int32GetDatum(branch->nodeid),
	                   TimestampTzGetDatum(GetCurrentTimestamp())};
	bool nulls[3] = {false, false, false};
	HeapTuple tuple = heap_form_tuple(RelationGetDescr(log), values, nulls);
	CatalogTupleInsert(log, tuple);
	heap_freetuple(tuple);
}

/*
 * Pre-commit: prepares every written remote transaction when the transaction wrote on two nodes
 * or more, then logs the decision. Any failure raises the worker's error after rolling back what
 * was prepared, and the transaction aborts everywhere.
 */
void
PrepareBranches(void)
{
	branches = NULL;
	branch_count = 0;
	if (!two_phase_commit)
		return;
	remote::WrittenConnection *written;
	int count = remote::WrittenConnections(&written);
	bool local_wrote = TransactionIdIsValid(GetTopTransactionIdIfAny());
	if (count == 0 || count + (local_wrote ? 1 : 0) < 2)
		return;

	FullTransactionId fxid = GetTopFullTransactionId();
	Branch *prepared = (Branch *) MemoryContextAllocZero(TopTransactionContext, sizeof(Branch) * count);
	for (int i = 0; i < count; i++)
	{
		prepared[i].gid = MemoryContextStrdup(TopTransactionContext, TransactionGid(fxid, written[i].user_mapping));
		prepared[i].serverid = written[i].serverid;
		prepared[i].nodeid = NodeIdOfServer(written[i].serverid);
		prepared[i].node = MemoryContextStrdup(TopTransactionContext, remote::NodeName(written[i].serverid));
		prepared[i].conn = written[i].conn;
	}
	branches = prepared;
	branch_count = count;

	/*
	 * The decision rows go in first (they count only if the local commit does), and are flushed
	 * with the xid they carry before any worker prepares: after a crash that lost this xid's WAL,
	 * the xid would be handed out again, and recovery would take a stranger for the transaction
	 * named in the gids (and a later PREPARE could find the gid in use).
	 */
	Relation log =
	    table_open(get_relname_relid("transactions", get_namespace_oid("fdwshard", false)), RowExclusiveLock);
	for (int i = 0; i < count; i++)
		LogDecision(log, &branches[i]);
	table_close(log, NoLock);
	XLogFlush(XactLastRecEnd);
	/* The decision must survive a crash once the client hears of the commit. */
	ForceSyncCommit();

	/*
	 * Every worker prepares at once. The empty transaction opened after PREPARE is what
	 * postgres_fdw commits next: it still counts its remote transaction open.
	 */
	for (int i = 0; i < count; i++)
	{
		char *sql = psprintf("PREPARE TRANSACTION %s; START TRANSACTION", quote_literal_cstr(branches[i].gid));
		elog(DEBUG2, "fdwshard: on node %d: %s", branches[i].nodeid, sql);
		if (!PQsendQuery(branches[i].conn, sql))
			remote::ReportRemoteError(NULL, branches[i].conn, sql);
		branches[i].sent = true;
	}
	PGresult *failure = NULL;
	Branch *failed = NULL;
	for (int i = 0; i < count; i++)
	{
		PGresult *result =
		    remote::WaitForResults(branches[i].conn, branches[i].serverid, "while preparing the transaction on", false);
		/* The last result is START TRANSACTION's: PREPARE went through if the transaction is open again. */
		branches[i].prepared = result != NULL && PQresultStatus(result) == PGRES_COMMAND_OK &&
		                       PQtransactionStatus(branches[i].conn) == PQTRANS_INTRANS;
		if (!branches[i].prepared && failure == NULL)
		{
			failure = result;
			failed = &branches[i];
		}
		else
			PQclear(result);
	}
	if (failed != NULL)
	{
		PGconn *conn = failed->conn;
		RollBackBranches();
		remote::ReportRemoteError(failure, conn, "PREPARE TRANSACTION");
	}

	if (test_sleep_after_prepare_ms > 0)
		pg_usleep((long) test_sleep_after_prepare_ms * 1000L);
}

/* Commit: the decision is durable; a branch that cannot be committed now is left to recovery. */
void
CommitBranches(void)
{
	if (branch_count == 0)
		return;
	if (test_sleep_after_local_commit_ms > 0)
		pg_usleep((long) test_sleep_after_local_commit_ms * 1000L);

	for (int i = 0; i < branch_count; i++)
	{
		char *sql = psprintf("COMMIT PREPARED %s", quote_literal_cstr(branches[i].gid));
		branches[i].sent = PQstatus(branches[i].conn) == CONNECTION_OK && PQsendQuery(branches[i].conn, sql);
	}
	for (int i = 0; i < branch_count; i++)
	{
		const char *error = branches[i].sent ? NULL : pchomp(PQerrorMessage(branches[i].conn));
		if (branches[i].sent)
		{
			PGresult *result = WaitWithin(branches[i].conn, remote::connect_timeout_ms);
			if (result == NULL || PQresultStatus(result) != PGRES_COMMAND_OK)
				error = result == NULL ? psprintf("no answer within %d ms", remote::connect_timeout_ms)
				                       : pchomp(PQresultErrorMessage(result));
			PQclear(result);
		}
		/* Recovery may get there first: the local transaction has ended, and its decision is logged. */
		if (error != NULL && strstr(error, "does not exist") != NULL)
			error = NULL;
		if (error != NULL)
			ereport(WARNING,
			        (errmsg("could not commit prepared transaction %s on %s", branches[i].gid, branches[i].node),
			         errdetail_internal("%s", error),
			         errhint("The transaction is committed: fdwshard's recovery commits it there once the node is "
			                 "back (fdwshard_recover_prepared_transactions).")));
	}
	branches = NULL;
	branch_count = 0;
}

void
XactCallback(XactEvent event, void *)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			PrepareBranches();
			break;
		case XACT_EVENT_COMMIT:
			CommitBranches();
			break;
		case XACT_EVENT_ABORT:
			RollBackBranches();
			break;
		default:
			break;
	}
}

} // namespace

char *
GidPrefix(void)
{
	return psprintf("fdwshard_" UINT64_FORMAT "_%u_", GetSystemIdentifier(), MyDatabaseId);
}

char *
TransactionGid(FullTransactionId fxid, Oid umid)
{
	return psprintf("%s" UINT64_FORMAT "_%u", GidPrefix(), U64FromFullTransactionId(fxid), umid);
}

void
NoteRemoteWrite(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(pg::EntryPoint<XactCallback>::Call, NULL);
	callbacks_registered = true;
}

void
InitTwoPhaseCommit(void)
{
	DefineCustomBoolVariable("fdwshard.two_phase_commit",
	                         "Commits transactions that wrote on several nodes atomically, with two-phase commit.",
	                         "Off: postgres_fdw commits the workers one after another, and a failure part-way "
	                         "leaves some committed.",
	                         &two_phase_commit, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("fdwshard.test_sleep_after_prepare", "Test only: sleep after PREPARE TRANSACTION.", NULL,
	                        &test_sleep_after_prepare_ms, 0, 0, INT_MAX, PGC_SUSET,
	                        GUC_UNIT_MS | GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL, NULL, NULL, NULL);
	DefineCustomIntVariable("fdwshard.test_sleep_after_local_commit",
	                        "Test only: sleep after the local commit, before COMMIT PREPARED.", NULL,
	                        &test_sleep_after_local_commit_ms, 0, 0, INT_MAX, PGC_SUSET,
	                        GUC_UNIT_MS | GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL, NULL, NULL, NULL);
}

} // namespace fdwshard::transaction
