/*
 * fdwshard_create_restore_point(name): one named restore point on every node, taken while no
 * distributed transaction can be half-committed, so that all nodes can be recovered to the same
 * moment. A transaction that writes on two nodes or more logs its commit decision in
 * fdwshard.transactions before any worker prepares (transaction/two_phase.cpp); holding that
 * table in EXCLUSIVE mode waits for the ones logging now to commit locally and keeps new ones
 * from preparing. At the restore point a worker then holds, for each such transaction, either its
 * commit or a prepared transaction whose decision the coordinator has: recovery finishes it.
 */
#include "fdwshard/catalog/spi.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/autocommit.h"

extern "C"
{
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "funcapi.h"
#include "utils/pg_lsn.h"
}

namespace fdwshard
{

namespace
{

void
CheckRestorePointName(const char *name)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be superuser to create a restore point"),
		                errhint("Each node's restore point is made with its user mapping's role, which must be "
		                        "allowed to call pg_create_restore_point() there.")));
	if (RecoveryInProgress())
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("recovery is in progress"),
		                errhint("WAL control functions cannot be executed during recovery.")));
	if (!XLogIsNeeded())
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("WAL level not sufficient for creating a restore point"),
		                errhint("wal_level must be set to \"replica\" or \"logical\" at server start.")));
	if (strlen(name) >= MAXFNAMELEN)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("value too long for restore point (maximum %d characters)", MAXFNAMELEN - 1)));
}

} // namespace

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_create_restore_point);

	/* fdwshard_create_restore_point(name text) RETURNS TABLE (nodeid int, lsn pg_lsn) */
	Datum fdwshard_create_restore_point(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    if (PG_ARGISNULL(0))
				    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				                    errmsg("the restore point's name must not be NULL")));
			    char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
			    fdwshard::CheckRestorePointName(name);
			    InitMaterializedSRF(fcinfo, 0);
			    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

			    /* No distributed commit between the nodes' restore points (see the header comment). */
			    LockRelationOid(get_relname_relid("transactions", get_namespace_oid("fdwshard", false)), ExclusiveLock);

			    /* The node list outlives SPI: copied into this function's memory. */
			    MemoryContext caller = CurrentMemoryContext;
			    SPI_connect();
			    uint64 count = fdwshard::catalog::SpiRun(
			        "SELECT nodeid, CASE WHEN NOT is_local THEN server_name END FROM fdwshard.node ORDER BY nodeid");
			    int32 *nodeids = (int32 *) MemoryContextAlloc(caller, sizeof(int32) * Max(count, 1));
			    char **servers = (char **) MemoryContextAlloc(caller, sizeof(char *) * Max(count, 1));
			    for (uint64 row = 0; row < count; row++)
			    {
				    nodeids[row] = fdwshard::catalog::SpiInt4(row, 1);
				    char *server = fdwshard::catalog::SpiText(row, 2);
				    servers[row] = server != NULL ? MemoryContextStrdup(caller, server) : NULL;
			    }
			    SPI_finish();

			    for (uint64 row = 0; row < count; row++)
			    {
				    XLogRecPtr lsn;
				    if (servers[row] == NULL)
					    lsn = XLogRestorePoint(name);
				    else
				    {
					    /* A statement of its own on the worker: the restore point is no write of this transaction. */
					    Oid serverid = get_foreign_server_oid(servers[row], false);
					    Oid types[1] = {TEXTOID};
					    const char *values[1] = {name};
					    PGresult *result = fdwshard::remote::ExecuteAutocommit(
					        serverid, "SELECT pg_catalog.pg_create_restore_point($1)", 1, types, values);
					    lsn = DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(PQgetvalue(result, 0, 0))));
					    PQclear(result);
				    }
				    Datum out[2] = {Int32GetDatum(nodeids[row]), LSNGetDatum(lsn)};
				    bool nulls[2] = {false, false};
				    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
			    }
			    return (Datum) 0;
		    });
	}
}
