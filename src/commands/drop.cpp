/*
 * DROP of distributed tables and of the extension. fdwshard.drop_trigger(), a sql_drop event
 * trigger: dropping a distributed table drops its local and foreign partitions natively; this
 * drops the shard tables on the workers and the catalog rows, in the same transaction. Dropping a
 * single shard is refused. DROP EXTENSION fdwshard (ProcessDropExtension, before the extension
 * and its catalog are gone): refused while distributed tables exist, unless CASCADE, which drops
 * their shards on every worker; the foreign servers fdwshard made go with the extension.
 */
#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/catalog/spi.h"
#include "fdwshard/commands/utility_hook.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"
#include "fdwshard/remote/user_mapping.h"
#include "fdwshard/transaction/recovery.h"

namespace fdwshard
{

namespace
{

using namespace catalog;

/*
 * The tables of SPI's count result rows (server name, schema, table; by server) dropped on their
 * workers: one DROP TABLE ... CASCADE per worker (CASCADE: other tables' shard foreign keys), every
 * worker at once.
 */
void
DropTablesOnWorkers(uint64 count)
{
	Oid *servers = (Oid *) palloc0(sizeof(Oid) * (count + 1));
	const char **commands = (const char **) palloc0(sizeof(char *) * (count + 1));
	int nodes = 0;
	StringInfoData sql;
	for (uint64 row = 0; row < count; row++)
	{
		Oid serverid = get_foreign_server_oid(SpiText(row, 1), false);
		if (nodes == 0 || servers[nodes - 1] != serverid)
		{
			if (nodes > 0)
				commands[nodes - 1] = psprintf("%s CASCADE", sql.data);
			remote::RequireUserMapping(serverid);
			servers[nodes++] = serverid;
			initStringInfo(&sql);
			appendStringInfoString(&sql, "DROP TABLE IF EXISTS ");
		}
		else
			appendStringInfoString(&sql, ", ");
		appendStringInfoString(&sql, remote::QualifiedName(SpiText(row, 2), SpiText(row, 3)));
	}
	if (nodes == 0)
		return;
	commands[nodes - 1] = psprintf("%s CASCADE", sql.data);
	remote::ExecuteOnServers(nodes, servers, commands);
}

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

	/* One DROP TABLE per worker for all of its shards, every worker at once. */
	DropTablesOnWorkers(SpiRun(psprintf("%sSELECT n.server_name, d.schema_name, d.object_name FROM dropped d "
	                                    "JOIN fdwshard.shard s ON s.shard_relid = d.objid "
	                                    "JOIN fdwshard.placement p USING (shardid) JOIN fdwshard.node n USING (nodeid) "
	                                    "WHERE NOT n.is_local ORDER BY n.nodeid, s.shardid",
	                                    dropped)));

	if (CatalogWrite(psprintf(
	        "%sDELETE FROM fdwshard.distributed_table WHERE logicalrelid IN (SELECT objid FROM dropped)", dropped)) > 0)
		CatalogWrite("DELETE FROM fdwshard.colocation_group g WHERE NOT EXISTS "
		             "(SELECT 1 FROM fdwshard.distributed_table t WHERE t.colocationid = g.colocationid)");
	SPI_finish();
}

/* Whether stmt (a DROP EXTENSION) drops fdwshard: by name, or postgres_fdw with CASCADE (fdwshard needs it). */
bool
DropsFdwshard(DropStmt *stmt)
{
	ListCell *cell;
	foreach (cell, stmt->objects)
	{
		const char *name = strVal(lfirst(cell));
		if (strcmp(name, "fdwshard") == 0 || (strcmp(name, "postgres_fdw") == 0 && stmt->behavior == DROP_CASCADE))
			return true;
	}
	return false;
}

/*
 * Before the extension goes: prepared transactions this coordinator left on the workers are
 * finished now, while the decision log that tells how still exists (a recovery pass); one that
 * cannot be finished (its node down) keeps the extension.
 */
void
FinishInDoubtTransactions(void)
{
	transaction::RecoverPreparedTransactions();
	if (SpiRun("SELECT count(*)::int4, min(nodeid) FROM fdwshard.transactions") > 0 && SpiInt4(0, 1) > 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("cannot drop extension fdwshard while %d distributed transaction(s) are not finished on "
		                       "the workers",
		                       SpiInt4(0, 1)),
		                errdetail("Node %d, at least, may still hold a prepared transaction whose outcome only "
		                          "fdwshard's decision log knows.",
		                          SpiInt4(0, 2)),
		                errhint("Bring the nodes back and run SELECT fdwshard_recover_prepared_transactions(); then "
		                        "drop the extension again.")));
}

/*
 * Every worker answers first, or the DROP fails with its connection error, naming it (before the
 * recovery pass, which would only warn).
 */
void
ReachWorkers(void)
{
	uint64 count = SpiRun("SELECT server_name FROM fdwshard.node WHERE NOT is_local ORDER BY nodeid");
	Oid *servers = (Oid *) palloc0(sizeof(Oid) * (count + 1));
	for (uint64 row = 0; row < count; row++)
		servers[row] = get_foreign_server_oid(SpiText(row, 1), false);
	for (uint64 row = 0; row < count; row++)
	{
		remote::RequireUserMapping(servers[row]);
		try
		{
			pg::Call([&] { PQclear(remote::ExecuteParams(servers[row], "SELECT 1", 0, NULL, NULL, false)); });
		}
		catch (const pg::PgError &error)
		{
			error.edata()->hint = pstrdup("DROP EXTENSION fdwshard drops the shards on every worker: start the node "
			                              "again, then drop the extension; nothing was dropped.");
			throw;
		}
	}
}

/* Drops the remote shard tables of one table (or of all, InvalidOid): one DROP TABLE per worker, all at once. */
void
DropRemoteShards(Oid relid)
{
	DropTablesOnWorkers(SpiRun("SELECT n.server_name, sn.nspname::text, c.relname::text FROM fdwshard.shard s "
	                           "JOIN fdwshard.placement p USING (shardid) JOIN fdwshard.node n USING (nodeid) "
	                           "JOIN pg_catalog.pg_class c ON c.oid = s.shard_relid "
	                           "JOIN pg_catalog.pg_namespace sn ON sn.oid = c.relnamespace "
	                           "WHERE NOT n.is_local AND ($1 = 0 OR s.logicalrelid = $1) ORDER BY n.nodeid, s.shardid",
	                           {OidArg(relid)}));
}

/* The foreign servers fdwshard made for its workers, by name, in context (it outlives SPI). */
List *
WorkerServers(MemoryContext context)
{
	List *servers = NIL;
	uint64 count = SpiRun("SELECT server_name::text FROM fdwshard.node WHERE NOT is_local ORDER BY nodeid");
	MemoryContext spi = MemoryContextSwitchTo(context);
	for (uint64 row = 0; row < count; row++)
		servers = lappend(servers, SpiText(row, 1));
	MemoryContextSwitchTo(spi);
	return servers;
}

/*
 * After the extension is gone: its workers' servers and their user mappings. With CASCADE, what
 * else uses a server goes too; without, a user's own object on one keeps the extension (the
 * native error names it).
 */
void
DropWorkerServers(List *servers, DropBehavior behavior)
{
	ListCell *cell;
	SPI_connect();
	foreach (cell, servers)
	{
		const char *server = (const char *) lfirst(cell);
		Oid serverid = get_foreign_server_oid(server, true);
		if (!OidIsValid(serverid))
			continue; /* DROP EXTENSION postgres_fdw CASCADE took it */
		if (behavior != DROP_CASCADE)
		{
			uint64 mappings =
			    SpiRun("SELECT CASE WHEN umuser = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(usename) END "
			           "FROM pg_catalog.pg_user_mappings WHERE srvid = $1",
			           {OidArg(serverid)});
			List *roles = NIL;
			for (uint64 row = 0; row < mappings; row++)
				roles = lappend(roles, SpiText(row, 1));
			ListCell *role;
			foreach (role, roles)
				SpiRun(psprintf("DROP USER MAPPING FOR %s SERVER %s", (const char *) lfirst(role),
				                quote_identifier(server)));
		}
		SpiRun(
		    psprintf("DROP SERVER %s %s", quote_identifier(server), behavior == DROP_CASCADE ? "CASCADE" : "RESTRICT"));
	}
	SPI_finish();
}

} // namespace

namespace commands
{

/* Shards dropped per deletion: PostgreSQL searches the objects a deletion collects one by one. */
constexpr int kShardsPerDeletion = 256;

/*
 * DROP TABLE of a distributed table: its shards go first, here and on the workers, a chunk at a
 * time; PostgreSQL then drops the table, and drop_trigger its catalog rows. The same checks as
 * DROP TABLE come first: an error after leaves nothing, as the whole transaction rolls back.
 */
void
DropShardsOfDroppedTables(DropStmt *stmt)
{
	ListCell *cell;
	foreach (cell, stmt->objects)
	{
		RangeVar *name = makeRangeVarFromNameList((List *) lfirst(cell));
		Oid relid = RangeVarGetRelid(name, NoLock, true);
		const catalog::CachedTable *table = OidIsValid(relid) ? catalog::LookupDistributedTable(relid) : NULL;
		if (table == NULL)
			continue;
		if (!pg_class_ownercheck(relid, GetUserId()) && !pg_namespace_ownercheck(get_rel_namespace(relid), GetUserId()))
			aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, name->relname);
		LockRelationOid(relid, AccessExclusiveLock);

		List *shards = NIL;
		for (int i = 0; i < table->shard_count; i++)
			shards = lappend_oid(shards, table->shards[i].relid);
		SPI_connect();
		DropRemoteShards(relid);
		SPI_finish();

		ObjectAddresses *chunk = new_object_addresses();
		int in_chunk = 0;
		ListCell *shard;
		foreach (shard, shards)
		{
			ObjectAddress address;
			ObjectAddressSet(address, RelationRelationId, lfirst_oid(shard));
			add_exact_object_address(&address, chunk);
			if (++in_chunk == kShardsPerDeletion || lnext(shards, shard) == NULL)
			{
				performMultipleDeletions(chunk, stmt->behavior, PERFORM_DELETION_QUIETLY);
				free_object_addresses(chunk);
				chunk = new_object_addresses();
				in_chunk = 0;
			}
		}
		CommandCounterIncrement();
	}
}

bool
ProcessDropExtension(UtilityCall *call, DropStmt *stmt)
{
	if (!DropsFdwshard(stmt))
		return false;
	Oid extension = get_extension_oid("fdwshard", true);
	if (!OidIsValid(extension))
		return false;
	/* Nothing remote before the permission check DROP EXTENSION itself would make. */
	if (!pg_extension_ownercheck(extension, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_EXTENSION, "fdwshard");

	MemoryContext context = CurrentMemoryContext;
	SPI_connect();
	if (SpiRun("SELECT count(*)::int4, min(logicalrelid::text) FROM fdwshard.distributed_table") > 0 &&
	    SpiInt4(0, 1) > 0 && stmt->behavior != DROP_CASCADE)
		ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
		                errmsg("cannot drop extension fdwshard because distributed tables exist"),
		                errdetail("%d distributed table(s), among them %s.", SpiInt4(0, 1), SpiText(0, 2)),
		                errhint("Undistribute them first (SELECT undistribute_table(%s)), or drop them with their "
		                        "shards on every node: DROP EXTENSION fdwshard CASCADE.",
		                        quote_literal_cstr(SpiText(0, 2)))));
	ReachWorkers();
	FinishInDoubtTransactions();
	DropRemoteShards(InvalidOid);
	List *servers = WorkerServers(context);
	SPI_finish();

	/*
	 * One-phase commit: postgres_fdw commits the workers' DROP TABLEs, then the local commit
	 * drops the extension. Two-phase commit cannot serve here: its decision log goes with the
	 * extension, and dropping the servers ends postgres_fdw's connections at pre-commit, before
	 * COMMIT PREPARED. What a failure between the two commits leaves is harmless: the extension
	 * stays, and DROP EXTENSION again drops what is left (DROP TABLE IF EXISTS).
	 */
	(void) set_config_option("fdwshard.two_phase_commit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
	                         false);

	CallPreviousUtility(call);
	DropWorkerServers(servers, stmt->behavior);
	return true;
}

} // namespace commands

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
