/*
 * fdwshard.drop_trigger(): sql_drop event trigger. Dropping a distributed table drops its local
 * and foreign partitions natively; this drops the shard tables on the workers and the catalog
 * rows, in the same transaction. Dropping a single shard is refused.
 */
#include "fdwshard/catalog/spi.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"
#include "fdwshard/remote/user_mapping.h"

namespace fdwshard
{

namespace
{

using namespace catalog;

void
DropShards(void)
{
	SPI_connect();

	/* DROP EXTENSION takes the catalog with it: nothing left to do. */
	if (SpiRun("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	           "WHERE n.nspname = 'fdwshard' AND c.relname = 'shard'") == 0)
	{
		SPI_finish();
		return;
	}

	const char *dropped = "WITH dropped AS (SELECT objid, schema_name, object_name FROM "
	                      "pg_event_trigger_dropped_objects() WHERE classid = 'pg_class'::regclass AND objsubid = 0) ";

	if (SpiRun(psprintf("%sSELECT d.object_name FROM dropped d JOIN fdwshard.shard s ON s.shard_relid = d.objid "
	                    "WHERE s.logicalrelid NOT IN (SELECT objid FROM dropped) LIMIT 1",
	                    dropped)) > 0)
		ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
		                errmsg("cannot drop shard \"%s\" of a distributed table", SpiText(0, 1)),
		                errhint("Drop the distributed table instead.")));

	uint64 count = SpiRun(psprintf("%sSELECT n.server_name, d.schema_name, d.object_name FROM dropped d "
	                               "JOIN fdwshard.shard s ON s.shard_relid = d.objid "
	                               "JOIN fdwshard.placement p USING (shardid) JOIN fdwshard.node n USING (nodeid) "
	                               "WHERE NOT n.is_local ORDER BY s.shardid",
	                               dropped));
	SPITupleTable *remote_shards = SPI_tuptable;
	for (uint64 row = 0; row < count; row++)
	{
		TupleDesc desc = remote_shards->tupdesc;
		HeapTuple tuple = remote_shards->vals[row];
		Oid serverid = get_foreign_server_oid(SPI_getvalue(tuple, desc, 1), false);
		remote::RequireUserMapping(serverid);
		char *sql = psprintf("DROP TABLE IF EXISTS %s CASCADE", /* shard foreign keys of other tables */
		                     remote::QualifiedName(SPI_getvalue(tuple, desc, 2), SPI_getvalue(tuple, desc, 3)));
		remote::ExecuteOnServer(serverid, sql);
	}

	if (CatalogWrite(psprintf(
	        "%sDELETE FROM fdwshard.distributed_table WHERE logicalrelid IN (SELECT objid FROM dropped)", dropped)) > 0)
		CatalogWrite("DELETE FROM fdwshard.colocation_group g WHERE NOT EXISTS "
		             "(SELECT 1 FROM fdwshard.distributed_table t WHERE t.colocationid = g.colocationid)");
	SPI_finish();
}

} // namespace

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(drop_trigger);

	Datum drop_trigger(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
				    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				                    errmsg("fdwshard.drop_trigger() must be called as an event trigger")));
			    fdwshard::DropShards();
			    PG_RETURN_VOID();
		    });
	}
}
