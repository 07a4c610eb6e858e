/*
 * Recovery of prepared transactions (see transaction/recovery.h). For each worker: read this
 * database's decision-log rows for the node, then list the prepared transactions there whose
 * gid has this coordinator's and database's prefix. A prepared transaction whose local
 * transaction is still running is left alone (its commit may be under way). For the others the
 * local transaction has ended, so a fresh snapshot of the log tells its outcome: a row means it
 * committed (COMMIT PREPARED), no row that it aborted or never got to its decision (ROLLBACK
 * PREPARED). Rows read before the listing whose gid is no longer prepared were committed by
 * then: they are deleted, so the log stays as small as the transactions in doubt.
 */
#include "fdwshard/transaction/recovery.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/remote/node_wait.h"
#include "fdwshard/remote/own_connection.h"
#include "fdwshard/transaction/two_phase.h"

extern "C"
{
#include "storage/procarray.h"
#include "utils/snapmgr.h"
}

namespace fdwshard::transaction
{

namespace
{

/* Runs sql (no result rows expected but allowed) on connection; NULL, or the error's text. */
char *
RunOnWorker(remote::OwnConnection *connection, const char *sql, PGresult **result_out)
{
	connection->in_flight = true;
	if (!PQsendQuery(connection->conn, sql))
	{
		connection->in_flight = false;
		return pchomp(PQerrorMessage(connection->conn));
	}
	PGresult *result = remote::WaitForOwnResult(connection, sql);
	ExecStatusType status = PQresultStatus(result);
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
	{
		char *error = pchomp(PQresultErrorMessage(result));
		PQclear(result);
		return error;
	}
	if (result_out != NULL)
		*result_out = result;
	else
		PQclear(result);
	return NULL;
}

/*
 * Whether the decision log has a row for gid, under the latest snapshot: the transaction
 * snapshot of a REPEATABLE READ caller may predate the commit that wrote the row.
 */
bool
DecisionLogged(const char *gid)
{
	Relation log = table_open(get_relname_relid("transactions", get_namespace_oid("fdwshard", false)), AccessShareLock);
	Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
	ScanKeyData key;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(gid));
	SysScanDesc scan = systable_beginscan(log, InvalidOid, false, snapshot, 1, &key);
	bool logged = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(log, AccessShareLock);
	return logged;
}

/* The local transaction a gid with this coordinator's prefix names (its xid's low 32 bits). */
TransactionId
LocalXidOf(const char *gid, size_t prefix_length)
{
	uint64 full = strtoull(gid + prefix_length, NULL, 10);
	return (TransactionId) (full & 0xFFFFFFFF);
}

/* One node's pass; returns how many prepared transactions it resolved. */
int
RecoverNode(int32 nodeid, Oid serverid, const char *prefix)
{
	/* 1. The log rows of the node, before the listing. */
	PushActiveSnapshot(GetTransactionSnapshot());
	uint64 logged =
	    catalog::SpiRun("SELECT gid FROM fdwshard.transactions WHERE nodeid = $1", {catalog::Int4Arg(nodeid)});
	List *logged_gids = NIL;
	for (uint64 row = 0; row < logged; row++)
		logged_gids = lappend(logged_gids, pstrdup(catalog::SpiText(row, 1)));
	PopActiveSnapshot();

	/* 2. This coordinator's and database's prepared transactions on the node. */
	remote::OwnConnection *connection = remote::GetOwnConnection(serverid, 0, true);
	if (connection == NULL)
		return 0;
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfo(&sql,
	                 "SELECT gid FROM pg_catalog.pg_prepared_xacts WHERE database = pg_catalog.current_database() "
	                 "AND pg_catalog.starts_with(gid, %s)",
	                 quote_literal_cstr(prefix));
	PGresult *listing = NULL;
	char *error = RunOnWorker(connection, sql.data, &listing);
	if (error != NULL)
	{
		ereport(WARNING, (errmsg("could not list prepared transactions on %s", remote::NodeName(serverid)),
		                  errdetail_internal("%s", error)));
		return 0;
	}
	List *prepared = NIL;
	for (int row = 0; row < PQntuples(listing); row++)
		prepared = lappend(prepared, pstrdup(PQgetvalue(listing, row, 0)));
	PQclear(listing);

	/* 3. Each one whose local transaction has ended: committed if logged, else rolled back. */
	int resolved = 0;
	List *done = NIL;
	ListCell *cell;
	foreach (cell, prepared)
	{
		const char *gid = (const char *) lfirst(cell);
		if (TransactionIdIsInProgress(LocalXidOf(gid, strlen(prefix))))
			continue;
		bool commit = DecisionLogged(gid);
		const char *command = psprintf("%s PREPARED %s", commit ? "COMMIT" : "ROLLBACK", quote_literal_cstr(gid));
		error = RunOnWorker(connection, command, NULL);
		/* Gone meanwhile: the committing backend or another recovery finished it. */
		if (error != NULL && strstr(error, "does not exist") == NULL)
		{
			ereport(WARNING,
			        (errmsg("could not resolve prepared transaction %s on %s", gid, remote::NodeName(serverid)),
			         errdetail_internal("%s", error)));
			continue;
		}
		if (error == NULL)
		{
			ereport(LOG, (errmsg("fdwshard: %s prepared transaction %s on %s", commit ? "committed" : "rolled back",
			                     gid, remote::NodeName(serverid))));
			resolved++;
		}
		done = lappend(done, (void *) gid);
	}

	/* 4. Rows read in 1. whose transaction is no longer prepared there are not needed any more. */
	foreach (cell, logged_gids)
	{
		const char *gid = (const char *) lfirst(cell);
		bool still_prepared = false;
		ListCell *other;
		foreach (other, prepared)
			still_prepared = still_prepared || strcmp(gid, (const char *) lfirst(other)) == 0;
		foreach (other, done)
			still_prepared = still_prepared && strcmp(gid, (const char *) lfirst(other)) != 0;
		if (!still_prepared)
			catalog::CatalogWrite("DELETE FROM fdwshard.transactions WHERE gid = $1", {catalog::TextArg(gid)});
	}
	return resolved;
}

} // namespace

int
RecoverPreparedTransactions(void)
{
	char *prefix = GidPrefix();
	int resolved = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	uint64 nodes = catalog::SpiRun(
	    "SELECT n.nodeid, s.oid FROM fdwshard.node n JOIN pg_catalog.pg_foreign_server s ON s.srvname = n.server_name "
	    "WHERE NOT n.is_local ORDER BY n.nodeid");
	int32 *nodeids = (int32 *) palloc(sizeof(int32) * (nodes + 1));
	Oid *servers = (Oid *) palloc(sizeof(Oid) * (nodes + 1));
	for (uint64 row = 0; row < nodes; row++)
	{
		nodeids[row] = catalog::SpiInt4(row, 1);
		bool is_null;
		servers[row] = DatumGetObjectId(catalog::SpiValue(row, 2, &is_null));
	}
	for (uint64 row = 0; row < nodes; row++)
	{
		/* A node that cannot be reached now is tried again on the next pass. */
		MemoryContext context = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		BeginInternalSubTransaction(NULL);
		PG_TRY();
		{
			resolved += RecoverNode(nodeids[row], servers[row], prefix);
			ReleaseCurrentSubTransaction();
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(context);
			ErrorData *edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			CurrentResourceOwner = owner;
			ereport(WARNING, (errmsg("could not recover prepared transactions on %s", remote::NodeName(servers[row])),
			                  errdetail_internal("%s", edata->message)));
			FreeErrorData(edata);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
	}
	SPI_finish();
	return resolved;
}

} // namespace fdwshard::transaction
