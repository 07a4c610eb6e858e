/*
 * CREATE INDEX and DROP INDEX / DROP TABLE on distributed tables. A plain index is a partitioned
 * index (PostgreSQL builds it on local shards) plus <name>_<shardid> on every remote shard; a unique
 * index exists only per shard (see shard_keys.cpp).
 */
#include "fdwshard/commands/restore.h"
#include "fdwshard/commands/utility_hook.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard::commands
{

namespace
{

/*
 * DROP INDEX's own check, made before any shard changes (PostgreSQL's runs after them, or not at
 * all for shard keys): the owner of the table or of its schema, with PostgreSQL's message.
 */
void
RequireIndexOwner(Oid relid, const char *index_name)
{
	if (!pg_class_ownercheck(relid, GetUserId()) && !pg_namespace_ownercheck(get_rel_namespace(relid), GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_INDEX, index_name);
}

List *
PartitionedIndexes(Oid relid)
{
	return LocalTexts("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
	                  "WHERE i.indrelid = $1 ORDER BY 1",
	                  relid);
}

bool
ListHasName(List *names, const char *name)
{
	ListCell *cell;
	foreach (cell, names)
		if (strcmp((const char *) lfirst(cell), name) == 0)
			return true;
	return false;
}

/* The new partitioned index on every remote shard, from its definition on the partitioned table. */
void
CreateIndexOnRemoteShards(DistributedTable *table, const char *index_name)
{
	Oid index = get_relname_relid(index_name, get_rel_namespace(table->relid));
	int nest_level = remote::BeginQualifiedDeparse();
	char *definition = pg_get_indexdef_string(index);
	remote::EndQualifiedDeparse(nest_level);

	const char *rel = remote::QualifiedName(table->schema, table->name);
	const char *prefixes[] = {psprintf("CREATE INDEX %s ON ONLY %s ", quote_identifier(index_name), rel),
	                          psprintf("CREATE INDEX %s ON %s ", quote_identifier(index_name), rel)};
	const char *tail = NULL;
	for (const char *prefix : prefixes)
		if (strncmp(definition, prefix, strlen(prefix)) == 0)
			tail = definition + strlen(prefix);
	if (tail == NULL)
		elog(ERROR, "fdwshard: unexpected index definition: %s", definition);

	ListCell *cell;
	foreach (cell, RemoteShards(table))
	{
		Shard *shard = (Shard *) lfirst(cell);
		RunOnShardNode(shard, psprintf("CREATE INDEX %s ON %s %s",
		                               quote_identifier(remote::NameWithSuffix(index_name, shard->shardid)),
		                               ShardRelName(table, shard), tail));
	}
}

/* The distributed table with shard unique index name in the named (or first search_path) schema. */
Oid
ShardUniqueIndexOwner(List *names, char *kind)
{
	char *schema;
	char *name;
	List *namespaces = NIL;

	DeconstructQualifiedName(names, &schema, &name);
	if (schema != NULL)
		namespaces = list_make1_oid(get_namespace_oid(schema, false));
	else
		namespaces = fetch_search_path(false);

	ListCell *cell;
	foreach (cell, namespaces)
	{
		Oid owner = InvalidOid;
		SPI_connect();
		if (catalog::SpiRun("SELECT k.logicalrelid::oid, k.kind::text FROM fdwshard.shard_key k "
		                    "JOIN pg_class c ON c.oid = k.logicalrelid WHERE k.name = $1 AND c.relnamespace = $2",
		                    {catalog::TextArg(name), catalog::OidArg(lfirst_oid(cell))}) > 0)
		{
			bool is_null;
			owner = DatumGetObjectId(catalog::SpiValue(0, 1, &is_null));
			*kind = catalog::SpiText(0, 2)[0];
		}
		SPI_finish();
		if (OidIsValid(owner))
			return owner;
	}
	return InvalidOid;
}

bool
ProcessDropIndex(UtilityCall *call, DropStmt *stmt)
{
	struct DroppedIndex
	{
		DistributedTable *table;
		char *name;
	};
	List *partitioned = NIL; /* DroppedIndex *: dropped natively, then on the remote shards */
	List *shard_keys = NIL;  /* DroppedIndex *: unique indexes that exist only per shard */
	List *native_objects = NIL;
	ListCell *cell;

	foreach (cell, stmt->objects)
	{
		List *names = (List *) lfirst(cell);
		Oid index = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
		DroppedIndex *dropped = (DroppedIndex *) palloc0(sizeof(DroppedIndex));

		if (OidIsValid(index))
		{
			Oid relid = IndexGetRelation(index, true);
			native_objects = lappend(native_objects, names);
			if (!OidIsValid(relid))
				continue;
			if (OidIsValid(ShardOwner(relid)))
				ereport(ERROR,
				        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				         errmsg("cannot drop index \"%s\" of shard \"%s\"", get_rel_name(index), get_rel_name(relid)),
				         errhint("Drop the index of the distributed table: fdwshard drops it on every shard.")));
			dropped->table = LoadDistributedTable(relid);
			if (dropped->table == NULL)
				continue;
			RequireIndexOwner(relid, get_rel_name(index));
			RequireShardAccess(dropped->table);
			dropped->name = get_rel_name(index);
			partitioned = lappend(partitioned, dropped);
		}
		else
		{
			char kind = '\0';
			Oid relid = ShardUniqueIndexOwner(names, &kind);
			if (!OidIsValid(relid))
			{
				native_objects = lappend(native_objects, names); /* PostgreSQL's own error or notice */
				continue;
			}
			dropped->table = LoadDistributedTable(relid);
			dropped->name = strVal(llast(names));
			RequireIndexOwner(relid, dropped->name);
			RequireShardAccess(dropped->table);
			if (kind != 'i')
				ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				                errmsg("cannot drop index %s because constraint %s on table %s requires it",
				                       dropped->name, dropped->name, dropped->table->name),
				                errhint("You can drop constraint %s on table %s instead.", dropped->name,
				                        dropped->table->name)));
			shard_keys = lappend(shard_keys, dropped);
		}
		if (stmt->concurrent)
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			                errmsg("cannot drop index \"%s\" of distributed table \"%s\" concurrently", dropped->name,
			                       dropped->table->name),
			                errhint("Drop it without CONCURRENTLY: it is dropped on every shard in one transaction.")));
	}
	if (partitioned == NIL && shard_keys == NIL)
		return false;

	stmt = (DropStmt *) WritableStatement(call);
	stmt->objects = native_objects;
	if (native_objects != NIL)
		CallPreviousUtility(call);
	foreach (cell, partitioned)
	{
		DroppedIndex *dropped = (DroppedIndex *) lfirst(cell);
		ListCell *shard_cell;
		foreach (shard_cell, RemoteShards(dropped->table))
		{
			Shard *shard = (Shard *) lfirst(shard_cell);
			RunOnShardNode(shard, psprintf("DROP INDEX IF EXISTS %s%s",
			                               remote::QualifiedName(dropped->table->schema,
			                                                     remote::NameWithSuffix(dropped->name, shard->shardid)),
			                               stmt->behavior == DROP_CASCADE ? " CASCADE" : ""));
		}
		InvalidateDistributedTable(dropped->table->relid);
	}
	foreach (cell, shard_keys)
	{
		DroppedIndex *dropped = (DroppedIndex *) lfirst(cell);
		DropShardKey(dropped->table, dropped->name, stmt->behavior);
	}
	return true;
}

/* DROP TABLE of a table referenced by a shard foreign key: refused, or with CASCADE the keys go first. */
void
DropReferencingForeignKeys(DropStmt *stmt)
{
	List *dropped = NIL;
	ListCell *cell;

	foreach (cell, stmt->objects)
	{
		Oid relid = RangeVarGetRelid(makeRangeVarFromNameList((List *) lfirst(cell)), NoLock, true);
		if (OidIsValid(relid))
			dropped = lappend_oid(dropped, relid);
	}
	foreach (cell, dropped)
	{
		MemoryContext caller = CurrentMemoryContext;
		List *keys = NIL; /* "relid name" of foreign keys from tables not dropped */

		SPI_connect();
		uint64 count = catalog::SpiRun("SELECT logicalrelid::oid, name FROM fdwshard.shard_key "
		                               "WHERE referenced = $1 AND logicalrelid <> referenced ORDER BY name",
		                               {catalog::OidArg(lfirst_oid(cell))});
		for (uint64 row = 0; row < count; row++)
		{
			bool is_null;
			Oid referencing = DatumGetObjectId(catalog::SpiValue(row, 1, &is_null));
			if (list_member_oid(dropped, referencing))
				continue;
			MemoryContext spi = MemoryContextSwitchTo(caller);
			keys = lappend(keys, list_make2(makeInteger((int) referencing), makeString(catalog::SpiText(row, 2))));
			MemoryContextSwitchTo(spi);
		}
		SPI_finish();

		ListCell *key_cell;
		foreach (key_cell, keys)
		{
			List *key = (List *) lfirst(key_cell);
			Oid referencing = (Oid) intVal(linitial(key));
			const char *name = strVal(lsecond(key));

			RequireTableOwner(lfirst_oid(cell), true); /* as DROP TABLE checks, before any shard changes */
			if (stmt->behavior != DROP_CASCADE)
				ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				                errmsg("cannot drop table %s because other objects depend on it",
				                       get_rel_name(lfirst_oid(cell))),
				                errdetail("constraint %s on table %s depends on table %s", name,
				                          get_rel_name(referencing), get_rel_name(lfirst_oid(cell))),
				                errhint("Use DROP ... CASCADE to drop the dependent objects too.")));
			ereport(NOTICE, (errmsg("drop cascades to constraint %s on table %s", name, get_rel_name(referencing))));
			DropShardKey(LoadDistributedTable(referencing), name, DROP_CASCADE);
		}
	}
}

} // namespace

bool
ProcessIndex(UtilityCall *call, IndexStmt *stmt)
{
	if (ProcessRestoredIndex(call, stmt))
		return true;
	DistributedTable *table =
	    DistributedTableOrRefuseShard(stmt->relation, "create index on",
	                                  "Create the index on the distributed table: fdwshard creates it on every shard.");
	if (table == NULL)
		return false;
	Oid relid = table->relid;
	if (stmt->concurrent)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot create index on distributed table \"%s\" concurrently", table->name),
		                errhint("Create it without CONCURRENTLY: it is built on every shard in one transaction.")));
	if (!stmt->relation->inh)
		RefuseUnsupported("CREATE INDEX ON ONLY", table->name);
	if (stmt->excludeOpNames != NIL)
		RefuseUnsupported("an exclusion constraint", table->name);
	LockRelationOid(relid, ShareLock);

	if (stmt->unique || stmt->primary)
	{
		RequireTableOwner(table->relid); /* PostgreSQL's own CREATE INDEX does not run */
		AddShardUniqueIndex(table, stmt);
		return true;
	}

	List *before = PartitionedIndexes(relid);
	CallPreviousUtility(call);
	List *after = PartitionedIndexes(relid);
	ListCell *cell;
	foreach (cell, after)
		if (!ListHasName(before, (const char *) lfirst(cell)))
			CreateIndexOnRemoteShards(table, (const char *) lfirst(cell));
	InvalidateDistributedTable(relid);
	return true;
}

bool
ProcessDrop(UtilityCall *call, DropStmt *stmt)
{
	if (stmt->removeType == OBJECT_INDEX)
		return ProcessDropIndex(call, stmt);
	if (stmt->removeType == OBJECT_TABLE)
	{
		DropReferencingForeignKeys(stmt);
		DropShardsOfDroppedTables(stmt);
	}
	if (stmt->removeType == OBJECT_EXTENSION)
		return ProcessDropExtension(call, stmt);
	return false;
}

} // namespace fdwshard::commands
