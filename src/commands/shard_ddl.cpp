/* DDL on every shard of a distributed table: shard lists, SQL on a shard's node, the bypass flag. */
#include "fdwshard/commands/shard_ddl.h"

#include "fdwshard/catalog/metadata_cache.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"
#include "fdwshard/remote/user_mapping.h"

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
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return NULL;
	const catalog::CachedTable *cached = catalog::LookupDistributedTable(relid);
	if (cached == NULL)
		return NULL;

	/* Copied before the name lookups below, which may process an invalidation and rebuild the entry. */
	int shard_count = cached->shard_count;
	catalog::CachedShard *shards = (catalog::CachedShard *) palloc(sizeof(catalog::CachedShard) * shard_count);
	memcpy(shards, cached->shards, sizeof(catalog::CachedShard) * shard_count);

	DistributedTable *table = (DistributedTable *) palloc0(sizeof(DistributedTable));
	table->relid = relid;
	table->attnum = cached->dist_attnum;
	table->colocationid = cached->colocationid;
	table->schema = get_namespace_name(get_rel_namespace(relid));
	table->name = get_rel_name(relid);
	table->column = get_attname(relid, table->attnum, false);
	for (int i = 0; i < shard_count; i++)
	{
		Shard *shard = (Shard *) palloc0(sizeof(Shard));
		shard->shardid = shards[i].shardid;
		shard->shard_index = i;
		shard->name = get_rel_name(shards[i].relid);
		shard->relid = shards[i].relid;
		shard->serverid = shards[i].serverid;
		shard->is_local = !OidIsValid(shards[i].serverid);
		table->shards = lappend(table->shards, shard);
	}
	pfree(shards);
	return table;
}

Oid
ShardOwner(Oid relid)
{
	if (!OidIsValid(relid) || !get_rel_relispartition(relid))
		return InvalidOid;
	Oid parent = get_partition_parent(relid, true);
	const catalog::CachedTable *table = catalog::LookupDistributedTable(parent);
	for (int i = 0; table != NULL && i < table->shard_count; i++)
		if (table->shards[i].relid == relid)
			return parent;
	return InvalidOid;
}

DistributedTable *
DistributedTableOrRefuseShard(RangeVar *relation, const char *action, const char *hint, const char *suffix)
{
	Oid relid = RangeVarGetRelid(relation, NoLock, true);
	if (!OidIsValid(relid))
		return NULL;
	DistributedTable *table = LoadDistributedTable(relid);
	if (table != NULL)
	{
		RequireTableOwner(relid);
		RequireShardAccess(table);
		return table;
	}

	Oid owner = ShardOwner(relid);
	if (OidIsValid(owner))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot %s shard \"%s\" of distributed table \"%s\"%s", action, get_rel_name(relid),
		                       get_rel_name(owner), suffix),
		                errhint("%s", hint)));
	return NULL;
}

void
RequireTableOwner(Oid relid, bool schema_owner_may)
{
	if (pg_class_ownercheck(relid, GetUserId()))
		return;
	if (schema_owner_may && pg_namespace_ownercheck(get_rel_namespace(relid), GetUserId()))
		return;
	aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
}

void
RequireShardAccess(const DistributedTable *table)
{
	List *checked = NIL;
	ListCell *cell;

	foreach (cell, table->shards)
	{
		const Shard *shard = (const Shard *) lfirst(cell);
		if (shard->is_local || list_member_oid(checked, shard->serverid))
			continue;
		remote::RequireUserMapping(shard->serverid);
		checked = lappend_oid(checked, shard->serverid);
	}
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

void
EnsureRemoteSchema(Oid serverid, const char *schema)
{
	if (remote::QueryOnServer(serverid, psprintf("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname "
	                                             "OPERATOR(pg_catalog.=) %s",
	                                             quote_literal_cstr(schema))) == NULL)
		remote::ExecuteOnServer(serverid, psprintf("CREATE SCHEMA IF NOT EXISTS %s", quote_identifier(schema)));
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
