/* DDL on every shard of a distributed table: shard lists, SQL on a shard's node, the bypass flag. */
#include "fdwshard/commands/shard_ddl.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard::commands
{

namespace
{

/* Owned by the backend; set by WithoutPropagation around fdwshard's own DDL, restored on exit or error. */
bool propagation_bypassed = false;

} // namespace

bool
PropagationBypassed(void)
{
	return propagation_bypassed;
}

bool
SetPropagationBypassed(bool bypassed)
{
	bool previous = propagation_bypassed;
	propagation_bypassed = bypassed;
	return previous;
}

bool
CatalogReady(void)
{
	if (creating_extension || IsBinaryUpgrade || !IsTransactionState())
		return false;
	Oid namespace_oid = get_namespace_oid("fdwshard", true);
	return OidIsValid(namespace_oid) && OidIsValid(get_relname_relid("shard_key", namespace_oid));
}

DistributedTable *
LoadDistributedTable(Oid relid)
{
	MemoryContext caller = CurrentMemoryContext;
	DistributedTable *table = NULL;

	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return NULL;
	SPI_connect();
	if (catalog::SpiRun("SELECT distribution_column, colocationid FROM fdwshard.distributed_table "
	                    "WHERE logicalrelid = $1",
	                    {catalog::OidArg(relid)}) > 0)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);
		table = (DistributedTable *) palloc0(sizeof(DistributedTable));
		table->relid = relid;
		table->schema = get_namespace_name(get_rel_namespace(relid));
		table->name = get_rel_name(relid);
		table->column = catalog::SpiText(0, 1);
		table->attnum = get_attnum(relid, table->column);
		table->colocationid = catalog::SpiInt4(0, 2);
		MemoryContextSwitchTo(spi);

		uint64 count = catalog::SpiRun("SELECT s.shardid, s.shard_index, c.relname, s.shard_relid::oid, n.is_local, "
		                               "n.server_name FROM fdwshard.shard s JOIN fdwshard.placement p USING (shardid) "
		                               "JOIN fdwshard.node n USING (nodeid) JOIN pg_class c ON c.oid = s.shard_relid "
		                               "WHERE s.logicalrelid = $1 ORDER BY s.shard_index",
		                               {catalog::OidArg(relid)});
		MemoryContextSwitchTo(caller);
		for (uint64 row = 0; row < count; row++)
		{
			Shard *shard = (Shard *) palloc0(sizeof(Shard));
			bool is_null;

			shard->shardid = catalog::SpiInt8(row, 1);
			shard->shard_index = catalog::SpiInt4(row, 2);
			shard->name = catalog::SpiText(row, 3);
			shard->relid = DatumGetObjectId(catalog::SpiValue(row, 4, &is_null));
			shard->is_local = catalog::SpiBool(row, 5);
			char *server = catalog::SpiText(row, 6);
			shard->serverid = server != NULL ? get_foreign_server_oid(server, false) : InvalidOid;
			table->shards = lappend(table->shards, shard);
		}
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return table;
}

Oid
ShardOwner(Oid relid)
{
	Oid owner = InvalidOid;

	SPI_connect();
	if (catalog::SpiRun("SELECT logicalrelid::oid FROM fdwshard.shard WHERE shard_relid = $1",
	                    {catalog::OidArg(relid)}) > 0)
	{
		bool is_null;
		owner = DatumGetObjectId(catalog::SpiValue(0, 1, &is_null));
	}
	SPI_finish();
	return owner;
}

DistributedTable *
DistributedTableOrRefuseShard(RangeVar *relation, const char *action, const char *hint, const char *suffix)
{
	Oid relid = RangeVarGetRelid(relation, NoLock, true);
	if (!OidIsValid(relid))
		return NULL;
	DistributedTable *table = LoadDistributedTable(relid);
	if (table != NULL)
		return table;

	Oid owner = ShardOwner(relid);
	if (OidIsValid(owner))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot %s shard \"%s\" of distributed table \"%s\"%s", action, get_rel_name(relid),
		                       get_rel_name(owner), suffix),
		                errhint("%s", hint)));
	return NULL;
}

void
RunLocal(const char *sql)
{
	WithoutPropagation(
	    [&]()
	    {
		    SPI_connect();
		    catalog::SpiRun(sql);
		    SPI_finish();
	    });
}

void
RunOnShardNode(const Shard *shard, const char *sql)
{
	if (shard->is_local)
		RunLocal(sql);
	else
		remote::ExecuteOnServer(shard->serverid, sql);
}

char *
QueryOnShardNode(const Shard *shard, const char *sql)
{
	if (!shard->is_local)
		return remote::QueryOnServer(shard->serverid, sql);

	MemoryContext caller = CurrentMemoryContext;
	char *answer = NULL;
	SPI_connect();
	if (catalog::SpiRun(sql) > 0)
	{
		char *value = catalog::SpiText(0, 1);
		if (value != NULL)
			answer = MemoryContextStrdup(caller, value);
	}
	SPI_finish();
	return answer;
}

void
RequireOwner(const DistributedTable *table)
{
	if (!pg_class_ownercheck(table->relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, table->name);
}

const char *
ShardRelName(const DistributedTable *table, const Shard *shard)
{
	return remote::QualifiedName(table->schema, shard->name);
}

const char *
AlterShardKeyword(const Shard *shard)
{
	return shard->is_local ? "ALTER TABLE" : "ALTER FOREIGN TABLE";
}

void
InvalidateDistributedTable(Oid relid)
{
	CacheInvalidateRelcacheByRelid(relid);
}

} // namespace fdwshard::commands

namespace fdwshard::commands
{

List *
LocalTexts(const char *sql, Oid arg)
{
	MemoryContext caller = CurrentMemoryContext;
	List *texts = NIL;

	SPI_connect();
	uint64 count = catalog::SpiRun(sql, {catalog::OidArg(arg)});
	for (uint64 row = 0; row < count; row++)
	{
		char *value = catalog::SpiText(row, 1);
		MemoryContext spi = MemoryContextSwitchTo(caller);
		texts = lappend(texts, value != NULL ? pstrdup(value) : NULL);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return texts;
}

List *
RemoteShards(const DistributedTable *table)
{
	List *shards = NIL;
	ListCell *cell;

	foreach (cell, table->shards)
		if (!((Shard *) lfirst(cell))->is_local)
			shards = lappend(shards, lfirst(cell));
	return shards;
}

} // namespace fdwshard::commands
