/*
 * Backend-local metadata cache (see catalog/metadata_cache.h). Entries are built from the catalog
 * with one SPI query on a miss and kept until a relcache invalidation names the table, one of the
 * fdwshard catalog tables (their statement triggers send one on every change) or everything.
 */
#include "fdwshard/catalog/metadata_cache.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/core/shard_range.h"
#include "fdwshard/executor/relocate_row.h"
#include "fdwshard/guard.h"
#include "fdwshard/planner/distribution.h"

namespace fdwshard::catalog
{

namespace
{

/* Owned by this file, created on first use, lives as long as the backend (a child of CacheMemoryContext). */
MemoryContext cache_context = NULL;
HTAB *table_cache = NULL;
HTAB *node_cache = NULL;
bool node_cache_valid = false;
/* Counts processed invalidations; an entry built while one arrived is not trusted. */
uint64 invalidation_count = 0;
/*
 * Shard arrays, key names and quoted shard names of rebuilt entries (or replaced names). The
 * planner and executor hold CachedShard pointers and names across catalog access (which can
 * process an invalidation and rebuild the entry), so they are freed only at the end of the
 * transaction, when no such pointer is alive. In cache_context.
 */
List *retired_shards = NIL;

/* Bumped by every pg_class invalidation this backend processes: cached quoted names older than it are re-read. */
uint64 relname_generation = 1;

/* OIDs of the catalog tables whose changes flush everything; resolved while building entries. */
constexpr int kCatalogTableCount = 5;
Oid catalog_relids[kCatalogTableCount] = {InvalidOid};

void
InvalidateAll()
{
	HASH_SEQ_STATUS status;
	CachedTable *table;

	if (table_cache == NULL)
		return;
	invalidation_count++;
	hash_seq_init(&status, table_cache);
	while ((table = (CachedTable *) hash_seq_search(&status)) != NULL)
		table->valid = false;
	node_cache_valid = false;
}

/* Relcache callback: may run inside any catalog access, so it only marks entries stale. */
void
RelcacheCallback(Datum, Oid relid)
{
	if (table_cache == NULL)
		return;
	if (!OidIsValid(relid))
	{
		InvalidateAll();
		return;
	}
	for (Oid catalog_relid : catalog_relids)
		if (catalog_relid == relid)
		{
			InvalidateAll();
			for (Oid &oid : catalog_relids)
				oid = InvalidOid;
			return;
		}
	CachedTable *table = (CachedTable *) hash_search(table_cache, &relid, HASH_FIND, NULL);
	if (table != NULL)
	{
		table->valid = false;
		invalidation_count++;
	}
}

/* Syscache callback on RELOID: any relation renamed, dropped or reset, including a full cache reset. */
void
RelnameCallback(Datum, int, uint32)
{
	relname_generation++;
}

/* Frees ptr (in cache_context) at the end of the transaction, when no pointer to it is alive. */
void
Retire(const void *ptr)
{
	MemoryContext old_context = MemoryContextSwitchTo(cache_context);
	retired_shards = lappend(retired_shards, (void *) ptr);
	MemoryContextSwitchTo(old_context);
}

void
EnsureCache()
{
	if (table_cache != NULL)
		return;
	cache_context = AllocSetContextCreate(CacheMemoryContext, "fdwshard metadata cache", ALLOCSET_DEFAULT_SIZES);

	HASHCTL ctl;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CachedTable);
	ctl.hcxt = cache_context;
	table_cache = hash_create("fdwshard distributed tables", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(CachedNode);
	node_cache = hash_create("fdwshard nodes", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

void
ResolveCatalogRelids()
{
	static const char *const names[kCatalogTableCount] = {"node", "colocation_group", "distributed_table", "shard",
	                                                      "placement"};
	Oid schema = get_namespace_oid("fdwshard", true);

	for (int i = 0; i < kCatalogTableCount; i++)
		catalog_relids[i] = OidIsValid(schema) ? get_relname_relid(names[i], schema) : InvalidOid;
}

/* True when attribute shard_attr is the table's attr at the same number. */
bool
SameAttribute(Form_pg_attribute attr, Form_pg_attribute shard_attr)
{
	return shard_attr->attisdropped == attr->attisdropped &&
	       (attr->attisdropped ||
	        (shard_attr->atttypid == attr->atttypid && namestrcmp(&shard_attr->attname, NameStr(attr->attname)) == 0));
}

/* True when shard_relid's columns sit at the same attribute numbers as the table's (its catalog rows). */
bool
SameAttnos(Relation table, Oid shard_relid)
{
	TupleDesc desc = RelationGetDescr(table);
	HeapTuple class_tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(shard_relid));
	if (!HeapTupleIsValid(class_tuple))
		return false;
	int shard_natts = ((Form_pg_class) GETSTRUCT(class_tuple))->relnatts;
	ReleaseSysCache(class_tuple);
	if (shard_natts != desc->natts)
		return false;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		HeapTuple tuple = SearchSysCache2(ATTNUM, ObjectIdGetDatum(shard_relid), Int16GetDatum(attr->attnum));
		if (!HeapTupleIsValid(tuple))
			return false;
		bool same = SameAttribute(attr, (Form_pg_attribute) GETSTRUCT(tuple));
		ReleaseSysCache(tuple);
		if (!same)
			return false;
	}
	return true;
}

/* The same from the shard's relcache entry: no catalog read when planning opens the shard anyway. */
bool
SameDescriptor(Relation table, Relation shard)
{
	TupleDesc desc = RelationGetDescr(table);
	TupleDesc shard_desc = RelationGetDescr(shard);
	if (shard_desc->natts != desc->natts)
		return false;
	for (int i = 0; i < desc->natts; i++)
		if (!SameAttribute(TupleDescAttr(desc, i), TupleDescAttr(shard_desc, i)))
			return false;
	return true;
}

/* Triggers of the distributed table that routing straight to a shard would skip or must honour. */
void
ReadTriggers(Relation rel, CachedTable *table)
{
	table->has_row_triggers = false;
	table->has_stmt_triggers = false;
	if (rel->trigdesc == NULL)
		return;
	for (int i = 0; i < rel->trigdesc->numtriggers; i++)
	{
		Trigger *trigger = &rel->trigdesc->triggers[i];
		if (strcmp(trigger->tgname, kRelocateTriggerName) == 0 || trigger->tgisinternal)
			continue;
		if (TRIGGER_FOR_ROW(trigger->tgtype))
			table->has_row_triggers = true;
		else
			table->has_stmt_triggers = true;
	}
}

/* Names of the table's PRIMARY KEY and UNIQUE shard keys (inside BuildEntry's SPI connection). */
void
ReadConstraintKeys(CachedTable *table)
{
	uint64 count = SpiRun("SELECT name::text FROM fdwshard.shard_key WHERE logicalrelid = $1 AND kind IN ('p', 'u')",
	                      {OidArg(table->relid)});
	if (count == 0)
		return;
	table->key_names = (NameData *) MemoryContextAllocZero(cache_context, sizeof(NameData) * count);
	for (uint64 row = 0; row < count; row++)
		namestrcpy(&table->key_names[row], SpiText(row, 1));
	table->key_count = (int32) count;
}

/* Fills table from the catalog; leaves it not distributed when the catalog is incomplete. */
void
BuildEntry(CachedTable *table)
{
	table->is_distributed = false;
	table->shards = NULL;
	table->key_count = 0;
	table->key_names = NULL;

	Relation rel = try_relation_open(table->relid, AccessShareLock);
	if (rel == NULL)
		return;
	Distribution distribution;
	if (!GetDistribution(rel, &distribution))
	{
		relation_close(rel, AccessShareLock);
		return;
	}

	ResolveCatalogRelids();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	uint64 count = SpiRun("SELECT g.shard_count, d.colocationid, s.shardid, s.shard_index, s.min_hash, s.max_hash, "
	                      "s.shard_relid::oid::int8, p.nodeid, n.is_local, n.server_name::text "
	                      "FROM fdwshard.distributed_table d "
	                      "JOIN fdwshard.colocation_group g ON g.colocationid = d.colocationid "
	                      "JOIN fdwshard.shard s ON s.logicalrelid = d.logicalrelid "
	                      "JOIN fdwshard.placement p ON p.shardid = s.shardid "
	                      "JOIN fdwshard.node n ON n.nodeid = p.nodeid "
	                      "WHERE d.logicalrelid = $1 ORDER BY s.shard_index",
	                      {OidArg(table->relid)});
	int32 shard_count = count > 0 ? SpiInt4(0, 1) : 0;

	if (count > 0 && (uint64) shard_count == count)
	{
		CachedShard *shards = (CachedShard *) MemoryContextAllocZero(cache_context, sizeof(CachedShard) * count);
		bool complete = true;
		bool uniform = true;

		for (uint64 row = 0; row < count && complete; row++)
		{
			CachedShard *shard = &shards[row];
			char *server = SpiText(row, 10);

			complete = SpiInt4(row, 4) == (int32) row;
			shard->shardid = SpiInt8(row, 3);
			shard->min_hash = SpiInt4(row, 5);
			shard->max_hash = SpiInt4(row, 6);
			shard->relid = (Oid) SpiInt8(row, 7);
			shard->nodeid = SpiInt4(row, 8);
			shard->serverid = SpiBool(row, 9) ? InvalidOid : get_foreign_server_oid(server, true);
			shard->same_attnos = kAttnosUnknown;
			if (!SpiBool(row, 9) && !OidIsValid(shard->serverid))
				complete = false;

			core::HashRange range = core::ShardHashRange((int) row, shard_count);
			uniform = uniform && range.min_hash == shard->min_hash && range.max_hash == shard->max_hash;
		}
		if (complete)
		{
			table->is_distributed = true;
			table->dist_attnum = distribution.attnum;
			table->dist_type = distribution.column_type;
			table->colocationid = SpiInt4(0, 2);
			table->shard_count = shard_count;
			table->uniform = uniform;
			table->shards = shards;
			ReadTriggers(rel, table);
			ReadConstraintKeys(table);
		}
		else
			pfree(shards);
	}
	SPI_finish();
	relation_close(rel, AccessShareLock);
}

void
BuildNodeCache()
{
	HASH_SEQ_STATUS status;
	CachedNode *node;

	hash_seq_init(&status, node_cache);
	while ((node = (CachedNode *) hash_seq_search(&status)) != NULL)
		hash_search(node_cache, &node->nodeid, HASH_REMOVE, NULL);

	ResolveCatalogRelids();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	uint64 count = SpiRun("SELECT nodeid, is_local, host, port FROM fdwshard.node");
	for (uint64 row = 0; row < count; row++)
	{
		int32 nodeid = SpiInt4(row, 1);
		CachedNode *entry = (CachedNode *) hash_search(node_cache, &nodeid, HASH_ENTER, NULL);
		entry->is_local = SpiBool(row, 2);
		strlcpy(entry->host, SpiText(row, 3), sizeof(entry->host));
		entry->port = SpiInt4(row, 4);
	}
	SPI_finish();
	node_cache_valid = true;
}

} // namespace

const CachedTable *
LookupDistributedTable(Oid relid)
{
	bool found;

	EnsureCache();
	CachedTable *table = (CachedTable *) hash_search(table_cache, &relid, HASH_ENTER, &found);
	if (found && table->valid)
		return table->is_distributed ? table : NULL;

	if (found && table->shards != NULL)
	{
		for (int i = 0; i < table->shard_count; i++)
			if (table->shards[i].quoted_name != NULL)
				Retire(table->shards[i].quoted_name);
		Retire(table->shards);
	}
	if (found && table->key_names != NULL)
		Retire(table->key_names);
	table->shards = NULL;
	table->key_count = 0;
	table->key_names = NULL;
	table->is_distributed = false;
	table->valid = false;

	/* An invalidation arriving while we build (we take locks, run SPI) leaves it stale: rebuilt next time. */
	uint64 before = invalidation_count;
	BuildEntry(table);
	table->valid = invalidation_count == before;
	return table->is_distributed ? table : NULL;
}

int
ShardIndexForHash(const CachedTable *table, int32 hash)
{
	if (table->uniform)
		return core::ShardIndexForHash(hash, table->shard_count);

	int index = core::FindRangeIndex(table->shards, table->shard_count, hash);
	if (index >= 0)
		return index;
	ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
	                errmsg("no shard of \"%s\" covers hash value %d", get_rel_name(table->relid), hash),
	                errhint("The shard hash ranges in fdwshard.shard have a gap.")));
}

bool
HasConstraintKey(const CachedTable *table, const char *name)
{
	for (int i = 0; i < table->key_count; i++)
		if (strcmp(NameStr(table->key_names[i]), name) == 0)
			return true;
	return false;
}

bool
ShardSameAttnos(const CachedTable *table, int index, bool shard_locked)
{
	const CachedShard *shard = &table->shards[index];
	if (shard->same_attnos == kAttnosUnknown)
	{
		/* Callers plan a statement on the table, which holds its lock already. */
		Relation rel = relation_open(table->relid, AccessShareLock);
		bool same;
		if (shard_locked)
		{
			Relation shard_rel = try_relation_open(shard->relid, NoLock);
			same = shard_rel != NULL && SameDescriptor(rel, shard_rel);
			if (shard_rel != NULL)
				relation_close(shard_rel, NoLock);
		}
		else
			same = SameAttnos(rel, shard->relid);
		shard->same_attnos = same ? 1 : 0;
		relation_close(rel, NoLock);
	}
	return shard->same_attnos == 1;
}

const char *
ShardQuotedName(const CachedShard *shard)
{
	if (shard->quoted_name != NULL && shard->name_generation == relname_generation)
		return shard->quoted_name;
	/* Taken first: a change processed while we read leaves the name to be read again. */
	uint64 generation = relname_generation;
	char *name = get_rel_name(shard->relid);
	if (name == NULL)
		return NULL;
	const char *quoted = quote_identifier(name);
	if (shard->quoted_name == NULL || strcmp(shard->quoted_name, quoted) != 0)
	{
		if (shard->quoted_name != NULL)
			Retire(shard->quoted_name);
		shard->quoted_name = MemoryContextStrdup(cache_context, quoted);
	}
	shard->name_generation = generation;
	if (quoted != name)
		pfree((void *) quoted);
	pfree(name);
	return shard->quoted_name;
}

const CachedShard *
ShardForHash(const CachedTable *table, int32 hash)
{
	return &table->shards[ShardIndexForHash(table, hash)];
}

const CachedNode *
LookupNode(int32 nodeid)
{
	EnsureCache();
	if (!node_cache_valid)
		BuildNodeCache();
	return (const CachedNode *) hash_search(node_cache, &nodeid, HASH_FIND, NULL);
}

namespace
{

/* At the end of each top-level transaction no CachedShard pointer is alive: free the retired arrays. */
void
FreeRetiredShards(XactEvent event, void *)
{
	if (retired_shards == NIL ||
	    (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_COMMIT &&
	     event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE))
		return;
	ListCell *cell;
	foreach (cell, retired_shards)
		pfree(lfirst(cell));
	list_free(retired_shards);
	retired_shards = NIL;
}

} // namespace

void
InitMetadataCache(void)
{
	CacheRegisterRelcacheCallback(RelcacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(RELOID, RelnameCallback, (Datum) 0);
	RegisterXactCallback(FreeRetiredShards, NULL);
}

} // namespace fdwshard::catalog

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_invalidate_metadata);

	/* Statement trigger on the catalog tables: every backend's metadata cache drops its entries. */
	Datum fdwshard_invalidate_metadata(PG_FUNCTION_ARGS)
	{
		if (!CALLED_AS_TRIGGER(fcinfo))
			ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			                errmsg("fdwshard_invalidate_metadata must be called as a trigger")));
		CacheInvalidateRelcacheByRelid(RelationGetRelid(((TriggerData *) fcinfo->context)->tg_relation));
		return PointerGetDatum(NULL);
	}
}
